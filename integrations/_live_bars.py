"""The live data cache: bars a live session has seen, in SQLite, readable as a bar source.

A live session back-fills each symbol's history from its upstream source once, then appends
every closed bar its feed delivers. Graph runs read bars through :class:`StoredBarSource`
(source name ``live:<upstream>``) with the bar's time as their as-of clock, so a run never
sees a bar after the one it handles, and a network source is asked for each new bar once,
not for its whole history on every bar.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pandas as pd

from analytics.bars import BAR_COLUMNS, Timeframe, empty_bars, is_close_only, resample_bars
from integrations._errors import IntegrationError, NoDataError
from integrations._sources import BarSource
from integrations._sqlite import apply_schema, open_database

__all__ = ["LiveBarStore", "StoredBarSource", "LIVE_SOURCE_PREFIX"]

#: Source names ``live:<upstream>`` read the live data cache filled from ``<upstream>``.
LIVE_SOURCE_PREFIX = "live:"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bars (
    upstream TEXT NOT NULL, symbol TEXT NOT NULL, timeframe TEXT NOT NULL, ts INTEGER NOT NULL,
    open REAL NOT NULL, high REAL NOT NULL, low REAL NOT NULL, close REAL NOT NULL, volume REAL NOT NULL,
    PRIMARY KEY (upstream, symbol, timeframe, ts)) WITHOUT ROWID;
"""


class LiveBarStoreError(IntegrationError):
    """The live data cache cannot be opened or written."""


def _ns(ts: pd.Timestamp) -> int:
    return int(pd.Timestamp(ts).tz_convert("UTC").value)


