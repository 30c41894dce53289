"""What graph nodes need besides the state: settings, bars, narrator, journal.

Nothing here is checkpointed. A resumed run rebuilds it from ``state["request"]``, and bars
are re-read through the same deterministic data path, so the result does not depend on
whether the process crashed in between.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from agents._data import build_market_data
from agents.config import TIMEFRAME_NAMES, Secrets, Settings
from integrations import Bars, MarketData

__all__ = ["RunRequest", "BarStore", "AppContext", "as_of_clock", "build_request"]


@dataclass(frozen=True)
class RunRequest:
    """What the user asked for in ``regimedesk run``.

    Parameters
    ----------
    symbols : tuple of str
        Canonical symbols, at least one.
    source : str
        Market-data source name.
    as_of : str or None
        Run as of this date/time using only data available then (None: now).
    llm : {'template', 'openai'}
        Narrator backend.
    broker : {'none', 'paper', 'alpaca'}
        Where approved orders go.
    approve : bool
        Stop for a person's approval before execution.
    report : str or None
        Write the run's PDF report to this path (the reporting agent renders it).
    report_backtest : bool
        Include the walk-forward backtest in the report.
    """

    symbols: tuple[str, ...]
    source: str = "builtin"
    as_of: str | None = None
    llm: str = "template"
    broker: str = "none"
    approve: bool = False
    report: str | None = None
    report_backtest: bool = True

    def __post_init__(self) -> None:
        if not self.symbols:
            raise ValueError("symbols: at least one symbol is needed")
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError(f"symbols: duplicates in {list(self.symbols)}")
        if self.llm not in ("template", "openai"):
            raise ValueError(f"llm must be template or openai, not {self.llm!r}")
        if self.broker not in ("none", "paper", "alpaca"):
            raise ValueError(f"broker must be none, paper or alpaca, not {self.broker!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbols": list(self.symbols),
            "source": self.source,
            "as_of": self.as_of,
            "llm": self.llm,
            "broker": self.broker,
            "approve": self.approve,
            "report": self.report,
            "report_backtest": self.report_backtest,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> RunRequest:
        return cls(
            symbols=tuple(doc["symbols"]),
            source=doc["source"],
            as_of=doc.get("as_of"),
            llm=doc.get("llm", "template"),
            broker=doc.get("broker", "none"),
            approve=bool(doc.get("approve", False)),
            report=doc.get("report"),
            report_backtest=bool(doc.get("report_backtest", True)),
        )


def build_request(settings: Settings, secrets: Secrets, symbols, *, source: str | None = None,
                  llm: str | None = None, **fields: Any) -> RunRequest:
    """A validated :class:`RunRequest` with canonical, de-duplicated symbols.

    ``source`` and ``llm`` default to the configuration; ``fields`` are the other
    :class:`RunRequest` fields (``as_of``, ``broker``, ``approve``, ``report``, ...).
    """
    from agents._data import build_source

    symbols = list(symbols)
    if not symbols:
        raise ValueError("give at least one SYMBOL (e.g. 'regimedesk run SP500')")
    name = source or settings.data.source
    src = build_source(settings, secrets, name)
    canonical = tuple(dict.fromkeys(src.canonical_symbol(s) for s in symbols))
    as_of_clock(fields.get("as_of"))  # validate before anything runs
    return RunRequest(symbols=canonical, source=name, llm=llm or settings.llm.backend, **fields)


def as_of_clock(as_of: str | None) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """``(end, now)`` for a run as of ``as_of``.

    A bare date means "after that day's session": bars stamped up to that date are in, and
    the clock stands at the end of the day. A date with a time means that instant.
    """
    if as_of is None:
        return None, None
    try:
        ts = pd.Timestamp(as_of)
    except (ValueError, TypeError):
        raise ValueError(f"--as-of: cannot parse {as_of!r} as a date") from None
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    if ts == ts.normalize() and ":" not in str(as_of):
        return ts, ts + pd.Timedelta(days=1)
    return ts, ts


class BarStore:
    """Keyed cache of bars for one run: ``(symbol, bar timeframe) -> Bars``.

    MT and ST share the daily load. Errors are cached too, so an unavailable timeframe
    (e.g. no intraday bars in the builtin source) is reported once, consistently.
    """

    def __init__(self, market: MarketData, settings: Settings, as_of: str | None) -> None:
        self.market = market
        self.settings = settings
        self.end, self.now = as_of_clock(as_of)
        self._cache: dict[tuple[str, str], Bars | Exception] = {}
        self._lock = threading.Lock()

    def bar_of(self, timeframe: str) -> str:
        if timeframe not in TIMEFRAME_NAMES:
            raise ValueError(f"timeframe must be one of {TIMEFRAME_NAMES}, not {timeframe!r}")
        return getattr(self.settings.timeframes, timeframe).bar

    def lookback(self, timeframe: str) -> int:
        return getattr(self.settings.timeframes, timeframe).lookback

    def get(self, symbol: str, timeframe: str) -> Bars:
        """Full available history of ``symbol`` at the bar length of ``timeframe`` (LT/MT/ST/US)."""
        key = (symbol, self.bar_of(timeframe))
        with self._lock:
            hit = self._cache.get(key)
        if hit is None:
            try:
                hit = self.market.bars(symbol, key[1], None, self.end, now=self.now)
            except Exception as exc:  # noqa: BLE001 - cached and re-raised to every reader
                hit = exc
            with self._lock:
                self._cache[key] = hit
        if isinstance(hit, Exception):
            raise hit
        return hit


@dataclass
class AppContext:
    """Process-wide services for graph nodes; per-run pieces are built on first use."""

    settings: Settings
    secrets: Secrets
    journal: Any = None  # integrations.Journal or None
    _stores: dict[tuple[str, str | None], BarStore] = field(default_factory=dict)
    _narrators: dict[str, Any] = field(default_factory=dict)
    _brokers: dict[str, Any] = field(default_factory=dict)
    _risk_store: Any = None
    _fit_cache: Any = None
    _memo: dict[tuple, Any] = field(default_factory=dict)
    _memo_locks: dict[tuple, threading.Lock] = field(default_factory=dict)
    #: Receives one line per long step inside a node (the CLI prints them to stderr).
    status: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def memo(self, key: tuple, compute):
        """``compute()`` once per ``key`` for this context; concurrent callers wait for it.

        Nodes that run in parallel share expensive results this way (the regime and ML
        agents both need a symbol's walk-forward regimes). Exceptions are not cached.
        """
        with self._lock:
            lock = self._memo_locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._memo:
                self._memo[key] = compute()
            return self._memo[key]

    def bars(self, request: dict[str, Any]) -> BarStore:
        """The bar store for this request's source and as-of time."""
        key = (request["source"], request.get("as_of"))
        with self._lock:
            store = self._stores.get(key)
            if store is None:
                market = build_market_data(self.settings, self.secrets, request["source"])
                store = self._stores[key] = BarStore(market, self.settings, request.get("as_of"))
        return store

    def release(self, request: dict[str, Any]) -> None:
        """Drop the bars and memoised results of one request (a live session calls this after
        each bar, so a long-running process does not keep every bar's data)."""
        key = (request["source"], request.get("as_of"))
        with self._lock:
            self._stores.pop(key, None)
            for k in [k for k in self._memo if k[1:3] == key]:
                self._memo.pop(k, None)
                self._memo_locks.pop(k, None)

    def broker(self, request: dict[str, Any]):
        """The run's broker (``None`` for ``broker = 'none'``), built once per process."""
        name = request.get("broker", "none")
        if name == "none":
            return None
        with self._lock:
            b = self._brokers.get(name)
            if b is None:
                from agents._risk import build_broker

                b = self._brokers[name] = build_broker(self.settings, self.secrets, name)
        return b

    def risk_store(self):
        """The persisted risk state (``home/risk.sqlite``)."""
        with self._lock:
            if self._risk_store is None:
                from agents._risk import RiskStateStore

                self._risk_store = RiskStateStore(self.settings.home_dir / "risk.sqlite")
        return self._risk_store

    def fit_cache(self):
        """Fitted regime parameter sets shared by runs (``home/fit_cache.sqlite``)."""
        with self._lock:
            if self._fit_cache is None:
                from agents._fitcache import FitCache

                self._fit_cache = FitCache(self.settings.home_dir / "fit_cache.sqlite")
        return self._fit_cache

    def close(self) -> None:
        """Close brokers, the risk store and the fit cache."""
        with self._lock:
            if self._fit_cache is not None:
                self._fit_cache.close()
                self._fit_cache = None
            for b in self._brokers.values():
                b.close()
            self._brokers.clear()
            if self._risk_store is not None:
                self._risk_store.close()
                self._risk_store = None

    def narrator(self, request: dict[str, Any]):
        """The narrator for this request's LLM backend (journals its exchanges)."""
        from agents.narrator import build_narrator

        backend = request.get("llm", "template")
        with self._lock:
            narrator = self._narrators.get(backend)
            if narrator is None:
                cfg = self.settings.llm.model_copy(update={"backend": backend})
                narrator = self._narrators[backend] = build_narrator(cfg, self.secrets, self.journal)
        return narrator
