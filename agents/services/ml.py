"""ML signal and decision-policy workflows shared by the graph, ``train`` and ``backtest``.

One dataset per symbol: daily bars, causal features (``signals.build_features`` plus the
filtered risk-off probability of the regime agent's models), labels, and the regime
consensus family per bar as the regime agent would have reported it then. Training runs
the purged walk-forward to get an honest out-of-sample record, chooses the decision
policy's parameters on that record, then fits the model that is stored for inference.
The backtest replays exactly that procedure bar by bar through history.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from agents.config import Settings
from agents.services.drift_marks import drift_retrain_reason
from agents.services.format import finite_or_none
from agents.services.regime import (
    AGENT_METHOD,
    RegimeAnalysis,
    analyse_regimes,
    consensus_path,
    risk_off_path,
    run_regimes,
)
from agents.services.significance import edge_significance, policy_trial_sharpes
from analytics import (
    POLICY_GRIDS,
    BacktestConfig,
    InsufficientDataError,
    PolicyParams,
    RegimeDeskError,
    run_backtest,
    select_policy_params,
    target_weights,
    walk_forward_policy,
)
from signals import (
    FeatureConfig,
    LabelConfig,
    ModelNotFoundError,
    ModelStore,
    PurgedWalkForwardSplit,
    StaleModelError,
    StoredModel,
    UnreadableModelError,
    WalkForwardResult,
    build_features,
    check_model_age,
    data_hash,
    fit_classifier,
    latest_features,
    make_labels,
    prediction_contributions,
    walk_forward_predict,
)

__all__ = [
    "Dataset",
    "model_store",
    "build_dataset",
    "splitter",
    "train_model",
    "usable_model",
    "retrain_due",
    "retrain_due_models",
    "current_signal",
    "decide",
    "policy_params_of",
    "backtest_policy",
]

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Dataset:
    """Everything the model and the policy see for one symbol, one row per daily bar."""

    symbol: str
    source: str
    bars: pd.DataFrame
    features: pd.DataFrame
    labels: pd.Series
    regime_family: pd.Series

    @property
    def vol(self) -> pd.Series:
        """Causal volatility forecast the policy scales by (walk-forward GARCH, annualised)."""
        return self.features["garch_vol"]


def model_store(settings: Settings) -> ModelStore:
    """The model store under ``home/models``."""
    return ModelStore(settings.paths.models)


def label_config(settings: Settings) -> LabelConfig:
    ml = settings.ml
    return LabelConfig(horizon=ml.horizon, method=ml.label, barrier=ml.barrier)


def splitter(settings: Settings) -> PurgedWalkForwardSplit:
    ml = settings.ml
    return PurgedWalkForwardSplit(
        min_train=ml.min_train, test_size=ml.refit_every, horizon=ml.horizon,
        embargo=ml.embargo, max_train=ml.max_train or None,
    )


def backtest_config(settings: Settings, cost_bps: float | None = None) -> BacktestConfig:
    d = settings.decision
    return BacktestConfig(
        cost_bps=d.cost_bps if cost_bps is None else cost_bps,
        slippage_bps=d.slippage_bps, max_weight=d.max_weight,
    )


def build_dataset(store, symbol: str, settings: Settings, analysis: RegimeAnalysis | None = None,
                  fit_cache=None) -> Dataset:
    """Daily bars, features, labels and per-bar regime family of ``symbol``.

    Parameters
    ----------
    store : agents.services.context.BarStore
    symbol : str
    settings : Settings
    analysis : RegimeAnalysis, optional
        The symbol's regimes if already computed (the graph shares the regime agent's).
    fit_cache : mutable mapping, optional
        Fitted regime and GARCH parameters from earlier runs (same result, less work).
    """
    bars = store.get(symbol, "MT")
    frame = bars.frame
    if len(frame) < settings.ml.min_train + 50:
        raise InsufficientDataError(
            f"{symbol}: {len(frame)} daily bars; the ML signal needs more than "
            f"ml.min_train + 50 = {settings.ml.min_train + 50}"
        )
    analysis = analysis or analyse_regimes(store, symbol, AGENT_METHOD, fit_cache=fit_cache)
    risk_off = risk_off_path(analysis, settings.ml.regime_timeframe, frame.index)
    features = build_features(frame, FeatureConfig(), regime_risk_off=risk_off, fit_cache=fit_cache)
    labels = make_labels(frame["close"], label_config(settings))
    family = consensus_path(analysis, frame.index)
    return Dataset(symbol, bars.source, frame, features, labels, family)


def _wf(ds: Dataset, settings: Settings, progress: Progress | None, fit_cache=None) -> WalkForwardResult:
    cb = (lambda d, t: progress("walk-forward folds", d, t)) if progress else None
    return walk_forward_predict(ds.features, ds.labels, splitter(settings), progress=cb, fit_cache=fit_cache,
                                workers=settings.ml.train_threads)


def policy_params_of(stored: StoredModel | None, policy: str) -> PolicyParams:
    """The parameters chosen at training time for ``policy`` (defaults without a model)."""
    if stored is None:
        return POLICY_GRIDS[policy][0]
    return PolicyParams(**stored.metadata["policy_params"][policy])


def train_model(
    store, symbol: str, settings: Settings, *, analysis: RegimeAnalysis | None = None,
    progress: Progress | None = None, dataset: Dataset | None = None, fit_cache=None,
) -> StoredModel:
    """Walk-forward validate, choose policy parameters, fit and store a new model version.

    ``fit_cache`` (optional) holds fold outcomes and fitted parameters from earlier
    trainings: a retrain a few bars later refits only the folds whose data changed.
    """
    ds = dataset or build_dataset(store, symbol, settings, analysis, fit_cache=fit_cache)
    wf = _wf(ds, settings, progress, fit_cache)
    if wf.metrics is None:
        raise InsufficientDataError(f"{symbol}: too few out-of-sample forecasts to judge a model")
    cfg = backtest_config(settings)
    n = len(ds.bars)
    chosen = {}
    for policy in POLICY_GRIDS:
        params, _ = select_policy_params(policy, ds.bars, ds.regime_family.to_numpy(),
                                         wf.probability.to_numpy(), ds.vol.to_numpy(), n, cfg)
        chosen[policy] = params.to_dict()
    fm = fit_classifier(ds.features, ds.labels, settings.ml.horizon)
    labelled = ds.labels.notna()
    meta = {
        "source": ds.source,
        "timeframe": "1D",
        "data_start": ds.bars.index[0].isoformat(),
        "train_end": ds.bars.index[-1].isoformat(),
        "last_label_bar": ds.labels.index[labelled][-1].isoformat(),
        "n_bars": n,
        "data_hash": data_hash(ds.bars),
        "label": {"horizon": settings.ml.horizon, "method": settings.ml.label, "barrier": settings.ml.barrier},
        "walk_forward": {
            "min_train": settings.ml.min_train, "refit_every": settings.ml.refit_every,
            "max_train": settings.ml.max_train, "embargo": settings.ml.embargo,
            "folds": len(wf.folds),
        },
        "regime_method": AGENT_METHOD,
        "out_of_sample": wf.metrics.to_dict(),
        "policy_params": chosen,
        "gain_importance": fm.gain_importance(),
        "created_at": pd.Timestamp.now(tz="UTC").isoformat(),
    }
    return model_store(settings).save(symbol, fm, meta)


def _newest_model(store, symbol: str, settings: Settings) -> StoredModel:
    """The newest stored model allowed at the store's last daily bar: trained on bars up to it,
    none before the run's ``--start``, from the same source (ModelNotFoundError otherwise)."""
    bars = store.get(symbol, "MT")
    return model_store(settings).latest(symbol, as_of=bars.frame.index[-1], data_from=getattr(store, "first", None),
                                        source=bars.source)


