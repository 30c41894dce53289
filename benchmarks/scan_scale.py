"""``regimedesk scan`` at scale: serial vs 1 and 2 Dask workers, cold and warm, on a synthetic universe.

Data: ``--symbols`` daily OHLCV series ``SYN0000``, ``SYN0001``, ... of ``--bars`` business days
ending 2024-12-31, written as Parquet files read by the file source (``data.source = "file"``).
Each is a log-price random walk with 2-state Markov regime switches (calm: mu +0.0004, sigma
0.008, stays with p 0.99; turbulent: mu -0.001, sigma 0.025, stays with p 0.97), seeded by the
symbol's index, with consistent open/high/low/close and a positive volume. Every random stream
is drawn element by element, so the series with one more bar repeats the first ``--bars`` bars.

Modes, timed in this process run for the same symbols (``--modes serial,1,2``):

* ``serial``: ``for s in symbols: scan_symbol(s, settings, "file")`` in this process;
* ``1`` / ``2``: :func:`agents.runtime.compute.map_symbols` on a ``LocalCluster`` of 1 / 2
  worker processes started here and passed as ``scheduler=`` (so both Dask timings carry the
  same overhead); the cluster's start-up is timed separately, a new cluster for every scan
  (as each morning's ``regimedesk scan --workers N`` starts its own).

Each mode has its own fresh home (empty fit cache): the first scan is COLD. Then every file
gets ONE new bar and the mode scans again with the same home: WARM (the morning scan after a
new bar: only new refits are estimated). ``--skip-cold`` fills one home with an untimed serial
scan and copies it to every mode instead. Records of all modes must be identical.

Growth (``--growth 1000,5000,20000`` bars on ``--growth-symbols`` symbols): serial cold and
warm seconds per symbol against the history length (``data.history_years`` is raised when the
series is longer than the default 30 years, so the whole series is read).

Targets of issue 26 (500 symbols x 5,000 bars): warm <= 60 s, cold <= 300 s (incl. cluster
start-up, the fastest mode), 2 workers >= 1.7x 1 worker. With fewer symbols the measured
figures are printed together with a labelled linear extrapolation to 500 symbols.

Usage: python benchmarks/scan_scale.py [--symbols 500] [--bars 5000] [--dir DIR] [--modes serial,1,2]
       [--skip-cold] [--skip-growth] [--growth 1000,5000,20000] [--growth-symbols 2] [--json FILE]
(500 x 5000 cold takes about 40 minutes; try --symbols 4 --bars 1500 --growth 1000,1500 --growth-symbols 1.)
"""

from __future__ import annotations

import os

# Before numpy is imported: one BLAS thread here and in the Dask workers (they inherit the environment).
os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

END = pd.Timestamp("2024-12-31")
MU = np.array([0.0004, -0.001])
SIGMA = np.array([0.008, 0.025])
P_STAY = np.array([0.99, 0.97])
TARGET_SYMBOLS, TARGET_BARS = 500, 5000
TARGET_WARM_S, TARGET_COLD_S, TARGET_SPEEDUP = 60.0, 300.0, 1.7
DEFAULT_HISTORY_YEARS = 30.0


# -- synthetic data ------------------------------------------------------------------------

