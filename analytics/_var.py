"""One-day Value-at-Risk and Expected Shortfall: estimation and backtesting.

Conventions used throughout this module
---------------------------------------
* ``level`` is the confidence level, strictly between 0.5 and 1 (0.99 for a 99% VaR); the
  tail probability is ``alpha = 1 - level``.
* VaR and ES are reported as **positive loss fractions** of the position's value:
  ``var = 0.031`` means a 3.1% loss. They are computed on whatever returns are passed
  (simple or log); for a portfolio use simple returns (see :func:`portfolio_returns`).
* Empirical quantile: the *lower* order statistic. With ``x_(0) <= ... <= x_(m-1)`` the
  sorted sample, ``q = x_(k)`` with ``k = floor((m - 1) * alpha)``; this is exactly
  ``numpy.quantile(x, alpha, method="lower")``. ``VaR = -q`` and
  ``ES = -mean(x[x <= q])`` (every observation at or below the quantile, ties included,
  so at least ``k + 1`` of them). Hence ``ES >= VaR`` always.
* A sample must hold at least ``ceil(1 / alpha)`` observations (100 at 99%), so that
  the quantile is not beyond the sample minimum; fewer raise
  :class:`~analytics.InsufficientDataError`.
* An exceedance (exception) on day ``t`` is a loss larger than that day's VaR forecast:
  ``r_t < -VaR_t`` (strict).

References
----------
Barone-Adesi, G., Giannopoulos, K. and Vosper, L. (1999). VaR without correlations for
portfolios of derivative securities. Journal of Futures Markets 19(5), 583-602.
Glosten, L. R., Jagannathan, R. and Runkle, D. E. (1993). On the relation between the
expected value and the volatility of the nominal excess return on stocks. Journal of
Finance 48(5), 1779-1801.
Bollerslev, T. (1987). A conditionally heteroskedastic time series model for speculative
prices and rates of return. Review of Economics and Statistics 69(3), 542-547.
Kuester, K., Mittnik, S. and Paolella, M. S. (2006). Value-at-Risk prediction: a comparison
of alternative strategies. Journal of Financial Econometrics 4(1), 53-89.
Kupiec, P. (1995). Techniques for verifying the accuracy of risk measurement models.
Journal of Derivatives 3(2), 73-84.
Christoffersen, P. (1998). Evaluating interval forecasts. International Economic Review
39(4), 841-862.
Basel Committee on Banking Supervision (1996). Supervisory framework for the use of
"backtesting" in conjunction with the internal models approach to market risk capital
requirements.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.signal import lfilter
from scipy.special import xlogy
from scipy.stats import binom, chi2

from analytics._stats_common import (
    ResultMixin,
    as_float_1d,
    blocks,
    check_choice,
    check_float,
    check_int,
    frozen_mapping,
    readonly,
)
from analytics.errors import EstimationWarning, InsufficientDataError

__all__ = [
    "VaRResult",
    "KupiecResult",
    "ChristoffersenResult",
    "VaRBacktestResult",
    "historical_var_es",
    "filtered_historical_var_es",
    "gjr_filtered_var_es",
    "gjr_filtered_portfolio_var_es",
    "portfolio_returns",
    "kupiec_pof",
    "christoffersen",
    "basel_zone",
    "var_backtest",
]

Method = Literal["historical", "filtered", "gjr_filtered"]
_METHODS = ("historical", "filtered", "gjr_filtered")
# The two GARCH filters: (asymmetric terms o, quasi-likelihood) given to arch_model.
_FILTERS = {"filtered": (0, "normal"), "gjr_filtered": (1, "t")}
_MODEL_NAMES = {"filtered": "GARCH(1,1)", "gjr_filtered": "GJR-GARCH(1,1,1)-t"}
# Returns are multiplied by this before the GARCH fit (percent units): arch's optimiser
# is reliable when the standard deviation is of order 1, not 0.01.
_GARCH_SCALE = 100.0
# GARCH(1,1) is not fitted on fewer observations than this, whatever the level.
_GARCH_MIN_OBS = 100
# Basel traffic light: cumulative binomial probability thresholds.
_BASEL_GREEN = 0.95
_BASEL_YELLOW = 0.9999
_BASEL_WINDOW = 250


# ---------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True, eq=False)
class VaRResult(ResultMixin):
    """Result of :func:`historical_var_es`, :func:`filtered_historical_var_es` and
    :func:`gjr_filtered_var_es`.

    Attributes
    ----------
    var : float
        One-day Value-at-Risk as a positive loss fraction (``-q``, ``q`` the forecast
        return quantile at ``1 - level``).
    es : float
        One-day Expected Shortfall as a positive loss fraction (minus the mean return at
        or below ``q``). ``es >= var``.
    level : float
        Confidence level.
    n : int
        Observations used.
    n_tail : int
        Observations at or below the empirical quantile (averaged for ES).
    method : str
        "historical", "filtered" or "gjr_filtered".
    sigma_forecast : float or None
        Filtered methods only: GARCH one-step volatility forecast ``sigma_{T+1}`` for the
        next day, in return units (not x100). None for "historical".
    mean_forecast : float or None
        Filtered methods only: the GARCH constant mean ``mu`` in return units. None for
        "historical".
    garch_params : Mapping[str, float] or None
        Filtered methods only: ``mu``, ``omega``, ``alpha``, ``beta`` in return units (``mu``
        as a fraction, ``omega`` in squared fractions; arch reports them x100 and x10^4);
        "gjr_filtered" adds the asymmetry ``gamma`` and the Student-t degrees of freedom
        ``nu``.
    converged : bool or None
        Filtered methods only: whether arch's optimiser reported convergence.
    """

    var: float
    es: float
    level: float
    n: int
    n_tail: int
    method: str
    sigma_forecast: float | None = None
    mean_forecast: float | None = None
    garch_params: Mapping[str, float] | None = None
    converged: bool | None = None


@dataclass(frozen=True, eq=False)
class KupiecResult(ResultMixin):
    """Result of :func:`kupiec_pof` (proportion-of-failures likelihood-ratio test).

    Attributes
    ----------
    lr : float
        ``-2 ln[(1-p)^(n-x) p^x / ((1-x/n)^(n-x) (x/n)^x)]`` with ``p = 1 - level`` and
        ``0 ln 0 = 0``; always finite and >= 0.
    pvalue : float
        ``chi2(1).sf(lr)``; small = the exception rate differs from ``p``.
    n : int
        Observations.
    x : int
        Exceptions.
    expected : float
        Expected exceptions ``n * (1 - level)``.
    rate : float
        Observed exception rate ``x / n``.
    level : float
        Confidence level of the VaR being tested.
    """

    lr: float
    pvalue: float
    n: int
    x: int
    expected: float
    rate: float
    level: float


@dataclass(frozen=True, eq=False)
class ChristoffersenResult(ResultMixin):
    """Result of :func:`christoffersen` (independence and conditional-coverage tests).

    Attributes
    ----------
    lr_ind, pvalue_ind : float
        Independence LR (first-order Markov alternative) and its ``chi2(1)`` p-value.
    lr_cc, pvalue_cc : float
        Conditional coverage ``lr_cc = lr_pof + lr_ind`` and its ``chi2(2)`` p-value.
    lr_pof, pvalue_pof : float
        Kupiec's unconditional-coverage LR on all ``n`` observations, ``chi2(1)``.
    n00, n01, n10, n11 : int
        Transition counts ``n_ij = #{t >= 1: I_{t-1} = i, I_t = j}`` (``n - 1`` in total).
    pi01, pi11 : float
        ``n01 / (n00 + n01)`` and ``n11 / (n10 + n11)``; NaN when the denominator is 0.
    pi : float
        ``(n01 + n11) / (n - 1)``.
    n, x : int
        Observations and exceptions.
    level : float
    """

    lr_ind: float
    pvalue_ind: float
    lr_cc: float
    pvalue_cc: float
    lr_pof: float
    pvalue_pof: float
    n00: int
    n01: int
    n10: int
    n11: int
    pi01: float
    pi11: float
    pi: float
    n: int
    x: int
    level: float


@dataclass(frozen=True, eq=False)
class VaRBacktestResult(ResultMixin):
    """Result of :func:`var_backtest`; arrays have one entry per forecast day.

    Forecast day ``i`` is input position ``start + i`` (``start == window``).

    Attributes
    ----------
    returns : ndarray, shape (n,)
        Realised returns on the forecast days.
    var, es : ndarray, shape (n,)
        One-day-ahead VaR and ES forecasts (positive loss fractions), each computed from
        returns strictly before its day.
    exceedances : ndarray of bool, shape (n,)
        ``returns < -var``.
    sigma_forecast : ndarray or None
        Filtered methods only: the GARCH volatility forecast for each day (return units).
    n : int
        Forecast days.
    n_exceptions : int
        Exceedances over the whole sample.
    expected : float
        ``n * (1 - level)``.
    rate : float
        ``n_exceptions / n``.
    kupiec : KupiecResult
    christoffersen : ChristoffersenResult
        Both on the whole sample.
    basel_zone : str
        "green", "yellow" or "red" for the last ``basel_n_obs`` days (250, or all days when
        there are fewer), see :func:`basel_zone`.
    basel_exceptions : int
        Exceedances in those last ``basel_n_obs`` days.
    basel_n_obs : int
    level : float
    method : str
    window : int
    refit_every : int
        Filtered methods: days between GARCH refits (recorded but unused for "historical").
    start : int
        Input position of the first forecast day.
    n_refits : int
        GARCH fits attempted (0 for "historical").
    n_fit_failures : int
        Refits that failed and kept the previous parameters.
    n_not_converged : int
        Refits whose optimiser did not report convergence (their estimates are still used).
    index : pandas.Index or None
        Index of the forecast days when ``returns`` was a pandas Series. ``to_dict`` gives it
        as a list of strings (ISO format for timestamps).
    """

    returns: np.ndarray
    var: np.ndarray
    es: np.ndarray
    exceedances: np.ndarray
    sigma_forecast: np.ndarray | None
    n: int
    n_exceptions: int
    expected: float
    rate: float
    kupiec: KupiecResult
    christoffersen: ChristoffersenResult
    basel_zone: str
    basel_exceptions: int
    basel_n_obs: int
    level: float
    method: str
    window: int
    refit_every: int
    start: int
    n_refits: int
    n_fit_failures: int
    n_not_converged: int
    index: Any = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["kupiec"] = self.kupiec.to_dict()
        out["christoffersen"] = self.christoffersen.to_dict()
        if self.index is not None:
            out["index"] = [v.isoformat() if hasattr(v, "isoformat") else str(v) for v in self.index]
        else:
            out["index"] = None
        return out


# ---------------------------------------------------------------------------------------
# Validation helpers


def _check_level(level: Any) -> float:
    return check_float(level, "level", 0.5, 1.0)


def _min_obs(level: float) -> int:
    """``ceil(1 / (1 - level))``, robust to the float error in ``1 - level``."""
    return int(math.ceil(1.0 / (1.0 - level) - 1e-9))


def _finite_returns(x: Any, name: str) -> tuple[np.ndarray, Any]:
    arr, index = as_float_1d(x, name)
    bad = int(np.count_nonzero(~np.isfinite(arr)))
    if bad:
        raise ValueError(
            f"{name} contains {bad} NaN/inf value(s) out of {arr.size}; drop or fill them first"
        )
    return arr, index


def _require(arr: np.ndarray, minimum: int, name: str, what: str) -> None:
    if arr.size < minimum:
        raise InsufficientDataError(
            f"{name} has {arr.size} observation(s); {what} needs at least {minimum}"
        )


def _as_exceedances(x: Any, name: str = "exceedances") -> np.ndarray:
    arr, _ = as_float_1d(x, name)
    if np.any(np.isnan(arr)):
        raise ValueError(f"{name} contains NaN; it must hold only True/False (or 1/0)")
    if np.any((arr != 0.0) & (arr != 1.0)):
        raise ValueError(f"{name} must hold only True/False (or 1/0)")
    if arr.size == 0:
        raise InsufficientDataError(f"{name} is empty")
    return arr == 1.0


# ---------------------------------------------------------------------------------------
# Empirical tail


def _lower_tail(x: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row-wise lower empirical quantile, tail mean and tail count of a 2-D array.

    ``q = x_(k)``, ``k = floor((m - 1) * alpha)`` (numpy's ``method="lower"``), and the mean
    of all entries ``<= q``. Rows are processed in blocks to bound memory.
    """
    rows, m = x.shape
    k = int(np.floor((m - 1) * alpha))
    q = np.empty(rows)
    tail = np.empty(rows)
    count = np.empty(rows, dtype=np.int64)
    for sl in blocks(np.arange(rows), 3 * m):
        xb = x[sl]
        qb = np.partition(xb, k, axis=1)[:, k]
        mask = xb <= qb[:, None]
        cnt = mask.sum(axis=1)
        q[sl] = qb
        tail[sl] = np.where(mask, xb, 0.0).sum(axis=1) / cnt
        count[sl] = cnt
    return q, tail, count


