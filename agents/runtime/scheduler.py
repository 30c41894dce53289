"""Scheduled graph runs, PDF reports and scans (``regimedesk schedule``).

Jobs come from ``[[schedule.jobs]]`` in the configuration: a five-field cron expression in
an IANA time zone, a kind (``run``, ``report`` or ``scan``) and symbols (a scan job: symbols
or a universe). APScheduler fires them; each execution is appended with its outcome to the
scheduler's working state (``home/schedule_state.sqlite``, table ``job_runs``; the graph run
it started is in the journal), and its result is delivered to a folder and, when a bot token
and chats are configured, to Telegram.

A scan job runs :func:`agents.runtime.scan.run_scan` (its records become the scan state
``regimedesk scan`` compares with) and delivers :func:`agents.runtime.scan_text.scan_summary`:
the symbols whose regimes changed since their last scan, then the failures. A scan in which
every symbol failed is a failed job.

Time zones and daylight saving: fire times follow the wall clock of the job's zone. A wall
time that does not exist on the spring-forward day (02:30 in New York) fires at the same
instant shifted forward (03:30 EDT); a wall time that happens twice on the fall-back day
fires once, at its first occurrence.

Missed runs, on purpose: a job is never run twice at once (``max_instances=1``). While the
scheduler runs, a fire time missed by less than ``schedule.misfire_grace_seconds`` (a busy
process, a suspended laptop) still runs, and several missed times of one job run once when
``schedule.coalesce`` is true. After downtime, on start, every fire time since the job's
last recorded one is examined: the ones younger than the grace run (once, if coalescing);
older ones are recorded as ``missed`` and skipped, so a report is never sent
for a stale close days later. A job that has never fired has nothing to catch up.

A failing job is recorded (status ``error``), alerted to Telegram when configured, and does
not stop the scheduler or other jobs.

No secret reaches ``job_runs``, an alert or a log line: every outcome's error, summary and
delivery errors go through :func:`integrations.redact` with the configured secrets before
they are recorded or returned.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from agents.config import SECRET_VARIABLES, ScheduledJob, Secrets, Settings
from analytics import RegimeDeskError
from integrations import redact

__all__ = [
    "JobOutcome",
    "JobExecutor",
    "ScheduleService",
    "job_trigger",
    "next_fire_times",
    "fire_times_between",
    "build_sender",
    "open_schedule_state",
]

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


_SECOND = timedelta(seconds=1)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class _WallClockCronTrigger(CronTrigger):
    """A cron trigger that fires once per wall-clock time, also on the fall-back day.

    It also steps from one fire time to the next by whole seconds: APScheduler's own step
    of one microsecond can return the same instant again in the repeated hour.
    """

    def _wall(self, moment: datetime) -> datetime:
        return moment.astimezone(self.timezone).replace(tzinfo=None)

    def get_next_fire_time(self, previous_fire_time, now):
        # Arithmetic in UTC: adding a second to a zone-local time in the repeated hour would
        # land in its first occurrence again (datetime arithmetic ignores ``fold``).
        now = now.astimezone(UTC)
        start = now if previous_fire_time is None else min(now, previous_fire_time.astimezone(UTC) + _SECOND)
        t = super().get_next_fire_time(None, start)
        if previous_fire_time is not None:
            prev_wall = self._wall(previous_fire_time)
            while t is not None and self._wall(t) == prev_wall:  # the repeated hour: same wall time
                t = super().get_next_fire_time(None, t.astimezone(UTC) + _SECOND)
        return t


def job_trigger(job: ScheduledJob) -> CronTrigger:
    """The APScheduler trigger of ``job``: its cron expression on its zone's wall clock."""
    fields = job.cron.split()
    return _WallClockCronTrigger(minute=fields[0], hour=fields[1], day=fields[2], month=fields[3],
                                 day_of_week=fields[4], timezone=ZoneInfo(job.timezone))


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")
    return moment


