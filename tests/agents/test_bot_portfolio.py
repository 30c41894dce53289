"""The bot's /portfolio and /stress (issue 25): the real python-telegram-bot Application
polling the loopback Bot API stub, as in test_bot.py.

Truths: the weights printed are :func:`load_book`'s rounded as printed; the VaR and ES are
the lower empirical 1% quantile of the book's last 500 daily returns and the mean beyond it,
recomputed here with numpy; a stress P&L is ``sum_i w_i (P_i(end) / P_i(base) - 1)`` from the
builtin closes.
"""

from __future__ import annotations

import asyncio
import threading
import warnings

import numpy as np
import pytest
from pytest_httpserver import HTTPServer

from agents.config import Secrets, load_settings
from agents.services.portfolio_risk import load_book, universe_stress, universe_var
from analytics import DataQualityWarning
from tests.telegram_stub import TOKEN, BotApiStub

warnings.filterwarnings("ignore", category=DataQualityWarning)

ADMIN = 1001
USER = 2002
STRANGER = 4004
AS_OF = "2019-12-31"
FIVE = ["KO", "JNJ", "XOM", "AAPL", "BAC"]

CONFIG = """home = '{home}'
[portfolio]
method = "hrp"
[portfolio.universes]
five = {five}
[telegram]
base_url = '{base_url}'
base_file_url = '{base_file_url}'
chat_ids = [{ADMIN}, {USER}]
user_ids = [{USER}]
admin_ids = [{ADMIN}]
rate_limit = 1000
rate_window_seconds = 1.0
alert_poll_seconds = 0
"""


class _Running:
    """The application initialised, started and polling, on an event loop in its own thread."""

    def __init__(self, bot) -> None:
        self.bot = bot
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="bot-loop", daemon=True)
        self.thread.start()
        app = bot.application
        self.call(app.initialize())
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
def stub():
    srv = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    srv.start()
    yield BotApiStub(srv, poll_wait=0.2)
    srv.clear()
    srv.stop()


@pytest.fixture(scope="module")
def settings(tmp_path_factory, stub):
    root = tmp_path_factory.mktemp("bot_portfolio")
    cfg = root / "bot.toml"
    cfg.write_text(CONFIG.format(home=root / "home", five=repr(FIVE), base_url=stub.base_url,
                                 base_file_url=stub.base_file_url, ADMIN=ADMIN, USER=USER))
    return load_settings(cfg, env={})


@pytest.fixture(scope="module")
def desk(settings):
    from agents.bot import build_bot

    d = build_bot(settings, Secrets.from_env({"TELEGRAM_BOT_TOKEN": TOKEN}), sender=None)
    running = _Running(d.bot)
    yield d
    running.stop()
    d.store.close()


def _text(stub, text: str, chat: int, user: int | None = None) -> str:
    """Send ``text`` and return the final reply (not 'Working on...')."""
    start = len(stub.messages(chat))
    stub.push_message(text, chat, user)

    def ready():
        new = stub.messages(chat)[start:]
        if new and not any((m.get("text") or "").startswith("Working on") for m in new):
            return new
        return None

    return stub.wait_for(ready, 120)[-1]["text"]


def _book(settings, universe: str, weights: str | None = None, as_of: str | None = None):
    return load_book(settings, Secrets.from_env({}), universe, weights, as_of=as_of)


def test_help_lists_both_commands(desk, stub):
    helptext = _text(stub, "/help", USER)
    assert "/portfolio [UNIVERSE] [erc|mv|hrp|invvol|equal] [--as-of DATE]" in helptext
    assert "/stress [UNIVERSE] [ltcm|dotcom|gfc|euro|covid|all] [--as-of DATE]" in helptext
    assert "/portfolio [UNIVERSE] [erc|mv|hrp|invvol|equal] [--as-of DATE] [admin]" not in helptext