# ---------------------------------------------------------------------------------------
# Historical simulation


def historical_var_es(returns: Any, level: float = 0.99) -> VaRResult:
    """One-day historical-simulation VaR and ES.

    Parameters
    ----------
    returns : array-like or pandas.Series, shape (n,)
        Daily simple (or log) returns; finite.
    level : float, default 0.99
        Confidence level, strictly between 0.5 and 1.

    Returns
    -------
    VaRResult
        ``var = -q`` with ``q = numpy.quantile(returns, 1 - level, method="lower")``, i.e.
        the order statistic ``x_(k)``, ``k = floor((n - 1)(1 - level))`` (0-based, ascending);
        ``es = -mean(returns[returns <= q])``. Positive numbers are losses.

    Raises
    ------
    ValueError
        ``returns`` holds NaN/inf or is not 1-D; ``level`` outside (0.5, 1).
    InsufficientDataError
        Fewer than ``ceil(1 / (1 - level))`` observations.
    """
    level = _check_level(level)
    r, _ = _finite_returns(returns, "returns")
    _require(r, _min_obs(level), "returns", f"a {level:g} VaR")
    q, tail, cnt = _lower_tail(r[None, :], 1.0 - level)
    return VaRResult(
        var=float(-q[0]), es=float(-tail[0]), level=level, n=int(r.size),
        n_tail=int(cnt[0]), method="historical",
    )


