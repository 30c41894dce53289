"""Drift monitoring of stored signal models (issue 27): feature drift and performance decay.

For the newest stored model of a symbol allowed at the store's last bar:

* feature drift - every model feature over the last ``ml.drift.window`` bars after the model's
  training data against its training window (``data_start`` .. ``train_end`` of the metadata):
  population stability index and two-sample Kolmogorov-Smirnov statistic and p-value;
* performance decay - the stored model's forecasts on the bars after ``train_end`` whose label is
  known (``horizon`` bars later, so the last ``horizon`` bars are never scored), their Brier
  score (and AUC) on the last ``window`` of them against the Brier score validated at training.

Everything is computed from one dataset built to the store's last bar (``build_dataset``): its
features and labels are prefix-invariant (``tests/agents/test_ml_agent.py``), so its rows up to
``train_end`` are those the training run saw, and nothing reads a bar after the store's last.

A breach (a threshold of ``[ml.drift]`` crossed) is journaled as a journal live event of the
session :data:`DRIFT_SESSION` at every check, alerted to the Telegram chats through the
scheduler's sender once per model version and breach (a breach still there at the next check
is journaled again but not alerted again; ``drift-alerted.json`` beside the model's versions
remembers what was sent), and with ``ml.drift.retrain_on_breach`` marks the model due: a file
``drift-due.json`` beside the model's versions names the version, and
:func:`drift_retrain_reason` gives the reason the scheduled retrain reads. Scheduled run jobs
check their symbols' models after the run (``ml.drift.after_runs``, :func:`drift_checks`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pandas as pd

from agents.config import Settings
from agents.services.drift_marks import (
    alerted_breaches,
    drift_retrain_reason,
    mark_due,
    remember_alerted,
)
from agents.services.ml import Dataset, build_dataset, model_store
from analytics import InsufficientDataError, RegimeDeskError
from signals import (
    FeatureDrift,
    ModelNotFoundError,
    PerformanceDecay,
    StoredModel,
    data_hash,
    feature_drift,
    performance_decay,
)

__all__ = [
    "DRIFT_SESSION",
    "DRIFT_EVENT",
    "MIN_RECENT_BARS",
    "DriftBreach",
    "DriftReport",
    "model_drift",
    "record_breaches",
    "drift_retrain_reason",
    "drift_checks",
    "stored_symbols",
]

log = logging.getLogger(__name__)

#: Session of the journal's live events that record breaches (a name no live session can take:
#: live session names have no colon).
DRIFT_SESSION = "models:drift"
#: Kind of those events.
DRIFT_EVENT = "model_drift"
#: Fewest bars after the training data (and labelled forecasts) a drift measure is computed on.
MIN_RECENT_BARS = 20
#: The file beside a symbol's model versions that marks a version due for retraining.

_KIND_TEXT = {"psi": "PSI", "ks_pvalue": "KS p-value", "brier_increase": "Brier increase"}


@dataclass(frozen=True)
class DriftBreach:
    """One threshold of ``[ml.drift]`` crossed: ``kind`` psi | ks_pvalue | brier_increase.

    ``psi`` and ``brier_increase`` breach above the threshold, ``ks_pvalue`` below it;
    ``feature`` is None for ``brier_increase``.
    """

    kind: str
    feature: str | None
    value: float
    threshold: float

    @property
    def key(self) -> str:
        """What the breach is about, without its value: ``kind:feature`` (alerted once per model)."""
        return f"{self.kind}:{self.feature or ''}"

    @property
    def text(self) -> str:
        """E.g. ``PSI of ret_21 0.412 > 0.25``."""
        op = "<" if self.kind == "ks_pvalue" else ">"
        what = _KIND_TEXT[self.kind] + (f" of {self.feature}" if self.feature else "")
        return f"{what} {self.value:.3g} {op} {self.threshold:g}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "feature": self.feature, "value": self.value, "threshold": self.threshold,
                "text": self.text}


@dataclass(frozen=True)
class DriftReport:
    """Drift of one stored model at the store's last bar (see the module docstring)."""

    symbol: str
    version: str
    source: str
    model_dir: Path
    train_end: pd.Timestamp
    as_of: pd.Timestamp
    age_days: float
    training_bars: int
    bars_after: int
    recent_start: pd.Timestamp | None
    features: FeatureDrift | None
    decay: PerformanceDecay | None
    validation_brier: float
    validation_auc: float | None
    training_data_matches: bool
    notes: tuple[str, ...]
    breaches: tuple[DriftBreach, ...]

    @property
    def worst_feature(self) -> tuple[str, float] | None:
        """``(feature, psi)`` of the largest PSI, None when none was computed."""
        w = self.features.worst if self.features is not None else None
        return (w.feature, w.psi) if w is not None else None

    def to_dict(self) -> dict[str, Any]:
        worst = self.worst_feature
        return {
            "symbol": self.symbol, "version": self.version, "source": self.source,
            "train_end": self.train_end.isoformat(), "as_of": self.as_of.isoformat(), "age_days": self.age_days,
            "training_bars": self.training_bars, "bars_after_train_end": self.bars_after,
            "recent_start": self.recent_start.isoformat() if self.recent_start is not None else None,
            "validation": {"brier": self.validation_brier, "auc": self.validation_auc},
            "recent": self.decay.to_dict() if self.decay is not None else None,
            "worst_psi": {"feature": worst[0], "psi": worst[1]} if worst else None,
            "features": self.features.to_dict()["features"] if self.features is not None else [],
            "training_data_matches": self.training_data_matches,
            "notes": list(self.notes),
            "breaches": [b.to_dict() for b in self.breaches],
        }


