"""The risk gate: one test per check, fail-closed inputs, circuit breakers, and properties."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.risk_gate import (
    MarketSnapshot,
    PendingOrder,
    Portfolio,
    ProposedOrder,
    RecentOrder,
    RiskLimits,
    RiskState,
    apply_circuit_breakers,
    evaluate,
    is_reducing,
)

NOW = pd.Timestamp("2024-03-05 15:00", tz="UTC")
RNG = np.random.default_rng(0)
RETURNS = {s: RNG.normal(0.0003, 0.01, 600) for s in ("AAA", "BBB", "CCC")}


def market(**kw) -> MarketSnapshot:
    base = dict(
        now=NOW,
        prices={"AAA": 100.0, "BBB": 50.0, "CCC": 20.0},
        last_bar={s: NOW - pd.Timedelta(hours=20) for s in ("AAA", "BBB", "CCC")},
        bar_seconds={s: 86400.0 for s in ("AAA", "BBB", "CCC")},
        tradable={"AAA": True, "BBB": True, "CCC": True},
        market_open={"AAA": True, "BBB": True, "CCC": True},
        regime={"AAA": "bull", "BBB": "high_volatility", "CCC": "calm"},
        returns=RETURNS,
    )
    base.update(kw)
    return MarketSnapshot(**base)


OPEN = RiskLimits(max_staleness_bars=None, collar_pct=None, duplicate_window_seconds=None, max_orders_per_window=None,
                  max_position_weight=None, max_gross_exposure=None, max_net_exposure=None, daily_loss_reduce=None,
                  daily_loss_halt=None, max_drawdown_halt=None)
PF = Portfolio(cash=100_000.0, positions={})


def buy(qty=10.0, sym="AAA", **kw) -> ProposedOrder:
    return ProposedOrder(kw.pop("coid", f"id-{sym}-{qty}"), sym, "buy", qty, reference_price=kw.pop("ref", 100.0), **kw)


def sell(qty=10.0, sym="AAA", **kw) -> ProposedOrder:
    return ProposedOrder(kw.pop("coid", f"id-s-{sym}-{qty}"), sym, "sell", qty, reference_price=kw.pop("ref", 100.0),
                         **kw)


def one(order, pf=PF, mk=None, limits=OPEN, state=RiskState()):
    return evaluate([order], pf, mk or market(), limits, state).verdicts[0]


def test_open_limits_approve_a_plain_order():
    v = one(buy())
    assert v.action == "approve" and v.qty == 10 and v.reasons == ()


# -- trading state ---------------------------------------------------------------------------

def test_halted_rejects_everything_but_cancels():
    st_ = RiskState("HALTED", "kill switch")
    held = Portfolio(100_000.0, {"AAA": 50.0})
    assert one(buy(), state=st_).reasons == ("halted",)
    assert one(sell(10), held, state=st_).reasons == ("halted",)  # even reducing
    cancel = ProposedOrder("id-x", "AAA", "cancel", 0.0)
    assert one(cancel, state=st_).action == "approve"


def test_reducing_lets_only_exposure_reducing_orders_through():
    st_ = RiskState("REDUCING", "daily loss")
    held = Portfolio(100_000.0, {"AAA": 50.0, "BBB": -20.0})
    assert one(sell(30), held, state=st_).action == "approve"
    assert one(buy(20, "BBB", ref=50.0), held, state=st_).action == "approve"  # covering a short
    assert one(sell(60), held, state=st_).reasons == ("reducing_only",)  # would cross zero
    assert one(buy(1), held, state=st_).reasons == ("reducing_only",)
    assert is_reducing("sell", 50, 50) and not is_reducing("sell", 51, 50) and not is_reducing("buy", 1, 0)


def test_pending_sells_count_towards_reducing():
    held = Portfolio(100_000.0, {"AAA": 50.0}, (PendingOrder("p1", "AAA", "sell", 40.0, 100.0),))
    v = one(sell(20), held, state=RiskState("REDUCING"))
    assert v.reasons == ("reducing_only",)


def test_unknown_state_fails_closed():
    res = evaluate([buy()], PF, market(), OPEN, RiskState("WHATEVER"))
    assert res.state.trading_state == "HALTED" and res.verdicts[0].reasons == ("halted",)


# -- symbol, calendar, staleness, collar -----------------------------------------------------

def test_allow_list_tradable_and_market_open():
    lim = replace(OPEN, allowed_symbols=frozenset({"BBB"}))
    assert one(buy(), limits=lim).reasons == ("symbol_not_allowed",)
    assert one(buy(), mk=market(tradable={"AAA": False})).reasons == ("not_tradable",)
    lim = replace(OPEN, require_market_open=True)
    assert one(buy(), mk=market(market_open={"AAA": False}), limits=lim).reasons == ("market_closed",)
    assert one(buy(), mk=market(market_open={"AAA": False})).action == "approve"  # check off


def test_stale_data():
    lim = replace(OPEN, max_staleness_bars=2.0)
    assert one(buy(), limits=lim).action == "approve"
    old = market(last_bar={"AAA": NOW - pd.Timedelta(days=3)})
    assert one(buy(), mk=old, limits=lim).reasons == ("stale_data",)
    assert one(buy(), mk=market(last_bar={}), limits=lim).reasons == ("stale_data",)


def test_price_collar_on_limit_and_market_orders():
    lim = replace(OPEN, collar_pct=0.05)
    assert one(buy(ref=104.0), limits=lim).action == "approve"
    assert one(buy(ref=106.0), limits=lim).reasons == ("price_collar",)
    assert one(buy(ref=None), limits=lim).reasons == ("price_collar",)
    lo = ProposedOrder("l1", "AAA", "buy", 5.0, "limit", limit_price=94.0)
    assert one(lo, limits=lim).reasons == ("price_collar",)
    assert one(replace(lo, limit_price=96.0), limits=lim).action == "approve"


# -- confidence, duplicates, throttle --------------------------------------------------------

def test_min_confidence():
    lim = replace(OPEN, min_confidence=0.2)
    assert one(buy(confidence=0.1), limits=lim).reasons == ("low_confidence",)
    assert one(buy(confidence=None), limits=lim).reasons == ("low_confidence",)
    assert one(buy(confidence=0.3), limits=lim).action == "approve"
    held = Portfolio(100_000.0, {"AAA": 50.0})
    assert one(sell(10, confidence=0.0), held, limits=lim).action == "approve"  # reducing


def test_duplicates_by_id_and_by_content():
    lim = replace(OPEN, duplicate_window_seconds=600.0)
    seen = RiskState(recent=(RecentOrder(NOW - pd.Timedelta(minutes=5), "dup", "AAA", "buy", 10.0),))
    assert one(buy(coid="dup"), state=seen, limits=lim).reasons == ("duplicate_order",)
    assert one(buy(10, coid="other"), state=seen, limits=lim).reasons == ("duplicate_order",)
    assert one(buy(11, coid="other"), state=seen, limits=lim).action == "approve"
    later = replace(lim, duplicate_window_seconds=60.0)
    assert one(buy(10, coid="other"), state=seen, limits=later).action == "approve"
    pending = Portfolio(100_000.0, {}, (PendingOrder("dup2", "AAA", "buy", 1.0, 100.0),))
    assert one(buy(coid="dup2"), pending).reasons == ("duplicate_order",)
    # within one evaluation, the second of two identical orders is a duplicate
    res = evaluate([buy(coid="a"), buy(coid="a")], PF, market(), OPEN, RiskState())
    assert [v.action for v in res.verdicts] == ["approve", "reject"]


def test_order_rate_throttle():
    lim = replace(OPEN, max_orders_per_window=3, rate_window_seconds=60.0)
    res = evaluate([buy(1 + i, coid=f"t{i}") for i in range(5)], PF, market(), lim, RiskState())
    assert [v.action for v in res.verdicts] == ["approve"] * 3 + ["reject"] * 2
    assert res.verdicts[-1].reasons == ("rate_limited",)
    # the window slides: an hour later the throttle is clear again
    later = market(now=NOW + pd.Timedelta(hours=1), last_bar={})
    res2 = evaluate([buy(9, coid="t9")], PF, later, lim, res.state)
    assert res2.verdicts[0].action == "approve"


# -- size limits -----------------------------------------------------------------------------

def test_max_order_qty_and_notional_trim():
    v = one(buy(50), limits=replace(OPEN, max_order_qty=20))
    assert (v.action, v.qty, v.reasons) == ("trim", 20, ("trim:max_order_qty",))
    v = one(buy(50), limits=replace(OPEN, max_order_notional=2_500))
    assert (v.action, v.qty) == ("trim", 25)


def test_no_short():
    held = Portfolio(100_000.0, {"AAA": 5.0})
    v = one(sell(8), held)
    assert (v.action, v.qty, v.reasons) == ("trim", 5, ("trim:no_short",))
    v = one(sell(8), PF)
    assert v.action == "reject" and v.reasons == ("limit:no_short",)
    assert one(sell(8), PF, limits=replace(OPEN, allow_short=True)).action == "approve"


def test_position_weight_gross_net_and_regime_cap():
    lim = replace(OPEN, max_position_weight=0.2)
    v = one(buy(500), limits=lim)  # 50,000 of 100,000 equity -> 20,000
    assert (v.qty, v.reasons) == (200, ("trim:max_position_weight",))
    held = Portfolio(60_000.0, {"CCC": 2000.0})  # equity 100,000, 40% in CCC
    v = one(buy(500), held, limits=replace(OPEN, max_gross_exposure=0.6))
    assert v.qty == pytest.approx(200) and v.reasons == ("trim:max_gross_exposure",)
    short = Portfolio(140_000.0, {"CCC": -2000.0})  # net -40%
    v = one(sell(500), short, limits=replace(OPEN, allow_short=True, max_net_exposure=0.5))
    assert v.qty == pytest.approx(100) and v.reasons == ("trim:max_net_exposure",)
    capped = replace(OPEN, max_gross_exposure=1.0, regime_gross_caps={"high_volatility": 0.3})
    v = one(buy(1000, "BBB", ref=50.0), limits=capped)  # BBB is in high_volatility
    assert v.qty == pytest.approx(600) and v.reasons == ("trim:regime_gross_cap",)


def test_buying_power_counts_pending_orders():
    pf = Portfolio(10_000.0, {}, (PendingOrder("p", "BBB", "buy", 100.0, 50.0),))
    v = one(buy(100), pf)
    assert v.qty == pytest.approx(50) and v.reasons == ("trim:buying_power",)


def test_trims_of_whole_share_orders_stay_whole():
    # 2,500 / 100 = 25.0 exactly; 2,550 / 100 = 25.5 is floored to 25 shares
    v = one(buy(50), limits=replace(OPEN, max_order_notional=2_550))
    assert (v.action, v.qty, v.reasons) == ("trim", 25.0, ("trim:max_order_notional",))
    # 20% of 100,000 at 7,000 a share is 2.857 shares: 2 shares
    v = one(buy(5, ref=7_000.0), limits=replace(OPEN, max_position_weight=0.2), mk=market(prices={"AAA": 7_000.0, "BBB": 50.0, "CCC": 20.0}))
    assert (v.action, v.qty, v.reasons) == ("trim", 2.0, ("trim:max_position_weight",))
    # a trim that leaves less than one share drops the order, naming the limit
    v = one(buy(5, ref=7_000.0), limits=replace(OPEN, max_position_weight=0.05), mk=market(prices={"AAA": 7_000.0, "BBB": 50.0, "CCC": 20.0}))
    assert (v.action, v.qty, v.reasons) == ("reject", 0.0, ("limit:max_position_weight",))
    v = one(buy(3), Portfolio(150.0, {}))  # cash for 1.5 shares -> 1
    assert (v.action, v.qty, v.reasons) == ("trim", 1.0, ("trim:buying_power",))
    v = one(buy(3), Portfolio(50.0, {}))  # cash for half a share -> nothing
    assert (v.action, v.reasons) == ("reject", ("limit:buying_power",))
    # an order already for a fractional quantity keeps a fractional trim
    v = one(buy(50.5), limits=replace(OPEN, max_order_notional=2_550))
    assert (v.action, v.qty) == ("trim", pytest.approx(25.5))


def test_earlier_approvals_count_against_later_orders():
    lim = replace(OPEN, max_gross_exposure=0.5)
    res = evaluate([buy(300, coid="a"), buy(600, "BBB", ref=50.0, coid="b")], PF, market(), lim, RiskState())
    assert res.verdicts[0].qty == 300 and res.verdicts[1].qty == pytest.approx(400)


# -- VaR / ES --------------------------------------------------------------------------------

def test_var_and_es_limits_after_the_trade():
    # a 1% daily-vol asset: 99% VaR of a 100% position ~ 2.3%
    v = one(buy(1000), limits=replace(OPEN, var_limit=0.01))
    assert v.reasons == ("var_limit",)
    assert one(buy(300), limits=replace(OPEN, var_limit=0.01)).action == "approve"
    assert one(buy(1000), limits=replace(OPEN, es_limit=0.015)).reasons == ("es_limit",)
    no_hist = market(returns={})
    assert one(buy(10), mk=no_hist, limits=replace(OPEN, var_limit=0.5)).reasons == ("missing_returns:AAA",)
    filt = replace(OPEN, var_limit=0.01, var_method="filtered")
    assert one(buy(1000), limits=filt).reasons == ("var_limit",)


# -- fail closed ------------------------------------------------------------------------------

@pytest.mark.parametrize("order, code", [
    (ProposedOrder("x", "AAA", "buy", float("nan"), reference_price=100.0), "invalid_input:qty"),
    (ProposedOrder("x", "AAA", "buy", float("inf"), reference_price=100.0), "invalid_input:qty"),
    (ProposedOrder("x", "AAA", "buy", None, reference_price=100.0), "invalid_input:qty"),
    (ProposedOrder("x", "AAA", "buy", -3.0, reference_price=100.0), "invalid_input:qty"),
    (ProposedOrder("x", "AAA", "hold", 3.0), "invalid_input:side"),
    (ProposedOrder("x", "AAA", "buy", 3.0, "limit", limit_price=None), "invalid_input:limit_price"),
    (ProposedOrder("x", "AAA", "buy", 3.0, reference_price=float("nan")), "invalid_input:reference_price"),
    (ProposedOrder("x", "AAA", "buy", 3.0, reference_price=100.0, confidence=float("nan")),
     "invalid_input:confidence"),
    (ProposedOrder("x", "ZZZ", "buy", 3.0, reference_price=100.0), "not_tradable"),
])
def test_bad_inputs_reject(order, code):
    assert one(order).reasons == (code,)


def test_missing_price_and_bad_portfolio_fail_closed():
    assert one(buy(), mk=market(prices={"AAA": float("nan")})).reasons == ("missing_price",)
    res = evaluate([buy()], Portfolio(float("nan")), market(), OPEN, RiskState())
    assert res.verdicts[0].reasons == ("invalid_input:cash",) and res.state.trading_state == "HALTED"
    res = evaluate([buy()], Portfolio(1000.0, {"QQQ": 3.0}), market(), OPEN, RiskState())
    assert res.verdicts[0].reasons == ("missing_price:QQQ",)


def test_exception_inside_a_check_rejects(monkeypatch):
    import analytics.risk_gate as gate

    def boom(*a, **k):
        raise ZeroDivisionError("bug")

    monkeypatch.setattr(gate, "_size_checks", boom)
    assert one(buy()).reasons == ("check_error:ZeroDivisionError",)


# -- circuit breakers -------------------------------------------------------------------------

def test_circuit_breakers_escalate_and_say_why():
    lim = RiskLimits(daily_loss_reduce=0.03, daily_loss_halt=0.05, max_drawdown_halt=0.2)
    st0, ev = apply_circuit_breakers(RiskState(), 100_000.0, NOW, lim)
    assert st0.trading_state == "ACTIVE" and st0.day_start_equity == 100_000 and ev == ()
    st1, ev = apply_circuit_breakers(st0, 96_500.0, NOW, lim)
    assert st1.trading_state == "REDUCING" and "daily loss 3.50%" in ev[0]
    st2, ev = apply_circuit_breakers(st1, 94_000.0, NOW, lim)
    assert st2.trading_state == "HALTED" and "halt limit" in st2.reason
    # a new day does not de-escalate
    st3, _ = apply_circuit_breakers(st2, 99_000.0, NOW + pd.Timedelta(days=1), lim)
    assert st3.trading_state == "HALTED" and st3.day_start_equity == 99_000
    # drawdown from the peak over several days
    peak = replace(RiskState(), peak_equity=130_000.0, day="2024-03-05", day_start_equity=100_000.0)
    st4, ev = apply_circuit_breakers(peak, 100_000.0, NOW, lim)
    assert st4.trading_state == "HALTED" and "drawdown 23.08%" in ev[0]


def test_breaker_applies_inside_evaluate():
    lim = replace(OPEN, daily_loss_reduce=0.03)
    start = RiskState(day=NOW.date().isoformat(), day_start_equity=110_000.0, peak_equity=110_000.0)
    res = evaluate([buy()], PF, market(), lim, start)
    assert res.state.trading_state == "REDUCING" and res.events
    assert res.verdicts[0].reasons == ("reducing_only",)


# -- properties -------------------------------------------------------------------------------

SYMS = ("AAA", "BBB", "CCC")


@st.composite
def worlds(draw):
    prices = {s: draw(st.floats(1.0, 500.0)) for s in SYMS}
    positions = {s: float(draw(st.integers(-300, 300))) for s in SYMS}
    cash = draw(st.floats(-20_000, 200_000))
    pending = tuple(
        PendingOrder(f"p{i}", draw(st.sampled_from(SYMS)), draw(st.sampled_from(("buy", "sell"))),
                     float(draw(st.integers(1, 100))), 1.0)
        for i in range(draw(st.integers(0, 2)))
    )
    pending = tuple(replace(p, price=prices[p.symbol]) for p in pending)
    opt = lambda lo, hi: st.one_of(st.none(), st.floats(lo, hi))  # noqa: E731
    limits = RiskLimits(
        max_order_qty=draw(opt(1, 500)),
        max_order_notional=draw(opt(100, 50_000)),
        allow_short=draw(st.booleans()),
        max_position_weight=draw(opt(0.05, 1.5)),
        max_gross_exposure=draw(opt(0.1, 2.0)),
        max_net_exposure=draw(opt(0.1, 2.0)),
        regime_gross_caps=draw(st.sampled_from([{}, {"high_volatility": 0.3}])),
        var_limit=draw(st.sampled_from([None, None, 0.02])),
        max_staleness_bars=None, collar_pct=None, duplicate_window_seconds=None, max_orders_per_window=None,
        daily_loss_reduce=None, daily_loss_halt=None, max_drawdown_halt=None,
    )
    orders = [
        ProposedOrder(f"o{i}", draw(st.sampled_from(SYMS)), draw(st.sampled_from(("buy", "sell"))),
                      float(draw(st.integers(1, 1000))), reference_price=1.0)
        for i in range(draw(st.integers(1, 4)))
    ]
    state = RiskState(draw(st.sampled_from(("ACTIVE", "ACTIVE", "REDUCING", "HALTED"))))
    return Portfolio(cash, positions, pending), market(prices=prices), limits, orders, state


def _exposure(pos, prices, equity):
    vals = {s: q * prices[s] for s, q in pos.items() if s in prices}
    return vals, sum(abs(v) for v in vals.values()) / equity, sum(vals.values()) / equity


@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_no_approved_order_breaks_a_limit(world):
    pf, mk, lim, orders, state = world
    res = evaluate(orders, pf, mk, lim, state)
    pos = dict(pf.positions)
    equity = pf.cash + sum(q * mk.prices[s] for s, q in pos.items())
    cash = pf.cash
    pending_buy = sum(p.qty * p.price for p in pf.pending if p.side == "buy")
    for v in res.verdicts:
        o = v.order
        if not v.approved:
            assert v.qty == 0
            continue
        assert state.trading_state != "HALTED"
        assert 0 < v.qty <= o.qty
        assert float(v.qty).is_integer()  # whole-share orders stay whole when trimmed
        before = pos.get(o.symbol, 0.0)
        sign = 1 if o.side == "buy" else -1
        after = before + sign * v.qty
        reducing = abs(after) <= abs(before) + 1e-9 and after * before >= -1e-9
        if state.trading_state == "REDUCING":
            assert reducing
        if not reducing:
            p = mk.prices[o.symbol]
            tol = 1e-7
            if lim.max_order_qty is not None:
                assert v.qty <= lim.max_order_qty + tol
            if lim.max_order_notional is not None:
                assert v.qty * p <= lim.max_order_notional * (1 + tol)
            if not lim.allow_short:
                assert after >= -tol
            new = dict(pos, **{o.symbol: after})
            vals, gross, net = _exposure(new, mk.prices, equity)
            if lim.max_position_weight is not None:
                assert abs(vals[o.symbol]) / equity <= lim.max_position_weight + tol
            cap = lim.max_gross_exposure
            if mk.regime.get(o.symbol) in lim.regime_gross_caps:
                rc = lim.regime_gross_caps[mk.regime[o.symbol]]
                cap = rc if cap is None else min(cap, rc)
            if cap is not None:
                assert gross <= cap + tol
            if lim.max_net_exposure is not None:
                # within the limit, or (when the book was already outside) moving towards it
                _, _, net_before = _exposure(pos, mk.prices, equity)
                assert abs(net) <= lim.max_net_exposure + tol or abs(net) <= abs(net_before) + tol
            if o.side == "buy":
                assert cash - v.qty * p - pending_buy >= -tol * max(1.0, abs(cash))
        pos[o.symbol] = after
        cash -= sign * v.qty * mk.prices[o.symbol]


BAD_NUMBER = st.sampled_from([None, True, False, "12.5", float("nan"), float("inf"), -5.0, 0.0])
BAD_TIME = st.sampled_from([pd.NaT, None, "2024-03-05", 17, NOW.tz_localize(None), NOW + pd.Timedelta(seconds=1),
                            NOW + pd.Timedelta(days=2)])
PERTURBATIONS = ("cash", "position", "price", "pending_qty", "pending_price", "pending_id", "order_qty",
                 "order_reference_price", "order_confidence", "order_limit_price", "now", "last_bar", "bar_seconds",
                 "duplicate_id", "sub_share", "fractional", "recent_ts", "recent_qty")


@st.composite
def perturbed_worlds(draw):
    """A world from ``worlds()`` with one field broken (or a legitimate but awkward quantity)."""
    pf, mk, lim, orders, state = draw(worlds())
    lim = replace(lim, max_staleness_bars=draw(st.sampled_from([None, 4.0])),
                  duplicate_window_seconds=draw(st.sampled_from([None, 3600.0])))
    kind = draw(st.sampled_from(PERTURBATIONS))
    sym = draw(st.sampled_from(SYMS))
    i = draw(st.integers(0, len(orders) - 1))
    pending = list(pf.pending) or [PendingOrder("p0", sym, "buy", 1.0, mk.prices[sym])]
    if kind == "cash":
        pf = replace(pf, cash=draw(BAD_NUMBER))
    elif kind == "position":
        pf = replace(pf, positions={**pf.positions, sym: draw(BAD_NUMBER)})
    elif kind == "price":
        mk = replace(mk, prices={**mk.prices, sym: draw(BAD_NUMBER)})
    elif kind.startswith("pending_"):
        bad = draw(st.sampled_from([None, 5, ["x"]])) if kind == "pending_id" else draw(BAD_NUMBER)
        pending[0] = replace(pending[0], **{{"pending_qty": "qty", "pending_price": "price",
                                             "pending_id": "client_order_id"}[kind]: bad})
        pf = replace(pf, pending=tuple(pending))
    elif kind.startswith("order_"):
        field_ = kind[len("order_"):]
        orders[i] = replace(orders[i], **{field_: draw(BAD_NUMBER)},
                            **({"order_type": "limit"} if field_ == "limit_price" else {}))
    elif kind == "now":
        mk = replace(mk, now=draw(BAD_TIME))
    elif kind == "last_bar":
        mk = replace(mk, last_bar={**mk.last_bar, sym: draw(BAD_TIME)})
    elif kind == "bar_seconds":
        mk = replace(mk, bar_seconds={**mk.bar_seconds, sym: draw(BAD_NUMBER)})
    elif kind == "duplicate_id":
        orders[i] = replace(orders[i], client_order_id=draw(st.sampled_from(
            [orders[0].client_order_id, orders[-1].client_order_id, pending[0].client_order_id, "r0"])))
        state = replace(state, recent=(RecentOrder(NOW - pd.Timedelta(minutes=5), "r0", sym, "buy", 3.0),))
    elif kind == "sub_share":
        orders[i] = replace(orders[i], qty=draw(st.sampled_from([1e-12, 1e-9, 1e-7, 0.3, 0.999999])))
    elif kind == "fractional":
        orders[i] = replace(orders[i], qty=draw(st.floats(1e-3, 1000.0)))
    else:
        ts = draw(BAD_TIME) if kind == "recent_ts" else NOW - pd.Timedelta(minutes=5)
        qty = draw(BAD_NUMBER) if kind == "recent_qty" else 3.0
        state = replace(state, recent=(RecentOrder(ts, "r0", sym, "buy", qty),))
    return pf, mk, lim, orders, state


@settings(max_examples=2_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(perturbed_worlds())
def test_perturbed_worlds_never_raise_and_never_approve_a_breach(world):
    from tests.analytics.test_risk_gate_fuzz import Tally, judge

    pf, mk, lim, orders, state = world
    res = evaluate(orders, pf, mk, lim, state)  # never raises
    tally = Tally()
    judge({"orders": orders, "portfolio": pf, "market": mk, "limits": lim, "state": state}, res, tally, world)
    assert not tally.violations, tally.summary()
    assert len(res.verdicts) == len(orders)
    assert all(v.reasons for v in res.verdicts if not v.approved)


# -- issue 21: fail closed on every bad input -------------------------------------------------

STALE_ON = replace(OPEN, max_staleness_bars=4.0)


@pytest.mark.parametrize("limits", [OPEN, STALE_ON])
@pytest.mark.parametrize("bar", [
    NOW + pd.Timedelta(hours=1),  # from the future
    NOW + pd.Timedelta(seconds=1),
    pd.NaT, None, "2024-03-05", 1.7e9, np.datetime64("2024-03-05"),
    (NOW - pd.Timedelta(hours=2)).tz_localize(None),  # naive against an aware clock
])
def test_a_bar_time_that_is_not_a_past_timestamp_rejects(bar, limits):
    v = one(buy(), mk=market(last_bar={"AAA": bar}), limits=limits)
    assert (v.action, v.reasons) == ("reject", ("invalid_input:bar_time",))


def test_a_bar_stamped_now_passes_and_a_missing_one_is_stale_only_when_checked():
    assert one(buy(), mk=market(last_bar={"AAA": NOW}), limits=STALE_ON).action == "approve"
    assert one(buy(), mk=market(last_bar={}), limits=STALE_ON).reasons == ("stale_data",)
    assert one(buy(), mk=market(last_bar={})).action == "approve"
    assert one(buy(), mk=market(bar_seconds={"AAA": "86400"}), limits=STALE_ON).reasons == (
        "invalid_input:bar_seconds",)


@pytest.mark.parametrize("now", [pd.NaT, None, "2024-03-05 15:00", 1.7e9, np.datetime64("NaT")])
def test_a_clock_that_is_not_a_timestamp_rejects_every_order(now):
    res = evaluate([buy(), sell(coid="s")], PF, market(now=now), OPEN, RiskState())
    assert [v.reasons for v in res.verdicts] == [("invalid_input:now",)] * 2
    assert res.state == RiskState() and res.events


@pytest.mark.parametrize("pf, code", [
    (Portfolio(None), "invalid_input:cash"),
    (Portfolio(True), "invalid_input:cash"),
    (Portfolio("100000"), "invalid_input:cash"),
    (Portfolio(100_000.0, {"AAA": None}), "invalid_input:position:AAA"),
    (Portfolio(100_000.0, {"AAA": "5"}), "invalid_input:position:AAA"),
    (Portfolio(100_000.0, [("AAA", 5.0)]), "invalid_input:positions"),
    (Portfolio(100_000.0, {}, (PendingOrder("p", "AAA", "buy", None, 100.0),)), "invalid_input:pending_order"),
    (Portfolio(100_000.0, {}, (PendingOrder("p", "AAA", "buy", 1.0, None),)), "invalid_input:pending_order"),
    (Portfolio(100_000.0, {}, (PendingOrder(None, "AAA", "buy", 1.0, 100.0),)), "invalid_input:pending_order"),
    (Portfolio(100_000.0, {}, (PendingOrder("p", "AAA", "hold", 1.0, 100.0),)), "invalid_input:pending_order"),
    (Portfolio(100_000.0, {}, None), "invalid_input:pending"),
    (None, "invalid_input:portfolio"),
])
def test_a_portfolio_that_cannot_be_valued_rejects_and_halts(pf, code):
    res = evaluate([buy()], pf, market(), OPEN, RiskState())
    assert res.verdicts[0].reasons == (code,) and res.state.trading_state == "HALTED"


@pytest.mark.parametrize("price", [None, True, "100", float("inf"), -1.0])
def test_a_bad_price_is_a_missing_price(price):
    assert one(buy(), mk=market(prices={"AAA": price, "BBB": 50.0, "CCC": 20.0})).reasons == ("missing_price",)


@pytest.mark.parametrize("field_, value, code", [
    ("qty", True, "invalid_input:qty"),
    ("qty", "10", "invalid_input:qty"),
    ("reference_price", "100", "invalid_input:reference_price"),
    ("reference_price", False, "invalid_input:reference_price"),
    ("confidence", "high", "invalid_input:confidence"),
    ("limit_price", None, "invalid_input:limit_price"),
    ("client_order_id", ["x"], "invalid_input:client_order_id"),
    ("client_order_id", 7, "invalid_input:client_order_id"),
    ("side", None, "invalid_input:side"),
    ("side", ["buy"], "invalid_input:side"),
    ("order_type", ["market"], "invalid_input:order_type"),
    ("symbol", None, "invalid_input:symbol"),
])
def test_none_bool_and_text_in_an_order_reject_it(field_, value, code):
    order = buy()
    if field_ == "limit_price":
        order = replace(order, order_type="limit")
    assert one(replace(order, **{field_: value})).reasons == (code,)


def test_not_an_order_is_rejected_and_other_orders_still_pass():
    res = evaluate([None, "buy AAA", buy()], PF, market(), OPEN, RiskState())
    assert [v.reasons for v in res.verdicts] == [("invalid_input:order",)] * 2 + [()]
    assert res.verdicts[0].to_dict()["order"] == {"invalid": "None"}


@pytest.mark.parametrize("mk, code", [
    (market(tradable={"AAA": "yes"}), "invalid_input:tradable"),
    (market(tradable={"AAA": 1}), "invalid_input:tradable"),
    (market(feed_silent={"AAA": "no"}), "invalid_input:feed_silent"),
    (market(regime={"AAA": ["bull"]}), "invalid_input:regime"),
    (market(regime={"AAA": 5}), "invalid_input:regime"),
])
def test_flags_and_labels_of_the_wrong_type_reject(mk, code):
    assert one(buy(), mk=mk).reasons == (code,)
    lim = replace(OPEN, require_market_open=True)
    assert one(buy(), mk=market(market_open={"AAA": "yes"}), limits=lim).reasons == ("invalid_input:market_open",)
    assert one(buy(), mk=market(tradable={"AAA": np.True_}, feed_silent={"AAA": np.False_})).action == "approve"


@pytest.mark.parametrize("returns", [{"AAA": None}, {"AAA": [None] * 300}, {"AAA": "r"}])
def test_unreadable_returns_are_missing_returns(returns):
    assert one(buy(), mk=market(returns=returns), limits=replace(OPEN, var_limit=0.5)).reasons == (
        "missing_returns:AAA",)


@pytest.mark.parametrize("change, code", [
    ({"max_staleness_bars": float("nan")}, "invalid_input:limits.max_staleness_bars"),
    ({"max_order_qty": float("inf")}, "invalid_input:limits.max_order_qty"),
    ({"max_position_weight": -0.1}, "invalid_input:limits.max_position_weight"),
    ({"var_limit": "0.02"}, "invalid_input:limits.var_limit"),
    ({"max_orders_per_window": 2.5}, "invalid_input:limits.max_orders_per_window"),
    ({"rate_window_seconds": 0.0}, "invalid_input:limits.rate_window_seconds"),
    ({"min_order_qty": 0.0}, "invalid_input:limits.min_order_qty"),
    ({"allow_short": "no"}, "invalid_input:limits.allow_short"),
    ({"allowed_symbols": "AAA"}, "invalid_input:limits.allowed_symbols"),
    ({"regime_gross_caps": {"bull": float("nan")}}, "invalid_input:limits.regime_gross_caps"),
    ({"var_level": 1.0}, "invalid_input:limits.var_level"),
])
def test_a_limit_that_is_not_usable_rejects_every_order(change, code):
    res = evaluate([buy(), sell(coid="s")], PF, market(), replace(OPEN, **change), RiskState())
    assert [v.reasons for v in res.verdicts] == [(code,)] * 2
    with pytest.raises(ValueError, match=code.split(":")[1]):
        apply_circuit_breakers(RiskState(), 100_000.0, NOW, replace(OPEN, **change))


def test_wrong_containers_give_rejections_not_tracebacks():
    for orders in (None, "AAA", 42, {"a": buy()}):
        res = evaluate(orders, PF, market(), OPEN, RiskState())
        assert res.verdicts == () and res.events[0].startswith("invalid_input:orders")
    assert one(buy(), limits=None).reasons == ("invalid_input:limits",)
    assert evaluate([buy()], PF, None, OPEN, RiskState()).verdicts[0].reasons == ("invalid_input:market",)
    assert one(buy(), mk=MarketSnapshot(now=NOW, prices=None)).reasons == ("invalid_input:market.prices",)
    assert one(buy(), mk=market(last_bar=[NOW])).reasons == ("invalid_input:market.last_bar",)
    res = evaluate([buy()], PF, market(), OPEN, None)
    assert res.verdicts[0].reasons == ("invalid_input:state",) and res.state.trading_state == "HALTED"


@pytest.mark.parametrize("recent", [
    None,
    (RecentOrder(pd.NaT, "r", "AAA", "buy", 1.0),),
    (RecentOrder(None, "r", "AAA", "buy", 1.0),),
    (RecentOrder(NOW.tz_localize(None), "r", "AAA", "buy", 1.0),),
    (RecentOrder(NOW, "r", "AAA", "buy", None),),
    (RecentOrder(NOW, ["r"], "AAA", "buy", 1.0),),
    ("not a record",),
])
def test_unreadable_recent_orders_block_new_orders_but_not_cancels(recent):
    res = evaluate([buy(), ProposedOrder("c", "AAA", "cancel", 0.0)], PF, market(), OPEN, RiskState(recent=recent))
    assert res.verdicts[0].reasons == ("invalid_input:state.recent",)
    assert res.verdicts[1].action == "approve"


@pytest.mark.parametrize("bad", [{"day_start_equity": "100000"}, {"day_start_equity": float("nan")},
                                 {"peak_equity": -5.0}, {"peak_equity": True}, {"day": 20240305}])
def test_an_unreadable_breaker_memory_halts(bad):
    lim = RiskLimits()
    st_, ev = apply_circuit_breakers(replace(RiskState(), **bad), 100_000.0, NOW, lim)
    assert st_.trading_state == "HALTED" and "unreadable" in ev[0]
    assert one(buy(), state=replace(RiskState(), **bad)).reasons == ("halted",)


def test_apply_circuit_breakers_refuses_bad_arguments():
    with pytest.raises(ValueError, match="now"):
        apply_circuit_breakers(RiskState(), 100_000.0, pd.NaT, RiskLimits())
    with pytest.raises(TypeError, match="state"):
        apply_circuit_breakers(None, 100_000.0, NOW, RiskLimits())
    with pytest.raises(TypeError, match="limits"):
        apply_circuit_breakers(RiskState(), 100_000.0, NOW, None)


def test_a_var_that_is_not_a_number_rejects(monkeypatch):
    import analytics.risk_gate as gate

    monkeypatch.setattr(gate, "_portfolio_var_es", lambda *a, **k: (float("nan"), 0.01))
    assert one(buy(), limits=replace(OPEN, var_limit=0.05)).reasons == ("check_error:var_not_finite",)


def test_an_exception_outside_the_per_order_checks_rejects_every_order(monkeypatch):
    import analytics.risk_gate as gate

    def boom(*a, **k):
        raise KeyError("bug")

    monkeypatch.setattr(gate, "apply_circuit_breakers", boom)
    res = evaluate([buy(), sell(coid="s")], PF, market(), OPEN, RiskState("REDUCING"))
    assert [v.reasons for v in res.verdicts] == [("check_error:KeyError",)] * 2
    assert res.state == RiskState("REDUCING")


# -- minimum quantity -------------------------------------------------------------------------

@pytest.mark.parametrize("qty", [1e-12, 1e-9, 5e-7])
def test_sub_share_dust_is_rejected(qty):
    assert one(buy(qty)).reasons == ("below_min_qty",)
    held = Portfolio(100_000.0, {"AAA": 50.0})
    assert one(sell(qty), held).reasons == ("below_min_qty",)  # reducing, but not closing


def test_fractional_orders_have_their_own_minimum():
    assert (one(buy(0.5)).action, one(buy(0.5)).qty) == ("approve", 0.5)
    assert one(buy(0.5), limits=replace(OPEN, min_fractional_qty=1.0)).reasons == ("below_min_qty",)
    # a fractional order trimmed below its minimum names the limit
    v = one(buy(0.5), limits=replace(OPEN, max_order_qty=1e-8))
    assert (v.action, v.reasons) == ("reject", ("limit:max_order_qty",))
    # closing a whole position of dust is allowed, so a remainder can always be closed
    dust = Portfolio(100_000.0, {"AAA": 1e-9})
    assert one(sell(1e-9), dust).action == "approve"


def test_min_order_qty_for_whole_share_orders():
    lim = replace(OPEN, min_order_qty=100.0)  # round lots
    assert one(buy(50), limits=lim).reasons == ("below_min_qty",)
    v = one(buy(500), limits=replace(lim, max_order_notional=15_000))  # trimmed to 150 shares
    assert (v.action, v.qty) == ("trim", 150.0)
    v = one(buy(500), limits=replace(lim, max_order_notional=9_000))  # 90 shares left: below the lot
    assert (v.action, v.reasons) == ("reject", ("limit:max_order_notional",))


def test_duplicate_ids_in_one_batch_pass_at_most_once():
    res = evaluate([buy(1e-12, coid="d"), buy(5, coid="d"), buy(6, coid="d")], PF, market(), OPEN, RiskState())
    assert [v.action for v in res.verdicts] == ["reject", "approve", "reject"]
    assert res.verdicts[2].reasons == ("duplicate_order",)
