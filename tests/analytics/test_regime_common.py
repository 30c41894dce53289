"""Ordering, labelling, forward filter, persistence and boundary validation of the regime layer."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics._regime_common import (
    REGIME_FAMILIES,
    REGIME_LABELS,
    PersistenceRule,
    apply_persistence,
    expected_durations,
    forward_filter,
    label_states,
    order_states,
    walk_forward_regimes,
)
from analytics._regime_garch import GarchVolatilityRegime
from analytics._regime_hmm import GaussianHMMRegime
from analytics.errors import InsufficientDataError
from tests.analytics.test_regime_sim import MU2, P2, SIGMA2, simulate

# -- ordering and labels -----------------------------------------------------------------


def test_order_states_by_vol_then_mean():
    perm = order_states(np.array([0.1, -0.2, 0.3, 0.0]), np.array([2.0, 1.0, 1.0, 3.0]))
    # vol 1.0 twice: higher mean (0.3, index 2) first.
    assert perm.tolist() == [2, 1, 0, 3]


def test_label_rule_two_states():
    # daily: drift ratio 0.0006/0.008*sqrt(252) = 1.19 -> bull; -0.0008/0.02*15.9 = -0.63 -> bear
    assert label_states(np.array([0.0006, -0.0008]), np.array([0.008, 0.02])) == ("bull", "bear")
    assert label_states(np.array([0.00001, 0.0001]), np.array([0.008, 0.02])) == ("calm", "high_volatility")
    # family is fixed by volatility rank, whatever the means
    assert label_states(np.array([-0.002, 0.003]), np.array([0.008, 0.02])) == ("calm", "high_volatility")


def test_label_rule_three_and_four_states():
    vols = np.array([0.005, 0.012, 0.03])
    assert label_states(np.array([0.0005, 0.0, -0.002]), vols) == ("bull", "calm", "bear")
    assert label_states(np.array([0.0, -0.001, 0.0]), vols) == ("calm", "bear", "high_volatility")
    assert label_states(np.array([0.0, 0.001, 0.0]), vols) == ("calm", "bull", "high_volatility")
    four = label_states(np.zeros(4), np.array([1.0, 2.0, 3.0, 4.0]))
    assert four == ("calm", "calm", "high_volatility", "high_volatility")
    assert set(REGIME_FAMILIES) == set(REGIME_LABELS)


def test_label_rule_rejects_unordered_states():
    with pytest.raises(ValueError, match="ordered"):
        label_states(np.array([0.0, 0.0]), np.array([0.02, 0.01]))


def test_expected_durations():
    d = expected_durations(np.array(P2))
    np.testing.assert_allclose(d, [1 / 0.0021, 1 / 0.012])
    assert np.isinf(expected_durations(np.eye(2))).all()


# -- forward filter ----------------------------------------------------------------------


def _stationary(a):
    w, v = np.linalg.eig(a.T)
    pi = np.real(v[:, np.argmin(np.abs(w - 1))])
    return pi / pi.sum()


def test_forward_filter_matches_hmmlearn_last_posterior():
    """At the last bar of a sample, the smoothed posterior IS the filtered one: compare our
    filter with hmmlearn's predict_proba on growing prefixes, and the log-likelihood with
    hmmlearn's score."""
    from hmmlearn.hmm import GaussianHMM

    r, _ = simulate(MU2, SIGMA2, P2, 400, seed=11)
    x = (r.to_numpy() * 100)[:, None]
    m = GaussianHMM(2, covariance_type="diag", random_state=0, n_iter=50).fit(x)
    a = m.transmat_
    pi = _stationary(a)
    m.startprob_ = pi  # prior @ A == pi, so both start from the same predicted distribution
    means, var = m.means_[:, 0], m.covars_[:, 0, 0]
    ll = -0.5 * (np.log(2 * np.pi * var) + (x - means) ** 2 / var)
    filt, loglik = forward_filter(ll, a, pi)
    assert loglik == pytest.approx(m.score(x), rel=1e-10)
    for t in (0, 5, 57, 200, 399):
        np.testing.assert_allclose(filt[t], m.predict_proba(x[: t + 1])[-1], atol=1e-10)


