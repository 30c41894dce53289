"""The hard risk gate: a pure function from proposed orders and the world to verdicts.

:func:`evaluate` takes the proposed orders, the portfolio, a market snapshot, the limits and
the persisted risk state, and returns a verdict per order (``approve``, ``trim`` or
``reject``) with reason codes, plus the risk state after the circuit breakers. It reads
nothing else: no clock, no files, no LLM text. The same inputs give the same verdicts.

It fails closed and never raises: a NaN, None, infinite, boolean or text value anywhere it
needs a number, a missing price, a bar time or clock that is not a timestamp (or a bar stamped
after ``market.now``), an unknown trading state, a broken limit, an unreadable risk state or
an exception inside a check rejects the order with a reason code; even arguments of the wrong
type give rejections, not a traceback. ``docs/risk_gate.md`` lists every reason code.

Order of checks for each order (the first rejection wins; trims accumulate):

1. inputs valid (``invalid_input:<field>``), trading state (``halted``, ``reducing_only``),
   minimum quantity (``below_min_qty``)
2. symbol allowed (``symbol_not_allowed``), tradable (``not_tradable``), its live feed
   delivering bars (``feed_silent``), market open (``market_closed``), bar time not in the
   future and data fresh (``invalid_input:bar_time``, ``stale_data``), price collar
   (``price_collar``)
3. signal confidence (``low_confidence``), duplicates (``duplicate_order``), order rate
   (``rate_limited``)
4. size: max quantity and notional, no shorting, position weight, gross and net exposure
   (with the regime cap), buying power including pending orders - each trims the order
   (``trim:<limit>``) or rejects it when nothing is left (``limit:<limit>``); a trimmed
   order for whole shares is floored to whole shares, and an order left below the minimum
   quantity is rejected (``limit:<limit>``)
5. portfolio VaR and expected shortfall after the trade (``var_limit``, ``es_limit``); both
   limits are multiplied by the smallest ``RiskLimits.regime_var_scales`` entry among the
   regime labels of the symbols in the post-trade portfolio, and a rejection that only the
   tightened limit gives is ``regime_var_limit`` / ``regime_es_limit``

The minimum quantity is ``RiskLimits.min_order_qty`` (default one share) for an order of a
whole number of shares and ``RiskLimits.min_fractional_qty`` (default 1e-6 share) for an
order of a fractional quantity (a fractional-share book such as the export's simulated
one). An order that closes a whole position is exempt, so a fractional remainder can always
be closed.

Orders that only reduce an existing position (and do not cross zero) skip the confidence,
size and VaR checks: reducing risk is always allowed unless trading is halted.

This module is deliberately not imported by ``analytics/__init__``; import it as
``analytics.risk_gate``.
"""

from __future__ import annotations

