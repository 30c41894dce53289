"""Warm decision latency: one graph run as of the next bar, fast path against ``--recompute``.

The issue-24 measure: one symbol, no LLM (template narrator), paper broker, journal and
checkpoints on, in one process. After a warm-up run (models trained and stored, regime fits
cached), the graph runs as of each of ``--bars`` consecutive daily bars twice, once on the
default path (the newest bar's features only) and once with ``recompute`` (every feature
row rebuilt from history), alternating which goes first so neither profits from the other's
caches. Both paths must give the same signal and decision (checked on every bar: the
benchmark stops if they differ beyond 1e-9; the position held and the orders are the paper
broker's, moved by whichever run went first, and are not compared).

Prints p50 / p90 / max wall time per run for each path, the per-agent medians and the ratio.

Usage: python benchmarks/decision_latency.py [--symbol SP500] [--bars 40] [--end 2018-12-31]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _same(a, b, path: str = "") -> None:
    if isinstance(a, dict):
        if a.keys() != b.keys():
            raise SystemExit(f"paths differ at {path}: keys {sorted(a)} != {sorted(b)}")
        for k in a:
            _same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, float) and isinstance(b, float):
        if not ((math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-9 * max(1.0, abs(b))):
            raise SystemExit(f"paths differ at {path}: {a!r} != {b!r}")
    elif a != b:
        raise SystemExit(f"paths differ at {path}: {a!r} != {b!r}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbol", default="SP500")
    ap.add_argument("--bars", type=int, default=40, help="consecutive bars timed on each path (default 40)")
    ap.add_argument("--end", default="2018-12-31", help="last bar (default 2018-12-31)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")

    import pandas as pd

    from agents.config import Secrets, load_settings
    from agents.runtime.runner import Runner
    from agents.services.context import RunRequest

    days = pd.bdate_range(end=args.end, periods=args.bars + 1)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["REGIMEDESK_HOME"] = str(Path(tmp) / "home")
        settings = load_settings(None)
        walls: dict[bool, list[float]] = {False: [], True: []}
        agents: dict[bool, list[dict[str, float]]] = {False: [], True: []}
        with Runner(settings, Secrets.from_env({})) as runner:
            t0 = time.perf_counter()
            runner.start(RunRequest((args.symbol,), as_of=str(days[0].date()), broker="paper"))
            print(f"decision latency, {args.symbol}, template narrator, paper broker, journal and checkpoints on; "
                  f"warm-up run (models trained, fits cached) {time.perf_counter() - t0:.1f} s")
            for i, day in enumerate(days[1:]):
                signals = {}
                for recompute in ((False, True) if i % 2 == 0 else (True, False)):
                    req = RunRequest((args.symbol,), as_of=str(day.date()), broker="paper", recompute=recompute)
                    t = time.perf_counter()
                    out = runner.start(req)
                    walls[recompute].append(time.perf_counter() - t)
                    shown = runner.journal.show_run(out.run_id)
                    agents[recompute].append({o["agent"]: o["output"].get("_seconds", 0.0)
                                              for o in shown["agent_outputs"]})
                    sig = dict(out.state["ml_signal"][args.symbol])
                    sig.pop("model_note", None)  # says which run trained a model, not what it computed
                    dec = dict(out.state["decision"]["symbols"][args.symbol])
                    # The position (and so the orders) is the broker's, moved by the other path's run.
                    dec.pop("current_weight", None)
                    dec.pop("orders", None)
                    signals[recompute] = (sig, dec)
                _same(signals[False], signals[True])

    print(f"{args.bars} bars to {days[-1].date()}, both paths gave the same signal and decision on every bar")
    print(f"{'path':<22} {'p50 ms':>8} {'p90 ms':>8} {'max ms':>8}  per-agent median ms")
    med = {}
    for recompute, name in ((True, "recompute (full)"), (False, "newest bar (default)")):
        w = np.asarray(walls[recompute]) * 1000
        med[recompute] = float(np.percentile(w, 50))
        per = agents[recompute]
        detail = ", ".join(f"{a} {1000 * statistics.median(r.get(a, 0.0) for r in per):.0f}" for a in per[0])
        print(f"{name:<22} {med[recompute]:>8.0f} {np.percentile(w, 90):>8.0f} {w.max():>8.0f}  {detail}")
    print(f"ratio recompute / newest bar, p50: {med[True] / med[False]:.2f}x")


if __name__ == "__main__":
    main()
