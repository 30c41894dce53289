"""Covariance of per-bar returns for portfolio construction: an EWMA estimate whose half-life
follows the consensus regime, and risk contributions.

Returns are simple per-bar returns; the covariance is per bar (never annualised). The
half-life of each consensus family is :data:`DEFAULT_HALF_LIVES`; a family missing from a table
gets its shortest half-life (the most reactive).

References
----------
J.P. Morgan/Reuters (1996). RiskMetrics - Technical Document, 4th ed. (EWMA covariance).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from analytics._stats_common import ResultMixin, check_int, readonly
from analytics.errors import InsufficientDataError

__all__ = ["DEFAULT_HALF_LIVES", "CovarianceEstimate", "regime_covariance", "risk_contributions"]

#: EWMA half-life in bars per consensus family (see :func:`regime_covariance`).
DEFAULT_HALF_LIVES: Mapping[str, float] = MappingProxyType(
    {"risk_on": 126.0, "risk_off": 21.0, "unavailable": 42.0}
)



def _half_life_for(family: str, half_lives: Mapping[str, float]) -> float:
    if not isinstance(family, str):
        raise TypeError(f"family must be a str, got {type(family).__name__}")
    if not half_lives:
        raise ValueError("half_lives must hold at least one family")
    for name, h in half_lives.items():
        real = not isinstance(h, bool) and isinstance(h, numbers.Real)
        if not (real and math.isfinite(h) and h > 0):
            raise ValueError(f"half_lives[{name!r}] must be a positive finite number, got {h!r}")
    if family in half_lives:
        return float(half_lives[family])
    return float(min(half_lives.values()))


@dataclass(frozen=True, eq=False)
class CovarianceEstimate(ResultMixin):
    """A covariance matrix of per-bar simple returns and how it was estimated.

    Attributes
    ----------
    covariance : numpy.ndarray
        ``(k, k)`` symmetric positive semi-definite matrix, read-only, per bar.
    assets : tuple[str, ...]
        Asset names, in the matrix's order.
    half_life : float
        EWMA half-life in bars (``inf`` for an equally weighted estimate).
    family : str
        Consensus family that chose the half-life.
    nobs : int
        Rows used.
    end : pandas.Timestamp or None
        Index label of the last row used, when the rows carry a DatetimeIndex.
    """

    covariance: np.ndarray
    assets: tuple[str, ...]
    half_life: float
    family: str
    nobs: int
    end: pd.Timestamp | None = None

    def __post_init__(self) -> None:
        cov = np.array(self.covariance, dtype=np.float64, copy=True)
        assets = tuple(str(a) for a in self.assets)
        k = len(assets)
        if k == 0:
            raise ValueError("assets must name at least one asset")
        if len(set(assets)) != k:
            raise ValueError("assets must be unique")
        if cov.shape != (k, k):
            raise ValueError(f"covariance must have shape ({k}, {k}), got {cov.shape}")
        if not np.all(np.isfinite(cov)):
            raise ValueError("covariance must be finite")
        scale = max(float(np.max(np.abs(cov))), np.finfo(float).tiny)
        if not np.allclose(cov, cov.T, rtol=0.0, atol=1e-12 * scale):
            raise ValueError("covariance must be symmetric")
        cov = (cov + cov.T) / 2.0
        if np.min(np.linalg.eigvalsh(cov)) < -1e-10 * scale:
            raise ValueError("covariance must be positive semi-definite")
        object.__setattr__(self, "covariance", readonly(cov))
        object.__setattr__(self, "assets", assets)
        object.__setattr__(self, "half_life", float(self.half_life))
        object.__setattr__(self, "nobs", int(self.nobs))

    @property
    def volatilities(self) -> np.ndarray:
        """Per-bar volatility of each asset (square root of the diagonal)."""
        return np.sqrt(np.diag(self.covariance))


# ---------------------------------------------------------------------------------------
# Covariance


def regime_covariance(
    returns: pd.DataFrame,
    family: str,
    *,
    half_lives: Mapping[str, float] = DEFAULT_HALF_LIVES,
    window: int | None = None,
    min_obs: int = 60,
) -> CovarianceEstimate:
    r"""EWMA covariance of per-bar returns with a half-life chosen by the current regime.

    Why the half-life depends on the regime: in risk-off / high-volatility regimes volatility
    clusters and correlations jump, so the most recent bars should dominate the estimate (a
    short half-life); calm regimes are better estimated with a long memory, which halves the
    noise of a short one. The family is the *current* consensus family, so the estimate
    adapts as soon as the regime does.

    With ``n`` rows ``x_0 .. x_{n-1}`` (the last is the newest), row ``x_{n-1-j}`` gets the
    weight ``v_j = 0.5 ** (j / h)``, normalised to ``a_j = v_j / sum(v)``. The rows are
    demeaned with the same weights, ``m = sum_j a_j x_{n-1-j}``, and

    .. math:: \hat\Sigma = \frac{\sum_j a_j (x_{n-1-j} - m)(x_{n-1-j} - m)^\top}
                               {1 - \sum_j a_j^2}

    The denominator is the reliability-weights bias correction: for iid rows with a constant
    covariance the estimate is unbiased (with equal weights it is the usual ``n - 1``).

    Causal by construction: only the rows given are used, the last one included.

    Parameters
    ----------
    returns : pandas.DataFrame
        ``(n, k)`` simple per-bar returns, one column per asset (the names become
        ``assets``), oldest row first. No NaN.
    family : str
        Current consensus family; it selects ``half_lives[family]``. A family missing from
        ``half_lives`` gets the shortest half-life in the table (the most reactive).
    half_lives : Mapping[str, float], default DEFAULT_HALF_LIVES
        Half-life in bars per family, each positive.
    window : int, optional
        Use only the last ``window`` rows (``window >= min_obs``). Default: every row.
    min_obs : int, default 60
        Fewest rows accepted (at least 2).

    Returns
    -------
    CovarianceEstimate
        Symmetric positive semi-definite per-bar covariance and its provenance.

    Raises
    ------
    TypeError
        If ``returns`` is not a DataFrame of numbers.
    ValueError
        If ``returns`` holds NaN or infinities, if its columns are not unique, or for a bad
        ``window``, ``min_obs`` or ``half_lives``.
    InsufficientDataError
        If fewer than ``min_obs`` rows are available.
    """
    if not isinstance(returns, pd.DataFrame):
        raise TypeError(f"returns must be a pandas DataFrame, got {type(returns).__name__}")
    min_obs = check_int(min_obs, "min_obs", 2)
    if window is not None:
        window = check_int(window, "window", 2)
        if window < min_obs:
            raise ValueError(f"window must be >= min_obs ({min_obs}), got {window}")
    h = _half_life_for(family, half_lives)
    assets = tuple(str(c) for c in returns.columns)
    if len(assets) == 0:
        raise ValueError("returns must have at least one column")
    if len(set(assets)) != len(assets):
        raise ValueError("returns must have unique column names")
    try:
        x = returns.to_numpy(dtype=np.float64, copy=True)
    except (TypeError, ValueError) as exc:
        raise TypeError("returns must contain numbers only") from exc
    if not np.all(np.isfinite(x)):
        bad = int(np.count_nonzero(~np.isfinite(x)))
        raise ValueError(f"returns contains {bad} NaN/inf value(s); drop or fill them first")
    index = returns.index
    if window is not None and x.shape[0] > window:
        x = x[-window:]
        index = index[-window:]
    n = x.shape[0]
    if n < min_obs:
        raise InsufficientDataError(
            f"returns has {n} row(s); the covariance needs at least min_obs={min_obs}"
        )
    lags = np.arange(n - 1, -1, -1, dtype=np.float64)  # row t has lag n-1-t
    v = 0.5 ** (lags / h)
    a = v / v.sum()
    denom = 1.0 - float(np.sum(a * a))
    m = a @ x
    d = x - m
    cov = (d * a[:, None]).T @ d / denom
    cov = (cov + cov.T) / 2.0
    end = index[-1] if isinstance(index, pd.DatetimeIndex) else None
    return CovarianceEstimate(
        covariance=cov, assets=assets, half_life=h, family=family, nobs=n, end=end
    )


# ---------------------------------------------------------------------------------------
# Risk contributions


def _as_vector(x: Any, name: str, assets: tuple[str, ...] | None, k: int) -> np.ndarray:
    """A finite float vector of length ``k``; a Series is aligned on ``assets`` by name."""
    if isinstance(x, pd.Series) and assets is not None:
        index = [str(i) for i in x.index]
        missing = [a for a in assets if a not in index]
        if missing:
            raise ValueError(f"{name} has no value for asset(s) {missing}")
        x = pd.Series(x.to_numpy(), index=index).reindex(list(assets))
    if hasattr(x, "to_numpy"):
        x = x.to_numpy()
    arr = np.array(x, dtype=np.float64, copy=True)
    if arr.shape != (k,):
        raise ValueError(f"{name} must have shape ({k},), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    return arr


def _as_covariance(covariance: Any) -> np.ndarray:
    if isinstance(covariance, CovarianceEstimate):
        return np.array(covariance.covariance)
    cov = np.array(covariance, dtype=np.float64, copy=True)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1] or cov.shape[0] == 0:
        raise ValueError(f"covariance must be a square (k, k) matrix, got shape {cov.shape}")
    if not np.all(np.isfinite(cov)):
        raise ValueError("covariance must be finite")
    return cov


def risk_contributions(weights: Any, covariance: Any) -> np.ndarray:
    r"""Each asset's contribution to the portfolio volatility.

    .. math:: RC_i = \frac{w_i (\Sigma w)_i}{\sqrt{w^\top \Sigma w}}, \qquad
              \sum_i RC_i = \sqrt{w^\top \Sigma w}

    Parameters
    ----------
    weights : array-like
        ``(k,)`` portfolio weights.
    covariance : CovarianceEstimate or array-like
        ``(k, k)`` covariance of the assets' returns.

    Returns
    -------
    numpy.ndarray
        ``(k,)`` risk contributions, in the covariance's units (per bar); all zero when the
        portfolio's variance is zero (e.g. all cash).

    Raises
    ------
    ValueError
        If the shapes disagree or a value is not finite.
    """
    cov = _as_covariance(covariance)
    w = _as_vector(weights, "weights", None, cov.shape[0])
    sw = cov @ w
    var = float(w @ sw)
    if not var > 0.0:
        return np.zeros_like(w)
    return w * sw / math.sqrt(var)
