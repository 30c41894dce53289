"""``regimedesk volatility``: the volatility forecasts of a symbol against their baselines.

XGBoost, HAR-RV, GARCH(1,1) and EWMA forecasts of the realised variance over the next ``h``
daily bars, each fitted on the same purged walk-forward folds as the ML agent's direction model
(:func:`signals.walk_forward_vol`), scored out of sample with QLIKE and the MSE of log variance,
and tested against HAR (Diebold-Mariano). The regime input of the features is the ML agent's
(:func:`agents.services.ml.build_dataset`), so the XGBoost model sees what the signal model sees.
"""

from __future__ import annotations

from typing import Any

from agents.config import Settings
from agents.services.format import finite_or_none
from agents.services.ml import build_dataset
from signals import walk_forward_vol

__all__ = ["HORIZONS", "volatility_report"]

#: The horizons of the issue: a trading week and a trading month.
HORIZONS = (5, 21)


def volatility_report(store, symbol: str, settings: Settings, horizon: int, fit_cache=None) -> dict[str, Any]:
    """Out-of-sample scores of every volatility forecast of ``symbol`` at ``horizon`` bars.

    Parameters
    ----------
    store : agents.services.context.BarStore
    symbol : str
    settings : Settings
        ``ml.min_train``, ``ml.refit_every``, ``ml.embargo`` and ``ml.max_train`` give the folds.
    horizon : int
        Bars the realised variance is summed over (1 to 63).
    fit_cache : mutable mapping, optional

    Returns
    -------
    dict
        ``symbol``, ``horizon``, ``window`` (first and last scored bar, bars), ``folds``,
        ``models`` (per forecast: n, qlike, mse_log, and the Diebold-Mariano statistic and
        p-value against HAR on both losses), ``chosen_by_fold`` and ``next_choice`` (the
        forecast the walk-forward rule picks for the next bars: lowest QLIKE on the realised
        past only).
    """
    if not 1 <= horizon <= 63:
        raise ValueError(f"--horizon must be between 1 and 63 bars, got {horizon}")
    ds = build_dataset(store, symbol, settings, fit_cache=fit_cache)
    ml = settings.ml
    res = walk_forward_vol(ds.bars, horizon, min_train=ml.min_train, test_size=ml.refit_every, embargo=ml.embargo,
                           max_train=ml.max_train or None, regime_risk_off=ds.features.get("regime_risk_off"),
                           fit_cache=fit_cache)
    scored = res.forecasts.index[res.forecasts["scored"].astype(bool)]
    models = {}
    for name, row in res.table().iterrows():
        models[str(name)] = {k: finite_or_none(row[k]) if k != "n" else int(row[k])
                                for k in ("n", "qlike", "mse_log", "dm_qlike", "p_qlike", "dm_mse_log", "p_mse_log")}
    return {
        "symbol": symbol,
        "source": ds.source,
        "horizon": horizon,
        "window": {"start": scored[0].isoformat() if len(scored) else None,
                   "end": scored[-1].isoformat() if len(scored) else None, "bars": int(len(scored))},
        "folds": len(res.winner_by_fold),
        "models": models,
        "chosen_by_fold": list(res.winner_by_fold),
        "next_choice": res.next_choice,
    }
