"""``regimedesk export``: causal signal CSV, alone or with a generated QuantConnect algorithm."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from agents.cli.helptext import examples
from agents.cli.options import date_option, output_dir, output_file, write_failed
from agents.cli.output import ProgressBar, print_json
from analytics import InsufficientDataError

# The services (and the data libraries) are imported when a command is used, not at start-up.

if TYPE_CHECKING:
    from agents.services.export import SignalExport

__all__ = ["register"]

_PORTFOLIO_CHOICES = ("erc", "mv", "hrp", "invvol", "all")


def _portfolio_rows() -> str:
    return (
        "With --universe (instead of SYMBOLs) the portfolio policy's target weights are exported "
        "instead: regimedesk_portfolio_weights.csv, one row per decision close and asset from the "
        "first decision, with date, available_at (that close in UTC), symbol, target_weight, "
        "trade_due (1: that close decided to trade to the targets) and method; --end cuts the "
        "data, --start the rows. The data are daily closes."
    )


def _project_files() -> tuple[str, ...]:
    """The files ``export quantconnect`` writes into --out."""
    from integrations import SIGNAL_CSV_NAME

    return (SIGNAL_CSV_NAME, "regimedesk_signals.py", "main.py")


def _rows() -> str:
    from agents.services.export import GATE_NOTIONAL

    return (
        "One row per symbol and daily bar with: the bar's date, start and close time (available_at, "
        "in UTC: when the row's values became known), per timeframe (LT weekly, MT and ST daily, US "
        "intraday - empty on daily-only sources) the regime label, its filtered probability and the "
        "market character, the consensus regime family, the walk-forward out-of-sample P(up), the "
        "volatility forecast, the decision policy's target weight and the weight the risk gate "
        "approves when replayed bar by bar on a simulated one-symbol book of "
        f"{GATE_NOTIONAL:,.0f}. Every value uses only bars closed at that row's close; --end cuts the "
        "data like --as-of elsewhere, --start only cuts rows. Columns: docs/export.md."
    )


def _common(p: argparse.ArgumentParser) -> None:
    from agents.services.data import SOURCE_NAMES
    from analytics import POLICIES

    p.add_argument("symbols", nargs="*", metavar="SYMBOL",
                   help="tickers, or SP500 / NASDAQ for the builtin source (or --universe instead)")
    p.add_argument("--source", choices=SOURCE_NAMES, help="market-data source (default: data.source)")
    p.add_argument("--start", help="first date of the rows written (computations still use all earlier bars)")
    p.add_argument("--end", help="last date: no bar after it is loaded (like --as-of)")
    p.add_argument("--policy", choices=POLICIES, help="decision policy (default: decision.policy)")
    p.add_argument("--json", action="store_true", help="print a JSON summary of what was written")
    p.add_argument("--universe", help="export a portfolio's target weights instead: sp500-20, factors, a "
                   "[portfolio.universes] name, or a file listing symbols (not with SYMBOLs)")
    p.add_argument("--portfolio", choices=_PORTFOLIO_CHOICES,
                   help="portfolio method of --universe: erc, mv, hrp, invvol (csv only: all) "
                        "(default: portfolio.method, erc when that is none)")


def register(sub: argparse._SubParsersAction) -> None:
    exp = sub.add_parser("export", help="export causal signals as CSV, or with a QuantConnect algorithm",
                         epilog=examples("regimedesk export csv SP500 --out signals.csv",
                                         "regimedesk export quantconnect SP500 NASDAQ --out qc-project"))
    exp.set_defaults(handler=lambda a, c: (exp.print_help(), 2)[1])
    exp.fill_later(_subcommands)


def _subcommands(exp: argparse.ArgumentParser) -> None:
    from agents.services.export import GATE_NOTIONAL
    from integrations import LEAN_DATA_SOURCES, SIGNAL_CSV_NAME

    rows = _rows()
    exp.description = (
        "Export RegimeDesk's signals for other platforms. 'export csv' writes the signal CSV; "
        "'export quantconnect' writes the same CSV plus a LEAN Python algorithm (main.py and "
        "regimedesk_signals.py) that reads it as custom data and holds each equity at its "
        "gate-approved weight, trading at the next open. " + rows
    )
    esub = exp.add_subparsers(dest="export_command", metavar="SUBCOMMAND")

    qc = esub.add_parser(
        "quantconnect",
        help="signal CSV plus a LEAN algorithm that trades it",
        description=(
            "Write into --out DIR: regimedesk_signals.csv (the signals), regimedesk_signals.py (its "
            "parser, plain Python) and main.py, a QuantConnect/LEAN algorithm. main.py adds each "
            "symbol's equity (SP500 -> SPY, NASDAQ -> QQQ, others as named; --ticker overrides) "
            "and the CSV as custom data whose end_time is the bar's close, so a row reaches the "
            "algorithm only after its bar has closed; it then sends a market-on-open order to the "
            "row's approved weight (divided by the number of symbols). The CSV is read from LEAN's "
            "data folder (custom/regimedesk_signals.csv, --data-source file, for local LEAN), a "
            "URL, or the Object Store (for QuantConnect Cloud). " + rows + " " + _portfolio_rows()
            + " The algorithm then reads that CSV (regimedesk_portfolio.py parses it) and on each "
            "close with trade_due sets the holdings of every asset to its target (sp500-20 stocks "
            "trade as themselves, SP500X as SPY), filled at the next session's open."
        ),
    )
    qc.epilog = examples("regimedesk export quantconnect SP500 --out qc-project",
                         "regimedesk export quantconnect --universe sp500-20 --portfolio erc --out qc-portfolio",
                         "regimedesk export quantconnect SP500 NASDAQ --out qc-project --data-source object-store")
    _common(qc)
    qc.add_argument("--out", required=True, metavar="DIR",
                    help="directory for the project files (created if missing; checked before the export starts)")
    qc.add_argument("--data-source", dest="data_source", choices=LEAN_DATA_SOURCES,
                    help="where main.py reads the CSV: file (LEAN data folder), url or object-store "
                         "(default: url with --data-url, object-store with --object-store-key, else file)")
    qc.add_argument("--data-url", dest="data_url", metavar="URL", help="http(s) URL of the uploaded CSV")
    qc.add_argument("--object-store-key", dest="object_store_key", metavar="KEY",
                    help=f"Object Store key of the uploaded CSV (default with object-store: {SIGNAL_CSV_NAME})")
    qc.add_argument("--ticker", action="append", default=[], metavar="SYMBOL=TICKER",
                    help="trade TICKER for SYMBOL (repeatable; default SP500=SPY, NASDAQ=QQQ)")
    qc.add_argument("--cash", type=float, default=GATE_NOTIONAL,
                    help=f"starting cash of the algorithm (default {GATE_NOTIONAL:,.0f})")
    qc.set_defaults(handler=_quantconnect)

    c = esub.add_parser(
        "csv",
        help="the signal CSV for any platform",
        description="Write the signal CSV to --out FILE (default: standard output). " + rows + " "
                    + _portfolio_rows(),
    )
    c.epilog = examples("regimedesk export csv SP500", "regimedesk export csv SP500 NASDAQ --out signals.csv",
                        "regimedesk export csv --universe sp500-20 --portfolio erc --out weights/")
    _common(c)
    c.add_argument("--out", metavar="FILE",
                   help=f"CSV file to write ('-' or omitted: standard output); a directory (an existing one, or a "
                        f"path ending in '/') gets {SIGNAL_CSV_NAME} inside it")
    c.set_defaults(handler=_csv)


def _store(args: argparse.Namespace, ctx):
    """Validated dates, the bar store as of --end, and the canonical symbols."""
    from agents.services.context import AppContext, as_of_clock

    start, end = date_option(args.start, "--start"), date_option(args.end, "--end")
    if start is not None and end is not None and start.tz_localize(None) > end.tz_localize(None):
        raise ValueError(f"--start {args.start} is after --end {args.end}")
    as_of_clock(args.end)
    app = AppContext(ctx.settings, ctx.secrets)
    store = app.bars({"source": args.source or ctx.settings.data.source, "as_of": args.end})
    symbols = [store.market.source.canonical_symbol(s) for s in args.symbols]
    if len(set(symbols)) != len(symbols):
        raise ValueError(f"SYMBOL: duplicates in {symbols} (aliases name the same series)")
    store.check_data(symbols, "--end")
    if start is not None:
        first = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
        last = max(store.get(s, "MT").frame.index[-1] for s in symbols)
        if first > last:
            raise InsufficientDataError(
                f"--start {args.start} is after the last daily bar ({last.date()}): no rows to export"
            )
    return store, symbols


def _run(args: argparse.Namespace, ctx, store, symbols: list[str]) -> SignalExport:
    from agents.services.export import export_signals

    policy = args.policy or ctx.settings.decision.policy
    sys.stderr.write(f"exporting {', '.join(symbols)} signals ({policy} policy) bar by bar, walk-forward...\n")
    return export_signals(store, symbols, ctx.settings, policy=policy, start=args.start, progress=ProgressBar(),
                          status=lambda line: sys.stderr.write(line + "\n"))


def _tickers(items: list[str]) -> dict[str, str]:
    from analytics import shown

    out = {}
    for item in items:
        sym, sep, ticker = item.partition("=")
        if not sep or not sym.strip() or not ticker.strip():
            raise ValueError(f"--ticker: expected SYMBOL=TICKER, got {shown(item)}")
        out[sym.strip().upper()] = ticker.strip().upper()
    return out


def _portfolio_mode(args: argparse.Namespace, *, quantconnect: bool) -> bool:
    """True for an export of --universe's portfolio weights; usage errors (exit 2) first."""
    if args.universe is None:
        if args.portfolio is not None:
            raise ValueError("--portfolio needs --universe")
        if not args.symbols:
            raise ValueError("give SYMBOLs (e.g. SP500) or --universe (e.g. sp500-20)")
        return False
    if args.symbols:
        raise ValueError("give SYMBOLs or --universe, not both")
    if args.policy:
        raise ValueError("--policy applies to SYMBOLs; use --portfolio with --universe")
    if quantconnect and args.portfolio == "all":
        raise ValueError("--portfolio all: the algorithm trades one method (erc, mv, hrp or invvol)")
    return True


