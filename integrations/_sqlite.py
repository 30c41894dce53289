"""Opening RegimeDesk's SQLite files: one connection setup and one versioned-schema step.

The journal, the paper broker and the risk-state store all keep durable state in SQLite with
the same settings: WAL (readers never block the writer), foreign keys on, ``synchronous =
NORMAL`` (durable across process crashes, which is what WAL needs), autocommit with explicit
``BEGIN IMMEDIATE`` transactions, and a ``schema_version`` table that refuses files written
by a newer RegimeDesk.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["open_database", "apply_schema"]


def open_database(
    path: Path,
    *,
    what: str,
    error: type[Exception],
    setup: Callable[[sqlite3.Connection], None],
    busy_timeout: float = 10.0,
) -> sqlite3.Connection:
    """Connect to ``path`` (``':memory:'`` allowed), set the pragmas and run ``setup``.

    A ``sqlite3.Error`` or ``OSError`` becomes ``error("cannot open {what} {path}: ...")``;
    the connection is closed on any failure.
    """
    conn: sqlite3.Connection | None = None
    try:
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: autocommit; multi-statement writes take explicit transactions.
        conn = sqlite3.connect(str(path), timeout=busy_timeout, check_same_thread=False, isolation_level=None)
        _set_wal(conn, busy_timeout)
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=NORMAL")
        setup(conn)
        return conn
    except BaseException as exc:
        if conn is not None:
            conn.close()
        if isinstance(exc, (sqlite3.Error, OSError)):
            raise error(f"cannot open {what} {path}: {exc}") from exc
        raise


def _set_wal(conn: sqlite3.Connection, busy_timeout: float) -> None:
    # Switching a new file to WAL needs an exclusive lock, and SQLite does not call the busy
    # handler for it: processes creating the same file at once get "database is locked" at
    # once. Retry with a growing pause, within the same busy timeout as every other statement.
    deadline = time.monotonic() + busy_timeout
    pause = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.2)


def apply_schema(
    conn: sqlite3.Connection,
    schema: str,
    version: int,
    applied_at: str,
    *,
    what: str,
    path: Path,
    error: type[Exception],
    then: Callable[[sqlite3.Connection], None] | None = None,
) -> None:
    """Create the tables of ``schema`` (which must define ``schema_version``) in one transaction.

    Records ``version`` on first use; refuses a file whose stored version is newer. ``then``
    runs inside the same transaction (e.g. to seed a row).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in schema.split(";"):
            if statement.strip():
                conn.execute(statement)
        stored = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
        if stored is None:
            conn.execute("INSERT INTO schema_version(version, applied_at) VALUES (?, ?)", (version, applied_at))
        elif stored > version:
            raise error(
                f"{what} {path} has schema version {stored}; this RegimeDesk reads up to {version} "
                "(upgrade RegimeDesk)"
            )
        if then is not None:
            then(conn)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
