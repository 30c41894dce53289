"""Dynamic risk-gate limits (issue 25): the VaR and ES limits tighten in high-volatility regimes.

The deterministic tests use the historical VaR on hand-built return series whose lower tail is
known, so the VaR and ES the gate computes are hand-computed numbers: with 250 returns and a
99% level the VaR is minus the third smallest return (order statistic ``floor(249 * 0.01) = 2``)
and the ES minus the mean of the three smallest.
"""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.risk_gate import (
    MarketSnapshot,
    Portfolio,
    ProposedOrder,
    RiskLimits,
    RiskState,
    apply_circuit_breakers,
    evaluate,
)

NOW = pd.Timestamp("2024-03-05 15:00", tz="UTC")
SYMS = ("AAA", "BBB", "CCC")
LABELS = ("calm", "bull", "bear", "high_volatility")

# AAA: 246 days of +0.1% and four losses; the three worst are -5%, -4%, -3%.
_AAA = np.full(250, 0.001)
_AAA[[10, 60, 120, 200]] = [-0.05, -0.04, -0.03, -0.02]
# BBB holds no risk (flat), so a small BBB position leaves the portfolio VaR to AAA alone.
_BBB = np.zeros(250)
_CCC = np.random.default_rng(7).normal(0.0002, 0.012, 250)
RETURNS = {"AAA": _AAA, "BBB": _BBB, "CCC": _CCC}
PRICES = {"AAA": 100.0, "BBB": 50.0, "CCC": 20.0}

OPEN = RiskLimits(max_staleness_bars=None, collar_pct=None, duplicate_window_seconds=None, max_orders_per_window=None,
                  max_position_weight=None, max_gross_exposure=None, max_net_exposure=None, daily_loss_reduce=None,
                  daily_loss_halt=None, max_drawdown_halt=None, var_method="historical")
PF = Portfolio(cash=100_000.0, positions={})
# Equity 100 000 either way: 10 BBB at 50 plus 99 500 cash.
PF_BBB = Portfolio(cash=99_500.0, positions={"BBB": 10.0})
HV = {"high_volatility": 0.5}

# Buying 500 AAA at 100 with equity 100 000: weight 0.5, VaR 0.5 * 3% = 1.5%, ES 0.5 * 4% = 2%.
VAR_500 = 0.015
ES_500 = 0.02


def market(regime: dict[str, object]) -> MarketSnapshot:
    return MarketSnapshot(now=NOW, prices=PRICES, tradable=dict.fromkeys(SYMS, True), regime=regime,
                          returns=RETURNS)


def buy(qty: float = 500.0, sym: str = "AAA") -> ProposedOrder:
    return ProposedOrder(f"id-{sym}-{qty}", sym, "buy", qty, reference_price=PRICES[sym])


def one(order: ProposedOrder, regime: dict[str, object], limits: RiskLimits, pf: Portfolio = PF):
    return evaluate([order], pf, market(regime), limits, RiskState()).verdicts[0]


def test_the_hand_computed_var_and_es_are_what_the_gate_uses():
    # pins the numbers the other tests rely on: just above / below each gives the other verdict
    for pf in (PF, PF_BBB):
        assert one(buy(), {}, replace(OPEN, var_limit=VAR_500 * 0.999), pf).reasons == ("var_limit",)
        assert one(buy(), {}, replace(OPEN, var_limit=VAR_500 * 1.001), pf).action == "approve"
        assert one(buy(), {}, replace(OPEN, es_limit=ES_500 * 0.999), pf).reasons == ("es_limit",)
        assert one(buy(), {}, replace(OPEN, es_limit=ES_500 * 1.001), pf).action == "approve"


def test_var_limit_tightens_when_the_order_symbol_is_high_volatility():
    lim = replace(OPEN, var_limit=0.02, regime_var_scales=HV)  # tightened: 0.01 < VaR 0.015 < 0.02
    assert one(buy(), {"AAA": "calm"}, lim).action == "approve"
    v = one(buy(), {"AAA": "high_volatility"}, lim)
    assert v.action == "reject" and v.qty == 0 and v.reasons == ("regime_var_limit",)
    # a VaR over the configured limit itself is still var_limit
    assert one(buy(), {"AAA": "high_volatility"}, replace(lim, var_limit=0.012)).reasons == ("var_limit",)
    # 0.5 * 0.031 = 0.0155 > 0.015: the tightened limit still passes
    assert one(buy(), {"AAA": "high_volatility"}, replace(lim, var_limit=0.031)).action == "approve"


