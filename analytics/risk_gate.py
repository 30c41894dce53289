"""The hard risk gate: a pure function from proposed orders and the world to verdicts.

:func:`evaluate` takes the proposed orders, the portfolio, a market snapshot, the limits and
the persisted risk state, and returns a verdict per order (``approve``, ``trim`` or
``reject``) with reason codes, plus the risk state after the circuit breakers. It reads
nothing else: no clock, no files, no LLM text. The same inputs give the same verdicts.

It fails closed: a NaN, None or infinite number anywhere it needs one, a missing price, an
unknown trading state or an exception inside a check rejects the order with a reason.

Order of checks for each order (the first rejection wins; trims accumulate):

1. inputs valid (``invalid_input``), trading state (``halted``, ``reducing_only``)
2. symbol allowed (``symbol_not_allowed``), tradable (``not_tradable``), its live feed
   delivering bars (``feed_silent``), market open (``market_closed``), data fresh
   (``stale_data``), price collar (``price_collar``)
3. signal confidence (``low_confidence``), duplicates (``duplicate_order``), order rate
   (``rate_limited``)
4. size: max quantity and notional, no shorting, position weight, gross and net exposure
   (with the regime cap), buying power including pending orders - each trims the order
   (``trim:<limit>``) or rejects it when nothing is left (``limit:<limit>``); a trimmed
   order for whole shares is floored to whole shares, and rejected (``limit:<limit>``)
   when less than one share is left
5. portfolio VaR and expected shortfall after the trade (``var_limit``, ``es_limit``)

Orders that only reduce an existing position (and do not cross zero) skip the confidence,
size and VaR checks: reducing risk is always allowed unless trading is halted.

This module is deliberately not imported by ``analytics/__init__``; import it as
``analytics.risk_gate``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "TRADING_STATES",
    "ProposedOrder",
    "PendingOrder",
    "Portfolio",
    "MarketSnapshot",
    "RiskLimits",
    "RecentOrder",
    "RiskState",
    "Verdict",
    "GateResult",
    "evaluate",
    "apply_circuit_breakers",
    "is_reducing",
]

TRADING_STATES: tuple[str, ...] = ("ACTIVE", "REDUCING", "HALTED")
_SEVERITY = {s: i for i, s in enumerate(TRADING_STATES)}


@dataclass(frozen=True)
class ProposedOrder:
    """An order the decision step proposes.

    ``reference_price`` is the price the decision saw (for a market order the collar
    compares it with the latest price); ``side`` ``'cancel'`` cancels ``client_order_id``.
    """

    client_order_id: str | None
    symbol: str
    side: str  # 'buy' | 'sell' | 'cancel'
    qty: float
    order_type: str = "market"
    limit_price: float | None = None
    reference_price: float | None = None
    confidence: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class PendingOrder:
    """An order already at the broker and not yet filled."""

    client_order_id: str
    symbol: str
    side: str
    qty: float
    price: float


@dataclass(frozen=True)
class Portfolio:
    """Cash and positions (signed quantities) plus open orders."""

    cash: float
    positions: Mapping[str, float] = field(default_factory=dict)
    pending: tuple[PendingOrder, ...] = ()


@dataclass(frozen=True)
class MarketSnapshot:
    """What the gate knows about the market at decision time.

    ``returns`` holds per symbol the daily simple returns used for VaR (most recent last,
    all series the same length).
    """

    now: pd.Timestamp
    prices: Mapping[str, float]
    last_bar: Mapping[str, pd.Timestamp] = field(default_factory=dict)
    bar_seconds: Mapping[str, float] = field(default_factory=dict)
    tradable: Mapping[str, bool] = field(default_factory=dict)
    market_open: Mapping[str, bool] = field(default_factory=dict)
    regime: Mapping[str, str] = field(default_factory=dict)
    returns: Mapping[str, np.ndarray] = field(default_factory=dict)
    #: Symbols whose live feed has gone silent: no new order of any kind until bars return.
    feed_silent: Mapping[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class RiskLimits:
    """Every limit of the gate; ``None`` switches a check off.

    Weights and exposures are fractions of equity; losses and VaR are positive fractions.
    """

    allowed_symbols: frozenset[str] | None = None
    require_market_open: bool = False
    max_staleness_bars: float | None = 4.0
    collar_pct: float | None = 0.05
    min_confidence: float | None = None
    duplicate_window_seconds: float | None = 3600.0
    max_orders_per_window: int | None = 20
    rate_window_seconds: float = 3600.0
    max_order_qty: float | None = None
    max_order_notional: float | None = None
    allow_short: bool = False
    max_position_weight: float | None = 1.0
    max_gross_exposure: float | None = 1.0
    max_net_exposure: float | None = 1.0
    regime_gross_caps: Mapping[str, float] = field(default_factory=dict)
    var_limit: float | None = None
    es_limit: float | None = None
    var_level: float = 0.99
    var_method: str = "historical"
    min_var_observations: int = 250
    daily_loss_reduce: float | None = 0.03
    daily_loss_halt: float | None = 0.05
    max_drawdown_halt: float | None = 0.20


@dataclass(frozen=True)
class RecentOrder:
    """An order the gate approved earlier (for duplicate suppression and the throttle)."""

    ts: pd.Timestamp
    client_order_id: str | None
    symbol: str
    side: str
    qty: float


@dataclass(frozen=True)
class RiskState:
    """Persisted between runs: trading state, why, and the circuit breakers' memory."""

    trading_state: str = "ACTIVE"
    reason: str | None = None
    day: str | None = None  # ISO date of day_start_equity
    day_start_equity: float | None = None
    peak_equity: float | None = None
    recent: tuple[RecentOrder, ...] = ()