def synthetic_bars(seed: int, n: int, start: pd.Timestamp) -> pd.DataFrame:
    """``n`` daily OHLCV bars from ``start`` (business days); the first ``n`` of ``n + 1`` are these."""
    g_init, g_calm, g_turb, g_ret, g_ohlc, g_vol = (np.random.default_rng(s)
                                                   for s in np.random.SeedSequence(seed).spawn(6))
    pi_turb = (1 - P_STAY[0]) / ((1 - P_STAY[0]) + (1 - P_STAY[1]))
    u0, p0 = g_init.random(2)
    first = int(u0 < pi_turb)
    # Regime durations are geometric; n of each cover n bars, and a prefix of the draws is a prefix of the path.
    calm = g_calm.geometric(1 - P_STAY[0], size=n)
    turb = g_turb.geometric(1 - P_STAY[1], size=n)
    segs = np.empty(2 * n, dtype=np.int64)
    states_of_segs = np.empty(2 * n, dtype=np.int64)
    segs[0::2], segs[1::2] = (calm, turb) if first == 0 else (turb, calm)
    states_of_segs[0::2], states_of_segs[1::2] = first, 1 - first
    s = np.repeat(states_of_segs, segs)[:n]
    r = MU[s] + SIGMA[s] * g_ret.standard_normal(n)
    close = np.exp(np.log(20.0 + 180.0 * p0) + np.cumsum(r))
    e = g_ohlc.standard_normal((n, 3))
    prev = np.concatenate([[close[0] * np.exp(-r[0])], close[:-1]])
    open_ = prev * np.exp(0.25 * SIGMA[s] * e[:, 0])
    high = np.maximum(open_, close) * np.exp(0.5 * SIGMA[s] * np.abs(e[:, 1]))
    low = np.minimum(open_, close) * np.exp(-0.5 * SIGMA[s] * np.abs(e[:, 2]))
    volume = np.round(1e6 * np.exp(0.3 * g_vol.standard_normal(n) + 0.5 * s)) + 1.0
    return pd.DataFrame({"timestamp": pd.bdate_range(start=start, periods=n), "open": open_, "high": high,
                         "low": low, "close": close, "volume": volume})


def symbol_names(n: int) -> list[str]:
    return [f"SYN{k:04d}" for k in range(n)]


def write_universe(folder: Path, n_symbols: int, bars: int, start: pd.Timestamp) -> float:
    """Write (or rewrite) ``SYN*.parquet`` with ``bars`` bars from ``start``; seconds taken."""
    t0 = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(symbol_names(n_symbols)):
        synthetic_bars(k, bars, start).to_parquet(folder / f"{name}.parquet", index=False)
    return time.perf_counter() - t0


def first_date(bars: int) -> pd.Timestamp:
    return pd.bdate_range(end=END, periods=bars)[0]


def make_settings(home: Path, data: Path, bars: int):
    from agents.config import Settings

    years = max(DEFAULT_HISTORY_YEARS, min(200.0, math.ceil((bars + 1) / 260.0 + 1)))
    return Settings.model_validate({"home": str(home), "data": {
        "source": "file", "history_years": years, "file": {"directory": str(data)}}})


# -- timing --------------------------------------------------------------------------------

def fresh_process() -> None:
    """Forget what this process remembers between scans, as a new ``regimedesk scan`` process would.

    A benchmark may touch private names: the per-settings application contexts of the scan
    (``_CONTEXTS``: they hold bar stores, which would serve the old bars, and the fit-cache
    connection), the walk-forward prefix store, the statistics report cache and the memoised
    calibrations.
    """
    import agents.services.analysis as analysis
    import agents.services.statistics as stats_service
    import analytics._character as character
    import analytics._hurst as hurst
    import analytics._regime_common as regime_common
    import analytics._var as var

    contexts = analysis._CONTEXTS
    for ctx in contexts.values():
        ctx.close()
    contexts.clear()
    regime_common._PREFIXES.clear()
    regime_common._LABELS.clear()
    stats_service._REPORTS.clear()
    for fn in (var._fit_cached, character._null_computed, hurst._expected_log_rs, hurst._stderr_curve):
        fn.cache_clear()


def _lost(symbol: str, exc: BaseException):
    from agents.services.scan import ScanRecord

    return ScanRecord(symbol, False, error=f"lost: {type(exc).__name__}: {exc}")


def time_serial(settings, symbols: list[str]) -> tuple[float, float, list]:
    """(start-up 0, seconds, records) of the plain loop in this process."""
    from agents.services.scan import scan_symbol

    fresh_process()
    t0 = time.perf_counter()
    records = [scan_symbol(s, settings, "file") for s in symbols]
    seconds = time.perf_counter() - t0
    fresh_process()  # closes the fit cache: the next mode or a copy sees it whole
    return 0.0, seconds, records


def time_dask(settings, symbols: list[str], workers: int) -> tuple[float, float, list]:
    """(cluster start-up seconds, scan seconds, records) on a new LocalCluster of ``workers`` processes."""
    from distributed import LocalCluster

    from agents.runtime.compute import map_symbols
    from agents.services.scan import scan_symbol

    t0 = time.perf_counter()
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR)
    startup = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        records = map_symbols(scan_symbol, symbols, settings, "file", None, workers=workers,
                              scheduler=cluster.scheduler_address, lost=_lost)
        seconds = time.perf_counter() - t0
    finally:
        cluster.close()
    return startup, seconds, records


