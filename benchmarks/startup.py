"""Start-up cost of light ``regimedesk`` commands: import time and wall time per command.

For each command the script runs, in fresh child processes of the same interpreter:

* the command once to warm up (it fills the OS file cache and the bytecode cache);
* ``python -X importtime -m agents.cli ARGS`` once, and sums the self-time column of every
  imported module (the ``import time`` total), and lists the heaviest top-level imports;
* the command itself ``--repeats`` times, and reports the median and best wall time.

The children write and read compiled bytecode in a private cache (``PYTHONPYCACHEPREFIX``,
whatever ``PYTHONDONTWRITEBYTECODE`` says), so the numbers are those of a warm machine where
no module is compiled from source; ``--no-bytecode-cache`` measures with bytecode as the
environment has it instead (with ``PYTHONDONTWRITEBYTECODE=1`` every project module is
compiled on every start).

It also reports which heavy libraries each command imported (statsmodels, arch, xgboost,
langgraph, openai, reportlab, matplotlib, telegram, scipy, pandas, sklearn, hmmlearn), so a
regression that pulls one back into a light command shows up by name.

The commands run against a temporary ``REGIMEDESK_HOME`` so they never touch yours.

Usage: python benchmarks/startup.py [--repeats 5] [--json] [--no-bytecode-cache]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

COMMANDS: list[list[str]] = [
    ["--help"],
    ["data", "show", "SP500", "--json"],
    ["risk", "status"],
    ["journal", "list", "--json"],
]

HEAVY = [
    "pandas", "scipy", "statsmodels", "arch", "sklearn", "hmmlearn", "xgboost", "langgraph",
    "openai", "reportlab", "matplotlib", "telegram",
]

_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def _env(home: str, pycache: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env["REGIMEDESK_HOME"] = home
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = pycache
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    for name in list(env):
        if name.startswith(("ALPACA_", "POLYGON_", "OPENAI_", "TELEGRAM_")):
            del env[name]
    return env


def _importtime(args: list[str], env: dict[str, str]) -> dict:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "agents.cli", *args],
        env=env, capture_output=True, text=True, cwd=ROOT,
    )
    total_us = 0
    top: list[tuple[int, str]] = []
    modules: set[str] = set()
    for line in proc.stderr.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        self_us, cumulative_us, indent, name = match.groups()
        total_us += int(self_us)
        modules.add(name.split(".")[0])
        if len(indent) == 1:
            top.append((int(cumulative_us), name))
    top.sort(reverse=True)
    return {
        "exit_code": proc.returncode,
        "import_total_s": total_us / 1e6,
        "heaviest": [(name, us / 1e6) for us, name in top[:5]],
        "heavy_libraries": [lib for lib in HEAVY if lib in modules],
    }


def _wall(args: list[str], env: dict[str, str], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "agents.cli", *args], env=env, cwd=ROOT,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per command")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--no-bytecode-cache", dest="bytecode_cache", action="store_false",
                        help="leave bytecode caching as the environment has it")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as home, tempfile.TemporaryDirectory() as pycache:
        env = _env(home, pycache if opts.bytecode_cache else None)
        subprocess.run([sys.executable, "-c", "pass"], env=env)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], env=env)
        interpreter_s = time.perf_counter() - start
        rows = []
        for args in COMMANDS:
            _wall(args, env, 1)  # warm-up
            info = _importtime(args, env)
            walls = _wall(args, env, opts.repeats)
            info.update(
                command="regimedesk " + " ".join(args),
                wall_median_s=statistics.median(walls),
                wall_best_s=min(walls),
            )
            rows.append(info)
    if opts.json:
        print(json.dumps({"interpreter_s": interpreter_s, "commands": rows}, indent=2))
        return 0
    print(f"bare interpreter start: {interpreter_s:.3f} s")
    print(f"{'command':38} {'exit':>4} {'imports':>8} {'median':>7} {'best':>7}  heavy libraries")
    for row in rows:
        print(
            f"{row['command']:38} {row['exit_code']:>4} {row['import_total_s']:>7.3f}s "
            f"{row['wall_median_s']:>6.3f}s {row['wall_best_s']:>6.3f}s  "
            f"{', '.join(row['heavy_libraries']) or '-'}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
