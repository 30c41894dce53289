"""Regime-change forecasts: P(the consensus regime family changes within ``h`` bars) against
the baseline the fitted transition matrix implies (issue 27, item 2).

* :func:`change_labels`: the outcome, 1 when the family at some bar of ``t+1 .. t+h`` differs
  from the one at ``t``; for scoring and training only (it reads the future).
* :func:`family_stay_probability`: the causal one-bar probability of staying in the current
  family, from the transition matrix of the last refit at or before each bar.
* :func:`baseline_change_probability`: ``1 - p_stay^h``.
* :func:`regime_age`: bars since the last family change (causal).
* :func:`walk_forward_change`: a logistic regression on causal features, the regime age, the
  current family and the baseline, refitted on purged walk-forward folds; out-of-sample Brier
  scores of the model and the baseline on the same bars, a Diebold-Mariano test of their
  difference and a walk-forward verdict whether the model beats the baseline.

The baseline is a simplification. It treats the regime as a two-state chain ("stay" or
"leave") whose one-bar staying probability is held at its value at ``t`` for all ``h`` bars,
so ``P(change within h) = 1 - p_stay^h``. The consensus family combines several timeframes
and a persistence rule; the baseline reads one timeframe's hidden-state chain. When the
fitted model has several states in one family, ``p_stay`` is the probability of moving to
*any* state of the current family (:func:`family_stay_probability`), i.e. moves inside the
family do not count as changes; returning to the family after leaving it within ``h`` bars
is still a change (a change happened), which ``p_stay^h`` also counts, because it multiplies
one-bar stays. The two-state hidden Markov models of RegimeDesk have one state per family,
so there the one-bar probability is exact and only the constancy over ``h`` bars and the gap
between a timeframe's hidden state and the reported consensus are approximations. The model
is there to find out whether those approximations cost anything out of sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analytics import DieboldMarianoResult, InsufficientDataError, diebold_mariano
from signals._model import reliability_table
from signals._split import PurgedWalkForwardSplit

__all__ = [
    "RegimeChangeResult",
    "baseline_change_probability",
    "change_labels",
    "family_stay_probability",
    "regime_age",
    "walk_forward_change",
]

#: Family values that mean "no regime known at this bar" (treated as missing).
_MISSING_FAMILIES = frozenset({"unavailable"})


def _family_codes(family: pd.Series) -> np.ndarray:
    """Integer code per bar, -1 where the family is missing (NaN, None or ``'unavailable'``)."""
    if not isinstance(family, pd.Series):
        raise TypeError(f"family must be a pandas Series, got {type(family).__name__}")
    values = family.to_numpy(dtype=object)
    missing = np.array([v is None or (isinstance(v, float) and v != v) or v in _MISSING_FAMILIES
                        for v in values], dtype=bool)
    codes = np.full(values.size, -1, dtype=np.int64)
    if (~missing).any():
        _, inverse = np.unique(values[~missing].astype(str), return_inverse=True)
        codes[~missing] = inverse
    return codes


def change_labels(family: pd.Series, horizon: int = 21) -> pd.Series:
    """1 when the family changes at some bar of ``t+1 .. t+horizon``, else 0.

    Parameters
    ----------
    family : Series
        Regime family per bar, oldest first (e.g. ``'risk_on'``, ``'risk_off'``, ``'mixed'``;
        any hashable values; NaN, None and ``'unavailable'`` are missing).
    horizon : int, default 21

    Returns
    -------
    Series of float
        0.0 / 1.0, NaN where the window ``t .. t+horizon`` is incomplete: the last
        ``horizon`` bars (even when a change is already seen there: keeping only the known
        ones would keep only changes, a biased sample) and windows with a missing family.
    """
    h = _check_horizon(horizon)
    codes = _family_codes(family)
    n = codes.size
    out = np.full(n, np.nan)
    if n <= h:
        return pd.Series(out, index=family.index, name="regime_change")
    # first bar s > t where the family differs from bar s - 1: the next change after t
    diff = np.zeros(n, dtype=bool)
    diff[1:] = codes[1:] != codes[:-1]
    next_change = np.full(n, n, dtype=np.int64)
    nxt = n
    for t in range(n - 1, -1, -1):
        next_change[t] = nxt
        if diff[t]:
            nxt = t
    miss = np.concatenate([[0], np.cumsum(codes < 0)])  # miss[j] = missing bars among 0..j-1
    t = np.arange(n - h)
    complete = miss[t + h + 1] - miss[t] == 0
    out[t] = np.where(complete, (next_change[t] <= t + h).astype(float), np.nan)
    return pd.Series(out, index=family.index, name="regime_change")


def regime_age(family: pd.Series) -> pd.Series:
    """Bars since the family last changed (0 on the bar of a change), causal.

    The first known run of the series counts from its first bar (its true start is not
    observed); a missing family gives NaN and the next known family starts a new run.
    """
    codes = _family_codes(family)
    n = codes.size
    out = np.full(n, np.nan)
    age = -1
    for t in range(n):
        if codes[t] < 0:
            age = -1
            continue
        age = age + 1 if age >= 0 and codes[t] == codes[t - 1] else 0
        out[t] = age
    return pd.Series(out, index=family.index, name="regime_age")


def family_stay_probability(
    transition_matrices: Sequence[np.ndarray] | np.ndarray,
    fit_index: np.ndarray,
    states: np.ndarray,
    state_families: Sequence[Sequence[str]] | None = None,
) -> np.ndarray:
    """One-bar probability of staying in the current state's family, per bar.

    Parameters
    ----------
    transition_matrices : sequence of (k, k) arrays
        Row-stochastic matrix of each refit (``RegimeResult.fits[j].transition_matrix``).
    fit_index : array of int, shape (n,)
        Refit in force at each bar (``RegimeResult.fit_index``: the last refit at or before
        the bar, fitted on earlier bars only).
    states : array of int, shape (n,)
        Current state per bar (e.g. ``RegimeResult.persistent_states``, the reported one).
    state_families : sequence of sequences of str, optional
        Per refit, the family of each state (e.g. ``REGIME_FAMILIES`` of
        ``fits[j].state_labels``). ``None``: every state is its own family, so the result is
        the diagonal entry ``A[s, s]``.

    Returns
    -------
    ndarray, shape (n,)
        ``sum_{j: family(j) = family(s_t)} A_t[s_t, j]``.
    """
    mats = np.asarray(transition_matrices, dtype=float)
    if mats.ndim != 3 or mats.shape[1] != mats.shape[2]:
        raise ValueError("transition_matrices must be a sequence of square matrices")
    fi = np.asarray(fit_index, dtype=np.int64)
    s = np.asarray(states, dtype=np.int64)
    if fi.shape != s.shape or fi.ndim != 1:
        raise ValueError("fit_index and states must be 1-D arrays of the same length")
    k = mats.shape[1]
    if fi.size and (fi.min() < 0 or fi.max() >= mats.shape[0] or s.min() < 0 or s.max() >= k):
        raise ValueError("fit_index or states out of range")
    if state_families is None:
        same = np.broadcast_to(np.eye(k, dtype=bool), mats.shape)
    else:
        fams = np.asarray([list(f) for f in state_families], dtype=object)
        if fams.shape != mats.shape[:2]:
            raise ValueError("state_families must give one family per state of every refit")
        same = fams[:, :, None] == fams[:, None, :]
    return np.where(same[fi, s], mats[fi, s], 0.0).sum(axis=1)


def baseline_change_probability(stay_prob: pd.Series, horizon: int = 21) -> pd.Series:
    """``1 - p_stay^h``: the chance of at least one change in ``h`` bars (see the module notes).

    Parameters
    ----------
    stay_prob : Series
        Causal one-bar probability of staying in the current family (clipped to [0, 1]);
        NaN where unknown.
    horizon : int, default 21
    """
    h = _check_horizon(horizon)
    p = np.clip(stay_prob.to_numpy(dtype=float), 0.0, 1.0)
    return pd.Series(1.0 - p**h, index=stay_prob.index, name="baseline_change")


@dataclass(frozen=True)
class RegimeChangeResult:
    """Out-of-sample regime-change forecasts of the model and the baseline.

    Attributes
    ----------
    probability : Series
        Model forecast, NaN outside the test folds (and where the baseline is unknown).
    baseline : Series
        Baseline forecast ``1 - p_stay^h`` on every bar.
    labels : Series
        :func:`change_labels` (NaN where the window is incomplete).
    scored : Series of bool
        Bars where both forecasts and the label exist: every score below uses these bars.
    horizon : int
    n : int
        Scored bars.
    base_rate : float
        Frequency of changes on the scored bars.
    brier_model, brier_baseline : float
        Mean squared error of the forecasts on the scored bars.
    skill : float
        Brier skill score of the model against the baseline, ``1 - brier_model / brier_baseline``.
    dm : DieboldMarianoResult or None
        Diebold-Mariano test (HLN correction, ``h - 1`` HAC lags) on the per-bar squared
        errors, model minus baseline: a negative statistic means the model's are smaller.
    reliability_model, reliability_baseline : tuple of dict
        :func:`signals.reliability_table` of each forecast on the scored bars.
    folds : tuple of dict
        Per fold: ``test_start``, ``test_end``, ``n_train`` and the chosen penalty ``c`` (or
        ``skipped``), and
        ``beats_baseline``, the verdict in force over that fold.
    beats_baseline : Series of bool
        Per bar, the verdict in force: computed at the start of the bar's fold from earlier
        folds' bars whose outcome was known by then; False before the first verdict.
    beats_baseline_next : bool
        The same rule applied after the last bar (what a live decision would use next).
    brier_gated : float
        Brier score of the forecast a decision would use: the model on bars whose verdict is
        True, the baseline elsewhere (same scored bars).
    alpha : float or None
        Significance level of the verdict (None: a lower Brier score is enough).
    """

    probability: pd.Series
    baseline: pd.Series
    labels: pd.Series
    scored: pd.Series
    horizon: int
    n: int
    base_rate: float
    brier_model: float
    brier_baseline: float
    skill: float
    dm: DieboldMarianoResult | None
    reliability_model: tuple[dict[str, float], ...]
    reliability_baseline: tuple[dict[str, float], ...]
    folds: tuple[dict[str, Any], ...]
    beats_baseline: pd.Series
    beats_baseline_next: bool
    brier_gated: float
    alpha: float | None

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable scores (no series)."""
        return {
            "horizon": self.horizon,
            "n": self.n,
            "base_rate": self.base_rate,
            "brier_model": self.brier_model,
            "brier_baseline": self.brier_baseline,
            "skill": self.skill,
            "dm_statistic": None if self.dm is None else self.dm.statistic,
            "dm_p_value": None if self.dm is None else self.dm.p_value,
            "brier_gated": self.brier_gated,
            "beats_baseline_next": self.beats_baseline_next,
            "folds_beating": int(sum(bool(f.get("beats_baseline")) for f in self.folds)),
            "n_folds": len(self.folds),
        }