def run_mode(mode: str, settings, symbols: list[str]) -> tuple[float, float, list]:
    return time_serial(settings, symbols) if mode == "serial" else time_dask(settings, symbols, int(mode))


def same_records(a: list, b: list) -> list[str]:
    """Symbols whose records differ (apart from time taken and changes)."""
    return [x.symbol for x, y in zip(a, b, strict=True) if not x.same_result(y)]


def mode_label(mode: str) -> str:
    return "serial" if mode == "serial" else f"{mode} worker{'s' if mode != '1' else ''}"


def workers_of(mode: str) -> int:
    return 1 if mode == "serial" else int(mode)


# -- report --------------------------------------------------------------------------------

def extrapolate(fig: dict, n_symbols: int, phase: str) -> float:
    """Seconds for 500 symbols: mean per-symbol work x 500 / workers + fixed overhead + start-up.

    The fixed overhead is the measured scan time beyond the work divided over the workers
    (Dask: worker imports, task dispatch); it is assumed not to grow with the symbols.
    """
    work = fig[phase]["work_s"]
    w = fig["workers"]
    overhead = max(0.0, fig[phase]["s"] - work / w)
    return work / n_symbols * TARGET_SYMBOLS / w + overhead + fig[phase]["startup_s"]


def print_report(figs: dict, n_symbols: int, bars: int, phases: list[str]) -> dict:
    print()
    head = (f"{'mode':<11}{'start-up s':>11}{'cold s':>9}{'warm s':>9}{'cold ms/sym':>13}{'warm ms/sym':>13}"
            f"{'work ms/sym c/w':>18}{'failed':>8}")
    print(head)
    print("-" * len(head))

    def cell(fig, phase, key, scale=1.0, fmt=".2f"):
        return f"{fig[phase][key] * scale:{fmt}}" if phase in fig else "-"

    for mode, fig in figs.items():
        start = fig.get("warm", fig.get("cold"))["startup_s"]
        work = "/".join(f"{fig[p]['work_s'] / n_symbols * 1e3:.0f}" if p in fig else "-" for p in ("cold", "warm"))
        failed = sum(fig[p]["failed"] for p in phases)
        print(f"{mode_label(mode):<11}{start:>11.2f}{cell(fig, 'cold', 's'):>9}{cell(fig, 'warm', 's'):>9}"
              f"{cell(fig, 'cold', 's', 1e3 / n_symbols, '.0f'):>13}{cell(fig, 'warm', 's', 1e3 / n_symbols, '.0f'):>13}"
              f"{work:>18}{failed:>8}")
    print("(start-up: LocalCluster start, not in cold/warm s; work: mean ScanRecord.seconds, the per-symbol "
          "work where it ran)")

    ratios: dict[str, float] = {}
    print("\nratios (time of the first / time of the second; > 1: the second is faster):")
    pairs = [("1", "2"), ("serial", "1"), ("serial", "2")]
    for a, b in pairs:
        if a not in figs or b not in figs:
            continue
        for p in phases:
            fa, fb = figs[a][p], figs[b][p]
            scan = fa["s"] / fb["s"]
            total = (fa["s"] + fa["startup_s"]) / (fb["s"] + fb["startup_s"])
            ratios[f"{a}_vs_{b}_{p}"] = scan
            ratios[f"{a}_vs_{b}_{p}_with_startup"] = total
            print(f"  {mode_label(a)} / {mode_label(b)} {p}: {scan:.2f}x scan only, {total:.2f}x with start-up")

    full = n_symbols == TARGET_SYMBOLS and bars == TARGET_BARS
    basis = ("measured" if full else f"EXTRAPOLATED linearly from {n_symbols} symbols to {TARGET_SYMBOLS}"
             + ("" if bars == TARGET_BARS else f" (at {bars} bars, not {TARGET_BARS})"))
    print(f"\nissue 26 targets ({TARGET_SYMBOLS} symbols x {TARGET_BARS} bars), {basis}:")
    est: dict[str, dict[str, float]] = {}
    for mode, fig in figs.items():
        est[mode] = {}
        for p in phases:
            est[mode][p] = fig[p]["s"] + fig[p]["startup_s"] if full else extrapolate(fig, n_symbols, p)
        if not full:
            print(f"  {mode_label(mode):<11} " + ", ".join(f"{p} {est[mode][p]:.0f} s" for p in phases)
                  + " for 500 symbols (per-symbol work x 500 / workers + overhead + start-up)")
    targets: dict[str, object] = {"basis": basis}
    for p, limit in (("warm", TARGET_WARM_S), ("cold", TARGET_COLD_S)):
        if p not in phases:
            continue
        best = min(est, key=lambda m: est[m][p])
        ok = est[best][p] <= limit
        targets[p] = {"mode": best, "seconds": est[best][p], "limit": limit, "met": ok}
        print(f"  {p} <= {limit:.0f} s: {est[best][p]:.1f} s ({mode_label(best)}, with start-up) "
              f"-> {'MET' if ok else 'NOT MET'}")
    if "1" in est and "2" in est:
        for p in phases:
            sp = est["1"][p] / est["2"][p]
            ok = sp >= TARGET_SPEEDUP
            targets[f"speedup_{p}"] = {"ratio": sp, "limit": TARGET_SPEEDUP, "met": ok}
            print(f"  2 workers vs 1 worker {p} >= {TARGET_SPEEDUP}x: {sp:.2f}x (with start-up) "
                  f"-> {'MET' if ok else 'NOT MET'}")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    print(f"  (this machine: {os.cpu_count()} cores, load average now {load}; other processes running at the same "
          "time slow every mode, the 2-worker one most)")
    return {"ratios": ratios, "estimates_500": est, "targets": targets}