def _like(ts: Any, index: pd.DatetimeIndex) -> pd.Timestamp:
    ts = pd.Timestamp(ts)
    if index.tz is not None and ts.tzinfo is None:
        return ts.tz_localize(index.tz)
    if index.tz is None and ts.tzinfo is not None:
        return ts.tz_convert("UTC").tz_localize(None)
    return ts


def _breaches(features: FeatureDrift | None, decay: PerformanceDecay | None, settings: Settings) -> list[DriftBreach]:
    cfg = settings.ml.drift
    out: list[DriftBreach] = []
    for row in features.rows if features is not None else ():
        if row.psi > cfg.psi:  # NaN compares False: a feature without a measure never breaches
            out.append(DriftBreach("psi", row.feature, row.psi, cfg.psi))
        if row.ks_pvalue < cfg.ks_pvalue:
            out.append(DriftBreach("ks_pvalue", row.feature, row.ks_pvalue, cfg.ks_pvalue))
    if decay is not None and decay.brier_increase > cfg.brier_increase:
        out.append(DriftBreach("brier_increase", None, decay.brier_increase, cfg.brier_increase))
    return out


def model_drift(store, symbol: str, settings: Settings, *, dataset: Dataset | None = None, analysis=None,
                fit_cache=None) -> DriftReport:
    """Drift of the newest stored model of ``symbol`` allowed at the store's last bar.

    Parameters
    ----------
    store : agents.services.context.BarStore
        The bars (their last bar is the as-of of the check; no later bar is read).
    symbol : str
    settings : Settings
        ``ml.drift`` holds the window and thresholds; ``home/models`` the models.
    dataset : Dataset, optional
        The symbol's dataset to the store's last bar, if already built.
    analysis : RegimeAnalysis, optional
        The symbol's regimes, if already computed (see ``build_dataset``).
    fit_cache : mutable mapping, optional
        Fitted parameters from earlier runs (same numbers, less work).

    Returns
    -------
    DriftReport

    Raises
    ------
    ModelNotFoundError
        No stored model trained on data up to the last bar, from the store's source.
    InsufficientDataError
        Too few bars for the dataset.
    """
    bars = store.get(symbol, "MT")
    last = bars.frame.index[-1]
    stored: StoredModel = model_store(settings).latest(symbol, as_of=last, source=bars.source)
    meta = stored.metadata
    ds = dataset or build_dataset(store, symbol, settings, analysis, fit_cache=fit_cache)
    idx = ds.features.index
    end = _like(stored.train_end, idx)
    first = _like(meta.get("data_start", idx[0]), idx)
    cfg = settings.ml.drift
    cols = list(stored.model.features)
    missing = [c for c in cols if c not in ds.features.columns]
    if missing:
        raise RegimeDeskError(f"model {symbol} {stored.version} uses features this version does not build: "
                              f"{', '.join(missing)}; retrain it with 'regimedesk train {symbol}'")
    in_train = (idx >= first) & (idx <= end)
    train = ds.features.loc[in_train, cols]
    after = ds.features.loc[idx > end, cols]
    notes: list[str] = []
    matches = data_hash(ds.bars.loc[in_train]) == meta.get("data_hash")
    if not matches:
        notes.append("the training window's bars differ from those the model was trained on (data revised, "
                     "or another history start)")
    features = None
    recent = after.iloc[-cfg.window:]
    if len(after) < MIN_RECENT_BARS:
        notes.append(f"{len(after)} bar(s) after the training data; feature drift needs {MIN_RECENT_BARS}")
    else:
        features = feature_drift(train, recent)
    oos = meta.get("out_of_sample") or {}
    val_brier = float(oos["brier"]) if oos.get("brier") is not None else float("nan")
    val_auc = float(oos["auc"]) if oos.get("auc") is not None else None
    decay = None
    if len(after):
        p = pd.Series(stored.model.predict_proba(after), index=after.index)
        y = ds.labels.reindex(after.index)
        known = y.notna().to_numpy()
        try:
            decay = performance_decay(p[known], y[known], val_brier, validation_auc=val_auc, window=cfg.window)
        except InsufficientDataError:
            notes.append(f"{int(known.sum())} labelled forecast(s) after the training data; the recent score "
                         f"needs {MIN_RECENT_BARS}")
    else:
        notes.append("no labelled forecast after the training data")
    return DriftReport(
        symbol=symbol, version=stored.version, source=bars.source, model_dir=stored.path.parent,
        train_end=stored.train_end, as_of=last, age_days=float((last - end) / pd.Timedelta(days=1)),
        training_bars=int(in_train.sum()), bars_after=len(after),
        recent_start=recent.index[0] if len(recent) else None, features=features, decay=decay,
        validation_brier=val_brier, validation_auc=val_auc, training_data_matches=bool(matches),
        notes=tuple(notes), breaches=tuple(_breaches(features, decay, settings)),
    )


