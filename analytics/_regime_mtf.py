"""Multi-timeframe regimes and their consensus.

Pure functions: per-timeframe log-return series in (already resampled from closed bars by
the caller), per-timeframe current regime and a consensus view out. A timeframe with no
series, or too little data for its training window, is reported as ``'unavailable'`` with
the reason; nothing is filled in for it.

The timeframes and their default walk-forward settings come from
:data:`analytics.timeframes.TIMEFRAME_TABLE` (re-exported here for existing imports).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analytics._regime_common import (
    REGIME_FAMILIES,
    REGIME_LABELS,
    UNAVAILABLE,
    RegimeResult,
    _check_float,
)
from analytics._regime_detect import detect_regimes
from analytics.errors import InsufficientDataError
from analytics.timeframes import DEFAULT_TIMEFRAME_SPECS, TIMEFRAMES, TimeframeSpec

__all__ = [
    "TIMEFRAMES",
    "DEFAULT_TIMEFRAME_SPECS",
    "TimeframeSpec",
    "TimeframeRegime",
    "RegimeConflict",
    "MultiTimeframeRegime",
    "regime_consensus",
    "multi_timeframe_regimes",
]


@dataclass(frozen=True)
class TimeframeRegime:
    """Current regime of one timeframe.

    Attributes
    ----------
    timeframe : str
    available : bool
    label : str
        A label of ``REGIME_LABELS``, or ``'unavailable'``.
    family : str
        ``'risk_on'``, ``'risk_off'`` or ``'unavailable'``.
    probability : float
        Filtered probability of the reported state on the last bar (NaN if unavailable).
    family_probabilities : dict
        ``{'risk_on': p, 'risk_off': 1 - p}`` on the last bar (empty if unavailable).
    as_of : pandas.Timestamp or None
        Date of the last bar used.
    reason : str or None
        Why the timeframe is unavailable.
    result : RegimeResult or None
        The full walk-forward result.
    """

    timeframe: str
    available: bool
    label: str
    family: str
    probability: float
    family_probabilities: dict[str, float]
    as_of: pd.Timestamp | None
    reason: str | None = None
    result: RegimeResult | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class RegimeConflict:
    """Two available timeframes whose current regimes sit in different families."""

    timeframe_a: str
    label_a: str
    timeframe_b: str
    label_b: str


@dataclass(frozen=True)
class MultiTimeframeRegime:
    """Per-timeframe regimes and their consensus.

    Attributes
    ----------
    timeframes : tuple of TimeframeRegime
        One entry per key of :data:`TIMEFRAMES`, in that order.
    consensus_family : str
        Family with the larger weight among available timeframes: ``'risk_on'``,
        ``'risk_off'``, ``'mixed'`` on an exact tie, ``'unavailable'`` when none is available.
    consensus_label : str
        Label with the largest weight inside the consensus family (ties go to the longer
        timeframe); ``'mixed'``/``'unavailable'`` as above.
    agreement : float
        Weight share of available timeframes in the consensus family, in [0.5, 1]
        (0.5 on a tie, NaN when none is available).
    consensus_probability : float
        Weighted mean over available timeframes of the filtered probability of the
        consensus family (NaN when mixed or unavailable).
    conflicts : tuple of RegimeConflict
        Every pair of available timeframes in different families.
    n_available : int
    weights : dict
        Weight used for each timeframe.
    """

    timeframes: tuple[TimeframeRegime, ...]
    consensus_family: str
    consensus_label: str
    agreement: float
    consensus_probability: float
    conflicts: tuple[RegimeConflict, ...]
    n_available: int
    weights: dict[str, float]

    def __getitem__(self, timeframe: str) -> TimeframeRegime:
        for tf in self.timeframes:
            if tf.timeframe == timeframe:
                return tf
        raise KeyError(timeframe)

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable view (NaN becomes ``None``)."""

        def num(x: float) -> float | None:
            return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)

        return {
            "consensus_family": self.consensus_family,
            "consensus_label": self.consensus_label,
            "agreement": num(self.agreement),
            "consensus_probability": num(self.consensus_probability),
            "n_available": self.n_available,
            "conflicts": [
                {"timeframe_a": c.timeframe_a, "label_a": c.label_a, "timeframe_b": c.timeframe_b, "label_b": c.label_b}
                for c in self.conflicts
            ],
            "timeframes": {
                t.timeframe: {
                    "available": t.available,
                    "label": t.label,
                    "family": t.family,
                    "probability": num(t.probability),
                    "family_probabilities": {k: float(v) for k, v in t.family_probabilities.items()},
                    "as_of": None if t.as_of is None else t.as_of.isoformat(),
                    "reason": t.reason,
                    "method": None if t.result is None else t.result.method,
                }
                for t in self.timeframes
            },
        }


