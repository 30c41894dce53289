"""Today's portfolio targets from the agents' per-symbol views: the portfolio agent's workflow.

The views of each symbol and how they enter:

* **regime**: the symbols' consensus families vote for the portfolio's family
  (:func:`consensus_family`), which picks the covariance half-life and the caps;
* **volatility forecast** (the ML agent's walk-forward GARCH forecast, annualised): replaces the
  EWMA volatility of that asset on the covariance's diagonal, keeping the EWMA correlations
  (``Σ = D R D``); an asset without a forecast keeps its EWMA volatility;
* **signal** (P(up) over the horizon): ``mv``'s expected return per bar,
  ``μ_i = (P(up)_i − 0.5) · σ_i`` (half a standard deviation at certainty, nothing at 0.5);
  the risk-parity methods use no expected returns.

Rebalancing: a new target is traded only when the portfolio's family changed since the last
portfolio decision, or when some held weight is more than ``portfolio.band`` away from its
target; otherwise the book is held (and the gate sees no order).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from agents.config import Settings
from analytics import (
    CovarianceEstimate,
    InsufficientDataError,
    RegimeCaps,
    caps_for,
    portfolio_weights,
    rebalance_due,
    regime_covariance,
    risk_contributions,
)

__all__ = ["SymbolView", "Allocation", "consensus_family", "aligned_returns", "allocate"]

_PERIODS = 252


@dataclass(frozen=True)
class SymbolView:
    """One symbol's views as the analysis agents reported them (None: not available)."""

    family: str | None = None
    p_up: float | None = None
    vol_forecast: float | None = None


@dataclass(frozen=True)
class Allocation:
    """Portfolio targets of one decision.

    Attributes
    ----------
    method : str
    family : str
        The portfolio's consensus family (risk_on, risk_off or unavailable).
    caps : RegimeCaps
    weights : dict
        Target weight per symbol (fractions of equity; the rest is cash).
    risk_contributions : dict
        Each symbol's contribution to the portfolio's annualised volatility (they sum to it).
    volatility : float
        Annualised volatility of the targets under the covariance used.
    expected_returns : dict or None
        ``mv``'s per-bar expected returns from the signals.
    rebalance : bool or None
        Whether the book should trade to the targets; None when no book is known.
    reason : str
        Why (or why not).
    converged : bool
    note : str
    """

    method: str
    family: str
    caps: RegimeCaps
    weights: dict[str, float]
    risk_contributions: dict[str, float]
    volatility: float
    expected_returns: dict[str, float] | None
    rebalance: bool | None
    reason: str
    converged: bool = True
    note: str = ""
    vol_sources: dict[str, str] = field(default_factory=dict)


def consensus_family(families: Mapping[str, str | None]) -> str:
    """The portfolio's family: ``risk_off`` when at least half of the symbols with a regime are
    risk-off (ties lean to caution), ``risk_on`` otherwise, ``unavailable`` when none has one."""
    known = [f for f in families.values() if f in ("risk_on", "risk_off")]
    if not known:
        return "unavailable"
    return "risk_off" if 2 * sum(f == "risk_off" for f in known) >= len(known) else "risk_on"


def aligned_returns(closes: Mapping[str, pd.Series], window: int) -> pd.DataFrame:
    """Simple returns of the symbols on their common dates, the last ``window`` of them."""
    frame = pd.DataFrame(dict(closes)).dropna()
    return frame.pct_change().iloc[1:].iloc[-window:]


def _with_forecasts(cov: CovarianceEstimate, views: Mapping[str, SymbolView]) -> tuple[CovarianceEstimate,
                                                                                      dict[str, str]]:
    sd = np.sqrt(np.diag(cov.covariance))
    corr = cov.covariance / np.outer(sd, sd)
    new_sd = sd.copy()
    sources = {}
    for i, a in enumerate(cov.assets):
        f = views.get(a, SymbolView()).vol_forecast
        if f is not None and np.isfinite(f) and f > 0:
            new_sd[i] = f / np.sqrt(_PERIODS)
            sources[a] = "garch forecast"
        else:
            sources[a] = "ewma"
    out = CovarianceEstimate(corr * np.outer(new_sd, new_sd), cov.assets, cov.half_life, cov.family, cov.nobs,
                             cov.end)
    return out, sources


