"""Multi-timeframe regimes of one symbol: current view, consensus and causal history.

Shared by the regime agent node, ``regimedesk regime`` and the Telegram bot. Numbers come
from ``analytics`` (walk-forward fits, filtered probabilities, persistence rule); this
module chooses the inputs per timeframe and shapes the JSON.

Methods: ``hmm`` (default; Gaussian HMM), ``markov`` (Markov-switching regression),
``garch`` (GARCH volatility regimes) and ``ensemble``: the three methods vote per bar; the
family (risk-on / risk-off) held by at least two of them wins, its probability is the mean
of the three methods' filtered probabilities of that family, and the label is the one most
methods in the winning family report (ties go to hmm, then markov).
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from agents.config import TIMEFRAME_NAMES
from analytics import (
    DEFAULT_TIMEFRAME_SPECS,
    REGIME_FAMILIES,
    REGIME_LABELS,
    InsufficientDataError,
    RegimeDeskError,
    RegimeResult,
    TimeframeRegime,
    detect_regimes,
    regime_consensus,
)

__all__ = [
    "METHODS",
    "AGENT_METHOD",
    "RegimeAnalysis",
    "analyse_regimes",
    "regime_report",
    "regime_history",
    "consensus_path",
    "risk_off_path",
    "run_regimes",
]

# hmmlearn logs every non-monotone EM step; convergence is checked by analytics instead.
logging.getLogger("hmmlearn").setLevel(logging.ERROR)

METHODS: tuple[str, ...] = ("hmm", "markov", "garch", "jump", "ensemble")
#: The method of the regime agent, which the ML features and the decision policy also use.
AGENT_METHOD = "hmm"
_BASE = ("hmm", "markov", "garch")


@dataclass(frozen=True)
class _Path:
    """A per-bar regime path (one method or the ensemble) of one timeframe."""

    dates: pd.DatetimeIndex
    labels: np.ndarray
    probability: np.ndarray  # filtered probability of the reported state (ensemble: of its family)
    # What the same model reports without the persistence rule: the most probable state's
    # label and probability (ensemble: the same vote over the methods' raw labels).
    raw_labels: np.ndarray
    raw_probability: np.ndarray
    risk_off: np.ndarray  # filtered probability of the risk-off family per bar
    family_probabilities: dict[str, float]
    expected_duration: float | None
    transition_matrix: list[list[float]] | None
    state_labels: list[str] | None
    switches_per_year: float
    converged: bool
    n_fits: int
    n_regimes: int | None = None  # regimes the latest fit found in its window (None: ensemble)


@dataclass(frozen=True)
class RegimeAnalysis:
    """Regimes of one symbol on every timeframe."""

    symbol: str
    method: str
    paths: dict[str, _Path | None]
    reasons: dict[str, str]
    bars: dict[str, str]
    consensus: dict[str, Any]


def _returns(close: pd.Series) -> pd.Series:
    r = np.log(close.astype(float)).diff().iloc[1:]
    r.name = "log_return"
    return r


def _path_from_result(res: RegimeResult) -> _Path:
    rows = np.arange(len(res.dates))
    probs = res.probabilities[rows, res.persistent_states]
    allp = res.label_probabilities()
    values, names = allp.to_numpy(), list(allp.columns)
    fam = {"risk_on": 0.0, "risk_off": 0.0}
    for lab, p in zip(names, values[-1], strict=True):
        fam[REGIME_FAMILIES[lab]] += float(p)
    risk_off = values[:, [i for i, c in enumerate(names) if REGIME_FAMILIES[c] == "risk_off"]].sum(axis=1)
    return _Path(
        dates=res.dates,
        labels=np.asarray(res.labels),
        probability=np.asarray(probs, dtype=float),
        raw_labels=np.asarray(res.raw_labels).astype(str),
        raw_probability=np.asarray(res.probabilities[rows, res.states], dtype=float),
        risk_off=np.asarray(risk_off, dtype=float),
        family_probabilities=fam,
        # None when the state is absorbing (a window of one regime: no change expected).
        expected_duration=duration if math.isfinite(duration := float(res.expected_durations[res.current_state]))
        else None,
        transition_matrix=[[float(x) for x in row] for row in res.transition_matrix],
        state_labels=list(res.state_labels),
        switches_per_year=float(res.switches_per_year),
        converged=bool(res.converged),
        n_fits=len(res.fits),
        n_regimes=int(res.fits[-1].n_regimes),
    )


def _vote(labels_by: dict[str, np.ndarray], p_off: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ensemble label and probability per bar from the three methods' labels (see module doc)."""
    n = len(p_off)
    off_votes = sum((np.array([REGIME_FAMILIES[x] for x in labels_by[m]]) == "risk_off").astype(int) for m in _BASE)
    family = np.where(off_votes >= 2, "risk_off", "risk_on")
    prob = np.where(family == "risk_off", p_off, 1.0 - p_off)
    labels = np.empty(n, dtype=object)
    for i in range(n):
        votes = [labels_by[m][i] for m in _BASE if REGIME_FAMILIES[labels_by[m][i]] == family[i]]
        counts = Counter(votes)
        top = max(counts.values())
        labels[i] = next(v for v in votes if counts[v] == top)
    return labels, prob


