"""``regimedesk scan``: every symbol of a universe, on this machine or a Dask cluster, with what changed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agents.cli.helptext import examples
from agents.cli.output import print_json, print_table

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "scan",
        help="scan a universe: regimes, character, signal and what changed since the last scan",
        description=(
            "For every symbol: the regime per timeframe (label, filtered probability), the consensus, the "
            "market character per timeframe, the ML signal and volatility forecast of the stored model (a scan "
            "never trains: 'regimedesk train SYMBOL' first), the decision policy's target weight, and what "
            "changed since the last scan of that symbol (regime changes are listed first). A symbol that "
            "fails is reported with its reason and does not stop the scan.\n\n"
            "Execution: --workers 1 runs in this process; more (default: one per core) start a local Dask "
            "cluster of worker processes for the scan; --scheduler tcp://HOST:PORT uses a running Dask "
            "cluster, whose workers need RegimeDesk installed, the same data and their own keys."
        ),
        epilog=examples("regimedesk scan --universe sp500-20",
                        "regimedesk scan SP500 NASDAQ AAPL --workers 1 --json",
                        "regimedesk scan --symbols-file mine.txt --scheduler tcp://10.0.0.5:8786 --out scan.csv"),
    )
    p.add_argument("symbols", nargs="*", metavar="SYMBOL", help="symbols to scan (or --universe / --symbols-file)")
    p.add_argument("--universe", help="a builtin or [portfolio.universes] name, or a file listing symbols")
    p.add_argument("--symbols-file", dest="symbols_file", help="a file listing symbols (commas, spaces, lines; #)")
    p.add_argument("--source", help="market-data source (default: data.source)")
    p.add_argument("--as-of", dest="as_of", help="use only data available at the end of this date")
    p.add_argument("--workers", type=int, help="worker processes (default: compute.workers, 0 = one per core); "
                                                 "1 runs in this process without Dask")
    p.add_argument("--scheduler", help="address of a running Dask scheduler (default: compute.scheduler)")
    p.add_argument("--out", metavar="FILE.csv|FILE.parquet", help="also write the records as a table")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_scan)


def _symbols(args: argparse.Namespace, ctx) -> tuple[str, list[str]]:
    from agents.services.portfolio import resolve_universe

    given = [x for x in (args.symbols and "symbols", args.universe and "--universe",
                         args.symbols_file and "--symbols-file") if x]
    if len(given) != 1:
        raise ValueError("give SYMBOLs, --universe or --symbols-file (exactly one of them)")
    if args.symbols:
        return "command line", list(dict.fromkeys(s.upper() for s in args.symbols))
    uni = resolve_universe(ctx.settings, args.universe or args.symbols_file)
    return uni.name, list(uni.symbols)


def _row(r) -> tuple[str, ...]:
    if not r.ok:
        return (r.symbol, "failed", "", "", "", "", "", "", r.error or "")
    tfs = [(r.regimes.get(tf) or {}).get("label") or "-" for tf in ("LT", "MT", "ST")]
    p_up = "-" if r.p_up is None else f"{r.p_up:.2f}"
    w = "-" if r.target_weight is None else f"{r.target_weight:.2f}"
    return (r.symbol, str(r.consensus.get("label", "-")), *tfs, str(r.character.get("MT") or "-"), p_up, w,
            "; ".join(r.changes))


def _scan(args: argparse.Namespace, ctx) -> int:
    from agents.cli.options import date_option, output_file, write_failed
    from agents.cli.output import ProgressBar
    from agents.runtime.scan import resolve_workers, run_scan, where

    name, symbols = _symbols(args, ctx)
    date_option(args.as_of, "--as-of")
    workers, scheduler = resolve_workers(ctx.settings, args.workers, args.scheduler)
    out = None
    if args.out is not None:  # checked now, not after the scan
        if not args.out.lower().endswith((".csv", ".parquet")):
            raise ValueError("--out must name a .csv or .parquet file")
        out = output_file(args.out, "--out")
    sys.stderr.write(f"scanning {len(symbols)} symbol(s) of {name} on {where(workers, scheduler)}...\n")
    bar = ProgressBar()
    outcome = run_scan(ctx.settings, symbols, universe=name, source=args.source, as_of=args.as_of,
                       workers=workers, scheduler=scheduler,
                       progress=lambda done, failed, total: bar(f"symbols (failed {failed})", done, total))
    records = outcome.records
    if out is not None:
        try:
            _write(out, records)
        except OSError as exc:
            raise write_failed("--out", args.out, exc) from None
    if args.json:
        print_json(outcome.to_dict())
    else:
        print(f"{name}: {len(records)} symbols scanned in {outcome.seconds:.1f} s, {outcome.failed} failed")
        print_table(["symbol", "consensus", "LT", "MT", "ST", "MT character", "P(up)", "target", "changes"],
                    [_row(r) for r in records])
    return 1 if records and all(not r.ok for r in records) else 0


def _write(path: Path, records) -> None:
    import pandas as pd

    from integrations import write_atomic

    rows = []
    for r in records:
        row = {"symbol": r.symbol, "ok": r.ok, "error": r.error, "last_bar": r.last_bar,
               "consensus": r.consensus.get("label"), "consensus_family": r.consensus.get("family"),
               "p_up": r.p_up, "vol_forecast": r.vol_forecast, "target_weight": r.target_weight,
               "model_version": r.model_version, "changes": "; ".join(r.changes)}
        for tf, reg in r.regimes.items():
            row[f"{tf}_regime"] = reg.get("label")
            row[f"{tf}_probability"] = reg.get("probability")
        for tf, ch in r.character.items():
            row[f"{tf}_character"] = ch
        rows.append(row)
    frame = pd.DataFrame(rows)
    if path.suffix.lower() == ".parquet":
        import io

        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        write_atomic(path, buf.getvalue())
    else:
        write_atomic(path, frame.to_csv(index=False).encode())
