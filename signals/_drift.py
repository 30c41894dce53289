"""Drift of a stored model: feature drift against its training window and decay of its score.

Pure functions of arrays and frames (no store, no configuration):

* :func:`population_stability_index` - PSI of a recent sample against an expected (training)
  sample, on bins at the expected sample's quantiles;
* :func:`feature_drift` - PSI and the two-sample Kolmogorov-Smirnov statistic and p-value per
  feature column;
* :func:`performance_decay` - the Brier score (and AUC) of a model's forecasts on the latest
  labelled bars, and their rolling Brier score, against the validation scores of training.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analytics import InsufficientDataError

__all__ = [
    "PSI_EPSILON",
    "psi_edges",
    "population_stability_index",
    "FeatureDriftRow",
    "FeatureDrift",
    "feature_drift",
    "PerformanceDecay",
    "performance_decay",
]

#: Share given to a bin that holds no observation of a sample (in either sample), so that the
#: logarithm of the PSI stays finite: an empty bin then adds ``(a - eps) * ln(a / eps)``, a
#: large but finite amount (0.1 against an empty bin adds about 0.69).
PSI_EPSILON = 1e-4

#: Fewest forecasts :func:`performance_decay` scores (as :func:`signals.signal_metrics`).
_MIN_FORECASTS = 20


def _finite(values: Sequence[float] | np.ndarray | pd.Series) -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    return x[np.isfinite(x)]


def psi_edges(expected: Sequence[float] | np.ndarray | pd.Series, bins: int = 10) -> np.ndarray:
    """Inner bin edges of the PSI: the ``k / bins`` quantiles of ``expected`` (k = 1 .. bins-1).

    The bins are ``(-inf, e_1], (e_1, e_2], ..., (e_last, inf)``; equal quantiles (ties, a
    discrete feature) are merged, so there may be fewer than ``bins`` bins.

    Parameters
    ----------
    expected : array-like
        The reference sample; non-finite values are ignored.
    bins : int, default 10
        Number of quantile bins asked for (at least 2).

    Returns
    -------
    numpy.ndarray
        Sorted, distinct inner edges (``bins - 1`` of them without ties).

    Raises
    ------
    ValueError
        ``bins`` below 2.
    InsufficientDataError
        Fewer finite values than ``bins``.
    """
    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}")
    e = _finite(expected)
    if e.size < bins:
        raise InsufficientDataError(f"the expected sample has {e.size} finite values; {bins} bins need {bins}")
    return np.unique(np.quantile(e, np.arange(1, bins) / bins))


def _shares(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts = np.bincount(np.searchsorted(edges, x, side="left"), minlength=edges.size + 1)
    return counts / x.size


def population_stability_index(
    expected: Sequence[float] | np.ndarray | pd.Series,
    actual: Sequence[float] | np.ndarray | pd.Series,
    bins: int = 10,
) -> float:
    """Population stability index of ``actual`` against ``expected``.

    ``PSI = sum_i (a_i - e_i) * ln(a_i / e_i)`` over the bins of :func:`psi_edges` (quantiles of
    ``expected``), where ``e_i`` and ``a_i`` are the shares of each sample in bin ``i``. A share
    of zero is replaced by :data:`PSI_EPSILON` (1e-4) so that every term is finite; the shares
    are not renormalised after that. PSI is 0 for identical binned shares and grows with the
    shift; a common reading is < 0.1 stable, 0.1-0.25 moderate, > 0.25 a significant shift. For
    two samples of one distribution it is positive by sampling noise alone, about
    ``(bins - 1) * (1/n_expected + 1/n_actual)``.

    Parameters
    ----------
    expected : array-like
        The reference sample (the training window); non-finite values are ignored.
    actual : array-like
        The sample compared with it (the recent bars); non-finite values are ignored.
    bins : int, default 10
        Quantile bins of ``expected`` (see :func:`psi_edges`).

    Returns
    -------
    float

    Raises
    ------
    InsufficientDataError
        Fewer finite expected values than ``bins``, or no finite actual value.
    """
    edges = psi_edges(expected, bins)
    a = _finite(actual)
    if a.size == 0:
        raise InsufficientDataError("the actual sample has no finite value")
    e_share = np.maximum(_shares(_finite(expected), edges), PSI_EPSILON)
    a_share = np.maximum(_shares(a, edges), PSI_EPSILON)
    return float(np.sum((a_share - e_share) * np.log(a_share / e_share)))


@dataclass(frozen=True)
class FeatureDriftRow:
    """Drift of one feature: PSI and two-sample KS of the recent values against the training ones.

    The values are NaN when a sample is too small (fewer finite training values than bins,
    or no finite recent value).
    """

    feature: str
    psi: float
    ks_statistic: float
    ks_pvalue: float
    n_train: int
    n_recent: int

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "psi": self.psi, "ks_statistic": self.ks_statistic,
                "ks_pvalue": self.ks_pvalue, "n_train": self.n_train, "n_recent": self.n_recent}


@dataclass(frozen=True)
class FeatureDrift:
    """Per-feature drift, in the column order of the training frame."""

    rows: tuple[FeatureDriftRow, ...]
    bins: int

    @property
    def worst(self) -> FeatureDriftRow | None:
        """The feature with the largest PSI (None when no PSI could be computed)."""
        rated = [r for r in self.rows if np.isfinite(r.psi)]
        return max(rated, key=lambda r: r.psi) if rated else None

    def to_frame(self) -> pd.DataFrame:
        """One row per feature (index ``feature``): psi, ks_statistic, ks_pvalue, n_train, n_recent."""
        cols = ["psi", "ks_statistic", "ks_pvalue", "n_train", "n_recent"]
        return pd.DataFrame([r.to_dict() for r in self.rows], columns=["feature", *cols]).set_index("feature")

    def to_dict(self) -> dict[str, Any]:
        return {"bins": self.bins, "features": [r.to_dict() for r in self.rows]}


def feature_drift(train_features: pd.DataFrame, recent_features: pd.DataFrame, bins: int = 10) -> FeatureDrift:
    """PSI and Kolmogorov-Smirnov statistic of every feature, recent against training values.

    Parameters
    ----------
    train_features : pandas.DataFrame
        Feature rows of the training window (one column per feature).
    recent_features : pandas.DataFrame
        Feature rows of the recent bars; columns missing here are left out.
    bins : int, default 10
        Quantile bins of the PSI (:func:`population_stability_index`).

    Returns
    -------
    FeatureDrift
        One row per feature of ``train_features`` also in ``recent_features``; the KS statistic
        and p-value are those of ``scipy.stats.ks_2samp`` (two-sided, exact or asymptotic as
        scipy chooses), computed on the finite values of each column.
    """
    from scipy.stats import ks_2samp

    rows = []
    for name in train_features.columns:
        if name not in recent_features.columns:
            continue
        tr = _finite(train_features[name])
        rc = _finite(recent_features[name])
        if tr.size < bins or rc.size == 0:
            rows.append(FeatureDriftRow(str(name), np.nan, np.nan, np.nan, int(tr.size), int(rc.size)))
            continue
        ks = ks_2samp(tr, rc)
        rows.append(FeatureDriftRow(str(name), population_stability_index(tr, rc, bins), float(ks.statistic),
                                    float(ks.pvalue), int(tr.size), int(rc.size)))
    return FeatureDrift(tuple(rows), bins)


@dataclass(frozen=True)
class PerformanceDecay:
    """Scores of a model's forecasts on the latest labelled bars against its validation scores.

    ``brier`` and ``auc`` are those of the last ``min(window, n)`` forecasts (``auc`` None when
    those outcomes hold one class only); ``brier_increase = brier - validation_brier`` (positive:
    worse than validated) and ``auc_drop = validation_auc - auc`` (positive: worse).
    ``rolling_brier`` is the Brier score over each trailing ``window`` forecasts (NaN until
    ``window`` are there), indexed like the forecasts.
    """

    n: int
    window: int
    n_recent: int
    brier: float
    auc: float | None
    validation_brier: float
    validation_auc: float | None
    brier_increase: float
    auc_drop: float | None
    rolling_brier: pd.Series = field(compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The scores (without the rolling series)."""
        return {k: getattr(self, k) for k in ("n", "window", "n_recent", "brier", "auc", "validation_brier",
                                              "validation_auc", "brier_increase", "auc_drop")}