def _portfolio_methods(args: argparse.Namespace, ctx) -> list[str]:
    from analytics import PORTFOLIO_METHODS

    choice = args.portfolio or ctx.settings.portfolio.method
    if choice == "all":
        return list(PORTFOLIO_METHODS)
    return ["erc"] if choice == "none" else [choice]


def _portfolio_run(args: argparse.Namespace, ctx):
    """Validated dates, the universe and its methods (before any long work)."""
    from agents.services.portfolio import resolve_universe

    start, end = date_option(args.start, "--start"), date_option(args.end, "--end")
    if start is not None and end is not None and start.tz_localize(None) > end.tz_localize(None):
        raise ValueError(f"--start {args.start} is after --end {args.end}")
    universe = resolve_universe(ctx.settings, args.universe)
    methods = _portfolio_methods(args, ctx)
    return universe, methods


def _portfolio_export(args: argparse.Namespace, ctx, universe, methods: list[str]):
    from agents.services.portfolio_export import export_portfolio

    sys.stderr.write(f"exporting {', '.join(methods)} target weights of the {universe.name} universe "
                     f"({len(universe.symbols)} assets) walk-forward...\n")
    return export_portfolio(ctx.settings, ctx.secrets, universe, methods, source=args.source, start=args.start,
                            end=args.end, progress=ProgressBar())