def _check_horizon(horizon: int) -> int:
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ValueError(f"horizon must be a positive integer, got {horizon!r}")
    return int(horizon)


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


def _design(features: pd.DataFrame, family: pd.Series, baseline: pd.Series) -> pd.DataFrame:
    """Model inputs: the features, log(1 + regime age), one column per family value, logit(baseline)."""
    x = features.astype(float).copy()
    x["log_regime_age"] = np.log1p(regime_age(family).to_numpy())
    codes = _family_codes(family)
    values = family.to_numpy(dtype=object)
    for v in sorted({str(v) for v, c in zip(values, codes, strict=True) if c >= 0}):
        x[f"family={v}"] = np.where(codes >= 0, (values.astype(str) == v).astype(float), np.nan)
    x["baseline_logit"] = _logit(baseline.to_numpy(dtype=float))
    return x


def _pipeline(c: float) -> Any:
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(),
                         LogisticRegression(C=c, max_iter=2000, tol=1e-10))


def _choose_c(x: np.ndarray, y: np.ndarray, pos: np.ndarray, cs: tuple[float, ...], horizon: int,
              validation_fraction: float) -> float:
    """The penalty with the lowest Brier score on the last part of the training rows.

    The validation part is the last ``validation_fraction`` of the rows; fit rows end more than
    ``horizon`` bars before it (their outcome windows do not reach into it). With one class in
    either part the first of ``cs`` is kept.
    """
    if len(cs) == 1:
        return cs[0]
    n_val = max(20, int(round(pos.size * validation_fraction)))
    val = np.arange(pos.size - n_val, pos.size)
    fit = np.flatnonzero(pos + horizon < pos[val[0]])
    if fit.size < 50 or np.unique(y[fit]).size < 2 or np.unique(y[val]).size < 2:
        return cs[0]
    scores = [float(np.mean((_pipeline(c).fit(x[fit], y[fit]).predict_proba(x[val])[:, 1] - y[val]) ** 2))
              for c in cs]
    return cs[int(np.argmin(scores))]


