"""Gaussian hidden Markov model regimes (hmmlearn) on a return and a volatility feature.

Features per bar ``t`` (both causal): the log return ``r_t`` and ``log(sigma_t)``, where
``sigma_t^2`` is the EWMA of ``r_s^2`` over ``s <= t`` (``adjust=True`` weights, half-life
``vol_halflife`` bars). The features are standardised with a scaler fitted on the training
window only. hmmlearn estimates the parameters (Baum-Welch, several seeded restarts at the
first fit, a warm start from the previous fit at every refit and a seeded random start at
every third, best likelihood kept); the regime probabilities come from our own forward
filter, never from hmmlearn's ``predict``/``predict_proba``, which are smoothed.

Before a fit is used, :func:`analytics._regime_states.one_regime_test` asks whether the
training window's returns need more than one regime at all; when one Gaussian explains them
as well (by BIC), the window's own two-state split is not used (see
:class:`GaussianHMMRegime`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.signal import lfilter

from analytics._regime_common import (
    _check_float,
    _check_int,
    forward_filter,
    order_states,
    stationary_distribution,
)
from analytics._regime_states import StatesTest, one_regime_test
from analytics.errors import InsufficientDataError

__all__ = ["GaussianHMMRegime"]

_LOG_2PI = float(np.log(2.0 * np.pi))


def _ewma_log_vol(r: np.ndarray, halflife: float) -> np.ndarray:
    """Causal ``log sqrt(EWMA(r^2))`` with pandas ``adjust=True`` weights."""
    w = 0.5 ** (1.0 / halflife)
    num = lfilter([1.0], [1.0, -w], r * r)
    den = lfilter([1.0], [1.0, -w], np.ones_like(r))
    var = num / den
    # A run of exact zeros at the start (e.g. filled holidays) would otherwise give log(0).
    return 0.5 * np.log(np.maximum(var, 1e-14))


@dataclass
class _HMMContext:
    r: np.ndarray
    x: np.ndarray  # (n, 2) unscaled features


@dataclass
class _HMMFitted:
    centre: np.ndarray  # scaler mean (2,)
    scale: np.ndarray  # scaler std (2,)
    means_z: np.ndarray  # (k, 2) ordered, standardised units
    covars_z: np.ndarray  # (k, 2, 2) ordered, standardised units
    transmat: np.ndarray
    startprob: np.ndarray
    means: np.ndarray
    vols: np.ndarray
    converged: bool
    n_iter: int
    loglik: float
    since_restart: int = 0  # refits since the last one that tried a random start
    _prec: np.ndarray = field(init=False, repr=False)
    _logdet: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._prec = np.linalg.inv(self.covars_z)
        self._logdet = np.linalg.slogdet(self.covars_z)[1]

    def log_likelihoods(self, x: np.ndarray) -> np.ndarray:
        """``log N(z_t; mu_s, Sigma_s)`` for every bar and ordered state, shape (n, k)."""
        z = (x - self.centre) / self.scale
        d = z.shape[1]
        dev = z[:, None, :] - self.means_z[None, :, :]  # (n, k, d)
        quad = np.einsum("nki,kij,nkj->nk", dev, self._prec, dev)
        return -0.5 * (quad + self._logdet[None, :] + d * _LOG_2PI)

    def filter(self, ctx: _HMMContext, train_lo: int, start: int, stop: int, prior: np.ndarray | None) -> np.ndarray:
        if prior is None:
            # First block: run from the start of the training window with the stationary
            # distribution so the state at ``start`` is already informed by history.
            ll = self.log_likelihoods(ctx.x[train_lo:stop])
            f, _ = forward_filter(ll, self.transmat, stationary_distribution(self.transmat))
            return f[start - train_lo :]
        ll = self.log_likelihoods(ctx.x[start:stop])
        f, _ = forward_filter(ll, self.transmat, prior)
        return f


@dataclass
class _OneRegime:
    """A window that holds one regime (the test kept one Gaussian).

    Such a window says nothing about what a second regime looks like, so the block it
    filters is filtered by ``reference``, the latest fit whose window held several regimes,
    and ``means``/``vols``/``transmat`` are that fit's. Without one (no window so far held
    more than one regime) every bar is in state 0 with probability 1, ``means``/``vols`` are
    the single Gaussian's repeated for each state, the transition matrix is the identity and
    every state carries the same label (``collapse_labels``). ``inner`` is the k-state fit
    the test rejected, kept as the warm start of the next refit.
    """

    inner: _HMMFitted
    reference: _HMMFitted | None
    test: StatesTest
    means: np.ndarray
    vols: np.ndarray
    transmat: np.ndarray
    converged: bool
    n_iter: int
    loglik: float
    n_regimes: int = 1

    @property
    def collapse_labels(self) -> bool:
        return self.reference is None

    def filter(self, ctx: _HMMContext, train_lo: int, start: int, stop: int, prior: np.ndarray | None) -> np.ndarray:
        if self.reference is not None:
            return self.reference.filter(ctx, train_lo, start, stop, prior)
        out = np.zeros((stop - start, self.means.size))
        out[:, 0] = 1.0
        return out


@dataclass(frozen=True)
class GaussianHMMRegime:
    """Gaussian HMM regime model (hyper-parameters; pass to :func:`walk_forward_regimes`).

    Parameters
    ----------
    n_states : int, default 2
        Number of hidden states (2 to 4).
    n_restarts : int, default 4
        Initialisations at the first fit: one deterministic start (training bars split
        into ``n_states`` equal groups by the volatility feature) plus ``n_restarts - 1``
        starts whose means are randomly drawn training bars (seeded).
    refit_restarts : int, default 1
        Random initialisations at a refit that tries them (see ``restart_every``), in
        addition to the warm start from the previous parameters; the best likelihood wins.
        A warm start alone can stay in a degenerate fit for good: on RRC's daily bars it
        locked onto a near-zero-volatility state and reported 27 years of risk-off.
    restart_every : int, default 3
        Refits between those that try the random starts (1: every refit). The random start
        was two thirds of the walk-forward time; every third refit halves the HMM time and
        gave the same regime families as every refit on 99.4-100% of the bars of SP500,
        NASDAQ, RRC, AMD and AAPL (LT, MT, ST) and the same simulation scores (2-state
        0.946, 3-state 0.841 against 0.835; docs/regimes.md).
    max_iter : int, default 200
        Baum-Welch iteration cap. A fit that reaches it is reported as *not converged*
        (hmmlearn's own ``monitor_.converged`` is also True at the cap).
    tol : float, default 1e-4
        Log-likelihood improvement below which Baum-Welch stops.
    vol_halflife : float, default 5
        Half-life in bars of the EWMA volatility feature (one trading week on daily
        bars). Chosen between 5 and 10 on the simulated series only; 10 lags regime
        changes enough to fail the 3-state simulation (see docs/regimes.md).
    covariance_type : {'diag', 'full'}, default 'diag'
        'diag' is about ten times faster here and gave the same regimes on the
        simulations and on the S&P 500.
    one_regime_test : bool, default True
        Test every training window against a single regime
        (:func:`analytics._regime_states.one_regime_test`, BIC) before its fit is used. A
        window that holds one regime (``RegimeFit.n_regimes`` 1) is not split in two: its
        block is filtered with the latest fit whose window held several regimes (it knows
        what turbulence looks like); when there is none yet, every bar is in the calmest
        state with probability 1, labelled ``'calm'`` (or ``'bull'`` by its drift), with an
        identity transition matrix. Without the test a calm-only window is split in two and
        its less calm half called risk-off.

    Notes
    -----
    Emission parameters live in standardised feature space; ``means``/``vols`` reported in
    the result are those of the *return* feature mapped back to log-return units, and the
    states are ordered by that volatility.

    References
    ----------
    Rabiner, L. R. (1989). A tutorial on hidden Markov models and selected applications in
    speech recognition. Proc. IEEE 77(2).
    """

    n_states: int = 2
    n_restarts: int = 4
    refit_restarts: int = 1
    restart_every: int = 3
    max_iter: int = 200
    tol: float = 1e-4
    vol_halflife: float = 5.0
    covariance_type: str = "diag"
    one_regime_test: bool = True
    name: str = field(default="hmm", init=False)

    def __post_init__(self) -> None:
        _check_int(self.n_states, "n_states", 2)
        if self.n_states > 4:
            raise ValueError(f"n_states must be <= 4, got {self.n_states}")
        _check_int(self.n_restarts, "n_restarts", 1)
        _check_int(self.refit_restarts, "refit_restarts", 0)
        _check_int(self.restart_every, "restart_every", 1)
        _check_int(self.max_iter, "max_iter", 1)
        _check_float(self.tol, "tol", 0.0, 1e6)
        _check_float(self.vol_halflife, "vol_halflife", 0.0, 1e6)
        if self.covariance_type not in ("full", "diag"):
            raise ValueError(f"covariance_type must be 'full' or 'diag', got {self.covariance_type!r}")
        if not isinstance(self.one_regime_test, bool):
            raise TypeError(f"one_regime_test must be a bool, got {type(self.one_regime_test).__name__}")

    # -- protocol used by walk_forward_regimes ----------------------------------------

    def _min_train(self) -> int:
        return 50 * self.n_states

    def _prepare(self, r: np.ndarray) -> _HMMContext:
        return _HMMContext(r=r, x=np.column_stack([r, _ewma_log_vol(r, self.vol_halflife)]))

    def _new_hmm(self) -> Any:
        from hmmlearn.hmm import GaussianHMM

        k = self.n_states
        model = GaussianHMM(
            n_components=k,
            covariance_type=self.covariance_type,
            n_iter=self.max_iter,
            tol=self.tol,
            random_state=0,  # unused: every start is set explicitly (init_params="")
            init_params="",
            params="stmc",
            implementation="scaling",
        )
        # Sticky start: regimes last, so begin EM from a persistent chain.
        model.startprob_ = np.full(k, 1.0 / k)
        off = 0.05 / (k - 1)
        model.transmat_ = np.full((k, k), off) + np.eye(k) * (0.95 - off)
        return model

    def _set_covars(self, model: Any, covars_full: np.ndarray) -> None:
        if self.covariance_type == "full":
            model.covars_ = covars_full
        else:
            model.covars_ = np.stack([np.diag(c) for c in covars_full])

    def _fit(self, ctx: _HMMContext, lo: int, hi: int, previous: _HMMFitted | _OneRegime | None,
             seed: int) -> _HMMFitted | _OneRegime:
        reference = previous  # the latest fit whose window held several regimes
        if isinstance(previous, _OneRegime):
            reference, previous = previous.reference, previous.inner
        fitted = self._fit_states(ctx, lo, hi, previous, seed)
        if not self.one_regime_test:
            return fitted
        r = ctx.r[lo:hi]
        test = one_regime_test(r, fitted.means, fitted.vols, fitted.transmat)
        if not test.one_regime:
            return fitted
        k = self.n_states
        if reference is not None:
            means, vols, transmat = reference.means, reference.vols, reference.transmat
        else:
            means, vols, transmat = np.full(k, r.mean()), np.full(k, r.std()), np.eye(k)
        return _OneRegime(inner=fitted, reference=reference, test=test, means=means, vols=vols,
                          transmat=transmat, converged=fitted.converged, n_iter=fitted.n_iter,
                          loglik=fitted.loglik)

    def _fit_states(self, ctx: _HMMContext, lo: int, hi: int, previous: _HMMFitted | None, seed: int) -> _HMMFitted:
        x = ctx.x[lo:hi]
        centre = x.mean(axis=0)
        scale = x.std(axis=0)
        if not np.all(scale > 0):
            raise InsufficientDataError("returns are constant over the training window; no regimes to fit")
        z = (x - centre) / scale
        rng = np.random.default_rng(seed)
        k = self.n_states
        candidates = []
        if previous is not None:
            m = self._new_hmm()
            ratio = previous.scale / scale
            m.startprob_ = previous.startprob
            m.transmat_ = previous.transmat
            m.means_ = (previous.centre + previous.scale * previous.means_z - centre) / scale
            self._set_covars(m, previous.covars_z * np.outer(ratio, ratio))
            candidates.append(m)
            since = previous.since_restart + 1
            n_random = self.refit_restarts if since >= self.restart_every else 0
            if n_random:
                since = 0
        else:
            # Deterministic start: split the training bars into k equal groups by the
            # volatility feature. (Not hmmlearn's k-means init: sklearn's KMeans runs
            # OpenMP threads, which cost more than the whole fit on a busy machine.)
            m = self._new_hmm()
            groups = np.array_split(np.argsort(z[:, 1], kind="stable"), k)
            m.means_ = np.stack([z[g].mean(axis=0) for g in groups])
            self._set_covars(m, np.stack([np.cov(z[g].T) + 1e-3 * np.eye(z.shape[1]) for g in groups]))
            candidates.append(m)
            n_random = self.n_restarts - 1
            since = 0
        cov0 = np.cov(z.T) + 1e-3 * np.eye(z.shape[1])
        for _ in range(n_random):
            m = self._new_hmm()
            m.means_ = z[rng.choice(z.shape[0], size=k, replace=False)]
            self._set_covars(m, np.repeat(cov0[None], k, axis=0))
            candidates.append(m)

        best = None  # (converged, loglik, model)
        for m in candidates:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    m.fit(z)
                    ll = float(m.score(z))
            except (ValueError, np.linalg.LinAlgError, FloatingPointError):
                continue
            if not (np.isfinite(ll) and np.all(np.isfinite(m.transmat_)) and np.all(np.isfinite(m.means_))):
                continue
            # hmmlearn's monitor reports converged=True at the iteration cap too; only an
            # early stop on the tolerance counts as convergence here.
            conv = m.monitor_.iter < self.max_iter
            key = (conv, ll)
            if best is None or key > best[0]:
                best = (key, m)
        if best is None:
            if previous is not None:
                return _HMMFitted(
                    centre=previous.centre, scale=previous.scale, means_z=previous.means_z,
                    covars_z=previous.covars_z, transmat=previous.transmat,
                    startprob=previous.startprob, means=previous.means, vols=previous.vols,
                    converged=False, n_iter=0, loglik=float("nan"), since_restart=since,
                )
            raise InsufficientDataError("the Gaussian HMM could not be fitted on the training window")
        (conv, ll), m = best
        covars = np.asarray(m.covars_)  # hmmlearn returns full matrices for every type
        means_r = centre[0] + scale[0] * m.means_[:, 0]
        vols_r = scale[0] * np.sqrt(covars[:, 0, 0])
        perm = order_states(means_r, vols_r)
        return _HMMFitted(
            centre=centre,
            scale=scale,
            means_z=np.asarray(m.means_)[perm],
            covars_z=covars[perm],
            transmat=np.asarray(m.transmat_)[np.ix_(perm, perm)],
            startprob=np.asarray(m.startprob_)[perm],
            means=means_r[perm],
            vols=vols_r[perm],
            converged=bool(conv),
            n_iter=int(m.monitor_.iter),
            loglik=ll,
            since_restart=since,
        )
