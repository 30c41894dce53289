"""``regimedesk scan`` under faults (issue 26 acceptance): "A worker killed mid-scan: the scan
still completes (Dask retries) or names the symbols it lost; nothing is half-written."

Worker processes import this module by name (``tests.agents.test_scan_faults``) to run the
module-level functions below: the local cluster's spawned processes inherit this process's
``sys.path`` (which holds the repository root); the ``dask scheduler``/``dask worker`` processes
get the root on ``PYTHONPATH``. So this module imports nothing heavy at the top.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

AS_OF = "2006-12-29"
POISON = "POISON"


@dataclass(frozen=True)
class _Result:
    """What :func:`_work` returns (``ok`` is what ``map_symbols`` counts as failed or not)."""

    symbol: str
    ok: bool
    value: int | None = None
    error: str | None = None


def _work(symbol: str, factor: int, marker: str) -> _Result:
    """``len(symbol) * factor``; the poison symbol kills its worker process on every attempt.

    The poison waits (at most a minute) for ``marker``, which the test creates once the client
    holds every other result: a dying worker also takes the results and queued tasks it holds,
    and the scheduler charges every task assigned to it with the death, so an innocent symbol
    next to the poison could be lost too (with allowed-failures 1 it was, in 2 of 6 runs).
    """
    if symbol == POISON:
        deadline = time.monotonic() + 60
        while not os.path.exists(marker) and time.monotonic() < deadline:
            time.sleep(0.01)
        os._exit(1)
    return _Result(symbol, True, value=len(symbol) * factor)


def _lost(symbol: str, exc: BaseException) -> _Result:
    return _Result(symbol, False, error=f"{type(exc).__name__}: {exc}")


@pytest.mark.slow
def test_a_symbol_that_kills_every_worker_is_lost_and_the_others_are_kept(tmp_path):
    import dask
    from distributed import KilledWorker

    from agents.runtime.compute import map_symbols

    symbols = ["AB", "CDE", "FGHIJ", POISON]  # the poison last: no other task waits behind it on its worker
    marker = tmp_path / "others-done"
    calls: list[tuple[int, int, int]] = []

    def progress(done: int, failed: int, total: int) -> None:
        calls.append((done, failed, total))
        if done == total - 1:
            marker.touch()

    # distributed is imported above: a dask.config.set made before its defaults load drops them on exit
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        out = map_symbols(_work, symbols, 10, str(marker), workers=2, lost=_lost, progress=progress)
    assert [r.symbol for r in out] == symbols
    assert out[:3] == [_Result("AB", True, 20), _Result("CDE", True, 30), _Result("FGHIJ", True, 50)]
    assert not out[3].ok and out[3].value is None
    assert out[3].error.startswith(f"{KilledWorker.__name__}: ")
    # two workers died running it (allowed-failures 1): the message says so
    assert "on 2 different workers" in out[3].error
    assert calls == [(1, 0, 4), (2, 0, 4), (3, 0, 4), (4, 1, 4)]


@pytest.mark.slow
def test_symbols_next_to_a_poison_are_not_lost_with_it(tmp_path):
    # The poison first and crashing at once: the symbols queued or finished on its workers are
    # charged with the deaths too (allowed-failures 1 gives up on them after one); map_symbols
    # submits each of those again alone, so only the poison is lost.
    import dask
    from distributed import KilledWorker

    from agents.runtime.compute import map_symbols

    symbols = [POISON, "AB", "CDE", "FGHIJ", "KL", "MNOPQ", "RST"]
    marker = tmp_path / "now"
    marker.touch()
    calls: list[tuple[int, int, int]] = []
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        out = map_symbols(_work, symbols, 3, str(marker), workers=2, lost=_lost,
                          progress=lambda *c: calls.append(c))
    assert [r.symbol for r in out] == symbols
    assert out[1:] == [_Result(s, True, 3 * len(s)) for s in symbols[1:]]
    assert not out[0].ok and out[0].error.startswith(f"{KilledWorker.__name__}: ")
    assert [c[0] for c in calls] == list(range(1, 8)) and calls[-1] == (7, 1, 7)


def _start(args: list[str], env: dict[str, str], out: Path, err: Path | None = None) -> subprocess.Popen:
    """``python -m ARGS`` with stdout to ``out`` and stderr to ``err`` (or ``out``)."""
    with out.open("wb") as fo:
        if err is None:
            return subprocess.Popen([sys.executable, "-m", *args], env=env, stdout=fo, stderr=subprocess.STDOUT)
        with err.open("wb") as fe:
            return subprocess.Popen([sys.executable, "-m", *args], env=env, stdout=fo, stderr=fe)


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in reversed(procs):
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)


def _scan(env: dict[str, str], tmp_path: Path, *argv: str) -> subprocess.Popen:
    """``regimedesk scan ARGV`` in a new process (stdout to scan.out, stderr to scan.err)."""
    return _start(["agents.cli", "scan", *argv], env, tmp_path / "scan.out", tmp_path / "scan.err")


def _rows(path: Path) -> list[tuple]:
    """Every stored row of the scan state, as stored (with ``scanned_at``)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT source, symbol, scanned_at, record FROM last_scan "
                            "ORDER BY source, symbol").fetchall()
    finally:
        conn.close()


def _executing(dask_worker) -> tuple[int, list[str]]:
    """The worker's process id and the keys of the tasks it is running (for ``client.run``)."""
    return os.getpid(), sorted(str(ts.key) for ts in dask_worker.state.executing)


