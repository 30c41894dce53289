"""Regime models on the daily S&P 500 (``arch.data.sp500``, 1999-2018): fit and filter time.

For each method (Gaussian HMM, Markov-switching regression, GARCH volatility regimes):

* walk-forward: the causal path over the whole history (first window 504 bars, refit every
  ``--refit`` bars, expanding window) - total time, number of fits, time spent fitting and
  filtering;
* single: one fit on the whole history but the last 21 bars, then one filter pass over the
  whole history with those parameters (what a daily "refit and score today" costs).

``--validate`` instead prints the validation numbers of docs/regimes.md with the default
monthly refits: balanced accuracy on the simulated 2- and 3-state series (``--seeds``, 10
by default; the one-regime test's figures use 20) and
the S&P 500 crisis / calm fractions and switches per year.

Usage: ``python benchmarks/regime_fit.py [--refit 21] [--methods hmm,markov,garch] [--validate [--seeds N]]``
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

from arch.data import sp500  # noqa: E402

from analytics._regime_common import REGIME_FAMILIES, walk_forward_regimes  # noqa: E402
from analytics._regime_detect import make_regime_model  # noqa: E402
from analytics.errors import EstimationWarning  # noqa: E402

METHODS = ("hmm", "markov", "garch")
# hmmlearn logs every small likelihood decrease near convergence; not useful here.
logging.getLogger("hmmlearn").setLevel(logging.ERROR)


class _TimedFitted:
    """Delegates to a fitted parameter set and times its filter calls."""

    def __init__(self, inner, clock):
        self._inner = inner
        self._clock = clock

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def filter(self, *args):
        t = time.perf_counter()
        out = self._inner.filter(*args)
        self._clock["filter"] += time.perf_counter() - t
        return out


class _TimedModel:
    """Wraps a regime model so the walk-forward driver's fit and filter calls are timed."""

    def __init__(self, model):
        self.model = model
        self.name = model.name
        self.n_states = model.n_states
        self.clock = {"fit": 0.0, "filter": 0.0, "n_fit": 0}

    def _min_train(self):
        return self.model._min_train()

    def _prepare(self, r):
        return self.model._prepare(r)

    def _fit(self, ctx, lo, hi, previous, seed):
        prev = previous._inner if isinstance(previous, _TimedFitted) else previous
        t = time.perf_counter()
        f = self.model._fit(ctx, lo, hi, prev, seed)
        self.clock["fit"] += time.perf_counter() - t
        self.clock["n_fit"] += 1
        return _TimedFitted(f, self.clock)


def sp500_returns() -> pd.Series:
    close = sp500.load()["Adj Close"]
    close.index = close.index.tz_localize("America/New_York")
    return np.log(close).diff().dropna()


def benchmark(methods, refit: int) -> None:
    r = sp500_returns()
    n = len(r)
    rows = []
    for m in methods:
        timed = _TimedModel(make_regime_model(m))
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EstimationWarning)
            res = walk_forward_regimes(r, timed, min_train=504, refit_every=refit)
        wf_total = time.perf_counter() - t0
        c = timed.clock

        model = make_regime_model(m)
        ctx = model._prepare(r.to_numpy())
        t0 = time.perf_counter()
        fitted = model._fit(ctx, 0, n - 21, None, 0)
        single_fit = time.perf_counter() - t0
        t0 = time.perf_counter()
        fitted.filter(ctx, 0, 0, n, None)
        single_filter = time.perf_counter() - t0
        rows.append((m, wf_total, c["n_fit"], c["fit"], c["filter"], 1e3 * c["fit"] / c["n_fit"],
                     single_fit, 1e3 * single_filter, res.converged))

    print(f"S&P 500 daily log returns: {n} bars {r.index[0].date()}..{r.index[-1].date()}; "
          f"walk-forward min_train=504, refit_every={refit}, expanding window; single fit on {n - 21} bars")
    head = (f"{'method':<8}{'wf total s':>11}{'fits':>6}{'wf fit s':>10}{'wf filter s':>12}"
            f"{'ms/fit':>9}{'1 fit s':>9}{'1 filter ms':>12}{'converged':>11}")
    print(head)
    print("-" * len(head))
    for m, tot, nf, fs, fl, per, sf, sfl, conv in rows:
        print(f"{m:<8}{tot:>11.2f}{nf:>6d}{fs:>10.2f}{fl:>12.2f}{per:>9.1f}{sf:>9.3f}{sfl:>12.1f}{str(conv):>11}")


# -- validation (same protocol as tests/analytics/test_regime_validation.py) --------------

