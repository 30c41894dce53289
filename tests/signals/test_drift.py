"""Drift measures against known truths: PSI by numerical integration, KS by scipy, score decay
after a simulated break."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from analytics import InsufficientDataError
from signals._drift import (
    PSI_EPSILON,
    feature_drift,
    performance_decay,
    population_stability_index,
    psi_edges,
)


def _analytic_psi(edges: np.ndarray, shift: float) -> float:
    """PSI of N(shift, 1) against N(0, 1) on the bins of ``edges``, the shares integrated numerically."""
    bounds = np.concatenate([[-np.inf], edges, [np.inf]])
    e = np.array([integrate.quad(stats.norm.pdf, lo, hi)[0] for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)])
    a = np.array([integrate.quad(lambda x: stats.norm.pdf(x - shift), lo, hi)[0]
                  for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)])
    return float(np.sum((a - e) * np.log(a / e)))


def test_psi_of_identical_distributions_is_near_zero():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(100_000)
    assert population_stability_index(x, x) == 0.0
    # two samples of one distribution: sampling noise only, about 9 * (1/n + 1/n) = 1.8e-4
    psi = population_stability_index(x, rng.standard_normal(100_000))
    assert 0 < psi < 6e-4


def test_psi_of_a_one_sd_shift_matches_numerical_integration():
    rng = np.random.default_rng(7)
    expected = rng.standard_normal(200_000)
    actual = rng.standard_normal(200_000) + 1.0
    edges = psi_edges(expected, 10)
    assert edges.size == 9
    np.testing.assert_allclose(edges, stats.norm.ppf(np.arange(1, 10) / 10), atol=0.02)
    truth = _analytic_psi(edges, 1.0)
    assert 0.9 < truth < 0.95  # for population deciles the value is 0.926
    assert population_stability_index(expected, actual) == pytest.approx(truth, rel=0.01)


def test_psi_by_hand_with_an_empty_bin():
    expected = np.arange(1.0, 11.0)  # deciles: one value per bin
    edges = psi_edges(expected, 5)   # quantiles 0.2 .. 0.8 -> 2.8, 4.6, 6.4, 8.2
    np.testing.assert_allclose(edges, [2.8, 4.6, 6.4, 8.2])
    actual = np.array([1.0, 2.0, 3.0, 4.0, np.nan])  # shares 0.5, 0.5, 0, 0, 0 (NaN ignored)
    e, a = np.full(5, 0.2), np.array([0.5, 0.5, PSI_EPSILON, PSI_EPSILON, PSI_EPSILON])
    assert population_stability_index(expected, actual, bins=5) == pytest.approx(float(np.sum((a - e) * np.log(a / e))))
    with pytest.raises(InsufficientDataError):
        population_stability_index(expected, [np.nan], bins=5)
    with pytest.raises(InsufficientDataError):
        population_stability_index(expected[:3], actual, bins=5)
    with pytest.raises(ValueError, match="bins"):
        psi_edges(expected, 1)


def test_feature_drift_equals_direct_calls_and_scipy_ks():
    rng = np.random.default_rng(3)
    train = pd.DataFrame({"a": rng.standard_normal(2000), "b": rng.standard_normal(2000), "c": np.nan})
    train.loc[:99, "b"] = np.nan
    recent = pd.DataFrame({"a": rng.standard_normal(63), "b": rng.standard_normal(63) * 3 + 2, "c": 1.0})
    fd = feature_drift(train, recent)
    frame = fd.to_frame()
    assert list(frame.index) == ["a", "b", "c"]
    for col in ("a", "b"):
        ks = stats.ks_2samp(train[col].dropna(), recent[col])
        assert frame.loc[col, "ks_statistic"] == pytest.approx(ks.statistic, abs=0, rel=1e-12)
        assert frame.loc[col, "ks_pvalue"] == pytest.approx(ks.pvalue, rel=1e-12)
        assert frame.loc[col, "psi"] == population_stability_index(train[col], recent[col])
    assert frame.loc["b", "n_train"] == 1900 and frame.loc["b", "n_recent"] == 63
    assert np.isnan(frame.loc["c", "psi"]) and frame.loc["c", "n_train"] == 0  # no training values
    assert fd.worst.feature == "b" and fd.worst.psi > 1 and frame.loc["b", "ks_pvalue"] < 1e-10
    assert frame.loc["a", "psi"] < 0.25 and frame.loc["a", "ks_pvalue"] > 0.01


def _simulated_break(rng, n: int = 3000, brk: int = 2000):
    """x predicts y before bar ``brk``; after it y is a coin flip whatever x says."""
    x = rng.standard_normal(n)
    y_pre = (x + 0.5 * rng.standard_normal(n) > 0).astype(float)
    y_post = (rng.random(n) < 0.5).astype(float)
    y = np.where(np.arange(n) < brk, y_pre, y_post)
    return x, y


def test_decay_detects_a_model_made_useless_by_a_break():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(11)
    x, y = _simulated_break(rng)
    idx = pd.date_range("2000-01-03", periods=x.size, freq="B")
    model = LogisticRegression().fit(x[:1500, None], y[:1500])
    p = pd.Series(model.predict_proba(x[:, None])[:, 1], index=idx)
    val = slice(1500, 2000)  # validation: after training, before the break
    val_brier = float(np.mean((p.iloc[val] - y[val]) ** 2))
    val_auc = stats.mannwhitneyu(p.iloc[val][y[val] == 1], p.iloc[val][y[val] == 0]).statistic / (
        (y[val] == 1).sum() * (y[val] == 0).sum())
    assert val_brier < 0.12 and val_auc > 0.9

    # before the break the recent score is the validated one (within sampling noise) ...
    before = performance_decay(p.iloc[1500:2000], y[1500:2000], val_brier, validation_auc=val_auc, window=63)
    last = slice(2000 - 63, 2000)
    assert before.brier == pytest.approx(float(np.mean((p.iloc[last] - y[last]) ** 2)))
    assert before.brier_increase < 0.05 and before.auc > 0.85
    # ... after it the forecasts are no better than a coin: Brier near E[(p - y)^2] with y ~ Bernoulli(1/2)
    after = performance_decay(p.iloc[1500:], y[1500:], val_brier, validation_auc=val_auc, window=250)
    tail = p.iloc[-250:].to_numpy()
    coin = float(np.mean(tail**2 - tail + 0.5))  # expected Brier of p against a fair coin
    assert after.brier == pytest.approx(float(np.mean((tail - y[-250:]) ** 2)))
    se = float(np.std((tail - y[-250:]) ** 2) / np.sqrt(250))
    assert abs(after.brier - coin) < 4 * se and after.brier > 0.25
    assert after.brier_increase > 0.1 and after.auc_drop > 0.3 and after.n == 1500 and after.n_recent == 250
    # the rolling score is low before the break and high once a full window is after it
    roll = after.rolling_brier
    assert roll.index[0] == idx[1500] and np.isnan(roll.iloc[248]) and np.isfinite(roll.iloc[249])
    assert roll.loc[idx[1999]] < 0.15 < 0.25 < roll.loc[idx[2000 + 249]]
    assert roll.iloc[-1] == pytest.approx(after.brier)


def test_decay_input_checks():
    p = np.full(30, 0.5)
    y = np.r_[np.zeros(15), np.ones(15)]
    d = performance_decay(p, y, 0.2, window=10)
    assert d.brier == 0.25 and d.auc is None and d.auc_drop is None and d.n_recent == 10  # last 10 all ones
    assert d.brier_increase == pytest.approx(0.05)
    y_nan = y.copy()
    y_nan[:15] = np.nan
    with pytest.raises(InsufficientDataError, match="20"):
        performance_decay(p, y_nan, 0.2)
    with pytest.raises(ValueError, match="length"):
        performance_decay(p, y[:-1], 0.2)
    with pytest.raises(ValueError, match="window"):
        performance_decay(p, y, 0.2, window=0)