def test_var_limit_tightens_when_another_held_symbol_is_high_volatility():
    lim = replace(OPEN, var_limit=0.02, regime_var_scales=HV)
    assert one(buy(), {"AAA": "calm", "BBB": "calm"}, lim, PF_BBB).action == "approve"
    assert one(buy(), {"AAA": "calm", "BBB": "high_volatility"}, lim, PF_BBB).reasons == ("regime_var_limit",)
    # BBB not held (quantity 0): its regime does not count
    flat_bbb = Portfolio(cash=100_000.0, positions={"BBB": 0.0})
    assert one(buy(), {"AAA": "calm", "BBB": "high_volatility"}, lim, flat_bbb).action == "approve"
    # a high-volatility symbol neither held nor traded does not count either
    assert one(buy(), {"AAA": "calm", "CCC": "high_volatility"}, lim, PF_BBB).action == "approve"


def test_es_limit_tightens_likewise():
    lim = replace(OPEN, es_limit=0.03, regime_var_scales=HV)  # tightened: 0.015 < ES 0.02 < 0.03
    assert one(buy(), {"AAA": "bull"}, lim).action == "approve"
    assert one(buy(), {"AAA": "high_volatility"}, lim).reasons == ("regime_es_limit",)
    assert one(buy(), {"AAA": "bull", "BBB": "high_volatility"}, lim, PF_BBB).reasons == ("regime_es_limit",)
    assert one(buy(), {"AAA": "high_volatility"}, replace(lim, es_limit=0.019)).reasons == ("es_limit",)


def test_the_var_check_comes_before_the_es_check():
    # VaR 0.015 fails the tightened 0.01 only; ES 0.02 fails 0.019 itself: the first rejection wins
    lim = replace(OPEN, var_limit=0.02, es_limit=0.019, regime_var_scales=HV)
    assert one(buy(), {"AAA": "high_volatility"}, lim).reasons == ("regime_var_limit",)
    assert one(buy(), {"AAA": "calm"}, lim).reasons == ("es_limit",)


def test_the_smallest_scale_wins_with_two_labels():
    scales = {"high_volatility": 0.5, "bear": 0.8}
    lim = replace(OPEN, var_limit=0.02, regime_var_scales=scales)  # bear: 0.016 > VaR 0.015; high_vol: 0.01
    assert one(buy(), {"AAA": "bear"}, lim).action == "approve"
    assert one(buy(), {"AAA": "bear", "BBB": "high_volatility"}, lim, PF_BBB).reasons == ("regime_var_limit",)
    assert one(buy(), {"AAA": "high_volatility", "BBB": "bear"}, lim, PF_BBB).reasons == ("regime_var_limit",)
    # order does not matter and the larger scale does not loosen: bear at 0.95 with high_volatility at 0.5
    lim2 = replace(lim, regime_var_scales={"bear": 0.95, "high_volatility": 0.5})
    assert one(buy(), {"AAA": "bear", "BBB": "high_volatility"}, lim2, PF_BBB).reasons == ("regime_var_limit",)
    # bear at 0.7: 0.014 < 0.015 rejects on its own
    assert one(buy(), {"AAA": "bear"}, replace(lim, regime_var_scales={"bear": 0.7})).reasons == (
        "regime_var_limit",)


@pytest.mark.parametrize("regime", [{}, {"AAA": "calm"}, {"AAA": "bull", "BBB": "bear"}, {"CCC": "high_volatility"}])
def test_no_label_in_the_table_leaves_the_limits_unchanged(regime):
    lim = replace(OPEN, var_limit=0.02, es_limit=0.03, regime_var_scales=HV)
    plain = replace(lim, regime_var_scales={})
    assert one(buy(), regime, lim, PF_BBB) == one(buy(), regime, plain, PF_BBB)
    assert one(buy(), regime, lim, PF_BBB).action == "approve"
    # and a scale of exactly 1 changes nothing even in that regime
    ones = replace(lim, regime_var_scales={"high_volatility": 1.0})
    assert one(buy(), {"AAA": "high_volatility"}, ones).action == "approve"


