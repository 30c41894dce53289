"""The last scan record of every symbol, per data source: what ``regimedesk scan`` compares with.

One SQLite file (WAL, like the other stores). A scan writes all its records in one transaction
after it finishes, so an interrupted scan leaves the previous state whole.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from analytics import json_safe
from integrations._errors import IntegrationError
from integrations._sqlite import apply_schema, open_database

__all__ = ["ScanStateStore", "ScanStateError"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS last_scan (
    source     TEXT NOT NULL,
    symbol     TEXT NOT NULL,
    scanned_at TEXT NOT NULL,
    record     TEXT NOT NULL,
    PRIMARY KEY (source, symbol)
)
"""


class ScanStateError(IntegrationError):
    """The scan state file cannot be opened or written."""


class ScanStateStore:
    """Last scan record per ``(source, symbol)``.

    Parameters
    ----------
    path : str or Path
        The SQLite file (created with its folder on first use).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = open_database(
            self.path, what="scan state", error=ScanStateError,
            setup=lambda conn: apply_schema(conn, _SCHEMA, 1, pd.Timestamp.now(tz="UTC").isoformat(),
                                            what="scan state", path=self.path, error=ScanStateError))

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> ScanStateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def load(self, source: str) -> dict[str, dict[str, Any]]:
        """``symbol -> record`` of the last scan of each symbol from ``source``."""
        with self._lock:
            rows = self._conn.execute("SELECT symbol, record FROM last_scan WHERE source = ?", (source,)).fetchall()
        return {sym: json.loads(rec) for sym, rec in rows}

    def save(self, source: str, records: Mapping[str, Mapping[str, Any]]) -> None:
        """Replace the records of these symbols, all in one transaction."""
        now = pd.Timestamp.now(tz="UTC").isoformat()
        rows = [(source, sym, now, json.dumps(json_safe(dict(rec)), sort_keys=True)) for sym, rec in records.items()]
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany("INSERT OR REPLACE INTO last_scan (source, symbol, scanned_at, record) "
                                       "VALUES (?, ?, ?, ?)", rows)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
