"""The working-state stores, and how an existing home's journal hands its working state over.

``journal_v1_schema.sql`` is the journal's DDL as RegimeDesk wrote it before the split (schema
version 1): a home made by that version is rebuilt from it, with rows as that version wrote them.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from integrations import (
    JOURNAL_SCHEMA_VERSION,
    IntegrationError,
    Journal,
    JournalError,
    LiveStateStore,
    ScheduleStateStore,
    StateStoreError,
    apply_schema,
    register_secrets,
)

V1_SCHEMA = (Path(__file__).with_name("journal_v1_schema.sql")).read_text(encoding="utf-8")
MOVED = ("job_runs", "live_sessions", "live_bars")
T0 = datetime(2026, 1, 5, 21, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _rows(path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _versions(path: Path) -> list[int]:
    return [r[0] for r in _rows(path, "SELECT version FROM schema_version ORDER BY version")]


# A live session of the old layout in the middle of its work: two bars completed, the third
# claimed and left ``started`` by a process that died in it; a scheduler that ran twice.
SESSION_ROW = ("replay-builtin-1d-sp500-paper-20181101", json.dumps({"symbols": ["SP500"], "feed": "replay"}),
               "2026-01-05T20:00:00.000000+00:00", 4242, "running", "2026-01-05T20:05:00.000000+00:00", "ok", None)
BAR_ROWS = [
    (SESSION_ROW[0], f"2018-11-0{d}T00:00:00+00:00", f"live-thread{d}", f"Lrun{d}", status,
     "2026-01-05T20:00:00.000000+00:00", f"2018-11-0{d + 1}T00:00:00+00:00",
     None if status == "started" else "2026-01-05T20:01:00.000000+00:00", None if status == "started" else 1.5,
     0 if status == "started" else 1, None)
    for d, status in ((1, "completed"), (2, "completed"), (5, "started"))
]
JOB_ROWS = [
    (3, "r-7", "2026-01-05T22:30:05.000000+00:00", "close-report", "2026-01-05T22:30:00.000000+00:00",
     "2026-01-05T22:30:00.000000+00:00", "2026-01-05T22:30:05.000000+00:00", "ok", json.dumps({"files": ["a.pdf"]})),
    (7, None, "2026-01-06T22:30:01.000000+00:00", "close-report", "2026-01-06T22:30:00.000000+00:00",
     "2026-01-06T22:30:00.000000+00:00", "2026-01-06T22:30:01.000000+00:00", "error", json.dumps({"error": "x"})),
]


def _v1_journal(path: Path) -> Path:
    """A journal.sqlite exactly as the version-1 code left it, with working state and a run."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(V1_SCHEMA)
    conn.execute("INSERT INTO schema_version VALUES (1, '2025-12-01T00:00:00.000000+00:00')")
    conn.execute("INSERT INTO runs VALUES ('Lrun1', 'live-thread1', '2026-01-05T20:00:01.000000+00:00', "
                 "'2026-01-05T20:01:00.000000+00:00', 'completed', '[\"SP500\"]', '{}', NULL, NULL)")
    conn.execute("INSERT INTO live_sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?)", SESSION_ROW)
    conn.executemany("INSERT INTO live_bars VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", BAR_ROWS)
    conn.executemany("INSERT INTO job_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", JOB_ROWS)
    conn.execute("INSERT INTO live_events (session, ts, kind, message) VALUES (?, ?, 'feed_silent', 'no bar')",
                 (SESSION_ROW[0], "2026-01-05T20:03:00.000000+00:00"))
    conn.close()
    return path


# ----------------------------------------------------------------------------- the stores


def test_a_bar_is_claimed_once_and_the_claims_survive_reopening(tmp_path):
    path = tmp_path / "live_state.sqlite"
    with LiveStateStore(path, clock=FakeClock()) as s:
        s.open_live_session("s1", {"feed": "replay"}, 11)
        assert s.claim_live_bar("s1", "2018-11-01T00:00:00+00:00", "t1", "r1", received_at=T0,
                                closes_at="2018-11-02T00:00:00+00:00") is None
        again = s.claim_live_bar("s1", "2018-11-01T00:00:00+00:00", "t-other", "r-other", received_at=T0,
                                 closes_at="2018-11-02T00:00:00+00:00")
        assert (again["thread_id"], again["run_id"], again["status"]) == ("t1", "r1", "started")
        s.claim_live_bar("s1", "2018-11-02T00:00:00+00:00", "t2", "r2", received_at=T0,
                         closes_at="2018-11-03T00:00:00+00:00")
        s.update_live_bar("s1", "2018-11-01T00:00:00+00:00", "completed", seconds=2.5, attempts=1)
        s.live_heartbeat("s1", feed_state="silent", note="waiting")
    with LiveStateStore(path) as s:
        (session,) = s.live_sessions()
        assert (session["spec"], session["pid"], session["status"], session["feed_state"], session["note"]) == (
            {"feed": "replay"}, 11, "running", "silent", "waiting")
        assert [b["bar_time"][:10] for b in s.live_bars("s1")] == ["2018-11-01", "2018-11-02"]
        assert [b["bar_time"][:10] for b in s.live_bars("s1", limit=1, newest_first=True)] == ["2018-11-02"]
        (done,) = s.live_bars("s1", status="completed")
        assert (done["seconds"], done["attempts"], done["finished_at"]) == (2.5, 1, "2026-01-05T21:00:03.000000+00:00")
        s.close_live_session("s1", "stopped", note="stop requested")
        assert s.live_sessions()[0]["status"] == "stopped"
        assert s.live_bars("other") == [] and s.live_bar("s1", "2019-01-01T00:00:00+00:00") is None
    s.close()  # idempotent
    with pytest.raises(StateStoreError, match="closed"):
        s.live_sessions()


