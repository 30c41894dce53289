"""Commands over a universe's portfolio: ``backtest --universe`` (the policy against its benchmarks),
``risk var --universe`` and ``risk stress``."""

from __future__ import annotations

import argparse
import sys

from agents.cli.options import date_option
from agents.cli.output import ProgressBar, print_json, print_table, print_var_backtest

__all__ = ["PORTFOLIO_HELP", "backtest_universe", "universe_var_command", "stress_command"]

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


def _fmt(x, spec: str = ".4%") -> str:
    return "-" if x is None or x != x else format(x, spec)


def universe_var_command(args: argparse.Namespace, ctx) -> int:
    """``risk var --universe``: today's portfolio VaR and ES with risk attribution, or (--backtest) the
    backtest of its VaR forecasts."""
    from agents.services.portfolio_risk import load_book, universe_var, var_methods

    if args.symbol is not None:
        raise ValueError("give a symbol or --universe, not both")
    if args.universe is None:
        raise ValueError("give a symbol (with --backtest) or --universe")
    level = args.level if args.level is not None else ctx.settings.risk.var_level
    if not 0.5 < level < 1:
        raise ValueError("--level must be between 0.5 and 1")
    if args.window < 100:
        raise ValueError("--window must be >= 100")
    if args.backtest:
        return _universe_var_backtest(args, ctx, level)
    if args.sims < 1:
        raise ValueError("--sims must be positive")
    if args.seed < 0:
        raise ValueError("--seed must be >= 0")
    methods = var_methods(args.method or "historical")
    book, _ = load_book(ctx.settings, ctx.secrets, args.universe, args.weights, source=args.source, as_of=args.as_of)
    sys.stderr.write(f"{', '.join(methods)} VaR {level:.0%} of the {book.universe.name} portfolio...\n")
    doc = universe_var(book, methods, level=level, window=args.window, n_sims=args.sims, seed=args.seed)
    if args.json:
        print_json(doc)
        return 0
    print(f"{book.universe.name}: {len(book.weights)} assets, weights {doc['weights_method']}, "
          f"{doc['window']} daily returns {doc['start']} to {doc['as_of']}, level {level:.1%}")
    for note in doc["notes"]:
        print(f"note: {note}")
    for m, r in doc["results"].items():
        extra = ""
        if r["standard_error"] is not None:
            extra = f", standard error {r['standard_error']:.4%} ({r['n']} sims, seed {r['seed']})"
        if r["dof"] is not None:
            extra = f", {r['dof']:.2f} degrees of freedom"
        print(f"\n{m}: VaR {r['var']:.4%}  ES {r['es']:.4%}{extra}")
        rows = [(a["symbol"], _fmt(a["weight"], ".2%"), _fmt(a["component_var"]), _fmt(a["marginal_var"]),
                 _fmt(a["share"], ".1%"), _fmt(a["component_es"])) for a in r["assets"]]
        rows.append(("total", _fmt(sum(a["weight"] for a in r["assets"]), ".2%"), _fmt(r["var"]), "",
                     _fmt(1.0 if r["var"] else None, ".1%"), _fmt(r["es"])))
        print_table(["asset", "weight", "component VaR", "marginal VaR", "share", "component ES"], rows)
    return 0


def stress_command(args: argparse.Namespace, ctx) -> int:
    """``risk stress``: historical scenarios and hypothetical shocks on a universe's portfolio."""
    from agents.services.portfolio_risk import (
        load_book,
        parse_shock,
        scenario_keys,
        universe_stress,
    )

    keys = scenario_keys(args.scenario)
    shocks: dict[str, float] = {}
    for text in args.shock:
        sym, r = parse_shock(text)
        if sym in shocks:
            raise ValueError(f"--shock {sym} is given twice")
        shocks[sym] = r
    book, store = load_book(ctx.settings, ctx.secrets, args.universe, args.weights, source=args.source,
                            as_of=args.as_of)
    doc = universe_stress(ctx.settings, book, store, keys, shocks)
    if args.json:
        print_json(doc)
        return 0
    print(f"{book.universe.name}: {len(book.weights)} assets as of {doc['as_of']}, weights {doc['weights_method']}")
    for note in doc["notes"]:
        print(f"note: {note}")
    rows = []
    for key, sc in doc["scenarios"].items():
        if "error" in sc:
            rows.append((key, f"{sc['start']}..{sc['end']}", "not covered", "", "", "", ""))
            continue
        drivers = ", ".join(f"{d['symbol']} {d['pnl']:+.2%}" for d in sc["drivers"])
        rows.append((key, f"{sc['base_date']}..{sc['end_date']}", f"{sc['pnl']:+.2%}",
                     f"{sc['worst_date']} {sc['worst_return']:+.2%}", f"{-abs(sc['max_drawdown']):.2%}",
                     f"{sc['coverage']:.0%}", drivers))
    if rows:
        print_table(["scenario", "window", "P&L", "worst day", "max DD", "coverage", "worst drivers"], rows)
    sh = doc["shock"]
    if sh is not None:
        given = ", ".join(f"{k} {v:+.1%}" for k, v in sh["shocks"].items())
        cw = sh["covariance"]
        print(f"\nshock {given}: P&L {sh['pnl']:+.2%} (covariance of {cw['rows']} returns {cw['start']} to "
              f"{cw['end']}{'; singular, pseudo-inverse used' if sh['singular'] else ''})")
        print_table(["driver", "P&L", "implied return"],
                    [(d["symbol"], f"{d['pnl']:+.2%}", f"{sh['returns'][d['symbol']]:+.2%}") for d in sh["drivers"]])
    return 0


def _universe_var_backtest(args: argparse.Namespace, ctx, level: float) -> int:
    from agents.services.portfolio_risk import load_book, universe_var_backtest

    method = args.method or ctx.settings.risk.var_method
    if method not in ("gjr_filtered", "filtered", "historical"):
        raise ValueError(f"--method {method}: a VaR backtest takes gjr_filtered, filtered or historical")
    for option, default in (("sims", 100_000), ("seed", 0)):
        if getattr(args, option) != default:
            raise ValueError(f"--{option} goes with Monte Carlo VaR, not with --backtest")
    book, _ = load_book(ctx.settings, ctx.secrets, args.universe, args.weights, source=args.source, as_of=args.as_of)
    sys.stderr.write(f"backtesting {method} VaR {level:.0%} of the {book.universe.name} portfolio "
                     "(today's weights held constant)...\n")
    doc = universe_var_backtest(book, level=level, method=method, window=args.window)
    if args.json:
        print_json(doc)
        return 0
    for note in doc["notes"]:
        print(f"note: {note}")
    print_var_backtest(doc)
    return 0
