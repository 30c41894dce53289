"""``regimedesk scan`` (issue 26, first part): records equal the per-symbol commands' numbers, the
changes since the last scan, and the same results in this process and on a real Dask cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from agents.cli import main
from agents.config import load_settings
from agents.services.scan import ScanRecord, rank_records, scan_changes, scan_symbol

AS_OF = "2006-12-29"
LATER = "2008-10-31"


def _scan(capsys, *argv):
    code = main(["scan", *argv, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_a_record_has_the_numbers_of_the_regime_and_stats_commands():
    from agents.config import TIMEFRAME_NAMES
    from agents.services.context import AppContext
    from agents.services.regime import AGENT_METHOD, analyse_regimes, regime_report
    from agents.services.statistics import statistics_report

    settings = load_settings(None)
    rec = scan_symbol("nasdaq", settings, "builtin", AS_OF)
    assert rec.ok and rec.symbol == "NASDAQ" and rec.last_bar.startswith(AS_OF)
    app = AppContext(settings, None)
    store = app.bars({"source": "builtin", "as_of": AS_OF})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = regime_report(analyse_regimes(store, "NASDAQ", AGENT_METHOD))
        for tf in TIMEFRAME_NAMES:
            want = rep["timeframes"][tf]
            assert rec.regimes[tf]["label"] == want["label"]
            assert rec.regimes[tf]["probability"] == want.get("probability")
            if tf != "US":
                stats = statistics_report(store.get("NASDAQ", tf).frame["close"], store.lookback(tf))
                ch = stats["character"]
                assert rec.character[tf] == (ch["character"] if ch.get("available") else None)
    assert rec.consensus["label"] == rep["consensus"]["label"]
    # no stored model and a scan never trains: no signal, and it says what to do
    assert rec.p_up is None and "regimedesk train NASDAQ" in rec.note


def test_a_failing_symbol_is_reported_and_the_scan_goes_on(capsys):
    doc = _scan(capsys, "SP500", "NOPE", "--workers", "1", "--as-of", AS_OF)
    by = {r["symbol"]: r for r in doc["records"]}
    assert by["SP500"]["ok"] and not by["NOPE"]["ok"] and "unknown symbol 'NOPE'" in by["NOPE"]["error"]
    assert [r["symbol"] for r in doc["records"]][-1] == "NOPE"  # failures last
    code = main(["scan", "NOPE", "--workers", "1"])  # nothing scanned at all: exit 1
    assert code == 1


def test_changes_since_the_last_scan_come_first(capsys, tmp_path):
    first = _scan(capsys, "SP500", "NASDAQ", "--workers", "1", "--as-of", AS_OF, "--out", str(tmp_path / "s.csv"))
    assert all(r["changes"] == ["new"] for r in first["records"])
    second = _scan(capsys, "SP500", "NASDAQ", "--workers", "1", "--as-of", LATER)
    recs = [ScanRecord.from_dict(r) for r in second["records"]]
    before = {r["symbol"]: ScanRecord.from_dict(r) for r in first["records"]}
    for r in recs:
        assert r.changes == scan_changes(before[r.symbol], r)
    # From calm 2006 into October 2008 the consensus of both indices changed.
    assert all(any(c.startswith("consensus ") for c in r.changes) for r in recs)
    import pandas as pd

    table = pd.read_csv(tmp_path / "s.csv")
    assert list(table["symbol"]) == [r["symbol"] for r in first["records"]]
    assert list(table["MT_regime"]) == [r["regimes"]["MT"]["label"] for r in first["records"]]


def test_ranking_and_change_rules():
    def rec(sym, **kw):
        base = dict(regimes={"MT": {"label": "bull"}}, consensus={"family": "risk_on"}, character={"MT": "trending"})
        base.update(kw)
        return ScanRecord(sym, True, **base)

    a = rec("A")
    b = rec("B", regimes={"MT": {"label": "bear"}}, consensus={"family": "risk_off"})
    c = rec("C", character={"MT": "random_walk"})
    assert scan_changes(None, a) == ("new",)
    assert scan_changes(a, b) == ("MT bull -> bear", "consensus risk_on -> risk_off")
    assert scan_changes(a, c) == ("MT character trending -> random_walk",)
    assert scan_changes(a, a) == ()
    ranked = rank_records([ScanRecord("Z", False, error="x"), ScanRecord.from_dict({**c.to_dict(), "changes": ["MT character trending -> random_walk"]}),
                           a, ScanRecord.from_dict({**b.to_dict(), "changes": ["MT bull -> bear"]})])
    assert [r.symbol for r in ranked] == ["B", "C", "A", "Z"]


def test_bad_usage_is_one_line(capsys):
    for argv, needle in ((["scan"], "exactly one"), (["scan", "SP500", "--universe", "factors"], "exactly one"),
                         (["scan", "SP500", "--out", "x.txt"], ".csv or .parquet"),
                         (["scan", "SP500", "--workers", "-1"], "--workers")):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], err
    # an --out that cannot be written is said before the scan, not after it
    assert main(["scan", "SP500", "--workers", "1", "--out", "/proc/no/scan.csv"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["regimedesk: error: --out /proc/no/scan.csv: cannot write in /proc (No such file or directory)"]


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", *args], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


@pytest.mark.slow
def test_a_real_dask_cluster_gives_the_in_process_results(capsys, tmp_path):
    # A real `dask scheduler` and two `dask worker` processes on loopback, torn down at the end.
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    sched_file = tmp_path / "scheduler.json"
    procs = [_start(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                     "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(sched_file)],
                    env, tmp_path / "scheduler.log")]
    try:
        deadline = time.monotonic() + 60
        while not sched_file.exists():
            assert time.monotonic() < deadline, (tmp_path / "scheduler.log").read_text()
            time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        for i in range(2):
            procs.append(_start(["distributed.cli.dask_worker", address, "--nthreads", "1", "--host", "127.0.0.1",
                                 "--dashboard-address", "127.0.0.1:0", "--name", f"w{i}"],
                                env, tmp_path / f"worker{i}.log"))
        symbols = ["SP500", "NASDAQ", "NOPE"]
        remote = _scan(capsys, *symbols, "--scheduler", address, "--as-of", AS_OF)
        local = _scan(capsys, *symbols, "--workers", "1", "--as-of", AS_OF)
        assert remote["scheduler"] == address
        a = {r["symbol"]: ScanRecord.from_dict(r) for r in remote["records"]}
        b = {r["symbol"]: ScanRecord.from_dict(r) for r in local["records"]}
        assert set(a) == set(b) == {"SP500", "NASDAQ", "NOPE"}
        for sym in a:
            assert a[sym].same_result(b[sym]), sym
        assert not a["NOPE"].ok and a["SP500"].ok
        # a scheduler that is not there: one line, no traceback
        code = main(["scan", "SP500", "--scheduler", "tcp://127.0.0.1:9", "--as-of", AS_OF])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 1 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in err[-1]
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)


def test_a_long_running_process_scans_the_new_bars(tmp_path, monkeypatch):
    # The bot and the scheduler scan in their own process again and again: every scan reads the
    # bars afresh (the process context keeps no bars between scans).
    import numpy as np
    import pandas as pd

    data = tmp_path / "data"
    data.mkdir()
    cfg = tmp_path / "regimedesk.toml"
    cfg.write_text(f"[data]\nsource = 'file'\n[data.file]\ndirectory = '{data}'\n")
    settings = load_settings(str(cfg))
    rng = np.random.default_rng(7)
    n = 700
    close = 100 * np.exp(np.cumsum(0.01 * rng.standard_normal(n)))
    frame = pd.DataFrame({"timestamp": pd.bdate_range("2020-01-01", periods=n), "open": close, "high": close * 1.01,
                          "low": close * 0.99, "close": close, "volume": 1e6})
    frame.iloc[:600].to_csv(data / "SYN.csv", index=False)
    first = scan_symbol("SYN", settings, "file")
    frame.to_csv(data / "SYN.csv", index=False)
    second = scan_symbol("SYN", settings, "file")
    assert first.ok and second.ok
    assert first.last_bar.startswith(str(frame["timestamp"].iloc[599].date()))
    assert second.last_bar.startswith(str(frame["timestamp"].iloc[-1].date()))
