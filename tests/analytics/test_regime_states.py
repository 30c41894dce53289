"""The one-regime test: BIC of a k-state HMM of the returns against one Gaussian, and the HMM
regime path that uses it (issue: "regimes that know when there is only one")."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from analytics._regime_common import (
    REGIME_FAMILIES,
    forward_filter,
    stationary_distribution,
    walk_forward_regimes,
)
from analytics._regime_hmm import GaussianHMMRegime
from analytics._regime_states import one_regime_test
from analytics.errors import EstimationWarning, InsufficientDataError
from tests.analytics.test_regime_sim import MU2, P2, SIGMA2, balanced_accuracy, simulate

# A sticky two-state start as a regime model would hand over (calm and turbulent state).
MEANS = np.array([0.0006, -0.0008])
VOLS = np.array([0.0078, 0.0214])
TRANS = np.array([[0.99, 0.01], [0.03, 0.97]])


def _calm(n, seed, sd=0.0078):
    return np.random.default_rng(seed).normal(0.0004, sd, n)


def _wf(r, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EstimationWarning)
        return walk_forward_regimes(r, GaussianHMMRegime(**kw), min_train=500, refit_every=21)


def _series(values):
    return pd.Series(values, index=pd.bdate_range("2001-01-02", periods=len(values), tz="UTC"))


@pytest.mark.parametrize("seed", range(5))
def test_one_gaussian_is_one_regime(seed):
    """Returns drawn from one normal law: BIC keeps one regime, after a Baum-Welch fit."""
    t = one_regime_test(_calm(1000, seed), MEANS, VOLS, TRANS)
    assert t.one_regime and t.fitted
    assert t.n_bars == 1000 and t.n_states == 2


@pytest.mark.parametrize("seed", range(5))
def test_switching_returns_are_two_regimes(seed):
    """The simulated two-state series (both states present) rejects one regime."""
    r, s = simulate(MU2, SIGMA2, P2, 1500, seed=seed)
    if len(np.unique(s)) < 2:
        pytest.skip("this seed stays in one state")
    t = one_regime_test(r.to_numpy(), MEANS, VOLS, TRANS)
    assert not t.one_regime
    assert t.bic < t.bic_one


def test_likelihoods_match_references():
    """One Gaussian: scipy's normal log-density at the sample mean and std. k states, when the
    starting point decides: the project's forward filter at the same parameters."""
    r, _ = simulate(MU2, SIGMA2, P2, 1500, seed=3)
    x = r.to_numpy()
    t = one_regime_test(x, MEANS, VOLS, TRANS)
    assert not t.fitted
    assert t.loglik_one == pytest.approx(stats.norm.logpdf(x, x.mean(), x.std()).sum(), rel=1e-12)
    ll = stats.norm.logpdf(x[:, None], MEANS[None, :], VOLS[None, :])
    _, ref = forward_filter(ll, TRANS, stationary_distribution(TRANS))
    assert t.loglik == pytest.approx(ref, rel=1e-9)
    n = x.size
    assert t.bic == pytest.approx(-2 * t.loglik + 7 * math.log(n))
    assert t.bic_one == pytest.approx(-2 * t.loglik_one + 2 * math.log(n))


def test_fit_never_lowers_the_starting_likelihood():
    x = _calm(800, 11)
    t = one_regime_test(x, MEANS, VOLS, TRANS)
    ll = stats.norm.logpdf(x[:, None], MEANS[None, :], VOLS[None, :])
    _, start = forward_filter(ll, TRANS, stationary_distribution(TRANS))
    assert t.fitted and t.loglik >= start - 1e-9


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scale=st.floats(0.01, 100.0), shift=st.floats(-0.1, 0.1), seed=st.integers(0, 3))
def test_affine_invariance(scale, shift, seed):
    """Rescaling and shifting the returns (and the starting parameters with them) changes
    neither the decision nor the likelihood ratio; each likelihood moves by -n log(scale)."""
    r, _ = simulate(MU2, SIGMA2, P2, 600, seed=seed)
    x = r.to_numpy()
    a = one_regime_test(x, MEANS, VOLS, TRANS)
    b = one_regime_test(scale * x + shift, scale * MEANS + shift, scale * VOLS, TRANS)
    assert a.one_regime == b.one_regime and a.fitted == b.fitted
    jac = x.size * math.log(scale)
    assert b.loglik_one == pytest.approx(a.loglik_one - jac, rel=1e-9, abs=1e-6)
    assert b.loglik == pytest.approx(a.loglik - jac, rel=1e-9, abs=1e-6)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((np.zeros(50), MEANS, VOLS, TRANS), InsufficientDataError),
        ((np.ones(2), MEANS, VOLS, TRANS), InsufficientDataError),
        ((np.array([0.1, np.nan, 0.2]), MEANS, VOLS, TRANS), ValueError),
        ((np.ones((5, 2)), MEANS, VOLS, TRANS), ValueError),
        ((_calm(50, 0), MEANS[:1], VOLS[:1], TRANS[:1, :1]), ValueError),
        ((_calm(50, 0), MEANS, VOLS, np.eye(3)), ValueError),
        ((_calm(50, 0), MEANS, np.array([0.01, np.inf]), TRANS), ValueError),
    ],
)
def test_bad_input(args, error):
    with pytest.raises(error):
        one_regime_test(*args)


