"""Market character (trending / mean-reverting / random walk), calibrated by simulation.

Three kinds of evidence are computed on a window of ``n`` log prices: the DFA Hurst
exponent of the returns, the heteroskedasticity-robust variance-ratio z at each horizon,
and the ADF t-statistic of the levels. Each statistic is standardised by its mean and
standard deviation over Gaussian random walks *of the same length*, giving ``u_hurst``,
``u_vr[q]`` and ``u_adf``, and they are combined into two one-sided scores:

* ``trend_score = max(u_hurst, max_q u_vr[q])`` - persistence shows as a high Hurst
  exponent or a variance ratio above one at some horizon;
* ``mean_reversion_score = max(-u_hurst, -min_q u_vr[q], -u_adf)`` - anti-persistence, a
  variance ratio below one, or a stationary level.

A side is declared only when its score exceeds the ``1 - alpha/2`` quantile of the same
score over the random walks, so the maximum over several statistics is paid for (the
calibration is of the maximum, not of each statistic) and at most about ``alpha`` of
random walks are mislabelled. Otherwise the answer is "random_walk". Fixed cut-offs such
as ``H > 0.5`` are not used: at n = 252 the DFA estimate on a random walk has a standard
deviation of about 0.07, so such a cut-off labels half of all random walks as trending.

Maxima were preferred to sums because the alternatives differ in where they show: an AR(1)
in returns moves the 2-bar variance ratio most, fGn moves every horizon and the Hurst
exponent, a stationary AR(1) level mostly the ADF statistic. Measured size and power are
in ``docs/statistics.md``.
"""

from __future__ import annotations

import functools
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from analytics._adf import _adf_batch, adf_default_maxlag, rolling_adf
from analytics._hurst import _estimate, hurst_scales, rolling_hurst
from analytics._stats_common import (
    REASON_OK,
    REASON_SINGULAR,
    ResultMixin,
    RollingResultMixin,
    as_float_1d,
    check_float,
    check_int,
    readonly,
    require_finite,
    require_not_constant,
)
from analytics._variance_ratio import (
    DEFAULT_VR_LAGS,
    _check_lags,
    _vr_batch,
    rolling_variance_ratio,
)
from analytics.errors import InsufficientDataError

__all__ = [
    "MarketCharacterResult",
    "RollingMarketCharacterResult",
    "market_character",
    "rolling_market_character",
    "TRENDING",
    "MEAN_REVERTING",
    "RANDOM_WALK",
    "UNDETERMINED",
]

TRENDING = "trending"
MEAN_REVERTING = "mean_reverting"
RANDOM_WALK = "random_walk"
UNDETERMINED = "undetermined"  # rolling output only: the window has no valid statistics

MIN_CHARACTER_NOBS = 100
DEFAULT_NULL_REPLICATIONS = 2000
_NULL_SEED = 0x52444B5F4E554C4C  # "RDK_NULL"
_ADF_REGRESSION: Literal["c"] = "c"
_ADF_AUTOLAG = "aic"


@dataclass(frozen=True, eq=False)
class MarketCharacterResult(ResultMixin):
    """Result of :func:`market_character`.

    Attributes
    ----------
    character : str
        "trending", "mean_reverting" or "random_walk".
    confidence : float
        For "trending"/"mean_reverting": one minus the random-walk p-value of that side's
        score (share of random walks with a less extreme score). For "random_walk": the
        two-sided random-walk p-value ``min(1, 2 min(p_trend, p_mr))`` - 1 when the sample
        is perfectly typical of a random walk, down to ``alpha`` at the decision boundary.
    pvalue_trending, pvalue_mean_reverting : float
        Monte Carlo p-values ``(1 + #{null >= score}) / (M + 1)`` of the two scores.
    trend_score, mean_reversion_score : float
        The combined standardised evidence: ``max(u_hurst, max_q u_vr[q])`` and
        ``max(-u_hurst, -min_q u_vr[q], -u_adf)``, each ``u`` standardised over random
        walks of the same length.
    hurst : float
        DFA Hurst exponent of the returns.
    vr_stat : ndarray, shape (k,)
        Robust variance-ratio z per horizon in ``vr_lags``.
    vr_lags : tuple of int
    adf_stat : float
        ADF t-statistic (constant, AIC lag selection).
    nobs : int
        Number of log prices.
    alpha : float
        Total rate at which random walks are labelled as not random walks.
    null_replications : int
        Random walks simulated at this ``nobs`` for the calibration.
    """

    character: str
    confidence: float
    pvalue_trending: float
    pvalue_mean_reverting: float
    trend_score: float
    mean_reversion_score: float
    hurst: float
    vr_stat: np.ndarray
    vr_lags: tuple[int, ...]
    adf_stat: float
    nobs: int
    alpha: float
    null_replications: int


