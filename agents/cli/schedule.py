"""``regimedesk schedule``: run the configured jobs on their cron schedules."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from datetime import UTC, datetime

from agents.cli.helptext import examples
from agents.cli.output import print_json, print_table

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "schedule",
        help="run the scheduled graph runs, reports and universe scans from the configuration",
        description=(
            "Run the jobs listed under [[schedule.jobs]] in the configuration (see 'regimedesk "
            "config init', which writes a commented template): graph runs, reports and universe scans on cron "
            "schedules in a time zone, e.g. "
            "weekdays 17:30 America/New_York. Results go to the job's folder (default "
            "home/reports) and, when TELEGRAM_BOT_TOKEN and telegram.chat_ids are set, to "
            "Telegram. Every execution is journaled; a failing job is reported and the others go "
            "on. After downtime, missed fire times younger than schedule.misfire_grace_seconds "
            "run once (coalesced); older ones are recorded as missed. Runs until Ctrl-C or "
            "SIGTERM, which let the current job finish."
        ),
    )
    p.epilog = examples("regimedesk schedule --list", "regimedesk schedule --once JOB",
                        "regimedesk schedule")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--list", action="store_true", help="show the jobs and their next fire times, then exit")
    mode.add_argument("--once", metavar="JOB", help="run one job now, deliver its result, then exit")
    mode.add_argument("--history", nargs="?", const="", metavar="JOB",
                      help="show the latest journaled executions (of one job or all), then exit")
    p.add_argument("--count", type=int, default=3, help="fire times per job shown by --list (default 3)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_schedule)


def _executor(ctx):
    from agents.runtime.scheduler import JobExecutor

    return JobExecutor(ctx.settings, ctx.secrets, status=lambda m: sys.stderr.write(f"  {m}\n"))


def _print_outcome(o) -> None:
    when = o.scheduled_for.isoformat() if o.scheduled_for else "manual"
    line = f"[{datetime.now(UTC):%Y-%m-%d %H:%M:%S}Z] job {o.job} ({when}): {o.status}"
    if o.run_id:
        line += f", run {o.run_id}"
    if o.files:
        line += f", wrote {', '.join(o.files)}"
    for d in o.deliveries:
        line += f", {d['to']} {'sent' if d['ok'] else 'FAILED: ' + str(d['error'])}"
    if o.error:
        line += f": {o.error}"
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _schedule(args: argparse.Namespace, ctx) -> int:
    jobs = {j.name: j for j in ctx.settings.schedule.jobs}
    if args.count < 1 or args.count > 50:
        raise ValueError("--count must be between 1 and 50")
    if args.history is not None:
        return _history(args, ctx)
    if not jobs:
        raise ValueError("no jobs configured: add [[schedule.jobs]] tables to the configuration "
                         "(see 'regimedesk config init', which writes a commented template)")
    if args.list:
        return _list(args, ctx)
    if args.once:
        if args.once not in jobs:
            raise ValueError(f"--once: no job named {args.once!r}; jobs are {', '.join(jobs)}")
        ex = _executor(ctx)
        try:
            outcome = ex(jobs[args.once], None)
        finally:
            ex.close()
        if args.json:
            print_json(outcome.to_dict())
        else:
            _print_outcome(outcome)
            if outcome.summary:
                print(outcome.summary)
        return 1 if outcome.status == "error" else 0
    return _serve(ctx)


def _list(args: argparse.Namespace, ctx) -> int:
    from agents.runtime.scheduler import next_fire_times

    now = datetime.now(UTC)
    doc = []
    for job in ctx.settings.schedule.jobs:
        times = next_fire_times(job, now, args.count) if job.enabled else []
        doc.append({"name": job.name, "kind": job.kind, "cron": job.cron, "timezone": job.timezone,
                    "symbols": job.symbols, "universe": job.universe, "workers": job.workers,
                    "enabled": job.enabled,
                    "next": [t.isoformat() for t in times], "next_utc": [t.astimezone(UTC).isoformat() for t in times]})
    if args.json:
        print_json(doc)
        return 0
    print_table(["job", "kind", "cron", "time zone", "symbols", "next fire times (local / UTC)"], [
        (d["name"], d["kind"], d["cron"], d["timezone"], ",".join(d["symbols"]) or f"universe {d['universe']}",
         "; ".join(f"{t[:16].replace('T', ' ')} / {u[11:16]}Z" for t, u in zip(d["next"], d["next_utc"], strict=True))
         if d["enabled"] else "disabled")
        for d in doc])
    return 0


def _history(args: argparse.Namespace, ctx) -> int:
    from agents.runtime.scheduler import open_schedule_state

    with open_schedule_state(ctx.settings) as state:
        rows = state.job_runs(args.history or None, limit=50)
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no scheduled job has run yet")
        return 0
    print_table(["job", "scheduled for", "started", "status", "run", "detail"], [
        (r["job"], (r["scheduled_for"] or "manual")[:19], r["started_at"][:19], r["status"], r["run_id"] or "-",
         r["detail"].get("error") or ", ".join(r["detail"].get("files", [])) or "-") for r in rows])
    return 0


def _serve(ctx) -> int:
    from agents.runtime.scheduler import ScheduleService

    ex = _executor(ctx)
    service = ScheduleService(ctx.settings, ex, on_outcome=_print_outcome)
    service.install()
    for name, times in service.next_runs(1).items():
        nxt = times[0].isoformat() if times else "never"
        sys.stderr.write(f"job {name}: next at {nxt}\n")
    stopping = threading.Event()

    def stop(signum, _frame):
        if not stopping.is_set():
            stopping.set()
            sys.stderr.write(f"received {signal.Signals(signum).name}: finishing the current job, then stopping\n")
            threading.Thread(target=service.scheduler.shutdown, kwargs={"wait": True}, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        service.catch_up(ex.state().last_scheduled_fire)  # outcomes are printed by on_outcome
        if not stopping.is_set():
            sys.stderr.write(f"scheduler running with {len(service.jobs)} job(s); Ctrl-C to stop\n")
            service.scheduler.start()
    finally:
        ex.close()
    sys.stderr.write("scheduler stopped\n")
    return 0