def performance_decay(
    p: Sequence[float] | np.ndarray | pd.Series,
    y: Sequence[float] | np.ndarray | pd.Series,
    validation_brier: float,
    *,
    validation_auc: float | None = None,
    window: int = 63,
) -> PerformanceDecay:
    """Recent out-of-sample Brier score (and AUC) of forecasts ``p`` of outcomes ``y``.

    Pass only forecasts made after the model's training data ended, and only those whose
    outcome is known (for a label over ``h`` bars: bars at least ``h`` bars before the last).

    Parameters
    ----------
    p : array-like
        Forecast probabilities of the outcome 1, in time order; a Series keeps its index in
        ``rolling_brier``.
    y : array-like
        Outcomes 0/1, aligned with ``p``; pairs with a non-finite value are dropped.
    validation_brier : float
        The model's Brier score out of sample at training time.
    validation_auc : float, optional
        Its AUC then (``auc_drop`` is None without it).
    window : int, default 63
        Forecasts in the recent score and in each rolling score.

    Returns
    -------
    PerformanceDecay

    Raises
    ------
    ValueError
        ``window`` below 1, or ``p`` and ``y`` of different lengths.
    InsufficientDataError
        Fewer than 20 scored forecasts.
    """
    from sklearn.metrics import roc_auc_score

    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    index = p.index if isinstance(p, pd.Series) else None
    pa = np.asarray(p, dtype=float).ravel()
    ya = np.asarray(y, dtype=float).ravel()
    if pa.shape != ya.shape:
        raise ValueError(f"p and y differ in length ({pa.size} and {ya.size})")
    ok = np.isfinite(pa) & np.isfinite(ya)
    pa, ya = pa[ok], ya[ok]
    if pa.size < _MIN_FORECASTS:
        raise InsufficientDataError(f"need at least {_MIN_FORECASTS} labelled forecasts, got {pa.size}")
    sq = pd.Series((pa - ya) ** 2, index=index[ok] if index is not None else None)
    rolling = sq.rolling(window, min_periods=window).mean()
    k = min(window, pa.size)
    rp, ry = pa[-k:], ya[-k:]
    brier = float(np.mean((rp - ry) ** 2))
    auc = float(roc_auc_score(ry, rp)) if np.unique(ry).size == 2 else None
    auc_drop = None if auc is None or validation_auc is None else float(validation_auc) - auc
    return PerformanceDecay(
        n=int(pa.size), window=int(window), n_recent=int(k), brier=brier, auc=auc,
        validation_brier=float(validation_brier),
        validation_auc=None if validation_auc is None else float(validation_auc),
        brier_increase=brier - float(validation_brier), auc_drop=auc_drop, rolling_brier=rolling,
    )