def next_fire_times(job: ScheduledJob, after: datetime, count: int = 3) -> list[datetime]:
    """The next ``count`` fire times of ``job`` at or after ``after``, in the job's zone.

    Parameters
    ----------
    job : ScheduledJob
    after : datetime
        Timezone-aware start instant.
    count : int, default 3
    """
    if count < 1:
        raise ValueError("count must be >= 1")
    trigger = job_trigger(job)
    now = _aware(after, "after").astimezone(UTC)
    prev = None
    out: list[datetime] = []
    while len(out) < count:
        t = trigger.get_next_fire_time(prev, now)
        if t is None:
            break
        out.append(t)
        prev, now = t, t.astimezone(UTC) + _SECOND
    return out


def fire_times_between(job: ScheduledJob, since: datetime, until: datetime, limit: int = 10_000) -> list[datetime]:
    """Fire times ``t`` of ``job`` with ``since < t <= until`` (at most ``limit``, the latest kept)."""
    since, until = _aware(since, "since").astimezone(UTC), _aware(until, "until").astimezone(UTC)
    trigger = job_trigger(job)
    prev, now = since, since + _SECOND
    out: list[datetime] = []
    while True:
        t = trigger.get_next_fire_time(prev, now)
        if t is None or t.astimezone(UTC) > until:
            return out[-limit:]
        out.append(t)
        prev, now = t, t.astimezone(UTC) + _SECOND


@dataclass(frozen=True)
class JobOutcome:
    """What one execution of a scheduled job did.

    ``status`` is ``ok``, ``partial`` (the job ran; a delivery failed), ``error`` (the job
    failed; ``error`` says why) or ``missed`` (fire times skipped after downtime).
    """

    job: str
    kind: str
    status: str
    scheduled_for: datetime | None
    started_at: datetime
    finished_at: datetime
    run_id: str | None = None
    summary: str = ""
    files: tuple[str, ...] = ()
    deliveries: tuple[dict[str, Any], ...] = ()
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        for k in ("scheduled_for", "started_at", "finished_at"):
            d[k] = d[k].isoformat() if d[k] is not None else None
        d["files"], d["deliveries"] = list(self.files), list(self.deliveries)
        return d


def _scrubbed(outcome: JobOutcome, secrets: Iterable[str | None] = ()) -> JobOutcome:
    """``outcome`` with every secret (``secrets`` and the registered ones) redacted from its texts."""
    deliveries = tuple({**d, "error": redact(d["error"], secrets)} if isinstance(d.get("error"), str) else d
                       for d in outcome.deliveries)
    return dataclasses.replace(
        outcome, summary=redact(outcome.summary, secrets), deliveries=deliveries,
        error=redact(outcome.error, secrets) if outcome.error is not None else None)


def open_schedule_state(settings: Settings):
    """The schedule state store of ``settings``' home (an :class:`integrations.ScheduleStateStore`).

    A journal of an older RegimeDesk still holding ``job_runs`` hands it over on the first open,
    so the catch-up after the upgrade starts from the last fire time recorded before it.
    """
    from integrations import ScheduleStateStore

    settings.home_dir.mkdir(parents=True, exist_ok=True)
    return ScheduleStateStore(settings.paths.schedule_state, legacy_journal=settings.paths.journal)


def build_sender(settings: Settings, secrets: Secrets):
    """A :class:`integrations.TelegramSender` when a token and chats are configured, else None."""
    from integrations import TelegramSender

    token = secrets.get("telegram_bot_token")
    tg = settings.telegram
    if not token or not tg.chat_ids:
        return None
    return TelegramSender(token, base_url=tg.base_url, base_file_url=tg.base_file_url, timeout=tg.timeout)


