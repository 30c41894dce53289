"""Seeded price-path simulators with known character, for calibration checks.

Used by ``benchmarks/hurst_accuracy.py`` (which writes the size/power table in
``docs/statistics.md``) and by the tests (which assert it), so both measure the same thing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from analytics._fgn import simulate_fgn

_BURN_IN = 500  # AR paths start (almost exactly) in their stationary distribution


def _prices_from_returns(r: np.ndarray) -> np.ndarray:
    return np.concatenate([np.zeros((r.shape[0], 1)), np.cumsum(r, axis=1)], axis=1)


def random_walks(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian random walks: ``size`` paths of ``n`` log prices starting at 0."""
    return _prices_from_returns(rng.standard_normal((size, n - 1)))


def student_t_random_walks(df: float, n: int, size: int, rng: np.random.Generator
                           ) -> np.ndarray:
    """Random walks with iid Student-t(df) steps (heavy tails, no dependence)."""
    return _prices_from_returns(rng.standard_t(df, size=(size, n - 1)))


def garch_random_walks(n: int, size: int, rng: np.random.Generator, *, omega: float = 0.02,
                       alpha: float = 0.08, beta: float = 0.90) -> np.ndarray:
    """Random walks whose steps are GARCH(1,1) with Gaussian shocks (volatility clusters,
    returns uncorrelated): an equity-like martingale that is not iid."""
    steps = n - 1 + _BURN_IN
    z = rng.standard_normal((size, steps))
    r = np.empty((size, steps))
    var = np.full(size, omega / (1.0 - alpha - beta))
    for t in range(steps):
        r[:, t] = np.sqrt(var) * z[:, t]
        var = omega + alpha * r[:, t] ** 2 + beta * var
    return _prices_from_returns(r[:, _BURN_IN:])


def ar1_returns_paths(phi: float, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Log prices whose returns are a stationary Gaussian AR(1) with coefficient ``phi``."""
    e = rng.standard_normal((size, n - 1 + _BURN_IN))
    return _prices_from_returns(lfilter([1.0], [1.0, -phi], e, axis=1)[:, _BURN_IN:])


def ar1_level_paths(phi: float, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Log prices that are themselves a stationary AR(1) (mean reversion in levels)."""
    e = rng.standard_normal((size, n + _BURN_IN))
    return lfilter([1.0], [1.0, -phi], e, axis=1)[:, _BURN_IN:]


def fgn_paths(hurst: float, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Log prices whose returns are exact fractional Gaussian noise (fBm levels)."""
    return _prices_from_returns(simulate_fgn(n - 1, hurst, size=size, rng=rng))


@dataclass(frozen=True)
class Scenario:
    """A simulated process with the character a good classifier should report."""

    name: str
    expected: str  # "random_walk", "trending" or "mean_reverting"
    simulate: Callable[[int, int, np.random.Generator], np.ndarray]


def _ar_r(phi: float) -> Callable[[int, int, np.random.Generator], np.ndarray]:
    return lambda n, size, rng: ar1_returns_paths(phi, n, size, rng)


def _ar_l(phi: float) -> Callable[[int, int, np.random.Generator], np.ndarray]:
    return lambda n, size, rng: ar1_level_paths(phi, n, size, rng)


def _fgn(h: float) -> Callable[[int, int, np.random.Generator], np.ndarray]:
    return lambda n, size, rng: fgn_paths(h, n, size, rng)


CHARACTER_SCENARIOS: tuple[Scenario, ...] = (
    Scenario("Gaussian random walk", "random_walk", random_walks),
    Scenario("Student-t(4) random walk", "random_walk",
             lambda n, size, rng: student_t_random_walks(4.0, n, size, rng)),
    Scenario("GARCH(1,1) random walk", "random_walk", garch_random_walks),
    Scenario("fGn returns, H = 0.6", "trending", _fgn(0.6)),
    Scenario("fGn returns, H = 0.65", "trending", _fgn(0.65)),
    Scenario("fGn returns, H = 0.7", "trending", _fgn(0.7)),
    Scenario("AR(1) returns, phi = +0.1", "trending", _ar_r(0.1)),
    Scenario("AR(1) returns, phi = +0.2", "trending", _ar_r(0.2)),
    Scenario("AR(1) returns, phi = -0.1", "mean_reverting", _ar_r(-0.1)),
    Scenario("AR(1) returns, phi = -0.2", "mean_reverting", _ar_r(-0.2)),
    Scenario("AR(1) levels, phi = 0.90", "mean_reverting", _ar_l(0.90)),
    Scenario("AR(1) levels, phi = 0.95", "mean_reverting", _ar_l(0.95)),
    Scenario("AR(1) levels, phi = 0.97", "mean_reverting", _ar_l(0.97)),
)


def scenario_rng(index: int, n: int) -> np.random.Generator:
    """The generator used for scenario ``index`` at length ``n`` (docs and tests share it)."""
    return np.random.default_rng([20240611, index, n])


HURST_STUDY_VALUES = (0.3, 0.5, 0.7, 0.9)
HURST_STUDY_N = 1024
HURST_STUDY_REPLICATIONS = 200


def hurst_study_sample(hurst: float, n: int = HURST_STUDY_N,
                       size: int = HURST_STUDY_REPLICATIONS) -> np.ndarray:
    """The seeded fGn sample of the Hurst accuracy study (docs and tests share it)."""
    rng = np.random.default_rng([20240612, int(round(hurst * 1000)), n])
    return simulate_fgn(n, hurst, size=size, rng=rng)
