"""Series shared by the analytics tests: embedded data and seeded simulations."""

from __future__ import annotations

import numpy as np
from arch.data import nasdaq, sp500

#: Log prices of the embedded daily series (5,031 bars each).
SP500 = np.log(sp500.load()["Adj Close"].to_numpy())
NASDAQ = np.log(nasdaq.load()["Adj Close"].to_numpy())


def random_walk(n: int, seed: int) -> np.ndarray:
    """A seeded Gaussian random walk of length ``n``."""
    return np.cumsum(np.random.default_rng(seed).standard_normal(n))


def ar1_levels(n: int, phi: float, seed: int) -> np.ndarray:
    """A seeded stationary AR(1) in levels (200 burn-in values dropped)."""
    e = np.random.default_rng(seed).standard_normal(n + 200)
    y = np.zeros_like(e)
    for t in range(1, e.size):
        y[t] = phi * y[t - 1] + e[t]
    return y[200:]