def _csv_target(args: argparse.Namespace, default_name: str):
    """Where ``export csv`` writes: the ``--out`` file (a folder gets ``default_name``), or None
    for standard output (``--out -`` or none), which ``--json`` cannot share."""
    to_stdout = args.out in (None, "-")
    if to_stdout and args.json:
        raise ValueError("--json needs --out FILE (the CSV itself goes to standard output otherwise)")
    return None if to_stdout else output_file(args.out, "--out", default_name=default_name)


def _portfolio_csv(args: argparse.Namespace, ctx) -> int:
    from integrations import PORTFOLIO_CSV_NAME, write_portfolio_csv

    path = _csv_target(args, PORTFOLIO_CSV_NAME)
    universe, methods = _portfolio_run(args, ctx)
    res = _portfolio_export(args, ctx, universe, methods)
    if path is None:
        write_portfolio_csv(res.frame, sys.stdout)
        return 0
    try:
        write_portfolio_csv(res.frame, path)
    except OSError as exc:
        raise write_failed("--out", args.out, exc) from None
    s = res.to_dict()
    if args.json:
        print_json({**s, "path": str(path)})
        return 0
    print(f"wrote {s['rows']:,} rows ({s['dates']:,} closes, {s['first_date']} to {s['last_date']}) of "
          f"{', '.join(methods)} weights for {len(res.assets)} assets to {path} in {res.seconds:.0f} s")
    for note in res.notes:
        print(f"note: {note}")
    return 0


