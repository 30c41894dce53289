"""Markov-switching regression regimes (statsmodels) with switching mean and variance.

Model: ``100 r_t = c_{s_t} + sigma_{s_t} e_t``, ``e_t ~ N(0, 1)``, ``s_t`` a k-state Markov
chain (Hamilton, 1989). Returns are multiplied by ``scale`` (``'auto'``: a power of ten fixed
on the first training window, x100 for daily returns) because the optimiser converges far
more reliably on percent returns than on raw log returns. Parameters come from
``MarkovRegression.fit`` on the training window; regime probabilities are statsmodels'
``filtered_marginal_probabilities`` of a model that is *filtered* (not fitted) with those
fixed parameters from the start of the training window through the current bar. Smoothed
probabilities are never used.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from analytics._regime_common import _check_int, _check_scale, _resolve_scale, order_states
from analytics.errors import InsufficientDataError

__all__ = ["MarkovSwitchingRegime"]

# A state whose variance is below 1% of the training variance (vol below 10% of it) is
# treated as a collapsed component.
_MIN_VAR_SHARE = 0.01


def _positive_definite(h: object) -> np.ndarray | None:
    """Symmetric positive-definite copy of a BFGS inverse Hessian, or None."""
    if h is None:
        return None
    a = np.asarray(h, dtype=float)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or not np.all(np.isfinite(a)):
        return None
    a = 0.5 * (a + a.T)
    w, v = np.linalg.eigh(a)
    if w.max() <= 0:
        return None
    a = (v * np.clip(w, w.max() * 1e-6, None)) @ v.T
    # scipy checks exact symmetry before its Cholesky test.
    return 0.5 * (a + a.T)


@dataclass
class _MarkovContext:
    r: np.ndarray  # log returns


@dataclass
class _MarkovFitted:
    params: np.ndarray  # statsmodels parameter vector, original (unordered) states
    perm: np.ndarray
    transmat: np.ndarray
    means: np.ndarray
    vols: np.ndarray
    converged: bool
    n_iter: int
    loglik: float
    n_states: int
    scale: float
    hinv: np.ndarray | None = None  # BFGS inverse Hessian (unconstrained space), for warm refits

    def _model(self, y: np.ndarray):  # noqa: ANN202
        from statsmodels.tsa.regime_switching.markov_regression import MarkovRegression

        return MarkovRegression(y, k_regimes=self.n_states, trend="c", switching_variance=True)

    def filter(self, ctx: _MarkovContext, train_lo: int, start: int, stop: int, prior: np.ndarray | None) -> np.ndarray:
        # statsmodels' MarkovRegression is internally an order-1 model, so a distribution
        # given to ``initialize_known`` is propagated twice before the first bar and cannot
        # carry P(s_{start-1} | past) exactly. Instead every block is filtered from the
        # start of its training window with the ergodic initialisation: the probabilities
        # are statsmodels' filtered_marginal_probabilities under the current parameters
        # given bars train_lo..t (causal; ``prior`` is not needed).
        mod = self._model(ctx.r[train_lo:stop] * self.scale)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = mod.filter(self.params)
        f = np.asarray(res.filtered_marginal_probabilities, dtype=float).reshape(-1, self.n_states)
        return f[start - train_lo :, self.perm]


@dataclass(frozen=True)
class MarkovSwitchingRegime:
    """Markov-switching regression regime model (hyper-parameters).

    Parameters
    ----------
    n_states : int, default 2
        Number of regimes (2 to 4).
    scale : float or 'auto', default 'auto'
        Multiplier applied to log returns before fitting. ``'auto'`` picks the power of ten
        that puts the first training window's standard deviation in [0.3, 3) (x100 for daily
        and weekly returns, x1000 for 5-minute bars) and keeps it for the whole run.
    max_iter : int, default 200
        BFGS iteration cap passed to ``MarkovRegression.fit``.
    em_iter : int, default 5
        EM iterations before BFGS (statsmodels' default).
    n_restarts : int, default 3
        Starting points at the first fit: statsmodels' default start plus
        ``n_restarts - 1`` seeded variants with spread-out variances. Later refits start
        from the previous parameters and fall back to these only if that fit fails.

    Notes
    -----
    ``n_iter`` in the result is the number of BFGS gradient evaluations, which statsmodels
    reports instead of an iteration count; convergence is statsmodels'
    ``mle_retvals['converged']``.

    References
    ----------
    Hamilton, J. D. (1989). A new approach to the economic analysis of nonstationary time
    series and the business cycle. Econometrica 57(2), 357-384.
    """

    n_states: int = 2
    scale: float | str = "auto"
    max_iter: int = 200
    em_iter: int = 5
    n_restarts: int = 3
    name: str = field(default="markov", init=False)

    def __post_init__(self) -> None:
        _check_int(self.n_states, "n_states", 2)
        if self.n_states > 4:
            raise ValueError(f"n_states must be <= 4, got {self.n_states}")
        _check_scale(self.scale)
        _check_int(self.max_iter, "max_iter", 1)
        _check_int(self.em_iter, "em_iter", 0)
        _check_int(self.n_restarts, "n_restarts", 1)

    def _min_train(self) -> int:
        return 50 * self.n_states

    def _prepare(self, r: np.ndarray) -> _MarkovContext:
        return _MarkovContext(r=r)

    def _start_params(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        k = self.n_states
        p = np.full((k, k), 0.05 / (k - 1)) + np.eye(k) * (0.95 - 0.05 / (k - 1))
        trans = [p[i, j] for j in range(k - 1) for i in range(k)]  # statsmodels' 'p[i->j]' order
        var = float(np.var(y))
        spread = np.geomspace(0.3, 3.0, k) * np.exp(rng.normal(0.0, 0.3, k))
        const = float(np.mean(y)) + rng.normal(0.0, 0.1, k) * np.sqrt(var)
        return np.concatenate([trans, const, var * spread])

    def _fit(self, ctx: _MarkovContext, lo: int, hi: int, previous: _MarkovFitted | None, seed: int) -> _MarkovFitted:
        from statsmodels.tsa.regime_switching.markov_regression import MarkovRegression

        r = ctx.r[lo:hi]
        if not np.std(r) > 0:
            raise InsufficientDataError("returns are constant over the training window; no regimes to fit")
        scale = previous.scale if previous is not None else _resolve_scale(self.scale, r)
        y = r * scale
        k = self.n_states
        rng = np.random.default_rng(seed)
        mod = MarkovRegression(y, k_regimes=k, trend="c", switching_variance=True)

        def attempt(start: np.ndarray | None, hinv: np.ndarray | None = None):  # noqa: ANN202
            # cov_type="none": the parameter covariance (a numerical Hessian) is never used
            # and costs a third of the fit.
            kw: dict = {"maxiter": self.max_iter, "em_iter": self.em_iter, "cov_type": "none"}
            if hinv is not None:
                # Warm refit: BFGS started from the previous inverse Hessian needs ~8
                # iterations instead of ~30 from the identity (statsmodels' 'bfgs' path
                # cannot take one, scipy's minimize can).
                kw.update(method="minimize", min_method="BFGS", hess_inv0=hinv, em_iter=0)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    res = mod.fit(start_params=start, disp=False, **kw)
            except (ValueError, np.linalg.LinAlgError, FloatingPointError):
                return None
            except RuntimeError as exc:
                # statsmodels gives up when an optimiser step makes the transition matrix
                # degenerate (no steady state): a failed start, like a singular Hessian.
                if "Steady-state" not in str(exc):
                    raise
                return None
            params = np.asarray(res.params, dtype=float)
            llf = float(res.llf)
            if not (np.all(np.isfinite(params)) and np.isfinite(llf)) or np.any(params[-k:] <= 0):
                return None
            conv = bool(res.mle_retvals.get("converged", False))
            n_it = int(res.mle_retvals.get("iterations", res.mle_retvals.get("gcalls", 0)))
            # The Gaussian-mixture likelihood is unbounded when one state collapses onto a
            # few bars (variance -> 0); such a maximum is a singularity, not a regime.
            sane = bool(np.all(params[-k:] >= _MIN_VAR_SHARE * var_y))
            return (sane, conv, llf), res, n_it

        var_y = float(np.var(y))
        tried = []
        if previous is not None:
            tried.append(attempt(previous.params, previous.hinv))
        if not tried or tried[0] is None or not all(tried[0][0][:2]):
            tried.append(attempt(None))
            for _ in range(self.n_restarts - 1):
                tried.append(attempt(self._start_params(y, rng)))
        ok = [t for t in tried if t is not None]
        if not ok:
            if previous is not None:
                return _MarkovFitted(
                    params=previous.params, perm=previous.perm, transmat=previous.transmat,
                    means=previous.means, vols=previous.vols, converged=False, n_iter=0,
                    loglik=float("nan"), n_states=k, scale=scale, hinv=previous.hinv,
                )
            raise InsufficientDataError("the Markov-switching model could not be fitted on the training window")
        (sane, conv, llf), res, n_it = max(ok, key=lambda t: t[0])
        conv = conv and sane
        params = np.asarray(res.params, dtype=float)
        hinv = _positive_definite(res.mle_retvals.get("Hinv"))
        if hinv is None and previous is not None:
            hinv = previous.hinv
        # statsmodels: regime_transition[i, j] = P(s_t = i | s_{t-1} = j); transpose to rows.
        transmat = np.asarray(res.regime_transition, dtype=float)[..., 0].T
        means = params[k * (k - 1) : k * k] / scale
        vols = np.sqrt(params[k * k : k * k + k]) / scale
        perm = order_states(means, vols)
        return _MarkovFitted(
            params=params,
            perm=perm,
            transmat=transmat[np.ix_(perm, perm)],
            means=means[perm],
            vols=vols[perm],
            converged=conv,
            n_iter=n_it,
            loglik=llf,
            n_states=k,
            scale=scale,
            hinv=hinv,
        )
