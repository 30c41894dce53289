"""The fast paths of the regime layer equal the implementations they replaced, exactly.

``apply_persistence`` is now a plain-Python loop and ``RegimeResult.label_probabilities`` a
single ``np.add.at``; the previous numpy versions are kept below as oracles and compared
bit for bit (ties, NaN rows, one state, an initial state, fits that filter no bar).
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest
from arch.data import sp500
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics import (
    REGIME_LABELS,
    PersistenceRule,
    RegimeResult,
    apply_persistence,
    detect_regimes,
)
from tests.analytics._series import SP500

# -- oracles: the previous implementations -----------------------------------------------------


def old_apply_persistence(p: np.ndarray, rule: PersistenceRule, initial_state: int | None = None) -> np.ndarray:
    n, k = p.shape
    out = np.empty(n, dtype=int)
    current = int(np.argmax(p[0])) if initial_state is None else initial_state
    challenger, run = -1, 0
    for t in range(n):
        row = p[t].copy()
        row[current] = -np.inf
        j = int(np.argmax(row))
        if p[t, j] >= rule.threshold:
            run = run + 1 if j == challenger else 1
            challenger = j
            if run >= rule.confirm_bars:
                current, challenger, run = j, -1, 0
        else:
            challenger, run = -1, 0
        out[t] = current
    return out


def old_label_probabilities(res: RegimeResult) -> np.ndarray:
    out = np.zeros((len(res.dates), len(REGIME_LABELS)))
    col = {lab: i for i, lab in enumerate(REGIME_LABELS)}
    for f_i, fit in enumerate(res.fits):
        rows = res.fit_index == f_i
        for s, lab in enumerate(fit.state_labels):
            out[rows, col[lab]] += res.probabilities[rows, s]
    return out


# -- apply_persistence ---------------------------------------------------------------------------

# Coarse values make ties between states (and with the threshold) common; NaN cells appear too.
COARSE = st.sampled_from([0.0, 0.1, 0.2, 0.25, 0.3, 0.5, 0.7, 0.75, 0.8, 0.9, 1.0, np.nan])
CELL = st.one_of(COARSE, st.floats(0.0, 1.0), st.floats(0.0, 1.0).map(lambda x: round(x, 1)))


@st.composite
def persistence_cases(draw: st.DrawFn) -> tuple[np.ndarray, PersistenceRule, int | None]:
    n = draw(st.integers(1, 80))
    k = draw(st.integers(1, 4))
    p = np.array(draw(st.lists(st.lists(CELL, min_size=k, max_size=k), min_size=n, max_size=n)), dtype=float)
    if draw(st.booleans()):  # rows normalised like filtered probabilities (NaN rows stay NaN)
        with np.errstate(invalid="ignore", divide="ignore"):
            p = p / p.sum(axis=1, keepdims=True)
        if draw(st.booleans()):
            p = np.round(p, 1)
    threshold = draw(st.one_of(st.sampled_from([0.1, 0.25, 0.5, 0.7, 0.8, 1.0]),
                               st.floats(0.0, 1.0, exclude_min=True)))
    rule = PersistenceRule(threshold=threshold, confirm_bars=draw(st.integers(1, 6)))
    initial = draw(st.one_of(st.none(), st.integers(0, k - 1)))
    return p, rule, initial


@settings(max_examples=600, deadline=None)
@given(case=persistence_cases())
def test_apply_persistence_equals_previous_implementation(case):
    p, rule, initial = case
    got = apply_persistence(p, rule, initial)
    want = old_apply_persistence(p, rule, initial)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(("p", "rule", "initial"), [
    # exact tie between two challengers: the first one is the challenger, as np.argmax picks it
    (np.array([[0.1, 0.45, 0.45]] * 3), PersistenceRule(0.45, 2), 0),
    # the tie alternates order: neither challenger is confirmed twice in a row
    (np.array([[0.0, 0.5, 0.5], [0.0, 0.5, 0.5], [0.0, 0.6, 0.4]]), PersistenceRule(0.5, 3), 0),
    # a NaN cell among the other states confirms nothing and resets the run
    (np.array([[0.1, 0.9], [0.1, 0.9], [0.1, np.nan], [0.1, 0.9], [0.1, 0.9]]), PersistenceRule(0.8, 2), 0),
    # NaN in the current state's own cell is ignored
    (np.array([[np.nan, 0.9], [np.nan, 0.9]]), PersistenceRule(0.8, 2), 0),
    # a NaN before a qualifying challenger: np.argmax stops at the NaN
    (np.array([[0.0, np.nan, 0.95]] * 4), PersistenceRule(0.8, 1), 0),
    # one state: nothing ever changes
    (np.array([[1.0], [0.2], [np.nan]]), PersistenceRule(0.5, 1), None),
    # an all-NaN first row: the default start is np.argmax of it (index 0)
    (np.array([[np.nan, np.nan], [0.0, 1.0]]), PersistenceRule(0.8, 1), None),
])
def test_apply_persistence_edge_cases(p, rule, initial):
    np.testing.assert_array_equal(apply_persistence(p, rule, initial), old_apply_persistence(p, rule, initial))


def test_apply_persistence_edge_cases_by_hand():
    # Values stated independently of both implementations.
    assert apply_persistence(np.array([[0.1, 0.45, 0.45]] * 3), PersistenceRule(0.45, 2), 0).tolist() == [0, 1, 1]
    nan_reset = np.array([[0.1, 0.9], [0.1, 0.9], [0.1, np.nan], [0.1, 0.9], [0.1, 0.9]])
    assert apply_persistence(nan_reset, PersistenceRule(0.8, 3), 0).tolist() == [0, 0, 0, 0, 0]
    assert apply_persistence(np.array([[0.0, np.nan, 0.95]] * 2), PersistenceRule(0.8, 1), 0).tolist() == [0, 0]
    assert apply_persistence(np.array([[1.0], [0.2], [np.nan]]), PersistenceRule(0.5, 1)).tolist() == [0, 0, 0]


# -- label_probabilities -------------------------------------------------------------------------


def _sp500_returns(n: int = 2500) -> pd.Series:
    dates = pd.DatetimeIndex(sp500.load().index).tz_localize("UTC")[1:]
    return pd.Series(np.diff(SP500), index=dates).iloc[:n]


def _simulated_returns(n: int = 700, seed: int = 17) -> pd.Series:
    rng = np.random.default_rng(seed)
    sigma = np.where((np.arange(n) // 90) % 2 == 0, 0.006, 0.022)
    mu = np.where((np.arange(n) // 90) % 2 == 0, 0.0008, -0.0015)
    return pd.Series(mu + sigma * rng.standard_normal(n), index=pd.bdate_range("2015-01-02", periods=n, tz="UTC"))


RUNS = {
    "hmm_sp500": lambda: detect_regimes(_sp500_returns(), "hmm", n_states=3, refit_every=126),
    "markov_sp500": lambda: detect_regimes(_sp500_returns(), "markov", n_states=2, refit_every=63),
    "garch_sp500": lambda: detect_regimes(_sp500_returns(), "garch", n_states=3, refit_every=126),
    "hmm_sim": lambda: detect_regimes(_simulated_returns(), "hmm", n_states=3, min_train=300, refit_every=50),
    "markov_sim": lambda: detect_regimes(_simulated_returns(), "markov", n_states=2, min_train=300, refit_every=50),
    "garch_sim": lambda: detect_regimes(_simulated_returns(), "garch", n_states=2, min_train=300, refit_every=50),
}


@pytest.fixture(scope="module", params=list(RUNS))
def result(request) -> RegimeResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a non-converged refit is irrelevant here
        return RUNS[request.param]()


def test_label_probabilities_equal_previous_implementation(result):
    got = result.label_probabilities()
    assert list(got.columns) == list(REGIME_LABELS)
    assert got.index.equals(result.dates)
    assert np.array_equal(got.to_numpy(), old_label_probabilities(result))
    np.testing.assert_allclose(got.to_numpy().sum(axis=1), 1.0, rtol=1e-12)


def test_the_runs_rename_states_between_fits(result):
    # Otherwise the comparison above would not exercise a column that changes with the fit.
    assert len(result.fits) >= 4
    assert len({fit.state_labels for fit in result.fits}) >= 2


def test_some_run_folds_two_states_into_one_label():
    # Two states with one label (e.g. ('calm', 'calm', 'high_volatility')) add into one column
    # of the same row: np.add.at must accumulate both (a buffered ``out[idx] += v`` keeps one).
    res = RUNS["garch_sp500"]()
    folded = [fit.state_labels for fit in res.fits if len(set(fit.state_labels)) < len(fit.state_labels)]
    assert folded
    assert np.array_equal(res.label_probabilities().to_numpy(), old_label_probabilities(res))


def test_label_probabilities_with_a_fit_that_filters_no_bar(result):
    # Re-point the bars of fit 1 to fit 2 (fit 1 then filters nothing) and mark a few bars with
    # fit numbers that name no fit (-1 and len(fits)): those rows are all zero in both versions.
    fi = np.array(result.fit_index)
    fi[fi == 1] = 2
    fi[:3] = -1
    fi[-2:] = len(result.fits)
    skipped = dataclasses.replace(result, fit_index=fi)
    got = skipped.label_probabilities().to_numpy()
    want = old_label_probabilities(skipped)
    assert np.array_equal(got, want)
    assert not got[:3].any() and not got[-2:].any()
    assert 1 not in set(fi.tolist())
    moved = np.flatnonzero(np.asarray(result.fit_index) == 1)
    assert moved.size and np.array_equal(got[moved], _by_fit(skipped, 2)[moved])


def _by_fit(res: RegimeResult, f_i: int) -> np.ndarray:
    """Label probabilities of every row under the labels of fit ``f_i`` (hand-written reference)."""
    out = np.zeros((len(res.dates), len(REGIME_LABELS)))
    for s, lab in enumerate(res.fits[f_i].state_labels):
        out[:, REGIME_LABELS.index(lab)] += res.probabilities[:, s]
    return out
