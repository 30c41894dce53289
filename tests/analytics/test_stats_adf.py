"""ADF test: agreement with statsmodels' adfuller, MacKinnon tables, degenerate input."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest
from arch.data import sp500
from statsmodels.tsa.adfvalues import mackinnoncrit, mackinnonp
from statsmodels.tsa.stattools import adfuller

from analytics._adf import (
    adf_default_maxlag,
    adf_test,
    mackinnon_crit,
    mackinnon_pvalue,
    rolling_adf,
)
from analytics.errors import InsufficientDataError
from tests.analytics._series import NASDAQ, SP500, ar1_levels, random_walk

# statsmodels needs seconds per call on the full 5,031-bar series (it refits every lag with a
# pseudo-inverse), so most comparisons use long slices; one test uses the full series.
SERIES = {
    "sp500_800": SP500[:800],
    "nasdaq_600": NASDAQ[-600:],
    "sp500_300": SP500[2000:2300],
    "random_walk": random_walk(600, 1),
    "ar1_0.95": ar1_levels(600, 0.95, 2),
    "short_60": random_walk(60, 3),
}


def _reference(x, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return adfuller(x, result_object=True, **kw)


@pytest.mark.parametrize("name", list(SERIES))
@pytest.mark.parametrize("regression", ["n", "c", "ct"])
@pytest.mark.parametrize("autolag", ["AIC", "BIC", "t-stat", None])
def test_matches_statsmodels(name, regression, autolag):
    x = SERIES[name]
    maxlag = None if autolag else 4
    ref = _reference(x, maxlag=maxlag, regression=regression, autolag=autolag)
    res = adf_test(x, maxlag=maxlag, regression=regression, autolag=autolag)
    assert res.lags == ref.lags
    assert res.nobs == ref.nobs
    np.testing.assert_allclose(res.stat, ref.statistic, rtol=1e-8)
    np.testing.assert_allclose(res.pvalue, ref.pvalue, rtol=1e-8, atol=1e-300)
    assert dict(res.critical_values) == pytest.approx(ref.critical_values, rel=1e-12)
    if autolag is None:
        assert res.icbest is None
    else:
        np.testing.assert_allclose(res.icbest, ref.icbest, rtol=1e-8)


def test_matches_statsmodels_on_full_sp500():
    ref = _reference(SP500, regression="c", autolag="AIC")
    res = adf_test(SP500, regression="c", autolag="AIC")
    assert (res.lags, res.nobs, res.maxlag) == (ref.lags, ref.nobs, 32)
    np.testing.assert_allclose([res.stat, res.pvalue], [ref.statistic, ref.pvalue], rtol=1e-8)


@pytest.mark.parametrize("autolag", ["AIC", None])
def test_quadratic_trend_matches_statsmodels_on_moderate_samples(autolag):
    x = SP500[1000:1400]
    maxlag = None if autolag else 3
    ref = _reference(x, maxlag=maxlag, regression="ctt", autolag=autolag)
    res = adf_test(x, maxlag=maxlag, regression="ctt", autolag=autolag)
    assert res.lags == ref.lags
    np.testing.assert_allclose(res.stat, ref.statistic, rtol=1e-8)


def test_quadratic_trend_on_long_sample_is_more_accurate_than_statsmodels():
    # statsmodels regresses on an unscaled t^2 column (up to 2.5e7 here) and loses about
    # 8 digits; a QR fit with scaled trend columns is the ground truth.
    x, k = SP500, 5
    dx = np.diff(x)
    nob = x.size - 1 - k
    t = np.arange(1, nob + 1) / nob
    cols = [np.ones(nob), t, t**2, x[k:-1]] + [dx[k - j : x.size - 1 - j] for j in range(1, k + 1)]
    design = np.column_stack(cols)
    q, r = np.linalg.qr(design)
    beta = np.linalg.solve(r, q.T @ dx[k:])
    resid = dx[k:] - design @ beta
    s2 = resid @ resid / (nob - design.shape[1])
    rinv = np.linalg.inv(r)
    truth = beta[3] / np.sqrt(s2 * (rinv @ rinv.T)[3, 3])
    res = adf_test(x, maxlag=k, regression="ctt", autolag=None)
    np.testing.assert_allclose(res.stat, truth, rtol=1e-10)
    ref = _reference(x, maxlag=k, regression="ctt", autolag=None)
    np.testing.assert_allclose(res.stat, ref.statistic, rtol=1e-6)


@pytest.mark.parametrize("regression", ["n", "c", "ct", "ctt"])
def test_vectorised_mackinnon_pvalue_is_statsmodels_elementwise(regression):
    grid = np.concatenate([np.linspace(-30, 5, 701), [-1.61, -2.89, -3.21, -1.04, 2.74]])
    expected = np.array([mackinnonp(v, regression=regression, N=1) for v in grid])
    np.testing.assert_array_equal(mackinnon_pvalue(grid, regression), expected)
    assert np.isnan(mackinnon_pvalue(np.array([np.nan]), regression)[0])


@pytest.mark.parametrize("regression", ["n", "c", "ct", "ctt"])
def test_critical_values_are_mackinnon_2010(regression):
    nobs = np.array([25.0, 100.0, 251.0, np.nan])
    out = mackinnon_crit(nobs, regression)
    for i in range(3):
        np.testing.assert_array_equal(out[i], mackinnoncrit(N=1, regression=regression,
                                                            nobs=nobs[i]))
    assert np.isnan(out[3]).all()


@pytest.mark.parametrize("n", [20, 100, 252, 1000, 5031])
@pytest.mark.parametrize("regression", ["n", "c", "ct"])
def test_default_maxlag_is_schwert_rule_capped(n, regression):
    ntrend = {"n": 0, "c": 1, "ct": 2}[regression]
    expected = min(n // 2 - ntrend - 1, int(np.ceil(12 * (n / 100) ** 0.25)))
    assert adf_default_maxlag(n, regression) == expected
    assert adf_default_maxlag(252, "c") == 16


def test_size_on_random_walks_and_power_on_stationary_series():
    rw = np.array([adf_test(random_walk(250, s)).pvalue for s in range(200)])
    assert 0.02 <= np.mean(rw < 0.05) <= 0.09
    ar = np.array([adf_test(ar1_levels(250, 0.5, s)).pvalue for s in range(20)])
    assert np.all(ar < 0.01)


def test_pandas_series_input_is_accepted():
    s = sp500.load()["Adj Close"].iloc[:500]
    np.testing.assert_allclose(adf_test(np.log(s)).stat, adf_test(np.log(s.to_numpy())).stat)


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (np.array([]), "observation"),
        (np.array([1.0, 2.0]), "observation"),
        (np.full(50, 3.0), "constant"),
        (np.r_[random_walk(50, 1), np.nan, random_walk(50, 2)], "NaN"),
        (np.r_[random_walk(50, 1), np.inf], "NaN/inf"),
        (np.arange(60, dtype=float), "singular"),  # constant increments: collinear lags
        (random_walk(3, 4), "too short"),
    ],
)
def test_degenerate_input_raises_insufficient_data(x, match):
    with pytest.raises(InsufficientDataError, match=match):
        adf_test(x, regression="c", autolag="AIC")


def test_regression_without_residual_degrees_of_freedom_is_insufficient_data():
    # n = 6, no deterministic terms, maxlag at statsmodels' cap: 3 rows and 3 regressors.
    with pytest.raises(InsufficientDataError, match="degrees of freedom"):
        adf_test(random_walk(6, 5), maxlag=2, regression="n", autolag=None)


def test_maxlag_too_large_for_data_is_insufficient_data():
    with pytest.raises(InsufficientDataError, match="maxlag=40"):
        adf_test(random_walk(60, 1), maxlag=40)


@pytest.mark.parametrize(
    ("kwargs", "exc", "name"),
    [
        ({"regression": "t"}, ValueError, "regression"),
        ({"autolag": "hqic"}, ValueError, "autolag"),
        ({"maxlag": -1}, ValueError, "maxlag"),
        ({"maxlag": 2.5}, TypeError, "maxlag"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, exc, name):
    with pytest.raises(exc, match=name):
        adf_test(random_walk(100, 1), **kwargs)


def test_bad_input_shapes_and_types():
    with pytest.raises(ValueError, match="x must be one-dimensional"):
        adf_test(np.ones((10, 10)))
    with pytest.raises(TypeError, match="x must contain numbers"):
        adf_test(np.array(["a", "b", "c"]))


def test_result_is_frozen_and_json_serialisable():
    res = adf_test(SP500[:300])
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.stat = 0.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        res.critical_values["5%"] = 0.0  # type: ignore[index]
    d = json.loads(json.dumps(res.to_dict()))
    assert d["lags"] == res.lags and d["autolag"] == "AIC"


@pytest.mark.parametrize("regression", ["n", "c", "ct", "ctt"])
@pytest.mark.parametrize("autolag", ["AIC", "BIC", "t-stat", None])
def test_rolling_matches_statsmodels_on_every_window(regression, autolag):
    x = NASDAQ[3000:3260]
    window = 120
    maxlag = None if autolag else 3
    roll = rolling_adf(x, window, regression=regression, autolag=autolag, maxlag=maxlag)
    assert (roll.reason[: window - 1] == "warmup").all()
    for t in range(window - 1, x.size, 7):
        ref = _reference(x[t - window + 1 : t + 1], maxlag=maxlag, regression=regression,
                         autolag=autolag)
        assert roll.lags[t] == ref.lags
        np.testing.assert_allclose(roll.stat[t], ref.statistic, rtol=1e-8)
        np.testing.assert_allclose(roll.pvalue[t], ref.pvalue, rtol=1e-8, atol=1e-300)
        np.testing.assert_allclose(roll.critical_values[t],
                                   [ref.critical_values[k] for k in ("1%", "5%", "10%")])


def test_rolling_stays_accurate_when_prefix_sums_would_cancel():
    # Drift 1e5 per bar against unit noise: raw cross-products are ~1e10 times the
    # centred ones, so these windows are refitted from their own data (without that
    # guard the statistic is off by ~2e-5 relative).
    y = 1e5 * np.arange(500) + random_walk(500, 21)
    roll = rolling_adf(y, 200)
    for t in range(199, 500, 60):
        ref = _reference(y[t - 199 : t + 1])
        assert roll.lags[t] == ref.lags
        np.testing.assert_allclose(roll.stat[t], ref.statistic, rtol=1e-8)
