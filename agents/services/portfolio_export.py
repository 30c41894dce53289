"""Portfolio target weights of a universe as a CSV, and a LEAN algorithm that trades them.

The rows come from :func:`agents.services.portfolio.portfolio_backtest` (its ``targets``): at
each daily close from the first decision, the target weight of every asset the portfolio
policy holds in force and whether that close decided to trade to it (``trade_due``). Every
value uses only bars closed at that row's close: exporting with an earlier end gives the
prefix of a longer export (the tests check it). The data are daily closes: the backtest
trades at the next close; the generated algorithm, fed at the close, trades at the next
session's open (the first price LEAN has after the decision on daily data).

The CSV has one row per (date, method, symbol), columns :data:`integrations.PORTFOLIO_COLUMNS`.
The file formats and the LEAN code generation are in ``integrations``
(:func:`integrations.write_portfolio_csv`, :func:`integrations.write_portfolio_lean_project`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from agents.config import Secrets, Settings
from agents.services.export import session_times
from agents.services.portfolio import Universe, portfolio_backtest
from analytics import PORTFOLIO_METHODS
from integrations import PORTFOLIO_COLUMNS

__all__ = [
    "PortfolioExport",
    "portfolio_rows",
    "export_portfolio",
]


@dataclass(frozen=True)
class PortfolioExport:
    """Target weights of a universe, one row per (date, method, symbol).

    Attributes
    ----------
    frame : DataFrame
        Columns :data:`integrations.PORTFOLIO_COLUMNS`; ``trade_due`` is int 0/1.
    universe : dict
        :meth:`Universe.to_dict`.
    methods : tuple of str
    assets : tuple of str
        Canonical symbols, in column order.
    regime_symbol : str
    notes : tuple of str
        The backtest's notes (alignment, survivorship).
    seconds : float
    """

    frame: pd.DataFrame
    universe: dict[str, Any]
    methods: tuple[str, ...]
    assets: tuple[str, ...]
    regime_symbol: str
    notes: tuple[str, ...]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON summary (no rows)."""
        f = self.frame
        return {
            "universe": self.universe,
            "methods": list(self.methods),
            "assets": list(self.assets),
            "regime_symbol": self.regime_symbol,
            "rows": len(f),
            "dates": int(f["date"].nunique()),
            "first_date": f["date"].iloc[0] if len(f) else None,
            "last_date": f["date"].iloc[-1] if len(f) else None,
            "trade_dates": {m: int(g.loc[g["trade_due"] == 1, "date"].nunique()) for m, g in f.groupby("method")},
            "notes": list(self.notes),
            "seconds": round(self.seconds, 2),
        }


def portfolio_rows(targets: pd.DataFrame, method: str) -> pd.DataFrame:
    """Long rows of one method's ``targets`` (the service's table) from its first decision.

    Parameters
    ----------
    targets : DataFrame
        Indexed by close date (UTC), one column per asset plus a bool ``trade_due`` column.
    method : str

    Returns
    -------
    DataFrame
        Columns :data:`integrations.PORTFOLIO_COLUMNS`, dates ascending and the assets in column
        order within a date; no rows when no date has a decision.
    """
    if "trade_due" not in targets.columns:
        raise ValueError("targets: a trade_due column is needed")
    assets = [c for c in targets.columns if c != "trade_due"]
    weights = targets[assets].astype(float)
    decided = weights.notna().all(axis=1).to_numpy()
    if weights.notna().any(axis=1).to_numpy().sum() != decided.sum():
        raise ValueError("targets: a date has weights for some assets only")
    if not decided.any():
        return pd.DataFrame({c: [] for c in PORTFOLIO_COLUMNS})
    first = int(np.argmax(decided))
    if not decided[first:].all():
        raise ValueError("targets: a date after the first decision has no target")
    w = weights.iloc[first:]
    idx = pd.DatetimeIndex(w.index)
    k, n = len(assets), len(w)
    # every RegimeDesk source's daily bars are US sessions; the symbol only matters for crypto pairs
    _, available = session_times(assets[0], idx)
    return pd.DataFrame({
        "date": np.repeat([t.date().isoformat() for t in idx], k),
        "available_at": np.repeat([t.isoformat() for t in available], k),
        "symbol": np.tile(np.asarray(assets, dtype=object), n),
        "target_weight": w.to_numpy(dtype=float).reshape(-1),
        "trade_due": np.repeat(targets["trade_due"].iloc[first:].to_numpy(dtype=bool).astype(int), k),
        "method": [method] * (n * k),
    }, columns=list(PORTFOLIO_COLUMNS))


def export_portfolio(
    settings: Settings,
    secrets: Secrets,
    universe: Universe,
    methods: Sequence[str],
    *,
    source: str | None = None,
    start: str | None = None,
    end: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> PortfolioExport:
    """Target weights of ``methods`` on ``universe`` from the first decision (or ``start``) to ``end``.

    Runs :func:`agents.services.portfolio.portfolio_backtest` without its benchmarks (the
    regime of ``universe.regime_symbol`` walk-forward, then each method) and lays its
    ``targets`` out long.

    Raises
    ------
    ValueError
        No method, or one that is not a portfolio method.
    UniverseError, InsufficientDataError
        As :func:`~agents.services.portfolio.portfolio_backtest`.
    """
    methods = tuple(methods)
    bad = [m for m in methods if m not in PORTFOLIO_METHODS]
    if bad or not methods:
        raise ValueError(f"--portfolio must be one of {', '.join(PORTFOLIO_METHODS)} or all")
    t0 = time.perf_counter()
    rep = portfolio_backtest(settings, secrets, universe, methods, source=source, start=start, end=end,
                             progress=progress, benchmarks=False)
    frames = [portfolio_rows(rep["targets"][m], m) for m in methods]
    frame = pd.concat(frames, ignore_index=True)
    if len(methods) > 1:  # by date, then method, assets in column order
        order = np.lexsort((np.arange(len(frame)), frame["method"].map(methods.index).to_numpy(),
                            frame["date"].to_numpy(dtype=str)))
        frame = frame.iloc[order].reset_index(drop=True)
    return PortfolioExport(frame, rep["universe"], methods, tuple(rep["assets"]), rep["regime"]["symbol"],
                           tuple(rep["notes"]), time.perf_counter() - t0)
