"""``regimedesk scan``: one small record per symbol, and what changed since the last scan.

A record holds what a trader reads first each morning: the regime per timeframe (label,
filtered probability, since when), the consensus, the market character per timeframe, the ML
signal and volatility forecast of the stored model, and the decision policy's target weight.
It is computed by the same service functions as ``regimedesk regime``, ``stats`` and ``run``
(so the numbers are the same), from the symbol's bars alone, which is what lets
:mod:`agents.runtime.compute` run symbols on separate processes or machines.

A scan never trains a model: a symbol without a usable stored model gets no signal and says so
(``regimedesk train SYMBOL``). A symbol whose data or analysis fails gets a record with the
reason; the other symbols are unaffected.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from agents.config import TIMEFRAME_NAMES, Settings
from agents.services.analysis import analyse_symbol, process_context
from agents.services.ml import decide
from agents.services.regime import regime_report
from analytics import PolicyParams, RegimeDeskError

__all__ = ["ScanRecord", "scan_symbol", "scan_changes", "rank_records"]


@dataclass(frozen=True)
class ScanRecord:
    """One symbol's scan result (JSON-friendly; ``ok`` False with ``error`` when it failed)."""

    symbol: str
    ok: bool
    error: str | None = None
    last_bar: str | None = None
    regimes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    consensus: Mapping[str, Any] = field(default_factory=dict)
    character: Mapping[str, str | None] = field(default_factory=dict)
    p_up: float | None = None
    vol_forecast: float | None = None
    model_version: str | None = None
    target_weight: float | None = None
    note: str | None = None
    changes: tuple[str, ...] = ()
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["changes"] = list(self.changes)
        return d

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> ScanRecord:
        known = {k: doc[k] for k in cls.__dataclass_fields__ if k in doc}
        known["changes"] = tuple(known.get("changes", ()))
        return cls(**known)

    def same_result(self, other: ScanRecord) -> bool:
        """Equal apart from the time taken and the changes (which depend on the scan before)."""
        a, b = self.to_dict(), other.to_dict()
        for d in (a, b):
            d.pop("seconds")
            d.pop("changes")
        return a == b


def _signal(symbol: str, settings: Settings, sig: Any, family: str | None) -> dict[str, Any]:
    if isinstance(sig, BaseException):
        return {"note": f"no signal: {sig} (regimedesk train {symbol})"}
    policy = settings.decision.policy
    params = sig["policy_params"].get(policy)
    weight = None
    if params is not None:
        weight = decide(policy, PolicyParams(**params), family, sig["p_up"], sig["vol_forecast"])
        weight = None if weight is None else min(weight, settings.decision.max_weight)
    return {"p_up": sig["p_up"], "vol_forecast": sig["vol_forecast"], "model_version": sig["model_version"],
            "target_weight": weight, "note": sig["model_note"]}


def scan_symbol(symbol: str, settings: Settings, source: str, as_of: str | None = None) -> ScanRecord:
    """The scan record of ``symbol`` from ``source`` as of ``as_of`` (None: the newest bar).

    The analysis is :func:`agents.services.analysis.analyse_symbol`'s (what a run's agents
    compute), with model training off; the bars are read afresh for every scan, so a
    long-running process (the bot, the scheduler, a cluster's workers) never scans old data.
    Never raises for the symbol's own problems (unknown symbol, too little data, a model that
    cannot be read): those give ``ok=False`` and the reason.
    """
    started = time.perf_counter()
    no_training = settings.model_copy(update={"ml": settings.ml.model_copy(update={"auto_train": False})})
    app = process_context(no_training)
    request: dict[str, Any] = {"source": source, "as_of": as_of, "start": None, "recompute": False}
    try:
        store = app.bars(request)
        canonical = store.market.source.canonical_symbol(symbol)
        last = store.get(canonical, "MT").frame.index[-1].isoformat()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = analyse_symbol(canonical, no_training, {**request, "symbols": [canonical]})
        if isinstance(found.regimes, BaseException):
            raise found.regimes
    except RegimeDeskError as exc:
        app.release(request)
        return ScanRecord(symbol, False, error=str(exc), seconds=time.perf_counter() - started)
    rep = regime_report(found.regimes)
    regimes = {tf: {k: v.get(k) for k in ("label", "family", "probability", "since", "bars_in_regime")}
               for tf, v in rep["timeframes"].items()}
    character: dict[str, str | None] = {}
    for tf in TIMEFRAME_NAMES:
        stats = found.statistics.get(tf)
        ch = {} if stats is None or isinstance(stats, BaseException) else stats.get("character", {})
        character[tf] = ch.get("character") if ch.get("available") else None
    consensus = {k: rep["consensus"][k] for k in ("label", "family", "agreement")}
    signal = _signal(canonical, settings, found.signal, consensus["family"])
    return ScanRecord(canonical, True, last_bar=last, regimes=regimes, consensus=consensus, character=character,
                      seconds=time.perf_counter() - started, **signal)


def scan_changes(previous: ScanRecord | None, current: ScanRecord) -> tuple[str, ...]:
    """What changed since ``previous`` (the symbol's last scan): regimes per timeframe, the
    consensus family, the character; ``("new",)`` for a first scan."""
    if not current.ok:
        return ()
    if previous is None or not previous.ok:
        return ("new",)
    out = []
    for tf, now in current.regimes.items():
        before = previous.regimes.get(tf, {}).get("label")
        if before is not None and before != now.get("label"):
            out.append(f"{tf} {before} -> {now.get('label')}")
    if previous.consensus.get("family") != current.consensus.get("family"):
        out.append(f"consensus {previous.consensus.get('family')} -> {current.consensus.get('family')}")
    for tf, now in current.character.items():
        before = previous.character.get(tf)
        if before is not None and now is not None and before != now:
            out.append(f"{tf} character {before} -> {now}")
    return tuple(out)


def rank_records(records: Sequence[ScanRecord]) -> list[ScanRecord]:
    """Regime changes first, then other changes, then the rest; failures last; by symbol within."""
    def key(r: ScanRecord) -> tuple[int, str]:
        if not r.ok:
            return (3, r.symbol)
        regime = any("->" in c and "character" not in c for c in r.changes)
        return (0 if regime else 1 if r.changes else 2, r.symbol)
    return sorted(records, key=key)