def test_store_errors_are_integration_errors_and_newer_files_are_refused(tmp_path):
    path = tmp_path / "schedule_state.sqlite"
    ScheduleStateStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_version VALUES (2, 'later')")
    with pytest.raises(StateStoreError, match="schema version 2") as info:
        ScheduleStateStore(path)
    assert isinstance(info.value, IntegrationError)
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with pytest.raises(StateStoreError, match="cannot open"):
        LiveStateStore(folder)


def test_no_working_state_row_holds_a_registered_secret(tmp_path):
    secret = "sk-ECHO-0123456789abcdef"
    register_secrets([secret])
    try:
        with LiveStateStore(tmp_path / "live_state.sqlite") as live, \
                ScheduleStateStore(tmp_path / "schedule_state.sqlite") as sched:
            live.open_live_session("s1", {"feed": secret}, 1)
            live.live_heartbeat("s1", note=f"polygon: apiKey={secret}")
            sched.record_job_run("close", scheduled_for=None, started_at=T0, finished_at=T0, status="error",
                                 detail={"error": f"/bot{secret}/sendMessage"})
            assert sched.job_runs()[0]["detail"]["error"] == "/bot***/sendMessage"
            assert live.live_sessions()[0]["spec"] == {"feed": "***"}
        data = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
        assert secret.lower().encode() not in data.lower() and b"***" in data
    finally:
        register_secrets((), replace=True)


def test_a_new_journal_has_no_working_state_and_is_version_2(tmp_path):
    path = tmp_path / "journal.sqlite"
    Journal(path).close()
    assert JOURNAL_SCHEMA_VERSION == 2 and _versions(path) == [2]
    assert not _tables(path) & set(MOVED) and "live_events" in _tables(path)
    with LiveStateStore(tmp_path / "live_state.sqlite", legacy_journal=path) as s:
        assert s.moved == {}
    with ScheduleStateStore(tmp_path / "schedule_state.sqlite", legacy_journal=tmp_path / "absent.sqlite") as s:
        assert s.moved == {}
    assert not (tmp_path / "absent.sqlite").exists()  # a missing journal is not created


# ----------------------------------------------------------------------------- the upgrade


def test_a_version_1_journal_hands_its_working_state_over(tmp_path):
    journal = _v1_journal(tmp_path / "journal.sqlite")
    with LiveStateStore(tmp_path / "live_state.sqlite", legacy_journal=journal) as live:
        assert live.moved == {"live_sessions": 1, "live_bars": 3}
        # every column as the old version wrote it
        assert _rows(live.path, "SELECT * FROM live_sessions") == [SESSION_ROW]
        assert _rows(live.path, "SELECT * FROM live_bars ORDER BY bar_time") == BAR_ROWS
        # the live loop's view after the upgrade: the bar left started is resumed, the
        # completed ones are found claimed (not processed again), the next bar follows the last
        session = SESSION_ROW[0]
        assert [b["bar_time"] for b in live.live_bars(session, status="started")] == ["2018-11-05T00:00:00+00:00"]
        assert live.claim_live_bar(session, "2018-11-02T00:00:00+00:00", "x", "y", received_at=T0,
                                   closes_at="2018-11-03T00:00:00+00:00")["run_id"] == "Lrun2"
        assert live.live_bars(session, limit=1, newest_first=True)[0]["bar_time"] == "2018-11-05T00:00:00+00:00"
    # the live tables left the journal, the scheduler's has not been asked for yet
    assert _tables(journal) & set(MOVED) == {"job_runs"}
    assert _versions(journal) == [1, 2]
    with ScheduleStateStore(tmp_path / "schedule_state.sqlite", legacy_journal=journal) as sched:
        assert sched.moved == {"job_runs": 2}
        assert _rows(sched.path, "SELECT * FROM job_runs ORDER BY id") == JOB_ROWS  # ids kept
        assert sched.last_scheduled_fire("close-report") == "2026-01-06T22:30:00.000000+00:00"
        sched.record_job_run("close-report", scheduled_for=None, started_at=T0, finished_at=T0, status="ok")
        assert [r["status"] for r in sched.job_runs("close-report")] == ["ok", "error", "ok"]
        assert _rows(sched.path, "SELECT MAX(id) FROM job_runs") == [(8,)]  # after the moved ids
    assert not _tables(journal) & set(MOVED)
    # the audit record stayed where it was
    with Journal(journal) as j:
        assert j.get_run("Lrun1").status == "completed"
        assert [e["kind"] for e in j.live_events(SESSION_ROW[0])] == ["feed_silent"]
    assert _versions(journal) == [1, 2]


