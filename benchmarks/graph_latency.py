"""Latency of one warm decision run of the agent graph, for 1 and for 10 symbols.

Splits each run's wall time into the agents' own work (the critical path through the graph:
market_data + the slowest analysis agent + every pipeline agent, each timed inside its node)
and the graph's overhead (LangGraph scheduling, reducers, SQLite checkpoints, journal
writes): ``overhead = wall - critical path``.

"Warm" means the process has already run the same request once, so bars are in the run's
keyed cache and per-sample-size calibration tables are computed; models are still fitted
as each agent does on every run.

Ten symbols come from the embedded SP500 and NASDAQ series: symbol k is the series with a
seeded, deterministic multiplicative noise path, written as CSV files for the file source.

Usage: python benchmarks/graph_latency.py [--repeats 3]
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

    bases = [arch.data.sp500.load(), arch.data.nasdaq.load()]
    names = []
    for k in range(n):
        df = bases[k % 2].copy()
        rng = np.random.default_rng(k)
        noise = np.exp(np.cumsum(rng.normal(0, 0.002, len(df))))
        for col in ("Open", "High", "Low", "Close", "Adj Close"):
            df[col] = df[col] * noise
        name = f"SYM{k}"
        df.to_csv(folder / f"{name}.csv")
        names.append(name)
    return names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--as-of", default="2018-12-31")
    args = ap.parse_args()
    warnings.simplefilter("ignore")

    from agents.config import Secrets, load_settings
    from agents.graph.state import ANALYSIS_AGENTS
    from agents.runtime.runner import Runner
    from agents.services.context import RunRequest

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["REGIMEDESK_HOME"] = str(tmp / "home")
        data = tmp / "data"
        data.mkdir()
        names = _write_symbols(data, 10)
        cfg = tmp / "bench.toml"
        cfg.write_text(f'[data]\nsource = "file"\n[data.file]\ndirectory = "{data}"\n')
        settings = load_settings(cfg)
        print(f"graph latency, warm, as of {args.as_of}; median of {args.repeats} runs")
        print(f"{'symbols':>7} {'wall s':>8} {'agents s':>9} {'overhead s':>10} {'overhead %':>10}  per-agent seconds")
        with Runner(settings, Secrets.from_env({})) as runner:
            for count in (1, 10):
                request = RunRequest(tuple(names[:count]), source="file", as_of=args.as_of)
                runner.start(request)  # warm-up
                walls, crit, per_agent_runs = [], [], []
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    outcome = runner.start(request)
                    wall = time.perf_counter() - t0
                    shown = runner.journal.show_run(outcome.run_id)
                    secs = {o["agent"]: o["output"].get("_seconds", 0.0) for o in shown["agent_outputs"]}
                    analysis = [secs[a] for a in ANALYSIS_AGENTS if a in secs]
                    path = sum(v for a, v in secs.items() if a not in ANALYSIS_AGENTS) + max(analysis, default=0.0)
                    walls.append(wall)
                    crit.append(path)
                    per_agent_runs.append(secs)
                w, c = statistics.median(walls), statistics.median(crit)
                agents = {a: statistics.median(r[a] for r in per_agent_runs) for a in per_agent_runs[0]}
                detail = ", ".join(f"{a} {v:.3f}" for a, v in agents.items())
                print(f"{count:>7} {w:>8.3f} {c:>9.3f} {w - c:>10.3f} {100 * (w - c) / w:>9.1f}%  {detail}")


if __name__ == "__main__":
    main()
