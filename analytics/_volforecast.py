"""Volatility forecasts over the next ``h`` bars and how to score them.

Conventions
-----------
* ``returns`` are log returns, one per bar, oldest first. A forecast *made at bar t* uses
  returns up to and including ``r_t`` and is a forecast of the **realised variance** of the
  next ``h`` bars, ``RV_t(h) = r_{t+1}^2 + ... + r_{t+h}^2`` (:func:`realised_variance_target`).
* Daily bars have no intraday data, so the squared daily return is the realised-variance
  proxy of a day (the sum of squared intraday returns is not available); HAR uses the same
  daily, weekly and monthly lags on it as Corsi (2009) does on intraday RV. The proxy is
  noisy but conditionally unbiased, so QLIKE and the MSE of variance levels still rank
  forecasts correctly (Patton 2011); the MSE of *log* variance is reported as well, as asked,
  but it is not robust in that sense (its optimum is the conditional geometric mean).
* Every model forecasts the variance **level** ``E_t[RV_t(h)]``: the conditional mean is the
  forecast that minimises expected QLIKE, the loss the walk-forward choice uses.

  - HAR-RV (Corsi 2009), direct ``h``-step: ``RV_t(h) = b0 + b_d RV_d + b_w RV_w + b_m RV_m
    + e`` in levels, by OLS on a training slice (:func:`fit_har`, :func:`predict_har`), with
    ``RV_d = r_t^2`` and ``RV_w``, ``RV_m`` the means of the last 5 and 22 squared returns. A
    level regression estimates the conditional mean (consistent with QLIKE); a forecast
    below the smallest positive training target is raised to it so that its log exists.
  - EWMA (RiskMetrics 1996): ``s2_{t+1} = lam s2_t + (1 - lam) r_t^2``, ``lam = 0.94``, and
    ``h s2_{t+1}`` over ``h`` bars (:func:`ewma_variance`).
  - GARCH(1,1) with a constant mean, normal quasi-likelihood, fitted by ``arch`` on a
    training slice (:func:`fit_garch`); the conditional variance is then filtered through
    any later returns with those parameters fixed (:func:`garch_variance`) and summed over
    the next ``h`` bars in closed form (:func:`garch_cumulative_variance`).
* Losses (per forecast, :func:`qlike`, :func:`mse_log_variance`) and the Diebold-Mariano
  test with the Harvey-Leybourne-Newbold correction (:func:`diebold_mariano`).

References
----------
Corsi, F. (2009). A simple approximate long-memory model of realized volatility. Journal of
Financial Econometrics 7(2), 174-196.
Patton, A. J. (2011). Volatility forecast comparison using imperfect volatility proxies.
Journal of Econometrics 160(1), 246-256.
J.P. Morgan/Reuters (1996). RiskMetrics - Technical Document, 4th edition.
Diebold, F. X. and Mariano, R. S. (1995). Comparing predictive accuracy. Journal of Business
and Economic Statistics 13(3), 253-263.
Harvey, D., Leybourne, S. and Newbold, P. (1997). Testing the equality of prediction mean
squared errors. International Journal of Forecasting 13(2), 281-291.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.signal import lfilter

from analytics.errors import InsufficientDataError

__all__ = [
    "HAR_LAGS",
    "RISKMETRICS_LAMBDA",
    "HARModel",
    "GarchParams",
    "DieboldMarianoResult",
    "realised_variance_target",
    "har_regressors",
    "fit_har",
    "predict_har",
    "ewma_variance",
    "fit_garch",
    "garch_variance",
    "garch_cumulative_variance",
    "qlike",
    "mse_log_variance",
    "diebold_mariano",
]

#: Bars averaged by the daily, weekly and monthly HAR regressors.
HAR_LAGS: tuple[int, int, int] = (1, 5, 22)
#: RiskMetrics' decay for daily data.
RISKMETRICS_LAMBDA: float = 0.94


def _as_array(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {a.shape}")
    return a


def _like(values: np.ndarray, template: Any, name: str) -> Any:
    """``values`` as a Series on ``template``'s index when ``template`` is a Series."""
    if isinstance(template, pd.Series):
        return pd.Series(values, index=template.index, name=name)
    return values


