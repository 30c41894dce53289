"""Rolling ADF + variance ratio + Hurst: vectorised RegimeDesk vs a per-window reference loop.

Runs over the 5,031 daily S&P 500 log prices shipped with ``arch`` with a 252-bar window:

* vectorised: ``rolling_adf`` (autolag AIC, statsmodels' default maxlag per window),
  ``rolling_variance_ratio`` (q = 2, 4, 8, 16) and ``rolling_hurst`` (DFA, the 251
  returns inside each price window);
* reference: a plain Python loop over the windows calling ``statsmodels``' ``adfuller``,
  ``arch``'s ``VarianceRatio`` for each q, and ``analytics.hurst_exponent`` (the same
  estimator, single-shot).

Both run in the same process with BLAS limited to one thread (``--blas-threads``), since
the machines are shared and multi-threaded BLAS under contention slows statsmodels'
pseudo-inverses erratically; caches of the Hurst standard-error simulation are cleared
before each timed section so that both pay for it. The vectorised timing is the median of
``--repeats`` runs. Prints both times, the speed-up and the largest absolute difference
of every statistic.

Usage: ``python benchmarks/rolling_stats.py [--repeats 3] [--limit N] [--blas-threads 1]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arch.data import sp500  # noqa: E402
from arch.unitroot import VarianceRatio  # noqa: E402
from statsmodels.tsa.stattools import adfuller  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from analytics import _hurst  # noqa: E402
from analytics._adf import rolling_adf  # noqa: E402
from analytics._hurst import hurst_exponent, rolling_hurst  # noqa: E402
from analytics._variance_ratio import rolling_variance_ratio  # noqa: E402

WINDOW = 252
LAGS = (2, 4, 8, 16)


def clear_caches() -> None:
    _hurst._stderr_curve.cache_clear()
    _hurst._expected_log_rs.cache_clear()


def vectorised(logp: np.ndarray) -> dict[str, np.ndarray]:
    adf = rolling_adf(logp, WINDOW, autolag="AIC")
    vr = rolling_variance_ratio(logp, WINDOW, LAGS)
    h = rolling_hurst(np.diff(logp), WINDOW - 1)
    hurst = np.concatenate([[np.nan], h.hurst])  # returns window ending t-1 <-> prices at t
    out = {"adf_stat": adf.stat, "adf_pvalue": adf.pvalue, "adf_lags": adf.lags,
           "hurst": hurst}
    for j, q in enumerate(LAGS):
        out[f"vr_{q}"] = vr.vr[:, j]
        out[f"vr_stat_{q}"] = vr.stat[:, j]
    return {k: v[WINDOW - 1 :] for k, v in out.items()}


def reference(logp: np.ndarray) -> dict[str, np.ndarray]:
    nwin = logp.size - WINDOW + 1
    keys = ["adf_stat", "adf_pvalue", "adf_lags", "hurst"] + [
        f"{p}_{q}" for q in LAGS for p in ("vr", "vr_stat")]
    out = {k: np.empty(nwin) for k in keys}
    for i in range(nwin):
        w = logp[i : i + WINDOW]
        res = adfuller(w, autolag="AIC", result_object=True)
        out["adf_stat"][i] = res.statistic
        out["adf_pvalue"][i] = res.pvalue
        out["adf_lags"][i] = res.lags
        for q in LAGS:
            v = VarianceRatio(w, lags=q)
            out[f"vr_{q}"][i] = v.vr
            out[f"vr_stat_{q}"][i] = v.stat
        out["hurst"][i] = hurst_exponent(np.diff(w)).hurst
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--limit", type=int, default=None, help="use only the first N prices")
    ap.add_argument("--blas-threads", type=int, default=1)
    args = ap.parse_args()
    warnings.simplefilter("ignore", FutureWarning)
    with threadpool_limits(limits=args.blas_threads):
        return run(args)


def run(args: argparse.Namespace) -> int:

    logp = np.log(sp500.load()["Adj Close"].to_numpy())
    if args.limit:
        logp = logp[: args.limit]
    nwin = logp.size - WINDOW + 1
    print(f"S&P 500 daily log prices: {logp.size}, window {WINDOW}, windows {nwin}, "
          f"BLAS threads {args.blas_threads}")

    # Warm-up of both code paths (imports, BLAS, first-call overheads) on a short slice.
    vectorised(logp[: WINDOW + 20])
    reference(logp[: WINDOW + 2])

    times = []
    for _ in range(max(1, args.repeats)):
        clear_caches()
        t0 = time.perf_counter()
        fast = vectorised(logp)
        times.append(time.perf_counter() - t0)
    t_fast = statistics.median(times)

    clear_caches()
    t0 = time.perf_counter()
    ref = reference(logp)
    t_ref = time.perf_counter() - t0

    print(f"vectorised : {t_fast:8.3f} s  (median of {len(times)}: "
          + ", ".join(f"{t:.3f}" for t in times) + ")")
    print(f"reference  : {t_ref:8.3f} s  (loop over adfuller + arch VarianceRatio x4 + "
          "hurst_exponent)")
    print(f"speed-up   : {t_ref / t_fast:8.1f} x")
    print()
    print(f"{'statistic':<14}{'max |diff|':>12}{'max rel diff':>14}  reference")
    ok = True
    for key in ref:
        d = np.abs(fast[key] - ref[key])
        rel = d / np.maximum(np.abs(ref[key]), 1e-300)
        src = ("statsmodels adfuller" if key.startswith("adf") else
               "arch VarianceRatio" if key.startswith("vr") else "hurst_exponent per window")
        print(f"{key:<14}{np.nanmax(d):12.3e}{np.nanmax(rel):14.3e}  {src}")
        if np.isnan(fast[key]).any() != np.isnan(ref[key]).any():
            ok = False
    lag_mismatch = int(np.sum(fast["adf_lags"] != ref["adf_lags"]))
    print(f"\nADF selected-lag mismatches: {lag_mismatch} of {nwin}")
    stat_keys = ["adf_stat"] + [f"vr_stat_{q}" for q in LAGS] + [f"vr_{q}" for q in LAGS]
    worst = max(float(np.max(np.abs(fast[k] - ref[k]))) for k in stat_keys)
    target = t_ref / t_fast >= 50 and worst <= 1e-8 and lag_mismatch == 0 and ok
    print(f"targets (>= 50x, ADF/VR statistics within 1e-8): {'MET' if target else 'NOT MET'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
