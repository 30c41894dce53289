"""XGBoost direction classifier: fit inside a training window, walk-forward predictions, calibration.

Model selection never looks outside the training window: the last ``validation_fraction``
of the training samples (after a purge gap of ``horizon`` samples, so no training label
overlaps them) is the validation fold used for early stopping and for choosing
``max_depth`` among ``depths``. The final model of a fold is that best model; nothing is
refit on the validation fold, so its number of trees is the one validation chose.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analytics import InsufficientDataError
from signals._split import PurgedWalkForwardSplit

__all__ = [
    "ModelConfig",
    "FittedModel",
    "SignalMetrics",
    "WalkForwardResult",
    "fit_classifier",
    "walk_forward_predict",
    "signal_metrics",
    "reliability_table",
    "prediction_contributions",
]


@dataclass(frozen=True)
class ModelConfig:
    """XGBoost settings; ``depths`` and the number of trees are chosen on the validation fold.

    Parameters
    ----------
    depths : tuple of int, default (2, 3)
    learning_rate : float, default 0.05
    max_trees : int, default 400
    early_stopping_rounds : int, default 30
    validation_fraction : float, default 0.2
    subsample, colsample_bytree : float, default 0.8
    min_child_weight : float, default 10.0
    seed : int, default 0
    n_jobs : int, default 1
    """

    depths: tuple[int, ...] = (2, 3)
    learning_rate: float = 0.05
    max_trees: int = 400
    early_stopping_rounds: int = 30
    validation_fraction: float = 0.2
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    min_child_weight: float = 10.0
    seed: int = 0
    n_jobs: int = 1

    def __post_init__(self) -> None:
        if not self.depths or any(not 1 <= d <= 12 for d in self.depths):
            raise ValueError("depths must be integers between 1 and 12")
        if not 0 < self.learning_rate <= 1:
            raise ValueError("learning_rate must be in (0, 1]")
        if self.max_trees < 1 or self.early_stopping_rounds < 1:
            raise ValueError("max_trees and early_stopping_rounds must be >= 1")
        if not 0.05 <= self.validation_fraction <= 0.5:
            raise ValueError("validation_fraction must be between 0.05 and 0.5")


@dataclass(frozen=True)
class FittedModel:
    """A fitted classifier and how it was chosen."""

    model: Any  # xgboost.XGBClassifier
    features: tuple[str, ...]
    max_depth: int
    n_trees: int
    validation_logloss: float
    n_train: int
    n_validation: int

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:  # noqa: N803
        """P(up) per row; columns are taken by name in the training order."""
        missing = [f for f in self.features if f not in X.columns]
        if missing:
            raise ValueError(f"feature columns missing: {', '.join(missing)}")
        return self.model.predict_proba(X[list(self.features)].to_numpy(dtype=float))[:, 1]

    def gain_importance(self) -> dict[str, float]:
        """Total gain per feature, normalised to sum to 1 (features never split on: 0)."""
        raw = self.model.get_booster().get_score(importance_type="total_gain")
        vals = {f: float(raw.get(f"f{i}", 0.0)) for i, f in enumerate(self.features)}
        total = sum(vals.values())
        return {f: (v / total if total > 0 else 0.0) for f, v in vals.items()}


def _xgb(cfg: ModelConfig, depth: int, n_trees: int, early: bool):
    from xgboost import XGBClassifier

    return XGBClassifier(
        n_estimators=n_trees,
        max_depth=depth,
        learning_rate=cfg.learning_rate,
        subsample=cfg.subsample,
        colsample_bytree=cfg.colsample_bytree,
        min_child_weight=cfg.min_child_weight,
        objective="binary:logistic",
        eval_metric="logloss",
        tree_method="hist",
        early_stopping_rounds=cfg.early_stopping_rounds if early else None,
        random_state=cfg.seed,
        n_jobs=cfg.n_jobs,
        verbosity=0,
    )


def fit_classifier(
    X: pd.DataFrame,  # noqa: N803
    y: pd.Series,
    horizon: int,
    config: ModelConfig | None = None,
) -> FittedModel:
    """Fit on one training window with early stopping on its own last part.

    Parameters
    ----------
    X : DataFrame
        Features of the training window, oldest first (NaN allowed).
    y : Series
        Labels 0/1 aligned with ``X`` (rows with a NaN label are dropped first).
    horizon : int
        Label horizon; that many samples between the fit part and the validation part are
        dropped so no fit label overlaps a validation bar.
    config : ModelConfig, optional

    Raises
    ------
    InsufficientDataError
        Fewer than 100 labelled rows, or a part with only one class.
    """
    cfg = config or ModelConfig()
    keep = y.notna().to_numpy()
    Xv = X.to_numpy(dtype=float)[keep]
    yv = y.to_numpy(dtype=float)[keep].astype(int)
    n = yv.size
    if n < 100:
        raise InsufficientDataError(f"need at least 100 labelled training rows, got {n}")
    n_val = max(20, int(round(n * cfg.validation_fraction)))
    fit_stop = n - n_val - horizon
    if fit_stop < 50:
        raise InsufficientDataError(f"training window too short for a validation fold ({n} rows)")
    X_fit, y_fit = Xv[:fit_stop], yv[:fit_stop]
    X_val, y_val = Xv[n - n_val :], yv[n - n_val :]
    if len(set(y_fit)) < 2 or len(set(y_val)) < 2:
        raise InsufficientDataError("a training or validation part holds only one class")
    best = None
    for depth in cfg.depths:
        m = _xgb(cfg, depth, cfg.max_trees, early=True)
        m.fit(X_fit, y_fit, eval_set=[(X_val, y_val)], verbose=False)
        loss = float(m.evals_result()["validation_0"]["logloss"][m.best_iteration])
        if best is None or loss < best[0] - 1e-12:
            best = (loss, depth, m)
    loss, depth, model = best
    n_trees = int(model.best_iteration) + 1
    # Exactly the chosen trees: the first n_trees trees of the early-stopped fit are what a
    # fresh fit of n_trees trees on the same rows gives (same seed, the same row and column
    # samples tree by tree; the eval set draws nothing), so they are taken, not trained again
    # (tests/signals/test_model.py checks predictions, contributions and gains are equal).
    final = _xgb(cfg, depth, n_trees, early=False)
    final.load_model(bytearray(model.get_booster()[:n_trees].save_raw("ubj")))
    return FittedModel(final, tuple(X.columns), int(depth), n_trees, loss, int(fit_stop), int(n_val))


def reliability_table(p: np.ndarray, y: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Calibration table: per equal-width probability bin, mean forecast vs observed frequency.

    Empty bins are omitted.
    """
    p = np.asarray(p, dtype=float)
    y = np.asarray(y, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)
    rows = []
    for b in range(bins):
        m = which == b
        if m.any():
            rows.append({
                "bin_low": float(edges[b]),
                "bin_high": float(edges[b + 1]),
                "count": int(m.sum()),
                "mean_forecast": float(p[m].mean()),
                "observed_frequency": float(y[m].mean()),
            })
    return rows


