"""The statistical jump model regime method (analytics._regime_jump).

References: the jumpmodels package (Shu, Yu and Mulvey) for the dynamic programme, the online
assignment and the fitted objective; pandas for the EWMA features; the simulated 2-state
series of test_regime_sim for accuracy.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from jumpmodels.jump import JumpModel, do_E_step, dp

from analytics._regime_common import walk_forward_regimes
from analytics._regime_jump import (
    JumpModelRegime,
    _coordinate_descent,
    _kmeans_pp,
    _online_states,
    _strategy_sharpe,
    _viterbi,
    jump_features,
)
from analytics.errors import EstimationWarning, InsufficientDataError
from tests.analytics.test_regime_sim import MU2, P2, SIGMA2, balanced_accuracy, simulate


def _run(r, model=None, **kw):
    kw.setdefault("min_train", 500)
    kw.setdefault("refit_every", 63)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EstimationWarning)
        return walk_forward_regimes(r, JumpModelRegime() if model is None else model, **kw)


# -- the dynamic programme against jumpmodels ---------------------------------------------


@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize("penalty", [0.3, 1.5, 6.0])
def test_viterbi_matches_jumpmodels_dp(k, penalty):
    rng = np.random.default_rng([k, int(penalty * 10)])
    loss = rng.random((400, k)) * 3.0
    ref_path, ref_val = dp(loss, penalty * (1.0 - np.eye(k)))
    path, val = _viterbi(loss, penalty)
    assert np.array_equal(path, ref_path)
    assert val == pytest.approx(ref_val, rel=1e-12)
    # The path switches: the test is not the trivial one-state case.
    assert 0 < np.count_nonzero(np.diff(path)) < 399


@pytest.mark.parametrize("k", [2, 3])
def test_online_states_match_jumpmodels_value_matrix(k):
    rng = np.random.default_rng(7 + k)
    loss = rng.random((500, k)) * 2.0
    values = dp(loss, 1.0 * (1.0 - np.eye(k)), return_value_mx=True)
    online = _online_states(loss, 1.0)
    assert np.array_equal(online, values.argmin(axis=1))
    # Online assignment differs from the smoothed (Viterbi) path somewhere: it is causal.
    assert not np.array_equal(online, _viterbi(loss, 1.0)[0])


def test_filter_is_jumpmodels_online_prediction():
    """The fitted model's filter equals jumpmodels' online E step (``predict_online``) on its centres."""
    r, _ = simulate(MU2, SIGMA2, P2, 1500, seed=9)
    model = JumpModelRegime(jump_penalty=5.0)
    ctx = model._prepare(r.to_numpy())
    fitted = model._fit(ctx, 0, 1000, None, seed=1)
    z = fitted.standardise(ctx.x[:1500])
    ref = do_E_step(z, fitted.centres, 5.0 * (1.0 - np.eye(2)), return_value_mx=True).argmin(axis=1)
    probs = fitted.filter(ctx, 0, 1000, 1500, None)
    np.testing.assert_array_equal(probs.argmax(axis=1), ref[1000:])
    assert 0 < ref[1000:].mean() < 1


def test_features_match_pandas_ewm():
    r = pd.Series(np.random.default_rng(3).normal(0.0003, 0.01, 600))
    x = jump_features(r.to_numpy(), (("ret", 5.0), ("log_dd", 10.0), ("sortino", 20.0)))
    dd10 = np.sqrt(r.clip(upper=0.0).pow(2).ewm(halflife=10.0).mean())
    dd20 = np.sqrt(r.clip(upper=0.0).pow(2).ewm(halflife=20.0).mean())
    np.testing.assert_allclose(x[:, 0], r.ewm(halflife=5.0).mean(), rtol=1e-9, atol=1e-15)
    # Bar 0 is positive here, so d_0 = 0 and the floor applies; compare from bar 1.
    np.testing.assert_allclose(x[5:, 1], np.log(dd10)[5:], rtol=1e-9)
    np.testing.assert_allclose(x[5:, 2], (r.ewm(halflife=20.0).mean() / dd20)[5:], rtol=1e-9)


def test_fit_reaches_the_jumpmodels_optimum():
    r, _ = simulate(MU2, SIGMA2, P2, 1500, seed=4)
    model = JumpModelRegime()
    x = model._prepare(r.to_numpy()).x
    z = np.clip((x - x.mean(axis=0)) / x.std(axis=0), -3.0, 3.0)
    rng = np.random.default_rng(0)
    ours = min((_coordinate_descent(z, _kmeans_pp(z, 2, rng), 10.0, 100, 1e-8) for _ in range(10)),
               key=lambda c: c.objective)
    ref = JumpModel(n_components=2, jump_penalty=10.0, n_init=10, random_state=0).fit(z)
    assert ours.objective == pytest.approx(ref.val_, rel=1e-9)
    labels = np.asarray(ref.labels_)
    assert np.array_equal(ours.path, labels) or np.array_equal(ours.path, 1 - labels)
    assert 0 < ours.path.mean() < 1


def test_strategy_sharpe_hand_computed():
    r = np.log1p(np.array([0.01, -0.02, 0.03, 0.01, -0.01, 0.02]))
    invested = np.array([True, True, False, True, True, True])
    # Positions over bars 2..5: signals of bars 0..3 -> 1, 1, 0, 1; switches at bars 4 and 5.
    ret = np.array([0.03, 0.01, 0.0, 0.02]) - 0.001 * np.array([0, 0, 1, 1])
    assert _strategy_sharpe(r, invested, 0.001) == pytest.approx(ret.mean() / ret.std(), rel=1e-12)


# -- the walk-forward method ----------------------------------------------------------------


def test_result_structure_and_one_hot_probabilities():
    r, _ = simulate(MU2, SIGMA2, P2, 1200, seed=1)
    res = _run(r)
    assert res.method == "jump"
    p = np.asarray(res.probabilities)
    assert set(np.unique(p)) == {0.0, 1.0}
    np.testing.assert_array_equal(p.sum(axis=1), 1.0)
    np.testing.assert_array_equal(res.states, p.argmax(axis=1))
    for f in res.fits:
        assert np.all(np.diff(f.state_vols) >= 0)  # canonical order: volatility ascending
        np.testing.assert_allclose(np.asarray(f.transition_matrix).sum(axis=1), 1.0)
        assert f.state_labels[0] in ("calm", "bull") and f.state_labels[1] in ("bear", "high_volatility")


def test_penalty_is_chosen_from_the_grid_on_the_training_window():
    r, _ = simulate(MU2, SIGMA2, P2, 1500, seed=2)
    cache: dict = {}
    model = JumpModelRegime(select_every=126)
    _run(r, model, refit_every=63, fit_cache=cache)
    fitted = [v for v in cache.values() if hasattr(v, "jump_penalty")]
    assert len(fitted) == len(range(500, 1500, 63))
    chosen = {f.selected_at for f in fitted}
    # Choices at bars 500, 626, 752, ... (every second quarterly refit), never after the fit's end.
    assert chosen == set(range(500, 1500, 126))
    for f in fitted:
        assert f.jump_penalty in model.penalty_grid
        assert len(f.validation_sharpes) == len(model.penalty_grid)
        assert f.jump_penalty == model.penalty_grid[int(np.argmax(f.validation_sharpes))]


@pytest.mark.parametrize("cut", [1300, 1357])
def test_prefix_invariance(cut):
    r, _ = simulate(MU2, SIGMA2, P2, 2000, seed=5)
    full = _run(r)
    part = _run(r.iloc[:cut])
    n = len(part.dates)
    np.testing.assert_array_equal(np.asarray(full.probabilities)[:n], part.probabilities)
    np.testing.assert_array_equal(np.asarray(full.persistent_states)[:n], part.persistent_states)
    np.testing.assert_array_equal(np.asarray(full.labels)[:n], part.labels)


def test_deterministic_for_a_seed():
    r, _ = simulate(MU2, SIGMA2, P2, 1400, seed=6)
    a = _run(r, seed=3)
    b = _run(r, seed=3)
    np.testing.assert_array_equal(a.probabilities, b.probabilities)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert [f.loglik for f in a.fits] == [f.loglik for f in b.fits]


def test_fixed_penalty_is_used_as_given():
    r, _ = simulate(MU2, SIGMA2, P2, 1200, seed=8)
    cache: dict = {}
    _run(r, JumpModelRegime(jump_penalty=5.0), fit_cache=cache)
    fitted = [v for v in cache.values() if hasattr(v, "jump_penalty")]
    assert fitted and all(f.jump_penalty == 5.0 and f.validation_sharpes == () for f in fitted)


@pytest.mark.slow
def test_two_state_simulation_balanced_accuracy():
    """T = 2000, walk-forward from bar 500, quarterly refits, scored on bars 500..1999.

    Measured (10 seeds, seed 0): mean 0.796 filtered (min 0.670), 0.766 with persistence;
    with a fixed penalty of 5 (next test), 0.858 filtered (min 0.658). The simulated regimes
    differ mostly in volatility, which the Sortino-type features of Shu, Yu and Mulvey see
    late, and the penalty is chosen for the 0/1 strategy's Sharpe, not for accuracy; the HMM
    reaches >= 0.90 here.
    """
    raw, held = [], []
    for seed in range(10):
        r, states = simulate(MU2, SIGMA2, P2, 2000, seed=seed)
        res = _run(r)
        raw.append(balanced_accuracy(states[500:], res.states))
        held.append(balanced_accuracy(states[500:], res.persistent_states))
    print(f"\njump 2-state: filtered {np.mean(raw):.3f} (min {np.min(raw):.3f}), with persistence {np.mean(held):.3f}")
    assert np.mean(raw) >= 0.75
    assert np.mean(held) >= 0.74


@pytest.mark.slow
def test_two_state_simulation_fixed_penalty():
    """Same protocol, penalty fixed at 5: measured mean 0.858 filtered, 0.829 with persistence."""
    raw = []
    for seed in range(10):
        r, states = simulate(MU2, SIGMA2, P2, 2000, seed=seed)
        res = _run(r, JumpModelRegime(jump_penalty=5.0))
        raw.append(balanced_accuracy(states[500:], res.states))
    assert np.mean(raw) >= 0.84


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "exc"),
    [
        ({"n_states": 1}, ValueError),
        ({"n_states": 5}, ValueError),
        ({"n_states": 2.0}, TypeError),
        ({"jump_penalty": -1.0}, ValueError),
        ({"jump_penalty": "big"}, TypeError),
        ({"penalty_grid": ()}, TypeError),
        ({"penalty_grid": [10.0]}, TypeError),
        ({"penalty_grid": (10.0, float("nan"))}, ValueError),
        ({"features": ()}, TypeError),
        ({"features": (("vol", 10.0),)}, ValueError),
        ({"features": (("ret", 0.0),)}, ValueError),
        ({"features": ("ret",)}, TypeError),
        ({"validation_share": 0.7}, ValueError),
        ({"n_init": 0}, ValueError),
        ({"select_every": 0}, ValueError),
        ({"cost_bps": -1.0}, ValueError),
    ],
)
def test_bad_hyper_parameters(kwargs, exc):
    with pytest.raises(exc):
        JumpModelRegime(**kwargs)


def test_bad_inputs():
    r, _ = simulate(MU2, SIGMA2, P2, 600, seed=0)
    with pytest.raises(InsufficientDataError):
        _run(r, min_train=600)
    with pytest.raises(ValueError, match="min_train"):
        _run(r, min_train=99)  # below the model's minimum (100: the weekly LT timeframe trains on 104)
    const = pd.Series(0.0, index=r.index)
    with pytest.raises(InsufficientDataError, match="constant"):
        _run(const)
    with pytest.raises(TypeError):
        _run(r.to_numpy())
    naive = r.copy()
    naive.index = naive.index.tz_localize(None)
    with pytest.raises(ValueError, match="timezone"):
        _run(naive)
