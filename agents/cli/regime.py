"""``regimedesk regime``: multi-timeframe causal regimes, consensus and history."""

from __future__ import annotations

import argparse
import logging
import sys

from agents.cli.helptext import examples
from agents.cli.options import add_start_option, add_symbol_options, bar_store
from agents.cli.output import print_json, print_table

# Services (and with them the regime models) are imported when the command runs, not at start-up.

__all__ = ["register", "HELD_MARK", "HELD_LEGEND"]

#: Marks a history cell whose regime is held by the persistence rule.
HELD_MARK = "*"
HELD_LEGEND = (f"{HELD_MARK} held by the persistence rule: a switch needs several bars of evidence, and the most "
               "probable state already had another label (--json gives it as most_probable_label)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "regime",
        help="multi-timeframe market regimes with probabilities",
        description=(
            "Detect regimes (calm, bull, bear, high_volatility) on each timeframe with models "
            "refit walk-forward on past data only and filtered (not smoothed) probabilities, "
            "then a consensus across timeframes. Prints per timeframe the regime, its "
            "probability, since when and the expected duration. --history prints the causal "
            "regime path. US (intraday) is 'unavailable' when the source has daily bars only. "
            "Methods: hmm (default, ~6 s per daily timeframe on 20 years), garch (fastest), "
            "markov (~30 s), ensemble (all three, majority vote)."
        ),
    )
    p.epilog = examples("regimedesk regime SP500",
                        "regimedesk regime NASDAQ --method garch --history --start 2010-01-01",
                        "regimedesk regime SP500 --as-of 2008-10-15 --json")
    p.fill_later(_options)
    p.set_defaults(handler=_regime)


def _options(p: argparse.ArgumentParser) -> None:
    from agents.services.regime import METHODS

    add_symbol_options(p)
    add_start_option(p, "regime fits")
    p.add_argument("--method", choices=METHODS, default="hmm", help="regime model (default hmm)")
    p.add_argument("--history", action="store_true",
                   help=f"print the causal regime path per timeframe ({HELD_MARK}: label held by the "
                        "persistence rule; --json adds the most probable state)")
    p.add_argument("--seed", type=int, default=0, help="seed of the model fits (default 0)")


def _history_cell(row: dict) -> str:
    mark = HELD_MARK if row["held_by_persistence"] else ""
    return f"{row['label']} {row['probability']:.2f}{mark}"


def _regime(args: argparse.Namespace, ctx) -> int:
    from agents.services.regime import analyse_regimes, regime_history, regime_report

    logging.getLogger("hmmlearn").setLevel(logging.ERROR)
    store, symbol = bar_store(args, ctx, start=args.start)
    sys.stderr.write(f"fitting {args.method} regimes walk-forward on {symbol} (LT, MT, ST, US)...\n")
    analysis = analyse_regimes(store, symbol, args.method, seed=args.seed)
    report = regime_report(analysis)
    if args.history:
        history = regime_history(analysis)
        if args.json:
            print_json({"symbol": symbol, "method": args.method, "as_of": args.as_of,
                        "as_of_effective": store.as_of_effective, "start": args.start, "history": history})
            return 0
        dates = sorted({row["date"] for rows in history.values() for row in rows})
        lookup = {tf: {r["date"]: r for r in rows} for tf, rows in history.items()}
        tfs = list(history)
        rows = []
        for d in dates:
            cells = []
            for tf in tfs:
                r = lookup[tf].get(d)
                cells.append(_history_cell(r) if r else "")
            rows.append([d[:10], *cells])
        print_table(["date", *tfs], rows)
        if any(r["held_by_persistence"] for rs in history.values() for r in rs):
            print(f"\n{HELD_LEGEND}")
        return 0
    if args.json:
        print_json({**report, "as_of": args.as_of, "as_of_effective": store.as_of_effective, "start": args.start})
        return 0
    print(f"{symbol} regimes ({args.method})" + (f" as of {store.as_of_text}" if store.as_of_text else ""))
    rows = []
    for tf, r in report["timeframes"].items():
        if not r["available"]:
            rows.append([tf, r["bar"], "unavailable", "", "", "", "", r["reason"][:70]])
            continue
        dur = r["expected_duration_bars"]
        one = " (one regime)" if r.get("n_regimes") == 1 else ""
        rows.append([tf, r["bar"], r["label"] + one, f"{r['probability']:.2f}", r["since"][:10],
                     str(r["bars_in_regime"]), "" if dur is None else f"{dur:.0f}" if dur < 1e5 else ">99999",
                     f"{r['switches_per_year']:.1f}"])
    print_table(["tf", "bar", "regime", "prob", "since", "bars", "expected bars", "switches/yr"], rows)
    c = report["consensus"]
    agreement = "" if c["agreement"] is None else f", agreement {c['agreement']:.2f}"
    print(f"\nconsensus: {c['label']} ({c['family']}{agreement})")
    for conflict in c["conflicts"]:
        print(f"  conflict: {conflict['timeframe_a']} {conflict['label_a']} vs {conflict['timeframe_b']} {conflict['label_b']}")
    return 0