def usable_model(store, symbol: str, settings: Settings, *, analysis: RegimeAnalysis | None = None,
                 progress: Progress | None = None, dataset: Dataset | None = None,
                 fit_cache=None) -> tuple[StoredModel, str | None]:
    """The newest model allowed at the store's last bar, training one if configured.

    Returns ``(model, note)``; ``note`` says why a model was trained or that it is stale.

    Raises
    ------
    ModelNotFoundError, StaleModelError
        No usable model and ``ml.auto_train`` is off.
    """
    as_of = store.get(symbol, "MT").frame.index[-1]
    note = None
    try:
        stored = _newest_model(store, symbol, settings)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_model_age(stored, as_of, settings.ml.max_model_age_days, settings.ml.stale_model)
        if caught:
            note = str(caught[0].message)
        return stored, note
    except (ModelNotFoundError, StaleModelError) as exc:
        if not settings.ml.auto_train:
            raise
        note = f"trained a new model: {exc}"
        if progress is not None:
            why = "the stored one is stale" if isinstance(exc, StaleModelError) else "none stored yet"
            progress(f"training the {symbol} XGBoost model ({why}; stored and reused by later runs)", 0, 0)
    model = train_model(store, symbol, settings, analysis=analysis, progress=progress, dataset=dataset,
                        fit_cache=fit_cache)
    return model, note


