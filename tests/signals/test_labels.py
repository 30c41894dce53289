"""Labels: direction values, triple-barrier paths, causality with delay h, config checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signals import LabelConfig, make_labels
from tests.signals._bars import random_walk_bars


def _closes(seed: int, n: int, tick: float | None = None) -> pd.Series:
    close = random_walk_bars(n, seed)["close"]
    if tick is not None:  # a coarse price grid makes ties (close[t+h] == close[t]) common
        close = (close / tick).round() * tick
    return close


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(2, 120),
    h=st.integers(1, 30),
    tick=st.sampled_from([None, 0.5, 2.0]),
)
def test_direction_labels(seed, n, h, tick):
    close = _closes(seed, n, tick)
    lab = make_labels(close, LabelConfig(horizon=h))
    assert lab.name == "label" and lab.index.equals(close.index)
    k = max(n - h, 0)
    expected = (close.shift(-h) > close).astype(float).to_numpy()[:k]
    np.testing.assert_array_equal(lab.to_numpy()[:k], expected)
    assert lab.iloc[k:].isna().all() and len(lab.iloc[k:]) == min(h, n)


def test_direction_ties_are_down():
    close = pd.Series([10.0, 10.0, 11.0, 11.0, 9.0, 9.0])
    lab = make_labels(close, LabelConfig(horizon=2))
    np.testing.assert_array_equal(lab.to_numpy(), [1.0, 1.0, 0.0, 0.0, np.nan, np.nan])


# --- triple barrier ------------------------------------------------------------------------

VOL_WINDOW, H = 5, 3
HISTORY = np.array([0.01, -0.012, 0.008, -0.01, 0.011, -0.009, 0.012, -0.008])
T = HISTORY.size  # the labelled bar: closes 0..T are history, T+1..T+H the future
WIDTH = np.std(HISTORY[-VOL_WINDOW:], ddof=1) * np.sqrt(H)  # barrier 1 * sigma_T * sqrt(h)


def _barrier_label(future_in_widths):
    rets = np.concatenate([HISTORY, np.asarray(future_in_widths) * WIDTH])
    close = pd.Series(100.0 * np.exp(np.concatenate([[0.0], np.cumsum(rets)])))
    cfg = LabelConfig(horizon=H, method="triple_barrier", barrier=1.0, vol_window=VOL_WINDOW)
    tb = make_labels(close, cfg)
    direction = make_labels(close, LabelConfig(horizon=H))
    return tb.iloc[T], direction.iloc[T], tb


@pytest.mark.parametrize(
    ("future", "label", "direction"),
    [
        ([1.2, -3.0, 0.0], 1.0, 0.0),  # upper touched first, ends down
        ([-1.2, 3.0, 0.0], 0.0, 1.0),  # lower touched first, ends up
        ([0.5, -2.0, 3.0], 0.0, 1.0),  # lower at step 2 before upper at step 3
        ([0.4, 0.3, 0.5], 1.0, 1.0),  # upper only on the vertical barrier bar
        ([0.3, -0.5, 0.4], 1.0, 1.0),  # neither: sign of the h-bar return (+0.2)
        ([-0.3, 0.5, -0.4], 0.0, 0.0),  # neither: sign of the h-bar return (-0.2)
        ([0.99, 0.0, -0.5], 1.0, 1.0),  # just inside the barrier: vertical decides
    ],
)
def test_triple_barrier_hand_built_paths(future, label, direction):
    got, dirn, _ = _barrier_label(future)
    assert got == label
    assert dirn == direction


def test_triple_barrier_barrier_scales_with_multiplier():
    # 1.2 widths touches barrier=1 but not barrier=2, where the vertical barrier decides
    rets = np.concatenate([HISTORY, np.array([1.2, -3.0, 0.0]) * WIDTH])
    close = pd.Series(100.0 * np.exp(np.concatenate([[0.0], np.cumsum(rets)])))
    wide = LabelConfig(horizon=H, method="triple_barrier", barrier=2.0, vol_window=VOL_WINDOW)
    assert make_labels(close, wide).iloc[T] == 0.0


def test_triple_barrier_nan_until_sigma_known_and_at_the_end():
    _, _, tb = _barrier_label([0.3, -0.5, 0.4])
    assert tb.iloc[:VOL_WINDOW].isna().all()  # the first return is bar 1: sigma from bar 5
    assert tb.iloc[VOL_WINDOW : T + 1].notna().all()
    assert tb.iloc[-H:].isna().all()


# --- causality -----------------------------------------------------------------------------


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    h=st.integers(1, 10),
    method=st.sampled_from(["direction", "triple_barrier"]),
    barrier=st.sampled_from([0.5, 1.0, 2.0]),
)
def test_label_needs_exactly_h_bars_ahead(seed, h, method, barrier):
    n = 70
    close = _closes(seed, n)
    cfg = LabelConfig(horizon=h, method=method, barrier=barrier, vol_window=10)
    full = make_labels(close, cfg).to_numpy()
    assert np.isfinite(full[20 : n - h]).all()
    for t in range(n - h):
        known = make_labels(close.iloc[: t + h + 1], cfg).to_numpy()
        np.testing.assert_array_equal(known[: t + 1], full[: t + 1])  # later bars: irrelevant
        assert np.isnan(known[t + 1 :]).all()
        early = make_labels(close.iloc[: t + h], cfg)
        assert np.isnan(early.iloc[t])  # one bar short: not yet known


@pytest.mark.parametrize(
    "kwargs",
    [
        {"horizon": 0},
        {"horizon": 253},
        {"method": "sign"},
        {"barrier": 0.0},
        {"barrier": -1.0},
        {"barrier": float("nan")},
        {"barrier": float("inf")},
        {"vol_window": 4},
    ],
)
def test_label_config_validation(kwargs):
    with pytest.raises(ValueError):
        LabelConfig(**kwargs)


@pytest.mark.parametrize("bad", [0.0, -5.0, np.nan, np.inf])
def test_bad_closes_raise(bad):
    close = pd.Series([10.0, 11.0, bad, 12.0])
    with pytest.raises(ValueError, match="finite and positive"):
        make_labels(close, LabelConfig(horizon=1))