def test_the_table_does_nothing_without_var_and_es_limits():
    lim = replace(OPEN, regime_var_scales={"high_volatility": 0.01})
    assert one(buy(), {"AAA": "high_volatility"}, lim).action == "approve"


def test_reducing_orders_are_not_tightened():
    held = Portfolio(cash=50_000.0, positions={"AAA": 500.0})
    lim = replace(OPEN, var_limit=0.0001, regime_var_scales={"high_volatility": 0.01})
    sell = ProposedOrder("s", "AAA", "sell", 100.0, reference_price=100.0)
    assert one(sell, {"AAA": "high_volatility"}, lim, held).action == "approve"


def test_an_unreadable_label_of_a_held_symbol_fails_closed():
    lim = replace(OPEN, var_limit=0.02, regime_var_scales=HV)
    for bad in (5, ("x",), 0.5):
        assert one(buy(), {"AAA": "calm", "BBB": bad}, lim, PF_BBB).reasons == ("invalid_input:regime",)
    # the order's own symbol was already rejected for it before the table existed
    assert one(buy(), {"AAA": 5}, lim).reasons == ("invalid_input:regime",)


@pytest.mark.parametrize("table", [
    {"high_volatility": 0.0},
    {"high_volatility": -0.5},
    {"high_volatility": 1.5},
    {"high_volatility": float("nan")},
    {"high_volatility": float("inf")},
    {"high_volatility": "0.5"},
    {"high_volatility": True},
    {"high_volatility": None},
    {1: 0.5},
    [("high_volatility", 0.5)],
    None,
])
def test_an_invalid_table_rejects_every_order(table):
    lim = replace(OPEN, var_limit=0.5, regime_var_scales=table)
    sell = ProposedOrder("s", "AAA", "sell", 1.0, reference_price=100.0)
    res = evaluate([buy(1.0), sell], PF, market({}), lim, RiskState())
    assert [v.reasons for v in res.verdicts] == [("invalid_input:limits.regime_var_scales",)] * 2
    assert not any(v.approved for v in res.verdicts)
    with pytest.raises(ValueError, match="regime_var_scales"):
        apply_circuit_breakers(RiskState(), 100_000.0, NOW, lim)


def test_valid_edge_values_are_accepted():
    lim = replace(OPEN, var_limit=0.5, regime_var_scales={"high_volatility": 1.0, "bear": 1e-9, "custom": 0.3})
    assert one(buy(1.0), {"AAA": "calm"}, lim).action == "approve"
    assert one(buy(1.0), {"AAA": "bear"}, lim).reasons == ("regime_var_limit",)  # 5e-10 < VaR 0.001 * 3%


# -- configuration ----------------------------------------------------------------------------

def test_config_default_and_wiring():
    from agents.config import RiskConfig
    from agents.services.risk import risk_limits

    assert RiskConfig().regime_var_scales == {"high_volatility": 0.5}
    limits = risk_limits(SimpleNamespace(risk=RiskConfig()))
    assert dict(limits.regime_var_scales) == {"high_volatility": 0.5}
    limits = risk_limits(SimpleNamespace(risk=RiskConfig(regime_var_scales={"bear": 0.8, "calm": 1.0})))
    assert dict(limits.regime_var_scales) == {"bear": 0.8, "calm": 1.0}
    assert dict(risk_limits(SimpleNamespace(risk=RiskConfig(regime_var_scales={}))).regime_var_scales) == {}


@pytest.mark.parametrize(("table", "message"), [
    ({"hot": 0.5}, "unknown regime 'hot'"),
    ({"high_volatility": 0.0}, "must be above 0 and at most 1"),
    ({"bear": 1.01}, "must be above 0 and at most 1"),
    ({"bear": -0.2}, "must be above 0 and at most 1"),
    ({"bear": float("nan")}, "finite"),
    ({"bear": float("inf")}, "finite"),
])
def test_config_refuses_a_bad_table(table, message):
    from pydantic import ValidationError

    from agents.config import RiskConfig

    with pytest.raises(ValidationError, match=message):
        RiskConfig(regime_var_scales=table)


