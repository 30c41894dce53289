"""Scheduled scan jobs (issue 26, item 4): configuration, the summary text, a job end to end."""

from __future__ import annotations

import json

import pytest

from agents.cli import main
from agents.config import ScheduledJob, Secrets, load_settings
from agents.runtime.scan import ScanOutcome
from agents.runtime.scan_text import scan_summary
from agents.runtime.scheduler import JobExecutor
from agents.services.scan import ScanRecord
from analytics import ConfigError
from integrations import ScanStateStore
from tests.telegram_stub import TOKEN, BotApiStub

FAST = "home = '{home}'\n[ml]\nrefit_every = 252\n[report]\nbacktest = false\n"


def _job_toml(**kw) -> str:
    lines = ["[[schedule.jobs]]"]
    for k, v in kw.items():
        lines.append(f"{k} = {json.dumps(v)}")  # JSON strings, lists, numbers and booleans are valid TOML
    return "\n".join(lines) + "\n"


def _write(tmp_path, body: str):
    path = tmp_path / "scan_jobs.toml"
    path.write_text(body)
    return path


# ------------------------------------------------------------------ configuration


_SCAN = {"name": "s", "kind": "scan", "cron": "0 8 * * mon-fri"}


@pytest.mark.parametrize(("job", "message"), [
    (_SCAN, "scan job 's' needs exactly one of universe or symbols"),
    ({**_SCAN, "universe": "sp500-20", "symbols": ["SP500"]}, "exactly one of universe or symbols, not both"),
    ({**_SCAN, "universe": "sp500-20", "broker": "paper"}, "scan job 's': broker is not for scan jobs"),
    ({**_SCAN, "universe": "sp500-20", "workers": -1}, "workers: Input should be greater than or equal to 0"),
    ({**_SCAN, "symbols": []}, "symbols is empty"),
    ({**_SCAN, "universe": ""}, "universe: String should have at least 1 character"),
    ({"name": "r", "kind": "run", "cron": "0 9 * * *"}, "run job 'r' needs symbols (1 to 20)"),
    ({"name": "r", "kind": "report", "cron": "0 9 * * *", "symbols": []}, "symbols is empty"),
    ({"name": "r", "kind": "run", "cron": "0 9 * * *", "symbols": [f"S{i}" for i in range(21)]},
     "run job 'r': at most 20 symbols, not 21"),
    ({"name": "r", "kind": "report", "cron": "0 9 * * *", "symbols": ["SP500"], "universe": "factors"},
     "report job 'r': universe is for scan jobs only"),
    ({"name": "r", "kind": "run", "cron": "0 9 * * *", "symbols": ["SP500"], "workers": 2},
     "run job 'r': workers is for scan jobs only"),
    ({"name": "x", "kind": "email", "cron": "0 9 * * *", "symbols": ["SP500"]}, "'run', 'report' or 'scan'"),
])
def test_bad_scan_and_run_jobs_are_refused_with_the_reason(tmp_path, job, message):
    with pytest.raises(ConfigError) as err:
        load_settings(_write(tmp_path, _job_toml(**job)), env={})
    assert message in str(err.value)
    assert str(err.value).count("\n") == 0 or "more" in str(err.value)


def test_old_run_and_report_jobs_read_as_before_and_scan_jobs_read(tmp_path):
    body = (_job_toml(name="r", kind="run", cron="0 9 * * *", symbols=["SP500", "NASDAQ"], broker="paper")
            + _job_toml(name="s", kind="scan", cron="0 8 * * *", universe="factors", workers=1)
            + _job_toml(name="t", kind="scan", cron="0 8 * * *", symbols=[f"S{i}" for i in range(40)]))
    run, scan, listed = load_settings(_write(tmp_path, body), env={}).schedule.jobs
    assert (run.kind, run.symbols, run.universe, run.workers, run.broker) == (
        "run", ["SP500", "NASDAQ"], None, None, "paper")
    assert (scan.kind, scan.symbols, scan.universe, scan.workers) == ("scan", [], "factors", 1)
    assert len(listed.symbols) == 40 and listed.universe is None  # a scan job may list more than 20
    assert ScheduledJob(name="r", kind="report", cron="0 9 * * *", symbols=["SP500"]).symbols == ["SP500"]


# ------------------------------------------------------------------ the summary


def _rec(symbol: str, *changes: str, label: str = "bull") -> ScanRecord:
    return ScanRecord(symbol, True, consensus={"label": label, "family": "risk_on"}, changes=tuple(changes))