@dataclass(frozen=True)
class Verdict:
    """The gate's answer for one order: ``approve``, ``trim`` (smaller qty) or ``reject``."""

    order: ProposedOrder
    action: str
    qty: float
    reasons: tuple[str, ...]

    @property
    def approved(self) -> bool:
        return self.action in ("approve", "trim") and self.qty > 0

    def to_dict(self) -> dict[str, Any]:
        return {"order": self.order.to_dict(), "action": self.action, "qty": self.qty, "reasons": list(self.reasons)}


@dataclass(frozen=True)
class GateResult:
    """Verdicts in order, the risk state after this evaluation, and state changes with reasons."""

    verdicts: tuple[Verdict, ...]
    state: RiskState
    events: tuple[str, ...]


class _Reject(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _finite(x: Any) -> bool:
    try:
        return x is not None and not isinstance(x, bool) and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _equity(pf: Portfolio, prices: Mapping[str, float]) -> float:
    if not _finite(pf.cash):
        raise _Reject("invalid_input:cash")
    eq = float(pf.cash)
    for sym, q in pf.positions.items():
        if not _finite(q):
            raise _Reject(f"invalid_input:position:{sym}")
        if q == 0:
            continue
        p = prices.get(sym)
        if not _finite(p) or p <= 0:
            raise _Reject(f"missing_price:{sym}")
        eq += float(q) * float(p)
    return eq


def is_reducing(side: str, qty: float, position: float) -> bool:
    """True when the order shrinks ``|position|`` without crossing zero."""
    if side == "sell":
        return position > 0 and qty <= position + 1e-12
    if side == "buy":
        return position < 0 and qty <= -position + 1e-12
    return False


def apply_circuit_breakers(
    state: RiskState, equity: float, now: pd.Timestamp, limits: RiskLimits
) -> tuple[RiskState, tuple[str, ...]]:
    """Roll the day, update the peak and escalate the trading state on losses.

    The state only escalates (ACTIVE -> REDUCING -> HALTED); going back is a person's call.
    A non-finite or non-positive equity halts.
    """
    events: list[str] = []
    if state.trading_state not in TRADING_STATES:
        return replace(state, trading_state="HALTED", reason=f"unknown trading state {state.trading_state!r}"), (
            f"HALTED: unknown trading state {state.trading_state!r}",)
    if not _finite(equity) or equity <= 0:
        new = replace(state, trading_state="HALTED", reason="equity is not a positive number")
        return new, ("HALTED: equity is not a positive number",)
    day = pd.Timestamp(now).date().isoformat()
    st = state
    if st.day != day or not _finite(st.day_start_equity) or st.day_start_equity <= 0:
        st = replace(st, day=day, day_start_equity=float(equity))
    peak = max(float(st.peak_equity), equity) if _finite(st.peak_equity) else float(equity)
    st = replace(st, peak_equity=peak)
    target, why = st.trading_state, None
    daily = equity / st.day_start_equity - 1.0
    dd = equity / peak - 1.0

    def escalate(to: str, reason: str) -> None:
        nonlocal target, why
        if _SEVERITY[to] > _SEVERITY[target]:
            target, why = to, reason

    if limits.daily_loss_reduce is not None and daily <= -limits.daily_loss_reduce:
        escalate("REDUCING", f"daily loss {-daily:.2%} reached the {limits.daily_loss_reduce:.2%} limit")
    if limits.daily_loss_halt is not None and daily <= -limits.daily_loss_halt:
        escalate("HALTED", f"daily loss {-daily:.2%} reached the {limits.daily_loss_halt:.2%} halt limit")
    if limits.max_drawdown_halt is not None and dd <= -limits.max_drawdown_halt:
        escalate("HALTED", f"drawdown {-dd:.2%} from the peak reached the {limits.max_drawdown_halt:.2%} limit")
    if why is not None:
        st = replace(st, trading_state=target, reason=why)
        events.append(f"{target}: {why}")
    return st, tuple(events)


class _Book:
    """The portfolio as orders are approved one after another."""

    def __init__(self, pf: Portfolio, prices: Mapping[str, float]) -> None:
        self.cash = float(pf.cash)
        self.pos = {s: float(q) for s, q in pf.positions.items()}
        self.prices = prices
        self.equity = _equity(pf, prices)
        self.pending_buy_notional = 0.0
        self.pending_sell_qty: dict[str, float] = {}
        self.pending_buy_qty: dict[str, float] = {}
        for o in pf.pending:
            if not (_finite(o.qty) and _finite(o.price)) or o.qty < 0 or o.price <= 0:
                raise _Reject("invalid_input:pending_order")
            if o.side == "buy":
                self.pending_buy_notional += o.qty * o.price
                self.pending_buy_qty[o.symbol] = self.pending_buy_qty.get(o.symbol, 0.0) + o.qty
            else:
                self.pending_sell_qty[o.symbol] = self.pending_sell_qty.get(o.symbol, 0.0) + o.qty

    def position(self, sym: str) -> float:
        return self.pos.get(sym, 0.0)

    def value(self, sym: str, pos: float | None = None) -> float:
        q = self.position(sym) if pos is None else pos
        return q * float(self.prices[sym]) if q else 0.0

    def exposures(self, sym: str, new_pos: float) -> tuple[float, float]:
        gross = net = 0.0
        for s in set(self.pos) | {sym}:
            q = new_pos if s == sym else self.pos.get(s, 0.0)
            if q:
                v = q * float(self.prices[s])
                gross += abs(v)
                net += v
        return gross / self.equity, net / self.equity

    def apply(self, sym: str, side: str, qty: float, price: float) -> None:
        sign = 1.0 if side == "buy" else -1.0
        self.pos[sym] = self.position(sym) + sign * qty
        self.cash -= sign * qty * price


def _check_inputs(o: ProposedOrder) -> None:
    if not isinstance(o.symbol, str) or not o.symbol:
        raise _Reject("invalid_input:symbol")
    if o.side not in ("buy", "sell", "cancel"):
        raise _Reject("invalid_input:side")
    if o.side == "cancel":
        return
    if not _finite(o.qty) or o.qty <= 0:
        raise _Reject("invalid_input:qty")
    if o.order_type not in ("market", "limit"):
        raise _Reject("invalid_input:order_type")
    if o.order_type == "limit" and (not _finite(o.limit_price) or o.limit_price <= 0):
        raise _Reject("invalid_input:limit_price")
    if o.reference_price is not None and (not _finite(o.reference_price) or o.reference_price <= 0):
        raise _Reject("invalid_input:reference_price")
    if o.confidence is not None and not _finite(o.confidence):
        raise _Reject("invalid_input:confidence")


def _portfolio_var_es(book: _Book, sym: str, new_pos: float, market: MarketSnapshot, limits: RiskLimits) -> tuple[float, float]:
    from analytics._var import filtered_historical_var_es, historical_var_es

    held = {s: q for s, q in book.pos.items() if q}
    held[sym] = new_pos
    held = {s: q for s, q in held.items() if q}
    if not held:
        return 0.0, 0.0
    series = []
    weights = []
    for s, q in held.items():
        r = market.returns.get(s)
        if r is None:
            raise _Reject(f"missing_returns:{s}")
        r = np.asarray(r, dtype=float)
        if r.ndim != 1 or r.size < limits.min_var_observations or not np.isfinite(r).all():
            raise _Reject(f"missing_returns:{s}")
        series.append(r[-limits.min_var_observations:])
        weights.append(q * float(book.prices[s]) / book.equity)
    port = np.column_stack(series) @ np.asarray(weights)
    if limits.var_method == "filtered":
        res = filtered_historical_var_es(port, limits.var_level)
    elif limits.var_method == "historical":
        res = historical_var_es(port, limits.var_level)
    else:
        raise _Reject("invalid_input:var_method")
    return float(res.var), float(res.es)


def _size_checks(o: ProposedOrder, qty: float, price: float, book: _Book, market: MarketSnapshot,
                 limits: RiskLimits, reasons: list[str]) -> float:
    """Largest quantity <= qty within the size limits (0 if none)."""
    sym = o.symbol
    pos = book.position(sym)
    sign = 1.0 if o.side == "buy" else -1.0

    def trim(new_qty: float, name: str) -> None:
        nonlocal qty
        new_qty = max(0.0, new_qty)
        if new_qty < qty - 1e-12:
            qty = new_qty
            reasons.append(f"trim:{name}" if qty > 0 else f"limit:{name}")

    if limits.max_order_qty is not None:
        trim(limits.max_order_qty, "max_order_qty")
    if limits.max_order_notional is not None:
        trim(limits.max_order_notional / price, "max_order_notional")
    if o.side == "sell" and not limits.allow_short:
        trim(pos - book.pending_sell_qty.get(sym, 0.0), "no_short")
    e = book.equity
    # Exposure limits bound the post-trade position; solve for the largest qty that fits.
    if limits.max_position_weight is not None:
        cap = limits.max_position_weight * e / price
        limit_pos = cap if sign > 0 else -cap
        trim(abs(limit_pos - pos) if (limit_pos - pos) * sign > 0 else 0.0, "max_position_weight")
    gross_cap = limits.max_gross_exposure
    label = market.regime.get(sym)
    if label is not None and label in limits.regime_gross_caps:
        rc = limits.regime_gross_caps[label]
        gross_cap = rc if gross_cap is None else min(gross_cap, rc)
    if gross_cap is not None:
        others = sum(abs(book.value(s)) for s in book.pos if s != sym) / e
        room = gross_cap - others  # allowed |position value| / e for this symbol
        cap = max(room, 0.0) * e / price
        limit_pos = cap if sign > 0 else -cap
        reason = "regime_gross_cap" if label in limits.regime_gross_caps and (
            limits.max_gross_exposure is None or limits.regime_gross_caps[label] < limits.max_gross_exposure
        ) else "max_gross_exposure"
        trim(abs(limit_pos - pos) if (limit_pos - pos) * sign > 0 else 0.0, reason)
    if limits.max_net_exposure is not None:
        others = sum(book.value(s) for s in book.pos if s != sym) / e
        hi = (limits.max_net_exposure - others) * e / price
        lo = (-limits.max_net_exposure - others) * e / price
        limit_pos = hi if sign > 0 else lo
        trim(abs(limit_pos - pos) if (limit_pos - pos) * sign > 0 else 0.0, "max_net_exposure")
    if o.side == "buy":
        spend = max(o.limit_price or 0.0, price)
        room = book.cash - book.pending_buy_notional
        trim(room / spend if room > 0 else 0.0, "buying_power")
    return _whole_shares(o, qty, reasons)


def _whole_shares(o: ProposedOrder, qty: float, reasons: list[str]) -> float:
    """A trimmed order for whole shares stays whole: floor it; below one share it is dropped.

    An order whose quantity is fractional (the export's simulated book) keeps its trimmed
    fraction. A last trim that leaves no whole share becomes ``limit:<check>``.
    """
    if qty <= 0 or not float(o.qty).is_integer() or float(qty).is_integer():
        return qty
    whole = float(np.floor(qty * (1.0 + 1e-12)))  # 199.99999999997 from a ratio is 200
    if whole < 1.0:
        reasons[-1] = "limit:" + reasons[-1].split(":", 1)[1]
        return 0.0
    return whole


def evaluate(
    orders: Sequence[ProposedOrder],
    portfolio: Portfolio,
    market: MarketSnapshot,
    limits: RiskLimits,
    state: RiskState,
) -> GateResult:
    """Verdict per order, in order; approved orders count against the limits of later ones.

    Parameters
    ----------
    orders : sequence of ProposedOrder
    portfolio : Portfolio
    market : MarketSnapshot
    limits : RiskLimits
    state : RiskState
        As persisted after the previous evaluation.

    Returns
    -------
    GateResult
        ``state`` includes circuit-breaker escalations and the approved orders (for the
        throttle and duplicate suppression of later evaluations).
    """
    now = pd.Timestamp(market.now)
    try:
        book = _Book(portfolio, market.prices)
    except _Reject as exc:
        halted = replace(state, trading_state="HALTED", reason=f"portfolio cannot be valued: {exc.code}")
        events = (f"HALTED: portfolio cannot be valued ({exc.code})",)
        return GateResult(tuple(Verdict(o, "reject", 0.0, (exc.code,)) for o in orders), halted, events)
    st, events = apply_circuit_breakers(state, book.equity, now, limits)
    recent = [r for r in st.recent if (now - r.ts).total_seconds() <= max(
        limits.rate_window_seconds, limits.duplicate_window_seconds or 0.0)]
    pending_ids = {p.client_order_id for p in portfolio.pending}
    verdicts: list[Verdict] = []
    for o in orders:
        reasons: list[str] = []
        try:
            qty = _evaluate_one(o, book, market, limits, st, recent, pending_ids, now, reasons)
        except _Reject as exc:
            verdicts.append(Verdict(o, "reject", 0.0, (*reasons, exc.code)))
            continue
        except Exception as exc:  # noqa: BLE001 - any failure inside a check rejects
            verdicts.append(Verdict(o, "reject", 0.0, (*reasons, f"check_error:{type(exc).__name__}")))
            continue
        if o.side == "cancel":
            verdicts.append(Verdict(o, "approve", 0.0, ()))
            continue
        if qty <= 0:
            verdicts.append(Verdict(o, "reject", 0.0, tuple(reasons)))
            continue
        action = "trim" if qty < float(o.qty) - 1e-12 else "approve"
        verdicts.append(Verdict(o, action, qty, tuple(reasons)))
        book.apply(o.symbol, o.side, qty, float(market.prices[o.symbol]))
        rec = RecentOrder(now, o.client_order_id, o.symbol, o.side, qty)
        recent.append(rec)
        if o.client_order_id:
            pending_ids.add(o.client_order_id)
    return GateResult(tuple(verdicts), replace(st, recent=tuple(recent)), events)


def _evaluate_one(o: ProposedOrder, book: _Book, market: MarketSnapshot, limits: RiskLimits, st: RiskState,
                  recent: list[RecentOrder], pending_ids: set[str], now: pd.Timestamp, reasons: list[str]) -> float:
    _check_inputs(o)
    if o.side == "cancel":
        if st.trading_state not in TRADING_STATES:
            raise _Reject("invalid_state")
        return 0.0
    if st.trading_state == "HALTED":
        raise _Reject("halted")
    pos = book.position(o.symbol)
    # pending orders on the same side count: two sells that each fit the long may not both fit
    already = (book.pending_sell_qty if o.side == "sell" else book.pending_buy_qty).get(o.symbol, 0.0)
    reducing = is_reducing(o.side, float(o.qty) + already, pos)
    if st.trading_state == "REDUCING" and not reducing:
        raise _Reject("reducing_only")
    if limits.allowed_symbols is not None and o.symbol not in limits.allowed_symbols:
        raise _Reject("symbol_not_allowed")
    if not market.tradable.get(o.symbol, False):
        raise _Reject("not_tradable")
    if market.feed_silent.get(o.symbol, False):
        raise _Reject("feed_silent")
    if limits.require_market_open and not market.market_open.get(o.symbol, False):
        raise _Reject("market_closed")
    price = market.prices.get(o.symbol)
    if not _finite(price) or price <= 0:
        raise _Reject("missing_price")
    price = float(price)
    if limits.max_staleness_bars is not None:
        last, secs = market.last_bar.get(o.symbol), market.bar_seconds.get(o.symbol)
        if last is None or not _finite(secs) or secs <= 0:
            raise _Reject("stale_data")
        age = (now - pd.Timestamp(last)).total_seconds()
        if not math.isfinite(age) or age > limits.max_staleness_bars * secs:
            raise _Reject("stale_data")
    if limits.collar_pct is not None:
        ref = o.limit_price if o.order_type == "limit" else o.reference_price
        if ref is None or abs(float(ref) / price - 1.0) > limits.collar_pct:
            raise _Reject("price_collar")
    if o.client_order_id and (o.client_order_id in pending_ids or any(
            r.client_order_id == o.client_order_id for r in recent)):
        raise _Reject("duplicate_order")
    if limits.duplicate_window_seconds is not None and any(
        r.symbol == o.symbol and r.side == o.side and abs(r.qty - float(o.qty)) < 1e-9
        and (now - r.ts).total_seconds() <= limits.duplicate_window_seconds
        for r in recent
    ):
        raise _Reject("duplicate_order")
    if limits.max_orders_per_window is not None and sum(
        1 for r in recent if (now - r.ts).total_seconds() <= limits.rate_window_seconds
    ) >= limits.max_orders_per_window:
        raise _Reject("rate_limited")
    qty = float(o.qty)
    if reducing:
        return qty
    if limits.min_confidence is not None and (o.confidence is None or o.confidence < limits.min_confidence):
        raise _Reject("low_confidence")
    qty = _size_checks(o, qty, price, book, market, limits, reasons)
    if qty <= 0:
        return 0.0
    if limits.var_limit is not None or limits.es_limit is not None:
        sign = 1.0 if o.side == "buy" else -1.0
        var, es = _portfolio_var_es(book, o.symbol, pos + sign * qty, market, limits)
        if limits.var_limit is not None and var > limits.var_limit:
            raise _Reject("var_limit")
        if limits.es_limit is not None and es > limits.es_limit:
            raise _Reject("es_limit")
    return qty
