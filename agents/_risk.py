"""Risk plumbing around the pure gate: limits from settings, the persisted risk state, the
market snapshot, brokers, order proposal and idempotent execution.

The gate itself (``analytics.risk_gate.evaluate``) is pure; this module feeds it and acts on
its verdicts. Nothing here reads LLM text.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from agents.config import Secrets, Settings
from analytics import RegimeDeskError
from analytics.risk_gate import (
    TRADING_STATES,
    MarketSnapshot,
    PendingOrder,
    Portfolio,
    ProposedOrder,
    RecentOrder,
    RiskLimits,
    RiskState,
)
from integrations._sqlite import apply_schema, open_database

__all__ = [
    "risk_limits",
    "RiskStateStore",
    "RiskStateError",
    "run_clock",
    "market_snapshot",
    "build_broker",
    "portfolio_of",
    "propose_orders",
    "reconcile",
    "ReconcileError",
    "RECONCILE_ATTEMPTS",
    "submit_approved",
    "journal_status",
    "symbol_var_backtest",
]

#: Bars per timeframe name used by the gate's staleness rule (daily decisions).
_DAY = 86_400.0


def risk_limits(settings: Settings) -> RiskLimits:
    """The gate's limits from ``[risk]`` (0 switches the optional checks off)."""
    r = settings.risk

    def opt(x: float) -> float | None:
        return x if x > 0 else None

    return RiskLimits(
        allowed_symbols=frozenset(r.allowed_symbols) if r.allowed_symbols else None,
        require_market_open=r.require_market_open,
        max_staleness_bars=opt(r.max_staleness_bars),
        collar_pct=opt(r.collar_pct),
        min_confidence=opt(r.min_confidence),
        duplicate_window_seconds=opt(r.duplicate_window_seconds),
        max_orders_per_window=r.max_orders_per_window or None,
        rate_window_seconds=r.rate_window_seconds,
        max_order_qty=opt(r.max_order_qty),
        max_order_notional=opt(r.max_order_notional),
        allow_short=r.allow_short,
        max_position_weight=r.max_position_weight,
        max_gross_exposure=r.max_gross_exposure,
        max_net_exposure=r.max_net_exposure,
        regime_gross_caps=dict(r.regime_gross_caps),
        var_limit=opt(r.var_limit),
        es_limit=opt(r.es_limit),
        var_level=r.var_level,
        var_method=r.var_method,
        daily_loss_reduce=opt(r.daily_loss_reduce),
        daily_loss_halt=opt(r.daily_loss_halt),
        max_drawdown_halt=opt(r.max_drawdown_halt),
    )


class RiskStateError(RegimeDeskError):
    """The risk-state file cannot be opened or is from a newer RegimeDesk."""


