"""Autocorrelation and Ljung-Box: agreement with statsmodels, rolling, degenerate input."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest
from arch.data import sp500
from statsmodels.stats.diagnostic import acorr_ljungbox
from statsmodels.tsa.stattools import acf

from analytics._autocorr import (
    autocorrelation,
    ljung_box,
    rolling_autocorrelation,
    rolling_ljung_box,
)
from analytics.errors import InsufficientDataError

RETURNS = np.diff(np.log(sp500.load()["Adj Close"].to_numpy()))
NOISE = np.random.default_rng(4).standard_normal(777)
AR = np.convolve(NOISE, [1.0, 0.6, 0.3])[:777]


def _acf_reference(x, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return acf(x, **kw)


@pytest.mark.parametrize("x", [RETURNS, NOISE, AR, RETURNS[:60]], ids=["sp500", "noise",
                                                                       "ma2", "short"])
@pytest.mark.parametrize("nlags", [None, 1, 5, 40])
@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_acf_matches_statsmodels(x, nlags, alpha):
    ref, ci = _acf_reference(x, nlags=nlags, alpha=alpha)
    res = autocorrelation(x, nlags, alpha=alpha)
    np.testing.assert_allclose(res.acf, ref, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(res.confint, ci, rtol=1e-10, atol=1e-14)
    assert res.lags.tolist() == list(range(ref.size)) and res.nobs == x.size


@pytest.mark.parametrize("x", [RETURNS, NOISE, AR], ids=["sp500", "noise", "ma2"])
@pytest.mark.parametrize("lags", [1, 10, 25, [1, 5, 20]])
@pytest.mark.parametrize("model_df", [0, 3])
def test_ljung_box_matches_statsmodels(x, lags, model_df):
    ref = acorr_ljungbox(x, lags=lags, model_df=model_df, boxpierce=True)
    res = ljung_box(x, lags, model_df=model_df)
    np.testing.assert_array_equal(res.lags, ref.index.to_numpy())
    np.testing.assert_allclose(res.stat, ref["lb_stat"], rtol=1e-10)
    np.testing.assert_allclose(res.bp_stat, ref["bp_stat"], rtol=1e-10)
    np.testing.assert_allclose(res.pvalue, ref["lb_pvalue"], rtol=1e-8, atol=1e-300)
    np.testing.assert_allclose(res.bp_pvalue, ref["bp_pvalue"], rtol=1e-8, atol=1e-300)


def test_ljung_box_detects_dependence_and_not_noise():
    assert ljung_box(AR, 10).pvalue[-1] < 1e-10
    sizes = [ljung_box(np.random.default_rng(s).standard_normal(300), 10).pvalue[-1]
             for s in range(300)]
    assert 0.02 <= np.mean(np.array(sizes) < 0.05) <= 0.09


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: autocorrelation(np.array([])), "observation"),
        (lambda: autocorrelation(np.ones(50)), "constant"),
        (lambda: autocorrelation(np.r_[NOISE[:50], np.nan]), "NaN"),
        (lambda: autocorrelation(NOISE[:10], 10), "nlags=10"),
        (lambda: ljung_box(np.ones(50)), "constant"),
        (lambda: ljung_box(np.r_[NOISE[:50], np.inf]), "NaN/inf"),
        (lambda: ljung_box(NOISE[:10], 10), "lag 10"),
    ],
)
def test_degenerate_input_raises_insufficient_data(call, match):
    with pytest.raises(InsufficientDataError, match=match):
        call()


@pytest.mark.parametrize(
    ("call", "exc", "name"),
    [
        (lambda: autocorrelation(NOISE, 0), ValueError, "nlags"),
        (lambda: autocorrelation(NOISE, alpha=0), ValueError, "alpha"),
        (lambda: ljung_box(NOISE, 0), ValueError, "lags"),
        (lambda: ljung_box(NOISE, "10"), TypeError, "lags"),
        (lambda: ljung_box(NOISE, model_df=-1), ValueError, "model_df"),
        (lambda: rolling_ljung_box(NOISE, 10, 10), ValueError, "window"),
        (lambda: rolling_autocorrelation(NOISE, 5, 5), ValueError, "window"),
    ],
)
def test_bad_arguments_name_the_argument(call, exc, name):
    with pytest.raises(exc, match=name):
        call()


def test_results_are_frozen_and_json_serialisable():
    res = ljung_box(NOISE, 5, model_df=6)
    assert np.isnan(res.pvalue).all()  # no degrees of freedom left: p-value undefined
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.nobs = 3  # type: ignore[misc]
    d = json.loads(json.dumps(res.to_dict()))
    assert d["pvalue"] == [None] * 5
    a = autocorrelation(NOISE, 3)
    assert json.loads(json.dumps(a.to_dict()))["acf"][0] == 1.0


def test_rolling_matches_single_shot():
    window = 120
    ra = rolling_autocorrelation(RETURNS[:400], window, 5)
    rl = rolling_ljung_box(RETURNS[:400], window, 5, model_df=1)
    for t in range(window - 1, 400, 13):
        w = RETURNS[t - window + 1 : t + 1]
        np.testing.assert_allclose(ra.acf[t], autocorrelation(w, 5).acf[1:], rtol=1e-12)
        one = ljung_box(w, 5, model_df=1)
        assert rl.stat[t] == pytest.approx(one.stat[-1], rel=1e-12)
        assert rl.pvalue[t] == pytest.approx(one.pvalue[-1], rel=1e-10)
    assert (ra.reason[: window - 1] == "warmup").all() and np.isnan(rl.stat[:window - 1]).all()


def test_rolling_marks_nan_and_constant_windows():
    x = np.r_[NOISE[:100], np.nan, NOISE[100:200], np.zeros(50)]
    rl = rolling_ljung_box(x, 30, 3)
    assert rl.reason[100] == "non_finite" and rl.reason[129] == "non_finite"
    assert rl.reason[130] == "ok" and np.isfinite(rl.stat[130])
    assert rl.reason[-1] == "constant" and np.isnan(rl.stat[-1])
    frame = rolling_autocorrelation(x, 30, 2).to_frame()
    assert list(frame.columns) == ["acf_1", "acf_2", "reason"]
