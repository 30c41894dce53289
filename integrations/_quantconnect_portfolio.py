"""Portfolio target-weight CSV and a generated QuantConnect (LEAN) algorithm that trades it.

The CSV has one row per (date, method, symbol), columns :data:`PORTFOLIO_COLUMNS`, described in
:data:`PORTFOLIO_COLUMN_SPEC`. Floats are written in their shortest round-trip form; the file
is replaced atomically. :func:`read_portfolio_csv` reads a file back into the same frame
:func:`write_portfolio_csv` was given.

:func:`write_portfolio_lean_project` writes a LEAN project next to the CSV:

``main.py``
    A ``QCAlgorithm`` with one ``PythonData`` subscription per asset whose rows are stamped
    ``end_time`` = ``available_at`` (the close the weight was decided at), so LEAN delivers a
    row only after that close. On a close with ``trade_due`` it sets the holdings of all
    assets to the targets at once; the data are daily closes, so the orders fill at the next
    session's open.
``regimedesk_portfolio.py``
    The CSV parsing, in plain Python without LEAN, imported by ``main.py`` (and by the tests).

The rows themselves come from ``agents.services.portfolio_export``. This module imports no
``agents`` code.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from integrations._document import write_atomic
from integrations._quantconnect import DEFAULT_TICKERS, lean_data_location, lean_tickers

__all__ = [
    "PORTFOLIO_CSV_NAME",
    "PORTFOLIO_PARSER_NAME",
    "PORTFOLIO_COLUMN_SPEC",
    "PORTFOLIO_COLUMNS",
    "INDEX_TICKERS",
    "PortfolioLeanProject",
    "write_portfolio_csv",
    "read_portfolio_csv",
    "portfolio_tickers",
    "write_portfolio_lean_project",
    "portfolio_parser_source",
    "portfolio_algorithm_source",
]

PORTFOLIO_CSV_NAME = "regimedesk_portfolio_weights.csv"
#: The module main.py imports to parse the CSV (``regimedesk_portfolio.py``).
PORTFOLIO_PARSER_NAME = "regimedesk_portfolio"
_LEAN_DATA_PATH = f"custom/{PORTFOLIO_CSV_NAME}"

#: Column -> (kind, meaning); kinds: date, utc (ISO-8601 UTC), text, float, flag (0 or 1).
PORTFOLIO_COLUMN_SPEC: dict[str, tuple[str, str]] = {
    "date": ("date", "session date of the daily close the decision was made at (YYYY-MM-DD)"),
    "available_at": ("utc", "when the row became known: that close, 16:00 America/New_York, in UTC; "
                            "LEAN's end_time"),
    "symbol": ("text", "RegimeDesk symbol of the asset (canonical name of the source)"),
    "target_weight": ("float", "target weight of the asset in force at that close (share of equity, "
                               ">= 0; the assets' weights of a date sum to at most the regime's gross cap)"),
    "trade_due": ("flag", "1: that close decided to trade the book to the targets (the backtest "
                          "trades at the next close); 0: the book drifts"),
    "method": ("text", "portfolio method: erc, mv, hrp or invvol"),
}
#: Columns of the portfolio CSV, in file order.
PORTFOLIO_COLUMNS: tuple[str, ...] = tuple(PORTFOLIO_COLUMN_SPEC)
#: Tradable tickers of the builtin indices (the ETFs that track them).
INDEX_TICKERS: dict[str, str] = {**DEFAULT_TICKERS, "SP500X": "SPY"}


def _cell(column: str, v: Any) -> str:
    kind = PORTFOLIO_COLUMN_SPEC[column][0]
    if kind == "float":
        x = float(v)
        if not math.isfinite(x):
            raise ValueError(f"{column} must be finite, got {x!r}")
        return repr(x)
    if kind == "flag":
        if v not in (0, 1) or isinstance(v, float):
            raise ValueError(f"{column} must be 0 or 1, got {v!r}")
        return str(int(v))
    text = str(v)
    if not text or any(ch in text for ch in ",\"\r\n"):
        raise ValueError(f"{column}: empty text or commas, quotes or line breaks in {text!r}")
    return text


def _csv_text(frame: pd.DataFrame) -> str:
    missing = [c for c in PORTFOLIO_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"frame: missing portfolio columns {missing}")
    buf = io.StringIO()
    buf.write(",".join(PORTFOLIO_COLUMNS) + "\n")
    cols = [frame[c].tolist() for c in PORTFOLIO_COLUMNS]
    for row in zip(*cols, strict=True):
        buf.write(",".join(_cell(c, v) for c, v in zip(PORTFOLIO_COLUMNS, row, strict=True)) + "\n")
    return buf.getvalue()


def write_portfolio_csv(frame: pd.DataFrame, path: str | Path | TextIO) -> None:
    """Write the rows with a header (:data:`PORTFOLIO_COLUMNS`); a path is replaced atomically.

    Raises
    ------
    ValueError
        A missing column, a non-finite weight, a ``trade_due`` other than 0/1, or text with a
        comma, quote or line break (nothing is written then).
    """
    text = _csv_text(frame)
    if isinstance(path, (str, Path)):
        write_atomic(Path(path), text.encode("utf-8"))
    else:
        path.write(text)


def read_portfolio_csv(path: str | Path) -> pd.DataFrame:
    """Read a file written by :func:`write_portfolio_csv` back into the same frame.

    Raises ``ValueError`` when the header is not :data:`PORTFOLIO_COLUMNS` or a line is malformed.
    """
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows or tuple(rows[0]) != PORTFOLIO_COLUMNS:
        raise ValueError(f"path: {path} is not a RegimeDesk portfolio CSV (unexpected header)")
    body = rows[1:]
    for i, r in enumerate(body, start=2):
        if len(r) != len(PORTFOLIO_COLUMNS):
            raise ValueError(f"path: line {i} of {path} has {len(r)} fields, expected {len(PORTFOLIO_COLUMNS)}")
    data: dict[str, Any] = {c: [r[j] for r in body] for j, c in enumerate(PORTFOLIO_COLUMNS)}
    data["target_weight"] = np.array(data["target_weight"], dtype=float)
    data["trade_due"] = np.array(data["trade_due"], dtype=int)
    return pd.DataFrame(data, columns=list(PORTFOLIO_COLUMNS))


def portfolio_tickers(symbols: Sequence[str], overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Equity ticker traded for each asset: ``overrides``, else :data:`INDEX_TICKERS`, else the symbol.

    Raises ``ValueError`` as :func:`integrations.lean_tickers` (unknown override, no plain ticker,
    two assets on one ticker).
    """
    over = {k.strip().upper(): v for k, v in (overrides or {}).items()}
    defaults = {s: INDEX_TICKERS[s] for s in symbols if s in INDEX_TICKERS and s not in over}
    return lean_tickers(list(symbols), {**defaults, **over})


