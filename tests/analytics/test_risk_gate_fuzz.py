"""A seeded fuzz of the risk gate: 10,000 random, partly broken worlds through ``evaluate``.

Every world is a valid one with a few perturbations: NaN / inf / None / bool / str in numeric
fields of orders, positions, pending orders, cash and prices; future, NaT, naive and
non-timestamp bar times and clocks; duplicate client order ids; fractional and sub-share
quantities; broken recent-order records and risk states; now and then a wrong container.
An independent judge (this file, not the gate's code) decides for every approved order
whether it breaks a limit or rests on bad data. The gate must never raise and never approve
such an order. ``python -m pytest -s`` prints the counts (cases, orders, approvals,
rejections by reason).
"""

from __future__ import annotations

import math
import numbers
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analytics.risk_gate import (
    MarketSnapshot,
    PendingOrder,
    Portfolio,
    ProposedOrder,
    RecentOrder,
    RiskLimits,
    RiskState,
    evaluate,
)

SYMS = ("AAA", "BBB", "CCC")
NOW = pd.Timestamp("2024-03-05 15:00", tz="UTC")
_R = np.random.default_rng(7)
RETURNS = {s: _R.normal(0.0003, 0.01, 300) for s in SYMS}
BAD_NUMBERS = (None, True, False, "12.5", float("nan"), float("inf"), -float("inf"), -5.0, 0.0)
BAD_TIMES = (pd.NaT, None, "2024-03-05", 17, 1.5e9, NOW.tz_localize(None), np.datetime64("NaT"))
CASES = 10_000
SEED = 20240305
TOL = 1e-7


def _num(x) -> bool:
    """A real, finite number (not a bool, not a string)."""
    return (isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_))
            and math.isfinite(float(x)))


def _pos_num(x) -> bool:
    return _num(x) and x > 0


def _ts(x) -> bool:
    return isinstance(x, pd.Timestamp) and not pd.isna(x)


def _aware(x) -> bool:
    return x.tzinfo is not None


def _is_true(x) -> bool:
    return isinstance(x, (bool, np.bool_)) and bool(x)


@dataclass
class Tally:
    cases: int = 0
    orders: int = 0
    approvals: int = 0
    trims: int = 0
    rejections: Counter = field(default_factory=Counter)
    exceptions: Counter = field(default_factory=Counter)
    violations: Counter = field(default_factory=Counter)
    examples: list = field(default_factory=list)

    def violate(self, what: str, world) -> None:
        self.violations[what] += 1
        if len(self.examples) < 5:
            self.examples.append((what, world))

    def summary(self) -> str:
        lines = [f"cases {self.cases}, orders {self.orders}, approvals {self.approvals} (trimmed {self.trims}), "
                 f"rejections {sum(self.rejections.values())}, exceptions {sum(self.exceptions.values())}, "
                 f"approvals breaking a limit {sum(self.violations.values())}"]
        lines += [f"  exception {k}: {n}" for k, n in self.exceptions.most_common()]
        lines += [f"  violation {k}: {n}" for k, n in self.violations.most_common()]
        lines += [f"  reject {k}: {n}" for k, n in sorted(self.rejections.items(), key=lambda kv: (-kv[1], kv[0]))]
        return "\n".join(lines)