import datetime as _dt
import math
import numbers
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # imported where used, so that 'regimedesk risk status' does not load pandas
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
    A limit that is not ``None`` must be a finite number >= 0 (``rate_window_seconds``,
    ``min_order_qty`` and ``min_fractional_qty`` > 0, ``var_level`` in (0, 1)); the gate
    rejects every order with ``invalid_input:limits.<name>`` otherwise, since a NaN limit
    would let every order through. ``min_order_qty`` is the smallest order for a whole
    number of shares, ``min_fractional_qty`` the smallest order for a fractional quantity.

    ``regime_gross_caps`` maps a regime label to a gross-exposure cap (values >= 0) for orders
    in a symbol of that regime. ``regime_var_scales`` maps a regime label to a multiplier in
    (0, 1] of both ``var_limit`` and ``es_limit``: the smallest multiplier among the labels of
    the symbols held after the trade (non-zero positions plus the order's symbol) applies.
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
    regime_var_scales: Mapping[str, float] = field(default_factory=dict)
    var_limit: float | None = None
    es_limit: float | None = None
    var_level: float = 0.99
    var_method: str = "gjr_filtered"
    min_var_observations: int = 250
    daily_loss_reduce: float | None = 0.03
    daily_loss_halt: float | None = 0.05
    max_drawdown_halt: float | None = 0.20
    min_order_qty: float = 1.0
    min_fractional_qty: float = 1e-6


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
    """The gate's answer for one order: ``approve``, ``trim`` (smaller qty) or ``reject``.

    ``order`` is the proposed order as given (for an item that is not a
    :class:`ProposedOrder`, the item itself, rejected ``invalid_input:order``).
    """

    order: ProposedOrder
    action: str
    qty: float
    reasons: tuple[str, ...]

    @property
    def approved(self) -> bool:
        return self.action in ("approve", "trim") and self.qty > 0

    def to_dict(self) -> dict[str, Any]:
        order = self.order.to_dict() if isinstance(self.order, ProposedOrder) else {"invalid": repr(self.order)[:200]}
        return {"order": order, "action": self.action, "qty": self.qty, "reasons": list(self.reasons)}


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
    """A real finite number: not None, not a bool, not a string that looks like a number."""
    if not isinstance(x, numbers.Real) or isinstance(x, (bool, np.bool_)):
        return False
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError, OverflowError):
        return False


def _positive(x: Any) -> bool:
    return _finite(x) and x > 0


def _timestamp(x: Any) -> pd.Timestamp | None:
    """``x`` as a timestamp, or None when it is not one (NaT, text, numbers, dates)."""
    import pandas as pd

    if not isinstance(x, _dt.datetime) or pd.isna(x):
        return None
    try:
        return pd.Timestamp(x)
    except (TypeError, ValueError):
        return None


def _flag(x: Any) -> bool | None:
    """A bool (also numpy's) as itself; anything else (``'yes'``, 1, None) as None."""
    return bool(x) if isinstance(x, (bool, np.bool_)) else None


_OPTIONAL_LIMITS = (
    "max_staleness_bars", "collar_pct", "min_confidence", "duplicate_window_seconds", "max_order_qty",
    "max_order_notional", "max_position_weight", "max_gross_exposure", "max_net_exposure", "var_limit",
    "es_limit", "daily_loss_reduce", "daily_loss_halt", "max_drawdown_halt",
)


def _bad_limit(limits: Any) -> str | None:
    """The name of the first limit that is not usable (None when all are)."""
    if not isinstance(limits, RiskLimits):
        return "limits"
    for name in _OPTIONAL_LIMITS:
        v = getattr(limits, name)
        if v is not None and not (_finite(v) and v >= 0):
            return name
    for name in ("rate_window_seconds", "min_order_qty", "min_fractional_qty"):
        if not _positive(getattr(limits, name)):
            return name
    if not (_finite(limits.var_level) and 0 < limits.var_level < 1):
        return "var_level"
    m = limits.max_orders_per_window
    if m is not None and not (isinstance(m, numbers.Integral) and not isinstance(m, (bool, np.bool_)) and m >= 0):
        return "max_orders_per_window"
    m = limits.min_var_observations
    if not (isinstance(m, numbers.Integral) and not isinstance(m, (bool, np.bool_)) and m >= 2):
        return "min_var_observations"
    for name in ("require_market_open", "allow_short"):
        if _flag(getattr(limits, name)) is None:
            return name
    allowed = limits.allowed_symbols
    if allowed is not None and (isinstance(allowed, (str, bytes)) or not isinstance(allowed, Collection)
                                or not all(isinstance(a, str) for a in allowed)):
        return "allowed_symbols"
    caps = limits.regime_gross_caps
    if not isinstance(caps, Mapping) or not all(isinstance(k, str) and _finite(v) and v >= 0 for k, v in caps.items()):
        return "regime_gross_caps"
    scales = limits.regime_var_scales
    if not isinstance(scales, Mapping) or not all(isinstance(k, str) and _finite(v) and 0 < v <= 1
                                                  for k, v in scales.items()):
        return "regime_var_scales"
    return None


