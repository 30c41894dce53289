"""Regime-change forecasts against the transition-matrix baseline (issue 27, item 2).

For SP500 and NASDAQ (the builtin source's daily bars, 1999-2018) and the longer close-only
SP500X (1990-2022), with the bars and regimes of a run (``AppContext``/``BarStore``,
:func:`agents.services.regime.analyse_regimes` with the agent's ``hmm`` method):

* outcome: the consensus family (:func:`agents.services.regime.consensus_path`) changes
  within ``h = 21`` bars;
* baseline: ``1 - p_stay^21``, ``p_stay`` the MT timeframe's one-bar probability of staying in
  the reported state's family under the transition matrix of the last refit (the same
  walk-forward HMM as the regime agent's MT path, :func:`signals._regime_change.family_stay_probability`);
* model: :func:`signals._regime_change.walk_forward_change`, logistic regression on the ML
  agent's causal features (:func:`signals.build_features` with the MT risk-off input), regime
  age, family and the baseline, on purged walk-forward folds of 250 bars after 1008 bars
  (expanding, purge 21, embargo 5).

It prints, per series, the out-of-sample Brier scores of the model and the baseline on the
same bars, the Brier skill score, the Diebold-Mariano test of the squared-error difference
(HLN, 20 HAC lags), the reliability tables, the walk-forward verdict per fold (model beats
baseline: lower Brier and one-sided DM p < 0.05 on the earlier folds' realised bars) and the
Brier score of the forecast that verdict selects.

Usage::

    python benchmarks/regime_change.py
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents.config import Secrets, load_settings  # noqa: E402
from agents.services.context import AppContext  # noqa: E402
from agents.services.regime import analyse_regimes, consensus_path, risk_off_path  # noqa: E402
from analytics import DEFAULT_TIMEFRAME_SPECS, REGIME_FAMILIES, detect_regimes  # noqa: E402
from signals import (  # noqa: E402  # noqa: E402
    FeatureConfig,
    PurgedWalkForwardSplit,
    RegimeChangeResult,
    build_features,
    family_stay_probability,
    walk_forward_change,
)

SYMBOLS = ("SP500", "NASDAQ", "SP500X")
H = 21
SPLIT = PurgedWalkForwardSplit(min_train=1008, test_size=250, horizon=H, embargo=5)


def mt_stay_probability(store, symbol: str, index: pd.DatetimeIndex, fit_cache: dict) -> pd.Series:
    """The MT timeframe's causal one-bar family-stay probability on ``index``.

    The same walk-forward HMM as ``analyse_regimes`` (same returns, settings, seed and fit
    cache, so its refits are read back, not re-estimated); its ``RegimeResult`` keeps the
    transition matrix of every refit, which the regime path does not.
    """
    spec = DEFAULT_TIMEFRAME_SPECS["MT"]
    close = store.get(symbol, "MT").frame["close"].astype(float)
    returns = np.log(close).diff().iloc[1:].rename("log_return")
    res = detect_regimes(returns, "hmm", min_train=spec.min_train, refit_every=spec.refit_every,
                         max_train=spec.max_train, persistence=spec.persistence,
                         periods_per_year=spec.periods_per_year, seed=0, fit_cache=fit_cache)
    stay = family_stay_probability([f.transition_matrix for f in res.fits], res.fit_index, res.persistent_states,
                                   [[REGIME_FAMILIES[lab] for lab in f.state_labels] for f in res.fits])
    return pd.Series(stay, index=res.dates).reindex(index).rename("stay_prob")


def _f(x: float | None, digits: int = 4) -> str:
    return "-" if x is None or x != x else f"{x:.{digits}f}"


def _print(symbol: str, res: RegimeChangeResult, secs: float, family: pd.Series) -> None:
    first = res.scored.index[res.scored.to_numpy()][0].date()
    last = res.scored.index[res.scored.to_numpy()][-1].date()
    counts = family.value_counts().to_dict()
    print(f"\n### {symbol}, h = {res.horizon}: {res.n} scored bars {first} .. {last}, {len(res.folds)} folds "
          f"({secs:.1f} s)\n")
    print(f"consensus family bars: {counts}; change rate on scored bars {res.base_rate:.3f}\n")
    dm = res.dm
    print("| forecast | Brier | skill vs baseline | DM stat | p (two-sided) |")
    print("|---|---|---|---|---|")
    print(f"| baseline 1 - p_stay^h | {_f(res.brier_baseline)} | 0 | | |")
    print(f"| model (logistic) | {_f(res.brier_model)} | {_f(res.skill, 3)} | {_f(dm and dm.statistic, 2)} | "
          f"{_f(dm and dm.p_value, 3)} |")
    print(f"| gated (model where verdict true) | {_f(res.brier_gated)} | "
          f"{_f(1 - res.brier_gated / res.brier_baseline, 3)} | | |")
    print(f"| climatology (base rate, in hindsight) | {_f(res.base_rate * (1 - res.base_rate))} | | | |")
    print("\nreliability (bin: n, mean forecast -> observed frequency)\n")
    print("| bin | model | baseline |")
    print("|---|---|---|")
    rm = {r["bin_low"]: r for r in res.reliability_model}
    rb = {r["bin_low"]: r for r in res.reliability_baseline}
    for lo in sorted(set(rm) | set(rb)):
        cells = []
        for tab in (rm, rb):
            r = tab.get(lo)
            cells.append("" if r is None else
                         f"{r['count']}: {r['mean_forecast']:.2f} -> {r['observed_frequency']:.2f}")
        print(f"| {lo:.1f}-{lo + 0.1:.1f} | {cells[0]} | {cells[1]} |")
    flags = "".join("-" if "skipped" in f else ("Y" if f["beats_baseline"] else "n") for f in res.folds)
    print(f"\nwalk-forward verdict per fold (Y: model used): {flags}; after the last bar: "
          f"{'beats' if res.beats_baseline_next else 'does not beat'} the baseline")


def main() -> None:
    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    verdicts = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(None, env={"REGIMEDESK_HOME": str(Path(tmp) / "home")})
        ctx = AppContext(settings, Secrets.from_env({}))
        store = ctx.bars({"source": "builtin", "as_of": None, "start": "1900-01-01"})
        for symbol in SYMBOLS:
            t = time.perf_counter()
            cache: dict = {}
            frame = store.get(symbol, "MT").frame
            analysis = analyse_regimes(store, symbol, "hmm", fit_cache=cache)
            idx = frame.index
            family = consensus_path(analysis, idx)
            features = build_features(frame, FeatureConfig(), regime_risk_off=risk_off_path(analysis, "MT", idx),
                                      fit_cache=cache)
            stay = mt_stay_probability(store, symbol, idx, cache)
            res = walk_forward_change(features, family, stay, H, SPLIT)
            _print(symbol, res, time.perf_counter() - t, family)
            verdicts.append((symbol, res))
    print("\n### Verdict (out of sample, same bars for model and baseline)\n")
    for symbol, res in verdicts:
        dm = res.dm
        sig = "" if dm is None else f", DM {dm.statistic:.2f} (p {dm.p_value:.3f})"
        print(f"- {symbol} h={H}: Brier model {res.brier_model:.4f} vs baseline {res.brier_baseline:.4f}, skill "
              f"{res.skill:+.3f}{sig}; walk-forward verdict: model used on "
              f"{sum(bool(f.get('beats_baseline')) for f in res.folds)} of {len(res.folds)} folds, "
              f"{'beats' if res.beats_baseline_next else 'does not beat'} the baseline after the last bar")
    print(f"\ntotal {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
