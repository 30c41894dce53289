"""Market-data sources: embedded data, files, Polygon and Alpaca.

Every source returns canonical bars (see ``analytics.bars``): a UTC ``DatetimeIndex``
named ``timestamp``, float columns ``open, high, low, close, volume``, intraday bars stamped
with their start, daily bars with their session date at 00:00 UTC. Sources deliver their
native timeframes only (minutes, hours, days); :class:`integrations.MarketData` builds weekly
bars, validates and caches.
"""

from __future__ import annotations

import importlib.util
import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from analytics import shown
from analytics.bars import BAR_COLUMNS, Timeframe, empty_bars
from integrations._errors import (
    MissingCredentialsError,
    NoDataError,
    PermanentError,
    TransientError,
    UnknownSymbolError,
)
from integrations._redact import redact

__all__ = [
    "BarSource",
    "BuiltinSource",
    "FileSource",
    "PolygonSource",
    "AlpacaSource",
    "read_bar_file",
    "BUILTIN_SYMBOLS",
]

log = logging.getLogger(__name__)
_NY = "America/New_York"

#: Embedded series: canonical name -> (arch.data module, aliases).
BUILTIN_SYMBOLS: dict[str, tuple[str, tuple[str, ...]]] = {
    "SP500": ("sp500", ("^GSPC", "GSPC", "SPX", "S&P500")),
    "NASDAQ": ("nasdaq", ("^IXIC", "IXIC", "COMP")),
}


class BarSource(ABC):
    """A place bars come from.

    Subclasses set :attr:`name` and :attr:`cacheable` and implement :meth:`fetch`.
    """

    name: str = "source"
    #: Network sources are cached to Parquet; local ones are not.
    cacheable: bool = False

    def supports(self, timeframe: Timeframe) -> bool:
        """Whether ``fetch`` can deliver ``timeframe`` natively (weekly is always built)."""
        return timeframe.unit in ("Min", "H", "D")

    def cache_identity(self) -> str:
        """What besides the request distinguishes cached answers (e.g. the server URL)."""
        return self.name

    def offers(self) -> str:
        """The bar lengths this source delivers, for error messages."""
        return "minute, hour and daily bars (weekly built from daily)"

    def canonical_symbol(self, symbol: str) -> str:
        """The symbol as the source names it."""
        return symbol.strip().upper()

    def known_issues(self, symbol: str) -> Mapping[tuple[str, str | None], str]:
        """Validation flags that are real features of this source's data for ``symbol``:
        ``(rule, ISO timestamp) -> explanation``. They are reported, not warned about."""
        return {}

    def check_credentials(self) -> None:
        """Raise :class:`MissingCredentialsError` now if :meth:`fetch` would for want of a key.

        Local sources need none; network sources check that their keys are set (not that
        the service accepts them: that takes a request).
        """
        return None  # a local source needs no key

    @abstractmethod
    def fetch(
        self, symbol: str, timeframe: Timeframe, start: pd.Timestamp, end: pd.Timestamp
    ) -> pd.DataFrame:
        """Bars of ``symbol`` at ``timeframe`` stamped in ``[start, end]`` (UTC)."""


def _frame(index: pd.DatetimeIndex, data: dict[str, np.ndarray]) -> pd.DataFrame:
    frame = pd.DataFrame({c: np.asarray(data[c], dtype="float64") for c in BAR_COLUMNS}, index=index)
    frame.index.name = "timestamp"
    return frame


def _session_dates(stamps: pd.DatetimeIndex, tz: str = _NY) -> pd.DatetimeIndex:
    """Daily bars: the exchange session date at 00:00 UTC."""
    local = stamps.tz_convert(tz) if stamps.tz is not None else stamps
    return pd.DatetimeIndex(local.tz_localize(None).normalize()).tz_localize("UTC")


#: The bundled series' validation flags that are real market moves, checked by eye against the
#: index's history: said once by ``data show``, not warned about by every command.
_BUILTIN_KNOWN: dict[str, dict[tuple[str, str | None], str]] = {
    "SP500": {
        ("jump", "2018-02-05T00:00:00+00:00"):
            "jump on 2018-02-05 is real: the S&P 500 fell 4.1% in the volatility spike of February 2018",
    },
}


