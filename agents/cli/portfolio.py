"""``regimedesk backtest --universe``: the portfolio policy over many assets, with its benchmarks."""

from __future__ import annotations

import argparse
import sys

from agents.cli.options import date_option
from agents.cli.output import ProgressBar, print_json, print_table

__all__ = ["PORTFOLIO_HELP", "backtest_universe"]

PORTFOLIO_HELP = ("portfolio method of --universe: erc (equal risk contributions), mv (minimum variance "
                  "within regime caps, turnover-penalised), hrp (hierarchical risk parity), invvol, or all "
                  "(default: portfolio.method, erc when that is none)")

_CRISIS_ROWS = (("total_return", "return"), ("max_drawdown", "max DD"))


def _methods(args: argparse.Namespace, ctx) -> list[str]:
    from analytics import PORTFOLIO_METHODS

    choice = args.portfolio or ctx.settings.portfolio.method
    if choice == "all":
        return list(PORTFOLIO_METHODS)
    if choice == "none":
        return ["erc"]
    return [choice]


def backtest_universe(args: argparse.Namespace, ctx) -> int:
    """Run and print the portfolio backtest of ``--universe``."""
    from agents.services.format import METRIC_ROWS, format_metric
    from agents.services.portfolio import METHOD_LABELS, portfolio_backtest, resolve_universe

    if args.symbol:
        raise ValueError("give a symbol or --universe, not both")
    if args.policy:
        raise ValueError("--policy applies to a single-symbol backtest; use --portfolio with --universe")
    start = date_option(args.start, "--start")
    end = date_option(args.end, "--end")
    if start is not None and end is not None and start.tz_localize(None) > end.tz_localize(None):
        raise ValueError(f"--start {args.start} is after --end {args.end}")
    universe = resolve_universe(ctx.settings, args.universe)
    methods = _methods(args, ctx)
    against = "1/N, inverse volatility" + (" and the index" if universe.benchmark else "")
    sys.stderr.write(f"backtesting {', '.join(methods)} on the {universe.name} universe "
                     f"({len(universe.symbols)} assets) walk-forward, against {against}...\n")
    rep = portfolio_backtest(ctx.settings, ctx.secrets, universe, methods, source=args.source,
                             start=args.start, end=args.end, cost_bps=args.costs_bps, progress=ProgressBar())
    if args.json:
        print_json({**{k: v for k, v in rep.items() if k not in ("weights", "targets")},
                    "equity": {k: v.tolist() for k, v in rep["equity"].items()},
                    "dates": [t.isoformat() for t in next(iter(rep["equity"].values())).index]})
        return 0
    w, cfg = rep["window"], rep["config"]
    print(f"{universe.name}: {len(rep['assets'])} assets, {w['start'][:10]} to {w['end'][:10]} ({w['bars']} bars); "
          f"costs {cfg['cost_bps']:g} bps per unit traded; review every {cfg['review_every']} bars, "
          f"band {cfg['band']:g}; regime of {rep['regime']['symbol']}")
    for note in rep["notes"]:
        print(f"note: {note}")
    cols = list(rep["results"])
    head = ["", *(METHOD_LABELS[c] for c in cols)]
    rows = [(label, *(format_metric(rep["results"][c]["metrics"][k], kind) for c in cols))
            for k, label, kind in METRIC_ROWS if k not in ("hit_rate", "profit_factor")]
    rows.append(("Average gross", *(format_metric(rep["results"][c]["metrics"]["avg_gross"], "pct") for c in cols)))
    rows.append(("Trades", *(str(rep["results"][c]["rebalances"]) for c in cols)))
    print_table(head, rows)
    scenarios = {k: v for c in cols for k, v in rep["results"][c]["crisis"].items()}
    if scenarios:
        print("\ncrisis windows")
        crows = []
        for key, sc in scenarios.items():
            for field, label in _CRISIS_ROWS:
                crows.append((f"{sc['name']} {sc['start']}..{sc['end']}" if field == "total_return" else "",
                              label, *(format_metric(rep["results"][c]["crisis"].get(key, {}).get(field), "pct")
                                       for c in cols)))
        print_table(["window", "", *(METHOD_LABELS[c] for c in cols)], crows)
    share = ", ".join(f"{k} {v:.0%}" for k, v in rep["regime"]["share"].items())
    print(f"\nconsensus regime of {rep['regime']['symbol']} over the window: {share}")
    print("parameters are fixed a priori ([portfolio] settings); mv uses zero expected returns "
          "(minimum variance within the regime caps)")
    return 0
