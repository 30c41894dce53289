"""Volatility forecasts and their scores: against statsmodels, arch and hand-computed truths."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from arch import arch_model
from scipy import stats

from analytics._volforecast import (
    GarchParams,
    diebold_mariano,
    ewma_variance,
    fit_garch,
    fit_har,
    garch_cumulative_variance,
    garch_variance,
    har_regressors,
    mse_log_variance,
    predict_har,
    qlike,
    realised_variance_target,
)
from analytics.errors import InsufficientDataError


def garch_returns(n: int, seed: int, omega: float = 0.02, alpha: float = 0.08, beta: float = 0.9) -> np.ndarray:
    """Zero-mean GARCH(1,1) returns with normal shocks; parameters in percent units, returns not."""
    rng = np.random.default_rng(seed)
    s2 = omega / (1 - alpha - beta)
    r = np.empty(n)
    for t in range(n):
        r[t] = np.sqrt(s2) * rng.standard_normal()
        s2 = omega + alpha * r[t] ** 2 + beta * s2
    return r / 100.0


@pytest.fixture(scope="module")
def returns() -> np.ndarray:
    return garch_returns(1500, seed=11)


@pytest.fixture(scope="module")
def arch_fit(returns):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return arch_model(100 * returns[:1000], mean="Constant", vol="GARCH", p=1, q=1, dist="normal").fit(disp="off")


# --- realised variance target and HAR regressors -------------------------------------------------

def test_realised_variance_target_by_hand():
    r = np.array([0.01, -0.02, 0.03, 0.0, -0.01])
    rv = realised_variance_target(r, 2)
    expected = [0.02**2 + 0.03**2, 0.03**2 + 0.0, 0.0 + 0.01**2, np.nan, np.nan]
    np.testing.assert_allclose(rv, expected, rtol=1e-15, atol=0)
    np.testing.assert_allclose(realised_variance_target(r, 1), [4e-4, 9e-4, 0.0, 1e-4, np.nan], rtol=1e-15)
    assert np.isnan(realised_variance_target(r, 5)).all()


def test_realised_variance_target_nan_and_index():
    idx = pd.bdate_range("2020-01-01", periods=6, tz="UTC")
    r = pd.Series([np.nan, 0.01, 0.02, -0.01, 0.03, 0.01], index=idx)
    rv = realised_variance_target(r, 2)
    assert rv.index.equals(idx) and rv.name == "rv_next_2"
    # bar 0's window is bars 1-2 (both finite); a NaN return only spoils windows holding it
    np.testing.assert_allclose(rv.to_numpy(), [5e-4, 5e-4, 1e-3, 1e-3, np.nan, np.nan], rtol=1e-14)
    r.iloc[3] = np.nan
    got = realised_variance_target(r, 2).to_numpy()
    assert np.isnan(got[1]) and np.isnan(got[2]) and got[0] == pytest.approx(5e-4) and got[3] == pytest.approx(1e-3)


def test_realised_variance_target_rejects_bad_horizon():
    with pytest.raises(ValueError):
        realised_variance_target(np.ones(10), 0)


def test_har_regressors_are_trailing_means(returns):
    reg = har_regressors(returns)
    r2 = returns**2
    t = 400
    assert reg["rv_d"].iloc[t] == pytest.approx(r2[t], rel=1e-14)
    assert reg["rv_w"].iloc[t] == pytest.approx(r2[t - 4:t + 1].mean(), rel=1e-12)
    assert reg["rv_m"].iloc[t] == pytest.approx(r2[t - 21:t + 1].mean(), rel=1e-12)
    assert reg["rv_m"].iloc[:21].isna().all() and np.isfinite(reg["rv_m"].iloc[21])


# --- HAR ---------------------------------------------------------------------------------------

def test_fit_har_equals_statsmodels_ols(returns):
    reg = har_regressors(returns)
    target = realised_variance_target(returns, 5)
    train = slice(0, 900)
    model = fit_har(reg.iloc[train], target[train])
    ok = reg.iloc[train].notna().all(axis=1).to_numpy() & np.isfinite(target[train])
    ref = sm.OLS(target[train][ok], sm.add_constant(reg.iloc[train].to_numpy()[ok])).fit()
    np.testing.assert_allclose(model.params, ref.params, rtol=1e-10, atol=1e-14)
    assert model.n_obs == int(ok.sum()) == 900 - 21 - 0
    test = reg.iloc[1000:1100]
    expected = np.maximum(sm.add_constant(test.to_numpy(), has_constant="add") @ ref.params, model.floor)
    np.testing.assert_allclose(predict_har(model, test), expected, rtol=1e-10)
    assert model.floor == pytest.approx(np.min(target[train][ok]))


def test_fit_har_uses_only_the_rows_it_is_given(returns):
    reg = har_regressors(returns)
    target = realised_variance_target(returns, 5)
    a = fit_har(reg.iloc[:600], target[:600])
    changed = target.copy()
    changed[600:] *= 3.0  # later targets must not matter
    b = fit_har(reg.iloc[:600], changed[:600])
    assert a == b


def test_predict_har_floor_applies():
    from analytics._volforecast import HARModel

    model = HARModel((-1.0, 0.0, 0.0, 0.0), 2e-5, 100)
    reg = pd.DataFrame({"rv_d": [1e-4, np.nan], "rv_w": [1e-4, 1e-4], "rv_m": [1e-4, 1e-4]})
    got = predict_har(model, reg)
    assert got[0] == 2e-5 and np.isnan(got[1])


def test_fit_har_needs_rows():
    reg = pd.DataFrame({"rv_d": np.ones(20), "rv_w": np.ones(20), "rv_m": np.ones(20)})
    with pytest.raises(InsufficientDataError):
        fit_har(reg, np.ones(20))


# --- EWMA --------------------------------------------------------------------------------------

def test_ewma_matches_the_recursion(returns):
    r = returns[:300]
    got = ewma_variance(r)
    s = r[0] ** 2
    expected = []
    for x in r:
        s = 0.94 * s + 0.06 * x**2
        expected.append(s)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    got2 = ewma_variance(r, lam=0.97, init=1e-4)
    assert got2[0] == pytest.approx(0.97 * 1e-4 + 0.03 * r[0] ** 2, rel=1e-14)


def test_ewma_is_causal(returns):
    full = ewma_variance(returns)
    np.testing.assert_allclose(ewma_variance(returns[:700]), full[:700], rtol=1e-13)


# --- GARCH -------------------------------------------------------------------------------------

def test_fit_garch_equals_arch(returns, arch_fit):
    p = fit_garch(returns[:1000])
    ref = arch_fit.params
    assert p.mu == pytest.approx(ref["mu"] / 100, rel=1e-12)
    assert p.omega == pytest.approx(ref["omega"] / 1e4, rel=1e-12)
    assert (p.alpha, p.beta) == pytest.approx((ref["alpha[1]"], ref["beta[1]"]), rel=1e-12)
    np.testing.assert_allclose(p.arch_params(), ref.to_numpy(), rtol=1e-12)
    # the simulated truth: omega 0.02 (percent^2), alpha 0.08, beta 0.9
    assert abs(p.alpha - 0.08) < 0.05 and abs(p.beta - 0.9) < 0.07


def test_garch_in_sample_variance_equals_arch(returns, arch_fit):
    p = fit_garch(returns[:1000])
    v = garch_variance(returns[:1000], p)
    ref = arch_fit.conditional_volatility**2 / 1e4
    np.testing.assert_allclose(v[:-1], ref[1:], rtol=1e-8)


@pytest.mark.parametrize("h", [1, 5, 21])
def test_garch_cumulative_forecast_equals_arch_forecast(returns, arch_fit, h):
    p = fit_garch(returns[:1000])
    v = garch_variance(returns[:1000], p)
    ref = arch_fit.forecast(horizon=h, reindex=False).variance.to_numpy()[-1].sum() / 1e4
    assert garch_cumulative_variance(v, p, h)[-1] == pytest.approx(ref, rel=1e-8)


def test_garch_closed_form_for_long_horizons():
    p = GarchParams(0.0, 2e-6, 0.08, 0.9, 1e-4, 500)
    s1 = 3e-4
    bar = p.omega / (1 - p.persistence)
    h = 40
    expected = h * bar + (s1 - bar) * (1 - p.persistence**h) / (1 - p.persistence)
    assert garch_cumulative_variance(np.array([s1]), p, h)[0] == pytest.approx(expected, rel=1e-12)


def test_garch_filter_through_test_slice_equals_arch_fix(returns):
    p = fit_garch(returns[:1000])
    v = garch_variance(returns, p)  # parameters from the first 1000 returns, filtered on
    fixed = arch_model(100 * returns, mean="Constant", vol="GARCH", p=1, q=1).fix(p.arch_params())
    ref = fixed.conditional_volatility**2 / 1e4
    np.testing.assert_allclose(v[1000:-1], ref[1001:], rtol=1e-8)
    # causal: cutting later returns changes nothing before the cut
    np.testing.assert_allclose(garch_variance(returns[:1200], p), v[:1200], rtol=1e-13)


def test_fit_garch_needs_data():
    with pytest.raises(InsufficientDataError):
        fit_garch(np.full(50, 0.01))
    with pytest.raises(InsufficientDataError):
        fit_garch(np.zeros(200))


# --- losses ------------------------------------------------------------------------------------

def test_qlike_values():
    f = np.array([2.0, 1.0, 0.5, 1.0, -1.0])
    rv = np.array([1.0, 1.0, 1.0, np.nan, 1.0])
    got = qlike(f, rv)
    assert got[0] == pytest.approx(0.5 - np.log(0.5) - 1, rel=1e-14)
    assert got[1] == 0.0
    assert got[2] == pytest.approx(2.0 - np.log(2.0) - 1, rel=1e-14)
    assert np.isnan(got[3]) and np.isnan(got[4])
    # non-negative, and its mean over a noisy proxy is minimised by the conditional mean
    rng = np.random.default_rng(0)
    proxy = rng.chisquare(5, 200_000) / 5  # mean 1
    means = {c: np.mean(qlike(np.full(proxy.size, c), proxy)) for c in (0.8, 0.9, 1.0, 1.1, 1.2)}
    assert min(means, key=means.get) == 1.0
    assert all(v >= 0 for v in means.values())


def test_mse_log_variance_values():
    got = mse_log_variance(np.array([np.e, 1.0, 0.0]), np.array([1.0, np.e**2, 1.0]))
    np.testing.assert_allclose(got[:2], [1.0, 4.0], rtol=1e-14)
    assert np.isnan(got[2])


# --- Diebold-Mariano ---------------------------------------------------------------------------

@pytest.mark.parametrize("h", [1, 5, 21])
def test_diebold_mariano_equals_statsmodels_hac(h):
    rng = np.random.default_rng(h)
    a = rng.standard_normal(400) ** 2
    b = 1.1 * rng.standard_normal(400) ** 2
    res = diebold_mariano(a, b, h)
    d = a - b
    ols = sm.OLS(d, np.ones_like(d)).fit(cov_type="HAC", cov_kwds={"maxlags": h - 1, "kernel": "uniform",
                                                                   "use_correction": False})
    n = 400
    hln = np.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    assert not res.bartlett
    assert res.statistic == pytest.approx(ols.tvalues[0] * hln, rel=1e-10)
    assert res.p_value == pytest.approx(2 * stats.t.sf(abs(res.statistic), n - 1), rel=1e-12)
    assert res.mean_difference == pytest.approx(d.mean(), rel=1e-12)
    assert (res.n, res.horizon) == (n, h)


def test_diebold_mariano_bartlett_fallback():
    # alternating differences: equal-weight lag-1 autocovariance makes the estimate negative
    d = np.tile([1.0, -1.0], 50) + 0.01 * np.arange(100) / 100
    res = diebold_mariano(d, np.zeros_like(d), 2)
    e = d - d.mean()
    g0, g1 = e @ e / 100, e[1:] @ e[:-1] / 100
    assert g0 + 2 * g1 < 0 and res.bartlett
    hln = np.sqrt((100 + 1 - 4 + 2 / 100) / 100)
    assert res.statistic == pytest.approx(d.mean() / np.sqrt((g0 + g1) / 100) * hln, rel=1e-12)


def test_diebold_mariano_rejects_a_known_difference():
    rng = np.random.default_rng(7)
    e = rng.standard_normal((2, 1004))
    k = np.ones(5)
    better = np.convolve(e[0] ** 2, k, "valid")  # MA(4) losses, as overlapping 5-step forecasts
    worse = np.convolve(e[1] ** 2, k, "valid") + 2.5  # expected loss higher by 2.5
    res = diebold_mariano(better, worse, 5)
    # long-run sd of the difference ~ sqrt(2 * 5^2 * 2) = 10: expected statistic ~ -2.5 / (10 / sqrt(1000))
    assert res.statistic < -5 and res.p_value < 1e-5
    assert res.mean_difference == pytest.approx(-2.5, abs=0.8)
    flipped = diebold_mariano(worse, better, 5)
    assert flipped.statistic == pytest.approx(-res.statistic) and flipped.p_value == pytest.approx(res.p_value)


@pytest.mark.parametrize("h", [1, 5])
def test_diebold_mariano_size_under_equal_accuracy(h):
    # Equal expected losses with MA(h-1) dependence: p-values ~ uniform, about 5% below 0.05.
    pvals = []
    for seed in range(300):
        rng = np.random.default_rng(1000 + seed)
        e = rng.standard_normal((2, 500 + h - 1))
        k = np.ones(h)
        a = np.convolve(e[0] ** 2, k, "valid")
        b = np.convolve(e[1] ** 2, k, "valid")
        pvals.append(diebold_mariano(a, b, h).p_value)
    pvals = np.array(pvals)
    assert 0.02 <= np.mean(pvals < 0.05) <= 0.09
    assert stats.kstest(pvals, "uniform").pvalue > 0.01


def test_diebold_mariano_degenerate_inputs():
    res = diebold_mariano(np.ones(50), np.ones(50), 1)
    assert np.isnan(res.statistic) and np.isnan(res.p_value) and res.mean_difference == 0.0
    with pytest.raises(InsufficientDataError):
        diebold_mariano(np.ones(9), np.zeros(9), 1)
    with pytest.raises(InsufficientDataError):
        diebold_mariano(np.ones(30), np.zeros(30), 21)
    a = np.r_[np.ones(40), np.nan]
    assert diebold_mariano(a + np.arange(41) % 3, np.zeros(41), 1).n == 40
