"""The statistical jump model against the HMM, Markov-switching and GARCH regime methods.

(a) Balanced accuracy on the simulated 2-state series (T = 2000, walk-forward from bar 500,
    10 seeds, the protocol of ``benchmarks/regime_fit.py --validate``).
(b) The S&P 500 index from skfolio's embedded data (builtin symbol ``SP500X``, daily close
    1990-01-02 .. 2022-12-28): a 0/1 strategy invested when the causal regime's family is
    risk-on and in cash (earning nothing) otherwise, the position taken at the close one day
    after the signal, 10 bps per switch; Sharpe (daily returns, rf = 0, x sqrt(252)), maximum
    drawdown, CAGR and switches per year for the jump model, the HMM and buy-and-hold over the
    same out-of-sample bars, next to the figures published by Shu, Yu and Mulvey (2024) for
    1990-2023.

Usage: ``python benchmarks/jump_model.py [--refit 21] [--sim-refit 63] [--min-train 1260] [--skip-sim]``
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analytics._regime_common import REGIME_FAMILIES, RegimeResult, walk_forward_regimes  # noqa: E402
from analytics._regime_detect import make_regime_model  # noqa: E402
from analytics._regime_jump import JumpModelRegime  # noqa: E402
from analytics.bars import Timeframe  # noqa: E402
from analytics.errors import EstimationWarning  # noqa: E402
from integrations import BuiltinSource  # noqa: E402

logging.getLogger("hmmlearn").setLevel(logging.ERROR)

# The 2-state simulation of tests/analytics/test_regime_sim.py and benchmarks/regime_fit.py.
MU2, SIGMA2, P2 = (0.000615, -0.000785), (0.007759, 0.02140), ((0.9979, 0.0021), (0.0120, 0.9880))
COST = 10e-4  # 10 bps per switch
# Shu, Yu and Mulvey (2024), S&P 500 1990-2023, 0/1 strategy: (Sharpe, max drawdown).
PUBLISHED = {"jump": (0.68, -0.266), "hmm": (0.54, -0.289), "buy & hold": (0.50, -0.552)}


def _model(method: str):
    return JumpModelRegime() if method == "jump" else make_regime_model(method, 2)


def _simulate(n: int, seed: int) -> tuple[pd.Series, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = np.asarray(P2, dtype=float)
    a = np.vstack([(p - np.eye(2)).T, np.ones(2)])
    pi = np.linalg.lstsq(a, np.array([0.0, 0.0, 1.0]), rcond=None)[0]
    cum = np.cumsum(p, axis=1)
    s = np.empty(n, dtype=int)
    s[0] = rng.choice(2, p=pi / pi.sum())
    u = rng.random(n)
    for t in range(1, n):
        s[t] = min(int(np.searchsorted(cum[s[t - 1]], u[t])), 1)
    r = np.asarray(MU2)[s] + np.asarray(SIGMA2)[s] * rng.standard_normal(n)
    return pd.Series(r, index=pd.bdate_range("2000-01-03", periods=n, tz="UTC")), s


def _bacc(truth: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean([np.mean(pred[truth == c] == c) for c in np.unique(truth)]))


def simulations(refit: int) -> None:
    print(f"(a) Simulated 2-state series: T=2000, walk-forward from bar 500, refit_every={refit}, "
          "10 seeds, scored on bars 500..1999")
    print(f"{'method':<8}{'filtered':>10}{'persist.':>10}{'min seed':>10}{'secs':>7}")
    for m in ("jump", "hmm", "markov", "garch"):
        t0 = time.perf_counter()
        raw, held = [], []
        for seed in range(10):
            r, s = _simulate(2000, seed)
            res = walk_forward_regimes(r, _model(m), min_train=500, refit_every=refit)
            raw.append(_bacc(s[500:], res.states))
            held.append(_bacc(s[500:], res.persistent_states))
        print(f"{m:<8}{np.mean(raw):>10.3f}{np.mean(held):>10.3f}{np.min(raw):>10.3f}"
              f"{time.perf_counter() - t0:>7.1f}", flush=True)


def sp500x_returns() -> pd.Series:
    bars = BuiltinSource().fetch("SP500X", Timeframe.parse("1D"), pd.Timestamp("1900-01-01", tz="UTC"),
                                 pd.Timestamp("2100-01-01", tz="UTC"))
    return np.log(bars["close"]).diff().dropna()


def strategy_stats(simple: np.ndarray, invested: np.ndarray | None) -> tuple[float, float, float, float]:
    """(Sharpe, max drawdown, CAGR, switches per year) of the 0/1 strategy on ``simple`` returns.

    ``invested[t]`` is the signal at the close of bar ``t``; the position over bar ``u`` is the
    signal of bar ``u - 2`` (traded at the close of ``u - 1``); the first two bars are invested.
    ``None`` is buy-and-hold.
    """
    if invested is None:
        pos = np.ones(simple.size)
    else:
        pos = np.concatenate([[1.0, 1.0], invested[:-2].astype(float)])
    switches = np.abs(np.diff(np.concatenate([[1.0], pos])))
    ret = pos * simple - COST * switches
    years = simple.size / 252.0
    equity = np.cumprod(1.0 + ret)
    mdd = float((equity / np.maximum.accumulate(equity) - 1.0).min())
    sharpe = float(ret.mean() / ret.std() * np.sqrt(252.0))
    return sharpe, mdd, float(equity[-1] ** (1.0 / years) - 1.0), float(switches.sum() / years)


def _risk_on(res: RegimeResult, persistent: bool) -> np.ndarray:
    labels = res.labels if persistent else res.raw_labels
    return np.array([REGIME_FAMILIES[x] == "risk_on" for x in labels])


def sp500x(refit: int, min_train: int) -> None:
    r = sp500x_returns()
    rows = []
    penalties: list[float] = []
    for m in ("jump", "hmm"):
        t0 = time.perf_counter()
        cache: dict = {}
        res = walk_forward_regimes(r, _model(m), min_train=min_train, refit_every=refit, fit_cache=cache)
        secs = time.perf_counter() - t0
        if m == "jump":
            chosen = {}
            for f in cache.values():
                if hasattr(f, "selected_at"):
                    chosen[f.selected_at] = f.jump_penalty
            penalties = [chosen[k] for k in sorted(chosen)]
        simple = np.expm1(r.loc[res.dates].to_numpy())
        rows.append((m, strategy_stats(simple, _risk_on(res, False)), secs))
        rows.append((f"{m} +pers.", strategy_stats(simple, _risk_on(res, True)), secs))
    rows.append(("buy & hold", strategy_stats(simple, None), 0.0))
    first, last = res.dates[0].date(), res.dates[-1].date()
    print(f"\n(b) SP500X (skfolio S&P 500 index) {r.index[0].date()}..{r.index[-1].date()}: out-of-sample "
          f"{first}..{last} ({len(res.dates)} bars); walk-forward min_train={min_train}, refit_every={refit}, "
          "expanding window")
    print("    0/1 strategy: invested when risk-on, cash (0%) otherwise, 1-day delay, 10 bps per switch; "
          "'+pers.' uses the persistent labels (0.8 x 5 bars)")
    head = (f"{'strategy':<12}{'Sharpe':>8}{'max DD':>9}{'CAGR':>8}{'sw/yr':>7}{'secs':>7}"
            f"   {'published Sharpe':>16}{'published max DD':>17}")
    print(head)
    print("-" * len(head))
    for name, (sh, dd, cagr, sw), secs in rows:
        pub = PUBLISHED.get(name)
        pub_s = f"{pub[0]:>16.2f}{100 * pub[1]:>16.1f}%" if pub else ""
        print(f"{name:<12}{sh:>8.2f}{100 * dd:>8.1f}%{100 * cagr:>7.1f}%{sw:>7.2f}{secs:>7.1f}   {pub_s}")
    print("Published: Shu, Yu and Mulvey (2024), 1990-2023, their own training history before 1990; ours ends "
          f"2022-12-28 and starts after a {min_train}-bar first training window.")
    counts = pd.Series(penalties).value_counts().sort_index()
    print("Jump penalties chosen walk-forward (grid "
          f"{JumpModelRegime().penalty_grid}): " + ", ".join(f"{k:g} x{v}" for k, v in counts.items())
          + f" over {len(penalties)} choices")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--refit", type=int, default=21, help="bars between refits on SP500X (default 21)")
    ap.add_argument("--sim-refit", type=int, default=21, help="bars between refits on the simulations (default 21)")
    ap.add_argument("--min-train", type=int, default=1260, help="first SP500X training window (default 1260)")
    ap.add_argument("--skip-sim", action="store_true", help="only the SP500X comparison")
    args = ap.parse_args()
    warnings.simplefilter("ignore", EstimationWarning)
    t0 = time.perf_counter()
    if not args.skip_sim:
        simulations(args.sim_refit)
    sp500x(args.refit, args.min_train)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
