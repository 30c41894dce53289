"""What graph nodes need besides the state: settings, bars, narrator, journal.

Nothing here is checkpointed. A resumed run rebuilds it from ``state["request"]``, and bars
are re-read through the same deterministic data path, so the result does not depend on
whether the process crashed in between.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from agents.config import TIMEFRAME_NAMES, Secrets, Settings
from agents.services.data import build_market_data
from analytics import RegimeDeskError, RegimeDeskWarning, Timeframe, shown
from integrations import Bars, MarketData, NoDataError

__all__ = ["RunRequest", "BarStore", "AppContext", "as_of_clock", "build_request", "check_services", "start_stamp",
           "symbol_bar_store"]


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
    as_of_effective : str or None
        With ``as_of``: the stamp of the last bar available then (latest over the symbols),
        i.e. the moment the run's data really reach (set by :func:`build_request`).
    recompute : bool
        Rebuild every feature row from history instead of the newest bar's only (an audit;
        ``engine.recompute``, ``--recompute``).
    start : str or None
        The date of the first bar the run loads (inclusive, ``--start``): every computation
        sees nothing earlier. None: ``data.history_years`` back from the last bar. Must be a
        date not after ``as_of``.
    portfolio : {'none', 'erc', 'mv', 'hrp', 'invvol'}
        The portfolio agent's method (``portfolio.method``, ``--portfolio``); ``none`` leaves
        each symbol's decision as it is.
    """

    symbols: tuple[str, ...]
    source: str = "builtin"
    as_of: str | None = None
    llm: str = "template"
    broker: str = "none"
    approve: bool = False
    report: str | None = None
    report_backtest: bool = True
    as_of_effective: str | None = None
    recompute: bool = False
    start: str | None = None
    portfolio: str = "none"

    def __post_init__(self) -> None:
        if not self.symbols:
            raise ValueError("symbols: at least one symbol is needed")
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError(f"symbols: duplicates in {list(self.symbols)}")
        if self.llm not in ("template", "openai"):
            raise ValueError(f"llm must be template or openai, not {self.llm!r}")
        if self.broker not in ("none", "paper", "alpaca"):
            raise ValueError(f"broker must be none, paper or alpaca, not {self.broker!r}")
        if self.portfolio not in ("none", "erc", "mv", "hrp", "invvol"):
            raise ValueError(f"portfolio must be none, erc, mv, hrp or invvol, not {self.portfolio!r}")
        if self.portfolio != "none" and len(self.symbols) < 2:
            raise ValueError(f"a portfolio ({self.portfolio}) needs at least 2 symbols, got {', '.join(self.symbols)}")
        start_stamp(self.start, self.as_of)

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
            "as_of_effective": self.as_of_effective,
            "recompute": self.recompute,
            "start": self.start,
            "portfolio": self.portfolio,
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
            as_of_effective=doc.get("as_of_effective"),
            recompute=bool(doc.get("recompute", False)),
            start=doc.get("start"),
            portfolio=doc.get("portfolio", "none"),
        )


def build_request(settings: Settings, secrets: Secrets, symbols, *, source: str | None = None,
                  llm: str | None = None, **fields: Any) -> RunRequest:
    """A validated :class:`RunRequest` with canonical, de-duplicated symbols.

    ``source`` and ``llm`` default to the configuration; ``fields`` are the other
    :class:`RunRequest` fields (``as_of``, ``start``, ``broker``, ``approve``, ``report``, ...).
    Everything that can be checked before the agents run is checked here, so that a run
    fails at once rather than after minutes of work: the dates, the data source's, the
    narrator's and the broker's credentials (:func:`check_services`), and that each
    symbol's bars load, from ``start`` and by ``as_of`` if given (:meth:`BarStore.check_data`, which also sets
    ``as_of_effective``). This loads every symbol's daily bars once (a second fetch for a
    network source when the run loads them again without an as-of date).

    Symbols whose data do not load are left out of the run, and a
    :class:`RegimeDeskWarning` names each with the reason; when no symbol's data load, the
    reason is raised (see :meth:`BarStore.check_data`).
    """
    from agents.services.data import build_source

    symbols = list(symbols)
    if not symbols:
        raise ValueError("give at least one SYMBOL (e.g. 'regimedesk run SP500')")
    name = source or settings.data.source
    src = build_source(settings, secrets, name)
    canonical = tuple(dict.fromkeys(src.canonical_symbol(s) for s in symbols))
    as_of = fields.get("as_of")
    as_of_clock(as_of)  # validate before anything runs (RunRequest checks start against it)
    backend = llm or settings.llm.backend
    fields.setdefault("recompute", settings.engine.recompute)
    if fields.get("portfolio") is None:
        fields["portfolio"] = settings.portfolio.method
    request = RunRequest(symbols=canonical, source=name, llm=backend, **fields)
    check_services(settings, secrets, llm=request.llm, broker=request.broker, source=name)
    store = BarStore(build_market_data(settings, secrets, name), settings, as_of, start=request.start)
    failed = store.check_data(canonical, partial=True)
    if failed:
        warnings.warn(
            "left out of the run, their data cannot be loaded: "
            + "; ".join(f"{symbol}: {exc}" for symbol, exc in failed.items()),
            RegimeDeskWarning,
            stacklevel=2,
        )
        request = replace(request, symbols=tuple(s for s in canonical if s not in failed))
    if as_of is not None and "as_of_effective" not in fields:
        request = replace(request, as_of_effective=store.as_of_effective)
    return request