def test_the_move_happens_once(tmp_path):
    journal = _v1_journal(tmp_path / "journal.sqlite")
    path = tmp_path / "live_state.sqlite"
    LiveStateStore(path, legacy_journal=journal).close()
    with LiveStateStore(path, legacy_journal=journal) as live:
        assert live.moved == {}
        assert len(live.live_bars(SESSION_ROW[0])) == 3


def test_an_older_regimedesk_refuses_the_journal_once_anything_moved(tmp_path):
    journal = _v1_journal(tmp_path / "journal.sqlite")
    LiveStateStore(tmp_path / "live_state.sqlite", legacy_journal=journal).close()
    old = sqlite3.connect(journal, isolation_level=None)
    try:
        # what the version-1 Journal does on open: it would recreate the live tables empty
        with pytest.raises(JournalError, match="schema version 2; this RegimeDesk reads up to 1"):
            apply_schema(old, V1_SCHEMA, 1, "now", what="journal", path=journal, error=JournalError)
    finally:
        old.close()
    assert "live_bars" not in _tables(journal)


def test_opening_a_version_1_journal_stamps_it_version_2_and_keeps_its_tables_for_the_move(tmp_path):
    journal = _v1_journal(tmp_path / "journal.sqlite")
    with Journal(journal) as j:
        assert j.get_run("Lrun1").thread_id == "live-thread1"
    assert _versions(journal) == [1, 2]
    assert set(MOVED) <= _tables(journal)  # nothing is lost before a store takes them
    with ScheduleStateStore(tmp_path / "schedule_state.sqlite", legacy_journal=journal) as sched:
        assert sched.moved == {"job_runs": 2}


def test_a_crash_between_copy_and_drop_copies_nothing_twice(tmp_path, monkeypatch):
    journal = _v1_journal(tmp_path / "journal.sqlite")
    path = tmp_path / "live_state.sqlite"
    real_copy = LiveStateStore._copy

    def copy_then_die(self, rows):
        real_copy(self, rows)  # committed in the store ...
        raise KeyboardInterrupt("killed")  # ... and the process dies before the journal's drop commits

    monkeypatch.setattr(LiveStateStore, "_copy", copy_then_die)
    with pytest.raises(KeyboardInterrupt):
        LiveStateStore(path, legacy_journal=journal)
    monkeypatch.undo()
    assert {"live_sessions", "live_bars"} <= _tables(journal)  # the journal's transaction rolled back
    assert _rows(path, "SELECT COUNT(*) FROM live_bars") == [(3,)]
    with LiveStateStore(path, legacy_journal=journal) as live:
        assert live.moved == {"live_sessions": 1, "live_bars": 3}  # read again, inserted once
        assert _rows(path, "SELECT * FROM live_bars ORDER BY bar_time") == BAR_ROWS
        assert _rows(path, "SELECT * FROM live_sessions") == [SESSION_ROW]
    assert not {"live_sessions", "live_bars"} & _tables(journal)


def test_two_processes_upgrading_at_once_move_every_row_once(tmp_path):
    journal = _v1_journal(tmp_path / "journal.sqlite")
    path = tmp_path / "live_state.sqlite"
    # The file exists (two processes creating one SQLite file at the same instant is another
    # matter, shared by every store); what races here is the move out of the journal.
    LiveStateStore(path).close()
    start = threading.Barrier(4)
    moved: list[dict] = []
    errors: list[BaseException] = []

    def open_store():
        try:
            start.wait()
            with LiveStateStore(path, legacy_journal=journal, busy_timeout=30) as s:
                moved.append(s.moved)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(moved, key=len) == [{}, {}, {}, {"live_sessions": 1, "live_bars": 3}]
    assert _rows(path, "SELECT * FROM live_bars ORDER BY bar_time") == BAR_ROWS


def test_a_journal_locked_by_a_writer_is_a_store_error_and_nothing_moves(tmp_path):
    journal = _v1_journal(tmp_path / "journal.sqlite")
    writer = sqlite3.connect(journal, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StateStoreError, match="cannot move the live state out of journal"):
            LiveStateStore(tmp_path / "live_state.sqlite", legacy_journal=journal, busy_timeout=0.1)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert {"live_sessions", "live_bars"} <= _tables(journal)
    assert _rows(tmp_path / "live_state.sqlite", "SELECT COUNT(*) FROM live_bars") == [(0,)]