def _alert_text(reports: list[DriftReport]) -> str:
    lines = ["RegimeDesk model drift:"]
    for r in reports:
        shown = ", ".join(b.text for b in r.breaches[:5])
        more = f" (+{len(r.breaches) - 5} more)" if len(r.breaches) > 5 else ""
        lines.append(f"{r.symbol} {r.version} (data to {r.train_end.date()}, checked at {r.as_of.date()}): "
                     f"{shown}{more}")
    return "\n".join(lines)


def record_breaches(reports: DriftReport | list[DriftReport], settings: Settings, *, journal=None,
                    sender=None) -> dict[str, Any]:
    """Journal every breach, alert the new ones in one Telegram message, mark models due if configured.

    Parameters
    ----------
    reports : DriftReport or list of DriftReport
    settings : Settings
    journal : integrations.Journal, optional
        Where breaches are recorded (default: the journal under ``home``, opened and closed
        here). Each breach is one live event of session :data:`DRIFT_SESSION`, kind
        :data:`DRIFT_EVENT`.
    sender : integrations.TelegramSender, optional
        The alert path (``agents.runtime.scheduler.build_sender``); None sends nothing. One
        message to ``telegram.chat_ids`` lists the breaches not alerted before for the same
        model version; once every chat received it, they are remembered and not sent again
        (a failed delivery is retried at the next check).

    Returns
    -------
    dict
        ``journaled`` (events written), ``alerted`` (deliveries: ``to``, ``ok``, ``error``),
        ``already_alerted`` (breaches not sent again) and ``marked`` (``SYMBOL VERSION``
        marked due for retraining).
    """
    reports = [reports] if isinstance(reports, DriftReport) else list(reports)
    hit = [r for r in reports if r.breaches]
    out: dict[str, Any] = {"journaled": 0, "alerted": [], "already_alerted": 0, "marked": []}
    if not hit:
        return out
    own = journal is None
    if own:
        from integrations import Journal

        journal = Journal(settings.paths.journal)
    try:
        for r in hit:
            for b in r.breaches:
                journal.record_live_event(DRIFT_SESSION, DRIFT_EVENT,
                                          f"{r.symbol} {r.version} (checked at {r.as_of.date()}): {b.text}")
                out["journaled"] += 1
    finally:
        if own:
            journal.close()
    if sender is not None and settings.telegram.chat_ids:
        new = []
        for r in hit:
            seen = alerted_breaches(r.model_dir, r.version)
            fresh = tuple(b for b in r.breaches if b.key not in seen)
            out["already_alerted"] += len(r.breaches) - len(fresh)
            if fresh:
                new.append(replace(r, breaches=fresh))
        if new:
            try:
                sent = sender.send_message(settings.telegram.chat_ids, _alert_text(new))
                out["alerted"] = [{"to": f"telegram:{d.chat_id}", "ok": d.ok, "error": d.error} for d in sent]
            except Exception as exc:  # an alert that cannot be sent must not hide the check's outcome
                log.warning("could not send the drift alert to Telegram: %s: %s", type(exc).__name__, exc)
                out["alerted"] = [{"to": "telegram", "ok": False, "error": f"{type(exc).__name__}: {exc}"}]
            if out["alerted"] and all(d["ok"] for d in out["alerted"]):
                for r in new:
                    remember_alerted(r.model_dir, r.version, [b.key for b in r.breaches])
    if settings.ml.drift.retrain_on_breach:
        for r in hit:
            mark_due(r.model_dir, r.version, r.as_of.isoformat(), [b.text for b in r.breaches])
            out["marked"].append(f"{r.symbol} {r.version}")
    return out


