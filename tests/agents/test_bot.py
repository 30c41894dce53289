"""The Telegram bot: the real python-telegram-bot Application polling a loopback Bot API stub.

Updates go in through the stub's getUpdates queue; replies are read from what the bot sent
(sendMessage, editMessageText, sendDocument, answerCallbackQuery). Runs use the embedded
SP500 data as of 2004-12-31 and yearly ML refits so each takes a few seconds.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
import warnings
from datetime import UTC, datetime

import pytest
from pytest_httpserver import HTTPServer

from agents.bot import AlertWatcher, DeskCommands, run_alerts, send_run_alerts
from agents.cli import main
from agents.config import Secrets, load_settings
from analytics import DataQualityWarning
from integrations import (
    AccessPolicy,
    BotStateStore,
    CommandBot,
    CommandReply,
    CommandSpec,
    Delivery,
    Invocation,
    Journal,
    RateLimiter,
    TokenRedactingFilter,
    parse_args,
    parse_symbols,
    redact_token,
)
from tests.telegram_stub import TOKEN, BotApiStub

warnings.filterwarnings("ignore", category=DataQualityWarning)

ADMIN = 1001        # admin, private chat 1001
USER = 2002         # ordinary user, private chat 2002
GROUP = -3003       # allowed group chat
STRANGER = 4004     # in no list
RATE = 5005         # another allowed user
AS_OF = "2004-12-31"

CONFIG = """home = '{home}'
[ml]
refit_every = 252
[report]
backtest = false
[telegram]
base_url = '{base_url}'
base_file_url = '{base_file_url}'
chat_ids = [{ADMIN}, {USER}, {GROUP}, {RATE}]
user_ids = [{USER}, {RATE}]
admin_ids = [{ADMIN}]
rate_limit = 1000
rate_window_seconds = 1.0
alert_poll_seconds = 0
[compute]
workers = 1
[portfolio.universes]
pair = ["SP500", "NASDAQ"]
[[schedule.jobs]]
name = "close-report"
kind = "report"
cron = "30 17 * * mon-fri"
symbols = ["SP500"]
[[schedule.jobs]]
name = "morning-scan"
kind = "scan"
cron = "0 8 * * mon-fri"
universe = "pair"
enabled = false
"""


class _Running:
    """The application initialised, started and polling, on an event loop in its own thread."""

    def __init__(self, bot: CommandBot) -> None:
        self.bot = bot
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="bot-loop", daemon=True)
        self.thread.start()
        app = bot.application
        self.call(app.initialize())
        self.call(bot.publish_commands())
        self.call(app.start())
        self.call(app.updater.start_polling(poll_interval=0.02, timeout=1))

    def call(self, coro, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        app = self.bot.application
        try:
            self.call(app.updater.stop())
            self.call(app.stop())
            self.call(app.shutdown())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.bot.close()


@pytest.fixture(scope="module")
def server():
    srv = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    srv.start()
    yield srv
    srv.clear()
    srv.stop()


@pytest.fixture(scope="module")
def stub(server):
    return BotApiStub(server, poll_wait=0.2)


@pytest.fixture(scope="module")
def env(tmp_path_factory, stub):
    root = tmp_path_factory.mktemp("bot")
    home = root / "home"
    cfg = root / "bot.toml"
    cfg.write_text(CONFIG.format(home=home, base_url=stub.base_url, base_file_url=stub.base_file_url, ADMIN=ADMIN,
                                 USER=USER, GROUP=GROUP, RATE=RATE))
    settings = load_settings(cfg, env={})
    return settings, cfg


@pytest.fixture(scope="module")
def desk(env):
    from agents.bot import build_bot

    settings, _ = env
    d = build_bot(settings, Secrets.from_env({"TELEGRAM_BOT_TOKEN": TOKEN}), sender=None)
    running = _Running(d.bot)
    yield d
    running.stop()
    d.store.close()


def _ask(stub, text: str, chat: int, user: int | None = None, *, n: int = 1, timeout: float = 240) -> list[dict]:
    """Send ``text`` and wait until ``n`` new messages in ``chat`` are final (not 'Working on...')."""
    start = len(stub.messages(chat))
    stub.push_message(text, chat, user)

    def ready():
        new = stub.messages(chat)[start:]
        if len(new) >= n and not any((m.get("text") or "").startswith("Working on") for m in new):
            return new
        return None

    return stub.wait_for(ready, timeout)


def _text(stub, text: str, chat: int, user: int | None = None, **kw) -> str:
    return _ask(stub, text, chat, user, **kw)[-1]["text"]


def _journal_runs(settings) -> list:
    if not (settings.home_dir / "journal.sqlite").exists():
        return []
    with Journal(settings.home_dir / "journal.sqlite") as j:
        return j.list_runs(200)


def _paper_orders(settings) -> list:
    from integrations.brokers import PaperBroker

    if not (settings.home_dir / "paper_broker.sqlite").exists():
        return []
    b = PaperBroker(settings.home_dir / "paper_broker.sqlite")
    try:
        return b.orders()
    finally:
        b.close()


# ------------------------------------------------------------------ commands end to end


def test_start_help_menu_and_unknown_command(desk, stub):
    text = _text(stub, "/start", ADMIN)
    assert "You are an admin" in text and f"user id {ADMIN}" in text
    assert "You are a user" in _text(stub, "/start", USER)
    helptext = _text(stub, "/help", USER)
    for name in ("start", "help", "status", "regime", "stats", "signal", "run", "report", "positions", "orders",
                 "risk", "halt", "reduce", "resume", "flatten", "schedule", "scan"):
        assert f"/{name}" in helptext
    assert "/halt [REASON] [admin]" in helptext and "--approve" in helptext
    assert len(helptext.splitlines()) <= 40
    assert [c["command"] for c in stub.commands][:3] == ["start", "help", "status"]
    assert "Unknown command /nosuch" in _text(stub, "/nosuch", USER)
    # addressed to this bot by name in a group; a command for another bot is ignored
    assert "You are a user" in _text(stub, "/start@regimedesk_test_bot", GROUP, USER)


def test_strangers_are_refused_and_nothing_runs(desk, stub, env, caplog):
    settings, _ = env
    runs_before, orders_before = len(_journal_runs(settings)), len(_paper_orders(settings))
    caplog.set_level(logging.WARNING, logger="integrations._telegram_bot")
    text = _text(stub, "/run SP500 --broker paper", STRANGER)
    assert "only answers its owners" in text and str(STRANGER) in text
    # an unknown user in an allowed group, and an allowed user in an unknown chat
    assert "only answers its owners" in _text(stub, "/halt", GROUP, STRANGER)
    assert "only answers its owners" in _text(stub, "/status", -7007, USER)
    assert not any("Working on" in (m.get("text") or "") for m in stub.messages(STRANGER))
    assert len(_journal_runs(settings)) == runs_before
    assert len(_paper_orders(settings)) == orders_before
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert any(f"/run from chat {STRANGER} user {STRANGER}" in m for m in refusals)
    assert any(f"chat {GROUP} user {STRANGER}" in m for m in refusals)
    assert all(TOKEN not in m for m in refusals)
    assert "Trading state: ACTIVE" in _text(stub, "/risk", ADMIN)  # the stranger's /halt did nothing


def test_non_admins_may_not_trade_halt_or_approve(desk, stub, env):
    settings, _ = env
    runs_before = len(_journal_runs(settings))
    for command in ("/halt", "/reduce now", "/resume", "/run SP500 --broker paper", "/run SP500 --approve"):
        text = _text(stub, command, USER)
        assert "needs an admin" in text and "nothing was run" in text, command
    assert len(_journal_runs(settings)) == runs_before
    assert "Trading state: ACTIVE" in _text(stub, "/risk", USER)


@pytest.mark.parametrize(("command", "usage", "why"), [
    ("/regime", "/regime SYMBOL", "give a symbol"),
    ("/regime SP500 NASDAQ", "/regime SYMBOL", "at most 1 symbol"),
    ("/stats SP$500", "/stats SYMBOL", "is not a symbol"),
    ("/signal SP500 --as-of yesterday", "/signal SYMBOL", "--as-of must be a date"),
    ("/regime SP500 --method magic", "/regime SYMBOL", "--method must be one of"),
    ("/run", "/run SYMBOL...", "give a symbol"),
    ("/run A B C D E F", "/run SYMBOL...", "at most 5 symbols"),
    ("/run SP500 --broker robinhood", "/run SYMBOL...", "--broker must be one of"),
    ("/run SP500 --fast", "/run SYMBOL...", "unknown option --fast"),
    ("/report", "/report SYMBOL...", "give a symbol"),
    ("/positions ibkr", "/positions", "at most one broker"),
    ("/orders --open", "/orders", "unknown option"),
    ("/status now", "/status", "takes no arguments"),
    ("/scan", "/scan UNIVERSE|SYMBOL...", "give a universe or symbols"),
    ("/scan SP500 --as-of 2008-01-02", "/scan UNIVERSE|SYMBOL...", "unknown option --as-of"),
])
def test_malformed_arguments_get_the_help_text(desk, stub, env, command, usage, why):
    settings, _ = env
    runs_before = len(_journal_runs(settings))
    text = _text(stub, command, USER)
    assert why in text and f"Usage: {usage}" in text
    assert len(_journal_runs(settings)) == runs_before


def test_rate_limit_is_configured(desk, env):
    settings, _ = env
    assert (desk.bot.limiter.limit, desk.bot.limiter.window) == (1000, 1.0)
    assert desk.bot.approval_ttl == settings.telegram.approval_ttl_seconds


def test_regime_matches_the_command_line(desk, stub, env, capsys):
    _, cfg = env
    msgs = _ask(stub, f"/regime SP500 --as-of {AS_OF}", USER)
    # a 'working...' message was shown first and then edited with the result
    (msg,) = msgs
    edits = [p for p, _ in stub.calls_to("editMessageText") if int(p["message_id"]) == msg["message_id"]]
    assert edits and msg["text"].startswith("SP500 regimes (hmm)")
    assert main(["--config", str(cfg), "regime", "SP500", "--as-of", AS_OF, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert f"Consensus: {report['consensus']['label']} ({report['consensus']['family']}" in msg["text"]
    assert f"MT 1D: {report['timeframes']['MT']['label']}" in msg["text"]
    assert "US: unavailable" in msg["text"]
    assert len(msg["text"].splitlines()) <= 25


def test_stats_and_signal(desk, stub):
    text = _text(stub, f"/stats SP500 --as-of {AS_OF}", USER)
    assert text.startswith("SP500 statistics as of 2004-12-31")
    assert "MT 1D, 252 bars to 2004-12-31" in text and "ADF p" in text and "H 0." in text
    text = _text(stub, f"/signal sp500 --as-of {AS_OF}", USER)
    assert text.startswith("SP500 signal, data to 2004-12-31")
    assert "P(up over 5 bars)" in text and "Out of sample: AUC" in text
    text = _text(stub, "/regime NOSUCH", USER)
    assert text.startswith("/regime failed:") and "unknown symbol 'NOSUCH'" in text


def test_run_without_a_broker_for_a_user(desk, stub, env):
    settings, _ = env
    text = _text(stub, f"/run SP500 --as-of {AS_OF}", USER)
    assert text.startswith("Run ") and "completed (broker none)" in text
    run_id = text.split()[1].rstrip(":")
    with Journal(settings.home_dir / "journal.sqlite") as j:
        assert j.get_run(run_id).status == "completed"
    assert "SP500: " in text and "Thread run-" in text


def test_report_sends_the_pdf(desk, stub):
    from pypdf import PdfReader

    msgs = _ask(stub, f"/report SP500 --no-backtest --as-of {AS_OF}", USER, n=2)
    assert "pages" in msgs[0]["text"] and "no backtest" in msgs[0]["text"]
    sent = [p_f for p_f in stub.calls_to("sendDocument") if int(p_f[0]["chat_id"]) == USER]
    params, files = sent[-1]
    name, data = files["document"]
    assert name.endswith(".pdf") and "SP500" in params["caption"] and "2004-12-31" in params["caption"]
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) >= 3 and "SP500" in reader.pages[0].extract_text()


def test_halt_reduce_resume_risk_and_status(desk, stub):
    try:
        assert "Trading state HALTED: maintenance (by telegram:1001)" in _text(stub, "/halt maintenance", ADMIN)
        risk = _text(stub, "/risk", USER)
        assert "Trading state: HALTED" in risk and "ACTIVE->HALTED by telegram:1001" in risk
        assert "Trading: HALTED (maintenance)" in _text(stub, "/status", USER)
        assert "Trading state REDUCING" in _text(stub, "/reduce", ADMIN)
    finally:
        assert "Trading state ACTIVE" in _text(stub, "/resume all clear", ADMIN)
    status = _text(stub, "/status", USER)
    assert "Trading: ACTIVE" in status and "paper: equity" in status and "Next job: close-report" in status


def test_positions_orders_and_schedule(desk, stub):
    assert _text(stub, "/positions", USER).startswith("paper: equity")
    assert _text(stub, "/orders paper", USER).startswith("paper: ")
    assert _text(stub, "/orders --all", USER).startswith("paper: ")
    sched = _text(stub, "/schedule", USER)
    assert "close-report (report SP500)" in sched and "America/New_York" in sched and "UTC)" in sched
    assert "morning-scan (scan universe pair): disabled" in sched


def test_scan_answers_with_what_changed_and_shares_the_state_with_the_command_line(desk, stub, env, capsys,
                                                                                    monkeypatch):
    from agents.services.scan import ScanRecord
    from integrations import ScanStateStore

    settings, cfg = env
    universes = "sp500-20, factors, pair"
    assert "only answers its owners" in _text(stub, "/scan SP500", STRANGER)
    # bad input: one line, nothing scanned
    assert _text(stub, "/scan SP$500", USER) == (
        "/scan failed: 'SP$500' is not a symbol (letters, digits and . - / ^ = &, at most 20); "
        f"or name one universe: {universes}")
    many = " ".join(f"S{i}" for i in range(21))
    assert _text(stub, f"/scan {many}", USER) == f"/scan failed: at most 20 symbols, not 21; or name one universe: {universes}"
    lone = _text(stub, "/scan tech", USER)
    assert lone.startswith(f"/scan failed: 'TECH' is not a universe ({universes}) and scanning it as a symbol failed: "
                           "unknown symbol 'TECH'") and "\n" not in lone
    with ScanStateStore(settings.paths.scan_state) as state:
        assert state.load("builtin") == {}  # failures are not stored
    # a configured universe, named in any case: the first scan of both symbols
    (msg,) = _ask(stub, "/scan PAIR", USER)
    head, first = msg["text"].splitlines()
    assert head.startswith("pair: 2 symbols scanned in ") and head.endswith(" s, 0 failed")
    assert first == "First scan: NASDAQ, SP500"
    assert [p["text"] for p, _ in stub.calls_to("editMessageText") if int(p["message_id"]) == msg["message_id"]]
    with ScanStateStore(settings.paths.scan_state) as state:
        saved = state.load("builtin")
    assert set(saved) == {"SP500", "NASDAQ"}
    # symbols: SP500 compared with the scan above, the failure listed with its reason
    lines = _text(stub, "/scan sp500 NOPE", USER).splitlines()
    assert lines[0].startswith("SP500, NOPE: 2 symbols scanned in ") and lines[0].endswith(" s, 1 failed")
    assert lines[1:3] == ["No changes since the last scan.", "Failed:"]
    assert lines[3].startswith("  NOPE: unknown symbol 'NOPE' for the builtin source") and len(lines) == 4
    # the command line reads the same state: nothing changed since the bot's scan
    monkeypatch.setenv("REGIMEDESK_HOME", str(settings.home_dir))  # the bot's home (the variable wins over the file)
    assert main(["--config", str(cfg), "scan", "NASDAQ", "SP500", "--workers", "1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(r["symbol"], r["changes"]) for r in doc["records"]] == [("NASDAQ", []), ("SP500", [])]
    assert ScanRecord.from_dict(doc["records"][1]).same_result(ScanRecord.from_dict(saved["SP500"]))


# ------------------------------------------------------------------ approvals


def _approval_message(stub, chat: int, command: str) -> tuple[dict, str, str]:
    (msg,) = _ask(stub, command, chat, ADMIN)
    assert msg["text"].startswith("Approval needed"), msg["text"]
    (buttons,) = msg["reply_markup"]["inline_keyboard"]
    assert [b["text"] for b in buttons] == ["Approve", "Reject"]
    approve, reject = (b["callback_data"] for b in buttons)
    assert len(approve.encode()) <= 64
    return msg, approve, reject


def _edited(stub, chat: int, message_id: int, marker: str) -> dict:
    """Wait for the edit that puts the outcome under ``marker`` ('Approved by', ...) and return the
    message as that edit left it. (The prompt itself already ends with 'Thread ...', so checks on
    the message's current text can pass before the press was handled at all.)"""
    def done():
        return next((m for m in stub.edits(chat, message_id)
                     if marker in m["text"] and "Thread" in m["text"].split(marker, 1)[1]), None)

    return stub.wait_for(done)


def _press(stub, data: str, chat: int, message_id: int, user: int) -> str:
    start = len(stub.calls_to("answerCallbackQuery"))
    stub.push_callback(data, chat, message_id, user)
    answers = stub.wait_for(lambda: (a := stub.calls_to("answerCallbackQuery")[start:]) and a)
    return answers[0][0].get("text", "")


def test_approve_button_resumes_the_run_and_sends_the_order(desk, stub, env):
    settings, _ = env
    msg, approve, reject = _approval_message(stub, GROUP, f"/run SP500 --approve --broker paper --as-of {AS_OF}")
    thread = approve.split(":")[1]
    assert "gate approve" in msg["text"] and "BUY" in msg["text"] and f"Thread {thread}" in msg["text"]
    orders_before = len(_paper_orders(settings))

    # a user (not an admin), a stranger and a forged button change nothing
    assert "only an admin" in _press(stub, approve, GROUP, msg["message_id"], USER)
    assert "may not use this bot" in _press(stub, approve, GROUP, msg["message_id"], STRANGER)
    forged = f"ap:{thread}:0123456789abcdef:y"
    assert "not valid" in _press(stub, forged, GROUP, msg["message_id"], ADMIN)
    assert "not valid" in _press(stub, "something-else", GROUP, msg["message_id"], ADMIN)
    assert len(_paper_orders(settings)) == orders_before

    assert "Approved" in _press(stub, approve, GROUP, msg["message_id"], ADMIN)
    final = _edited(stub, GROUP, msg["message_id"], "Approved by")
    assert f"Approved by telegram:{ADMIN}" in final["text"] and "completed (broker paper)" in final["text"]
    assert "reply_markup" not in final  # buttons gone
    with Journal(settings.home_dir / "journal.sqlite") as j:
        (run,) = [r for r in j.list_runs(200) if r.thread_id == thread]
        assert run.status == "completed"
        assert any(o["status"] == "filled" for o in j.show_run(run.run_id)["orders"])
    orders = _paper_orders(settings)
    assert len(orders) == orders_before + 1 and orders[-1].symbol == "SP500" and orders[-1].status == "filled"

    # the second press (the other button) is refused and nothing runs
    assert "already answered" in _press(stub, reject, GROUP, msg["message_id"], ADMIN)
    # even with a fresh nonce (as if the bot's state were lost), Runner.resume refuses a second answer
    nonce = desk.store.issue(thread, GROUP)
    _press(stub, f"ap:{thread}:{nonce}:n", GROUP, msg["message_id"], ADMIN)
    refused = stub.wait_for(lambda: (m := stub.message(GROUP, msg["message_id"])) and "Refused" in m["text"] and m)
    assert "already finished" in refused["text"]
    assert len(_paper_orders(settings)) == orders_before + 1


def test_reject_button_sends_nothing(desk, stub, env):
    settings, _ = env
    msg, approve, reject = _approval_message(stub, ADMIN, f"/run SP500 --approve --broker paper --as-of {AS_OF}")
    thread = reject.split(":")[1]
    orders_before = len(_paper_orders(settings))
    assert "Rejected" in _press(stub, reject, ADMIN, msg["message_id"], ADMIN)
    final = _edited(stub, ADMIN, msg["message_id"], "Rejected by")
    assert "rejected by a person: nothing sent" in final["text"] and f"Rejected by telegram:{ADMIN}" in final["text"]
    assert len(_paper_orders(settings)) == orders_before
    with Journal(settings.home_dir / "journal.sqlite") as j:
        (run,) = [r for r in j.list_runs(200) if r.thread_id == thread]
        assert run.status == "completed"
    assert "already answered" in _press(stub, approve, ADMIN, msg["message_id"], ADMIN)


def _risk_state(settings) -> tuple[str, str | None]:
    from agents.services.risk import RiskStateStore

    store = RiskStateStore(settings.home_dir / "risk.sqlite")
    try:
        st = store.load()
        return st.trading_state, st.reason
    finally:
        store.close()


def test_flatten_needs_an_admin_and_a_confirmation(desk, stub, env):
    from integrations.brokers import OrderRequest, PaperBroker

    settings, _ = env
    settings.home_dir.mkdir(parents=True, exist_ok=True)
    with PaperBroker(settings.home_dir / "paper_broker.sqlite") as b:
        # a short (needs no cash; earlier tests may have spent it) and a resting sell far above the market
        assert b.submit(OrderRequest("tg-short", "NASDAQ", "sell", 2, reference_price=2000.0)).status == "filled"
        assert b.submit(OrderRequest("tg-rest", "NASDAQ", "sell", 1, order_type="limit", limit_price=1e5,
                                     reference_price=2000.0)).status == "accepted"
    try:
        text = _text(stub, "/flatten", USER)
        assert "needs an admin" in text and "nothing was run" in text
        (msg,) = _ask(stub, "/flatten paper drill", GROUP, ADMIN)
        assert msg["text"].startswith("Flatten paper? Approve will:"), msg["text"]
        assert "BUY 2 NASDAQ (short 2)" in msg["text"] and "SELL 1 NASDAQ (accepted)" in msg["text"], msg["text"]
        (buttons,) = msg["reply_markup"]["inline_keyboard"]
        confirm, cancel = (b["callback_data"] for b in buttons)
        assert confirm.split(":")[1].startswith("flatten-") and len(confirm.encode()) <= 64
        assert _risk_state(settings)[0] == "ACTIVE"  # asking changes nothing
        with PaperBroker(settings.home_dir / "paper_broker.sqlite") as b:
            assert "tg-rest" in {o.client_order_id for o in b.open_orders()}

        assert "only an admin" in _press(stub, confirm, GROUP, msg["message_id"], USER)
        assert "may not use this bot" in _press(stub, confirm, GROUP, msg["message_id"], STRANGER)
        assert _risk_state(settings)[0] == "ACTIVE"
        assert "Approved" in _press(stub, confirm, GROUP, msg["message_id"], ADMIN)
        final = stub.wait_for(lambda: next((m for m in stub.edits(GROUP, msg["message_id"])
                                            if "Trading state HALTED" in m["text"]), None))
        assert f"Approved by telegram:{ADMIN}" in final["text"] and "Flatten paper: done" in final["text"]
        assert "BUY 2 NASDAQ: filled" in final["text"] and "reply_markup" not in final
        assert f"drill (by telegram:{ADMIN})" in final["text"]
        assert _risk_state(settings) == ("HALTED", "drill")
        with PaperBroker(settings.home_dir / "paper_broker.sqlite") as b:
            assert b.positions() == {} and b.open_orders() == []
            n_orders = len(b.orders())
        # the other button of the same prompt is refused and nothing runs again
        assert "already answered" in _press(stub, cancel, GROUP, msg["message_id"], ADMIN)

        # Reject does nothing
        assert "Trading state ACTIVE" in _text(stub, "/resume", ADMIN)
        (msg2,) = _ask(stub, "/flatten", ADMIN, ADMIN)
        assert "close 0 position(s)" in msg2["text"]
        (buttons,) = msg2["reply_markup"]["inline_keyboard"]
        assert "Rejected" in _press(stub, buttons[1]["callback_data"], ADMIN, msg2["message_id"], ADMIN)
        stub.wait_for(lambda: any("Flatten cancelled: nothing was done." in m["text"]
                                  for m in stub.edits(ADMIN, msg2["message_id"])))
        assert _risk_state(settings)[0] == "ACTIVE"
        with PaperBroker(settings.home_dir / "paper_broker.sqlite") as b:
            assert len(b.orders()) == n_orders
    finally:
        assert "Trading state ACTIVE" in _text(stub, "/resume", ADMIN)


# ------------------------------------------------------------------ the plumbing on its own


@pytest.fixture(scope="module")
def plain_stub():
    srv = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    srv.start()
    yield BotApiStub(srv, poll_wait=0.2)
    srv.clear()
    srv.stop()


def test_long_commands_do_not_block_the_bot(plain_stub, tmp_path):
    release = threading.Event()
    started = threading.Event()

    def slow(inv: Invocation) -> CommandReply:
        started.set()
        assert release.wait(60)
        return CommandReply("slow done")

    specs = [CommandSpec("slow", slow, "/slow", "blocks", long=True),
             CommandSpec("fast", lambda inv: "fast done", "/fast", "answers at once")]
    store = BotStateStore(tmp_path / "state.sqlite")
    bot = CommandBot(TOKEN, specs, AccessPolicy(frozenset({1}), frozenset({1})), store,
                     base_url=plain_stub.base_url, base_file_url=plain_stub.base_file_url, workers=2)
    running = _Running(bot)
    try:
        plain_stub.push_message("/slow", 1)
        assert started.wait(30)
        working = plain_stub.wait_for(lambda: plain_stub.messages(1))
        assert working[0]["text"] == "Working on /slow..."
        plain_stub.push_message("/fast", 1)
        plain_stub.wait_for(lambda: any(m["text"] == "fast done" for m in plain_stub.messages(1)))
        assert plain_stub.messages(1)[0]["text"] == "Working on /slow..."  # still working
        release.set()
        plain_stub.wait_for(lambda: plain_stub.messages(1)[0]["text"] == "slow done")
    finally:
        release.set()
        running.stop()
        store.close()


def test_rate_limit_per_chat(plain_stub, tmp_path):
    runs = []
    specs = [CommandSpec("go", lambda inv: runs.append(inv.chat_id) or "done", "/go", "counts")]
    store = BotStateStore(tmp_path / "state.sqlite")
    bot = CommandBot(TOKEN, specs, AccessPolicy(frozenset({5, 6}), frozenset({5, 6})), store,
                     base_url=plain_stub.base_url, base_file_url=plain_stub.base_file_url,
                     rate_limit=3, rate_window=600)
    running = _Running(bot)
    try:
        for _ in range(5):
            plain_stub.push_message("/go", 5)
        msgs = plain_stub.wait_for(lambda: (m := plain_stub.messages(5)) and len(m) >= 5 and m)
        texts = [m["text"] for m in msgs]
        assert texts.count("done") == 3 and runs == [5, 5, 5]
        assert sum(t.startswith("Too many commands: at most 3 per 600 s") and "nothing was run" in t
                   for t in texts) == 2
        plain_stub.push_message("/go", 6)  # another chat is not affected
        plain_stub.wait_for(lambda: plain_stub.messages(6))
        assert plain_stub.messages(6)[0]["text"] == "done"
    finally:
        running.stop()
        store.close()


def test_access_policy_rules():
    p = AccessPolicy(frozenset({10, -5}), frozenset({10, 20}), frozenset({30}))
    assert p.allowed(10, 10) and p.allowed(-5, 20) and p.allowed(-5, 30)
    assert not p.allowed(20, 20)          # user allowed, chat not
    assert not p.allowed(-5, 99)          # chat allowed, user not
    assert not p.allowed(None, 10) and not p.allowed(10, None)
    assert p.is_admin(-5, 30) and not p.is_admin(-5, 20) and not p.is_admin(99, 30)
    empty = AccessPolicy()
    assert empty.empty and not empty.allowed(1, 1)
    assert AccessPolicy(frozenset({1}), frozenset(), frozenset()).empty
    with pytest.raises(ValueError, match="integers"):
        AccessPolicy(frozenset({"1"}))


def test_rate_limiter_sliding_window():
    now = [0.0]
    rl = RateLimiter(2, 10.0, clock=lambda: now[0])
    assert rl.hit("a") == 0 and rl.hit("a") == 0
    assert rl.hit("a") == pytest.approx(10.0)
    assert rl.hit("b") == 0
    now[0] = 10.5
    assert rl.hit("a") == 0
    with pytest.raises(ValueError, match="limit"):
        RateLimiter(0, 1)
    with pytest.raises(ValueError, match="window"):
        RateLimiter(1, 0)


def test_argument_parsing():
    p = parse_args(["SP500", "--broker=paper", "--approve", "nasdaq", "--as-of", "2008-01-02"],
                   flags=("approve",), options={"broker": ("none", "paper"), "as-of": None})
    assert p.positional == ("SP500", "nasdaq") and p.flags == {"approve"}
    assert p.options == {"broker": "paper", "as-of": "2008-01-02"}
    assert parse_symbols(["sp500", "SP500", "BTC/USD"]) == ("SP500", "BTC/USD")
    for args, message in ((["--broker"], "needs a value"), (["--broker", "x"], "must be one of"),
                          (["--broker", "paper", "--broker", "none"], "given twice"), (["--nope"], "unknown option")):
        with pytest.raises(ValueError, match=message):
            parse_args(args, options={"broker": ("none", "paper")})
    with pytest.raises(ValueError, match="not a symbol"):
        parse_symbols(["DROP;TABLE"])
    with pytest.raises(ValueError, match="at most 2"):
        parse_symbols(["A", "B", "C"], at_most=2)
    with pytest.raises(ValueError, match="give a symbol"):
        parse_symbols([])
    with pytest.raises(ValueError, match="command name"):
        CommandSpec("Bad-Name", lambda inv: "", "/x", "x")


def test_approval_nonces_are_one_shot_and_survive_restarts(tmp_path):
    now = [1000.0]
    path = tmp_path / "state.sqlite"
    store = BotStateStore(path, clock=lambda: now[0])
    a = store.issue("run-abc", 7)
    b = store.issue("run-abc", 7)
    assert store.consume(a, "run-abc", 8, 1, True, ttl=60).reason == "other chat"
    assert store.consume(a, "run-xyz", 7, 1, True, ttl=60).reason == "unknown"
    assert store.consume("0" * 16, "run-abc", 7, 1, True, ttl=60).reason == "unknown"
    assert store.consume(a, "run-abc", 7, 1, True, ttl=60).ok
    assert store.consume(a, "run-abc", 7, 1, False, ttl=60).reason == "used"
    assert store.consume(b, "run-abc", 7, 1, False, ttl=60).reason == "used"  # same run, other prompt
    c = store.issue("run-def", 7)
    store.close()
    again = BotStateStore(path, clock=lambda: now[0] + 120)
    assert again.consume(a, "run-abc", 7, 1, True, ttl=60).reason == "used"     # after a restart
    assert again.consume(c, "run-def", 7, 1, True, ttl=60).reason == "expired"
    assert again.mark_notified("run:1") and not again.mark_notified("run:1") and again.was_notified("run:1")
    with pytest.raises(ValueError, match="thread_id"):
        again.issue("bad thread:id", 7)
    again.close()


def test_token_is_redacted_from_logs():
    assert redact_token(f"POST https://api.telegram.org/bot{TOKEN}/getMe failed", TOKEN) == (
        "POST https://api.telegram.org/bot***/getMe failed")
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "url %s", (f"/bot{TOKEN}/x",), None)
    assert TokenRedactingFilter(TOKEN).filter(record)
    assert TOKEN not in record.getMessage() and "***" in record.getMessage()
    bot = CommandBot(TOKEN, [], AccessPolicy(), BotStateStore(":memory:"), base_url="http://127.0.0.1:9/bot")
    assert TOKEN not in repr(bot)
    bot.close()


