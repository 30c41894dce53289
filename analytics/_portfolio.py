"""Portfolio construction: long-only weights, regime caps, drift and rebalancing (the covariance
estimate: :mod:`analytics._covariance`).

Conventions used throughout this module
---------------------------------------
* Returns are **simple** per-bar returns (daily bars in practice); a covariance, a portfolio
  volatility and the expected returns given to ``mv`` are all **per bar**, never annualised.
* Weights are fractions of the account's value, long only (``w_i >= 0``). ``sum(w) <= gross``;
  what is not invested is cash, which earns 0.
* The consensus regime *family* (``"risk_on"``, ``"risk_off"``, ``"unavailable"``, and any
  other label the consensus may produce such as ``"mixed"``) chooses both the memory of the
  covariance estimate (:data:`DEFAULT_HALF_LIVES`) and the exposure caps
  (:data:`DEFAULT_REGIME_CAPS`). A family missing from a table gets its most conservative
  entry: the shortest half-life and the tightest caps, never the loosest.
* The optimisers are skfolio's (library of record): :class:`skfolio.optimization.RiskBudgeting`
  for ``erc``, :class:`skfolio.optimization.HierarchicalRiskParity` for ``hrp`` and
  :class:`skfolio.optimization.MeanRisk` for ``mv``. They are given *our* covariance through a
  fixed prior estimator (:class:`_FixedPrior`); skfolio never re-estimates it from returns.

Methods
-------
``invvol``
    ``w_i ∝ 1 / sigma_i`` (closed form, no solver): the baseline.
``erc``
    Equal risk contributions (Maillard, Roncalli and Teïletche 2010): skfolio's
    ``RiskBudgeting`` with equal budgets and the variance risk measure, i.e. Spinu's (2013)
    convex programme ``min y'Σy  s.t.  sum_i log(y_i) / k >= 0``. The conic solver's answer is
    then polished by Newton steps on the same convex problem's Lagrangian
    ``y'Σy / 2 - sum_i log(y_i) / k`` (no bounds bind there, so its stationary point *is* the
    ERC portfolio); this takes the risk contributions from the solver's ~1e-5 relative
    agreement to machine precision.
``hrp``
    Hierarchical Risk Parity (López de Prado 2016): skfolio's ``HierarchicalRiskParity`` with
    the variance risk measure and the correlation distance ``sqrt((1 - rho) / 2)`` computed
    from our covariance (``CovarianceDistance(covariance_estimator="precomputed")``).
``mv``
    Mean-variance utility ``max mu'w - risk_aversion * w'Σw - turnover_cost * |w - w_prev|_1``
    with ``0 <= w_i <= per_asset`` and ``sum(w) = gross`` (skfolio ``MeanRisk`` with
    ``MAXIMIZE_UTILITY`` and the variance risk measure). With ``mu = 0`` and no turnover cost
    it is the (capped) minimum-variance portfolio.

Caps for ``invvol``, ``erc`` and ``hrp`` are applied *after* the estimator (water-filling):
the fully invested weights are scaled to ``gross``; every asset above ``per_asset`` is cut to
it and the excess is handed to the uncapped assets in proportion to their weights, repeated
until no asset is above the cap. When ``k * per_asset < gross`` every asset ends at the cap
and the rest stays in cash (``sum(w) = k * per_asset < gross``); ``mv`` then uses the
budget ``k * per_asset`` for the same reason.

The convex solvers see the covariance (and, for ``mv``, ``mu`` and the turnover cost) divided
by the mean variance, so the problem's numbers are of order one whatever the bar length; the
optimal weights are unchanged by that common scale.

References
----------
J.P. Morgan/Reuters (1996). RiskMetrics - Technical Document, 4th ed. (EWMA covariance).
Maillard, S., Roncalli, T. and Teïletche, J. (2010). The properties of equally weighted risk
contribution portfolios. Journal of Portfolio Management 36(4), 60-70.
Spinu, F. (2013). An algorithm for computing risk parity weights. SSRN 2297383.
López de Prado, M. (2016). Building diversified portfolios that outperform out of sample.
Journal of Portfolio Management 42(4), 59-69.
"""

from __future__ import annotations

import functools
import math
import numbers
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from analytics._covariance import CovarianceEstimate, _as_vector, risk_contributions
from analytics._stats_common import ResultMixin, check_choice, readonly
from analytics.errors import InsufficientDataError

