"""Liveness and degradation: a feed that goes silent (no bar within 2x the timeframe) makes the
gate reject new orders and raises an alert; the first new bar clears it.

End to end with the real :class:`agents.runtime.live.LiveLoop`, a paper broker and the graph, on a fake
clock: the feed is a replay of the embedded SP500 daily bars that delivers a bar only once it
has closed on that clock, and stops delivering (stalls) from a chosen bar on.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from agents.config import Secrets, load_settings
from agents.runtime.live import LiveLoop, LiveSpec, live_status
from agents.runtime.runner import Runner
from agents.services.context import RunRequest, build_request
from agents.services.risk import RiskStateStore, market_snapshot
from analytics.bars import Timeframe
from analytics.risk_gate import (
    MarketSnapshot,
    PendingOrder,
    Portfolio,
    ProposedOrder,
    RiskLimits,
    RiskState,
    evaluate,
)
from integrations import BuiltinSource, Journal, LiveStateStore
from integrations._feeds import Feed, ReplayFeed
from integrations.brokers import OrderRequest, PaperBroker

pytestmark = pytest.mark.filterwarnings("ignore::analytics.DataQualityWarning")

# The "ml" policy: the test needs the first bars to hold a position whatever the regimes say.
FAST = "[ml]\nrefit_every = 252\n[decision]\npolicy = \"ml\"\n[live]\npoll_seconds = 3600\n"
SESSION = "silence-test"


def _utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    """A home whose fit cache and ML model store hold what a run as of 2018-11-12 estimates.

    Each test starts from a copy, so the estimation a first bar pays (about 15 s) is paid once
    per module; results do not depend on it (the fit cache returns what a refit would).
    """
    home = tmp_path_factory.mktemp("warm-home")
    cfg = home / "fast.toml"
    cfg.write_text(FAST)
    settings = load_settings(cfg, env={"REGIMEDESK_HOME": str(home)})
    with Runner(settings, Secrets.from_env({})) as runner:
        out = runner.start(RunRequest(("SP500",), as_of="2018-11-12"))
    assert out.status == "completed"
    return home


@pytest.fixture
def settings(tmp_path, monkeypatch, warm):
    path = tmp_path / "fast.toml"
    path.write_text(FAST)
    monkeypatch.setenv("REGIMEDESK_CONFIG", str(path))
    s = load_settings()
    assert s.live.poll_seconds == 3600.0 and s.ml.refit_every == 252
    assert s.home_dir != warm
    if (warm / "fit_cache.sqlite").exists():
        shutil.copy(warm / "fit_cache.sqlite", s.home_dir / "fit_cache.sqlite")
    if (warm / "models").is_dir():
        shutil.copytree(warm / "models", s.home_dir / "models")
    return s


class StallingFeed(Feed):
    """SP500 daily bars played on the wall clock; silent from ``stall_at`` while ``stalled``."""

    name = "testfeed"

    def __init__(self, start: str, end: str, stall_at: pd.Timestamp) -> None:
        self.replay = ReplayFeed(BuiltinSource(), ["SP500"], "1D", start=start, end=end)
        super().__init__(self.replay.upstream, self.replay.symbols, self.replay.timeframe)
        self.start = self.replay.start
        self.stall_at = stall_at
        self.stalled = True

    def history(self, symbol, timeframe, before):
        return self.replay.history(symbol, timeframe, before)

    def next_batch(self, after, now):
        batch = self.replay.next_batch(after, now)
        if batch is None or now < batch.closes_at:
            return None  # not closed yet
        if self.stalled and batch.time >= self.stall_at:
            return None  # silence
        return batch

    def exhausted(self, after):
        return self.replay.exhausted(after)


class FakeClock:
    """The loop's wall clock. Its sleep advances it; ``at[t]`` runs once the clock reaches ``t``."""

    def __init__(self, t: pd.Timestamp) -> None:
        self.t = t
        self.slept: list[float] = []
        self.at: dict[pd.Timestamp, object] = {}

    def __call__(self) -> pd.Timestamp:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += pd.Timedelta(seconds=seconds)
        for when in sorted(w for w in self.at if w <= self.t):
            self.at.pop(when)()


def _loop(settings, feed, clock, said):
    spec = LiveSpec(symbols=("SP500",), feed="alpaca", broker="paper", session=SESSION)
    return LiveLoop(settings, Secrets.from_env({}), spec, feed=feed, clock=clock, sleep=clock.sleep,
                    say=lambda line: said.append((clock.t, line)))


def _kinds(journal) -> list[str]:
    return [e["kind"] for e in journal.live_events(SESSION)]


