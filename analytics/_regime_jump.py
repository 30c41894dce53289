"""Statistical jump model regimes (Nystrup et al. 2020; Shu, Yu and Mulvey 2024).

Features per bar ``t`` (all causal, from the log returns ``r_s``, ``s <= t``; pandas
``ewm(halflife=h, adjust=True)`` weights), by default those of Shu, Yu and Mulvey (2024):

* the log EWMA downside deviation ``log d_t`` (half-life 10), ``d_t^2`` the EWMA of
  ``min(r_s, 0)^2``;
* the Sortino-like ratio ``m_t / d_t`` at half-lives 20 and 60, ``m_t`` the EWMA return.

They are standardised with the mean and standard deviation of the training window only and
clipped to +-3 standard deviations. The jump model fits ``k`` centres ``mu_j`` and a state
path by coordinate descent on

    sum_t 0.5 * ||z_t - mu_{s_t}||^2 + lambda * #{t : s_t != s_{t-1}}

(E step: the exact dynamic programme over paths; M step: centres = state means), from several
k-means++ starts, best objective kept. The jumpmodels package (Shu, Yu and Mulvey) defines the
same estimator and is the reference of the tests; the project runs its own implementation
because the walk-forward penalty choice needs thousands of fits and the package's per-row numpy
dynamic programme makes each one six to eight times slower (ten starts on 2,772 daily bars:
0.8-0.9 s against 0.10-0.15 s, same optimum).

Filtering is the *online* dynamic programme (jumpmodels' ``predict_online``): the state at bar
``t`` is the last state of the cheapest path over bars ``train_lo..t`` under the fitted
centres and penalty, so it uses bars up to ``t`` only. The "probabilities" are one-hot rows of
that state (the jump model gives hard states; they are not posteriors).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.signal import lfilter

from analytics._regime_common import _check_float, _check_int, label_states, order_states
from analytics.errors import InsufficientDataError

__all__ = ["FEATURE_KINDS", "JumpModelRegime", "jump_features"]

_CLIP = 3.0  # standardised features are clipped to +-3 training standard deviations
_DD_FLOOR = 1e-8  # downside deviation floor (a run of positive returns has d_t = 0)


def _ewma(x: np.ndarray, halflife: float) -> np.ndarray:
    """Causal EWMA with pandas ``adjust=True`` weights."""
    w = 0.5 ** (1.0 / halflife)
    num = lfilter([1.0], [1.0, -w], x)
    den = lfilter([1.0], [1.0, -w], np.ones_like(x))
    return num / den


#: Feature kinds of :func:`jump_features`.
FEATURE_KINDS = ("ret", "log_dd", "sortino")


def jump_features(r: np.ndarray, features: tuple[tuple[str, float], ...]) -> np.ndarray:
    """Unscaled jump-model features of a log-return array, shape ``(n, len(features))``.

    Each ``(kind, halflife)`` is one column: ``'ret'`` the EWMA return ``m_t``, ``'log_dd'``
    the log EWMA downside deviation ``log d_t``, ``'sortino'`` the ratio ``m_t / d_t``.
    Row ``t`` depends on ``r[0..t]`` only.
    """
    down2 = np.minimum(r, 0.0) ** 2
    cols = []
    for kind, h in features:
        m = _ewma(r, h)
        d = np.maximum(np.sqrt(_ewma(down2, h)), _DD_FLOOR)
        cols.append(m if kind == "ret" else (np.log(d) if kind == "log_dd" else m / d))
    return np.column_stack(cols)


def _losses(z: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """``0.5 * ||z_t - mu_j||^2`` for every bar and state, shape (n, k)."""
    dev = z[:, None, :] - centres[None, :, :]
    return 0.5 * np.einsum("nkf,nkf->nk", dev, dev)


def _online_states(loss: np.ndarray, penalty: float) -> np.ndarray:
    """State minimising the dynamic-programme value at each bar (the online assignment).

    ``V_0 = L_0``, ``V_t(j) = L_t(j) + min(V_{t-1}(j), min_i V_{t-1}(i) + penalty)``; the state
    at ``t`` is ``argmin_j V_t(j)`` (first index on ties), a function of rows ``0..t``.
    """
    n, k = loss.shape
    out = np.empty(n, dtype=int)
    if n == 0:
        return out
    rows = loss.tolist()
    if k == 2:
        # With two states only the difference d = V(1) - V(0) matters:
        # d_t = L_t(1) - L_t(0) + clip(d_{t-1}, -penalty, penalty).
        d = rows[0][1] - rows[0][0]
        flags = [d < 0.0]
        for a, b in rows[1:]:
            d = b - a + (penalty if d > penalty else (-penalty if d < -penalty else d))
            flags.append(d < 0.0)
        return np.asarray(flags, dtype=int)
    v = rows[0]
    out[0] = v.index(min(v))
    for t in range(1, n):
        m = min(v) + penalty
        v = [x + (p if p < m else m) for x, p in zip(rows[t], v, strict=True)]
        out[t] = v.index(min(v))
    return out


def _viterbi(loss: np.ndarray, penalty: float) -> tuple[np.ndarray, float]:
    """Cheapest state path and its objective (the E step; ties broken as jumpmodels' ``dp``)."""
    n, k = loss.shape
    rows = loss.tolist()
    path = np.empty(n, dtype=int)
    if k == 2:
        # v0 = V(0), d = V(1) - V(0); into state 0 the path stays iff d_{t-1} >= -penalty,
        # into state 1 iff d_{t-1} < penalty (the first index wins ties, as in jumpmodels).
        v0, d = rows[0][0], rows[0][1] - rows[0][0]
        ds = [d]
        for a, b in rows[1:]:
            v0 += a + (d + penalty if d + penalty < 0.0 else 0.0)
            d = b - a + (penalty if d > penalty else (-penalty if d < -penalty else d))
            ds.append(d)
        s = 1 if d < 0.0 else 0
        best = v0 + d if s else v0
        path[-1] = s
        for t in range(n - 1, 0, -1):
            prev = ds[t - 1]
            if s == 0 and prev < -penalty:
                s = 1
            elif s == 1 and prev >= penalty:
                s = 0
            path[t - 1] = s
        return path, float(best)
    stay = np.empty((n, k), dtype=bool)  # stay[t, j]: the best path into j at t was in j at t-1
    jump_from = np.empty(n, dtype=int)  # first argmin of V_{t-1}: where a jump comes from
    v = rows[0]
    for t in range(1, n):
        m = min(v)
        i = v.index(m)
        jump_from[t] = i
        m += penalty
        stay[t] = [p < m or (p == m and j <= i) for j, p in enumerate(v)]
        v = [x + (p if p <= m else m) for x, p in zip(rows[t], v, strict=True)]
    best = min(v)
    s = v.index(best)
    path[-1] = s
    for t in range(n - 1, 0, -1):
        if not stay[t, s]:
            s = int(jump_from[t])
        path[t - 1] = s
    return path, float(best)


def _kmeans_pp(z: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (Arthur and Vassilvitskii, 2007): ``k`` distinct rows of ``z``."""
    idx = [int(rng.integers(z.shape[0]))]
    d2 = np.sum((z - z[idx[0]]) ** 2, axis=1)
    for _ in range(1, k):
        tot = d2.sum()
        if not tot > 0:
            raise InsufficientDataError("the features take fewer distinct values than there are states")
        j = int(rng.choice(z.shape[0], p=d2 / tot))
        idx.append(j)
        d2 = np.minimum(d2, np.sum((z - z[j]) ** 2, axis=1))
    return z[idx].copy()


@dataclass(frozen=True)
class _Coordinate:
    centres: np.ndarray
    path: np.ndarray
    objective: float
    n_iter: int
    converged: bool


def _coordinate_descent(z: np.ndarray, centres: np.ndarray, penalty: float, max_iter: int, tol: float) -> _Coordinate:
    """Alternate the exact E step and the centre update until the path stops changing."""
    k = centres.shape[0]
    path, obj = _viterbi(_losses(z, centres), penalty)
    for it in range(1, max_iter + 1):
        counts = np.bincount(path, minlength=k)
        if np.any(counts == 0):
            # A state lost all its bars: keep its centre (unreachable in practice, costs nothing).
            new = centres.copy()
            for j in np.flatnonzero(counts):
                new[j] = z[path == j].mean(axis=0)
        else:
            new = np.stack([z[path == j].mean(axis=0) for j in range(k)])
        new_path, new_obj = _viterbi(_losses(z, new), penalty)
        if np.array_equal(new_path, path) or not obj - new_obj > tol:
            # Same path: the centres are a fixed point. Otherwise the objective stalled.
            return _Coordinate(new, new_path, new_obj, it, True)
        centres, path, obj = new, new_path, new_obj
    return _Coordinate(centres, path, obj, max_iter, False)


def _strategy_sharpe(r: np.ndarray, invested: np.ndarray, cost: float) -> float:
    """Per-bar Sharpe (not annualised) of the 0/1 strategy with a one-bar execution delay.

    ``invested[t]`` is the signal at the close of bar ``t``; the position is taken at the close
    of ``t + 1`` and earns the simple return of bar ``t + 2``; ``cost`` (a fraction) is paid on
    each change of position. Cash earns nothing.
    """
    pos = invested[:-2].astype(float)
    ret = pos * np.expm1(r[2:])
    changes = np.abs(np.diff(np.concatenate([[pos[0]], pos])))
    ret = ret - cost * changes
    sd = float(np.std(ret))
    return float(np.mean(ret)) / sd if sd > 0 else 0.0


@dataclass
class _JumpContext:
    r: np.ndarray
    x: np.ndarray  # (n, len(features)) unscaled features


@dataclass
class _JumpFitted:
    centre: np.ndarray  # scaler mean (f,)
    scale: np.ndarray  # scaler std (f,)
    centres: np.ndarray  # (k, f) ordered, standardised and clipped units
    jump_penalty: float
    selected_at: int  # end (exclusive bar index) of the window the penalty was chosen on
    validation_sharpes: tuple[float, ...]  # per grid value at that choice; () when fixed
    means: np.ndarray
    vols: np.ndarray
    transmat: np.ndarray
    converged: bool
    n_iter: int
    loglik: float  # minus the jump-model objective on the training window (not a likelihood)

    def standardise(self, x: np.ndarray) -> np.ndarray:
        return np.clip((x - self.centre) / self.scale, -_CLIP, _CLIP)

    def online_states(self, ctx: _JumpContext, lo: int, stop: int) -> np.ndarray:
        """Ordered online state of bars ``lo..stop-1``, the dynamic programme started at ``lo``."""
        return _online_states(_losses(self.standardise(ctx.x[lo:stop]), self.centres), self.jump_penalty)

    def filter(self, ctx: _JumpContext, train_lo: int, start: int, stop: int, prior: np.ndarray | None) -> np.ndarray:
        # The online programme restarts at the training window's first bar under these
        # centres (as GARCH and Markov restart their recursions), so the carried prior is not
        # needed; row t uses bars train_lo..t only.
        s = self.online_states(ctx, train_lo, stop)[start - train_lo :]
        return np.eye(self.centres.shape[0])[s]


@dataclass(frozen=True)
class JumpModelRegime:
    """Statistical jump model regime model (hyper-parameters; pass to :func:`walk_forward_regimes`).

    Parameters
    ----------
    n_states : int, default 2
        Number of states (2 to 4).
    jump_penalty : float or None, default None
        Cost ``lambda`` of one state change, in units of the per-bar loss (half a squared
        distance in standardised feature space). ``None`` chooses it walk-forward from
        ``penalty_grid`` (see Notes).
    penalty_grid : tuple of float, default (3, 10, 30, 100)
        Candidate penalties when ``jump_penalty`` is None. Roughly log-spaced; 3 extends the
        issue's example grid (10-100) downwards because with three standardised features a
        bar's loss is about 1.5, and fixed penalties of 3-5 were the best on the simulated
        2-state series (balanced accuracy 0.86 against 0.82 at 10 and 0.75 at 30).
    features : tuple of (str, float), default (('log_dd', 10), ('sortino', 20), ('sortino', 60))
        ``(kind, half-life in bars)`` of each feature, kinds ``'ret'``, ``'log_dd'``,
        ``'sortino'`` (see :func:`jump_features`). The default is the feature set of Shu, Yu
        and Mulvey (2024), fixed a priori.
    n_init : int, default 5
        k-means++ starts at the first fit; at later refits one start is the previous centres
        and ``refit_inits`` more are k-means++ (seeded). The best objective wins.
    refit_inits : int, default 2
    max_iter : int, default 100
        Coordinate-descent iteration cap; a fit that reaches it is reported as not converged.
    tol : float, default 1e-8
        Objective improvement below which the descent stops.
    validation_share : float, default 1/3
        Share of the training window (its end) held out to choose the penalty.
    select_every : int, default 126
        Bars between penalty choices; refits in between keep the last chosen penalty.
    cost_bps : float, default 10
        Cost per switch of the validation 0/1 strategy, in basis points.

    Notes
    -----
    Penalty choice (only when ``jump_penalty`` is None), at the first refit and then at the
    first refit at least ``select_every`` bars after the previous choice, on the training
    window ``lo..hi-1`` only: for every grid value the model is fitted on
    ``lo..hi-v-1`` (``v = validation_share * (hi - lo)``), the online states of
    ``lo..hi-1`` are computed with those centres, and the 0/1 strategy (invested when the
    state's label is risk-on, position taken one bar after the signal, ``cost_bps`` per
    switch) is scored on the last ``v`` bars by its Sharpe ratio. The best grid value (the
    smaller one on ties) is then refitted on the whole training window. Bars at or after
    ``hi`` are never used.

    ``means``/``vols`` of a fit are the mean and standard deviation of the log return over
    the training bars of each state of the fitted path; states are ordered by
    :func:`order_states` (volatility ascending, then mean descending) like every method, so
    with two states state 0 is the calm, usually bullish one. The transition matrix is the
    empirical one of the fitted path with one pseudo-count per cell. Filtered
    "probabilities" are one-hot (hard states), so :class:`PersistenceRule` only adds its
    confirmation delay.

    References
    ----------
    Nystrup, P., Lindstrom, E. and Madsen, H. (2020). Learning hidden Markov models with
    persistent states by penalizing jumps. Expert Systems with Applications 150.
    Shu, Y., Yu, C. and Mulvey, J. M. (2024). Downside risk reduction using regime-switching
    signals: a statistical jump model approach. Journal of Asset Management.
    """

    n_states: int = 2
    jump_penalty: float | None = None
    penalty_grid: tuple[float, ...] = (3.0, 10.0, 30.0, 100.0)
    features: tuple[tuple[str, float], ...] = (("log_dd", 10.0), ("sortino", 20.0), ("sortino", 60.0))
    n_init: int = 5
    refit_inits: int = 2
    max_iter: int = 100
    tol: float = 1e-8
    validation_share: float = 1.0 / 3.0
    select_every: int = 126
    cost_bps: float = 10.0
    name: str = field(default="jump", init=False)

    def __post_init__(self) -> None:
        _check_int(self.n_states, "n_states", 2)
        if self.n_states > 4:
            raise ValueError(f"n_states must be <= 4, got {self.n_states}")
        if self.jump_penalty is not None:
            _check_float(self.jump_penalty, "jump_penalty", 0.0, 1e12, lo_open=False)
        if not isinstance(self.penalty_grid, tuple) or not self.penalty_grid:
            raise TypeError("penalty_grid must be a non-empty tuple of floats")
        for p in self.penalty_grid:
            _check_float(p, "penalty_grid value", 0.0, 1e12, lo_open=False)
        if not isinstance(self.features, tuple) or not self.features:
            raise TypeError("features must be a non-empty tuple of (kind, halflife) pairs")
        for item in self.features:
            if not isinstance(item, tuple) or len(item) != 2:
                raise TypeError(f"each feature must be a (kind, halflife) pair, got {item!r}")
            if item[0] not in FEATURE_KINDS:
                raise ValueError(f"feature kind must be one of {FEATURE_KINDS}, got {item[0]!r}")
            _check_float(item[1], "feature halflife", 0.0, 1e6)
        _check_int(self.n_init, "n_init", 1)
        _check_int(self.refit_inits, "refit_inits", 0)
        _check_int(self.max_iter, "max_iter", 1)
        _check_float(self.tol, "tol", 0.0, 1e6, lo_open=False)
        _check_float(self.validation_share, "validation_share", 0.0, 0.5)
        _check_int(self.select_every, "select_every", 1)
        _check_float(self.cost_bps, "cost_bps", 0.0, 1e4, lo_open=False)

    # -- protocol used by walk_forward_regimes ----------------------------------------

    def _min_train(self) -> int:
        return max(100, 50 * self.n_states)

    def _prepare(self, r: np.ndarray) -> _JumpContext:
        return _JumpContext(r=r, x=jump_features(r, self.features))

    def _descend(self, z: np.ndarray, penalty: float, starts: list[np.ndarray]) -> _Coordinate:
        best: _Coordinate | None = None
        for c0 in starts:
            res = _coordinate_descent(z, c0, penalty, self.max_iter, self.tol)
            if best is None or (res.converged, -res.objective) > (best.converged, -best.objective):
                best = res
        assert best is not None
        return best

    def _fit_window(self, ctx: _JumpContext, lo: int, hi: int, penalty: float, previous: _JumpFitted | None,
                    rng: np.random.Generator, selected_at: int, sharpes: tuple[float, ...]) -> _JumpFitted:
        x = ctx.x[lo:hi]
        centre = x.mean(axis=0)
        scale = x.std(axis=0)
        if not np.all(scale > 0):
            raise InsufficientDataError("returns are constant over the training window; no regimes to fit")
        z = np.clip((x - centre) / scale, -_CLIP, _CLIP)
        k = self.n_states
        starts = []
        if previous is not None:
            raw = previous.centre + previous.scale * previous.centres
            starts.append(np.clip((raw - centre) / scale, -_CLIP, _CLIP))
            n_random = self.refit_inits
        else:
            n_random = self.n_init
        starts.extend(_kmeans_pp(z, k, rng) for _ in range(n_random))
        fit = self._descend(z, penalty, starts)
        r = ctx.r[lo:hi]
        counts_s = np.bincount(fit.path, minlength=k)
        sd_all = float(np.std(r))
        means = np.array([r[fit.path == j].mean() if counts_s[j] else 0.0 for j in range(k)])
        # A state with fewer than two bars gets the window's volatility (it is never reached).
        vols = np.array([r[fit.path == j].std() if counts_s[j] > 1 else sd_all for j in range(k)])
        perm = order_states(means, vols)
        inv = np.argsort(perm)
        path = inv[fit.path]
        counts = np.ones((k, k))
        np.add.at(counts, (path[:-1], path[1:]), 1.0)
        return _JumpFitted(
            centre=centre,
            scale=scale,
            centres=fit.centres[perm],
            jump_penalty=float(penalty),
            selected_at=selected_at,
            validation_sharpes=sharpes,
            means=means[perm],
            vols=vols[perm],
            transmat=counts / counts.sum(axis=1, keepdims=True),
            converged=fit.converged,
            n_iter=fit.n_iter,
            loglik=-fit.objective,
        )

    def _select_penalty(self, ctx: _JumpContext, lo: int, hi: int, rng: np.random.Generator
                        ) -> tuple[float, tuple[float, ...]]:
        v = int(self.validation_share * (hi - lo))
        split = hi - v
        if v < 3 or split - lo < self._min_train() // 2:
            raise InsufficientDataError(
                f"the training window ({hi - lo} bars) is too short to choose the jump penalty walk-forward"
            )
        cost = self.cost_bps * 1e-4
        sharpes = []
        for p in self.penalty_grid:
            f = self._fit_window(ctx, lo, split, float(p), None, rng, split, ())
            on = np.array([lab in ("calm", "bull") for lab in label_states(f.means, f.vols)])
            states = f.online_states(ctx, lo, hi)[split - lo :]
            sharpes.append(_strategy_sharpe(ctx.r[split:hi], on[states], cost))
        best = int(np.argmax(sharpes))  # first maximum: the smaller penalty on ties
        return float(self.penalty_grid[best]), tuple(sharpes)

    def _fit(self, ctx: _JumpContext, lo: int, hi: int, previous: _JumpFitted | None, seed: int) -> _JumpFitted:
        if not np.std(ctx.r[lo:hi]) > 0:
            raise InsufficientDataError("returns are constant over the training window; no regimes to fit")
        rng = np.random.default_rng(seed)
        if self.jump_penalty is not None:
            return self._fit_window(ctx, lo, hi, float(self.jump_penalty), previous, rng, hi, ())
        if previous is not None and hi - previous.selected_at < self.select_every:
            return self._fit_window(ctx, lo, hi, previous.jump_penalty, previous, rng,
                                    previous.selected_at, previous.validation_sharpes)
        penalty, sharpes = self._select_penalty(ctx, lo, hi, rng)
        if previous is not None and not math.isclose(penalty, previous.jump_penalty):
            previous = None  # centres of another penalty are no warm start; use fresh k-means++ starts
        return self._fit_window(ctx, lo, hi, penalty, previous, rng, hi, sharpes)