@dataclass(frozen=True)
class PortfolioLeanProject:
    """What :func:`write_portfolio_lean_project` wrote.

    Attributes
    ----------
    directory, main, parser, csv : Path
    method : str
    data_source : {'file', 'url', 'object-store'}
    location : str
        Path under LEAN's data folder, URL or Object Store key main.py reads the CSV from.
    tickers : dict
        Asset -> traded equity ticker.
    benchmark : str or None
        Ticker of the algorithm's benchmark.
    start, end : str
        First decision date, and three weekdays after the last row (ISO).
    """

    directory: Path
    main: Path
    parser: Path
    csv: Path
    method: str
    data_source: str
    location: str
    tickers: dict[str, str]
    benchmark: str | None
    start: str
    end: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (paths as strings)."""
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}


def write_portfolio_lean_project(
    directory: str | Path,
    frame: pd.DataFrame,
    *,
    tickers: Mapping[str, str] | None = None,
    benchmark: str | None = None,
    data_source: str = "file",
    data_url: str | None = None,
    object_store_key: str | None = None,
    cash: float = 1_000_000.0,
) -> PortfolioLeanProject:
    """Write the portfolio CSV, ``regimedesk_portfolio.py`` and ``main.py`` into ``directory``.

    Parameters
    ----------
    directory : path
        Created if missing; files of the same names are replaced.
    frame : DataFrame
        One method's rows (:data:`PORTFOLIO_COLUMNS`).
    tickers : mapping, optional
        Asset -> ticker overrides (see :func:`portfolio_tickers`).
    benchmark : str, optional
        RegimeDesk symbol of the benchmark (``SP500X`` trades as SPY); default: none.
    data_source, data_url, object_store_key
        Where main.py reads the CSV (see :func:`integrations.lean_data_location`); the file
        default is ``custom/regimedesk_portfolio_weights.csv`` under LEAN's data folder.
    cash : float

    Raises
    ------
    ValueError
        No rows, several methods, bad tickers, data location or cash.
    """
    if frame.empty:
        raise ValueError("frame: no rows to export")
    methods = sorted(set(frame["method"]))
    if len(methods) != 1:
        raise ValueError(f"--portfolio: the algorithm trades one method, got {', '.join(methods)}")
    if not (math.isfinite(cash) and cash > 0):
        raise ValueError(f"cash must be a positive number, got {cash!r}")
    key = object_store_key or (PORTFOLIO_CSV_NAME if data_source == "object-store" else None)
    location = lean_data_location(data_source, data_url, key)
    if data_source == "file":
        location = _LEAN_DATA_PATH
    symbols = list(dict.fromkeys(frame["symbol"]))
    mapping = portfolio_tickers(symbols, tickers)
    bench = None if benchmark is None else INDEX_TICKERS.get(benchmark, mapping.get(benchmark, benchmark))
    start = pd.Timestamp(frame["date"].min())
    end = pd.Timestamp(frame["date"].max()) + pd.offsets.BDay(3)
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"directory: {directory} exists and is not a directory")
    text = _csv_text(frame)
    csv_path, parser_path, main_path = (directory / PORTFOLIO_CSV_NAME, directory / f"{PORTFOLIO_PARSER_NAME}.py",
                                        directory / "main.py")
    write_atomic(csv_path, text.encode("utf-8"))
    write_atomic(parser_path, portfolio_parser_source().encode("utf-8"))
    write_atomic(main_path, portfolio_algorithm_source(
        mapping, method=methods[0], benchmark=bench, data_source=data_source, location=location,
        start=start.date().isoformat(), end=end.date().isoformat(), cash=cash).encode("utf-8"))
    return PortfolioLeanProject(directory, main_path, parser_path, csv_path, methods[0], data_source, location,
                                mapping, bench, start.date().isoformat(), end.date().isoformat())


_PARSER_TEMPLATE = '''"""Parse RegimeDesk portfolio weight CSV lines (generated by `regimedesk export quantconnect --universe`).

