"""Tearsheet statistics of a backtest: calendar returns, drawdown periods, rolling risk.

All functions take simple per-bar returns (``0.01`` = 1 %) indexed by timestamps and use the
same conventions as :func:`analytics.performance_metrics`: equity is the cumulative product
of ``1 + r`` starting from 1 before the first bar, volatility is the sample standard
deviation (``ddof=1``) scaled by ``sqrt(periods_per_year)`` and the Sharpe ratio is the
annualised mean over that volatility (no risk-free rate). So the deepest drawdown period
here is ``max_drawdown`` there and the longest is ``max_drawdown_duration``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "DrawdownPeriod",
    "RollingPerformance",
    "monthly_returns",
    "yearly_returns",
    "drawdown_periods",
    "rolling_performance",
]


def _returns(returns: pd.Series) -> pd.Series:
    if not isinstance(returns, pd.Series) or not isinstance(returns.index, pd.DatetimeIndex):
        raise TypeError("returns must be a pandas Series indexed by a DatetimeIndex")
    if not returns.index.is_monotonic_increasing:
        raise ValueError("returns must be sorted by date")
    r = returns.astype(float)
    if not np.isfinite(r.to_numpy()).all():
        raise ValueError("returns contain NaN or inf")
    return r


def _compound(r: pd.Series) -> float:
    return float(np.prod(1.0 + r.to_numpy()) - 1.0)


def monthly_returns(returns: pd.Series) -> pd.DataFrame:
    """Compounded return of every calendar month, as a year-by-month table.

    Parameters
    ----------
    returns : pandas.Series
        Simple returns per bar, finite, indexed by increasing timestamps.

    Returns
    -------
    pandas.DataFrame
        Index: the calendar years present (int); columns: months 1..12. A cell is
        ``prod(1 + r) - 1`` over the month's bars; NaN where the month has no bar.
        Compounding every cell gives the total return of ``returns``.

    Raises
    ------
    TypeError
        If ``returns`` is not a Series with a DatetimeIndex.
    ValueError
        If it is unsorted or has a non-finite value.
    """
    r = _returns(returns)
    table = r.groupby([r.index.year, r.index.month]).apply(_compound).unstack()
    table = table.reindex(columns=range(1, 13))
    table.index = table.index.astype(int)
    table.index.name, table.columns.name = "year", "month"
    return table.astype(float)


def yearly_returns(returns: pd.Series) -> pd.Series:
    """Compounded return of every calendar year present in ``returns``.

    Parameters
    ----------
    returns : pandas.Series
        Simple returns per bar, finite, indexed by increasing timestamps.

    Returns
    -------
    pandas.Series
        Indexed by year (int); a partial first or last year covers its bars only.

    Raises
    ------
    TypeError, ValueError
        As :func:`monthly_returns`.
    """
    r = _returns(returns)
    out = r.groupby(r.index.year).apply(_compound).astype(float)
    out.index = out.index.astype(int)
    out.index.name = "year"
    return out.rename("return")


@dataclass(frozen=True)
class DrawdownPeriod:
    """One stretch spent below a previous equity peak.

    Attributes
    ----------
    start : pandas.Timestamp
        First bar below the peak.
    trough : pandas.Timestamp
        Bar of the lowest equity in the period (the first one on ties).
    recovery : pandas.Timestamp or None
        First bar back at or above the peak; None when the data end under water.
    depth : float
        Lowest ``equity / peak - 1`` in the period (negative, e.g. -0.55).
    length : int
        Bars spent under water: from ``start`` up to, not including, ``recovery`` (to the
        last bar when not recovered).
    """

    start: pd.Timestamp
    trough: pd.Timestamp
    recovery: pd.Timestamp | None
    depth: float
    length: int

    @property
    def recovered(self) -> bool:
        return self.recovery is not None

    def to_dict(self) -> dict[str, object]:
        return {"start": self.start.isoformat(), "trough": self.trough.isoformat(),
                "recovery": None if self.recovery is None else self.recovery.isoformat(),
                "depth": self.depth, "length": self.length}


def drawdown_periods(returns: pd.Series, top: int | None = 5) -> tuple[DrawdownPeriod, ...]:
    """The deepest drawdown periods of the equity built from ``returns``.

    Parameters
    ----------
    returns : pandas.Series
        Simple returns per bar, finite, indexed by increasing timestamps.
    top : int or None, default 5
        How many periods to return; None returns all of them.

    Returns
    -------
    tuple of DrawdownPeriod
        Deepest first (ties: the earlier period first). Empty if equity never falls below
        a previous peak.

    Raises
    ------
    TypeError, ValueError
        As :func:`monthly_returns`, or ``top`` < 1.
    """
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
        raise ValueError(f"top must be a positive integer or None, got {top!r}")
    r = _returns(returns)
    equity = np.cumprod(1.0 + r.to_numpy())
    # The starting capital of 1 is the first peak, as in performance_metrics.
    peak = np.maximum.accumulate(np.concatenate([[1.0], equity]))[1:]
    dd = equity / peak - 1.0
    under = dd < 0
    idx = r.index
    periods: list[DrawdownPeriod] = []
    n = len(dd)
    i = 0
    while i < n:
        if not under[i]:
            i += 1
            continue
        j = i
        while j < n and under[j]:
            j += 1
        k = i + int(np.argmin(dd[i:j]))
        periods.append(DrawdownPeriod(start=idx[i], trough=idx[k], recovery=idx[j] if j < n else None,
                                      depth=float(dd[k]), length=j - i))
        i = j
    periods.sort(key=lambda p: p.depth)  # stable: ties keep their date order
    return tuple(periods if top is None else periods[:top])


@dataclass(frozen=True)
class RollingPerformance:
    """Trailing-window risk statistics, each on the index of the input.

    Attributes
    ----------
    window : int
        Bars per window.
    sharpe : pandas.Series
        Annualised Sharpe ratio of each trailing window; NaN before the first full window
        and where the window's volatility is zero.
    volatility : pandas.Series
        Annualised volatility of each trailing window.
    exposure : pandas.Series or None
        Mean absolute weight held over each trailing window, when weights were given.
    """

    window: int
    sharpe: pd.Series
    volatility: pd.Series
    exposure: pd.Series | None


def rolling_performance(returns: pd.Series, weights: pd.Series | None = None, *, window: int = 126,
                        periods_per_year: int = 252) -> RollingPerformance:
    """Rolling Sharpe ratio, volatility and exposure over trailing windows of ``window`` bars.

    Parameters
    ----------
    returns : pandas.Series
        Simple returns per bar, finite, indexed by increasing timestamps.
    weights : pandas.Series, optional
        Weight held over each bar, on the same index.
    window : int, default 126
        Bars per window (126 = six months of trading days); at least 2.
    periods_per_year : int, default 252

    Returns
    -------
    RollingPerformance

    Raises
    ------
    TypeError, ValueError
        As :func:`monthly_returns`; ``window`` < 2; ``weights`` not on the same index.
    """
    if isinstance(window, bool) or not isinstance(window, int) or window < 2:
        raise ValueError(f"window must be an integer >= 2, got {window!r}")
    r = _returns(returns)
    roll = r.rolling(window, min_periods=window)
    sd = roll.std(ddof=1)
    scale = np.sqrt(periods_per_year)
    # A flat window (all returns equal, e.g. out of the market) has no defined Sharpe ratio.
    sharpe = (roll.mean() * scale / sd.where(sd > 0)).rename("sharpe")
    exposure = None
    if weights is not None:
        if not isinstance(weights, pd.Series) or not weights.index.equals(r.index):
            raise ValueError("weights must be a Series on the same index as returns")
        exposure = weights.astype(float).abs().rolling(window, min_periods=window).mean().rename("exposure")
    return RollingPerformance(window=window, sharpe=sharpe, volatility=(sd * scale).rename("volatility"),
                              exposure=exposure)