def test_portfolio_of_a_configured_universe_for_a_user(desk, stub, settings):
    text = _text(stub, f"/portfolio five --as-of {AS_OF}", USER)
    lines = text.splitlines()
    assert lines[0] == f"five portfolio (hrp), 5 assets, as of {AS_OF}"  # the configured default method
    assert lines[1] == "Regime family risk_on (assumed, no regime fit): caps gross 1, per asset 0.25"
    book, _ = _book(settings, "five", as_of=AS_OF)
    w = book.weights
    assert book.weights_method == "hrp" and len(set(np.round(w, 4))) > 1  # not a trivial book
    ranked = sorted(w.items(), key=lambda kv: (-kv[1], kv[0]))
    assert lines[3:8] == [f"  {a} {v:.1%}" for a, v in ranked]
    assert lines[2] == f"Weights (invested {w.sum():.1%}, cash {1 - w.sum():.1%}):"
    # 99% one-day historical VaR and ES, by hand: the lower empirical quantile of the last 500 returns
    r = book.aligned.pct_change().iloc[1:].iloc[-500:].to_numpy() @ w.reindex(book.aligned.columns).to_numpy()
    q = np.quantile(r, 0.01, method="lower")
    var, es = -q, -r[r <= q].mean()
    assert es > var > 0
    start = book.aligned.index[-500].date()
    assert lines[8] == f"VaR 99% 1-day (historical, 500 days from {start}): {var:.2%}, ES {es:.2%}"
    rows = universe_var(book, ["historical"], level=0.99)["results"]["historical"]["assets"]
    top = sorted(rows, key=lambda a: -a["component_var"])[:3]
    assert lines[9] == "Largest VaR contributors: " + ", ".join(
        f"{a['symbol']} {a['component_var']:.2%} ({a['share']:.0%})" for a in top)


def test_portfolio_default_universe_lists_ten_and_sums_the_rest(desk, stub, settings):
    text = _text(stub, f"/portfolio erc --as-of {AS_OF}", ADMIN)
    lines = text.splitlines()
    assert lines[0] == f"sp500-20 portfolio (erc), 20 assets, as of {AS_OF}"
    book, _ = _book(settings, "sp500-20", "erc", as_of=AS_OF)
    ranked = sorted(book.weights.items(), key=lambda kv: (-kv[1], kv[0]))
    assert lines[3:13] == [f"  {a} {v:.1%}" for a, v in ranked[:10]]
    assert lines[13] == f"  10 others {sum(v for _, v in ranked[10:]):.1%}"
    assert lines[14].startswith("VaR 99% 1-day (historical, 500 days")
    assert len(lines) <= 25


def test_stress_gfc_pnl_equals_the_service_and_the_closes(desk, stub, settings):
    text = _text(stub, f"/stress five gfc --as-of {AS_OF}", USER)
    lines = text.splitlines()
    assert lines[0].startswith(f"five stress, hrp weights as of {AS_OF}")
    book, store = _book(settings, "five", as_of=AS_OF)
    sc = universe_stress(settings, book, store, ["gfc"], {})["scenarios"]["gfc"]
    closes = book.closes.copy()
    closes.index = closes.index.tz_localize(None).normalize()
    base, end = closes.loc[sc["base_date"]], closes.loc[sc["end_date"]]
    pnl = float(sum(book.weights[a] * (end[a] / base[a] - 1.0) for a in book.weights.index))
    assert sc["base_date"] == "2007-10-08" and abs(pnl - sc["pnl"]) < 1e-12 and pnl < -0.1
    worst = sc["drivers"][0]
    assert lines[1:] == [f"gfc: P&L {pnl:+.2%}, worst day {sc['worst_date']} {sc['worst_return']:+.2%}, "
                         f"coverage 100%; worst {worst['symbol']} {worst['pnl']:+.2%}"]


def test_stress_all_has_one_line_per_scenario(desk, stub):
    lines = _text(stub, "/stress five", USER).splitlines()
    assert [line.split(":")[0] for line in lines[1:]] == ["ltcm", "dotcom", "gfc", "euro", "covid"]


@pytest.mark.parametrize(("command", "reply"), [
    ("/portfolio nosuch", "/portfolio failed: unknown universe 'nosuch': use one of sp500-20, factors, five"),
    ("/portfolio /etc/passwd", "/portfolio failed: unknown universe '/etc/passwd': use one of sp500-20, factors, "
                               "five"),
    ("/portfolio five magic", "/portfolio failed: unknown method 'magic': use one of erc, mv, hrp, invvol, equal"),
    ("/stress five 2020", "/stress failed: unknown scenario '2020': use one of ltcm, dotcom, gfc, euro, covid, all"),
])
def test_unknown_names_get_one_line_naming_the_choices(desk, stub, command, reply):
    assert _text(stub, command, USER) == reply


def test_a_stranger_gets_nothing(desk, stub):
    text = _text(stub, "/portfolio five", STRANGER)
    assert "only answers its owners" in text
    texts = [m.get("text") or "" for m in stub.messages(STRANGER)]
    assert not any("Working on" in t or "VaR" in t or "weights" in t.lower() for t in texts)