class BuiltinSource(BarSource):
    """Daily S&P 500 and NASDAQ Composite OHLCV, 1999-01-04 .. 2018-12-31, from ``arch.data``.

    Adjustment: ``factor = Adj Close / Close``; open, high, low and close are multiplied by
    the factor and volume is divided by it, so that returns include distributions and the
    OHLC relations of each bar are preserved. (For these two indices the factor is 1.0 on
    every day; the rule is applied anyway so that the data path is the same as for files
    with an ``adj close`` column.) No intraday bars exist in this source.
    """

    name = "builtin"

    def supports(self, timeframe: Timeframe) -> bool:
        return timeframe.unit == "D"

    def offers(self) -> str:
        return "daily bars only (weekly built from daily); no intraday bars"

    def known_issues(self, symbol: str) -> Mapping[tuple[str, str | None], str]:
        return _BUILTIN_KNOWN.get(self.canonical_symbol(symbol), {})

    def canonical_symbol(self, symbol: str) -> str:
        key = symbol.strip().upper()
        for name, (_, aliases) in BUILTIN_SYMBOLS.items():
            if key == name or key in aliases:
                return name
        raise UnknownSymbolError(
            f"unknown symbol {shown(symbol)} for the builtin source; available: "
            f"{', '.join(BUILTIN_SYMBOLS)} (use --source file|polygon|alpaca for others)"
        )

    def fetch(self, symbol, timeframe, start, end):
        name = self.canonical_symbol(symbol)
        if not self.supports(timeframe):
            raise NoDataError(f"the builtin source has daily bars only, not {timeframe}")
        raw = _arch_data(BUILTIN_SYMBOLS[name][0])
        index = pd.DatetimeIndex(raw.index).tz_localize("UTC").as_unit("ns")
        factor = (raw["Adj Close"] / raw["Close"]).to_numpy(dtype=float)
        frame = _frame(
            index,
            {
                "open": raw["Open"].to_numpy(float) * factor,
                "high": raw["High"].to_numpy(float) * factor,
                "low": raw["Low"].to_numpy(float) * factor,
                "close": raw["Adj Close"].to_numpy(float),
                "volume": raw["Volume"].to_numpy(float) / factor,
            },
        )
        return frame.loc[(frame.index >= start) & (frame.index <= end)]


def _arch_data(module_name: str) -> pd.DataFrame:
    """What ``arch.data.<module_name>.load()`` returns, read without importing ``arch``.

    Importing any ``arch`` module runs ``arch/__init__``, which loads scipy and statsmodels
    (about 2 s); the data is a CSV file inside the package, so it is read from there the way
    ``arch.data.utility.load_file`` reads it.
    """
    spec = importlib.util.find_spec("arch")  # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the builtin source reads the data bundled with the 'arch' package, "
                                  "which is not installed", name="arch")
    path = Path(spec.submodule_search_locations[0], "data", module_name, f"{module_name}.csv.gz")
    data = pd.read_csv(path)
    if "Date" in data:
        data["Date"] = pd.to_datetime(data["Date"])
        data = data.set_index("Date")
    for col in data:
        data[col] = pd.to_numeric(data[col], errors="coerce")
    return data


_TS_NAMES = ("timestamp", "datetime", "date", "time", "t")
_ALIASES = {
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c"),
    "volume": ("volume", "v", "vol"),
}
_ADJ_NAMES = ("adj close", "adj_close", "adjclose", "adjusted_close", "adjusted close")


#: Epoch units and their size in nanoseconds, smallest magnitude first.
_EPOCH_UNITS: tuple[tuple[str, int], ...] = (("s", 10**9), ("ms", 10**6), ("us", 10**3), ("ns", 1))
#: Paths longer than this are cut in messages.
PATH_SHOWN_CHARS = 200
#: Plausible epoch times are from 1970-01-01 up to (not including) 2100-01-01.
_EPOCH_END_S = 4_102_444_800


def _rows_text(rows: np.ndarray, limit: int = 5) -> str:
    listed = ", ".join(str(int(r)) for r in rows[:limit])
    more = f" and {rows.size - limit} more" if rows.size > limit else ""
    return f"row{'s' if rows.size > 1 else ''} {listed}{more}"


