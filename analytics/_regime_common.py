"""Shared machinery of the regime models: validation, state ordering, labelling, the forward
filter, the persistence rule, the walk-forward driver and the result objects.

Conventions (hold for every method):

* Input is a ``pandas.Series`` of **log returns** (``log(close_t / close_{t-1})``) with a
  strictly increasing, timezone-aware ``DatetimeIndex``. NaN rows are dropped (and counted in
  ``RegimeResult.n_dropped``); infinite values are rejected.
* States are ordered after every fit by a fixed rule (return volatility ascending, ties by
  mean descending), so state ``0`` is always the calmest one and labels never swap between
  refits.
* Every probability reported is *filtered*: ``P(state_t | r_1..r_t)`` under parameters fitted
  on bars strictly before the current refit date.
"""

from __future__ import annotations

import hashlib
import math
import threading
import warnings
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from analytics.errors import EstimationWarning, InsufficientDataError

if TYPE_CHECKING:  # imported where used, so that agents.config does not load pandas
    import pandas as pd

__all__ = [
    "REGIME_LABELS",
    "REGIME_FAMILIES",
    "UNAVAILABLE",
    "PersistenceRule",
    "RegimeFit",
    "RegimeResult",
    "apply_persistence",
    "expected_durations",
    "forward_filter",
    "label_states",
    "order_states",
    "walk_forward_regimes",
]

#: Fixed label vocabulary. Every regime label RegimeDesk reports is one of these.
REGIME_LABELS: tuple[str, ...] = ("calm", "bull", "bear", "high_volatility")
#: Label -> family. ``risk_on`` = calm or bull, ``risk_off`` = bear or high volatility.
REGIME_FAMILIES: dict[str, str] = {
    "calm": "risk_on",
    "bull": "risk_on",
    "bear": "risk_off",
    "high_volatility": "risk_off",
}
#: Label used when a timeframe has no data (never invented).
UNAVAILABLE = "unavailable"

