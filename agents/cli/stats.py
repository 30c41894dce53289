"""``regimedesk stats``: statistical tests with p-values and plain-language readings."""

from __future__ import annotations

import argparse
from typing import Any

from agents.cli.helptext import examples
from agents.cli.options import add_start_option, add_symbol_options, bar_store
from agents.cli.output import print_json
from analytics import RegimeDeskError

# agents.config and the services are imported when the command runs, not at start-up.

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stats",
        help="Hurst, variance ratio, ADF, autocorrelation and market character",
        description=(
            "Run the statistical tests on the last N bars of a symbol for each timeframe "
            "(LT weekly, MT and ST daily, US intraday) and print each statistic with its "
            "p-value and a plain-language reading. The market character (trending, "
            "mean-reverting, random walk) is calibrated against simulated random walks of the "
            "same length and needs at least 100 bars."
        ),
    )
    p.epilog = examples("regimedesk stats SP500",
                        "regimedesk stats NASDAQ --horizon MT --window 500",
                        "regimedesk stats SP500 --start 2005-01-01 --as-of 2010-12-31 --json")
    p.fill_later(_options)
    p.set_defaults(handler=_stats)


def _options(p: argparse.ArgumentParser) -> None:
    from agents.config import TIMEFRAME_NAMES

    add_symbol_options(p)
    add_start_option(p, "tests")
    p.add_argument("--horizon", choices=TIMEFRAME_NAMES,
                   help="one analysis horizon: LT weekly, MT or ST daily, US intraday (default: all)")
    # --timeframe is a bar length (1D, 1W, 5Min) in every other command; the old spelling here
    # fails with a pointer instead of argparse's bare "unrecognized arguments".
    p.add_argument("--timeframe", action=_RenamedOption, help=argparse.SUPPRESS)
    p.add_argument("--window", type=int, help="bars to use (default: the horizon's lookback)")


class _RenamedOption(argparse.Action):
    """``stats --timeframe LT`` from before the rename: a usage error naming ``--horizon``."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        parser.error(f"{option_string} is a bar length (1D, 1W, 5Min) in regimedesk; "
                     "stats takes the horizon as --horizon LT|MT|ST|US")


def _stats(args: argparse.Namespace, ctx) -> int:
    from agents.config import TIMEFRAME_NAMES
    from agents.services.statistics import statistics_report

    if args.window is not None and args.window < 20:
        raise ValueError("--window must be >= 20")
    store, symbol = bar_store(args, ctx, start=args.start)
    timeframes = [args.horizon] if args.horizon else list(TIMEFRAME_NAMES)
    out: dict[str, Any] = {"symbol": symbol, "as_of": args.as_of, "as_of_effective": store.as_of_effective,
                           "start": args.start, "timeframes": {}}
    for tf in timeframes:
        try:
            bars = store.get(symbol, tf)
            rep = statistics_report(bars.frame["close"], args.window or store.lookback(tf))
        except RegimeDeskError as exc:
            if args.horizon:
                raise
            out["timeframes"][tf] = {"bar": store.bar_of(tf), "error": str(exc)}
            continue
        rep["bar"] = store.bar_of(tf)
        out["timeframes"][tf] = rep
    if args.json:
        print_json(out)
        return 0
    print(f"{symbol} statistics" + (f" as of {store.as_of_text}" if store.as_of_text else ""))
    for tf, rep in out["timeframes"].items():
        print(f"\n{tf} ({rep['bar']})", end="")
        if "error" in rep and "nobs" not in rep:
            print(f": unavailable - {rep['error']}")
            continue
        print(f": {rep['nobs']} bars, {rep['start'][:10]} to {rep['end'][:10]}")
        _line("ADF", rep["adf"], lambda r: f"stat {r['stat']:.3f}  p {r['pvalue']:.3f}  lags {r['lags']}")
        _line("Variance ratio", rep["variance_ratio"], lambda r: "  ".join(
            f"VR({q}) {v:.3f} (p {p:.3f})" for q, v, p in zip(r["lags"], r["vr"], r["pvalue"], strict=True)
        ) + f"  joint p {r['joint_pvalue']:.3f}")
        _line("Hurst (DFA)", rep["hurst"], lambda r: f"H {r['hurst']:.3f}  95% CI [{r['ci_low']:.3f}, {r['ci_high']:.3f}]")
        _line("Autocorrelation", rep["autocorrelation"], lambda r: "acf(1..5) " + " ".join(
            f"{a:+.3f}" for a in r["acf"]) + f"  Ljung-Box p {r['ljung_box_pvalue']:.3f}")
        ch = rep["character"]
        if ch.get("available"):
            print(f"  {'Character':<16} {ch['character']} (confidence {ch['confidence']:.2f})")
            print(f"  {'':<16} -> {ch['reading']}")
        else:
            print(f"  {'Character':<16} unavailable: {ch.get('reason') or ch.get('error')}")
    return 0


def _line(name: str, rep: dict[str, Any], fmt) -> None:
    if "error" in rep:
        print(f"  {name:<16} unavailable: {rep['error']}")
        return
    print(f"  {name:<16} {fmt(rep)}")
    print(f"  {'':<16} -> {rep['reading']}")
