"""The SQLite journal: round trips, ordering, errors, NaN, reopening and concurrent writers."""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import threading
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from analytics import RegimeDeskError
from integrations._errors import IntegrationError
from integrations._journal import (
    JOURNAL_SCHEMA_VERSION,
    Journal,
    JournalError,
    RunRecord,
    UnknownRunError,
)


class FakeClock:
    """Advances one second per call, so every row has a distinct, known timestamp."""

    def __init__(self, start: datetime = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def journal(tmp_path):
    with Journal(tmp_path / "journal.sqlite", clock=FakeClock()) as j:
        yield j


def _fill_run(j: Journal, run_id: str = "r1") -> None:
    j.start_run(run_id, "thread-1", ["SP500", "NASDAQ"], {"mode": "paper", "lookback": 252})
    j.record_agent_output(run_id, "regime", "SP500", {"consensus": "bull", "p": 0.71})
    j.record_agent_output(run_id, "statistics", "SP500", {"hurst": 0.55})
    j.record_agent_output(run_id, "reporting", None, {"pages": 3})
    j.record_llm_exchange(
        run_id, "regime", "SP500", backend="openai", model="gpt-4o-mini", prompt="P1",
        response="Bull with 71%.", accepted=True, rejected_numbers=[], latency_s=0.25,
    )
    j.record_llm_exchange(
        run_id, "statistics", "SP500", backend="openai", model="gpt-4o-mini", prompt="P2",
        response="Hurst 0.9", accepted=False, rejected_numbers=["0.9"], latency_s=0.5,
        error="ungrounded: 0.9",
    )
    j.record_decision(run_id, "SP500", {"target_weight": 0.5, "orders": [{"side": "buy", "qty": 10}]})
    j.record_verdict(run_id, "SP500", "rd-r1-SP500-1", "approved", [], {"side": "buy", "qty": 10})
    j.record_verdict(run_id, "NASDAQ", None, "rejected", ["STALE_PRICE", "NAN_INPUT"], {"qty": 5})
    j.record_order(run_id, "rd-r1-SP500-1", "SP500", "BUY", 10, "submitted", "paper", {"type": "market"})
    j.record_order(run_id, "rd-r1-SP500-1", "SP500", "buy", 10.0, "filled", "paper", {"avg": 100.5})
    j.record_fill(run_id, "rd-r1-SP500-1", 4, 100.25, "2024-01-02T15:30:00Z")
    j.record_fill(run_id, "rd-r1-SP500-1", 6.0, 100.75, datetime(2024, 1, 2, 10, 31, tzinfo=timezone(timedelta(hours=-5))))


# ----------------------------------------------------------------------------- round trip


def test_every_record_type_round_trips_in_insertion_order(journal):
    _fill_run(journal)
    journal.finish_run("r1", "completed", summary={"orders": 1, "pnl": 1.5})
    shown = journal.show_run("r1")
    assert list(shown) == [
        "run", "agent_outputs", "llm_exchanges", "decisions", "verdicts", "orders", "fills"
    ]
    run = shown["run"]
    assert run["run_id"] == "r1" and run["thread_id"] == "thread-1"
    assert run["symbols"] == ["SP500", "NASDAQ"]
    assert run["params"] == {"mode": "paper", "lookback": 252}
    assert run["summary"] == {"orders": 1, "pnl": 1.5}
    assert run["status"] == "completed" and run["error"] is None
    assert run["started_at"] == "2024-01-02T03:04:07.000000+00:00"  # 06 went to schema_version
    assert run["finished_at"] > run["started_at"]

    outs = shown["agent_outputs"]
    assert [(o["agent"], o["symbol"]) for o in outs] == [
        ("regime", "SP500"), ("statistics", "SP500"), ("reporting", None)
    ]
    assert outs[0]["output"] == {"consensus": "bull", "p": 0.71}
    assert [o["id"] for o in outs] == sorted(o["id"] for o in outs)
    assert all(o["ts"].endswith("+00:00") for o in outs)

    llm = shown["llm_exchanges"]
    assert [x["accepted"] for x in llm] == [True, False]
    assert llm[1]["rejected_numbers"] == ["0.9"] and llm[1]["error"] == "ungrounded: 0.9"
    assert llm[0]["prompt_sha256"] == hashlib.sha256(b"P1").hexdigest()
    assert llm[0]["model"] == "gpt-4o-mini" and llm[0]["latency_s"] == 0.25
    assert journal.llm_exchanges("r1") == llm

    assert shown["decisions"][0]["decision"]["orders"] == [{"side": "buy", "qty": 10}]
    verdicts = shown["verdicts"]
    assert [v["verdict"] for v in verdicts] == ["approved", "rejected"]
    assert verdicts[1]["client_order_id"] is None
    assert verdicts[1]["reasons"] == ["STALE_PRICE", "NAN_INPUT"]
    assert verdicts[0]["order"] == {"side": "buy", "qty": 10}

    orders = shown["orders"]
    assert [o["status"] for o in orders] == ["submitted", "filled"]
    assert orders[0]["side"] == "buy"  # normalised
    assert orders[0]["qty"] == 10.0 and orders[1]["payload"] == {"avg": 100.5}

    fills = shown["fills"]
    assert [(f["qty"], f["price"]) for f in fills] == [(4.0, 100.25), (6.0, 100.75)]
    assert fills[0]["fill_ts"] == "2024-01-02T15:30:00.000000+00:00"
    assert fills[1]["fill_ts"] == "2024-01-02T15:31:00.000000+00:00"  # converted to UTC

    json.dumps(shown, allow_nan=False)  # JSON-serialisable as a whole


def test_runs_are_isolated_from_each_other(journal):
    _fill_run(journal, "a")
    journal.start_run("b", "thread-2", ["SP500"], {})
    journal.record_decision("b", "SP500", {"target_weight": 0.0})
    b = journal.show_run("b")
    assert len(b["decisions"]) == 1 and b["agent_outputs"] == [] and b["fills"] == []
    assert len(journal.show_run("a")["decisions"]) == 1


def test_list_runs_newest_first_with_limit(journal):
    for i in range(5):
        journal.start_run(f"r{i}", f"t{i}", ["SP500"], {"i": i})
    journal.finish_run("r1", "failed", error="data source down")
    runs = journal.list_runs()
    assert [r.run_id for r in runs] == ["r4", "r3", "r2", "r1", "r0"]
    assert [r.run_id for r in journal.list_runs(limit=2)] == ["r4", "r3"]
    r1 = journal.get_run("r1")
    assert isinstance(r1, RunRecord)
    assert (r1.status, r1.error, r1.symbols) == ("failed", "data source down", ("SP500",))
    assert journal.get_run("r0").status == "running" and journal.get_run("r0").finished_at is None
    with pytest.raises(ValueError, match="limit"):
        journal.list_runs(limit=0)


def test_same_timestamp_runs_keep_insertion_order(tmp_path):
    fixed = datetime(2024, 1, 1, tzinfo=UTC)
    with Journal(tmp_path / "j.sqlite", clock=lambda: fixed) as j:
        for run_id in ("x", "y", "z"):
            j.start_run(run_id, "t", [], {})
        assert [r.run_id for r in j.list_runs()] == ["z", "y", "x"]


def test_run_record_is_frozen(journal):
    journal.start_run("r", "t", ["SP500"], {})
    record = journal.get_run("r")
    with pytest.raises(AttributeError):
        record.status = "completed"  # type: ignore[misc]
    assert record.to_dict()["symbols"] == ["SP500"]


def test_finish_run_can_be_stamped_again_after_a_resume(journal):
    journal.start_run("r", "t", [], {})
    journal.finish_run("r", "interrupted")
    journal.finish_run("r", "completed", summary={"ok": True})
    assert journal.get_run("r").status == "completed"
    with pytest.raises(ValueError, match="running"):
        journal.finish_run("r", "running")


# ----------------------------------------------------------------------------- errors


def test_unknown_run_is_a_project_error_naming_the_run(journal):
    for call in (
        lambda: journal.get_run("nope"),
        lambda: journal.show_run("nope"),
        lambda: journal.llm_exchanges("nope"),
        lambda: journal.finish_run("nope", "completed"),
        lambda: journal.record_agent_output("nope", "regime", "SP500", {}),
        lambda: journal.record_decision("nope", "SP500", {}),
        lambda: journal.record_verdict("nope", "SP500", None, "rejected", [], {}),
        lambda: journal.record_order("nope", "c1", "SP500", "buy", 1, "new", "paper", {}),
        lambda: journal.record_fill("nope", "c1", 1, 10.0, "2024-01-01T00:00:00+00:00"),
        lambda: journal.record_llm_exchange(
            "nope", "regime", None, backend="openai", model=None, prompt="p", response=None,
            accepted=False, rejected_numbers=[], latency_s=0.0,
        ),
    ):
        with pytest.raises(UnknownRunError, match="'nope'") as info:
            call()
        assert isinstance(info.value, RegimeDeskError)
        assert isinstance(info.value, IntegrationError)
    assert journal.list_runs() == []  # nothing was written


def test_llm_exchange_outside_a_run_is_journaled(journal):
    journal.record_llm_exchange(
        None, "statistics", "SP500", backend="openai", model="m", prompt="p", response="r",
        accepted=True, rejected_numbers=[], latency_s=0.1,
    )
    conn = sqlite3.connect(journal.path)
    assert conn.execute("SELECT COUNT(*) FROM llm_exchanges WHERE run_id IS NULL").fetchone() == (1,)
    conn.close()


def test_duplicate_run_id_is_refused(journal):
    journal.start_run("r", "t", [], {})
    with pytest.raises(JournalError, match="already exists"):
        journal.start_run("r", "t", [], {})


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda j: j.start_run("", "t", [], {}), ValueError, "run_id"),
        (lambda j: j.start_run("r2", "t", "SP500", {}), TypeError, "symbols"),
        (lambda j: j.start_run("r2", "t", [], [1]), TypeError, "params"),
        (lambda j: j.record_order("r", "c", "SP500", "hold", 1, "new", "paper", {}), ValueError, "side"),
        (lambda j: j.record_order("r", "c", "SP500", "buy", -1, "new", "paper", {}), ValueError, "qty"),
        (lambda j: j.record_order("r", "c", "SP500", "buy", math.nan, "new", "paper", {}), ValueError, "qty"),
        (lambda j: j.record_fill("r", "c", 1, 0.0, "2024-01-01T00:00:00Z"), ValueError, "price"),
        (lambda j: j.record_fill("r", "c", 1, 10.0, "2024-01-01T00:00:00"), ValueError, "time zone"),
        (lambda j: j.record_fill("r", "c", 1, 10.0, "yesterday"), ValueError, "ISO-8601"),
        (lambda j: j.record_verdict("r", "SP500", None, "rejected", "STALE", {}), TypeError, "reasons"),
        (lambda j: j.record_agent_output("r", "regime", None, {"x": object()}), TypeError, "object"),
    ],
)
def test_bad_arguments_are_rejected_before_writing(journal, call, exc, match):
    journal.start_run("r", "t", [], {})
    with pytest.raises(exc, match=match):
        call(journal)
    shown = journal.show_run("r")
    assert all(shown[k] == [] for k in shown if k != "run")