def retrain_due(store, symbol: str, settings: Settings) -> str | None:
    """Why ``symbol``'s model should be retrained after the store's last bar (None: not due).

    Due when ``ml.retrain_after_days`` is on (> 0) and the newest model allowed at that bar
    is at least that old, or there is none; or, with ``ml.drift.retrain_on_breach``, when a
    drift check marked that model (``agents.services.drift_marks.drift_retrain_reason``). Live
    sessions and scheduled runs call this after a bar's orders are sent and train then, so the
    next decision finds a fresh model and never trains (see ``ml.retrain_after_days``).
    """
    after = settings.ml.retrain_after_days
    on_drift = settings.ml.drift.retrain_on_breach
    if not after and not on_drift:
        return None
    as_of = store.get(symbol, "MT").frame.index[-1]
    try:
        stored = _newest_model(store, symbol, settings)
    except UnreadableModelError as exc:
        return str(exc) if settings.ml.auto_train and after else None
    except ModelNotFoundError:
        return "no model stored" if settings.ml.auto_train and after else None
    if on_drift:
        drifted = drift_retrain_reason(stored)
        if drifted is not None:
            return drifted
    if not after:
        return None
    age = float((as_of - stored.train_end) / pd.Timedelta(days=1))
    if age < after:
        return None
    return f"model {stored.version} is {age:g} days old (ml.retrain_after_days {after:g})"


def retrain_due_models(ctx: Any, request: dict[str, Any]) -> list[dict[str, Any]]:
    """Train every model of ``request``'s symbols that :func:`retrain_due` says is due.

    Called by a live session after a bar and by the scheduler after a run, once the orders
    are sent: the training uses the bars of that run (``request``, memoised regimes and the
    fit cache of ``ctx``, an :class:`agents.services.context.AppContext`), and the next
    decision predicts from the new model. A symbol whose training fails is reported, not
    raised: the next decision then uses the model it finds (or refuses a stale one).

    Returns
    -------
    list of dict
        Per symbol trained or failed: ``symbol``, ``reason``, and ``version`` and ``seconds``
        or ``error``.
    """
    import time

    store = ctx.bars(request)
    done: list[dict[str, Any]] = []
    for symbol in request["symbols"]:
        reason = "the age check failed"
        try:
            reason = retrain_due(store, symbol, ctx.settings)
            if reason is None:
                continue
            t0 = time.perf_counter()
            model = train_model(store, symbol, ctx.settings, analysis=run_regimes(ctx, request, symbol),
                                fit_cache=ctx.fit_cache())
            done.append({"symbol": symbol, "reason": reason, "version": model.version,
                         "train_end": model.metadata["train_end"], "seconds": time.perf_counter() - t0})
        except (RegimeDeskError, ValueError) as exc:
            done.append({"symbol": symbol, "reason": reason, "error": f"{type(exc).__name__}: {exc}"})
    return done


def current_signal(store, symbol: str, settings: Settings, *, analysis: RegimeAnalysis | None = None,
                   progress: Progress | None = None, fit_cache=None, recompute: bool = False) -> dict[str, Any]:
    """P(up) at the last bar with the model's out-of-sample record and top contributions.

    The stored model predicts from the newest bar's features alone
    (:func:`signals.latest_features`: the bars that row reads, not the whole history); with
    ``recompute`` the whole feature matrix is rebuilt and its last row used, for audits (the
    same numbers to rounding). Training, when no usable model is stored and ``ml.auto_train``
    allows it, builds the whole dataset either way. ``fit_cache`` (optional) holds fitted
    parameters from earlier runs; see :func:`build_dataset`.
    """
    if recompute:
        ds = build_dataset(store, symbol, settings, analysis, fit_cache=fit_cache)
        stored, note = usable_model(store, symbol, settings, progress=progress, dataset=ds, fit_cache=fit_cache)
        frame, x = ds.bars, ds.features.iloc[[-1]]
    else:
        frame = store.get(symbol, "MT").frame
        if len(frame) < settings.ml.min_train + 50:
            build_dataset(store, symbol, settings, analysis, fit_cache=fit_cache)  # raises, saying why
        analysis = analysis or analyse_regimes(store, symbol, AGENT_METHOD, fit_cache=fit_cache)
        stored, note = usable_model(store, symbol, settings, analysis=analysis, progress=progress,
                                    fit_cache=fit_cache)
        risk_off = risk_off_path(analysis, settings.ml.regime_timeframe, frame.index[-1:])
        x = latest_features(frame, FeatureConfig(), regime_risk_off=risk_off, fit_cache=fit_cache)
    p = float(stored.model.predict_proba(x)[0])
    contrib = prediction_contributions(stored.model, x).iloc[0].drop("bias")
    top = contrib.reindex(contrib.abs().sort_values(ascending=False).index)[:5]
    oos = stored.metadata["out_of_sample"]
    return {
        "symbol": symbol,
        "as_of": frame.index[-1].isoformat(),
        "horizon_bars": stored.metadata["label"]["horizon"],
        "p_up": p,
        "direction": "up" if p >= 0.5 else "down",
        "confidence": abs(p - 0.5) * 2.0,
        "model_version": stored.version,
        "model_train_end": stored.metadata["train_end"],
        "model_age_days": float((frame.index[-1] - stored.train_end) / pd.Timedelta(days=1)),
        "out_of_sample": {k: oos[k] for k in ("n", "auc", "brier", "brier_climatology", "accuracy", "base_rate")},
        "top_contributions": {k: float(v) for k, v in top.items()},
        "vol_forecast": finite_or_none(x["garch_vol"].iloc[-1]),
        "policy_params": stored.metadata["policy_params"],
        "model_note": note,
    }