MU2, SIGMA2, P2 = (0.000615, -0.000785), (0.007759, 0.02140), ((0.9979, 0.0021), (0.0120, 0.9880))
MU3, SIGMA3 = (0.0006, 0.0001, -0.0015), (0.006, 0.014, 0.035)
P3 = ((0.990, 0.009, 0.001), (0.012, 0.980, 0.008), (0.005, 0.025, 0.970))


def _simulate(mu, sigma, p, n, seed):
    rng = np.random.default_rng(seed)
    p = np.asarray(p, dtype=float)
    k = p.shape[0]
    a = np.vstack([(p - np.eye(k)).T, np.ones(k)])
    b = np.zeros(k + 1)
    b[-1] = 1.0
    pi = np.linalg.lstsq(a, b, rcond=None)[0]
    cum = np.cumsum(p, axis=1)
    s = np.empty(n, dtype=int)
    s[0] = rng.choice(k, p=pi / pi.sum())
    u = rng.random(n)
    for t in range(1, n):
        s[t] = min(int(np.searchsorted(cum[s[t - 1]], u[t])), k - 1)
    r = np.asarray(mu)[s] + np.asarray(sigma)[s] * rng.standard_normal(n)
    return pd.Series(r, index=pd.bdate_range("2000-01-03", periods=n, tz="UTC")), s


def _bacc(truth, pred):
    return float(np.mean([np.mean(pred[truth == c] == c) for c in np.unique(truth)]))


def validate(methods, refit: int, n_seeds: int = 10) -> None:
    warnings.simplefilter("ignore", EstimationWarning)
    print(f"Simulations: T=2000, {n_seeds} seeds, walk-forward from bar 500, refit_every={refit}, "
          "scored on bars 500..1999")
    print(f"{'method':<8}{'states':>7}{'filtered':>10}{'persist.':>10}{'min seed':>10}{'secs':>7}")
    for k, (mu, sig, p, base) in {2: (MU2, SIGMA2, P2, 0), 3: (MU3, SIGMA3, P3, 100)}.items():
        for m in methods:
            t0 = time.perf_counter()
            raw, held = [], []
            for seed in range(n_seeds):
                r, s = _simulate(mu, sig, p, 2000, base + seed)
                res = walk_forward_regimes(r, make_regime_model(m, k), min_train=500, refit_every=refit)
                raw.append(_bacc(s[500:], res.states))
                held.append(_bacc(s[500:], res.persistent_states))
            print(f"{m:<8}{k:>7d}{np.mean(raw):>10.3f}{np.mean(held):>10.3f}{np.min(raw):>10.3f}"
                  f"{time.perf_counter() - t0:>7.1f}")
    r = sp500_returns()
    print(f"\nS&P 500, MT (daily), walk-forward min_train=504 refit_every={refit}, persistence 0.8 x 5 bars")
    print(f"{'method':<8}{'crisis risk-off':>16}{'2004-06 risk-on':>16}{'switches/yr':>12}"
          f"{'family sw/yr':>13}{'raw sw/yr':>10}")
    for m in methods:
        res = walk_forward_regimes(r, make_regime_model(m), min_train=504, refit_every=refit)
        fam = pd.Series([REGIME_FAMILIES[x] for x in res.labels], index=res.dates)
        crisis = (fam["2008-09-15":"2009-03-31"] == "risk_off").mean()
        calm = (fam["2004-01-01":"2006-12-31"] == "risk_on").mean()
        years = len(res.dates) / 252.0
        fam_sw = np.count_nonzero(fam.to_numpy()[1:] != fam.to_numpy()[:-1]) / years
        raw_sw = np.count_nonzero(res.raw_labels[1:] != res.raw_labels[:-1]) / years
        print(f"{m:<8}{crisis:>16.3f}{calm:>16.3f}{res.switches_per_year:>12.2f}{fam_sw:>13.2f}{raw_sw:>10.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--refit", type=int, default=21, help="bars between refits (default 21)")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of hmm,markov,garch")
    ap.add_argument("--validate", action="store_true", help="print the validation numbers instead")
    ap.add_argument("--seeds", type=int, default=10, help="simulated series per case in --validate (default 10)")
    args = ap.parse_args()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = set(methods) - set(METHODS)
    if bad:
        ap.error(f"unknown methods {sorted(bad)}")
    if args.validate:
        if args.seeds < 1:
            ap.error("--seeds must be at least 1")
        validate(methods, args.refit, args.seeds)
    else:
        benchmark(methods, args.refit)


if __name__ == "__main__":
    main()
