"""Risk of a universe's portfolio: VaR/ES with attribution, historical stress and shocks.

The workflows behind ``regimedesk risk var --universe`` and ``regimedesk risk stress``.

Weights
-------
The book is "today's" target of the portfolio policy, or explicit weights:

* ``erc``, ``mv``, ``hrp``, ``invvol``: :func:`analytics.portfolio_weights` on
  :func:`analytics.regime_covariance` of the last ``portfolio.cov_window`` daily returns of
  the universe (aligned on common dates), with the caps ``caps_for(family, portfolio.caps)``
  and the half-life ``portfolio.half_lives[family]``. The family is always ``"risk_on"``:
  computing the consensus regime of the regime symbol costs a walk-forward fit, so these
  commands show the book a calm regime would hold (``risk_on`` has the loosest caps, hence
  the largest risk). ``mv`` uses zero expected returns, as the backtest does.
* ``equal``: ``1/N`` of every asset, fully invested (the backtest's 1/N benchmark).
* explicit: a JSON file ``{"AAPL": 0.1, ...}`` or ``AAPL=0.1,MSFT=0.2``; the names must be
  in the universe; unnamed assets weigh 0; the rest is cash.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from agents.config import Secrets, Settings
from agents.services.allocation import SymbolView, aligned_returns, allocate
from agents.services.context import AppContext
from agents.services.portfolio import Universe, backtest_config, resolve_universe, universe_prices
from analytics import (
    HISTORICAL_SCENARIOS,
    PORTFOLIO_METHODS,
    PORTFOLIO_VAR_METHODS,
    InsufficientDataError,
    historical_stress,
    hypothetical_shock,
    portfolio_returns,
    portfolio_var,
    regime_covariance,
    var_backtest,
)
from integrations import UnknownSymbolError

__all__ = [
    "WEIGHT_METHODS",
    "WEIGHTS_FAMILY",
    "PortfolioBook",
    "parse_weights",
    "parse_shock",
    "scenario_keys",
    "var_methods",
    "load_book",
    "universe_var",
    "universe_var_backtest",
    "universe_stress",
]

#: Portfolio methods ``--weights`` accepts by name (anything else is a file or ``SYM=w`` list).
WEIGHT_METHODS: tuple[str, ...] = (*PORTFOLIO_METHODS, "equal")
#: The consensus family assumed for today's target weights (see the module docstring).
WEIGHTS_FAMILY = "risk_on"
_WEIGHTS_FILE_LIMIT = 1_000_000  # bytes


@dataclass(frozen=True)
class PortfolioBook:
    """A universe, its closes and today's weights.

    Attributes
    ----------
    universe : Universe
    closes : pandas.DataFrame
        Daily closes of the universe's assets (canonical names), every date any of them has
        (NaN before an asset's first bar), up to the as-of date.
    aligned : pandas.DataFrame
        ``closes`` on the dates every asset has.
    weights : pandas.Series
        Weight per asset (canonical names), fractions of equity.
    weights_method : str
        ``erc``/``mv``/``hrp``/``invvol``/``equal`` or ``explicit``.
    notes : tuple of str
        What alignment cut, and how the weights were chosen.
    """

    universe: Universe
    closes: pd.DataFrame
    aligned: pd.DataFrame
    weights: pd.Series
    weights_method: str
    notes: tuple[str, ...]


def _number(text: str, what: str) -> float:
    raw = text.strip()
    pct = raw.endswith("%")
    try:
        value = float(raw[:-1] if pct else raw)
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not a number (e.g. -20% or -0.2)") from None
    if not math.isfinite(value):
        raise ValueError(f"{what}: {text!r} is not finite")
    return value / 100.0 if pct else value


def parse_shock(text: str) -> tuple[str, float]:
    """``"SP500X=-20%"`` -> ``("SP500X", -0.2)``; a bare number is a fraction (``-0.2``).

    Raises
    ------
    ValueError
        No ``=``, an empty symbol, a value that is not a finite number, or a return of -100%
        or below.
    """
    sym, sep, val = str(text).partition("=")
    if not sep or not sym.strip():
        raise ValueError(f"--shock {text!r}: expected SYMBOL=RETURN, e.g. SP500X=-20%")
    r = _number(val, f"--shock {sym.strip()}")
    if r <= -1.0:
        raise ValueError(f"--shock {text!r}: a return must be above -100%")
    return sym.strip().upper(), r


def parse_weights(spec: str) -> dict[str, float]:
    """Explicit weights from ``AAPL=0.1,MSFT=20%`` or a JSON file mapping symbol -> weight.

    Raises
    ------
    ValueError
        Unreadable file, not a JSON object of numbers, a malformed pair or a repeated symbol.
    """
    path = Path(spec).expanduser()
    if spec.lower().endswith(".json") or path.is_file():
        try:
            if path.stat().st_size > _WEIGHTS_FILE_LIMIT:
                raise ValueError(f"--weights {spec}: file larger than {_WEIGHTS_FILE_LIMIT:,} bytes")
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"--weights {spec}: cannot read a JSON object: {exc}") from None
        if not isinstance(doc, dict) or not doc:
            raise ValueError(f"--weights {spec}: expected a JSON object {{\"SYMBOL\": weight, ...}}")
        pairs = [(str(k), v) for k, v in doc.items()]
        out: dict[str, float] = {}
        for k, v in pairs:
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ValueError(f"--weights {spec}: weight of {k!r} is not a finite number")
            out[k.strip().upper()] = float(v)
        return out
    out = {}
    for item in spec.split(","):
        sym, sep, val = item.partition("=")
        if not sep or not sym.strip():
            raise ValueError(f"--weights {spec!r}: expected {', '.join(WEIGHT_METHODS)}, a JSON file "
                             "or SYMBOL=WEIGHT,...")
        key = sym.strip().upper()
        if key in out:
            raise ValueError(f"--weights: {key} is given twice")
        out[key] = _number(val, f"--weights {key}")
    return out


def scenario_keys(choice: str) -> list[str]:
    """``"all"`` or one key of :data:`analytics.HISTORICAL_SCENARIOS` -> the keys to replay."""
    if choice == "all":
        return list(HISTORICAL_SCENARIOS)
    if choice not in HISTORICAL_SCENARIOS:
        raise ValueError(f"unknown --scenario {choice!r}: use one of {', '.join(HISTORICAL_SCENARIOS)} or all")
    return [choice]


def var_methods(choice: str) -> list[str]:
    """``"all"`` or one of :data:`analytics.PORTFOLIO_VAR_METHODS` -> the methods to run."""
    if choice == "all":
        return list(PORTFOLIO_VAR_METHODS)
    if choice not in PORTFOLIO_VAR_METHODS:
        raise ValueError(f"unknown --method {choice!r}: use one of {', '.join(PORTFOLIO_VAR_METHODS)} or all")
    return [choice]


def _closes(store, symbols: Sequence[str], option: str) -> dict[str, pd.Series]:
    out: dict[str, pd.Series] = {}
    for sym in symbols:
        try:
            canonical = store.market.source.canonical_symbol(sym)
            out[canonical] = store.get(canonical, "MT").frame["close"]
        except UnknownSymbolError as exc:
            raise ValueError(f"{option}: {exc}") from None
    return out


def _target_weights(settings: Settings, aligned: pd.DataFrame, method: str) -> tuple[pd.Series, str]:
    cols = list(aligned.columns)
    if method == "equal":
        return pd.Series(1.0 / len(cols), index=cols), "1/N, fully invested"
    returns = aligned_returns({c: aligned[c] for c in cols}, settings.portfolio.cov_window)
    alloc = allocate(settings, method, returns, {c: SymbolView(family=WEIGHTS_FAMILY) for c in cols})
    note = (f"{method} target of the last {len(returns)} returns as of {aligned.index[-1].date()}, "
            f"family {WEIGHTS_FAMILY} (caps gross {alloc.caps.gross:g}, per asset {alloc.caps.per_asset:g})")
    if alloc.note:
        note += f"; {alloc.note}"
    return pd.Series(alloc.weights), note


def load_book(
    settings: Settings,
    secrets: Secrets,
    universe: str,
    weights: str | None = None,
    *,
    source: str | None = None,
    as_of: str | None = None,
) -> tuple[PortfolioBook, Any]:
    """Load a universe's closes and compute (or read) today's weights.

    Parameters
    ----------
    universe : str
        Builtin or configured universe name, or a file listing symbols.
    weights : str, optional
        A method of :data:`WEIGHT_METHODS`, a JSON file or ``SYM=w,...``. Default
        ``portfolio.method`` (``erc`` when that is ``none``).
    source, as_of : str, optional
        Market-data source (default ``data.source``) and the last date used.

    Returns
    -------
    (PortfolioBook, BarStore)
        The store loads further symbols (shocked indices) from the same source and date.

    Raises
    ------
    ValueError
        Bad ``weights``, a weight on a symbol outside the universe, an unknown symbol.
    """
    uni = resolve_universe(settings, universe)
    choice = weights or (settings.portfolio.method if settings.portfolio.method not in ("none", "all") else "erc")
    explicit = None if choice in WEIGHT_METHODS else parse_weights(choice)
    app = AppContext(settings, secrets)
    store = app.bars({"source": source or settings.data.source, "as_of": as_of, "start": "1900-01-01"})
    closes = _closes(store, uni.symbols, "--universe")
    frame = pd.DataFrame(closes)
    aligned, notes = universe_prices(store, uni.symbols)
    if explicit is not None:
        canon = {store.market.source.canonical_symbol(s): v for s, v in explicit.items()}
        unknown = [s for s in canon if s not in frame.columns]
        if unknown:
            raise ValueError(f"--weights names {', '.join(unknown)}, not in the {uni.name} universe "
                             f"({', '.join(frame.columns)})")
        w = pd.Series({c: float(canon.get(c, 0.0)) for c in frame.columns})
        method, note = "explicit", f"explicit weights, gross {float(w.abs().sum()):g}"
    else:
        w, note = _target_weights(settings, aligned, choice)
        method = choice
    return PortfolioBook(uni, frame, aligned, w, method, (*notes, note)), store


def _book_doc(book: PortfolioBook) -> dict[str, Any]:
    return {"universe": book.universe.to_dict(), "as_of": book.aligned.index[-1].date().isoformat(),
            "weights_method": book.weights_method, "weights": {k: float(v) for k, v in book.weights.items()},
            "notes": list(book.notes)}


def universe_var(
    book: PortfolioBook,
    methods: Sequence[str],
    *,
    level: float = 0.99,
    window: int = 500,
    n_sims: int = 100_000,
    seed: int = 0,
) -> dict[str, Any]:
    """One-day VaR/ES of ``book`` over the trailing ``window`` daily returns, per method.

    Returns
    -------
    dict
        The book (universe, as-of date, weights, notes), ``level``, ``window`` (rows used)
        and ``results``: per method ``var``, ``es``, ``n``, ``standard_error``, ``seed``,
        ``dof`` and ``assets`` (rows: ``symbol``, ``weight``, ``component_var``,
        ``marginal_var``, ``share`` of the VaR, ``component_es``).
    """
    returns = book.aligned.pct_change().iloc[1:].iloc[-window:]
    w = book.weights.reindex(returns.columns)
    results: dict[str, Any] = {}
    for m in methods:
        res = portfolio_var(returns, w, level, m, n_sims=n_sims, seed=seed)
        rows = [{"symbol": a, "weight": wt, "component_var": c, "marginal_var": mv,
                 "share": c / res.var if res.var != 0 else math.nan, "component_es": ce}
                for a, wt, c, mv, ce in zip(res.assets, res.weights, res.component_var, res.marginal_var,
                                            res.component_es, strict=True)]
        results[m] = {"var": res.var, "es": res.es, "n": res.n, "standard_error": res.standard_error,
                      "seed": res.seed, "dof": res.dof, "assets": rows}
    return {**_book_doc(book), "level": level, "window": int(len(returns)),
            "start": returns.index[0].date().isoformat(), "results": results}


def universe_var_backtest(book: PortfolioBook, *, level: float, method: str, window: int) -> dict[str, Any]:
    """Backtest of one-day VaR forecasts of ``book``'s portfolio with today's weights held constant.

    The portfolio's daily returns ``R_t = sum_i w_i r_{t,i}`` (weights rebalanced daily, cash
    earning 0) over the assets' common history feed :func:`analytics.var_backtest`, as
    ``risk var SYMBOL --backtest`` feeds a symbol's returns: each forecast from the trailing
    ``window`` days before its day only; Kupiec, Christoffersen and the Basel zone. The weights are
    today's, so this checks the VaR model on this book's composition, not the book as it was held.
    """
    returns = book.aligned.pct_change().iloc[1:]
    series = portfolio_returns(returns, book.weights.reindex(returns.columns))
    res = var_backtest(series, level=level, method=method, window=window)
    note = (f"{len(series)} daily returns {series.index[0].date()} to {series.index[-1].date()} of today's weights "
            f"held constant")
    return {**_book_doc(book), "symbol": f"{book.universe.name} portfolio", "method": method, "level": level,
            "window": window, "notes": [*_book_doc(book)["notes"], note], **res.to_dict()}


def universe_stress(
    settings: Settings,
    book: PortfolioBook,
    store: Any,
    scenarios: Sequence[str],
    shocks: Mapping[str, float],
) -> dict[str, Any]:
    """Historical scenarios replayed on ``book``'s weights, and hypothetical shocks.

    A scenario the data do not reach is reported with an ``error`` instead of figures.
    Shocks are propagated through :func:`analytics.regime_covariance` (family
    :data:`WEIGHTS_FAMILY`) of the last ``portfolio.cov_window`` returns of the universe plus
    the shocked symbols, on their common dates.

    Returns
    -------
    dict
        The book, ``scenarios`` (per key: name, window, base/end dates, ``pnl``, worst day,
        ``max_drawdown``, ``coverage``, ``missing``, the three worst ``drivers`` with their
        P&L) and ``shock`` (``None`` without shocks; else the shocks, ``pnl``, the implied
        ``returns``, the three worst ``drivers``, ``singular``, the covariance window).
    """
    out_sc: dict[str, Any] = {}
    w = book.weights[book.weights != 0.0]
    for key in scenarios:
        sc = HISTORICAL_SCENARIOS[key]
        head = {"name": sc.name, "start": sc.start.isoformat(), "end": sc.end.isoformat()}
        try:
            r = historical_stress(book.closes, w, key)
        except InsufficientDataError as exc:
            out_sc[key] = {**head, "error": str(exc)}
            continue
        out_sc[key] = {**head, "base_date": r.base_date.isoformat(), "end_date": r.end_date.isoformat(),
                       "pnl": r.pnl, "worst_date": r.worst_date.isoformat(), "worst_return": r.worst_return,
                       "max_drawdown": r.max_drawdown, "coverage": r.coverage, "missing": list(r.missing),
                       "drivers": [{"symbol": a, "pnl": r.asset_pnl[a]} for a in r.drivers[:3]]}
    shock_doc = None
    if shocks:
        extra = _closes(store, [s for s in shocks], "--shock")
        given = dict(zip(extra, shocks.values(), strict=True))
        frame = pd.concat([book.aligned, pd.DataFrame({k: v for k, v in extra.items()
                                                       if k not in book.aligned.columns})], axis=1).dropna()
        returns = frame.pct_change().iloc[1:]
        cfg = backtest_config(settings)
        window = min(cfg.cov_window, len(returns))
        if window < 2:
            raise InsufficientDataError("the universe and the shocked symbols have too few common dates")
        cov = regime_covariance(returns, WEIGHTS_FAMILY, half_lives=cfg.half_lives, window=window,
                                min_obs=min(cfg.min_history, window))
        res = hypothetical_shock(cov.covariance, cov.assets, w, given)
        shock_doc = {"shocks": given, "pnl": res.pnl, "returns": dict(res.returns), "singular": res.singular,
                     "drivers": [{"symbol": a, "pnl": res.asset_pnl[a]} for a in res.drivers[:3]],
                     "covariance": {"rows": window, "start": returns.index[-window].date().isoformat(),
                                    "end": returns.index[-1].date().isoformat()}}
    return {**_book_doc(book), "scenarios": out_sc, "shock": shock_doc}
