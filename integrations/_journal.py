"""Append-only SQLite journal of runs, agent outputs, LLM exchanges, decisions and orders.

One file holds the record of every run: what each agent produced, every prompt sent to an
LLM and what came back (accepted or rejected), each decision, each risk-gate verdict, each
order sent to a broker and each fill, and the events of live sessions (feed silent, bar
failed, ...). Rows are only ever inserted; the single exception is
:meth:`Journal.finish_run`, which stamps the end of a run on its ``runs`` row.

The working state of the long-running processes (live sessions and their claimed bars, the
scheduler's job executions) is not in the journal but in :mod:`integrations._working_state`;
schema version 2 marks a journal without it (version 1 files may still hold those tables until
the working-state stores move them out).

The database runs in WAL mode so readers (``regimedesk journal``, the Telegram bot) do not block
a live run that is writing. One :class:`Journal` owns one connection, shared between threads
under a lock; several processes may open the same file (SQLite serialises their writes, and
waits up to ``busy_timeout`` seconds for a lock).

JSON columns are written with ``json.dumps(allow_nan=False)`` after :func:`json_safe` has
replaced NaN and infinities with ``null``; timestamps are ISO-8601 strings in UTC.

A last safety net for credentials: every text written (inserted or updated) goes through
:func:`integrations.redact`, so no row holds a secret registered with
:func:`integrations.register_secrets`, whatever an adapter let through.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from analytics import json_safe
from integrations._errors import IntegrationError
from integrations._redact import redact
from integrations._sqlite import apply_schema, open_database

__all__ = [
    "Journal",
    "RunRecord",
    "JournalError",
    "UnknownRunError",
    "json_safe",
    "JOURNAL_SCHEMA_VERSION",
]

#: Version of the table layout written by this code; stored in ``schema_version``.
#: 2: ``job_runs``, ``live_sessions`` and ``live_bars`` left for the working-state stores. A
#: version-1 file is stamped 2 when opened, so an older RegimeDesk no longer opens it and
#: recreates those tables empty (it would process live bars again).
JOURNAL_SCHEMA_VERSION = 2

_RUNNING = "running"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER PRIMARY KEY,
    applied_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id       TEXT PRIMARY KEY,
    thread_id    TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    status       TEXT NOT NULL,
    symbols      TEXT NOT NULL,
    params       TEXT NOT NULL,
    summary      TEXT,
    error        TEXT
);
CREATE TABLE IF NOT EXISTS agent_outputs (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id   TEXT NOT NULL REFERENCES runs(run_id),
    ts       TEXT NOT NULL,
    agent    TEXT NOT NULL,
    symbol   TEXT,
    output   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS llm_exchanges (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id            TEXT REFERENCES runs(run_id),
    ts                TEXT NOT NULL,
    agent             TEXT NOT NULL,
    symbol            TEXT,
    backend           TEXT NOT NULL,
    model             TEXT,
    prompt            TEXT NOT NULL,
    prompt_sha256     TEXT NOT NULL,
    response          TEXT,
    accepted          INTEGER NOT NULL,
    rejected_numbers  TEXT NOT NULL,
    latency_s         REAL NOT NULL,
    error             TEXT
);
CREATE TABLE IF NOT EXISTS decisions (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id    TEXT NOT NULL REFERENCES runs(run_id),
    ts        TEXT NOT NULL,
    symbol    TEXT NOT NULL,
    decision  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS verdicts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id           TEXT NOT NULL REFERENCES runs(run_id),
    ts               TEXT NOT NULL,
    symbol           TEXT NOT NULL,
    client_order_id  TEXT,
    verdict          TEXT NOT NULL,
    reasons          TEXT NOT NULL,
    order_json       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id           TEXT NOT NULL REFERENCES runs(run_id),
    ts               TEXT NOT NULL,
    client_order_id  TEXT NOT NULL,
    symbol           TEXT NOT NULL,
    side             TEXT NOT NULL,
    qty              REAL NOT NULL,
    status           TEXT NOT NULL,
    broker           TEXT NOT NULL,
    payload          TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS fills (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id           TEXT NOT NULL REFERENCES runs(run_id),
    ts               TEXT NOT NULL,
    client_order_id  TEXT NOT NULL,
    qty              REAL NOT NULL,
    price            REAL NOT NULL,
    fill_ts          TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS live_events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    session  TEXT NOT NULL,
    ts       TEXT NOT NULL,
    kind     TEXT NOT NULL,
    message  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS agent_outputs_run ON agent_outputs(run_id, id);
CREATE INDEX IF NOT EXISTS llm_exchanges_run ON llm_exchanges(run_id, id);
CREATE INDEX IF NOT EXISTS decisions_run ON decisions(run_id, id);
CREATE INDEX IF NOT EXISTS verdicts_run ON verdicts(run_id, id);
CREATE INDEX IF NOT EXISTS orders_run ON orders(run_id, id);
CREATE INDEX IF NOT EXISTS orders_client_id ON orders(client_order_id);
CREATE INDEX IF NOT EXISTS fills_run ON fills(run_id, id);
CREATE INDEX IF NOT EXISTS runs_started ON runs(started_at);
"""