def _outcome(*records: ScanRecord, as_of: str | None = None) -> ScanOutcome:
    return ScanOutcome("mine", "builtin", as_of, 1, None, 12.34, tuple(records))


def test_summary_lists_changes_then_first_scans_then_failures():
    out = _outcome(_rec("AAA", "MT bull -> bear", "consensus risk_on -> risk_off", label="bear"),
                   _rec("BBB", "MT character trending -> random_walk"), _rec("CCC", "new"), _rec("DDD"),
                   ScanRecord("ZZZ", False, error="unknown symbol 'ZZZ'\n  for the builtin source"),
                   as_of="2008-10-31")
    assert scan_summary(out) == "\n".join([
        "mine: 5 symbols scanned in 12.3 s, 1 failed (data to 2008-10-31)",
        "Changes since the last scan:",
        "  AAA (bear): MT bull -> bear; consensus risk_on -> risk_off",
        "  BBB (bull): MT character trending -> random_walk",
        "First scan: CCC",
        "Failed:",
        "  ZZZ: unknown symbol 'ZZZ' for the builtin source",
    ])


def test_summary_keeps_the_top_changes_and_counts_the_rest():
    changed = [_rec(f"S{i:02d}", f"MT bull -> bear {i}") for i in range(18)]
    failed = [ScanRecord(f"F{i:02d}", False, error="x" * 200) for i in range(12)]
    lines = scan_summary(_outcome(*changed, *failed)).splitlines()
    assert lines[0] == "mine: 30 symbols scanned in 12.3 s, 12 failed"
    assert lines[2:17] == [f"  S{i:02d} (bull): MT bull -> bear {i}" for i in range(15)]
    assert lines[17] == "  ... and 3 more symbols with changes"
    assert lines[18] == "Failed:"
    assert lines[19] == "  F00: " + "x" * 117 + "..."
    assert lines[-1] == "  ... and 2 more failed" and len(lines) == 19 + 10 + 1
    assert scan_summary(_outcome(*changed), top=2).splitlines()[-1] == "  ... and 16 more symbols with changes"
    with pytest.raises(ValueError, match="top"):
        scan_summary(_outcome(*changed), top=0)


def test_summary_without_changes_says_so():
    assert scan_summary(_outcome(_rec("AAA"), _rec("BBB"))) == (
        "mine: 2 symbols scanned in 12.3 s, 0 failed\nNo changes since the last scan.")
    # a first scan of everything: no "no changes" line
    assert scan_summary(_outcome(_rec("AAA", "new"), _rec("BBB", "new"))) == (
        "mine: 2 symbols scanned in 12.3 s, 0 failed\nFirst scan: AAA, BBB")


# ------------------------------------------------------------------ a scan job end to end


@pytest.fixture
def stub(httpserver):
    return BotApiStub(httpserver)


def _settings(tmp_path, stub, jobs, chats=(42,)):
    body = FAST.format(home=tmp_path / "home")
    body += "[portfolio.universes]\npair = [\"SP500\", \"NASDAQ\", \"NOPE\"]\n"
    body += f"[telegram]\nbase_url = '{stub.base_url}'\nbase_file_url = '{stub.base_file_url}'\n"
    body += f"chat_ids = [{', '.join(str(c) for c in chats)}]\n"
    body += "".join(_job_toml(**j) for j in jobs)
    path = _write(tmp_path, body)
    return load_settings(path, env={}), path


