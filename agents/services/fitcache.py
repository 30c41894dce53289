"""Fitted regime parameter sets kept between runs (``home/fit_cache.sqlite``).

``analytics.walk_forward_regimes`` refits on a fixed schedule and keys every refit by a
digest of all it depends on (model, schedule, seed, returns up to the refit). With this
cache a run that sees one more bar than the last one re-estimates only when a scheduled
refit falls on the new bar; every other parameter set is read back. The regime path is
identical to a run without the cache (tested), so caching cannot change a decision.

Values are pickled numpy-holding dataclasses written by this program into the user's own
home directory (the same trust as the checkpoint database). Rows written by another
RegimeDesk, numpy or Python version are ignored, and an unreadable row is a miss, never an
error: the cache can always be deleted.
"""

from __future__ import annotations

import pickle
import sqlite3
import sys
import threading
import warnings
from collections.abc import Iterator, MutableMapping
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analytics import RegimeDeskError, RegimeDeskWarning
from integrations import apply_schema, open_database

__all__ = ["FitCache", "FitCacheError", "FitCacheWarning", "open_fit_cache"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fits (
    key TEXT PRIMARY KEY, code TEXT NOT NULL, created_at TEXT NOT NULL, value BLOB NOT NULL);
"""


class FitCacheError(RegimeDeskError):
    """The fit cache file cannot be opened or is from a newer RegimeDesk."""


def _code_version() -> str:
    try:
        ours = metadata.version("regimedesk")
    except metadata.PackageNotFoundError:
        ours = "unknown"
    return f"regimedesk {ours}; numpy {np.__version__}; python {sys.version_info[0]}.{sys.version_info[1]}"


class FitCache(MutableMapping[str, Any]):
    """A dict of fitted parameter sets backed by SQLite, safe to share between threads.

    Parameters
    ----------
    path : str or Path or None
        SQLite file; ``None`` keeps the cache in memory only.
    """

    def __init__(self, path: str | Path | None) -> None:
        self.path = None if path is None else Path(path)
        self._mem: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._code = _code_version()
        self.hits = 0
        self.misses = 0
        self._conn: sqlite3.Connection | None = None
        if self.path is not None:
            self._conn = open_database(
                self.path, what="fit cache", error=FitCacheError,
                setup=lambda conn: apply_schema(conn, _SCHEMA, 1, pd.Timestamp.now(tz="UTC").isoformat(),
                                                what="fit cache", path=self.path, error=FitCacheError))

    def __getitem__(self, key: str) -> Any:
        with self._lock:
            if key in self._mem:
                self.hits += 1
                return self._mem[key]
            value = self._load(key)
            if value is None:
                self.misses += 1
                raise KeyError(key)
            self.hits += 1
            self._mem[key] = value
            return value

    def _load(self, key: str) -> Any:
        if self._conn is None:
            return None
        row = self._conn.execute("SELECT value FROM fits WHERE key = ? AND code = ?", (key, self._code)).fetchone()
        if row is None:
            return None
        try:
            return pickle.loads(row[0])  # noqa: S301 - our own file in the user's home, see module doc
        except Exception:  # noqa: BLE001 - a damaged row is a miss; the fit is simply redone
            return None

    def __setitem__(self, key: str, value: Any) -> None:
        with self._lock:
            self._mem[key] = value
            if self._conn is not None:
                self._conn.execute(
                    "INSERT OR REPLACE INTO fits (key, code, created_at, value) VALUES (?, ?, ?, ?)",
                    (key, self._code, pd.Timestamp.now(tz="UTC").isoformat(),
                     pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)),
                )

    def __delitem__(self, key: str) -> None:
        with self._lock:
            found = self._mem.pop(key, None) is not None
            if self._conn is not None:
                found = self._conn.execute("DELETE FROM fits WHERE key = ?", (key,)).rowcount > 0 or found
        if not found:
            raise KeyError(key)

    def _keys(self) -> list[str]:
        with self._lock:
            keys = dict.fromkeys(self._mem)
            if self._conn is not None:
                keys.update(dict.fromkeys(
                    r[0] for r in self._conn.execute("SELECT key FROM fits WHERE code = ?", (self._code,))))
        return list(keys)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class FitCacheWarning(RegimeDeskWarning):
    """The fit cache file could not be used; fits are estimated again."""


def open_fit_cache(path: str | Path) -> FitCache:
    """The fit cache at ``path``; a damaged file is set aside and the cache rebuilt, saying so.

    The cache only ever saves work: every value in it can be estimated again from history.
    A file that is not an SQLite database, or a damaged one, is renamed to
    ``<name>.damaged-<UTC time>`` (kept for inspection) and a new cache started; a file this
    version cannot use otherwise (e.g. written by a newer RegimeDesk) is left alone and this
    process keeps its fits in memory. Either way a :class:`FitCacheWarning` says what happened
    and that the next runs re-estimate their fits (same results, slower).
    """
    path = Path(path)
    try:
        return FitCache(path)
    except FitCacheError as exc:
        text = str(exc)
        damaged = any(s in text for s in ("not a database", "malformed", "file is encrypted"))
        if damaged and path.is_file():
            aside = path.with_name(f"{path.name}.damaged-{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%S}")
            path.rename(aside)
            for suffix in ("-wal", "-shm"):
                path.with_name(path.name + suffix).unlink(missing_ok=True)
            warnings.warn(f"{text}; moved it to {aside.name} and started a new fit cache: fits are estimated "
                          "again from history (same results, slower this once)", FitCacheWarning, stacklevel=2)
            return FitCache(path)
        warnings.warn(f"{text}; this process keeps its fits in memory only (estimated again from history)",
                      FitCacheWarning, stacklevel=2)
        return FitCache(None)