def test_config_file_names_the_key(tmp_path):
    from agents.config import load_settings
    from analytics import ConfigError

    path = tmp_path / "risk.toml"
    path.write_text("[risk.regime_var_scales]\nhigh_volatility = 0\n")
    with pytest.raises(ConfigError, match=r"risk\.regime_var_scales"):
        load_settings(path)
    path.write_text("[risk.regime_var_scales]\nbear = 0.7\n")
    assert load_settings(path).risk.regime_var_scales == {"bear": 0.7}


# -- property: the table never loosens a verdict ----------------------------------------------

@st.composite
def cases(draw):
    positions = {s: float(draw(st.sampled_from((0, 0, 50, 200, -100, 1000)))) for s in SYMS}
    regime = {s: lab for s in SYMS if (lab := draw(st.sampled_from((None, *LABELS)))) is not None}
    scales = draw(st.dictionaries(st.sampled_from(LABELS), st.floats(0.0, 1.0, exclude_min=True), max_size=4))
    limits = replace(
        OPEN,
        allow_short=True,
        var_limit=draw(st.one_of(st.none(), st.floats(0.0005, 0.05))),
        es_limit=draw(st.one_of(st.none(), st.floats(0.0005, 0.07))),
        max_gross_exposure=draw(st.one_of(st.none(), st.floats(0.2, 3.0))),
        regime_gross_caps=draw(st.sampled_from(({}, {"high_volatility": 0.3}))),
    )
    sym = draw(st.sampled_from(SYMS))
    order = ProposedOrder("o", sym, draw(st.sampled_from(("buy", "sell"))), float(draw(st.integers(1, 3000))),
                          reference_price=PRICES[sym])
    return Portfolio(100_000.0, positions), market(regime), limits, scales, order


@given(cases())
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_scale_table_never_loosens_a_verdict(case):
    pf, mk, plain, scales, order = case
    without = evaluate([order], pf, mk, plain, RiskState()).verdicts[0]
    with_ = evaluate([order], pf, mk, replace(plain, regime_var_scales=scales), RiskState()).verdicts[0]
    if with_.approved:  # approve with the table => approve without it, the same quantity and reasons
        assert without.approved and without.qty == with_.qty and without.reasons == with_.reasons
    if not without.approved:  # reject without the table => reject with it, for the same reason unless the
        # tightened VaR limit now rejects before the ES limit did (the first rejection wins)
        assert not with_.approved
        assert with_.reasons == without.reasons or (
            without.reasons[-1] == "es_limit" and with_.reasons == (*without.reasons[:-1], "regime_var_limit"))
    if without.approved and not with_.approved:  # only the tightened limit rejects it
        assert with_.reasons[-1] in ("regime_var_limit", "regime_es_limit")
        held = {s for s, q in pf.positions.items() if q} | {order.symbol}
        assert min((scales[mk.regime[s]] for s in held if mk.regime.get(s) in scales), default=1.0) < 1.0


@pytest.mark.parametrize("method", ["normal", "student_t", "monte_carlo"])
def test_the_gate_checks_parametric_and_monte_carlo_portfolio_var(method):
    # The gate's VaR of the post-trade book is analytics.portfolio_var on the held assets' returns
    # (weights as fractions of equity): just below it rejects, just above it approves.
    from analytics import portfolio_var

    pf = Portfolio(cash=100_000.0 - 200 * PRICES["CCC"], positions={"CCC": 200.0})
    order = buy(300.0)  # AAA weight 0.3 next to CCC 0.04
    ref = portfolio_var(np.column_stack([_CCC, _AAA]), np.array([0.04, 0.3]), 0.99, method, n_sims=20_000, seed=0)
    lim = replace(OPEN, var_method=method)
    assert one(order, {}, replace(lim, var_limit=ref.var * 0.999), pf).reasons == ("var_limit",)
    assert one(order, {}, replace(lim, var_limit=ref.var * 1.001), pf).action == "approve"
    assert one(order, {}, replace(lim, es_limit=ref.es * 1.001), pf).action == "approve"
