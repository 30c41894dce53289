"""kill -9 of ``regimedesk live`` at seeded random points during a replay.

After every kill the same command is started again (for one more bar, then it exits); at
that point the journal and the paper broker must agree, no bar may have been processed
twice and no order duplicated. A last restart plays the replay to its end: every bar of
the window is then handled exactly once and nothing is lost.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

FAST_ML = "[ml]\nrefit_every = 252\n[live]\nretry_backoff = 0.1\n"
START, END = "2018-08-01", "2018-11-30"
KILLS = 10
SEED = 20261121


def _live(home: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "agents.cli", "live", "SP500", "NASDAQ", "--feed", "replay", "--broker", "paper",
            "--start", START, "--end", END, *extra]


def _env(home: Path, cfg: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALPACA", "POLYGON", "OPENAI", "TELEGRAM"))}
    env.update(REGIMEDESK_HOME=str(home), REGIMEDESK_CONFIG=str(cfg), OPENBLAS_NUM_THREADS="1",
               OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    return env


def _rows(db: Path, sql: str, params: tuple = ()) -> list[dict]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        cur = conn.execute(sql, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        conn.close()


def _claimed(home: Path) -> int:
    db = home / "live_state.sqlite"
    if not db.exists():
        return 0
    try:
        return len(_rows(db, "SELECT bar_time FROM live_bars"))
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0


def _check_agreement(home: Path) -> dict[str, int]:
    """The invariants that must hold whenever no live process runs after a restart."""
    journal, paper = home / "journal.sqlite", home / "paper_broker.sqlite"
    bars = _rows(home / "live_state.sqlite", "SELECT * FROM live_bars ORDER BY bar_time")
    # no bar processed twice: one claim per bar time, each with its own run, none left half done
    assert len({b["bar_time"] for b in bars}) == len(bars)
    assert len({b["run_id"] for b in bars}) == len(bars)
    assert [b for b in bars if b["status"] not in ("completed",)] == []
    runs = _rows(journal, "SELECT run_id, status FROM runs")
    by_id = {r["run_id"]: r["status"] for r in runs}
    assert len(by_id) == len(runs)
    for b in bars:
        assert by_id[b["run_id"]] == "completed", b
    # no order duplicated: one broker order per client order id, at most one per symbol, bar and side
    orders = _rows(paper, "SELECT * FROM orders")
    coids = [o["client_order_id"] for o in orders]
    assert len(coids) == len(set(coids))
    keys = [(o["symbol"], o["bar_time"], o["side"]) for o in orders]
    assert len(keys) == len(set(keys))
    # journal and broker agree on every order: latest status, filled quantity and fills
    latest: dict[str, dict] = {}
    for row in _rows(journal, "SELECT client_order_id, status, payload FROM orders WHERE broker = 'paper' ORDER BY id"):
        latest[row["client_order_id"]] = row
    assert set(latest) == set(coids)
    jfills = {r["client_order_id"]: r["q"] for r in _rows(
        journal, "SELECT client_order_id, SUM(qty) AS q FROM fills GROUP BY client_order_id")}
    for o in orders:
        j = latest[o["client_order_id"]]
        assert j["status"] == o["status"], (o, j)
        assert json.loads(j["payload"])["filled_qty"] == pytest.approx(o["filled_qty"])
        assert jfills.get(o["client_order_id"], 0.0) == pytest.approx(o["filled_qty"])
    bfills = {r["client_order_id"]: r["q"] for r in _rows(
        paper, "SELECT client_order_id, SUM(qty) AS q FROM fills GROUP BY client_order_id")}
    assert {k: pytest.approx(v) for k, v in bfills.items()} == {k: v for k, v in jfills.items() if v > 0}
    # positions are the net of the fills both sides recorded
    net: dict[str, float] = {}
    for o in orders:
        sign = 1.0 if o["side"] == "buy" else -1.0
        net[o["symbol"]] = net.get(o["symbol"], 0.0) + sign * jfills.get(o["client_order_id"], 0.0)
    for p in _rows(paper, "SELECT symbol, qty FROM positions"):
        assert p["qty"] == pytest.approx(net.get(p["symbol"], 0.0), abs=1e-9)
    # nothing lost: every order the gate approved for a handled bar reached the broker (the
    # check at sending stops none here: nobody halts, no feed is silent, no approval is late)
    verdicts = _rows(journal, "SELECT client_order_id, verdict, order_json FROM verdicts")
    assert [v for v in verdicts if json.loads(v["order_json"]).get("stage") == "execution"
            and v["verdict"] == "reject"] == []
    for v in verdicts:
        if v["verdict"] in ("approve", "trim") and json.loads(v["order_json"])["approved_qty"] > 0:
            assert v["client_order_id"] in set(coids), v
    return {"bars": len(bars), "orders": len(orders)}


def test_kill_minus_nine_at_random_points_loses_and_duplicates_nothing(tmp_path):
    home = tmp_path / "live-home"
    cfg = tmp_path / "live.toml"
    cfg.write_text(FAST_ML)
    env = _env(home, cfg)
    rng = np.random.default_rng(SEED)
    kills = []
    resumed = 0
    for k in range(KILLS):
        before = _claimed(home)
        log = (tmp_path / f"kill-{k}.log").open("w")
        proc = subprocess.Popen(_live(home), env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)
        target = before + int(rng.integers(1, 4))  # let it claim 1-3 new bars ...
        pause = float(rng.uniform(0.0, 0.6))  # ... then kill it somewhere inside the next one
        deadline = time.monotonic() + 600
        while _claimed(home) < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(pause)
        if proc.poll() is not None:
            log.close()
            pytest.fail(f"the live process ended before kill {k}: {(tmp_path / f'kill-{k}.log').read_text()[-2000:]}")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        log.close()
        kills.append((_claimed(home), round(pause, 3)))
        # restart: it must reconcile, finish the killed bar and handle one more, then stop cleanly
        done = subprocess.run(_live(home, "--max-bars", "1"), env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        resumed += done.stderr.count("resuming bar")
        state = _check_agreement(home)
        assert state["bars"] >= kills[-1][0]
    assert len(kills) == KILLS
    assert len({c for c, _ in kills}) > KILLS // 2  # the kills fell on different bars
    final = subprocess.run(_live(home, "--json"), env=env, capture_output=True, text=True, timeout=900)
    assert final.returncode == 0, final.stderr[-3000:]
    assert json.loads(final.stdout)["stopped_by"] == "end of replay"
    state = _check_agreement(home)
    # nothing lost: every trading day of the window was handled, once
    from analytics.bars import Timeframe
    from integrations import BuiltinSource

    days = BuiltinSource().fetch("SP500", Timeframe.parse("1D"), pd.Timestamp(START, tz="UTC"),
                                 pd.Timestamp(END, tz="UTC")).index
    bars = [pd.Timestamp(b["bar_time"]) for b in _rows(home / "live_state.sqlite",
                                                        "SELECT bar_time FROM live_bars ORDER BY bar_time")]
    assert bars == list(days)
    assert state["orders"] > 0
    # the restarts really had work to finish: killed bars were resumed
    assert resumed > 0
