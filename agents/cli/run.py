"""``regimedesk run``, ``approve``, ``reject`` and ``journal``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

from agents.cli.helptext import examples
from agents.cli.options import add_start_option, output_file
from agents.cli.output import ProgressBar, print_json, print_table
from agents.services.run_summary import run_summary_text

# The other services are imported when a command runs, not at start-up.

__all__ = ["register", "print_run_summary", "run_summary_text", "add_report_options", "report_path", "start_run"]


def register(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser(
        "run",
        help="run the multi-agent graph on one or more symbols",
        description=(
            "Run the agent graph: market data, then the analysis agents in parallel (regime, "
            "statistics, ML signal), then decision, portfolio (with --portfolio), risk gate, optional "
            "approval, execution and "
            "reporting. Progress goes to "
            "stderr as agents finish; a readable summary (or --json, the whole final state) to "
            "stdout. Every run is checkpointed under a thread id and journaled.\n\n"
            "Many symbols: --workers N (or --scheduler tcp://HOST:PORT) sends each symbol's analysis "
            "(regimes, statistics, ML signal) to a local Dask cluster of N processes (or a running "
            "one) and the agents read the answers; the decision, portfolio, gate and execution stay "
            "in this process. The default runs everything here: a cluster's start-up costs more than "
            "the analysis of a few symbols whose fits are stored."
        ),
    )
    run.epilog = examples("regimedesk run SP500 NASDAQ --start 2005-01-01 --as-of 2015-06-30 --json",
                          "regimedesk run SP500 --broker paper --approve",
                          "regimedesk run --universe sp500-20 --portfolio erc --workers 2")
    run.fill_later(_run_options)
    run.set_defaults(handler=_run)

    for name, verdict in (("approve", True), ("reject", False)):
        p = sub.add_parser(
            name,
            help=f"{name} the orders of a run waiting for approval",
            description=f"Resume a run stopped at the approval step and {name} its proposed orders.",
            epilog=examples(f"regimedesk {name} THREAD",
                            f"regimedesk {name} THREAD --note 'checked the sizes'"),
        )
        p.add_argument("thread", metavar="THREAD", help="thread id printed by 'regimedesk run --approve'")
        p.add_argument("--note", default="", help="free text stored with the answer")
        p.add_argument("--json", action="store_true", help="print the final state as JSON")
        p.set_defaults(handler=_answer, approved=verdict)

    journal = sub.add_parser(
        "journal",
        help="list runs and show everything a run recorded",
        description="Read the SQLite journal: runs, agent outputs, LLM exchanges, decisions, verdicts, orders, fills.",
        epilog=examples("regimedesk journal list", "regimedesk journal show RUN_ID"),
    )
    jsub = journal.add_subparsers(dest="journal_command", metavar="SUBCOMMAND")
    journal.set_defaults(handler=lambda a, c: (journal.print_help(), 2)[1])
    jl = jsub.add_parser("list", help="the latest runs", description="List the latest runs, newest first.",
                         epilog=examples("regimedesk journal list", "regimedesk journal list --limit 5 --json"))
    jl.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    jl.add_argument("--json", action="store_true", help="print JSON")
    jl.set_defaults(handler=_journal_list)
    js = jsub.add_parser(
        "show",
        help="everything one run recorded",
        description=(
            "Show what one run recorded in the journal. The first line gives the run's status, "
            "when it started and finished; then how many entries of each kind it has:\n\n"
            "  agent_outputs  results of the analysis agents (regime, statistics, ML signal)\n"
            "  llm_exchanges  narrator calls; each is listed with accepted or the reason it\n"
            "                 was rejected (e.g. numbers not in the agents' output), and latency\n"
            "  decisions      target positions the decision node chose per symbol\n"
            "  verdicts       the risk gate's answer per proposed order (approve/trim/reject)\n"
            "  orders         orders sent to the broker, under their client order ids\n"
            "  fills          executions the broker reported\n\n"
            "--json prints every entry in full. RUN_ID is in 'regimedesk journal list'."
        ),
        epilog=examples("regimedesk journal show RUN_ID", "regimedesk journal show RUN_ID --json"),
    )
    js.add_argument("run_id", metavar="RUN_ID")
    js.add_argument("--json", action="store_true", help="print JSON")
    js.set_defaults(handler=_journal_show)


def _run_options(run: argparse.ArgumentParser) -> None:
    from agents.services.data import SOURCE_NAMES

    run.add_argument("symbols", nargs="*", metavar="SYMBOL", help="symbols, e.g. SP500 NASDAQ")
    run.add_argument("--universe", help="run over a universe instead of SYMBOLs: a builtin or [portfolio.universes] "
                                        "name, or a file listing symbols")
    run.add_argument("--source", choices=SOURCE_NAMES, help="market-data source (default: data.source)")
    run.add_argument("--as-of", dest="as_of", help="run as of this date with data up to then only")
    add_start_option(run, "agents")
    run.add_argument("--llm", choices=("template", "openai"), help="narrator backend (default: llm.backend)")
    run.add_argument("--broker", choices=("none", "paper", "alpaca"), default="none",
                     help="where approved orders go (default none)")
    run.add_argument("--approve", action="store_true",
                     help="stop before execution until 'regimedesk approve/reject THREAD'")
    run.add_argument("--resume", metavar="THREAD", help="continue an interrupted run instead of starting one")
    run.add_argument("--report", metavar="FILE.pdf|FILE.html",
                     help="also write the run's report to this file: a PDF, or an interactive HTML page for "
                          ".html (see 'regimedesk report --help')")
    add_report_options(run)
    run.add_argument("--recompute", action="store_true",
                     help="rebuild every feature row from history instead of the newest bar's only: an audit of "
                          "the fast path, the same numbers to rounding (default: engine.recompute)")
    run.add_argument("--portfolio", choices=("erc", "mv", "hrp", "invvol", "none"),
                     help="portfolio agent: turn the symbols' views into portfolio weights with this method "
                          "(erc, mv, hrp, invvol) within regime caps, or none: each symbol keeps its own target "
                          "(default: portfolio.method)")
    run.add_argument("--workers", type=int, default=1,
                     help="analyse the symbols on a local Dask cluster of this many processes (default 1: "
                          "in this process)")
    run.add_argument("--scheduler", help="analyse the symbols on the running Dask scheduler at tcp://HOST:PORT")
    run.add_argument("--json", action="store_true", help="print the whole final state as JSON")


def add_report_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``run --report`` and ``report``."""
    parser.add_argument("--no-backtest", dest="no_backtest", action="store_true",
                        help="leave the walk-forward backtest out of the report (it takes about 30 s per symbol)")


