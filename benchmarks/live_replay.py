"""Throughput and per-bar latency of ``regimedesk live`` over a replay of daily bars.

The full live loop (data cache update, graph run with checkpoints and journal, risk gate,
paper broker, heartbeat) plays ``--years`` of daily bars for several symbols, from a fresh
home: fit cache and model store start empty, so the first bar estimates everything and the
ML models are retrained whenever they are older than ``ml.max_model_age_days`` (default
30 days), as in production.

Reference, measured in the same process: one bar handled the way a run did before live
runs existed (``regimedesk run --as-of``: every walk-forward regime, GARCH and ML-fold fit
re-estimated, no finished regime block kept in memory; the ML model already stored), at a
few bars spread over the window. The ratio reference / loop compares the two per-bar medians.

Symbols: SP500 and NASDAQ are the embedded series; symbol 3 onward are the embedded series
with a seeded multiplicative noise path (as in ``graph_latency.py``), so that "several
symbols" does not need network data. All are served by the file source.

Usage: python benchmarks/live_replay.py [--symbols 3] [--years 5] [--reference-bars 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _write_symbols(folder: Path, n: int) -> list[str]:
    import arch.data.nasdaq
    import arch.data.sp500

    bases = {"SPX": arch.data.sp500.load(), "IXIC": arch.data.nasdaq.load()}
    names = []
    for k in range(n):
        key = list(bases)[k % 2]
        df = bases[key].copy()
        name = key if k < 2 else f"NOISY{k}"
        if k >= 2:
            rng = np.random.default_rng(k)
            noise = np.exp(np.cumsum(rng.normal(0, 0.002, len(df))))
            for col in ("Open", "High", "Low", "Close", "Adj Close"):
                df[col] = df[col] * noise
        df.to_csv(folder / f"{name}.csv")
        names.append(name)
    return names


class _NoCache(dict):
    """A fit cache that forgets everything: the reference re-estimates every fit."""

    def __setitem__(self, key, value) -> None:
        return None

    def close(self) -> None:
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=3, help="number of symbols (default 3)")
    ap.add_argument("--years", type=float, default=5.0, help="years of daily bars replayed (default 5)")
    ap.add_argument("--end", default="2018-12-31", help="last replayed bar (default 2018-12-31)")
    ap.add_argument("--reference-bars", type=int, default=3, help="bars timed on the reference path (default 3)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")

    import pandas as pd

    from agents.config import Secrets, load_settings
    from agents.runtime.live import LiveLoop, LiveSpec
    from agents.runtime.runner import Runner
    from agents.services.context import RunRequest

    end = pd.Timestamp(args.end, tz="UTC")
    start = end - pd.Timedelta(days=round(365.25 * args.years)) + pd.Timedelta(days=1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["REGIMEDESK_HOME"] = str(tmp / "home")
        data = tmp / "data"
        data.mkdir()
        names = _write_symbols(data, args.symbols)
        cfg = tmp / "bench.toml"
        cfg.write_text(f'[data]\nsource = "file"\n[data.file]\ndirectory = "{data}"\n')
        settings = load_settings(cfg)
        secrets = Secrets.from_env({})
        spec = LiveSpec(symbols=tuple(names), feed="replay", broker="paper", source="file",
                        start=start.date().isoformat(), end=end.date().isoformat())
        lines: list[str] = []
        loop = LiveLoop(settings, secrets, spec, say=lines.append)
        n_bars = len(loop.feed.schedule)
        print(f"live replay: {len(names)} symbols ({', '.join(names)}), {n_bars} daily bars "
              f"{loop.feed.start.date()} .. {loop.feed.end.date()}, paper broker, fresh home", flush=True)
        t0 = time.perf_counter()
        try:
            summary = loop.run()
        finally:
            loop.close()
        wall = time.perf_counter() - t0
        secs = np.asarray(summary.bar_seconds)
        first, rest = secs[0], secs[1:]
        print(f"loop: {summary.handled} bars handled, {summary.failed} failed, {summary.orders_sent} orders sent "
              f"in {wall:.1f} s -> {summary.handled / wall:.2f} bars/s "
              f"({summary.handled * len(names) / wall:.2f} symbol-bars/s)")
        print(f"per-bar latency (s): first bar (cold: every fit, ML training) {first:.2f}; then "
              f"p50 {np.percentile(rest, 50):.3f}, p90 {np.percentile(rest, 90):.3f}, "
              f"p99 {np.percentile(rest, 99):.3f}, max {rest.max():.3f}")
        slow = int((rest > 3 * np.percentile(rest, 50)).sum())
        print(f"bars slower than 3x the median (scheduled ML retrains and regime refits): {slow}")

        # Reference: the pre-live path, every fit re-estimated, models already stored.
        sample = np.linspace(n_bars // 4, n_bars - 1, args.reference_bars).astype(int)
        ref = []
        import analytics._regime_common as regime_common

        regime_common._PREFIXES = regime_common._PrefixStore(size=0)  # no finished blocks kept either
        with Runner(settings, secrets) as runner:
            runner.ctx._fit_cache = _NoCache()
            for i in sample:
                bar = loop.feed.schedule[i]
                req = RunRequest(tuple(names), source="live:file", as_of=bar.strftime("%Y-%m-%d"), broker="paper")
                t = time.perf_counter()
                runner.start(req)
                ref.append(time.perf_counter() - t)
                runner.ctx.release(req.to_dict())
        ref_med = statistics.median(ref)
        loop_med = float(np.percentile(rest, 50))
        print(f"reference (every fit re-estimated) per bar: {', '.join(f'{x:.2f}' for x in ref)} s; "
              f"median {ref_med:.2f} s")
        print(f"ratio reference / loop median per bar: {ref_med / loop_med:.1f}x")
        print(f"{n_bars} bars at the reference speed would take {ref_med * n_bars / 60:.0f} min; the loop took "
              f"{wall / 60:.1f} min")


if __name__ == "__main__":
    main()
