"""Working state of the long-running processes, kept apart from the audit journal.

The journal (:class:`integrations.Journal`) is the append-only record of what happened. What a
process reads back to decide what to do next lives here instead, one SQLite file per process:

* :class:`LiveStateStore` (``live_state.sqlite``): every live session (spec, process id,
  heartbeat, feed state) and every bar it claimed. A bar is claimed once (primary key
  ``(session, bar_time)``): this is what keeps ``regimedesk live`` exactly-once across restarts.
* :class:`ScheduleStateStore` (``schedule_state.sqlite``): every execution of a scheduled job,
  including fire times recorded as missed. ``regimedesk schedule`` catches up from it after
  downtime; ``schedule --history`` prints it.

Upgrading a home whose journal still holds these tables (journal schema version 1): a store
opened with ``legacy_journal`` moves its tables out of that file on open. It takes the
journal's write lock (no journal writer can add a row in between), copies every row into its
own file in one transaction and commits, then drops the tables from the journal and stamps the
journal with schema version 2, so an older RegimeDesk refuses the journal instead of starting
over with empty tables (and processing bars again). A crash between the two commits is
harmless: the copy is ``INSERT OR IGNORE`` on the rows' keys, so the next open copies nothing
twice and then drops the tables. Stop live sessions and the scheduler before upgrading: an
older process still running would lose its tables under it (and fail loudly).

Both stores share the journal's conventions: WAL, ISO-8601 UTC timestamps, JSON columns through
:func:`analytics.json_safe`, and every text written goes through :func:`integrations.redact`.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from integrations._errors import IntegrationError
from integrations._journal import _dumps, _iso, _mapping, _text, _utcnow
from integrations._redact import redact
from integrations._sqlite import apply_schema, open_database

__all__ = ["LiveStateStore", "ScheduleStateStore", "StateStoreError"]

log = logging.getLogger(__name__)

# The journal version from which on the working state is not in the journal; an older
# RegimeDesk (which reads up to version 1) then refuses the file.
_JOURNAL_WITHOUT_WORKING_STATE = 2

_LIVE_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER PRIMARY KEY,
    applied_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS live_sessions (
    session       TEXT PRIMARY KEY,
    spec          TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    pid           INTEGER,
    status        TEXT NOT NULL,
    heartbeat_at  TEXT,
    feed_state    TEXT NOT NULL DEFAULT 'ok',
    note          TEXT
);
CREATE TABLE IF NOT EXISTS live_bars (
    session      TEXT NOT NULL,
    bar_time     TEXT NOT NULL,
    thread_id    TEXT NOT NULL,
    run_id       TEXT NOT NULL,
    status       TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    closes_at    TEXT NOT NULL,
    finished_at  TEXT,
    seconds      REAL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    error        TEXT,
    PRIMARY KEY (session, bar_time)
);
"""