def drift_checks(ctx: Any, request: dict[str, Any], *, sender=None) -> list[dict[str, Any]]:
    """Check every model of ``request``'s symbols and record the breaches (for a scheduled run).

    Meant to run after a run's orders are sent and before ``retrain_due_models``, with the
    run's bars, memoised regimes and fit cache (``ctx``: an
    :class:`agents.services.context.AppContext`; its journal, if any, receives the breaches).
    A symbol without a model, or whose check fails, is reported, not raised.

    Returns
    -------
    list of dict
        Per symbol: ``symbol`` and ``report`` (:meth:`DriftReport.to_dict`), or ``error``.
    """
    from agents.services.regime import run_regimes

    store = ctx.bars(request)
    done: list[dict[str, Any]] = []
    reports: list[DriftReport] = []
    for symbol in request["symbols"]:
        try:
            rep = model_drift(store, symbol, ctx.settings, analysis=run_regimes(ctx, request, symbol),
                              fit_cache=ctx.fit_cache())
        except (ModelNotFoundError, RegimeDeskError, ValueError) as exc:
            done.append({"symbol": symbol, "error": f"{type(exc).__name__}: {exc}"})
            continue
        reports.append(rep)
        done.append({"symbol": symbol, "report": rep.to_dict()})
    record_breaches(reports, ctx.settings, journal=ctx.journal, sender=sender)
    return done


def stored_symbols(settings: Settings) -> list[str]:
    """Symbols with at least one model version under ``home/models``, sorted."""
    store = model_store(settings)
    if not store.root.is_dir():
        return []
    found = []
    for d in store.root.iterdir():
        if not d.is_dir() or d.name.startswith("."):
            continue
        name = unquote(d.name)
        try:
            if store.versions(name):
                found.append(name)
        except ValueError:  # a folder that is not a symbol's
            continue
    return sorted(found)