# Transition probabilities are floored at this value inside the filter so that no state
# becomes unreachable: an EM fit can drive an entry to exactly 0, after which one surprising
# bar would make the filter divide by zero.
_TRANSMAT_FLOOR = 1e-10


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_float(value: Any, name: str, lo: float, hi: float, *, lo_open: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a float, got {type(value).__name__}")
    v = float(value)
    ok = (v > lo if lo_open else v >= lo) and v <= hi and math.isfinite(v)
    if not ok:
        bracket = "(" if lo_open else "["
        raise ValueError(f"{name} must be in {bracket}{lo}, {hi}], got {value}")
    return v


def _check_scale(value: Any, name: str = "scale") -> None:
    if isinstance(value, str):
        if value != "auto":
            raise ValueError(f"{name} must be a positive float or 'auto', got {value!r}")
        return
    _check_float(value, name, 0.0, 1e12)


def _resolve_scale(scale: float | str, r_train: np.ndarray) -> float:
    """Multiplier for the returns of a whole run, from its *first* training window.

    ``'auto'`` is the power of ten that brings the training standard deviation into
    [0.3, 3): x100 for daily and weekly returns, x1000 for 5-minute returns. arch and
    statsmodels optimise reliably on that range, not on raw log returns.
    """
    sd = float(np.std(r_train))
    if not sd > 0:
        raise InsufficientDataError("returns are constant over the training window; no regimes to fit")
    if scale == "auto":
        return float(10.0 ** round(-math.log10(sd)))
    return float(scale)


def _validate_returns(returns: Any, name: str = "returns") -> tuple[np.ndarray, pd.DatetimeIndex, int]:
    """Return (values, dates, n_dropped) after the boundary checks shared by all methods."""
    import pandas as pd

    if not isinstance(returns, pd.Series):
        raise TypeError(f"{name} must be a pandas Series of log returns, got {type(returns).__name__}")
    if not isinstance(returns.index, pd.DatetimeIndex):
        raise TypeError(f"{name} must have a DatetimeIndex, got {type(returns.index).__name__}")
    if returns.index.tz is None:
        raise ValueError(f"{name} must have a timezone-aware DatetimeIndex (localize it first)")
    if not returns.index.is_monotonic_increasing or returns.index.has_duplicates:
        raise ValueError(f"{name} index must be strictly increasing (sorted, no duplicate dates)")
    if returns.dtype == bool or not pd.api.types.is_numeric_dtype(returns.dtype):
        raise TypeError(f"{name} must have a numeric dtype, got {returns.dtype}")
    values = returns.to_numpy(dtype=float, na_value=np.nan)
    if np.isinf(values).any():
        raise ValueError(f"{name} contains infinite values")
    keep = ~np.isnan(values)
    n_dropped = int((~keep).sum())
    values = values[keep]
    dates = returns.index[keep]
    if values.size == 0:
        raise InsufficientDataError(f"{name} has no finite observations")
    return values, dates, n_dropped


# --------------------------------------------------------------------------------------
# Ordering, labelling, transition helpers
# --------------------------------------------------------------------------------------


def order_states(means: np.ndarray, vols: np.ndarray) -> np.ndarray:
    """Permutation that sorts states by volatility ascending, then mean descending.

    Parameters
    ----------
    means, vols : ndarray, shape (k,)
        Per-bar mean and standard deviation of the log return in each state.

    Returns
    -------
    ndarray of int, shape (k,)
        ``perm`` such that ordered state ``i`` is original state ``perm[i]``.
    """
    means = np.asarray(means, dtype=float)
    vols = np.asarray(vols, dtype=float)
    if means.shape != vols.shape or means.ndim != 1:
        raise ValueError("means and vols must be 1-D arrays of the same length")
    # np.lexsort sorts by the last key first.
    return np.lexsort((-means, vols)).astype(int)


def label_states(
    means: np.ndarray,
    vols: np.ndarray,
    periods_per_year: float = 252.0,
    drift_sharpe: float = 0.5,
) -> tuple[str, ...]:
    """Map volatility-ordered states to labels of :data:`REGIME_LABELS`.

    The family is fixed by the volatility rank, the name inside the family by the state's
    annualised drift-to-volatility ratio ``s = mean / vol * sqrt(periods_per_year)``:

    * lower half of the volatility ranking (``i < k // 2``) -> risk-on:
      ``'bull'`` if ``s >= drift_sharpe`` else ``'calm'``;
    * upper half (``i >= k - k // 2``) -> risk-off:
      ``'bear'`` if ``s <= -drift_sharpe`` else ``'high_volatility'``;
    * the middle state of an odd ``k``: ``'bear'`` if ``s <= -drift_sharpe``, else ``'bull'``
      if ``s >= drift_sharpe``, else ``'calm'``.

    Because the family depends only on the rank, a refit can rename a state inside its
    family (``'calm'`` <-> ``'bull'``) but never move the lowest-volatility state to
    risk-off or the highest one to risk-on.

    Parameters
    ----------
    means, vols : ndarray, shape (k,)
        Per-bar mean and standard deviation of the log return, already ordered by
        :func:`order_states`.
    periods_per_year : float, default 252
        Bars per year, used to annualise the drift ratio.
    drift_sharpe : float, default 0.5
        Dead band on the annualised drift ratio below which a state has "no drift".

    Returns
    -------
    tuple of str, length k
    """
    means = np.asarray(means, dtype=float)
    vols = np.asarray(vols, dtype=float)
    k = means.size
    if k < 2:
        raise ValueError("at least two states are needed to label regimes")
    if vols.shape != means.shape:
        raise ValueError("means and vols must have the same shape")
    if np.any(np.diff(vols) < 0):
        raise ValueError("states must be ordered by volatility ascending (use order_states)")
    s = means / np.maximum(vols, 1e-300) * math.sqrt(periods_per_year)
    half = k // 2
    out = []
    for i in range(k):
        if i < half:
            out.append("bull" if s[i] >= drift_sharpe else "calm")
        elif i >= k - half:
            out.append("bear" if s[i] <= -drift_sharpe else "high_volatility")
        elif s[i] <= -drift_sharpe:
            out.append("bear")
        elif s[i] >= drift_sharpe:
            out.append("bull")
        else:
            out.append("calm")
    return tuple(out)


def expected_durations(transmat: np.ndarray) -> np.ndarray:
    """Expected number of bars spent in each state per visit, ``1 / (1 - p_ii)``.

    Parameters
    ----------
    transmat : ndarray, shape (k, k)
        Row-stochastic transition matrix, ``transmat[i, j] = P(s_t = j | s_{t-1} = i)``.

    Returns
    -------
    ndarray, shape (k,)
        ``inf`` for an absorbing state.
    """
    p = np.clip(np.diag(np.asarray(transmat, dtype=float)), 0.0, 1.0)
    with np.errstate(divide="ignore"):
        return 1.0 / (1.0 - p)


def stationary_distribution(transmat: np.ndarray) -> np.ndarray:
    """Left eigenvector of the transition matrix for eigenvalue 1, normalised."""
    a = np.asarray(transmat, dtype=float)
    k = a.shape[0]
    # Solve pi (A - I) = 0 with sum(pi) = 1 as a least-squares system: robust when A is
    # nearly reducible, where an eigen-decomposition can return a complex pair.
    m = np.vstack([(a - np.eye(k)).T, np.ones(k)])
    b = np.zeros(k + 1)
    b[-1] = 1.0
    pi = np.linalg.lstsq(m, b, rcond=None)[0]
    pi = np.clip(pi, 0.0, None)
    s = pi.sum()
    return pi / s if s > 0 else np.full(k, 1.0 / k)


def _floor_transmat(transmat: np.ndarray) -> np.ndarray:
    a = np.maximum(np.asarray(transmat, dtype=float), _TRANSMAT_FLOOR)
    return a / a.sum(axis=1, keepdims=True)


def forward_filter(
    log_likelihoods: np.ndarray,
    transmat: np.ndarray,
    prior: np.ndarray,
) -> tuple[np.ndarray, float]:
    """Hamilton/forward filter: ``P(s_t | y_1..y_t)`` for a hidden Markov chain.

    Parameters
    ----------
    log_likelihoods : ndarray, shape (n, k)
        ``log p(y_t | s_t = j)`` for each bar and state.
    transmat : ndarray, shape (k, k)
        Row-stochastic, ``transmat[i, j] = P(s_t = j | s_{t-1} = i)``.
    prior : ndarray, shape (k,)
        Distribution of the state at the bar *before* the first row (the pre-sample filtered
        probability; the stationary distribution when there is no history). The first
        predicted probability is ``prior @ transmat``, as in statsmodels'
        ``initialize_known``.

    Returns
    -------
    filtered : ndarray, shape (n, k)
        Filtered probabilities; row ``t`` uses rows ``0..t`` only.
    loglik : float
        ``sum_t log p(y_t | y_1..y_{t-1})``.

    Notes
    -----
    Scaled recursion in probability space with a per-row shift of the log-likelihoods, so it
    neither underflows nor needs ``logsumexp``. Transition entries are floored at 1e-10.
    """
    ll = np.asarray(log_likelihoods, dtype=float)
    if ll.ndim != 2:
        raise ValueError("log_likelihoods must be a 2-D array (n, k)")
    n, k = ll.shape
    a = _floor_transmat(transmat)
    if a.shape != (k, k):
        raise ValueError("transmat must be (k, k) with k = log_likelihoods.shape[1]")
    p = np.asarray(prior, dtype=float)
    if p.shape != (k,) or not np.all(np.isfinite(p)) or p.min() < 0 or p.sum() <= 0:
        raise ValueError("prior must be a length-k probability vector")
    p = p / p.sum()
    shift = ll.max(axis=1, keepdims=True)
    shift = np.where(np.isfinite(shift), shift, 0.0)
    lik = np.exp(ll - shift)
    out = np.empty((n, k))
    total = 0.0
    for t in range(n):
        f = (p @ a) * lik[t]
        c = f.sum()
        if not (c > 0.0 and math.isfinite(c)):
            # Every state with predicted mass gave this bar zero density (extreme outlier):
            # keep the prediction instead of producing NaNs.
            f = p @ a
            c = 1.0
        p = f / c
        out[t] = p
        total += math.log(c) + float(shift[t, 0])
    return out, total


# --------------------------------------------------------------------------------------
# Persistence
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PersistenceRule:
    """Causal switching rule that stops reported regimes from flickering.

    The reported state changes from ``c`` to ``j != c`` only after the filtered probability
    of ``j`` has been at least ``threshold`` for ``confirm_bars`` consecutive bars (the same
    ``j`` each bar). With two states and ``threshold = 0.8`` this is a hysteresis band: to
    leave state ``c`` its probability must fall to 0.2 or below, not merely below 0.5.

    Parameters
    ----------
    threshold : float, default 0.8
        Probability the challenger must reach; in (0, 1].
    confirm_bars : int, default 5
        Consecutive bars at or above ``threshold`` (a trading week on daily bars).
    """

    threshold: float = 0.8
    confirm_bars: int = 5

    def __post_init__(self) -> None:
        _check_float(self.threshold, "threshold", 0.0, 1.0)
        _check_int(self.confirm_bars, "confirm_bars", 1)


def apply_persistence(
    probabilities: np.ndarray,
    rule: PersistenceRule | None = None,
    initial_state: int | None = None,
) -> np.ndarray:
    """Apply a :class:`PersistenceRule` to a path of filtered probabilities, causally.

    Parameters
    ----------
    probabilities : ndarray, shape (n, k)
        Filtered state probabilities.
    rule : PersistenceRule, optional
        Defaults to ``PersistenceRule()``.
    initial_state : int, optional
        Reported state before the first row; defaults to the argmax of the first row.

    Returns
    -------
    ndarray of int, shape (n,)
        Reported state per bar; element ``t`` depends on rows ``0..t`` only.
    """
    rule = PersistenceRule() if rule is None else rule
    if not isinstance(rule, PersistenceRule):
        raise TypeError("rule must be a PersistenceRule")
    p = np.asarray(probabilities, dtype=float)
    if p.ndim != 2 or p.shape[1] < 1:
        raise ValueError("probabilities must be a 2-D array (n, k)")
    n, k = p.shape
    out = np.empty(n, dtype=int)
    if n == 0:
        return out
    if initial_state is None:
        current = int(np.argmax(p[0]))
    else:
        current = _check_int(initial_state, "initial_state", 0)
        if current >= k:
            raise ValueError(f"initial_state must be < {k}")
    return _persist(p, rule, current, -1, 0)[0]


def _persist(p: np.ndarray, rule: PersistenceRule, current: int, challenger: int, run: int
             ) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The scan of :func:`apply_persistence` from a given state; returns the states and the end state.

    Scanning rows ``0..a-1`` and then ``a..n-1`` from the state the first scan ends in gives
    exactly the states of one scan over ``0..n-1``.
    """
    out = np.empty(len(p), dtype=int)
    threshold, confirm = rule.threshold, rule.confirm_bars
    # Plain Python floats: a per-row numpy argmax costs more than the whole comparison. The
    # challenger is the first most probable other state; a NaN among the others confirms
    # nothing (np.argmax would pick the NaN, which fails the threshold).
    for t, row in enumerate(p.tolist()):
        j, best = -1, -math.inf
        for s, v in enumerate(row):
            if s == current:
                continue
            if v != v:
                best = v
                break
            if j < 0 or v > best:
                j, best = s, v
        if best >= threshold:
            run = run + 1 if j == challenger else 1
            challenger = j
            if run >= confirm:
                current, challenger, run = j, -1, 0
        else:
            challenger, run = -1, 0
        out[t] = current
    return out, (current, challenger, run)


# --------------------------------------------------------------------------------------
# Model protocol (implemented by the private model modules)
# --------------------------------------------------------------------------------------


class _Fitted(Protocol):
    """One fitted parameter set, with states already in the canonical order."""

    means: np.ndarray  # (k,) per-bar log-return mean
    vols: np.ndarray  # (k,) per-bar log-return std
    transmat: np.ndarray  # (k, k) row-stochastic
    converged: bool
    n_iter: int
    loglik: float

    def filter(self, ctx: Any, train_lo: int, start: int, stop: int, prior: np.ndarray | None) -> np.ndarray:
        """Filtered probabilities for bars ``start..stop-1``.

        ``prior`` is the filtered distribution at bar ``start - 1`` (ordered states) carried
        from the previous parameter set; ``None`` on the first block, in which case the
        model warms up on ``train_lo..start-1`` itself. A model may ignore it and re-run its
        filter from ``train_lo`` (Markov, GARCH); either way only bars ``< stop`` are used.
        """
        ...


class _RegimeModel(Protocol):
    name: str
    n_states: int

    def _prepare(self, r: np.ndarray) -> Any: ...

    def _min_train(self) -> int: ...

    def _fit(self, ctx: Any, lo: int, hi: int, previous: Any, seed: int) -> _Fitted: ...


# --------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


# eq=False: the fields are numpy arrays, whose == is element-wise; identity equality is the
# only unambiguous one.
@dataclass(frozen=True, eq=False)
class RegimeFit:
    """Record of one (re)fit in a walk-forward run.

    Attributes
    ----------
    first_date : pandas.Timestamp
        First bar filtered with these parameters.
    train_start, train_end : pandas.Timestamp
        First and last bar of the training window (``train_end < first_date``).
    n_train : int
        Training bars.
    converged : bool
        Whether the optimiser stopped on its tolerance (not on the iteration cap).
    n_iter : int
        Optimiser iterations (EM iterations for the HMM, BFGS gradient evaluations for the
        Markov-switching model, SLSQP iterations for GARCH).
    loglik : float
        Training log-likelihood in the model's own units (scaled features / returns x100).
    state_means, state_vols : ndarray, shape (k,)
        Per-bar log-return mean and standard deviation of each ordered state.
    transition_matrix : ndarray, shape (k, k)
    state_labels : tuple of str
    n_regimes : int
        Regimes the fit found in its training window: ``k``, or 1 when the model tested the
        window against one regime and one explained it (``GaussianHMMRegime``'s
        ``one_regime_test``; the parameters are then those the model filters that block with).
    """

    first_date: pd.Timestamp
    train_start: pd.Timestamp
    train_end: pd.Timestamp
    n_train: int
    converged: bool
    n_iter: int
    loglik: float
    state_means: np.ndarray
    state_vols: np.ndarray
    transition_matrix: np.ndarray
    state_labels: tuple[str, ...]
    n_regimes: int

    @property
    def expected_durations(self) -> np.ndarray:
        """Expected bars per visit of each state, ``1 / (1 - p_ii)``."""
        return expected_durations(self.transition_matrix)


@dataclass(frozen=True, eq=False)
class RegimeResult:
    """Causal walk-forward regime path of one method on one series.

    Only out-of-sample bars are reported: the first ``min_train`` bars are used to fit the
    first model and get no regime. Arrays are read-only.

    Attributes
    ----------
    method : str
        ``'hmm'``, ``'markov'`` or ``'garch'``.
    dates : pandas.DatetimeIndex, length n
    probabilities : ndarray, shape (n, k)
        Filtered probabilities of the ordered states.
    states : ndarray of int, shape (n,)
        ``argmax`` of the filtered probabilities (no persistence).
    persistent_states : ndarray of int, shape (n,)
        States after the :class:`PersistenceRule`; these drive ``labels``.
    labels : ndarray of str, shape (n,)
        Reported label per bar: label of the persistent state under the parameters in force.
    raw_labels : ndarray of str, shape (n,)
        Label of ``states`` (no persistence).
    fit_index : ndarray of int, shape (n,)
        Index into ``fits`` of the parameter set that filtered each bar.
    fits : tuple of RegimeFit
    state_labels : tuple of str
        Labels of the ordered states under the latest fit.
    transition_matrix : ndarray, shape (k, k)
        Latest fit.
    expected_durations : ndarray, shape (k,)
        Latest fit, in bars.
    state_means, state_vols : ndarray, shape (k,)
        Latest fit, per-bar log-return units.
    converged : bool
        True when every fit converged.
    n_iter : int
        Iterations of the latest fit.
    loglik : float
        Training log-likelihood of the latest fit.
    n_states : int
    persistence : PersistenceRule
    min_train : int
    refit_every : int
        Bars between refits (the series length when fitted once).
    max_train : int or None
    periods_per_year : float
    n_dropped : int
        NaN input rows dropped before fitting.
    """

    method: str
    dates: pd.DatetimeIndex
    probabilities: np.ndarray
    states: np.ndarray
    persistent_states: np.ndarray
    labels: np.ndarray
    raw_labels: np.ndarray
    fit_index: np.ndarray
    fits: tuple[RegimeFit, ...]
    state_labels: tuple[str, ...]
    transition_matrix: np.ndarray
    expected_durations: np.ndarray
    state_means: np.ndarray
    state_vols: np.ndarray
    converged: bool
    n_iter: int
    loglik: float
    n_states: int
    persistence: PersistenceRule
    min_train: int
    refit_every: int
    max_train: int | None
    periods_per_year: float
    n_dropped: int = 0

    # -- convenience views -----------------------------------------------------------

    @property
    def current_label(self) -> str:
        """Reported label of the last bar."""
        return str(self.labels[-1])

    @property
    def current_state(self) -> int:
        """Reported (persistent) state of the last bar."""
        return int(self.persistent_states[-1])

    @property
    def current_probability(self) -> float:
        """Filtered probability of the reported state on the last bar."""
        return float(self.probabilities[-1, self.current_state])

    @property
    def families(self) -> np.ndarray:
        """Family (``'risk_on'``/``'risk_off'``) of each reported label."""
        return np.array([REGIME_FAMILIES[x] for x in self.labels])

    @property
    def n_switches(self) -> int:
        """Changes of the reported label over the path."""
        return int(np.count_nonzero(self.labels[1:] != self.labels[:-1]))

    @property
    def switches_per_year(self) -> float:
        """Reported-label changes per year of out-of-sample bars."""
        years = len(self.labels) / self.periods_per_year
        return self.n_switches / years if years > 0 else float("nan")

    def label_probabilities(self) -> pd.DataFrame:
        """Filtered probability of each label of :data:`REGIME_LABELS` per bar.

        States sharing a label under the parameters in force have their probabilities
        summed. Returns a frame indexed by ``dates`` with one column per label.
        """
        import pandas as pd

        out = np.zeros((len(self.dates), len(REGIME_LABELS)))
        col = {lab: i for i, lab in enumerate(REGIME_LABELS)}
        if self.fits:
            # Column of each (fit, state); rows whose fit index names no fit stay 0.
            cols = np.array([[col[lab] for lab in fit.state_labels] for fit in self.fits])
            rows = np.flatnonzero((self.fit_index >= 0) & (self.fit_index < len(self.fits)))
            k = cols.shape[1]
            # np.add.at adds in the order given: state 0, 1, ... of each row, as a loop would.
            np.add.at(out, (np.repeat(rows, k), cols[self.fit_index[rows]].ravel()),
                      self.probabilities[rows, :k].ravel())
        return pd.DataFrame(out, index=self.dates, columns=list(REGIME_LABELS))

    def to_frame(self) -> pd.DataFrame:
        """Per-bar frame: probabilities ``p0..p{k-1}``, state, persistent state, labels."""
        import pandas as pd

        df = pd.DataFrame(self.probabilities, index=self.dates, columns=[f"p{i}" for i in range(self.n_states)])
        df["state"] = self.states
        df["persistent_state"] = self.persistent_states
        df["raw_label"] = self.raw_labels
        df["label"] = self.labels
        df["family"] = self.families
        return df

    def summary(self) -> dict[str, Any]:
        """Small JSON-serialisable view of the current regime (for the shared graph state)."""
        return {
            "method": self.method,
            "as_of": self.dates[-1].isoformat(),
            "label": self.current_label,
            "family": REGIME_FAMILIES[self.current_label],
            "state": self.current_state,
            "probability": self.current_probability,
            "probabilities": [float(x) for x in self.probabilities[-1]],
            "state_labels": list(self.state_labels),
            "state_means": [float(x) for x in self.state_means],
            "state_vols": [float(x) for x in self.state_vols],
            "transition_matrix": [[float(x) for x in row] for row in self.transition_matrix],
            "expected_durations": [float(x) for x in self.expected_durations],
            "converged": self.converged,
            "n_regimes": self.fits[-1].n_regimes if self.fits else self.n_states,
            "n_fits": len(self.fits),
            "n_switches": self.n_switches,
            "switches_per_year": self.switches_per_year,
        }


# --------------------------------------------------------------------------------------
# Walk-forward driver
# --------------------------------------------------------------------------------------


#: Part of every fit-cache key; bump it when a model's estimation changes so that cached
#: parameter sets from older code are not reused.
_FIT_CACHE_FORMAT = "regimedesk-fit-v1"


@dataclass(frozen=True, eq=False)
class _Prefix:
    """The finished blocks of a walk-forward run, as the loop leaves them at their end."""

    probs: np.ndarray
    fit_index: np.ndarray
    fits: tuple[RegimeFit, ...]
    carry: np.ndarray
    fitted: Any
    digest: Any  # hashlib state after the returns up to the last finished refit
    hashed: int
    persistence: tuple[np.ndarray, tuple[int, int, int]] | None = None


class _PrefixStore:
    """A thread-safe LRU of :class:`_Prefix` by key (memory only; rebuilt from the fit cache).

    384 entries: three timeframes of 128 symbols, at most about 0.2 MB each for 20 years of
    daily bars. A series pushed out is rebuilt from the fit cache on its next run.
    """

    def __init__(self, size: int = 384) -> None:
        self._items: dict[str, _Prefix] = {}
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: str) -> _Prefix | None:
        with self._lock:
            item = self._items.pop(key, None)
            if item is not None:
                self._items[key] = item  # most recent last
            return item

    def put(self, key: str, item: _Prefix) -> None:
        with self._lock:
            self._items.pop(key, None)
            self._items[key] = item
            while len(self._items) > self._size:
                del self._items[next(iter(self._items))]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


#: Finished walk-forward blocks by a digest of all they depend on (see walk_forward_regimes).
_PREFIXES = _PrefixStore()


def _prefix_key(header: bytes, r: np.ndarray, dates: pd.DatetimeIndex, stop: int, persistence: PersistenceRule,
                periods_per_year: float, drift_sharpe: float) -> str:
    h = hashlib.sha256(header + b"|prefix|")
    h.update(f"{persistence!r}|{periods_per_year!r}|{drift_sharpe!r}|{stop}".encode())
    h.update(r[:stop].tobytes())
    h.update(dates.asi8[:stop].tobytes())
    return h.hexdigest()


def _persistent_path(probs: np.ndarray, rule: PersistenceRule, prefix_key: str | None, end: int) -> np.ndarray:
    """:func:`apply_persistence` over ``probs``, resuming after row ``end`` from the stored prefix when there is one."""
    if prefix_key is None or end <= 0:
        return apply_persistence(probs, rule)
    prefix = _PREFIXES.get(prefix_key)
    if prefix is None:
        return apply_persistence(probs, rule)
    if prefix.persistence is None:
        head, state = _persist(probs[:end], rule, int(np.argmax(probs[0])), -1, 0)
        object.__setattr__(prefix, "persistence", (head, state))
    head, state = prefix.persistence
    tail, _ = _persist(probs[end:], rule, *state)
    return np.concatenate([head, tail])


_LABELS: dict[int, tuple[Any, tuple[tuple[float, float], tuple[str, ...]]]] = {}
_LABELS_LOCK = threading.Lock()


def _labels(fitted: Any, periods_per_year: float, drift_sharpe: float) -> tuple[str, ...]:
    """:func:`label_states` of a fitted parameter set, remembered per object (refits are reused across runs)."""
    entry = _LABELS.get(id(fitted))
    if entry is not None and entry[0] is fitted and entry[1][0] == (periods_per_year, drift_sharpe):
        return entry[1][1]
    labels = label_states(fitted.means, fitted.vols, periods_per_year, drift_sharpe)
    if getattr(fitted, "collapse_labels", False):
        # One regime and no earlier fit to filter with: every state carries the calmest state's label.
        labels = (labels[0],) * len(labels)
    with _LABELS_LOCK:
        if len(_LABELS) > 100_000:
            _LABELS.clear()
        # The entry holds the object, so its id cannot be reused by another while it is here.
        _LABELS[id(fitted)] = (fitted, ((periods_per_year, drift_sharpe), labels))
    return labels


def _refit_seed(seed: int, j: int) -> int:
    # Each refit gets its own stream; derived from (seed, refit number) only, so a prefix of
    # the data sees exactly the same seeds as the full history.
    return int(np.random.SeedSequence([seed, j]).generate_state(1)[0])


def walk_forward_regimes(
    returns: pd.Series,
    model: _RegimeModel,
    *,
    min_train: int = 504,
    refit_every: int | None = 21,
    max_train: int | None = None,
    persistence: PersistenceRule | None = None,
    periods_per_year: float = 252.0,
    drift_sharpe: float = 0.5,
    seed: int = 0,
    fit_cache: MutableMapping[str, Any] | None = None,
) -> RegimeResult:
    """Causal walk-forward regime path: refit on a schedule, filter in between.

    Refit ``j`` happens before bar ``m_j = min_train + j * refit_every`` and uses bars
    ``max(0, m_j - max_train) .. m_j - 1`` only; its parameters filter bars
    ``m_j .. m_{j+1} - 1``. The filtered distribution is carried across refits (states are
    in canonical order, so they correspond), exactly as a live system that swaps parameters
    at each refit would. Hence the regime at bar ``t`` is a function of bars ``0..t`` only
    (prefix invariance).

    Parameters
    ----------
    returns : pandas.Series
        Log returns with a tz-aware, strictly increasing ``DatetimeIndex``. NaN rows are
        dropped; see the module notes.
    model : GaussianHMMRegime, MarkovSwitchingRegime or GarchVolatilityRegime
        Hyper-parameters of the method.
    min_train : int, default 504
        Bars in the first training window (two years of daily bars).
    refit_every : int or None, default 21
        Bars between refits (monthly on daily bars). ``None`` fits once on the first
        ``min_train`` bars and filters the rest with those parameters.
    max_train : int or None, default None
        Rolling training window length; ``None`` is an expanding window.
    persistence : PersistenceRule, optional
        Defaults to ``PersistenceRule()`` (0.8 for 5 bars).
    periods_per_year : float, default 252
        Bars per year (labelling and switches-per-year).
    drift_sharpe : float, default 0.5
        Drift dead band of :func:`label_states`.
    seed : int, default 0
        Root seed of every random restart.
    fit_cache : mutable mapping, optional
        Fitted parameter sets keyed by a digest of everything a refit depends on: the
        model's hyper-parameters, the schedule, the seed and the finite returns up to the
        refit (which also fix the warm start from the previous refit). A refit whose key is
        present is taken from the mapping instead of being estimated again, so a live
        system that sees one more bar re-estimates only at the scheduled refits, and the
        result is identical to a run without the cache.

    Returns
    -------
    RegimeResult

    Raises
    ------
    InsufficientDataError
        Fewer than ``min_train + 1`` finite bars, or a constant training window.
    """
    for attr in ("_prepare", "_fit", "_min_train", "n_states", "name"):
        if not hasattr(model, attr):
            raise TypeError("model must be a regime model such as GaussianHMMRegime()")
    persistence = PersistenceRule() if persistence is None else persistence
    if not isinstance(persistence, PersistenceRule):
        raise TypeError("persistence must be a PersistenceRule")
    min_train = _check_int(min_train, "min_train", model._min_train())
    if refit_every is not None:
        refit_every = _check_int(refit_every, "refit_every", 1)
    if max_train is not None:
        max_train = _check_int(max_train, "max_train", min_train)
    periods_per_year = _check_float(periods_per_year, "periods_per_year", 0.0, 1e9)
    drift_sharpe = _check_float(drift_sharpe, "drift_sharpe", 0.0, 1e9, lo_open=False)
    seed = _check_int(seed, "seed", 0)

    r, dates, n_dropped = _validate_returns(returns)
    n = r.size
    if n <= min_train:
        raise InsufficientDataError(
            f"returns has {n} finite bars; need more than min_train={min_train} to produce a causal regime"
        )
    ctx = model._prepare(r)
    k = model.n_states
    step = refit_every if refit_every is not None else n
    refits = list(range(min_train, n, step))

    n_out = n - min_train
    probs = np.empty((n_out, k))
    fit_index = np.empty(n_out, dtype=int)
    fits: list[RegimeFit] = []
    previous = None
    carry: np.ndarray | None = None
    header = f"{_FIT_CACHE_FORMAT}|{model!r}|{seed}|{min_train}|{refit_every}|{max_train}".encode()
    digest = hashlib.sha256(header)
    hashed = 0
    los = [0 if max_train is None else max(0, m - max_train) for m in refits]
    # The finished blocks (all but the last) of an earlier call on the same data up to their
    # end are taken whole from memory: a run that adds a bar filters only the open block.
    done = len(refits) - 1  # blocks before the last one
    prefix_key = None
    first = 0
    if fit_cache is not None and done > 0:
        prefix_key = _prefix_key(header, r, dates, refits[done], persistence, periods_per_year, drift_sharpe)
        prefix = _PREFIXES.get(prefix_key)
        if prefix is not None:
            end = refits[done] - min_train
            probs[:end], fit_index[:end] = prefix.probs, prefix.fit_index
            fits = list(prefix.fits)
            carry, previous, digest, hashed = prefix.carry, prefix.fitted, prefix.digest.copy(), prefix.hashed
            first = done
    # Timestamps boxed in one batch each: one by one they cost more than a cached refit.
    first_dates, train_starts = list(dates[refits[first:]]), list(dates[los[first:]])
    train_ends = list(dates[[m - 1 for m in refits[first:]]])
    for j in range(first, len(refits)):
        m = refits[j]
        lo = los[j]
        stop = refits[j + 1] if j + 1 < len(refits) else n
        fitted = None
        if fit_cache is not None:
            digest.update(r[hashed:m].tobytes())
            hashed = m
            key = digest.hexdigest()
            fitted = fit_cache.get(key)
        if fitted is None:
            fitted = model._fit(ctx, lo, m, previous, _refit_seed(seed, j))
            if fit_cache is not None:
                fit_cache[key] = fitted
        block = None
        if fit_cache is not None and stop < n:
            # A finished block (its successor refit exists) depends on the returns up to its
            # end only: cached too, so one more bar filters just the open block.
            block_digest = digest.copy()
            block_digest.update(b"|block|" + r[m:stop].tobytes())
            block_key = block_digest.hexdigest()
            block = fit_cache.get(block_key)
        if block is None:
            block = fitted.filter(ctx, lo, m, stop, carry)
            if fit_cache is not None and stop < n:
                fit_cache[block_key] = block
        probs[m - min_train : stop - min_train] = block
        fit_index[m - min_train : stop - min_train] = j
        carry = block[-1]
        previous = fitted
        labels = _labels(fitted, periods_per_year, drift_sharpe)
        fits.append(
            RegimeFit(
                first_date=first_dates[j - first],
                train_start=train_starts[j - first],
                train_end=train_ends[j - first],
                n_train=m - lo,
                converged=bool(fitted.converged),
                n_iter=int(fitted.n_iter),
                loglik=float(fitted.loglik),
                state_means=_frozen(fitted.means),
                state_vols=_frozen(fitted.vols),
                transition_matrix=_frozen(fitted.transmat),
                state_labels=labels,
                n_regimes=int(getattr(fitted, "n_regimes", k)),
            )
        )
        if prefix_key is not None and j == done - 1:
            end = stop - min_train
            _PREFIXES.put(prefix_key, _Prefix(probs[:end].copy(), fit_index[:end].copy(), tuple(fits), carry,
                                              fitted, digest.copy(), hashed))

    not_conv = [f for f in fits if not f.converged]
    if not_conv:
        warnings.warn(
            f"{model.name}: {len(not_conv)} of {len(fits)} fits did not converge "
            f"(first at {not_conv[0].first_date.date()}); see RegimeResult.fits",
            EstimationWarning,
            stacklevel=2,
        )

    states = np.argmax(probs, axis=1)
    persistent = _persistent_path(probs, persistence, prefix_key, refits[done] - min_train if done > 0 else 0)
    label_table = np.array([f.state_labels for f in fits], dtype=object)
    labels = label_table[fit_index, persistent].astype(str)
    raw_labels = label_table[fit_index, states].astype(str)
    last = fits[-1]
    return RegimeResult(
        method=model.name,
        dates=dates[min_train:],
        probabilities=_frozen(probs),
        states=_frozen(states),
        persistent_states=_frozen(persistent),
        labels=_frozen(labels),
        raw_labels=_frozen(raw_labels),
        fit_index=_frozen(fit_index),
        fits=tuple(fits),
        state_labels=last.state_labels,
        transition_matrix=last.transition_matrix,
        expected_durations=_frozen(expected_durations(last.transition_matrix)),
        state_means=last.state_means,
        state_vols=last.state_vols,
        converged=not not_conv,
        n_iter=last.n_iter,
        loglik=last.loglik,
        n_states=k,
        persistence=persistence,
        min_train=min_train,
        refit_every=step,
        max_train=max_train,
        periods_per_year=periods_per_year,
        n_dropped=n_dropped,
    )