class _Progress:
    """Prints each finished agent to stderr with the elapsed time."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.t0 = time.perf_counter()

    def __call__(self, node: str) -> None:
        self.note(f"{node} done")

    def note(self, text: str) -> None:
        if not self.quiet:
            sys.stderr.write(f"  [{time.perf_counter() - self.t0:6.1f}s] {text}\n")
            sys.stderr.flush()


def _runner(ctx, mapper=None):
    from agents.runtime.runner import Runner

    return Runner(ctx.settings, ctx.secrets, mapper=mapper)


def _run(args: argparse.Namespace, ctx) -> int:
    if args.resume:
        if args.symbols or args.universe:
            raise ValueError("--resume continues a run: give no symbols")
        if args.start is not None:
            raise ValueError("--resume continues a run with its own --start: give no --start")
        if args.portfolio is not None:
            raise ValueError("--resume continues a run with its own portfolio method: give no --portfolio")
        progress = _Progress(quiet=False)
        with _runner(ctx, _mapper(args)) as runner:
            runner.ctx.status = progress.note
            sys.stderr.write(f"resuming {args.resume}\n")
            outcome = runner.resume(args.resume, None, progress)
        return _finish(outcome, args.json)
    from agents.services.context import build_request

    mapper = _mapper(args)
    symbols = args.symbols
    if args.universe is not None:
        from agents.services.portfolio import resolve_universe

        if symbols:
            raise ValueError("give SYMBOLs or --universe, not both")
        symbols = list(resolve_universe(ctx.settings, args.universe).symbols)
    report = report_path(args.report, "--report", symbols=symbols) if args.report else None
    request = build_request(ctx.settings, ctx.secrets, symbols, source=args.source, llm=args.llm,
                            as_of=args.as_of, start=args.start, broker=args.broker, approve=args.approve, report=report,
                            report_backtest=ctx.settings.report.backtest and not args.no_backtest,
                            portfolio=args.portfolio,
                            **({"recompute": True} if args.recompute else {}))
    since = f", from {request.start}" if request.start is not None else ""
    return start_run(ctx, request, args.json,
                     f"run over {_listed(request.symbols)} (source {request.source}, llm {request.llm}{since})",
                     mapper=mapper)


def _listed(symbols) -> str:
    return ", ".join(symbols) if len(symbols) <= 12 else f"{len(symbols)} symbols ({', '.join(symbols[:5])}, ...)"


def _mapper(args: argparse.Namespace):
    """The engine of ``--workers``/``--scheduler`` (None: this process), checked before any work."""
    from agents.runtime.compute import symbol_mapper

    if args.workers < 1:
        raise ValueError("--workers must be >= 1")
    bar = ProgressBar()
    return symbol_mapper(args.workers, args.scheduler,
                         lambda done, failed, total: bar(f"symbols analysed (failed {failed})", done, total))


def start_run(ctx, request, as_json: bool, banner: str, mapper=None) -> int:
    """Start ``request`` with progress on stderr, print its outcome; the command's exit code."""
    progress = _Progress(quiet=False)
    with _runner(ctx, mapper) as runner:
        runner.ctx.status = progress.note
        sys.stderr.write(banner + "\n")
        outcome = runner.start(request, progress)
    return _finish(outcome, as_json)


