"""Hurst exponent (DFA, corrected R/S) and the exact fGn simulator."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from scipy.special import gamma

from analytics._fgn import fgn_autocovariance, simulate_fgn
from analytics._hurst import (
    expected_rescaled_range,
    hurst_exponent,
    hurst_scales,
    rolling_hurst,
)
from analytics._simulation import HURST_STUDY_VALUES, hurst_study_sample
from analytics.errors import InsufficientDataError

# --- the simulator -----------------------------------------------------------------------


@pytest.mark.parametrize("h", [0.1, 0.3, 0.5, 0.7, 0.9, 0.95])
def test_fgn_has_the_exact_autocovariance(h):
    x = simulate_fgn(64, h, size=6000, rng=1)
    gamma_ = fgn_autocovariance(h, 63)
    cov = x.T @ x / x.shape[0]
    for k in (0, 1, 2, 5, 20):
        emp = np.mean(np.diagonal(cov, k))
        assert emp == pytest.approx(gamma_[k], abs=0.03)


@pytest.mark.parametrize("h", [0.3, 0.7, 0.9])
def test_fgn_sums_scale_like_fractional_brownian_motion(h):
    # Var(x_1 + ... + x_m) = m^{2H} for unit-variance fGn, at every m.
    x = simulate_fgn(500, h, size=4000, rng=2)
    for m in (10, 100, 500):
        var = np.var(x[:, :m].sum(axis=1))
        assert var == pytest.approx(m ** (2 * h), rel=0.08)


def test_fgn_shapes_seeds_and_arguments():
    assert simulate_fgn(10, 0.5, rng=3).shape == (10,)
    assert simulate_fgn(10, 0.5, size=3, rng=3).shape == (3, 10)
    np.testing.assert_array_equal(simulate_fgn(50, 0.7, size=2, rng=4),
                                  simulate_fgn(50, 0.7, size=2, rng=4))
    assert simulate_fgn(1, 0.3, size=5, rng=1).shape == (5, 1)
    with pytest.raises(ValueError, match="hurst"):
        simulate_fgn(10, 1.0)
    with pytest.raises(TypeError, match="hurst"):
        simulate_fgn(10, "0.5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n must"):
        simulate_fgn(0, 0.5)
    with pytest.raises(ValueError, match="size"):
        simulate_fgn(10, 0.5, size=0)


# --- accuracy of the estimators on exact fGn ---------------------------------------------


@pytest.fixture(scope="module")
def study():
    """The seeded sample of docs/statistics.md: 200 fGn series of n = 1024 per H."""
    return {h: hurst_study_sample(h) for h in HURST_STUDY_VALUES}


@pytest.mark.slow
def test_default_estimator_bias_within_004_for_every_h(study):
    for h, sample in study.items():
        est = np.array([hurst_exponent(x).hurst for x in sample])
        assert abs(est.mean() - h) <= 0.04, (h, est.mean())
        assert hurst_exponent(sample[0]).method == "dfa"


@pytest.mark.slow
def test_default_confidence_interval_covers_at_about_the_nominal_rate(study):
    for h, sample in study.items():
        res = [hurst_exponent(x) for x in sample]
        coverage = np.mean([r.ci_low <= h <= r.ci_high for r in res])
        assert 0.88 <= coverage <= 0.99, (h, coverage)
        # The reported standard error tracks the actual spread of the estimates.
        spread = np.std([r.hurst for r in res], ddof=1)
        assert np.mean([r.stderr for r in res]) == pytest.approx(spread, rel=0.2)


@pytest.mark.slow
def test_corrected_rs_is_unbiased_near_half_and_biased_for_strong_persistence(study):
    mid = np.array([hurst_exponent(x, "rs").hurst for x in study[0.5]])
    high = np.array([hurst_exponent(x, "rs").hurst for x in study[0.9]])
    assert abs(mid.mean() - 0.5) <= 0.04
    assert high.mean() - 0.9 < -0.05  # documented in docs/statistics.md


def test_expected_rescaled_range_is_anis_lloyd_times_peters_factor():
    for s in (8, 16, 64):
        rng = np.random.default_rng(s)
        x = rng.standard_normal((20000, s))
        d = x - x.mean(axis=1, keepdims=True)
        y = np.cumsum(d, axis=1)
        rs = (np.maximum(y.max(axis=1), 0) - np.minimum(y.min(axis=1), 0)) / d.std(axis=1)
        anis_lloyd = expected_rescaled_range(s)[0] * s / (s - 0.5)
        assert rs.mean() == pytest.approx(anis_lloyd, rel=0.01)
    s = 300
    i = np.arange(1, s)
    closed = (s - 0.5) / s * gamma((s - 1) / 2) / (np.sqrt(np.pi) * gamma(s / 2)) * np.sum(
        np.sqrt((s - i) / i))
    assert expected_rescaled_range(s)[0] == pytest.approx(closed, rel=1e-12)
    with pytest.raises(ValueError):
        expected_rescaled_range(1)


def test_white_noise_and_persistence_are_ordered():
    rng = np.random.default_rng(8)
    wn = hurst_exponent(rng.standard_normal(2048))
    assert wn.hurst == pytest.approx(0.5, abs=0.08)
    persistent = hurst_exponent(simulate_fgn(2048, 0.8, rng=9))
    anti = hurst_exponent(simulate_fgn(2048, 0.25, rng=10))
    assert anti.hurst < wn.hurst < persistent.hurst


def test_result_fields():
    res = hurst_exponent(np.random.default_rng(1).standard_normal(1000), alpha=0.1)
    np.testing.assert_array_equal(res.scales, hurst_scales(1000))
    assert res.scales[0] == 8 and res.scales[-1] == 250
    assert res.fluctuations.shape == res.scales.shape and np.all(res.fluctuations > 0)
    assert res.ci_low < res.hurst < res.ci_high and res.alpha == 0.1
    assert res.ci_high - res.hurst == pytest.approx(1.6448536 * res.stderr)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.hurst = 0.5  # type: ignore[misc]
    d = json.loads(json.dumps(res.to_dict()))
    assert d["method"] == "dfa" and d["nobs"] == 1000


def test_scale_selection():
    np.testing.assert_array_equal(hurst_scales(100, "dfa", n_scales=3), [8, 14, 25])
    assert hurst_scales(1000, "rs")[[0, -1]].tolist() == [16, 500]
    custom = hurst_scales(1000, min_scale=10, max_scale=100, n_scales=5)
    assert custom.tolist() == [10, 18, 32, 56, 100]
    res = hurst_exponent(np.random.default_rng(2).standard_normal(1000), min_scale=10,
                         max_scale=100, n_scales=5)
    assert res.scales.tolist() == custom.tolist()


# --- degenerate input and bad arguments --------------------------------------------------


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (np.array([]), "too few"),
        (np.random.default_rng(1).standard_normal(63), "too few"),
        (np.zeros(500), "constant"),
        (np.r_[np.random.default_rng(1).standard_normal(300), np.nan], "NaN"),
        # Increments constant on every 8-bar segment: the profile is exactly linear there.
        (np.r_[np.zeros(64), np.ones(64)], "zero fluctuation"),
    ],
)
@pytest.mark.parametrize("method", ["dfa", "rs"])
def test_degenerate_input_raises_insufficient_data(x, match, method):
    if match == "zero fluctuation" and method == "rs":
        x = np.r_[np.zeros(64), np.ones(64)]  # every 16-bar block has zero deviation
    with pytest.raises(InsufficientDataError, match=match):
        hurst_exponent(x, method)


def test_max_scale_beyond_data_is_insufficient_data():
    with pytest.raises(InsufficientDataError, match="max_scale"):
        hurst_exponent(np.random.default_rng(1).standard_normal(100), max_scale=80)


@pytest.mark.parametrize(
    ("kwargs", "exc", "name"),
    [
        ({"method": "higuchi"}, ValueError, "method"),
        ({"alpha": 1.5}, ValueError, "alpha"),
        ({"alpha": "0.05"}, TypeError, "alpha"),
        ({"min_scale": 2}, ValueError, "min_scale"),
        ({"n_scales": 2}, ValueError, "n_scales"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, exc, name):
    with pytest.raises(exc, match=name):
        hurst_exponent(np.random.default_rng(1).standard_normal(300), **kwargs)


# --- rolling -----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["dfa", "rs"])
def test_rolling_equals_single_shot_on_every_window(method):
    x = simulate_fgn(400, 0.6, rng=12)
    window = 150
    roll = rolling_hurst(x, window, method)
    for t in range(window - 1, x.size):
        one = hurst_exponent(x[t - window + 1 : t + 1], method)
        assert roll.hurst[t] == pytest.approx(one.hurst, abs=1e-12)
        assert roll.stderr[t] == pytest.approx(one.stderr, abs=1e-12)
    assert (roll.reason[: window - 1] == "warmup").all()


def test_rolling_flags_zero_fluctuation_windows_as_singular():
    x = np.r_[np.random.default_rng(3).standard_normal(200), np.zeros(64), np.ones(64)]
    roll = rolling_hurst(x, 128)
    assert roll.reason[-1] == "singular" and np.isnan(roll.hurst[-1])
    assert roll.reason[200] == "ok" and np.isfinite(roll.hurst[200])
