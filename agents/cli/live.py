"""``regimedesk live``: bar-driven, durable runs of the agent graph; ``regimedesk live status``."""

from __future__ import annotations

import argparse
import signal
import sys
from datetime import UTC, datetime

from agents.cli.helptext import examples
from agents.cli.output import print_json

__all__ = ["register"]


def _speed(text: str) -> float:
    if text.strip().lower() in ("max", "0"):
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--speed must be a positive number or 'max', not {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("--speed must be > 0 (or 'max')")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "live",
        help="live runs: the agent graph on every closed bar of a feed (durable, restartable); 'live status'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Run the agent graph on every closed bar of a feed: update the live data cache, run the\n"
            "regime, statistics and ML agents as of that bar (fitted models come from the fit cache;\n"
            "only scheduled refits are estimated), pass the risk gate, send the approved orders,\n"
            "journal everything and raise alerts.\n\n"
            "Feeds: 'replay' plays stored bars (the embedded SP500 and NASDAQ daily data by default)\n"
            "at --speed, fully offline; 'alpaca' and 'polygon' poll the real APIs for closed bars\n"
            "(keys from the environment).\n\n"
            "Durable: each bar is one checkpointed run, claimed once in the journal. Kill the process\n"
            "at any point and start the same command again: it reconciles the broker with the\n"
            "journal, finishes the unfinished bar without sending any order twice, and goes on.\n"
            "One process per session: a second 'live' for a running session exits with status 1.\n"
            "No bar within twice the timeframe (on the NYSE calendar, holidays and half days\n"
            "included) marks the feed silent: the gate rejects new orders (feed_silent) and an alert\n"
            "is journaled. Ctrl-C / SIGTERM finish the current bar."
        ),
        epilog=examples("regimedesk live SP500 NASDAQ --feed replay --broker paper --start 2018-06-01",
                        "regimedesk live SPY --feed alpaca --timeframe 5Min --broker paper",
                        "regimedesk live status"),
    )
    p.add_argument("symbols", nargs="+", metavar="SYMBOL",
                   help="symbols to trade, or the single word 'status' to show the live sessions")
    p.add_argument("--feed", choices=["replay", "alpaca", "polygon"], default="replay",
                   help="where bars come from (default replay)")
    p.add_argument("--broker", choices=["paper", "alpaca"], default="paper",
                   help="where approved orders go (default the local paper broker)")
    p.add_argument("--timeframe", choices=["1Min", "5Min", "1D"], default="1D",
                   help="bar length of the feed (default 1D; the builtin replay has daily bars only)")
    p.add_argument("--approve", action="store_true",
                   help="each bar's orders wait for 'regimedesk approve THREAD' or a Telegram button; "
                        "unanswered when the next bar arrives, they expire as rejected; an approval is "
                        "checked again when sent (halt, silent feed, risk.max_approval_age_seconds)")
    p.add_argument("--source", default="builtin",
                   help="replay: the source whose stored bars are played (builtin, file, ...; default builtin)")
    p.add_argument("--start", help="replay: first bar date (default: the last 63 bars of the data)")
    p.add_argument("--end", help="replay: last bar date (default: the end of the data)")
    p.add_argument("--speed", type=_speed, default=0.0, metavar="FACTOR|max",
                   help="replay pace: bar length / wall time, e.g. 86400 plays one daily bar per second; "
                        "'max' (default) plays as fast as the graph runs")
    p.add_argument("--max-bars", type=int, metavar="N", help="stop after N bars")
    p.add_argument("--session", default="",
                   help="session name (default derived from feed, timeframe, symbols, broker and replay start; "
                        "the same options continue the same session)")
    p.add_argument("--llm", choices=["template", "openai"], help="narrator backend (default: configuration)")
    p.add_argument("--recompute", action="store_true",
                   help="every bar's run rebuilds every feature row from history (an audit of the fast path, "
                        "the same numbers to rounding; default: engine.recompute)")
    p.add_argument("--portfolio", choices=("erc", "mv", "hrp", "invvol", "none"),
                   help="portfolio agent's method for every bar's run (default: portfolio.method)")
    p.add_argument("--json", action="store_true", help="print the summary (or the status) as JSON")
    p.set_defaults(handler=_live)


def _live(args: argparse.Namespace, ctx) -> int:
    if [s.lower() for s in args.symbols] == ["status"]:
        return _status(args, ctx)
    if "status" in [s.lower() for s in args.symbols]:
        raise ValueError("'status' is a subcommand: use 'regimedesk live status' on its own")
    if args.max_bars is not None and args.max_bars < 1:
        raise ValueError("--max-bars must be >= 1")
    from agents.runtime.live import LiveLoop, LiveSpec

    settings, secrets = ctx.settings, ctx.secrets
    if args.recompute:
        settings = settings.model_copy(update={"engine": settings.engine.model_copy(update={"recompute": True})})
    if args.portfolio is not None:
        settings = settings.model_copy(update={"portfolio": settings.portfolio.model_copy(
            update={"method": args.portfolio})})
    if settings.portfolio.method != "none" and len(set(args.symbols)) < 2:
        raise ValueError(f"a portfolio ({settings.portfolio.method}) needs at least 2 symbols")
    spec = LiveSpec(symbols=tuple(args.symbols), feed=args.feed, broker=args.broker, timeframe=args.timeframe,
                    approve=args.approve, source=args.source, start=args.start, end=args.end, speed=args.speed,
                    llm=args.llm or settings.llm.backend, session=args.session)

    def say(line: str) -> None:
        sys.stderr.write(f"[{datetime.now(UTC):%H:%M:%S}] {line}\n")
        sys.stderr.flush()

    loop = LiveLoop(settings, secrets, spec, say=say)
    try:
        loop.lock.acquire()  # one process per session: a second one stops here, touching nothing
    except BaseException:
        loop.close()
        raise
    stops = {"n": 0}

    def stop(signum, _frame):
        stops["n"] += 1
        if stops["n"] > 1:
            raise KeyboardInterrupt
        say(f"received {signal.Signals(signum).name}: finishing the current bar, then stopping "
            "(again to stop at once)")
        loop.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    say(f"live session {loop.session}: {', '.join(loop.feed.symbols)} on the {spec.feed} feed "
        f"({spec.timeframe}), broker {spec.broker}" + (", approval required" if spec.approve else ""))
    try:
        summary = loop.run(max_bars=args.max_bars)
    finally:
        loop.close()
    if args.json:
        print_json(summary.to_dict())
    else:
        d = summary.to_dict()
        print(f"session {summary.session}: {summary.stopped_by}; {summary.handled} bar(s) handled"
              f" ({summary.resumed} resumed), {summary.skipped} skipped, {summary.failed} failed, "
              f"{summary.orders_sent} order(s) sent in {summary.seconds:.1f} s")
        if "bar_seconds" in d:
            b = d["bar_seconds"]
            print(f"seconds per bar: median {b['p50']:.2f}, p95 {b['p95']:.2f}, max {b['max']:.2f}")
        print("see 'regimedesk live status', 'regimedesk positions' and 'regimedesk orders --all'")
    return 1 if summary.failed else 0


def _status(args: argparse.Namespace, ctx) -> int:
    from agents.runtime.live import format_live_status, live_status

    ctx.settings.home_dir.mkdir(parents=True, exist_ok=True)
    doc = live_status(ctx.settings, args.session or None)
    if args.json:
        print_json(doc)
        return 0
    for line in format_live_status(doc):
        print(line)
    return 0
