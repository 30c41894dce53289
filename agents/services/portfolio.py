"""Portfolios over many assets: universes, their aligned prices, and the portfolio backtest.

A universe is a list of symbols with an optional benchmark (the index it is compared with)
and a regime symbol (whose multi-timeframe consensus regime drives the portfolio's caps and
covariance half-life). Universes come from three places, looked up in this order:

1. the builtin ones (``sp500-20``: 20 large S&P 500 stocks 1990-2022; ``factors``: 5 factor
   ETFs 2014-2022; both close-only, benchmark ``SP500X``);
2. ``[portfolio.universes]`` in the configuration;
3. a text file: symbols separated by commas, spaces or new lines, ``#`` starts a comment.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from agents.config import Secrets, Settings
from agents.services.context import AppContext
from agents.services.regime import AGENT_METHOD, analyse_regimes, consensus_path
from analytics import (
    BENCHMARK_METHODS,
    PORTFOLIO_METHODS,
    InsufficientDataError,
    PortfolioBacktestConfig,
    RegimeCaps,
    RegimeDeskError,
    crisis_windows,
    performance_metrics,
    run_portfolio_backtest,
    shown,
)
from integrations import BUILTIN_UNIVERSES

__all__ = [
    "Universe",
    "UniverseError",
    "resolve_universe",
    "universe_names",
    "universe_prices",
    "backtest_config",
    "portfolio_backtest",
    "METHOD_LABELS",
]

#: Column names of the backtest table.
METHOD_LABELS: dict[str, str] = {
    "erc": "ERC", "mv": "MV", "hrp": "HRP", "invvol": "InvVol",
    "equal": "1/N", "invvol_static": "InvVol (no regime)", "index": "index B&H",
}
_UNIVERSE_FILE_LIMIT = 1_000_000  # bytes


class UniverseError(RegimeDeskError, ValueError):
    """A universe that cannot be resolved (unknown name, unreadable or empty file)."""


@dataclass(frozen=True)
class Universe:
    """A named list of symbols.

    Attributes
    ----------
    name : str
    symbols : tuple of str
        As written (each source makes them canonical when it loads them).
    benchmark : str or None
        The index the portfolio is compared with (buy-and-hold), if any.
    regime_symbol : str or None
        Whose consensus regime drives the caps and half-lives: ``portfolio.regime_symbol``,
        else the benchmark.
    origin : {'builtin', 'config', 'file'}
    """

    name: str
    symbols: tuple[str, ...]
    benchmark: str | None
    regime_symbol: str | None
    origin: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "symbols": list(self.symbols), "benchmark": self.benchmark,
                "regime_symbol": self.regime_symbol, "origin": self.origin}


def universe_names(settings: Settings) -> list[str]:
    """The builtin and configured universe names."""
    return [*BUILTIN_UNIVERSES, *settings.portfolio.universes]


def _read_file(path: Path) -> tuple[str, ...]:
    try:
        if path.stat().st_size > _UNIVERSE_FILE_LIMIT:
            raise UniverseError(f"universe file {path} is larger than {_UNIVERSE_FILE_LIMIT:,} bytes")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UniverseError(f"cannot read universe file {path}: {exc}") from None
    symbols: list[str] = []
    for line in text.splitlines():
        for token in line.split("#", 1)[0].replace(",", " ").split():
            if token.upper() not in symbols:
                symbols.append(token.upper())
    if not symbols:
        raise UniverseError(f"universe file {path} lists no symbols")
    return tuple(symbols)


def resolve_universe(settings: Settings, spec: str) -> Universe:
    """The universe named ``spec`` (builtin, configured, or a file path).

    Raises
    ------
    UniverseError
        Unknown name (the message lists the known ones), or a file that cannot be read or
        lists no symbols.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise UniverseError("--universe needs a name or a file")
    key = spec.strip()
    regime = settings.portfolio.regime_symbol
    if key.lower() in BUILTIN_UNIVERSES:
        symbols, bench = BUILTIN_UNIVERSES[key.lower()]
        return Universe(key.lower(), tuple(symbols), bench, regime or bench, "builtin")
    if key in settings.portfolio.universes:
        symbols = tuple(s.upper() for s in settings.portfolio.universes[key])
        return Universe(key, symbols, None, regime, "config")
    path = Path(key).expanduser()
    if path.is_file():
        return Universe(path.stem, _read_file(path), None, regime, "file")
    raise UniverseError(f"unknown universe {shown(key, 200)}: use one of {', '.join(universe_names(settings))} "
                        "or the path of a file listing symbols")