# -- growth --------------------------------------------------------------------------------

def growth(root: Path, bar_counts: list[int], n_symbols: int) -> list[dict]:
    rows = []
    symbols = symbol_names(n_symbols)
    for bars in bar_counts:
        data, home = root / f"growth{bars}" / "data", root / f"growth{bars}" / "home"
        start = first_date(bars)
        write_universe(data, n_symbols, bars, start)
        settings = make_settings(home, data, bars)
        _, cold, rec_c = time_serial(settings, symbols)
        write_universe(data, n_symbols, bars + 1, start)
        _, warm, rec_w = time_serial(settings, symbols)
        failed = sum(not r.ok for r in rec_c + rec_w)
        rows.append({"bars": bars, "symbols": n_symbols, "cold_s_per_symbol": cold / n_symbols,
                     "warm_s_per_symbol": warm / n_symbols, "failed": failed})
        print(f"  {bars:>7d} bars: cold {cold / n_symbols:8.2f} s/symbol, warm {warm / n_symbols:7.3f} s/symbol"
              + (f"  ({failed} failed)" if failed else ""), flush=True)
    return rows


# -- main ----------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=500, help="synthetic symbols (default 500)")
    ap.add_argument("--bars", type=int, default=5000, help="daily bars per symbol (default 5000)")
    ap.add_argument("--dir", type=Path, default=None, help="folder for data and homes (default: a temporary one)")
    ap.add_argument("--modes", default="serial,1,2", help="modes: serial and/or worker counts (default serial,1,2)")
    ap.add_argument("--skip-cold", action="store_true",
                    help="fill the fit cache with one untimed serial scan, copied to every mode; time warm only")
    ap.add_argument("--skip-growth", action="store_true", help="skip the growth-with-bars part")
    ap.add_argument("--growth", default="1000,5000,20000", help="bar counts of the growth part (default 1000,5000,20000)")
    ap.add_argument("--growth-symbols", type=int, default=2, help="symbols of the growth part (default 2)")
    ap.add_argument("--json", type=Path, default=None, help="write the raw figures to this file")
    args = ap.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        if m != "serial" and not (m.isdigit() and int(m) >= 1):
            ap.error(f"--modes: {m!r} is neither 'serial' nor a worker count")
    if args.symbols < 1 or args.bars < 600:
        ap.error("--symbols must be >= 1 and --bars >= 600 (MT trains on 504 bars first)")
    warnings.simplefilter("ignore")
    logging.getLogger("hmmlearn").setLevel(logging.ERROR)

    with tempfile.TemporaryDirectory(prefix="scan_scale_") as tmp:
        root = args.dir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        data = root / "data"
        symbols = symbol_names(args.symbols)
        start = first_date(args.bars)
        gen = write_universe(data, args.symbols, args.bars, start)
        print(f"synthetic universe: {args.symbols} symbols x {args.bars} daily bars "
              f"{start.date()}..{END.date()} (2-state Markov regimes), Parquet in {data}: written in {gen:.2f} s "
              f"({gen / args.symbols * 1e3:.1f} ms/symbol)", flush=True)
        homes = {m: root / f"home_{m}" for m in modes}
        for h in homes.values():
            shutil.rmtree(h, ignore_errors=True)
        figs: dict[str, dict] = {m: {"workers": workers_of(m)} for m in modes}
        records: dict[str, dict[str, list]] = {"cold": {}, "warm": {}}

        def record(mode: str, phase: str, out: tuple[float, float, list]) -> None:
            startup, seconds, recs = out
            figs[mode][phase] = {"startup_s": startup, "s": seconds, "work_s": sum(r.seconds for r in recs),
                                 "failed": sum(not r.ok for r in recs)}
            records[phase][mode] = recs
            print(f"  {mode_label(mode):<11} {phase}: {seconds:8.2f} s"
                  + (f" (+ {startup:.2f} s cluster start-up)" if mode != "serial" else ""), flush=True)

        phases = ["warm"] if args.skip_cold else ["cold", "warm"]
        if args.skip_cold:
            seed_home = root / "home_seed"
            t0 = time.perf_counter()
            time_serial(make_settings(seed_home, data, args.bars), symbols)
            print(f"fit cache filled by an untimed serial scan ({time.perf_counter() - t0:.1f} s); "
                  "copied to every mode's home", flush=True)
            for h in homes.values():
                shutil.copytree(seed_home, h)
        else:
            print("cold scans (a fresh home per mode):", flush=True)
            for m in modes:
                record(m, "cold", run_mode(m, make_settings(homes[m], data, args.bars), symbols))
        gen1 = write_universe(data, args.symbols, args.bars + 1, start)
        print(f"one new bar appended to every symbol ({gen1:.2f} s); warm scans (same homes):", flush=True)
        for m in modes:
            record(m, "warm", run_mode(m, make_settings(homes[m], data, args.bars + 1), symbols))

        diffs = []
        for p in phases:
            ref_mode = modes[0]
            for m in modes[1:]:
                bad = same_records(records[p][ref_mode], records[p][m])
                if bad:
                    diffs.append(f"{p} {mode_label(m)} vs {mode_label(ref_mode)}: {', '.join(bad[:5])}")
        print(f"identical: {'yes' if not diffs else 'no'}" + ("" if not diffs else " (" + "; ".join(diffs) + ")"))
        failures = sorted({r.error for recs in records["warm"].values() for r in recs if not r.ok})
        if failures:
            print(f"failed records, e.g.: {failures[0]}")
        summary = print_report(figs, args.symbols, args.bars, phases)

        grow: list[dict] = []
        if not args.skip_growth:
            counts = [int(x) for x in args.growth.split(",") if x.strip()]
            print(f"\ngrowth with bars (serial, {args.growth_symbols} symbol(s), fresh home per length; "
                  "warm after one new bar):", flush=True)
            grow = growth(root, counts, args.growth_symbols)
            if len(grow) > 1:
                a, b = grow[0], grow[-1]
                print(f"  {b['bars']} vs {a['bars']} bars ({b['bars'] / a['bars']:.1f}x): cold "
                      f"{b['cold_s_per_symbol'] / a['cold_s_per_symbol']:.1f}x, warm "
                      f"{b['warm_s_per_symbol'] / a['warm_s_per_symbol']:.1f}x per symbol")

        if args.json:
            doc = {"symbols": args.symbols, "bars": args.bars, "modes": modes, "cores": os.cpu_count(),
                   "generate_s": gen, "append_s": gen1, "identical": not diffs, "differences": diffs,
                   "figures": figs, **summary, "growth": grow}
            args.json.write_text(json.dumps(doc, indent=2, default=str), encoding="utf-8")
            print(f"\nraw figures written to {args.json}")


if __name__ == "__main__":
    main()