def _unavailable(tf: str, reason: str) -> TimeframeRegime:
    return TimeframeRegime(
        timeframe=tf, available=False, label=UNAVAILABLE, family=UNAVAILABLE,
        probability=float("nan"), family_probabilities={}, as_of=None, reason=reason,
    )


def _from_result(tf: str, res: RegimeResult) -> TimeframeRegime:
    last = res.label_probabilities().iloc[-1]
    fam = {"risk_on": 0.0, "risk_off": 0.0}
    for lab in REGIME_LABELS:
        fam[REGIME_FAMILIES[lab]] += float(last[lab])
    return TimeframeRegime(
        timeframe=tf, available=True, label=res.current_label,
        family=REGIME_FAMILIES[res.current_label], probability=res.current_probability,
        family_probabilities=fam, as_of=res.dates[-1], reason=None, result=res,
    )


def _check_keys(mapping: Mapping[str, Any], name: str) -> None:
    if not isinstance(mapping, Mapping):
        raise TypeError(f"{name} must be a mapping with keys among {TIMEFRAMES}")
    unknown = set(mapping) - set(TIMEFRAMES)
    if unknown:
        raise ValueError(f"{name} has unknown timeframe keys {sorted(map(str, unknown))}; allowed: {TIMEFRAMES}")


def _weights(weights: Mapping[str, float] | None) -> dict[str, float]:
    if weights is None:
        return {tf: 1.0 for tf in TIMEFRAMES}
    _check_keys(weights, "weights")
    out = {tf: 1.0 for tf in TIMEFRAMES}
    for tf, w in weights.items():
        out[tf] = _check_float(w, f"weights[{tf!r}]", 0.0, 1e12)
    return out