def test_forward_filter_matches_statsmodels_filtered_probabilities():
    from statsmodels.tsa.regime_switching.markov_regression import MarkovRegression

    r, _ = simulate(MU2, SIGMA2, P2, 500, seed=12)
    y = r.to_numpy() * 100
    mod = MarkovRegression(y, k_regimes=2, switching_variance=True)
    params = np.array([0.99, 0.03, 0.05, -0.1, 0.6, 4.0])
    res = mod.filter(params)
    a = res.regime_transition[..., 0].T
    c, s2 = params[2:4], params[4:6]
    ll = -0.5 * (np.log(2 * np.pi * s2) + (y[:, None] - c) ** 2 / s2)
    filt, loglik = forward_filter(ll, a, _stationary(a))
    np.testing.assert_allclose(filt, res.filtered_marginal_probabilities, atol=1e-10)
    assert loglik == pytest.approx(res.llf, rel=1e-10)


def test_forward_filter_survives_an_impossible_bar():
    ll = np.array([[0.0, -1.0], [-np.inf, -np.inf], [0.0, -5.0]])
    f, _ = forward_filter(ll, np.array([[0.9, 0.1], [0.1, 0.9]]), np.array([0.5, 0.5]))
    assert np.all(np.isfinite(f))
    np.testing.assert_allclose(f.sum(axis=1), 1.0)


def test_forward_filter_validates():
    with pytest.raises(ValueError, match="prior"):
        forward_filter(np.zeros((3, 2)), np.eye(2), np.array([0.5, 0.6, 0.1]))
    with pytest.raises(ValueError, match="transmat"):
        forward_filter(np.zeros((3, 2)), np.eye(3), np.array([0.5, 0.5]))


# -- persistence -------------------------------------------------------------------------


def test_persistence_requires_consecutive_confirmation():
    p1 = np.array([0.1, 0.9, 0.9, 0.5, 0.9, 0.9, 0.9, 0.1, 0.1])
    probs = np.column_stack([1 - p1, p1])
    out = apply_persistence(probs, PersistenceRule(threshold=0.8, confirm_bars=3))
    # run of 2 broken at t=3; run of 3 completes at t=6; back to 0 needs 3 bars again.
    assert out.tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 1]


def test_persistence_hysteresis_band():
    p1 = np.array([0.9, 0.6, 0.4, 0.3, 0.25, 0.15])
    out = apply_persistence(np.column_stack([1 - p1, p1]), PersistenceRule(0.8, 1))
    # starts in 1; 0 must reach 0.8 before the label leaves state 1
    assert out.tolist() == [1, 1, 1, 1, 1, 0]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.0, 1.0), min_size=1, max_size=60),
    st.floats(0.51, 1.0),
    st.integers(1, 6),
    st.integers(0, 59),
)
def test_persistence_is_causal_and_confirmed(p1, threshold, confirm, cut):
    p1 = np.array(p1)
    probs = np.column_stack([1 - p1, p1])
    rule = PersistenceRule(threshold, confirm)
    full = apply_persistence(probs, rule)
    cut = min(cut, len(p1) - 1)
    assert np.array_equal(apply_persistence(probs[: cut + 1], rule), full[: cut + 1])
    for t in np.flatnonzero(np.diff(full)) + 1:
        new = full[t]
        lo = t - confirm + 1
        assert lo >= 0
        assert np.all(probs[lo : t + 1, new] >= threshold)


def test_persistence_rule_validation():
    with pytest.raises(ValueError, match="threshold"):
        PersistenceRule(threshold=0.0)
    with pytest.raises(ValueError, match="confirm_bars"):
        PersistenceRule(confirm_bars=0)
    with pytest.raises(TypeError, match="confirm_bars"):
        PersistenceRule(confirm_bars=2.5)
    with pytest.raises(TypeError, match="rule"):
        apply_persistence(np.ones((2, 2)) / 2, rule=(0.8, 3))


# -- boundary validation of walk_forward_regimes ----------------------------------------


