"""Lo-MacKinlay variance ratio test on log prices, with the Chow-Denning joint test."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.stats import norm

from analytics._stats_common import (
    REASON_OK,
    REASON_SINGULAR,
    ResultMixin,
    RollingResultMixin,
    as_float_1d,
    blocks,
    check_bool,
    check_choice,
    check_int,
    readonly,
    require_finite,
    require_not_constant,
    window_reasons,
)
from analytics.errors import InsufficientDataError

__all__ = [
    "VarianceRatioResult",
    "RollingVarianceRatioResult",
    "variance_ratio",
    "rolling_variance_ratio",
    "chow_denning_pvalue",
]

DEFAULT_VR_LAGS: tuple[int, ...] = (2, 4, 8, 16)


@dataclass(frozen=True, eq=False)
class VarianceRatioResult(ResultMixin):
    """Result of :func:`variance_ratio`; per-horizon arrays follow the order of ``lags``.

    Attributes
    ----------
    lags : tuple of int
        Horizons ``q`` (bars).
    vr : ndarray, shape (k,)
        Variance ratios ``Var(q-bar return) / (q Var(1-bar return))``.
    stat : ndarray, shape (k,)
        The z statistic selected by ``robust`` (same as ``arch``'s ``stat``).
    pvalue : ndarray, shape (k,)
        Two-sided normal p-values of ``stat``.
    stat_homoskedastic, stat_robust : ndarray, shape (k,)
        Lo-MacKinlay z under homoskedasticity and the heteroskedasticity-robust z*.
        With ``overlap=False`` both use the non-overlapping variance ``2 (q - 1)``.
    joint_stat : float
        Chow-Denning statistic ``max_i |stat_i|``.
    joint_pvalue : float
        Its p-value from the studentized maximum modulus distribution with infinite
        degrees of freedom, ``1 - (1 - p_min)^k`` (the Sidak bound; conservative when the
        horizons' statistics are positively correlated, as they are).
    nobs : int
        Number of log prices used.
    trend, overlap, debiased, robust
        The options used.
    """

    lags: tuple[int, ...]
    vr: np.ndarray
    stat: np.ndarray
    pvalue: np.ndarray
    stat_homoskedastic: np.ndarray
    stat_robust: np.ndarray
    joint_stat: float
    joint_pvalue: float
    nobs: int
    trend: str
    overlap: bool
    debiased: bool
    robust: bool


@dataclass(frozen=True, eq=False)
class RollingVarianceRatioResult(RollingResultMixin):
    """Result of :func:`rolling_variance_ratio`; one row per input bar (causal windows).

    Attributes
    ----------
    vr, stat, pvalue : ndarray, shape (n, k)
        Per-horizon values for the window ending at each bar (NaN where undefined).
    joint_stat, joint_pvalue : ndarray, shape (n,)
        Chow-Denning joint test per window.
    reason : ndarray of str, shape (n,)
        "ok", "warmup", "non_finite", "constant" or "singular" (zero variance).
    lags : tuple of int
    window : int
    trend, overlap, debiased, robust
    index : pandas.Index or None
    """

    vr: np.ndarray
    stat: np.ndarray
    pvalue: np.ndarray
    joint_stat: np.ndarray
    joint_pvalue: np.ndarray
    reason: np.ndarray
    lags: tuple[int, ...]
    window: int
    trend: str
    overlap: bool
    debiased: bool
    robust: bool
    index: Any = field(default=None, repr=False)

    def _column_labels(self, field: str, k: int) -> list[str]:
        return [f"{field}_{q}" for q in self.lags]


def chow_denning_pvalue(stat: Any, k: int) -> np.ndarray:
    """P-value of the Chow-Denning statistic ``max |z_i|`` over ``k`` horizons.

    Parameters
    ----------
    stat : float or array_like
        Observed ``max_i |z_i|``.
    k : int
        Number of horizons.

    Returns
    -------
    ndarray
        ``P(SMM(k, inf) > stat) = 1 - (2 Phi(stat) - 1)^k``, computed without cancellation.

    References
    ----------
    .. [1] Chow, K. V. and Denning, K. C. (1993). "A simple multiple variance ratio test."
       *Journal of Econometrics* 58(3), 385-401.
    """
    k = check_int(k, "k", 1)
    p_single = 2.0 * norm.sf(np.abs(np.asarray(stat, dtype=float)))
    return -np.expm1(k * np.log1p(-np.minimum(p_single, 1.0)))


def _check_lags(lags: Any) -> tuple[int, ...]:
    if isinstance(lags, numbers.Integral) and not isinstance(lags, bool):
        seq: Sequence[Any] = (lags,)
    elif isinstance(lags, (Sequence, np.ndarray)) and not isinstance(lags, str):
        seq = list(lags)
    else:
        raise TypeError(f"lags must be an integer or a sequence of integers, got {lags!r}")
    if not seq:
        raise ValueError("lags must not be empty")
    out = tuple(check_int(q, "lags", 2) for q in seq)
    if len(set(out)) != len(out):
        raise ValueError(f"lags must not repeat a horizon, got {out}")
    return out


def _min_obs(q: int, overlap: bool, debiased: bool) -> int:
    # arch's feasibility rule.
    return 2 * q if not overlap else q + 1 + int(debiased)


def _vr_batch(
    y: np.ndarray, lags: tuple[int, ...], trend: str, overlap: bool, debiased: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """VR, homoskedastic z and robust z for each row of log prices ``y`` (B, n).

    Returns three (B, k) arrays; rows whose one-period variance is zero are NaN.
    """
    b, n = y.shape
    k = len(lags)
    vr = np.full((b, k), np.nan)
    z_h = np.full((b, k), np.nan)
    z_r = np.full((b, k), np.nan)
    cache: dict[int, tuple[np.ndarray, ...]] = {}

    def one_period(m: int) -> tuple[np.ndarray, ...]:
        # Quantities of the first m prices (m < n only for non-overlapping truncation).
        if m not in cache:
            ym = y[:, :m]
            mu = np.zeros(b) if trend == "n" else (ym[:, -1] - ym[:, 0]) / (m - 1)
            dev = np.diff(ym, axis=1) - mu[:, None]
            ss1 = np.einsum("ij,ij->i", dev, dev)
            cache[m] = (ym, mu, dev, ss1, dev * dev)
        return cache[m]

    acov: dict[int, np.ndarray] = {}
    for j, q in enumerate(lags):
        m = n - ((n - 1) % q) if not overlap else n
        ym, mu, dev, ss1, z2 = one_period(m)
        nq = m - 1
        sigma2_1 = ss1 / nq
        if overlap:
            dq = ym[:, q:] - ym[:, :-q] - (q * mu)[:, None]
            sigma2_q = np.einsum("ij,ij->i", dq, dq) / (nq * q)
        else:
            dq = ym[:, q::q] - ym[:, 0:-q:q] - (q * mu)[:, None]
            sigma2_q = np.einsum("ij,ij->i", dq, dq) / nq
        if debiased and overlap:
            sigma2_1 = sigma2_1 * (nq / (nq - 1))
            mq = q * (nq - q + 1) * (1 - (q / nq))
            sigma2_q = sigma2_q * ((nq * q) / mq)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = sigma2_q / sigma2_1
            if overlap:
                var_h = (2 * (2 * q - 1) * (q - 1)) / (3 * q)
                scale = ss1**2
                theta = np.zeros(b)
                for lag in range(1, q):
                    if lag not in acov:
                        acov[lag] = np.einsum("ij,ij->i", z2[:, lag:], z2[:, :-lag])
                    theta += 4 * (1 - lag / q) ** 2.0 * (nq * acov[lag] / scale)
                var_r = theta
            else:
                var_h = 2.0 * (q - 1)
                var_r = np.full(b, var_h)
            zh = np.sqrt(nq) * (ratio - 1) / np.sqrt(var_h)
            zr = np.sqrt(nq) * (ratio - 1) / np.sqrt(var_r)
        bad = ~(ss1 > 0) | ~(np.asarray(var_r) > 0)
        vr[:, j] = np.where(bad, np.nan, ratio)
        z_h[:, j] = np.where(bad, np.nan, zh)
        z_r[:, j] = np.where(bad, np.nan, zr)
    return vr, z_h, z_r


def _validate_options(trend: Any, overlap: Any, debiased: Any, robust: Any) -> tuple:
    return (
        check_choice(trend, "trend", ("c", "n")),
        check_bool(overlap, "overlap"),
        check_bool(debiased, "debiased"),
        check_bool(robust, "robust"),
    )


def variance_ratio(
    log_prices: Any,
    lags: int | Sequence[int] = DEFAULT_VR_LAGS,
    *,
    trend: Literal["c", "n"] = "c",
    overlap: bool = True,
    debiased: bool = True,
    robust: bool = True,
) -> VarianceRatioResult:
    """Lo-MacKinlay variance ratio test of the random-walk hypothesis, per horizon and jointly.

    ``VR(q) = Var(y_t - y_{t-q}) / (q Var(y_t - y_{t-1}))`` for log prices ``y``. Under a
    random walk VR = 1; VR > 1 means positively autocorrelated returns (trending), VR < 1
    negatively autocorrelated returns (mean reversion). Each horizon's value and z
    statistic equal ``arch.unitroot.VarianceRatio(log_prices, lags=q, trend=trend,
    overlap=overlap, debiased=debiased, robust=robust)``.

    Parameters
    ----------
    log_prices : array_like, shape (n,)
        Log price *levels* (not returns). Finite, not constant.
    lags : int or sequence of int, default (2, 4, 8, 16)
        Horizons ``q >= 2``.
    trend : {"c", "n"}, default "c"
        "c" removes the drift ``(y_n - y_1) / (n - 1)``; "n" assumes zero-mean returns.
    overlap : bool, default True
        Use all overlapping q-period returns. If False, non-overlapping blocks are used and
        the last ``(n - 1) mod q`` prices are dropped for horizon q.
    debiased : bool, default True
        Use the unbiased variance estimators (overlapping case only).
    robust : bool, default True
        Select the heteroskedasticity-robust z* (Lo and MacKinlay 1988, eq. 20) as ``stat``;
        both statistics are always reported.

    Returns
    -------
    VarianceRatioResult

    Raises
    ------
    InsufficientDataError
        NaN/inf in the data, constant prices, or fewer than ``q + 2`` prices
        (``2 q`` without overlap) for the largest ``q``.
    ValueError, TypeError
        Invalid arguments.

    References
    ----------
    .. [1] Lo, A. W. and MacKinlay, A. C. (1988). "Stock market prices do not follow random
       walks: evidence from a simple specification test." *Review of Financial Studies*
       1(1), 41-66.
    .. [2] Campbell, J. Y., Lo, A. W. and MacKinlay, A. C. (1997). *The Econometrics of
       Financial Markets*, ch. 2. Princeton University Press.
    .. [3] Chow, K. V. and Denning, K. C. (1993). "A simple multiple variance ratio test."
       *Journal of Econometrics* 58(3), 385-401.
    """
    arr, _ = as_float_1d(log_prices, "log_prices")
    lags_t = _check_lags(lags)
    trend, overlap, debiased, robust = _validate_options(trend, overlap, debiased, robust)
    require_finite(arr, "log_prices")
    need = max(_min_obs(q, overlap, debiased) for q in lags_t)
    if arr.size < need:
        raise InsufficientDataError(
            f"log_prices has {arr.size} observation(s); the variance ratio at horizon "
            f"{max(lags_t)} needs at least {need}"
        )
    require_not_constant(arr, "log_prices")
    vr, zh, zr = _vr_batch(arr[None, :], lags_t, trend, overlap, debiased)
    if np.isnan(vr).any():
        raise InsufficientDataError("log_prices has zero return variance; VR is undefined")
    z = zr[0] if robust else zh[0]
    joint = float(np.max(np.abs(z)))
    return VarianceRatioResult(
        lags=lags_t,
        vr=readonly(vr[0]),
        stat=readonly(z),
        pvalue=readonly(2.0 * norm.sf(np.abs(z))),
        stat_homoskedastic=readonly(zh[0]),
        stat_robust=readonly(zr[0]),
        joint_stat=joint,
        joint_pvalue=float(chow_denning_pvalue(joint, len(lags_t))),
        nobs=int(arr.size),
        trend=trend,
        overlap=overlap,
        debiased=debiased,
        robust=robust,
    )


def rolling_variance_ratio(
    log_prices: Any,
    window: int,
    lags: int | Sequence[int] = DEFAULT_VR_LAGS,
    *,
    trend: Literal["c", "n"] = "c",
    overlap: bool = True,
    debiased: bool = True,
    robust: bool = True,
) -> RollingVarianceRatioResult:
    """Variance ratio test on every trailing window of log prices, vectorised.

    Parameters
    ----------
    log_prices : array_like, shape (n,)
        Log price levels; NaN/inf allowed (affected windows are NaN with a reason).
    window : int
        Window length in prices; must satisfy the minimum of :func:`variance_ratio`.
    lags, trend, overlap, debiased, robust
        As in :func:`variance_ratio`.

    Returns
    -------
    RollingVarianceRatioResult
        Row ``t`` equals ``variance_ratio(log_prices[t - window + 1 : t + 1], ...)``.
    """
    arr, index = as_float_1d(log_prices, "log_prices")
    lags_t = _check_lags(lags)
    trend, overlap, debiased, robust = _validate_options(trend, overlap, debiased, robust)
    window = check_int(window, "window", 3)
    need = max(_min_obs(q, overlap, debiased) for q in lags_t)
    if window < need:
        raise ValueError(f"window={window} is too short for horizon {max(lags_t)}: need {need}")
    n = arr.size
    k = len(lags_t)
    vr = np.full((n, k), np.nan)
    stat = np.full((n, k), np.nan)
    reason = window_reasons(arr, window)
    if n >= window:
        views = sliding_window_view(arr, window)
        ok = np.flatnonzero(reason[window - 1 :] == REASON_OK)
        for blk in blocks(ok, window * 4):
            v, zh, zr = _vr_batch(views[blk], lags_t, trend, overlap, debiased)
            pos = blk + window - 1
            vr[pos] = v
            stat[pos] = zr if robust else zh
            reason[pos[np.isnan(v).any(axis=1)]] = REASON_SINGULAR
    with np.errstate(invalid="ignore"):
        joint = np.max(np.abs(stat), axis=1) if k else np.full(n, np.nan)
    return RollingVarianceRatioResult(
        vr=readonly(vr),
        stat=readonly(stat),
        pvalue=readonly(2.0 * norm.sf(np.abs(stat))),
        joint_stat=readonly(joint),
        joint_pvalue=readonly(chow_denning_pvalue(joint, k)),
        reason=readonly(reason),
        lags=lags_t,
        window=window,
        trend=trend,
        overlap=overlap,
        debiased=debiased,
        robust=robust,
        index=index,
    )