def _equity(pf: Portfolio, prices: Mapping[str, float]) -> float:
    if not isinstance(pf, Portfolio):
        raise _Reject("invalid_input:portfolio")
    if not _finite(pf.cash):
        raise _Reject("invalid_input:cash")
    if not isinstance(pf.positions, Mapping):
        raise _Reject("invalid_input:positions")
    eq = float(pf.cash)
    for sym, q in pf.positions.items():
        if not isinstance(sym, str):
            raise _Reject("invalid_input:positions")
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
    A non-finite or non-positive equity halts, and so does a state whose memory of the day's
    start or of the peak is unreadable (not None and not a positive number: the breakers
    could not trip).

    Raises
    ------
    TypeError
        ``state`` is not a :class:`RiskState` or ``limits`` not a :class:`RiskLimits`.
    ValueError
        ``now`` is not a timestamp (NaT, text, a number) or a limit is not usable.
    """
    if not isinstance(state, RiskState):
        raise TypeError(f"state must be a RiskState, got {type(state).__name__}")
    if not isinstance(limits, RiskLimits):
        raise TypeError(f"limits must be a RiskLimits, got {type(limits).__name__}")
    bad = _bad_limit(limits)
    if bad is not None:
        raise ValueError(f"limits.{bad} is not usable: {getattr(limits, bad)!r}")
    ts = _timestamp(now)
    if ts is None:
        raise ValueError(f"now must be a timestamp, got {now!r}")
    events: list[str] = []
    if not isinstance(state.trading_state, str) or state.trading_state not in TRADING_STATES:
        return replace(state, trading_state="HALTED", reason=f"unknown trading state {state.trading_state!r}"), (
            f"HALTED: unknown trading state {state.trading_state!r}",)
    for name in ("day_start_equity", "peak_equity"):
        if getattr(state, name) is not None and not _positive(getattr(state, name)):
            why = f"risk state {name} is unreadable ({getattr(state, name)!r})"
            return replace(state, trading_state="HALTED", reason=why), (f"HALTED: {why}",)
    if state.day is not None and not isinstance(state.day, str):
        why = f"risk state day is unreadable ({state.day!r})"
        return replace(state, trading_state="HALTED", reason=why), (f"HALTED: {why}",)
    if not _finite(equity) or equity <= 0:
        new = replace(state, trading_state="HALTED", reason="equity is not a positive number")
        return new, ("HALTED: equity is not a positive number",)
    day = ts.date().isoformat()
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
        self.equity = _equity(pf, prices)  # validates cash, positions and their prices first
        self.cash = float(pf.cash)
        self.pos = {s: float(q) for s, q in pf.positions.items()}
        self.prices = prices
        self.pending_buy_notional = 0.0
        self.pending_sell_qty: dict[str, float] = {}
        self.pending_buy_qty: dict[str, float] = {}
        if isinstance(pf.pending, (str, bytes, Mapping)) or not isinstance(pf.pending, Sequence):
            raise _Reject("invalid_input:pending")
        for o in pf.pending:
            if not isinstance(o, PendingOrder) or not isinstance(o.client_order_id, str) or not isinstance(
                    o.symbol, str) or o.side not in ("buy", "sell") or not (_finite(o.qty) and _positive(o.price)) \
                    or o.qty < 0:
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
        pos, cash = self.position(sym) + sign * qty, self.cash - sign * qty * price
        self.pos[sym], self.cash = pos, cash


def _check_inputs(o: ProposedOrder) -> None:
    if not isinstance(o, ProposedOrder):
        raise _Reject("invalid_input:order")
    if not isinstance(o.symbol, str) or not o.symbol:
        raise _Reject("invalid_input:symbol")
    if not isinstance(o.side, str) or o.side not in ("buy", "sell", "cancel"):
        raise _Reject("invalid_input:side")
    if o.client_order_id is not None and not isinstance(o.client_order_id, str):
        raise _Reject("invalid_input:client_order_id")
    if o.side == "cancel":
        return
    if not _finite(o.qty) or o.qty <= 0:
        raise _Reject("invalid_input:qty")
    if not isinstance(o.order_type, str) or o.order_type not in ("market", "limit"):
        raise _Reject("invalid_input:order_type")
    if o.order_type == "limit" and (not _finite(o.limit_price) or o.limit_price <= 0):
        raise _Reject("invalid_input:limit_price")
    if o.reference_price is not None and (not _finite(o.reference_price) or o.reference_price <= 0):
        raise _Reject("invalid_input:reference_price")
    if o.confidence is not None and not _finite(o.confidence):
        raise _Reject("invalid_input:confidence")


#: Monte Carlo VaR in the gate: scenarios per check, drawn with a fixed seed so a verdict repeats.
_GATE_MC_SIMS = 20_000


def _portfolio_var_es(book: _Book, sym: str, new_pos: float, market: MarketSnapshot, limits: RiskLimits) -> tuple[float, float]:
    from analytics._var import (
        filtered_historical_var_es,
        gjr_filtered_portfolio_var_es,
        historical_var_es,
    )

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
        try:
            r = np.asarray(r, dtype=float)
        except (TypeError, ValueError):
            raise _Reject(f"missing_returns:{s}") from None
        if r.ndim != 1 or r.size < limits.min_var_observations or not np.isfinite(r).all():
            raise _Reject(f"missing_returns:{s}")
        series.append(r[-limits.min_var_observations:])
        weights.append(q * float(book.prices[s]) / book.equity)
    port = np.column_stack(series) @ np.asarray(weights)
    if limits.var_method == "gjr_filtered":  # one cached fit per asset, not per order
        res = gjr_filtered_portfolio_var_es(np.column_stack(series), weights, limits.var_level)
    elif limits.var_method == "filtered":
        res = filtered_historical_var_es(port, limits.var_level)
    elif limits.var_method == "historical":
        res = historical_var_es(port, limits.var_level)
    elif limits.var_method in ("normal", "student_t", "monte_carlo"):  # on the assets, not the sum
        from analytics._portfolio_risk import portfolio_var

        res = portfolio_var(np.column_stack(series), np.asarray(weights), limits.var_level, limits.var_method,
                            n_sims=_GATE_MC_SIMS, seed=0)
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
    return _minimum_qty(o, qty, limits, reasons)


def _min_qty(o: ProposedOrder, limits: RiskLimits) -> float:
    return limits.min_order_qty if float(o.qty).is_integer() else limits.min_fractional_qty


def _minimum_qty(o: ProposedOrder, qty: float, limits: RiskLimits, reasons: list[str]) -> float:
    """A trimmed order for whole shares stays whole: floor it; below the minimum it is dropped.

    An order whose quantity is fractional (the export's simulated book) keeps its trimmed
    fraction down to ``min_fractional_qty``. A last trim that leaves less than the minimum
    becomes ``limit:<check>``.
    """
    if qty <= 0 or not reasons:
        return qty
    if float(o.qty).is_integer() and not float(qty).is_integer():
        qty = float(np.floor(qty * (1.0 + 1e-12)))  # 199.99999999997 from a ratio is 200
    if qty < _min_qty(o, limits):
        reasons[-1] = "limit:" + reasons[-1].split(":", 1)[1]
        return 0.0
    return qty


def _global_reject(market: Any, limits: Any, state: Any) -> tuple[str, RiskState, tuple[str, ...]] | None:
    """A reason that rejects every order of this evaluation (with the state to return), or None."""
    if not isinstance(state, RiskState):
        why = f"risk state unreadable ({type(state).__name__})"
        return "invalid_input:state", RiskState("HALTED", why), (f"HALTED: {why}",)
    bad = _bad_limit(limits)
    if bad is not None:
        code = "invalid_input:limits" if bad == "limits" else f"invalid_input:limits.{bad}"
        return code, state, (f"rejected every order: {code}",)
    if not isinstance(market, MarketSnapshot):
        return "invalid_input:market", state, ("rejected every order: invalid_input:market",)
    if _timestamp(market.now) is None:
        return "invalid_input:now", state, ("rejected every order: invalid_input:now",)
    for name in ("prices", "last_bar", "bar_seconds", "tradable", "market_open", "regime", "returns",
                 "feed_silent"):
        if not isinstance(getattr(market, name), Mapping):
            code = f"invalid_input:market.{name}"
            return code, state, (f"rejected every order: {code}",)
    return None


def _recent_ok(recent: Any, now: pd.Timestamp) -> bool:
    """The remembered approvals are readable: timestamps comparable with ``now``, numbers, ids."""
    if isinstance(recent, (str, bytes, Mapping)) or not isinstance(recent, Sequence):
        return False
    for r in recent:
        if not isinstance(r, RecentOrder):
            return False
        ts = _timestamp(r.ts)
        if ts is None or (ts.tzinfo is None) != (now.tzinfo is None) or not _finite(r.qty):
            return False
        if not (r.client_order_id is None or isinstance(r.client_order_id, str)) or not isinstance(
                r.symbol, str) or not isinstance(r.side, str):
            return False
    return True


def evaluate(
    orders: Sequence[ProposedOrder],
    portfolio: Portfolio,
    market: MarketSnapshot,
    limits: RiskLimits,
    state: RiskState,
) -> GateResult:
    """Verdict per order, in order; approved orders count against the limits of later ones.

    Never raises. Bad data rejects: an order's own bad field rejects that order
    (``invalid_input:<field>``); a broken limit, clock or market snapshot rejects every order
    (``invalid_input:limits.<name>``, ``invalid_input:now``, ``invalid_input:market.<name>``);
    a portfolio that cannot be valued or an unreadable risk state rejects every order and
    halts trading; an exception inside a check rejects (``check_error:<Type>``).

    Parameters
    ----------
    orders : sequence of ProposedOrder
        Anything else than a sequence gives no verdicts (and an event saying so); an item
        that is not a ProposedOrder is rejected (``invalid_input:order``).
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
    if isinstance(orders, (str, bytes, Mapping)) or not isinstance(orders, Sequence):
        keep = state if isinstance(state, RiskState) else RiskState("HALTED", "risk state unreadable")
        return GateResult((), keep, (f"invalid_input:orders: not a sequence of orders ({type(orders).__name__})",))
    try:
        orders = tuple(orders)
    except Exception as exc:  # noqa: BLE001 - a sequence that cannot be read gives no verdicts
        keep = state if isinstance(state, RiskState) else RiskState("HALTED", "risk state unreadable")
        return GateResult((), keep, (f"invalid_input:orders: unreadable ({type(exc).__name__})",))
    try:
        return _evaluate(orders, portfolio, market, limits, state)
    except Exception as exc:  # noqa: BLE001 - any failure outside the per-order checks rejects all
        code = f"check_error:{type(exc).__name__}"
        keep = state if isinstance(state, RiskState) else RiskState("HALTED", "risk state unreadable")
        return GateResult(tuple(Verdict(o, "reject", 0.0, (code,)) for o in orders), keep,
                          (f"rejected every order: {code}",))


def _evaluate(orders: tuple[Any, ...], portfolio: Any, market: Any, limits: Any, state: Any) -> GateResult:
    def reject_all(code: str, st: RiskState, events: tuple[str, ...]) -> GateResult:
        return GateResult(tuple(Verdict(o, "reject", 0.0, (code,)) for o in orders), st, events)

    glob = _global_reject(market, limits, state)
    if glob is not None:
        return reject_all(*glob)
    now = _timestamp(market.now)
    try:
        book = _Book(portfolio, market.prices)
    except _Reject as exc:
        halted = replace(state, trading_state="HALTED", reason=f"portfolio cannot be valued: {exc.code}")
        return reject_all(exc.code, halted, (f"HALTED: portfolio cannot be valued ({exc.code})",))
    st, events = apply_circuit_breakers(state, book.equity, now, limits)
    if not _recent_ok(st.recent, now):
        # The memory of earlier approvals (duplicates, throttle) is unreadable: nothing new
        # passes until a person repairs the state; cancels still do.
        verdicts = tuple(Verdict(o, "approve", 0.0, ()) if isinstance(o, ProposedOrder) and o.side == "cancel"
                         and isinstance(o.client_order_id, str) and st.trading_state in TRADING_STATES
                         else Verdict(o, "reject", 0.0, ("invalid_input:state.recent",)) for o in orders)
        return GateResult(verdicts, st, (*events, "rejected every new order: invalid_input:state.recent"))
    recent = [r for r in st.recent if (now - _timestamp(r.ts)).total_seconds() <= max(
        limits.rate_window_seconds, limits.duplicate_window_seconds or 0.0)]
    pending_ids = {p.client_order_id for p in portfolio.pending}
    verdicts: list[Verdict] = []
    for o in orders:
        reasons: list[str] = []
        try:
            qty = _evaluate_one(o, book, market, limits, st, recent, pending_ids, now, reasons)
            if o.side == "cancel":
                verdicts.append(Verdict(o, "approve", 0.0, ()))
                continue
            if qty <= 0:
                verdicts.append(Verdict(o, "reject", 0.0, tuple(reasons)))
                continue
            action = "trim" if qty < float(o.qty) - 1e-12 else "approve"
            rec = RecentOrder(now, o.client_order_id, o.symbol, o.side, qty)
            book.apply(o.symbol, o.side, qty, float(market.prices[o.symbol]))
        except _Reject as exc:
            verdicts.append(Verdict(o, "reject", 0.0, (*reasons, exc.code)))
            continue
        except Exception as exc:  # noqa: BLE001 - any failure inside a check rejects
            verdicts.append(Verdict(o, "reject", 0.0, (*reasons, f"check_error:{type(exc).__name__}")))
            continue
        verdicts.append(Verdict(o, action, qty, tuple(reasons)))
        recent.append(rec)
        if o.client_order_id:
            pending_ids.add(o.client_order_id)
    return GateResult(tuple(verdicts), replace(st, recent=tuple(recent)), events)


def _bar_time(o: ProposedOrder, market: MarketSnapshot, limits: RiskLimits, now: pd.Timestamp) -> None:
    """The symbol's last bar: a timestamp, comparable with ``now``, not after it, and fresh."""
    if o.symbol in market.last_bar:
        last = _timestamp(market.last_bar[o.symbol])
        if last is None or (last.tzinfo is None) != (now.tzinfo is None) or last > now:
            raise _Reject("invalid_input:bar_time")
    else:
        last = None
    if limits.max_staleness_bars is None:
        return
    secs = market.bar_seconds.get(o.symbol)
    if last is None or secs is None:
        raise _Reject("stale_data")
    if not _positive(secs):
        raise _Reject("invalid_input:bar_seconds")
    if (now - last).total_seconds() > limits.max_staleness_bars * float(secs):
        raise _Reject("stale_data")


def _evaluate_one(o: ProposedOrder, book: _Book, market: MarketSnapshot, limits: RiskLimits, st: RiskState,
                  recent: list[RecentOrder], pending_ids: set[str], now: pd.Timestamp, reasons: list[str]) -> float:
    _check_inputs(o)
    if o.side == "cancel":
        if st.trading_state not in TRADING_STATES:
            raise _Reject("invalid_state")
        if not o.client_order_id:
            raise _Reject("invalid_input:client_order_id")
        return 0.0
    if st.trading_state == "HALTED":
        raise _Reject("halted")
    pos = book.position(o.symbol)
    # pending orders on the same side count: two sells that each fit the long may not both fit
    already = (book.pending_sell_qty if o.side == "sell" else book.pending_buy_qty).get(o.symbol, 0.0)
    reducing = is_reducing(o.side, float(o.qty) + already, pos)
    if st.trading_state == "REDUCING" and not reducing:
        raise _Reject("reducing_only")
    closes = reducing and abs(float(o.qty) - abs(pos)) <= 1e-12
    if float(o.qty) < _min_qty(o, limits) and not closes:
        raise _Reject("below_min_qty")
    if limits.allowed_symbols is not None and o.symbol not in limits.allowed_symbols:
        raise _Reject("symbol_not_allowed")
    tradable = market.tradable.get(o.symbol)
    if tradable is not None and _flag(tradable) is None:
        raise _Reject("invalid_input:tradable")
    if not tradable:
        raise _Reject("not_tradable")
    silent = market.feed_silent.get(o.symbol)
    if silent is not None and _flag(silent) is None:
        raise _Reject("invalid_input:feed_silent")
    if silent:
        raise _Reject("feed_silent")
    if limits.require_market_open:
        is_open = market.market_open.get(o.symbol)
        if is_open is not None and _flag(is_open) is None:
            raise _Reject("invalid_input:market_open")
        if not is_open:
            raise _Reject("market_closed")
    price = market.prices.get(o.symbol)
    if not _positive(price):
        raise _Reject("missing_price")
    price = float(price)
    label = market.regime.get(o.symbol)
    if label is not None and not isinstance(label, str):
        raise _Reject("invalid_input:regime")
    _bar_time(o, market, limits, now)
    if limits.collar_pct is not None:
        ref = o.limit_price if o.order_type == "limit" else o.reference_price
        if ref is None or abs(float(ref) / price - 1.0) > limits.collar_pct:
            raise _Reject("price_collar")
    if o.client_order_id and (o.client_order_id in pending_ids or any(
            r.client_order_id == o.client_order_id for r in recent)):
        raise _Reject("duplicate_order")
    if limits.duplicate_window_seconds is not None and any(
        r.symbol == o.symbol and r.side == o.side and abs(float(r.qty) - float(o.qty)) < 1e-9
        and (now - _timestamp(r.ts)).total_seconds() <= limits.duplicate_window_seconds
        for r in recent
    ):
        raise _Reject("duplicate_order")
    if limits.max_orders_per_window is not None and sum(
        1 for r in recent if (now - _timestamp(r.ts)).total_seconds() <= limits.rate_window_seconds
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
        if not (math.isfinite(var) and math.isfinite(es)):  # NaN > limit is False: it would pass
            raise _Reject("check_error:var_not_finite")
        scale = _regime_var_scale(book, o.symbol, market, limits)
        if limits.var_limit is not None and var > limits.var_limit * scale:
            raise _Reject("var_limit" if var > limits.var_limit else "regime_var_limit")
        if limits.es_limit is not None and es > limits.es_limit * scale:
            raise _Reject("es_limit" if es > limits.es_limit else "regime_es_limit")
    return qty


def _regime_var_scale(book: _Book, sym: str, market: MarketSnapshot, limits: RiskLimits) -> float:
    """The multiplier of the VaR and ES limits: the smallest table entry among the portfolio's regimes.

    The portfolio is the one after the trade: the symbols held with a non-zero quantity plus
    ``sym``. A symbol without a label, or with a label not in the table, does not tighten; a
    label that is not text rejects (``invalid_input:regime``) while the table is not empty.
    """
    scales = limits.regime_var_scales
    if not scales:
        return 1.0
    scale = 1.0
    for s in {s for s, q in book.pos.items() if q} | {sym}:
        label = market.regime.get(s)
        if label is None:
            continue
        if not isinstance(label, str):
            raise _Reject("invalid_input:regime")
        if label in scales:
            scale = min(scale, float(scales[label]))
    return scale
