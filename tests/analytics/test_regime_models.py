"""Per-method behaviour: causality (prefix invariance), references, convergence reporting."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from analytics._regime_common import (
    REGIME_FAMILIES,
    PersistenceRule,
    _refit_seed,
    walk_forward_regimes,
)
from analytics._regime_detect import detect_regimes, make_regime_model
from analytics._regime_garch import GarchVolatilityRegime
from analytics._regime_hmm import GaussianHMMRegime
from analytics._regime_markov import MarkovSwitchingRegime
from analytics.errors import EstimationWarning
from tests.analytics.test_regime_sim import MU2, P2, SIGMA2, simulate

N = 700
WF = dict(min_train=300, refit_every=50, persistence=PersistenceRule(0.8, 3))
MODELS = {
    "hmm": GaussianHMMRegime(),
    "markov": MarkovSwitchingRegime(),
    "garch": GarchVolatilityRegime(),
}


@pytest.fixture(scope="module")
def series() -> pd.Series:
    # seed 4 has turbulent stretches both inside the first window and after it
    r, _ = simulate(MU2, SIGMA2, P2, N, seed=4)
    # a turbulent block inside the out-of-sample part so that the regime path moves
    rng = np.random.default_rng(99)
    r.iloc[480:540] = -0.001 + 0.025 * rng.standard_normal(60)
    return r


def _run(model, r):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EstimationWarning)
        return walk_forward_regimes(r, model, **WF)


@pytest.mark.parametrize("method", list(MODELS))
def test_prefix_invariance(method, series):
    """The path up to t is identical whether computed from data up to t or from all data:
    cut inside a block, exactly at a refit bar, just after one, and at the end."""
    model = MODELS[method]
    full = _run(model, series)
    assert len(set(full.states.tolist())) == 2, "test series should visit both states"
    for t in (349, 400, 501, 537, N - 1):
        part = _run(model, series.iloc[: t + 1])
        m = t + 1 - WF["min_train"]
        assert part.dates.equals(full.dates[:m])
        np.testing.assert_allclose(part.probabilities, full.probabilities[:m], rtol=0, atol=1e-12)
        np.testing.assert_array_equal(part.persistent_states, full.persistent_states[:m])
        np.testing.assert_array_equal(part.labels, full.labels[:m])


@pytest.mark.parametrize("method", ["hmm", "garch"])
def test_future_shock_does_not_change_the_past(method, series):
    model = MODELS[method]
    base = _run(model, series)
    shocked = series.copy()
    shocked.iloc[560:] = shocked.iloc[560:] * 4 - 0.01
    moved = _run(model, shocked)
    m = 560 - WF["min_train"]
    np.testing.assert_array_equal(moved.probabilities[:m], base.probabilities[:m])
    assert not np.allclose(moved.probabilities[m:], base.probabilities[m:])


@pytest.mark.parametrize("method", list(MODELS))
def test_states_ordered_and_labels_stable_across_refits(method, series):
    res = _run(MODELS[method], series)
    for fit in res.fits:
        assert np.all(np.diff(fit.state_vols) > 0)
        assert REGIME_FAMILIES[fit.state_labels[0]] == "risk_on"
        assert REGIME_FAMILIES[fit.state_labels[-1]] == "risk_off"
        assert fit.transition_matrix.shape == (2, 2)
        np.testing.assert_allclose(fit.transition_matrix.sum(axis=1), 1.0)
    # the turbulent block is in the high-volatility state, the calm stretch before it is not
    df = res.to_frame()
    assert (df["state"].iloc[490 - 300 : 540 - 300] == 1).mean() > 0.9
    assert res.converged


def test_hmm_never_uses_smoothed_posteriors(series, monkeypatch):
    from hmmlearn.hmm import GaussianHMM

    def forbidden(*a, **k):
        raise AssertionError("smoothed/Viterbi output used")

    for name in ("predict", "predict_proba", "score_samples", "decode"):
        monkeypatch.setattr(GaussianHMM, name, forbidden)
    res = _run(GaussianHMMRegime(), series)
    assert res.probabilities.shape == (N - 300, 2)


def test_hmm_iteration_cap_is_not_convergence(series):
    with pytest.warns(EstimationWarning, match="did not converge"):
        res = walk_forward_regimes(series, GaussianHMMRegime(max_iter=2, n_restarts=1, refit_restarts=0), **WF)
    assert not res.converged
    assert all(f.n_iter == 2 and not f.converged for f in res.fits)


def test_hmm_restarts_are_seeded(series):
    a = walk_forward_regimes(series, GaussianHMMRegime(), seed=7, **WF)
    b = walk_forward_regimes(series, GaussianHMMRegime(), seed=7, **WF)
    np.testing.assert_array_equal(a.probabilities, b.probabilities)


def test_markov_filter_is_statsmodels_filtered_marginal(series):
    """One fit on the first 300 bars, then the statsmodels filter with fixed parameters over
    the whole sample: our probabilities are its filtered_marginal_probabilities."""
    from statsmodels.tsa.regime_switching.markov_regression import MarkovRegression

    model = MarkovSwitchingRegime()
    res = walk_forward_regimes(series, model, min_train=300, refit_every=None, persistence=PersistenceRule())
    ctx = model._prepare(series.to_numpy())
    fitted = model._fit(ctx, 0, 300, None, seed=_refit_seed(0, 0))  # the driver's first seed
    assert fitted.scale == 100.0  # 'auto' on daily returns
    ref = MarkovRegression(series.to_numpy() * 100, k_regimes=2, switching_variance=True).filter(fitted.params)
    np.testing.assert_allclose(res.probabilities, ref.filtered_marginal_probabilities[300:][:, fitted.perm], atol=1e-12)
    # parameters come from statsmodels' own fit on the training window
    direct = MarkovRegression(series.to_numpy()[:300] * 100, k_regimes=2, switching_variance=True)
    assert fitted.loglik >= direct.fit(disp=False).llf - 1e-6


def test_markov_blocks_are_statsmodels_filters_from_the_training_start(series):
    """After a refit, a block is statsmodels' filter of the new parameters over bars
    train_lo..t, so it does not depend on where the block starts."""
    from statsmodels.tsa.regime_switching.markov_regression import MarkovRegression

    model = MarkovSwitchingRegime()
    ctx = model._prepare(series.to_numpy())
    fitted = model._fit(ctx, 100, 400, None, seed=0)  # rolling window 100..399
    a = fitted.filter(ctx, 100, 400, 520, None)
    b = fitted.filter(ctx, 100, 520, N, a[-1])
    ref = MarkovRegression(ctx.r[100:] * fitted.scale, k_regimes=2, switching_variance=True).filter(fitted.params)
    np.testing.assert_allclose(np.vstack([a, b]), ref.filtered_marginal_probabilities[300:][:, fitted.perm], atol=1e-12)


def test_garch_recursion_matches_arch(series):
    from arch import arch_model

    model = GarchVolatilityRegime()
    ctx = model._prepare(series.to_numpy())
    fitted = model._fit(ctx, 0, 400, None, seed=0)
    y = ctx.r[:400] * fitted.scale
    res = arch_model(y, mean="Constant", vol="GARCH", p=1, q=1, rescale=False).fit(disp="off")
    np.testing.assert_allclose([fitted.mu, fitted.omega, fitted.alpha, fitted.beta], res.params, rtol=1e-6)
    ours = np.exp(fitted.log_vol(y))  # sigma_{t+1|t}
    np.testing.assert_allclose(ours[:-1], res.conditional_volatility[1:], rtol=1e-10)
    fc = res.forecast(horizon=1, reindex=False).variance.to_numpy()[-1, 0]
    assert ours[-1] ** 2 == pytest.approx(fc, rel=1e-10)


def test_garch_thresholds_learned_on_training_window_only(series):
    model = GarchVolatilityRegime()
    ctx = model._prepare(series.to_numpy())
    a = model._fit(ctx, 0, 300, None, seed=0)
    ctx2 = model._prepare(np.concatenate([series.to_numpy()[:300], series.to_numpy()[300:] * 10]))
    b = model._fit(ctx2, 0, 300, None, seed=0)
    np.testing.assert_array_equal(a.thresholds, b.thresholds)
    assert a.bandwidth == b.bandwidth


def test_three_state_models_run(series):
    for method in ("hmm", "garch"):
        res = detect_regimes(series, method, n_states=3, min_train=300, refit_every=100)
        assert res.probabilities.shape[1] == 3
        assert res.n_states == 3


def test_make_regime_model_validation():
    assert isinstance(make_regime_model("garch"), GarchVolatilityRegime)
    with pytest.raises(ValueError, match="method"):
        make_regime_model("viterbi")
    with pytest.raises(TypeError, match="method"):
        make_regime_model(3)
    with pytest.raises(TypeError):
        make_regime_model("hmm", bogus=1)
    with pytest.raises(ValueError, match="dist"):
        GarchVolatilityRegime(dist="skewt")
    with pytest.raises(ValueError, match="scale"):
        MarkovSwitchingRegime(scale=-1.0)
    with pytest.raises(ValueError, match="scale"):
        GarchVolatilityRegime(scale="percent")


@pytest.mark.parametrize("method", list(MODELS))
def test_units_do_not_matter(method, series):
    """Returns 20x smaller (5-minute-like magnitudes): the HMM standardises, Markov and GARCH
    pick a power-of-ten scale on the first window, so the regimes are the same."""
    base = _run(MODELS[method], series)
    small = _run(MODELS[method], series * 0.05)
    assert small.converged
    assert np.mean(small.states == base.states) > 0.97