def test_closed_journal_refuses_work(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    j.close()
    j.close()  # idempotent
    with pytest.raises(JournalError, match="closed"):
        j.list_runs()


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "j.sqlite"
    Journal(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_version VALUES (?, 'later')", (JOURNAL_SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(JournalError, match="schema version"):
        Journal(path)


def test_unopenable_path_is_a_journal_error(tmp_path):
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with pytest.raises(JournalError, match="cannot open"):
        Journal(folder)


# ----------------------------------------------------------------------------- NaN and JSON


def test_nan_and_infinity_become_null(journal):
    journal.start_run("r", "t", ["SP500"], {"threshold": math.inf})
    journal.record_agent_output(
        "r", "statistics", "SP500",
        {"hurst": math.nan, "vr": [1.0, -math.inf, np.float64("nan")], "n": np.int64(7),
         "nested": {"p": np.float32(0.5), "flag": np.bool_(True)}},
    )
    journal.finish_run("r", "completed", summary={"sharpe": float("nan")})
    shown = journal.show_run("r")
    assert shown["run"]["params"] == {"threshold": None}
    assert shown["run"]["summary"] == {"sharpe": None}
    assert shown["agent_outputs"][0]["output"] == {
        "hurst": None, "vr": [1.0, None, None], "n": 7, "nested": {"p": 0.5, "flag": True}
    }
    raw = sqlite3.connect(journal.path).execute("SELECT output FROM agent_outputs").fetchone()[0]
    assert "NaN" not in raw and "Infinity" not in raw


# ----------------------------------------------------------------------------- durability


def test_survives_reopening_the_file(tmp_path):
    path = tmp_path / "nested" / "journal.sqlite"  # the folder is created
    with Journal(path, clock=FakeClock()) as j:
        _fill_run(j)
        before = j.show_run("r1")
    with Journal(path) as j:
        assert j.show_run("r1") == before
        j.finish_run("r1", "completed")
        assert j.get_run("r1").status == "completed"
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(JOURNAL_SCHEMA_VERSION,)]
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()


def test_concurrent_writes_from_two_threads(tmp_path):
    path = tmp_path / "j.sqlite"
    shared = Journal(path)
    shared.start_run("r", "t", ["A", "B"], {})
    second = Journal(path)  # a second connection to the same file, as another process would
    per_thread = 150
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def writer(j: Journal, symbol: str) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                j.record_agent_output("r", "regime", symbol, {"i": i})
                j.record_fill("r", f"{symbol}-{i}", 1, 10.0 + i, "2024-01-01T00:00:00Z")
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)

    threads = [
        threading.Thread(target=writer, args=(shared, "A")),
        threading.Thread(target=writer, args=(shared, "B")),
        threading.Thread(target=writer, args=(second, "C")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    shown = shared.show_run("r")
    outs = shown["agent_outputs"]
    assert len(outs) == 3 * per_thread and len(shown["fills"]) == 3 * per_thread
    for symbol in "ABC":
        # each writer's own rows stay in the order it wrote them
        assert [o["output"]["i"] for o in outs if o["symbol"] == symbol] == list(range(per_thread))
    shared.close()
    second.close()


# ----------------------------------------------------------------------------- no secret in any row


SECRET = "sk-ECHO-0123456789abcdef"
SECRET_WITH_QUOTE = 'pw"ECHO\\0123456789'  # JSON escapes it: the escaped form is redacted too


def test_no_row_holds_a_registered_secret(tmp_path):
    from integrations import register_secrets

    register_secrets([SECRET, SECRET_WITH_QUOTE])
    try:
        path = tmp_path / "journal.sqlite"
        with Journal(path, clock=FakeClock()) as j:
            j.start_run("r1", "thread-1", ["SP500"], {"key": SECRET, "note": f"x{SECRET_WITH_QUOTE}y"})
            j.record_agent_output("r1", "regime", "SP500", {"error": f"HTTP 401: bad key {SECRET.upper()}"})
            j.record_llm_exchange("r1", "regime", "SP500", backend="openai", model="m", prompt="P",
                                  response=f"echo {SECRET}", accepted=False, rejected_numbers=[], latency_s=0.1,
                                  error=f"error: PermanentError: {SECRET}")
            j.record_live_event("s1", "feed_error", f"polygon: apiKey={SECRET}")
            j.finish_run("r1", "failed", summary={"why": SECRET}, error=f"RuntimeError: {SECRET}")
            shown = j.show_run("r1")
            assert shown["run"]["params"] == {"key": "***", "note": "x***y"}  # JSON stays valid
        data = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("journal"))
        for secret in (SECRET, SECRET_WITH_QUOTE, json.dumps(SECRET_WITH_QUOTE)[1:-1]):
            assert secret.lower().encode() not in data.lower()
        assert b"***" in data
    finally:
        register_secrets((), replace=True)


def test_latest_live_events_are_the_newest_of_one_session(journal):
    # 'live status' shows the last five events: after more than a page (50) of events it
    # used to show the oldest ones.
    for k in range(60):
        journal.record_live_event("s1", "bar", f"bar {k}")
        journal.record_live_event("s2", "bar", f"other {k}")
    latest = journal.latest_live_events("s1", 5)
    assert [e["message"] for e in latest] == [f"bar {k}" for k in range(55, 60)]
    assert journal.latest_live_events("nobody", 5) == []
