"""Market-data sources: files, Polygon and Alpaca (the embedded data: ``integrations._builtin``).

Every source returns canonical bars (see ``analytics.bars``): a UTC ``DatetimeIndex``
named ``timestamp``, float columns ``open, high, low, close, volume``, intraday bars stamped
with their start, daily bars with their session date at 00:00 UTC. Sources deliver their
native timeframes only (minutes, hours, days); :class:`integrations.MarketData` builds weekly
bars, validates and caches.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import logging
import lzma
import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from analytics import shown
from analytics.bars import BAR_COLUMNS, Timeframe, empty_bars
from analytics.errors import DataQualityWarning
from analytics.validation import VALIDATION_RULES, ValidationPolicy, ValidationReport, validate_bars
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
    "FileSource",
    "PolygonSource",
    "AlpacaSource",
    "read_bar_file",
    "inspect_bar_file",
    "BarFileIssue",
    "BarFileInspection",
    "CELL_RULES",
]

log = logging.getLogger(__name__)
_NY = "America/New_York"

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


#: Rules of the cells :func:`inspect_bar_file` reports before validation: a time that cannot be
#: read, and a price or volume that is not a number. Both are errors: the row cannot be used.
CELL_RULES: tuple[str, ...] = ("bad_timestamp", "non_numeric")
_CELL_RANK = {rule: k for k, rule in enumerate((*CELL_RULES, *VALIDATION_RULES))}
#: File suffixes whose compression the line counter reads (pandas infers the same ones).
_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


@dataclass(frozen=True)
class _BadCell:
    rule: str
    row: int
    column: str
    message: str


@dataclass(frozen=True)
class _ParsedTable:
    """A raw table read cell by cell: UTC times (NaT where bad or missing), float columns
    (NaN where bad or empty), the bad cells, and the rows that are empty throughout."""

    index: pd.DatetimeIndex
    cols: dict[str, np.ndarray]
    bad: tuple[_BadCell, ...]
    blank: np.ndarray


def _epoch_index(arr: np.ndarray, what: str, rows: np.ndarray | None = None) -> pd.DatetimeIndex:
    """Epoch numbers to UTC times, in the one unit the bulk of the column is in.

    Each value's magnitude names the only unit in which it is a time between 1970 and
    2100 (seconds below 4.1e9, milliseconds below 4.1e12, microseconds below 4.1e15,
    nanoseconds below 4.1e18; the ranges do not overlap). The column's unit is the one most
    values have; a value of another unit, negative or beyond every range is an error naming
    its rows (0-based data rows; ``rows`` maps positions in ``arr`` to them) rather than a
    silently re-dated bar.
    """
    rows = np.arange(arr.size) if rows is None else rows
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise PermanentError(f"{what}: timestamp missing or not finite in {_rows_text(rows[bad])}")
    classes = np.full(arr.shape, -1)
    with np.errstate(invalid="ignore"):
        for k, (_, ns_per) in enumerate(_EPOCH_UNITS):
            top = _EPOCH_END_S * (10**9 // ns_per)
            classes[(classes == -1) & (arr >= 0) & (arr < top)] = k
    known = classes[classes >= 0]
    if known.size == 0:
        raise PermanentError(
            f"{what}: no timestamp is an epoch time between 1970 and 2100 in s, ms, us or ns "
            f"(first value {arr[0]:g}, {_rows_text(rows)})"
        )
    k = int(np.bincount(known).argmax())
    unit, ns_per = _EPOCH_UNITS[k]
    off = np.flatnonzero(classes != k)
    if off.size:
        raise PermanentError(
            f"{what}: timestamps are epoch {unit} but {_rows_text(rows[off])} "
            f"({', '.join(f'{v:g}' for v in arr[off[:3]])}{', ...' if off.size > 3 else ''}) "
            f"{'are not times' if off.size > 1 else 'is not a time'} in {unit} between 1970 and 2100 "
            "(out of range or another unit)"
        )
    nanos = np.round(arr * ns_per) if ns_per > 1 else np.round(arr)
    return pd.DatetimeIndex(pd.to_datetime(nanos.astype("int64"), unit="ns", utc=True))


def _missing(values: pd.Series) -> np.ndarray:
    """Cells that are empty: NaN/None, or text of blanks only."""
    empty = values.isna().to_numpy(dtype=bool, copy=True)
    if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
        text = values.astype("string").str.strip()
        empty |= (text == "").fillna(True).to_numpy(dtype=bool)
    return empty


def _timestamp_cells(
    values: pd.Series, timezone: str, what: str, blank: np.ndarray
) -> tuple[pd.DatetimeIndex, list[_BadCell]]:
    """The timestamp column as UTC times, NaT where a cell is bad or empty, and the bad cells.

    An empty cell in a row empty throughout is not reported here (validation drops such a bar);
    one in a row with prices is. Structural problems (true/false values, timezone offsets that
    differ between rows, epoch numbers of another unit) raise: they concern the column, not a cell.
    """
    column = str(values.name)
    if pd.api.types.is_bool_dtype(values):
        raise PermanentError(f"{what}: the timestamp column holds true/false values, not times")
    bad: list[_BadCell] = []
    if pd.api.types.is_numeric_dtype(values):
        arr = np.asarray(values, dtype="float64")
        ok = np.isfinite(arr)
        nanos = np.full(arr.size, np.iinfo("int64").min, dtype="int64")  # the int64 of NaT
        if ok.any():
            nanos[ok] = _epoch_index(arr[ok], what, np.flatnonzero(ok)).as_unit("ns").asi8
        index = pd.DatetimeIndex(nanos.view("datetime64[ns]")).tz_localize("UTC")
        bad_rows = np.flatnonzero(~ok & ~blank)
        bad += [_BadCell("bad_timestamp", int(r), column, "timestamp missing or not a finite number")
                for r in bad_rows]
        return index, bad
    try:
        # the cell-wise twin of to_datetime(format="mixed"): good cells parse the same
        index = pd.DatetimeIndex(pd.to_datetime(values, format="mixed", errors="coerce"))
    except (ValueError, TypeError) as exc:
        raise PermanentError(f"{what}: cannot parse timestamps ({exc})") from None
    unparsed = np.asarray(index.isna())
    if index.tz is None:
        index = index.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
    not_local = np.asarray(index.isna()) & ~unparsed
    index = index.tz_convert("UTC")
    wrong = np.flatnonzero((unparsed | not_local) & ~blank)
    empty = _missing(values.iloc[wrong])
    for r, is_empty in zip(wrong, empty, strict=True):
        if is_empty:
            msg = "timestamp missing"
        elif not_local[r]:
            msg = (f"{shown(str(values.iloc[r]))} is not one local time in {timezone} "
                   "(skipped or repeated at a daylight-saving change)")
        else:
            msg = f"cannot parse timestamp {shown(str(values.iloc[r]))}"
        bad.append(_BadCell("bad_timestamp", int(r), column, msg))
    return index, bad


def _number_cells(values: pd.Series) -> tuple[np.ndarray, list[_BadCell]]:
    """A price/volume column as floats, NaN where a cell is empty or not a number, and the
    cells that are not numbers (empty ones are left to validation's non_finite rule)."""
    try:
        return pd.to_numeric(values, errors="raise").to_numpy(dtype="float64"), []
    except (ValueError, TypeError):
        pass
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
    wrong = np.flatnonzero(np.isnan(numbers) & ~_missing(values))
    column = str(values.name)
    return numbers, [
        _BadCell("non_numeric", int(r), column, f"not a number: {shown(str(values.iloc[r]))}")
        for r in wrong
    ]


def _parse_table(raw: pd.DataFrame, timezone: str, where: str) -> _ParsedTable:
    """Read every cell of a raw table; raise only for problems of the whole file."""
    lower = {str(c).strip().lower(): c for c in raw.columns}
    ts_col = None
    if not isinstance(raw.index, pd.DatetimeIndex):
        ts_col = next((lower[n] for n in _TS_NAMES if n in lower), None)
        if ts_col is None:
            raise PermanentError(
                f"{where}: no timestamp column (looked for {', '.join(_TS_NAMES)}, any case)"
            )
    sources: dict[str, object] = {}
    for canon, names in _ALIASES.items():
        col = next((lower[n] for n in names if n in lower), None)
        if col is None:
            raise PermanentError(f"{where}: missing column {canon!r} (columns: {list(raw.columns)})")
        sources[canon] = col
    # rows empty throughout (trailing ",,,,," lines): kept for validation to drop, as always
    blank = np.logical_and.reduce([raw[c].isna().to_numpy() for c in sources.values()])

    bad: list[_BadCell] = []
    if ts_col is None:
        index = raw.index if raw.index.tz is not None else raw.index.tz_localize(timezone)
        index = index.tz_convert("UTC")
    else:
        blank[blank] = _missing(raw[ts_col][blank])
        index, bad = _timestamp_cells(raw[ts_col], timezone, where, blank)

    cols: dict[str, np.ndarray] = {}
    for canon, col in sources.items():
        cols[canon], wrong = _number_cells(raw[col])
        bad += wrong
    adj = next((lower[n] for n in _ADJ_NAMES if n in lower), None)
    if adj is not None:
        factor = pd.to_numeric(raw[adj], errors="coerce").to_numpy(float) / cols["close"]
        for k in ("open", "high", "low", "close"):
            cols[k] = cols[k] * factor
        cols["volume"] = cols["volume"] / factor
    bad.sort(key=lambda b: (b.row, _CELL_RANK[b.rule]))
    return _ParsedTable(pd.DatetimeIndex(index).as_unit("ns"), cols, tuple(bad), blank)


def _csv_lines(path: Path, n_rows: int) -> np.ndarray | None:
    """The 1-based line of the file on which each data row starts (the header is line 1 when
    the file does not begin with blank lines), or None when that cannot be told.

    pandas skips blank lines and lets a quoted cell span lines, so the row number alone does not
    give the line; the csv module reads the same records and counts lines. When the two do not
    agree on the number of rows (an unusual dialect, an unknown compression) no lines are given.
    """
    opener = _OPENERS.get(path.suffix.lower(), open)
    starts: list[int] = []
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as fh:
            reader = csv.reader(fh)
            done = 0
            for record in reader:
                start, done = done + 1, reader.line_num
                if len(record) <= 1 and not "".join(record).strip():
                    continue  # a blank line, which pandas skips
                starts.append(start)
    except (OSError, csv.Error, EOFError, lzma.LZMAError, ValueError):
        return None
    if len(starts) != n_rows + 1:
        return None
    return np.asarray(starts[1:], dtype="int64")


def _cell_text(cell: _BadCell, lines: np.ndarray | None) -> str:
    place = (f"line {int(lines[cell.row])} (data row {cell.row})" if lines is not None
             else f"data row {cell.row}")
    return f"{place}, column {shown(cell.column)}: {cell.message}"


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
    A row empty throughout is kept (NaN prices, no time) for validation to drop. This reader
    stops at the first bad cell; :func:`inspect_bar_file` lists every one.

    Raises
    ------
    PermanentError
        Unreadable or malformed file (also a path the system refuses: too long, a
        directory, no permission), implausible/mixed-unit epoch timestamps, a timestamp
        that cannot be read or a price/volume that is not a number (the message names the
        file, cut to :data:`PATH_SHOWN_CHARS` characters, the problem and the rows; for a bad
        cell of a CSV file also its line).
    """
    path = Path(path)
    where = _path_text(path)
    try:
        raw = _read_raw(path, where)
        table = _parse_table(raw, timezone, where)
        if table.bad:
            lines = _csv_lines(path, len(raw)) if _is_csv(path) else None
            more = len(table.bad) - 1
            tail = (f" ({more} more bad cell{'s' if more != 1 else ''}; "
                    "`regimedesk data check` lists every problem)") if more else ""
            raise PermanentError(f"{where}: {_cell_text(table.bad[0], lines)}{tail}")
    except OSError as exc:  # a name too long, a directory, no permission ...: never the raw path
        raise PermanentError(f"{where}: cannot read file ({exc.strerror or type(exc).__name__})") from None
    return _frame(table.index, table.cols)


@dataclass(frozen=True)
class BarFileIssue:
    """One problem of a bar file, located in the file.

    ``row`` is the 0-based data row (the first row under the header is 0); ``line`` is the
    1-based line of a CSV file as an editor counts it (the header is line 1), None for Parquet
    or when the lines cannot be told; ``column`` is the file's column name for a bad cell, None
    for a rule about the whole bar. ``action`` is ``'error'``, ``'repaired'`` or ``'flagged'``.
    """

    rule: str
    row: int
    line: int | None
    column: str | None
    timestamp: str | None
    message: str
    action: str

    def to_dict(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "row": self.row,
            "line": self.line,
            "column": self.column,
            "timestamp": self.timestamp,
            "message": self.message,
            "action": self.action,
        }


@dataclass(frozen=True)
class BarFileInspection:
    """Outcome of :func:`inspect_bar_file`.

    Attributes
    ----------
    path : str
        The file, as shown in messages.
    n_rows : int
        Data rows in the file.
    frame : DataFrame
        The rows whose cells all parsed, as canonical unvalidated bars.
    report : ValidationReport
        Validation of ``frame``; its rows are positions in ``frame``, not in the file.
    issues : tuple of BarFileIssue
        Every bad cell and every validation issue, located in the file, in file order.
    has_lines : bool
        Whether ``line`` is known (a CSV file whose lines could be counted).
    """

    path: str
    n_rows: int
    frame: pd.DataFrame
    report: ValidationReport
    issues: tuple[BarFileIssue, ...]
    has_lines: bool

    @property
    def errors(self) -> tuple[BarFileIssue, ...]:
        return tuple(i for i in self.issues if i.action == "error")

    @property
    def ok(self) -> bool:
        """True when the file is usable: no bad cell and no rule with policy ``error`` broken."""
        return not self.errors

    def counts(self) -> dict[str, int]:
        """Number of issues per rule (rules without issues omitted), in rule order."""
        out: dict[str, int] = {}
        for issue in sorted(self.issues, key=lambda i: _CELL_RANK.get(i.rule, len(_CELL_RANK))):
            out[issue.rule] = out.get(issue.rule, 0) + 1
        return out

    def summary(self) -> str:
        """One line for a person."""
        unread = self.n_rows - len(self.frame)
        rows = f"{self.n_rows} rows" + (f" ({unread} unreadable)" if unread else "")
        if not self.issues:
            return f"ok: {rows}, {self.report.n_output} bars, no issues"
        parts = ", ".join(f"{k}={v}" for k, v in self.counts().items())
        state = "FAILED" if self.errors else "ok with repairs/flags"
        return f"{state}: {rows}, {self.report.n_output} bars out; issues: {parts}"

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.path,
            "ok": self.ok,
            "n_rows": self.n_rows,
            "n_input": len(self.frame),
            "n_output": self.report.n_output,
            "counts": self.counts(),
            "issues": [i.to_dict() for i in self.issues],
        }


def inspect_bar_file(
    path: str | Path, timezone: str = "UTC", policy: ValidationPolicy | None = None
) -> BarFileInspection:
    """Read a bar file like :func:`read_bar_file`, but list every problem instead of stopping.

    Parameters
    ----------
    path : str or Path
        ``.csv`` (optionally compressed) or ``.parquet`` file.
    timezone : str, default 'UTC'
        Time zone of naive timestamps.
    policy : ValidationPolicy, optional
        Validation policies for the rows that parse; defaults to ``ValidationPolicy()``.

    Returns
    -------
    BarFileInspection
        The bad cells (a timestamp that cannot be read, a price or volume that is not a
        number: errors, the row left out) and the validation issues of the remaining rows
        (order, duplicates, non-finite, high/low, gaps, jumps ...), each with its data row, its
        CSV line and, for a cell, its column. No :class:`DataQualityWarning` is emitted: the
        inspection is the report.

    Raises
    ------
    PermanentError
        When the file as a whole cannot be read: missing, unreadable, of another type, no
        timestamp or price column, or an epoch timestamp column of mixed or implausible units.
    """
    path = Path(path)
    where = _path_text(path)
    try:
        raw = _read_raw(path, where)
        table = _parse_table(raw, timezone, where)
        lines = _csv_lines(path, len(raw)) if _is_csv(path) else None
    except OSError as exc:
        raise PermanentError(f"{where}: cannot read file ({exc.strerror or type(exc).__name__})") from None
    n = len(raw)
    keep = np.ones(n, dtype=bool)
    keep[[b.row for b in table.bad]] = False
    rows = np.flatnonzero(keep)
    frame = _frame(table.index[keep], {k: v[keep] for k, v in table.cols.items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        _, report = validate_bars(frame, policy, raise_on_error=False)

    def line(row: int) -> int | None:
        return None if lines is None else int(lines[row])

    issues = [  # a bad price still has a readable time, which helps find the row
        BarFileIssue(b.rule, b.row, line(b.row), b.column, _stamp_text(table.index[b.row]), b.message, "error")
        for b in table.bad
    ]
    for i in report.issues:
        row = int(rows[i.row])
        issues.append(BarFileIssue(i.rule, row, line(row), None, i.timestamp, i.message, i.action))
    issues.sort(key=lambda i: (i.row, _CELL_RANK.get(i.rule, len(_CELL_RANK))))
    return BarFileInspection(where, n, frame, report, tuple(issues), lines is not None)


def _stamp_text(stamp: pd.Timestamp) -> str | None:
    return None if pd.isna(stamp) else stamp.isoformat()


def _path_text(path: str | Path) -> str:
    """A user-given path for a message: as it is, or cut by :func:`analytics.shown` when longer
    than :data:`PATH_SHOWN_CHARS` characters."""
    text = str(path)
    return text if len(text) <= PATH_SHOWN_CHARS else shown(text, PATH_SHOWN_CHARS)


def _is_csv(path: Path) -> bool:
    suffixes = "".join(path.suffixes).lower()
    return not (suffixes.endswith(".parquet") or suffixes.endswith(".pq"))


def _read_raw(path: Path, where: str) -> pd.DataFrame:
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
    return raw


#: Suffix of the daily companion of an intraday file: ``SPX.1D.csv`` beside ``SPX.csv``, or the
#: ``data.file.files`` key ``"SPX.1D"``.
_COMPANION = ".1D"
_DAY = Timeframe(1, "D")


class FileSource(BarSource):
    """Bars from ``DIRECTORY/SYMBOL.csv`` or ``DIRECTORY/SYMBOL.parquet``, or named files.

    Parameters
    ----------
    directory : Path, optional
        Folder searched for ``<SYMBOL>.parquet``, ``<SYMBOL>.csv``, ``<symbol>.csv`` ...
    files : dict, optional
        Explicit ``SYMBOL -> path`` entries; they win over the directory. With an intraday
        ``timeframe`` the key ``"SYMBOL.1D"`` names the symbol's daily companion file.
    timezone : str
        Time zone of naive timestamps in intraday files. Daily files hold sessions: a naive
        date is the session date as written, whatever the zone.
    timeframe : str
        The bar length the files hold (default 1D).

    Notes
    -----
    An intraday source (``timeframe`` in minutes or hours) also serves daily bars, which an
    intraday session needs for its daily regimes, statistics and ML signal: each symbol has a
    daily companion file, ``<SYMBOL>.1D.parquet``, ``<SYMBOL>.1D.csv`` or ``<SYMBOL>.1D.csv.gz``
    in ``directory`` (the stems tried as for :meth:`path_for`), or the ``files`` entry
    ``"SYMBOL.1D"``, which wins. Its rows are sessions: a naive time is read as the session date
    written (``2019-01-02``; ``timezone`` is the intraday files' zone and does not move daily
    dates), an aware time or an epoch number gives its UTC date, as in a daily source with
    ``timezone = "UTC"``. Weekly bars are built from the daily ones by :class:`MarketData`.
    A daily source (``timeframe`` 1D) serves its own files' bars only.
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
        return timeframe == self.timeframe or (self.timeframe.intraday and timeframe == _DAY)

    def offers(self) -> str:
        if self.timeframe.intraday:
            return (f"{self.timeframe} bars (data.file.timeframe), and 1D bars from SYMBOL.1D.csv or "
                    "SYMBOL.1D.parquet files beside them")
        return f"{self.timeframe} bars only (data.file.timeframe)"

    def path_for(self, symbol: str) -> Path:
        """The file holding ``symbol``'s bars.

        An explicitly listed file wins; otherwise the file must lie inside ``directory``:
        a symbol that would lead out of it (``../x``, an absolute path) is refused. An intraday
        source refuses a symbol ending in ``.1D``: that names a daily companion file.
        """
        self._refuse_companion_name(symbol)
        key = symbol.strip().upper()
        if key in self.files:
            return self.files[key]
        found = self._in_directory(symbol, "")
        if found is not None:
            return found
        where = f" in {self.directory}" if self.directory else ""
        name = key if len(key) <= 20 else "SYMBOL"
        raise UnknownSymbolError(
            f"no file for symbol {shown(symbol)}{where}; expected {name}.csv or {name}.parquet "
            "(set data.file.directory or data.file.files in the configuration)"
        )

    def daily_path_for(self, symbol: str) -> Path:
        """The daily companion file of ``symbol`` in an intraday source.

        The ``files`` entry ``"SYMBOL.1D"`` wins; otherwise ``<SYMBOL>.1D.parquet``,
        ``<SYMBOL>.1D.csv`` or ``<SYMBOL>.1D.csv.gz`` inside ``directory`` (a symbol that would
        lead out of it is refused, as by :meth:`path_for`).

        Raises
        ------
        NoDataError
            If the source is daily, or no companion file exists (the message names the file
            looked for).
        UnknownSymbolError
            If the symbol would lead out of ``directory`` or itself ends in ``.1D``.
        """
        if not self.timeframe.intraday:
            raise NoDataError(f"the file source holds {self.timeframe} bars: its files are the daily ones")
        self._refuse_companion_name(symbol)
        key = symbol.strip().upper()
        listed = self.files.get(key + _COMPANION)
        if listed is not None:
            return listed
        found = self._in_directory(symbol, _COMPANION)
        if found is not None:
            return found
        name = key if len(key) <= 20 else "SYMBOL"
        expected = f"{name}.1D.csv or {name}.1D.parquet"
        if self.directory is None:
            place = "; set data.file.directory"
        else:
            try:
                intraday: Path | None = self.path_for(symbol)
            except UnknownSymbolError:
                intraday = None
            place = f" beside {intraday.name}" if intraday is not None and intraday.parent == self.directory else ""
            place += f" in {_path_text(self.directory)}"
        raise NoDataError(
            f"no daily file for {name}: expected {expected}{place} "
            f"(an intraday file source needs one for the daily timeframes; or list it under data.file.files "
            f"as \"{name}.1D\")"
        )

    def _refuse_companion_name(self, symbol: str) -> None:
        if self.timeframe.intraday and symbol.strip().upper().endswith(_COMPANION):
            raise UnknownSymbolError(
                f"symbol {shown(symbol)} names a daily companion file, not a symbol "
                f"(data.file.timeframe is {self.timeframe}; ask for the symbol's 1D bars instead)"
            )

    def _in_directory(self, symbol: str, suffix: str) -> Path | None:
        """``<stem><suffix>.parquet|.csv|.csv.gz`` inside ``directory``, or None; refuses escapes."""
        if self.directory is None:
            return None
        key = symbol.strip().upper()
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
                candidate = self.directory / f"{stem}{suffix}{ext}"
                if candidate.exists():
                    return candidate
        return None

    def fetch(self, symbol, timeframe, start, end):
        if not self.supports(timeframe):
            if self.timeframe.intraday:
                raise NoDataError(f"the file source holds {self.timeframe} bars and 1D bars, not {timeframe}")
            raise NoDataError(f"the file source holds {self.timeframe} bars, not {timeframe}")
        path = self.daily_path_for(symbol) if timeframe != self.timeframe else self.path_for(symbol)
        # Daily rows are sessions: a naive date (or date and time) is the session date as
        # written, in any data.file.timezone (localising it there and taking the UTC date
        # moved every session east of UTC back a day); aware times and epochs give their UTC date.
        frame = read_bar_file(path, "UTC" if timeframe.unit == "D" else self.timezone)
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