def _ensemble(results: dict[str, RegimeResult]) -> _Path:
    dates = results["hmm"].dates
    for r in results.values():
        dates = dates.intersection(r.dates)
    labels_by, raw_by, risk_off_by = {}, {}, {}
    for m, r in results.items():
        keep = r.dates.isin(dates)
        labels_by[m] = np.asarray(r.labels)[keep]
        raw_by[m] = np.asarray(r.raw_labels)[keep]
        lp = r.label_probabilities().loc[dates]
        risk_off_by[m] = lp[[c for c in lp.columns if REGIME_FAMILIES[c] == "risk_off"]].sum(axis=1).to_numpy()
    n = len(dates)
    p_off = np.mean([risk_off_by[m] for m in _BASE], axis=0)
    labels, prob = _vote(labels_by, p_off)
    raw_labels, raw_prob = _vote(raw_by, p_off)
    switches = int(np.count_nonzero(labels[1:] != labels[:-1]))
    years = n / 252.0 if n else float("nan")
    return _Path(
        dates=dates,
        labels=labels.astype(str),
        probability=prob,
        raw_labels=raw_labels.astype(str),
        raw_probability=raw_prob,
        risk_off=p_off,
        family_probabilities={"risk_on": float(1 - p_off[-1]), "risk_off": float(p_off[-1])},
        expected_duration=None,
        transition_matrix=None,
        state_labels=None,
        switches_per_year=switches / years if years else float("nan"),
        converged=all(r.converged for r in results.values()),
        n_fits=sum(len(r.fits) for r in results.values()),
    )