# ---------------------------------------------------------------------------------------
# GARCH(1,1) and GJR-GARCH(1,1,1) filtering


@dataclass(frozen=True)
class _Garch:
    mu: float  # scaled (x100) units
    omega: float
    alpha: float
    beta: float
    converged: bool
    gamma: float = 0.0  # GJR asymmetry: extra weight on negative shocks
    nu: float | None = None  # Student-t degrees of freedom (t quasi-likelihood only)


def _backcast(e: np.ndarray) -> float:
    """arch's initial-variance backcast: 0.94-weighted mean of the first 75 squared residuals."""
    tau = min(75, e.size)
    w = 0.94 ** np.arange(tau)
    return float(np.sum(e[:tau] ** 2 * (w / w.sum())))


def _fit_garch(y: np.ndarray, o: int = 0, dist: str = "normal") -> _Garch | None:
    """Constant-mean GARCH(1,1) (``o=0``) or GJR-GARCH(1,1,1) (``o=1``) on scaled returns
    ``y`` by arch's (quasi-)maximum likelihood under ``dist``; None when arch fails."""
    from arch import arch_model

    if np.all(y == y[0]):
        return None
    am = arch_model(y, mean="Constant", vol="GARCH", p=1, o=o, q=1, dist=dist, rescale=False)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = am.fit(disp="off", show_warning=False)
    except (ValueError, np.linalg.LinAlgError, FloatingPointError):
        return None
    p = res.params
    names = ["mu", "omega", "alpha[1]", "beta[1]"] + ["gamma[1]"] * o + ["nu"] * (dist == "t")
    vals = [float(p[k]) for k in names]
    if not np.all(np.isfinite(vals)):
        return None
    return _Garch(
        vals[0], vals[1], vals[2], vals[3], bool(res.convergence_flag == 0),
        gamma=float(p["gamma[1]"]) if o else 0.0,
        nu=float(p["nu"]) if dist == "t" else None,
    )


def _garch_variance(y: np.ndarray, g: _Garch, fit_len: int | None = None) -> np.ndarray:
    """``sigma^2_t`` for ``t = 0 .. len(y)`` (the last entry is the one-step forecast).

    Same recursion and start as arch: ``sigma^2_0 = omega + (alpha + gamma / 2 + beta) *
    backcast`` with the backcast taken on ``y - mean(y)`` over the fitting sample
    ``y[:fit_len]`` (all of ``y`` when None; a longer ``y`` must not move the start, or the
    path would depend on later returns); then, with ``e_t = y_t - mu``,
    ``sigma^2_{t+1} = omega + (alpha + gamma [e_t < 0]) e_t^2 + beta sigma^2_t``
    (``gamma = 0``: plain GARCH(1,1)). The indicator depends on ``e`` only, so the
    recursion stays a linear filter in ``sigma^2``.
    """
    fit = y if fit_len is None else y[:fit_len]
    s0 = g.omega + (g.alpha + 0.5 * g.gamma + g.beta) * _backcast(fit - fit.mean())
    e = y - g.mu
    drive = g.omega + (g.alpha + g.gamma * (e < 0)) * e**2
    rest = lfilter([1.0], [1.0, -g.beta], drive, zi=np.array([g.beta * s0]))[0]
    return np.concatenate([[s0], rest])


