"""Leakage guards: no edge on random walks, causal features, and a planted leak is caught.

The pipeline is the production one: ``build_features`` (default windows) -> ``make_labels``
(1-bar direction) -> ``walk_forward_predict`` with a purged, embargoed walk-forward split.
On a driftless random walk nothing is predictable, so any out-of-sample AUC away from 0.5
means information from the future got in. The planted-leak tests show the same harness
detects a leak when there is one.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest

from signals import (
    FeatureConfig,
    LabelConfig,
    LeakageError,
    ModelConfig,
    PurgedWalkForwardSplit,
    assert_prefix_invariant,
    build_features,
    make_labels,
    prefix_violations,
    walk_forward_predict,
)
from tests.signals._bars import random_walk_bars

N = 2500
SEEDS = range(10)
SPLIT = PurgedWalkForwardSplit(min_train=504, test_size=126, horizon=1, embargo=2)
LABELS = LabelConfig(horizon=1)
MODEL = ModelConfig()


@cache
def _case(seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    bars = random_walk_bars(N, seed)
    return bars, build_features(bars), make_labels(bars["close"], LABELS)


@cache
def _auc(seed: int) -> float:
    _, feats, labels = _case(seed)
    res = walk_forward_predict(feats, labels, SPLIT, MODEL)
    assert all("skipped" not in f for f in res.folds)
    assert res.metrics.n == N - SPLIT.min_train - 1  # every bar after min_train, last unlabelled
    return res.metrics.auc


def _leak(bars: pd.DataFrame, noise_sd: float = 0.01) -> pd.Series:
    """Next bar's log return plus noise: the label's own information, one bar early."""
    noise = np.random.default_rng(123).standard_normal(N)[: len(bars)] * noise_sd
    return np.log(bars["close"]).diff().shift(-1) + noise


# --- (a) no edge on random walks -----------------------------------------------------------


@pytest.mark.slow
def test_random_walk_auc_is_chance():
    aucs = np.array([_auc(s) for s in SEEDS])
    assert abs(aucs.mean() - 0.5) < 0.03, aucs
    # each seed scores ~2,000 forecasts: its AUC sd under no skill is ~0.013
    assert np.abs(aucs - 0.5).max() < 0.07, aucs


# --- (b) every feature of that pipeline is causal ------------------------------------------

# GARCH refits (defaults 504 / 252) forecast first at bars 505, 757, 1009: cut around them.
# Cuts 252 and 253 (= stats_window, + 1) are left out: they hit the defect pinned down in
# test_features.py::test_rolling_stats_edge_defect_is_what_the_xfail_says.
PIPELINE_CUTS = [64, 250, 254, 505, 506, 507, 758, 1009, 1010, 1099]


def test_pipeline_features_are_prefix_invariant():
    bars = random_walk_bars(1100, seed=0)
    full = build_features(bars)
    assert full["garch_vol"].iloc[505:].notna().all()
    assert full[["hurst", "vr_stat", "adf_stat"]].iloc[-1].notna().all()
    assert prefix_violations(build_features, bars, PIPELINE_CUTS) == {}
    part = build_features(bars.iloc[:758])
    pd.testing.assert_frame_equal(part, full.iloc[:758], check_exact=False, rtol=1e-9)


# --- (c) a planted leak is caught ---------------------------------------------------------

SMALL = FeatureConfig(stats_window=64, garch_min_train=150, garch_refit=100)
GUARD_CUTS = [100, 251, 252, 400]


def _guard_bars() -> pd.DataFrame:
    return random_walk_bars(450, seed=0)


def test_guard_is_quiet_without_a_leak():
    assert prefix_violations(lambda b: build_features(b, SMALL), _guard_bars(), GUARD_CUTS) == {}


def test_guard_names_the_planted_leak():
    def make(b: pd.DataFrame) -> pd.DataFrame:
        return build_features(b, SMALL).assign(leak=_leak(b))

    bars = _guard_bars()
    with pytest.raises(LeakageError, match=r"use data after their timestamp: leak \(cut 100\)$"):
        assert_prefix_invariant(make, bars, GUARD_CUTS)
    assert prefix_violations(make, bars, GUARD_CUTS) == {"leak": 100}


@pytest.mark.parametrize(
    "leaky",
    [
        # a centred window: bar t averages returns t-2 .. t+2
        lambda b: np.log(b["close"]).diff().rolling(5, center=True).mean(),
        # a z-score with the whole sample's mean and sd
        lambda b: (b["close"] - b["close"].mean()) / b["close"].std(),
        # back-filling the warm-up with the first value computed later
        lambda b: np.log(b["close"]).diff().rolling(150).std().bfill(),
    ],
    ids=["centred-rolling", "full-sample-zscore", "bfill"],
)
def test_guard_catches_subtle_leaks(leaky):
    def make(b: pd.DataFrame) -> pd.DataFrame:
        return build_features(b, SMALL).assign(subtle=leaky(b))

    with pytest.raises(LeakageError, match=r"subtle \(cut 100\)"):
        assert_prefix_invariant(make, _guard_bars(), GUARD_CUTS)
    assert set(prefix_violations(make, _guard_bars(), GUARD_CUTS)) == {"subtle"}


@pytest.mark.slow
def test_planted_leak_lifts_walk_forward_auc():
    bars, feats, labels = _case(0)
    leaky = feats.assign(leak=_leak(bars))
    res = walk_forward_predict(leaky, labels, SPLIT, MODEL)
    clean = _auc(0)
    assert res.metrics.auc > 0.6
    assert res.metrics.auc > clean + 0.1
    # the same noisy leak is nearly as good alone: the model found it
    scored = res.probability.notna() & labels.notna()
    from sklearn.metrics import roc_auc_score

    alone = roc_auc_score(labels[scored], leaky["leak"][scored])
    assert res.metrics.auc > alone - 0.05
