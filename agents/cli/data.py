"""``regimedesk data``: show what a source delivers and check bar files."""

from __future__ import annotations

import argparse

from agents.cli.helptext import examples
from agents.cli.options import bar_length
from agents.cli.output import print_fields, print_json, print_table

# Services and data libraries are imported when a command runs, not at start-up.

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser(
        "data",
        help="inspect market data: summaries and validation reports",
        description="Inspect market data from the configured sources and check bar files.",
        epilog=examples("regimedesk data show SP500", "regimedesk data check bars.csv"),
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
    show.epilog = examples("regimedesk data show SP500",
                           "regimedesk data show NASDAQ --timeframe 1W --start 2008-01-01 --issues",
                           "regimedesk data show SPY --source alpaca --json")
    show.add_argument("symbol", help="ticker, or SP500 / NASDAQ for the builtin source")
    show.add_argument("--source", choices=SOURCE_NAMES, help="override data.source from the configuration")
    show.add_argument("--timeframe", default="1D", help="bar length: 1Min, 5Min, 15Min, 1H, 1D or 1W, as the source has them (default 1D)")
    show.add_argument("--start", help="first date (inclusive), e.g. 2008-01-01")
    show.add_argument("--end", help="last date (inclusive)")
    show.add_argument("--issues", action="store_true", help="also list every validation issue")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=_show)

    check = dsub.add_parser(
        "check",
        help="validate a CSV or Parquet bar file",
        description=(
            "Read a CSV or Parquet file of bars and report every problem: each timestamp that "
            "cannot be read and each price or volume that is not a number (bad_timestamp, "
            "non_numeric; the row is left out), then every broken validation rule on the rows "
            "that parse (order, duplicate, non_finite, non_positive, high_low, volume, gap, jump). "
            "Each problem names its line (1-based line of a CSV file as an editor counts it, "
            "header = line 1), its column for a bad cell, and its timestamp; --json also gives "
            "the 0-based data row ('row'). Exit code: 0 when the file is usable (no problems, "
            "or only repairs and warnings), 1 when it has errors (a bad cell, or a rule whose "
            "policy is 'error' broken) or cannot be read at all."
        ),
    )
    check.epilog = examples("regimedesk data check bars.csv",
                            "regimedesk data check bars.parquet --timezone America/New_York --json")
    check.add_argument("file", help="path to a .csv or .parquet file")
    check.add_argument("--timezone", default=None, help="time zone of naive timestamps (default: data.file.timezone)")
    check.add_argument("--limit", type=int, default=50, help="issues listed in text output (default 50)")
    check.add_argument("--json", action="store_true", help="print JSON (all issues)")
    check.set_defaults(handler=_check)


def _show(args: argparse.Namespace, ctx) -> int:
    from agents.services.data import build_market_data

    market = build_market_data(ctx.settings, ctx.secrets, args.source)
    bars = market.bars(args.symbol, bar_length(args.timeframe, market.source), args.start, args.end)
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
    from integrations import inspect_bar_file

    if args.limit < 0:
        raise ValueError("--limit must be >= 0")
    tz = args.timezone or ctx.settings.data.file.timezone
    policy = ctx.settings.data.validation.to_policy()
    found = inspect_bar_file(args.file, tz, policy)
    if args.json:
        print_json(found.to_dict())
    else:
        print(f"{found.path}: {found.summary()}")
        if found.issues:
            # a CSV file is located by line, as an editor shows it; Parquet by 0-based data row
            place = "line" if found.has_lines else "row"
            print_table(
                [place, "column", "timestamp", "rule", "action", "message"],
                [
                    (i.line if found.has_lines else i.row, i.column or "-", i.timestamp or "-",
                     i.rule, i.action, i.message)
                    for i in found.issues[: args.limit]
                ],
            )
            if len(found.issues) > args.limit:
                print(f"... {len(found.issues) - args.limit} more (use --json for all)")
    return 0 if found.ok else 1