def filtered_historical_var_es(returns: Any, level: float = 0.99) -> VaRResult:
    """One-day filtered-historical-simulation VaR and ES (Barone-Adesi et al., 1999).

    A constant-mean GARCH(1,1) with normal quasi-likelihood is fitted with arch to
    ``100 * returns`` (percent units, for the optimiser). With ``e_t = y_t - mu`` and the
    fitted conditional volatility ``sigma_t``, the standardised residuals
    ``z_t = e_t / sigma_t`` form the empirical innovation distribution. The next-day return
    is ``mu + sigma_{T+1} z`` with ``sigma^2_{T+1} = omega + alpha e_T^2 + beta sigma^2_T``,
    so (back in return units)

    ``var = -(mu + sigma_{T+1} q_z) / 100`` and ``es = -(mu + sigma_{T+1} m_z) / 100``,

    with ``q_z`` the lower empirical quantile of ``z`` at ``1 - level`` (module
    convention) and ``m_z`` the mean of ``z <= q_z``. The normal likelihood only estimates
    the volatility dynamics; the tail shape comes from the residuals themselves. The fit
    is deterministic (arch's fixed starting-value grid and SLSQP).

    Parameters
    ----------
    returns : array-like or pandas.Series, shape (n,)
        Daily returns; finite, not constant.
    level : float, default 0.99
        Confidence level, strictly between 0.5 and 1.

    Returns
    -------
    VaRResult
        With ``sigma_forecast``, ``mean_forecast``, ``garch_params`` and ``converged``.

    Raises
    ------
    ValueError
        NaN/inf in ``returns``; ``level`` outside (0.5, 1).
    InsufficientDataError
        Fewer than ``max(100, ceil(1 / (1 - level)))`` observations, constant returns, or
        arch cannot produce finite estimates.

    Warns
    -----
    EstimationWarning
        The optimiser did not report convergence (the estimates are still used).
    """
    return _filtered_var_es(returns, level, "filtered")


def gjr_filtered_var_es(returns: Any, level: float = 0.99) -> VaRResult:
    """One-day VaR and ES by filtered historical simulation on a GJR-GARCH(1,1,1) with
    Student-t innovations (the gate's default method).

    A constant-mean GJR-GARCH (Glosten, Jagannathan and Runkle, 1993) is fitted with arch,
    by Student-t maximum likelihood (Bollerslev, 1987), to ``y = 100 * returns``:

    ``y_t = mu + e_t``, ``sigma^2_{t+1} = omega + (alpha + gamma [e_t < 0]) e_t^2 +
    beta sigma^2_t``,

    started as arch does (``sigma^2_0 = omega + (alpha + gamma / 2 + beta) * backcast``).
    The asymmetry ``gamma`` lets a fall raise the next day's volatility more than a rise of
    the same size (the leverage effect of equity indices), and the t likelihood keeps
    single crash days from dominating the fit. As in :func:`filtered_historical_var_es`
    (Barone-Adesi et al., 1999) the tail shape is then taken from the standardised
    residuals ``z_t = e_t / sigma_t`` themselves, not from the t density:

    ``var = -(mu + sigma_{T+1} q_z) / 100`` and ``es = -(mu + sigma_{T+1} m_z) / 100``,

    with ``q_z`` the lower empirical quantile of ``z`` at ``1 - level`` (module
    convention) and ``m_z`` the mean of ``z <= q_z``. Kuester, Mittnik and Paolella (2006)
    found this family (FHS on an asymmetric GARCH with fat-tailed innovations) among the
    best VaR predictors for equity returns. The fit is deterministic (arch's fixed
    starting values and SLSQP); fits are cached on the exact bytes of ``returns``, so a
    repeated call with the same series costs microseconds instead of a fit (about
    20-30 ms on 250-500 returns).

    Parameters
    ----------
    returns : array-like or pandas.Series, shape (n,)
        Daily returns; finite, not constant.
    level : float, default 0.99
        Confidence level, strictly between 0.5 and 1.

    Returns
    -------
    VaRResult
        ``method="gjr_filtered"``, with ``sigma_forecast``, ``mean_forecast``,
        ``garch_params`` (``mu``, ``omega``, ``alpha``, ``gamma``, ``beta``, ``nu``) and
        ``converged``.

    Raises
    ------
    ValueError
        NaN/inf in ``returns``; ``level`` outside (0.5, 1).
    InsufficientDataError
        Fewer than ``max(100, ceil(1 / (1 - level)))`` observations, constant returns, or
        arch cannot produce finite estimates.

    Warns
    -----
    EstimationWarning
        The optimiser did not report convergence (the estimates are still used).

    See Also
    --------
    var_backtest : ``method="gjr_filtered"`` backtests this estimator walk-forward.

    References
    ----------
    Glosten, Jagannathan and Runkle (1993); Bollerslev (1987); Barone-Adesi, Giannopoulos
    and Vosper (1999); Kuester, Mittnik and Paolella (2006): full citations in the module
    docstring.
    """
    return _filtered_var_es(returns, level, "gjr_filtered")


@functools.lru_cache(maxsize=256)
def _fit_cached(key: bytes, method: str) -> _Garch | None:
    # Keyed on the exact bytes of the scaled series: the fit is a pure function of them,
    # so a hit returns what a new fit would. Bounded: 256 keys of 250-500 floats ~ 1 MB.
    return _fit_garch(np.frombuffer(key, dtype=np.float64), *_FILTERS[method])


