"""Backtest of the one-day 99% VaR methods on the embedded S&P 500 and NASDAQ, and their cost.

Part 1 (backtest): for each series (``arch.data.sp500`` / ``arch.data.nasdaq``, adjusted
closes 1999-2018, the builtin source's ``close``), daily simple returns, 99% VaR, a
500-day trailing window (``regimedesk risk var --backtest``'s default), GARCH refits every
20 days. Every forecast uses only returns before its day (``analytics.var_backtest``).
Methods:

* ``historical``: historical simulation (the gate's default before issue 21);
* ``filtered``: FHS on a GARCH(1,1), normal quasi-likelihood;
* ``gjr_filtered``: FHS on a GJR-GARCH(1,1,1) with Student-t likelihood (the default now);
* ``ewma_fhs``: FHS on a RiskMetrics EWMA variance (lambda 0.94, zero mean, started from
  arch's backcast of the window) - a literature alternative computed here only, not a
  product method.

It prints, per series, method and period (all forecast days 2001-2018, and the days up
to 2008 and from 2009 of the same causal forecasts): exceedances against expected, the
Kupiec, Christoffersen independence and conditional-coverage p-values, and the Basel zone
of the period's last 250 days.

Part 2 (cost): median wall time per call of each single-shot estimator on the last 250
and 500 S&P 500 returns (a fit each call for the GARCH filters: the fit cache is cleared
before each timed call), the cached GJR call, and the risk gate's portfolio call
(``gjr_filtered_portfolio_var_es``, 3 assets, fits cached, new weights each call).

Usage::

    python benchmarks/var_backtest.py             # print both tables (markdown)
    python benchmarks/var_backtest.py --repeat 5  # timed calls per estimator (default 7)
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analytics import (  # noqa: E402
    basel_zone,
    christoffersen,
    filtered_historical_var_es,
    gjr_filtered_portfolio_var_es,
    gjr_filtered_var_es,
    historical_var_es,
    kupiec_pof,
    var_backtest,
)
from analytics._var import _backcast, _fit_cached  # noqa: E402

LEVEL = 0.99
WINDOW = 500
REFIT_EVERY = 20
METHODS = ("historical", "filtered", "gjr_filtered", "ewma_fhs")


def load_returns(name: str) -> pd.Series:
    from arch.data import nasdaq, sp500

    module = {"SP500": sp500, "NASDAQ": nasdaq}[name]
    close = module.load()["Adj Close"].astype(float)
    return close.pct_change().dropna()


def ewma_fhs_var(r: np.ndarray, window: int, level: float, lam: float = 0.94) -> np.ndarray:
    """Causal EWMA-FHS VaR for days ``window .. n-1``: on each trailing window, the
    RiskMetrics recursion ``s2_{t+1} = lam s2_t + (1 - lam) r_t^2`` (started at arch's
    backcast of the window), standardised returns ``r_t / s_t``, and ``-s_{T+1} q_z``."""
    from scipy.signal import lfilter

    k = int(np.floor((window - 1) * (1.0 - level)))
    out = np.empty(r.size - window)
    for i, t in enumerate(range(window, r.size)):
        w = r[t - window : t]
        s0 = _backcast(w)
        s2 = np.concatenate([[s0], lfilter([1 - lam], [1, -lam], w**2, zi=[lam * s0])[0]])
        z = w / np.sqrt(s2[:-1])
        out[i] = -np.sqrt(s2[-1]) * np.partition(z, k)[k]
    return out


def exceedances(returns: pd.Series, method: str) -> tuple[pd.Index, np.ndarray, dict]:
    r = returns.to_numpy()
    if method == "ewma_fhs":
        var = ewma_fhs_var(r, WINDOW, LEVEL)
        return returns.index[WINDOW:], r[WINDOW:] < -var, {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bt = var_backtest(returns, level=LEVEL, method=method, window=WINDOW, refit_every=REFIT_EVERY)
    info = {"refits": bt.n_refits, "failed": bt.n_fit_failures, "not_converged": bt.n_not_converged,
            "warnings": len(caught)}
    return bt.index, np.asarray(bt.exceedances), info


def row(series: str, method: str, period: str, exc: np.ndarray) -> list[str]:
    k = kupiec_pof(exc, LEVEL)
    c = christoffersen(exc, LEVEL)
    nb = min(250, exc.size)
    xb = int(exc[-nb:].sum())
    ok = k.pvalue > 0.05 and c.pvalue_ind > 0.05 and c.pvalue_cc > 0.05
    zone = basel_zone(xb, nb, LEVEL)
    return [series, method, period, f"{exc.size:,}", str(k.x), f"{k.expected:.1f}", f"{k.pvalue:.3f}",
            f"{c.pvalue_ind:.3f}", f"{c.pvalue_cc:.3f}", f"{zone} ({xb})",
            "yes" if ok and zone == "green" else "no"]


def backtest_table() -> list[list[str]]:
    rows = []
    for series in ("SP500", "NASDAQ"):
        returns = load_returns(series)
        for method in METHODS:
            t0 = time.perf_counter()
            idx, exc, info = exceedances(returns, method)
            dt = time.perf_counter() - t0
            years = idx.year
            for period, mask in (("2001-2018", np.ones(exc.size, bool)), ("to 2008", years <= 2008),
                                 ("2009-2018", years >= 2009)):
                rows.append(row(series, method, period, exc[mask]))
            extra = ", ".join(f"{k} {v}" for k, v in info.items())
            print(f"  {series} {method}: backtest {dt:.1f} s{'; ' + extra if extra else ''}", file=sys.stderr)
    return rows


def _median_time(fn, repeat: int, clear: bool) -> float:
    times = []
    for _ in range(repeat):
        if clear:
            _fit_cached.cache_clear()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def timing_table(repeat: int) -> list[list[str]]:
    r = load_returns("SP500").to_numpy()
    nq = load_returns("NASDAQ").to_numpy()
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n in (250, 500):
            x = r[-n:]
            cases = [
                ("historical_var_es", lambda x=x: historical_var_es(x, LEVEL), False),
                ("filtered_historical_var_es (GARCH fit)", lambda x=x: filtered_historical_var_es(x, LEVEL), True),
                ("gjr_filtered_var_es (GJR-t fit)", lambda x=x: gjr_filtered_var_es(x, LEVEL), True),
                ("gjr_filtered_var_es (cached fit)", lambda x=x: gjr_filtered_var_es(x, LEVEL), False),
            ]
            m = np.column_stack([x, nq[-n:], 0.5 * x + 0.5 * nq[-n:]])
            gjr_filtered_portfolio_var_es(m, [0.3, 0.3, 0.3], LEVEL)  # fits cached, as within a gate run
            rng = np.random.default_rng(0)
            cases.append(("gate: gjr_filtered_portfolio_var_es, 3 assets (cached fits)",
                          lambda m=m, rng=rng: gjr_filtered_portfolio_var_es(m, rng.uniform(-0.5, 0.5, 3), LEVEL),
                          False))
            for name, fn, clear in cases:
                fn()
                sec = _median_time(fn, repeat, clear)
                rows.append([name, str(n), f"{sec * 1e3:.2f} ms" if sec >= 1e-3 else f"{sec * 1e6:.0f} us"])
    return rows


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7, help="timed calls per estimator (default 7)")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    print(f"## Backtest: {LEVEL:.0%} one-day VaR, window {WINDOW}, GARCH refit every {REFIT_EVERY} days\n")
    print(markdown(["series", "method", "period", "days", "exceedances", "expected", "Kupiec p",
                    "indep. p", "cond. cov. p", "Basel (last 250)", "passes all"], backtest_table()))
    print("\n## Cost per call (median)\n")
    print(markdown(["estimator", "returns", "time"], timing_table(args.repeat)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
