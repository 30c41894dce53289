"""Signal CSV export and a generated QuantConnect (LEAN) Python algorithm that trades it.

The CSV has one row per symbol and daily bar; its columns are :data:`SIGNAL_COLUMNS`, each
described in :data:`COLUMN_SPEC` (and in ``docs/export.md``). Values are written exactly:
floats in their shortest round-trip form, missing values as empty fields, times in
ISO-8601 UTC. :func:`read_signal_csv` reads a file back into the same frame
:func:`write_signal_csv` was given.

:func:`write_lean_project` writes a LEAN project next to the CSV:

``main.py``
    A ``QCAlgorithm`` with a ``PythonData`` type whose ``get_source`` points at the CSV (in
    LEAN's data folder, at a URL, or under an Object Store key) and whose ``reader`` stamps
    each row with ``time`` = the bar's start and ``end_time`` = ``available_at``, the close
    of the bar, so LEAN hands a row to the algorithm only after its bar has closed. On each
    row the algorithm sends a market-on-open order that moves the mapped equity to the
    row's gate-approved weight: it trades at the next session's open.
``regimedesk_signals.py``
    The CSV parsing, in plain Python without LEAN, imported by ``main.py`` (and by the
    tests, which run it on the exported file).

This module imports no ``agents`` code.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from analytics.timeframes import TIMEFRAME_TABLE

__all__ = [
    "SIGNAL_COLUMNS",
    "COLUMN_SPEC",
    "SIGNAL_TIMEFRAMES",
    "LEAN_DATA_SOURCES",
    "DEFAULT_TICKERS",
    "SIGNAL_CSV_NAME",
    "LeanProject",
    "coerce_signal_frame",
    "write_signal_csv",
    "read_signal_csv",
    "lean_tickers",
    "lean_data_location",
    "write_lean_project",
    "parser_source",
    "algorithm_source",
]

#: Timeframe prefixes of the per-timeframe columns, longest first: the analysis timeframes
#: of ``analytics.TIMEFRAME_TABLE``, lower-cased.
SIGNAL_TIMEFRAMES: tuple[str, ...] = tuple(name.lower() for name in TIMEFRAME_TABLE)

# "LT (weekly)", ...: how the column meanings name a timeframe.
_TF_NAMES = {name.lower(): f"{name} ({row.bar_kind})" for name, row in TIMEFRAME_TABLE.items()}


def _spec() -> dict[str, tuple[str, str]]:
    spec: dict[str, tuple[str, str]] = {
        "date": ("date", "session date of the daily bar (YYYY-MM-DD)"),
        "symbol": ("text", "RegimeDesk symbol (canonical name of the source)"),
        "bar_start": ("utc", "start of the bar: the session open, 09:30 America/New_York, in UTC "
                             "(crypto pairs: 00:00 UTC)"),
        "available_at": ("utc", "when every value in the row became known: the close of the bar, "
                                "16:00 America/New_York, in UTC (crypto pairs: 00:00 UTC of the "
                                "next day); LEAN's end_time"),
        "close": ("float", "close of the bar"),
    }
    for tf in SIGNAL_TIMEFRAMES:
        name = _TF_NAMES[tf]
        spec[f"{tf}_label"] = ("text", f"{name} regime: calm, bull, bear or high_volatility; empty "
                                       "before the first walk-forward fit or without bars of this timeframe")
        spec[f"{tf}_probability"] = ("float", f"{name} filtered probability of that regime, in [0, 1]")
        spec[f"{tf}_bar"] = ("text", f"{name} stamp of the bar the regime comes from (a closed bar "
                                     "at or before available_at)")
        spec[f"{tf}_character"] = ("text", f"{name} market character over the timeframe's lookback: "
                                           "trending, mean_reverting or random_walk; empty when the "
                                           "window is shorter than 100 bars or undetermined")
        spec[f"{tf}_character_confidence"] = ("float", f"{name} confidence of the character, in [0, 1]")
    spec.update({
        "regime_family": ("text", "consensus of the timeframes as the regime agent reports it: "
                                  "risk_on, risk_off, mixed or unavailable"),
        "p_up": ("float", "walk-forward out-of-sample probability that the close rises over the "
                          "label horizon, from the model of the fold covering this bar; empty "
                          "before the first fold"),
        "p_up_trained_through": ("date", "last bar the model behind p_up was trained on (before "
                                         "the bar, by the purge and embargo)"),
        "vol_forecast": ("float", "annualised causal volatility forecast (walk-forward GARCH) the "
                                  "policy scales by"),
        "policy": ("text", "decision policy: regime, ml or combined"),
        "target_weight": ("float", "the policy's target weight (parameters re-chosen walk-forward "
                                   "at each refit), capped at decision.max_weight; empty before the "
                                   "policy first decides or when an input is missing"),
        "approved_weight": ("float", "weight after replaying the risk gate on a simulated "
                                     "single-symbol book; empty where target_weight is"),
        "gate_action": ("text", "approve, trim, reject, or hold (already at target); empty "
                                "where target_weight is"),
        "gate_reasons": ("text", "the gate's reason codes joined by ';' (empty: none)"),
    })
    return spec


#: Column name -> (kind, meaning); kinds: date, text, utc (ISO-8601 UTC), float.
COLUMN_SPEC: dict[str, tuple[str, str]] = _spec()
#: Columns of the signal CSV, in file order.
SIGNAL_COLUMNS: tuple[str, ...] = tuple(COLUMN_SPEC)
_FLOATS = tuple(c for c, (k, _) in COLUMN_SPEC.items() if k == "float")

LEAN_DATA_SOURCES: tuple[str, ...] = ("file", "url", "object-store")
#: Tradable tickers of the builtin index series (the ETFs that track them).
DEFAULT_TICKERS: dict[str, str] = {"SP500": "SPY", "NASDAQ": "QQQ"}
SIGNAL_CSV_NAME = "regimedesk_signals.csv"
_PARSER_MODULE = "regimedesk_signals"
_LEAN_DATA_PATH = f"custom/{SIGNAL_CSV_NAME}"
_TICKER_RE = re.compile(r"^[A-Z][A-Z0-9.]{0,9}$")


def coerce_signal_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The signal columns in file order with canonical types.

    Float columns become float64 (missing = NaN); every other column holds ``str`` or
    ``None``. Raises ``ValueError`` naming missing columns.
    """
    missing = [c for c in SIGNAL_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"frame: missing signal columns {missing}")
    out: dict[str, Any] = {}
    for col in SIGNAL_COLUMNS:
        s = frame[col]
        if col in _FLOATS:
            try:
                out[col] = np.array([np.nan if _missing(v) else float(v) for v in s], dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"frame: column {col} holds a value that is not a number") from None
        else:
            # An object Series: from a plain list pandas 3 infers its string dtype, whose
            # missing value is NaN, and a column would hold None or NaN depending on
            # whether it has any text at all.
            out[col] = pd.Series([None if _missing(v) else str(v) for v in s], dtype=object)
    return pd.DataFrame(out, columns=list(SIGNAL_COLUMNS))