def _check_horizon(horizon: int) -> int:
    if not (isinstance(horizon, int | np.integer) and horizon >= 1):
        raise ValueError(f"horizon must be a positive integer, got {horizon!r}")
    return int(horizon)


def realised_variance_target(returns: Any, horizon: int) -> Any:
    """Realised variance of the next ``horizon`` bars, stamped at the forecast bar.

    ``out[t] = r_{t+1}^2 + ... + r_{t+h}^2``; NaN where the future is not complete (the
    last ``h`` bars) or holds a NaN return. On daily bars the squared daily return is the
    realised-variance proxy of a day (no intraday returns exist); forecasting models are
    scored on ``log(out)`` (MSE of log variance) and on ``out`` itself (QLIKE).

    Parameters
    ----------
    returns : array-like or Series
        Log returns, oldest first.
    horizon : int
        ``h >= 1``.

    Returns
    -------
    ndarray or Series
        Same length (and index) as ``returns``.
    """
    h = _check_horizon(horizon)
    r = _as_array(returns, "returns")
    n = r.size
    out = np.full(n, np.nan)
    if n > h:
        finite = np.isfinite(r)
        c = np.concatenate([[0.0], np.cumsum(np.where(finite, r, 0.0) ** 2)])
        # out[t] = c[t + h + 1] - c[t + 1]; a NaN anywhere in the window makes it NaN
        out[: n - h] = c[h + 1 :] - c[1 : n - h + 1]
        bad = np.concatenate([[0], np.cumsum(~finite)])
        out[: n - h][(bad[h + 1 :] - bad[1 : n - h + 1]) > 0] = np.nan
    return _like(out, returns, f"rv_next_{h}")


def har_regressors(returns: Any) -> pd.DataFrame:
    """HAR regressors known at each bar: ``rv_d = r_t^2`` and the means of the last 5 and 22.

    Parameters
    ----------
    returns : array-like or Series
        Log returns, oldest first (a Series' index is kept).

    Returns
    -------
    DataFrame
        Columns ``rv_d, rv_w, rv_m``; NaN until the window is complete.
    """
    r = _as_array(returns, "returns")
    index = returns.index if isinstance(returns, pd.Series) else pd.RangeIndex(r.size)
    r2 = pd.Series(r**2, index=index)
    cols = {name: r2.rolling(lag, min_periods=lag).mean() for name, lag in zip(("rv_d", "rv_w", "rv_m"), HAR_LAGS,
                                                                                  strict=True)}
    return pd.DataFrame(cols, index=index)


@dataclass(frozen=True)
class HARModel:
    """A fitted direct HAR-RV regression in variance levels.

    Attributes
    ----------
    params : tuple of float
        ``(const, rv_d, rv_w, rv_m)`` OLS coefficients.
    floor : float
        Smallest positive training target: forecasts are not allowed below it.
    n_obs : int
        Training rows used.
    """

    params: tuple[float, float, float, float]
    floor: float
    n_obs: int


def fit_har(regressors: pd.DataFrame, target: Any) -> HARModel:
    """OLS of the realised-variance target on a constant and ``rv_d, rv_w, rv_m``.

    Parameters
    ----------
    regressors : DataFrame
        Rows of :func:`har_regressors` of the training slice only.
    target : array-like or Series
        :func:`realised_variance_target` on the same rows (level, not log). Rows with a
        NaN regressor or target are dropped.

    Returns
    -------
    HARModel

    Raises
    ------
    InsufficientDataError
        Fewer than 30 complete rows or no positive target.
    """
    x = regressors[["rv_d", "rv_w", "rv_m"]].to_numpy(dtype=float)
    y = _as_array(target, "target")
    if y.size != x.shape[0]:
        raise ValueError("regressors and target must have the same length")
    ok = np.isfinite(x).all(axis=1) & np.isfinite(y)
    if ok.sum() < 30 or not (y[ok] > 0).any():
        raise InsufficientDataError(f"HAR needs at least 30 complete training rows, got {int(ok.sum())}")
    design = np.column_stack([np.ones(int(ok.sum())), x[ok]])
    beta, *_ = np.linalg.lstsq(design, y[ok], rcond=None)
    floor = float(np.min(y[ok][y[ok] > 0]))
    return HARModel(tuple(float(b) for b in beta), floor, int(ok.sum()))  # type: ignore[arg-type]


