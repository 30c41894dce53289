"""A live session of a home made before the journal split resumes after the upgrade.

The home is made the way the old version left it: a replay session ran three bars, then the
process died in the third one after its order reached the broker (the bar still ``started``);
the session's tables are in ``journal.sqlite`` (schema version 1, DDL from
``tests/integrations/journal_v1_schema.sql``) and there is no ``live_state.sqlite``. The new
version must finish that bar without sending its order again, go on with the next bars, and
process no bar twice.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agents.config import Secrets, load_settings
from agents.runtime.live import LiveLoop, LiveSpec, live_status
from integrations import Journal, LiveStateStore

pytestmark = pytest.mark.filterwarnings("ignore::analytics.DataQualityWarning")

FAST = "[ml]\nrefit_every = 252\n[live]\nretry_backoff = 0.0\n"
V1_SCHEMA = (Path(__file__).parents[1] / "integrations" / "journal_v1_schema.sql").read_text(encoding="utf-8")
SPEC = LiveSpec(("SP500",), start="2018-10-01", end="2018-10-31")


def _run(settings, bars: int):
    loop = LiveLoop(settings, Secrets.from_env({}), SPEC)
    try:
        return loop.run(max_bars=bars), loop.session
    finally:
        loop.close()


def _table(path: Path, sql: str) -> list[dict]:
    conn = sqlite3.connect(path)
    try:
        cur = conn.execute(sql)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        conn.close()


def _make_it_a_version_1_home(home: Path) -> None:
    """Put the live tables back into the journal, as the old version kept them, and crash bar 3."""
    state = home / "live_state.sqlite"
    sessions = _table(state, "SELECT * FROM live_sessions")
    bars = _table(state, "SELECT * FROM live_bars ORDER BY bar_time")
    for name in ("live_state.sqlite", "live_state.sqlite-wal", "live_state.sqlite-shm"):
        (home / name).unlink(missing_ok=True)
    # killed in the third bar: its run and order exist, the claim was never marked completed
    bars[-1].update(status="started", finished_at=None, seconds=None, attempts=0)
    sessions[0].update(status="running", pid=2**22 + 12345)  # a process that is gone
    conn = sqlite3.connect(home / "journal.sqlite", isolation_level=None)
    try:
        conn.executescript(V1_SCHEMA)  # the old layout: every table the old version created
        for table, rows in (("live_sessions", sessions), ("live_bars", bars)):
            cols = list(rows[0])
            conn.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                             [tuple(r[c] for c in cols) for r in rows])
        conn.execute("DELETE FROM schema_version")
        conn.execute("INSERT INTO schema_version VALUES (1, '2026-01-01T00:00:00.000000+00:00')")
    finally:
        conn.close()


def test_a_session_from_before_the_split_resumes_without_repeating_a_bar_or_an_order(tmp_path, monkeypatch):
    cfg = tmp_path / "fast.toml"
    cfg.write_text(FAST)
    monkeypatch.setenv("REGIMEDESK_CONFIG", str(cfg))
    settings = load_settings(cfg)
    home = settings.home_dir
    first, session = _run(settings, 3)
    assert (first.handled, first.failed) == (3, 0)
    before = _table(home / "paper_broker.sqlite", "SELECT client_order_id, symbol, side, bar_time FROM orders")
    assert before, "the first bars must have sent an order for this test to mean anything"
    claimed = _table(home / "live_state.sqlite", "SELECT bar_time, run_id FROM live_bars ORDER BY bar_time")
    _make_it_a_version_1_home(home)
    assert not (home / "live_state.sqlite").exists()

    second, again = _run(settings, 2)

    assert again == session
    assert (second.resumed, second.handled, second.failed) == (1, 2, 0)  # bar 3 finished, bars 4 and 5 new
    bars = _table(home / "live_state.sqlite", "SELECT * FROM live_bars ORDER BY bar_time")
    assert [(b["bar_time"], b["run_id"]) for b in bars[:3]] == [(c["bar_time"], c["run_id"]) for c in claimed]
    assert len(bars) == 5 and len({b["bar_time"] for b in bars}) == 5 and len({b["run_id"] for b in bars}) == 5
    assert {b["status"] for b in bars} == {"completed"}
    orders = _table(home / "paper_broker.sqlite", "SELECT client_order_id, symbol, side, bar_time FROM orders")
    coids = [o["client_order_id"] for o in orders]
    assert len(coids) == len(set(coids))  # no order sent twice
    assert len({(o["symbol"], o["bar_time"], o["side"]) for o in orders}) == len(orders)
    old_bars = {o["bar_time"] for o in before}
    assert [o for o in orders if o["bar_time"] in old_bars] == before  # the resumed bar sent nothing more
    with Journal(home / "journal.sqlite") as j:
        assert all(j.get_run(b["run_id"]).status == "completed" for b in bars)
        kinds = [e["kind"] for e in j.live_events(session)]
    assert kinds.count("stopped") == 2  # the events stayed in the journal, both processes'
    tables = {r["name"] for r in _table(home / "journal.sqlite", "SELECT name FROM sqlite_master")}
    assert not tables & {"live_sessions", "live_bars"}
    assert _table(home / "journal.sqlite", "SELECT MAX(version) AS v FROM schema_version") == [{"v": 2}]
    # what `regimedesk live status` and the bot's /status show
    (shown,) = live_status(settings)["sessions"]
    assert (shown["session"], shown["state"], shown["bars"]) == (session, "stopped", {"completed": 5})
    assert shown["last_bar"] == bars[-1]["bar_time"] and shown["events"][-1]["kind"] == "stopped"
    with LiveStateStore(home / "live_state.sqlite") as state:
        assert state.live_sessions()[0]["pid"] != 2**22 + 12345  # the new process took the session over