def _suspicious(dask_scheduler) -> int:
    """Times a ``scan_symbol`` task was on a worker that died (for ``client.run_on_scheduler``)."""
    prefix = dask_scheduler.task_prefixes.get("scan_symbol")
    return 0 if prefix is None else prefix.suspicious


@pytest.mark.slow
def test_a_worker_killed_mid_scan_gives_every_symbol_or_names_it_lost(capsys, tmp_path):
    import pandas as pd
    from distributed import Client

    from agents.cli import main
    from agents.config import load_settings
    from agents.services.scan import ScanRecord
    from integrations import ScanStateStore

    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    # the `dask worker` processes import this module by name for client.run (their cwd is elsewhere)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(Path(__file__).parents[2]), env.get("PYTHONPATH")) if p)
    sched_file = tmp_path / "scheduler.json"
    procs = [_start(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                     "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(sched_file)],
                    env, tmp_path / "scheduler.log")]
    symbols = ["SP500", "NASDAQ", "AAPL", "MSFT", "JNJ"]
    out_csv = tmp_path / "out" / "scan.csv"
    try:
        deadline = time.monotonic() + 60
        while not sched_file.exists():
            assert time.monotonic() < deadline, (tmp_path / "scheduler.log").read_text()
            time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        for i in range(2):  # with nannies (the default): a killed worker process is restarted
            procs.append(_start(["distributed.cli.dask_worker", address, "--nthreads", "1", "--host", "127.0.0.1",
                                 "--dashboard-address", "127.0.0.1:0", "--name", f"w{i}"],
                                env, tmp_path / f"worker{i}.log"))
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
            scan = _scan(env, tmp_path, *symbols, "--scheduler", address, "--as-of", AS_OF, "--json",
                         "--out", str(out_csv))
            procs.append(scan)
            killed: tuple[str, int, list[str]] | None = None
            deadline = time.monotonic() + 120
            while killed is None and scan.poll() is None:
                assert time.monotonic() < deadline, "no worker was seen running a scan task"
                for addr, (pid, keys) in client.run(_executing).items():
                    if any(k.startswith("scan_symbol-") for k in keys):
                        os.kill(pid, signal.SIGKILL)  # the worker process itself, not its nanny
                        killed = (addr, pid, keys)
                        break
                else:
                    time.sleep(0.05)
            assert killed is not None, "the scan finished before a worker could be killed"
            # the scheduler saw that worker die (its nanny starts a new one, with a new pid)
            deadline = time.monotonic() + 60
            while killed[0] in client.scheduler_info()["workers"]:
                assert time.monotonic() < deadline, f"worker {killed} is still there"
                time.sleep(0.1)
            assert scan.wait(timeout=240) == 0, (tmp_path / "scan.err").read_text()
            # ... while it held a scan task: the scheduler charged that task with the death
            assert client.run_on_scheduler(_suspicious) >= 1
        remote = json.loads((tmp_path / "scan.out").read_text())
    finally:
        _stop(procs)
    assert remote["scheduler"] == address
    records = {r["symbol"]: ScanRecord.from_dict(r) for r in remote["records"]}
    assert sorted(records) == sorted(symbols) and len(remote["records"]) == len(symbols)
    settings = load_settings(None)
    with ScanStateStore(settings.paths.scan_state) as state:
        stored = state.load("builtin")
    # the state holds exactly the records that have a result, as the scan printed them
    assert stored == {r["symbol"]: r for r in remote["records"] if r["ok"]}
    table = pd.read_csv(out_csv)
    assert sorted(table["symbol"]) == sorted(symbols) and len(table) == len(symbols)
    assert [bool(x) for x in table.set_index("symbol").loc[symbols, "ok"]] == [records[s].ok for s in symbols]

    # the same symbols in this process (same home: the fits cached by the workers are reused)
    assert main(["scan", *symbols, "--workers", "1", "--as-of", AS_OF, "--json"]) == 0
    local = {r["symbol"]: ScanRecord.from_dict(r) for r in json.loads(capsys.readouterr().out)["records"]}
    assert all(local[s].ok for s in symbols)
    for s in symbols:
        r = records[s]
        if r.ok:
            assert r.same_result(local[s]), s
        else:  # lost with its worker(s): named, not dropped
            assert r.error.startswith("lost: KilledWorker: "), r.error


@pytest.mark.slow
def test_a_scan_killed_midway_leaves_the_state_and_out_file_as_they_were(capsys, tmp_path):
    from agents.cli import main
    from agents.config import load_settings

    assert main(["scan", "SP500", "--workers", "1", "--as-of", AS_OF, "--json"]) == 0
    capsys.readouterr()
    state = load_settings(None).paths.scan_state
    before = _rows(state)
    assert [row[:2] for row in before] == [("builtin", "SP500")]
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    err = tmp_path / "scan.err"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    # SP500 first: its fits are cached, so its progress line comes soon; the others are cold (seconds each)
    scan = _scan(env, tmp_path, "SP500", "NASDAQ", "AAPL", "MSFT", "--workers", "1", "--as-of", AS_OF, "--json",
                 "--out", str(out_dir / "scan.csv"))
    try:
        deadline = time.monotonic() + 120
        while "] 1/4" not in err.read_text():
            assert scan.poll() is None, err.read_text()
            assert time.monotonic() < deadline, err.read_text()
            time.sleep(0.02)
        scan.send_signal(signal.SIGKILL)
        assert scan.wait(timeout=30) == -signal.SIGKILL
    finally:
        _stop([scan])
    text = err.read_text()
    assert "1/4" in text and "4/4" not in text  # killed after the first symbol, before the last
    assert (tmp_path / "scan.out").read_text() == ""
    assert _rows(state) == before
    assert list(out_dir.iterdir()) == []
