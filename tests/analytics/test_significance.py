"""Sharpe-ratio significance: bootstrap interval of a Sharpe difference, PSR and DSR."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kurtosis, norm, skew

from analytics._significance import (
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    psr_from_moments,
    sharpe_difference_ci,
)
from analytics.errors import InsufficientDataError, RegimeDeskError

EULER_GAMMA = 0.5772156649015329


def _pair(seed: int, n: int, mean: float = 0.0003, sd: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(mean, sd, n), rng.normal(mean, sd, n)


# ---------------------------------------------------------------- expected maximum Sharpe, PSR, DSR


def test_expected_max_sharpe_matches_hand_formula():
    n, v = 10, 0.04
    want = math.sqrt(v) * ((1 - EULER_GAMMA) * norm.ppf(1 - 1 / n) + EULER_GAMMA * norm.ppf(1 - 1 / (n * math.e)))
    assert expected_max_sharpe(n, v) == pytest.approx(want, rel=1e-12)
    assert want == pytest.approx(0.2 * 1.5746, abs=1e-3)  # Z^-1(0.9) = 1.2816, Z^-1(1 - 1/(10e)) = 1.7907
    assert expected_max_sharpe(1, v) == 0.0
    assert expected_max_sharpe(1000, 0.0) == 0.0


def test_expected_max_sharpe_is_close_to_simulated_maximum():
    # The formula approximates E[max of N iid N(0, V)] (2.5076 for N = 100): about 1% high here.
    rng = np.random.default_rng(3)
    simulated = rng.standard_normal((20_000, 100)).max(axis=1).mean()
    assert simulated == pytest.approx(2.5076, abs=0.01)
    assert expected_max_sharpe(100, 1.0) == pytest.approx(simulated, rel=0.02)
    assert expected_max_sharpe(100, 1.0) > simulated


def test_paper_numerical_example():
    # Bailey & Lopez de Prado (2014), numerical example as reconstructed from the formulas: 100
    # trials, variance of the annualised trial Sharpe ratios 0.5, selected annualised SR 2.5 over
    # 5 years of daily data (T = 1250, 250 days a year), skewness -3, kurtosis 10.
    # SR0 (per day) = sqrt(0.5/250) * ((1-g) Z^-1(0.99) + g Z^-1(1 - 1/(100e))) ~= 0.1132, DSR ~= 0.9004.
    sr0 = expected_max_sharpe(100, 0.5 / 250)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    sr = 2.5 / math.sqrt(250)
    dsr = psr_from_moments(sr, 1250, -3.0, 10.0, sr0)
    hand = norm.cdf((sr - sr0) * math.sqrt(1249) / math.sqrt(1 + 3 * sr + 9 / 4 * sr**2))
    assert dsr == pytest.approx(hand, rel=1e-12)
    assert dsr == pytest.approx(0.9004, abs=5e-4)


def test_psr_of_a_series_equals_phi_of_closed_form():
    rng = np.random.default_rng(11)
    r = rng.standard_t(5, 1500) * 0.01 + 0.0004
    sr = r.mean() / r.std(ddof=1)
    g3, g4 = skew(r), kurtosis(r, fisher=False)
    sr_star = 0.01
    z = (sr - sr_star) * math.sqrt(r.size - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2)
    res = probabilistic_sharpe_ratio(r, sr_star)
    assert res.psr == pytest.approx(norm.cdf(z), rel=1e-12)
    assert res.z == pytest.approx(z, rel=1e-12)
    assert res.sharpe == pytest.approx(sr, rel=1e-12)
    assert res.sharpe_annual == pytest.approx(sr * math.sqrt(252), rel=1e-12)
    assert res.kurtosis == pytest.approx(g4) and res.kurtosis > 3.5  # fat tails are measured, non-excess
    # an annualised benchmark is converted to per-period
    annual = probabilistic_sharpe_ratio(r, sr_star * math.sqrt(252), annualised_benchmark=True)
    assert annual.psr == pytest.approx(res.psr, rel=1e-12)


def test_psr_normal_case_reduces_to_textbook_standard_error():
    # skewness 0, kurtosis 3: SE(SR) = sqrt((1 + SR^2 / 2) / (n - 1)) (Lo 2002 under iid normality)
    sr, n = 0.05, 1000
    want = norm.cdf(sr / math.sqrt((1 + sr**2 / 2) / (n - 1)))
    assert psr_from_moments(sr, n) == pytest.approx(want, rel=1e-12)
    # negative skew and fat tails widen the interval, so the PSR of a positive SR falls
    assert psr_from_moments(sr, n, -1.0, 8.0) < psr_from_moments(sr, n)


def test_dsr_decreases_with_trials_and_equals_psr_for_one_trial():
    rng = np.random.default_rng(5)
    r = rng.normal(0.0006, 0.01, 2500)
    dsrs = [deflated_sharpe_ratio(r, n, 0.25).dsr for n in (1, 2, 5, 10, 100, 1000)]
    assert all(a > b for a, b in zip(dsrs, dsrs[1:], strict=False))
    one = deflated_sharpe_ratio(r, 1, 0.25)
    assert one.sr0 == 0.0
    assert one.dsr == pytest.approx(probabilistic_sharpe_ratio(r, 0.0).psr, rel=1e-14)
    hundred = deflated_sharpe_ratio(r, 100, 0.25)
    assert hundred.sr0 == pytest.approx(expected_max_sharpe(100, 0.25 / 252), rel=1e-12)
    assert hundred.sr0_annual == pytest.approx(expected_max_sharpe(100, 0.25), rel=1e-12)  # sqrt scales
    # more spread across the trials -> a higher bar -> a lower DSR
    assert deflated_sharpe_ratio(r, 100, 1.0).dsr < hundred.dsr


def test_psr_dsr_input_errors():
    r = np.random.default_rng(0).normal(0, 0.01, 100)
    with pytest.raises(ValueError):
        deflated_sharpe_ratio(r, 0, 0.1)
    with pytest.raises(ValueError):
        deflated_sharpe_ratio(r, 10, -0.1)
    with pytest.raises(ValueError):
        psr_from_moments(1.0, 100, 3.0, 1.0)  # kurtosis below 1 + skew^2: variance term 1 - 3 < 0
    with pytest.raises(InsufficientDataError):
        probabilistic_sharpe_ratio(r[:10])
    with pytest.raises(InsufficientDataError):
        probabilistic_sharpe_ratio(np.full(100, 0.001))
    bad = r.copy()
    bad[3] = np.nan
    with pytest.raises(RegimeDeskError):
        probabilistic_sharpe_ratio(bad)


# ---------------------------------------------------------------- bootstrap interval of the difference


def test_equal_sharpe_interval_covers_zero_about_95_percent():
    covered = 0
    for seed in range(40):
        a, b = _pair(seed, 750)
        res = sharpe_difference_ci(a, b, reps=400, seed=seed)
        assert res.ci_low < res.difference < res.ci_high
        covered += res.ci_low <= 0.0 <= res.ci_high
    assert covered >= 34  # >= 85% of 40; nominal 95% (38); a binomial(40, 0.95) is below 34 w.p. ~1.4%


def test_interval_width_matches_iid_standard_error():
    # Independent iid normal series: Var(SR_a - SR_b) = 2 (1 + SR^2/2) / n per period (Lo 2002),
    # so the annualised 95% interval is about 2 * 1.96 * sqrt(252 * 2 (1 + SR^2/2) / n) wide.
    n = 2000
    a, b = _pair(7, n)
    res = sharpe_difference_ci(a, b, reps=2000, block=1.0, seed=1)
    sr = 0.0003 / 0.01
    want = 2 * 1.959964 * math.sqrt(252 * 2 * (1 + sr**2 / 2) / n)
    assert res.ci_high - res.ci_low == pytest.approx(want, rel=0.1)
    assert res.block_length == 1.0 and res.n == n and res.reps == 2000


def test_real_edge_excludes_zero():
    rng = np.random.default_rng(42)
    bench = rng.normal(0.0003, 0.01, 2500)
    strat = bench + 0.0005 + rng.normal(0.0, 0.002, 2500)  # +0.05% a day, tracking noise 0.2%
    res = sharpe_difference_ci(strat, bench)
    # Only joint resampling of the pairs sees how closely the two move: resampled independently, the
    # interval would be about +-0.88 wide (SE sqrt(2 * 252 / 2500)) around 0.79 and would include 0.
    assert res.ci_low > 0.0
    assert res.p_value < 0.025
    assert res.sharpe_a == pytest.approx(strat.mean() / strat.std(ddof=1) * math.sqrt(252), rel=1e-12)
    assert res.sharpe_b == pytest.approx(bench.mean() / bench.std(ddof=1) * math.sqrt(252), rel=1e-12)
    assert res.difference == pytest.approx(res.sharpe_a - res.sharpe_b, rel=1e-12)


def test_no_edge_has_large_p_value_and_p_value_agrees_with_interval():
    a, b = _pair(8, 1000)
    res = sharpe_difference_ci(b, a + 0.0004, reps=1000)  # the benchmark is better: no edge at all
    assert res.difference < 0
    assert res.p_value > 0.5
    assert res.ci_low < 0


def test_interval_invariant_to_positive_scaling_and_seeded():
    a, b = _pair(9, 600)
    base = sharpe_difference_ci(a, b, reps=500, seed=3)
    scaled = sharpe_difference_ci(a * 7.5, b * 7.5, reps=500, seed=3)
    for field in ("sharpe_a", "sharpe_b", "difference", "ci_low", "ci_high", "p_value", "block_length"):
        assert getattr(scaled, field) == pytest.approx(getattr(base, field), rel=1e-9, abs=1e-12)
    assert sharpe_difference_ci(a, b, reps=500, seed=3) == base
    assert sharpe_difference_ci(a, b, reps=500, seed=4) != base


def test_default_block_length_follows_dependence():
    # An AR(1) difference series gets a longer stationary-bootstrap block than an iid one.
    rng = np.random.default_rng(12)
    n = 2000
    e = rng.normal(0, 0.01, n)
    ar = np.empty(n)
    ar[0] = e[0]
    for t in range(1, n):
        ar[t] = 0.6 * ar[t - 1] + e[t]
    b = rng.normal(0.0003, 0.01, n)
    dependent = sharpe_difference_ci(b + ar, b, reps=200)
    iid = sharpe_difference_ci(b + e, b, reps=200)
    assert dependent.block_length > 3.0 * iid.block_length
    assert iid.block_length >= 1.0


def test_pandas_inputs_and_alignment_errors():
    a, b = _pair(2, 300)
    idx = pd.date_range("2020-01-01", periods=300, freq="B")
    sa, sb = pd.Series(a, idx), pd.Series(b, idx)
    assert sharpe_difference_ci(sa, sb, reps=200) == sharpe_difference_ci(a, b, reps=200)
    with pytest.raises(ValueError, match="index"):
        sharpe_difference_ci(sa, pd.Series(b, idx + pd.Timedelta(days=1)), reps=200)
    with pytest.raises(ValueError, match="same dates"):
        sharpe_difference_ci(a, b[:-1], reps=200)
    nan = a.copy()
    nan[10] = np.nan
    with pytest.raises(InsufficientDataError):
        sharpe_difference_ci(nan, b, reps=200)
    with pytest.raises(InsufficientDataError):
        sharpe_difference_ci(a[:20], b[:20], reps=200)
    with pytest.raises(InsufficientDataError):
        sharpe_difference_ci(np.zeros(300), b, reps=200)
    with pytest.raises(ValueError):
        sharpe_difference_ci(a, b, confidence=1.5)
    with pytest.raises(ValueError):
        sharpe_difference_ci(a, b, block=0.5)


def test_result_is_frozen():
    a, b = _pair(1, 200)
    res = sharpe_difference_ci(a, b, reps=200)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.ci_low = 0.0  # type: ignore[misc]
