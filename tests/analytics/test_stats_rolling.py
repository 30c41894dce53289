"""Rolling statistics: last window equals single shot, prefix invariance, reason codes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics._adf import adf_test, rolling_adf
from analytics._autocorr import ljung_box, rolling_autocorrelation, rolling_ljung_box
from analytics._character import rolling_market_character
from analytics._hurst import hurst_exponent, rolling_hurst
from analytics._variance_ratio import rolling_variance_ratio, variance_ratio

WINDOWS = st.sampled_from([70, 100, 131])


def _series(seed: int, n: int, kind: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = rng.standard_normal(n) * np.exp(rng.normal(0, 0.5))
    if kind == 0:  # random walk around a price-like level
        return 5.0 + np.cumsum(0.01 * e)
    if kind == 1:  # stationary AR(1) level
        y = np.zeros(n)
        for t in range(1, n):
            y[t] = 0.9 * y[t - 1] + e[t]
        return y
    return np.cumsum(np.convolve(e, [1.0, 0.4])[:n])  # autocorrelated returns


series = st.builds(_series, st.integers(0, 10_000), st.integers(131, 260), st.integers(0, 2))


@settings(max_examples=30, deadline=None)
@given(x=series, window=WINDOWS)
def test_last_rolling_value_equals_single_shot(x, window):
    w = x[-window:]
    adf = rolling_adf(x, window)
    one = adf_test(w)
    assert adf.lags[-1] == one.lags and adf.nobs[-1] == one.nobs
    assert adf.stat[-1] == pytest.approx(one.stat, rel=1e-9, abs=1e-12)
    assert adf.pvalue[-1] == pytest.approx(one.pvalue, rel=1e-9, abs=1e-300)

    vr = rolling_variance_ratio(x, window)
    one_vr = variance_ratio(w)
    np.testing.assert_allclose(vr.vr[-1], one_vr.vr, rtol=1e-12)
    np.testing.assert_allclose(vr.stat[-1], one_vr.stat, rtol=1e-10, atol=1e-12)
    assert vr.joint_pvalue[-1] == pytest.approx(one_vr.joint_pvalue, rel=1e-9)

    r = np.diff(x)
    h = rolling_hurst(r, window - 1)
    assert h.hurst[-1] == pytest.approx(hurst_exponent(r[-(window - 1) :]).hurst, abs=1e-12)

    lb = rolling_ljung_box(r, window - 1, 5)
    assert lb.stat[-1] == pytest.approx(ljung_box(r[-(window - 1) :], 5).stat[-1], rel=1e-12)


def _same(a: np.ndarray, b: np.ndarray) -> None:
    # Bitwise: no output may depend on later bars, not even through rounding (batched
    # BLAS calls are avoided where a row's result could depend on its batch neighbours).
    np.testing.assert_array_equal(a, b)


@settings(max_examples=40, deadline=None)
@given(x=series, window=WINDOWS, cut=st.floats(0, 1), gaps=st.lists(st.integers(0, 259),
                                                                     max_size=3))
def test_rolling_outputs_are_prefix_invariant(x, window, cut, gaps):
    """A value stamped at t depends only on bars up to t (DESIGN: causal everywhere)."""
    x = x.copy()
    x[[g for g in gaps if g < x.size]] = np.nan
    m = int(cut * x.size)
    full_adf, part_adf = rolling_adf(x, window), rolling_adf(x[:m], window)
    _same(part_adf.stat, full_adf.stat[:m])
    assert part_adf.reason.tolist() == full_adf.reason[:m].tolist()
    _same(rolling_variance_ratio(x[:m], window).stat, rolling_variance_ratio(x, window).stat[:m])
    r = np.diff(x)
    mr = max(m - 1, 0)
    full_h, part_h = rolling_hurst(r, window - 1), rolling_hurst(r[:mr], window - 1)
    _same(part_h.hurst, full_h.hurst[:mr])
    assert part_h.reason.tolist() == full_h.reason[:mr].tolist()
    _same(rolling_autocorrelation(r[:mr], 30, 3).acf, rolling_autocorrelation(r, 30, 3).acf[:mr])
    _same(rolling_hurst(r[:mr], window - 1, "rs").hurst,
          rolling_hurst(r, window - 1, "rs").hurst[:mr])
    _same(rolling_ljung_box(r[:mr], 40, 4).pvalue, rolling_ljung_box(r, 40, 4).pvalue[:mr])


def test_rolling_market_character_is_prefix_invariant():
    x = 5 + np.cumsum(0.01 * np.random.default_rng(17).standard_normal(700))
    x[300] = np.nan
    full = rolling_market_character(x, 150)
    for m in (149, 299, 451, 600):
        part = rolling_market_character(x[:m], 150)
        assert part.character.tolist() == full.character[:m].tolist()
        _same(part.trend_score, full.trend_score[:m])
        _same(part.mean_reversion_score, full.mean_reversion_score[:m])


def test_reason_codes_for_warmup_gaps_and_constant_windows():
    x = np.r_[5 + np.cumsum(0.01 * np.random.default_rng(1).standard_normal(300)),
              np.full(120, 7.0)]
    x[150] = np.nan
    adf = rolling_adf(x, 100)
    assert (adf.reason[:99] == "warmup").all()
    assert adf.reason[99] == "ok" and np.isfinite(adf.stat[99])
    assert (adf.reason[150:250] == "non_finite").all() and np.isnan(adf.stat[150:250]).all()
    assert adf.reason[250] == "ok"
    assert adf.reason[-1] == "constant" and np.isnan(adf.pvalue[-1])
    assert np.isnan(adf.critical_values[-1]).all() and np.isnan(adf.lags[-1])
    vr = rolling_variance_ratio(x, 100)
    # Windows holding a single return followed by flat prices make every ADF lag-search
    # regression an exact fit: ADF is undefined there ("singular"), the VR is not.
    singular = adf.reason == "singular"
    assert singular[386] and not singular[385]
    assert vr.reason[~singular].tolist() == adf.reason[~singular].tolist()
    assert set(vr.reason[singular]) == {"ok"}
    assert np.isnan(vr.joint_pvalue[-1]) and np.isfinite(vr.joint_pvalue[99])
    h = rolling_hurst(np.diff(x), 99)
    assert h.reason[-1] == "constant" and np.isnan(h.ci_low[-1])


def test_singular_adf_window_is_flagged_not_crashed():
    # A window whose increments are constant: the lagged differences are collinear.
    x = np.r_[np.cumsum(np.random.default_rng(2).standard_normal(150)), 50 + np.arange(90.0)]
    roll = rolling_adf(x, 80, maxlag=2, autolag=None)
    assert roll.reason[-1] == "singular" and np.isnan(roll.stat[-1])
    assert roll.reason[150] == "ok"


@pytest.mark.parametrize("n", [0, 1, 50])
def test_short_and_empty_input_give_warmup_only(n):
    x = np.cumsum(np.ones(n))
    for res in (rolling_adf(x, 60), rolling_variance_ratio(x, 60), rolling_hurst(x, 64),
                rolling_ljung_box(x, 60), rolling_autocorrelation(x, 60),
                rolling_market_character(x, 120)):
        assert res.reason.shape == (n,) and (res.reason == "warmup").all()
        assert res.to_frame().shape[0] == n


@pytest.mark.parametrize(
    ("call", "exc"),
    [
        (lambda x: rolling_adf(x, 3), ValueError),
        (lambda x: rolling_adf(x, 1.5), TypeError),
        (lambda x: rolling_variance_ratio(x, 17), ValueError),
        (lambda x: rolling_hurst(x, 63), ValueError),
        (lambda x: rolling_market_character(x, 99), ValueError),
    ],
)
def test_window_too_short_names_window(call, exc):
    with pytest.raises(exc, match="window"):
        call(np.cumsum(np.random.default_rng(0).standard_normal(300)))


def test_pandas_index_is_kept():
    idx = pd.bdate_range("2020-01-01", periods=200)
    s = pd.Series(5 + np.cumsum(0.01 * np.random.default_rng(3).standard_normal(200)), idx)
    frame = rolling_adf(s, 100).to_frame()
    assert frame.index.equals(idx)
    assert {"stat", "pvalue", "lags", "nobs", "crit_5%", "reason"} <= set(frame.columns)
    assert rolling_adf(s.to_numpy(), 100).index is None