def _missing(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    return isinstance(v, str) and v == ""


def _cell(v: Any, is_float: bool) -> str:
    if _missing(v):
        return ""
    if is_float:
        x = float(v)
        if not math.isfinite(x):
            raise ValueError(f"signal values must be finite, got {x!r}")
        return repr(x)
    text = str(v)
    if any(ch in text for ch in ",\"\r\n"):
        raise ValueError(f"text values may not contain commas, quotes or line breaks: {text!r}")
    return text


def write_signal_csv(frame: pd.DataFrame, path: str | Path | TextIO) -> None:
    """Write signals as CSV with a header row (``SIGNAL_COLUMNS``).

    Parameters
    ----------
    frame : DataFrame
        At least the columns of :data:`SIGNAL_COLUMNS` (others are ignored).
    path : path or text stream
        ``"-"`` is not special here; pass ``sys.stdout`` to print.
    """
    frame = coerce_signal_frame(frame)
    is_float = [c in _FLOATS for c in SIGNAL_COLUMNS]
    buf = io.StringIO()
    buf.write(",".join(SIGNAL_COLUMNS) + "\n")
    for row in frame.itertuples(index=False, name=None):
        buf.write(",".join(_cell(v, f) for v, f in zip(row, is_float, strict=True)) + "\n")
    if isinstance(path, (str, Path)):
        Path(path).write_text(buf.getvalue(), encoding="utf-8", newline="\n")
    else:
        path.write(buf.getvalue())


def read_signal_csv(path: str | Path) -> pd.DataFrame:
    """Read a signal CSV written by :func:`write_signal_csv` (exactly the same frame back).

    Raises ``ValueError`` when the header is not :data:`SIGNAL_COLUMNS`.
    """
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows or tuple(rows[0]) != SIGNAL_COLUMNS:
        raise ValueError(f"path: {path} is not a RegimeDesk signal CSV (unexpected header)")
    body = rows[1:]
    for i, r in enumerate(body, start=2):
        if len(r) != len(SIGNAL_COLUMNS):
            raise ValueError(f"path: line {i} of {path} has {len(r)} fields, expected {len(SIGNAL_COLUMNS)}")
    data = {c: [r[j] for r in body] for j, c in enumerate(SIGNAL_COLUMNS)}
    return coerce_signal_frame(pd.DataFrame(data, columns=list(SIGNAL_COLUMNS), dtype=object))


@dataclass(frozen=True)
class LeanProject:
    """What :func:`write_lean_project` wrote.

    Attributes
    ----------
    directory : Path
    main : Path
        ``main.py``, the algorithm.
    parser : Path
        ``regimedesk_signals.py``, the CSV parsing ``main.py`` imports.
    csv : Path
        The signal CSV.
    data_source : {'file', 'url', 'object-store'}
    location : str
        Path under LEAN's data folder, URL, or Object Store key the algorithm reads.
    tickers : dict
        RegimeDesk symbol -> traded equity ticker.
    start, end : str
        The algorithm's start (first row with an approved weight) and end (three weekdays
        after the last row, so its order still fills after a holiday) dates, ISO.
    """

    directory: Path
    main: Path
    parser: Path
    csv: Path
    data_source: str
    location: str
    tickers: dict[str, str]
    start: str
    end: str

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}