class World:
    """One random world; ``rng`` draws every choice so a seed reproduces it."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        r = rng.random
        self.prices = {s: self.maybe(float(rng.uniform(1.0, 500.0)), BAD_NUMBERS, 0.03) for s in SYMS}
        self.positions: dict = {}
        for s in SYMS:
            q = float(rng.integers(-300, 301))
            if r() < 0.1:
                q += float(rng.uniform(0, 1))
            self.positions[s] = self.maybe(q, BAD_NUMBERS[:5], 0.02)
        if r() < 0.01:
            self.positions["ZZZ"] = 3.0  # held, but no price
        self.cash = self.maybe(float(rng.uniform(-20_000, 200_000)), BAD_NUMBERS[:7], 0.02)
        self.pending = []
        for i in range(int(rng.integers(0, 3))):
            sym = SYMS[int(rng.integers(3))]
            p = self.prices[sym] if _pos_num(self.prices[sym]) else 10.0
            self.pending.append(PendingOrder(
                self.maybe(f"p{i}", (None, 5, ["x"]), 0.02), sym,
                self.maybe(("buy", "sell")[int(rng.integers(2))], ("hold", None), 0.02),
                self.maybe(float(rng.integers(1, 100)), BAD_NUMBERS, 0.02), self.maybe(p, BAD_NUMBERS, 0.02)))
        self.now = self.maybe(NOW, BAD_TIMES, 0.02)
        self.last_bar: dict = {}
        for s in SYMS:
            if r() < 0.02:
                continue
            good = NOW - pd.Timedelta(seconds=float(rng.uniform(0, 3 * 86400)))
            if r() < 0.04:
                good = NOW + pd.Timedelta(seconds=float(rng.uniform(1, 2 * 86400)))  # from the future
            self.last_bar[s] = self.maybe(good, BAD_TIMES, 0.03)
        self.bar_seconds = {s: self.maybe(86400.0, (None, float("nan"), 0.0, "86400", True, -1.0), 0.02)
                            for s in SYMS}
        self.tradable = {s: self.maybe(True, ("yes", 1, None, False, np.True_, np.False_), 0.03) for s in SYMS}
        self.market_open = {s: self.maybe(bool(r() < 0.9), ("yes", None, 1), 0.02) for s in SYMS}
        self.feed_silent = {}
        for s in SYMS:
            if r() < 0.05:
                self.feed_silent[s] = (False, True, "no", None, 0)[int(rng.integers(5))]
        self.regime = {s: self.maybe(("bull", "high_volatility", "calm")[int(rng.integers(3))], (None, 5, ("x",)), 0.02)
                       for s in SYMS}
        self.returns: dict = {}
        for s in SYMS:
            if r() < 0.03:
                bad = (None, np.r_[RETURNS[s][:-1], np.nan], [None] * 300, RETURNS[s][:10],
                       RETURNS[s].reshape(-1, 1), "returns")
                self.returns[s] = bad[int(rng.integers(len(bad)))]
            else:
                self.returns[s] = RETURNS[s]
        self.limits = self._limits()
        self.state = self._state()
        self.orders = self._orders()
        self.container = None
        if r() < 0.01:
            self.container = ("orders", "portfolio", "market", "limits", "state", "positions",
                              "prices", "pending", "recent", "last_bar")[int(rng.integers(10))]

    def maybe(self, good, bad, p):
        if self.rng.random() < p:
            return bad[int(self.rng.integers(len(bad)))]
        return good

    def _limits(self) -> RiskLimits:
        rng, r = self.rng, self.rng.random

        def opt(lo, hi, p_on=0.5):
            return float(rng.uniform(lo, hi)) if r() < p_on else None

        breakers = r() < 0.3
        return RiskLimits(
            max_staleness_bars=4.0 if r() < 0.5 else None,
            collar_pct=0.05 if r() < 0.3 else None,
            min_confidence=0.2 if r() < 0.2 else None,
            duplicate_window_seconds=3600.0 if r() < 0.5 else None,
            max_orders_per_window=int(rng.integers(1, 6)) if r() < 0.3 else None,
            max_order_qty=opt(1, 500),
            max_order_notional=opt(100, 50_000),
            allow_short=bool(r() < 0.5),
            max_position_weight=opt(0.05, 1.5, 0.7),
            max_gross_exposure=opt(0.1, 2.0, 0.7),
            max_net_exposure=opt(0.1, 2.0, 0.7),
            regime_gross_caps={"high_volatility": 0.3} if r() < 0.5 else {},
            var_limit=0.02 if r() < 0.15 else None,
            es_limit=0.03 if r() < 0.1 else None,
            daily_loss_reduce=0.03 if breakers else None,
            daily_loss_halt=0.05 if breakers else None,
            max_drawdown_halt=0.2 if breakers else None,
        )

    def _state(self) -> RiskState:
        rng, r = self.rng, self.rng.random
        ts = self.maybe(("ACTIVE", "ACTIVE", "ACTIVE", "REDUCING", "HALTED")[int(rng.integers(5))],
                        ("WHATEVER", None, 3), 0.01)
        day = dse = peak = None
        if r() < 0.3:
            day = self.maybe(NOW.date().isoformat(), (None, 5, "yesterday"), 0.03)
            dse = self.maybe(float(rng.uniform(50_000, 300_000)), BAD_NUMBERS, 0.03)
            peak = self.maybe(float(rng.uniform(50_000, 400_000)), BAD_NUMBERS, 0.03)
        recent = []
        for i in range(int(rng.integers(0, 4))):
            recent.append(RecentOrder(
                self.maybe(NOW - pd.Timedelta(seconds=float(rng.uniform(0, 7200))), BAD_TIMES, 0.02),
                self.maybe(f"r{i}", (None, 5, ["x"]), 0.02), SYMS[int(rng.integers(3))],
                ("buy", "sell")[int(rng.integers(2))], self.maybe(float(rng.integers(1, 1000)), BAD_NUMBERS, 0.02)))
        return RiskState(ts, None, day, dse, peak, tuple(recent))

    def _orders(self) -> list:
        rng, r = self.rng, self.rng.random
        out = []
        for i in range(int(rng.integers(1, 5))):
            sym = self.maybe(SYMS[int(rng.integers(3))], ("ZZZ", None, 5, ""), 0.02)
            side = self.maybe(("buy", "sell")[int(rng.integers(2))], ("hold", None, "cancel"), 0.03)
            u = r()
            if u < 0.55:
                qty = float(rng.integers(1, 1000))
            elif u < 0.75:
                qty = float(rng.uniform(0.001, 500.0))
            elif u < 0.9:
                qty = (1e-12, 1e-9, 1e-7, 0.3, 0.999999)[int(rng.integers(5))]
            else:
                qty = BAD_NUMBERS[int(rng.integers(len(BAD_NUMBERS)))]
            price = self.prices.get(sym) if isinstance(sym, str) else None
            base = float(price) if _pos_num(price) else 100.0
            order_type = "limit" if r() < 0.1 else self.maybe("market", ("stop", None), 0.01)
            limit_price = self.maybe(base * float(rng.uniform(0.97, 1.03)), BAD_NUMBERS, 0.05) \
                if order_type == "limit" else None
            ref = self.maybe(base * float(rng.uniform(0.97, 1.03)), BAD_NUMBERS, 0.05) if r() < 0.9 else None
            conf = None if r() < 0.3 else self.maybe(float(rng.uniform(0, 1)), BAD_NUMBERS, 0.03)
            u = r()
            if u < 0.08 and out:
                coid = out[int(rng.integers(len(out)))].client_order_id  # duplicate within the batch
            elif u < 0.12 and self.pending:
                coid = self.pending[0].client_order_id
            elif u < 0.16 and self.state.recent:
                coid = self.state.recent[0].client_order_id
            elif u < 0.2:
                coid = (None, "", 7, ["x"])[int(rng.integers(4))]
            else:
                coid = f"o{i}"
            out.append(ProposedOrder(coid, sym, side, qty, order_type, limit_price, ref, conf))
        return out

    def call_args(self):
        market = MarketSnapshot(now=self.now, prices=self.prices, last_bar=self.last_bar, bar_seconds=self.bar_seconds,
                                tradable=self.tradable, market_open=self.market_open, regime=self.regime,
                                returns=self.returns, feed_silent=self.feed_silent)
        pf = Portfolio(self.cash, self.positions, tuple(self.pending))
        args = {"orders": self.orders, "portfolio": pf, "market": market, "limits": self.limits, "state": self.state}
        c = self.container
        if c in ("orders", "portfolio", "market", "limits", "state"):
            args[c] = (None, "abc", 42)[int(self.rng.integers(3))]
        elif c == "positions":
            args["portfolio"] = Portfolio(self.cash, [("AAA", 1.0)], tuple(self.pending))
        elif c == "pending":
            args["portfolio"] = Portfolio(self.cash, self.positions, None)
        elif c == "prices":
            args["market"] = MarketSnapshot(now=self.now, prices=None)
        elif c == "recent":
            args["state"] = RiskState(recent=None)
        elif c == "last_bar":
            args["market"] = MarketSnapshot(now=self.now, prices=self.prices, last_bar=[NOW],
                                            tradable=self.tradable)
        return args


def _valid_world(args) -> str | None:
    """Why this world's portfolio, clock or state cannot support any new exposure (None if it can)."""
    pf, mk, state = args["portfolio"], args["market"], args["state"]
    if not isinstance(state, RiskState) or state.trading_state not in ("ACTIVE", "REDUCING"):
        return "state"
    if not isinstance(state.recent, tuple):
        return "recent"
    for rec in state.recent:
        if not (_ts(rec.ts) and _num(rec.qty) and (rec.client_order_id is None or isinstance(rec.client_order_id, str))):
            return "recent"
    if not isinstance(pf, Portfolio) or not _num(pf.cash) or not isinstance(pf.positions, dict):
        return "portfolio"
    if not isinstance(pf.pending, tuple):
        return "pending"
    if not isinstance(mk, MarketSnapshot) or not isinstance(mk.prices, dict):
        return "market"
    for s, q in pf.positions.items():
        if not _num(q) or (q != 0 and not _pos_num(mk.prices.get(s))):
            return "position"
    for p in pf.pending:
        if not (isinstance(p.client_order_id, str) and p.side in ("buy", "sell") and _num(p.qty) and p.qty >= 0
                and _pos_num(p.price)):
            return "pending"
    if not _ts(mk.now):
        return "now"
    if not isinstance(mk.last_bar, dict):
        return "last_bar"
    if any(_ts(rec.ts) and _aware(rec.ts) != _aware(mk.now) for rec in state.recent):
        return "recent"
    for name in ("day_start_equity", "peak_equity"):
        v = getattr(state, name)
        if v is not None and not _pos_num(v):
            return f"state.{name}"
    if state.day is not None and not isinstance(state.day, str):
        return "state.day"
    return None


