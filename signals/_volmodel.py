"""Walk-forward forecasts of realised volatility: XGBoost against HAR-RV, GARCH(1,1) and EWMA.

For each bar ``t`` the target is the realised variance of the next ``h`` bars,
``RV_t(h) = r_{t+1}^2 + ... + r_{t+h}^2`` (log returns; on daily bars the squared return is
the day's realised-variance proxy, see :mod:`analytics._volforecast`). Folds come from
:class:`signals.PurgedWalkForwardSplit` with ``horizon = h`` (the purge: a training row's
target ends before the fold) and an embargo. On every test fold four forecasts of
``RV_t(h)`` are made from that fold's training rows only:

* ``xgboost``: an ``XGBRegressor`` (small, fixed hyper-parameters, seeded, one thread) of
  ``log RV_t(h)`` on the causal features of :func:`signals.build_features` (as the ML agent
  builds them) plus the three HAR regressors ``rv_d, rv_w, rv_m``. Its variance forecast is
  ``exp(prediction) * smear``, where ``smear`` is Duan's (1983) smearing factor
  ``mean(exp(residual))`` over the training rows: ``exp`` of a log forecast is a geometric
  mean, below the conditional mean QLIKE rewards (for the log of five squared normal
  returns by about a fifth).
* ``har``: direct HAR-RV regression in levels (:func:`analytics._volforecast.fit_har`) on the
  training rows.
* ``garch``: GARCH(1,1) fitted by ``arch`` on the returns the training rows read (their
  targets' returns included, which end before the purge and embargo), filtered through the
  test fold with those parameters, summed over ``h`` bars, plus ``h mu^2`` (the target is
  the sum of *uncentred* squared returns).
* ``ewma``: RiskMetrics (lambda 0.94) times ``h``; it has no parameter to fit and its
  recursion runs on past returns only.

Every model is scored on the same bars (those where all four forecasts and a positive
realised variance exist) with QLIKE and the MSE of log variance, and compared with HAR by a
Diebold-Mariano test. ``winner_by_fold`` is the walk-forward choice: on fold ``k``, the model
with the lowest QLIKE over the forecasts of earlier folds whose target was fully realised at
the fold's first bar (fold 0: HAR); ``chosen`` is the forecast sequence that choice gives,
scored like the others. ``next_choice`` is the model the same rule picks after the last bar.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analytics import (
    DieboldMarianoResult,
    InsufficientDataError,
    diebold_mariano,
    ewma_variance,
    fit_garch,
    fit_har,
    garch_cumulative_variance,
    garch_variance,
    har_regressors,
    mse_log_variance,
    predict_har,
    qlike,
    realised_variance_target,
)
from signals._features import FeatureConfig, build_features
from signals._split import PurgedWalkForwardSplit

__all__ = ["VOL_MODELS", "VolModelConfig", "VolScore", "VolWalkForwardResult", "walk_forward_vol"]

#: The competing forecasts, in the order ties are broken (HAR, the reference, first).
VOL_MODELS: tuple[str, ...] = ("har", "garch", "ewma", "xgboost")


@dataclass(frozen=True)
class VolModelConfig:
    """Fixed XGBoost settings of the volatility regressor (no tuning on the test folds).

    Parameters
    ----------
    n_estimators : int, default 200
    max_depth : int, default 2
    learning_rate : float, default 0.03
    subsample, colsample_bytree : float, default 0.8
    min_child_weight : float, default 100.0
        Rows per leaf at least (squared error: the hessian is 1 a row). The log of a few
        squared returns is mostly noise; deeper trees with smaller leaves fitted it (chosen on
        simulated GARCH series, never on the benchmark's data).
    seed : int, default 0
    n_jobs : int, default 1
    """

    n_estimators: int = 200
    max_depth: int = 2
    learning_rate: float = 0.03
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    min_child_weight: float = 100.0
    seed: int = 0
    n_jobs: int = 1

    def __post_init__(self) -> None:
        if self.n_estimators < 1 or not 1 <= self.max_depth <= 12:
            raise ValueError("n_estimators must be >= 1 and max_depth between 1 and 12")
        if not 0 < self.learning_rate <= 1:
            raise ValueError("learning_rate must be in (0, 1]")

    def regressor(self) -> Any:
        """A fresh ``xgboost.XGBRegressor`` with these settings (squared error on log variance)."""
        from xgboost import XGBRegressor

        return XGBRegressor(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            learning_rate=self.learning_rate,
            subsample=self.subsample,
            colsample_bytree=self.colsample_bytree,
            min_child_weight=self.min_child_weight,
            objective="reg:squarederror",
            tree_method="hist",
            random_state=self.seed,
            n_jobs=self.n_jobs,
            verbosity=0,
        )


@dataclass(frozen=True)
class VolScore:
    """Out-of-sample record of one forecast on the common scored bars.

    ``dm_qlike`` and ``dm_mse_log`` test the model against HAR (``loss_a`` = this model,
    so a negative statistic means it beats HAR); ``None`` for HAR itself or too few bars.
    """

    model: str
    n: int
    qlike: float
    mse_log: float
    dm_qlike: DieboldMarianoResult | None
    dm_mse_log: DieboldMarianoResult | None


@dataclass(frozen=True)
class VolWalkForwardResult:
    """Walk-forward volatility forecasts of one series at one horizon.

    Attributes
    ----------
    horizon : int
    forecasts : DataFrame
        Indexed like the bars: one column per model of :data:`VOL_MODELS` and ``chosen``
        (variance of the next ``h`` log returns, NaN outside the test folds), ``realised``
        (the target, NaN where the future is incomplete) and ``fold`` (fold number, NaN
        outside). ``scored`` is True on the bars every score uses.
    scores : dict of str to VolScore
        Per model and ``chosen``.
    winner_by_fold : tuple of (str or None)
        The model used on each fold of ``folds`` (None for a skipped fold).
    folds : tuple of dict
        Per fold: dates, training size, the fitted HAR and GARCH parameters, XGBoost's
        smearing factor, the winner; or ``skipped`` with the reason.
    next_choice : str
        The model the walk-forward rule picks after the last bar (every realised loss).
    """

    horizon: int
    forecasts: pd.DataFrame
    scores: dict[str, VolScore]
    winner_by_fold: tuple[str | None, ...]
    folds: tuple[dict[str, Any], ...]
    next_choice: str

    def table(self) -> pd.DataFrame:
        """One row per forecast: ``n, qlike, mse_log`` and the DM statistics and p-values vs HAR."""
        nan = float("nan")
        rows = []
        for name, s in self.scores.items():
            rows.append({
                "model": name, "n": s.n, "qlike": s.qlike, "mse_log": s.mse_log,
                "dm_qlike": s.dm_qlike.statistic if s.dm_qlike else nan,
                "p_qlike": s.dm_qlike.p_value if s.dm_qlike else nan,
                "dm_mse_log": s.dm_mse_log.statistic if s.dm_mse_log else nan,
                "p_mse_log": s.dm_mse_log.p_value if s.dm_mse_log else nan,
            })
        return pd.DataFrame(rows).set_index("model")


def _fit_xgb(x: np.ndarray, y: np.ndarray, cfg: VolModelConfig) -> tuple[Any, float]:
    """XGBoost on the finite-target training rows, and Duan's smearing factor from its residuals."""
    keep = np.isfinite(y)
    x, y = x[keep], y[keep]
    if y.size < 100:
        raise InsufficientDataError(f"need at least 100 training rows with a target, got {y.size}")
    model = cfg.regressor().fit(x, y)
    smear = float(np.mean(np.exp(y - model.predict(x))))
    return model, smear


def _score(name: str, f: np.ndarray, rv: np.ndarray, ref_q: np.ndarray | None, ref_m: np.ndarray | None,
           horizon: int) -> VolScore:
    q = qlike(f, rv)
    m = mse_log_variance(f, rv)
    n = int(np.isfinite(q).sum())
    if n == 0:
        return VolScore(name, 0, float("nan"), float("nan"), None, None)

    def dm(a: np.ndarray, b: np.ndarray | None) -> DieboldMarianoResult | None:
        if b is None:
            return None
        try:
            return diebold_mariano(a, b, horizon)
        except InsufficientDataError:
            return None

    return VolScore(name, n, float(np.nanmean(q)), float(np.nanmean(m)), dm(q, ref_q), dm(m, ref_m))


def walk_forward_vol(
    bars: pd.DataFrame,
    horizon: int,
    *,
    min_train: int = 504,
    test_size: int = 63,
    embargo: int = 5,
    max_train: int | None = None,
    regime_risk_off: pd.Series | None = None,
    config: VolModelConfig | None = None,
    feature_config: FeatureConfig | None = None,
    fit_cache: MutableMapping[str, Any] | None = None,
) -> VolWalkForwardResult:
    """Purged walk-forward forecasts of the next ``horizon`` bars' realised variance.

    Parameters
    ----------
    bars : DataFrame
        ``open, high, low, close`` (and optionally ``volume``), one row per bar, oldest first.
    horizon : int
        ``h``: bars the realised variance is summed over; also the purge.
    min_train, test_size, embargo, max_train
        As in :class:`signals.PurgedWalkForwardSplit` (the ML agent's ``ml.min_train``,
        ``ml.refit_every``, ``ml.embargo``, ``ml.max_train``).
    regime_risk_off : Series, optional
        Passed to :func:`signals.build_features`.
    config : VolModelConfig, optional
    feature_config : FeatureConfig, optional
        Default: ``FeatureConfig()``, as the ML agent.
    fit_cache : mutable mapping, optional
        Passed to :func:`signals.build_features` (GARCH feature parameters).

    Returns
    -------
    VolWalkForwardResult

    Raises
    ------
    InsufficientDataError
        No fold could be fitted.
    """
    if not (isinstance(horizon, int) and horizon >= 1):
        raise ValueError(f"horizon must be a positive integer, got {horizon!r}")
    h = horizon
    cfg = config or VolModelConfig()
    features = build_features(bars, feature_config or FeatureConfig(), regime_risk_off=regime_risk_off,
                              fit_cache=fit_cache)
    r = np.log(bars["close"].astype(float)).diff()
    har = har_regressors(r)
    x = pd.concat([features, har], axis=1).to_numpy(dtype=float)
    rv = realised_variance_target(r, h).to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.where(rv > 0, np.log(rv), np.nan)
    ra = r.to_numpy(dtype=float)
    n = len(bars)
    ewma = np.full(n, np.nan)
    if n > 1:
        ewma[1:] = h * ewma_variance(ra[1:])
    fc = {m: np.full(n, np.nan) for m in VOL_MODELS}
    fold_of = np.full(n, np.nan)
    splitter = PurgedWalkForwardSplit(min_train=min_train, test_size=test_size, horizon=h, embargo=embargo,
                                      max_train=max_train)
    folds: list[dict[str, Any]] = []
    fitted: list[tuple[int, np.ndarray]] = []
    for k, (tr, te) in enumerate(splitter.split(x)):
        info: dict[str, Any] = {"fold": k, "test_start": bars.index[te[0]], "test_end": bars.index[te[-1]]}
        try:
            hm = fit_har(har.iloc[tr], rv[tr])
            a, b = max(int(tr[0]), 1), int(tr[-1]) + h  # the returns the training rows and targets read
            gp = fit_garch(ra[a:b + 1])
            model, smear = _fit_xgb(x[tr], y[tr], cfg)
        except InsufficientDataError as exc:
            info["skipped"] = str(exc)
            folds.append(info)
            continue
        fc["har"][te] = predict_har(hm, har.iloc[te])
        one_step = garch_variance(ra[a:int(te[-1]) + 1], gp)
        fc["garch"][te] = garch_cumulative_variance(one_step, gp, h)[te - a] + h * gp.mu**2
        fc["ewma"][te] = ewma[te]
        fc["xgboost"][te] = np.exp(model.predict(x[te])) * smear
        fold_of[te] = k
        info.update({
            "train_start": bars.index[tr[0]], "train_end": bars.index[tr[-1]], "n_train": int(tr.size),
            "har_params": hm.params, "garch_params": (gp.mu, gp.omega, gp.alpha, gp.beta),
            "xgb_smear": smear,
        })
        folds.append(info)
        fitted.append((len(folds) - 1, te))
    if not fitted:
        raise InsufficientDataError("no walk-forward fold could be fitted")

    losses = {m: qlike(fc[m], rv) for m in VOL_MODELS}
    scored = np.isfinite(np.column_stack([losses[m] for m in VOL_MODELS])).all(axis=1)
    pos = np.arange(n)

    def pick(upto: int) -> str:
        """Lowest mean QLIKE over scored forecasts whose target is realised at bar ``upto``."""
        known = scored & (pos + h <= upto)
        if not known.any():
            return VOL_MODELS[0]
        means = [float(np.mean(losses[m][known])) for m in VOL_MODELS]
        return VOL_MODELS[int(np.argmin(means))]  # argmin: first of equal means, HAR first

    winners: list[str | None] = [None] * len(folds)
    chosen = np.full(n, np.nan)
    for i, te in fitted:
        w = pick(int(te[0]))
        winners[i] = w
        folds[i]["winner"] = w
        chosen[te] = fc[w][te]

    all_fc = {**fc, "chosen": chosen}
    rv_s = np.where(scored, rv, np.nan)
    ref_q = qlike(fc["har"], rv_s)[scored]
    ref_m = mse_log_variance(fc["har"], rv_s)[scored]
    scores = {}
    for m, f in all_fc.items():
        is_ref = m == "har"
        scores[m] = _score(m, f[scored], rv[scored], None if is_ref else ref_q, None if is_ref else ref_m, h)
    frame = pd.DataFrame(all_fc, index=bars.index)
    frame["realised"] = rv
    frame["fold"] = fold_of
    frame["scored"] = scored
    return VolWalkForwardResult(h, frame, scores, tuple(winners), tuple(folds), pick(n - 1))