def report_path(value: str, option: str = "--out", fmt: str | None = None, symbols: Sequence[str] = ()) -> str:
    """``--report``/``--out``: an absolute path to a report file that can be written.

    The suffix chooses the format: ``.pdf``, or ``.html``/``.htm`` for the interactive HTML
    page. With ``fmt`` (``--format pdf|html``) the suffix must be that format's. A directory
    (an existing one, or a path ending in ``/``) gets the file ``report-SYMBOLS.pdf`` (or
    ``.html``) inside it. Checked before any work (see :func:`agents.cli.output.output_file`);
    a problem is an :class:`~agents.cli.output.OutputPathError` (exit 1).
    """
    from integrations import REPORT_FORMATS

    suffixes = REPORT_FORMATS[fmt] if fmt else tuple(s for group in REPORT_FORMATS.values() for s in group)
    stem = "report-" + "-".join(s.replace("/", "_") for s in symbols) if symbols else "report"
    return str(output_file(value, option, suffix=suffixes, default_name=stem + suffixes[0]))


def _answer(args: argparse.Namespace, ctx) -> int:
    progress = _Progress(quiet=False)
    with _runner(ctx) as runner:
        runner.ctx.status = progress.note
        outcome = runner.resume(
            args.thread,
            {"approved": args.approved, "by": "cli", "note": args.note},
            progress,
        )
    return _finish(outcome, args.json)


def _finish(outcome, as_json: bool) -> int:
    if as_json:
        doc = dict(outcome.state)
        doc.update(run_id=outcome.run_id, thread_id=outcome.thread_id, status=outcome.status)
        if outcome.pending is not None:
            doc["pending_approval"] = outcome.pending
        print_json(doc)
    else:
        print_run_summary(outcome)
    pdf = outcome.state.get("report", {}).get("pdf")
    if pdf and pdf.get("error"):
        sys.stderr.write(f"regimedesk: error: the report was not written to {pdf['path']}: {pdf['error']}\n")
        return 1
    return 0


def _fmt(value: Any, digits: int = 3) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return "-" if value is None else str(value)


def print_run_summary(outcome) -> None:
    """Print :func:`run_summary_text`."""
    print(run_summary_text(outcome))


def _journal(ctx):
    from integrations import Journal

    ctx.settings.home_dir.mkdir(parents=True, exist_ok=True)
    return Journal(ctx.settings.paths.journal)


def _journal_list(args: argparse.Namespace, ctx) -> int:
    if args.limit < 1:
        raise ValueError("--limit must be >= 1")
    runs = _journal(ctx).list_runs(args.limit)
    if args.json:
        print_json(runs)
        return 0
    if not runs:
        print("no runs yet (try 'regimedesk run SP500')")
        return 0
    print_table(
        ["run_id", "thread_id", "started", "status", "symbols"],
        [(r.run_id, r.thread_id, str(r.started_at)[:19], r.status, ",".join(r.symbols)) for r in runs],
    )
    return 0


def _journal_show(args: argparse.Namespace, ctx) -> int:
    from analytics import shown

    doc = _journal(ctx).show_run(args.run_id)
    if args.json:
        print_json(doc)
        return 0
    run = doc.get("run", {})
    print(f"run {args.run_id}: {run.get('status')}  started {run.get('started_at')}  finished {run.get('finished_at')}")
    for key in ("agent_outputs", "llm_exchanges", "decisions", "verdicts", "orders", "fills"):
        entries = doc.get(key, [])
        print(f"  {key}: {len(entries)}")
    for ex in doc.get("llm_exchanges", []):
        state = "accepted" if ex.get("accepted") else f"rejected: {shown(ex.get('error') or ex.get('rejected_numbers'))}"
        print(f"    llm {ex.get('agent')}/{ex.get('symbol')}: {state}, {ex.get('latency_s', 0):.2f}s")
    return 0