def check_services(settings: Settings, secrets: Secrets, *, llm: str = "template", broker: str = "none",
                   source: str | None = None) -> None:
    """Fail now, not after the analysis, when a service a run needs cannot start.

    Builds the ``openai`` narrator's client and the ``alpaca`` broker's client exactly as the
    run would (neither talks to the network when built), so a missing key is reported with
    the variable to set; with ``source`` also checks that market-data source's keys
    (:meth:`integrations.BarSource.check_credentials`). The template narrator, the
    none/paper brokers and the local data sources need nothing.

    Raises
    ------
    MissingCredentialsError
        ``OPENAI_API_KEY`` (without ``llm.base_url``), ``ALPACA_API_KEY`` or
        ``ALPACA_SECRET_KEY`` (alpaca broker or source), or ``POLYGON_API_KEY`` (polygon
        source) is not set.
    """
    if source is not None:
        from agents.services.data import build_source

        build_source(settings, secrets, source).check_credentials()
    if llm == "openai":
        from agents.services.narrator import build_narrator

        build_narrator(settings.llm.model_copy(update={"backend": "openai"}), secrets, None)
    if broker == "alpaca":
        from agents.services.risk import build_broker

        build_broker(settings, secrets, "alpaca").close()


def _utc_date(value: str, option: str) -> pd.Timestamp:
    """``value`` as a UTC timestamp (naive values are UTC); a ValueError naming ``option``."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ValueError(f"{option}: cannot parse {shown(value)} as a date") from None
    if pd.isna(ts):
        raise ValueError(f"{option}: {shown(value)} is not a date")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def as_of_clock(as_of: str | None) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """``(end, now)`` for a run as of ``as_of``.

    A bare date means "after that day's session": bars stamped up to that date are in, and
    the clock stands at the end of the day. A date with a time means that instant.
    """
    if as_of is None:
        return None, None
    ts = _utc_date(as_of, "--as-of")
    if ts == ts.normalize() and ":" not in str(as_of):
        return ts, ts + pd.Timedelta(days=1)
    return ts, ts


def start_stamp(start: str | None, as_of: str | None = None) -> pd.Timestamp | None:
    """The UTC stamp of a run's first bar (``--start``), checked against its as-of date.

    Parameters
    ----------
    start : str or None
        The date (or date and time) of the first bar to load, inclusive; naive values are UTC.
    as_of : str or None
        The run's as-of date (see :func:`as_of_clock`), which ``start`` may not be after.

    Returns
    -------
    Timestamp or None
        ``start`` as a UTC timestamp, or None when not given.

    Raises
    ------
    ValueError
        ``start`` (or ``as_of``) is not a date, or ``start`` is after ``as_of``.
    """
    if start is None:
        return None
    ts = _utc_date(start, "--start")
    end, _ = as_of_clock(as_of)
    if end is not None and ts > end:
        raise ValueError(f"--start {shown(start)} is after --as-of {shown(as_of)}: the run would have no bars")
    return ts


class BarStore:
    """Keyed cache of bars for one run: ``(symbol, bar timeframe) -> Bars``.

    MT and ST share the daily load. Errors are cached too, so an unavailable timeframe
    (e.g. no intraday bars in the builtin source) is reported once, consistently.

    With ``start`` (``--start``) no bar before that date is loaded, at any bar length: daily
    bars are read from it (however far back; without it ``data.history_years`` back from the
    last bar), weekly bars are resampled from those daily bars, and intraday bars keep their
    short look-back but are cut at ``start`` too.
    """

    def __init__(self, market: MarketData, settings: Settings, as_of: str | None, *,
                 start: str | None = None) -> None:
        self.market = market
        self.settings = settings
        self.as_of = as_of
        self.start = start
        self.end, self.now = as_of_clock(as_of)
        #: The UTC stamp of ``start`` (None: the default look-back).
        self.first = start_stamp(start, as_of)
        #: Set by :meth:`check_data`: the stamp of the last bar available at ``as_of``.
        self.as_of_effective: str | None = None
        self._cache: dict[tuple[str, str], Bars | Exception] = {}
        self._lock = threading.Lock()

    @property
    def as_of_text(self) -> str | None:
        """The effective as-of stamp for people (the date alone for daily bars), or None."""
        return None if self.as_of_effective is None else _stamp_text(pd.Timestamp(self.as_of_effective))

    def bar_of(self, timeframe: str) -> str:
        if timeframe not in TIMEFRAME_NAMES:
            raise ValueError(f"timeframe must be one of {TIMEFRAME_NAMES}, not {timeframe!r}")
        return getattr(self.settings.timeframes, timeframe).bar

    def lookback(self, timeframe: str) -> int:
        return getattr(self.settings.timeframes, timeframe).lookback

    def get(self, symbol: str, timeframe: str) -> Bars:
        """The run's history of ``symbol`` (from :attr:`start`) at the bar length of ``timeframe`` (LT/MT/ST/US)."""
        return self.get_bar(symbol, self.bar_of(timeframe))

    def get_bar(self, symbol: str, bar: str) -> Bars:
        """The run's history of ``symbol`` (from :attr:`start`) in bars of length ``bar`` (e.g. ``1D``, ``1W``)."""
        key = (symbol, bar)
        with self._lock:
            hit = self._cache.get(key)
        if hit is None:
            try:
                hit = self._load(symbol, bar)
            except Exception as exc:  # noqa: BLE001 - cached and re-raised to every reader
                hit = exc
            with self._lock:
                self._cache[key] = hit
        if isinstance(hit, Exception):
            raise hit
        return hit

    def _load(self, symbol: str, bar: str) -> Bars:
        # Weekly bars come from the daily bars of this run, loaded and validated once per
        # symbol. When the daily load fails, the weekly load is tried on its own so that its
        # error names the weekly bars.
        if bar == "1W":
            try:
                daily = self.get_bar(symbol, "1D")
            except Exception:  # noqa: BLE001 - the weekly load below reports its own error
                daily = None
            if daily is not None:
                return self._from_start(self.market.weekly_from(daily, now=self.now))
        if self.first is None or Timeframe.parse(bar).unit in ("D", "W"):
            return self.market.bars(symbol, bar, self.first, self.end, now=self.now)
        # Intraday: a start years back would ask a network source for years of minute bars;
        # the usual short look-back is loaded and cut at the start instead.
        return self._from_start(self.market.bars(symbol, bar, None, self.end, now=self.now))

    def _from_start(self, bars: Bars) -> Bars:
        """``bars`` without the bars stamped before :attr:`first` (all of them without a start)."""
        if self.first is None:
            return bars
        frame = bars.frame.loc[bars.frame.index >= self.first]
        if frame.empty:
            raise NoDataError(f"no {bars.timeframe} bars for {bars.symbol} from {bars.source} on or after "
                              f"--start {shown(self.start)}")
        return replace(bars, frame=frame)

    def check_data(self, symbols: Iterable[str], option: str = "--as-of", *,
                   partial: bool = False) -> dict[str, RegimeDeskError]:
        """Check that each symbol's bars load (by the as-of date, if any); set ``as_of_effective``.

        A symbol's data load when one of its timeframes (tried in the order MT, ST, US, LT)
        has bars; the first that has gives its last bar. With an as-of date, when that bar lies
        more than a few days (four, or two bars) before the as-of time, the data end earlier
        than asked: a :class:`RegimeDeskWarning` says so once, naming the date the numbers
        really reflect, and :attr:`as_of_effective` is the ISO stamp of the latest last bar
        over the symbols that load (without an as-of date it stays None).

        Parameters
        ----------
        symbols : iterable of str
            Canonical symbols.
        option : str, default '--as-of'
            The option that set the as-of date, for messages.
        partial : bool, default False
            Return the symbols whose data do not load instead of raising, as long as one
            symbol's data do (a run goes on with the others).

        Returns
        -------
        dict
            ``symbol -> error`` of the symbols whose data do not load (empty unless
            ``partial``).

        Raises
        ------
        NoDataError
            A symbol has no bars at or before the as-of date (the message names the date
            and, for local sources, the first bar there is), none from the start date
            (``--start``; the message names it and, for local sources, the data's span), or
            none at all.
        RegimeDeskError
            A symbol's data cannot be loaded (unknown symbol, unreadable file, missing key,
            a failing service): that error. With ``partial``, only when no symbol loads;
            several failing symbols are then named in one :class:`NoDataError`.
        """
        lasts: dict[str, pd.Timestamp] = {}
        stale: list[str] = []
        failures: dict[str, RegimeDeskError] = {}
        for symbol in symbols:
            try:
                bars = self._first_bars(symbol, option)
            except RegimeDeskError as exc:
                if not partial:
                    raise
                failures[symbol] = exc
                continue
            last = bars.frame.index[-1]
            lasts[symbol] = last
            step = pd.Timedelta(bars.frame.index.to_series().diff().min()) if len(bars.frame) > 1 else None
            slack = max(pd.Timedelta(days=4), 2 * step) if step is not None else pd.Timedelta(days=4)
            if self.end is not None and self.end - last > slack:
                stale.append(f"{symbol} {_stamp_text(last)}")
        if not lasts and failures:
            if len(failures) == 1:
                raise next(iter(failures.values()))
            raise NoDataError("no symbol's data could be loaded: "
                              + "; ".join(f"{s}: {e}" for s, e in failures.items()))
        if self.as_of is None:
            return failures
        if not lasts:
            return failures
        effective = max(lasts.values())
        if stale:
            warnings.warn(
                f"{option} {shown(self.as_of)} is after the last bar ({', '.join(stale)}): "
                f"running as of {_stamp_text(effective)}",
                RegimeDeskWarning,
                stacklevel=2,
            )
        self.as_of_effective = effective.isoformat()
        return failures

    def _first_bars(self, symbol: str, option: str) -> Bars:
        """The bars of the first timeframe (MT, ST, US, LT) that has any for ``symbol``.

        An error other than "no bars in the range" (unknown symbol, missing key, ...) is
        raised at once: no other timeframe would load either.
        """
        first_error: NoDataError | None = None
        for tf in _DAILY_FIRST:
            try:
                return self.get(symbol, tf)
            except NoDataError as exc:
                first_error = first_error or exc
        if self.first is not None:
            until = "" if self.as_of is None else f" to --as-of {shown(self.as_of)}"
            raise NoDataError(f"--start {shown(self.start)}: no bars of {symbol} from that date{until}"
                              f"{self._first_bar_note(symbol, last=True)}") from first_error
        if self.as_of is None:
            raise first_error
        raise NoDataError(
            f"{option} {shown(self.as_of)}: no bars of {symbol} at or before that date"
            f"{self._first_bar_note(symbol)}"
        ) from first_error

    def _first_bar_note(self, symbol: str, *, last: bool = False) -> str:
        """'' or ' (the data start on DATE)' (``last``: ' (the data run from DATE to DATE)'), for
        sources that are cheap to ask (local files, builtin)."""
        if self.market.source.cacheable:
            return ""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RegimeDeskWarning)  # the command fails; its data notes are noise
                index = self.market.bars(symbol, self.bar_of("MT"), _ALL_DATA if last else None).frame.index
        except Exception:  # noqa: BLE001 - only a hint for the message
            return ""
        if last:
            return f" (the data run from {_stamp_text(index[0])} to {_stamp_text(index[-1])})"
        return f" (the data start on {_stamp_text(index[0])})"