class LiveBarStore:
    """Bars per ``(upstream, symbol, timeframe)`` in ``home/live_bars.sqlite``.

    Parameters
    ----------
    path : str or Path
        SQLite file (created on first use).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        # Whole stored series by key, with SQLite's data_version when read: another
        # connection's commit changes it and drops them all; our own writes to a key extend
        # its kept series (new bars after the last one) or drop it (a revision).
        self._frames: dict[tuple[str, str, str], tuple[int, pd.DataFrame]] = {}
        self._conn = open_database(
            self.path, what="live data cache", error=LiveBarStoreError,
            setup=lambda conn: apply_schema(conn, _SCHEMA, 1, pd.Timestamp.now(tz="UTC").isoformat(),
                                            what="live data cache", path=self.path, error=LiveBarStoreError))

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def append(self, upstream: str, symbol: str, timeframe: str, frame: pd.DataFrame) -> int:
        """Store ``frame``'s bars; a bar already stored for that time is replaced (a revision).

        Returns the number of bars that were not stored before.
        """
        if frame.empty:
            return 0
        missing = set(BAR_COLUMNS) - set(frame.columns)
        if missing:
            raise ValueError(f"frame lacks columns {sorted(missing)}")
        values = frame[list(BAR_COLUMNS)].to_numpy(dtype=float)
        if not np.isfinite(values).all():
            if is_close_only(frame):
                raise ValueError(f"{symbol} {timeframe}: close-only bars (no open, high, low or volume, such as the "
                                 "embedded stock universe) cannot enter the live data cache, which keeps full "
                                 "OHLCV bars: the live loop does not run on close-only series")
            raise ValueError(f"{symbol} {timeframe}: bars must be finite to enter the live data cache")
        stamps = frame.index.tz_convert("UTC").as_unit("ns").asi8
        rows = [(upstream, symbol, timeframe, int(t), *map(float, v)) for t, v in zip(stamps, values, strict=True)]
        key = (upstream, symbol, timeframe)
        with self._lock:
            before = self._conn.execute(
                "SELECT COUNT(*) FROM bars WHERE upstream = ? AND symbol = ? AND timeframe = ?", key).fetchone()[0]
            kept = self._frames.pop(key, None)
            version = self._data_version()
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    "INSERT OR REPLACE INTO bars (upstream, symbol, timeframe, ts, open, high, low, close, volume) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            after = self._conn.execute(
                "SELECT COUNT(*) FROM bars WHERE upstream = ? AND symbol = ? AND timeframe = ?", key).fetchone()[0]
            if kept is not None and kept[0] == version and (kept[1].empty or stamps.min() > kept[1].index.asi8[-1]):
                # Only bars after the kept series: extend it with exactly what SQLite now holds
                # (the last of equal stamps wins, as with INSERT OR REPLACE).
                order = np.argsort(stamps, kind="stable")
                last = np.r_[stamps[order][1:] != stamps[order][:-1], True]
                take = order[last]
                new = pd.DataFrame(values[take], columns=list(BAR_COLUMNS),
                                   index=pd.DatetimeIndex(pd.to_datetime(stamps[take], utc=True), name="timestamp"))
                self._frames[key] = (version, pd.concat([kept[1], new]) if not kept[1].empty else new)
        return int(after - before)

    def frame(self, upstream: str, symbol: str, timeframe: str, start: pd.Timestamp | None = None,
              end: pd.Timestamp | None = None) -> pd.DataFrame:
        """Stored bars stamped in ``[start, end]`` (canonical bar frame, possibly empty).

        The whole series is read from SQLite once and kept until it changes (a write here or
        a commit by another process), so a live session does not read its history every bar.
        """
        key = (upstream, symbol, timeframe)
        with self._lock:
            version = self._data_version()
            kept = self._frames.get(key)
            if kept is None or kept[0] != version:
                if kept is not None:  # another process wrote: nothing kept is trusted
                    self._frames.clear()
                kept = (version, self._read(*key))
                self._frames[key] = kept
        whole = kept[1]
        if whole.empty:
            return empty_bars()
        mask = np.ones(len(whole), dtype=bool)
        if start is not None:
            mask &= whole.index.asi8 >= _ns(start)
        if end is not None:
            mask &= whole.index.asi8 <= _ns(end)
        return whole.loc[mask].copy()

    def _data_version(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def _read(self, upstream: str, symbol: str, timeframe: str) -> pd.DataFrame:
        rows = self._conn.execute(
            "SELECT ts, open, high, low, close, volume FROM bars WHERE upstream = ? AND symbol = ? "
            "AND timeframe = ? ORDER BY ts", (upstream, symbol, timeframe),
        ).fetchall()
        if not rows:
            return empty_bars()
        arr = np.asarray(rows, dtype=float)
        index = pd.DatetimeIndex(pd.to_datetime(np.asarray([r[0] for r in rows], dtype="int64"), utc=True),
                                 name="timestamp").as_unit("ns")
        return pd.DataFrame({c: arr[:, i + 1] for i, c in enumerate(BAR_COLUMNS)}, index=index)

    def last_time(self, upstream: str, symbol: str, timeframe: str) -> pd.Timestamp | None:
        """Stamp of the newest stored bar, or None."""
        with self._lock:
            row = self._conn.execute(
                "SELECT MAX(ts) FROM bars WHERE upstream = ? AND symbol = ? AND timeframe = ?",
                (upstream, symbol, timeframe)).fetchone()
        return None if row[0] is None else pd.Timestamp(int(row[0]), tz="UTC")

    def timeframes(self, upstream: str, symbol: str) -> list[str]:
        """Bar lengths stored for one symbol."""
        with self._lock:
            rows = self._conn.execute("SELECT DISTINCT timeframe FROM bars WHERE upstream = ? AND symbol = ?",
                                      (upstream, symbol)).fetchall()
        return sorted(r[0] for r in rows)


class StoredBarSource(BarSource):
    """A :class:`BarSource` over the live data cache of one upstream source.

    Parameters
    ----------
    store : LiveBarStore
    upstream : BarSource
        The source the cache was filled from (names symbols the same way).
    """

    cacheable = False

    def __init__(self, store: LiveBarStore, upstream: BarSource) -> None:
        self.store = store
        self.upstream = upstream
        self.name = LIVE_SOURCE_PREFIX + upstream.name

    def supports(self, timeframe: Timeframe) -> bool:
        return self.upstream.supports(timeframe)

    def offers(self) -> str:
        return f"the bars the live session cached from {self.upstream.name}: {self.upstream.offers()}"

    def canonical_symbol(self, symbol: str) -> str:
        return self.upstream.canonical_symbol(symbol)

    def fetch(self, symbol, timeframe, start, end):
        name = self.canonical_symbol(symbol)
        stored = self.store.timeframes(self.upstream.name, name)
        if not stored:
            raise NoDataError(f"the live data cache has no bars for {name} from {self.upstream.name} yet")
        if str(timeframe) in stored or timeframe.unit in ("D", "W"):
            return self.store.frame(self.upstream.name, name, str(timeframe), start, end)
        # An intraday length the feed does not deliver (5Min from a 1Min feed): built from
        # the finest stored intraday bars, complete buckets only.
        finer = [Timeframe.parse(t) for t in stored if Timeframe.parse(t).unit in ("Min", "H")]
        finer = [t for t in finer if t.step < timeframe.step and timeframe.step % t.step == pd.Timedelta(0)]
        if not finer:
            return empty_bars()
        base = min(finer, key=lambda t: t.step)
        frame = self.store.frame(self.upstream.name, name, str(base), start, end + timeframe.step)
        out = resample_bars(frame, base, timeframe)
        # resample_bars stamps a bucket with its last base slot; a source stamps intraday bars
        # with their start (a bar stamped t is available at t + step): the bucket's start.
        out.index = out.index + base.step - timeframe.step
        return out.loc[(out.index >= start) & (out.index <= end)]