def regime_consensus(
    results: Mapping[str, RegimeResult | TimeframeRegime | None],
    *,
    weights: Mapping[str, float] | None = None,
) -> MultiTimeframeRegime:
    """Consensus of per-timeframe regimes that were already computed.

    Parameters
    ----------
    results : mapping
        Keys among ``'LT', 'MT', 'ST', 'US'``; values a :class:`RegimeResult`, a
        :class:`TimeframeRegime`, or ``None``. Missing keys and ``None`` are reported as
        ``'unavailable'``.
    weights : mapping, optional
        Positive weight per timeframe (default 1 each).

    Returns
    -------
    MultiTimeframeRegime
    """
    _check_keys(results, "results")
    w = _weights(weights)
    regimes = []
    for tf in TIMEFRAMES:
        v = results.get(tf)
        if v is None:
            regimes.append(_unavailable(tf, "no data for this timeframe"))
        elif isinstance(v, TimeframeRegime):
            if v.timeframe != tf:
                raise ValueError(f"results[{tf!r}] describes timeframe {v.timeframe!r}")
            regimes.append(v)
        elif isinstance(v, RegimeResult):
            regimes.append(_from_result(tf, v))
        else:
            raise TypeError(f"results[{tf!r}] must be a RegimeResult, TimeframeRegime or None")
    avail = [t for t in regimes if t.available]
    conflicts = tuple(
        RegimeConflict(a.timeframe, a.label, b.timeframe, b.label)
        for a, b in itertools.combinations(avail, 2)
        if a.family != b.family
    )
    if not avail:
        return MultiTimeframeRegime(
            timeframes=tuple(regimes), consensus_family=UNAVAILABLE, consensus_label=UNAVAILABLE,
            agreement=float("nan"), consensus_probability=float("nan"), conflicts=(),
            n_available=0, weights=w,
        )
    fam_w = {"risk_on": 0.0, "risk_off": 0.0}
    for t in avail:
        fam_w[t.family] += w[t.timeframe]
    total = sum(fam_w.values())
    if total <= 0:
        raise ValueError("weights of the available timeframes sum to zero")
    if math.isclose(fam_w["risk_on"], fam_w["risk_off"]):
        family, label, agreement, prob = "mixed", "mixed", 0.5, float("nan")
    else:
        family = max(fam_w, key=fam_w.__getitem__)
        agreement = fam_w[family] / total
        lab_w: dict[str, float] = {}
        for t in avail:  # TIMEFRAMES order, so a tie keeps the longer timeframe's label
            if t.family == family:
                lab_w[t.label] = lab_w.get(t.label, 0.0) + w[t.timeframe]
        label = max(lab_w, key=lab_w.__getitem__)
        prob = float(np.sum([w[t.timeframe] * t.family_probabilities[family] for t in avail]) / total)
    return MultiTimeframeRegime(
        timeframes=tuple(regimes), consensus_family=family, consensus_label=label,
        agreement=float(agreement), consensus_probability=prob, conflicts=conflicts,
        n_available=len(avail), weights=w,
    )


def multi_timeframe_regimes(
    returns: Mapping[str, pd.Series | None],
    method: str = "hmm",
    *,
    n_states: int = 2,
    specs: Mapping[str, TimeframeSpec] | None = None,
    weights: Mapping[str, float] | None = None,
    seed: int = 0,
    **options: Any,
) -> MultiTimeframeRegime:
    """Causal regimes on each timeframe and their consensus.

    Parameters
    ----------
    returns : mapping
        Keys among ``'LT', 'MT', 'ST', 'US'``; values log-return series (tz-aware index)
        of that timeframe's closed bars, or ``None``. A missing or ``None`` timeframe, or one
        with too few bars for its ``min_train``, is reported as ``'unavailable'`` with the
        reason; bad arguments (wrong types, naive index) still raise.
    method : {'hmm', 'markov', 'garch'}, default 'hmm'
    n_states : int, default 2
    specs : mapping, optional
        Per-timeframe :class:`TimeframeSpec` overriding :data:`DEFAULT_TIMEFRAME_SPECS`.
    weights : mapping, optional
        Consensus weights (default 1 each).
    seed : int, default 0
    **options
        Method hyper-parameters passed to the model class.

    Returns
    -------
    MultiTimeframeRegime
    """
    _check_keys(returns, "returns")
    all_specs = dict(DEFAULT_TIMEFRAME_SPECS)
    if specs is not None:
        _check_keys(specs, "specs")
        for tf, s in specs.items():
            if not isinstance(s, TimeframeSpec):
                raise TypeError(f"specs[{tf!r}] must be a TimeframeSpec")
            all_specs[tf] = s
    per_tf: dict[str, RegimeResult | TimeframeRegime | None] = {}
    for tf in TIMEFRAMES:
        series = returns.get(tf)
        if series is None:
            per_tf[tf] = None
            continue
        spec = all_specs[tf]
        try:
            per_tf[tf] = detect_regimes(
                series, method, n_states=n_states, min_train=spec.min_train,
                refit_every=spec.refit_every, max_train=spec.max_train,
                persistence=spec.persistence, periods_per_year=spec.periods_per_year,
                seed=seed, **options,
            )
        except InsufficientDataError as exc:
            per_tf[tf] = _unavailable(tf, str(exc))
    return regime_consensus(per_tf, weights=weights)