Plain Python, no LEAN import: main.py uses it inside LEAN, and it can be tested anywhere.
Columns (RegimeDesk's docs/export.md): {columns}.
"""

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Optional

COLUMNS = {columns!r}


@dataclass(frozen=True)
class WeightRow:
    """One CSV row, typed."""

    date: str
    available_at: datetime  # naive UTC: the end_time of the data point
    symbol: str
    target_weight: float
    trade_due: bool
    method: str


def utc_naive(text: str) -> datetime:
    """ISO-8601 with an offset -> naive datetime in UTC."""
    stamp = datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        raise ValueError("time without a UTC offset: " + repr(text))
    return stamp.astimezone(timezone.utc).replace(tzinfo=None)


def parse_line(line: str) -> Optional[WeightRow]:
    """A data row, or None for the header and blank lines."""
    text = line.strip()
    if not text or text.startswith(COLUMNS[0] + ","):
        return None
    fields = text.split(",")
    if len(fields) != len(COLUMNS):
        raise ValueError("expected %d fields, got %d" % (len(COLUMNS), len(fields)))
    if fields[4] not in ("0", "1"):
        raise ValueError("trade_due must be 0 or 1, got " + repr(fields[4]))
    return WeightRow(date=fields[0], available_at=utc_naive(fields[1]), symbol=fields[2],
                     target_weight=float(fields[3]), trade_due=fields[4] == "1", method=fields[5])


def matches_symbol(row_symbol: str, subscribed: str) -> bool:
    """True when a row belongs to the custom-data subscription named ``subscribed``."""
    a, b = row_symbol.upper(), subscribed.upper()
    return a == b or b.startswith(a + ".")
'''


def portfolio_parser_source() -> str:
    """Source of ``regimedesk_portfolio.py`` (stdlib only)."""
    return _PARSER_TEMPLATE.format(columns=PORTFOLIO_COLUMNS)


_MAIN_TEMPLATE = '''# region imports
from AlgorithmImports import *
# endregion
"""RegimeDesk portfolio weights on QuantConnect (generated by `regimedesk export quantconnect --universe`).

The CSV holds, for each daily close from the first decision, every asset's target weight and
whether that close decided to trade (trade_due). Each row is a custom-data point of its asset
stamped end_time = the close (available_at), so LEAN delivers it only after that close. On a
close with trade_due the algorithm sets the holdings of all assets to the targets at once
(set_holdings with PortfolioTarget percentages): the data are daily closes, so the orders are
sent after the close and fill at the next bar LEAN has, the next session's open (RegimeDesk's
own backtest trades at the next close). Other closes leave the book to drift.
"""
import os
from datetime import datetime, timedelta
from typing import Any, Dict, List, Optional

from regimedesk_portfolio import matches_symbol, parse_line

#: RegimeDesk symbol -> equity ticker traded.
TICKERS: Dict[str, str] = {tickers}
METHOD = {method}
BENCHMARK: Optional[str] = {benchmark}
#: 'file' (path under LEAN's data folder), 'url' or 'object-store' (key).
DATA_SOURCE = {data_source}
DATA_LOCATION = {location}
START = {start}
END = {end}
CASH = {cash}


class RegimeDeskWeight(PythonData):
    """One row of the RegimeDesk portfolio CSV: an asset's target weight at a close."""

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
        if row is None or row.method != METHOD or not matches_symbol(row.symbol, config.symbol.value):
            return None
        point = RegimeDeskWeight()
        point.symbol = config.symbol
        # Times are UTC (the subscription is added with TimeZones.UTC): the session (09:30-16:00
        # New York) to its close, when the weight becomes known.
        point.time = row.available_at - timedelta(hours=6, minutes=30)
        point.end_time = row.available_at
        point.value = row.target_weight
        point["target_weight"] = row.target_weight
        point["trade_due"] = 1.0 if row.trade_due else 0.0
        return point


