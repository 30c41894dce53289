"""Accuracy of the Hurst estimators on exact fGn, and size/power of the market character.

Part 1 (Hurst): for H in {0.3, 0.5, 0.7, 0.9}, 200 exact (Davies-Harte) fGn series of
length 1024 per H, seeded; for DFA (the default) and Anis-Lloyd-Peters corrected R/S it
reports the mean bias, the standard deviation, the RMSE, the mean reported standard error
and the coverage of the reported 95% interval.

Part 2 (market character): for every scenario of ``analytics._simulation`` (random walks,
persistent and mean-reverting processes), 200 seeded series at n = 252 and n = 1000; it
reports the share labelled trending / mean-reverting / random walk. On random walks the
"random_walk" share is one minus the size; elsewhere the expected label's share is the
power.

The tests in ``tests/analytics`` assert these numbers' targets on the same seeded samples.

Usage::

    python benchmarks/hurst_accuracy.py                 # print both tables (markdown)
    python benchmarks/hurst_accuracy.py --write-docs    # also update docs/statistics.md
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analytics._character import (  # noqa: E402
    MEAN_REVERTING,
    RANDOM_WALK,
    TRENDING,
    _character_batch,
)
from analytics._hurst import hurst_exponent  # noqa: E402
from analytics._simulation import (  # noqa: E402
    CHARACTER_SCENARIOS,
    HURST_STUDY_N,
    HURST_STUDY_REPLICATIONS,
    HURST_STUDY_VALUES,
    hurst_study_sample,
    scenario_rng,
)

DOCS = ROOT / "docs" / "statistics.md"
CHARACTER_NS = (252, 1000)
CHARACTER_SERIES = 200
SIZE_SERIES = 2000
SIZE_SEED = 20240613


def hurst_table() -> str:
    lines = [
        f"n = {HURST_STUDY_N}, {HURST_STUDY_REPLICATIONS} exact fGn replications per H "
        "(Davies-Harte, seeded).",
        "",
        "| estimator | true H | mean H | bias | std | RMSE | mean reported s.e. "
        "| 95% CI coverage |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for method, label in (("dfa", "DFA-1 (default)"), ("rs", "R/S, Anis-Lloyd-Peters")):
        for h in HURST_STUDY_VALUES:
            res = [hurst_exponent(x, method) for x in hurst_study_sample(h)]
            est = np.array([r.hurst for r in res])
            se = np.array([r.stderr for r in res])
            cover = np.mean([r.ci_low <= h <= r.ci_high for r in res])
            bias = est.mean() - h
            lines.append(
                f"| {label} | {h:.1f} | {est.mean():.4f} | {bias:+.4f} | "
                f"{est.std(ddof=1):.4f} | {np.sqrt(np.mean((est - h) ** 2)):.4f} | "
                f"{se.mean():.4f} | {cover:.3f} |"
            )
    return "\n".join(lines)


def character_table() -> str:
    lines = [
        f"{CHARACTER_SERIES} seeded series per scenario and length; alpha = 0.05; "
        "calibration on 2,000 Gaussian random walks of the same length.",
        "",
        "| scenario | expected | n | trending | mean-reverting | random walk "
        "| size / power |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for n in CHARACTER_NS:
        for i, sc in enumerate(CHARACTER_SCENARIOS):
            y = sc.simulate(n, CHARACTER_SERIES, scenario_rng(i, n))
            ch = _character_batch(y)
            shares = {k: float(np.mean(ch == k)) for k in (TRENDING, MEAN_REVERTING,
                                                              RANDOM_WALK)}
            if sc.expected == RANDOM_WALK:
                summary = f"size {1 - shares[RANDOM_WALK]:.3f}"
            else:
                summary = f"power {shares[sc.expected]:.3f}"
            lines.append(
                f"| {sc.name} | {sc.expected} | {n} | {shares[TRENDING]:.3f} | "
                f"{shares[MEAN_REVERTING]:.3f} | {shares[RANDOM_WALK]:.3f} | {summary} |"
            )
    lines += [
        "",
        f"Size on {SIZE_SERIES:,} further random walks per length (seeds independent of the "
        "calibration; nominal 0.05, i.e. 0.025 per side):",
        "",
        "| null process | n | labelled trending | labelled mean-reverting | size |",
        "| --- | --- | --- | --- | --- |",
    ]
    for n in CHARACTER_NS:
        for i, sc in enumerate(CHARACTER_SCENARIOS):
            if sc.expected != RANDOM_WALK:
                continue
            y = sc.simulate(n, SIZE_SERIES, np.random.default_rng([SIZE_SEED, i, n]))
            ch = _character_batch(y)
            t, m = float(np.mean(ch == TRENDING)), float(np.mean(ch == MEAN_REVERTING))
            lines.append(f"| {sc.name} | {n} | {t:.4f} | {m:.4f} | {t + m:.4f} |")
    return "\n".join(lines)


def replace_section(text: str, name: str, body: str) -> str:
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    if begin not in text or end not in text:
        raise SystemExit(f"{DOCS} lacks the markers {begin} ... {end}")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body}\n{end}{tail}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write-docs", action="store_true", help=f"update {DOCS}")
    args = ap.parse_args()

    t0 = time.perf_counter()
    ht = hurst_table()
    t1 = time.perf_counter()
    ct = character_table()
    t2 = time.perf_counter()
    print("## Hurst exponent accuracy\n")
    print(ht)
    print(f"\n({t1 - t0:.1f} s)\n")
    print("## Market character size and power\n")
    print(ct)
    print(f"\n({t2 - t1:.1f} s)")
    if args.write_docs:
        text = DOCS.read_text()
        text = replace_section(text, "hurst_accuracy", ht)
        text = replace_section(text, "character_power", ct)
        DOCS.write_text(text)
        print(f"\nwrote {DOCS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