def _silent(settings) -> dict:
    risk = RiskStateStore(settings.home_dir / "risk.sqlite")
    try:
        return risk.silent_feeds()
    finally:
        risk.close()


def _paper(settings) -> PaperBroker:
    return PaperBroker(settings.home_dir / "paper_broker.sqlite")


def _session(settings) -> dict:
    (session,) = live_status(settings)["sessions"]
    assert session["session"] == SESSION
    return session


def _during_silence(settings, feed, seen):
    """What the world looks like while the feed is silent; then the feed recovers."""
    seen["silent"] = _silent(settings)
    seen["status"] = live_status(settings)
    # another process runs the graph for the last bar; flatten the paper account first so
    # that the decision proposes an order (a buy back to its target weight)
    with _paper(settings) as broker:
        held = broker.positions()["SP500"].qty
        close = float(feed.replay.history("SP500", feed.timeframe, _utc("2018-11-17"))["close"].iloc[-1])
        flat = broker.submit(OrderRequest(client_order_id="manual-flatten", symbol="SP500", side="sell", qty=held,
                                          reference_price=close, bar_time="2018-11-16T00:00:00+00:00"))
        assert flat.status == "filled"
        seen["orders_before"] = len(broker.orders())
    secrets = Secrets.from_env({})
    with Runner(settings, secrets) as runner:
        seen["run"] = runner.start(build_request(settings, secrets, ["SP500"], source="live:builtin",
                                                 as_of="2018-11-16", broker="paper"))
    with _paper(settings) as broker:
        seen["orders_after"] = len(broker.orders())
        seen["position_after"] = broker.positions().get("SP500")
    feed.stalled = False


def test_silent_feed_blocks_orders_raises_an_alert_and_clears_when_bars_return(settings):
    # bars 11-12 .. 11-16 come, then nothing: Friday 11-16 is the last bar, so the feed is
    # silent once Tuesday's bar (11-20, closing 11-21 00:00 UTC) is overdue. At 02:00 the
    # feed recovers and delivers the two bars it owes (11-19 and 11-20).
    feed = StallingFeed("2018-11-12", "2018-11-30", stall_at=_utc("2018-11-19"))
    clock = FakeClock(_utc("2018-11-13"))  # the 11-12 bar has just closed
    said: list[tuple[pd.Timestamp, str]] = []
    seen: dict = {}
    clock.at[_utc("2018-11-21 02:00")] = lambda: _during_silence(settings, feed, seen)
    loop = _loop(settings, feed, clock, said)
    try:
        summary = loop.run(max_bars=7)
    finally:
        loop.close()
    assert summary.stopped_by == "max bars"
    assert (summary.handled, summary.failed, summary.skipped) == (7, 0, 0)
    with LiveStateStore(settings.home_dir / "live_state.sqlite") as state:
        bars = state.live_bars(SESSION)
    with Journal(settings.home_dir / "journal.sqlite") as journal:
        kinds = _kinds(journal)
        events = journal.live_events(SESSION)
    assert [b["bar_time"][:10] for b in bars] == ["2018-11-12", "2018-11-13", "2018-11-14", "2018-11-15",
                                                  "2018-11-16", "2018-11-19", "2018-11-20"]
    assert {b["status"] for b in bars} == {"completed"}
    assert set(clock.slept) == {3600.0}  # polled once an hour on the fake clock

    # the alert: once, at the deadline (not at the 23:00 poll before), journaled and said
    assert kinds == ["feed_silent", "feed_back", "stopped"]
    alerts = [(t, line) for t, line in said if line.startswith("[feed_silent]")]
    assert len(alerts) == 1 and alerts[0][0] == _utc("2018-11-21")
    assert "no 1D bar from testfeed since 2018-11-16T00:00:00+00:00" in alerts[0][1]
    assert "new orders for SP500 are rejected" in alerts[0][1]
    assert alerts[0][1] == f"[feed_silent] {events[0]['message']}"

    # during the silence: the risk state marks SP500, the status shows it
    assert list(seen["silent"]) == ["SP500"]
    assert seen["silent"]["SP500"]["by"] == SESSION
    assert "2018-11-16" in seen["silent"]["SP500"]["reason"] and "2018-11-21" in seen["silent"]["SP500"]["reason"]
    (session,) = seen["status"]["sessions"]
    assert session["state"] == "running" and session["feed_state"] == "silent"
    assert session["last_bar"] == "2018-11-16T00:00:00+00:00"
    assert [e["kind"] for e in session["events"]] == ["feed_silent"]
    assert list(seen["status"]["risk"]["silent_feeds"]) == ["SP500"]
    assert seen["status"]["risk"]["trading_state"] == "ACTIVE"  # only the silent symbol is blocked

    # ... and the gate rejected every order the run proposed; nothing reached the broker
    out = seen["run"]
    assert out.status == "completed"
    proposed = out.state["decision"]["symbols"]["SP500"]["orders"]
    assert proposed and {o["side"] for o in proposed} == {"buy"}
    gate = out.state["risk_gate"]
    assert gate["silent_feeds"] == ["SP500"]
    verdicts = gate["symbols"]["SP500"]
    assert len(verdicts) == len(proposed)
    assert all(v["action"] == "reject" and v["reasons"] == ["feed_silent"] and v["qty"] == 0 for v in verdicts)
    assert out.state["execution"]["symbols"] == {}
    assert seen["orders_after"] == seen["orders_before"]
    assert seen["position_after"] is None  # still flat

    # the feed came back: the next bar cleared the mark, said so, and its orders went out
    assert _silent(settings) == {}
    backs = [(t, line) for t, line in said if line.startswith("[feed_back]")]
    assert len(backs) == 1 and backs[0][0] == _utc("2018-11-21 02:00")
    assert "2018-11-19" in events[1]["message"] and "SP500" in events[1]["message"]
    with Runner(settings, Secrets.from_env({})) as runner:
        state = runner.outcome(bars[5]["thread_id"]).state
    assert state["risk_gate"]["silent_feeds"] == []
    assert all("feed_silent" not in v["reasons"] for v in state["risk_gate"]["symbols"]["SP500"])
    sent = state["execution"]["symbols"]["SP500"]
    assert [(o["side"], o["status"]) for o in sent] == [("buy", "filled")]
    with _paper(settings) as broker:
        assert len(broker.orders()) >= seen["orders_before"] + 1
        assert broker.positions()["SP500"].qty > 0
    # the loop's next turn wrote a heartbeat with the feed delivering again
    after = live_status(settings)
    assert after["sessions"][0]["feed_state"] == "ok" and after["risk"]["silent_feeds"] == {}