class RegimeDeskPortfolioAlgorithm(QCAlgorithm):
    """Trades the assets to RegimeDesk's portfolio targets on the closes that decided to trade."""

    def initialize(self) -> None:
        start = datetime.strptime(START, "%Y-%m-%d")
        end = datetime.strptime(END, "%Y-%m-%d")
        self.set_start_date(start.year, start.month, start.day)
        self.set_end_date(end.year, end.month, end.day)
        self.set_cash(CASH)
        self._equities: Dict[Symbol, Symbol] = {{}}
        for name, ticker in TICKERS.items():
            equity = self.add_equity(ticker, Resolution.DAILY).symbol
            signal = self.add_data(RegimeDeskWeight, name, Resolution.DAILY, TimeZones.UTC, False).symbol
            self._equities[signal] = equity
        if BENCHMARK is not None:
            self.set_benchmark(BENCHMARK)

    def on_data(self, data: Slice) -> None:
        targets: List[PortfolioTarget] = []
        due = False
        for signal_symbol, equity in self._equities.items():
            if not data.contains_key(signal_symbol):
                continue
            point: Any = data[signal_symbol]
            due = due or float(point["trade_due"]) == 1.0
            targets.append(PortfolioTarget(equity, float(point["target_weight"])))
        if not due:
            return
        if len(targets) != len(self._equities):
            self.debug("RegimeDesk: a close with trade_due lacks some assets' rows; not trading")
            return
        for equity in self._equities.values():
            self.transactions.cancel_open_orders(equity)
        self.set_holdings(targets, tag="regimedesk " + METHOD)
'''


def portfolio_algorithm_source(tickers: Mapping[str, str], *, method: str, benchmark: str | None,
                               data_source: str, location: str, start: str, end: str, cash: float) -> str:
    """Source of the portfolio ``main.py`` (values inserted as Python literals)."""
    return _MAIN_TEMPLATE.format(
        tickers=repr(dict(tickers)), method=repr(method), benchmark=repr(benchmark), data_source=repr(data_source),
        location=repr(location), start=repr(start), end=repr(end), cash=repr(float(cash)),
    )