def _epoch_index(arr: np.ndarray, what: str) -> pd.DatetimeIndex:
    """Epoch numbers to UTC times, in the one unit the bulk of the column is in.

    Each value's magnitude names the only unit in which it is a time between 1970 and
    2100 (seconds below 4.1e9, milliseconds below 4.1e12, microseconds below 4.1e15,
    nanoseconds below 4.1e18; the ranges do not overlap). The column's unit is the one most
    values have; a value of another unit, negative or beyond every range is an error naming
    its rows (0-based data rows) rather than a silently re-dated bar.
    """
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise PermanentError(f"{what}: timestamp missing or not finite in {_rows_text(bad)}")
    classes = np.full(arr.shape, -1)
    with np.errstate(invalid="ignore"):
        for k, (_, ns_per) in enumerate(_EPOCH_UNITS):
            top = _EPOCH_END_S * (10**9 // ns_per)
            classes[(classes == -1) & (arr >= 0) & (arr < top)] = k
    known = classes[classes >= 0]
    if known.size == 0:
        raise PermanentError(
            f"{what}: no timestamp is an epoch time between 1970 and 2100 in s, ms, us or ns "
            f"(first value {arr[0]:g}, {_rows_text(np.arange(arr.size))})"
        )
    k = int(np.bincount(known).argmax())
    unit, ns_per = _EPOCH_UNITS[k]
    off = np.flatnonzero(classes != k)
    if off.size:
        raise PermanentError(
            f"{what}: timestamps are epoch {unit} but {_rows_text(off)} "
            f"({', '.join(f'{v:g}' for v in arr[off[:3]])}{', ...' if off.size > 3 else ''}) "
            f"{'are not times' if off.size > 1 else 'is not a time'} in {unit} between 1970 and 2100 "
            "(out of range or another unit)"
        )
    nanos = np.round(arr * ns_per) if ns_per > 1 else np.round(arr)
    return pd.DatetimeIndex(pd.to_datetime(nanos.astype("int64"), unit="ns", utc=True))


def _to_utc_index(values: pd.Series | pd.Index, timezone: str, what: str) -> pd.DatetimeIndex:
    if pd.api.types.is_bool_dtype(values):
        raise PermanentError(f"{what}: the timestamp column holds true/false values, not times")
    if pd.api.types.is_numeric_dtype(values):
        return _epoch_index(np.asarray(values, dtype="float64"), what)
    try:
        idx = pd.DatetimeIndex(pd.to_datetime(values, format="mixed"))
    except (ValueError, TypeError) as exc:
        raise PermanentError(f"{what}: cannot parse timestamps ({exc})") from None
    if idx.tz is None:
        idx = idx.tz_localize(timezone, ambiguous="raise", nonexistent="raise")
    return idx.tz_convert("UTC")


def read_bar_file(path: str | Path, timezone: str = "UTC") -> pd.DataFrame:
    """Read a CSV or Parquet file of bars into a canonical (unvalidated) bar frame.

    Parameters
    ----------
    path : str or Path
        ``.csv`` (optionally ``.csv.gz``) or ``.parquet`` file.
    timezone : str, default 'UTC'
        Time zone of naive timestamps; aware timestamps keep their own.

    Notes
    -----
    Column names are matched case-insensitively, also the short forms o/h/l/c/v. The time
    comes from a column named timestamp, datetime, date, time or t, or from a
    ``DatetimeIndex`` (Parquet); epoch numbers in s, ms, us or ns are recognised by size:
    the column's unit is the one most values are plausible times (1970 to 2100) in, and a
    value that is not (out of range, or another unit) is an error naming its rows.
    With an ``adj close`` column OHLC are scaled by ``adj close / close`` and volume divided by
    it, as for the builtin data. Rows keep the file's order: validation reports problems.

    Raises
    ------
    PermanentError
        Unreadable or malformed file (also a path the system refuses: too long, a
        directory, no permission), or implausible/mixed-unit epoch timestamps (the message
        names the file, cut to :data:`PATH_SHOWN_CHARS` characters, the problem and the rows).
    """
    path = Path(path)
    where = _path_text(path)
    try:
        return _read_bar_file(path, timezone, where)
    except OSError as exc:  # a name too long, a directory, no permission ...: never the raw path
        raise PermanentError(f"{where}: cannot read file ({exc.strerror or type(exc).__name__})") from None


def _path_text(path: str | Path) -> str:
    """A user-given path for a message: as it is, or cut by :func:`analytics.shown` when longer
    than :data:`PATH_SHOWN_CHARS` characters."""
    text = str(path)
    return text if len(text) <= PATH_SHOWN_CHARS else shown(text, PATH_SHOWN_CHARS)


def _read_bar_file(path: Path, timezone: str, where: str) -> pd.DataFrame:
    if not path.exists():
        raise PermanentError(f"{where}: no such file")
    suffixes = "".join(path.suffixes).lower()
    try:
        if suffixes.endswith(".parquet") or suffixes.endswith(".pq"):
            raw = pd.read_parquet(path)
        elif ".csv" in suffixes or suffixes.endswith(".txt"):
            raw = pd.read_csv(path)
        else:
            raise PermanentError(f"{where}: unsupported file type; use .csv or .parquet")
    except (PermanentError, OSError):
        raise
    except Exception as exc:  # noqa: BLE001 - any parser failure is a malformed file
        raise PermanentError(f"{where}: cannot read file ({type(exc).__name__}: {exc})") from None
    if raw.empty:
        raise PermanentError(f"{where}: file has no rows")
    lower = {str(c).strip().lower(): c for c in raw.columns}

    if isinstance(raw.index, pd.DatetimeIndex):
        index = raw.index if raw.index.tz is not None else raw.index.tz_localize(timezone)
        index = index.tz_convert("UTC")
    else:
        ts_col = next((lower[n] for n in _TS_NAMES if n in lower), None)
        if ts_col is None:
            raise PermanentError(
                f"{where}: no timestamp column (looked for {', '.join(_TS_NAMES)}, any case)"
            )
        index = _to_utc_index(raw[ts_col], timezone, where)

    cols: dict[str, np.ndarray] = {}
    for canon, names in _ALIASES.items():
        col = next((lower[n] for n in names if n in lower), None)
        if col is None:
            raise PermanentError(f"{where}: missing column {canon!r} (columns: {list(raw.columns)})")
        try:
            cols[canon] = pd.to_numeric(raw[col], errors="raise").to_numpy(dtype="float64")
        except (ValueError, TypeError):
            raise PermanentError(f"{where}: column {col!r} is not numeric") from None
    adj = next((lower[n] for n in _ADJ_NAMES if n in lower), None)
    if adj is not None:
        factor = pd.to_numeric(raw[adj], errors="coerce").to_numpy(float) / cols["close"]
        for k in ("open", "high", "low", "close"):
            cols[k] = cols[k] * factor
        cols["volume"] = cols["volume"] / factor
    return _frame(pd.DatetimeIndex(index).as_unit("ns"), cols)


class FileSource(BarSource):
    """Bars from ``DIRECTORY/SYMBOL.csv`` or ``DIRECTORY/SYMBOL.parquet``, or named files.

    Parameters
    ----------
    directory : Path, optional
        Folder searched for ``<SYMBOL>.parquet``, ``<SYMBOL>.csv``, ``<symbol>.csv`` ...
    files : dict, optional
        Explicit ``SYMBOL -> path`` entries; they win over the directory.
    timezone : str
        Time zone of naive timestamps in the files.
    timeframe : str
        The bar length the files hold (default 1D).
    """

    name = "file"

    def __init__(
        self,
        directory: Path | None = None,
        files: dict[str, Path] | None = None,
        timezone: str = "UTC",
        timeframe: str = "1D",
    ) -> None:
        self.directory = Path(directory) if directory else None
        self.files = {k.upper(): Path(v) for k, v in (files or {}).items()}
        self.timezone = timezone
        self.timeframe = Timeframe.parse(timeframe)

    def supports(self, timeframe: Timeframe) -> bool:
        return timeframe == self.timeframe

    def offers(self) -> str:
        return f"{self.timeframe} bars only (data.file.timeframe)"

    def path_for(self, symbol: str) -> Path:
        """The file holding ``symbol``'s bars.

        An explicitly listed file wins; otherwise the file must lie inside ``directory``:
        a symbol that would lead out of it (``../x``, an absolute path) is refused.
        """
        key = symbol.strip().upper()
        if key in self.files:
            return self.files[key]
        if self.directory is not None:
            given = symbol.strip()
            parts = given.replace("\\", "/").split("/")
            escapes = given.startswith(("/", "\\", "~")) or any(p in ("", ".", "..") for p in parts)
            if escapes or "\0" in given:
                raise UnknownSymbolError(
                    f"symbol {shown(symbol)} is not a file name inside {self.directory} "
                    "(data.file.directory); list other files under data.file.files"
                )
            for stem in (key, given, key.lower()):
                for ext in (".parquet", ".csv", ".csv.gz"):
                    candidate = self.directory / f"{stem}{ext}"
                    if candidate.exists():
                        return candidate
        where = f" in {self.directory}" if self.directory else ""
        name = key if len(key) <= 20 else "SYMBOL"
        raise UnknownSymbolError(
            f"no file for symbol {shown(symbol)}{where}; expected {name}.csv or {name}.parquet "
            "(set data.file.directory or data.file.files in the configuration)"
        )

    def fetch(self, symbol, timeframe, start, end):
        if not self.supports(timeframe):
            raise NoDataError(f"the file source holds {self.timeframe} bars, not {timeframe}")
        frame = read_bar_file(self.path_for(symbol), self.timezone)
        if timeframe.unit == "D":
            frame.index = _session_dates(frame.index, "UTC")
        return frame.loc[(frame.index >= start) & (frame.index <= end)]


def _need(value: str | None, variable: str, source: str) -> str:
    if not value:
        raise MissingCredentialsError(
            f"the {source} source needs an API key: set the environment variable {variable}"
        )
    return value


_POLYGON_SPANS = {"Min": "minute", "H": "hour", "D": "day"}


class PolygonSource(BarSource):
    """Aggregates from Polygon (``polygon-api-client`` ``RESTClient.list_aggs``).

    Pagination follows ``next_url`` (the client does it); HTTP 429/5xx are retried by the
    client's urllib3 retry policy with backoff, and a request that still fails raises
    :class:`TransientError`. Bars are split/dividend adjusted (``adjusted=true``). Error
    messages quote Polygon's answer with the API key redacted (:func:`integrations.redact`).
    """

    name = "polygon"
    cacheable = True

    def __init__(
        self,
        api_key: str | None,
        base_url: str = "https://api.polygon.io",
        retries: int = 3,
        timeout: float = 30.0,
        page_limit: int = 50000,
    ) -> None:
        self.api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.timeout = timeout
        self.page_limit = page_limit

    def cache_identity(self) -> str:
        return f"polygon|{self.base_url}"

    def check_credentials(self) -> None:
        _need(self.api_key, "POLYGON_API_KEY", "polygon")

    def fetch(self, symbol, timeframe, start, end):
        from polygon import RESTClient
        from polygon.exceptions import AuthError, BadResponse
        from urllib3.exceptions import HTTPError as Urllib3Error

        key = _need(self.api_key, "POLYGON_API_KEY", "polygon")
        if not self.supports(timeframe):
            raise NoDataError(f"polygon delivers minute, hour and day bars, not {timeframe}")
        client = RESTClient(
            api_key=key,
            base=self.base_url,
            retries=self.retries,
            connect_timeout=self.timeout,
            read_timeout=self.timeout,
        )
        ticker = self.canonical_symbol(symbol)
        rows: list[tuple[int, float, float, float, float, float]] = []
        try:
            for agg in client.list_aggs(
                ticker,
                timeframe.amount,
                _POLYGON_SPANS[timeframe.unit],
                int(start.timestamp() * 1000),
                int(end.timestamp() * 1000),
                adjusted=True,
                sort="asc",
                limit=self.page_limit,
            ):
                rows.append((agg.timestamp, agg.open, agg.high, agg.low, agg.close, agg.volume))
        except AuthError:
            raise MissingCredentialsError(
                "the polygon source needs an API key: set the environment variable POLYGON_API_KEY"
            ) from None
        except BadResponse as exc:
            raw = str(exc)
            # The answer may quote the key (Polygon echoes apiKey): redact before clipping.
            text = redact(raw, (key,))[:200]
            if "NOT_AUTHORIZED" in raw or "Unknown API Key" in raw or "401" in raw:
                raise PermanentError(f"polygon rejected the API key or plan: {text}") from None
            raise PermanentError(f"polygon error for {ticker}: {text}") from None
        except (Urllib3Error, OSError) as exc:
            raise TransientError(f"polygon unreachable or failing: {redact(str(exc), (key,))}") from None
        if not rows:
            return empty_bars()
        arr = np.array([[np.nan if v is None else v for v in r] for r in rows], dtype="float64")
        index = pd.DatetimeIndex(pd.to_datetime(arr[:, 0].astype("int64"), unit="ms", utc=True))
        if timeframe.unit == "D":
            index = _session_dates(index)
        frame = _frame(index, dict(zip(BAR_COLUMNS, arr[:, 1:].T, strict=True)))
        return frame.loc[(frame.index >= start) & (frame.index <= end)]


class AlpacaSource(BarSource):
    """Historical stock and crypto bars from Alpaca (``alpaca-py``).

    Symbols containing ``/`` (``BTC/USD``) are crypto; others are US stocks. Stock bars are
    adjusted for splits and dividends (``adjustment=all``) from the configured feed
    (``iex`` by default, ``sip`` with a paid plan). The client pages through
    ``next_page_token``; HTTP 429/5xx and connection failures raise :class:`TransientError`.
    Error messages quote Alpaca's answer with both keys redacted (:func:`integrations.redact`).
    """

    name = "alpaca"
    cacheable = True

    def __init__(
        self,
        api_key: str | None,
        secret_key: str | None,
        base_url: str | None = None,
        feed: str = "iex",
    ) -> None:
        self.api_key = api_key
        self.secret_key = secret_key
        self.base_url = base_url.rstrip("/") if base_url else None
        self.feed = feed

    def cache_identity(self) -> str:
        return f"alpaca|{self.base_url or 'default'}|{self.feed}"

    def check_credentials(self) -> None:
        _need(self.api_key, "ALPACA_API_KEY", "alpaca")
        _need(self.secret_key, "ALPACA_SECRET_KEY", "alpaca")

    def fetch(self, symbol, timeframe, start, end):
        import requests
        from alpaca.common.exceptions import APIError
        from alpaca.data.enums import Adjustment, DataFeed
        from alpaca.data.historical import CryptoHistoricalDataClient, StockHistoricalDataClient
        from alpaca.data.requests import CryptoBarsRequest, StockBarsRequest
        from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

        key = _need(self.api_key, "ALPACA_API_KEY", "alpaca")
        secret = _need(self.secret_key, "ALPACA_SECRET_KEY", "alpaca")
        if not self.supports(timeframe):
            raise NoDataError(f"alpaca delivers minute, hour and day bars, not {timeframe}")
        unit = {"Min": TimeFrameUnit.Minute, "H": TimeFrameUnit.Hour, "D": TimeFrameUnit.Day}
        tf = TimeFrame(timeframe.amount, unit[timeframe.unit])
        ticker = self.canonical_symbol(symbol)
        crypto = "/" in ticker
        t0: datetime = start.to_pydatetime()
        t1: datetime = end.to_pydatetime()
        try:
            if crypto:
                client = CryptoHistoricalDataClient(key, secret, url_override=self.base_url)
                barset = client.get_crypto_bars(
                    CryptoBarsRequest(symbol_or_symbols=ticker, timeframe=tf, start=t0, end=t1)
                )
            else:
                client = StockHistoricalDataClient(key, secret, url_override=self.base_url)
                barset = client.get_stock_bars(
                    StockBarsRequest(
                        symbol_or_symbols=ticker,
                        timeframe=tf,
                        start=t0,
                        end=t1,
                        adjustment=Adjustment.ALL,
                        feed=DataFeed(self.feed),
                    )
                )
        except APIError as exc:
            status = getattr(exc, "status_code", None)
            if status in (401, 403):
                raise PermanentError(
                    "alpaca rejected the credentials (ALPACA_API_KEY / ALPACA_SECRET_KEY)"
                ) from None
            # The answer may quote the key headers: redact before clipping.
            text = redact(str(exc), (key, secret))[:200]
            if status == 429 or (status is not None and status >= 500):
                raise TransientError(f"alpaca HTTP {status}: {text}") from None
            raise PermanentError(f"alpaca error for {ticker} (HTTP {status}): {text}") from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TransientError(f"alpaca unreachable: {redact(str(exc), (key, secret))}") from None
        bars = barset.data.get(ticker, []) if hasattr(barset, "data") else []
        if not bars:
            return empty_bars()
        index = pd.DatetimeIndex([pd.Timestamp(b.timestamp) for b in bars])
        index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
        if timeframe.unit == "D":
            index = _session_dates(index, "UTC" if crypto else _NY)
        frame = _frame(
            index.as_unit("ns"),
            {
                "open": np.array([b.open for b in bars], float),
                "high": np.array([b.high for b in bars], float),
                "low": np.array([b.low for b in bars], float),
                "close": np.array([b.close for b in bars], float),
                "volume": np.array([b.volume for b in bars], float),
            },
        )
        return frame.loc[(frame.index >= start) & (frame.index <= end)]