def analyse_regimes(store, symbol: str, method: str = "hmm", seed: int = 0, fit_cache=None) -> RegimeAnalysis:
    """Walk-forward regimes of ``symbol`` on LT, MT, ST and US with their consensus.

    Parameters
    ----------
    store : agents.services.context.BarStore
        Bars of the run (full available history; the regime models need more than the
        display lookback: MT trains on 504 bars before its first filtered value).
    symbol : str
    method : {'hmm', 'markov', 'garch', 'jump', 'ensemble'}
    seed : int
        Seed of the model fits (results are deterministic given the seed).
    fit_cache : mutable mapping, optional
        Fitted parameter sets from earlier runs (:class:`agents.services.fitcache.FitCache`); only
        refits not in it are estimated. The result is the same with or without it.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    paths: dict[str, _Path | None] = {}
    reasons: dict[str, str] = {}
    bars: dict[str, str] = {}
    views: dict[str, TimeframeRegime | None] = {}
    for tf in TIMEFRAME_NAMES:
        bars[tf] = store.bar_of(tf)
        spec = DEFAULT_TIMEFRAME_SPECS[tf]
        try:
            returns = _returns(store.get(symbol, tf).frame["close"])
            kwargs = dict(
                min_train=spec.min_train,
                refit_every=spec.refit_every,
                max_train=spec.max_train,
                persistence=spec.persistence,
                periods_per_year=spec.periods_per_year,
                seed=seed,
                fit_cache=fit_cache,
            )
            if method == "ensemble":
                results = {m: detect_regimes(returns, m, **kwargs) for m in _BASE}
                path = _ensemble(results)
            else:
                path = _path_from_result(detect_regimes(returns, method, **kwargs))
        except (InsufficientDataError, RegimeDeskError) as exc:
            paths[tf] = None
            reasons[tf] = str(exc)
            views[tf] = None
            continue
        paths[tf] = path
        label = str(path.labels[-1])
        views[tf] = TimeframeRegime(
            timeframe=tf,
            available=True,
            label=label,
            family=REGIME_FAMILIES[label],
            probability=float(path.probability[-1]),
            family_probabilities=path.family_probabilities,
            as_of=path.dates[-1],
        )
    consensus = regime_consensus(views).summary()
    return RegimeAnalysis(symbol, method, paths, reasons, bars, consensus)


def _since(path: _Path) -> tuple[str, int]:
    labels = path.labels
    change = np.flatnonzero(labels[1:] != labels[:-1])
    start = int(change[-1] + 1) if change.size else 0
    return path.dates[start].isoformat(), int(len(labels) - start)


def regime_report(analysis: RegimeAnalysis) -> dict[str, Any]:
    """JSON view: per timeframe the regime, probability, since when, expected duration."""
    tfs: dict[str, Any] = {}
    for tf in TIMEFRAME_NAMES:
        path = analysis.paths.get(tf)
        if path is None:
            tfs[tf] = {"bar": analysis.bars[tf], "available": False, "label": "unavailable",
                       "reason": analysis.reasons.get(tf, "no data")}
            continue
        since, bars_in = _since(path)
        label = str(path.labels[-1])
        tfs[tf] = {
            "bar": analysis.bars[tf],
            "available": True,
            "label": label,
            "family": REGIME_FAMILIES[label],
            "probability": float(path.probability[-1]),
            "family_probabilities": path.family_probabilities,
            "as_of": path.dates[-1].isoformat(),
            "since": since,
            "bars_in_regime": bars_in,
            "expected_duration_bars": path.expected_duration,
            "transition_matrix": path.transition_matrix,
            "state_labels": path.state_labels,
            "switches_per_year": path.switches_per_year,
            "converged": path.converged,
            "n_fits": path.n_fits,
            "n_regimes": path.n_regimes,
        }
    c = analysis.consensus
    return {
        "symbol": analysis.symbol,
        "method": analysis.method,
        "labels": list(REGIME_LABELS),
        "timeframes": tfs,
        "consensus": {
            "family": c["consensus_family"],
            "label": c["consensus_label"],
            "agreement": c["agreement"],
            "probability": c["consensus_probability"],
            "available_timeframes": c["n_available"],
            "conflicts": c["conflicts"],
        },
    }


def regime_history(analysis: RegimeAnalysis) -> dict[str, list[dict[str, Any]]]:
    """The causal regime path per timeframe, one row per bar.

    Each row is ``{date, label, probability, held_by_persistence, most_probable_label,
    most_probable_probability}``. ``label`` is the reported regime: a switch needs several
    bars of evidence (the persistence rule), so on some bars the model's most probable state
    already has another label; there ``held_by_persistence`` is true and the two
    ``most_probable_*`` fields name that state and its filtered probability. On every other
    row they repeat ``label``'s. For the ensemble, "most probable" is the same vote over the
    methods' labels without the persistence rule, with its family's probability.

    Returns
    -------
    dict of str to list of dict
        Timeframe -> rows, oldest first; timeframes without a path are left out.
    """
    out: dict[str, list[dict[str, Any]]] = {}
    for tf, path in analysis.paths.items():
        if path is None:
            continue
        out[tf] = [
            {"date": d.isoformat(), "label": str(lab), "probability": float(p),
             "held_by_persistence": bool(lab != raw), "most_probable_label": str(raw),
             "most_probable_probability": float(raw_p)}
            for d, lab, p, raw, raw_p in zip(path.dates, path.labels, path.probability, path.raw_labels,
                                              path.raw_probability, strict=True)
        ]
    return out


def _view_at(tf: str, path: _Path, i: int, dated: bool = True) -> TimeframeRegime:
    # dated=False leaves as_of unset: boxing a tz-aware timestamp per bar dominated
    # consensus_path, which only needs the family.
    label = str(path.labels[i])
    p_off = float(path.risk_off[i])
    return TimeframeRegime(
        timeframe=tf,
        available=True,
        label=label,
        family=REGIME_FAMILIES[label],
        probability=float(path.probability[i]),
        family_probabilities={"risk_on": 1.0 - p_off, "risk_off": p_off},
        as_of=path.dates[i] if dated else None,
    )


def consensus_path(analysis: RegimeAnalysis, index: pd.DatetimeIndex) -> pd.Series:
    """Consensus family per bar of ``index`` as the regime agent would have reported it then.

    At each bar every timeframe contributes its latest regime stamped at or before that
    bar (a weekly regime counts from the close of its week); timeframes without a value
    yet are unavailable. The consensus comes from the same ``regime_consensus`` the agent
    uses, so the last value equals ``regime_report(analysis)['consensus']['family']`` when
    ``index`` ends at the data's last bar.
    """
    pos: dict[str, np.ndarray] = {}
    for tf, path in analysis.paths.items():
        if path is not None:
            pos[tf] = np.searchsorted(path.dates.as_unit("ns").asi8, index.as_unit("ns").asi8, side="right") - 1
    out = np.empty(len(index), dtype=object)
    cache: dict[tuple, str] = {}
    tfs = sorted(pos)
    # The consensus family depends on the timeframes' labels only (their probabilities do
    # not enter the vote), so bars with the same labels share one computation.
    label_cols = [np.where(pos[tf] >= 0, np.asarray(analysis.paths[tf].labels, dtype=object)[np.maximum(pos[tf], 0)],
                           None) for tf in tfs]
    for j, key in enumerate(zip(*label_cols, strict=True)):
        fam = cache.get(key)
        if fam is None:
            views = {tf: (_view_at(tf, analysis.paths[tf], int(pos[tf][j]), dated=False) if lab is not None else None)
                     for tf, lab in zip(tfs, key, strict=True)}
            fam = cache[key] = regime_consensus(views).consensus_family
        out[j] = fam
    return pd.Series(out, index=index, name="regime_family")


def risk_off_path(analysis: RegimeAnalysis, timeframe: str, index: pd.DatetimeIndex) -> pd.Series:
    """Filtered risk-off probability of one timeframe on ``index`` (latest value at or before each bar)."""
    path = analysis.paths.get(timeframe)
    if path is None:
        return pd.Series(np.nan, index=index, name="regime_risk_off")
    s = pd.Series(path.risk_off, index=path.dates)
    return s.reindex(index.union(path.dates)).ffill().reindex(index).rename("regime_risk_off")


def run_regimes(ctx: Any, request: Mapping[str, Any], symbol: str) -> RegimeAnalysis:
    """The symbol's walk-forward regimes for one run, computed once for every agent that asks.

    ``ctx`` is the run's :class:`agents.services.context.AppContext`: the result is memoised
    there under the request's source, as-of date and symbol, and refits reuse its fit cache.
    """
    store = ctx.bars(request)
    key = ("regimes", request["source"], request.get("as_of"), request.get("start"), symbol, AGENT_METHOD)
    return ctx.memo(key, lambda: analyse_regimes(store, symbol, AGENT_METHOD, fit_cache=ctx.fit_cache()))
