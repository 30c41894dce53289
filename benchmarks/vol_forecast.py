"""Out-of-sample volatility forecasts on the embedded S&P 500 and NASDAQ (issue 27, item 1).

For each series (the builtin source's daily bars, ``arch.data.sp500`` / ``arch.data.nasdaq``,
1999-2018) and horizon ``h`` in (5, 21): :func:`signals._volmodel.walk_forward_vol` with
purged walk-forward folds of 250 bars after 1008 training bars (expanding window, purge
``h``, embargo 5). On every fold XGBoost (log realised variance on the ML agent's causal
features plus the HAR regressors), HAR-RV (levels, OLS), GARCH(1,1) (arch) and EWMA
(RiskMetrics 0.94) are fitted on that fold's training rows only and forecast the sum of the
next ``h`` squared log returns.

It prints, per series and horizon, each forecast's mean QLIKE and MSE of log variance on the
same bars, the Diebold-Mariano statistic (HLN-corrected, ``h - 1`` lags) and p-value against
HAR for both losses (negative: better than HAR), the walk-forward choice per fold (lowest
QLIKE over earlier folds' realised losses; the first fold uses HAR) and the score of that
chosen sequence, and which forecast has the lowest QLIKE out of sample.

Usage::

    python benchmarks/vol_forecast.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analytics.bars import Timeframe  # noqa: E402
from integrations import BuiltinSource  # noqa: E402
from signals._volmodel import VOL_MODELS, walk_forward_vol  # noqa: E402

SYMBOLS = ("SP500", "NASDAQ")
HORIZONS = (5, 21)
MIN_TRAIN, TEST_SIZE, EMBARGO = 1008, 250, 5


def load(symbol: str) -> pd.DataFrame:
    start, end = pd.Timestamp("1900-01-01", tz="UTC"), pd.Timestamp("2100-01-01", tz="UTC")
    return BuiltinSource().fetch(symbol, Timeframe.parse("1D"), start, end)


def _f(x: float, digits: int = 4) -> str:
    return "-" if x != x else f"{x:.{digits}f}"


def main() -> None:
    t0 = time.perf_counter()
    verdicts = []
    for symbol in SYMBOLS:
        bars = load(symbol)
        cache: dict = {}
        for h in HORIZONS:
            t = time.perf_counter()
            res = walk_forward_vol(bars, h, min_train=MIN_TRAIN, test_size=TEST_SIZE, embargo=EMBARGO,
                                   fit_cache=cache)
            secs = time.perf_counter() - t
            tab = res.table()
            n_folds = sum(1 for w in res.winner_by_fold if w)
            first = res.forecasts.index[res.forecasts["scored"]][0].date()
            print(f"\n### {symbol}, h = {h}: {tab['n'].iloc[0]} scored bars from {first}, {n_folds} folds "
                  f"({secs:.1f} s)\n")
            print("| forecast | QLIKE | MSE(log var) | DM QLIKE vs HAR | p | DM MSE(log) vs HAR | p |")
            print("|---|---|---|---|---|---|---|")
            for name, row in tab.iterrows():
                print(f"| {name} | {_f(row.qlike)} | {_f(row.mse_log)} | {_f(row.dm_qlike, 2)} | {_f(row.p_qlike, 3)} "
                      f"| {_f(row.dm_mse_log, 2)} | {_f(row.p_mse_log, 3)} |")
            counts = {m: sum(1 for w in res.winner_by_fold if w == m) for m in VOL_MODELS}
            print(f"\nwalk-forward choice per fold: {' '.join(w or '-' for w in res.winner_by_fold)}")
            print(f"folds per model: {counts}; choice after the last bar: {res.next_choice}")
            best_q = tab.loc[list(VOL_MODELS), "qlike"].idxmin()
            best_m = tab.loc[list(VOL_MODELS), "mse_log"].idxmin()
            verdicts.append((symbol, h, best_q, best_m, tab))
    print("\n### Verdict (out of sample, same bars for every forecast)\n")
    for symbol, h, best_q, best_m, tab in verdicts:
        dm = tab.loc[best_q]
        vs = "" if best_q == "har" else (
            f" (DM vs HAR {dm.dm_qlike:.2f}, p {dm.p_qlike:.3f}: "
            f"{'significant' if dm.p_qlike < 0.05 else 'not significant'} at 5%)")
        chosen = tab.loc["chosen", "qlike"]
        print(f"- {symbol} h={h}: lowest QLIKE {best_q} {tab.loc[best_q, 'qlike']:.4f}{vs}; lowest MSE(log var) "
              f"{best_m}; XGBoost QLIKE {tab.loc['xgboost', 'qlike']:.4f} vs HAR {tab.loc['har', 'qlike']:.4f}; "
              f"walk-forward choice {chosen:.4f}")
    print(f"\ntotal {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
