"""Live runs: one durable graph run per closed bar of a feed.

For every closed bar the loop updates the live data cache, runs the agent graph as of that
bar (regime and GARCH fits and ML folds come from the fit cache, so only scheduled refits
are estimated; the ML model is retrained when it is older than ``ml.max_model_age_days``),
lets the risk gate check the proposed orders, executes the approved ones, journals
everything and raises alerts.

Durability
----------
* A bar is *claimed* in the live state store (``home/live_state.sqlite``, table
  ``live_bars``, primary key ``(session, bar_time)``) before its run starts; its run has a
  thread id and run id derived from the session and the bar, checkpointed in SQLite. A bar
  is claimed once, so it is never processed twice.
* On start the loop reconciles the broker's orders and positions with the journal, then
  finishes every bar claimed but not completed: it resumes the checkpointed thread (or
  starts it, if the process died before the first checkpoint). Orders carry deterministic
  client order ids and are journaled as ``submitting`` before they are sent, so a resumed
  bar finds its order at the broker instead of sending it again.
* A heartbeat is written to the live state store on every turn of the loop. The journal
  keeps what happened: the runs, orders and fills, and the session's events.

Liveness
--------
* No new bar within twice the timeframe (on the trading calendar: two sessions for daily
  bars; weekends and nights do not count for intraday bars) marks the session's symbols
  silent in the risk state: the gate then rejects their new orders (``feed_silent``), and
  an alert is raised. The first new bar clears it.
* Feed and broker errors are retried with exponential backoff; a bar whose run still fails
  is recorded ``failed`` with the error and an alert, and the loop goes on with the next
  bar (its orders, if any were journaled, are reconciled then).
* SIGINT / SIGTERM (see :meth:`LiveLoop.request_stop`) let the current bar finish.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from agents.config import Secrets, Settings
from agents.paths import HomePaths
from agents.services.context import RunRequest
from analytics import RegimeDeskError
from analytics.bars import Timeframe
from integrations import (
    FEED_NAMES,
    BarBatch,
    Feed,
    IntegrationError,
    LiveStateStore,
    PollingFeed,
    ReplayFeed,
    TransientError,
    UnknownRunError,
)

__all__ = [
    "LiveSpec",
    "LiveSummary",
    "LiveLoop",
    "LiveError",
    "SessionBusyError",
    "SessionLock",
    "build_feed",
    "silence_deadline",
    "live_status",
    "format_live_status",
    "session_name",
    "open_live_state",
]

log = logging.getLogger(__name__)
LIVE_TIMEFRAMES: tuple[str, ...] = ("1Min", "5Min", "1D")


class LiveError(RegimeDeskError):
    """A live session cannot start (bad combination of options, nothing to replay, ...)."""


class SessionBusyError(LiveError):
    """Another process already runs this live session."""


class SessionLock:
    """One process per live session: an exclusive ``flock`` on
    ``home/live_locks/<session>.lock``.

    The operating system releases the lock when the holder exits, however it exits (also
    ``kill -9``), so a crashed session never blocks its restart. The file holds the holder's
    process id for the message.
    """

    def __init__(self, home: str | Path, session: str) -> None:
        self.session = session
        self.path = HomePaths(Path(home)).live_lock(session)
        self._file: IO[str] | None = None

    @property
    def held(self) -> bool:
        """This object holds the lock."""
        return self._file is not None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`SessionBusyError` at once if another holds it."""
        if self._file is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held open while the session runs
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip()
            f.close()
            raise SessionBusyError(
                f"live session {self.session} is already running (process {holder or 'unknown'}); stop it "
                "first, or give this one another --session") from None
        except BaseException:
            f.close()
            raise
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        self._file = f

    def release(self) -> None:
        """Give the lock up (closing the file releases it)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> SessionLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@dataclass(frozen=True)
class LiveSpec:
    """What ``regimedesk live`` was asked to do.

    Parameters
    ----------
    symbols : tuple of str
    feed : {'replay', 'alpaca', 'polygon'}
    broker : {'paper', 'alpaca'}
    timeframe : {'1Min', '5Min', '1D'}
    approve : bool
        Each bar's orders wait for a person (``regimedesk approve THREAD`` or Telegram); an
        answer not given before the next bar expires as a rejection.
    source : str
        Upstream source of a replay (default the embedded data).
    start, end : str or None
        Replay window.
    speed : float
        Replay pace: bar length divided by wall time (86400 plays a daily bar per second);
        0 plays as fast as the loop runs.
    llm : {'template', 'openai'}
    session : str
        Name of the session (journal, checkpoints, status); derived from the options when
        not given, so a restart with the same options continues the same session.
    """

    symbols: tuple[str, ...]
    feed: str = "replay"
    broker: str = "paper"
    timeframe: str = "1D"
    approve: bool = False
    source: str = "builtin"
    start: str | None = None
    end: str | None = None
    speed: float = 0.0
    llm: str = "template"
    session: str = ""

    def __post_init__(self) -> None:
        if not self.symbols:
            raise ValueError("symbols: give at least one SYMBOL")
        if self.feed not in FEED_NAMES:
            raise ValueError(f"feed must be one of {', '.join(FEED_NAMES)}, not {self.feed!r}")
        if self.broker not in ("paper", "alpaca"):
            raise ValueError(f"broker must be paper or alpaca, not {self.broker!r}")
        if self.timeframe not in LIVE_TIMEFRAMES:
            raise ValueError(f"timeframe must be one of {', '.join(LIVE_TIMEFRAMES)}, not {self.timeframe!r}")
        if not (np.isfinite(self.speed) and self.speed >= 0):
            raise ValueError(f"speed must be a number >= 0 (0 = as fast as possible), not {self.speed!r}")
        if self.feed != "replay" and (self.start or self.end):
            raise ValueError("--start and --end apply to the replay feed only")
        if self.session and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}", self.session):
            raise ValueError(f"session name {self.session!r}: letters, digits, '.', '_' and '-' only (max 80)")

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def open_live_state(settings: Settings) -> LiveStateStore:
    """The live state store of ``settings``' home.

    A journal of an older RegimeDesk still holding the live tables hands them over on the
    first open (see :class:`integrations.LiveStateStore`).
    """
    return LiveStateStore(settings.paths.live_state, legacy_journal=settings.paths.journal)


def session_name(spec: LiveSpec, replay_start: pd.Timestamp | None = None) -> str:
    """The default session name: feed, timeframe, symbols, broker (and a replay's first bar)."""
    parts = [spec.feed, spec.timeframe, *spec.symbols, spec.broker]
    if spec.feed == "replay" and replay_start is not None:
        parts.insert(1, spec.source)
        parts.append(replay_start.strftime("%Y%m%d"))
    name = "-".join(parts).lower()
    return re.sub(r"[^a-z0-9._-]+", "_", name)[:80]


@dataclass(frozen=True)
class LiveSummary:
    """What one process of a live session did."""

    session: str
    handled: int
    resumed: int
    skipped: int
    failed: int
    orders_sent: int
    stopped_by: str
    seconds: float
    bar_seconds: tuple[float, ...] = field(default=(), repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "bar_seconds"}
        if self.bar_seconds:
            arr = np.asarray(self.bar_seconds)
            d["bar_seconds"] = {"p50": float(np.percentile(arr, 50)), "p95": float(np.percentile(arr, 95)),
                                "max": float(arr.max())}
        return d


def build_feed(settings: Settings, secrets: Secrets, spec: LiveSpec) -> Feed:
    """The feed of ``spec``: a replay of ``spec.source`` or a poller of Alpaca / Polygon."""
    from agents.services.data import build_source

    if spec.feed == "replay":
        upstream = build_source(settings, secrets, spec.source)
        return ReplayFeed(upstream, spec.symbols, spec.timeframe, start=spec.start, end=spec.end)
    upstream = build_source(settings, secrets, spec.feed)
    live = settings.live
    return PollingFeed(upstream, spec.symbols, spec.timeframe, lookback_bars=live.lookback_bars,
                       attempts=live.retries, backoff=live.retry_backoff)


def silence_deadline(last_bar: pd.Timestamp, timeframe: str | Timeframe) -> pd.Timestamp:
    """When a feed that last delivered the bar stamped ``last_bar`` counts as silent.

    Twice the timeframe on the NYSE calendar (``exchange_calendars`` XNYS: weekends,
    holidays and half days; see :func:`agents.services.risk.nyse_session`):

    * daily bars: the close of the bar two sessions later (a Friday bar is overdue when
      Tuesday's bar has not closed; the Wednesday before Thanksgiving, when Monday's has not);
    * intraday bars: the bar's close plus two bar lengths of regular session time (9:30-16:00
      New York, 13:00 on half days); nights, weekends and holidays do not count.
    """
    from agents.services.risk import nyse_session

    tf = Timeframe.parse(timeframe)
    last_bar = pd.Timestamp(last_bar).tz_convert("UTC")
    day = pd.Timedelta(days=1)
    if tf.unit in ("D", "W"):
        d, sessions = last_bar.normalize(), 0
        for _ in range(40):  # the calendar never closes for more than a few days in a row
            d += day
            if nyse_session(d.tz_localize(None)) is not None:  # the bar's stamp is its session date
                sessions += 1
                if sessions == 2:
                    return d + tf.step
        raise LiveError(f"no NYSE session within 40 days after {last_bar.date()}")
    t = last_bar + tf.step
    budget = 2 * tf.step
    d = t.tz_convert("America/New_York").tz_localize(None).normalize()
    for _ in range(40):
        bounds = nyse_session(d)
        if bounds is not None and t < bounds[1]:
            start = max(t, bounds[0])
            if start + budget <= bounds[1]:
                return start + budget
            budget -= bounds[1] - start
        d += day
    raise LiveError(f"no NYSE session time within 40 days after {t.isoformat()}")


def _sent(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The orders a run's execution agent sent."""
    return [o for os_ in (state.get("execution") or {}).get("symbols", {}).values() for o in os_]


class LiveLoop:
    """The bar-driven loop of one live session.

    Parameters
    ----------
    settings, secrets
        Configuration.
    spec : LiveSpec
    feed : Feed, optional
        Default: :func:`build_feed`.
    clock : callable, optional
        Wall clock returning a UTC ``Timestamp`` (tests pass a fake one).
    sleep : callable, optional
        ``sleep(seconds)``; default waits on the stop event, so a stop request ends a wait.
    say : callable, optional
        Receives one human line per bar and per event (the CLI prints them).
    """

    def __init__(self, settings: Settings, secrets: Secrets, spec: LiveSpec, feed: Feed | None = None, *,
                 clock: Callable[[], pd.Timestamp] | None = None, sleep: Callable[[float], None] | None = None,
                 say: Callable[[str], None] | None = None) -> None:
        from agents.runtime.runner import Runner

        self.settings = settings
        self.secrets = secrets
        self.feed = feed or build_feed(settings, secrets, spec)
        spec = replace(spec, symbols=self.feed.symbols)  # canonical names (^GSPC -> SP500)
        if not spec.session:
            spec = replace(spec, session=session_name(spec, getattr(self.feed, "start", None)))
        self.spec = spec
        self.session = spec.session
        self._stop = threading.Event()
        self._clock = clock or (lambda: pd.Timestamp.now(tz="UTC"))
        self._sleep = sleep or (lambda s: self._stop.wait(s))
        self._say = say or (lambda line: log.info("%s", line))
        self.runner = Runner(settings, secrets)
        self.journal = self.runner.journal
        try:
            self.live_state = open_live_state(settings)
        except BaseException:
            self.runner.close()
            raise
        self.lock = SessionLock(settings.home_dir, self.session)
        self._silent = False
        self._last_received: pd.Timestamp | None = None

    # ------------------------------------------------------------------ plumbing

    def request_stop(self) -> None:
        """Finish the bar in progress, then stop (signal handlers call this)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:
        self.lock.release()
        self.live_state.close()
        self.runner.close()
        self.feed.close()

    def _event(self, kind: str, message: str) -> None:
        self.journal.record_live_event(self.session, kind, message)
        self._say(f"[{kind}] {message}")

    def _broker(self):
        return self.runner.ctx.broker({"broker": self.spec.broker})

    def _request(self, batch: BarBatch) -> RunRequest:
        tf = self.feed.timeframe
        as_of = batch.time.strftime("%Y-%m-%d") if tf.unit == "D" else batch.closes_at.isoformat()
        return RunRequest(symbols=self.feed.symbols, source="live:" + self.feed.upstream.name, as_of=as_of,
                          llm=self.spec.llm, broker=self.spec.broker, approve=self.spec.approve,
                          recompute=self.settings.engine.recompute, portfolio=self.settings.portfolio.method)

    def _ids(self, bar_time: str) -> tuple[str, str]:
        digest = hashlib.sha256(f"{self.session}|{bar_time}".encode()).hexdigest()
        return f"live-{digest[:20]}", f"L{digest[20:31]}"

    # ------------------------------------------------------------------ start-up

    def backfill(self) -> int:
        """Put each symbol's history before the first bar to handle into the data cache."""
        from agents.services.data import live_bar_store

        store = live_bar_store(self.settings)
        first = getattr(self.feed, "start", None) or self._clock()
        added = 0
        for sym in self.feed.symbols:
            for tf in self.feed.cache_timeframes():
                frame = self.feed.history(sym, tf, first)
                added += store.append(self.feed.upstream.name, sym, str(tf), frame)
        return added

    def reconcile_book(self) -> dict[str, Any]:
        """Make the journal agree with the broker: settle orders left ``submitting``, journal
        every status and fill the journal missed, and report positions that differ from the
        journal's fills (for the paper broker they cannot, once orders are settled)."""
        from agents.services.risk import journal_status, reconcile

        broker = self._broker()
        name = self.spec.broker
        run_id = self._ids("reconcile")[1]
        try:
            self.journal.get_run(run_id)
        except UnknownRunError:  # the first reconciliation of this session
            self.journal.start_run(run_id, f"live-{self.session}-reconcile", list(self.feed.symbols),
                                   {"live_session": self.session, "purpose": "reconcile broker and journal"})
        settled = reconcile(broker, self.journal, run_id, name)
        self._alert_given_up(settled)
        latest = self.journal.latest_orders(name)
        statuses = broker.orders() if hasattr(broker, "orders") else [
            s for s in (broker.get_order(c) for c in latest) if s is not None]
        updated = []
        for st in statuses:
            have = latest.get(st.client_order_id)
            journaled_fill = self.journal.filled_qty(st.client_order_id)
            if have is None or have["status"] != st.status or abs(journaled_fill - st.filled_qty) > 1e-9:
                journal_status(self.journal, run_id, name, st)
                updated.append(st.client_order_id)
        mismatched = {}
        fills: dict[str, float] = {}
        for coid, o in self.journal.latest_orders(name).items():
            q = self.journal.filled_qty(coid)
            fills[o["symbol"]] = fills.get(o["symbol"], 0.0) + (q if o["side"] == "buy" else -q)
        for sym, pos in broker.positions().items():
            if abs(float(pos.qty) - fills.get(sym, 0.0)) > 1e-6:
                mismatched[sym] = {"broker": float(pos.qty), "journal": fills.get(sym, 0.0)}
        self.journal.finish_run(run_id, "completed", summary={"settled": settled, "updated": updated,
                                                              "position_mismatch": mismatched})
        if settled or updated:
            self._event("reconciled", f"{len(settled)} order(s) settled, {len(updated)} status(es) journaled "
                                      "from the broker")
        if mismatched:
            self._event("position_mismatch", "broker positions differ from the journal's fills: " + ", ".join(
                f"{s} broker {v['broker']:g} vs journal {v['journal']:g}" for s, v in mismatched.items()))
        return {"settled": settled, "updated": updated, "position_mismatch": mismatched}

    def _alert_given_up(self, reconciled: list[dict[str, Any]]) -> None:
        """One ``order_given_up`` event per order whose reconciliation failed too often."""
        for r in reconciled:
            if r.get("status") == "rejected" and "error" in r:
                self._event("order_given_up", f"order {r['client_order_id']} journaled rejected: {r['action']} "
                                              f"({r['error']}); check it at the broker")

    # ------------------------------------------------------------------ one bar

    def _run_bar(self, request: RunRequest, thread_id: str, run_id: str):
        """Start or resume the bar's run; transient errors are retried with backoff."""
        live = self.settings.live
        delay = live.retry_backoff
        for attempt in range(1, live.retries + 1):
            try:
                graph_state = self.runner.checkpoint_state(thread_id)
                if graph_state is None:
                    outcome = self.runner.start(request, run_id=run_id, thread_id=thread_id)
                elif graph_state == "running":  # a crash or an error stopped it mid-graph
                    outcome = self.runner.resume(thread_id)
                else:  # finished, or waiting for approval
                    outcome = self.runner.outcome(thread_id)
                return outcome, attempt
            except TransientError as exc:
                if attempt == live.retries:
                    raise
                self._say(f"bar {request.as_of}: {type(exc).__name__}: {exc}; retry {attempt}/{live.retries - 1} "
                          f"in {delay:.1f} s")
                self._sleep(delay)
                delay = min(delay * 2, 60.0)
        raise AssertionError("unreachable")

    def _finish_bar(self, bar_time: str, request: RunRequest, thread_id: str, run_id: str,
                    received: pd.Timestamp) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            try:
                outcome, attempts = self._run_bar(request, thread_id, run_id)
            except Exception as exc:  # noqa: BLE001 - the loop degrades: bar failed, alert, next bar
                seconds = time.perf_counter() - started
                self.live_state.update_live_bar(self.session, bar_time, "failed", seconds=seconds,
                                                error=f"{type(exc).__name__}: {exc}")
                self._event("bar_failed", f"bar {bar_time} failed ({type(exc).__name__}: {exc}); nothing more is "
                                          "sent for it; journaled orders are reconciled with the next bar")
                return {"status": "failed", "seconds": seconds, "orders": 0}
            seconds = time.perf_counter() - started
            self._alert_given_up((outcome.state.get("execution") or {}).get("reconciled") or [])
            status = "waiting" if outcome.status == "interrupted" else "completed"
            self.live_state.update_live_bar(self.session, bar_time, status, seconds=seconds, attempts=attempts)
            self._say(self._bar_line(bar_time, outcome.state, status, seconds, received))
            retrained = self._retrain_models(request)
        finally:
            self.runner.ctx.release(request.to_dict())
        return {"status": status, "seconds": seconds, "orders": len(_sent(outcome.state)), "retrained": retrained}

    def _retrain_models(self, request: RunRequest) -> int:
        """After the bar: retrain the models due (``ml.retrain_after_days``), off the decision."""
        from agents.services.ml import retrain_due_models

        try:
            done = retrain_due_models(self.runner.ctx, request.to_dict())
        except Exception as exc:  # noqa: BLE001 - a failed retrain never stops the session
            self._event("model_retrain_failed", f"after bar {request.as_of}: {type(exc).__name__}: {exc}")
            return 0
        for d in done:
            if "error" in d:
                self._event("model_retrain_failed", f"{d['symbol']} after bar {request.as_of} ({d['reason']}): "
                                                    f"{d['error']}; the next decision uses the model it finds")
            else:
                self._event("model_retrained", f"{d['symbol']}: model {d['version']} trained on bars to "
                                               f"{d['train_end'][:10]} ({d['reason']}) in {d['seconds']:.1f} s, "
                                               "used from the next bar")
        return sum("error" not in d for d in done)

    def _bar_line(self, bar_time: str, state: dict[str, Any], status: str, seconds: float,
                  received: pd.Timestamp) -> str:
        parts = [f"{bar_time[:16].replace('T', ' ')}"]
        for sym in self.feed.symbols:
            reg = (state.get("regime") or {}).get(sym) or {}
            fam = (reg.get("consensus") or {}).get("family", "n/a")
            dec = ((state.get("decision") or {}).get("symbols") or {}).get(sym) or {}
            w = dec.get("target_weight")
            parts.append(f"{sym} {fam} w={'n/a' if w is None else f'{w:.2f}'}")
        sent = _sent(state)
        rejected = [v for vs in ((state.get("risk_gate") or {}).get("symbols") or {}).values() for v in vs
                    if v.get("action") == "reject"]
        rejected += (state.get("execution") or {}).get("rejected") or []  # stopped by the check at sending
        parts.append("orders: " + (", ".join(f"{o['side']} {o['qty']:g} {o['symbol']} {o['status']}" for o in sent)
                                   or "none"))
        if rejected:
            parts.append("rejected: " + ", ".join(f"{v['order']['symbol']} ({', '.join(v['reasons'])})"
                                                  for v in rejected))
        if status == "waiting":
            parts.append("waiting for approval")
        parts.append(f"{seconds:.2f} s")
        return " | ".join(parts)

    def _expire_waiting(self) -> None:
        """Approvals nobody gave before a newer bar arrived expire as rejections."""
        for row in self.live_state.live_bars(self.session, status="waiting"):
            state = self.runner.checkpoint_state(row["thread_id"])
            if state == "waiting":
                self.runner.resume(row["thread_id"], {"approved": False, "by": "live session",
                                                      "note": "expired: a newer bar arrived before an answer"})
                self.live_state.update_live_bar(self.session, row["bar_time"], "expired")
                self._event("approval_expired", f"bar {row['bar_time']}: no answer before the next bar; not executed")
            else:
                self.live_state.update_live_bar(self.session, row["bar_time"], "completed")

    def handle(self, batch: BarBatch, received: pd.Timestamp | None = None) -> dict[str, Any]:
        """Process one bar time: cache its bars, claim it, run the graph, record the outcome."""
        from agents.services.data import live_bar_store

        received = received if received is not None else self._clock()
        store = live_bar_store(self.settings)
        for (sym, tf), frame in batch.updates.items():
            store.append(self.feed.upstream.name, sym, tf, frame)
        for t in batch.skipped:
            bar_time = t.isoformat()
            thread_id, run_id = self._ids(bar_time)
            if self.live_state.claim_live_bar(self.session, bar_time, thread_id, run_id, received_at=received,
                                              closes_at=(t + self.feed.timeframe.step).isoformat(),
                                              status="skipped") is None:
                self._event("bar_skipped", f"bar {bar_time} closed while the session was down; not traded")
        # Marks this session set (also by an earlier process of it, before a restart) are
        # cleared by the first bar that arrives; other sessions' marks are theirs to clear.
        risk = self.runner.ctx.risk_store()
        ours = [s for s, v in risk.silent_feeds().items() if v["by"] == self.session and s in self.feed.symbols]
        if ours or self._silent:
            back = risk.set_feed_silent(ours, False, "bars again", self.session)
            self._silent = False
            self.live_state.live_heartbeat(self.session, feed_state="ok")
            if back:
                self._event("feed_back", f"bars again ({batch.time.isoformat()}); orders allowed for "
                                         f"{', '.join(back)}")
        self._last_received = received
        self._expire_waiting()
        bar_time = batch.time.isoformat()
        thread_id, run_id = self._ids(bar_time)
        existing = self.live_state.claim_live_bar(self.session, bar_time, thread_id, run_id,
                                                  received_at=received, closes_at=batch.closes_at.isoformat())
        if existing is not None and existing["status"] != "started":
            return {"status": "already " + existing["status"], "seconds": 0.0, "orders": 0}
        return self._finish_bar(bar_time, self._request(batch), thread_id, run_id, received)

    def recover(self) -> tuple[int, int]:
        """Finish bars claimed by an earlier process that did not complete them.

        A bar left ``started`` (the process died in it) is resumed. A replay also runs again
        every bar an earlier process recorded ``failed``, so that no bar of a replay is lost
        for good; a network feed does not (its moment has passed: see the downtime rule).
        Returns ``(resumed, failed)``: bars finished, and bars that failed again.
        """
        rows = self.live_state.live_bars(self.session, status="started")
        if self.feed.virtual:
            rows = sorted(rows + self.live_state.live_bars(self.session, status="failed"), key=lambda r: r["bar_time"])
        n = failed = 0
        for row in rows:
            bar = pd.Timestamp(row["bar_time"])
            batch = BarBatch(bar, pd.Timestamp(row["closes_at"]), self.feed.symbols)
            what = "left unfinished" if row["status"] == "started" else "that failed"
            self._say(f"resuming bar {row['bar_time']} {what} by an earlier process")
            out = self._finish_bar(row["bar_time"], self._request(batch), row["thread_id"], row["run_id"],
                                   pd.Timestamp(row["received_at"]))
            if out["status"] == "failed":
                failed += 1
            else:
                n += 1
        return n, failed

    # ------------------------------------------------------------------ liveness

    def check_silence(self, now: pd.Timestamp) -> bool:
        """Mark the symbols silent (gate rejects, alert) when no bar came by the deadline."""
        if self.feed.virtual or self._silent:
            return self._silent
        last = self._last_handled()
        if last is None:
            return False
        deadline = silence_deadline(last, self.feed.timeframe)
        if now < deadline:
            return False
        self._silent = True
        changed = self.runner.ctx.risk_store().set_feed_silent(
            self.feed.symbols, True, f"no {self.feed.timeframe} bar since {last.isoformat()} (deadline "
                                     f"{deadline.isoformat()})", self.session)
        self._event("feed_silent", f"no {self.feed.timeframe} bar from {self.feed.name} since {last.isoformat()}; "
                                   f"new orders for {', '.join(changed or self.feed.symbols)} are rejected until bars "
                                   "return")
        return True

    def _last_handled(self) -> pd.Timestamp | None:
        rows = self.live_state.live_bars(self.session, limit=1, newest_first=True)
        return pd.Timestamp(rows[0]["bar_time"]) if rows else None

    # ------------------------------------------------------------------ the loop

    def run(self, max_bars: int | None = None) -> LiveSummary:
        """Run until the replay ends, ``max_bars`` bars were handled, or a stop is requested.

        Takes the session's :class:`SessionLock` first (unless already held, e.g. by the CLI)
        and gives it up at the end.

        Raises
        ------
        SessionBusyError
            Another process runs this session; nothing was touched.
        """
        t0 = time.perf_counter()
        mine = not self.lock.held
        self.lock.acquire()
        try:
            return self._run(max_bars, t0)
        finally:
            if mine:
                self.lock.release()

    def _run(self, max_bars: int | None, t0: float) -> LiveSummary:
        self.live_state.open_live_session(self.session, self.spec.to_dict(), os.getpid())
        handled = skipped = orders = 0
        seconds: list[float] = []
        stopped_by = "stop requested"
        try:
            added = self.backfill()
            if added:
                self._say(f"data cache: {added} bars of history added")
            self.reconcile_book()
            resumed, failed = self.recover()  # a bar that failed again fails this process too
            poll = self.settings.live.poll_seconds
            feed_error: str | None = None
            while not self.stopping:
                now = self._clock()
                self.live_state.live_heartbeat(self.session, feed_state="silent" if self._silent else "ok")
                after = self._last_handled()
                if self.feed.exhausted(after):
                    stopped_by = "end of replay"
                    break
                try:
                    batch = self.feed.next_batch(after, now)
                except IntegrationError as exc:
                    # The feed's own retries are spent. No bar means no order, and the silence
                    # deadline blocks orders from other processes too: keep polling.
                    if str(exc) != feed_error:
                        self._event("feed_error", f"{self.feed.name}: {exc}; polling again every {poll:g} s")
                    feed_error = str(exc)
                    self.check_silence(now)
                    self._sleep(poll)
                    continue
                feed_error = None
                if batch is None:
                    self.check_silence(now)
                    self._sleep(poll)
                    continue
                out = self.handle(batch, received=now)
                skipped += len(batch.skipped)
                if out["status"] in ("completed", "waiting"):
                    handled += 1
                    seconds.append(out["seconds"])
                elif out["status"] == "failed":
                    failed += 1
                orders += out["orders"]
                if max_bars is not None and handled + failed >= max_bars:
                    stopped_by = "max bars"
                    break
                if self.feed.virtual and self.spec.speed > 0 and not self.stopping:
                    self._sleep(self.feed.timeframe.step.total_seconds() / self.spec.speed)
        except BaseException as exc:
            self.live_state.close_live_session(self.session, "failed", note=f"{type(exc).__name__}: {exc}")
            raise
        status = "finished" if stopped_by == "end of replay" else "stopped"
        self.live_state.close_live_session(self.session, status, note=stopped_by)
        self._event("stopped", f"{stopped_by}: {handled} bar(s) handled, {failed} failed, {orders} order(s) sent")
        return LiveSummary(self.session, handled, resumed, skipped, failed, orders, stopped_by,
                           time.perf_counter() - t0, tuple(seconds))


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def live_status(settings: Settings, session: str | None = None, now: pd.Timestamp | None = None) -> dict[str, Any]:
    """Where every live session (or one) stands: last bar, lag, heartbeat, risk state.

    Lag is the time from the close of the last handled bar to ``now`` for network feeds,
    and the last bar's processing time for replays (their bars are historical).
    """
    from agents.services.risk import RiskStateStore
    from integrations import Journal

    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    out: dict[str, Any] = {"now": now.isoformat(), "sessions": []}
    # Sessions and their bars are working state; their events are in the audit journal.
    with open_live_state(settings) as live_state, Journal(settings.paths.journal) as journal:
        for s in live_state.live_sessions():
            if session is not None and s["session"] != session:
                continue
            spec = s["spec"]
            bars = live_state.live_bars(s["session"])
            counts: dict[str, int] = {}
            for b in bars:
                counts[b["status"]] = counts.get(b["status"], 0) + 1
            done = [b for b in bars if b["status"] in ("completed", "waiting", "expired")]
            last = done[-1] if done else None
            alive = _pid_alive(s["pid"]) if s["status"] == "running" else False
            state = s["status"]
            if state == "running" and not alive:
                state = "crashed (process gone; starting it again resumes)"
            heartbeat_age = None
            if s["heartbeat_at"]:
                heartbeat_age = (now - pd.Timestamp(s["heartbeat_at"])).total_seconds()
            lag = None
            if last is not None:
                if spec.get("feed") == "replay":
                    lag = last["seconds"]
                else:
                    lag = (now - pd.Timestamp(last["closes_at"])).total_seconds()
            secs = [b["seconds"] for b in done if b["seconds"] is not None]
            out["sessions"].append({
                "session": s["session"], "state": state, "pid": s["pid"], "spec": spec,
                "heartbeat_at": s["heartbeat_at"], "heartbeat_age_seconds": heartbeat_age,
                "feed_state": s["feed_state"], "note": s["note"],
                "last_bar": None if last is None else last["bar_time"],
                "last_bar_finished_at": None if last is None else last["finished_at"],
                "lag_seconds": lag, "lag_kind": "processing time" if spec.get("feed") == "replay" else "since bar close",
                "bars": counts,
                "bar_seconds_p50": float(np.percentile(secs, 50)) if secs else None,
                "events": journal.latest_live_events(s["session"], 5),
            })
    risk = RiskStateStore(settings.paths.risk_state)
    try:
        st = risk.load()
        out["risk"] = {"trading_state": st.trading_state, "reason": st.reason, "silent_feeds": risk.silent_feeds()}
    finally:
        risk.close()
    return out


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def format_live_status(doc: dict[str, Any], *, with_trading_state: bool = True) -> list[str]:
    """Human lines for :func:`live_status` (``regimedesk live status`` and Telegram /status)."""
    lines = []
    risk = doc["risk"]
    if with_trading_state:
        lines.append(f"trading state {risk['trading_state']}" + (f" ({risk['reason']})" if risk["reason"] else ""))
    if risk["silent_feeds"]:
        lines.append("silent feeds (new orders rejected): " + ", ".join(
            f"{s} since {v['since'][:19]}" for s, v in risk["silent_feeds"].items()))
    if not doc["sessions"]:
        lines.append("no live session has run yet ('regimedesk live SYMBOL... --feed replay')")
    for s in doc["sessions"]:
        spec = s["spec"]
        counts = ", ".join(f"{n} {k}" for k, n in sorted(s["bars"].items())) or "no bars yet"
        lines.append(f"{s['session']}: {s['state']} (pid {s['pid']}), feed {spec['feed']} {spec['timeframe']}, "
                     f"broker {spec['broker']}, symbols {', '.join(spec['symbols'])}")
        lines.append(f"  last bar {s['last_bar'] or '-'}, lag {_age(s['lag_seconds'])} ({s['lag_kind']}), "
                     f"heartbeat {_age(s['heartbeat_age_seconds'])} ago, feed {s['feed_state']}; bars: {counts}")
        for e in s["events"][-3:]:
            lines.append(f"  {e['ts'][:19]} {e['kind']}: {e['message']}")
    return lines