def test_a_scan_job_delivers_what_changed_since_the_last_scan(tmp_path, stub, capsys, monkeypatch):
    out_dir = tmp_path / "delivered"
    settings, path = _settings(tmp_path, stub, [
        {"name": "pair-scan", "kind": "scan", "cron": "0 8 * * mon-fri", "universe": "pair", "workers": 1,
         "deliver_dir": str(out_dir)}])
    job = settings.schedule.jobs[0]
    progress: list[str] = []
    ex = JobExecutor(settings, Secrets.from_env({"TELEGRAM_BOT_TOKEN": TOKEN}), status=progress.append)
    try:
        from datetime import UTC, datetime

        first = ex(job, datetime(2026, 11, 10, 13, 0, tzinfo=UTC))
        assert first.status == "ok", first.error
        assert (first.kind, first.run_id) == ("scan", None)
        head, *rest = first.summary.splitlines()
        assert head.startswith("pair: 3 symbols scanned in ") and head.endswith(" s, 1 failed")
        assert rest[0] == "First scan: NASDAQ, SP500"
        assert rest[1] == "Failed:" and rest[2].startswith("  NOPE: unknown symbol 'NOPE' for the builtin source")
        (text_file,) = first.files
        assert text_file == str(out_dir / "pair-scan-20261110-0800.txt")
        assert open(text_file, encoding="utf-8").read() == first.summary + "\n"
        (msg,) = stub.calls_to("sendMessage")
        assert msg[0]["chat_id"] == "42"
        assert msg[0]["text"] == f"RegimeDesk scan 'pair-scan' (universe pair)\n\n{first.summary}"
        assert progress[-1] == "scan pair-scan: 3/3 symbols, 1 failed"
        row = ex.state().job_runs("pair-scan")[0]
        assert row["status"] == "ok" and row["detail"]["kind"] == "scan" and row["detail"]["files"] == [text_file]
        assert row["scheduled_for"].startswith("2026-11-10T13:00")

        # the scan state is the command line's: seed SP500's last scan with another MT regime and family
        with ScanStateStore(settings.paths.scan_state) as state:
            saved = state.load("builtin")
            assert set(saved) == {"SP500", "NASDAQ"}  # the failure is not stored
            now = ScanRecord.from_dict(saved["SP500"])
            mt, family = now.regimes["MT"]["label"], now.consensus["family"]
            other = "bear" if mt != "bear" else "bull"
            flipped = "risk_off" if family != "risk_off" else "risk_on"
            seeded = {**saved["SP500"], "regimes": {**now.regimes, "MT": {**now.regimes["MT"], "label": other}},
                      "consensus": {**now.consensus, "family": flipped}}
            state.save("builtin", {"SP500": seeded})

        second = ex(job, None)
        assert second.status == "ok", second.error
        lines = second.summary.splitlines()
        assert lines[1:3] == ["Changes since the last scan:",
                              f"  SP500 ({now.consensus['label']}): MT {other} -> {mt}; consensus {flipped} -> {family}"]
        assert lines[3] == "Failed:" and len(lines) == 5  # NASDAQ is unchanged: not listed
        assert lines[4] == rest[2]
        assert open(second.files[0], encoding="utf-8").read() == second.summary + "\n"
        assert stub.calls_to("sendMessage")[-1][0]["text"].endswith(second.summary)
        with ScanStateStore(settings.paths.scan_state) as state:  # the new scan is the next one's reference
            assert ScanRecord.from_dict(state.load("builtin")["SP500"]).same_result(now)
    finally:
        ex.close()

    # the command line runs it too (nothing changed since), and lists it
    monkeypatch.setenv("REGIMEDESK_HOME", str(settings.home_dir))  # the variable wins over the file's home
    assert main(["--config", str(path), "schedule", "--once", "pair-scan"]) == 0
    out, err = capsys.readouterr()
    assert "No changes since the last scan." in out and "job pair-scan (manual): ok" in err
    assert main(["--config", str(path), "schedule", "--list", "--json"]) == 0
    (doc,) = json.loads(capsys.readouterr().out)
    assert (doc["name"], doc["kind"], len(doc["next"])) == ("pair-scan", "scan", 3)


def test_a_scan_in_which_every_symbol_fails_is_a_failed_job(tmp_path, stub):
    settings, _ = _settings(tmp_path, stub, [
        {"name": "bad-scan", "kind": "scan", "cron": "0 8 * * *", "symbols": ["nope"], "workers": 1},
        {"name": "no-universe", "kind": "scan", "cron": "0 8 * * *", "universe": "nosuch", "workers": 1}])
    ex = JobExecutor(settings, Secrets.from_env({"TELEGRAM_BOT_TOKEN": TOKEN}))
    try:
        bad = ex(settings.schedule.jobs[0], None)
        assert bad.status == "error" and bad.files == () and bad.summary == ""
        assert bad.error.startswith("RegimeDeskError: every symbol failed (1); NOPE: unknown symbol 'NOPE'")
        missing = ex(settings.schedule.jobs[1], None)
        assert missing.status == "error" and "UniverseError: unknown universe 'nosuch'" in missing.error
        texts = [p["text"] for p, _ in stub.calls_to("sendMessage")]
        assert texts == [f"RegimeDesk job 'bad-scan' failed: {bad.error}",
                         f"RegimeDesk job 'no-universe' failed: {missing.error}"]
        assert [r["status"] for r in ex.state().job_runs()] == ["error", "error"]
    finally:
        ex.close()
    assert not settings.reports_dir.exists() or not any(settings.reports_dir.iterdir())