# ------------------------------------------------------------------ alerts


class _Sender:
    def __init__(self):
        self.sent: list[tuple[list[int], str]] = []

    def send_message(self, chats, text):
        self.sent.append((list(chats), text))
        return [Delivery(c, True, 1) for c in chats]


def _journal_run(j: Journal, run_id: str, label: str, *, verdicts=(), events=(), orders=(), fills=()):
    j.start_run(run_id, f"run-{run_id}", ["SP500"], {"symbols": ["SP500"], "broker": "paper"})
    j.record_agent_output(run_id, "regime", None, {"regime": {"SP500": {"consensus": {
        "label": label, "family": "risk_off" if label == "bear" else "risk_on", "probability": 0.93}}}})
    j.record_agent_output(run_id, "risk_gate", None, {"risk_gate": {"events": list(events)}})
    for v in verdicts:
        j.record_verdict(run_id, "SP500", None, v[0], v[1], {"symbol": "SP500", "side": "buy", "qty": 40.0})
    for o in orders:
        j.record_order(run_id, o, "SP500", "buy", 10, "filled", "paper", {})
    for f in fills:
        j.record_fill(run_id, f[0], f[1], f[2], "2024-01-02T15:00:00+00:00")
    j.finish_run(run_id, "completed")


def test_alerts_compare_with_the_previous_run(tmp_path):
    settings = load_settings(env={"REGIMEDESK_HOME": str(tmp_path / "home")})
    settings = settings.model_copy(update={"telegram": settings.telegram.model_copy(update={"chat_ids": [77]})})
    settings.home_dir.mkdir(parents=True, exist_ok=True)
    store = BotStateStore(settings.home_dir / "telegram_bot.sqlite", clock=lambda: 0.0)
    with Journal(settings.home_dir / "journal.sqlite") as j:
        _journal_run(j, "r1", "bull")
        assert run_alerts(j, "r1") == []  # nothing before it, nothing happened
        _journal_run(j, "r2", "bear", verdicts=[("reject", ["max_order_qty"]), ("approve", [])],
                     events=["HALTED: daily loss 3.1% beyond 3.0%"], orders=["c1", "c2"],
                     fills=[("c1", 4, 100.0), ("c1", 6, 110.0)])
        lines = run_alerts(j, "r2")
    assert lines[0] == "SP500 regime changed: bull -> bear (risk_off, p 0.93; previous run r1)"
    assert "Gate rejected SP500 BUY 40: max_order_qty" in lines
    assert "Circuit breaker: HALTED: daily loss 3.1% beyond 3.0%" in lines
    assert "Filled BUY 10 SP500 (paper): 10 @ 106.00" in lines
    assert "Order sent BUY 10 SP500 (paper): filled" in lines
    sender = _Sender()
    secrets = Secrets.from_env({"TELEGRAM_BOT_TOKEN": TOKEN})
    assert send_run_alerts(settings, secrets, "r1", sender=sender) == []
    watcher = AlertWatcher(settings, secrets, store, sender, interval=60)
    assert watcher.scan_once() == ["r1", "r2"]
    assert watcher.scan_once() == []  # each run once
    ((chats, text),) = sender.sent  # r1 had nothing to say
    assert chats == [77] and text.startswith("RegimeDesk alert, run r2 (SP500):")
    assert "- SP500 regime changed: bull -> bear" in text
    store.close()


