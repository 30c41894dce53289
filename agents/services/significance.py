"""Is a backtest's edge over buy-and-hold distinguishable from luck?

Two answers for every policy backtest (``regimedesk backtest``, the report):

* the annualised Sharpe-ratio difference between the policy and buy-and-hold on the same bars,
  with a stationary block bootstrap interval (:func:`analytics.sharpe_difference_ci`: the pairs
  of daily returns resampled together, so both the serial dependence and the correlation of the
  two series are kept);
* the deflated Sharpe ratio of the policy (:func:`analytics.deflated_sharpe_ratio`): the
  probability that its true Sharpe ratio beats the best one expected from as many skill-less
  trials as configurations were on offer. ``n_trials`` counts every policy and parameter set of
  :data:`analytics.POLICY_GRIDS` (the choices a user of the product has), and the trials' Sharpe
  variance is measured on the backtest window with each candidate of the policy's own grid held
  fixed (``trial_sharpes``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from analytics import (
    POLICY_GRIDS,
    BacktestConfig,
    InsufficientDataError,
    deflated_sharpe_ratio,
    run_backtest,
    sharpe_difference_ci,
    target_weights,
)

__all__ = ["N_CONFIGURATIONS", "edge_significance", "policy_trial_sharpes", "significance_text"]

#: Every policy and parameter set the decision offers: the trials a user could have picked from.
N_CONFIGURATIONS = sum(len(grid) for grid in POLICY_GRIDS.values())


def policy_trial_sharpes(policy: str, bars: pd.DataFrame, regime_family: np.ndarray, p_up: np.ndarray,
                         vol: np.ndarray, config: BacktestConfig) -> list[float]:
    """Annualised Sharpe ratio of every candidate of ``policy``'s grid held fixed over ``bars``
    (no decision counts as cash), with the same costs as the backtest."""
    out = []
    for params in POLICY_GRIDS[policy]:
        w = np.nan_to_num(target_weights(policy, params, regime_family, p_up, vol), nan=0.0)
        out.append(run_backtest(bars, pd.Series(w, index=bars.index), config).metrics.sharpe)
    return out


def edge_significance(strategy: pd.Series, benchmark: pd.Series, trial_sharpes: Sequence[float], *,
                      reps: int = 1000, seed: int = 0) -> dict[str, Any]:
    """The Sharpe difference with its 95% bootstrap interval, and the deflated Sharpe ratio.

    Parameters
    ----------
    strategy, benchmark : pandas.Series
        Per-bar simple returns of the policy and of buy-and-hold on the same bars.
    trial_sharpes : sequence of float
        Annualised Sharpe ratios of the candidate configurations on the same bars (their
        variance enters the deflated Sharpe ratio).
    reps : int, default 1000
        Bootstrap replications.
    seed : int, default 0

    Returns
    -------
    dict
        ``sharpe_difference`` (difference, ci_low, ci_high, p_value, block_length, reps, n) and
        ``deflated_sharpe`` (dsr, sr0_annual, n_trials, trial_sharpe_variance), or ``error``
        when the window is too short or constant.
    """
    sharpes = np.asarray([s for s in trial_sharpes if np.isfinite(s)], dtype=float)
    variance = float(np.var(sharpes, ddof=1)) if sharpes.size > 1 else 0.0
    try:
        ci = sharpe_difference_ci(strategy.to_numpy(), benchmark.to_numpy(), reps=reps, seed=seed)
        dsr = deflated_sharpe_ratio(strategy.to_numpy(), N_CONFIGURATIONS, variance)
    except InsufficientDataError as exc:
        return {"error": str(exc)}
    return {
        "sharpe_difference": {"difference": ci.difference, "ci_low": ci.ci_low, "ci_high": ci.ci_high,
                              "confidence": ci.confidence, "p_value": ci.p_value,
                              "block_length": ci.block_length, "reps": ci.reps, "n": ci.n},
        "deflated_sharpe": {"dsr": dsr.dsr, "sr0_annual": dsr.sr0_annual, "n_trials": dsr.n_trials,
                            "trial_sharpe_variance": variance, "sharpe_annual": dsr.psr.sharpe_annual},
    }


def significance_text(sig: dict[str, Any] | None) -> str | None:
    """One line for people (None when there is nothing to say)."""
    if not sig:
        return None
    if "error" in sig:
        return f"significance: not computed ({sig['error']})"
    d, f = sig["sharpe_difference"], sig["deflated_sharpe"]
    verdict = "distinguishable from luck" if d["ci_low"] > 0 else "not distinguishable from luck"
    return (f"edge over buy-and-hold: Sharpe {d['difference']:+.2f}, {d['confidence']:.0%} interval "
            f"[{d['ci_low']:+.2f}, {d['ci_high']:+.2f}] (stationary block bootstrap, block {d['block_length']:.0f} "
            f"bars), {verdict}; deflated Sharpe ratio {f['dsr']:.2f} against the best of {f['n_trials']} "
            f"configurations (Sharpe {f['sr0_annual']:.2f} expected by luck)")