@dataclass(frozen=True)
class SignalMetrics:
    """Out-of-sample record of probability forecasts of a binary outcome."""

    n: int
    base_rate: float
    auc: float
    brier: float
    brier_climatology: float
    log_loss: float
    accuracy: float
    reliability: tuple[dict[str, float], ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["reliability"] = list(self.reliability)
        return d


def signal_metrics(p: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> SignalMetrics:
    """AUC, Brier score (and that of always forecasting the base rate), log loss, accuracy.

    Raises
    ------
    InsufficientDataError
        Fewer than 20 forecasts, or only one class among the outcomes.
    """
    from sklearn.metrics import log_loss, roc_auc_score

    p = np.asarray(p, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(p) & np.isfinite(y)
    p, y = p[ok], y[ok]
    if p.size < 20:
        raise InsufficientDataError(f"need at least 20 forecasts, got {p.size}")
    if len(np.unique(y)) < 2:
        raise InsufficientDataError("outcomes hold only one class")
    base = float(y.mean())
    return SignalMetrics(
        n=int(p.size),
        base_rate=base,
        auc=float(roc_auc_score(y, p)),
        brier=float(np.mean((p - y) ** 2)),
        brier_climatology=float(base * (1 - base)),
        log_loss=float(log_loss(y, np.clip(p, 1e-12, 1 - 1e-12), labels=[0, 1])),
        accuracy=float(np.mean((p > 0.5) == (y > 0.5))),
        reliability=tuple(reliability_table(p, y)),
    )


@dataclass(frozen=True)
class WalkForwardResult:
    """Out-of-sample P(up) from purged walk-forward refits.

    ``probability`` is NaN before the first test fold; ``fold_start[i]`` is the first bar
    of the fold that produced bar ``i``'s forecast (NaT before).
    """

    probability: pd.Series
    labels: pd.Series
    folds: tuple[dict[str, Any], ...]
    metrics: SignalMetrics | None

    @property
    def fold_starts(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex([f["test_start"] for f in self.folds])


def walk_forward_predict(
    features: pd.DataFrame,
    labels: pd.Series,
    splitter: PurgedWalkForwardSplit,
    config: ModelConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
    fit_cache: MutableMapping[str, Any] | None = None,
    workers: int = 1,
) -> WalkForwardResult:
    """Refit on each purged training window, forecast its test fold.

    Parameters
    ----------
    features : DataFrame
        One row per bar (causal features).
    labels : Series
        Labels aligned with ``features``; NaN labels are not trained on (and are scored
        only where known).
    splitter : PurgedWalkForwardSplit
        Its ``horizon`` must be at least the label horizon.
    config : ModelConfig, optional
    progress : callable, optional
        Called as ``progress(done, total)`` after each fold.
    fit_cache : mutable mapping, optional
        Fold outcomes keyed by a digest of the fold's training rows, labels, test rows and
        the model configuration. A fold whose inputs are unchanged (every fold but the
        newest when a retrain sees a few more bars) is read back instead of refitted; the
        result is identical.
    workers : int, default 1
        Folds fitted side by side in threads (XGBoost releases the interpreter lock while it
        trains: 1.6-1.8x with 2 on two cores). The result is the same for any value.
    """
    if not features.index.equals(labels.index):
        raise ValueError("features and labels must share one index")
    if not (isinstance(workers, int) and workers >= 1):
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    prob = np.full(len(features), np.nan)
    folds = []
    splits = list(splitter.split(features))
    keys = [None if fit_cache is None else _fold_key(features, labels, tr, te, splitter.horizon, config)
            for tr, te in splits]
    outcomes = [None if key is None else fit_cache.get(key) for key in keys]
    missing = [k for k, o in enumerate(outcomes) if o is None]

    def fit(k: int) -> dict[str, Any]:
        tr, te = splits[k]
        try:
            fm = fit_classifier(features.iloc[tr], labels.iloc[tr], splitter.horizon, config)
        except InsufficientDataError as exc:
            outcome: dict[str, Any] = {"skipped": str(exc)}
        else:
            outcome = {"prob": fm.predict_proba(features.iloc[te]), "max_depth": fm.max_depth,
                       "n_trees": fm.n_trees, "validation_logloss": fm.validation_logloss}
        if keys[k] is not None:
            fit_cache[keys[k]] = outcome
        return outcome

    done = len(splits) - len(missing)
    if progress is not None and done:
        progress(done, len(splits))
    if workers > 1 and len(missing) > 1:
        # Folds are independent fits, each seeded and on one XGBoost thread: side by side in
        # threads (XGBoost trains without the interpreter lock) they give the same outcomes.
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="wf-fold") as pool:
            for k, outcome in zip(missing, pool.map(fit, missing), strict=True):
                outcomes[k] = outcome
                done += 1
                if progress is not None:
                    progress(done, len(splits))
    else:
        for k in missing:
            outcomes[k] = fit(k)
            done += 1
            if progress is not None:
                progress(done, len(splits))
    for (tr, te), outcome in zip(splits, outcomes, strict=True):
        if "skipped" in outcome:
            folds.append({"test_start": features.index[te[0]], "skipped": outcome["skipped"]})
        else:
            prob[te] = outcome["prob"]
            folds.append({
                "train_start": features.index[tr[0]],
                "train_end": features.index[tr[-1]],
                "test_start": features.index[te[0]],
                "test_end": features.index[te[-1]],
                "max_depth": outcome["max_depth"],
                "n_trees": outcome["n_trees"],
                "validation_logloss": outcome["validation_logloss"],
            })
    p = pd.Series(prob, index=features.index, name="p_up")
    scored = p.notna() & labels.notna()
    try:
        metrics = signal_metrics(p[scored], labels[scored])
    except InsufficientDataError:
        metrics = None
    return WalkForwardResult(p, labels, tuple(folds), metrics)


def _fold_key(features: pd.DataFrame, labels: pd.Series, tr: np.ndarray, te: np.ndarray, horizon: int,
              config: ModelConfig | None) -> str:
    d = hashlib.sha256(f"wf-fold-v1|{config!r}|{horizon}|{list(features.columns)}".encode())
    for part in (features.iloc[tr], labels.iloc[tr], features.iloc[te]):
        d.update(np.ascontiguousarray(part.to_numpy(dtype=float)).tobytes())
        d.update(b"|")
    return d.hexdigest()


def prediction_contributions(model: FittedModel, X: pd.DataFrame) -> pd.DataFrame:  # noqa: N803
    """Per-prediction feature contributions (log-odds, XGBoost ``pred_contribs``).

    Columns: the features plus ``bias``; each row sums to the prediction's log-odds.
    """
    from xgboost import DMatrix

    booster = model.model.get_booster()
    threads = model.model.get_params().get("n_jobs") or 0  # 0/None: XGBoost's default (all cores)
    dm = DMatrix(X[list(model.features)].to_numpy(dtype=float), nthread=threads if threads > 0 else -1)
    contrib = booster.predict(dm, pred_contribs=True)
    return pd.DataFrame(contrib, index=X.index, columns=[*model.features, "bias"])