def _filter_series(
    r: np.ndarray, method: str, name: str, what: str, stacklevel: int
) -> tuple[_Garch, np.ndarray, float]:
    """Fit (cached) and filter one return series: parameters, standardised residuals
    ``z`` (x100 units cancel) and the next-day volatility ``sigma_{T+1}`` (x100 units)."""
    if np.all(r == r[0]):
        raise InsufficientDataError(f"{what} is constant; a {name} model cannot be fitted")
    y = np.ascontiguousarray(r * _GARCH_SCALE)
    g = _fit_cached(y.tobytes(), method)
    if g is None:
        raise InsufficientDataError(f"{name} could not be fitted to {what}")
    if not g.converged:
        warnings.warn(
            f"{name} optimiser did not report convergence on {what}; the VaR uses its last "
            "estimates",
            EstimationWarning,
            stacklevel=stacklevel,
        )
    s2 = _garch_variance(y, g)
    return g, (y - g.mu) / np.sqrt(s2[:-1]), float(np.sqrt(s2[-1]))


def _filtered_var_es(returns: Any, level: Any, method: str) -> VaRResult:
    level = _check_level(level)
    r, _ = _finite_returns(returns, "returns")
    name = _MODEL_NAMES[method]
    _require(r, max(_GARCH_MIN_OBS, _min_obs(level)), "returns", f"a filtered {name} VaR")
    g, z, sig = _filter_series(r, method, name, "returns", stacklevel=4)
    qz, mz, cnt = _lower_tail(z[None, :], 1.0 - level)
    s = _GARCH_SCALE
    params = {"mu": g.mu / s, "omega": g.omega / s**2, "alpha": g.alpha, "beta": g.beta}
    if method == "gjr_filtered":
        params["gamma"] = g.gamma
        params["nu"] = float(g.nu) if g.nu is not None else math.nan
    return VaRResult(
        var=float(-(g.mu + sig * qz[0]) / s),
        es=float(-(g.mu + sig * mz[0]) / s),
        level=level,
        n=int(r.size),
        n_tail=int(cnt[0]),
        method=method,
        sigma_forecast=sig / s,
        mean_forecast=g.mu / s,
        garch_params=frozen_mapping(params),
        converged=g.converged,
    )


