"""Walk-forward backtest of a regime-aware portfolio policy over many assets.

The policy, bar by bar (every input is known at the close the decision is taken):

1. At the close of bar ``t`` the consensus regime family ``families[t]`` is read (from a
   causal regime path computed elsewhere).
2. The target is re-estimated on *review* bars: every ``review_every`` bars, and on every bar
   where the family differs from the one of the last review. The estimate uses the last
   ``cov_window`` returns up to ``t`` only: :func:`analytics.regime_covariance` with the
   family's half-life, then :func:`analytics.portfolio_weights` under the family's caps.
3. A trade is due when the regime changed, or when the (drifted) book is further than
   ``band`` from the target in any asset (:func:`analytics.rebalance_due`); that is checked
   on every bar against the latest target, so drift is caught between reviews too.
4. A due trade is executed at the **next** bar's close (the embedded universe is close-only:
   there is no open to trade at), and costs ``cost_bps`` per unit of traded weight.

Returns are simple close-to-close returns; cash earns nothing. Parameters are fixed a priori
(:class:`PortfolioBacktestConfig`'s defaults); nothing is fitted on the backtest's results.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analytics._backtest import PerformanceMetrics, performance_metrics
from analytics._covariance import DEFAULT_HALF_LIVES, regime_covariance
from analytics._portfolio import (
    DEFAULT_REGIME_CAPS,
    PORTFOLIO_METHODS,
    RegimeCaps,
    caps_for,
    drift_weights,
    portfolio_weights,
    rebalance_due,
)
from analytics._stress import HISTORICAL_SCENARIOS, StressScenario
from analytics.errors import InsufficientDataError

__all__ = [
    "BENCHMARK_METHODS",
    "PortfolioBacktestConfig",
    "PortfolioBacktestResult",
    "CrisisWindow",
    "run_portfolio_backtest",
    "crisis_windows",
]

#: Benchmarks run through the same engine: 1/N and inverse volatility with neither regime caps
#: nor regime half-lives (fully invested, the risk-on half-life throughout).
BENCHMARK_METHODS: tuple[str, ...] = ("equal", "invvol_static")
_FULL = RegimeCaps(1.0, 1.0)


@dataclass(frozen=True)
class PortfolioBacktestConfig:
    """Fixed, a-priori parameters of the portfolio policy and its costs.

    Parameters
    ----------
    cov_window : int, default 504
        Returns fed to the covariance estimate (about two years of daily bars).
    min_history : int, default 252
        Returns needed before the first decision.
    review_every : int, default 21
        Bars between scheduled re-estimates of the target (about a month).
    band : float, default 0.05
        Largest tolerated drift of one asset's weight from its target before a trade.
    cost_bps : float, default 5.0
        Costs per unit of traded weight, in basis points.
    risk_aversion : float, default 5.0
        ``mv``'s risk aversion on the variance over one review period (the per-bar
        covariance times ``review_every``), against costs paid once per trade.
    half_lives, caps : mapping
        Per consensus family: the EWMA half-life in bars and the :class:`RegimeCaps`.
    periods_per_year : int, default 252
    """

    cov_window: int = 504
    min_history: int = 252
    review_every: int = 21
    band: float = 0.05
    cost_bps: float = 5.0
    risk_aversion: float = 5.0
    half_lives: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_HALF_LIVES))
    caps: Mapping[str, RegimeCaps] = field(default_factory=lambda: dict(DEFAULT_REGIME_CAPS))
    periods_per_year: int = 252

    def __post_init__(self) -> None:
        for name in ("cov_window", "min_history", "review_every", "periods_per_year"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.min_history < 20:
            raise ValueError(f"min_history must be >= 20, got {self.min_history!r}")
        for name in ("band", "cost_bps", "risk_aversion"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and np.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")


@dataclass(frozen=True)
class PortfolioBacktestResult:
    """Bar-by-bar record of one method; every series shares the price index.

    ``weights`` are the weights held over each bar (set at the previous close); ``targets``
    the target in force at each bar's close (NaN before the first decision) and ``trade_due``
    whether that close decided to trade to it (executed at the next close); ``returns`` the
    net return of each bar; ``turnover`` the traded weight at each bar's close;
    ``rebalances`` the bars whose close traded; ``metrics.turnover`` is the yearly sum of
    traded weight.
    """

    method: str
    weights: pd.DataFrame
    targets: pd.DataFrame
    trade_due: pd.Series
    returns: pd.Series
    costs: pd.Series
    turnover: pd.Series
    equity: pd.Series
    metrics: PerformanceMetrics
    rebalances: tuple[pd.Timestamp, ...]
    config: PortfolioBacktestConfig


@dataclass(frozen=True)
class CrisisWindow:
    """A method's figures inside one historical stress window."""

    scenario: str
    name: str
    start: str
    end: str
    total_return: float
    max_drawdown: float
    worst_day: float
    volatility: float

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def _returns(prices: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(prices, pd.DataFrame) or prices.shape[1] < 1:
        raise ValueError("prices must be a DataFrame with one column per asset")
    if not isinstance(prices.index, pd.DatetimeIndex) or not prices.index.is_monotonic_increasing:
        raise ValueError("prices need a sorted DatetimeIndex")
    values = prices.to_numpy(dtype=float)
    if not (np.isfinite(values).all() and (values > 0).all()):
        raise ValueError("prices must be finite and positive (align the assets on common dates first)")
    return prices.astype(float).pct_change().fillna(0.0)


def _target(method: str, window: pd.DataFrame, family: str, current: np.ndarray,
            cfg: PortfolioBacktestConfig) -> np.ndarray:
    k = window.shape[1]
    if method == "equal":
        return np.full(k, 1.0 / k)
    if method == "invvol_static":
        cov = regime_covariance(window, "risk_on", half_lives=cfg.half_lives, min_obs=cfg.min_history)
        return portfolio_weights("invvol", cov, caps=_FULL).weights
    cov = regime_covariance(window, family, half_lives=cfg.half_lives, min_obs=cfg.min_history)
    caps = caps_for(family, cfg.caps)
    if method == "mv":
        return portfolio_weights("mv", cov, caps=caps, previous_weights=current,
                                 turnover_cost=cfg.cost_bps / 1e4,
                                 risk_aversion=cfg.risk_aversion * cfg.review_every).weights
    return portfolio_weights(method, cov, caps=caps).weights


def run_portfolio_backtest(
    prices: pd.DataFrame,
    families: pd.Series,
    method: str,
    config: PortfolioBacktestConfig | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> PortfolioBacktestResult:
    """Replay the portfolio policy (module docstring) over ``prices``.

    Parameters
    ----------
    prices : DataFrame, shape (n, k)
        Closes of the assets on common dates (finite, positive), sorted by date.
    families : Series
        Consensus regime family at each bar's close (``risk_on``, ``risk_off``,
        ``unavailable``), on ``prices``' index or a superset; a missing value counts as
        ``unavailable``. It must be causal: the value at ``t`` from data to ``t`` only.
    method : {"erc", "mv", "hrp", "invvol", "equal", "invvol_static"}
        A portfolio method, or a benchmark (:data:`BENCHMARK_METHODS`).
    config : PortfolioBacktestConfig, optional
    progress : callable, optional
        Called as ``progress(done, total)`` with review counts.

    Returns
    -------
    PortfolioBacktestResult

    Raises
    ------
    InsufficientDataError
        Fewer bars than ``min_history + 3``.
    """
    cfg = config or PortfolioBacktestConfig()
    if method not in (*PORTFOLIO_METHODS, *BENCHMARK_METHODS):
        raise ValueError(f"method must be one of {', '.join((*PORTFOLIO_METHODS, *BENCHMARK_METHODS))}, "
                         f"got {method!r}")
    rets = _returns(prices)
    n, k = rets.shape
    if n < cfg.min_history + 3:
        raise InsufficientDataError(f"{n} bars; the portfolio backtest needs at least {cfg.min_history + 3}")
    if not isinstance(families, pd.Series):
        raise TypeError("families must be a pandas Series")
    fam = families.reindex(prices.index).astype(object).where(lambda s: s.notna(), "unavailable").to_numpy()
    r = rets.to_numpy()
    held = np.zeros((n, k))
    targets = np.full((n, k), np.nan)
    due = np.zeros(n, dtype=bool)
    gross = np.zeros(n)
    turnover = np.zeros(n)
    w = np.zeros(k)
    target: np.ndarray | None = None
    pending: np.ndarray | None = None
    last_review = -(10**9)
    review_family: str | None = None
    trades: list[pd.Timestamp] = []
    regime_aware = method not in BENCHMARK_METHODS
    total_reviews = max(1, (n - cfg.min_history) // cfg.review_every)
    reviews = 0
    for t in range(1, n):
        held[t] = w
        gross[t] = float(w @ r[t])
        w = drift_weights(w, r[t]) if w.any() else w
        if pending is not None:  # decided at the previous close, traded at this one
            turnover[t] = float(np.abs(pending - w).sum())
            w = pending
            pending = None
            trades.append(prices.index[t])
        if t < cfg.min_history:
            continue
        family = str(fam[t]) if regime_aware else "risk_on"
        changed = review_family is not None and family != review_family
        if t - last_review >= cfg.review_every or changed or target is None:
            window = rets.iloc[max(1, t + 1 - cfg.cov_window): t + 1]
            target = _target(method, window, family, w, cfg)
            last_review, review_family = t, family
            reviews += 1
            if progress is not None:
                progress(min(reviews, total_reviews), total_reviews)
        targets[t] = target
        if rebalance_due(w, target, band=cfg.band, regime_changed=changed or not w.any()):
            due[t] = True  # the last close too: an export run that day trades the next
            if t + 1 < n:
                pending = np.asarray(target, dtype=float)
    costs = turnover * cfg.cost_bps / 1e4
    net = gross - costs
    idx = prices.index
    start = cfg.min_history  # the first bar a decision could be held over is the one after the next
    metrics = performance_metrics(net[start:], held[start:].sum(axis=1), cfg.periods_per_year)
    years = (n - start) / cfg.periods_per_year
    metrics = dataclasses.replace(metrics, turnover=float(turnover[start:].sum() / years))
    return PortfolioBacktestResult(
        method=method,
        weights=pd.DataFrame(held, index=idx, columns=prices.columns),
        targets=pd.DataFrame(targets, index=idx, columns=prices.columns),
        trade_due=pd.Series(due, idx, name="trade_due"),
        returns=pd.Series(net, idx, name="return"),
        costs=pd.Series(costs, idx, name="cost"),
        turnover=pd.Series(turnover, idx, name="turnover"),
        equity=pd.Series(np.cumprod(1.0 + net), idx, name="equity"),
        metrics=metrics,
        rebalances=tuple(trades),
        config=cfg,
    )


def crisis_windows(returns: pd.Series, scenarios: Mapping[str, StressScenario] | None = None
                   ) -> tuple[CrisisWindow, ...]:
    """A return series' figures inside each historical stress window it covers.

    Parameters
    ----------
    returns : Series
        Simple returns per bar on a ``DatetimeIndex`` (UTC or naive session dates).
    scenarios : mapping, optional
        Default :data:`analytics.HISTORICAL_SCENARIOS`.

    Returns
    -------
    tuple of CrisisWindow
        One per scenario with at least two bars inside ``[start, end]``: compounded total
        return, maximum drawdown inside the window, worst day and annualised volatility.
    """
    scenarios = HISTORICAL_SCENARIOS if scenarios is None else scenarios
    days = returns.index.tz_localize(None) if returns.index.tz is not None else returns.index
    out = []
    for key, sc in scenarios.items():
        start, end = pd.Timestamp(str(sc.start)), pd.Timestamp(str(sc.end))
        mask = (days >= start) & (days <= end)
        r = returns.to_numpy(dtype=float)[mask]
        if r.size < 2:
            continue
        equity = np.cumprod(1.0 + r)
        peak = np.maximum.accumulate(np.concatenate([[1.0], equity]))[1:]
        out.append(CrisisWindow(
            scenario=key, name=sc.name, start=str(sc.start)[:10], end=str(sc.end)[:10],
            total_return=float(equity[-1] - 1.0), max_drawdown=float((equity / peak - 1.0).min()),
            worst_day=float(r.min()), volatility=float(np.std(r, ddof=1) * np.sqrt(252)),
        ))
    return tuple(out)
