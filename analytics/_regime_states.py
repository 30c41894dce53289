"""How many regimes a training window holds: an information-criterion test against one regime.

A k-state model fitted to a window that holds one regime still finds k states: it splits the
calm bars into "calmer" and "less calm", and the less calm half is then labelled risk-off. The
test below asks the returns themselves whether they need more than one regime, before any
label is given: a k-state Gaussian hidden Markov model of the returns (one dimension, the
returns only) against a single Gaussian, compared by the Bayesian information criterion
(Schwarz 1978; the usual choice for the number of HMM states, since the likelihood-ratio
statistic has no chi-square law when a state can vanish). It has no tuning parameter.

The k-state likelihood is the maximum over a warm-started Baum-Welch fit, started from the
return means, volatilities and transition matrix of the regime model's own fit on the same
window. The likelihood of that starting point is a lower bound of the maximum, so when the
bound already rejects one regime (almost every window of real market data) no fit is run; the
answer is the same as with the fit, because Baum-Welch never lowers the likelihood.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from analytics._regime_common import stationary_distribution
from analytics.errors import InsufficientDataError

__all__ = ["StatesTest", "one_regime_test"]

_LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class StatesTest:
    """Outcome of :func:`one_regime_test` on one window.

    Attributes
    ----------
    n_bars : int
        Returns in the window.
    n_states : int
        States of the alternative model.
    loglik : float
        Log-likelihood of the k-state Gaussian HMM of the returns (log-return units).
    loglik_one : float
        Log-likelihood of one Gaussian (its maximum: sample mean and standard deviation).
    bic, bic_one : float
        ``-2 loglik + p log n`` of each, with ``p = k^2 + 2k - 1`` (means, variances,
        transition and start probabilities) and ``p = 2``.
    fitted : bool
        Whether Baum-Welch was run (False when the starting point already rejected one
        regime).
    """

    n_bars: int
    n_states: int
    loglik: float
    loglik_one: float
    bic: float
    bic_one: float
    fitted: bool

    @property
    def one_regime(self) -> bool:
        """True when one regime explains the window at least as well (ties favour one)."""
        return self.bic_one <= self.bic


def _n_params(k: int) -> int:
    return k + k + k * (k - 1) + (k - 1)


def one_regime_test(
    returns: np.ndarray,
    means: np.ndarray,
    vols: np.ndarray,
    transmat: np.ndarray,
    *,
    max_iter: int = 50,
    tol: float = 1e-3,
) -> StatesTest:
    """Test whether a window of returns holds one regime or ``k``.

    Parameters
    ----------
    returns : ndarray, shape (n,)
        Log returns of the training window (finite).
    means, vols : ndarray, shape (k,)
        Per-bar return mean and standard deviation of each state of the regime model's fit
        on the same window (the starting point of the k-state fit).
    transmat : ndarray, shape (k, k)
        That fit's transition matrix.
    max_iter : int, default 50
        Baum-Welch iterations at most.
    tol : float, default 1e-3
        Log-likelihood improvement below which Baum-Welch stops.

    Returns
    -------
    StatesTest

    Raises
    ------
    InsufficientDataError
        Fewer than 3 returns, or constant returns.
    ValueError
        Parameters of mismatched shapes or non-finite values.
    """
    r = np.asarray(returns, dtype=float)
    means = np.asarray(means, dtype=float)
    vols = np.asarray(vols, dtype=float)
    a = np.asarray(transmat, dtype=float)
    k = means.size
    if r.ndim != 1 or not np.all(np.isfinite(r)):
        raise ValueError("returns must be a 1-D array of finite values")
    if k < 2 or vols.shape != (k,) or a.shape != (k, k):
        raise ValueError("means and vols must have k >= 2 entries and transmat must be (k, k)")
    if not (np.all(np.isfinite(means)) and np.all(np.isfinite(vols)) and np.all(np.isfinite(a))):
        raise ValueError("means, vols and transmat must be finite")
    n = r.size
    if n < 3:
        raise InsufficientDataError(f"{n} returns are too few to test the number of regimes")
    centre, sd = float(r.mean()), float(r.std())
    if not sd > 0:
        raise InsufficientDataError("returns are constant over the window; no regimes to test")
    z = ((r - centre) / sd)[:, None]
    # Both likelihoods are computed on the standardised returns and moved back to return
    # units by the same Jacobian, n log(sd).
    jac = n * math.log(sd)
    loglik_one = -0.5 * n * (_LOG_2PI + 1.0) - jac
    bic_one = -2.0 * loglik_one + 2 * math.log(n)
    penalty = _n_params(k) * math.log(n)

    model = _start_model(k, (means - centre) / sd, vols / sd, a, max_iter, tol)
    loglik = float(model.score(z)) - jac
    fitted = False
    if -2.0 * loglik + penalty >= bic_one:
        # The starting point does not reject one regime: let Baum-Welch look for better.
        fitted = True
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.fit(z)
                better = float(model.score(z)) - jac
        except (ValueError, np.linalg.LinAlgError, FloatingPointError):
            better = -math.inf
        if math.isfinite(better):
            loglik = max(loglik, better)
    return StatesTest(n_bars=n, n_states=k, loglik=loglik, loglik_one=loglik_one,
                      bic=-2.0 * loglik + penalty, bic_one=bic_one, fitted=fitted)


def _start_model(k: int, means_z: np.ndarray, vols_z: np.ndarray, transmat: np.ndarray,
                 max_iter: int, tol: float):
    from hmmlearn.hmm import GaussianHMM

    a = np.maximum(transmat, 1e-6)
    a = a / a.sum(axis=1, keepdims=True)
    model = GaussianHMM(n_components=k, covariance_type="diag", n_iter=max_iter, tol=tol,
                        init_params="", params="stmc", implementation="scaling")
    model.startprob_ = stationary_distribution(a)
    model.transmat_ = a
    model.means_ = means_z[:, None]
    model.covars_ = (np.maximum(vols_z, 1e-3) ** 2)[:, None]
    return model
