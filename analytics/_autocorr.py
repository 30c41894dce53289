"""Sample autocorrelation and the Ljung-Box / Box-Pierce portmanteau tests."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.stats import chi2, norm

from analytics._stats_common import (
    REASON_OK,
    ResultMixin,
    RollingResultMixin,
    as_float_1d,
    blocks,
    check_float,
    check_int,
    readonly,
    require_finite,
    require_not_constant,
    window_reasons,
)
from analytics.errors import InsufficientDataError

__all__ = [
    "AutocorrelationResult",
    "LjungBoxResult",
    "RollingAutocorrelationResult",
    "RollingLjungBoxResult",
    "autocorrelation",
    "ljung_box",
    "rolling_autocorrelation",
    "rolling_ljung_box",
]


@dataclass(frozen=True, eq=False)
class AutocorrelationResult(ResultMixin):
    """Result of :func:`autocorrelation`.

    Attributes
    ----------
    acf : ndarray, shape (nlags + 1,)
        Autocorrelations at lags ``0..nlags`` (``acf[0] == 1``).
    confint : ndarray, shape (nlags + 1, 2)
        Bartlett confidence intervals centred on ``acf`` (as statsmodels' ``acf``).
    lags : ndarray of int, shape (nlags + 1,)
    nobs : int
    alpha : float
    """

    acf: np.ndarray
    confint: np.ndarray
    lags: np.ndarray
    nobs: int
    alpha: float


@dataclass(frozen=True, eq=False)
class LjungBoxResult(ResultMixin):
    """Result of :func:`ljung_box`; arrays follow ``lags``.

    Attributes
    ----------
    lags : ndarray of int, shape (k,)
    stat, pvalue : ndarray, shape (k,)
        Ljung-Box Q and its chi-square p-value with ``lag - model_df`` degrees of freedom
        (NaN when that is not positive).
    bp_stat, bp_pvalue : ndarray, shape (k,)
        Box-Pierce statistic and p-value.
    nobs, model_df : int
    """

    lags: np.ndarray
    stat: np.ndarray
    pvalue: np.ndarray
    bp_stat: np.ndarray
    bp_pvalue: np.ndarray
    nobs: int
    model_df: int


@dataclass(frozen=True, eq=False)
class RollingAutocorrelationResult(RollingResultMixin):
    """Result of :func:`rolling_autocorrelation`.

    Attributes
    ----------
    acf : ndarray, shape (n, nlags)
        Autocorrelations at lags ``1..nlags`` of the window ending at each bar.
    reason : ndarray of str, shape (n,)
    window, nlags : int
    index : pandas.Index or None
    """

    acf: np.ndarray
    reason: np.ndarray
    window: int
    nlags: int
    index: Any = field(default=None, repr=False)

    def _column_labels(self, field: str, k: int) -> list[str]:
        return [f"acf_{j}" for j in range(1, k + 1)]


@dataclass(frozen=True, eq=False)
class RollingLjungBoxResult(RollingResultMixin):
    """Result of :func:`rolling_ljung_box`: the test up to lag ``lags`` per window.

    Attributes
    ----------
    stat, pvalue : ndarray, shape (n,)
    reason : ndarray of str, shape (n,)
    window, lags, model_df : int
    index : pandas.Index or None
    """

    stat: np.ndarray
    pvalue: np.ndarray
    reason: np.ndarray
    window: int
    lags: int
    model_df: int
    index: Any = field(default=None, repr=False)


def _acf_batch(x: np.ndarray, nlags: int) -> np.ndarray:
    """Autocorrelations 0..nlags of each row of x (B, n), demeaned, denominator n."""
    d = x - x.mean(axis=1, keepdims=True)
    n = x.shape[1]
    out = np.empty((x.shape[0], nlags + 1))
    for k in range(nlags + 1):
        out[:, k] = np.einsum("ij,ij->i", d[:, k:], d[:, : n - k])
    with np.errstate(divide="ignore", invalid="ignore"):
        return out / out[:, :1]


def _portmanteau(acf: np.ndarray, n: int, lags: np.ndarray, model_df: int) -> tuple:
    """Ljung-Box and Box-Pierce statistics/p-values at ``lags`` from acf (B, maxlag+1)."""
    maxlag = int(lags.max())
    r2 = acf[:, 1 : maxlag + 1] ** 2
    lb = n * (n + 2) * np.cumsum(r2 / (n - np.arange(1, maxlag + 1)), axis=1)[:, lags - 1]
    bp = n * np.cumsum(r2, axis=1)[:, lags - 1]
    df = lags - model_df
    with np.errstate(invalid="ignore"):
        p_lb = np.where(df > 0, chi2.sf(lb, np.maximum(df, 1)), np.nan)
        p_bp = np.where(df > 0, chi2.sf(bp, np.maximum(df, 1)), np.nan)
    return lb, p_lb, bp, p_bp


def _check_model_df(model_df: Any) -> int:
    return check_int(model_df, "model_df", 0)


def autocorrelation(x: Any, nlags: int | None = None, *, alpha: float = 0.05
                    ) -> AutocorrelationResult:
    """Sample autocorrelation function with Bartlett confidence intervals.

    Equal to ``statsmodels.tsa.stattools.acf(x, nlags=nlags, alpha=alpha)`` (demeaned,
    denominator ``n``).

    Parameters
    ----------
    x : array_like, shape (n,)
        Series, typically returns. Finite and not constant.
    nlags : int, optional
        Largest lag; default ``min(int(10 log10(n)), n - 1)``.
    alpha : float, default 0.05
        Level of the intervals ``acf_k -+ z_{1-alpha/2} sqrt((1 + 2 sum_{j<k} acf_j^2)/n)``.

    Returns
    -------
    AutocorrelationResult

    Raises
    ------
    InsufficientDataError
        NaN/inf, constant, fewer than 2 observations, or ``nlags >= n``.

    References
    ----------
    .. [1] Box, G. E. P., Jenkins, G. M., Reinsel, G. C. and Ljung, G. M. (2015). *Time
       Series Analysis: Forecasting and Control*, 5th ed., Wiley, sec. 2.1.6.
    """
    arr, _ = as_float_1d(x, "x")
    alpha = check_float(alpha, "alpha", 0.0, 1.0)
    if nlags is not None:
        nlags = check_int(nlags, "nlags", 1)
    require_finite(arr, "x")
    n = arr.size
    if n < 2:
        raise InsufficientDataError(f"x has {n} observation(s); autocorrelation needs 2")
    if nlags is None:
        nlags = max(1, min(int(10 * np.log10(n)), n - 1))
    if nlags >= n:
        raise InsufficientDataError(f"nlags={nlags} needs more than {nlags} observations")
    require_not_constant(arr, "x")
    acf = _acf_batch(arr[None, :], nlags)[0]
    var = np.ones_like(acf) / n
    var[0] = 0.0
    var[2:] *= 1 + 2 * np.cumsum(acf[1:-1] ** 2)
    half = norm.ppf(1 - alpha / 2.0) * np.sqrt(var)
    return AutocorrelationResult(
        acf=readonly(acf),
        confint=readonly(np.column_stack([acf - half, acf + half])),
        lags=readonly(np.arange(nlags + 1)),
        nobs=n,
        alpha=alpha,
    )


def _check_lb_lags(lags: Any) -> np.ndarray:
    if isinstance(lags, numbers.Integral) and not isinstance(lags, bool):
        return np.arange(1, check_int(lags, "lags", 1) + 1)
    if isinstance(lags, (Sequence, np.ndarray)) and not isinstance(lags, str) and len(lags):
        return np.array([check_int(v, "lags", 1) for v in lags])
    raise TypeError(f"lags must be a positive integer or a non-empty sequence, got {lags!r}")


def ljung_box(x: Any, lags: int | Sequence[int] = 10, *, model_df: int = 0) -> LjungBoxResult:
    """Ljung-Box (and Box-Pierce) test of no autocorrelation up to each lag.

    ``Q(h) = n (n + 2) sum_{k=1}^{h} acf_k^2 / (n - k)``, chi-square with ``h - model_df``
    degrees of freedom under the null of white noise. Equal to
    ``statsmodels.stats.diagnostic.acorr_ljungbox(x, lags, model_df=model_df,
    boxpierce=True)``.

    Parameters
    ----------
    x : array_like, shape (n,)
        Series (returns or model residuals). Finite and not constant.
    lags : int or sequence of int, default 10
        An integer ``h`` tests every lag ``1..h``; a sequence tests the given lags.
    model_df : int, default 0
        Degrees of freedom used by a fitted model (e.g. ``p + q`` for ARMA residuals).

    Returns
    -------
    LjungBoxResult

    Raises
    ------
    InsufficientDataError
        NaN/inf, constant, or the largest lag is not below ``n``.

    References
    ----------
    .. [1] Ljung, G. M. and Box, G. E. P. (1978). "On a measure of lack of fit in time
       series models." *Biometrika* 65(2), 297-303.
    """
    arr, _ = as_float_1d(x, "x")
    lag_arr = _check_lb_lags(lags)
    model_df = _check_model_df(model_df)
    require_finite(arr, "x")
    n = arr.size
    if n <= lag_arr.max():
        raise InsufficientDataError(
            f"x has {n} observation(s); Ljung-Box at lag {lag_arr.max()} needs more")
    require_not_constant(arr, "x")
    acf = _acf_batch(arr[None, :], int(lag_arr.max()))
    lb, p_lb, bp, p_bp = _portmanteau(acf, n, lag_arr, model_df)
    return LjungBoxResult(
        lags=readonly(lag_arr),
        stat=readonly(lb[0]),
        pvalue=readonly(p_lb[0]),
        bp_stat=readonly(bp[0]),
        bp_pvalue=readonly(p_bp[0]),
        nobs=n,
        model_df=model_df,
    )


def _rolling_acf(arr: np.ndarray, window: int, nlags: int) -> tuple[np.ndarray, np.ndarray]:
    n = arr.size
    acf = np.full((n, nlags + 1), np.nan)
    reason = window_reasons(arr, window)
    if n >= window:
        views = sliding_window_view(arr, window)
        ok = np.flatnonzero(reason[window - 1 :] == REASON_OK)
        for blk in blocks(ok, window * 2):
            acf[blk + window - 1] = _acf_batch(views[blk], nlags)
    return acf, reason


def rolling_autocorrelation(x: Any, window: int, nlags: int = 10
                            ) -> RollingAutocorrelationResult:
    """Autocorrelations at lags ``1..nlags`` on every trailing window, vectorised.

    Parameters
    ----------
    x : array_like, shape (n,)
        Series; NaN/inf allowed (affected windows are NaN with a reason).
    window : int
        Window length, ``> nlags``.
    nlags : int, default 10

    Returns
    -------
    RollingAutocorrelationResult
        Row ``t`` equals ``autocorrelation(x[t - window + 1 : t + 1], nlags).acf[1:]``.
    """
    arr, index = as_float_1d(x, "x")
    nlags = check_int(nlags, "nlags", 1)
    window = check_int(window, "window", 2)
    if window <= nlags:
        raise ValueError(f"window={window} must exceed nlags={nlags}")
    acf, reason = _rolling_acf(arr, window, nlags)
    return RollingAutocorrelationResult(
        acf=readonly(acf[:, 1:]), reason=readonly(reason), window=window, nlags=nlags,
        index=index,
    )


def rolling_ljung_box(x: Any, window: int, lags: int = 10, *, model_df: int = 0
                      ) -> RollingLjungBoxResult:
    """Ljung-Box test up to lag ``lags`` on every trailing window, vectorised.

    Parameters
    ----------
    x : array_like, shape (n,)
        Series; NaN/inf allowed (affected windows are NaN with a reason).
    window : int
        Window length, ``> lags``.
    lags : int, default 10
    model_df : int, default 0

    Returns
    -------
    RollingLjungBoxResult
        Entry ``t`` equals ``ljung_box(x[t - window + 1 : t + 1], lags).stat[-1]``.
    """
    arr, index = as_float_1d(x, "x")
    lags = check_int(lags, "lags", 1)
    model_df = _check_model_df(model_df)
    window = check_int(window, "window", 2)
    if window <= lags:
        raise ValueError(f"window={window} must exceed lags={lags}")
    acf, reason = _rolling_acf(arr, window, lags)
    lb, p_lb, _, _ = _portmanteau(acf, window, np.array([lags]), model_df)
    return RollingLjungBoxResult(
        stat=readonly(lb[:, 0]), pvalue=readonly(p_lb[:, 0]), reason=readonly(reason),
        window=window, lags=lags, model_df=model_df, index=index,
    )
