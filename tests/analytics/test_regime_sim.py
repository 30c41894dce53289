"""Seeded Markov-switching simulator shared by the regime tests, and checks of it."""

from __future__ import annotations

import numpy as np
import pandas as pd

# Two-state parameters of the validation brief (close to S&P 500 daily estimates).
MU2 = (0.000615, -0.000785)
SIGMA2 = (0.007759, 0.02140)
P2 = ((0.9979, 0.0021), (0.0120, 0.9880))

# Three states with volatilities about 2.3x apart (fixed before any model was run on them).
MU3 = (0.0006, 0.0001, -0.0015)
SIGMA3 = (0.006, 0.014, 0.035)
P3 = ((0.990, 0.009, 0.001), (0.012, 0.980, 0.008), (0.005, 0.025, 0.970))


def stationary(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    k = p.shape[0]
    a = np.vstack([(p - np.eye(k)).T, np.ones(k)])
    b = np.zeros(k + 1)
    b[-1] = 1.0
    pi = np.linalg.lstsq(a, b, rcond=None)[0]
    return pi / pi.sum()


def simulate(mu, sigma, p, n: int, seed: int, start: str = "2000-01-03") -> tuple[pd.Series, np.ndarray]:
    """Gaussian Markov-switching log returns on business days (UTC) and the true states.

    The first state is drawn from the stationary distribution.
    """
    rng = np.random.default_rng(seed)
    p = np.asarray(p, dtype=float)
    k = p.shape[0]
    cum = np.cumsum(p, axis=1)
    states = np.empty(n, dtype=int)
    states[0] = rng.choice(k, p=stationary(p))
    u = rng.random(n)
    for t in range(1, n):
        states[t] = min(int(np.searchsorted(cum[states[t - 1]], u[t])), k - 1)
    r = np.asarray(mu)[states] + np.asarray(sigma)[states] * rng.standard_normal(n)
    idx = pd.bdate_range(start, periods=n, tz="UTC")
    return pd.Series(r, index=idx, name="log_return"), states


def balanced_accuracy(truth: np.ndarray, pred: np.ndarray) -> float:
    """Mean recall over the classes present in ``truth``."""
    classes = np.unique(truth)
    return float(np.mean([np.mean(pred[truth == c] == c) for c in classes]))


def test_simulator_is_seeded():
    a, sa = simulate(MU2, SIGMA2, P2, 300, seed=3)
    b, sb = simulate(MU2, SIGMA2, P2, 300, seed=3)
    pd.testing.assert_series_equal(a, b)
    assert np.array_equal(sa, sb)
    assert a.index.tz is not None


def test_simulator_transition_frequencies():
    _, s = simulate(MU3, SIGMA3, P3, 60_000, seed=1)
    counts = np.zeros((3, 3))
    np.add.at(counts, (s[:-1], s[1:]), 1)
    est = counts / counts.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(est, np.asarray(P3), atol=0.01)