def predict_har(model: HARModel, regressors: pd.DataFrame) -> np.ndarray:
    """Forecast of the next ``h`` bars' realised variance at each row (NaN where a regressor is).

    Forecasts below ``model.floor`` are raised to it (a level regression can go negative).
    """
    x = regressors[["rv_d", "rv_w", "rv_m"]].to_numpy(dtype=float)
    b = np.asarray(model.params)
    f = b[0] + x @ b[1:]
    return np.where(np.isfinite(f), np.maximum(f, model.floor), np.nan)


def ewma_variance(returns: Any, lam: float = RISKMETRICS_LAMBDA, init: float | None = None) -> Any:
    """RiskMetrics one-bar-ahead variance made at each bar's close.

    ``out[t] = lam * out[t - 1] + (1 - lam) * r_t^2`` (the forecast of ``r_{t+1}^2``), with
    ``out[-1] = init``; zero mean, no fitted parameter. The ``h``-bar forecast is
    ``h * out[t]``. With ``init=None`` the recursion starts at the first squared return, so
    each value depends on past returns only (the start's weight decays as ``lam^t``).

    Parameters
    ----------
    returns : array-like or Series
        Finite log returns, oldest first.
    lam : float, default 0.94
    init : float, optional
        Variance before the first return.

    Returns
    -------
    ndarray or Series
    """
    r = _as_array(returns, "returns")
    if not 0 < lam < 1:
        raise ValueError(f"lam must be in (0, 1), got {lam!r}")
    if r.size == 0:
        return _like(np.array([]), returns, "ewma_var")
    if not np.isfinite(r).all():
        raise ValueError("returns must be finite")
    s0 = float(r[0] ** 2) if init is None else float(init)
    out = lfilter([1.0 - lam], [1.0, -lam], r**2, zi=np.array([lam * s0]))[0]
    return _like(out, returns, "ewma_var")


@dataclass(frozen=True)
class GarchParams:
    """GARCH(1,1) parameters in the units of the returns (not percent).

    ``r_t = mu + e_t``, ``s2_t = omega + alpha e_{t-1}^2 + beta s2_{t-1}``; ``backcast`` is
    arch's starting variance from the fit sample (0.94-weighted mean of its first 75
    squared demeaned returns), so filtering from the first fitted return reproduces arch.
    """

    mu: float
    omega: float
    alpha: float
    beta: float
    backcast: float
    n_obs: int

    @property
    def persistence(self) -> float:
        """``alpha + beta``."""
        return self.alpha + self.beta

    def arch_params(self) -> np.ndarray:
        """``[mu, omega, alpha[1], beta[1]]`` on the percent scale ``arch`` was fitted on."""
        return np.array([100.0 * self.mu, 1e4 * self.omega, self.alpha, self.beta])


def _arch_backcast(e: np.ndarray) -> float:
    tau = min(75, e.size)
    w = 0.94 ** np.arange(tau)
    return float(np.sum(e[:tau] ** 2 * (w / w.sum())))


def fit_garch(returns: Any) -> GarchParams:
    """Constant-mean GARCH(1,1), normal quasi-likelihood, fitted by ``arch`` on these returns only.

    ``arch_model(100 * r, mean="Constant", vol="GARCH", p=1, q=1, dist="normal")`` (percent
    units, for the optimiser), parameters converted back to the returns' units.

    Parameters
    ----------
    returns : array-like or Series
        Finite log returns of the training slice, oldest first.

    Returns
    -------
    GarchParams

    Raises
    ------
    InsufficientDataError
        Fewer than 100 returns, or a constant series.
    """
    r = _as_array(returns, "returns")
    if r.size < 100:
        raise InsufficientDataError(f"GARCH needs at least 100 returns, got {r.size}")
    if not np.isfinite(r).all():
        raise ValueError("returns must be finite")
    if np.ptp(r) == 0:
        raise InsufficientDataError("GARCH cannot be fitted to a constant series")
    from arch import arch_model

    y = 100.0 * r
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = arch_model(y, mean="Constant", vol="GARCH", p=1, q=1, dist="normal").fit(disp="off")
    p = res.params
    return GarchParams(
        mu=float(p["mu"]) / 100.0,
        omega=float(p["omega"]) / 1e4,
        alpha=float(p["alpha[1]"]),
        beta=float(p["beta[1]"]),
        backcast=_arch_backcast(r - r.mean()),
        n_obs=int(r.size),
    )