#: A start before any bar a local source can hold: reads its whole data.
_ALL_DATA = pd.Timestamp("1678-01-01", tz="UTC")

#: The timeframes whose last bar dates a symbol's data, finest usual one first.
_DAILY_FIRST = ("MT", "ST", "US", "LT")


def _stamp_text(ts: pd.Timestamp) -> str:
    """A bar stamp for people: the date alone for midnight stamps (daily bars)."""
    return ts.date().isoformat() if ts == ts.normalize() else ts.isoformat()


@dataclass(frozen=True)
class _Failed:
    """A memoised result that is an error (see :meth:`AppContext.remember`)."""

    error: BaseException


@dataclass
class AppContext:
    """Process-wide services for graph nodes; per-run pieces are built on first use."""

    settings: Settings
    secrets: Secrets
    journal: Any = None  # integrations.Journal or None
    _stores: dict[tuple[str, str | None, str | None], BarStore] = field(default_factory=dict)
    _narrators: dict[str, Any] = field(default_factory=dict)
    _brokers: dict[str, Any] = field(default_factory=dict)
    _risk_store: Any = None
    _fit_cache: Any = None
    _memo: dict[tuple, Any] = field(default_factory=dict)
    _memo_locks: dict[tuple, threading.Lock] = field(default_factory=dict)
    #: Receives one line per long step inside a node (the CLI prints them to stderr).
    status: Any = None
    #: Runs per-symbol analysis elsewhere when set (``map_symbols(fn, symbols, *args, lost=...)``
    #: of :mod:`agents.runtime.compute`, bound to a cluster); None: in this process.
    mapper: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def memo(self, key: tuple, compute):
        """``compute()`` once per ``key`` for this context; concurrent callers wait for it.

        Nodes that run in parallel share expensive results this way (the regime and ML
        agents both need a symbol's walk-forward regimes). Exceptions ``compute`` raises are not
        cached; a failure stored by :meth:`remember` is raised to every caller.
        """
        with self._lock:
            lock = self._memo_locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._memo:
                self._memo[key] = compute()
            out = self._memo[key]
        if isinstance(out, _Failed):
            raise out.error
        return out

    def remember(self, key: tuple, value: Any) -> None:
        """Store ``value`` under ``key`` unless something is there; an exception is stored as
        a failure that :meth:`memo` raises to every caller (results computed elsewhere)."""
        with self._lock:
            lock = self._memo_locks.setdefault(key, threading.Lock())
        with lock:
            self._memo.setdefault(key, _Failed(value) if isinstance(value, BaseException) else value)

    def bars(self, request: dict[str, Any]) -> BarStore:
        """The bar store for this request's source, as-of time and first bar (``start``)."""
        key = (request["source"], request.get("as_of"), request.get("start"))
        with self._lock:
            store = self._stores.get(key)
            if store is None:
                market = build_market_data(self.settings, self.secrets, request["source"])
                store = self._stores[key] = BarStore(market, self.settings, request.get("as_of"),
                                                     start=request.get("start"))
        return store

    def release(self, request: dict[str, Any]) -> None:
        """Drop the bars and memoised results of one request (a live session calls this after
        each bar, so a long-running process does not keep every bar's data)."""
        key = (request["source"], request.get("as_of"))
        with self._lock:
            self._stores.pop((*key, request.get("start")), None)
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
                from agents.services.risk import build_broker

                b = self._brokers[name] = build_broker(self.settings, self.secrets, name)
        return b

    def risk_store(self):
        """The persisted risk state (``home/risk.sqlite``)."""
        with self._lock:
            if self._risk_store is None:
                from agents.services.risk import RiskStateStore

                self._risk_store = RiskStateStore(self.settings.paths.risk_state)
        return self._risk_store

    def fit_cache(self):
        """Fitted regime parameter sets shared by runs (``home/fit_cache.sqlite``)."""
        with self._lock:
            if self._fit_cache is None:
                from agents.services.fitcache import open_fit_cache

                self._fit_cache = open_fit_cache(self.settings.paths.fit_cache)
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
        from agents.services.narrator import build_narrator

        backend = request.get("llm", "template")
        with self._lock:
            narrator = self._narrators.get(backend)
            if narrator is None:
                cfg = self.settings.llm.model_copy(update={"backend": backend})
                narrator = self._narrators[backend] = build_narrator(cfg, self.secrets, self.journal)
        return narrator


def symbol_bar_store(settings: Settings, secrets: Secrets, symbol: str, *, source: str | None = None,
                     as_of: str | None = None, option: str = "--as-of",
                     start: str | None = None) -> tuple[BarStore, str]:
    """The run-style bar store for one symbol, and the symbol's canonical name.

    Used by the single-symbol commands of the command line and the bot alike. The symbol's
    bars must load, from ``start`` (the first bar, ``--start``; default ``data.history_years``
    back from the last bar) and by ``as_of`` if given (``option`` names it in messages); else
    this fails at once with the reason (unknown symbol, missing key, no bars then). A date after
    the last bar is said in one warning, and ``store.as_of_effective`` is the last bar's stamp
    (see :meth:`BarStore.check_data`).

    Raises
    ------
    ValueError
        ``as_of`` or ``start`` is not a date, or ``start`` is after ``as_of``.
    RegimeDeskError
        The symbol's data cannot be loaded.
    """
    as_of_clock(as_of)
    start_stamp(start, as_of)
    app = AppContext(settings, secrets)
    store = app.bars({"source": source or settings.data.source, "as_of": as_of, "start": start})
    canonical = store.market.source.canonical_symbol(symbol)
    store.check_data([canonical], option)
    return store, canonical
