"""Tearsheet statistics of a backtest: calendar returns, drawdown periods, rolling risk, trades.

All functions take simple per-bar returns (``0.01`` = 1 %) indexed by timestamps and use the
same conventions as :func:`analytics.performance_metrics`: equity is the cumulative product
of ``1 + r`` starting from 1 before the first bar, volatility is the sample standard
deviation (``ddof=1``) scaled by ``sqrt(periods_per_year)`` and the Sharpe ratio is the
annualised mean over that volatility (no risk-free rate). So the deepest drawdown period
here is ``max_drawdown`` there and the longest is ``max_drawdown_duration``. The trade
functions also take the weight held over each bar, as in :class:`analytics.BacktestResult`.
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
    "Trade",
    "TradeSummary",
    "trade_list",
    "trade_summary",
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


#: Weights smaller than this in absolute value count as flat in :func:`trade_list`.
_FLAT = 1e-12


@dataclass(frozen=True)
class Trade:
    """One round trip: a maximal run of bars held on the same side of the market.

    Attributes
    ----------
    side : str
        ``"long"`` or ``"short"``.
    entry : pandas.Timestamp
        First bar held.
    exit : pandas.Timestamp
        Last bar held (the last bar of the data when the trade is still open).
    bars : int
        Bars held, ``>= 1``.
    return_ : float
        ``prod(1 + r) - 1`` of the policy's net returns over the bars held. With the
        backtest's next-open timing, the overnight gap and the cost of closing are booked on the
        first bar after the trade, which this return does not include.
    average_weight : float
        Mean absolute weight over the bars held.
    open : bool
        True when the position is still held on the last bar.
    """

    side: str
    entry: pd.Timestamp
    exit: pd.Timestamp
    bars: int
    return_: float
    average_weight: float
    open: bool

    def to_dict(self) -> dict[str, object]:
        """The trade as JSON-ready values (timestamps in ISO format, ``return_`` as ``"return"``)."""
        return {"side": self.side, "entry": self.entry.isoformat(), "exit": self.exit.isoformat(),
                "bars": self.bars, "return": self.return_, "average_weight": self.average_weight,
                "open": self.open}


def _weights_and_returns(weights: pd.Series, returns: pd.Series) -> tuple[np.ndarray, pd.Series]:
    r = _returns(returns)
    if not isinstance(weights, pd.Series) or not isinstance(weights.index, pd.DatetimeIndex):
        raise TypeError("weights must be a pandas Series indexed by a DatetimeIndex")
    if not weights.index.equals(r.index):
        raise ValueError("weights must be a Series on the same index as returns")
    w = weights.to_numpy(dtype=float)
    if not np.isfinite(w).all():
        raise ValueError("weights contain NaN or inf")
    return w, r


def _runs(w: np.ndarray) -> list[tuple[int, int, int]]:
    """``(start, stop, sign)`` of every maximal run of non-flat bars on one side, ``stop`` exclusive."""
    side = np.where(np.abs(w) < _FLAT, 0, np.sign(w)).astype(int)
    # a run starts where the side changes to long or short; it ends where the side changes again
    change = np.flatnonzero(np.diff(side, prepend=0, append=0) != 0)
    return [(int(a), int(b), int(side[a])) for a, b in zip(change[:-1], change[1:], strict=True) if side[a] != 0]


def trade_list(weights: pd.Series, returns: pd.Series) -> tuple[Trade, ...]:
    """The trades of a backtest, read from the weight held over each bar.

    A trade is a maximal run of consecutive bars whose weight is non-zero with the same sign.
    Resizing inside a run stays the same trade; a flip from long to short closes one trade and
    opens another on the same bar; a flat bar (``|w| < 1e-12``) separates trades.

    Parameters
    ----------
    weights : pandas.Series
        Weight held over each bar (negative = short), finite, on the index of ``returns``.
    returns : pandas.Series
        Net simple returns of the policy per bar, finite, indexed by increasing timestamps.

    Returns
    -------
    tuple of Trade
        In time order; empty if the policy never holds a position.

    Raises
    ------
    TypeError
        If either argument is not a Series with a DatetimeIndex.
    ValueError
        If the returns are unsorted, either series has a non-finite value, or the indexes differ.
    """
    w, r = _weights_and_returns(weights, returns)
    rv, idx, n = r.to_numpy(), r.index, len(w)
    return tuple(
        Trade(side="long" if sign > 0 else "short", entry=idx[a], exit=idx[b - 1], bars=b - a,
              return_=float(np.prod(1.0 + rv[a:b]) - 1.0), average_weight=float(np.mean(np.abs(w[a:b]))),
              open=b == n)
        for a, b, sign in _runs(w)
    )


@dataclass(frozen=True)
class TradeSummary:
    """Statistics over the trades of :func:`trade_list`.

    Return statistics are over trade returns (an open trade counts, marked to the last bar) and
    are NaN when there is no trade; ``average_win`` / ``average_loss`` are NaN without a winning /
    losing trade and ``profit_factor`` is NaN without a losing trade.

    Attributes
    ----------
    n_trades, n_long, n_short : int
        Number of trades, of which long and short.
    open_at_end : int
        1 if a trade is still open on the last bar, else 0.
    win_rate : float
        Share of trades with a return > 0.
    average_return, median_return, best_return, worst_return : float
        Mean, median, largest and smallest trade return.
    average_win, average_loss : float
        Mean return of the winning (> 0) and of the losing (< 0) trades.
    profit_factor : float
        Sum of the winning trade returns over minus the sum of the losing ones.
    average_bars : float
        Mean holding period in bars (NaN without trades).
    longest_bars : int
        Longest holding period in bars (0 without trades).
    time_in_market : float
        Share of bars with a position (NaN for an empty series).
    """

    n_trades: int
    n_long: int
    n_short: int
    open_at_end: int
    win_rate: float
    average_return: float
    median_return: float
    best_return: float
    worst_return: float
    average_win: float
    average_loss: float
    profit_factor: float
    average_bars: float
    longest_bars: int
    time_in_market: float

    def to_dict(self) -> dict[str, float | int]:
        """The statistics by field name."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x)) if x.size else float("nan")


