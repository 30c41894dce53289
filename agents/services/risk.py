"""Risk plumbing around the pure gate: limits from settings, the persisted risk state, the
market snapshot, brokers, order proposal and idempotent execution.

The gate itself (``analytics.risk_gate.evaluate``) is pure; this module feeds it and acts on
its verdicts. Nothing here reads LLM text.
"""

from __future__ import annotations

import functools
import json
import math
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agents.config import Secrets, Settings
from analytics import RegimeDeskError
from analytics.risk_gate import (
    TRADING_STATES,
    GateResult,
    MarketSnapshot,
    PendingOrder,
    Portfolio,
    ProposedOrder,
    RecentOrder,
    RiskLimits,
    RiskState,
    Verdict,
    evaluate,
)
from integrations import apply_schema, open_database

if TYPE_CHECKING:  # imported where used, so that 'regimedesk risk status' does not load pandas
    import pandas as pd

__all__ = [
    "risk_limits",
    "RiskStateStore",
    "RiskStateError",
    "run_clock",
    "market_snapshot",
    "regime_labels",
    "recheck_approved",
    "STALE_APPROVAL",
    "nyse_session",
    "build_broker",
    "portfolio_of",
    "BrokerBook",
    "fetch_book",
    "run_book",
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
    """The gate's limits from ``[risk]``.

    0 switches off the checks listed in :data:`agents.config.RISK_OFF_AT_ZERO` (they become
    ``None``) and nothing else. A value of one of those keys that is not a finite number >= 0
    raises ValueError naming the key: the configuration refuses such values at load, and
    settings built in code must not switch a check off by accident (a NaN compared with
    ``> 0`` would).
    """
    from agents.config import RISK_OFF_AT_ZERO

    r = settings.risk

    def opt(key: str) -> float | None:
        x = getattr(r, key)
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or x < 0:
            raise ValueError(f"risk.{key} must be a finite number >= 0 (0 switches the check off), got {x!r}")
        return x if x > 0 else None

    off = {key: opt(key) for key in RISK_OFF_AT_ZERO}
    if off["max_orders_per_window"] is not None:
        off["max_orders_per_window"] = int(off["max_orders_per_window"])
    return RiskLimits(
        allowed_symbols=frozenset(r.allowed_symbols) if r.allowed_symbols else None,
        require_market_open=r.require_market_open,
        rate_window_seconds=r.rate_window_seconds,
        allow_short=r.allow_short,
        max_position_weight=r.max_position_weight,
        max_gross_exposure=r.max_gross_exposure,
        max_net_exposure=r.max_net_exposure,
        regime_gross_caps=dict(r.regime_gross_caps),
        regime_var_scales=dict(r.regime_var_scales),
        var_level=r.var_level,
        var_method=r.var_method,
        min_order_qty=r.min_order_qty,
        **off,
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


def _timestamp(text: str) -> pd.Timestamp:
    import pandas as pd

    return pd.Timestamp(text)


class RiskStateStore:
    """The risk state in SQLite (``home/risk.sqlite``): current state plus an event history.

    Survives restarts; every change of the trading state is kept with who and why.
    """

    def __init__(self, path: str | Path) -> None:
        # Opening and reading the state needs no pandas, so 'regimedesk risk status' starts fast.
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = open_database(self.path, what="risk state", error=RiskStateError, setup=lambda conn: apply_schema(
            conn, _RISK_SCHEMA, 1, datetime.now(UTC).isoformat(), what="risk state", path=self.path,
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
                RecentOrder(_timestamp(r["ts"]), r["client_order_id"], r["symbol"], r["side"], float(r["qty"]))
                for r in d.get("recent", [])
            )
            st = RiskState(d["trading_state"], d.get("reason"), d.get("day"), d.get("day_start_equity"),
                           d.get("peak_equity"), recent)
        except (ValueError, KeyError, TypeError) as exc:
            return RiskState("HALTED", f"stored risk state unreadable: {exc}")
        if st.trading_state not in TRADING_STATES:
            return replace(st, trading_state="HALTED", reason=f"unknown stored state {st.trading_state!r}")
        return st

    def _write(self, before: RiskState, state: RiskState, why: str, by: str) -> None:
        """Write ``state`` and, when the trading state changed, its history row (inside the
        caller's transaction)."""
        import pandas as pd

        d = asdict(state)
        d["recent"] = [{**asdict(r), "ts": pd.Timestamp(r.ts).isoformat()} for r in state.recent]
        self._conn.execute("INSERT OR REPLACE INTO risk_state (id, doc) VALUES (1, ?)", (json.dumps(d),))
        if before.trading_state != state.trading_state:
            self._conn.execute(
                "INSERT INTO risk_events (ts, from_state, to_state, reason, by) VALUES (?, ?, ?, ?, ?)",
                (pd.Timestamp.now(tz="UTC").isoformat(), before.trading_state, state.trading_state, why, by),
            )

    def _transaction(self, change: Callable[[RiskState], tuple[RiskState, str, Any]], by: str) -> Any:
        """``change(current) -> (new, why, value)`` applied atomically: the state is read and
        written inside one ``BEGIN IMMEDIATE`` transaction, so no other writer (another
        process's gate, a person's halt) can commit in between; returns ``value``."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                before = self.load()
                new, why, value = change(before)
                self._write(before, new, why, by)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return value

    @staticmethod
    def _no_looser(before: RiskState, state: RiskState) -> RiskState:
        """``state`` with a trading state at least as strict as ``before``'s (ACTIVE < REDUCING
        < HALTED): only :meth:`set_trading_state` (a person) may loosen it. An unknown trading
        state is HALTED (fail closed)."""
        if state.trading_state not in TRADING_STATES:
            return replace(state, trading_state="HALTED", reason=f"unknown trading state {state.trading_state!r}")
        if TRADING_STATES.index(state.trading_state) < TRADING_STATES.index(before.trading_state):
            return replace(state, trading_state=before.trading_state, reason=before.reason)
        return state

    def save(self, state: RiskState, events: tuple[str, ...] = (), by: str = "gate") -> RiskState:
        """Persist ``state`` atomically, never loosening the stored trading state.

        A trading state less strict than the stored one (e.g. ACTIVE over a person's HALTED)
        is not written: the stored one is kept with its reason. Returns what was stored; a
        transition is logged in the history with ``by``.
        """
        def change(before: RiskState) -> tuple[RiskState, str, RiskState]:
            new = self._no_looser(before, state)
            return new, new.reason or "; ".join(events) or "changed", new

        return self._transaction(change, by)

    def commit_gate(self, evaluate_fn: Callable[[RiskState], GateResult], by: str = "gate") -> GateResult:
        """Run the gate on the stored state and store its result, in one transaction.

        ``evaluate_fn(state)`` gets the state as stored at this moment (a halt committed by
        another process before is seen; one committed later waits for this transaction and
        then wins). The state stored afterwards is ``evaluate_fn``'s, except that the gate can
        only tighten the trading state by itself (ACTIVE -> REDUCING -> HALTED), never loosen
        it. Returns the gate's result with the state as stored.
        """
        def change(before: RiskState) -> tuple[RiskState, str, GateResult]:
            result = evaluate_fn(before)
            new = self._no_looser(before, result.state)
            return new, new.reason or "; ".join(result.events) or "changed", replace(result, state=new)

        return self._transaction(change, by)

    def set_trading_state(self, to: str, reason: str, by: str) -> RiskState:
        """A person's halt / reduce / resume: the only way to loosen the trading state.

        Atomic: only the trading state, its reason (and, on resume, the breakers' day) change;
        whatever else another writer stored (approved orders, the peak) is kept.
        """
        if to not in TRADING_STATES:
            raise ValueError(f"trading state must be one of {', '.join(TRADING_STATES)}, not {to!r}")

        def change(before: RiskState) -> tuple[RiskState, str, RiskState]:
            st = replace(before, trading_state=to, reason=reason)
            if to == "ACTIVE":  # a resume starts the breakers afresh from the next evaluation
                st = replace(st, day=None, day_start_equity=None)
            return st, reason, st

        return self._transaction(change, by)

    def set_feed_silent(self, symbols, silent: bool, reason: str, by: str) -> list[str]:
        """Mark ``symbols`` as having a silent live feed (the gate then rejects their new
        orders) or clear the mark. Returns the symbols whose mark changed."""
        import pandas as pd

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
    import pandas as pd

    if store.now is not None:
        return store.now
    if request.get("source") == "builtin":
        last = max(store.get(s, "MT").frame.index[-1] for s in request["symbols"])
        return last.normalize() + pd.Timedelta(days=1)
    return pd.Timestamp.now(tz="UTC")


def market_snapshot(store, symbols, now: pd.Timestamp, regime_labels: Mapping[str, str],
                    n_returns: int = 500, feed_silent: Mapping[str, Any] | None = None, *,
                    check_market_open: bool = True) -> MarketSnapshot:
    """Last daily close, bar time and returns per symbol from the run's bars.

    A symbol whose bars cannot be loaded is left out (the gate then rejects its orders for a
    missing price / not tradable). ``feed_silent`` lists symbols whose live feed is silent
    (:meth:`RiskStateStore.silent_feeds`). ``check_market_open=False`` leaves
    ``market_open`` empty (every symbol closed) and spares loading the NYSE calendar; pass
    it only when the limits do not require an open market.
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
        if check_market_open:
            opened[s] = _nyse_open(now)
        returns[s] = close.pct_change().dropna().to_numpy()[-n_returns:]
    return MarketSnapshot(now=now, prices=prices, last_bar=last, bar_seconds=secs, tradable=tradable,
                          market_open=opened, regime=dict(regime_labels), returns=returns,
                          feed_silent={s: True for s in (feed_silent or {}) if s in symbols})


def regime_labels(state: Mapping[str, Any], symbols) -> dict[str, str]:
    """The MT regime label per symbol of a run's state (for the gate's regime caps)."""
    labels = {}
    for sym in symbols:
        reg = (state.get("regime") or {}).get(sym) or {}
        mt = (reg.get("timeframes") or {}).get("MT") or {}
        if mt.get("available"):
            labels[sym] = mt["label"]
    return labels


#: Reason code of an approved order not sent because its approval is older than
#: ``risk.max_approval_age_seconds`` (wall clock since the gate approved it).
STALE_APPROVAL = "stale_approval"


def recheck_approved(store: RiskStateStore, approved: Sequence[tuple[ProposedOrder, float]], portfolio: Portfolio,
                     market: MarketSnapshot, limits: RiskLimits, *, checked_at: str | None,
                     now: pd.Timestamp, max_age_seconds: float) -> tuple[Verdict, ...]:
    """The gate again, at the moment of sending, on orders it approved earlier in the run.

    Execution calls this right before sending, so that what happened since the gate ran (a
    person's halt or reduce, a silent feed, stale data, a circuit breaker, a late approval)
    stops the orders. The result can only shrink or reject: each order is checked at the
    quantity the gate approved, and a verdict never grants more.

    Parameters
    ----------
    store : RiskStateStore
        The state is read and written in one transaction (:meth:`RiskStateStore.commit_gate`);
        a circuit-breaker escalation is stored, the gate's record of approved orders is kept.
    approved : sequence of (ProposedOrder, float)
        Each order the gate approved and the quantity it approved.
    portfolio, market, limits
        As now (broker, bars and silent feeds at the moment of sending).
    checked_at : str or None
        ISO time (wall clock) at which the gate approved them; missing or unreadable is too old.
    now : Timestamp
        The wall clock now.
    max_age_seconds : float
        Longest time between the gate and the sending; older orders are all rejected with
        :data:`STALE_APPROVAL`.

    Returns
    -------
    tuple of Verdict
        One per order, in order, ``qty`` at most the approved quantity.
    """
    import pandas as pd

    orders = [replace(o, qty=float(q)) for o, q in approved]
    if not orders:
        return ()
    try:
        age = (pd.Timestamp(now) - pd.Timestamp(checked_at)).total_seconds() if checked_at else float("nan")
    except (ValueError, TypeError):
        age = float("nan")
    ids = {o.client_order_id for o in orders if o.client_order_id}

    def forget(st: RiskState, coids: set[str]) -> RiskState:
        # An order stopped here is never sent: it must not count as recently approved (the
        # duplicate window and the throttle), or the same order proposed again after a resume
        # would be refused as a duplicate of one that never existed.
        return replace(st, recent=tuple(r for r in st.recent if r.client_order_id not in coids))

    if not (math.isfinite(age) and age <= max_age_seconds):
        stale = tuple(Verdict(o, "reject", 0.0, (STALE_APPROVAL,)) for o in orders)
        store.commit_gate(lambda st: GateResult(stale, forget(st, ids), ()), by="execution")
        return stale

    def again(st: RiskState) -> GateResult:
        # The gate recorded these orders as approved; checking them against that record would
        # call each a duplicate of itself. Check them without it, and keep the record of those
        # that pass (of the stopped ones, see forget).
        result = evaluate(orders, portfolio, market, limits, forget(st, ids))
        stopped = {o.client_order_id for o, v in zip(orders, result.verdicts, strict=True)
                   if o.client_order_id and not v.approved}
        return replace(result, state=replace(result.state, recent=forget(st, stopped).recent))

    result = store.commit_gate(again, by="execution")
    out = []
    for o, v in zip(orders, result.verdicts, strict=True):
        qty = min(float(v.qty), float(o.qty)) if v.approved else 0.0
        action = "reject" if qty <= 0 else "approve" if qty >= float(o.qty) - 1e-12 else "trim"
        out.append(Verdict(o, action, qty, v.reasons))
    return tuple(out)


_XNYS_FIRST, _XNYS_YEARS_AHEAD = "1990-01-01", 2


@functools.lru_cache(maxsize=1)
def _xnys():
    """The NYSE calendar (``exchange_calendars`` XNYS: sessions, holidays, half days), built
    once per process; imported lazily because it costs about a second."""
    import exchange_calendars
    import pandas as pd

    end = (pd.Timestamp.now(tz="UTC") + pd.DateOffset(years=_XNYS_YEARS_AHEAD)).strftime("%Y-%m-%d")
    with warnings.catch_warnings():  # its use of pandas raises deprecation notices that are not ours
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        return exchange_calendars.get_calendar("XNYS", start=_XNYS_FIRST, end=end)


def nyse_session(day) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """``(open, close)`` in UTC of the NYSE session on a date, or None when the exchange does
    not trade that day (weekend, holiday).

    ``day`` is a date or a timestamp; an aware timestamp is taken on its New York date. Half
    days close early (13:00 New York). Dates outside the calendar's range (before 1990, more
    than two years ahead) fall back to Monday to Friday 9:30-16:00 New York.
    """
    import pandas as pd

    d = pd.Timestamp(day)
    d = (d.tz_convert("America/New_York").tz_localize(None) if d.tzinfo is not None else d).normalize()
    cal = _xnys()
    if cal.first_session <= d <= cal.last_session:
        if not cal.is_session(d):
            return None
        return cal.session_open(d), cal.session_close(d)
    if d.weekday() >= 5:
        return None
    ny = d.tz_localize("America/New_York")
    return ((ny + pd.Timedelta(hours=9, minutes=30)).tz_convert("UTC"), (ny + pd.Timedelta(hours=16)).tz_convert("UTC"))


def _nyse_open(now: pd.Timestamp) -> bool:
    """The NYSE is in its regular session at ``now`` (holidays and half days included)."""
    import pandas as pd

    now = pd.Timestamp(now).tz_convert("UTC")
    bounds = nyse_session(now)
    return bounds is not None and bounds[0] <= now < bounds[1]


def build_broker(settings: Settings, secrets: Secrets, name: str):
    """The broker named by the run: ``paper`` (local SQLite) or ``alpaca``."""
    if name == "paper":
        from integrations.brokers import PaperBroker

        p = settings.broker.paper
        return PaperBroker(settings.paths.paper_broker, initial_cash=p.initial_cash,
                           slippage_bps=p.slippage_bps, commission_bps=p.commission_bps, fill=p.fill)
    if name == "alpaca":
        from integrations.brokers import AlpacaBroker

        a = settings.broker.alpaca
        return AlpacaBroker(secrets.get("alpaca_api_key"), secrets.get("alpaca_secret_key"), paper=a.paper,
                            live_confirmed=a.live_confirmed, base_url=a.base_url)
    raise ValueError(f"broker must be paper or alpaca, not {name!r}")


@dataclass(frozen=True)
class BrokerBook:
    """The broker's account at one moment: cash, equity, positions and open orders.

    Attributes
    ----------
    cash, equity : float
        As the broker reports them.
    positions : mapping of str to float
        Signed quantity per symbol.
    open_orders : tuple
        The broker's open orders (objects with ``client_order_id``, ``symbol``, ``side``,
        ``qty`` and ``filled_qty``).
    """

    cash: float
    equity: float
    positions: Mapping[str, float]
    open_orders: tuple[Any, ...]


def fetch_book(broker) -> BrokerBook:
    """Read the broker's account, positions and open orders (three broker calls)."""
    acct = broker.account()
    positions = {s: float(p.qty) for s, p in broker.positions().items()}
    return BrokerBook(float(acct.cash), float(acct.equity), positions, tuple(broker.open_orders()))


def run_book(ctx: Any, request: Mapping[str, Any], run_id: str | None) -> BrokerBook | None:
    """The broker's book for one graph run, fetched once and shared by the decision and the gate.

    ``ctx`` is the run's :class:`agents.services.context.AppContext`. ``None`` without a broker.
    The execution step does not use this: it re-reads the broker just before sending
    (:func:`recheck_approved`), so an order is always checked against the book of that moment.
    """
    broker = ctx.broker(request)
    if broker is None:
        return None
    if run_id is None:
        return fetch_book(broker)
    key = ("book", request["source"], request.get("as_of"), run_id, request.get("broker"))
    return ctx.memo(key, lambda: fetch_book(broker))


def portfolio_of(broker, prices: Mapping[str, float]) -> tuple[Portfolio, float]:
    """``(Portfolio, equity)`` from a broker (read now) or a :class:`BrokerBook` read earlier,
    open orders valued at ``prices`` (an open order in a symbol without a price is NaN, which
    the gate rejects)."""
    book = broker if isinstance(broker, BrokerBook) else fetch_book(broker)
    pending = tuple(
        PendingOrder(o.client_order_id, o.symbol, o.side, float(o.qty - o.filled_qty),
                     float(prices.get(o.symbol, float("nan"))))
        for o in book.open_orders
    )
    return Portfolio(cash=book.cash, positions=dict(book.positions), pending=pending), book.equity


def propose_orders(
    strategy: str, targets: Mapping[str, float | None], portfolio: Portfolio, equity: float,
    prices: Mapping[str, float], bar_times: Mapping[str, pd.Timestamp], confidence: Mapping[str, float | None],
) -> list[ProposedOrder]:
    """Orders that move each symbol from its position (plus open orders) to its target weight.

    Quantities are whole shares rounded toward the current position; a symbol without a
    target, price or equity gets no order. Client order ids are deterministic in (strategy,
    symbol, bar time, side), so a rerun for the same bar proposes the same ids.
    """
    import pandas as pd

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
    import pandas as pd

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