def judge(args, res, tally: Tally, world) -> None:
    """Count every approval that breaks a limit or rests on bad data."""
    orders, lim = args["orders"], args["limits"]
    approved = [v for v in res.verdicts if v.approved]
    if isinstance(orders, list) and len(res.verdicts) != len(orders):
        tally.violate("verdict_count", world)
    if not approved:
        return
    why = _valid_world(args)
    if why is not None:
        tally.violate(f"approved_with_bad_{why}", world)
        return
    if not isinstance(lim, RiskLimits) or not isinstance(orders, list):
        tally.violate("approved_with_bad_container", world)
        return
    pf, mk, state = args["portfolio"], args["market"], args["state"]
    if res.state.trading_state == "HALTED":
        tally.violate("approved_while_halted", world)
    now = mk.now
    pos = dict(pf.positions)
    cash = float(pf.cash)
    equity = cash + sum(float(q) * float(mk.prices[s]) for s, q in pos.items() if q)
    pending_buy = sum(p.qty * p.price for p in pf.pending if p.side == "buy")
    # the gate remembers approvals for the longer of the throttle and duplicate windows
    memory = max(lim.rate_window_seconds, lim.duplicate_window_seconds or 0.0)
    seen_ids = {p.client_order_id for p in pf.pending} | {
        r.client_order_id for r in state.recent if r.client_order_id and (now - r.ts).total_seconds() <= memory}
    window = [r for r in state.recent if (now - r.ts).total_seconds() <= lim.rate_window_seconds]
    n_window = len(window)
    min_whole = getattr(lim, "min_order_qty", 1.0)
    min_frac = getattr(lim, "min_fractional_qty", 1e-6)
    for v in res.verdicts:
        if not v.approved:
            continue
        o = v.order

        def bad(what: str) -> None:
            tally.violate(what, world)

        if not isinstance(o, ProposedOrder) or o.side not in ("buy", "sell") or not isinstance(o.symbol, str):
            bad("approved_bad_order")
            continue
        sym = o.symbol
        price = mk.prices.get(sym)
        if not _pos_num(price):
            bad("approved_without_price")
            continue
        if not _pos_num(o.qty) or v.qty > o.qty + 1e-9:
            bad("approved_bad_qty")
            continue
        if o.order_type not in ("market", "limit") or (o.order_type == "limit" and not _pos_num(o.limit_price)):
            bad("approved_bad_order_type")
        if o.reference_price is not None and not _pos_num(o.reference_price):
            bad("approved_bad_reference_price")
        if o.confidence is not None and not _num(o.confidence):
            bad("approved_bad_confidence")
        if o.client_order_id is not None and not isinstance(o.client_order_id, str):
            bad("approved_bad_client_order_id")
        elif o.client_order_id:
            if o.client_order_id in seen_ids:
                bad("approved_duplicate_id")
            seen_ids.add(o.client_order_id)
        if not _is_true(mk.tradable.get(sym)):
            bad("approved_not_tradable")
        silent = mk.feed_silent.get(sym, False)
        if silent is not None and not (isinstance(silent, (bool, np.bool_)) and not silent):
            bad("approved_feed_silent_or_unknown")
        label = mk.regime.get(sym)
        if label is not None and not isinstance(label, str):
            bad("approved_bad_regime")
        last = mk.last_bar.get(sym, "absent")
        if isinstance(last, str) and last == "absent":
            if lim.max_staleness_bars is not None:
                bad("approved_without_bar_time")
        elif not _ts(last) or _aware(last) != _aware(now):
            bad("approved_bad_bar_time")
        elif last > now:
            bad("approved_future_bar")
        elif lim.max_staleness_bars is not None:
            secs = mk.bar_seconds.get(sym)
            if not _pos_num(secs) or (now - last).total_seconds() > lim.max_staleness_bars * secs:
                bad("approved_stale")
        if lim.collar_pct is not None:
            ref = o.limit_price if o.order_type == "limit" else o.reference_price
            if not _pos_num(ref) or abs(ref / price - 1) > lim.collar_pct + 1e-12:
                bad("approved_outside_collar")
        if lim.max_orders_per_window is not None:
            n_window += 1
            if n_window > lim.max_orders_per_window:
                bad("approved_over_rate")
        before = float(pos.get(sym, 0.0))
        sign = 1.0 if o.side == "buy" else -1.0
        after = before + sign * v.qty
        reducing = abs(after) <= abs(before) + 1e-9 and after * before >= -1e-9
        closes = reducing and abs(v.qty - abs(before)) <= 1e-12
        whole = float(o.qty).is_integer()
        if whole and not float(v.qty).is_integer():
            bad("approved_fraction_of_whole_share_order")
        if not closes and v.qty < (min_whole if whole else min_frac) - 1e-15:
            bad("approved_below_min_qty")
        if state.trading_state == "REDUCING" or res.state.trading_state == "REDUCING":
            if not reducing:
                bad("approved_increase_while_reducing")
        if not reducing:
            if lim.min_confidence is not None and not (_num(o.confidence) and o.confidence >= lim.min_confidence):
                bad("approved_low_confidence")
            if lim.max_order_qty is not None and v.qty > lim.max_order_qty + TOL:
                bad("approved_over_max_order_qty")
            if lim.max_order_notional is not None and v.qty * price > lim.max_order_notional * (1 + TOL):
                bad("approved_over_max_order_notional")
            if not lim.allow_short and after < -TOL:
                bad("approved_short")
            if equity <= 0:
                bad("approved_with_non_positive_equity")
            else:
                new = dict(pos, **{sym: after})
                vals = {s: float(q) * float(mk.prices[s]) for s, q in new.items() if q}
                gross = sum(abs(x) for x in vals.values()) / equity
                net = sum(vals.values()) / equity
                if lim.max_position_weight is not None and abs(vals.get(sym, 0.0)) / equity > lim.max_position_weight + TOL:
                    bad("approved_over_position_weight")
                cap = lim.max_gross_exposure
                if label in lim.regime_gross_caps:
                    rc = lim.regime_gross_caps[label]
                    cap = rc if cap is None else min(cap, rc)
                if cap is not None and gross > cap + TOL:
                    bad("approved_over_gross")
                if lim.max_net_exposure is not None:
                    old = {s: float(q) * float(mk.prices[s]) for s, q in pos.items() if q}
                    net_before = sum(old.values()) / equity
                    if abs(net) > lim.max_net_exposure + TOL and abs(net) > abs(net_before) + TOL:
                        bad("approved_over_net")
                if o.side == "buy" and cash - v.qty * max(price, o.limit_price or 0) - pending_buy < -TOL * max(1.0, abs(cash)):
                    bad("approved_over_buying_power")
                if lim.var_limit is not None or lim.es_limit is not None:
                    for s, q in new.items():
                        rr = mk.returns.get(s)
                        if q and not (isinstance(rr, np.ndarray) and rr.ndim == 1 and rr.size >= 250
                                      and np.isfinite(rr).all()):
                            bad("approved_without_returns")
        pos[sym] = after
        cash -= sign * v.qty * float(price)