def decide(
    policy: str, params: PolicyParams, regime_family: str | None, p_up: float | None, vol: float | None
) -> float | None:
    """The policy's target weight for one bar (None = no decision); see ``analytics.target_weights``."""
    w = float(target_weights(policy, params, [regime_family], [p_up], [vol])[0])
    return w if np.isfinite(w) else None


def backtest_policy(
    store, symbol: str, settings: Settings, policy: str, *,
    cost_bps: float | None = None, start: str | None = None, progress: Progress | None = None,
    analysis: RegimeAnalysis | None = None, dataset: Dataset | None = None, fit_cache=None,
) -> dict[str, Any]:
    """Walk-forward backtest of ``policy`` against buy-and-hold on the same bars.

    The ML forecasts are the purged walk-forward out-of-sample ones; the policy's
    parameters are re-chosen at each refit from the bars before it. The evaluation window
    starts at the first bar where the policy decides (or ``start``, if later). ``analysis``
    reuses regimes already computed for this store, ``dataset`` the run's dataset and
    ``fit_cache`` the fold outcomes of earlier trainings (same numbers, less work).
    """
    ds = dataset or build_dataset(store, symbol, settings, analysis, fit_cache=fit_cache)
    cfg = backtest_config(settings, cost_bps)
    n = len(ds.bars)
    if policy == "regime":
        p_up = np.full(n, np.nan)
        folds = splitter(settings).fold_starts(n)
        wf = None
    else:
        wf = _wf(ds, settings, progress, fit_cache)
        p_up = wf.probability.to_numpy()
        folds = [ds.bars.index.get_loc(ts) for ts in wf.fold_starts]
    cb = (lambda d, t: progress("policy re-selections", d, t)) if progress else None
    wp = walk_forward_policy(policy, ds.bars, ds.regime_family.to_numpy(), p_up, ds.vol.to_numpy(), folds, cfg,
                             progress=cb)
    # Compare from the first bar where ML forecasts exist (ml/combined) or the regime does.
    ready = np.isfinite(wp.target.to_numpy())
    if policy != "regime":
        ready &= np.isfinite(p_up)
    if not ready.any():
        raise InsufficientDataError(f"{symbol}: the {policy} policy never decides on this history")
    first = int(np.flatnonzero(ready)[0])
    if start is not None:
        ts = pd.Timestamp(start)
        ts = ts.tz_localize(ds.bars.index.tz) if ts.tzinfo is None and ds.bars.index.tz else ts
        first = max(first, int(ds.bars.index.searchsorted(ts, side="left")))
        if first >= n:
            raise InsufficientDataError(
                f"{symbol}: no bars to backtest on or after {ts.date()} (the data end on {ds.bars.index[-1].date()})"
            )
    lo = max(first - 1, 0)  # decided at the close before the window, traded at its first open
    if n - lo < 30:
        raise InsufficientDataError(f"{symbol}: fewer than 30 bars to backtest after {ds.bars.index[first].date()}")
    window = ds.bars.iloc[lo:]
    strat = run_backtest(window, wp.target.iloc[lo:], cfg)
    hold = run_backtest(window, pd.Series(1.0, index=window.index), cfg)
    params_used = [s for s in wp.segments if s["start"] >= window.index[0]]
    trials = policy_trial_sharpes(policy, window, ds.regime_family.to_numpy()[lo:], p_up[lo:], ds.vol.to_numpy()[lo:],
                                  cfg)
    return {
        "symbol": symbol,
        "source": ds.source,
        "policy": policy,
        "window": {"start": window.index[1].isoformat(), "end": window.index[-1].isoformat(),
                   "bars": len(window) - 1},
        "costs": {"cost_bps": cfg.cost_bps, "slippage_bps": cfg.slippage_bps},
        "metrics": {"strategy": strat.metrics.to_dict(), "buy_and_hold": hold.metrics.to_dict()},
        "signal_out_of_sample": wf.metrics.to_dict() if wf is not None and wf.metrics else None,
        "significance": edge_significance(strat.returns.iloc[1:], hold.returns.iloc[1:], trials),
        "reselections": len(params_used),
        "params_last": wp.segments[-1]["params"],
        "equity": {"strategy": strat.equity, "buy_and_hold": hold.equity},
        "weights": strat.weights,
    }