def _series(n=400, seed=0):
    """Returns with volatility blocks (calm 80 bars, turbulent 80 bars, ...): every
    training window has volatility clustering for GARCH to find."""
    rng = np.random.default_rng(seed)
    s = (np.arange(n) // 80) % 2
    r = np.where(s == 0, 0.0005, -0.001) + np.where(s == 0, 0.006, 0.02) * rng.standard_normal(n)
    return pd.Series(r, index=pd.bdate_range("2001-01-01", periods=n, tz="UTC"))


FAST = GarchVolatilityRegime()


def test_rejects_non_series_and_naive_index():
    r = _series()
    with pytest.raises(TypeError, match="returns"):
        walk_forward_regimes(r.to_numpy(), FAST, min_train=200)
    with pytest.raises(ValueError, match="timezone-aware"):
        walk_forward_regimes(r.tz_localize(None), FAST, min_train=200)
    with pytest.raises(TypeError, match="DatetimeIndex"):
        walk_forward_regimes(r.reset_index(drop=True), FAST, min_train=200)
    with pytest.raises(ValueError, match="increasing"):
        walk_forward_regimes(r.iloc[::-1], FAST, min_train=200)
    with pytest.raises(TypeError, match="numeric"):
        walk_forward_regimes(r.astype(str), FAST, min_train=200)
    with pytest.raises(TypeError, match="model"):
        walk_forward_regimes(r, "hmm", min_train=200)


def test_rejects_bad_arguments():
    r = _series()
    with pytest.raises(ValueError, match="min_train"):
        walk_forward_regimes(r, FAST, min_train=10)
    with pytest.raises(ValueError, match="refit_every"):
        walk_forward_regimes(r, FAST, min_train=200, refit_every=0)
    with pytest.raises(ValueError, match="max_train"):
        walk_forward_regimes(r, FAST, min_train=200, max_train=100)
    with pytest.raises(ValueError, match="infinite"):
        walk_forward_regimes(r.replace(r.iloc[5], np.inf), FAST, min_train=200)
    with pytest.raises(ValueError, match="n_states"):
        GaussianHMMRegime(n_states=1)
    with pytest.raises(ValueError, match="covariance_type"):
        GaussianHMMRegime(covariance_type="spherical")


def test_empty_all_nan_and_short_input_are_infeasible():
    r = _series()
    with pytest.raises(InsufficientDataError):
        walk_forward_regimes(r.iloc[:0], FAST, min_train=200)
    with pytest.raises(InsufficientDataError):
        walk_forward_regimes(r * np.nan, FAST, min_train=200)
    with pytest.raises(InsufficientDataError, match="min_train"):
        walk_forward_regimes(r.iloc[:200], FAST, min_train=200)
    with pytest.raises(InsufficientDataError, match="constant"):
        walk_forward_regimes(r * 0.0, FAST, min_train=200)
    with pytest.raises(InsufficientDataError, match="constant"):
        walk_forward_regimes(r * 0.0, GaussianHMMRegime(), min_train=200)


def test_partly_nan_rows_are_dropped_and_counted():
    r = _series()
    holed = r.copy()
    holed.iloc[[3, 250, 300]] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = walk_forward_regimes(holed, FAST, min_train=200, refit_every=50)
        ref = walk_forward_regimes(holed.dropna(), FAST, min_train=200, refit_every=50)
    assert res.n_dropped == 3
    assert holed.index[250] not in res.dates
    np.testing.assert_array_equal(res.probabilities, ref.probabilities)
    assert len(res.dates) == len(r) - 3 - 200


def test_result_is_frozen_and_self_consistent():
    import dataclasses
    import json

    res = walk_forward_regimes(_series(600), FAST, min_train=300, refit_every=60)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.method = "x"  # type: ignore[misc]
    with pytest.raises(ValueError):
        res.probabilities[0, 0] = 1.0
    n = len(res.dates)
    assert res.probabilities.shape == (n, 2)
    np.testing.assert_allclose(res.probabilities.sum(axis=1), 1.0)
    assert len(res.fits) == 5  # refits at 300, 360, 420, 480, 540
    assert all(f.train_end < f.first_date for f in res.fits)
    assert set(res.labels) <= set(REGIME_LABELS)
    lp = res.label_probabilities()
    np.testing.assert_allclose(lp.sum(axis=1), 1.0)
    assert list(lp.columns) == list(REGIME_LABELS)
    frame = res.to_frame()
    assert (frame["label"].to_numpy() == res.labels).all()
    s = res.summary()
    json.dumps(s)
    assert s["label"] == res.current_label
    assert res.expected_durations.shape == (2,)
    assert isinstance(res.dates, pd.DatetimeIndex)