def test_restart_during_silence_clears_the_mark_when_bars_return(settings):
    feed = StallingFeed("2018-11-16", "2018-11-30", stall_at=_utc("2018-11-19"))
    clock = FakeClock(_utc("2018-11-17"))
    said: list[tuple[pd.Timestamp, str]] = []
    loop = _loop(settings, feed, clock, said)
    clock.at[_utc("2018-11-21 01:00")] = loop.request_stop  # the process is stopped while silent
    try:
        assert loop.run().handled == 1
    finally:
        loop.close()
    assert list(_silent(settings)) == ["SP500"]
    # the process is started again; meanwhile the feed recovered
    feed = StallingFeed("2018-11-16", "2018-11-30", stall_at=_utc("2018-11-19"))
    feed.stalled = False
    loop = _loop(settings, feed, clock, said)
    try:
        summary = loop.run(max_bars=1)
    finally:
        loop.close()
    assert (summary.handled, summary.failed) == (1, 0)
    with LiveStateStore(settings.home_dir / "live_state.sqlite") as state:
        assert state.live_bars(SESSION)[-1]["bar_time"] == "2018-11-19T00:00:00+00:00"
    assert _silent(settings) == {}  # the restarted process cleared its session's mark


def test_status_after_the_feed_came_back_and_the_session_stopped(settings):
    feed = StallingFeed("2018-11-16", "2018-11-30", stall_at=_utc("2018-11-19"))
    clock = FakeClock(_utc("2018-11-17"))
    said: list[tuple[pd.Timestamp, str]] = []
    clock.at[_utc("2018-11-21 02:00")] = lambda: setattr(feed, "stalled", False)
    loop = _loop(settings, feed, clock, said)
    try:
        summary = loop.run(max_bars=2)  # 11-16, then 11-19 after the silence
    finally:
        loop.close()
    assert (summary.handled, summary.stopped_by) == (2, "max bars")
    assert [line.split("]")[0] for _, line in said if line.startswith("[")] == [
        "[feed_silent", "[feed_back", "[stopped"]
    assert _silent(settings) == {}
    session = _session(settings)
    assert session["state"] == "stopped" and session["last_bar"] == "2018-11-19T00:00:00+00:00"
    assert session["feed_state"] == "ok"  # fails today: 'silent'


