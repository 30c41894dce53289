"""Vectorised backtest of target weights with next-bar execution, costs and limits.

Timing: a target weight decided at the close of bar ``t`` is traded at the open of bar
``t + 1``. Over bar ``t + 1`` the book first carries the old weight through the overnight
gap ``O[t+1] / C[t] - 1`` and then the new weight through the session ``C[t+1] / O[t+1] - 1``:

    r[t+1] = (1 + w[t] * gap[t+1]) * (1 + w[t+1] * session[t+1]) - 1 - cost[t+1]
    cost[t+1] = |w[t+1] - w[t]| * (cost_bps + slippage_bps) / 1e4

Weights are rebalanced to target every bar (drift between bars is not modelled). A held
weight of 1 with zero costs reproduces buy-and-hold exactly, since
``(1 + gap)(1 + session) = C[t+1] / C[t]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.errors import InsufficientDataError

__all__ = ["BacktestConfig", "BacktestResult", "PerformanceMetrics", "run_backtest", "performance_metrics"]


@dataclass(frozen=True)
class BacktestConfig:
    """Costs and limits.

    Parameters
    ----------
    cost_bps : float, default 5.0
        Commission and spread per unit of traded weight, in basis points (>= 0).
    slippage_bps : float, default 0.0
        Extra cost per unit of traded weight, in basis points (>= 0).
    max_weight : float, default 1.0
        Largest long weight (> 0).
    min_weight : float, default 0.0
        Most negative weight; 0 forbids shorting.
    periods_per_year : int, default 252
        Bars per year for annualisation.
    """

    cost_bps: float = 5.0
    slippage_bps: float = 0.0
    max_weight: float = 1.0
    min_weight: float = 0.0
    periods_per_year: int = 252

    def __post_init__(self) -> None:
        for name in ("cost_bps", "slippage_bps"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if not (np.isfinite(self.max_weight) and self.max_weight > 0):
            raise ValueError(f"max_weight must be > 0, got {self.max_weight!r}")
        if not (np.isfinite(self.min_weight) and self.min_weight <= 0):
            raise ValueError(f"min_weight must be <= 0, got {self.min_weight!r}")
        if self.periods_per_year < 1:
            raise ValueError(f"periods_per_year must be >= 1, got {self.periods_per_year!r}")


@dataclass(frozen=True)
class PerformanceMetrics:
    """Summary statistics of a return series (simple returns per bar).

    ``max_drawdown`` is negative (e.g. -0.55); ``max_drawdown_duration`` is the longest
    stretch, in bars, spent below a previous equity peak. Ratios with a zero denominator
    are NaN. ``hit_rate`` and ``profit_factor`` count only bars with a position.
    """

    total_return: float
    cagr: float
    volatility: float
    sharpe: float
    sortino: float
    max_drawdown: float
    max_drawdown_duration: int
    calmar: float
    hit_rate: float
    profit_factor: float
    turnover: float
    exposure: float
    n_bars: int

    def to_dict(self) -> dict[str, float | int]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class BacktestResult:
    """Bar-by-bar record of a backtest; all series share the price index."""

    weights: pd.Series
    returns: pd.Series
    gross_returns: pd.Series
    costs: pd.Series
    equity: pd.Series
    metrics: PerformanceMetrics
    config: BacktestConfig


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 and np.isfinite(den) else float("nan")


def performance_metrics(
    returns: pd.Series | np.ndarray,
    weights: pd.Series | np.ndarray | None = None,
    periods_per_year: int = 252,
) -> PerformanceMetrics:
    """Performance statistics of simple per-bar returns.

    Parameters
    ----------
    returns : array-like, shape (n,)
        Simple returns per bar (finite).
    weights : array-like, shape (n,), optional
        Weight held over each bar; defaults to 1 (always invested).
    periods_per_year : int, default 252

    Raises
    ------
    InsufficientDataError
        Fewer than 2 returns.
    """
    r = np.asarray(returns, dtype=float)
    if r.ndim != 1:
        raise ValueError("returns must be one-dimensional")
    if r.size < 2:
        raise InsufficientDataError(f"need at least 2 returns, got {r.size}")
    if not np.isfinite(r).all():
        raise ValueError("returns contain NaN or inf")
    w = np.ones_like(r) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != r.shape:
        raise ValueError("weights must have the same length as returns")
    n = r.size
    equity = np.cumprod(1.0 + r)
    years = n / periods_per_year
    total = float(equity[-1] - 1.0)
    cagr = float(equity[-1] ** (1.0 / years) - 1.0) if equity[-1] > 0 else -1.0
    sd = float(np.std(r, ddof=1))
    vol = sd * np.sqrt(periods_per_year)
    sharpe = _ratio(np.mean(r) * np.sqrt(periods_per_year), sd)
    downside = np.sqrt(np.mean(np.minimum(r, 0.0) ** 2))
    sortino = _ratio(np.mean(r) * np.sqrt(periods_per_year), downside)
    peak = np.maximum.accumulate(np.concatenate([[1.0], equity]))[1:]
    dd = equity / peak - 1.0
    max_dd = float(dd.min()) if dd.size else 0.0
    under = dd < 0
    longest = run = 0
    for flag in under:  # one pass; n is at most tens of thousands
        run = run + 1 if flag else 0
        longest = max(longest, run)
    calmar = _ratio(cagr, abs(max_dd))
    active = w != 0
    ra = r[active]
    hit = float(np.mean(ra > 0)) if ra.size else float("nan")
    gains, losses = ra[ra > 0].sum(), -ra[ra < 0].sum()
    pf = _ratio(gains, losses)
    prev = np.concatenate([[0.0], w[:-1]])
    turnover = float(np.abs(w - prev).sum() / years)
    exposure = float(np.mean(active))
    return PerformanceMetrics(
        total_return=total,
        cagr=cagr,
        volatility=float(vol),
        sharpe=sharpe,
        sortino=sortino,
        max_drawdown=max_dd,
        max_drawdown_duration=int(longest),
        calmar=calmar,
        hit_rate=hit,
        profit_factor=pf,
        turnover=turnover,
        exposure=exposure,
        n_bars=int(n),
    )


def run_backtest(
    bars: pd.DataFrame,
    target: pd.Series,
    config: BacktestConfig | None = None,
) -> BacktestResult:
    """Backtest target weights decided at each close and traded at the next open.

    Parameters
    ----------
    bars : DataFrame
        At least ``open`` and ``close`` columns, positive and finite, indexed by bar.
        Close-only bars (every ``open`` NaN, see :func:`analytics.is_close_only`) have no
        open to trade at: their targets are traded at the next bar's *close*, one bar later
        than with OHLC bars, and each bar earns its close-to-close return.
    target : Series
        Target weight decided at the close of each bar (same index as ``bars``, or a
        subset: missing bars and NaN mean "flat"). Clipped to ``[min_weight, max_weight]``.
    config : BacktestConfig, optional

    Returns
    -------
    BacktestResult
        ``weights[t]`` is the weight held during bar ``t`` (= clipped target of ``t - 1``;
        of ``t - 2`` for close-only bars); ``returns[t]`` the net return of bar ``t``; the
        first bar has weight 0 and return 0.

    Raises
    ------
    InsufficientDataError
        Fewer than 3 bars.
    """
    config = config or BacktestConfig()
    if not isinstance(bars, pd.DataFrame) or not {"open", "close"} <= set(bars.columns):
        raise ValueError("bars must be a DataFrame with open and close columns")
    if not isinstance(target, pd.Series):
        raise TypeError("target must be a pandas Series")
    if len(bars) < 3:
        raise InsufficientDataError(f"need at least 3 bars, got {len(bars)}")
    o = bars["open"].to_numpy(dtype=float)
    c = bars["close"].to_numpy(dtype=float)
    close_only = bool(np.isnan(o).all())
    if close_only:
        o = np.concatenate([[c[0]], c[:-1]])  # no gap: the "session" of bar t is close t-1 -> close t
    if not (np.isfinite(o).all() and np.isfinite(c).all() and (o > 0).all() and (c > 0).all()):
        raise ValueError("bars open/close must be finite and positive (or every open NaN: close-only bars)")
    extra = target.index.difference(bars.index)
    if len(extra):
        raise ValueError(f"target has {len(extra)} timestamps not in bars (first {extra[0]})")
    decided = target.reindex(bars.index).to_numpy(dtype=float)
    decided = np.where(np.isfinite(decided), decided, 0.0)
    decided = np.clip(decided, config.min_weight, config.max_weight)
    # OHLC: trade at the next bar's open; close-only: at the next bar's close, so held a bar later.
    w = np.concatenate([[0.0, 0.0], decided[:-2]]) if close_only else np.concatenate([[0.0], decided[:-1]])
    w_prev = np.concatenate([[0.0], w[:-1]])
    gap = np.concatenate([[0.0], o[1:] / c[:-1] - 1.0])
    session = np.concatenate([[0.0], c[1:] / o[1:] - 1.0])
    gross = (1.0 + w_prev * gap) * (1.0 + w * session) - 1.0
    costs = np.abs(w - w_prev) * (config.cost_bps + config.slippage_bps) / 1e4
    net = gross - costs
    idx = bars.index
    metrics = performance_metrics(net[1:], w[1:], config.periods_per_year)
    return BacktestResult(
        weights=pd.Series(w, idx, name="weight"),
        returns=pd.Series(net, idx, name="return"),
        gross_returns=pd.Series(gross, idx, name="gross_return"),
        costs=pd.Series(costs, idx, name="cost"),
        equity=pd.Series(np.cumprod(1.0 + net), idx, name="equity"),
        metrics=metrics,
        config=config,
    )