@dataclass(frozen=True, eq=False)
class RollingMarketCharacterResult(RollingResultMixin):
    """Result of :func:`rolling_market_character`; one entry per bar (causal windows).

    Attributes
    ----------
    character : ndarray of str, shape (n,)
        As in :class:`MarketCharacterResult`, or "undetermined" where ``reason != "ok"``.
    confidence, pvalue_trending, pvalue_mean_reverting, trend_score,
    mean_reversion_score, hurst, adf_stat : ndarray, shape (n,)
    vr_stat : ndarray, shape (n, k)
        Robust variance-ratio z per horizon in ``vr_lags``.
    reason : ndarray of str, shape (n,)
    window : int
    alpha : float
    vr_lags : tuple of int
    null_replications : int
    index : pandas.Index or None
    """

    character: np.ndarray
    confidence: np.ndarray
    pvalue_trending: np.ndarray
    pvalue_mean_reverting: np.ndarray
    trend_score: np.ndarray
    mean_reversion_score: np.ndarray
    hurst: np.ndarray
    vr_stat: np.ndarray
    adf_stat: np.ndarray
    reason: np.ndarray
    window: int
    alpha: float
    vr_lags: tuple[int, ...]
    null_replications: int
    index: Any = field(default=None, repr=False)

    def _column_labels(self, field: str, k: int) -> list[str]:
        return [f"{field}_{q}" for q in self.vr_lags]


@dataclass(frozen=True)
class _Null:
    center: np.ndarray  # means of [hurst, VR z per horizon..., ADF] over random walks
    scale: np.ndarray  # their standard deviations
    trend: np.ndarray  # sorted null trend scores
    mean_reversion: np.ndarray  # sorted null mean-reversion scores


def _components(y: np.ndarray, lags: tuple[int, ...]) -> np.ndarray:
    """[hurst, VR z per horizon..., ADF stat] for each row of log prices y (B, n)."""
    b, n = y.shape
    scales = hurst_scales(n - 1, "dfa")
    h, _ = _estimate(np.diff(y, axis=1), scales, "dfa")
    _, _, zr = _vr_batch(y, lags, "c", True, True)
    adf = _adf_batch(y, adf_default_maxlag(n, _ADF_REGRESSION), _ADF_REGRESSION,
                     _ADF_AUTOLAG).stat
    return np.column_stack([h, zr, adf])


