"""Stress tests of a portfolio: historical windows replayed on today's weights, and
hypothetical shocks propagated through a covariance.

Historical: today's weights are held buy-and-hold from the close of the last session before a
scenario's start to its end (cash earns 0); the P&L splits exactly into per-asset P&L; assets
without prices in the window are left out and listed, with the share of gross weight covered.
Hypothetical: shocked assets move by the given simple returns, the others by the conditional
expectation of a zero-mean joint normal, ``r_u = Σ_us Σ_ss⁺ r_s`` (the pseudo-inverse when the
shocked block is singular).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType
from typing import Any

import numpy as np

from analytics._stats_common import (
    ResultMixin,
    as_float_1d,
    frozen_mapping,
    readonly,
)
from analytics.errors import InsufficientDataError

__all__ = [
    "HISTORICAL_SCENARIOS",
    "StressScenario",
    "StressResult",
    "ShockResult",
    "historical_stress",
    "hypothetical_shock",
]


# ---------------------------------------------------------------------------------------
# Results


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