def test_alert_watcher_sends_through_telegram(plain_stub, tmp_path):
    from integrations import TelegramSender

    settings = load_settings(env={"REGIMEDESK_HOME": str(tmp_path / "home")})
    settings = settings.model_copy(update={"telegram": settings.telegram.model_copy(update={"chat_ids": [88]})})
    settings.home_dir.mkdir(parents=True, exist_ok=True)
    store = BotStateStore(settings.home_dir / "telegram_bot.sqlite", clock=lambda: 0.0)
    with Journal(settings.home_dir / "journal.sqlite") as j:
        _journal_run(j, "q1", "calm")
        _journal_run(j, "q2", "high_volatility")
    sender = TelegramSender(TOKEN, base_url=plain_stub.base_url, base_file_url=plain_stub.base_file_url)
    watcher = AlertWatcher(settings, Secrets.from_env({"TELEGRAM_BOT_TOKEN": TOKEN}), store, sender, interval=0.05)
    watcher.start()
    try:
        msgs = plain_stub.wait_for(lambda: plain_stub.messages(88))
    finally:
        watcher.stop()
        store.close()
    assert "calm -> high_volatility" in msgs[0]["text"] and TOKEN not in msgs[0]["text"]


# ------------------------------------------------------------------ without Telegram, and the CLI