def run_fuzz(cases: int = CASES, seed: int = SEED) -> Tally:
    rng = np.random.default_rng(seed)
    tally = Tally()
    for i in range(cases):
        world = World(rng)
        args = world.call_args()
        tally.cases += 1
        if isinstance(args["orders"], list):
            tally.orders += len(args["orders"])
        try:
            res = evaluate(**args)
        except Exception as exc:  # noqa: BLE001 - counted: the gate must never raise
            tally.exceptions[f"{type(exc).__name__}: {str(exc)[:60]}"] += 1
            if len(tally.examples) < 5:
                tally.examples.append((f"raised {type(exc).__name__}", i))
            continue
        for v in res.verdicts:
            if v.approved:
                tally.approvals += 1
                tally.trims += v.action == "trim"
            elif v.reasons:
                code = v.reasons[-1]
                head = code.split(":")
                tally.rejections[":".join(head[:2]) if head[0] in ("invalid_input", "check_error") else head[0]] += 1
            elif v.order is not None and getattr(v.order, "side", None) != "cancel":
                tally.violate("reject_without_reason", i)
        judge(args, res, tally, i)
    return tally


def test_fuzz_no_exception_and_no_approval_breaks_a_limit():
    tally = run_fuzz()
    print("\n" + tally.summary())
    assert tally.cases == CASES and tally.orders >= 20_000
    assert tally.approvals > 2_000  # the fuzz is not so hostile that nothing passes
    assert not tally.exceptions, tally.summary()
    assert not tally.violations, (tally.summary(), tally.examples)
