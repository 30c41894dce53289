"""Variance ratio: agreement with arch, Chow-Denning joint test, degenerate input."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest
from arch.data import sp500
from arch.unitroot import VarianceRatio
from scipy.stats import norm

from analytics._variance_ratio import (
    chow_denning_pvalue,
    rolling_variance_ratio,
    variance_ratio,
)
from analytics.errors import InsufficientDataError
from tests.analytics._series import NASDAQ, SP500, ar1_levels, random_walk

SERIES = {
    "sp500": SP500,
    "nasdaq": NASDAQ,
    "sp500_253": SP500[1000:1253],
    "random_walk": random_walk(503, 1),
    "ar1_0.95": ar1_levels(400, 0.95, 2),
}
LAGS = (2, 3, 4, 8, 16, 30)


def _arch(x, q, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # arch warns when non-overlapping blocks truncate y
        v = VarianceRatio(x, lags=q, **kw)
        return v.vr, v.stat, v.pvalue


@pytest.mark.parametrize("name", list(SERIES))
@pytest.mark.parametrize("trend", ["c", "n"])
@pytest.mark.parametrize("overlap", [True, False])
@pytest.mark.parametrize("debiased", [True, False])
@pytest.mark.parametrize("robust", [True, False])
def test_matches_arch(name, trend, overlap, debiased, robust):
    x = SERIES[name]
    opts = {"trend": trend, "overlap": overlap, "debiased": debiased, "robust": robust}
    res = variance_ratio(x, LAGS, **opts)
    assert res.lags == LAGS and res.nobs == x.size
    for j, q in enumerate(LAGS):
        vr, stat, pvalue = _arch(x, q, **opts)
        np.testing.assert_allclose(res.vr[j], vr, rtol=1e-8)
        np.testing.assert_allclose(res.stat[j], stat, rtol=1e-8, atol=1e-12)
        # arch computes 2 - 2 Phi(|z|), which cancels in the far tail; we use 2 sf(|z|).
        np.testing.assert_allclose(res.pvalue[j], pvalue, rtol=1e-8, atol=1e-13)


@pytest.mark.parametrize("name", ["sp500", "random_walk"])
def test_both_statistics_are_reported(name):
    x = SERIES[name]
    res = variance_ratio(x, (2, 16))
    for j, q in enumerate((2, 16)):
        assert res.stat_robust[j] == pytest.approx(_arch(x, q, robust=True)[1], rel=1e-8)
        assert res.stat_homoskedastic[j] == pytest.approx(_arch(x, q, robust=False)[1],
                                                          rel=1e-8)
    np.testing.assert_array_equal(res.stat, res.stat_robust)
    homo = variance_ratio(x, (2, 16), robust=False)
    np.testing.assert_array_equal(homo.stat, homo.stat_homoskedastic)


def test_heteroskedasticity_robust_statistic_differs_on_volatility_clusters():
    # S&P 500 returns cluster: the robust variance is larger, so |z*| < |z|.
    res = variance_ratio(SP500, (2, 4, 8, 16))
    assert np.all(np.abs(res.stat_robust) < np.abs(res.stat_homoskedastic))


def test_direction_of_the_ratio():
    rng = np.random.default_rng(5)
    e = rng.standard_normal(3000)
    pos = np.cumsum(np.convolve(e, [1.0, 0.5])[:3000])  # positively autocorrelated returns
    neg = np.cumsum(np.convolve(e, [1.0, -0.5])[:3000])
    assert np.all(variance_ratio(pos).vr > 1) and np.all(variance_ratio(pos).stat > 3)
    assert np.all(variance_ratio(neg).vr < 1) and np.all(variance_ratio(neg).stat < -3)


def test_chow_denning_joint_statistic_and_pvalue():
    res = variance_ratio(SP500[:800], (2, 4, 8, 16))
    assert res.joint_stat == pytest.approx(np.max(np.abs(res.stat)))
    p_min = 2 * norm.sf(res.joint_stat)
    assert res.joint_pvalue == pytest.approx(1 - (1 - p_min) ** 4, rel=1e-12)
    assert res.joint_pvalue >= res.pvalue.min()


def test_chow_denning_critical_values_match_the_smm_table():
    # Studentized maximum modulus, infinite df (Chow and Denning 1993, Table 1; Stoline
    # and Ury 1979): SMM(0.05; 4) = 2.49, SMM(0.01; 4) = 3.02, SMM(0.05; 2) = 2.24.
    assert chow_denning_pvalue(2.49, 4) == pytest.approx(0.05, abs=1e-3)
    assert chow_denning_pvalue(3.02, 4) == pytest.approx(0.01, abs=5e-4)
    assert chow_denning_pvalue(2.24, 2) == pytest.approx(0.05, abs=1e-3)
    # Accurate far in the tail (no 1 - (1 - p)^k cancellation).
    assert chow_denning_pvalue(12.0, 4) == pytest.approx(4 * 2 * norm.sf(12.0), rel=1e-6)


def test_joint_test_controls_size_where_the_smallest_pvalue_does_not():
    rng = np.random.default_rng(11)
    y = np.cumsum(rng.standard_normal((400, 500)), axis=1)
    res = [variance_ratio(row) for row in y]
    joint = np.mean([r.joint_pvalue < 0.05 for r in res])
    naive = np.mean([r.pvalue.min() < 0.05 for r in res])
    assert 0.01 <= joint <= 0.07
    assert naive > joint + 0.02


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (np.array([]), "observation"),
        (random_walk(17, 1), "at least 18"),
        (np.full(100, 2.0), "constant"),
        (np.r_[random_walk(100, 1), np.nan], "NaN"),
    ],
)
def test_degenerate_input_raises_insufficient_data(x, match):
    with pytest.raises(InsufficientDataError, match=match):
        variance_ratio(x)


@pytest.mark.parametrize(
    ("kwargs", "exc", "name"),
    [
        ({"lags": 1}, ValueError, "lags"),
        ({"lags": (2, 2)}, ValueError, "lags"),
        ({"lags": ()}, ValueError, "lags"),
        ({"lags": "2"}, TypeError, "lags"),
        ({"lags": (2.0,)}, TypeError, "lags"),
        ({"trend": "ct"}, ValueError, "trend"),
        ({"overlap": "yes"}, TypeError, "overlap"),
        ({"debiased": 1}, TypeError, "debiased"),
        ({"robust": None}, TypeError, "robust"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, exc, name):
    with pytest.raises(exc, match=name):
        variance_ratio(random_walk(100, 1), **kwargs)


def test_result_is_frozen_and_json_serialisable():
    res = variance_ratio(SP500[:500])
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.joint_stat = 0.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        res.vr[0] = 1.0
    d = json.loads(json.dumps(res.to_dict()))
    assert d["lags"] == [2, 4, 8, 16] and len(d["vr"]) == 4


@pytest.mark.parametrize("overlap", [True, False])
def test_rolling_matches_arch_on_windows(overlap):
    x = NASDAQ[:700]
    window = 252
    roll = rolling_variance_ratio(x, window, (2, 5, 16), overlap=overlap)
    for t in range(window - 1, x.size, 37):
        for j, q in enumerate((2, 5, 16)):
            vr, stat, _ = _arch(x[t - window + 1 : t + 1], q, overlap=overlap)
            np.testing.assert_allclose(roll.vr[t, j], vr, rtol=1e-10)
            np.testing.assert_allclose(roll.stat[t, j], stat, rtol=1e-8, atol=1e-12)
    assert (roll.reason[: window - 1] == "warmup").all()
    assert np.isnan(roll.vr[: window - 1]).all()


def test_rolling_frame_labels_columns_by_horizon():
    s = np.log(sp500.load()["Adj Close"].iloc[:400])
    frame = rolling_variance_ratio(s, 100).to_frame()
    assert list(frame.index) == list(s.index)
    assert {"vr_2", "stat_16", "pvalue_4", "joint_pvalue", "reason"} <= set(frame.columns)