def _targets(job: ScheduledJob, shown: int = 20) -> str:
    """What a job covers, in words: its universe, else its symbols (the first ``shown``)."""
    if job.universe is not None:
        return f"universe {job.universe}"
    head = ", ".join(job.symbols[:shown])
    return head if len(job.symbols) <= shown else f"{head} and {len(job.symbols) - shown} more"


def _unique_path(folder: Path, stem: str, suffix: str) -> Path:
    path = folder / f"{stem}{suffix}"
    n = 2
    while path.exists():
        path = folder / f"{stem}-{n}{suffix}"
        n += 1
    return path


@dataclass
class JobExecutor:
    """Runs one job to completion and never raises: the outcome says what happened.

    Parameters
    ----------
    settings, secrets
        Configuration.
    sender : integrations.TelegramSender, optional
        Where Telegram deliveries go (default: :func:`build_sender`; None sends nothing).
    clock : callable, optional
        Returns the current aware datetime (tests).
    status : callable, optional
        Receives progress lines of long work.
    """

    settings: Settings
    secrets: Secrets
    sender: Any = "default"
    clock: Clock = _utcnow
    status: Callable[[str], None] | None = None
    _state: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.sender == "default":
            self.sender = build_sender(self.settings, self.secrets)

    def _secret_values(self) -> tuple[str | None, ...]:
        return tuple(self.secrets.get(name) for name in SECRET_VARIABLES)

    def state(self):
        """The store job executions are recorded in (:func:`open_schedule_state`), opened on first use."""
        if self._state is None:
            self._state = open_schedule_state(self.settings)
        return self._state

    def close(self) -> None:
        if self._state is not None:
            self._state.close()
            self._state = None

    def _folder(self, job: ScheduledJob) -> Path:
        folder = job.deliver_dir.expanduser() if job.deliver_dir else self.settings.reports_dir
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _scan(self, job: ScheduledJob):
        from agents.runtime.scan import run_scan
        from agents.services.portfolio import resolve_universe

        if job.universe is not None:
            uni = resolve_universe(self.settings, job.universe)
            name, symbols = uni.name, list(uni.symbols)
        else:
            name, symbols = _targets(job), list(dict.fromkeys(s.upper() for s in job.symbols))
        step = max(1, len(symbols) // 10)

        def progress(done: int, failed: int, total: int) -> None:
            if self.status is not None and (done == total or done % step == 0):
                self.status(f"scan {job.name}: {done}/{total} symbols, {failed} failed")

        outcome = run_scan(self.settings, symbols, universe=name, source=job.source, workers=job.workers,
                           progress=progress, save=True)
        if outcome.records and not any(r.ok for r in outcome.records):
            first = outcome.records[0]
            raise RegimeDeskError(f"every symbol failed ({len(outcome.records)}); {first.symbol}: {first.error}")
        return outcome

    def _run(self, job: ScheduledJob, stamp: str) -> tuple[Any, Path | None, list[str]]:
        from agents.runtime.runner import Runner
        from agents.services.context import build_request

        report_path = None
        if job.kind == "report":
            report_path = _unique_path(self._folder(job), f"{job.name}-{stamp}", f".{job.format}")
        request = build_request(
            self.settings, self.secrets, job.symbols, source=job.source, broker=job.broker if job.kind == "run" else "none",
            approve=job.approve if job.kind == "run" else False,
            report=str(report_path) if report_path else None, report_backtest=self.settings.report.backtest,
        )
        with Runner(self.settings, self.secrets) as runner:
            runner.ctx.status = self.status
            outcome = runner.start(request)
            after: list[str] = []
            if job.kind == "run":  # after the orders: the next run's decision finds a fresh model
                from agents.services.ml import retrain_due_models

                if self.settings.ml.drift.after_runs:
                    after += self._drift_lines(runner.ctx, request.to_dict())
                for d in retrain_due_models(runner.ctx, request.to_dict()):
                    after.append(f"Model {d['symbol']}: retrained after the run ({d['reason']}): {d['version']}"
                                 if "error" not in d else
                                 f"Model {d['symbol']}: the retrain after the run failed ({d['reason']}): {d['error']}")
        return outcome, report_path, after

    def _drift_lines(self, ctx, request: dict[str, Any]) -> list[str]:
        """Check the run's models for drift (breaches journaled, new ones alerted, marked due if
        configured); one summary line per model with a breach or whose check failed."""
        from agents.services.drift import drift_checks

        try:
            done = drift_checks(ctx, request, sender=self.sender)
        except Exception as exc:  # noqa: BLE001 - a failed check never fails the run job
            return [f"Models: the drift check failed: {type(exc).__name__}: {exc}"]
        lines = []
        for d in done:
            rep = d.get("report")
            if rep is None:
                if "ModelNotFoundError" not in d["error"]:
                    lines.append(f"Model {d['symbol']}: the drift check failed: {d['error']}")
            elif rep["breaches"]:
                shown = "; ".join(b["text"] for b in rep["breaches"][:3])
                more = f" (+{len(rep['breaches']) - 3} more)" if len(rep["breaches"]) > 3 else ""
                lines.append(f"Model {d['symbol']} {rep['version']}: drift: {shown}{more}")
        return lines

    def _deliver(self, job: ScheduledJob, outcome, report_path: Path | None, summary: str, stamp: str):
        files: list[str] = []
        deliveries: list[dict[str, Any]] = []
        if job.kind == "report":
            pdf = outcome.state.get("report", {}).get("pdf") or {}
            if pdf.get("error"):
                raise RegimeDeskError(f"the report could not be written: {pdf['error']}")
            files.append(str(report_path))
        else:
            text_path = _unique_path(self._folder(job), f"{job.name}-{stamp}", ".txt")
            tmp = text_path.with_suffix(".txt.tmp")
            tmp.write_text(summary + "\n", encoding="utf-8")
            tmp.replace(text_path)
            files.append(str(text_path))
        if job.telegram and self.sender is not None:
            chats = self.settings.telegram.chat_ids
            caption = f"RegimeDesk {job.kind} '{job.name}' ({_targets(job)})"
            if job.kind == "report":
                sent = self.sender.send_document(chats, files[0], caption=caption)
            else:
                sent = self.sender.send_message(chats, f"{caption}\n\n{summary}")
            deliveries += [{"to": f"telegram:{d.chat_id}", "ok": d.ok, "error": d.error} for d in sent]
        return files, deliveries

    def _alert(self, text: str) -> None:
        if self.sender is None:
            return
        try:
            self.sender.send_message(self.settings.telegram.chat_ids, text)
        except Exception as exc:  # an alert that cannot be sent must not hide the job's own outcome
            log.warning("could not send the failure alert to Telegram: %s",
                        redact(f"{type(exc).__name__}: {exc}", self._secret_values()))

    def __call__(self, job: ScheduledJob, scheduled_for: datetime | None = None) -> JobOutcome:
        """Run ``job`` now (for the fire time ``scheduled_for``, None for a manual run)."""
        from agents.services.run_summary import run_summary_text

        started = self.clock()
        stamp = (scheduled_for or started).astimezone(ZoneInfo(job.timezone)).strftime("%Y%m%d-%H%M")
        if job.kind == "scan":
            return self._finish(self._scan_job(job, scheduled_for, started, stamp))
        run_id = None
        try:
            outcome, report_path, after = self._run(job, stamp)
            run_id = outcome.run_id
            summary = "\n".join([run_summary_text(outcome), *after])
            files, deliveries = self._deliver(job, outcome, report_path, summary, stamp)
            status = "ok" if all(d["ok"] for d in deliveries) else "partial"
            result = JobOutcome(job.name, job.kind, status, scheduled_for, started, self.clock(), run_id,
                                summary, tuple(files), tuple(deliveries))
        except Exception as exc:  # a job failure is an outcome, never a crash of the scheduler
            result = self._failed(job, scheduled_for, started, run_id, exc)
        return self._finish(result)

    def _scan_job(self, job: ScheduledJob, scheduled_for: datetime | None, started: datetime,
                  stamp: str) -> JobOutcome:
        from agents.runtime.scan_text import scan_summary

        try:
            summary = scan_summary(self._scan(job))
            files, deliveries = self._deliver(job, None, None, summary, stamp)
            status = "ok" if all(d["ok"] for d in deliveries) else "partial"
            return JobOutcome(job.name, job.kind, status, scheduled_for, started, self.clock(), None,
                              summary, tuple(files), tuple(deliveries))
        except Exception as exc:  # a job failure is an outcome, never a crash of the scheduler
            return self._failed(job, scheduled_for, started, None, exc)

    def _failed(self, job: ScheduledJob, scheduled_for: datetime | None, started: datetime, run_id: str | None,
                exc: Exception) -> JobOutcome:
        err = redact(f"{type(exc).__name__}: {exc}", self._secret_values())
        log.debug("job %s failed: %s", job.name, err)
        result = JobOutcome(job.name, job.kind, "error", scheduled_for, started, self.clock(), run_id, error=err)
        if job.telegram:
            self._alert(f"RegimeDesk job '{job.name}' failed: {err}")
        return result

    def _finish(self, result: JobOutcome) -> JobOutcome:
        result = _scrubbed(result, self._secret_values())
        self.record(result)
        return result

    def record(self, outcome: JobOutcome) -> None:
        """Append ``outcome``, secrets redacted, to the schedule state (a failure is logged, not raised)."""
        outcome = _scrubbed(outcome, self._secret_values())
        try:
            self.state().record_job_run(
                outcome.job, scheduled_for=outcome.scheduled_for, started_at=outcome.started_at,
                finished_at=outcome.finished_at, status=outcome.status, run_id=outcome.run_id,
                detail={"files": list(outcome.files), "deliveries": list(outcome.deliveries),
                        "error": outcome.error, "kind": outcome.kind})
        except Exception:
            log.error("could not record the outcome of job %s", outcome.job, exc_info=True)


class ScheduleService:
    """The configured jobs on an APScheduler scheduler, with catch-up after downtime.

    Parameters
    ----------
    settings : Settings
    executor : callable, optional
        ``executor(job, scheduled_for) -> JobOutcome`` (default: a :class:`JobExecutor`).
    scheduler : apscheduler scheduler, optional
        Default ``BlockingScheduler`` in UTC; tests pass a ``BackgroundScheduler``.
    trigger_for : callable, optional
        ``trigger_for(job)`` overrides :func:`job_trigger` (tests use short intervals).
    clock : callable, optional
        Current aware datetime.
    on_outcome : callable, optional
        Receives every :class:`JobOutcome` (the CLI prints them).
    """

    def __init__(self, settings: Settings, executor: Callable[..., JobOutcome], *, scheduler: Any = None,
                 trigger_for: Callable[[ScheduledJob], Any] | None = None, clock: Clock = _utcnow,
                 on_outcome: Callable[[JobOutcome], None] | None = None) -> None:
        from apscheduler.schedulers.blocking import BlockingScheduler

        self.settings = settings
        self.executor = executor
        self.jobs: dict[str, ScheduledJob] = {j.name: j for j in settings.schedule.jobs if j.enabled}
        self.clock = clock
        self.on_outcome = on_outcome
        self.trigger_for = trigger_for or job_trigger
        sched = settings.schedule
        self.scheduler = scheduler or BlockingScheduler(timezone=UTC)
        self._lock = threading.Lock()
        self._defaults = {"coalesce": sched.coalesce, "misfire_grace_time": sched.misfire_grace_seconds,
                          "max_instances": 1}

    def install(self) -> None:
        """Add every enabled job to the scheduler and listen for missed fire times."""
        from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED

        for job in self.jobs.values():
            self.scheduler.add_job(self._fire, trigger=self.trigger_for(job), args=[job.name], id=job.name,
                                   name=job.name, replace_existing=True, **self._defaults)
        self.scheduler.add_listener(self._event, EVENT_JOB_MISSED | EVENT_JOB_ERROR)

    def _emit(self, outcome: JobOutcome) -> None:
        if self.on_outcome is not None:
            try:
                self.on_outcome(outcome)
            except Exception:
                log.warning("outcome callback failed", exc_info=True)

    def _record(self, outcome: JobOutcome) -> None:
        record = getattr(self.executor, "record", None)
        if record is not None:
            record(outcome)

    def _event(self, event) -> None:
        from apscheduler.events import EVENT_JOB_MISSED

        job = self.jobs.get(event.job_id)
        if job is None:
            return
        now = self.clock()
        if event.code == EVENT_JOB_MISSED:
            outcome = JobOutcome(job.name, job.kind, "missed", event.scheduled_run_time, now, now,
                                 error="fire time missed by more than the misfire grace time")
        else:  # _fire never raises; this is a last line of defence
            outcome = JobOutcome(job.name, job.kind, "error", event.scheduled_run_time, now, now,
                                 error=redact(f"{type(event.exception).__name__}: {event.exception}"))
        self._record(outcome)
        self._emit(outcome)

    def _fire(self, name: str) -> None:
        job = self.jobs[name]
        now = self.clock()
        grace = timedelta(seconds=self.settings.schedule.misfire_grace_seconds)
        recent = fire_times_between(job, now - grace - timedelta(seconds=1), now, limit=1) \
            if self.trigger_for is job_trigger else []
        self.run(job, recent[-1] if recent else now)

    def run(self, job: ScheduledJob, scheduled_for: datetime | None) -> JobOutcome:
        """Execute ``job`` through the executor; an exception there becomes an ``error`` outcome."""
        started = self.clock()
        try:
            outcome = self.executor(job, scheduled_for)
        except Exception as exc:
            err = redact(f"{type(exc).__name__}: {exc}")
            log.error("job %s raised %s", job.name, err)
            outcome = JobOutcome(job.name, job.kind, "error", scheduled_for, started, self.clock(), error=err)
            self._record(outcome)
        self._emit(outcome)
        return outcome

    def catch_up(self, last_fire: Callable[[str], str | None]) -> list[JobOutcome]:
        """Handle fire times missed while the scheduler was down (see the module docstring).

        ``last_fire(name)`` returns the latest recorded fire time of a job (ISO) or None
        (``ScheduleStateStore.last_scheduled_fire``).
        """
        now = self.clock()
        grace = timedelta(seconds=self.settings.schedule.misfire_grace_seconds)
        out: list[JobOutcome] = []
        for job in self.jobs.values():
            last = last_fire(job.name)
            if last is None:
                continue
            missed = fire_times_between(job, datetime.fromisoformat(last), now)
            if not missed:
                continue
            fresh = [t for t in missed if now - t <= grace]
            stale = [t for t in missed if now - t > grace]
            if stale:
                outcome = JobOutcome(
                    job.name, job.kind, "missed", stale[-1], now, now,
                    error=f"{len(stale)} fire time(s) from {stale[0].isoformat()} to {stale[-1].isoformat()} "
                          f"missed while the scheduler was down, older than the misfire grace; skipped")
                self._record(outcome)
                self._emit(outcome)
                out.append(outcome)
            for t in (fresh[-1:] if self.settings.schedule.coalesce else fresh):
                out.append(self.run(job, t))
        return out

    def next_runs(self, count: int = 3) -> Mapping[str, list[datetime]]:
        """The next ``count`` fire times of every enabled job."""
        now = self.clock()
        return {name: next_fire_times(job, now, count) for name, job in self.jobs.items()}