def lean_tickers(symbols: list[str] | tuple[str, ...], overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Equity ticker traded for each RegimeDesk symbol.

    Defaults: :data:`DEFAULT_TICKERS`, else the symbol itself when it is a plain ticker.

    Raises
    ------
    ValueError
        An override names a symbol not exported, a ticker is not a plain equity ticker,
        a symbol has no ticker, or two symbols map to one ticker.
    """
    overrides = {k.strip().upper(): v.strip().upper() for k, v in (overrides or {}).items()}
    unknown = sorted(set(overrides) - set(symbols))
    if unknown:
        raise ValueError(f"--ticker: {', '.join(unknown)} not among the exported symbols {list(symbols)}")
    out = {}
    for s in symbols:
        t = overrides.get(s) or DEFAULT_TICKERS.get(s) or s
        if not _TICKER_RE.match(t):
            raise ValueError(f"--ticker: no tradable equity ticker for {s!r} ({t!r} is not one); "
                             f"pass --ticker {s}=TICKER")
        out[s] = t
    dup = {t for t in out.values() if list(out.values()).count(t) > 1}
    if dup:
        raise ValueError(f"--ticker: several symbols map to {', '.join(sorted(dup))}")
    return out


def lean_data_location(data_source: str, data_url: str | None = None, object_store_key: str | None = None) -> str:
    """Where the algorithm reads the CSV for ``data_source`` (validated).

    ``file``: the path under LEAN's data folder; ``url``: ``data_url`` (http or https);
    ``object-store``: ``object_store_key`` (default :data:`SIGNAL_CSV_NAME`).

    Raises
    ------
    ValueError
        Unknown source, a missing or malformed URL or key, or an option that does not
        belong to the source.
    """
    if data_source not in LEAN_DATA_SOURCES:
        raise ValueError(f"--data-source must be one of {', '.join(LEAN_DATA_SOURCES)}, not {data_source!r}")
    if data_source != "url" and data_url:
        raise ValueError("--data-url needs --data-source url")
    if data_source != "object-store" and object_store_key:
        raise ValueError("--object-store-key needs --data-source object-store")
    if data_source == "url":
        if not data_url or not re.match(r"^https?://\S+$", data_url):
            raise ValueError("--data-url: an http:// or https:// URL is needed with --data-source url")
        return data_url
    if data_source == "object-store":
        key = object_store_key or SIGNAL_CSV_NAME
        if not re.match(r"^[A-Za-z0-9_./-]+$", key) or key.startswith("/"):
            raise ValueError(f"--object-store-key: {key!r} is not a valid key (letters, digits, _ . / -)")
        return key
    return _LEAN_DATA_PATH


def write_lean_project(
    directory: str | Path,
    signals: pd.DataFrame,
    *,
    tickers: Mapping[str, str] | None = None,
    data_source: str = "file",
    data_url: str | None = None,
    object_store_key: str | None = None,
    cash: float = 1_000_000.0,
) -> LeanProject:
    """Write the signal CSV, ``regimedesk_signals.py`` and ``main.py`` into ``directory``.

    Parameters
    ----------
    directory : path
        Created if missing; existing files of the same names are replaced. A path that
        exists and is not a directory is a ``ValueError``.
    signals : DataFrame
        The export (:data:`SIGNAL_COLUMNS`), sorted by ``available_at``.
    tickers : mapping, optional
        Symbol -> equity ticker overrides (see :func:`lean_tickers`).
    data_source : {'file', 'url', 'object-store'}
        Where the algorithm reads the CSV: ``custom/regimedesk_signals.csv`` under LEAN's
        data folder, ``data_url``, or ``object_store_key`` (default
        ``regimedesk_signals.csv``) in the Object Store.
    cash : float
        Starting cash of the algorithm.

    Returns
    -------
    LeanProject
    """
    frame = coerce_signal_frame(signals)
    if frame.empty:
        raise ValueError("signals: no rows to export")
    if not (math.isfinite(cash) and cash > 0):
        raise ValueError(f"cash must be a positive number, got {cash!r}")
    location = lean_data_location(data_source, data_url, object_store_key)
    symbols = list(dict.fromkeys(frame["symbol"]))
    mapping = lean_tickers(symbols, tickers)
    decided = frame[frame["approved_weight"].notna()]
    if decided.empty:
        raise ValueError("signals: no row has an approved weight, so the algorithm would never trade")
    start = pd.Timestamp(decided["date"].min())
    last = pd.Timestamp(frame["date"].max())
    # three weekdays after the last row, so that its order fills at the next open even after a holiday
    end = last + pd.offsets.BDay(3)
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"directory: {directory} exists and is not a directory")
    directory.mkdir(parents=True, exist_ok=True)
    csv_path = directory / SIGNAL_CSV_NAME
    write_signal_csv(frame, csv_path)
    parser_path = directory / f"{_PARSER_MODULE}.py"
    parser_path.write_text(parser_source(), encoding="utf-8")
    main_path = directory / "main.py"
    main_path.write_text(
        algorithm_source(mapping, data_source=data_source, location=location, start=start.date().isoformat(),
                         end=end.date().isoformat(), cash=cash),
        encoding="utf-8",
    )
    return LeanProject(directory, main_path, parser_path, csv_path, data_source, location, mapping,
                       start.date().isoformat(), end.date().isoformat())


_PARSER_TEMPLATE = '''"""Parse RegimeDesk signal CSV lines (generated by `regimedesk export quantconnect`).

Plain Python, no LEAN import: main.py uses it inside LEAN, and it can be tested anywhere.
Missing values are empty fields; floats are written exactly (shortest round-trip form);
times are ISO-8601 UTC. The column meanings are in RegimeDesk's docs/export.md.
"""

import csv
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Dict, List, Optional, Union

COLUMNS = {columns}
FLOAT_COLUMNS = frozenset({floats})

Value = Union[str, float, None]


@dataclass(frozen=True)
class SignalRow:
    """One CSV row: every column parsed, plus the fields the algorithm uses typed."""

    values: Dict[str, Value]
    symbol: str
    bar_start: datetime  # naive UTC
    available_at: datetime  # naive UTC: the end_time of the data point
    close: float
    target_weight: Optional[float]
    approved_weight: Optional[float]


def utc_naive(text: str) -> datetime:
    """ISO-8601 with an offset -> naive datetime in UTC."""
    stamp = datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        raise ValueError("time without a UTC offset: " + repr(text))
    return stamp.astimezone(timezone.utc).replace(tzinfo=None)


def parse_fields(fields: List[str]) -> SignalRow:
    """Parse the fields of one data row."""
    if len(fields) != len(COLUMNS):
        raise ValueError("expected %d fields, got %d" % (len(COLUMNS), len(fields)))
    values: Dict[str, Value] = {{}}
    for name, text in zip(COLUMNS, fields):
        if text == "":
            values[name] = None
        elif name in FLOAT_COLUMNS:
            values[name] = float(text)
        else:
            values[name] = text
    close = values["close"]
    if not isinstance(close, float):
        raise ValueError("close is missing")
    return SignalRow(
        values=values,
        symbol=fields[COLUMNS.index("symbol")],
        bar_start=utc_naive(fields[COLUMNS.index("bar_start")]),
        available_at=utc_naive(fields[COLUMNS.index("available_at")]),
        close=close,
        target_weight=_float(values["target_weight"]),
        approved_weight=_float(values["approved_weight"]),
    )


def _float(v: Value) -> Optional[float]:
    return v if isinstance(v, float) else None


def parse_line(line: str) -> Optional[SignalRow]:
    """A data row, or None for the header and blank lines."""
    text = line.strip()
    if not text or text.startswith(COLUMNS[0] + ","):
        return None
    return parse_fields(next(csv.reader([text])))


def matches_symbol(row_symbol: str, subscribed: str) -> bool:
    """True when a row belongs to the custom-data subscription named ``subscribed``."""
    a, b = row_symbol.upper(), subscribed.upper()
    return a == b or b.startswith(a + ".")
'''


def parser_source() -> str:
    """Source of ``regimedesk_signals.py`` (stdlib only)."""
    return _PARSER_TEMPLATE.format(columns=repr(SIGNAL_COLUMNS), floats=repr(_FLOATS))


_MAIN_TEMPLATE = '''# region imports
from AlgorithmImports import *
# endregion
"""RegimeDesk signals on QuantConnect (generated by `regimedesk export quantconnect`).

Each CSV row is a custom-data point stamped time = the bar's start and end_time = the bar's
close (``available_at``), so LEAN delivers it only after the bar has closed. On every row the
algorithm sends a market-on-open order that moves the mapped equity to the row's
gate-approved weight (times ALLOCATION): signals decided at a close trade at the next open.
Rows without an approved weight (before the policy first decides) are skipped.
"""
import os
from datetime import datetime
from typing import Any, Dict, Optional

from regimedesk_signals import matches_symbol, parse_line

#: RegimeDesk symbol -> equity ticker traded.
TICKERS: Dict[str, str] = {tickers}
#: 'file' (path under LEAN's data folder), 'url' or 'object-store' (key).
DATA_SOURCE = {data_source}
DATA_LOCATION = {location}
#: Share of equity per symbol: approved weights were checked on a one-symbol book each.
ALLOCATION = 1.0 / len(TICKERS)
START = {start}
END = {end}
CASH = {cash}


class RegimeDeskSignal(PythonData):
    """One row of the RegimeDesk signal CSV."""

    def get_source(self, config: SubscriptionDataConfig, date: datetime, is_live_mode: bool) -> SubscriptionDataSource:
        if DATA_SOURCE == "url":
            return SubscriptionDataSource(DATA_LOCATION, SubscriptionTransportMedium.REMOTE_FILE, FileFormat.CSV)
        if DATA_SOURCE == "object-store":
            return SubscriptionDataSource(DATA_LOCATION, SubscriptionTransportMedium.OBJECT_STORE, FileFormat.CSV)
        path = os.path.join(Globals.data_folder, DATA_LOCATION)
        return SubscriptionDataSource(path, SubscriptionTransportMedium.LOCAL_FILE, FileFormat.CSV)

    # LEAN documents None as "no data on this line"; the stubs declare BaseData.
    def reader(self, config: SubscriptionDataConfig, line: str, date: datetime, is_live_mode: bool) -> Optional[BaseData]:  # type: ignore[override]
        row = parse_line(line)
        if row is None or row.approved_weight is None or not matches_symbol(row.symbol, config.symbol.value):
            return None
        signal = RegimeDeskSignal()
        signal.symbol = config.symbol
        # Times are UTC: the subscription is added with TimeZones.UTC.
        signal.time = row.bar_start
        signal.end_time = row.available_at
        signal.value = row.close
        signal["approved_weight"] = row.approved_weight
        if row.target_weight is not None:
            signal["target_weight"] = row.target_weight
        return signal


class RegimeDeskAlgorithm(QCAlgorithm):
    """Holds each equity at its RegimeDesk gate-approved weight, trading at the next open."""

    def initialize(self) -> None:
        start = datetime.strptime(START, "%Y-%m-%d")
        end = datetime.strptime(END, "%Y-%m-%d")
        self.set_start_date(start.year, start.month, start.day)
        self.set_end_date(end.year, end.month, end.day)
        self.set_cash(CASH)
        self._equities: Dict[Symbol, Symbol] = {{}}
        for name, ticker in TICKERS.items():
            equity = self.add_equity(ticker, Resolution.DAILY).symbol
            signal = self.add_data(RegimeDeskSignal, name, Resolution.DAILY, TimeZones.UTC, False).symbol
            self._equities[signal] = equity
        self.set_benchmark(list(TICKERS.values())[0])

    def on_data(self, data: Slice) -> None:
        for signal_symbol, equity in self._equities.items():
            if not data.contains_key(signal_symbol):
                continue
            point: Any = data[signal_symbol]
            weight = float(point["approved_weight"]) * ALLOCATION
            self._rebalance(equity, weight)

    def _rebalance(self, equity: Symbol, weight: float) -> None:
        # A newer signal replaces an order of an older one that has not filled yet.
        self.transactions.cancel_open_orders(equity)
        quantity = self.calculate_order_quantity(equity, weight)
        if quantity != 0:
            self.market_on_open_order(equity, quantity, tag="regimedesk weight %.4f" % weight)
'''


def algorithm_source(tickers: Mapping[str, str], *, data_source: str, location: str, start: str, end: str,
                     cash: float) -> str:
    """Source of ``main.py`` for these settings (values inserted as Python literals)."""
    return _MAIN_TEMPLATE.format(
        tickers=repr(dict(tickers)), data_source=repr(data_source), location=repr(location),
        start=repr(start), end=repr(end), cash=repr(float(cash)),
    )
