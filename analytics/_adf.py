"""Augmented Dickey-Fuller unit-root test, single-shot and batched over windows."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from math import comb
from typing import Any, Literal

import numpy as np
from scipy.stats import norm
from statsmodels.tsa import adfvalues as _adfvalues

from analytics._linalg import NestedFit, factor_gram, nested_fit
from analytics._stats_common import (
    REASON_OK,
    REASON_SINGULAR,
    ResultMixin,
    RollingResultMixin,
    as_float_1d,
    blocks,
    check_int,
    frozen_mapping,
    readonly,
    require_finite,
    require_not_constant,
    window_reasons,
)
from analytics.errors import InsufficientDataError

__all__ = ["ADFResult", "RollingADFResult", "adf_test", "rolling_adf", "adf_default_maxlag"]

Regression = Literal["n", "c", "ct", "ctt"]
_NTREND = {"n": 0, "c": 1, "ct": 2, "ctt": 3}
_AUTOLAG = {"aic": "aic", "bic": "bic", "t-stat": "t-stat"}
# statsmodels' stopping value for the t-stat rule: norm.ppf(0.95), as a literal.
_TSTAT_STOP = 1.6448536269514722
# A residual sum of squares this small relative to ||y||^2 is a perfect fit: no t-value.
_PERFECT_FIT = 1e-13
# Windows per prefix-sum segment in rolling_adf (see _window_fitter).
_WINDOWS_PER_SEGMENT = 512


@dataclass(frozen=True, eq=False)
class ADFResult(ResultMixin):
    """Result of :func:`adf_test`.

    Attributes
    ----------
    stat : float
        ADF t-statistic on the lagged level.
    pvalue : float
        MacKinnon (1994, 2010) approximate p-value (left tail; small = reject unit root).
    critical_values : Mapping[str, float]
        Critical values at "1%", "5%" and "10%" for ``nobs`` (MacKinnon 2010).
    lags : int
        Number of lagged differences used.
    nobs : int
        Observations in the final regression (``len(x) - 1 - lags``).
    maxlag : int
        Largest lag considered.
    regression : str
        Deterministic terms: "n", "c", "ct" or "ctt".
    autolag : str or None
        Lag selection rule ("AIC", "BIC", "t-stat") or None for fixed ``maxlag``.
    icbest : float or None
        Best information criterion (AIC/BIC), or the absolute t-value of the last lag
        for "t-stat"; None when ``autolag`` is None.
    """

    stat: float
    pvalue: float
    critical_values: Mapping[str, float]
    lags: int
    nobs: int
    maxlag: int
    regression: str
    autolag: str | None
    icbest: float | None


@dataclass(frozen=True, eq=False)
class RollingADFResult(RollingResultMixin):
    """Result of :func:`rolling_adf`; every array has one entry per input bar.

    Entry ``t`` uses the window ending at bar ``t`` (causal). Where no value can be
    computed the numbers are NaN and ``reason[t]`` says why: "warmup" (fewer than
    ``window`` bars so far), "non_finite" (NaN/inf in the window), "constant" (constant
    window), "singular" (collinear regressors or a perfect fit); otherwise "ok".

    Attributes
    ----------
    stat, pvalue : ndarray, shape (n,)
    lags, nobs : ndarray, shape (n,)
        Float arrays so that they can hold NaN.
    critical_values : ndarray, shape (n, 3)
        1%, 5% and 10% critical values for each window's ``nobs``.
    reason : ndarray of str, shape (n,)
    window, maxlag : int
    regression : str
    autolag : str or None
    index : pandas.Index or None
        Index of the input when it was a pandas Series.
    """

    stat: np.ndarray
    pvalue: np.ndarray
    lags: np.ndarray
    nobs: np.ndarray
    critical_values: np.ndarray
    reason: np.ndarray
    window: int
    maxlag: int
    regression: str
    autolag: str | None
    index: Any = field(default=None, repr=False)

    def _column_labels(self, field: str, k: int) -> list[str]:
        if field == "critical_values":
            return ["crit_1%", "crit_5%", "crit_10%"]
        return super()._column_labels(field, k)


def adf_default_maxlag(nobs: int, regression: str = "c") -> int:
    """statsmodels' default ``maxlag``: ``min(nobs // 2 - ntrend - 1, ceil(12 (nobs/100)^(1/4)))``.

    Parameters
    ----------
    nobs : int
        Number of observations of the level series.
    regression : {"n", "c", "ct", "ctt"}
        Deterministic terms; ``ntrend`` is their count.

    Returns
    -------
    int
        May be negative when ``nobs`` is too small for any regression.
    """
    ntrend = _NTREND[_check_regression(regression)]
    maxlag = int(np.ceil(12.0 * np.power(nobs / 100.0, 1 / 4.0)))
    return min(nobs // 2 - ntrend - 1, maxlag)


def _check_regression(regression: Any) -> Regression:
    if regression not in _NTREND:
        raise ValueError(f"regression must be one of 'n', 'c', 'ct', 'ctt', got {regression!r}")
    return regression  # type: ignore[no-any-return]


def _check_autolag(autolag: Any) -> str | None:
    if autolag is None:
        return None
    if isinstance(autolag, str) and autolag.lower() in _AUTOLAG:
        return _AUTOLAG[autolag.lower()]
    raise ValueError(f"autolag must be 'AIC', 'BIC', 't-stat' or None, got {autolag!r}")


def _display_autolag(autolag: str | None) -> str | None:
    return None if autolag is None else {"aic": "AIC", "bic": "BIC", "t-stat": "t-stat"}[autolag]


def _resolve_maxlag(maxlag: Any, nobs: int, regression: str, name: str) -> int:
    """Validate/derive maxlag for series of length ``nobs`` (statsmodels' limits)."""
    ntrend = _NTREND[regression]
    cap = nobs // 2 - ntrend - 1
    if maxlag is None:
        lag = adf_default_maxlag(nobs, regression)
        if lag < 0:
            raise InsufficientDataError(
                f"{name} has {nobs} observations: too short for an ADF regression with "
                f"regression={regression!r}"
            )
    else:
        lag = check_int(maxlag, "maxlag", 0)
        if lag > cap:
            raise InsufficientDataError(
                f"maxlag={lag} needs at least {2 * (lag + ntrend + 1)} observations "
                f"(maxlag <= nobs // 2 - ntrend - 1); {name} has {nobs}"
            )
    # The largest regression needs a residual degree of freedom for its t-value.
    if nobs - 2 * lag - ntrend - 2 < 1:
        raise InsufficientDataError(
            f"{name} has {nobs} observations: the ADF regression with maxlag={lag} and "
            f"regression={regression!r} would have no residual degrees of freedom"
        )
    return lag


# ---------------------------------------------------------------------------------------
# MacKinnon p-values and critical values, vectorised.


def mackinnon_pvalue(stat: np.ndarray, regression: str) -> np.ndarray:
    """Elementwise ``statsmodels.tsa.adfvalues.mackinnonp(stat, regression, N=1)``.

    Uses statsmodels' own coefficient tables and the same ``polyval``/``norm.cdf`` calls,
    so values are identical; NaN stays NaN.
    """
    stat = np.asarray(stat, dtype=float)
    maxstat = _adfvalues._tau_maxs[regression][0]
    minstat = _adfvalues._tau_mins[regression][0]
    starstat = _adfvalues._tau_stars[regression][0]
    small = _adfvalues._tau_smallps[regression][0]
    large = _adfvalues._tau_largeps[regression][0]
    p = np.where(
        stat <= starstat,
        norm.cdf(np.polyval(small[::-1], stat)),
        norm.cdf(np.polyval(large[::-1], stat)),
    )
    p = np.where(stat > maxstat, 1.0, p)
    p = np.where(stat < minstat, 0.0, p)
    return np.where(np.isnan(stat), np.nan, p)


def mackinnon_crit(nobs: np.ndarray, regression: str) -> np.ndarray:
    """Critical values (1%, 5%, 10%) for each ``nobs``; shape (len(nobs), 3). NaN -> NaN."""
    nobs = np.asarray(nobs, dtype=float)
    out = np.full(nobs.shape + (3,), np.nan)
    ok = np.isfinite(nobs)
    for v in np.unique(nobs[ok]):
        out[nobs == v] = _adfvalues.mackinnoncrit(N=1, regression=regression, nobs=v)
    return out


# ---------------------------------------------------------------------------------------
# The batched regression.


@dataclass(frozen=True)
class _ADFBatch:
    stat: np.ndarray
    lags: np.ndarray
    nobs: np.ndarray
    icbest: np.ndarray
    singular: np.ndarray


# A fitter returns nested fits for the batch members ``rows`` of the regression whose
# rows are ``t = start .. n-2`` of the differenced window, with ``nlags`` lags.
Fitter = Callable[[np.ndarray, int, int, bool], NestedFit]


def _trend_powers(regression: str) -> list[int]:
    # The intercept is centred out; only the explicit trend terms remain as columns.
    return {"n": [], "c": [], "ct": [1], "ctt": [1, 2]}[regression]


def _design(x: np.ndarray, dx: np.ndarray, start: int, nlags: int, regression: str, *,
            level_first: bool) -> tuple[np.ndarray, np.ndarray]:
    """Regressors and regressand for rows ``start..n-2`` of ``dx``; x (B, n), dx (B, n-1).

    Columns: [trend terms, level, lag 1..nlags] if ``level_first`` else
    [trend terms, lag 1..nlags, level].
    """
    b, n = x.shape
    nob = n - 1 - start
    powers = _trend_powers(regression)
    ncol = len(powers) + 1 + nlags
    a = np.empty((b, nob, ncol))
    t = np.arange(1, nob + 1, dtype=float)
    for j, e in enumerate(powers):
        a[:, :, j] = t**e
    off = len(powers)
    lvl = off if level_first else off + nlags
    first_lag = off + 1 if level_first else off
    a[:, :, lvl] = x[:, start : n - 1]
    for j in range(1, nlags + 1):
        a[:, :, first_lag + j - 1] = dx[:, start - j : n - 1 - j]
    return a, dx[:, start:]


def _matrix_fitter(x: np.ndarray, regression: str) -> Fitter:
    """Fitter for independent series: materialise each design and factor it."""
    dx = np.diff(x, axis=1)
    center = _NTREND[regression] >= 1

    def fit(rows: np.ndarray, start: int, nlags: int, level_first: bool) -> NestedFit:
        design, y = _design(x[rows], dx[rows], start, nlags, regression,
                            level_first=level_first)
        return nested_fit(design, y, center=center)

    return fit


def _prefix(a: np.ndarray) -> np.ndarray:
    pad = np.zeros(a.shape[:-1] + (1,))
    return np.concatenate([pad, np.cumsum(a, axis=-1)], axis=-1)


def _window_fitter(seg: np.ndarray, offsets: np.ndarray, n: int, regression: str) -> Fitter:
    """Fitter for overlapping windows ``seg[o : o + n]``, one per entry of ``offsets``.

    Overlapping windows share almost all of their cross-products, so every entry of each
    window's cross-product matrix is a difference of two prefix sums over ``seg``: the cost
    is linear in the segment length instead of in windows x rows. The level is shifted by
    ``seg[0]`` (harmless with an intercept) so that centring cancels few digits; where it
    would still cancel too many, or the matrix is ill-conditioned, that window is refitted
    from its own data.
    """
    ntrend = _NTREND[regression]
    center = ntrend >= 1
    powers = _trend_powers(regression)
    mmax = max(powers, default=0)
    lev_all = seg - (seg[0] if center else 0.0)
    ds = np.diff(seg)
    l1 = ds.size
    lev = lev_all[:l1]  # level x_{t} paired with dx_t
    tt = np.arange(1, l1 + 1, dtype=float)
    cache: dict[int, dict[str, Any]] = {}
    lazy: list[Fitter] = []

    def mat(rows: np.ndarray, start: int, nlags: int, level_first: bool) -> NestedFit:
        if not lazy:  # only windows that need refitting from their data pay for this
            views = np.lib.stride_tricks.sliding_window_view(seg, n)[offsets]
            lazy.append(_matrix_fitter(views, regression))
        return lazy[0](rows, start, nlags, level_first)

    def tables(nlags: int) -> dict[str, Any]:
        # Built once for the largest lag asked; smaller lag sets are leading slices.
        if cache and max(cache) >= nlags:
            full = cache[max(cache)]
            return {"lag": [p[: nlags + 1] for p in full["lag"]], "lev": full["lev"],
                    "pd": full["pd"][: nlags + 1], "q": full["q"][: nlags + 1], "x2": full["x2"]}
        glag = np.zeros((nlags + 1, l1))
        pd_ = np.zeros((nlags + 1, l1))
        for j in range(nlags + 1):
            glag[j, j:] = ds[: l1 - j]
            pd_[j, j:] = ds[j:] * ds[: l1 - j]
        tab = {
            "lag": [_prefix(glag * tt**m) for m in range(mmax + 1)],
            "lev": [_prefix(lev * tt**m) for m in range(mmax + 1)],
            "pd": _prefix(pd_),
            "q": _prefix(lev[None, :] * glag),
            "x2": _prefix(lev * lev),
        }
        cache[nlags] = tab
        return tab

    def fit(rows: np.ndarray, start_lag: int, nlags: int, level_first: bool) -> NestedFit:
        tab = tables(nlags)
        a = offsets[rows]
        start = a + start_lag
        end = a + n - 1
        nob = n - 1 - start_lag
        nb = a.size
        ntr = len(powers)
        kk = nlags + 1
        # Canonical order: [trend terms, level, dx_t (= y), dx_{t-1}, ..., dx_{t-nlags}].
        c = ntr + 1 + kk
        gram = np.empty((nb, c, c))
        sums = np.empty((nb, c))
        r = np.arange(1, nob + 1, dtype=float)
        lag_w = [p[:, end] - p[:, start] for p in tab["lag"]]  # each (kk, nb)
        lev_w = [p[end] - p[start] for p in tab["lev"]]  # each (nb,)
        for i, e in enumerate(powers):
            sums[:, i] = (r**e).sum()
            for k, e2 in enumerate(powers):
                gram[:, i, k] = (r ** (e + e2)).sum()
            # sum_t (t + 1 - start)^e g_t, expanded binomially into weighted sums of g.
            shift = -start.astype(float)
            lev_t = sum(comb(e, m) * shift ** (e - m) * lev_w[m] for m in range(e + 1))
            lag_t = sum(comb(e, m) * shift ** (e - m) * lag_w[m] for m in range(e + 1))
            gram[:, i, ntr] = gram[:, ntr, i] = lev_t
            gram[:, i, ntr + 1 :] = lag_t.T
            gram[:, ntr + 1 :, i] = lag_t.T
        sums[:, ntr] = lev_w[0]
        sums[:, ntr + 1 :] = lag_w[0].T
        gram[:, ntr, ntr] = tab["x2"][end] - tab["x2"][start]
        q = (tab["q"][:, end] - tab["q"][:, start]).T  # (nb, kk)
        gram[:, ntr, ntr + 1 :] = q
        gram[:, ntr + 1 :, ntr] = q
        jj = np.arange(kk)
        lo = np.minimum(jj[:, None], jj[None, :])
        dd = np.abs(jj[:, None] - jj[None, :])
        pdt = tab["pd"]
        gram[:, ntr + 1 :, ntr + 1 :] = (
            pdt[dd[None], end[:, None, None] - lo[None]]
            - pdt[dd[None], start[:, None, None] - lo[None]]
        )
        lags_idx = list(range(ntr + 2, c))
        trend_idx = list(range(ntr))
        if level_first:
            perm = trend_idx + [ntr] + lags_idx + [ntr + 1]
        else:
            perm = trend_idx + lags_idx + [ntr, ntr + 1]
        gram = gram[:, perm][:, :, perm]
        sums = sums[:, perm]
        raw_diag = np.diagonal(gram, axis1=1, axis2=2).copy()
        if center:
            gram -= sums[:, :, None] * sums[:, None, :] / nob
        fit_, refit = factor_gram(gram, raw_diag)
        if refit.any():
            idx = np.flatnonzero(refit)
            redo = mat(rows[idx], start_lag, nlags, level_first)
            fit_ = NestedFit.concat(
                [(np.flatnonzero(~refit), fit_.take(~refit)), (idx, redo)], nb, c - 1
            )
        return fit_

    return fit


def _adf_core(fitter: Fitter, b: int, n: int, maxlag: int, regression: str,
              autolag: str | None) -> _ADFBatch:
    """ADF for ``b`` series/windows of length ``n`` whose regressions ``fitter`` solves."""
    ntrend = _NTREND[regression]
    ntr = len(_trend_powers(regression))
    singular = np.zeros(b, dtype=bool)
    icbest = np.full(b, np.nan)
    everyone = np.arange(b)

    if autolag is not None:
        # Lag search on the common sample of the maxlag regression, as statsmodels does.
        # Candidate lags whose regression is rank-deficient or an exact fit are skipped;
        # statsmodels fits them with a pseudo-inverse instead (degenerate data only).
        nob = n - 1 - maxlag
        fit = fitter(everyone, maxlag, maxlag, True)
        ks = np.arange(maxlag + 1)
        ncols = ntr + 1 + ks
        kparams = ntrend + 1 + ks
        with np.errstate(divide="ignore", invalid="ignore"):
            ssr_scaled = fit.ssr(ncols)  # (b, maxlag + 1)
            usable = fit.full_rank(ncols) & (ssr_scaled > _PERFECT_FIT)
            singular |= ~usable.any(axis=1)
            if autolag in ("aic", "bic"):
                ssr = ssr_scaled * fit.yscale[:, None]
                nobs2 = nob / 2.0
                llf = -np.log(ssr) * nobs2 - (1 + np.log(np.pi / nobs2)) * nobs2
                penalty = 2.0 if autolag == "aic" else np.log(nob)
                ic = np.where(usable, -2.0 * llf + penalty * kparams, np.inf)
                best = np.argmin(ic, axis=1)
                icbest = ic[everyone, best]
            else:
                tabs = np.abs(fit.proj[:, ncols - 1]) / np.sqrt(ssr_scaled / (nob - kparams))
                rev = ((tabs >= _TSTAT_STOP) & usable)[:, ::-1]
                # Highest usable lag whose own coefficient is significant, else the lowest
                # usable lag (lag 0 unless even that regression is degenerate).
                lowest = np.argmax(usable, axis=1)
                best = np.where(rev.any(axis=1), maxlag - np.argmax(rev, axis=1), lowest)
                icbest = tabs[everyone, best]
    else:
        best = np.full(b, maxlag)

    stat = np.full(b, np.nan)
    for k in np.unique(best[~singular]):
        rows = np.flatnonzero((best == k) & ~singular)
        fit = fitter(rows, int(k), int(k), False)
        df = (n - 1 - k) - (ntrend + 1 + k)
        with np.errstate(divide="ignore", invalid="ignore"):
            bad = ~fit.full_rank(fit.pivots.shape[1])[:, 0] | ~(fit.resid > _PERFECT_FIT)
            t = fit.proj[:, -1] / np.sqrt(fit.resid / df)
        stat[rows] = np.where(bad, np.nan, t)
        singular[rows] |= bad
    stat[singular] = np.nan
    icbest[singular] = np.nan
    nobs = np.where(singular, np.nan, n - 1 - best)
    lags = np.where(singular, np.nan, best)
    return _ADFBatch(stat=stat, lags=lags, nobs=nobs, icbest=icbest, singular=singular)


def _adf_batch(x: np.ndarray, maxlag: int, regression: str, autolag: str | None) -> _ADFBatch:
    """ADF for each row of ``x`` (B, n); rows must be finite and non-constant."""
    b, n = x.shape
    per_item = (n - maxlag) * (maxlag + _NTREND[regression] + 2)
    parts = [
        _adf_core(_matrix_fitter(x[blk], regression), blk.size, n, maxlag, regression, autolag)
        for blk in blocks(np.arange(b), per_item)
    ]
    return _ADFBatch(*(np.concatenate([getattr(p, f) for p in parts])
                       for f in ("stat", "lags", "nobs", "icbest", "singular")))


def _adf_windows(x: np.ndarray, starts: np.ndarray, n: int, maxlag: int, regression: str,
                 autolag: str | None) -> _ADFBatch:
    """ADF for the windows ``x[s : s + n]`` (finite, non-constant) for ``s`` in ``starts``."""
    parts = []
    # Short segments keep the prefix sums (and the level shift) local: fewer lost digits.
    for blk in np.split(starts, np.flatnonzero(np.diff(starts) > 1) + 1):
        for i in range(0, blk.size, _WINDOWS_PER_SEGMENT):
            sub = blk[i : i + _WINDOWS_PER_SEGMENT]
            seg = x[sub[0] : sub[-1] + n]
            fitter = _window_fitter(seg, sub - sub[0], n, regression)
            parts.append(_adf_core(fitter, sub.size, n, maxlag, regression, autolag))
    if not parts:
        empty = np.empty(0)
        return _ADFBatch(empty, empty, empty, empty, np.empty(0, dtype=bool))
    return _ADFBatch(*(np.concatenate([getattr(p, f) for p in parts])
                       for f in ("stat", "lags", "nobs", "icbest", "singular")))


# ---------------------------------------------------------------------------------------
# Public API.


def adf_test(
    x: Any,
    maxlag: int | None = None,
    regression: Regression = "c",
    autolag: str | None = "AIC",
) -> ADFResult:
    """Augmented Dickey-Fuller test for a unit root in ``x``.

    Regresses ``dx_t`` on the lagged level ``x_{t-1}``, ``lags`` lagged differences and the
    deterministic terms, and reports the t-value of the level coefficient. Identical in
    definition to ``statsmodels.tsa.stattools.adfuller`` (same lag search, same sample,
    same MacKinnon p-values and critical values); the regression is solved by this
    module so that it can be batched for :func:`rolling_adf`.

    Parameters
    ----------
    x : array_like, shape (n,)
        Level series (e.g. log prices). Must be finite and not constant.
    maxlag : int, optional
        Largest number of lagged differences. Default (None):
        ``min(n // 2 - ntrend - 1, ceil(12 * (n / 100) ** 0.25))`` (Schwert 1989).
    regression : {"c", "n", "ct", "ctt"}, default "c"
        Deterministic terms: constant, none, constant + trend, constant + quadratic trend.
    autolag : {"AIC", "BIC", "t-stat", None}, default "AIC"
        Lag selection. AIC/BIC: minimise the criterion over ``0..maxlag`` on the common
        sample of the ``maxlag`` regression, then refit the chosen lag on all its
        observations. "t-stat": start at ``maxlag`` and drop lags until the last one is
        significant at 5% (two-sided). None: use ``maxlag`` lags.

    Returns
    -------
    ADFResult

    Raises
    ------
    InsufficientDataError
        ``x`` contains NaN/inf, is constant, is too short for ``maxlag`` and
        ``regression``, or makes the regression singular (e.g. constant increments).
    ValueError, TypeError
        Invalid arguments.

    References
    ----------
    .. [1] Said, S. E. and Dickey, D. A. (1984). "Testing for unit roots in
       autoregressive-moving average models of unknown order." *Biometrika* 71, 599-607.
    .. [2] MacKinnon, J. G. (1994). "Approximate asymptotic distribution functions for
       unit-root and cointegration tests." *J. Business & Economic Statistics* 12, 167-176.
    .. [3] MacKinnon, J. G. (2010). "Critical values for cointegration tests." Queen's
       University Working Paper 1227.
    """
    arr, _ = as_float_1d(x, "x")
    regression = _check_regression(regression)
    autolag_n = _check_autolag(autolag)
    require_finite(arr, "x")
    if arr.size < 3:
        raise InsufficientDataError(f"x has {arr.size} observation(s); ADF needs more")
    require_not_constant(arr, "x")
    lag = _resolve_maxlag(maxlag, arr.size, regression, "x")
    res = _adf_batch(arr[None, :], lag, regression, autolag_n)
    if res.singular[0]:
        raise InsufficientDataError(
            "the ADF regression is singular for x (collinear regressors or an exact fit, "
            "e.g. constant increments); the statistic is undefined"
        )
    stat = float(res.stat[0])
    nobs = int(res.nobs[0])
    crit = mackinnon_crit(np.array([nobs]), regression)[0]
    return ADFResult(
        stat=stat,
        pvalue=float(mackinnon_pvalue(np.array([stat]), regression)[0]),
        critical_values=frozen_mapping({"1%": crit[0], "5%": crit[1], "10%": crit[2]}),
        lags=int(res.lags[0]),
        nobs=nobs,
        maxlag=lag,
        regression=regression,
        autolag=_display_autolag(autolag_n),
        icbest=None if autolag_n is None else float(res.icbest[0]),
    )


def rolling_adf(
    x: Any,
    window: int,
    *,
    maxlag: int | None = None,
    regression: Regression = "c",
    autolag: str | None = "AIC",
) -> RollingADFResult:
    """ADF test on every trailing window of ``x``, batched (no per-window Python loop).

    Parameters
    ----------
    x : array_like, shape (n,)
        Level series; NaN/inf allowed (affected windows are NaN with a reason).
    window : int
        Window length in observations of ``x``.
    maxlag : int, optional
        Largest lag; default is :func:`adf_default_maxlag` of ``window``, i.e. what
        ``adfuller`` would use on each window.
    regression, autolag
        As in :func:`adf_test`.

    Returns
    -------
    RollingADFResult
        Arrays of length ``n``; entry ``t`` equals ``adf_test(x[t - window + 1 : t + 1])``.

    Raises
    ------
    ValueError, TypeError
        Invalid arguments, including a ``window`` too short for ``maxlag``/``regression``.
    """
    arr, index = as_float_1d(x, "x")
    regression = _check_regression(regression)
    autolag_n = _check_autolag(autolag)
    window = check_int(window, "window", 3)
    try:
        lag = _resolve_maxlag(maxlag, window, regression, "window")
    except InsufficientDataError as exc:
        raise ValueError(f"window={window} is too short: {exc}") from None

    n = arr.size
    stat = np.full(n, np.nan)
    lags = np.full(n, np.nan)
    nobs = np.full(n, np.nan)
    reason = window_reasons(arr, window)
    if n >= window:
        starts = np.flatnonzero(reason[window - 1 :] == REASON_OK)
        res = _adf_windows(arr, starts, window, lag, regression, autolag_n)
        pos = starts + window - 1
        stat[pos] = res.stat
        lags[pos] = res.lags
        nobs[pos] = res.nobs
        reason[pos[res.singular]] = REASON_SINGULAR
    return RollingADFResult(
        stat=readonly(stat),
        pvalue=readonly(mackinnon_pvalue(stat, regression)),
        lags=readonly(lags),
        nobs=readonly(nobs),
        critical_values=readonly(mackinnon_crit(nobs, regression)),
        reason=readonly(reason),
        window=window,
        maxlag=lag,
        regression=regression,
        autolag=_display_autolag(autolag_n),
        index=index,
    )