def _portfolio_quantconnect(args: argparse.Namespace, ctx) -> int:
    from integrations import (
        PORTFOLIO_CSV_NAME,
        PORTFOLIO_PARSER_NAME,
        lean_data_location,
        portfolio_tickers,
        write_portfolio_lean_project,
    )

    tickers = _tickers(args.ticker)
    if not (args.cash > 0 and args.cash < float("inf")):
        raise ValueError(f"--cash must be a positive number, got {args.cash}")
    source = args.data_source or ("url" if args.data_url else "object-store" if args.object_store_key else "file")
    lean_data_location(source, args.data_url, args.object_store_key or (
        PORTFOLIO_CSV_NAME if source == "object-store" else None))
    out = output_dir(args.out, "--out", (PORTFOLIO_CSV_NAME, f"{PORTFOLIO_PARSER_NAME}.py", "main.py"))
    universe, methods = _portfolio_run(args, ctx)
    portfolio_tickers(universe.symbols, tickers)  # bad tickers fail before the long work
    res = _portfolio_export(args, ctx, universe, methods)
    try:
        project = write_portfolio_lean_project(out, res.frame, tickers=tickers, benchmark=universe.benchmark,
                                               data_source=source, data_url=args.data_url,
                                               object_store_key=args.object_store_key, cash=args.cash)
    except OSError as exc:
        raise write_failed("--out", args.out, exc) from None
    s = res.to_dict()
    if args.json:
        print_json({**s, "project": project.to_dict()})
        return 0
    print(f"wrote {s['rows']:,} rows ({s['dates']:,} closes, {s['first_date']} to {s['last_date']}) of "
          f"{project.method} weights for {len(res.assets)} assets in {res.seconds:.0f} s")
    print(f"  {project.csv}\n  {project.parser}\n  {project.main}")
    for note in res.notes:
        print(f"note: {note}")
    where = {
        "file": f"copy {project.csv.name} to <LEAN data folder>/{project.location}",
        "url": f"upload {project.csv.name} so that it is served at {project.location}",
        "object-store": f"upload {project.csv.name} to the Object Store as {project.location}",
    }[project.data_source]
    print(f"next: {where}, put main.py and {project.parser.name} in a LEAN project, run a backtest "
          "(see docs/export.md)")
    return 0


def _quantconnect(args: argparse.Namespace, ctx) -> int:
    from integrations import lean_data_location, lean_tickers, write_lean_project

    if _portfolio_mode(args, quantconnect=True):
        return _portfolio_quantconnect(args, ctx)
    tickers = _tickers(args.ticker)
    if not (args.cash > 0 and args.cash < float("inf")):
        raise ValueError(f"--cash must be a positive number, got {args.cash}")
    source = args.data_source or ("url" if args.data_url else "object-store" if args.object_store_key else "file")
    lean_data_location(source, args.data_url, args.object_store_key)  # bad options fail before the long work
    out = output_dir(args.out, "--out", _project_files())
    store, symbols = _store(args, ctx)
    lean_tickers(symbols, tickers)
    res = _run(args, ctx, store, symbols)
    try:
        project = write_lean_project(out, res.frame, tickers=tickers, data_source=source, data_url=args.data_url,
                                     object_store_key=args.object_store_key, cash=args.cash)
    except OSError as exc:
        raise write_failed("--out", args.out, exc) from None
    if args.json:
        print_json({**res.to_dict(), "as_of_effective": store.as_of_effective, "project": project.to_dict()})
        return 0
    s = res.to_dict()
    print(f"wrote {s['rows']:,} rows ({s['first_date']} to {s['last_date']}) for {', '.join(res.symbols)} "
          f"in {res.seconds:.0f} s")
    print(f"  {project.csv}\n  {project.parser}\n  {project.main}")
    print(f"  trades {', '.join(f'{k} as {v}' for k, v in project.tickers.items())} from {project.start} to "
          f"{project.end}; reads the CSV from {project.data_source}: {project.location}")
    where = {
        "file": f"copy {project.csv.name} to <LEAN data folder>/{project.location}",
        "url": f"upload {project.csv.name} so that it is served at {project.location}",
        "object-store": f"upload {project.csv.name} to the Object Store as {project.location}",
    }[project.data_source]
    print(f"next: {where}, put main.py and regimedesk_signals.py in a LEAN project, run a backtest "
          "(see docs/export.md)")
    return 0


def _csv(args: argparse.Namespace, ctx) -> int:
    from integrations import SIGNAL_CSV_NAME, write_signal_csv

    if _portfolio_mode(args, quantconnect=False):
        return _portfolio_csv(args, ctx)
    path = _csv_target(args, SIGNAL_CSV_NAME)
    store, symbols = _store(args, ctx)
    res = _run(args, ctx, store, symbols)
    if path is None:
        write_signal_csv(res.frame, sys.stdout)
        return 0
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_signal_csv(res.frame, path)
    except OSError as exc:
        raise write_failed("--out", args.out, exc) from None
    if args.json:
        print_json({**res.to_dict(), "as_of_effective": store.as_of_effective, "path": str(path)})
        return 0
    s = res.to_dict()
    print(f"wrote {s['rows']:,} rows ({s['first_date']} to {s['last_date']}) for {', '.join(res.symbols)} "
          f"to {path} in {res.seconds:.0f} s")
    return 0
