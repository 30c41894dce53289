"""The kill switch always wins (issue 21, part 1).

* an approval given after a halt, a reduce, a silent feed or too late sends nothing: execution
  runs the gate again at the moment of sending;
* a gate evaluation never undoes a person's halt, even when the two race in two processes;
* one ``regimedesk live`` process per session;
* the NYSE calendar (holidays, half days) for the feed-silence deadline and market hours.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest

from agents.cli import main
from agents.config import Secrets, load_settings
from agents.runtime.live import LiveLoop, LiveSpec, SessionBusyError, SessionLock, silence_deadline
from agents.runtime.runner import Runner
from agents.services.context import RunRequest
from agents.services.risk import (
    STALE_APPROVAL,
    RiskStateStore,
    _nyse_open,
    nyse_session,
    recheck_approved,
)
from analytics import DataQualityWarning
from analytics.risk_gate import (
    MarketSnapshot,
    Portfolio,
    ProposedOrder,
    RiskLimits,
    RiskState,
    evaluate,
)
from integrations import Journal, LiveStateStore
from integrations.brokers import PaperBroker

warnings.filterwarnings("ignore", category=DataQualityWarning)

FAST = "[ml]\nrefit_every = 252\n[decision]\npolicy = \"regime\"\n"
AS_OF = "2006-12-29"  # a risk-on, calm regime: the policy wants to be invested
NY = "America/New_York"
REPO = Path(__file__).resolve().parents[2]


def _config(tmp_path, monkeypatch, extra: str = ""):
    path = tmp_path / "fast.toml"
    path.write_text(FAST + extra)
    monkeypatch.setenv("REGIMEDESK_CONFIG", str(path))
    return load_settings(path)


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    return _config(tmp_path, monkeypatch)


def _start_waiting(capsys) -> dict:
    """``regimedesk run SP500 --broker paper --approve``: the run waits with an approved order."""
    capsys.readouterr()
    assert main(["run", "SP500", "--as-of", AS_OF, "--broker", "paper", "--approve", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["status"] == "interrupted"
    verdict = doc["risk_gate"]["symbols"]["SP500"][0]
    assert verdict["action"] in ("approve", "trim") and verdict["qty"] > 0
    return doc


def _approve(capsys, thread: str) -> dict:
    capsys.readouterr()
    assert main(["approve", thread, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _broker_orders(settings) -> list:
    with PaperBroker(settings.home_dir / "paper_broker.sqlite") as b:
        return b.orders()


def _execution_verdicts(settings, run_id: str) -> list[dict]:
    with Journal(settings.home_dir / "journal.sqlite") as j:
        rows = j._query("SELECT verdict, reasons, order_json FROM verdicts WHERE run_id = ? ORDER BY id", (run_id,))
    return [{"verdict": r["verdict"], "reasons": json.loads(r["reasons"]), "order": json.loads(r["order_json"])}
            for r in rows if json.loads(r["order_json"]).get("stage") == "execution"]


# ---------------------------------------------------------------- the check at sending


def test_halt_before_the_approval_sends_nothing(cfg, capsys):
    waiting = _start_waiting(capsys)
    assert main(["risk", "halt", "--reason", "x"]) == 0
    done = _approve(capsys, waiting["thread_id"])
    assert done["status"] == "completed" and done["approval"]["approved"] is True
    assert done["execution"]["symbols"] == {}
    (rej,) = done["execution"]["rejected"]
    assert rej["reasons"] == ["halted"] and rej["order"]["symbol"] == "SP500"
    assert _broker_orders(cfg) == []  # never reached the broker
    (journaled,) = _execution_verdicts(cfg, done["run_id"])
    assert journaled["verdict"] == "reject" and journaled["reasons"] == ["halted"]
    assert "halted" in done["narratives"]["execution"]["_run"]["text"]


def test_reducing_before_the_approval_stops_a_buy(cfg, capsys):
    waiting = _start_waiting(capsys)
    assert main(["risk", "reduce", "--reason", "x"]) == 0
    done = _approve(capsys, waiting["thread_id"])
    assert [r["reasons"] for r in done["execution"]["rejected"]] == [["reducing_only"]]
    assert _broker_orders(cfg) == []


def test_silent_feed_before_the_approval_sends_nothing(cfg, capsys):
    waiting = _start_waiting(capsys)
    store = RiskStateStore(cfg.home_dir / "risk.sqlite")
    try:
        assert store.set_feed_silent(["SP500"], True, "no bar", "test-session") == ["SP500"]
    finally:
        store.close()
    done = _approve(capsys, waiting["thread_id"])
    assert [r["reasons"] for r in done["execution"]["rejected"]] == [["feed_silent"]]
    assert _broker_orders(cfg) == []


def test_an_approval_older_than_the_limit_sends_nothing(tmp_path, monkeypatch, capsys):
    settings = _config(tmp_path, monkeypatch, "[risk]\nmax_approval_age_seconds = 0.001\n")
    waiting = _start_waiting(capsys)  # a whole process step lies between gate and approval
    done = _approve(capsys, waiting["thread_id"])
    assert [r["reasons"] for r in done["execution"]["rejected"]] == [[STALE_APPROVAL]]
    assert _broker_orders(settings) == []


def test_a_timely_approval_sends_the_gated_order_once(cfg, capsys):
    waiting = _start_waiting(capsys)
    approved = waiting["risk_gate"]["symbols"]["SP500"][0]
    done = _approve(capsys, waiting["thread_id"])
    # the gate's own record of the order does not make the check at sending call it a duplicate
    assert done["execution"]["rejected"] == []
    (sent,) = done["execution"]["symbols"]["SP500"]
    assert sent["status"] == "filled" and sent["qty"] == approved["qty"]
    (order,) = _broker_orders(cfg)
    assert order.client_order_id == approved["order"]["client_order_id"]
    (journaled,) = _execution_verdicts(cfg, done["run_id"])
    assert journaled["verdict"] == "approve" and journaled["order"]["approved_qty"] == approved["qty"]
    store = RiskStateStore(cfg.home_dir / "risk.sqlite")
    try:  # counted once for the throttle and duplicate suppression
        assert [r.client_order_id for r in store.load().recent] == [order.client_order_id]
    finally:
        store.close()


def _recent_ids(settings) -> list:
    store = RiskStateStore(settings.home_dir / "risk.sqlite")
    try:
        return [r.client_order_id for r in store.load().recent]
    finally:
        store.close()


def test_an_order_stopped_at_sending_is_not_a_duplicate_of_itself_later(cfg, capsys):
    # Found by review: the halted order stayed in the gate's record of approved orders, so after
    # a resume the same order (same bar, same id) was refused as duplicate_order for an hour.
    waiting = _start_waiting(capsys)
    coid = waiting["risk_gate"]["symbols"]["SP500"][0]["order"]["client_order_id"]
    assert main(["risk", "halt", "--reason", "x"]) == 0
    assert _approve(capsys, waiting["thread_id"])["execution"]["rejected"]
    assert coid not in _recent_ids(cfg)  # never sent, so not "recently approved"
    assert main(["risk", "resume"]) == 0
    again = _start_waiting(capsys)  # the same bar: the same order, under the same id
    assert again["risk_gate"]["symbols"]["SP500"][0]["order"]["client_order_id"] == coid
    done = _approve(capsys, again["thread_id"])
    assert done["execution"]["symbols"]["SP500"][0]["status"] == "filled"
    assert [o.client_order_id for o in _broker_orders(cfg)] == [coid]


def test_a_stale_approval_is_forgotten_by_the_gate_too(tmp_path, monkeypatch, capsys):
    settings = _config(tmp_path, monkeypatch, "[risk]\nmax_approval_age_seconds = 0.001\n")
    waiting = _start_waiting(capsys)
    coid = waiting["risk_gate"]["symbols"]["SP500"][0]["order"]["client_order_id"]
    assert coid in _recent_ids(settings)
    _approve(capsys, waiting["thread_id"])
    assert coid not in _recent_ids(settings)


def test_resume_by_a_person_lets_later_approvals_through(cfg, capsys):
    waiting = _start_waiting(capsys)
    assert main(["risk", "halt", "--reason", "x"]) == 0
    assert main(["risk", "resume"]) == 0
    done = _approve(capsys, waiting["thread_id"])
    assert done["execution"]["symbols"]["SP500"][0]["status"] == "filled"


def _world(prices=None):
    prices = prices or {"SPY": 100.0}
    now = pd.Timestamp("2024-01-02 15:00", tz="UTC")
    market = MarketSnapshot(now=now, prices=prices, last_bar={s: now - pd.Timedelta(hours=1) for s in prices},
                            bar_seconds={s: 86400.0 for s in prices}, tradable={s: True for s in prices})
    return market, Portfolio(cash=100_000.0)


def test_recheck_never_grants_more_than_the_gate_approved(tmp_path):
    market, pf = _world()
    limits = RiskLimits(daily_loss_reduce=None, daily_loss_halt=None, max_drawdown_halt=None)
    order = ProposedOrder("c1", "SPY", "buy", 500.0, reference_price=100.0)
    first = evaluate([order], pf, market, limits, RiskState())
    assert first.verdicts[0].qty == 500.0
    store = RiskStateStore(tmp_path / "risk.sqlite")
    try:
        store.save(first.state)
        now = pd.Timestamp.now(tz="UTC")
        # the gate approved 120 of the 500 (say a limit that has since been raised): 120 at most
        (v,) = recheck_approved(store, [(order, 120.0)], pf, market, limits, checked_at=now.isoformat(),
                                now=now, max_age_seconds=60.0)
        assert (v.action, v.qty, v.reasons) == ("approve", 120.0, ())
        # tighter now: trimmed further, never loosened
        tight = RiskLimits(max_order_qty=50.0, daily_loss_reduce=None, daily_loss_halt=None,
                           max_drawdown_halt=None)
        (v,) = recheck_approved(store, [(order, 120.0)], pf, market, tight, checked_at=now.isoformat(),
                                now=now, max_age_seconds=60.0)
        assert (v.action, v.qty) == ("trim", 50.0)
        # the gate's record of an order that passes is kept as it was
        assert [r.client_order_id for r in store.load().recent] == ["c1"]
        # unreadable or missing approval time: too old
        for at in (None, "not a time"):
            (v,) = recheck_approved(store, [(order, 120.0)], pf, market, limits, checked_at=at, now=now,
                                    max_age_seconds=60.0)
            assert (v.action, v.reasons) == ("reject", (STALE_APPROVAL,))
        # an order stopped at sending is never sent: the record of it goes
        assert store.load().recent == ()
    finally:
        store.close()


# ---------------------------------------------------------------- the gate cannot undo a halt


def test_store_writes_from_the_gate_never_loosen_the_trading_state(tmp_path):
    store = RiskStateStore(tmp_path / "risk.sqlite")
    try:
        store.set_trading_state("HALTED", "a person", by="cli")
        kept = store.save(RiskState("ACTIVE"), by="gate")
        assert kept.trading_state == "HALTED" and kept.reason == "a person"
        assert store.load().trading_state == "HALTED"
        market, pf = _world()
        order = ProposedOrder("c1", "SPY", "buy", 1.0, reference_price=100.0)
        result = store.commit_gate(lambda st: evaluate([order], pf, market, RiskLimits(), RiskState("ACTIVE")))
        assert result.state.trading_state == "HALTED" and store.load().trading_state == "HALTED"
        assert [(e["from"], e["to"], e["by"]) for e in store.events()] == [("ACTIVE", "HALTED", "cli")]
        assert store.set_trading_state("ACTIVE", "a person again", by="cli").trading_state == "ACTIVE"
        assert store.save(RiskState("REDUCING", "breaker")).trading_state == "REDUCING"  # tightening is fine
    finally:
        store.close()


def _gate_process(path: str, loaded, halted, tries: int) -> None:
    """A gate evaluation that is slow between reading and writing the state."""
    store = RiskStateStore(path)
    market, pf = _world()
    order = ProposedOrder("race", "SPY", "buy", 1.0, reference_price=100.0)

    def slow_gate(st: RiskState):
        loaded.set()
        halted.wait(timeout=2.0)  # with the fix the halt cannot commit meanwhile: this times out
        return evaluate([order], pf, market, RiskLimits(), st)

    try:
        for _ in range(tries):
            store.commit_gate(slow_gate)
    finally:
        store.close()


def _halt_process(path: str, loaded, halted) -> None:
    store = RiskStateStore(path)
    try:
        assert loaded.wait(timeout=120.0)
        store.set_trading_state("HALTED", "kill switch", by="cli")
        halted.set()
    finally:
        store.close()


def test_a_gate_racing_a_halt_in_another_process_cannot_undo_it(tmp_path):
    path = str(tmp_path / "risk.sqlite")
    RiskStateStore(path).close()
    mp = multiprocessing.get_context("spawn")
    loaded, halted = mp.Event(), mp.Event()
    gate = mp.Process(target=_gate_process, args=(path, loaded, halted, 2))
    halt = mp.Process(target=_halt_process, args=(path, loaded, halted))
    gate.start()
    halt.start()
    gate.join(timeout=300)
    halt.join(timeout=300)
    assert gate.exitcode == 0 and halt.exitcode == 0
    store = RiskStateStore(path)
    try:
        st = store.load()
        history = store.events()
    finally:
        store.close()
    assert st.trading_state == "HALTED" and st.reason == "kill switch"
    assert [(e["from"], e["to"], e["by"]) for e in history] == [("ACTIVE", "HALTED", "cli")]
    assert not any(e["to"] == "ACTIVE" for e in history)


# ---------------------------------------------------------------- one live process per session


def _holder(home: str, session: str, ready) -> None:
    lock = SessionLock(home, session)
    lock.acquire()
    ready.set()
    signal.pause()  # until killed


def test_a_second_live_process_for_a_session_exits_with_one_line(tmp_path):
    home = tmp_path / "home"
    session = "replay-builtin-1d-sp500-paper-20181101"
    mp = multiprocessing.get_context("spawn")
    ready = mp.Event()
    first = mp.Process(target=_holder, args=(str(home), session, ready))
    first.start()
    try:
        assert ready.wait(timeout=120)
        env = {**os.environ, "REGIMEDESK_HOME": str(home), "PYTHONPATH": str(REPO)}
        second = subprocess.run(
            [sys.executable, "-m", "agents.cli", "live", "SP500", "--feed", "replay", "--broker", "paper",
             "--start", "2018-11-01", "--end", "2018-11-30", "--session", session],
            env=env, capture_output=True, text=True, timeout=300)
        assert second.returncode == 1
        lines = second.stderr.strip().splitlines()
        assert lines == [f"regimedesk: error: live session {session} is already running (process {first.pid}); "
                         "stop it first, or give this one another --session"]
        if (home / "live_state.sqlite").exists():
            with LiveStateStore(home / "live_state.sqlite") as state:
                assert state.live_sessions() == []  # the running session's record was not touched
    finally:
        first.kill()  # SIGKILL: the operating system releases the lock
        first.join(timeout=60)
    with SessionLock(home, session) as lock:
        assert lock.held


def test_live_loop_refuses_to_run_a_session_another_process_holds(tmp_path, monkeypatch):
    settings = _config(tmp_path, monkeypatch)
    loop = LiveLoop(settings, Secrets.from_env({}), LiveSpec(("SP500",), start="2018-11-01", end="2018-11-30"))
    try:
        with SessionLock(settings.home_dir, loop.session):  # another holder (own open file)
            with pytest.raises(SessionBusyError, match="already running"):
                loop.run(max_bars=1)
        assert not loop.lock.held
        assert loop.live_state.live_sessions() == []  # nothing was touched
    finally:
        loop.close()


# ---------------------------------------------------------------- the NYSE calendar


def _utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def test_silence_deadline_skips_holidays():
    # the Wednesday before Thanksgiving 2018: Friday 23rd and Monday 26th are the next sessions
    assert silence_deadline(_utc("2018-11-21"), "1D") == _utc("2018-11-27")
    # Friday before Christmas 2018: Monday 24th (a half day) and Wednesday 26th
    assert silence_deadline(_utc("2018-12-21"), "1D") == _utc("2018-12-27")
    # New Year's Day 2019
    assert silence_deadline(_utc("2018-12-28"), "1D") == _utc("2019-01-03")
    # an ordinary week is unchanged
    assert silence_deadline(_utc("2018-11-16"), "1D") == _utc("2018-11-21")


def test_silence_deadline_intraday_counts_half_days_and_holidays():
    # 2018-11-23 closes at 13:00 New York: 5 minutes left that day, the other 5 on Monday
    last = pd.Timestamp("2018-11-23 12:50", tz=NY)
    assert silence_deadline(last, "5Min") == pd.Timestamp("2018-11-26 09:35", tz=NY)
    # Wednesday's last bar before Thanksgiving: the holiday does not count
    last = pd.Timestamp("2018-11-21 15:50", tz=NY)
    assert silence_deadline(last, "5Min") == pd.Timestamp("2018-11-23 09:35", tz=NY)
    # Independence Day 2018 (a Wednesday)
    last = pd.Timestamp("2018-07-03 12:58", tz=NY)  # a half day: closes at 13:00, one minute left
    assert silence_deadline(last, "1Min") == pd.Timestamp("2018-07-05 09:31", tz=NY)


def test_market_open_follows_the_exchange_calendar():
    assert not _nyse_open(pd.Timestamp("2018-11-22 11:00", tz=NY))  # Thanksgiving
    assert not _nyse_open(pd.Timestamp("2018-12-25 11:00", tz=NY))  # Christmas
    assert _nyse_open(pd.Timestamp("2018-11-23 12:59", tz=NY))  # half day, before 13:00
    assert not _nyse_open(pd.Timestamp("2018-11-23 13:30", tz=NY))  # half day, after the close
    assert _nyse_open(pd.Timestamp("2018-11-21 15:59", tz=NY))
    assert not _nyse_open(pd.Timestamp("2018-11-21 16:00", tz=NY))
    assert not _nyse_open(pd.Timestamp("2018-11-24 11:00", tz=NY))  # Saturday
    assert nyse_session("2018-11-22") is None
    assert nyse_session("2018-11-23") == (_utc("2018-11-23 14:30"), _utc("2018-11-23 18:00"))
    # outside the calendar's range: Monday to Friday 9:30-16:00 New York
    assert nyse_session("1985-01-02") == (_utc("1985-01-02 14:30"), _utc("1985-01-02 21:00"))
    assert nyse_session("1985-01-05") is None


def test_gate_rejects_on_a_holiday_when_the_market_must_be_open(tmp_path, monkeypatch):
    settings = _config(tmp_path, monkeypatch, "[risk]\nrequire_market_open = true\n")
    with Runner(settings, Secrets.from_env({})) as r:
        # Thanksgiving 2006, 11:00 New York: a weekday, but the exchange is closed
        out = r.start(RunRequest(("SP500",), as_of="2006-11-23T16:00:00+00:00", broker="paper"))
    verdicts = out.state["risk_gate"]["symbols"]["SP500"]
    assert verdicts and all(v["reasons"] == ["market_closed"] for v in verdicts)
