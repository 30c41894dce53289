"""Is a backtest's edge distinguishable from luck? Sharpe-ratio significance.

Two complementary answers:

* :func:`sharpe_difference_ci` - a stationary block bootstrap (Politis & Romano 1994) of the
  annualised Sharpe-ratio difference between a strategy and its benchmark on the same dates. The
  *pairs* of returns are resampled jointly, so the cross-correlation of strategy and benchmark and
  the serial dependence within blocks are kept. The interval is the plain **percentile** interval
  of the bootstrap differences.
* :func:`probabilistic_sharpe_ratio` and :func:`deflated_sharpe_ratio` - Bailey & Lopez de Prado
  (2012, "The Sharpe Ratio Efficient Frontier"; 2014, "The Deflated Sharpe Ratio: Correcting for
  Selection Bias, Backtest Overfitting and Non-Normality", J. Portfolio Management 40(5)). The PSR
  is the probability that the true Sharpe ratio exceeds a benchmark given the sample's length,
  skewness and kurtosis; the DSR is the PSR against the Sharpe ratio one expects from the *best* of
  ``n_trials`` skill-less trials.

Units. The PSR/DSR formulas use the **per-period** (non-annualised) Sharpe ratio
``mean / std`` of the return series (``std`` with ``ddof=1``), the sample skewness and the sample
(non-excess, normal = 3) kurtosis. Arguments and results that are Sharpe ratios are per-period
unless their name ends in ``_annual``; ``trial_sharpe_variance`` is the variance of the
**annualised** Sharpe ratios of the trials (what one computes from a parameter grid) and is
divided by ``periods_per_year`` internally.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from analytics._stats_common import as_float_1d, require_finite
from analytics.errors import InsufficientDataError

__all__ = [
    "DeflatedSharpeResult",
    "ProbabilisticSharpeResult",
    "SharpeDifferenceCI",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "probabilistic_sharpe_ratio",
    "psr_from_moments",
    "sharpe_difference_ci",
]

#: Fewest return pairs (or returns) accepted: the block-length estimate and the moments need some.
MIN_OBSERVATIONS = 30

_EULER_GAMMA = float(np.euler_gamma)


@dataclass(frozen=True)
class SharpeDifferenceCI:
    """Bootstrap confidence interval of an annualised Sharpe-ratio difference.

    Attributes
    ----------
    sharpe_a : float
        Annualised Sharpe ratio of the strategy, ``mean / std(ddof=1) * sqrt(periods_per_year)``.
    sharpe_b : float
        Annualised Sharpe ratio of the benchmark, same definition.
    difference : float
        ``sharpe_a - sharpe_b`` on the observed sample.
    ci_low, ci_high : float
        Percentile interval of the bootstrap differences at ``confidence``
        (the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles).
    p_value : float
        One-sided bootstrap p-value of "difference <= 0":
        ``(1 + #{bootstrap difference <= 0}) / (reps + 1)``. It is the percentile interval's own
        p-value: ``ci_low > 0`` at ``confidence`` goes with a p-value below about
        ``(1 - confidence) / 2``.
    confidence : float
        Coverage of the interval.
    block_length : float
        Expected block length of the stationary bootstrap (periods).
    reps : int
        Bootstrap replications.
    n : int
        Return pairs used.
    """

    sharpe_a: float
    sharpe_b: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    confidence: float
    block_length: float
    reps: int
    n: int


@dataclass(frozen=True)
class ProbabilisticSharpeResult:
    """Probabilistic Sharpe ratio of one return series.

    Attributes
    ----------
    psr : float
        ``P(true Sharpe > benchmark_sr)``, in [0, 1].
    z : float
        The standard-normal statistic whose CDF is ``psr``.
    sharpe : float
        Observed per-period Sharpe ratio ``mean / std(ddof=1)``.
    sharpe_annual : float
        ``sharpe * sqrt(periods_per_year)``.
    benchmark_sr : float
        The benchmark Sharpe ratio, per period.
    skewness : float
        Sample skewness of the returns (biased estimator, as in the paper).
    kurtosis : float
        Sample kurtosis of the returns, non-excess (3 for a normal distribution).
    n : int
        Number of returns.
    """

    psr: float
    z: float
    sharpe: float
    sharpe_annual: float
    benchmark_sr: float
    skewness: float
    kurtosis: float
    n: int


@dataclass(frozen=True)
class DeflatedSharpeResult:
    """Deflated Sharpe ratio of the selected strategy of ``n_trials``.

    Attributes
    ----------
    dsr : float
        PSR of the returns against ``sr0``, in [0, 1].
    sr0 : float
        Expected maximum per-period Sharpe ratio of ``n_trials`` skill-less trials.
    sr0_annual : float
        ``sr0 * sqrt(periods_per_year)``.
    n_trials : int
        Number of independent trials (policies and parameter sets) tried.
    trial_sharpe_variance : float
        Variance of the trials' annualised Sharpe ratios, as given.
    psr : ProbabilisticSharpeResult
        The PSR against ``sr0`` (``psr.psr == dsr``).
    """

    dsr: float
    sr0: float
    sr0_annual: float
    n_trials: int
    trial_sharpe_variance: float
    psr: ProbabilisticSharpeResult


def _check_periods(periods_per_year: float) -> float:
    p = float(periods_per_year)
    if not (np.isfinite(p) and p > 0):
        raise ValueError(f"periods_per_year must be positive and finite, got {periods_per_year!r}")
    return p


def _returns(x: Any, name: str) -> np.ndarray:
    arr, _ = as_float_1d(x, name)
    require_finite(arr, name)
    if arr.size < MIN_OBSERVATIONS:
        raise InsufficientDataError(f"{name} needs at least {MIN_OBSERVATIONS} returns, got {arr.size}")
    if np.ptp(arr) == 0.0:
        raise InsufficientDataError(f"{name} is constant: its Sharpe ratio is undefined")
    return arr


def _paired(strategy: Any, benchmark: Any) -> tuple[np.ndarray, np.ndarray]:
    a, ia = as_float_1d(strategy, "strategy")
    b, ib = as_float_1d(benchmark, "benchmark")
    if a.size != b.size:
        raise ValueError(f"strategy and benchmark must cover the same dates: {a.size} vs {b.size} returns")
    if ia is not None and ib is not None and not ia.equals(ib):
        raise ValueError("strategy and benchmark have different indexes: align them on the same dates first")
    for arr, name in ((a, "strategy"), (b, "benchmark")):
        require_finite(arr, name)
    if a.size < MIN_OBSERVATIONS:
        raise InsufficientDataError(f"need at least {MIN_OBSERVATIONS} return pairs, got {a.size}")
    for arr, name in ((a, "strategy"), (b, "benchmark")):
        if np.ptp(arr) == 0.0:
            raise InsufficientDataError(f"{name} is constant: its Sharpe ratio is undefined")
    return a, b


def _sharpe_columns(x: np.ndarray) -> np.ndarray:
    """Per-period Sharpe ratio of each column (``ddof=1``); NaN where a column is constant."""
    sd = x.std(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sd > 0, x.mean(axis=0) / sd, np.nan)


def sharpe_difference_ci(
    strategy: Any,
    benchmark: Any,
    *,
    periods_per_year: float = 252,
    confidence: float = 0.95,
    reps: int = 2000,
    block: float | None = None,
    seed: int = 0,
) -> SharpeDifferenceCI:
    """Stationary-block-bootstrap interval of ``Sharpe(strategy) - Sharpe(benchmark)``.

    The pairs ``(strategy[t], benchmark[t])`` are resampled jointly with
    :class:`arch.bootstrap.StationaryBootstrap` (Politis & Romano 1994: blocks of geometric
    length with mean ``block``, wrapping around the end). Each replication's annualised Sharpe
    difference is computed; the interval is the **percentile** interval of those differences
    (no bias correction, no studentisation).

    Parameters
    ----------
    strategy, benchmark : array-like, shape (n,)
        Simple per-period returns on the same dates. Two pandas Series must have equal indexes.
    periods_per_year : float, default 252
        Annualisation factor of the Sharpe ratios (the interval scales with its square root).
    confidence : float, default 0.95
        Coverage of the interval, in (0, 1).
    reps : int, default 2000
        Bootstrap replications.
    block : float, optional
        Expected block length in periods. Default: the stationary-bootstrap length of
        :func:`arch.bootstrap.optimal_block_length` (Politis & White 2004, Patton et al. 2009)
        of the difference series ``strategy - benchmark``, floored at 1.
    seed : int, default 0
        Seed of the bootstrap's generator: the same inputs and seed give the same interval.

    Returns
    -------
    SharpeDifferenceCI

    Raises
    ------
    ValueError
        Different lengths or indexes, bad ``confidence``/``reps``/``block``/``periods_per_year``.
    InsufficientDataError
        NaN/inf returns, fewer than ``MIN_OBSERVATIONS`` pairs, a constant series, or a
        bootstrap resample in which a series is constant.
    """
    from arch.bootstrap import StationaryBootstrap, optimal_block_length

    ppy = _check_periods(periods_per_year)
    if not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if int(reps) != reps or reps < 100:
        raise ValueError(f"reps must be an integer >= 100, got {reps!r}")
    reps = int(reps)
    a, b = _paired(strategy, benchmark)
    n = a.size
    if block is None:
        diff = a - b
        length = float(optimal_block_length(diff)["stationary"].iloc[0]) if np.std(diff) > 0 else 1.0
        block_length = max(1.0, length) if np.isfinite(length) else 1.0
    else:
        block_length = float(block)
        if not (np.isfinite(block_length) and 1.0 <= block_length <= n):
            raise ValueError(f"block must be in [1, n={n}], got {block!r}")
    pairs = np.column_stack([a, b])
    scale = np.sqrt(ppy)
    sr = _sharpe_columns(pairs) * scale
    boot = StationaryBootstrap(block_length, pairs, seed=np.random.default_rng(seed))
    diffs = np.empty(reps)
    for i, (pos, _) in enumerate(boot.bootstrap(reps)):
        s = _sharpe_columns(pos[0])
        diffs[i] = (s[0] - s[1]) * scale
    bad = int(np.count_nonzero(~np.isfinite(diffs)))
    if bad:
        raise InsufficientDataError(
            f"{bad} of {reps} bootstrap resamples had a constant series (undefined Sharpe ratio); "
            "the series is too short or too often flat for this test"
        )
    alpha = 1.0 - float(confidence)
    lo, hi = np.quantile(diffs, [alpha / 2.0, 1.0 - alpha / 2.0])
    p_value = (1.0 + np.count_nonzero(diffs <= 0.0)) / (reps + 1.0)
    return SharpeDifferenceCI(
        sharpe_a=float(sr[0]),
        sharpe_b=float(sr[1]),
        difference=float(sr[0] - sr[1]),
        ci_low=float(lo),
        ci_high=float(hi),
        p_value=float(p_value),
        confidence=float(confidence),
        block_length=block_length,
        reps=reps,
        n=int(n),
    )


def psr_from_moments(
    sharpe: float,
    n: int,
    skewness: float = 0.0,
    kurtosis: float = 3.0,
    benchmark_sr: float = 0.0,
) -> float:
    """The probabilistic Sharpe ratio from summary statistics.

    ``PSR = Phi((SR - SR*) sqrt(n - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2))`` with ``SR`` and
    ``SR*`` per-period Sharpe ratios, ``g3`` the skewness and ``g4`` the non-excess kurtosis
    (Bailey & Lopez de Prado 2012, eq. for the PSR; 2014, eq. 2 of the DSR).

    Parameters
    ----------
    sharpe : float
        Observed per-period (non-annualised) Sharpe ratio.
    n : int
        Number of returns the Sharpe ratio was estimated from (>= 2).
    skewness : float, default 0
        Skewness of the returns.
    kurtosis : float, default 3
        Non-excess kurtosis of the returns (3 for a normal distribution).
    benchmark_sr : float, default 0
        Benchmark per-period Sharpe ratio ``SR*``.

    Returns
    -------
    float
        The PSR, in [0, 1].

    Raises
    ------
    ValueError
        ``n < 2``, non-finite inputs, or a non-positive variance term (moments that no sample
        can have: a sample's kurtosis is at least ``1 + skewness**2``).
    """
    return float(stats.norm.cdf(_psr_z(sharpe, n, skewness, kurtosis, benchmark_sr)))


def _psr_z(sharpe: float, n: int, skewness: float, kurtosis: float, benchmark_sr: float) -> float:
    values = (sharpe, skewness, kurtosis, benchmark_sr)
    if not all(np.isfinite(v) for v in values):
        raise ValueError("sharpe, skewness, kurtosis and benchmark_sr must be finite")
    if int(n) != n or n < 2:
        raise ValueError(f"n must be an integer >= 2, got {n!r}")
    var_term = 1.0 - skewness * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if not var_term > 0:
        raise ValueError(f"the Sharpe-ratio variance term is {var_term:.4g} <= 0: inconsistent moments")
    return float((sharpe - benchmark_sr) * np.sqrt(n - 1.0) / np.sqrt(var_term))


def probabilistic_sharpe_ratio(
    returns: Any,
    benchmark_sr: float = 0.0,
    *,
    periods_per_year: float = 252,
    annualised_benchmark: bool = False,
) -> ProbabilisticSharpeResult:
    """Probability that the true Sharpe ratio of ``returns`` exceeds ``benchmark_sr``.

    Bailey & Lopez de Prado (2012): the observed per-period Sharpe ratio ``SR = mean / std``
    (``ddof=1``) is approximately normal with variance ``(1 - g3 SR + (g4 - 1)/4 SR^2) / (n - 1)``
    under non-normal iid returns (sample skewness ``g3``, sample non-excess kurtosis ``g4``), so
    ``PSR = Phi((SR - SR*) sqrt(n - 1) / sqrt(1 - g3 SR + (g4 - 1)/4 SR^2))``. Serial dependence
    is not modelled (use :func:`sharpe_difference_ci` for that).

    Parameters
    ----------
    returns : array-like, shape (n,)
        Per-period returns (finite, at least ``MIN_OBSERVATIONS``).
    benchmark_sr : float, default 0
        ``SR*``: per-period unless ``annualised_benchmark`` is True.
    periods_per_year : float, default 252
        Used for ``sharpe_annual`` and to convert an annualised benchmark.
    annualised_benchmark : bool, default False
        ``benchmark_sr`` is annualised: divide it by ``sqrt(periods_per_year)``.

    Returns
    -------
    ProbabilisticSharpeResult

    Raises
    ------
    InsufficientDataError
        NaN/inf returns, too few returns, or a constant series.
    """
    ppy = _check_periods(periods_per_year)
    r = _returns(returns, "returns")
    sr_star = float(benchmark_sr) / np.sqrt(ppy) if annualised_benchmark else float(benchmark_sr)
    sharpe = float(r.mean() / r.std(ddof=1))
    skew = float(stats.skew(r))
    kurt = float(stats.kurtosis(r, fisher=False))
    z = _psr_z(sharpe, r.size, skew, kurt, sr_star)
    return ProbabilisticSharpeResult(
        psr=float(stats.norm.cdf(z)),
        z=z,
        sharpe=sharpe,
        sharpe_annual=sharpe * float(np.sqrt(ppy)),
        benchmark_sr=sr_star,
        skewness=skew,
        kurtosis=kurt,
        n=int(r.size),
    )


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """Expected maximum Sharpe ratio of ``n_trials`` independent skill-less trials.

    ``SR0 = sqrt(V) ((1 - gamma) Z^-1(1 - 1/N) + gamma Z^-1(1 - 1/(N e)))`` with ``gamma`` the
    Euler-Mascheroni constant and ``Z^-1`` the standard-normal quantile (Bailey & Lopez de Prado
    2014, the "False Strategy" theorem). ``SR0`` is in the units of ``sqrt(V)``; ``n_trials = 1``
    gives 0.

    Parameters
    ----------
    n_trials : int
        Number of independent trials ``N`` (>= 1).
    sharpe_variance : float
        Variance ``V`` of the trials' Sharpe ratios (>= 0).

    Returns
    -------
    float
    """
    if int(n_trials) != n_trials or n_trials < 1:
        raise ValueError(f"n_trials must be an integer >= 1, got {n_trials!r}")
    v = float(sharpe_variance)
    if not (np.isfinite(v) and v >= 0):
        raise ValueError(f"sharpe_variance must be finite and >= 0, got {sharpe_variance!r}")
    if n_trials == 1:
        return 0.0
    n = float(n_trials)
    q1 = stats.norm.ppf(1.0 - 1.0 / n)
    q2 = stats.norm.ppf(1.0 - 1.0 / (n * np.e))
    return float(np.sqrt(v) * ((1.0 - _EULER_GAMMA) * q1 + _EULER_GAMMA * q2))


def deflated_sharpe_ratio(
    returns: Any,
    n_trials: int,
    trial_sharpe_variance: float,
    *,
    periods_per_year: float = 252,
) -> DeflatedSharpeResult:
    """Deflated Sharpe ratio (Bailey & Lopez de Prado 2014).

    The PSR of ``returns`` against ``SR0``, the Sharpe ratio the best of ``n_trials``
    independent trials with no skill is expected to reach (:func:`expected_max_sharpe`). Count
    every policy and parameter set tried before this one was chosen; correlated trials count
    for fewer effective ones.

    Parameters
    ----------
    returns : array-like, shape (n,)
        Per-period returns of the selected strategy.
    n_trials : int
        Number of trials ``N`` (>= 1); 1 gives ``SR0 = 0`` and the DSR equals the PSR against 0.
    trial_sharpe_variance : float
        Variance across the trials of their **annualised** Sharpe ratios; divided by
        ``periods_per_year`` to get the per-period variance used in the formula.
    periods_per_year : float, default 252

    Returns
    -------
    DeflatedSharpeResult

    Raises
    ------
    ValueError
        Bad ``n_trials``, ``trial_sharpe_variance`` or ``periods_per_year``.
    InsufficientDataError
        NaN/inf returns, too few returns, or a constant series.
    """
    ppy = _check_periods(periods_per_year)
    sr0 = expected_max_sharpe(n_trials, float(trial_sharpe_variance) / ppy)
    psr = probabilistic_sharpe_ratio(returns, sr0, periods_per_year=ppy)
    return DeflatedSharpeResult(
        dsr=psr.psr,
        sr0=sr0,
        sr0_annual=sr0 * float(np.sqrt(ppy)),
        n_trials=int(n_trials),
        trial_sharpe_variance=float(trial_sharpe_variance),
        psr=psr,
    )