_SCHEDULE_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER PRIMARY KEY,
    applied_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS job_runs (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id         TEXT,
    ts             TEXT NOT NULL,
    job            TEXT NOT NULL,
    scheduled_for  TEXT,
    started_at     TEXT NOT NULL,
    finished_at    TEXT NOT NULL,
    status         TEXT NOT NULL,
    detail         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS job_runs_job ON job_runs(job, id);
"""


class StateStoreError(IntegrationError):
    """A working-state store cannot be opened, read or written (or its tables not moved)."""


class _StateStore:
    """One SQLite file of working state: connection, lock, redaction and the move from the journal."""

    _what = ""
    _schema = ""
    _version = 1
    # Table -> columns, as journal schema version 1 had them (the same here; ids are kept so
    # that rows keep their order and nothing refers to a row that changed its id).
    _moved: Mapping[str, tuple[str, ...]] = {}

    def __init__(
        self,
        path: str | Path,
        *,
        legacy_journal: str | Path | None = None,
        busy_timeout: float = 10.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._path = Path(path).expanduser()
        self._clock = clock or _utcnow
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = open_database(
            self._path, what=self._what, error=StateStoreError, setup=self._init_schema, busy_timeout=busy_timeout)
        self.moved: dict[str, int] = {}
        if legacy_journal is not None:
            try:
                self.moved = self._move_from(Path(legacy_journal).expanduser(), busy_timeout)
            except BaseException:
                self.close()
                raise

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    def _init_schema(self, conn: sqlite3.Connection) -> None:
        apply_schema(conn, self._schema, self._version, _iso(self._clock()), what=self._what, path=self._path,
                     error=StateStoreError)

    # ------------------------------------------------------------------ the move out of the journal

    def _legacy_tables(self, conn: sqlite3.Connection) -> list[str]:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return [t for t in self._moved if t in names]

    def _move_from(self, journal: Path, busy_timeout: float) -> dict[str, int]:
        """Move this store's tables out of ``journal`` (see the module docstring); rows copied per table."""
        if str(journal) == ":memory:" or not journal.is_file():
            return {}
        try:
            src = sqlite3.connect(str(journal), timeout=busy_timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise StateStoreError(f"cannot open journal {journal} to move the {self._what} out: {exc}") from exc
        try:
            if not self._legacy_tables(src):  # the usual case: already moved, no lock taken
                return {}
            src.execute("BEGIN IMMEDIATE")
            try:
                tables = self._legacy_tables(src)  # another process may have moved them meanwhile
                rows = {t: src.execute(f"SELECT {', '.join(self._moved[t])} FROM {t}").fetchall() for t in tables}
                self._copy(rows)  # committed before anything is dropped: a crash in between loses nothing
                for t in tables:
                    src.execute(f"DROP TABLE {t}")
                src.execute("INSERT OR IGNORE INTO schema_version (version, applied_at) VALUES (?, ?)",
                            (_JOURNAL_WITHOUT_WORKING_STATE, _iso(self._clock())))
                src.execute("COMMIT")
            except BaseException:
                src.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StateStoreError(f"cannot move the {self._what} out of journal {journal}: {exc}") from exc
        finally:
            src.close()
        moved = {t: len(r) for t, r in rows.items()}
        log.info("moved the %s out of journal %s into %s: %s", self._what, journal, self._path,
                 ", ".join(f"{n} {t} row(s)" for t, n in moved.items()))
        return moved

    def _copy(self, rows: Mapping[str, list[tuple[Any, ...]]]) -> None:
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                for table, data in rows.items():
                    cols = self._moved[table]
                    conn.executemany(f"INSERT OR IGNORE INTO {table} ({', '.join(cols)}) "
                                     f"VALUES ({', '.join('?' * len(cols))})", data)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    # ------------------------------------------------------------------ plumbing

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StateStoreError(f"{self._what} {self._path} is closed")
        return self._conn

    def _now(self) -> str:
        moment = self._clock()
        if moment.tzinfo is None:
            raise StateStoreError(f"the {self._what} clock returned a naive datetime")
        return _iso(moment)

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        # As in the journal: no registered secret reaches a row.
        params = tuple(redact(p) if isinstance(p, str) else p for p in params)
        with self._lock:
            conn = self._connection()
            try:
                return conn.execute(sql, params)
            except sqlite3.IntegrityError:
                raise
            except sqlite3.Error as exc:
                raise StateStoreError(f"{self._what} {self._path}: {exc}") from exc

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            conn = self._connection()
            try:
                cur = conn.execute(sql, params)
                names = [d[0] for d in cur.description]
                return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
            except sqlite3.Error as exc:
                raise StateStoreError(f"{self._what} {self._path}: {exc}") from exc

    def close(self) -> None:
        """Close the connection; further calls raise :class:`StateStoreError`. Idempotent."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self._path)!r})"


class LiveStateStore(_StateStore):
    """Live sessions and the bars they claimed (``regimedesk live``).

    Parameters
    ----------
    path : str or Path
        Database file (``settings.paths.live_state``); its folder is created if missing.
    legacy_journal : str or Path, optional
        A journal that may still hold ``live_sessions`` and ``live_bars`` (schema version 1):
        they are moved here on open (see the module docstring). Nothing happens when the file
        does not exist or no longer has them.
    busy_timeout : float, default 10.0
        Seconds to wait for another process's write lock before failing.
    clock : callable, optional
        Returns the current time as an aware ``datetime`` (default: the system clock in UTC).

    Attributes
    ----------
    moved : dict of str to int
        Rows moved out of ``legacy_journal`` by this open, per table (empty when none).

    Raises
    ------
    StateStoreError
        If the file cannot be opened, is from a newer RegimeDesk, or the tables cannot be moved.

    Notes
    -----
    Thread-safe (one connection, one lock); several processes may open the same file.
    """

    _what = "live state"
    _schema = _LIVE_SCHEMA
    _moved = {
        "live_sessions": ("session", "spec", "started_at", "pid", "status", "heartbeat_at", "feed_state", "note"),
        "live_bars": ("session", "bar_time", "thread_id", "run_id", "status", "received_at", "closes_at",
                      "finished_at", "seconds", "attempts", "error"),
    }

    def __enter__(self) -> LiveStateStore:
        return self

    def open_live_session(self, session: str, spec: Mapping[str, Any], pid: int) -> None:
        """Mark ``session`` running in process ``pid`` (created on first use, kept across restarts)."""
        now = self._now()
        self._execute(
            "INSERT INTO live_sessions (session, spec, started_at, pid, status, heartbeat_at) "
            "VALUES (?, ?, ?, ?, 'running', ?) ON CONFLICT(session) DO UPDATE SET spec = excluded.spec, "
            "started_at = excluded.started_at, pid = excluded.pid, status = 'running', "
            "heartbeat_at = excluded.heartbeat_at",
            (_text("session", session), _dumps(_mapping("spec", spec)), now, int(pid), now),
        )

    def live_heartbeat(self, session: str, *, feed_state: str | None = None, note: str | None = None) -> None:
        """Stamp the session's heartbeat (and its feed state / note when given)."""
        sets, params = ["heartbeat_at = ?"], [self._now()]
        if feed_state is not None:
            sets.append("feed_state = ?")
            params.append(feed_state)
        if note is not None:
            sets.append("note = ?")
            params.append(note)
        self._execute(f"UPDATE live_sessions SET {', '.join(sets)} WHERE session = ?", (*params, session))

    def close_live_session(self, session: str, status: str, note: str | None = None) -> None:
        """Record how the session's process ended (``stopped``, ``finished``, ``failed``)."""
        self._execute("UPDATE live_sessions SET status = ?, note = ?, heartbeat_at = ? WHERE session = ?",
                      (_text("status", status), note, self._now(), session))

    def live_sessions(self) -> list[dict[str, Any]]:
        """Every live session, most recently started first (``spec`` parsed)."""
        rows = self._query("SELECT * FROM live_sessions ORDER BY started_at DESC")
        return [{**r, "spec": json.loads(r["spec"])} for r in rows]

    def claim_live_bar(self, session: str, bar_time: str, thread_id: str, run_id: str, *,
                       received_at: datetime, closes_at: str, status: str = "started") -> dict[str, Any] | None:
        """Record that ``session`` handles ``bar_time``; None if new, else the existing row.

        One row per ``(session, bar_time)`` (primary key): a bar can be claimed once, so a
        restart finds it and continues that bar's run instead of starting a second one.
        """
        try:
            self._execute(
                "INSERT INTO live_bars (session, bar_time, thread_id, run_id, status, received_at, closes_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (_text("session", session), _text("bar_time", bar_time), thread_id, run_id, status,
                 _iso(received_at), closes_at),
            )
            return None
        except sqlite3.IntegrityError:
            return self.live_bar(session, bar_time)

    def live_bar(self, session: str, bar_time: str) -> dict[str, Any] | None:
        """The claim of ``bar_time`` by ``session``, or None."""
        rows = self._query("SELECT * FROM live_bars WHERE session = ? AND bar_time = ?", (session, bar_time))
        return rows[0] if rows else None

    def update_live_bar(self, session: str, bar_time: str, status: str, *, seconds: float | None = None,
                        error: str | None = None, attempts: int | None = None) -> None:
        """Set a claimed bar's status (``completed``, ``failed``, ``waiting``, ...)."""
        finished = self._now() if status != "started" else None
        self._execute(
            "UPDATE live_bars SET status = ?, finished_at = COALESCE(?, finished_at), seconds = COALESCE(?, seconds), "
            "error = ?, attempts = COALESCE(?, attempts) WHERE session = ? AND bar_time = ?",
            (_text("status", status), finished, seconds, error, attempts, session, bar_time),
        )

    def live_bars(self, session: str, *, status: str | None = None, limit: int | None = None,
                  newest_first: bool = False) -> list[dict[str, Any]]:
        """Claimed bars of ``session`` in bar order (or newest first)."""
        where, params = "WHERE session = ?", [session]
        if status is not None:
            where += " AND status = ?"
            params.append(status)
        order = "DESC" if newest_first else "ASC"
        sql = f"SELECT * FROM live_bars {where} ORDER BY bar_time {order}"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return self._query(sql, params)


class ScheduleStateStore(_StateStore):
    """Every execution of a scheduled job (``regimedesk schedule``).

    Parameters
    ----------
    path : str or Path
        Database file (``settings.paths.schedule_state``); its folder is created if missing.
    legacy_journal : str or Path, optional
        A journal that may still hold ``job_runs`` (schema version 1): it is moved here on open
        (see the module docstring).
    busy_timeout : float, default 10.0
    clock : callable, optional

    Attributes
    ----------
    moved : dict of str to int
        Rows moved out of ``legacy_journal`` by this open, per table (empty when none).

    Raises
    ------
    StateStoreError
        If the file cannot be opened, is from a newer RegimeDesk, or the table cannot be moved.
    """

    _what = "schedule state"
    _schema = _SCHEDULE_SCHEMA
    _moved = {"job_runs": ("id", "run_id", "ts", "job", "scheduled_for", "started_at", "finished_at", "status",
                           "detail")}

    def __enter__(self) -> ScheduleStateStore:
        return self

    def record_job_run(self, job: str, *, scheduled_for: datetime | None, started_at: datetime,
                       finished_at: datetime, status: str, run_id: str | None = None,
                       detail: Mapping[str, Any] | None = None) -> None:
        """Append one execution of a scheduled job (also a missed or skipped fire time).

        ``status`` is e.g. ``ok``, ``partial`` (ran, a delivery failed), ``error`` or ``missed``;
        ``run_id`` is the graph run the job started, if any (in the journal, when it got that far).
        """
        self._execute(
            "INSERT INTO job_runs (run_id, ts, job, scheduled_for, started_at, finished_at, status, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, self._now(), _text("job", job), _iso(scheduled_for) if scheduled_for is not None else None,
             _iso(started_at), _iso(finished_at), _text("status", status), _dumps(dict(detail or {}))),
        )

    def job_runs(self, job: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """The latest executions of scheduled jobs (one job or all), newest first (``detail`` parsed)."""
        if limit < 1:
            raise ValueError("limit must be >= 1")
        where, params = ("WHERE job = ?", [job]) if job else ("", [])
        rows = self._query(f"SELECT job, scheduled_for, started_at, finished_at, status, run_id, detail "
                           f"FROM job_runs {where} ORDER BY id DESC LIMIT ?", (*params, int(limit)))
        return [{**r, "detail": json.loads(r["detail"])} for r in rows]

    def last_scheduled_fire(self, job: str) -> str | None:
        """The latest fire time of ``job`` that was run or recorded as missed (ISO), or None."""
        rows = self._query("SELECT MAX(scheduled_for) AS t FROM job_runs WHERE job = ? AND scheduled_for IS NOT NULL",
                           (job,))
        return rows[0]["t"] if rows else None
