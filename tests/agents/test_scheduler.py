"""Scheduled jobs: fire times across daylight saving, catch-up after downtime, failures, delivery."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from agents.cli import main
from agents.config import ScheduledJob, Secrets, Settings, load_settings
from agents.runtime.scheduler import (
    JobExecutor,
    JobOutcome,
    ScheduleService,
    fire_times_between,
    next_fire_times,
)
from analytics import ConfigError
from integrations import ScheduleStateStore, TelegramSender
from tests.telegram_stub import TOKEN, BotApiStub


def _job(**kw) -> ScheduledJob:
    base = {"name": "close", "kind": "report", "cron": "30 17 * * mon-fri", "timezone": "America/New_York",
            "symbols": ["SP500"]}
    return ScheduledJob(**{**base, **kw})


def _utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# ------------------------------------------------------------------ fire times


def test_weekday_close_across_the_autumn_change():
    # New York leaves daylight time on Sunday 2026-11-01: 17:30 local is 21:30Z before, 22:30Z after.
    times = next_fire_times(_job(), _utc(2026, 10, 29, 12), 4)
    assert [t.astimezone(UTC) for t in times] == [
        _utc(2026, 10, 29, 21, 30), _utc(2026, 10, 30, 21, 30), _utc(2026, 11, 2, 22, 30), _utc(2026, 11, 3, 22, 30)]
    assert all((t.hour, t.minute) == (17, 30) and t.weekday() < 5 for t in times)


def test_weekday_close_across_the_spring_change():
    times = next_fire_times(_job(), _utc(2026, 3, 5, 12), 3)
    assert [t.astimezone(UTC) for t in times] == [
        _utc(2026, 3, 5, 22, 30), _utc(2026, 3, 6, 22, 30), _utc(2026, 3, 9, 21, 30)]


def test_repeated_wall_time_on_the_fall_back_day_fires_once():
    # 01:30 happens twice on 2026-11-01 in New York (EDT, then EST): one run that day.
    times = next_fire_times(_job(cron="30 1 * * *"), _utc(2026, 10, 31, 12), 3)
    assert [t.astimezone(UTC) for t in times] == [
        _utc(2026, 11, 1, 5, 30), _utc(2026, 11, 2, 6, 30), _utc(2026, 11, 3, 6, 30)]


def test_missing_wall_time_on_the_spring_forward_day_fires_shifted():
    # 02:30 does not exist on 2026-03-08 in New York: the run happens at 03:30 EDT (07:30Z).
    times = next_fire_times(_job(cron="30 2 * * *"), _utc(2026, 3, 7, 12), 3)
    assert [t.astimezone(UTC) for t in times] == [
        _utc(2026, 3, 8, 7, 30), _utc(2026, 3, 9, 6, 30), _utc(2026, 3, 10, 6, 30)]


def test_other_zone_and_utc():
    london = next_fire_times(_job(cron="0 9 * * *", timezone="Europe/London"), _utc(2026, 10, 24, 12), 2)
    assert [t.astimezone(UTC) for t in london] == [_utc(2026, 10, 25, 9), _utc(2026, 10, 26, 9)]
    utc = next_fire_times(_job(cron="0 9 * * *", timezone="UTC"), _utc(2026, 10, 24, 12), 1)
    assert utc[0] == _utc(2026, 10, 25, 9)


def test_fire_times_between_counts_a_week_of_weekdays():
    times = fire_times_between(_job(), _utc(2026, 11, 8), _utc(2026, 11, 15))
    assert len(times) == 5 and times[0].astimezone(UTC) == _utc(2026, 11, 9, 22, 30)
    # the bounds: since is exclusive, until inclusive
    assert fire_times_between(_job(), times[0], times[1]) == [times[1]]
    with pytest.raises(ValueError, match="timezone-aware"):
        next_fire_times(_job(), datetime(2026, 1, 1))


@pytest.mark.parametrize(("jobs", "message"), [
    ([{"name": "a", "kind": "run", "cron": "99 17 * * *", "symbols": ["SP500"]}], "cron"),
    ([{"name": "a", "kind": "run", "cron": "30 17 * *", "symbols": ["SP500"]}], "five fields"),
    ([{"name": "a", "kind": "run", "cron": "30 17 * * *", "timezone": "Mars/Olympus", "symbols": ["SP500"]}],
     "unknown time zone"),
    ([{"name": "a", "kind": "run", "cron": "30 17 * * *", "symbols": []}], "symbols"),
    ([{"name": "a", "kind": "email", "cron": "30 17 * * *", "symbols": ["SP500"]}], "kind"),
    ([{"name": "a", "kind": "run", "cron": "30 17 * * *", "symbols": ["SP500"]}] * 2, "unique"),
])
def test_bad_job_configuration_is_refused(tmp_path, jobs, message):
    path = _config(tmp_path, "".join(_job_toml(**j) for j in jobs))
    with pytest.raises(ConfigError, match=message):
        load_settings(path, env={})


def _config(tmp_path, body: str):
    path = tmp_path / "schedule.toml"
    path.write_text(body)
    return path


def _job_toml(**kw) -> str:
    lines = ["[[schedule.jobs]]"]
    for k, v in kw.items():
        if isinstance(v, str):
            lines.append(f'{k} = "{v}"')
        elif isinstance(v, bool):
            lines.append(f"{k} = {'true' if v else 'false'}")
        elif isinstance(v, list):
            lines.append(f"{k} = [{', '.join(repr(x) if isinstance(x, int) else chr(34) + x + chr(34) for x in v)}]")
        else:
            lines.append(f"{k} = {v}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ catch-up after downtime


class _Recorder:
    """An executor that records calls (and can fail on purpose)."""

    def __init__(self, fail: set[str] | None = None):
        self.calls: list[tuple[str, datetime | None]] = []
        self.recorded: list[JobOutcome] = []
        self.fail = fail or set()
        self.lock = threading.Lock()

    def __call__(self, job, scheduled_for):
        with self.lock:
            self.calls.append((job.name, scheduled_for))
        if job.name in self.fail:
            raise RuntimeError(f"{job.name} exploded")
        now = datetime.now(UTC)
        return JobOutcome(job.name, job.kind, "ok", scheduled_for, now, now)

    def record(self, outcome):
        with self.lock:
            self.recorded.append(outcome)


def _settings(jobs, **schedule) -> Settings:
    return Settings.model_validate({"schedule": {"jobs": jobs, **schedule}})


_DAILY = {"name": "close", "kind": "report", "cron": "30 17 * * mon-fri", "timezone": "America/New_York",
          "symbols": ["SP500"]}


def test_short_downtime_runs_the_missed_fire_time_once():
    rec = _Recorder()
    now = _utc(2026, 11, 10, 22, 40)  # 10 minutes after the 17:30 EST fire time
    svc = ScheduleService(_settings([_DAILY]), rec, clock=lambda: now)
    out = svc.catch_up(lambda name: "2026-11-09T22:30:00+00:00")
    assert rec.calls == [("close", _utc(2026, 11, 10, 22, 30))]
    assert [o.status for o in out] == ["ok"]


def test_long_downtime_records_missed_runs_and_skips_them():
    rec = _Recorder()
    now = _utc(2026, 11, 13, 12)  # down since Monday's run; Tue-Thu closes are a day or more old
    svc = ScheduleService(_settings([_DAILY], misfire_grace_seconds=3600), rec, clock=lambda: now)
    out = svc.catch_up(lambda name: "2026-11-09T22:30:00+00:00")
    assert rec.calls == []
    assert [o.status for o in out] == ["missed"]
    assert "3 fire time(s)" in out[0].error and out[0].scheduled_for.astimezone(UTC) == _utc(2026, 11, 12, 22, 30)
    assert rec.recorded == out  # journaled


def test_without_coalescing_each_fresh_missed_time_runs_in_order():
    rec = _Recorder()
    hourly = {**_DAILY, "cron": "0 * * * *", "timezone": "UTC"}
    now = _utc(2026, 11, 10, 12, 10)
    svc = ScheduleService(_settings([hourly], misfire_grace_seconds=4 * 3600, coalesce=False), rec,
                          clock=lambda: now)
    svc.catch_up(lambda name: "2026-11-10T06:00:00+00:00")
    # 07..12h are missed; only those within 4 h of 12:10 (09, 10, 11, 12) run, the rest are recorded
    assert [t for _, t in rec.calls] == [_utc(2026, 11, 10, h) for h in (9, 10, 11, 12)]
    assert [o.status for o in rec.recorded] == ["missed"]
    coalesced = _Recorder()
    svc = ScheduleService(_settings([hourly], misfire_grace_seconds=4 * 3600), coalesced, clock=lambda: now)
    svc.catch_up(lambda name: "2026-11-10T06:00:00+00:00")
    assert [t for _, t in coalesced.calls] == [_utc(2026, 11, 10, 12)]


def test_a_job_that_never_fired_has_nothing_to_catch_up():
    rec = _Recorder()
    svc = ScheduleService(_settings([_DAILY]), rec, clock=lambda: _utc(2026, 11, 10, 22, 40))
    assert svc.catch_up(lambda name: None) == [] and rec.calls == []


def test_after_the_upgrade_the_catch_up_starts_from_the_fire_times_the_journal_held(tmp_path, capsys):
    """A home from before the journal split: ``job_runs`` is in journal.sqlite (schema version 1)."""
    import json
    import sqlite3
    from pathlib import Path

    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    v1 = (Path(__file__).parents[1] / "integrations" / "journal_v1_schema.sql").read_text(encoding="utf-8")
    conn = sqlite3.connect(home / "journal.sqlite", isolation_level=None)
    conn.executescript(v1)
    conn.execute("INSERT INTO schema_version VALUES (1, '2026-11-01T00:00:00+00:00')")
    conn.execute("INSERT INTO job_runs (run_id, ts, job, scheduled_for, started_at, finished_at, status, detail) "
                 "VALUES (NULL, ?, 'close', ?, ?, ?, 'ok', '{\"files\": [\"close.pdf\"]}')",
                 ("2026-11-09T22:31:00.000000+00:00", "2026-11-09T22:30:00.000000+00:00",
                  "2026-11-09T22:30:00.000000+00:00", "2026-11-09T22:31:00.000000+00:00"))
    conn.close()
    settings = Settings.model_validate({"home": str(home), "schedule": {"jobs": [_DAILY],
                                                                         "misfire_grace_seconds": 3600}})
    ex = JobExecutor(settings, Secrets.from_env({}), sender=None)
    try:
        svc = ScheduleService(settings, ex, clock=lambda: _utc(2026, 11, 13, 12))
        out = svc.catch_up(ex.state().last_scheduled_fire)
        # the moved history says Monday ran: Tue-Thu are missed (a job without history would do nothing)
        assert [o.status for o in out] == ["missed"] and "3 fire time(s)" in out[0].error
        assert [r["status"] for r in ex.state().job_runs("close")] == ["missed", "ok"]
    finally:
        ex.close()
    cfg = tmp_path / "home.toml"
    cfg.write_text(f"home = '{home}'\n")
    assert main(["--config", str(cfg), "schedule", "--history", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [(r["status"], r["detail"]["files"]) for r in shown] == [("missed", []), ("ok", ["close.pdf"])]
    with sqlite3.connect(home / "journal.sqlite") as conn:
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'job_runs'").fetchall() == []


def test_disabled_jobs_are_not_scheduled():
    svc = ScheduleService(_settings([_DAILY, {**_DAILY, "name": "off", "enabled": False}]), _Recorder())
    assert list(svc.jobs) == ["close"]


# ------------------------------------------------------------------ a failing job


def test_a_failing_job_is_reported_and_the_scheduler_keeps_running():
    rec = _Recorder(fail={"bad"})
    seen: list[JobOutcome] = []
    jobs = [{**_DAILY, "name": "bad"}, {**_DAILY, "name": "good"}]
    sched = BackgroundScheduler(timezone=UTC)
    svc = ScheduleService(_settings(jobs), rec, scheduler=sched, on_outcome=seen.append,
                          trigger_for=lambda job: IntervalTrigger(seconds=0.2))
    svc.install()
    sched.start()
    try:
        deadline = time.monotonic() + 30  # generous bound on a loaded machine; not a timing assertion
        while time.monotonic() < deadline:
            names = [n for n, _ in rec.calls]
            if names.count("bad") >= 3 and names.count("good") >= 3:
                break
            time.sleep(0.05)
        assert sched.running
    finally:
        sched.shutdown(wait=True)
    names = [n for n, _ in rec.calls]
    assert names.count("bad") >= 3 and names.count("good") >= 3
    bad = [o for o in seen if o.job == "bad"]
    assert bad and all(o.status == "error" and "RuntimeError: bad exploded" in o.error for o in bad)
    assert all(o.status == "ok" for o in seen if o.job == "good")
    assert any(o.job == "bad" and o.status == "error" for o in rec.recorded)  # journaled


# ------------------------------------------------------------------ real jobs, delivery


FAST = "home = '{home}'\n[ml]\nrefit_every = 252\n[report]\nbacktest = false\n"


@pytest.fixture
def stub(httpserver):
    return BotApiStub(httpserver)


def _executor_settings(tmp_path, stub, jobs, chats=(42, 43)) -> Settings:
    home = tmp_path / "home"
    body = FAST.format(home=home)
    body += f"[telegram]\nbase_url = '{stub.base_url}'\nbase_file_url = '{stub.base_file_url}'\n"
    body += f"chat_ids = [{', '.join(str(c) for c in chats)}]\n"
    body += "".join(_job_toml(**j) for j in jobs)
    return load_settings(_config(tmp_path, body), env={})


def test_report_job_writes_the_pdf_and_sends_it_to_telegram(tmp_path, stub):
    from pypdf import PdfReader

    out_dir = tmp_path / "delivered"
    settings = _executor_settings(tmp_path, stub, [
        {"name": "close-report", "kind": "report", "cron": "30 17 * * mon-fri", "symbols": ["SP500"],
         "deliver_dir": str(out_dir)}])
    ex = JobExecutor(settings, Secrets.from_env({"TELEGRAM_BOT_TOKEN": TOKEN}))
    try:
        when = _utc(2026, 11, 10, 22, 30)
        outcome = ex(settings.schedule.jobs[0], when)
        assert outcome.status == "ok", outcome.error
        (pdf,) = outcome.files
        assert pdf == str(out_dir / "close-report-20261110-1730.pdf")
        reader = PdfReader(pdf)
        assert len(reader.pages) >= 4 and "SP500" in reader.pages[0].extract_text()
        sent = stub.calls_to("sendDocument")
        assert sorted(int(p["chat_id"]) for p, _ in sent) == [42, 43]
        assert all(f["document"][1] == open(pdf, "rb").read() for _, f in sent)
        assert "close-report" in sent[0][0]["caption"]
        rows = ex.state().job_runs("close-report")
        assert rows[0]["status"] == "ok" and rows[0]["scheduled_for"].startswith("2026-11-10T22:30")
        assert ex.state().last_scheduled_fire("close-report").startswith("2026-11-10T22:30")
        assert rows[0]["run_id"] == outcome.run_id
    finally:
        ex.close()


def test_failing_run_job_is_journaled_and_alerted(tmp_path, stub):
    settings = _executor_settings(tmp_path, stub, [
        {"name": "bad-run", "kind": "run", "cron": "0 9 * * *", "symbols": ["NOSUCH"]}], chats=(42,))
    ex = JobExecutor(settings, Secrets.from_env({"TELEGRAM_BOT_TOKEN": TOKEN}))
    try:
        outcome = ex(settings.schedule.jobs[0], None)
        assert outcome.status == "error" and "NOSUCH" in outcome.error
        (msg,) = stub.calls_to("sendMessage")
        assert msg[0]["chat_id"] == "42" and "bad-run" in msg[0]["text"] and "failed" in msg[0]["text"]
        assert TOKEN not in msg[0]["text"]
        assert ex.state().job_runs()[0]["status"] == "error"
    finally:
        ex.close()


def test_run_job_delivers_a_summary_and_reports_a_failed_delivery(tmp_path, stub):
    stub.unknown_chats.add(43)
    settings = _executor_settings(tmp_path, stub, [
        {"name": "daily-run", "kind": "run", "cron": "0 9 * * *", "symbols": ["NASDAQ"]}])
    ex = JobExecutor(settings, Secrets.from_env({"TELEGRAM_BOT_TOKEN": TOKEN}))
    try:
        outcome = ex(settings.schedule.jobs[0], None)
        assert outcome.status == "partial"
        ok = {d["to"]: d["ok"] for d in outcome.deliveries}
        assert ok == {"telegram:42": True, "telegram:43": False}
        assert "chat not found" in next(d["error"] for d in outcome.deliveries if not d["ok"]).lower()
        (path,) = outcome.files
        text = open(path).read()
        assert f"run {outcome.run_id}" in text and "== NASDAQ ==" in text
        sent = stub.calls_to("sendMessage")
        assert any(p["chat_id"] == "42" and "== NASDAQ ==" in p["text"] for p, _ in sent)
    finally:
        ex.close()


def test_a_run_job_retrains_a_model_due_after_the_run(tmp_path, stub, monkeypatch, capsys):
    """ml.retrain_after_days: the job's decision predicts from the stored 31-day-old model
    (not stale under a 60-day limit, so it trains nothing) and the job retrains it afterwards."""
    from agents.cli import main

    home = tmp_path / "home"
    body = FAST.format(home=home).replace(
        "refit_every = 252\n", "refit_every = 252\nmax_model_age_days = 60.0\nretrain_after_days = 21.0\n")
    body += _job_toml(name="daily-run", kind="run", cron="0 9 * * *", symbols=["NASDAQ"])
    path = _config(tmp_path, body)
    monkeypatch.setenv("REGIMEDESK_CONFIG", str(path))
    assert main(["train", "NASDAQ", "--as-of", "2018-11-30", "--json"]) == 0
    capsys.readouterr()
    settings = load_settings(path, env={})
    ex = JobExecutor(settings, Secrets.from_env({}))
    try:
        outcome = ex(settings.schedule.jobs[0], None)
        assert outcome.status == "ok", outcome.error
        assert ex.state().job_runs()[0]["status"] == "ok"
        text = open(outcome.files[0]).read()
        assert "Model NASDAQ: retrained after the run (model v0001 is 31 days old (ml.retrain_after_days 21)): v0002" \
            in text
    finally:
        ex.close()
    from integrations import Journal

    with Journal(home / "journal.sqlite") as j:
        (out,) = [o["output"] for o in j.show_run(outcome.run_id)["agent_outputs"] if o["agent"] == "ml_signal"]
    used = out["ml_signal"]["NASDAQ"]
    assert used["model_version"] == "v0001" and used["model_note"] is None  # the decision trained nothing


def test_a_run_job_checks_its_models_for_drift_and_alerts_a_breach_once(tmp_path, stub, monkeypatch, capsys):
    """ml.drift.after_runs: after the run the job checks the stored model (trained a month
    earlier, so 21 bars after its data, 20 needed); the breaches are in the job's summary and journal at
    every run, the Telegram drift alert goes out at the first run only."""
    from agents.cli import main
    from agents.services.drift import DRIFT_SESSION
    from integrations import Journal

    home = tmp_path / "home"
    body = FAST.format(home=home).replace(
        "refit_every = 252\n", "refit_every = 252\nmax_model_age_days = 60.0\nretrain_after_days = 0\n")
    body += "[ml.drift]\npsi = 0.001\nks_pvalue = 1e-300\nbrier_increase = 1.0\n"
    body += f"[telegram]\nbase_url = '{stub.base_url}'\nbase_file_url = '{stub.base_file_url}'\nchat_ids = [42]\n"
    body += _job_toml(name="daily-run", kind="run", cron="0 9 * * *", symbols=["NASDAQ"])
    path = _config(tmp_path, body)
    monkeypatch.setenv("REGIMEDESK_CONFIG", str(path))
    assert main(["train", "NASDAQ", "--as-of", "2018-11-28", "--json"]) == 0
    capsys.readouterr()
    settings = load_settings(path, env={})
    ex = JobExecutor(settings, Secrets.from_env({"TELEGRAM_BOT_TOKEN": TOKEN}))
    try:
        texts = []
        for _ in range(2):
            outcome = ex(settings.schedule.jobs[0], None)
            assert outcome.status == "ok", outcome.error
            texts.append(open(outcome.files[0]).read())
    finally:
        ex.close()
    for text in texts:
        (line,) = [x for x in text.splitlines() if x.startswith("Model NASDAQ v0001: drift: PSI of ")]
    alerts = [p["text"] for p, _ in stub.calls_to("sendMessage") if p["text"].startswith("RegimeDesk model drift:")]
    assert len(alerts) == 1 and alerts[0].splitlines()[1].startswith("NASDAQ v0001 (data to 2018-11-28")
    with Journal(home / "journal.sqlite") as j:
        events = j.live_events(DRIFT_SESSION, limit=10_000)
    assert events and len(events) % 2 == 0  # the same breaches journaled at both runs
    half = len(events) // 2
    assert [e["message"] for e in events[:half]] == [e["message"] for e in events[half:]]
    assert (home / "models" / "NASDAQ" / "drift-alerted.json").exists()


def test_no_token_means_no_telegram(tmp_path, stub):
    settings = _executor_settings(tmp_path, stub, [
        {"name": "r", "kind": "run", "cron": "0 9 * * *", "symbols": ["NOSUCH"]}])
    ex = JobExecutor(settings, Secrets.from_env({}))
    try:
        assert ex.sender is None
        assert ex(settings.schedule.jobs[0], None).status == "error"
        assert stub.calls == []
    finally:
        ex.close()


def test_sender_hides_the_token_and_validates():
    s = TelegramSender(TOKEN, base_url="http://127.0.0.1:9/bot")
    assert TOKEN not in repr(s)
    with pytest.raises(ValueError, match="TELEGRAM_BOT_TOKEN"):
        TelegramSender("  ")
    with pytest.raises(ValueError, match="not a file"):
        s.send_document([1], "/nonexistent.pdf")


# ------------------------------------------------------------------ the command line


def test_schedule_list_once_and_history(tmp_path, stub, capsys, monkeypatch):
    body = FAST.format(home=tmp_path / "home") + _job_toml(
        name="bad", kind="run", cron="30 17 * * mon-fri", symbols=["NOSUCH"]) + _job_toml(
        name="weekly", kind="report", cron="0 8 * * mon", timezone="Europe/London", symbols=["SP500"])
    cfg = str(_config(tmp_path, body))
    assert main(["--config", cfg, "schedule", "--list", "--count", "2"]) == 0
    out = capsys.readouterr().out
    assert "bad" in out and "weekly" in out and "Europe/London" in out and "17:30" in out
    assert main(["--config", cfg, "schedule", "--list", "--json"]) == 0
    import json

    doc = json.loads(capsys.readouterr().out)
    assert [d["name"] for d in doc] == ["bad", "weekly"] and len(doc[0]["next"]) == 3
    assert all(datetime.fromisoformat(t).strftime("%H:%M") == "17:30" for t in doc[0]["next"])
    assert main(["--config", cfg, "schedule", "--once", "bad"]) == 1
    assert "job bad (manual): error" in capsys.readouterr().err
    assert main(["--config", cfg, "schedule", "--once", "nope"]) == 2
    assert "no job named 'nope'" in capsys.readouterr().err
    assert main(["--config", cfg, "schedule", "--history"]) == 0
    assert "NOSUCH" in capsys.readouterr().out
    empty = str(_config(tmp_path, FAST.format(home=tmp_path / "home")))
    assert main(["--config", empty, "schedule", "--list"]) == 2
    assert "no jobs configured" in capsys.readouterr().err


def test_history_records_survive_in_the_schedule_state(tmp_path):
    j = ScheduleStateStore(tmp_path / "schedule_state.sqlite")
    t = _utc(2026, 1, 2, 3)
    j.record_job_run("a", scheduled_for=t, started_at=t, finished_at=t + timedelta(seconds=5), status="ok",
                     detail={"files": ["x.pdf"]})
    j.record_job_run("a", scheduled_for=None, started_at=t, finished_at=t, status="error", detail={"error": "boom"})
    assert [r["status"] for r in j.job_runs("a")] == ["error", "ok"]
    assert j.last_scheduled_fire("a") == "2026-01-02T03:00:00.000000+00:00"
    assert j.last_scheduled_fire("b") is None
    with pytest.raises(ValueError):
        j.job_runs(limit=0)
    j.close()
    with ScheduleStateStore(tmp_path / "schedule_state.sqlite") as again:  # durable: a restart catches up from it
        assert again.last_scheduled_fire("a") == "2026-01-02T03:00:00.000000+00:00"


def test_sender_errors_never_carry_the_token(httpserver):
    import json as _json

    def handler(request):
        from werkzeug import Response

        if request.path.endswith("/getMe"):
            body = {"ok": True, "result": {"id": 1, "is_bot": True, "first_name": "b", "username": "b_bot"}}
            return Response(_json.dumps(body), content_type="application/json")
        body = {"ok": False, "error_code": 400, "description": f"Bad Request: bad url /bot{TOKEN}/sendMessage"}
        return Response(_json.dumps(body), status=400, content_type="application/json")

    httpserver.expect_request(f"/bot{TOKEN}/getMe").respond_with_handler(handler)
    httpserver.expect_request(f"/bot{TOKEN}/sendMessage").respond_with_handler(handler)
    sender = TelegramSender(TOKEN, base_url=httpserver.url_for("/bot"), retries=0)
    (d,) = sender.send_message([42], "hello")
    assert not d.ok and "***" in d.error
    assert TOKEN.split(":")[1].lower() not in d.error.lower()  # the library rewrites the case


def _our_logs(caplog) -> str:
    """What RegimeDesk logged (the stub server's own access log quotes the request paths)."""
    return "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records if r.name != "werkzeug")


def _token_free(text: str) -> None:
    low = text.lower()
    assert TOKEN.lower() not in low and TOKEN.split(":")[1].lower() not in low, text


def test_a_refused_token_is_a_failed_delivery_not_an_exception(httpserver, caplog):
    from tests.stubs import echo_telegram_401

    httpserver.expect_request(f"/bot{TOKEN}/getMe").respond_with_handler(echo_telegram_401)
    sender = TelegramSender(TOKEN, base_url=httpserver.url_for("/bot"), retries=0)
    deliveries = sender.send_message([42, 43], "hello")
    assert [d.chat_id for d in deliveries] == [42, 43] and not any(d.ok for d in deliveries)
    assert all(d.error.startswith("InvalidToken: The token `***` was rejected") for d in deliveries)
    for d in deliveries:
        _token_free(d.error)
    _token_free(_our_logs(caplog))


def test_job_runs_never_hold_a_secret(tmp_path, httpserver, caplog, monkeypatch):
    """Without the command line (nothing registered): the executor redacts with its own secrets."""
    from tests.stubs import echo_telegram_401

    httpserver.expect_request(f"/bot{TOKEN}/getMe").respond_with_handler(echo_telegram_401)
    home = tmp_path / "home"
    body = FAST.format(home=home) + f"[telegram]\nbase_url = '{httpserver.url_for('/bot')}'\nchat_ids = [42]\n"
    body += _job_toml(name="bad", kind="run", cron="30 17 * * mon-fri", symbols=["SP500"])
    settings = load_settings(_config(tmp_path, body), env={})
    key = "sk-ECHO-0123456789abcdef"
    ex = JobExecutor(settings, Secrets.from_env({"TELEGRAM_BOT_TOKEN": TOKEN, "OPENAI_API_KEY": key}))

    def explode(job, stamp):
        raise RuntimeError(f"service said: bad key {key} for /bot{TOKEN}/sendMessage")

    monkeypatch.setattr(ex, "_run", explode)
    try:
        outcome = ex(settings.schedule.jobs[0], None)
        assert outcome.status == "error" and outcome.error.startswith("RuntimeError: service said: bad key ***")
        ex.record(JobOutcome("bad", "run", "missed", None, outcome.started_at, outcome.finished_at,
                             summary=f"summary {key}", deliveries=({"to": "telegram:42", "ok": False,
                                                                    "error": f"at /bot{TOKEN}/x"},),
                             error=f"error {TOKEN}"))
        rows = ex.state().job_runs("bad")
    finally:
        ex.close()
    assert len(rows) == 2 and httpserver.log  # the failure alert was attempted
    assert rows[0]["detail"]["deliveries"][0]["error"] == "at /bot***/x"
    files = [p for p in home.iterdir() if p.name.startswith(("journal.sqlite", "schedule_state.sqlite"))]
    assert any(p.name == "schedule_state.sqlite" for p in files)
    for text in (str(rows), _our_logs(caplog), *(p.read_bytes().decode("utf-8", "replace") for p in files)):
        _token_free(text)
        assert key.lower() not in text.lower()