def test_commands_are_plain_functions(tmp_path):
    settings = load_settings(env={"REGIMEDESK_HOME": str(tmp_path / "home")})
    cmds = DeskCommands(settings, Secrets.from_env({}), clock=lambda: datetime(2026, 11, 20, 12, tzinfo=UTC))
    user = Invocation("halt", (), 5, 5, is_admin=False)
    with pytest.raises(ValueError, match="admin"):
        cmds.halt(user)
    with pytest.raises(ValueError, match="admin"):
        cmds.run(Invocation("run", ("SP500", "--broker", "paper"), 5, 5, is_admin=False))
    assert cmds.run_needs_admin(["SP500", "--approve"]) and not cmds.run_needs_admin(["SP500"])
    assert "No scheduled jobs" in cmds.schedule(Invocation("schedule", (), 5, 5, False)).text
    admin = Invocation("halt", ("test",), 5, 5, is_admin=True)
    assert cmds.halt(admin).text.startswith("Trading state HALTED: test (by telegram:5)")
    assert "Trading state: HALTED" in cmds.risk(Invocation("risk", (), 5, 5, False)).text
    assert cmds.resume(admin).text.startswith("Trading state ACTIVE")


def test_flatten_confirmation_is_one_shot_same_chat_and_expires(tmp_path):
    from datetime import timedelta

    from agents.bot import FLATTEN_CONFIRM_SECONDS

    settings = load_settings(env={"REGIMEDESK_HOME": str(tmp_path / "home")})
    now = [datetime(2026, 11, 20, 12, tzinfo=UTC)]
    cmds = DeskCommands(settings, Secrets.from_env({}), clock=lambda: now[0])
    admin = Invocation("flatten", ("paper",), 5, 5, is_admin=True)
    with pytest.raises(ValueError, match="needs an admin"):
        cmds.flatten(Invocation("flatten", (), 5, 5, is_admin=False))
    token = cmds.flatten(admin).approval
    with pytest.raises(ValueError, match="only an admin"):
        cmds.approve(token, True, Invocation("approve", (), 5, 6, is_admin=False))
    with pytest.raises(ValueError, match="another chat"):
        cmds.approve(token, True, Invocation("approve", (), 9, 5, is_admin=True))
    with pytest.raises(ValueError, match="unknown or already answered"):  # that attempt used it up
        cmds.approve(token, True, admin)
    stale = cmds.flatten(admin).approval
    now[0] += timedelta(seconds=FLATTEN_CONFIRM_SECONDS + 1)
    with pytest.raises(ValueError, match="expired"):
        cmds.approve(stale, True, admin)
    fresh = cmds.flatten(admin).approval
    assert cmds.approve(fresh, False, admin).text == "Flatten cancelled: nothing was done."
    with pytest.raises(ValueError, match="unknown or already answered"):
        cmds.approve(fresh, True, admin)
    assert "Trading state: ACTIVE" in cmds.risk(Invocation("risk", (), 5, 5, False)).text
    ok = cmds.flatten(admin).approval
    assert "Flatten paper: done" in cmds.approve(ok, True, admin).text
    assert "Trading state: HALTED" in cmds.risk(Invocation("risk", (), 5, 5, False)).text