def _gjr_asset_scenarios(
    m: np.ndarray, live: np.ndarray, columns: Any, stacklevel: int
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Per-asset GJR-GARCH(1,1,1)-t filtered scenarios of :func:`gjr_filtered_portfolio_var_es`.

    For each column ``j`` in ``live`` (validated finite matrix ``m``, shape (n, k)), the
    (cached) fit gives ``mu_j``, ``sigma_{j,T+1}`` and ``z_{t,j}``; column ``j`` of the
    returned matrix is ``mu_j + sigma_{j,T+1} z_{t,j}`` in x100 units (other columns are 0).
    Also returns the ``mu_j`` (x100, 0 for columns not in ``live``) and whether every fit
    reported convergence. ``stacklevel`` is passed to the non-convergence warning (count
    this helper's and ``_filter_series``'s frames too).
    """
    name = _MODEL_NAMES["gjr_filtered"]
    scen = np.zeros(m.shape, dtype=np.float64)
    mus = np.zeros(m.shape[1], dtype=np.float64)
    converged = True
    for j in live:
        label = f"column {columns[j]!r}" if columns is not None else f"column {j}"
        g, z, sig = _filter_series(
            np.ascontiguousarray(m[:, j]), "gjr_filtered", name, label, stacklevel=stacklevel
        )
        scen[:, j] = g.mu + sig * z
        mus[j] = g.mu
        converged &= g.converged
    return scen, mus, bool(converged)


def gjr_filtered_portfolio_var_es(returns_matrix: Any, weights: Any, level: float = 0.99) -> VaRResult:
    """One-day portfolio VaR and ES by filtered historical simulation with one
    GJR-GARCH(1,1,1)-t filter per asset (Barone-Adesi, Giannopoulos and Vosper, 1999).

    Each column ``j`` is filtered as in :func:`gjr_filtered_var_es`, giving ``mu_j``,
    the next-day volatility ``sigma_{j,T+1}`` and standardised residuals ``z_{t,j}``. The
    residual *vectors* of the same days are resampled together, which keeps the assets'
    co-movements (crash days hit every column on the same row) without estimating a
    correlation matrix. Scenario ``t`` is the portfolio return

    ``R_t = sum_j w_j (mu_j + sigma_{j,T+1} z_{t,j})``,

    and ``var = -q``, ``es = -mean(R[R <= q])`` with ``q`` the lower empirical quantile of
    the ``n`` scenarios at ``1 - level`` (module convention). With one column and a
    positive weight ``w`` this is ``w`` times :func:`gjr_filtered_var_es` (up to rounding); a
    negative weight (short) reads the upper tail of the same filtered distribution.

    The fits depend only on each column, not on the weights, and are cached on the exact
    bytes of the column: evaluating many candidate weight vectors over the same returns
    (the risk gate checking every proposed order of a bar) costs one fit per asset, then
    microseconds per call.

    Parameters
    ----------
    returns_matrix : array-like or pandas.DataFrame, shape (n, k)
        Daily simple returns of ``k`` assets over the same ``n`` days; finite; no constant
        column (unless its weight is 0).
    weights : array-like, shape (k,), or pandas.Series
        Position values as fractions of equity, as in :func:`portfolio_returns`; columns
        with weight 0 are ignored (not fitted).
    level : float, default 0.99
        Confidence level, strictly between 0.5 and 1.

    Returns
    -------
    VaRResult
        ``method="gjr_filtered"``; ``n`` scenarios, ``n_tail`` of them averaged for ES;
        ``mean_forecast = sum_j w_j mu_j``; ``converged`` is True when every fit reported
        convergence. ``sigma_forecast`` and ``garch_params`` are None (one model per
        asset). All weights 0 gives ``var = es = 0``.

    Raises
    ------
    ValueError
        Wrong shapes, NaN/inf in ``returns_matrix`` or ``weights``, Series weights that
        miss a column; ``level`` outside (0.5, 1).
    InsufficientDataError
        Fewer than ``max(100, ceil(1 / (1 - level)))`` rows, a constant column with a
        non-zero weight, or a column arch cannot fit.

    Warns
    -----
    EstimationWarning
        A fit did not report convergence (its estimates are still used).
    """
    level = _check_level(level)
    m, w, columns = _matrix_and_weights(returns_matrix, weights)
    name = _MODEL_NAMES["gjr_filtered"]
    minimum = max(_GARCH_MIN_OBS, _min_obs(level))
    if m.shape[0] < minimum:
        raise InsufficientDataError(
            f"returns_matrix has {m.shape[0]} row(s); a filtered {name} VaR needs at least {minimum}"
        )
    live = np.flatnonzero(w != 0.0)
    if live.size == 0:
        return VaRResult(var=0.0, es=0.0, level=level, n=int(m.shape[0]), n_tail=0,
                         method="gjr_filtered", mean_forecast=0.0, converged=True)
    asset_scen, mus, converged = _gjr_asset_scenarios(m, live, columns, stacklevel=4)
    scen = np.zeros(m.shape[0])
    mean = 0.0
    for j in live:
        scen += w[j] * asset_scen[:, j]
        mean += w[j] * mus[j]
    q, tail, cnt = _lower_tail(scen[None, :], 1.0 - level)
    return VaRResult(
        var=float(-q[0] / _GARCH_SCALE),
        es=float(-tail[0] / _GARCH_SCALE),
        level=level,
        n=int(m.shape[0]),
        n_tail=int(cnt[0]),
        method="gjr_filtered",
        mean_forecast=mean / _GARCH_SCALE,
        converged=bool(converged),
    )


# ---------------------------------------------------------------------------------------
# Portfolio


def _matrix_and_weights(returns_matrix: Any, weights: Any, name: str = "returns_matrix",
                        strict: bool = False) -> tuple[np.ndarray, np.ndarray, Any]:
    """Validated ``(matrix (n, k), weights (k,), column labels or None)`` of a portfolio input.

    Series weights are aligned on a DataFrame's columns (every column needs an entry). With
    ``strict`` a matrix without columns and non-zero weights of assets not in the matrix are
    refused too.
    """
    columns = getattr(returns_matrix, "columns", None)
    m = np.asarray(returns_matrix.to_numpy() if hasattr(returns_matrix, "to_numpy") else returns_matrix,
                   dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"{name} must be two-dimensional (n, k), got shape {m.shape}")
    if strict and m.shape[1] == 0:
        raise ValueError(f"{name} has no columns")
    if columns is not None and hasattr(weights, "reindex") and hasattr(weights, "index"):
        missing = [c for c in columns if c not in weights.index]
        if missing:
            raise ValueError(f"weights has no entry for column(s) {missing!r}")
        extra = [c for c in weights.index if c not in set(columns) and weights[c] != 0] if strict else []
        if extra:
            raise ValueError(f"weights has non-zero entries for asset(s) not in {name}: {extra!r}")
        weights = weights.reindex(columns)
    w, _ = as_float_1d(weights, "weights")
    if w.size != m.shape[1]:
        raise ValueError(f"weights has {w.size} entries but {name} has {m.shape[1]} columns")
    if not np.all(np.isfinite(m)):
        raise ValueError(f"{name} contains NaN/inf; drop or fill them first")
    if not np.all(np.isfinite(w)):
        raise ValueError("weights contains NaN/inf")
    return m, w, columns


def portfolio_returns(returns_matrix: Any, weights: Any) -> Any:
    """Daily portfolio return ``R_t = sum_j w_j r_{t,j}`` for fixed weights.

    Parameters
    ----------
    returns_matrix : array-like or pandas.DataFrame, shape (n, k)
        Simple returns of ``k`` assets (the sum is exact for simple returns with the
        weights rebalanced daily; for log returns it is only a first-order approximation).
    weights : array-like, shape (k,), or pandas.Series
        Position values as fractions of equity; they need not sum to 1 (leverage, cash),
        negative means short. A Series is aligned on the DataFrame's columns.

    Returns
    -------
    ndarray, shape (n,), or pandas.Series named "portfolio" when ``returns_matrix`` is a
    DataFrame (same index).

    Raises
    ------
    ValueError
        Wrong shapes, NaN/inf, or Series weights that miss a column.
    """
    index = getattr(returns_matrix, "index", None)
    m, w, columns = _matrix_and_weights(returns_matrix, weights)
    out = m @ w
    if columns is not None:
        import pandas as pd

        return pd.Series(out, index=index, name="portfolio")
    return out


# ---------------------------------------------------------------------------------------
# Backtests


def _kupiec(n: int, x: int, p: float, level: float) -> KupiecResult:
    phat = x / n
    # ln L(p) - ln L(phat), with 0 ln 0 = 0 (xlogy) so x = 0 and x = n stay finite.
    ll0 = xlogy(n - x, 1.0 - p) + xlogy(x, p)
    ll1 = xlogy(n - x, 1.0 - phat) + xlogy(x, phat)
    lr = max(0.0, float(-2.0 * (ll0 - ll1)))
    return KupiecResult(
        lr=lr, pvalue=float(chi2.sf(lr, 1)), n=n, x=x, expected=n * p, rate=phat, level=level
    )


def kupiec_pof(exceedances: Any, level: float = 0.99) -> KupiecResult:
    """Kupiec (1995) proportion-of-failures test of unconditional coverage.

    ``H0``: exceptions occur with probability ``p = 1 - level``. With ``n`` observations
    and ``x`` exceptions,
    ``LR = -2 ln[(1-p)^(n-x) p^x / ((1-x/n)^(n-x) (x/n)^x)] ~ chi2(1)``.
    The limits ``0 ln 0 = 0`` make ``x = 0`` (``LR = -2 n ln(1-p)``) and ``x = n``
    (``LR = -2 n ln p``) finite.

    Parameters
    ----------
    exceedances : array-like of bool (or 0/1), shape (n,)
        True on days whose loss exceeded the VaR.
    level : float, default 0.99
        Confidence level of the VaR, strictly between 0.5 and 1.

    Returns
    -------
    KupiecResult

    Raises
    ------
    ValueError
        Entries other than True/False/0/1 (NaN included); ``level`` out of range.
    InsufficientDataError
        Empty ``exceedances``.
    """
    level = _check_level(level)
    e = _as_exceedances(exceedances)
    return _kupiec(int(e.size), int(np.count_nonzero(e)), 1.0 - level, level)


def christoffersen(exceedances: Any, level: float = 0.99) -> ChristoffersenResult:
    """Christoffersen (1998) independence and conditional-coverage tests.

    From the transition counts ``n_ij`` of the exception indicator over ``t = 1..n-1``,
    ``pi01 = n01/(n00+n01)``, ``pi11 = n11/(n10+n11)``, ``pi = (n01+n11)/(n-1)``:

    ``LR_ind = -2 [ (n00+n10) ln(1-pi) + (n01+n11) ln pi
    - n00 ln(1-pi01) - n01 ln pi01 - n10 ln(1-pi11) - n11 ln pi11 ] ~ chi2(1)``,

    with ``0 ln 0 = 0`` (empty cells and undefined ``pi01``/``pi11`` contribute nothing).
    ``LR_cc = LR_pof + LR_ind ~ chi2(2)``, where ``LR_pof`` is Kupiec's statistic on all
    ``n`` observations (:func:`kupiec_pof`).

    Parameters
    ----------
    exceedances : array-like of bool (or 0/1), shape (n,)
    level : float, default 0.99

    Returns
    -------
    ChristoffersenResult

    Raises
    ------
    ValueError
        Entries other than True/False/0/1; ``level`` out of range.
    InsufficientDataError
        Fewer than 2 observations (no transition).
    """
    level = _check_level(level)
    e = _as_exceedances(exceedances)
    if e.size < 2:
        raise InsufficientDataError("exceedances needs at least 2 observations for transitions")
    prev, cur = e[:-1], e[1:]
    n00 = int(np.count_nonzero(~prev & ~cur))
    n01 = int(np.count_nonzero(~prev & cur))
    n10 = int(np.count_nonzero(prev & ~cur))
    n11 = int(np.count_nonzero(prev & cur))
    d0, d1, m = n00 + n01, n10 + n11, e.size - 1
    pi01 = n01 / d0 if d0 else math.nan
    pi11 = n11 / d1 if d1 else math.nan
    pi = (n01 + n11) / m
    ll_null = xlogy(n00 + n10, 1.0 - pi) + xlogy(n01 + n11, pi)
    ll_alt = 0.0
    if d0:
        ll_alt += xlogy(n00, 1.0 - pi01) + xlogy(n01, pi01)
    if d1:
        ll_alt += xlogy(n10, 1.0 - pi11) + xlogy(n11, pi11)
    lr_ind = max(0.0, float(-2.0 * (ll_null - ll_alt)))
    pof = _kupiec(int(e.size), int(np.count_nonzero(e)), 1.0 - level, level)
    lr_cc = pof.lr + lr_ind
    return ChristoffersenResult(
        lr_ind=lr_ind, pvalue_ind=float(chi2.sf(lr_ind, 1)),
        lr_cc=lr_cc, pvalue_cc=float(chi2.sf(lr_cc, 2)),
        lr_pof=pof.lr, pvalue_pof=pof.pvalue,
        n00=n00, n01=n01, n10=n10, n11=n11, pi01=pi01, pi11=pi11, pi=pi,
        n=int(e.size), x=pof.x, level=level,
    )


def basel_zone(n_exceptions: int, n_obs: int = 250, level: float = 0.99) -> str:
    """Basel traffic-light zone for ``n_exceptions`` VaR exceptions in ``n_obs`` days.

    With ``P = binom.cdf(n_exceptions, n_obs, 1 - level)`` (the probability of at most that
    many exceptions under a correct model): "green" if ``P < 0.95``, "yellow" if
    ``P < 0.9999``, otherwise "red". For 250 days at 99%: green 0-4, yellow 5-9, red 10+.

    Parameters
    ----------
    n_exceptions : int
        Exceptions observed, ``0 <= n_exceptions <= n_obs``.
    n_obs : int, default 250
    level : float, default 0.99

    Returns
    -------
    str
        "green", "yellow" or "red".
    """
    n_obs = check_int(n_obs, "n_obs", 1)
    x = check_int(n_exceptions, "n_exceptions", 0)
    if x > n_obs:
        raise ValueError(f"n_exceptions ({x}) cannot exceed n_obs ({n_obs})")
    level = _check_level(level)
    p = float(binom.cdf(x, n_obs, 1.0 - level))
    if p < _BASEL_GREEN:
        return "green"
    if p < _BASEL_YELLOW:
        return "yellow"
    return "red"


def _historical_forecasts(r: np.ndarray, window: int, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    views = sliding_window_view(r, window)[: r.size - window]  # row i: r[i : i + window]
    q, tail, _ = _lower_tail(views, alpha)
    return -q, -tail


def _filtered_forecasts(
    r: np.ndarray, window: int, alpha: float, refit_every: int, method: str = "filtered"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int, int]:
    n = r.size
    y = r * _GARCH_SCALE
    m = n - window
    var, es, sig = np.empty(m), np.empty(m), np.empty(m)
    g: _Garch | None = None
    n_refits = n_fail = n_nc = 0
    for t0 in range(window, n, refit_every):
        t1 = min(t0 + refit_every, n)
        n_refits += 1
        new = _fit_garch(y[t0 - window : t0], *_FILTERS[method])
        if new is None:
            if g is None:
                raise InsufficientDataError(
                    f"the {method} GARCH model could not be fitted on the first window "
                    f"(returns[{t0 - window}:{t0}])"
                )
            n_fail += 1
        else:
            g = new
            n_nc += int(not g.converged)
        assert g is not None
        # Path over y[t0-window : t1-1]: s2[j] is the variance for day t0 - window + j, and
        # uses y strictly before that day. Day t in [t0, t1) is j = t - t0 + window.
        seg = y[t0 - window : t1 - 1]
        s2 = _garch_variance(seg, g, fit_len=window)
        z = (seg - g.mu) / np.sqrt(s2[:-1])
        # z sample for day t: the `window` residuals of days [t - window, t); z has
        # window + (t1 - t0) - 1 entries, so exactly t1 - t0 windows.
        qz, mz, _ = _lower_tail(sliding_window_view(z, window), alpha)
        s = np.sqrt(s2[window:])
        var[t0 - window : t1 - window] = -(g.mu + s * qz) / _GARCH_SCALE
        es[t0 - window : t1 - window] = -(g.mu + s * mz) / _GARCH_SCALE
        sig[t0 - window : t1 - window] = s / _GARCH_SCALE
    return var, es, sig, n_refits, n_fail, n_nc


def var_backtest(
    returns: Any,
    level: float = 0.99,
    method: Method = "historical",
    window: int = 500,
    refit_every: int = 20,
) -> VaRBacktestResult:
    """Rolling one-day-ahead VaR/ES forecasts and their backtest.

    Forecasts are made for every day ``t = window, ..., n - 1`` and use only returns
    strictly before ``t`` (causal: changing or removing ``returns[t:]`` leaves the
    forecasts for days ``<= t`` unchanged).

    * ``"historical"``: :func:`historical_var_es` on ``returns[t - window : t]``.
    * ``"filtered"`` (GARCH(1,1), normal QML, :func:`filtered_historical_var_es`) and
      ``"gjr_filtered"`` (GJR-GARCH(1,1,1), Student-t ML, :func:`gjr_filtered_var_es`):
      the model's parameters are refitted (arch, x100 returns) at the refit days
      ``t0 = window + j * refit_every`` on ``returns[t0 - window : t0]``. For each day
      ``t`` in ``[t0, t0 + refit_every)`` the variance recursion with those fixed
      parameters is run from ``t0 - window`` (started, as arch does, from the backcast of
      the fitting window only) through ``returns[t - 1]``, giving ``sigma_t``; the
      innovation sample is the standardised residuals of the ``window`` days
      ``[t - window, t)`` under the same parameters. So the forecast for ``t`` uses
      ``returns[t0 - window : t]``, all before ``t``; on a refit day it equals the
      single-shot function on the trailing window. A refit that arch cannot fit keeps the
      previous parameters (counted in ``n_fit_failures``).

    Exceedance on day ``t``: ``returns[t] < -var[t]``. Kupiec and Christoffersen use the
    whole forecast sample; the Basel zone uses the last 250 forecast days (all of them if
    fewer), as the Basel framework does.

    Parameters
    ----------
    returns : array-like or pandas.Series, shape (n,)
        Daily returns; finite.
    level : float, default 0.99
    method : {"historical", "filtered", "gjr_filtered"}, default "historical"
    window : int, default 500
        Trailing estimation window; at least ``ceil(1 / (1 - level))`` (and 100 for the
        filtered methods).
    refit_every : int, default 20
        Days between GARCH refits (filtered methods only); 1 refits every day.

    Returns
    -------
    VaRBacktestResult

    Raises
    ------
    ValueError
        NaN/inf in ``returns``; ``level``, ``method``, ``window`` or ``refit_every`` invalid.
    InsufficientDataError
        Fewer than ``window + 2`` returns (at least two forecast days), or the first GARCH
        window cannot be fitted.

    Warns
    -----
    EstimationWarning
        When some GARCH refits failed or did not converge.
    """
    level = _check_level(level)
    method = check_choice(method, "method", _METHODS)
    min_window = _min_obs(level) if method == "historical" else max(_GARCH_MIN_OBS, _min_obs(level))
    window = check_int(window, "window", min_window)
    refit_every = check_int(refit_every, "refit_every", 1)
    r, index = _finite_returns(returns, "returns")
    _require(r, window + 2, "returns", f"a backtest with window={window}")
    alpha = 1.0 - level
    sigma: np.ndarray | None = None
    n_refits = n_fail = n_nc = 0
    if method == "historical":
        var, es = _historical_forecasts(r, window, alpha)
    else:
        var, es, sigma, n_refits, n_fail, n_nc = _filtered_forecasts(r, window, alpha, refit_every, method)
        if n_fail or n_nc:
            warnings.warn(
                f"{n_fail} of {n_refits} GARCH refits failed (previous parameters kept) and "
                f"{n_nc} did not report convergence",
                EstimationWarning,
                stacklevel=2,
            )
    realised = r[window:]
    exc = realised < -var
    n = int(exc.size)
    x = int(np.count_nonzero(exc))
    nb = min(_BASEL_WINDOW, n)
    xb = int(np.count_nonzero(exc[-nb:]))
    return VaRBacktestResult(
        returns=readonly(realised),
        var=readonly(var),
        es=readonly(es),
        exceedances=readonly(exc, dtype=bool),
        sigma_forecast=None if sigma is None else readonly(sigma),
        n=n,
        n_exceptions=x,
        expected=n * alpha,
        rate=x / n,
        kupiec=_kupiec(n, x, alpha, level),
        christoffersen=christoffersen(exc, level),
        basel_zone=basel_zone(xb, nb, level),
        basel_exceptions=xb,
        basel_n_obs=nb,
        level=level,
        method=method,
        window=window,
        refit_every=refit_every,
        start=window,
        n_refits=n_refits,
        n_fit_failures=n_fail,
        n_not_converged=n_nc,
        index=None if index is None else index[window:],
    )