__all__ = [
    "PORTFOLIO_METHODS",
    "RegimeCaps",
    "DEFAULT_REGIME_CAPS",
    "PortfolioWeights",
    "caps_for",
    "portfolio_weights",
    "drift_weights",
    "rebalance_due",
]

PORTFOLIO_METHODS: tuple[str, ...] = ("erc", "mv", "hrp", "invvol")

# Clarabel tolerances for the conic problems (the defaults, 1e-8, leave the minimum-variance
# weights ~1e-5 from the analytic answer; 1e-10 brings them to ~1e-7 without "inaccurate").
_SOLVER_PARAMS: Mapping[str, float] = MappingProxyType(
    {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10, "tol_ktratio": 1e-8}
)
# Newton polish of the ERC weights: stop when the gradient's largest entry is below this.
_NEWTON_TOL = 1e-13
_NEWTON_MAX_ITER = 50


# ---------------------------------------------------------------------------------------
# Caps per consensus family


@dataclass(frozen=True)
class RegimeCaps:
    """Exposure caps for one consensus regime family.

    Attributes
    ----------
    gross : float
        Largest sum of the (long-only) weights; ``0 < gross <= 2``.
    per_asset : float
        Largest weight of any single asset; ``0 < per_asset <= gross``.
    """

    gross: float
    per_asset: float

    def __post_init__(self) -> None:
        for name in ("gross", "per_asset"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
                raise ValueError(f"{name} must be a finite real number, got {v!r}")
            object.__setattr__(self, name, float(v))
        if not 0.0 < self.per_asset <= self.gross <= 2.0:
            raise ValueError(
                "RegimeCaps needs 0 < per_asset <= gross <= 2, got "
                f"per_asset={self.per_asset}, gross={self.gross}"
            )

    def to_dict(self) -> dict[str, float]:
        """Return ``{"gross": ..., "per_asset": ...}``."""
        return {"gross": self.gross, "per_asset": self.per_asset}


DEFAULT_REGIME_CAPS: Mapping[str, RegimeCaps] = MappingProxyType(
    {
        "risk_on": RegimeCaps(gross=1.0, per_asset=0.25),
        "risk_off": RegimeCaps(gross=0.6, per_asset=0.15),
        "unavailable": RegimeCaps(gross=0.6, per_asset=0.15),
    }
)

def caps_for(family: str, table: Mapping[str, RegimeCaps] = DEFAULT_REGIME_CAPS) -> RegimeCaps:
    """Caps for a consensus family; an unknown family gets the tightest entry.

    Parameters
    ----------
    family : str
        Consensus regime family (``"risk_on"``, ``"risk_off"``, ``"unavailable"``, ...).
    table : Mapping[str, RegimeCaps], default DEFAULT_REGIME_CAPS
        Caps per family.

    Returns
    -------
    RegimeCaps
        ``table[family]`` when present, otherwise the entry with the smallest ``gross`` (ties
        broken by the smallest ``per_asset``): a family the table does not know never gets the
        loosest caps.

    Raises
    ------
    TypeError
        If ``family`` is not a string or an entry of ``table`` is not a :class:`RegimeCaps`.
    ValueError
        If ``table`` is empty.
    """
    if not isinstance(family, str):
        raise TypeError(f"family must be a str, got {type(family).__name__}")
    if not table:
        raise ValueError("table must hold at least one family")
    for name, caps in table.items():
        if not isinstance(caps, RegimeCaps):
            raise TypeError(f"table[{name!r}] must be a RegimeCaps, got {type(caps).__name__}")
    if family in table:
        return table[family]
    return min(table.values(), key=lambda c: (c.gross, c.per_asset))


# ---------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True, eq=False)
class PortfolioWeights(ResultMixin):
    """Result of :func:`portfolio_weights`.

    Attributes
    ----------
    weights : numpy.ndarray
        ``(k,)`` long-only weights, read-only; ``1 - sum(weights)`` is cash.
    assets : tuple[str, ...]
        Asset names, in the weights' order.
    method : str
        One of :data:`PORTFOLIO_METHODS`.
    gross : float
        ``sum(weights)`` (at most ``caps.gross``).
    risk_contributions : numpy.ndarray
        ``w_i (Σw)_i / sqrt(w'Σw)`` of the returned weights; they sum to ``volatility``.
    volatility : float
        ``sqrt(w'Σw)``: the portfolio's volatility **per bar** (not annualised).
    caps : RegimeCaps
        Caps the weights obey.
    converged : bool
        False when the skfolio solver failed (the weights are then the capped
        inverse-volatility fallback) or reported an inaccurate solution.
    note : str
        What happened, in words ("" when nothing needs saying).
    """

    weights: np.ndarray
    assets: tuple[str, ...]
    method: str
    gross: float
    risk_contributions: np.ndarray
    volatility: float
    caps: RegimeCaps
    converged: bool
    note: str = ""

    def as_series(self) -> pd.Series:
        """Weights as a Series indexed by asset name, named after the method."""
        return pd.Series(np.array(self.weights), index=list(self.assets), name=self.method)


# ---------------------------------------------------------------------------------------
# skfolio plumbing


@functools.cache
def _fixed_prior_class() -> type:
    """The fixed-prior estimator class, built on first use so that importing this module does
    not import skfolio (about two seconds: cvxpy, plotly)."""
    from skfolio.prior import BasePrior, ReturnDistribution

    class FixedPrior(BasePrior):
        """skfolio prior that returns a given ``mu`` and covariance instead of estimating them.

        ``fit(X)`` keeps ``X`` as the return scenarios; the variance-based estimators used here
        read only the covariance (and ``mu`` for ``mv``) and the scenarios' shape.
        """

        def __init__(self, mu: Any = None, covariance: Any = None) -> None:
            self.mu = mu
            self.covariance = covariance

        def fit(self, X: Any, y: Any = None, **fit_params: Any) -> FixedPrior:
            self.return_distribution_ = ReturnDistribution(
                mu=np.array(self.mu, dtype=np.float64),
                covariance=np.array(self.covariance, dtype=np.float64),
                returns=np.array(X, dtype=np.float64),
            )
            return self

    return FixedPrior


def _scenarios(cov: np.ndarray) -> np.ndarray:
    """``2k`` zero-mean scenarios whose (population) covariance is exactly ``cov``.

    With ``cov = B B'`` (``B = V sqrt(Λ)``), the rows ``±sqrt(k) B[:, j]'`` have mean zero and
    second moment ``B B'``. skfolio needs a scenario matrix for the shapes; giving it one that
    agrees with the covariance keeps any scenario-based quantity consistent.
    """
    k = cov.shape[0]
    lam, vec = np.linalg.eigh(cov)
    b = vec * np.sqrt(np.clip(lam, 0.0, None))
    return np.vstack([math.sqrt(k) * b.T, -math.sqrt(k) * b.T])


def _newton_erc(cov: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, bool]:
    """Minimise ``y'Σy / 2 - mean(log y)`` by damped Newton from ``start``; return ``y / sum(y)``.

    The stationary point satisfies ``y_i (Σy)_i = 1 / k`` for every ``i``: equal risk
    contributions (Spinu 2013). The objective is strictly convex on ``y > 0``.
    """
    k = cov.shape[0]
    b = np.full(k, 1.0 / k)
    y = np.clip(start, 1e-12, None)
    y = y / math.sqrt(max(float(y @ cov @ y), np.finfo(float).tiny))

    def f(z: np.ndarray) -> float:
        return 0.5 * float(z @ cov @ z) - float(b @ np.log(z))

    ok = False
    for _ in range(_NEWTON_MAX_ITER):
        g = cov @ y - b / y
        if np.max(np.abs(g)) < _NEWTON_TOL:
            ok = True
            break
        hess = cov + np.diag(b / (y * y))
        step = np.linalg.solve(hess, g)
        t = 1.0
        fy = f(y)
        while True:
            z = y - t * step
            if np.all(z > 0) and f(z) <= fy - 1e-4 * t * float(g @ step):
                break
            t *= 0.5
            if t < 1e-12:
                z = y
                break
        if z is y:
            break
        y = z
    else:
        g = cov @ y - b / y
        ok = bool(np.max(np.abs(g)) < 1e-9)
    return y / y.sum(), ok


def _fit_skfolio(estimator: Any, x: np.ndarray) -> tuple[np.ndarray | None, str, bool]:
    """Fit; return ``(weights or None, note, accurate)``."""
    from skfolio.exceptions import OptimizationError

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            estimator.fit(x)
        except (OptimizationError, ValueError, np.linalg.LinAlgError) as exc:
            return None, f"{type(estimator).__name__} failed: {exc}", False
    w = getattr(estimator, "weights_", None)
    messages = sorted({str(c.message) for c in caught})
    accurate = not any("inaccurate" in m.lower() for m in messages)
    note = "; ".join(messages)
    if w is None or not np.all(np.isfinite(w)):
        return None, f"{type(estimator).__name__} returned no weights. {note}".strip(), False
    return np.array(w, dtype=np.float64), note, accurate


def _apply_caps(w: np.ndarray, gross: float, per_asset: float) -> np.ndarray:
    """Scale non-negative ``w`` to ``gross`` and water-fill the excess above ``per_asset``."""
    base = np.clip(np.asarray(w, dtype=np.float64), 0.0, None)
    total = base.sum()
    if not total > 0:
        return np.zeros_like(base)
    base = base / total
    capped = np.zeros(base.size, dtype=bool)
    out = base * gross
    for _ in range(base.size + 1):
        over = ~capped & (out > per_asset)
        if not over.any():
            break
        capped |= over
        free = ~capped
        remaining = gross - per_asset * int(capped.sum())
        out = np.where(capped, per_asset, 0.0)
        free_total = base[free].sum()
        if free.any() and free_total > 0 and remaining > 0:
            out[free] = base[free] / free_total * remaining
    return np.minimum(out, per_asset)


# ---------------------------------------------------------------------------------------
# Weights


def portfolio_weights(
    method: str,
    covariance: CovarianceEstimate,
    *,
    caps: RegimeCaps = RegimeCaps(1.0, 1.0),
    expected_returns: Any = None,
    previous_weights: Any = None,
    turnover_cost: float = 0.0,
    risk_aversion: float = 1.0,
) -> PortfolioWeights:
    """Long-only portfolio weights from a covariance estimate, within regime caps.

    Parameters
    ----------
    method : {"erc", "mv", "hrp", "invvol"}
        ``invvol``: ``w_i ∝ 1/sigma_i`` (closed form). ``erc``: equal risk contributions
        (skfolio ``RiskBudgeting``, Newton-polished). ``hrp``: skfolio
        ``HierarchicalRiskParity`` on the correlation distance of ``covariance``. ``mv``:
        skfolio ``MeanRisk`` maximising ``mu'w - risk_aversion * w'Σw`` net of turnover cost.
        See the module docstring.
    covariance : CovarianceEstimate
        Per-bar covariance of the assets (e.g. from :func:`regime_covariance`); every
        variance must be positive.
    caps : RegimeCaps, default RegimeCaps(1.0, 1.0)
        ``gross`` and ``per_asset`` limits (see :func:`caps_for`). For ``invvol``/``erc``/
        ``hrp`` they are applied after the estimator: scale to ``gross``, cut each asset at
        ``per_asset`` and hand the excess to the uncapped assets pro rata (water-filling);
        when ``k * per_asset < gross`` the rest stays in cash. For ``mv`` they are the
        optimiser's bounds: ``0 <= w_i <= per_asset`` and ``sum(w) = min(gross, k *
        per_asset)``.
    expected_returns : array-like or pandas.Series, optional
        ``mv`` only: expected simple return per asset **per bar** (a Series is aligned by
        asset name). Default zeros, which makes ``mv`` the minimum-variance portfolio.
    previous_weights : array-like or pandas.Series, optional
        ``mv`` only: current holdings against which turnover is charged. Default zeros.
    turnover_cost : float, default 0.0
        ``mv`` only: cost per unit of weight traded, as a fraction, in the same per-bar units
        as ``expected_returns`` (a one-off cost should be divided by the expected holding
        period in bars). Charged in the objective as ``turnover_cost * sum|w - w_prev|``.
    risk_aversion : float, default 1.0
        ``mv`` only: the ``lambda`` of ``mu'w - lambda * w'Σw``; positive.

    Returns
    -------
    PortfolioWeights
        Weights, their risk contributions and per-bar volatility. If a skfolio solver fails
        the weights are the capped inverse-volatility portfolio, ``converged`` is False and
        ``note`` says why.

    Raises
    ------
    TypeError
        If ``covariance`` is not a CovarianceEstimate or ``caps`` not a RegimeCaps.
    ValueError
        For an unknown ``method`` or a bad ``expected_returns``, ``previous_weights``,
        ``turnover_cost`` or ``risk_aversion``.
    InsufficientDataError
        If an asset's variance is zero (its volatility cannot scale a weight).
    """
    check_choice(method, "method", PORTFOLIO_METHODS)
    if not isinstance(covariance, CovarianceEstimate):
        raise TypeError(
            f"covariance must be a CovarianceEstimate, got {type(covariance).__name__}"
        )
    if not isinstance(caps, RegimeCaps):
        raise TypeError(f"caps must be a RegimeCaps, got {type(caps).__name__}")
    turnover_cost = _check_real(turnover_cost, "turnover_cost", allow_zero=True)
    risk_aversion = _check_real(risk_aversion, "risk_aversion", allow_zero=False)
    cov = np.array(covariance.covariance)
    assets = covariance.assets
    k = len(assets)
    mu = np.zeros(k) if expected_returns is None else _as_vector(
        expected_returns, "expected_returns", assets, k
    )
    prev = np.zeros(k) if previous_weights is None else _as_vector(
        previous_weights, "previous_weights", assets, k
    )
    var = np.diag(cov)
    if np.any(var <= 0):
        zero = [a for a, v in zip(assets, var, strict=True) if v <= 0]
        raise InsufficientDataError(f"asset(s) {zero} have zero variance; drop them first")

    notes: list[str] = []
    converged = True
    invvol = 1.0 / np.sqrt(var)
    invvol = invvol / invvol.sum()
    scale = 1.0 / float(np.mean(var))
    scov = cov * scale
    x = _scenarios(scov)
    prior_cls = _fixed_prior_class()
    raw: np.ndarray | None

    if method == "invvol":
        raw = invvol
    elif method == "erc":
        from skfolio.optimization import RiskBudgeting

        est = RiskBudgeting(
            prior_estimator=prior_cls(mu=np.zeros(k), covariance=scov),
            solver_params=dict(_SOLVER_PARAMS),
        )
        raw, note, accurate = _fit_skfolio(est, x)
        if note:
            notes.append(note)
        if raw is not None:
            raw, newton_ok = _newton_erc(scov, raw)
            converged = newton_ok
            if not newton_ok:
                notes.append("Newton polish of the ERC weights did not converge")
    elif method == "hrp":
        from skfolio.distance import CovarianceDistance
        from skfolio.optimization import HierarchicalRiskParity

        est = HierarchicalRiskParity(
            prior_estimator=prior_cls(mu=np.zeros(k), covariance=scov),
            distance_estimator=CovarianceDistance(covariance_estimator="precomputed"),
        )
        raw, note, accurate = _fit_skfolio(est, x)
        if note:
            notes.append(note)
        converged = accurate
    else:
        raw, note, accurate = _fit_mv(
            prior_cls, scov, scale, mu, prev, caps, turnover_cost, risk_aversion, x
        )
        if note:
            notes.append(note)
        converged = accurate
        if raw is not None:
            if k * caps.per_asset < caps.gross:
                notes.append(
                    f"{k} assets x per_asset {caps.per_asset:g} < gross {caps.gross:g}: "
                    "budget cut to k * per_asset, the rest is cash"
                )
            w = np.clip(raw, 0.0, caps.per_asset)
            return _result(w, assets, method, cov, caps, converged, notes)

    if raw is None:
        converged = False
        notes.append("fallback: capped inverse-volatility weights")
        raw = invvol
    w = _apply_caps(raw, caps.gross, caps.per_asset)
    if k * caps.per_asset < caps.gross:
        notes.append(
            f"{k} assets x per_asset {caps.per_asset:g} < gross {caps.gross:g}: the rest is cash"
        )
    return _result(w, assets, method, cov, caps, converged, notes)


def _fit_mv(
    prior_cls: type,
    scov: np.ndarray,
    scale: float,
    mu: np.ndarray,
    prev: np.ndarray,
    caps: RegimeCaps,
    turnover_cost: float,
    risk_aversion: float,
    x: np.ndarray,
) -> tuple[np.ndarray | None, str, bool]:
    from skfolio.measures import RiskMeasure
    from skfolio.optimization import MeanRisk, ObjectiveFunction

    k = scov.shape[0]
    est = MeanRisk(
        objective_function=ObjectiveFunction.MAXIMIZE_UTILITY,
        risk_measure=RiskMeasure.VARIANCE,
        risk_aversion=risk_aversion,
        prior_estimator=prior_cls(mu=mu * scale, covariance=scov),
        min_weights=0.0,
        max_weights=caps.per_asset,
        budget=min(caps.gross, k * caps.per_asset),
        transaction_costs=turnover_cost * scale,
        previous_weights=prev,
        solver_params=dict(_SOLVER_PARAMS),
    )
    return _fit_skfolio(est, x)


def _result(
    w: np.ndarray,
    assets: tuple[str, ...],
    method: str,
    cov: np.ndarray,
    caps: RegimeCaps,
    converged: bool,
    notes: list[str],
) -> PortfolioWeights:
    rc = risk_contributions(w, cov)
    vol = math.sqrt(max(float(w @ cov @ w), 0.0))
    return PortfolioWeights(
        weights=readonly(w, dtype=np.float64),
        assets=assets,
        method=method,
        gross=float(w.sum()),
        risk_contributions=readonly(rc, dtype=np.float64),
        volatility=vol,
        caps=caps,
        converged=bool(converged),
        note="; ".join(n for n in notes if n),
    )


def _check_real(value: Any, name: str, *, allow_zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {bound}, got {value!r}")
    return v


# ---------------------------------------------------------------------------------------
# Drift and rebalancing


def drift_weights(weights: Any, asset_returns: Any) -> np.ndarray:
    r"""Weights after one bar of simple returns with no trading (cash earns 0).

    .. math:: w_i' = \frac{w_i (1 + r_i)}{1 + w^\top r}

    Parameters
    ----------
    weights : array-like
        ``(k,)`` weights at the start of the bar (``1 - sum`` is cash).
    asset_returns : array-like
        ``(k,)`` simple returns over the bar, each ``>= -1``.

    Returns
    -------
    numpy.ndarray
        ``(k,)`` weights at the end of the bar.

    Raises
    ------
    ValueError
        If the shapes differ, a value is not finite, a return is below -1, or the account's
        value ``1 + w'r`` is not positive.
    """
    w = np.array(weights, dtype=np.float64, copy=True)
    if w.ndim != 1:
        raise ValueError(f"weights must be one-dimensional, got shape {w.shape}")
    r = _as_vector(asset_returns, "asset_returns", None, w.size)
    if not np.all(np.isfinite(w)):
        raise ValueError("weights must be finite")
    if np.any(r < -1.0):
        raise ValueError("asset_returns must be >= -1 (a simple return cannot lose more than 100%)")
    growth = 1.0 + float(w @ r)
    if not growth > 0:
        raise ValueError(f"the account's value 1 + w'r = {growth} is not positive")
    return w * (1.0 + r) / growth


def rebalance_due(current: Any, target: Any, *, band: float, regime_changed: bool) -> bool:
    """Whether to trade to the target weights now.

    Parameters
    ----------
    current : array-like
        ``(k,)`` weights held (e.g. after :func:`drift_weights`).
    target : array-like
        ``(k,)`` target weights.
    band : float
        No-trade band on each weight; ``>= 0``.
    regime_changed : bool
        True when the consensus family changed since the last rebalance.

    Returns
    -------
    bool
        True when ``regime_changed`` or ``max_i |current_i - target_i| > band``.

    Raises
    ------
    ValueError
        If the shapes differ, a value is not finite or ``band`` is negative.
    TypeError
        If ``regime_changed`` is not a bool.
    """
    band = _check_real(band, "band", allow_zero=True)
    if not isinstance(regime_changed, (bool, np.bool_)):
        raise TypeError(f"regime_changed must be a bool, got {type(regime_changed).__name__}")
    c = np.array(current, dtype=np.float64, copy=True)
    if c.ndim != 1:
        raise ValueError(f"current must be one-dimensional, got shape {c.shape}")
    if not np.all(np.isfinite(c)):
        raise ValueError("current must be finite")
    t = _as_vector(target, "target", None, c.size)
    if regime_changed:
        return True
    return bool(np.max(np.abs(c - t), initial=0.0) > band)