def _verdict(err_m: np.ndarray, err_b: np.ndarray, horizon: int, alpha: float | None) -> bool:
    """Model beats baseline on these bars: lower mean squared error, and (alpha set) DM one-sided p < alpha."""
    if err_m.size < max(10, 2 * horizon) or not err_m.mean() < err_b.mean():
        return False
    if alpha is None:
        return True
    try:
        res = diebold_mariano(err_m, err_b, horizon)
    except InsufficientDataError:
        return False
    return bool(res.statistic < 0 and res.p_value / 2 < alpha)


def walk_forward_change(
    features: pd.DataFrame,
    family: pd.Series,
    stay_prob: pd.Series,
    horizon: int = 21,
    splitter: PurgedWalkForwardSplit | None = None,
    *,
    alpha: float | None = 0.05,
    cs: Sequence[float] = (0.001, 0.01, 0.1, 1.0),
    validation_fraction: float = 0.25,
    min_train_rows: int = 100,
) -> RegimeChangeResult:
    """Purged walk-forward forecasts of a family change within ``horizon`` bars.

    On every fold of ``splitter`` a logistic regression (L2; median imputation and
    standardisation fitted on the fold's training rows only) is fitted on the training rows
    with a label and a baseline, with inputs: the causal ``features``, ``log(1 + regime age)``
    (:func:`regime_age`), one 0/1 column per family value and ``logit`` of the baseline. Its
    penalty ``C`` is the one of ``cs`` with the lowest Brier score on the last
    ``validation_fraction`` of the training rows when fitted on the rows before them (purged
    by ``horizon``); the model is then refitted on all training rows. It forecasts the fold's
    bars that have a baseline and a known family.

    Parameters
    ----------
    features : DataFrame
        Causal features, one row per bar (e.g. :func:`signals.build_features`); NaN allowed.
    family : Series
        Regime family per bar on the same index (e.g. the consensus path).
    stay_prob : Series
        Causal one-bar probability of staying in the family on the same index
        (:func:`family_stay_probability`); NaN where unknown.
    horizon : int, default 21
    splitter : PurgedWalkForwardSplit, optional
        Its ``horizon`` (the purge) must be at least ``horizon``; default
        ``PurgedWalkForwardSplit(horizon=horizon)``.
    alpha : float or None, default 0.05
        The verdict ``beats_baseline`` needs a lower Brier score and a one-sided
        Diebold-Mariano p-value below ``alpha`` (``h - 1`` HAC lags); None: a lower Brier
        score is enough.
    cs : sequence of float, default (0.001, 0.01, 0.1, 1.0)
        Inverse L2 penalties (on standardised inputs) to choose from per fold; one value: no choice.
    validation_fraction : float, default 0.25
        Share of a fold's training rows that chooses the penalty.
    min_train_rows : int, default 100
        A fold with fewer usable training rows, or with one class only, is skipped.

    Returns
    -------
    RegimeChangeResult

    Notes
    -----
    The verdict for fold ``k`` uses only bars of folds before ``k`` whose outcome window had
    closed before fold ``k``'s first bar (``t + h`` earlier than it), so it is known when
    fold ``k`` starts and a decision can use it without looking at the period it reports.
    The paired test is Diebold-Mariano with ``h - 1`` lags, the MA order of ``h``-bar
    overlapping outcomes; regime paths are persistent, so the errors can be correlated over
    more than ``h`` bars and the p-value is then optimistic.
    """
    h = _check_horizon(horizon)
    splitter = splitter or PurgedWalkForwardSplit(horizon=h)
    if splitter.horizon < h:
        raise ValueError(f"splitter.horizon ({splitter.horizon}) must be at least horizon ({h})")
    if not (features.index.equals(family.index) and features.index.equals(stay_prob.index)):
        raise ValueError("features, family and stay_prob must share one index")
    cs = tuple(float(c) for c in cs)
    if not cs or any(not c > 0 for c in cs):
        raise ValueError("cs must hold positive penalties")
    if not 0.05 <= validation_fraction <= 0.5:
        raise ValueError("validation_fraction must be between 0.05 and 0.5")
    if alpha is not None and not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1) or None, got {alpha!r}")
    labels = change_labels(family, h)
    baseline = baseline_change_probability(stay_prob, h)
    x = _design(features, family, baseline).to_numpy(dtype=float)
    y = labels.to_numpy()
    base = baseline.to_numpy()
    usable = np.isfinite(base) & (_family_codes(family) >= 0)
    n = len(features)
    prob = np.full(n, np.nan)
    fold_rows: list[tuple[np.ndarray, dict[str, Any]]] = []
    for tr, te in splitter.split(features):
        info: dict[str, Any] = {"test_start": features.index[te[0]], "test_end": features.index[te[-1]]}
        rows = tr[usable[tr] & np.isfinite(y[tr])]
        test = te[usable[te]]
        if rows.size < min_train_rows or np.unique(y[rows]).size < 2:
            info["skipped"] = f"{rows.size} usable training rows" if rows.size < min_train_rows else "one class"
        elif test.size:
            c = _choose_c(x[rows], y[rows], rows, cs, h, validation_fraction)
            prob[test] = _pipeline(c).fit(x[rows], y[rows]).predict_proba(x[test])[:, 1]
            info["n_train"] = int(rows.size)
            info["c"] = c
        else:
            info["n_train"] = int(rows.size)
        fold_rows.append((te, info))

    scored = np.isfinite(prob) & np.isfinite(base) & np.isfinite(y)
    err_m = (prob - y) ** 2
    err_b = (base - y) ** 2
    pos = np.arange(n)
    beats = np.zeros(n, dtype=bool)
    folds = []
    for te, info in fold_rows:
        known = scored & (pos + h < te[0])
        info["beats_baseline"] = _verdict(err_m[known], err_b[known], h, alpha)
        beats[te] = info["beats_baseline"]
        folds.append(info)
    beats_next = _verdict(err_m[scored], err_b[scored], h, alpha)
    n_scored = int(scored.sum())
    if n_scored:
        bm, bb = float(err_m[scored].mean()), float(err_b[scored].mean())
        gated = float(np.where(beats, err_m, err_b)[scored].mean())
        base_rate = float(y[scored].mean())
        try:
            dm: DieboldMarianoResult | None = diebold_mariano(err_m[scored], err_b[scored], h)
        except InsufficientDataError:
            dm = None
    else:
        bm = bb = gated = base_rate = float("nan")
        dm = None
    skill = 1.0 - bm / bb if bb > 0 else float("nan")
    idx = features.index
    return RegimeChangeResult(
        probability=pd.Series(prob, index=idx, name="p_change"),
        baseline=baseline,
        labels=labels,
        scored=pd.Series(scored, index=idx, name="scored"),
        horizon=h,
        n=n_scored,
        base_rate=base_rate,
        brier_model=bm,
        brier_baseline=bb,
        skill=float(skill),
        dm=dm,
        reliability_model=tuple(reliability_table(prob[scored], y[scored])),
        reliability_baseline=tuple(reliability_table(base[scored], y[scored])),
        folds=tuple(folds),
        beats_baseline=pd.Series(beats, index=idx, name="beats_baseline"),
        beats_baseline_next=beats_next,
        brier_gated=gated,
        alpha=alpha,
    )
