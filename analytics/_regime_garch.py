"""GARCH(1,1) conditional-volatility regimes (arch).

On each training window: fit a constant-mean GARCH(1,1) to ``scale * r`` with arch (``scale``
a power of ten fixed on the first training window, x100 for daily returns); run the
variance recursion with those fixed parameters to get, for every bar ``t``, the volatility
known at the close of ``t``, ``v_t = sigma_{t+1|t}`` (it already contains the shock ``r_t``);
learn ``k - 1`` thresholds on ``log v`` over the training window by one-dimensional k-means
(quantile-initialised Lloyd iterations, boundaries at the midpoints of adjacent centres).
New bars are filtered with the same parameters and thresholds until the next refit.

The "probabilities" are an ordinal-logistic soft membership around the thresholds,
``P(state >= j) = 1 / (1 + exp(-(log v_t - tau_j) / h))`` with ``h`` the standard deviation of
the daily change of ``log v`` on the training window. Their argmax is exactly the threshold
classification; they are a calibrated-looking *distance to the threshold*, not a posterior.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.signal import lfilter
from scipy.special import expit

from analytics._regime_common import _check_int, _check_scale, _resolve_scale
from analytics.errors import InsufficientDataError

__all__ = ["GarchVolatilityRegime"]


def _backcast(resids: np.ndarray) -> float:
    # Same initial variance as arch's GARCH.backcast: 0.94-weighted mean of the first 75
    # squared residuals.
    tau = min(75, resids.size)
    w = 0.94 ** np.arange(tau)
    return float(np.sum(resids[:tau] ** 2 * (w / w.sum())))


def _forecast_variance(y: np.ndarray, mu: float, omega: float, alpha: float, beta: float, sigma2_0: float) -> np.ndarray:
    """``sigma^2_{t+1|t}`` for every bar of ``y`` (the recursion as one IIR filter)."""
    e2 = (y - mu) ** 2
    return lfilter([1.0], [1.0, -beta], omega + alpha * e2, zi=np.array([beta * sigma2_0]))[0]


def _kmeans_1d(x: np.ndarray, k: int, n_iter: int = 100) -> np.ndarray:
    """Sorted centres of a deterministic 1-D k-means (quantile start, Lloyd iterations)."""
    centres = np.quantile(x, (np.arange(k) + 0.5) / k)
    for _ in range(n_iter):
        edges = 0.5 * (centres[1:] + centres[:-1])
        lab = np.searchsorted(edges, x)
        new = np.array([x[lab == j].mean() if np.any(lab == j) else centres[j] for j in range(k)])
        if np.allclose(new, centres, rtol=0.0, atol=1e-12):
            break
        centres = np.sort(new)
    return centres


@dataclass
class _GarchContext:
    r: np.ndarray  # log returns


@dataclass
class _GarchFitted:
    mu: float
    omega: float
    alpha: float
    beta: float
    sigma2_0: float  # conditional variance of the first bar of the training window
    thresholds: np.ndarray  # (k-1,) on log v (scaled units)
    bandwidth: float
    means: np.ndarray
    vols: np.ndarray
    transmat: np.ndarray
    converged: bool
    n_iter: int
    loglik: float
    params: np.ndarray  # arch parameter vector, for warm starts
    scale: float

    def log_vol(self, y: np.ndarray) -> np.ndarray:
        s2 = _forecast_variance(y, self.mu, self.omega, self.alpha, self.beta, self.sigma2_0)
        return 0.5 * np.log(np.maximum(s2, 1e-300))

    def soft_membership(self, log_v: np.ndarray) -> np.ndarray:
        k = self.thresholds.size + 1
        upper = expit((log_v[:, None] - self.thresholds[None, :]) / self.bandwidth)  # P(state >= j)
        cum = np.hstack([np.ones((log_v.size, 1)), upper, np.zeros((log_v.size, 1))])
        p = cum[:, :k] - cum[:, 1:]
        return np.clip(p, 0.0, 1.0)

    def filter(self, ctx: _GarchContext, train_lo: int, start: int, stop: int, prior: np.ndarray | None) -> np.ndarray:
        # The variance recursion restarts from the training window's first bar with these
        # parameters, so the path is the one this GARCH defines (the carried prior is not
        # needed: v_t is a deterministic function of past returns).
        lv = self.log_vol(ctx.r[train_lo:stop] * self.scale)[start - train_lo :]
        return self.soft_membership(lv)


@dataclass(frozen=True)
class GarchVolatilityRegime:
    """GARCH(1,1) conditional-volatility regime model (hyper-parameters).

    Parameters
    ----------
    n_states : int, default 2
        Number of volatility regimes (2 to 4).
    scale : float or 'auto', default 'auto'
        Multiplier applied to log returns before fitting. ``'auto'`` picks the power of ten
        that puts the first training window's standard deviation in [0.3, 3) (x100 for daily
        and weekly returns, x1000 for 5-minute bars) and keeps it for the whole run.
    dist : {'normal', 't'}, default 'normal'
        Innovation distribution of the GARCH fit.
    max_iter : int, default 200
        SLSQP iteration cap.

    Notes
    -----
    ``state_means`` are the mean log returns of the training bars classified in each state;
    ``state_vols`` the root-mean-square of ``v_t`` over them; the transition matrix is the
    empirical one of the training classification (with one pseudo-count per cell), so
    ``expected_durations`` describe the thresholded path, not a latent chain.

    References
    ----------
    Bollerslev, T. (1986). Generalized autoregressive conditional heteroskedasticity.
    Journal of Econometrics 31(3), 307-327.
    """

    n_states: int = 2
    scale: float | str = "auto"
    dist: str = "normal"
    max_iter: int = 200
    name: str = field(default="garch", init=False)

    def __post_init__(self) -> None:
        _check_int(self.n_states, "n_states", 2)
        if self.n_states > 4:
            raise ValueError(f"n_states must be <= 4, got {self.n_states}")
        _check_scale(self.scale)
        if self.dist not in ("normal", "t"):
            raise ValueError(f"dist must be 'normal' or 't', got {self.dist!r}")
        _check_int(self.max_iter, "max_iter", 1)

    def _min_train(self) -> int:
        return max(100, 50 * self.n_states)

    def _prepare(self, r: np.ndarray) -> _GarchContext:
        return _GarchContext(r=r)

    def _fit(self, ctx: _GarchContext, lo: int, hi: int, previous: _GarchFitted | None, seed: int) -> _GarchFitted:
        from arch import arch_model

        r_train = ctx.r[lo:hi]
        if not np.std(r_train) > 0:
            raise InsufficientDataError("returns are constant over the training window; no regimes to fit")
        scale = previous.scale if previous is not None else _resolve_scale(self.scale, r_train)
        y = r_train * scale
        am = arch_model(y, mean="Constant", vol="GARCH", p=1, q=1, dist=self.dist, rescale=False)  # type: ignore[arg-type]
        res = None
        starts: list[np.ndarray | None] = [previous.params] if previous is not None else []
        starts.append(None)
        for sv in starts:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    cand = am.fit(disp="off", starting_values=sv, options={"maxiter": self.max_iter}, show_warning=False)
            except (ValueError, np.linalg.LinAlgError, FloatingPointError):
                continue
            if np.all(np.isfinite(cand.params)):
                if res is None or (cand.convergence_flag == 0, cand.loglikelihood) > (res.convergence_flag == 0, res.loglikelihood):
                    res = cand
                if cand.convergence_flag == 0:
                    break
        if res is None:
            raise InsufficientDataError("GARCH(1,1) could not be fitted on the training window")
        params = np.asarray(res.params, dtype=float)
        mu, omega, alpha, beta = (float(x) for x in params[:4])
        # arch starts the recursion with sigma^2_0 = omega + (alpha + beta) * backcast.
        sigma2_0 = omega + (alpha + beta) * _backcast(y - y.mean())
        s2 = _forecast_variance(y, mu, omega, alpha, beta, sigma2_0)
        lv = 0.5 * np.log(np.maximum(s2, 1e-300))
        k = self.n_states
        centres = _kmeans_1d(lv, k)
        thresholds = 0.5 * (centres[1:] + centres[:-1])
        if np.any(np.diff(centres) <= 1e-8):
            # alpha ~ 0: the fitted GARCH sees no volatility clustering, so there are no
            # thresholds to learn. Keep the previous parameters (flagged), or give up on a
            # first fit rather than invent thresholds.
            if previous is not None:
                return dataclasses.replace(previous, converged=False, n_iter=0, loglik=float(res.loglikelihood))
            raise InsufficientDataError(
                "GARCH finds no volatility clustering on the first training window "
                f"(alpha={alpha:.3g}); no volatility regimes can be learned, use a longer min_train"
            )
        bandwidth = max(float(np.std(np.diff(lv))), 1e-3)
        state = np.searchsorted(thresholds, lv)
        means = np.array([r_train[state == j].mean() if np.any(state == j) else 0.0 for j in range(k)])
        vols = np.array([np.sqrt(np.mean(s2[state == j])) / scale if np.any(state == j) else np.exp(centres[j]) / scale for j in range(k)])
        counts = np.ones((k, k))
        np.add.at(counts, (state[:-1], state[1:]), 1.0)
        transmat = counts / counts.sum(axis=1, keepdims=True)
        # Classes are intervals of log v between sorted thresholds, so their RMS volatility
        # is increasing: the threshold order already is the canonical (volatility) order.
        conv = res.convergence_flag == 0
        nit = int(getattr(res.optimization_result, "nit", 0) or 0)
        return _GarchFitted(
            mu=mu, omega=omega, alpha=alpha, beta=beta, sigma2_0=sigma2_0,
            thresholds=thresholds, bandwidth=bandwidth, means=means, vols=vols,
            transmat=transmat, converged=bool(conv), n_iter=nit,
            loglik=float(res.loglikelihood), params=params, scale=scale,
        )
