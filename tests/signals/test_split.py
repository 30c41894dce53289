"""Purged walk-forward splitter: purge and embargo, fold layout, sklearn compatibility."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signals import PurgedWalkForwardSplit


def _check_layout(sp: PurgedWalkForwardSplit, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    X = np.zeros((n, 1))
    splits = list(sp.split(X))
    gap = sp.horizon + sp.embargo
    expected_starts = [
        s for s in range(sp.min_train, n, sp.test_size)
        if (s - gap) - (0 if sp.max_train is None else max(0, s - gap - sp.max_train)) >= 20
    ]
    assert [int(te[0]) for _, te in splits] == expected_starts
    for train, test in splits:
        assert train.dtype.kind == "i" and test.dtype.kind == "i"
        # purge + embargo: every training label window ends before the fold starts
        assert (train + sp.horizon + sp.embargo < test[0]).all()
        assert int(train[-1]) == test[0] - gap - 1  # and nothing more is dropped
        np.testing.assert_array_equal(train, np.arange(train[0], train[-1] + 1))
        np.testing.assert_array_equal(test, np.arange(test[0], test[-1] + 1))
        assert len(test) == min(sp.test_size, n - test[0])
        if sp.max_train is None:
            assert train[0] == 0
        else:
            assert len(train) == min(sp.max_train, test[0] - gap)
        assert len(train) >= 20
    return splits


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(0, 600),
    min_train=st.integers(20, 300),
    test_size=st.integers(1, 120),
    horizon=st.integers(0, 30),
    embargo=st.integers(0, 30),
    max_train=st.one_of(st.none(), st.integers(20, 200)),
)
def test_split_properties(n, min_train, test_size, horizon, embargo, max_train):
    sp = PurgedWalkForwardSplit(min_train, test_size, horizon, embargo, max_train)
    splits = _check_layout(sp, n)
    # test folds are disjoint and, when no fold is skipped, tile [min_train, n) exactly
    tests = [te for _, te in splits]
    if tests:
        allt = np.concatenate(tests)
        assert np.unique(allt).size == allt.size
        assert allt.max() == n - 1
    if min_train - horizon - embargo >= 20 and max_train is None:
        covered = np.concatenate(tests) if tests else np.array([], dtype=int)
        np.testing.assert_array_equal(covered, np.arange(min_train, max(n, min_train)))
    # fold_starts lists every start; get_n_splits counts the folds split() yields
    assert len(sp.fold_starts(n)) == len(range(min_train, n, test_size))
    assert sp.get_n_splits(np.zeros(n)) == len(splits)


def test_expanding_and_rolling_train_lengths():
    n = 1000
    expanding = list(PurgedWalkForwardSplit(504, 126, 5, 5).split(np.zeros(n)))
    assert [len(tr) for tr, _ in expanding] == [494, 620, 746, 872]
    folds = [(int(te[0]), len(te)) for _, te in expanding]
    assert folds == [(504, 126), (630, 126), (756, 126), (882, 118)]
    rolling = list(PurgedWalkForwardSplit(504, 126, 5, 5, max_train=300).split(np.zeros(n)))
    assert [len(tr) for tr, _ in rolling] == [300, 300, 300, 300]
    assert [int(tr[0]) for tr, _ in rolling] == [194, 320, 446, 572]
    assert [int(tr[-1]) for tr, _ in rolling] == [493, 619, 745, 871]


def test_no_folds_when_history_is_too_short():
    sp = PurgedWalkForwardSplit(min_train=100, test_size=10)
    assert list(sp.split(np.zeros(100))) == []
    assert sp.get_n_splits(np.zeros(100)) == 0
    assert sp.get_n_splits(np.zeros(101)) == 1
    with pytest.raises(ValueError, match="X is needed"):
        sp.get_n_splits()


def test_get_n_splits_matches_yielded_when_no_fold_is_skipped():
    sp = PurgedWalkForwardSplit(min_train=504, test_size=126, horizon=1, embargo=2)
    X = np.zeros((2500, 3))
    assert sp.get_n_splits(X) == len(list(sp.split(X))) == 16


def test_get_n_splits_matches_yielded_when_a_fold_is_skipped():
    sp = PurgedWalkForwardSplit(min_train=20, test_size=30, horizon=5, embargo=5)
    X = np.zeros((200, 2))
    assert sp.get_n_splits(X) == len(list(sp.split(X)))


def test_skipped_fold_is_not_counted():
    sp = PurgedWalkForwardSplit(min_train=20, test_size=30, horizon=5, embargo=5)
    X = np.zeros((200, 2))
    assert len(sp.fold_starts(200)) == 6  # the first fold (start 20) has only 10 training rows
    assert sp.get_n_splits(X) == 5
    assert [int(te[0]) for _, te in sp.split(X)] == [50, 80, 110, 140, 170]


def test_works_as_sklearn_cv():
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    rng = np.random.default_rng(5)
    X = rng.standard_normal((400, 2))
    y = (X[:, 0] + 0.5 * rng.standard_normal(400) > 0).astype(int)
    sp = PurgedWalkForwardSplit(min_train=100, test_size=60, horizon=2, embargo=1)
    scores = cross_val_score(LogisticRegression(), X, y, cv=sp, scoring="roc_auc")
    assert len(scores) == sp.get_n_splits(X) == 5
    assert scores.min() > 0.85  # x0 truly predicts y: every fold learns it


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_train": 19},
        {"test_size": 0},
        {"horizon": -1},
        {"embargo": -1},
        {"max_train": 19},
    ],
)
def test_split_config_validation(kwargs):
    with pytest.raises(ValueError):
        PurgedWalkForwardSplit(**kwargs)