_RISK_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS risk_state (id INTEGER PRIMARY KEY CHECK (id = 1), doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS risk_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL, from_state TEXT NOT NULL,
    to_state TEXT NOT NULL, reason TEXT NOT NULL, by TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS silent_feeds (
    symbol TEXT PRIMARY KEY, since TEXT NOT NULL, reason TEXT NOT NULL, by TEXT NOT NULL);
"""


class RiskStateStore:
    """The risk state in SQLite (``home/risk.sqlite``): current state plus an event history.

    Survives restarts; every change of the trading state is kept with who and why.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = open_database(self.path, what="risk state", error=RiskStateError, setup=lambda conn: apply_schema(
            conn, _RISK_SCHEMA, 1, pd.Timestamp.now(tz="UTC").isoformat(), what="risk state", path=self.path,
            error=RiskStateError))

    def close(self) -> None:
        self._conn.close()

    def load(self) -> RiskState:
        """The persisted state (ACTIVE with no history on first use).

        A state that cannot be read is HALTED: the gate fails closed.
        """
        row = self._conn.execute("SELECT doc FROM risk_state WHERE id = 1").fetchone()
        if row is None:
            return RiskState()
        try:
            d = json.loads(row[0])
            recent = tuple(
                RecentOrder(pd.Timestamp(r["ts"]), r["client_order_id"], r["symbol"], r["side"], float(r["qty"]))
                for r in d.get("recent", [])
            )
            st = RiskState(d["trading_state"], d.get("reason"), d.get("day"), d.get("day_start_equity"),
                           d.get("peak_equity"), recent)
        except (ValueError, KeyError, TypeError) as exc:
            return RiskState("HALTED", f"stored risk state unreadable: {exc}")
        if st.trading_state not in TRADING_STATES:
            return replace(st, trading_state="HALTED", reason=f"unknown stored state {st.trading_state!r}")
        return st

    def save(self, state: RiskState, events: tuple[str, ...] = (), by: str = "gate") -> None:
        """Persist ``state``; log a transition when the trading state changed."""
        d = asdict(state)
        d["recent"] = [{**asdict(r), "ts": pd.Timestamp(r.ts).isoformat()} for r in state.recent]
        with self._lock:
            before = self.load().trading_state
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute("INSERT OR REPLACE INTO risk_state (id, doc) VALUES (1, ?)", (json.dumps(d),))
                if before != state.trading_state:
                    why = state.reason or "; ".join(events) or "changed"
                    self._conn.execute(
                        "INSERT INTO risk_events (ts, from_state, to_state, reason, by) VALUES (?, ?, ?, ?, ?)",
                        (pd.Timestamp.now(tz="UTC").isoformat(), before, state.trading_state, why, by),
                    )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def set_trading_state(self, to: str, reason: str, by: str) -> RiskState:
        """A person's halt / reduce / resume."""
        if to not in TRADING_STATES:
            raise ValueError(f"trading state must be one of {', '.join(TRADING_STATES)}, not {to!r}")
        st = replace(self.load(), trading_state=to, reason=reason)
        if to == "ACTIVE":  # a resume starts the breakers afresh from the next evaluation
            st = replace(st, day=None, day_start_equity=None)
        self.save(st, by=by)
        return st

    def set_feed_silent(self, symbols, silent: bool, reason: str, by: str) -> list[str]:
        """Mark ``symbols`` as having a silent live feed (the gate then rejects their new
        orders) or clear the mark. Returns the symbols whose mark changed."""
        changed = []
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for sym in symbols:
                    if silent:
                        cur = self._conn.execute(
                            "INSERT OR IGNORE INTO silent_feeds (symbol, since, reason, by) VALUES (?, ?, ?, ?)",
                            (sym, pd.Timestamp.now(tz="UTC").isoformat(), reason, by))
                    else:
                        cur = self._conn.execute("DELETE FROM silent_feeds WHERE symbol = ?", (sym,))
                    if cur.rowcount:
                        changed.append(sym)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return changed

    def silent_feeds(self) -> dict[str, dict[str, str]]:
        """``symbol -> {since, reason, by}`` for every symbol whose live feed is silent."""
        rows = self._conn.execute("SELECT symbol, since, reason, by FROM silent_feeds ORDER BY symbol").fetchall()
        return {r[0]: {"since": r[1], "reason": r[2], "by": r[3]} for r in rows}

    def events(self, limit: int = 20) -> list[dict[str, Any]]:
        rows = self._conn.execute(
            "SELECT ts, from_state, to_state, reason, by FROM risk_events ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [dict(zip(("ts", "from", "to", "reason", "by"), r, strict=True)) for r in rows]


def symbol_var_backtest(store, symbol: str, *, level: float, method: str, window: int):
    """VaR backtest of a symbol's daily close-to-close returns.

    Returns ``(returns, result)``: the returns as a Series and the
    :class:`analytics.VaRBacktestResult`, whose forecast day ``i`` is ``returns.index[window + i]``.
    Shared by ``regimedesk risk var`` and the PDF report so they show the same numbers.
    """
    from analytics import var_backtest

    close = store.get(symbol, "MT").frame["close"].astype(float)
    returns = close.pct_change().dropna()
    return returns, var_backtest(returns, level=level, method=method, window=window)


def run_clock(store, request: Mapping[str, Any]) -> pd.Timestamp:
    """The run's "now": the as-of clock; for the historical builtin source without an
    as-of, the end of its last day (its data stops in 2018); otherwise the wall clock."""
    if store.now is not None:
        return store.now
    if request.get("source") == "builtin":
        last = max(store.get(s, "MT").frame.index[-1] for s in request["symbols"])
        return last.normalize() + pd.Timedelta(days=1)
    return pd.Timestamp.now(tz="UTC")


def market_snapshot(store, symbols, now: pd.Timestamp, regime_labels: Mapping[str, str],
                    n_returns: int = 500, feed_silent: Mapping[str, Any] | None = None) -> MarketSnapshot:
    """Last daily close, bar time and returns per symbol from the run's bars.

    A symbol whose bars cannot be loaded is left out (the gate then rejects its orders for a
    missing price / not tradable). ``feed_silent`` lists symbols whose live feed is silent
    (:meth:`RiskStateStore.silent_feeds`).
    """
    prices, last, secs, tradable, opened, returns = {}, {}, {}, {}, {}, {}
    for s in symbols:
        try:
            frame = store.get(s, "MT").frame
        except RegimeDeskError:
            continue
        close = frame["close"].astype(float)
        prices[s] = float(close.iloc[-1])
        last[s] = frame.index[-1]
        secs[s] = _DAY
        tradable[s] = True
        opened[s] = _nyse_open(now)
        returns[s] = close.pct_change().dropna().to_numpy()[-n_returns:]
    return MarketSnapshot(now=now, prices=prices, last_bar=last, bar_seconds=secs, tradable=tradable,
                          market_open=opened, regime=dict(regime_labels), returns=returns,
                          feed_silent={s: True for s in (feed_silent or {}) if s in symbols})


def _nyse_open(now: pd.Timestamp) -> bool:
    """Regular US equity session, Monday to Friday 9:30-16:00 New York (holidays not modelled)."""
    ny = pd.Timestamp(now).tz_convert("America/New_York")
    minutes = ny.hour * 60 + ny.minute
    return ny.weekday() < 5 and 570 <= minutes < 960


def build_broker(settings: Settings, secrets: Secrets, name: str):
    """The broker named by the run: ``paper`` (local SQLite) or ``alpaca``."""
    if name == "paper":
        from integrations.brokers import PaperBroker

        p = settings.broker.paper
        return PaperBroker(settings.home_dir / "paper_broker.sqlite", initial_cash=p.initial_cash,
                           slippage_bps=p.slippage_bps, commission_bps=p.commission_bps, fill=p.fill)
    if name == "alpaca":
        from integrations.brokers import AlpacaBroker

        a = settings.broker.alpaca
        return AlpacaBroker(secrets.get("alpaca_api_key"), secrets.get("alpaca_secret_key"), paper=a.paper,
                            live_confirmed=a.live_confirmed, base_url=a.base_url)
    raise ValueError(f"broker must be paper or alpaca, not {name!r}")


def portfolio_of(broker, prices: Mapping[str, float]) -> tuple[Portfolio, float]:
    """``(Portfolio, equity)`` as the broker reports them, open orders valued at ``prices``
    (an open order in a symbol without a price is NaN, which the gate rejects)."""
    acct = broker.account()
    positions = {s: float(p.qty) for s, p in broker.positions().items()}
    pending = tuple(
        PendingOrder(o.client_order_id, o.symbol, o.side, float(o.qty - o.filled_qty),
                     float(prices.get(o.symbol, float("nan"))))
        for o in broker.open_orders()
    )
    return Portfolio(cash=float(acct.cash), positions=positions, pending=pending), float(acct.equity)


def propose_orders(
    strategy: str, targets: Mapping[str, float | None], portfolio: Portfolio, equity: float,
    prices: Mapping[str, float], bar_times: Mapping[str, pd.Timestamp], confidence: Mapping[str, float | None],
) -> list[ProposedOrder]:
    """Orders that move each symbol from its position (plus open orders) to its target weight.

    Quantities are whole shares rounded toward the current position; a symbol without a
    target, price or equity gets no order. Client order ids are deterministic in (strategy,
    symbol, bar time, side), so a rerun for the same bar proposes the same ids.
    """
    from integrations.brokers import client_order_id

    orders = []
    for sym, w in targets.items():
        p = prices.get(sym)
        if w is None or p is None or not (math.isfinite(p) and p > 0 and math.isfinite(equity) and equity > 0):
            continue
        pending = sum((o.qty if o.side == "buy" else -o.qty) for o in portfolio.pending if o.symbol == sym)
        have = portfolio.positions.get(sym, 0.0) + pending
        want = w * equity / p
        delta = want - have
        qty = float(np.floor(abs(delta)))
        if qty < 1:
            continue
        side = "buy" if delta > 0 else "sell"
        coid = client_order_id(strategy, sym, pd.Timestamp(bar_times[sym]).isoformat(), side)
        orders.append(ProposedOrder(coid, sym, side, qty, "market", None, float(p), confidence.get(sym)))
    return orders


#: Failed reconciliations of one ``submitting`` order before it is given up (journaled ``rejected``).
RECONCILE_ATTEMPTS = 3


class ReconcileError(RegimeDeskError):
    """An order left ``submitting`` could not be settled with the broker (this attempt)."""


def reconcile(broker, journal, run_id: str, broker_name: str) -> list[dict[str, Any]]:
    """Settle orders journaled as ``submitting`` whose outcome was never recorded.

    A crash between journaling an order and hearing back from the broker leaves such an
    entry. The broker is asked by client order id: if it has the order, its status is
    journaled; if it never saw it, the order (approved by the gate then) is sent now, under
    the same id, so it goes out exactly once.

    An attempt that fails with a :class:`~integrations.TransientError` (broker unreachable)
    is raised as it is and not counted: nothing is known about the order. Any other failure
    is journaled as status ``reconcile_failed`` (with the error and the attempt number) and,
    after all orders were tried, raised as :class:`ReconcileError`: the run stops before it
    sends anything, because the book is uncertain. At the :data:`RECONCILE_ATTEMPTS`-th
    failure the order is given up instead: journaled ``rejected`` with reason
    ``reconcile_failed``, reported with action ``given up``, and the run goes on (the gate
    sizes new orders on the broker's own positions and open orders, so an order the broker
    does hold is still counted).

    Returns
    -------
    list of dict
        Per settled order: ``client_order_id``, ``action``, ``status`` (and ``error`` when
        given up).

    Raises
    ------
    ReconcileError
        If an order failed to settle and has attempts left.
    """
    from integrations import TransientError
    from integrations.brokers import OrderRequest

    done, failed = [], []
    for coid, ev in journal.latest_orders(broker_name).items():
        if ev["status"] not in ("submitting", "reconcile_failed"):
            continue
        failures = int(ev["payload"].get("attempt", 0)) if ev["status"] == "reconcile_failed" else 0
        request = ev["payload"]["request"] if ev["status"] == "reconcile_failed" else ev["payload"]
        try:
            status = broker.get_order(coid)
            if status is None:
                status = broker.submit(OrderRequest(**request))
                action = "sent after restart"
            else:
                action = "found at the broker"
            journal_status(journal, run_id, broker_name, status)
        except TransientError:
            raise
        except Exception as exc:  # noqa: BLE001 - counted; the order is given up after RECONCILE_ATTEMPTS
            error = f"{type(exc).__name__}: {exc}"
            attempt = failures + 1
            if attempt >= RECONCILE_ATTEMPTS:
                journal.record_order(run_id, coid, ev["symbol"], ev["side"], ev["qty"], "rejected", broker_name,
                                     {"reason": "reconcile_failed", "error": error, "attempts": attempt,
                                      "request": request})
                done.append({"client_order_id": coid, "action": f"given up after {attempt} failed reconciliations",
                             "status": "rejected", "error": error})
            else:
                journal.record_order(run_id, coid, ev["symbol"], ev["side"], ev["qty"], "reconcile_failed",
                                     broker_name, {"error": error, "attempt": attempt, "request": request})
                failed.append(f"{coid} (attempt {attempt} of {RECONCILE_ATTEMPTS}: {error})")
            continue
        done.append({"client_order_id": coid, "action": action, "status": status.status})
    if failed:
        raise ReconcileError("could not settle order(s) left by an interrupted run, so nothing new is sent: "
                             + "; ".join(failed))
    return done


def journal_status(journal, run_id: str, broker_name: str, status) -> None:
    """Journal what the broker reports about an order, and the part of its fill not yet journaled.

    The same status may be reported more than once (a resumed run, a reconciliation); fills
    are journaled as the increase over what the journal already holds, so the journal's
    fills of an order always add up to the broker's filled quantity.
    """
    journal.record_order(run_id, status.client_order_id, status.symbol, status.side, status.qty,
                         status.status, broker_name, status.to_dict())
    new = float(status.filled_qty) - journal.filled_qty(status.client_order_id)
    if new > 1e-9 and status.avg_fill_price:
        journal.record_fill(run_id, status.client_order_id, new, status.avg_fill_price,
                            status.submitted_at or pd.Timestamp.now(tz="UTC").isoformat())


def submit_approved(broker, journal, run_id: str, broker_name: str, order: ProposedOrder, qty: float,
                    bar_time: str) -> dict[str, Any]:
    """Journal the order as ``submitting``, then send it; journal what the broker answered.

    The journal entry comes first, so a crash in between is found by :func:`reconcile`.
    """
    from integrations.brokers import OrderRequest

    req = OrderRequest(client_order_id=order.client_order_id, symbol=order.symbol, side=order.side, qty=qty,
                       order_type=order.order_type, limit_price=order.limit_price,
                       reference_price=order.reference_price, bar_time=bar_time)
    journal.record_order(run_id, req.client_order_id, req.symbol, req.side, req.qty, "submitting", broker_name,
                         asdict(req))
    status = broker.submit(req)
    journal_status(journal, run_id, broker_name, status)
    return status.to_dict()
