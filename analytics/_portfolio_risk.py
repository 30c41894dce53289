"""Portfolio VaR/ES with risk attribution, historical stress windows and hypothetical shocks.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

from analytics._stats_common import (
    ResultMixin,
    as_float_1d,
    check_choice,
    check_int,
    frozen_mapping,
    readonly,
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
    "HISTORICAL_SCENARIOS",
    "PortfolioVaR",
    "StressScenario",
    "StressResult",
    "ShockResult",
    "portfolio_var",
    "historical_stress",
    "hypothetical_shock",
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


def _as_date(value: Any, name: str) -> date:
    import pandas as pd

    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a date, got {value!r}") from exc
    if ts is pd.NaT:
        raise ValueError(f"{name} must be a date, got {value!r}")
    return date(ts.year, ts.month, ts.day)


@dataclass(frozen=True)
class StressScenario(ResultMixin):
    """A stress window: inclusive session dates ``start .. end``.

    Attributes
    ----------
    key : str
        Short identifier ("gfc").
    name : str
        Display name.
    start, end : datetime.date
        First and last session of the window (inclusive). Strings and timestamps are
        converted to dates; ``start <= end``.
    description : str
        One line on what happened.
    """

    key: str
    name: str
    start: date
    end: date
    description: str = ""

    def __post_init__(self) -> None:
        start = _as_date(self.start, "start")
        end = _as_date(self.end, "end")
        if end < start:
            raise ValueError(f"scenario {self.key!r}: end {end} is before start {start}")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)


HISTORICAL_SCENARIOS: Mapping[str, StressScenario] = MappingProxyType({
    s.key: s
    for s in (
        StressScenario("ltcm", "Russian default and LTCM", date(1998, 8, 17), date(1998, 10, 8),
                       "Russia's default and devaluation, then the near-collapse of Long-Term Capital Management."),
        StressScenario("dotcom", "Dot-com bust", date(2000, 3, 24), date(2002, 10, 9),
                       "S&P 500 peak to trough after the technology bubble."),
        StressScenario("gfc", "Global financial crisis", date(2007, 10, 9), date(2009, 3, 9),
                       "S&P 500 peak to trough through the subprime and Lehman crises."),
        StressScenario("euro", "Euro debt crisis and US downgrade", date(2011, 7, 7), date(2011, 10, 3),
                       "Contagion of the euro-area sovereign debt crisis and S&P's downgrade of the US."),
        StressScenario("covid", "COVID-19 crash", date(2020, 2, 19), date(2020, 3, 23),
                       "Peak to trough of the S&P 500 in the COVID-19 pandemic sell-off."),
    )
})


@dataclass(frozen=True, eq=False)
class StressResult(ResultMixin):
    """Result of :func:`historical_stress`.

    Attributes
    ----------
    scenario : StressScenario
    base_date : datetime.date
        The last session before ``scenario.start``: positions are taken at its close.
    end_date : datetime.date
        The last session in the window (``<= scenario.end``).
    pnl : float
        Book P&L over the window as a fraction of equity, ``sum(asset_pnl.values())``.
    asset_pnl : Mapping[str, float]
        ``w_i (P_i(end) / P_i(base) - 1)`` per covered asset with a non-zero weight.
    dates : tuple of datetime.date
        Sessions of the window (``scenario.start .. end_date``).
    daily_returns : ndarray
        The buy-and-hold book's return on each of ``dates``, ``V_t / V_{t-1} - 1`` with
        ``V_t = 1 + sum_i w_i (P_i(t) / P_i(base) - 1)`` (covered assets only, ``V_base = 1``).
    worst_date : datetime.date
    worst_return : float
        The lowest entry of ``daily_returns`` and its date.
    max_drawdown : float
        Largest fall of ``V`` from its running peak within the window (``V_base`` included),
        as a positive fraction of the peak.
    missing : tuple of str
        Assets with a non-zero weight but no price at the base or end session (excluded:
        treated as cash).
    coverage : float
        ``sum |w|`` of covered assets / ``sum |w|`` of all non-zero weights.
    drivers : tuple of str
        Covered assets sorted by ``asset_pnl``, worst first.
    """

    scenario: StressScenario
    base_date: date
    end_date: date
    pnl: float
    asset_pnl: Mapping[str, float]
    dates: tuple[date, ...]
    daily_returns: np.ndarray
    worst_date: date
    worst_return: float
    max_drawdown: float
    missing: tuple[str, ...]
    coverage: float
    drivers: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class ShockResult(ResultMixin):
    """Result of :func:`hypothetical_shock`.

    Attributes
    ----------
    pnl : float
        ``sum(asset_pnl.values())``, a fraction of equity.
    asset_pnl : Mapping[str, float]
        ``w_i r_i`` for every asset with a non-zero weight.
    returns : Mapping[str, float]
        The return of every asset: the given shock, or the conditional expectation
        ``Sigma_us Sigma_ss^+ r_s`` for an unshocked one.
    shocked : tuple of str
        The shocked assets, in the order of ``assets``.
    drivers : tuple of str
        Assets with a non-zero weight sorted by ``asset_pnl``, worst first.
    rank : int
        Rank of the shocked block ``Sigma_ss``.
    singular : bool
        ``rank < len(shocked)``: ``Sigma_ss`` was singular and its pseudo-inverse was used.
    weights : Mapping[str, float]
        The weight of every asset (0 for unheld ones).
    """

    pnl: float
    asset_pnl: Mapping[str, float]
    returns: Mapping[str, float]
    shocked: tuple[str, ...]
    drivers: tuple[str, ...]
    rank: int
    singular: bool
    weights: Mapping[str, float]


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


# ---------------------------------------------------------------------------------------
# Historical stress


def _session_dates(prices: Any) -> Any:
    import pandas as pd

    if not isinstance(prices, pd.DataFrame):
        raise TypeError(f"prices must be a pandas DataFrame, got {type(prices).__name__}")
    idx = prices.index
    if not isinstance(idx, pd.DatetimeIndex):
        raise TypeError("prices must have a DatetimeIndex of session dates")
    if idx.tz is not None:
        idx = idx.tz_localize(None)  # the wall-clock date in the index's own zone (UTC: the UTC date)
    idx = idx.normalize()
    if not idx.is_monotonic_increasing or not idx.is_unique:
        raise ValueError("prices must have increasing, unique session dates")
    return idx


def historical_stress(prices: Any, weights: Any, scenario: StressScenario | str) -> StressResult:
    """Replay a historical stress window on today's weights, held buy-and-hold.

    Positions ``w_i`` (fractions of equity; cash ``1 - sum w`` earns 0) are taken at the close
    of the last session before ``scenario.start`` (the base) and held, without rebalancing,
    to the close of the last session on or before ``scenario.end``. The book value is
    ``V_t = 1 + sum_i w_i (P_i(t) / P_i(base) - 1)``, so the window's P&L is
    ``pnl = sum_i w_i (P_i(end) / P_i(base) - 1)``. A covered asset's missing close inside the
    window is carried forward from its previous close.

    Parameters
    ----------
    prices : pandas.DataFrame
        Closes (columns = assets) on a naive or tz-aware DatetimeIndex of session dates
        (a tz-aware index is read as dates in its own zone), increasing and unique. NaN
        where an asset has no price (not yet listed).
    weights : pandas.Series or array-like, shape (k,)
        A Series maps asset -> weight (assets absent from ``prices`` count as missing); an
        array is aligned on the columns.
    scenario : StressScenario or str
        A window, or a key of :data:`HISTORICAL_SCENARIOS`.

    Returns
    -------
    StressResult

    Raises
    ------
    TypeError
        ``prices`` is not a DataFrame with a DatetimeIndex.
    ValueError
        Unknown scenario key, non-finite weights, wrong array length, unsorted dates.
    InsufficientDataError
        No session before the start or none in the window, or no asset with a non-zero
        weight has prices at both the base and end sessions.
    """
    import pandas as pd

    if isinstance(scenario, str):
        if scenario not in HISTORICAL_SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; known: {sorted(HISTORICAL_SCENARIOS)}")
        scenario = HISTORICAL_SCENARIOS[scenario]
    if not isinstance(scenario, StressScenario):
        raise TypeError(f"scenario must be a StressScenario or a key, got {type(scenario).__name__}")
    idx = _session_dates(prices)
    if isinstance(weights, pd.Series):
        names = [str(a) for a in weights.index]
        w = np.asarray(weights.to_numpy(), dtype=np.float64)
        labels = {str(c): c for c in prices.columns}
    else:
        w, _ = as_float_1d(weights, "weights")
        if w.size != prices.shape[1]:
            raise ValueError(f"weights has {w.size} entries but prices has {prices.shape[1]} columns")
        names = [str(c) for c in prices.columns]
        labels = {str(c): c for c in prices.columns}
    if len(set(names)) != len(names):
        raise ValueError("weights names the same asset twice")
    if not np.all(np.isfinite(w)):
        raise ValueError("weights contains NaN/inf")
    start, end = pd.Timestamp(scenario.start), pd.Timestamp(scenario.end)
    base_pos = int(np.searchsorted(idx.values, start.to_datetime64(), side="left")) - 1
    end_pos = int(np.searchsorted(idx.values, end.to_datetime64(), side="right")) - 1
    if base_pos < 0:
        raise InsufficientDataError(f"prices have no session before {scenario.start} (scenario {scenario.key!r})")
    if end_pos <= base_pos:
        raise InsufficientDataError(f"prices have no session in {scenario.start}..{scenario.end}")
    held = [(a, float(v)) for a, v in zip(names, w, strict=True) if v != 0.0]
    covered: list[tuple[str, float]] = []
    missing: list[str] = []
    for a, v in held:
        col = labels.get(a)
        if col is None:
            missing.append(a)
            continue
        series = prices[col]
        pb, pe = float(series.iloc[base_pos]), float(series.iloc[end_pos])
        if math.isfinite(pb) and math.isfinite(pe) and pb > 0.0:
            covered.append((a, v))
        else:
            missing.append(a)
    if not covered:
        raise InsufficientDataError(
            f"no asset with a non-zero weight has prices on {idx[base_pos].date()} and {idx[end_pos].date()} "
            f"(scenario {scenario.key!r})"
        )
    cols = [labels[a] for a, _ in covered]
    wc = np.array([v for _, v in covered])
    window = prices[cols].iloc[base_pos : end_pos + 1].astype(np.float64).ffill().to_numpy()
    rel = window / window[0] - 1.0
    asset_pnl = {a: v * float(rel[-1, j]) for j, (a, v) in enumerate(covered)}
    pnl = sum(asset_pnl.values())
    book = 1.0 + rel @ wc
    with np.errstate(divide="ignore", invalid="ignore"):
        daily = book[1:] / book[:-1] - 1.0
    dates = tuple(d.date() for d in idx[base_pos + 1 : end_pos + 1])
    worst = int(np.nanargmin(daily)) if np.any(np.isfinite(daily)) else 0
    peak = np.maximum.accumulate(book)
    drawdown = float(np.max(1.0 - book / peak))
    total = sum(abs(v) for _, v in held)
    return StressResult(
        scenario=scenario,
        base_date=idx[base_pos].date(),
        end_date=idx[end_pos].date(),
        pnl=float(pnl),
        asset_pnl=MappingProxyType(asset_pnl),
        dates=dates,
        daily_returns=readonly(daily),
        worst_date=dates[worst],
        worst_return=float(daily[worst]),
        max_drawdown=drawdown,
        missing=tuple(missing),
        coverage=float(np.sum(np.abs(wc))) / total,
        drivers=tuple(sorted(asset_pnl, key=lambda a: (asset_pnl[a], a))),
    )


# ---------------------------------------------------------------------------------------
# Hypothetical shocks


def hypothetical_shock(
    covariance: Any,
    assets: Sequence[str],
    weights: Any,
    shocks: Mapping[str, float],
    *,
    held: Sequence[str] | None = None,
) -> ShockResult:
    """P&L of a hypothetical shock, spread to unshocked assets by the covariance.

    The shocked assets ``s`` move by the given simple returns ``r_s``; every other asset
    ``u`` moves by the conditional expectation of a zero-mean joint normal,
    ``r_u = Sigma_us Sigma_ss^{-1} r_s`` (for one shocked asset, ``beta_u * r_s`` with
    ``beta_u = cov(u, s) / var(s)``). ``Sigma_ss^{-1} r_s`` is solved by least squares
    (``numpy.linalg.lstsq``, the pseudo-inverse solution), so a singular ``Sigma_ss``
    (collinear or zero-variance shocked assets) is handled and flagged (``singular``).
    ``pnl = sum_i w_i r_i``.

    Parameters
    ----------
    covariance : array-like or pandas.DataFrame, shape (k, k)
        Covariance of the assets' returns (symmetric, finite). A DataFrame is reindexed to
        ``assets``.
    assets : sequence of str
        The ``k`` asset names, in the order of ``covariance``.
    weights : pandas.Series or array-like
        A Series maps asset -> weight (absent assets weigh 0). An array has ``k`` entries in
        the order of ``assets``, or one entry per name of ``held`` when given.
    shocks : Mapping[str, float]
        Asset -> simple return, e.g. ``{"SP500X": -0.20}``; shocked assets may be unheld.
    held : sequence of str, optional
        The assets that an array of ``weights`` refers to (the others weigh 0).

    Returns
    -------
    ShockResult

    Raises
    ------
    ValueError
        An unknown asset in ``shocks``, ``weights`` or ``held`` (named); no shocks;
        non-finite values; a covariance that is not square, symmetric and of size ``k``.
    """
    names = [str(a) for a in assets]
    if len(set(names)) != len(names):
        raise ValueError("assets contains duplicate names")
    pos = {a: i for i, a in enumerate(names)}
    k = len(names)
    if hasattr(covariance, "reindex") and hasattr(covariance, "columns"):
        unknown = [a for a in names if a not in covariance.index or a not in covariance.columns]
        if unknown:
            raise ValueError(f"covariance has no row/column for asset(s) {unknown!r}")
        covariance = covariance.loc[names, names]
    cov = np.asarray(covariance.to_numpy() if hasattr(covariance, "to_numpy") else covariance, dtype=np.float64)
    if cov.shape != (k, k):
        raise ValueError(f"covariance must have shape ({k}, {k}) for {k} assets, got {cov.shape}")
    if not np.all(np.isfinite(cov)):
        raise ValueError("covariance contains NaN/inf")
    if not np.allclose(cov, cov.T, rtol=1e-10, atol=1e-14 * max(1.0, float(np.max(np.abs(cov))))):
        raise ValueError("covariance is not symmetric")
    w = np.zeros(k)
    if hasattr(weights, "index") and hasattr(weights, "to_numpy"):
        pairs = [(str(a), float(v)) for a, v in weights.items()]
    else:
        arr, _ = as_float_1d(weights, "weights")
        refs = names if held is None else [str(a) for a in held]
        if arr.size != len(refs):
            what = "held" if held is not None else "assets"
            raise ValueError(f"weights has {arr.size} entries but {what} has {len(refs)}")
        pairs = list(zip(refs, arr.tolist(), strict=True))
    for a, v in pairs:
        if a not in pos:
            raise ValueError(f"weights names an asset not in assets: {a!r}")
        if not math.isfinite(v):
            raise ValueError(f"weight of {a!r} is not finite")
        w[pos[a]] = v
    if not shocks:
        raise ValueError("shocks is empty")
    for a, v in shocks.items():
        if str(a) not in pos:
            raise ValueError(f"shocks names an asset not in assets: {a!r}")
        if not math.isfinite(float(v)):
            raise ValueError(f"shock of {a!r} is not finite")
    given = {str(a): float(v) for a, v in shocks.items()}
    s_idx = np.array([i for i, a in enumerate(names) if a in given])
    u_idx = np.array([i for i, a in enumerate(names) if a not in given], dtype=np.intp)
    r_s = np.array([given[names[i]] for i in s_idx])
    sol, _, rank, _ = np.linalg.lstsq(cov[np.ix_(s_idx, s_idx)], r_s, rcond=None)
    r = np.zeros(k)
    r[s_idx] = r_s
    if u_idx.size:
        r[u_idx] = cov[np.ix_(u_idx, s_idx)] @ sol
    asset_pnl = {names[i]: float(w[i] * r[i]) for i in range(k) if w[i] != 0.0}
    return ShockResult(
        pnl=float(sum(asset_pnl.values())),
        asset_pnl=MappingProxyType(asset_pnl),
        returns=frozen_mapping({a: r[i] for i, a in enumerate(names)}),
        shocked=tuple(names[i] for i in s_idx),
        drivers=tuple(sorted(asset_pnl, key=lambda a: (asset_pnl[a], a))),
        rank=int(rank),
        singular=bool(rank < s_idx.size),
        weights=frozen_mapping({a: w[i] for i, a in enumerate(names)}),
    )