# Child tables in the order show_run reports them, with their JSON columns.
_CHILD_TABLES: dict[str, tuple[str, ...]] = {
    "agent_outputs": ("output",),
    "llm_exchanges": ("rejected_numbers",),
    "decisions": ("decision",),
    "verdicts": ("reasons", "order_json"),
    "orders": ("payload",),
    "fills": (),
}


class JournalError(IntegrationError):
    """The journal cannot be opened, read or written (or was asked for something impossible)."""


class UnknownRunError(JournalError):
    """No run with the given id exists in the journal."""


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """One row of the ``runs`` table.

    Attributes
    ----------
    run_id, thread_id : str
        The run and the LangGraph thread it ran under.
    started_at, finished_at : str or None
        ISO-8601 UTC timestamps; ``finished_at`` is None while the run is open.
    status : str
        ``'running'`` until :meth:`Journal.finish_run` sets the final status.
    symbols : tuple of str
    error : str or None
    """

    run_id: str
    thread_id: str
    started_at: str
    finished_at: str | None
    status: str
    symbols: tuple[str, ...]
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (``symbols`` as a list)."""
        out = dataclasses.asdict(self)
        out["symbols"] = list(self.symbols)
        return out



def _dumps(value: Any) -> str:
    return json.dumps(json_safe(value), allow_nan=False, ensure_ascii=False)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _text(name: str, value: object, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _number(name: str, value: object, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    if positive and v <= 0:
        raise ValueError(f"{name} must be > 0, got {v}")
    if not positive and v < 0:
        raise ValueError(f"{name} must be >= 0, got {v}")
    return v


def _mapping(name: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping, got {type(value).__name__}")
    return value


def _strings(name: str, value: object) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a list of strings, got {type(value).__name__}")
    for item in value:
        if not isinstance(item, str):
            raise TypeError(f"{name} must contain only strings, got {item!r}")
    return list(value)


def _timestamp(name: str, value: str | datetime) -> str:
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{name} must be an ISO-8601 timestamp, got {value!r}") from None
    elif isinstance(value, datetime):
        moment = value
    else:
        raise TypeError(f"{name} must be an ISO-8601 string or datetime, got {type(value).__name__}")
    if moment.tzinfo is None:
        raise ValueError(f"{name} must carry a time zone (e.g. '+00:00' or 'Z'), got {value!r}")
    return _iso(moment)


class Journal:
    """Append-only SQLite record of runs and everything that happened in them.

    Parameters
    ----------
    path : str or Path
        Database file; its folder is created if missing. The schema is created on first open.
    busy_timeout : float, default 10.0
        Seconds to wait for another process's write lock before failing.
    clock : callable, optional
        Returns the current time as an aware ``datetime`` (default: the system clock in UTC).

    Raises
    ------
    JournalError
        If the file cannot be opened or was written by a newer schema version.

    Notes
    -----
    Thread-safe: one connection per instance, every statement under one lock. Use as a context
    manager or call :meth:`close`.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout: float = 10.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._path = Path(path).expanduser()
        self._clock = clock or _utcnow
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = open_database(
            self._path, what="journal", error=JournalError, setup=self._init_schema, busy_timeout=busy_timeout
        )

    # ------------------------------------------------------------------ plumbing

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    def _init_schema(self, conn: sqlite3.Connection) -> None:
        applied_at = _iso(self._clock())

        def stamp(c: sqlite3.Connection) -> None:
            c.execute("INSERT OR IGNORE INTO schema_version (version, applied_at) VALUES (?, ?)",
                      (JOURNAL_SCHEMA_VERSION, applied_at))

        apply_schema(conn, _SCHEMA, JOURNAL_SCHEMA_VERSION, applied_at,
                     what="journal", path=self._path, error=JournalError, then=stamp)

    def _now(self) -> str:
        moment = self._clock()
        if moment.tzinfo is None:
            raise JournalError("the journal clock returned a naive datetime")
        return _iso(moment)

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        # Every write passes here: no registered secret may reach a row (JSON stays valid:
        # a secret and its JSON-escaped form are replaced by ``***``).
        params = tuple(redact(p) if isinstance(p, str) else p for p in params)
        with self._lock:
            if self._conn is None:
                raise JournalError(f"journal {self._path} is closed")
            try:
                return self._conn.execute(sql, params)
            except sqlite3.IntegrityError:
                raise
            except sqlite3.Error as exc:
                raise JournalError(f"journal {self._path}: {exc}") from exc

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            if self._conn is None:
                raise JournalError(f"journal {self._path} is closed")
            try:
                cur = self._conn.execute(sql, params)
                names = [d[0] for d in cur.description]
                return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
            except sqlite3.Error as exc:
                raise JournalError(f"journal {self._path}: {exc}") from exc

    def _insert(self, table: str, run_id: str | None, row: Mapping[str, Any]) -> None:
        columns = ["run_id", "ts", *row]
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        try:
            self._execute(sql, (run_id, self._now(), *row.values()))
        except sqlite3.IntegrityError as exc:
            if run_id is not None and not self._run_exists(run_id):
                raise UnknownRunError(self._unknown(run_id)) from None
            raise JournalError(f"journal {self._path}: cannot write {table}: {exc}") from exc

    def _run_exists(self, run_id: str) -> bool:
        return bool(self._query("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)))

    def _unknown(self, run_id: str) -> str:
        return f"no run {run_id!r} in journal {self._path} (see `regimedesk journal list` for the ids)"

    def close(self) -> None:
        """Close the connection; further calls raise :class:`JournalError`. Idempotent."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Journal({str(self._path)!r})"

    # ------------------------------------------------------------------ runs

    def start_run(self, run_id: str, thread_id: str, symbols: list[str], params: dict) -> None:
        """Open a run with status ``'running'``.

        Parameters
        ----------
        run_id : str
            Unique id of the run.
        thread_id : str
            LangGraph thread id the run is checkpointed under.
        symbols : list of str
        params : dict
            The run's parameters (JSON-serialisable after :func:`json_safe`).

        Raises
        ------
        JournalError
            If a run with ``run_id`` already exists.
        """
        _text("run_id", run_id)
        _text("thread_id", thread_id)
        syms = _strings("symbols", symbols)
        payload = _dumps(_mapping("params", params))
        try:
            self._execute(
                "INSERT INTO runs (run_id, thread_id, started_at, status, symbols, params) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, thread_id, self._now(), _RUNNING, _dumps(syms), payload),
            )
        except sqlite3.IntegrityError:
            raise JournalError(f"run {run_id!r} already exists in journal {self._path}") from None

    def finish_run(
        self,
        run_id: str,
        status: str,
        summary: dict | None = None,
        error: str | None = None,
    ) -> None:
        """Stamp the end of a run: its final status, summary and error.

        Parameters
        ----------
        run_id : str
        status : str
            Final status, e.g. ``'completed'``, ``'failed'``, ``'interrupted'``; any non-empty
            string except ``'running'``.
        summary : dict, optional
        error : str, optional
            What went wrong, for a failed run.

        Raises
        ------
        UnknownRunError
            If no run has this id.

        Notes
        -----
        The one update in the journal. Calling it again (a resumed run finishing after an
        interruption) overwrites the previous end stamp.
        """
        _text("run_id", run_id)
        _text("status", status)
        if status == _RUNNING:
            raise ValueError("status must be a final status, not 'running'")
        _text("error", error, optional=True)
        summary_json = None if summary is None else _dumps(_mapping("summary", summary))
        cur = self._execute(
            "UPDATE runs SET finished_at = ?, status = ?, summary = ?, error = ? WHERE run_id = ?",
            (self._now(), status, summary_json, error, run_id),
        )
        if cur.rowcount == 0:
            raise UnknownRunError(self._unknown(run_id))

    # ------------------------------------------------------------------ records

    def record_agent_output(
        self, run_id: str, agent: str, symbol: str | None, output: dict
    ) -> None:
        """Append what an agent node produced (its state key) for one symbol or the portfolio.

        Raises
        ------
        UnknownRunError
            If the run was never started.
        """
        _text("run_id", run_id)
        self._insert(
            "agent_outputs",
            run_id,
            {
                "agent": _text("agent", agent),
                "symbol": _text("symbol", symbol, optional=True),
                "output": _dumps(_mapping("output", output)),
            },
        )

    def latest_agent_outputs(self, agent: str, *, exclude_run: str | None = None,
                             limit: int = 20) -> list[dict[str, Any]]:
        """The newest recorded outputs of ``agent``, newest first (``output`` parsed).

        Each item has ``run_id``, ``ts``, ``symbol`` and ``output``; ``exclude_run`` leaves
        that run's records out (a run looking at the runs before it).
        """
        rows = self._query(
            "SELECT run_id, ts, symbol, output FROM agent_outputs WHERE agent = ? AND run_id IS NOT ? "
            "ORDER BY id DESC LIMIT ?",
            (_text("agent", agent), exclude_run, int(limit)),
        )
        return [{**r, "output": json.loads(r["output"])} for r in rows]

    def record_llm_exchange(
        self,
        run_id: str | None,
        agent: str,
        symbol: str | None,
        *,
        backend: str,
        model: str | None,
        prompt: str,
        response: str | None,
        accepted: bool,
        rejected_numbers: list[str],
        latency_s: float,
        error: str | None = None,
    ) -> None:
        """Append one prompt sent to an LLM and what came back.

        Parameters
        ----------
        run_id : str or None
            The run, or None for an exchange outside any run (e.g. a one-off CLI command).
        agent : str
        symbol : str or None
        backend : str
            E.g. ``'openai'``.
        model : str or None
        prompt : str
            Everything sent (system and user messages); its SHA-256 is stored alongside.
        response : str or None
            The text returned, or None when the call failed.
        accepted : bool
            Whether the text was used (passed the grounding check).
        rejected_numbers : list of str
            Numbers in the response not found among the facts.
        latency_s : float
            Seconds the call took (>= 0).
        error : str, optional
            Why the call failed or the text was refused.

        Raises
        ------
        UnknownRunError
            If ``run_id`` is given but was never started.
        """
        _text("run_id", run_id, optional=True)
        if not isinstance(prompt, str):
            raise TypeError(f"prompt must be a string, got {type(prompt).__name__}")
        if response is not None and not isinstance(response, str):
            raise TypeError(f"response must be a string or None, got {type(response).__name__}")
        if not isinstance(accepted, bool):
            raise TypeError(f"accepted must be a bool, got {type(accepted).__name__}")
        self._insert(
            "llm_exchanges",
            run_id,
            {
                "agent": _text("agent", agent),
                "symbol": _text("symbol", symbol, optional=True),
                "backend": _text("backend", backend),
                "model": _text("model", model, optional=True),
                "prompt": prompt,
                "prompt_sha256": hashlib.sha256(prompt.encode("utf-8")).hexdigest(),
                "response": response,
                "accepted": int(accepted),
                "rejected_numbers": _dumps(_strings("rejected_numbers", rejected_numbers)),
                "latency_s": _number("latency_s", latency_s),
                "error": _text("error", error, optional=True),
            },
        )

    def record_decision(self, run_id: str, symbol: str, decision: dict) -> None:
        """Append the decision policy's output for one symbol.

        Raises
        ------
        UnknownRunError
            If the run was never started.
        """
        _text("run_id", run_id)
        self._insert(
            "decisions",
            run_id,
            {"symbol": _text("symbol", symbol), "decision": _dumps(_mapping("decision", decision))},
        )

    def record_verdict(
        self,
        run_id: str,
        symbol: str,
        client_order_id: str | None,
        verdict: str,
        reasons: list[str],
        order: dict,
    ) -> None:
        """Append the risk gate's verdict on one proposed order.

        Parameters
        ----------
        run_id, symbol : str
        client_order_id : str or None
            None when the order was rejected before an id was assigned.
        verdict : str
            E.g. ``'approved'``, ``'trimmed'``, ``'rejected'``.
        reasons : list of str
            Reason codes.
        order : dict
            The order as the gate saw it (or as trimmed).

        Raises
        ------
        UnknownRunError
            If the run was never started.
        """
        _text("run_id", run_id)
        self._insert(
            "verdicts",
            run_id,
            {
                "symbol": _text("symbol", symbol),
                "client_order_id": _text("client_order_id", client_order_id, optional=True),
                "verdict": _text("verdict", verdict),
                "reasons": _dumps(_strings("reasons", reasons)),
                "order_json": _dumps(_mapping("order", order)),
            },
        )

    def record_order(
        self,
        run_id: str,
        client_order_id: str,
        symbol: str,
        side: str,
        qty: float,
        status: str,
        broker: str,
        payload: dict,
    ) -> None:
        """Append an order event (submitted, accepted, cancelled, ...) as the broker reported it.

        Parameters
        ----------
        run_id, client_order_id, symbol : str
        side : {'buy', 'sell'}
            Case-insensitive; stored in lower case.
        qty : float
            Finite, >= 0.
        status : str
            The broker's order status.
        broker : str
            E.g. ``'paper'``, ``'alpaca'``.
        payload : dict
            The broker's answer or the request sent.

        Raises
        ------
        UnknownRunError
            If the run was never started.
        """
        _text("run_id", run_id)
        side_text = _text("side", side)
        assert side_text is not None
        if side_text.lower() not in ("buy", "sell"):
            raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
        self._insert(
            "orders",
            run_id,
            {
                "client_order_id": _text("client_order_id", client_order_id),
                "symbol": _text("symbol", symbol),
                "side": side_text.lower(),
                "qty": _number("qty", qty),
                "status": _text("status", status),
                "broker": _text("broker", broker),
                "payload": _dumps(_mapping("payload", payload)),
            },
        )

    def latest_orders(self, broker: str) -> dict[str, dict[str, Any]]:
        """The newest event of every order sent to ``broker``, keyed by client order id.

        Each value has ``client_order_id, symbol, side, qty, status, payload`` (payload parsed)
        and ``run_id``.
        """
        rows = self._query(
            "SELECT client_order_id, symbol, side, qty, status, payload, run_id FROM orders "
            "WHERE broker = ? ORDER BY id",
            (_text("broker", broker),),
        )
        latest: dict[str, dict[str, Any]] = {}
        for r in rows:
            latest[r["client_order_id"]] = {**r, "payload": json.loads(r["payload"])}
        return latest

    def record_fill(
        self, run_id: str, client_order_id: str, qty: float, price: float, ts: str | datetime
    ) -> None:
        """Append a (partial) fill of an order.

        Parameters
        ----------
        run_id, client_order_id : str
        qty : float
            Filled quantity, finite and > 0.
        price : float
            Fill price, finite and > 0.
        ts : str or datetime
            When the broker filled it; ISO-8601 with a time zone, stored in UTC.

        Raises
        ------
        UnknownRunError
            If the run was never started.
        """
        _text("run_id", run_id)
        self._insert(
            "fills",
            run_id,
            {
                "client_order_id": _text("client_order_id", client_order_id),
                "qty": _number("qty", qty, positive=True),
                "price": _number("price", price, positive=True),
                "fill_ts": _timestamp("ts", ts),
            },
        )

    def filled_qty(self, client_order_id: str) -> float:
        """Quantity of ``client_order_id`` journaled as filled so far."""
        rows = self._query("SELECT COALESCE(SUM(qty), 0) AS q FROM fills WHERE client_order_id = ?",
                           (_text("client_order_id", client_order_id),))
        return float(rows[0]["q"])

    # ------------------------------------------------------------------ live events

    def record_live_event(self, session: str, kind: str, message: str) -> None:
        """Append an event of a live session (feed silent or back, degraded, stopped, ...)."""
        self._execute("INSERT INTO live_events (session, ts, kind, message) VALUES (?, ?, ?, ?)",
                      (_text("session", session), self._now(), _text("kind", kind), _text("message", message)))

    def live_events(self, session: str | None = None, *, after_id: int = 0, limit: int = 50) -> list[dict[str, Any]]:
        """Live events with an id above ``after_id``, oldest first (all sessions or one)."""
        where, params = "WHERE id > ?", [int(after_id)]
        if session is not None:
            where += " AND session = ?"
            params.append(session)
        return self._query(f"SELECT * FROM live_events {where} ORDER BY id LIMIT ?", (*params, int(limit)))

    def latest_live_events(self, session: str, n: int = 5) -> list[dict[str, Any]]:
        """The ``n`` newest events of one live session, oldest first."""
        rows = self._query("SELECT * FROM live_events WHERE session = ? ORDER BY id DESC LIMIT ?", (session, int(n)))
        return rows[::-1]

    # ------------------------------------------------------------------ reading

    @staticmethod
    def _run_record(row: Mapping[str, Any]) -> RunRecord:
        return RunRecord(
            run_id=row["run_id"],
            thread_id=row["thread_id"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            status=row["status"],
            symbols=tuple(json.loads(row["symbols"])),
            error=row["error"],
        )

    def list_runs(self, limit: int = 20) -> list[RunRecord]:
        """The most recent runs, newest first.

        Parameters
        ----------
        limit : int, default 20
            At most this many (>= 1).

        Returns
        -------
        list of RunRecord
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive integer, got {limit!r}")
        rows = self._query(
            "SELECT * FROM runs ORDER BY started_at DESC, rowid DESC LIMIT ?", (limit,)
        )
        return [self._run_record(r) for r in rows]

    def get_run(self, run_id: str) -> RunRecord:
        """One run by id.

        Raises
        ------
        UnknownRunError
            If no run has this id.
        """
        return self._run_record(self._run_row(run_id))

    def _run_row(self, run_id: str) -> dict[str, Any]:
        _text("run_id", run_id)
        rows = self._query("SELECT * FROM runs WHERE run_id = ?", (run_id,))
        if not rows:
            raise UnknownRunError(self._unknown(run_id))
        return rows[0]

    def _children(self, table: str, run_id: str) -> list[dict[str, Any]]:
        rows = self._query(f"SELECT * FROM {table} WHERE run_id = ? ORDER BY id", (run_id,))
        out = []
        for row in rows:
            for column in _CHILD_TABLES[table]:
                row[column] = json.loads(row[column])
            if table == "llm_exchanges":
                row["accepted"] = bool(row["accepted"])
            if table == "verdicts":
                row["order"] = row.pop("order_json")
            row.pop("run_id")
            out.append(row)
        return out

    def show_run(self, run_id: str) -> dict[str, Any]:
        """Everything journaled for one run, JSON-serialisable, each list in insertion order.

        Returns
        -------
        dict
            ``{"run": {...}, "agent_outputs": [...], "llm_exchanges": [...], "decisions":
            [...], "verdicts": [...], "orders": [...], "fills": [...]}``; ``run`` holds the
            :class:`RunRecord` fields plus ``params`` and ``summary``; every row carries its
            ``id`` and the ``ts`` it was journaled at.

        Raises
        ------
        UnknownRunError
            If no run has this id.
        """
        row = self._run_row(run_id)
        run = self._run_record(row).to_dict()
        run["params"] = json.loads(row["params"])
        run["summary"] = None if row["summary"] is None else json.loads(row["summary"])
        out: dict[str, Any] = {"run": run}
        for table in _CHILD_TABLES:
            out[table] = self._children(table, run_id)
        return out

    def llm_exchanges(self, run_id: str) -> list[dict[str, Any]]:
        """The run's LLM exchanges in the order they happened.

        Raises
        ------
        UnknownRunError
            If no run has this id.
        """
        _text("run_id", run_id)
        if not self._run_exists(run_id):
            raise UnknownRunError(self._unknown(run_id))
        return self._children("llm_exchanges", run_id)