def garch_variance(returns: Any, params: GarchParams) -> Any:
    """One-bar-ahead conditional variance made at each bar's close, parameters held fixed.

    ``out[t] = s2_{t+1|t} = omega + alpha (r_t - mu)^2 + beta s2_t`` with the first
    ``s2_0 = omega + (alpha + beta) * params.backcast`` (arch's start). Pass the returns from
    the first return of the fit sample on: then ``out[t - 1]`` is arch's in-sample
    ``conditional_volatility[t] ** 2`` on the fit sample, and past it the filter runs on
    with the fitted parameters (no refit, no later return used).

    Parameters
    ----------
    returns : array-like or Series
        Finite log returns, oldest first.
    params : GarchParams

    Returns
    -------
    ndarray or Series
    """
    r = _as_array(returns, "returns")
    if not np.isfinite(r).all():
        raise ValueError("returns must be finite")
    if r.size == 0:
        return _like(np.array([]), returns, "garch_var")
    s0 = params.omega + (params.alpha + params.beta) * params.backcast
    drive = params.omega + params.alpha * (r - params.mu) ** 2
    out = lfilter([1.0], [1.0, -params.beta], drive, zi=np.array([params.beta * s0]))[0]
    return _like(out, returns, "garch_var")


def garch_cumulative_variance(one_step: Any, params: GarchParams, horizon: int) -> Any:
    """Variance of the sum of the next ``h`` returns from the one-step forecast.

    ``s2_{t+k|t} = omega + (alpha + beta) s2_{t+k-1|t}`` for ``k >= 2``; the result is
    ``sum_{k=1..h} s2_{t+k|t}`` (what ``arch``'s ``forecast(horizon=h).variance`` sums to).

    Parameters
    ----------
    one_step : array-like or Series
        :func:`garch_variance` (``s2_{t+1|t}``).
    params : GarchParams
    horizon : int

    Returns
    -------
    ndarray or Series
    """
    h = _check_horizon(horizon)
    s = _as_array(one_step, "one_step").copy()
    total = s.copy()
    phi = params.persistence
    for _ in range(h - 1):
        s = params.omega + phi * s
        total += s
    return _like(total, one_step, f"garch_var_{h}")


