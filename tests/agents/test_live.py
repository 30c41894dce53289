"""regimedesk live: the CLI, restart continuity, approvals that expire, retries and
degradation, SIGTERM, status (CLI and Telegram) and live alerts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from agents.cli import main
from agents.config import Secrets, load_settings
from integrations import Journal, LiveStateStore, TransientError

# The "ml" policy at half weight: these tests need the first bars to send orders whatever the
# regimes say (P(up) is above 0.55 there, so the target is the 0.5 cap).
FAST = ("[ml]\nrefit_every = 252\n[decision]\npolicy = \"ml\"\nmax_weight = 0.5\n"
        "[live]\nretry_backoff = 0.0\nretries = 3\n")


@pytest.fixture()
def fast(tmp_path, monkeypatch):
    cfg = tmp_path / "fast.toml"
    cfg.write_text(FAST)
    monkeypatch.setenv("REGIMEDESK_CONFIG", str(cfg))
    return cfg


def _json(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


def _bars(session: str | None = None) -> list[dict]:
    settings = load_settings()
    with LiveStateStore(settings.home_dir / "live_state.sqlite") as state:
        sessions = [s["session"] for s in state.live_sessions()]
        return state.live_bars(session or sessions[0])


@pytest.mark.parametrize("argv, message", [
    (["live", "SP500", "--max-bars", "0"], "--max-bars"),
    (["live", "SP500", "--feed", "alpaca", "--start", "2018-01-02"], "replay feed only"),
    (["live", "SP500", "status"], "subcommand"),
    (["live", "SP500", "--session", "bad name!"], "session name"),
])
def test_bad_options_are_refused(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_bad_speed_and_empty_replay(capsys):
    with pytest.raises(SystemExit):
        main(["live", "SP500", "--speed", "-3"])
    assert "--speed" in capsys.readouterr().err
    assert main(["live", "SP500", "--start", "2030-01-01"]) == 1
    assert "nothing to replay" in capsys.readouterr().err


def test_replay_restart_continues_without_repeating_a_bar(fast, capsys):
    assert main(["live", "SP500", "--start", "2018-12-03", "--max-bars", "3", "--json"]) == 0
    first = _json(capsys)
    assert first["handled"] == 3 and first["stopped_by"] == "max bars" and first["failed"] == 0
    assert main(["live", "SP500", "--start", "2018-12-03", "--max-bars", "2", "--json"]) == 0
    second = _json(capsys)
    assert second["handled"] == 2 and second["session"] == first["session"]
    bars = _bars()
    assert [b["bar_time"][:10] for b in bars] == ["2018-12-03", "2018-12-04", "2018-12-06", "2018-12-07",
                                                   "2018-12-10"]  # 5 Dec 2018: markets closed
    assert {b["status"] for b in bars} == {"completed"}
    assert len({b["thread_id"] for b in bars}) == 5
    # each bar's run saw that bar as its last one: as-of equals the bar
    settings = load_settings()
    with Journal(settings.home_dir / "journal.sqlite") as j:
        for b in bars:
            run = j.get_run(b["run_id"])
            assert run.status == "completed"
            assert j.show_run(b["run_id"])["run"]["params"]["as_of"] == b["bar_time"][:10]
    # status: last bar, counts, trading state; the same lines as Telegram /status
    assert main(["live", "status", "--json"]) == 0
    doc = _json(capsys)
    (s,) = doc["sessions"]
    assert s["last_bar"].startswith("2018-12-10") and s["bars"] == {"completed": 5}
    assert s["state"] == "stopped" and doc["risk"]["trading_state"] == "ACTIVE"
    assert s["lag_kind"] == "processing time" and s["lag_seconds"] > 0
    assert main(["live", "status"]) == 0
    text = capsys.readouterr().out
    assert "last bar 2018-12-10" in text and "5 completed" in text
    from agents.bot import DeskCommands
    from integrations import Invocation

    cmds = DeskCommands(settings, Secrets.from_env({}), clock=lambda: datetime(2026, 11, 21, tzinfo=UTC))
    reply = cmds.status(Invocation("status", (), 5, 5, is_admin=False)).text
    assert s["session"] in reply and "last bar 2018-12-10" in reply


def test_unanswered_approval_expires_when_the_next_bar_arrives(fast, capsys):
    assert main(["live", "SP500", "--start", "2018-12-03", "--max-bars", "2", "--approve", "--json"]) == 0
    bars = _bars()
    assert [b["status"] for b in bars] == ["expired", "waiting"]
    settings = load_settings()
    from integrations.brokers import PaperBroker

    with PaperBroker(settings.home_dir / "paper_broker.sqlite") as broker:
        assert broker.orders() == []  # nothing executed without an answer
    with Journal(settings.home_dir / "journal.sqlite") as j:
        kinds = [e["kind"] for e in j.live_events()]
        assert "approval_expired" in kinds
        expired = j.show_run(bars[0]["run_id"])
    approval = [o for o in expired["agent_outputs"] if o["agent"] == "execution"]
    assert approval and "rejected by a person" in approval[0]["output"]["execution"]["note"]
    # the waiting bar can still be approved by a person; the order then goes out once
    assert main(["approve", bars[1]["thread_id"]]) == 0
    capsys.readouterr()
    with PaperBroker(settings.home_dir / "paper_broker.sqlite") as broker:
        n = len(broker.orders())
    assert main(["live", "SP500", "--start", "2018-12-03", "--max-bars", "1", "--approve", "--json"]) == 0
    assert [b["status"] for b in _bars()][:2] == ["expired", "completed"]
    with PaperBroker(settings.home_dir / "paper_broker.sqlite") as broker:
        assert len(broker.orders()) >= n


def _loop(settings, spec_kw=None, **kw):
    from agents.runtime.live import LiveLoop, LiveSpec

    spec = LiveSpec(symbols=("SP500",), start="2018-12-03", **(spec_kw or {}))
    return LiveLoop(settings, Secrets.from_env({}), spec, **kw)


def _run_loop(settings, max_bars: int, lines: list[str]):
    """Run a fresh loop (no backoff sleeps) for ``max_bars``; its lines go to ``lines``."""
    loop = _loop(settings, say=lines.append, sleep=lambda s: None)
    try:
        return loop.run(max_bars=max_bars)
    finally:
        loop.close()


def test_transient_broker_errors_are_retried_then_the_bar_degrades(fast, monkeypatch):
    from integrations.brokers import PaperBroker

    real = PaperBroker.submit
    calls = {"n": 0, "fail": 1}

    def flaky(self, order):
        calls["n"] += 1
        if calls["n"] <= calls["fail"]:
            raise TransientError("broker HTTP 503")
        return real(self, order)

    monkeypatch.setattr(PaperBroker, "submit", flaky)
    settings = load_settings()
    lines: list[str] = []
    out = _run_loop(settings, 1, lines)
    assert out.handled == 1 and out.failed == 0
    (bar,) = _bars()
    assert bar["status"] == "completed" and bar["attempts"] == 2
    assert any("retry 1/2" in line for line in lines)
    with PaperBroker(settings.home_dir / "paper_broker.sqlite") as broker:
        orders = broker.orders()
    assert len(orders) == len({o.client_order_id for o in orders}) >= 1  # sent once, after the retry
    # a broker that stays down: the bar fails after 3 attempts, an alert, and the next bar still runs.
    # Buy to about 0.9 of the account first (the broker still up, past the gate): the next bar's
    # decision then sells back to its 0.5 cap, a sell the gate lets through.
    from integrations.brokers import OrderRequest

    price = orders[-1].avg_fill_price
    with PaperBroker(settings.home_dir / "paper_broker.sqlite") as broker:
        extra = int(0.9 * broker.account().equity / price) - broker.positions()["SP500"].qty
        more = real(broker, OrderRequest(client_order_id="manual-top-up", symbol="SP500", side="buy", qty=extra,
                                         reference_price=price, bar_time=bar["bar_time"]))
        assert more.status == "filled"
    calls.update(n=0, fail=10**6)
    lines.clear()
    out = _run_loop(settings, 2, lines)
    bars = _bars()
    assert [b["status"] for b in bars][1:] in (["failed", "failed"], ["failed", "completed"])
    assert out.failed >= 1 and "broker HTTP 503" in bars[1]["error"]
    assert any("[bar_failed]" in line for line in lines)
    with Journal(settings.home_dir / "journal.sqlite") as j:
        assert "bar_failed" in [e["kind"] for e in j.live_events()]


def test_a_replay_bar_that_failed_is_run_again_by_the_next_start(fast, monkeypatch):
    """Nothing of a replay is lost for good: a failed bar is finished by a later start, and a
    bar that fails again while being resumed fails that process too (it used to exit 0)."""
    from agents.runtime.runner import Runner

    real = Runner.start
    broken: set[str] = set()

    def start(self, request, progress=None, *, run_id=None, thread_id=None):
        if not broken:
            broken.add(run_id)  # the first bar's run
        if run_id in broken:
            raise RuntimeError("disk full")
        return real(self, request, progress, run_id=run_id, thread_id=thread_id)

    monkeypatch.setattr(Runner, "start", start)
    settings = load_settings()
    first = _run_loop(settings, 1, [])
    assert first.failed == 1 and [b["status"] for b in _bars()] == ["failed"]
    lines: list[str] = []
    second = _run_loop(settings, 1, lines)  # the first bar fails again, the next one completes
    assert any("that failed by an earlier process" in line for line in lines)
    assert (second.resumed, second.failed, second.handled) == (0, 1, 1)
    assert [b["status"] for b in _bars()] == ["failed", "completed"]
    broken.clear()
    broken.add("none")
    third = _run_loop(settings, 1, [])
    assert (third.resumed, third.failed, third.handled) == (1, 0, 1)
    assert [b["status"] for b in _bars()] == ["completed"] * 3


def test_an_order_that_cannot_be_settled_stops_blocking_bars_after_three_attempts(fast, monkeypatch):
    from integrations.brokers import PaperBroker

    real = PaperBroker.submit
    poisoned: list[str] = []

    def buggy(self, order):  # the first order always crashes the broker (not a transient error)
        if not poisoned or order.client_order_id == poisoned[0]:
            poisoned[:1] = [order.client_order_id]
            raise ZeroDivisionError("float division by zero")
        return real(self, order)

    monkeypatch.setattr(PaperBroker, "submit", buggy)
    settings = load_settings()
    lines: list[str] = []
    out = _run_loop(settings, 4, lines)
    bars = _bars()
    # the bar that sent it, then two bars whose reconciliation failed, then it is given up
    assert [b["status"] for b in bars] == ["failed", "failed", "failed", "completed"]
    assert "ZeroDivisionError" in bars[0]["error"]
    assert [b["error"].split(":")[0] for b in bars[1:3]] == ["ReconcileError", "ReconcileError"]
    assert "attempt 2 of 3" in bars[2]["error"] and out.failed == 3
    with Journal(settings.home_dir / "journal.sqlite") as j:
        events = [e for e in j.live_events() if e["kind"] == "order_given_up"]
        latest = j.latest_orders("paper")[poisoned[0]]
    assert len(events) == 1 and poisoned[0] in events[0]["message"]
    assert latest["status"] == "rejected" and latest["payload"]["reason"] == "reconcile_failed"
    assert any("[order_given_up]" in line for line in lines)


def test_sigterm_finishes_the_current_bar_and_stops(fast, tmp_path):
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    log = tmp_path / "live.log"
    with log.open("w") as err:
        # one daily bar every 2 s of wall time: the signal lands while the loop waits or works
        proc = subprocess.Popen([sys.executable, "-m", "agents.cli", "live", "SP500", "--start", "2018-12-03",
                                 "--speed", "43200"], env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        settings = load_settings()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if (settings.home_dir / "live_state.sqlite").exists():
                try:
                    if any(b["status"] == "completed" for b in _bars()):
                        break
                except Exception:  # noqa: BLE001 - the session row may not exist yet
                    pass
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, log.read_text()[-2000:]
    assert "stop requested" in out
    assert "finishing the current bar" in log.read_text()
    bars = _bars()
    assert bars and all(b["status"] == "completed" for b in bars)
    with LiveStateStore(settings.home_dir / "live_state.sqlite") as state:
        (s,) = state.live_sessions()
    assert s["status"] == "stopped" and s["note"] == "stop requested"


def test_live_events_reach_telegram_through_the_alert_watcher(tmp_path):
    from agents.bot import AlertWatcher
    from integrations import BotStateStore

    settings = load_settings(env={"REGIMEDESK_HOME": str(tmp_path / "home")})
    settings = settings.model_copy(update={"telegram": settings.telegram.model_copy(update={"chat_ids": [77]})})
    settings.home_dir.mkdir(parents=True, exist_ok=True)
    store = BotStateStore(settings.home_dir / "telegram_bot.sqlite", clock=lambda: 0.0)

    class Sender:
        sent: list = []

        def send_message(self, chats, text):
            self.sent.append((chats, text))
            return []

    with Journal(settings.home_dir / "journal.sqlite") as j:
        j.record_live_event("s1", "feed_silent", "no 1D bar since 2018-12-07")
        j.record_live_event("s1", "feed_back", "bars again")
    watcher = AlertWatcher(settings, Secrets.from_env({}), store, Sender(), interval=60)
    assert watcher.scan_once() == ["live:1", "live:2"]
    assert watcher.scan_once() == []  # each event once
    assert Sender.sent[0] == ([77], "RegimeDesk live s1: [feed_silent] no 1D bar since 2018-12-07")
    store.close()


def test_silence_deadline_is_on_the_trading_calendar():
    from agents.runtime.live import silence_deadline

    fri = pd.Timestamp("2018-11-16", tz="UTC")
    assert silence_deadline(fri, "1D") == pd.Timestamp("2018-11-21", tz="UTC")
    close = pd.Timestamp("2018-11-16 15:50", tz="America/New_York").tz_convert("UTC")  # 5Min bar to 15:55
    assert silence_deadline(close, "5Min") == pd.Timestamp("2018-11-19 09:35", tz="America/New_York")


def test_models_are_retrained_after_a_bar_never_inside_a_decision(tmp_path, monkeypatch, capsys):
    """ml.retrain_after_days: the session retrains a model once it is that old, after the
    bar's orders; the next decision predicts from it and no decision after the first trains."""
    cfg = tmp_path / "retrain.toml"
    cfg.write_text(FAST.replace("[ml]\n", "[ml]\nretrain_after_days = 3.0\nmax_model_age_days = 5.0\n"))
    monkeypatch.setenv("REGIMEDESK_CONFIG", str(cfg))
    assert main(["live", "SP500", "--start", "2018-12-03", "--max-bars", "6", "--json"]) == 0
    assert _json(capsys)["handled"] == 6
    bars = _bars()
    settings = load_settings()
    with Journal(settings.home_dir / "journal.sqlite") as j:
        signals = []
        for b in bars:
            (out,) = [o["output"] for o in j.show_run(b["run_id"])["agent_outputs"] if o["agent"] == "ml_signal"]
            signals.append(out["ml_signal"]["SP500"])
        events = [e for e in j.live_events(limit=500) if e["kind"].startswith("model_retrain")]
    # bar 1 (2018-12-03) trains inside the decision: no model yet. Every later decision uses a stored model.
    assert signals[0]["model_note"].startswith("trained a new model")
    assert all(s["model_note"] is None for s in signals[1:])
    # trained to 12-03; due (>= 3 days old) after the bar of 12-06: retrained to 12-06, used from 12-07;
    # due again after 12-10 (4 days): trained to 12-10, used from 12-11.
    ends = [s["model_train_end"][:10] for s in signals]
    assert ends == ["2018-12-03", "2018-12-03", "2018-12-03", "2018-12-06", "2018-12-06", "2018-12-10"]
    assert [s["model_version"] for s in signals] == ["v0001"] * 3 + ["v0002"] * 2 + ["v0003"]
    assert [e["kind"] for e in events] == ["model_retrained", "model_retrained"]
    assert "model v0002 trained on bars to 2018-12-06" in events[0]["message"]
    assert all(s["model_age_days"] < 5.0 for s in signals)


def test_live_recompute_takes_the_audit_path_with_the_same_decisions(fast, capsys, monkeypatch):
    """live --recompute: every bar's run is journaled with recompute on; a session on the
    default path over the same bars (another home) decides the same target weights."""
    weights = {}
    for flag in ([], ["--recompute"]):
        home = load_settings().home_dir.parent / ("home-recompute" if flag else "home-default")
        monkeypatch.setenv("REGIMEDESK_HOME", str(home))
        assert main(["live", "SP500", "--start", "2018-12-03", "--max-bars", "2", "--json", *flag]) == 0
        assert _json(capsys)["handled"] == 2
        settings = load_settings()
        with Journal(settings.home_dir / "journal.sqlite") as j:
            shown = [j.show_run(b["run_id"]) for b in _bars()]
        assert all(s["run"]["params"]["recompute"] is bool(flag) for s in shown)
        weights[bool(flag)] = [next(o["output"]["decision"]["symbols"]["SP500"]["target_weight"]
                                    for o in s["agent_outputs"] if o["agent"] == "decision") for s in shown]
    assert weights[True] == pytest.approx(weights[False], rel=1e-9, abs=1e-12)
