"""``regimedesk report``: the PDF or HTML report of a fresh run."""

from __future__ import annotations

import argparse

from agents.cli.helptext import examples
from agents.cli.run import add_report_options, report_path, start_run

# Services are imported when the command runs, not at start-up.

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="run the agent graph and write a PDF or HTML report",
        description=(
            "Run the agent graph on the symbols (no broker: nothing is traded) and write a "
            "report for a portfolio manager: cover with data provenance and run id, executive "
            "summary, regimes per timeframe with a price chart shaded by the causal regime path, "
            "statistics with p-values and readings, the ML signal with its out-of-sample record, "
            "calibration and feature importance, the walk-forward backtest against buy-and-hold as a tearsheet (yearly and monthly returns, "
            "worst drawdowns, rolling Sharpe and volatility, exposure, trades), "
            "the VaR backtest, risk-gate state and a methodology appendix. A .pdf file is a printable "
            "report; a .html file (or --format html) is the same report as one self-contained page "
            "with interactive charts (zoom, hover values) that opens offline in any browser. Works "
            "offline on the embedded data. To report on a run that trades, use 'regimedesk run ... "
            "--broker paper --report FILE.pdf'. With --universe instead of symbols: a portfolio report of "
            "the universe (--portfolio method against 1/N, inverse volatility and the index: backtest "
            "summary, weights over time, today's weights and component VaR, historical stress, drawdowns, "
            "crisis windows)."
        ),
    )
    p.epilog = examples("regimedesk report SP500 --out report.pdf",
                        "regimedesk report SP500 NASDAQ --out reports/ --format html --no-backtest",
                        "regimedesk report --universe sp500-20 --portfolio erc --out p.pdf")
    p.fill_later(_options)
    p.set_defaults(handler=_report)


def _options(p: argparse.ArgumentParser) -> None:
    from agents.services.data import SOURCE_NAMES

    p.add_argument("symbols", nargs="*", metavar="SYMBOL", help="symbols, e.g. SP500 NASDAQ (or --universe)")
    p.add_argument("--universe", help="a portfolio report of this universe instead of symbols (builtin or "
                                      "configured name, or a file listing symbols)")
    p.add_argument("--portfolio", choices=("erc", "mv", "hrp", "invvol"),
                   help="portfolio method of --universe: erc (equal risk contributions), mv (minimum variance "
                        "within regime caps), hrp (hierarchical risk parity) or invvol (default: portfolio.method, "
                        "erc when that is none)")
    p.add_argument("--out", required=True, metavar="FILE.pdf|FILE.html",
                   help="where to write the report (replaced atomically); a directory gets report-SYMBOLS.pdf "
                        "(or .html) inside it")
    p.add_argument("--format", choices=("pdf", "html"),
                   help="pdf or html (default: from the --out file name; pdf for a directory)")
    p.add_argument("--source", choices=SOURCE_NAMES, help="market-data source (default: data.source)")
    p.add_argument("--as-of", dest="as_of", help="report as of this date with data up to then only")
    p.add_argument("--llm", choices=("template", "openai"), help="narrator backend (default: llm.backend)")
    add_report_options(p)
    p.add_argument("--json", action="store_true", help="print the run's final state as JSON")


def _report(args: argparse.Namespace, ctx) -> int:
    from agents.services.context import build_request

    if args.universe is not None:
        return _portfolio_report(args, ctx)
    if args.portfolio is not None:
        raise ValueError("--portfolio goes with --universe (a portfolio report)")
    if not args.symbols:
        raise ValueError("give symbols or --universe")
    out = report_path(args.out, "--out", args.format, args.symbols)
    backtest = ctx.settings.report.backtest and not args.no_backtest
    request = build_request(ctx.settings, ctx.secrets, args.symbols, source=args.source, llm=args.llm,
                            as_of=args.as_of, report=out, report_backtest=backtest)
    return start_run(ctx, request, args.json,
                     f"report on {', '.join(request.symbols)} (source {request.source}) -> {out}")


def _portfolio_report(args: argparse.Namespace, ctx) -> int:
    import sys

    from agents.cli.options import date_option
    from agents.cli.output import ProgressBar, print_json
    from agents.services.portfolio import resolve_universe
    from agents.services.portfolio_report import report_method, write_portfolio_report

    if args.symbols:
        raise ValueError("give symbols or --universe, not both")
    for given, option in ((args.no_backtest, "--no-backtest"), (args.llm, "--llm")):
        if given:
            raise ValueError(f"{option} applies to a report on symbols, not to --universe")
    date_option(args.as_of, "--as-of")
    method = report_method(ctx.settings, args.portfolio)
    universe = resolve_universe(ctx.settings, args.universe)
    out = report_path(args.out, "--out", args.format, [f"{universe.name}-{method}"])
    sys.stderr.write(f"portfolio report on the {universe.name} universe ({len(universe.symbols)} assets), "
                     f"{method} -> {out}\n")
    rendered, report = write_portfolio_report(
        ctx.settings, ctx.secrets, args.universe, out, method, source=args.source, as_of=args.as_of,
        progress=ProgressBar(), status=lambda text: sys.stderr.write(f"  {text}\n"))
    doc = {"path": str(rendered.path), "format": rendered.format, "pages": rendered.pages,
           "figures": rendered.figures, "bytes": rendered.bytes}
    if args.json:
        print_json({"report": doc, "universe": report.backtest["universe"], "method": method,
                    "window": report.backtest["window"],
                    "metrics": {k: v["metrics"] for k, v in report.backtest["results"].items()}})
        return 0
    print(f"wrote {rendered.path} ({rendered.format}, {rendered.pages} page(s), {rendered.figures} chart(s))")
    return 0