def trade_summary(weights: pd.Series, returns: pd.Series) -> TradeSummary:
    """Win rate, average and extreme trade returns, holding periods and time in the market.

    Parameters
    ----------
    weights : pandas.Series
        Weight held over each bar, on the index of ``returns``.
    returns : pandas.Series
        Net simple returns of the policy per bar.

    Returns
    -------
    TradeSummary
        A policy that never trades gives 0 trades and NaN statistics, not an error.

    Raises
    ------
    TypeError, ValueError
        As :func:`trade_list`.
    """
    trades = trade_list(weights, returns)
    w = weights.to_numpy(dtype=float)
    rets = np.array([t.return_ for t in trades], dtype=float)
    held = np.array([t.bars for t in trades], dtype=int)
    wins, losses = rets[rets > 0], rets[rets < 0]
    nan = float("nan")
    return TradeSummary(
        n_trades=len(trades),
        n_long=sum(t.side == "long" for t in trades),
        n_short=sum(t.side == "short" for t in trades),
        open_at_end=int(bool(trades) and trades[-1].open),
        win_rate=float(np.mean(rets > 0)) if rets.size else nan,
        average_return=_mean(rets),
        median_return=float(np.median(rets)) if rets.size else nan,
        best_return=float(rets.max()) if rets.size else nan,
        worst_return=float(rets.min()) if rets.size else nan,
        average_win=_mean(wins),
        average_loss=_mean(losses),
        profit_factor=float(wins.sum() / -losses.sum()) if losses.size else nan,
        average_bars=_mean(held.astype(float)),
        longest_bars=int(held.max()) if held.size else 0,
        time_in_market=float(np.mean(np.abs(w) >= _FLAT)) if w.size else nan,
    )