def test_gate_rejects_every_new_order_of_a_silent_symbol():
    now = _utc("2018-11-21 15:00")
    both = ("SP500", "NASDAQ")
    market = MarketSnapshot(
        now=now, prices={"SP500": 2650.0, "NASDAQ": 7000.0},
        last_bar={s: _utc("2018-11-20") for s in both}, bar_seconds={s: 86400.0 for s in both},
        tradable={s: True for s in both}, market_open={s: True for s in both}, feed_silent={"SP500": True})
    portfolio = Portfolio(cash=50_000.0, positions={"SP500": 10.0},
                          pending=(PendingOrder("open-buy", "SP500", "buy", 2.0, 2650.0),))
    orders = [
        ProposedOrder("b-sp", "SP500", "buy", 3.0, reference_price=2650.0),
        ProposedOrder("s-sp", "SP500", "sell", 5.0, reference_price=2650.0),  # only reduces the long
        ProposedOrder("open-buy", "SP500", "cancel", 0.0),
        ProposedOrder("b-nq", "NASDAQ", "buy", 2.0, reference_price=7000.0),
    ]
    res = evaluate(orders, portfolio, market, RiskLimits(), RiskState())
    got = [(v.order.client_order_id, v.action, v.qty, v.reasons) for v in res.verdicts]
    assert got == [
        ("b-sp", "reject", 0.0, ("feed_silent",)),
        ("s-sp", "reject", 0.0, ("feed_silent",)),
        ("open-buy", "approve", 0.0, ()),
        ("b-nq", "approve", 2.0, ()),
    ]
    assert [r.client_order_id for r in res.state.recent] == ["b-nq"]
    assert res.state.trading_state == "ACTIVE" and res.events == ()
    # the same orders with the feed delivering (or the flag False): the SP500 orders pass
    for flags in ({}, {"SP500": False}):
        ok = evaluate(orders, portfolio, MarketSnapshot(**{**market.__dict__, "feed_silent": flags}), RiskLimits(),
                      RiskState())
        assert [(v.action, v.qty) for v in ok.verdicts] == [("approve", 3.0), ("approve", 5.0), ("approve", 0.0),
                                                            ("approve", 2.0)]
    # halted wins over silent: the reason says why nothing trades
    halted = evaluate(orders[:1], portfolio, market, RiskLimits(), RiskState("HALTED", "test"))
    assert halted.verdicts[0].reasons == ("halted",)


class _Bars:
    """The slice of a run's BarStore that market_snapshot reads."""

    def __init__(self, frames):
        self.frames = frames

    def get(self, symbol, timeframe):
        return type("B", (), {"frame": self.frames[symbol]})()


def test_silent_mark_persists_and_reaches_the_snapshot(tmp_path):
    risk = RiskStateStore(tmp_path / "risk.sqlite")
    assert risk.silent_feeds() == {}
    assert risk.set_feed_silent(["SP500", "NASDAQ"], True, "no bar since x", "s1") == ["SP500", "NASDAQ"]
    assert risk.set_feed_silent(["SP500"], True, "again", "s2") == []  # already marked: first reason kept
    risk.close()
    risk = RiskStateStore(tmp_path / "risk.sqlite")  # survives a restart
    silent = risk.silent_feeds()
    assert list(silent) == ["NASDAQ", "SP500"]
    assert silent["SP500"]["reason"] == "no bar since x" and silent["SP500"]["by"] == "s1"
    src = BuiltinSource()
    frames = {s: src.fetch(s, Timeframe.parse("1D"), _utc("2018-01-01"), _utc("2018-11-16"))
              for s in ("SP500", "NASDAQ")}
    snap = market_snapshot(_Bars(frames), ["SP500"], _utc("2018-11-17"), {}, feed_silent=silent)
    assert dict(snap.feed_silent) == {"SP500": True}  # only the run's symbols
    assert snap.prices["SP500"] == pytest.approx(float(frames["SP500"]["close"].iloc[-1]))
    assert np.isfinite(snap.returns["SP500"]).all()
    assert risk.set_feed_silent(["SP500"], False, "bars again", "s1") == ["SP500"]
    assert risk.set_feed_silent(["SP500"], False, "bars again", "s1") == []
    assert list(risk.silent_feeds()) == ["NASDAQ"]
    risk.close()


def test_journal_keeps_live_events_in_order(tmp_path):
    with Journal(tmp_path / "journal.sqlite") as journal:
        journal.record_live_event("a", "feed_silent", "no bar")
        journal.record_live_event("b", "feed_silent", "other session")
        journal.record_live_event("a", "feed_back", "bars again")
        assert [e["kind"] for e in journal.live_events("a")] == ["feed_silent", "feed_back"]
        first = journal.live_events("a")[0]["id"]
        assert [e["message"] for e in journal.live_events("a", after_id=first)] == ["bars again"]
        assert len(journal.live_events()) == 3