def test_model_options_are_validated():
    with pytest.raises(TypeError, match="one_regime_test"):
        GaussianHMMRegime(one_regime_test=1)
    with pytest.raises(ValueError, match="restart_every"):
        GaussianHMMRegime(restart_every=0)


def test_random_starts_every_third_refit():
    """The first fit has its own starts; after it, refits 3, 6, ... try the random start."""
    seen = []

    class Counting(GaussianHMMRegime):
        def _fit_states(self, ctx, lo, hi, previous, seed):
            fitted = super()._fit_states(ctx, lo, hi, previous, seed)
            seen.append(fitted.since_restart)
            return fitted

    r, _ = simulate(MU2, SIGMA2, P2, 700, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EstimationWarning)
        walk_forward_regimes(r, Counting(), min_train=500, refit_every=21)
    assert seen == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0][: len(seen)] and len(seen) == 10


# -- the HMM regime path --------------------------------------------------------------------


def test_calm_only_series_is_one_regime():
    """A series with no turbulent state at all: with the test every bar is risk-on and every
    fit reports one regime; without it, the same model calls a large share risk-off."""
    r = _series(_calm(1500, 5))
    res = _wf(r)
    assert all(f.n_regimes == 1 for f in res.fits)
    assert {REGIME_FAMILIES[x] for x in res.labels} == {"risk_on"}
    assert np.all(res.probabilities[:, 0] == 1.0)
    assert all(len(set(f.state_labels)) == 1 for f in res.fits)
    assert np.all(res.fits[-1].transition_matrix == np.eye(2))
    assert res.summary()["n_regimes"] == 1
    old = _wf(r, one_regime_test=False)
    assert all(f.n_regimes == 2 for f in old.fits)
    risk_off = np.mean([REGIME_FAMILIES[x] == "risk_off" for x in old.raw_labels])
    assert risk_off > 0.2


def test_a_regime_that_appears_is_found():
    """Calm for 1000 bars, then a turbulent stretch: the windows before it hold one regime, the
    first refit after it two, and the stretch is reported risk-off."""
    rng = np.random.default_rng(8)
    x = _calm(1400, 8)
    x[1000:1080] = -0.001 + 0.025 * rng.standard_normal(80)
    res = _wf(_series(x))
    n_reg = {f.first_date: f.n_regimes for f in res.fits}
    dates = res.dates
    first_two = min(d for d, k in n_reg.items() if k == 2)
    assert all(k == 1 for d, k in n_reg.items() if d <= dates[1000 - 500])
    assert first_two <= dates[1080 - 500]
    fam = pd.Series([REGIME_FAMILIES[x] for x in res.raw_labels], index=dates)
    assert (fam[first_two:dates[1079 - 500]] == "risk_off").mean() > 0.8


def test_a_one_regime_window_filters_with_the_last_fit_that_saw_two():
    """ST's rolling two-year window. Turbulence early, then a long calm: the calm windows hold one regime,
    and their blocks are filtered with the latest fit that saw both regimes, so a new
    turbulent stretch starting just after a refit is found within days, not at the next
    refit (a block forced calm would stay calm for its 21 bars)."""
    rng = np.random.default_rng(21)
    x = _calm(1700, 21)
    x[100:180] = -0.001 + 0.025 * rng.standard_normal(80)
    def run(values):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EstimationWarning)
            return walk_forward_regimes(_series(values), GaussianHMMRegime(), min_train=500, refit_every=21,
                                        max_train=504)

    res = run(x)
    refit_bars = [500 + 21 * j for j in range(len(res.fits))]
    late = [j for j, f in enumerate(res.fits) if f.n_regimes == 1 and refit_bars[j] > 1200]
    assert late, "the windows after a long calm should hold one regime"
    j = late[0]
    m = refit_bars[j]
    ref = res.fits[j]
    assert ref.state_vols[1] > 2 * ref.state_vols[0] and len(set(ref.state_labels)) == 2  # an earlier two-regime fit
    y = x.copy()
    y[m + 1:m + 40] = -0.001 + 0.025 * rng.standard_normal(39)
    hit = run(y)
    fam = [REGIME_FAMILIES[v] for v in hit.raw_labels[m - 500:m - 500 + 21]]
    first_off = fam.index("risk_off")
    assert first_off <= 6 and hit.fit_index[m - 500 + first_off] == j
    assert all(f.n_regimes == 1 for f in hit.fits[j:j + 1])


def test_simulated_two_state_balanced_accuracy():
    """The issue's measure: T = 2000, 20 seeds, monthly refits from bar 500. Before the test
    the causal HMM path scored 0.908 (0.878 after persistence) here; goal 0.93."""
    raw, held = [], []
    for seed in range(20):
        r, s = simulate(MU2, SIGMA2, P2, 2000, seed=seed)
        res = _wf(r)
        raw.append(balanced_accuracy(s[500:], res.states))
        held.append(balanced_accuracy(s[500:], res.persistent_states))
    print(f"\nhmm 2-state, 20 seeds: filtered {np.mean(raw):.3f}, with persistence {np.mean(held):.3f}")
    assert np.mean(raw) >= 0.94
    assert np.mean(held) >= 0.91
