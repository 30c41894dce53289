"""``regimedesk data``: show what a source delivers and check bar files."""

from __future__ import annotations

import argparse

from agents.cli.output import print_fields, print_json, print_table

# Services and data libraries are imported when a command runs, not at start-up.

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser(
        "data",
        help="inspect market data: summaries and validation reports",
        description="Inspect market data from the configured sources and check bar files.",
    )
    data.set_defaults(handler=lambda a, c: (data.print_help(), 2)[1])
    data.fill_later(_subcommands)


def _subcommands(data: argparse.ArgumentParser) -> None:
    from agents.services.data import SOURCE_NAMES

    dsub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    show = dsub.add_parser(
        "show",
        help="summary of a symbol's bars",
        description=(
            "Load SYMBOL's bars from the source, validate them and print a summary: symbol, "
            "source, first and last timestamp, bar count and the validation result. "
            "Offline default: the builtin SP500 and NASDAQ daily series (1999-2018)."
        ),
    )
    show.add_argument("symbol", help="ticker, or SP500 / NASDAQ for the builtin source")
    show.add_argument("--source", choices=SOURCE_NAMES, help="override data.source from the configuration")
    show.add_argument("--timeframe", default="1D", help="bar length: 1Min, 5Min, 15Min, 1H, 1D or 1W (default 1D)")
    show.add_argument("--start", help="first date (inclusive), e.g. 2008-01-01")
    show.add_argument("--end", help="last date (inclusive)")
    show.add_argument("--issues", action="store_true", help="also list every validation issue")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=_show)

    check = dsub.add_parser(
        "check",
        help="validate a CSV or Parquet bar file",
        description=(
            "Read a CSV or Parquet file of bars and report every broken validation rule with "
            "its row (0-based data row) and timestamp. Exit code 1 when a rule whose policy is "
            "'error' is broken, 0 otherwise."
        ),
    )
    check.add_argument("file", help="path to a .csv or .parquet file")
    check.add_argument("--timezone", default=None, help="time zone of naive timestamps (default: data.file.timezone)")
    check.add_argument("--limit", type=int, default=50, help="issues listed in text output (default 50)")
    check.add_argument("--json", action="store_true", help="print JSON (all issues)")
    check.set_defaults(handler=_check)


def _show(args: argparse.Namespace, ctx) -> int:
    from agents.services.data import build_market_data

    market = build_market_data(ctx.settings, ctx.secrets, args.source)
    bars = market.bars(args.symbol, args.timeframe, args.start, args.end)
    summary = bars.summary()
    if args.issues:
        summary["issues"] = [i.to_dict() for i in bars.report.issues]
    if args.json:
        print_json(summary)
        return 0
    print_fields(
        f"{summary['symbol']}  ({summary['source']}, {summary['timeframe']})",
        [
            ("first bar", summary["first"]),
            ("last bar", summary["last"]),
            ("bars", f"{summary['bars']:,}"),
            ("last close", f"{bars.frame['close'].iloc[-1]:,.2f}"),
            ("validation", summary["validation"]["summary"]),
            *(("known", note) for note in summary.get("known_flags", [])),
            ("cached", "yes" if summary["cached"] else "no"),
        ],
    )
    if args.issues and bars.report.issues:
        _issue_table(bars.report.issues, 10**9)
    return 0


def _issue_table(issues, limit: int) -> None:
    print_table(
        ["row", "timestamp", "rule", "action", "message"],
        [(i.row, i.timestamp or "-", i.rule, i.action, i.message) for i in issues[:limit]],
    )
    if len(issues) > limit:
        print(f"... {len(issues) - limit} more (use --json for all)")


def _check(args: argparse.Namespace, ctx) -> int:
    from analytics.validation import validate_bars
    from integrations import read_bar_file

    if args.limit < 0:
        raise ValueError("--limit must be >= 0")
    tz = args.timezone or ctx.settings.data.file.timezone
    frame = read_bar_file(args.file, tz)
    policy = ctx.settings.data.validation.to_policy()
    _, report = validate_bars(frame, policy, raise_on_error=False)
    if args.json:
        print_json({"file": args.file, **report.to_dict()})
    else:
        print(f"{args.file}: {report.summary()}")
        if report.issues:
            _issue_table(report.issues, args.limit)
    return 0 if report.ok else 1
