"""Is a simple trend rule's edge over buy-and-hold distinguishable from luck?

Strategy: long the index while its close is above its ``W``-day simple moving average, flat
otherwise. The signal is decided at the close of day ``t`` and traded at the close of day
``t + 1`` (a one-day execution delay: the bars are given to :func:`analytics.run_backtest` as
close-only bars), costs 10 bps per unit of turnover. Buy-and-hold: the index's close-to-close
returns, no costs. Both are compared on the same dates, from the first day every rule of the
grid has a full moving average (``max(GRID)`` days of warm-up).

Reported per series (``SP500``: ``arch.data.sp500``, adjusted closes 1999-2018; ``SP500X``: the
close-only S&P 500 index 1990-2022 shipped with skfolio, both through the builtin source):

* the annualised Sharpe ratios of the 200-day rule and of buy-and-hold, their difference and its
  95% stationary-block-bootstrap percentile interval (2,000 replications resampling the pairs of
  returns, block length from Politis-White on the difference series, seed 0) with the one-sided
  p-value of "difference <= 0" (:func:`analytics.sharpe_difference_ci`);
* the deflated Sharpe ratio for 1, 10 and 100 trials, of the rule's returns (is its Sharpe ratio
  above zero after selection?) and of its active returns ``rule - buy-and-hold`` (is its
  information ratio above zero after selection, i.e. does it beat buy-and-hold in *return*?). The
  two questions differ from the Sharpe *difference*: a rule that cuts volatility more than return
  has a higher Sharpe ratio than buy-and-hold but a negative information ratio. The trial
  variance is the variance (``ddof=1``) of the annualised Sharpe ratios (resp. information
  ratios) of the grid ``W in GRID`` on the same dates - the spread a researcher sees when trying
  those parameters.

Usage::

    python benchmarks/significance.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analytics import BacktestConfig, Timeframe, close_only_bars, run_backtest  # noqa: E402
from analytics._significance import deflated_sharpe_ratio, sharpe_difference_ci  # noqa: E402
from integrations import BuiltinSource  # noqa: E402

WINDOW = 200
GRID = (20, 50, 100, 150, 200, 250, 300)
COST_BPS = 10.0
PPY = 252
TRIALS = (1, 10, 100)


def load_close(symbol: str) -> pd.Series:
    """The builtin source's whole daily close series of ``symbol``."""
    bars = BuiltinSource().fetch(symbol, Timeframe.parse("1D"), pd.Timestamp("1900-01-01", tz="UTC"),
                                 pd.Timestamp("2100-01-01", tz="UTC"))
    return bars["close"].astype(float)


def ma_rule_returns(close: pd.Series, window: int) -> pd.Series:
    """Net daily returns of the moving-average rule (decided at close t, traded at close t + 1)."""
    target = (close > close.rolling(window).mean()).astype(float)
    result = run_backtest(close_only_bars(close), target, BacktestConfig(cost_bps=COST_BPS, periods_per_year=PPY))
    return result.returns


def sharpe(r: np.ndarray) -> float:
    return float(r.mean() / r.std(ddof=1) * np.sqrt(PPY))


def report(symbol: str) -> None:
    close = load_close(symbol)
    bench = close.pct_change()
    start = close.index[max(GRID) + 1]  # every rule of the grid is defined and has traded by then
    keep = close.index >= start
    b = bench[keep].to_numpy()
    rules = {w: ma_rule_returns(close, w)[keep].to_numpy() for w in GRID}
    s = rules[WINDOW]
    days = close.index[keep]
    print(f"\n## {symbol}: {days[0]:%Y-%m-%d} .. {days[-1]:%Y-%m-%d}, {keep.sum()} days\n")
    ci = sharpe_difference_ci(s, b, periods_per_year=PPY, reps=2000, seed=0)
    print(f"{WINDOW}-day MA rule Sharpe {ci.sharpe_a:.3f}, buy-and-hold {ci.sharpe_b:.3f}, "
          f"difference {ci.difference:+.3f}")
    print(f"95% percentile interval [{ci.ci_low:+.3f}, {ci.ci_high:+.3f}], p(difference <= 0) = {ci.p_value:.3f}, "
          f"block length {ci.block_length:.1f} days, {ci.reps} reps")
    grid_sr = {w: sharpe(r) for w, r in rules.items()}
    grid_active = {w: sharpe(r - b) for w, r in rules.items()}
    var_sr = float(np.var(list(grid_sr.values()), ddof=1))
    var_active = float(np.var(list(grid_active.values()), ddof=1))
    print("grid Sharpe ratios (W: rule / information ratio vs buy-and-hold): "
          + ", ".join(f"{w}: {grid_sr[w]:.2f} / {grid_active[w]:+.2f}" for w in GRID))
    print(f"trial variance of annualised Sharpe ratios: rule {var_sr:.4f}, information ratio {var_active:.4f}\n")
    print("| n_trials | SR0 rule (ann.) | DSR rule | SR0 IR (ann.) | DSR IR |")
    print("|---:|---:|---:|---:|---:|")
    for n in TRIALS:
        d = deflated_sharpe_ratio(s, n, var_sr, periods_per_year=PPY)
        a = deflated_sharpe_ratio(s - b, n, var_active, periods_per_year=PPY)
        print(f"| {n} | {d.sr0_annual:.3f} | {d.dsr:.3f} | {a.sr0_annual:.3f} | {a.dsr:.3f} |")


def main() -> None:
    t0 = time.perf_counter()
    print(f"# Significance of a {WINDOW}-day moving-average rule vs buy-and-hold "
          f"(1-day delay, {COST_BPS:g} bps)")
    for symbol in ("SP500", "SP500X"):
        report(symbol)
    print(f"\n(total {time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