def _scores(comp: np.ndarray, null_center: np.ndarray, null_scale: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    u = (comp - null_center) / null_scale
    u_h, u_vr, u_adf = u[:, 0], u[:, 1:-1], u[:, -1]
    trend = np.maximum(u_h, u_vr.max(axis=1))
    mean_rev = np.maximum(np.maximum(-u_h, -u_vr.min(axis=1)), -u_adf)
    return trend, mean_rev


_NULL_FORMAT = "market-character-null-v1"


def _null(n: int, lags: tuple[int, ...], replications: int,
          store: MutableMapping[str, Any] | None = None) -> _Null:
    """The random-walk calibration for ``n`` prices: from this process, ``store``, or computed.

    ``store`` (e.g. the fit cache) keeps the tables between processes; they are a pure
    function of the arguments and the seed, so a stored table is the computed one.
    """
    if store is None:
        return _null_computed(n, lags, replications)
    key = f"{_NULL_FORMAT}|{_NULL_SEED}|{n}|{lags}|{replications}"
    found = store.get(key)
    if isinstance(found, _Null):
        return found
    null = _null_computed(n, lags, replications)
    store[key] = null
    return null


@functools.lru_cache(maxsize=16)
def _null_computed(n: int, lags: tuple[int, ...], replications: int) -> _Null:
    """Calibrate on ``replications`` Gaussian random walks of ``n`` prices (seeded, cached)."""
    rng = np.random.default_rng([_NULL_SEED, n, replications, *lags])
    comps = []
    chunk = max(1, 400_000 // n)
    for start in range(0, replications, chunk):
        m = min(chunk, replications - start)
        steps = rng.standard_normal((m, n - 1))
        y = np.concatenate([np.zeros((m, 1)), np.cumsum(steps, axis=1)], axis=1)
        comps.append(_components(y, lags))
    comp = np.concatenate(comps)
    comp = comp[np.all(np.isfinite(comp), axis=1)]
    center = comp.mean(axis=0)
    scale = comp.std(axis=0, ddof=1)
    trend, mr = _scores(comp, center, scale)
    return _Null(center=center, scale=scale, trend=np.sort(trend), mean_reversion=np.sort(mr))


def _upper_pvalue(sorted_null: np.ndarray, obs: np.ndarray) -> np.ndarray:
    m = sorted_null.size
    count = m - np.searchsorted(sorted_null, obs, side="left")  # null >= obs
    return np.where(np.isnan(obs), np.nan, (1.0 + count) / (m + 1.0))


def _classify(comp: np.ndarray, null: _Null, alpha: float) -> dict[str, np.ndarray]:
    trend, mr = _scores(comp, null.center, null.scale)
    p_t = _upper_pvalue(null.trend, trend)
    p_m = _upper_pvalue(null.mean_reversion, mr)
    side = alpha / 2.0
    is_t = (p_t <= side) & (p_t <= p_m)
    is_m = (p_m <= side) & ~is_t
    character = np.where(is_t, TRENDING, np.where(is_m, MEAN_REVERTING, RANDOM_WALK))
    confidence = np.where(
        is_t, 1.0 - p_t, np.where(is_m, 1.0 - p_m, np.minimum(1.0, 2.0 * np.minimum(p_t, p_m)))
    )
    bad = ~np.all(np.isfinite(comp), axis=1)
    character = np.where(bad, UNDETERMINED, character)
    confidence = np.where(bad, np.nan, confidence)
    return {"character": character, "confidence": confidence, "p_t": p_t, "p_m": p_m,
            "trend": trend, "mr": mr}


def _check_common(alpha: Any, lags: Any, replications: Any) -> tuple:
    alpha = check_float(alpha, "alpha", 0.0, 1.0)
    lags_t = _check_lags(lags)
    replications = check_int(replications, "null_replications", 200)
    if alpha / 2 < 1.0 / (replications + 1):
        raise ValueError(
            f"alpha={alpha} is too small for {replications} null replications; increase "
            "null_replications")
    return alpha, lags_t, replications


def market_character(
    log_prices: Any,
    *,
    alpha: float = 0.05,
    lags: Sequence[int] = DEFAULT_VR_LAGS,
    null_replications: int = DEFAULT_NULL_REPLICATIONS,
    calibration_cache: MutableMapping[str, Any] | None = None,
) -> MarketCharacterResult:
    """Classify a log-price series as trending, mean-reverting or a random walk.

    Combines the DFA Hurst exponent of the returns, the robust variance-ratio z statistics
    and the ADF statistic of the levels into a trend score and a mean-reversion score
    whose random-walk distributions at the same sample size are simulated (seeded, cached
    per ``n``), and declares a character only when a score exceeds its random-walk
    ``1 - alpha/2`` quantile. See the module notes for the exact scores.

    Parameters
    ----------
    log_prices : array_like, shape (n,)
        Log price levels, ``n >= 100``; finite, not constant.
    alpha : float, default 0.05
        Share of random walks that may be labelled "trending" or "mean_reverting"
        (``alpha/2`` per side).
    lags : sequence of int, default (2, 4, 8, 16)
        Variance-ratio horizons.
    null_replications : int, default 2000
        Random walks simulated for the calibration (first call per ``n`` pays the cost:
        about 0.2 s at n = 252 and 1 s at n = 1000).
    calibration_cache : mutable mapping, optional
        Keeps the calibration tables between processes (e.g. the fit cache): a table found
        there is used instead of being simulated again (it is the same table: the
        simulation is seeded), and a simulated one is stored.

    Returns
    -------
    MarketCharacterResult

    Raises
    ------
    InsufficientDataError
        Fewer than 100 prices, NaN/inf, constant prices, or a degenerate statistic.
    ValueError, TypeError
        Invalid arguments.

    Notes
    -----
    The null is a driftless Gaussian random walk. Real returns are heavy-tailed and
    volatility-clustered; the VR z* is robust to that, the Hurst and ADF components only
    approximately, so the false-alarm rate on real random-walk-like prices can exceed
    ``alpha``. Measured size and power are in ``docs/statistics.md``.
    """
    arr, _ = as_float_1d(log_prices, "log_prices")
    alpha, lags_t, replications = _check_common(alpha, lags, null_replications)
    require_finite(arr, "log_prices")
    if arr.size < MIN_CHARACTER_NOBS:
        raise InsufficientDataError(
            f"log_prices has {arr.size} observation(s); market character needs at least "
            f"{MIN_CHARACTER_NOBS}")
    require_not_constant(arr, "log_prices")
    if max(lags_t) + 2 > arr.size:
        raise InsufficientDataError(f"log_prices is too short for horizon {max(lags_t)}")
    comp = _components(arr[None, :], lags_t)
    if not np.all(np.isfinite(comp)):
        raise InsufficientDataError(
            "a component statistic is undefined for log_prices (degenerate returns)")
    null = _null(arr.size, lags_t, replications, calibration_cache)
    out = _classify(comp, null, alpha)
    return MarketCharacterResult(
        character=str(out["character"][0]),
        confidence=float(out["confidence"][0]),
        pvalue_trending=float(out["p_t"][0]),
        pvalue_mean_reverting=float(out["p_m"][0]),
        trend_score=float(out["trend"][0]),
        mean_reversion_score=float(out["mr"][0]),
        hurst=float(comp[0, 0]),
        vr_stat=readonly(comp[0, 1:-1]),
        vr_lags=lags_t,
        adf_stat=float(comp[0, -1]),
        nobs=int(arr.size),
        alpha=alpha,
        null_replications=replications,
    )


def rolling_market_character(
    log_prices: Any,
    window: int,
    *,
    alpha: float = 0.05,
    lags: Sequence[int] = DEFAULT_VR_LAGS,
    null_replications: int = DEFAULT_NULL_REPLICATIONS,
) -> RollingMarketCharacterResult:
    """Market character of every trailing window of log prices, vectorised.

    Parameters
    ----------
    log_prices : array_like, shape (n,)
        Log price levels; NaN/inf allowed (affected windows are "undetermined").
    window : int
        Window length in prices, ``>= 100``; the calibration is done at this length.
    alpha, lags, null_replications
        As in :func:`market_character`.

    Returns
    -------
    RollingMarketCharacterResult
        Entry ``t`` equals ``market_character(log_prices[t - window + 1 : t + 1])``.
    """
    arr, index = as_float_1d(log_prices, "log_prices")
    alpha, lags_t, replications = _check_common(alpha, lags, null_replications)
    window = check_int(window, "window", MIN_CHARACTER_NOBS)
    n = arr.size
    adf = rolling_adf(arr, window, regression=_ADF_REGRESSION, autolag=_ADF_AUTOLAG)
    vr = rolling_variance_ratio(arr, window, lags_t)
    with np.errstate(invalid="ignore"):
        ret = np.diff(arr) if n > 1 else np.empty(0)
    hurst = np.full(n, np.nan)
    if n > 1:
        hr = rolling_hurst(ret, window - 1, "dfa")
        hurst[1:] = hr.hurst  # increments window ending at t-1 <=> prices ending at t
    comp = np.column_stack([hurst, vr.stat, adf.stat])
    reason = np.array(adf.reason, copy=True)
    reason[(reason == REASON_OK) & ~np.all(np.isfinite(comp), axis=1)] = REASON_SINGULAR
    if (reason == REASON_OK).any():
        out = _classify(comp, _null(window, lags_t, replications), alpha)
    else:
        nan = np.full(n, np.nan)
        out = {"character": np.full(n, UNDETERMINED), "confidence": nan, "p_t": nan,
               "p_m": nan, "trend": nan, "mr": nan}
    ok = reason == REASON_OK
    character = np.where(ok, out["character"], UNDETERMINED)

    def masked(v: np.ndarray) -> np.ndarray:
        return readonly(np.where(ok, v, np.nan))

    return RollingMarketCharacterResult(
        character=readonly(character),
        confidence=masked(out["confidence"]),
        pvalue_trending=masked(out["p_t"]),
        pvalue_mean_reverting=masked(out["p_m"]),
        trend_score=masked(out["trend"]),
        mean_reversion_score=masked(out["mr"]),
        hurst=masked(comp[:, 0]),
        vr_stat=readonly(np.where(ok[:, None], comp[:, 1:-1], np.nan)),
        adf_stat=masked(comp[:, -1]),
        reason=readonly(reason),
        window=window,
        alpha=alpha,
        vr_lags=lags_t,
        null_replications=replications,
        index=index,
    )


def _character_batch(
    y: np.ndarray,
    *,
    alpha: float = 0.05,
    lags: tuple[int, ...] = DEFAULT_VR_LAGS,
    null_replications: int = DEFAULT_NULL_REPLICATIONS,
) -> np.ndarray:
    """Characters for each row of log prices ``y`` (B, n) - the same rule as
    :func:`market_character`, for simulation studies."""
    comp = _components(y, lags)
    return _classify(comp, _null(y.shape[1], lags, null_replications), alpha)["character"]