def test_cli_bot_needs_a_token_and_warns_about_empty_lists(capsys, monkeypatch):
    assert main(["bot"]) == 1
    assert "TELEGRAM_BOT_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    assert main(["bot", "--check"]) == 0
    out = capsys.readouterr()
    assert "obeys NOBODY" in out.err and "chats none" in out.out and TOKEN not in out.out + out.err
    with pytest.raises(SystemExit) as exc:
        main(["bot", "--help"])
    assert exc.value.code == 0
    assert "TELEGRAM_BOT_TOKEN" in capsys.readouterr().out


def test_regimedesk_bot_polls_answers_and_stops_on_sigterm(plain_stub, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    cfg = tmp_path / "bot.toml"
    cfg.write_text(f"[telegram]\nbase_url = '{plain_stub.base_url}'\nbase_file_url = '{plain_stub.base_file_url}'\n"
                   "chat_ids = [31]\nuser_ids = [31]\nalert_poll_seconds = 0\n")
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN, "REGIMEDESK_CONFIG": str(cfg)}
    proc = subprocess.Popen([sys.executable, "-m", "agents.cli", "bot"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        plain_stub.push_message("/start", 31)
        plain_stub.push_message("/start", 32)  # a stranger
        plain_stub.wait_for(lambda: plain_stub.messages(31) and plain_stub.messages(32), timeout=120)
        assert "You are a user" in plain_stub.messages(31)[0]["text"]
        assert "only answers its owners" in plain_stub.messages(32)[0]["text"]
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "RegimeDesk bot polling 127.0.0.1" in err and "bot stopped" in err
    assert "refused /start from chat 32 user 32" in err
    assert TOKEN not in err and TOKEN.split(":")[1] not in err