def allocate(
    settings: Settings,
    method: str,
    returns: pd.DataFrame,
    views: Mapping[str, SymbolView],
    *,
    current: Mapping[str, float] | None = None,
    previous_family: str | None = None,
) -> Allocation:
    """Portfolio target weights for the symbols of ``returns`` (module docstring).

    Parameters
    ----------
    settings : Settings
        ``[portfolio]``: half-lives, caps, band, costs, risk aversion, review period.
    method : {'erc', 'mv', 'hrp', 'invvol'}
    returns : DataFrame
        Simple daily returns on common dates up to the decision's bar (e.g. :func:`aligned_returns`).
    views : mapping
        ``symbol -> SymbolView``.
    current : mapping, optional
        The book's weights now (a broker's positions); None: no book, ``rebalance`` is None.
    previous_family : str, optional
        The family of the last portfolio decision; a different one forces a rebalance.

    Raises
    ------
    InsufficientDataError
        Fewer common returns than ``portfolio.min_history``.
    """
    p = settings.portfolio
    if len(returns) < p.min_history:
        raise InsufficientDataError(f"{len(returns)} common daily returns of {', '.join(map(str, returns.columns))}; "
                                    f"the portfolio needs at least {p.min_history}")
    family = consensus_family({s: v.family for s, v in views.items()})
    cov = regime_covariance(returns, family, half_lives=p.half_lives, min_obs=p.min_history)
    cov, sources = _with_forecasts(cov, views)
    caps = caps_for(family, {k: RegimeCaps(c.gross, c.per_asset) for k, c in p.caps.items()})
    assets = cov.assets
    now = np.array([float((current or {}).get(a, 0.0)) for a in assets])
    mu = None
    kwargs: dict[str, Any] = {}
    if method == "mv":
        sd = np.sqrt(np.diag(cov.covariance))
        mu = np.array([0.0 if views.get(a, SymbolView()).p_up is None else (views[a].p_up - 0.5) * sd[i]
                       for i, a in enumerate(assets)])
        kwargs = dict(expected_returns=mu, previous_weights=now, turnover_cost=p.cost_bps / 1e4,
                      risk_aversion=p.risk_aversion * p.review_every)
    pw = portfolio_weights(method, cov, caps=caps, **kwargs)
    w = np.asarray(pw.weights, dtype=float)
    rc = risk_contributions(w, cov.covariance) * np.sqrt(_PERIODS) if w.any() else np.zeros(len(w))
    vol = float(np.sqrt(w @ cov.covariance @ w) * np.sqrt(_PERIODS))
    if current is None:
        rebalance, reason = None, "no broker: targets only"
    else:
        changed = previous_family is not None and previous_family != family
        rebalance = rebalance_due(now, w, band=p.band, regime_changed=changed)
        drift = float(np.max(np.abs(now - w))) if len(w) else 0.0
        if changed:
            reason = f"regime changed from {previous_family} to {family}"
        elif rebalance:
            reason = f"largest drift {drift:.3f} is beyond the band {p.band:g}"
        else:
            reason = f"held: largest drift {drift:.3f} is within the band {p.band:g}"
    return Allocation(
        method=method, family=family, caps=caps,
        weights={a: float(x) for a, x in zip(assets, w, strict=True)},
        risk_contributions={a: float(x) for a, x in zip(assets, rc, strict=True)},
        volatility=vol,
        expected_returns=None if mu is None else {a: float(x) for a, x in zip(assets, mu, strict=True)},
        rebalance=rebalance, reason=reason, converged=bool(pw.converged), note=pw.note,
        vol_sources=sources,
    )
