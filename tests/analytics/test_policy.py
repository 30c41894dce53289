"""The decision policy: target weights per rule, walk-forward parameter choice without look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics import (
    POLICY_GRIDS,
    BacktestConfig,
    PolicyParams,
    run_backtest,
    select_policy_params,
    target_weights,
    walk_forward_policy,
)

FAMILIES = ["risk_on", "risk_off", "mixed", "unavailable", None]


def test_regime_policy_maps_families():
    p = PolicyParams(risk_on_weight=1.0, risk_off_weight=0.25)
    w = target_weights("regime", p, ["risk_on", "risk_off", "mixed", "unavailable", None], [np.nan] * 5)
    np.testing.assert_array_equal(w[:3], [1.0, 0.25, 0.625])
    assert np.isnan(w[3:]).all()


def test_ml_policy_threshold_and_missing_signal():
    p = PolicyParams(p_long=0.55)
    w = target_weights("ml", p, [None] * 4, [0.56, 0.55, 0.54, None])
    np.testing.assert_array_equal(w[:3], [1.0, 1.0, 0.0])
    assert np.isnan(w[3])


def test_combined_policy_overrides_only_with_a_confident_signal():
    p = PolicyParams(risk_off_weight=0.0, p_exit=0.45, p_enter=0.6)
    fam = ["risk_on", "risk_on", "risk_off", "risk_off", "risk_on", "risk_off", None]
    pu = [0.44, 0.46, 0.61, 0.59, np.nan, np.nan, 0.9]
    w = target_weights("combined", p, fam, pu)
    np.testing.assert_array_equal(w[:6], [0.0, 1.0, 1.0, 0.0, 1.0, 0.0])
    assert np.isnan(w[6])  # no regime: no decision, whatever the signal says


def test_default_combined_params_equal_the_regime_policy():
    rng = np.random.default_rng(0)
    fam = rng.choice(["risk_on", "risk_off", "mixed"], 200)
    pu = rng.uniform(0, 1, 200)
    d = POLICY_GRIDS["combined"][0]
    np.testing.assert_array_equal(target_weights("combined", d, fam, pu), target_weights("regime", d, fam, pu))


def test_volatility_targeting():
    p = PolicyParams(target_vol=0.10)
    w = target_weights("regime", p, ["risk_on"] * 4, [np.nan] * 4, [0.05, 0.20, np.nan, 0.0])
    np.testing.assert_allclose(w[:2], [1.0, 0.5])
    assert np.isnan(w[2:]).all()  # no (or a non-positive) forecast: no decision
    with pytest.raises(ValueError, match="vol is needed"):
        target_weights("regime", p, ["risk_on"], [0.5])


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["regime", "ml", "combined"]),
    st.sampled_from(POLICY_GRIDS["combined"] + POLICY_GRIDS["ml"]),
    st.lists(st.tuples(st.sampled_from(FAMILIES), st.one_of(st.none(), st.floats(0, 1)),
                       st.one_of(st.none(), st.floats(0.01, 2.0))), min_size=1, max_size=30),
)
def test_weights_bounded_and_elementwise(policy, params, rows):
    fam, pu, vol = (list(x) for x in zip(*rows, strict=True))
    w = target_weights(policy, params, fam, pu, vol)
    ok = w[np.isfinite(w)]
    lo = min(0.0, params.risk_off_weight)
    assert ((ok >= lo - 1e-12) & (ok <= params.risk_on_weight + 1e-12)).all()
    # the decision of a bar depends on that bar's inputs only
    for i in range(len(rows)):
        one = target_weights(policy, params, fam[i : i + 1], pu[i : i + 1], vol[i : i + 1])
        np.testing.assert_array_equal(one, w[i : i + 1])


def test_bad_arguments():
    with pytest.raises(ValueError, match="policy must be"):
        target_weights("momentum", PolicyParams(), ["risk_on"], [0.5])
    with pytest.raises(ValueError, match="p_up must lie"):
        target_weights("ml", PolicyParams(), ["risk_on"], [1.5])
    with pytest.raises(ValueError, match="same length"):
        target_weights("ml", PolicyParams(), ["risk_on"], [0.5, 0.5])
    with pytest.raises(ValueError, match="risk_off_weight"):
        PolicyParams(risk_off_weight=2.0)
    with pytest.raises(ValueError, match="p_exit"):
        PolicyParams(p_exit=float("nan"))


def _bars(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    c = 100 * np.exp(np.cumsum(rng.normal(0.0002, 0.01, n)))
    o = c * np.exp(rng.normal(0, 0.002, n))
    return pd.DataFrame({"open": o, "close": c}, index=pd.bdate_range("2001-01-01", periods=n, tz="UTC"))


def test_selection_prefers_the_candidate_that_avoided_the_crash():
    """Risk-off bars are exactly the crash bars: the candidate that goes flat there wins."""
    n = 600
    bars = _bars(n, 1)
    fam = np.array(["risk_on"] * n, dtype=object)
    crash = slice(300, 360)
    fam[crash] = "risk_off"
    c = bars["close"].to_numpy().copy()
    c[300:] *= np.exp(np.concatenate([np.linspace(0, -0.5, 61)[1:], np.full(n - 360, -0.5)]))
    bars["close"] = c
    bars["open"] = np.concatenate([[c[0]], c[:-1]])
    params, scores = select_policy_params("regime", bars, fam, np.full(n, np.nan), None, n,
                                          grid=POLICY_GRIDS["regime"][:3])
    assert params.risk_off_weight == 0.0 and len(scores) == 3
    assert scores[0]["sharpe"] > scores[2]["sharpe"]


def test_selection_falls_back_to_defaults_with_short_history():
    bars = _bars(300, 2)
    params, scores = select_policy_params("regime", bars, ["risk_on"] * 300, [np.nan] * 300, None, 200)
    assert params == POLICY_GRIDS["regime"][0] and scores == []


def test_walk_forward_policy_uses_no_future_bars():
    """Targets up to bar k are unchanged when everything after k is replaced."""
    n = 900
    bars = _bars(n, 3)
    rng = np.random.default_rng(3)
    fam = rng.choice(["risk_on", "risk_off"], n).astype(object)
    pu = rng.uniform(0.3, 0.7, n)
    vol = rng.uniform(0.05, 0.4, n)
    cuts = list(range(300, n, 100))
    full = walk_forward_policy("combined", bars, fam, pu, vol, cuts)
    k = 650
    bars2 = bars.copy()
    bars2.iloc[k:, :] = bars2.iloc[k:, :].to_numpy()[::-1]  # a different future
    fam2, pu2 = fam.copy(), pu.copy()
    fam2[k:] = "risk_off"
    pu2[k:] = 0.99
    other = walk_forward_policy("combined", bars2, fam2, pu2, vol, cuts)
    pd.testing.assert_series_equal(full.target.iloc[:k], other.target.iloc[:k])
    # unvalidated head: no decision before the first scored re-selection
    first_scored = next(s["start"] for s in full.segments if s["scored"])
    assert full.target.loc[: first_scored - pd.Timedelta(days=1)].isna().all()
    assert full.target.loc[first_scored:].notna().any()


def test_walk_forward_policy_backtests_like_fixed_params_when_grid_has_one_candidate():
    n = 700
    bars = _bars(n, 4)
    fam = np.where(np.arange(n) % 50 < 25, "risk_on", "risk_off").astype(object)
    only = (PolicyParams(risk_off_weight=0.5),)
    wp = walk_forward_policy("regime", bars, fam, np.full(n, np.nan), None, [100, 400], grid=only,
                             validated_only=False)
    fixed = target_weights("regime", only[0], fam, np.full(n, np.nan))
    np.testing.assert_array_equal(wp.target.to_numpy(), fixed)
    a = run_backtest(bars, wp.target, BacktestConfig()).metrics
    b = run_backtest(bars, pd.Series(fixed, index=bars.index), BacktestConfig()).metrics
    assert a == b
