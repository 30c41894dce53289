"""Portfolio VaR/ES with risk attribution (stress tests: :mod:`analytics._stress`).

Conventions (the same as :mod:`analytics._var`)
------------------------------------------------
* ``level`` is the confidence level, strictly between 0.5 and 1; ``alpha = 1 - level``.
* VaR and ES are **positive loss fractions** of equity, one day ahead, computed on daily
  simple returns; weights are position values as fractions of equity (they need not sum to
  1: the rest is cash earning 0; negative is short).
* Empirical quantile: the lower order statistic ``q = x_(k)``, ``k = floor((m - 1) alpha)``
  (``numpy.quantile(x, alpha, method="lower")``); ``VaR = -q``, ``ES = -mean(x[x <= q])``.
* A sample (or a Monte Carlo run) must hold at least ``ceil(1 / alpha)`` observations.

Risk attribution
----------------
``component_var[i]`` is asset ``i``'s share of the VaR and always sums to ``var`` (to
rounding); ``component_es`` sums to ``es``; ``marginal_var[i]`` is ``dVaR / dw_i``.

* Parametric methods ("normal", "student_t"): VaR is homogeneous of degree one in the
  weights, so Euler's theorem gives the exact split ``c_i = w_i dVaR/dw_i`` with the
  analytic derivative (Tasche, 1999).
* Simulation methods ("historical", "filtered", "monte_carlo"): the VaR is the portfolio
  return of one scenario (the order statistic ``k``), and ``-w_i x_{k,i}`` splits it
  exactly but noisily. We average ``-w_i x_{t,i}`` over the ``2h + 1`` scenarios whose
  portfolio returns are the order statistics ``k - h .. k + h``, with
  ``h = floor(sqrt(m alpha (1 - alpha)))`` (one standard deviation of the rank of the
  empirical quantile) cut to ``min(k, m - 1 - k)`` so the neighbourhood stays symmetric,
  and rescale the average so it sums exactly to the VaR. When that rescaling factor is not
  in ``[0.5, 1.5]`` (the neighbourhood's mean loss is zero, of the other sign, or far from
  the VaR: a VaR near 0) the single quantile scenario is used instead (``h = 0``, exact
  without rescaling). ES components are the tail means of ``-w_i x_{t,i}`` over the
  scenarios at or below ``q``, which sum to the ES by linearity. ``marginal_var[i] =
  component_var[i] / w_i`` for ``w_i != 0`` and NaN for ``w_i == 0`` (a simulated VaR has no
  derivative there that the scenarios can estimate).

References
----------
Tasche, D. (1999). Risk contributions and performance measurement. Working paper, TU Munich.
Hallerbach, W. G. (2003). Decomposing portfolio Value-at-Risk: a general analysis. Journal of
Risk 5(2), 1-18.
Barone-Adesi, G., Giannopoulos, K. and Vosper, L. (1999). VaR without correlations for
portfolios of derivative securities. Journal of Futures Markets 19(5), 583-602.
Kendall, M. and Stuart, A. (1977). The Advanced Theory of Statistics, vol. 1, 4th ed.
(asymptotic variance of a sample quantile, section 10.10).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from analytics._stats_common import (
    ResultMixin,
    check_choice,
    check_int,
)
from analytics._var import (
    _GARCH_MIN_OBS,
    _GARCH_SCALE,
    _check_level,
    _gjr_asset_scenarios,
    _lower_tail,
    _matrix_and_weights,
    _min_obs,
)
from analytics.errors import InsufficientDataError

__all__ = [
    "PORTFOLIO_VAR_METHODS",
    "PortfolioVaR",
    "portfolio_var",
]

PORTFOLIO_VAR_METHODS = ("historical", "normal", "student_t", "filtered", "monte_carlo")
PortfolioVaRMethod = Literal["historical", "normal", "student_t", "filtered", "monte_carlo"]
# Student-t degrees of freedom are floored here: nu <= 2 has no variance, and near 2 the
# unit-variance scale sqrt((nu - 2) / nu) and the tail quantile explode together.
_DOF_FLOOR = 2.5
# Accept the rescaled neighbourhood components only when the factor is in this range.
_RESCALE_RANGE = (0.5, 1.5)


# ---------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True, eq=False)
class PortfolioVaR(ResultMixin):
    """Result of :func:`portfolio_var`.

    Attributes
    ----------
    var, es : float
        One-day VaR and ES as positive loss fractions of equity.
    level : float
        Confidence level.
    method : str
        One of :data:`PORTFOLIO_VAR_METHODS`.
    n : int
        Observations used, or Monte Carlo scenarios for "monte_carlo".
    assets : tuple of str
        Asset names (the return columns, as text).
    weights : tuple of float
        Weights in the order of ``assets``.
    component_var : tuple of float
        Each asset's share of ``var``; sums to ``var`` (see the module docstring).
    marginal_var : tuple of float
        ``dVaR / dw_i``: analytic for parametric methods, ``component / w_i`` for simulation
        methods (NaN where ``w_i == 0``).
    component_es : tuple of float
        Each asset's share of ``es``; sums to ``es``.
    standard_error : float or None
        "monte_carlo" only: the asymptotic standard error of the simulated VaR,
        ``sqrt(alpha (1 - alpha) / n) / f(q)`` with ``f`` the normal density of the
        portfolio return (sample mean and covariance) at the simulated quantile ``q``.
    seed : int or None
        "monte_carlo" only: the seed of ``numpy.random.default_rng``.
    dof : float or None
        "student_t" only: the Student-t degrees of freedom used (MLE, floored at 2.5).
    """

    var: float
    es: float
    level: float
    method: str
    n: int
    assets: tuple[str, ...]
    weights: tuple[float, ...]
    component_var: tuple[float, ...]
    marginal_var: tuple[float, ...]
    component_es: tuple[float, ...]
    standard_error: float | None = None
    seed: int | None = None
    dof: float | None = None


# ---------------------------------------------------------------------------------------
# Input validation


def _returns_and_weights(returns: Any, weights: Any) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], Any]:
    """Validated ``(matrix (n, k), weights (k,), asset names, original column labels or None)``."""
    m, w, columns = _matrix_and_weights(returns, weights, "returns", strict=True)
    labels = list(columns) if columns is not None else list(range(m.shape[1]))
    return m, w, tuple(str(c) for c in labels), columns


# ---------------------------------------------------------------------------------------
# Portfolio VaR


def _scenario_split(
    scen: np.ndarray, contrib: np.ndarray, alpha: float
) -> tuple[float, float, np.ndarray, np.ndarray]:
    """VaR, ES and their per-asset components from portfolio scenarios ``scen`` (m,) and the
    per-asset contributions ``contrib`` (m, k) to them (rows sum to ``scen``)."""
    m = scen.size
    q, tail, _ = _lower_tail(scen[None, :], alpha)
    var, es = float(-q[0]), float(-tail[0])
    k = int(np.floor((m - 1) * alpha))
    order = np.argsort(scen, kind="stable")
    h = min(int(math.floor(math.sqrt(m * alpha * (1.0 - alpha)))), k, m - 1 - k)
    comp = -contrib[order[k - h : k + h + 1]].mean(axis=0)
    total = float(comp.sum())
    factor = var / total if total != 0.0 else math.nan
    if h > 0 and _RESCALE_RANGE[0] <= factor <= _RESCALE_RANGE[1]:
        comp = comp * factor
    else:
        comp = -contrib[order[k]]
    comp_es = -contrib[scen <= q[0]].mean(axis=0)
    return var, es, comp, comp_es


def _mean_cov(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu = m.mean(axis=0)
    cov = np.atleast_2d(np.cov(m, rowvar=False, ddof=1))
    return mu, cov


def portfolio_var(
    returns: Any,
    weights: Any,
    level: float = 0.99,
    method: PortfolioVaRMethod = "historical",
    *,
    n_sims: int = 100_000,
    seed: int = 0,
) -> PortfolioVaR:
    """One-day portfolio VaR and ES with component and marginal VaR.

    Parameters
    ----------
    returns : pandas.DataFrame or array-like, shape (n, k)
        Daily simple returns of ``k`` assets (columns = asset names); finite.
    weights : pandas.Series or array-like, shape (k,)
        Position values as fractions of equity (need not sum to 1; negative = short). A
        Series is aligned on the columns (a missing column raises; extra names must have
        weight 0).
    level : float, default 0.99
        Confidence level, strictly between 0.5 and 1.
    method : {"historical", "normal", "student_t", "filtered", "monte_carlo"}
        * "historical": scenarios ``R_t = x_t . w`` (the rows of ``returns``).
        * "normal": ``VaR = -w'mu + z sqrt(w' Sigma w)``, ``ES = -w'mu + sqrt(w' Sigma w)
          phi(z) / alpha`` with ``z = Phi^{-1}(level)`` and the sample mean ``mu`` and
          covariance ``Sigma`` (``ddof=1``).
        * "student_t": the same location and scale with a unit-variance Student-t shape:
          ``VaR = -w'mu + s c t_nu^{-1}(level)``, ``ES = -w'mu + s c f_nu(t) (nu + t^2) /
          ((nu - 1) alpha)`` with ``s = sqrt(w' Sigma w)``, ``c = sqrt((nu - 2) / nu)``,
          ``t = t_nu^{-1}(level)``. ``nu`` is the maximum-likelihood degrees of freedom of
          the portfolio return series (``scipy.stats.t.fit``, location and scale free),
          floored at 2.5 (below that the variance is barely finite and the VaR explodes).
          The marginal VaR holds ``nu`` fixed.
        * "filtered": per-asset GJR-GARCH(1,1,1)-t filtered historical simulation, the
          scenarios of :func:`~analytics.gjr_filtered_portfolio_var_es` (same VaR and ES).
        * "monte_carlo": ``n_sims`` draws of a multivariate normal with the sample mean and
          covariance (``numpy.random.default_rng(seed).multivariate_normal``), scenarios
          ``R = x . w``; memory ``8 n_sims k`` bytes.
    n_sims : int, default 100_000
        "monte_carlo" only: scenarios; at least ``ceil(1 / alpha)``.
    seed : int, default 0
        "monte_carlo" only.

    Returns
    -------
    PortfolioVaR
        See the module docstring for the attribution. All weights 0 gives ``var = es = 0``,
        zero components and NaN marginals.

    Raises
    ------
    ValueError
        Bad shapes, NaN/inf, misaligned weights, ``level``/``method``/``n_sims`` invalid.
    InsufficientDataError
        Fewer than ``ceil(1 / alpha)`` rows (``max(100, ...)`` for "filtered"); "student_t"
        on a constant portfolio; "filtered" on a constant or unfittable column with a
        non-zero weight.
    """
    level = _check_level(level)
    method = check_choice(method, "method", PORTFOLIO_VAR_METHODS)
    m, w, assets, columns = _returns_and_weights(returns, weights)
    alpha = 1.0 - level
    minimum = max(_GARCH_MIN_OBS, _min_obs(level)) if method == "filtered" else _min_obs(level)
    if m.shape[0] < minimum:
        raise InsufficientDataError(
            f"returns has {m.shape[0]} row(s); a {level:g} {method} portfolio VaR needs at least {minimum}"
        )
    mc = method == "monte_carlo"
    if mc:
        n_sims = check_int(n_sims, "n_sims", _min_obs(level))
        seed = check_int(seed, "seed", 0)
    base: dict[str, Any] = {
        "level": level, "method": method, "n": n_sims if mc else int(m.shape[0]), "assets": assets,
        "weights": tuple(float(v) for v in w), "seed": seed if mc else None,
    }
    k = w.size
    if not np.any(w != 0.0):
        zero = (0.0,) * k
        return PortfolioVaR(var=0.0, es=0.0, component_var=zero, marginal_var=(math.nan,) * k,
                            component_es=zero, **base)
    if method in ("normal", "student_t"):
        return _parametric(m, w, alpha, level, method, base)
    se: float | None = None
    if method == "historical":
        var, es, comp, comp_es = _scenario_split(m @ w, m * w, alpha)
    elif method == "filtered":
        live = np.flatnonzero(w != 0.0)
        asset_scen, _, _ = _gjr_asset_scenarios(m, live, columns, stacklevel=4)
        scen = np.zeros(m.shape[0])
        for j in live:  # the same summation as gjr_filtered_portfolio_var_es, in x100 units
            scen += w[j] * asset_scen[:, j]
        var, es, comp, comp_es = _scenario_split(scen, asset_scen * w, alpha)
        var, es = var / _GARCH_SCALE, es / _GARCH_SCALE
        comp, comp_es = comp / _GARCH_SCALE, comp_es / _GARCH_SCALE
    else:
        from scipy.stats import norm

        mu, cov = _mean_cov(m)
        draws = np.random.default_rng(seed).multivariate_normal(mu, cov, size=n_sims)
        var, es, comp, comp_es = _scenario_split(draws @ w, draws * w, alpha)
        s_p = math.sqrt(max(float(w @ cov @ w), 0.0))
        dens = float(norm.pdf(-var, loc=float(w @ mu), scale=s_p)) if s_p > 0 else math.inf
        se = math.sqrt(alpha * (1.0 - alpha) / n_sims) / dens
    with np.errstate(divide="ignore", invalid="ignore"):
        marginal = np.where(w != 0.0, comp / np.where(w != 0.0, w, 1.0), math.nan)
    return PortfolioVaR(
        var=var, es=es, component_var=tuple(float(v) for v in comp),
        marginal_var=tuple(float(v) for v in marginal), component_es=tuple(float(v) for v in comp_es),
        standard_error=se, **base,
    )


def _parametric(
    m: np.ndarray, w: np.ndarray, alpha: float, level: float, method: str, base: dict[str, Any]
) -> PortfolioVaR:
    from scipy.stats import norm
    from scipy.stats import t as student_t

    mu, cov = _mean_cov(m)
    sw = cov @ w
    s_p = math.sqrt(max(float(w @ sw), 0.0))
    dof: float | None = None
    if method == "normal":
        zq = float(norm.ppf(level))
        ez = float(norm.pdf(zq)) / alpha
    else:
        port = m @ w
        if np.all(port == port[0]):
            raise InsufficientDataError("the portfolio return series is constant; a Student-t cannot be fitted")
        fitted = float(student_t.fit(port)[0])
        dof = max(fitted, _DOF_FLOOR) if math.isfinite(fitted) else _DOF_FLOOR
        c = math.sqrt((dof - 2.0) / dof)
        tq = float(student_t.ppf(level, dof))
        zq = c * tq
        ez = c * float(student_t.pdf(tq, dof)) * (dof + tq * tq) / ((dof - 1.0) * alpha)
    var = float(-(w @ mu) + zq * s_p)
    es = float(-(w @ mu) + ez * s_p)
    if s_p > 0.0:
        marginal = -mu + zq * sw / s_p
        marginal_es = -mu + ez * sw / s_p
        comp = w * marginal
        comp_es = w * marginal_es
    else:  # zero portfolio variance: s_p has no derivative; the location term splits exactly
        marginal = np.full(w.size, math.nan)
        comp = -w * mu
        comp_es = -w * mu
    return PortfolioVaR(
        var=var, es=es, component_var=tuple(float(v) for v in comp),
        marginal_var=tuple(float(v) for v in marginal), component_es=tuple(float(v) for v in comp_es),
        dof=dof, **base,
    )