def universe_prices(store, symbols: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """Daily closes of ``symbols`` on their common dates, and notes on what was cut.

    Assets are aligned on the dates all of them have (an inner join): a younger asset moves
    the start of the whole frame, which the notes say.
    """
    closes = {}
    for sym in symbols:
        canonical = store.market.source.canonical_symbol(sym)
        closes[canonical] = store.get(canonical, "MT").frame["close"]
    frame = pd.DataFrame(closes)
    notes = []
    starts = {s: c.index[0] for s, c in closes.items() if len(c)}
    latest = max(starts.values()) if starts else None
    aligned = frame.dropna()
    if latest is not None and latest > min(starts.values()):
        late = ", ".join(s for s, t in starts.items() if t == latest)
        notes.append(f"aligned on common dates: starts {latest.date()} ({late} has no earlier bars)")
    dropped = len(frame.loc[latest:]) - len(aligned) if latest is not None else 0
    if dropped > 0:
        notes.append(f"{dropped} date(s) where some asset had no bar were left out")
    if aligned.empty:
        raise InsufficientDataError("the universe's assets have no date in common")
    return aligned, notes


def backtest_config(settings: Settings, cost_bps: float | None = None) -> PortfolioBacktestConfig:
    """The portfolio policy's fixed parameters from ``[portfolio]``."""
    p = settings.portfolio
    return PortfolioBacktestConfig(
        cov_window=p.cov_window, min_history=p.min_history, review_every=p.review_every, band=p.band,
        cost_bps=p.cost_bps if cost_bps is None else float(cost_bps), risk_aversion=p.risk_aversion,
        half_lives=dict(p.half_lives),
        caps={k: RegimeCaps(c.gross, c.per_asset) for k, c in p.caps.items()},
    )


def _metrics(returns: np.ndarray, exposure: np.ndarray, turnover: float | None) -> dict[str, Any]:
    m = performance_metrics(returns, exposure).to_dict()
    if turnover is not None:
        m["turnover"] = turnover
    m["avg_gross"] = float(np.mean(exposure))
    return m


def _crisis(returns: pd.Series) -> dict[str, dict[str, Any]]:
    return {w.scenario: w.to_dict() for w in crisis_windows(returns)}


def portfolio_backtest(
    settings: Settings,
    secrets: Secrets,
    universe: Universe,
    methods: Sequence[str],
    *,
    source: str | None = None,
    start: str | None = None,
    end: str | None = None,
    cost_bps: float | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    benchmarks: bool = True,
) -> dict[str, Any]:
    """Walk-forward backtest of ``methods`` on ``universe`` against 1/N, static inverse
    volatility and the benchmark's buy-and-hold, over the same bars.

    Every bar of the sources' history is loaded (``end`` cuts it); the regime of
    ``universe.regime_symbol`` is computed walk-forward (causal, its fits cached); figures are
    reported from the first bar a decision is held (or ``start``, if later). Parameters are the
    fixed ``[portfolio]`` settings: nothing is chosen on the results.

    Returns
    -------
    dict
        ``universe``, ``window``, ``config``, ``notes``, ``regime`` (symbol, share of bars per
        family), ``results`` (per method and benchmark: ``metrics``, ``crisis`` windows,
        ``rebalances``), ``equity`` (per column, a Series of the window) and ``weights`` (per
        method, the DataFrame of weights held over each bar of the window), ``targets`` (per
        method, the target in force at each close and a ``trade_due`` column: the close decided
        to trade to it at the next close). ``benchmarks=False``
        leaves out 1/N and static inverse volatility (the index stays when there is one).
    """
    bad = [m for m in methods if m not in PORTFOLIO_METHODS]
    if bad or not methods:
        raise ValueError(f"--portfolio must be one of {', '.join(PORTFOLIO_METHODS)} or all, not {', '.join(bad)}")
    if universe.regime_symbol is None:
        raise UniverseError(f"universe {universe.name!r} has no regime symbol: set portfolio.regime_symbol "
                            "(the symbol whose regime drives the caps, e.g. an index)")
    app = AppContext(settings, secrets)
    store = app.bars({"source": source or settings.data.source, "as_of": end, "start": "1900-01-01"})
    prices, notes = universe_prices(store, universe.symbols)
    if universe.name == "sp500-20" and universe.origin == "builtin":
        notes.append("survivorship: sp500-20 are large companies of 2022 chosen in hindsight, so every "
                     "long-only method beats the index; compare the methods with 1/N, not with the index")
    cfg = backtest_config(settings, cost_bps)
    regime_sym = store.market.source.canonical_symbol(universe.regime_symbol)
    first = cfg.min_history
    if start is not None:
        first = max(first, int(np.searchsorted(prices.index, pd.Timestamp(start, tz="UTC"))))
    if first >= len(prices) - 2:  # said before the regime walk-forward, not after it
        last = prices.index[-1].date()
        if start is not None and pd.Timestamp(start).date() > last:
            raise InsufficientDataError(f"--start {start} is after the last common bar of the universe ({last})")
        raise InsufficientDataError(f"{len(prices)} common bars to {last}: nothing to evaluate after the first "
                                    f"{cfg.min_history} bars of history (portfolio.min_history) and --start")
    if progress:
        progress(f"regimes of {regime_sym} (walk-forward)", 0, 1)
    analysis = analyse_regimes(store, regime_sym, AGENT_METHOD, fit_cache=app.fit_cache())
    families = consensus_path(analysis, prices.index)
    window = prices.index[first:]
    results: dict[str, Any] = {}
    equity: dict[str, pd.Series] = {}
    weights: dict[str, pd.DataFrame] = {}
    targets: dict[str, pd.DataFrame] = {}
    for m in (*methods, *(BENCHMARK_METHODS if benchmarks else ())):
        def tick(done: int, total: int, m: str = m) -> None:
            if progress:
                progress(f"{METHOD_LABELS[m]} backtest", done, total)
        res = run_portfolio_backtest(prices, families, m, cfg, progress=tick)
        net = res.returns.iloc[first:]
        years = len(net) / cfg.periods_per_year
        results[m] = {
            "metrics": _metrics(net.to_numpy(), res.weights.iloc[first:].sum(axis=1).to_numpy(),
                                float(res.turnover.iloc[first:].sum() / years)),
            "crisis": _crisis(net),
            "rebalances": sum(1 for t in res.rebalances if t >= window[0]),
            "last_weights": {k: float(v) for k, v in res.weights.iloc[-1].items()},
        }
        equity[m] = (1.0 + net).cumprod()
        weights[m] = res.weights.iloc[first:]
        targets[m] = res.targets.iloc[first:].assign(trade_due=res.trade_due.iloc[first:])
    if universe.benchmark is not None:
        bench = store.market.source.canonical_symbol(universe.benchmark)
        close = store.get(bench, "MT").frame["close"].reindex(prices.index)
        r = close.pct_change().iloc[first:]
        if r.notna().all():
            results["index"] = {"metrics": _metrics(r.to_numpy(), np.ones(len(r)), 0.0), "crisis": _crisis(r),
                                "rebalances": 0, "symbol": bench}
            equity["index"] = (1.0 + r).cumprod()
        else:
            notes.append(f"benchmark {bench} lacks bars on some of the universe's dates: no index column")
    fam_window = families.reindex(window).fillna("unavailable")
    share = {str(k): float(v) for k, v in fam_window.value_counts(normalize=True).items()}
    return {
        "universe": universe.to_dict(),
        "assets": list(prices.columns),
        "window": {"start": window[0].isoformat(), "end": window[-1].isoformat(), "bars": int(len(window))},
        "config": {**{k: v for k, v in vars(cfg).items() if k not in ("caps", "half_lives")},
                   "half_lives": dict(cfg.half_lives), "caps": {k: c.to_dict() for k, c in cfg.caps.items()},
                   "mv_expected_returns": "zero (minimum variance within the caps)",
                   "covariance": "EWMA, half-life by the consensus regime"},
        "notes": notes,
        "regime": {"symbol": regime_sym, "method": AGENT_METHOD, "share": share},
        "results": results,
        "equity": equity,
        "weights": weights,
        "targets": targets,
    }