def _paired_variances(forecast_var: Any, realised_var: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both variance arrays and the mask of the bars where both are finite and positive."""
    f = _as_array(forecast_var, "forecast_var")
    rv = _as_array(realised_var, "realised_var")
    if f.shape != rv.shape:
        raise ValueError("forecast_var and realised_var must have the same length")
    return f, rv, np.isfinite(f) & np.isfinite(rv) & (f > 0) & (rv > 0)


def qlike(forecast_var: Any, realised_var: Any) -> np.ndarray:
    """QLIKE loss per forecast (Patton 2011): ``RV / F - log(RV / F) - 1``.

    Non-negative, zero only where ``F == RV``; its expectation is minimised by the
    conditional mean of ``RV``, also when ``RV`` is a noisy unbiased proxy. NaN where either
    input is not finite and positive.
    """
    f, rv, ok = _paired_variances(forecast_var, realised_var)
    out = np.full(f.shape, np.nan)
    ratio = rv[ok] / f[ok]
    out[ok] = ratio - np.log(ratio) - 1.0
    return out


def mse_log_variance(forecast_var: Any, realised_var: Any) -> np.ndarray:
    """Squared error of log variance per forecast: ``(log F - log RV)^2`` (NaN where undefined)."""
    f, rv, ok = _paired_variances(forecast_var, realised_var)
    out = np.full(f.shape, np.nan)
    out[ok] = (np.log(f[ok]) - np.log(rv[ok])) ** 2
    return out


@dataclass(frozen=True)
class DieboldMarianoResult:
    """Diebold-Mariano test of equal expected loss, ``d_t = loss_a_t - loss_b_t``.

    Attributes
    ----------
    statistic : float
        HLN-corrected statistic; negative when ``a`` has the smaller mean loss.
    p_value : float
        Two-sided, from Student's t with ``n - 1`` degrees of freedom.
    mean_difference : float
        Mean of ``d_t``.
    n : int
        Pairs used (both losses finite).
    horizon : int
        Forecast horizon: ``horizon - 1`` autocovariance lags in the long-run variance.
    bartlett : bool
        True when the equal-weight long-run variance was not positive and Newey-West's
        Bartlett weights were used.
    """

    statistic: float
    p_value: float
    mean_difference: float
    n: int
    horizon: int
    bartlett: bool = False


def diebold_mariano(loss_a: Any, loss_b: Any, horizon: int = 1) -> DieboldMarianoResult:
    """Diebold-Mariano test with the Harvey-Leybourne-Newbold small-sample correction.

    With ``d_t = loss_a_t - loss_b_t`` over the ``n`` pairs where both are finite, the
    long-run variance is the HAC estimate of Diebold and Mariano (1995) with ``h - 1`` lags,
    ``g_0 + 2 sum_{k=1}^{h-1} g_k`` (autocovariances ``g_k`` divided by ``n``; ``h``-step
    forecast errors are MA(h-1), so these are all the nonzero ones and equal weights are
    unbiased); only when that estimate is not positive are Newey-West's Bartlett weights
    ``1 - k/h`` used instead. The statistic ``mean(d) / sqrt(lrv / n)`` is multiplied by
    HLN's ``sqrt((n + 1 - 2h + h(h - 1)/n) / n)`` (derived for the equal-weight estimate) and
    compared with Student's t, ``n - 1`` df, two-sided. Bartlett weights throughout would
    leave out part of the MA(h-1) autocovariance: on simulated equal-loss MA(4) differences
    (n = 500) they reject about 10% of the time at 5%, the equal weights about 5%.

    Parameters
    ----------
    loss_a, loss_b : array-like
        Per-forecast losses of two forecasts of the same targets, in time order.
    horizon : int, default 1
        Forecast horizon ``h`` (``h``-step forecasts have MA(h-1) loss differences).

    Returns
    -------
    DieboldMarianoResult
        ``statistic`` and ``p_value`` are NaN when the differences have no variance.

    Raises
    ------
    InsufficientDataError
        Fewer than ``max(10, 2h)`` pairs.
    """
    h = _check_horizon(horizon)
    a = _as_array(loss_a, "loss_a")
    b = _as_array(loss_b, "loss_b")
    if a.shape != b.shape:
        raise ValueError("loss_a and loss_b must have the same length")
    d = (a - b)[np.isfinite(a) & np.isfinite(b)]
    n = d.size
    if n < max(10, 2 * h):
        raise InsufficientDataError(f"Diebold-Mariano needs at least {max(10, 2 * h)} loss pairs, got {n}")
    mean = float(d.mean())
    e = d - mean
    gamma = np.array([float(e[k:] @ e[: n - k]) / n for k in range(h)])
    lrv = float(gamma[0] + 2.0 * gamma[1:].sum())
    bartlett = not lrv > 0
    if bartlett:  # equal weights can give a negative estimate; Bartlett's cannot
        lrv = float(gamma[0] + 2.0 * np.sum((1.0 - np.arange(1, h) / h) * gamma[1:]))
    if not lrv > 0:
        return DieboldMarianoResult(float("nan"), float("nan"), mean, n, h, bartlett)
    dm = mean / np.sqrt(lrv / n)
    hln = np.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    stat = float(dm * hln)
    p = float(2.0 * stats.t.sf(abs(stat), df=n - 1))
    return DieboldMarianoResult(stat, p, mean, n, h, bartlett)
