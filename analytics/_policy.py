"""The deterministic decision policy: regime family and P(up) -> target weight.

One function, :func:`target_weights`, maps inputs to weights for any number of bars. The
graph's decision node calls it for the current bar and ``regimedesk backtest`` for every
bar of history, so live decisions and backtests share one code path.

Policies
--------
``regime``
    ``risk_on_weight`` in a risk-on regime, ``risk_off_weight`` in a risk-off regime, their
    mean when the timeframes are split evenly (``mixed``); no decision without a regime.
``ml``
    ``risk_on_weight`` when ``P(up) >= p_long``, else flat; no decision without a signal.
``combined``
    The regime weight, overridden by a confident signal: in a risk-on regime a signal with
    ``P(up) < p_exit`` cuts the weight to ``risk_off_weight``; in a risk-off regime a signal
    with ``P(up) > p_enter`` restores ``risk_on_weight``. Without a signal the regime
    weight stands; without a regime there is no decision.

Every policy then applies volatility targeting when ``target_vol > 0``: the weight is
multiplied by ``min(1, target_vol / vol)`` where ``vol`` is the causal volatility
forecast for the next bar (annualised; the walk-forward GARCH forecast in RegimeDesk);
without a forecast there is no decision.

Parameters are chosen walk-forward (:func:`select_policy_params`): at each re-selection
date the candidate with the best Sharpe ratio on the history before that date (after
costs) is kept until the next date; with too little history the a-priori defaults
(:class:`PolicyParams()`) are used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from analytics._backtest import BacktestConfig, run_backtest

__all__ = [
    "POLICIES",
    "PolicyParams",
    "POLICY_GRIDS",
    "target_weights",
    "select_policy_params",
    "WalkForwardPolicy",
    "walk_forward_policy",
]

POLICIES: tuple[str, ...] = ("regime", "ml", "combined")


@dataclass(frozen=True)
class PolicyParams:
    """Parameters of the policies (defaults are the a-priori choice, not tuned).

    Parameters
    ----------
    risk_on_weight : float, default 1.0
    risk_off_weight : float, default 0.0
    p_long : float, default 0.5
        ``ml``: long when ``P(up) >= p_long``.
    p_exit : float, default 0.0
        ``combined``: in risk-on, cut to ``risk_off_weight`` when ``P(up) < p_exit``
        (0 disables).
    p_enter : float, default 1.0
        ``combined``: in risk-off, restore ``risk_on_weight`` when ``P(up) > p_enter``
        (1 disables).
    target_vol : float, default 0.0
        Annualised volatility target; 0 disables volatility scaling.
    """

    risk_on_weight: float = 1.0
    risk_off_weight: float = 0.0
    p_long: float = 0.5
    p_exit: float = 0.0
    p_enter: float = 1.0
    target_vol: float = 0.0

    def __post_init__(self) -> None:
        for name in ("risk_on_weight", "risk_off_weight"):
            v = getattr(self, name)
            if not (np.isfinite(v) and -1.0 <= v <= 1.0):
                raise ValueError(f"{name} must be in [-1, 1], got {v!r}")
        for name in ("p_long", "p_exit", "p_enter"):
            v = getattr(self, name)
            if not (np.isfinite(v) and 0.0 <= v <= 1.0):
                raise ValueError(f"{name} must be in [0, 1], got {v!r}")
        if not (np.isfinite(self.target_vol) and 0.0 <= self.target_vol <= 2.0):
            raise ValueError(f"target_vol must be in [0, 2], got {self.target_vol!r}")

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


_VOL_TARGETS = (0.0, 0.10, 0.15)

#: Candidates per policy for walk-forward selection; the first is the default.
POLICY_GRIDS: dict[str, tuple[PolicyParams, ...]] = {
    "regime": tuple(
        PolicyParams(risk_off_weight=x, target_vol=v) for v in _VOL_TARGETS for x in (0.0, 0.25, 0.5)
    ),
    "ml": tuple(PolicyParams(p_long=p, target_vol=v) for v in _VOL_TARGETS for p in (0.5, 0.52, 0.55)),
    "combined": tuple(
        PolicyParams(risk_off_weight=x, p_exit=pe, p_enter=pn, target_vol=v)
        for v in _VOL_TARGETS
        for x in (0.0, 0.25, 0.5)
        for pe in (0.0, 0.45)
        for pn in (1.0, 0.6)
    ),
}


def _check_policy(policy: str) -> str:
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}, not {policy!r}")
    return policy


def target_weights(
    policy: str,
    params: PolicyParams,
    regime_family: Sequence[str | None] | np.ndarray,
    p_up: Sequence[float | None] | np.ndarray,
    vol: Sequence[float | None] | np.ndarray | None = None,
) -> np.ndarray:
    """Target weight per bar (NaN = no decision).

    Parameters
    ----------
    policy : {'regime', 'ml', 'combined'}
    params : PolicyParams
    regime_family : array-like of str, shape (n,)
        ``'risk_on'``, ``'risk_off'``, ``'mixed'``; anything else (``'unavailable'``,
        ``None``) means no regime.
    p_up : array-like of float, shape (n,)
        Signal probability; NaN/None means no signal. Values outside [0, 1] are rejected.
    vol : array-like of float, shape (n,), optional
        Annualised volatility forecast per bar; needed when ``params.target_vol > 0``
        (missing or non-positive values mean no decision).

    Returns
    -------
    ndarray, shape (n,)
    """
    _check_policy(policy)
    fam = np.asarray([str(f) if f is not None else "" for f in regime_family], dtype=object)
    p = np.asarray([np.nan if v is None else v for v in p_up], dtype=float)
    if fam.shape != p.shape:
        raise ValueError("regime_family and p_up must have the same length")
    has_p = np.isfinite(p)
    if np.any(has_p & ((p < 0) | (p > 1))):
        raise ValueError("p_up must lie in [0, 1]")
    on, off = params.risk_on_weight, params.risk_off_weight
    regime_w = np.full(p.shape, np.nan)
    regime_w[fam == "risk_on"] = on
    regime_w[fam == "risk_off"] = off
    regime_w[fam == "mixed"] = 0.5 * (on + off)
    if policy == "regime":
        out = regime_w
    elif policy == "ml":
        out = np.full(p.shape, np.nan)
        out[has_p] = np.where(p[has_p] >= params.p_long, on, 0.0)
    else:
        out = regime_w.copy()
        pf = np.where(has_p, p, 0.5)
        out[(fam == "risk_on") & has_p & (pf < params.p_exit)] = off
        out[(fam == "risk_off") & has_p & (pf > params.p_enter)] = on
    if params.target_vol > 0:
        if vol is None:
            raise ValueError("vol is needed when target_vol > 0")
        v = np.asarray([np.nan if x is None else x for x in vol], dtype=float)
        if v.shape != p.shape:
            raise ValueError("vol must have one entry per bar")
        ok = np.isfinite(v) & (v > 0)
        scale = np.where(ok, np.minimum(1.0, params.target_vol / np.where(ok, v, 1.0)), np.nan)
        out = out * scale
    return out


def _first_valid(w: np.ndarray) -> int | None:
    idx = np.flatnonzero(np.isfinite(w))
    return int(idx[0]) if idx.size else None


def select_policy_params(
    policy: str,
    bars: pd.DataFrame,
    regime_family: Sequence[str | None] | np.ndarray,
    p_up: Sequence[float | None] | np.ndarray,
    vol: Sequence[float | None] | np.ndarray | None,
    end: int,
    config: BacktestConfig | None = None,
    *,
    min_history: int = 252,
    grid: Sequence[PolicyParams] | None = None,
) -> tuple[PolicyParams, list[dict[str, float]]]:
    """Best candidate by Sharpe ratio on bars before position ``end``.

    The evaluation runs from the first bar where every candidate decides to bar
    ``end - 1``; ties keep the earlier candidate. With fewer than ``min_history`` evaluable
    bars the default (first candidate) is returned. Without ``vol``, candidates that
    target a volatility are left out.

    Returns
    -------
    params, scores
        The choice and ``[{'candidate': i, 'sharpe': s}, ...]`` (empty if none was scored).
    """
    grid = tuple(grid or POLICY_GRIDS[_check_policy(policy)])
    fam = np.asarray(regime_family, dtype=object)[:end]
    p = np.asarray(p_up, dtype=float)[:end]
    v = None if vol is None else np.asarray(vol, dtype=float)[:end]
    if v is None:
        grid = tuple(c for c in grid if c.target_vol == 0) or grid[:1]
    # Score from the first bar where every candidate can decide.
    starts = [_first_valid(target_weights(policy, c, fam, p, v)) for c in grid]
    start = None if any(s is None for s in starts) else max(starts)
    if start is None or end - start < min_history:
        return grid[0], []
    window = bars.iloc[start:end]
    best, best_s, scores = grid[0], -np.inf, []
    for i, cand in enumerate(grid):
        w = target_weights(policy, cand, fam[start:], p[start:], None if v is None else v[start:])
        res = run_backtest(window, pd.Series(w, index=window.index), config)
        s = res.metrics.sharpe
        s = s if np.isfinite(s) else -np.inf
        scores.append({"candidate": i, "sharpe": float(s)})
        if s > best_s + 1e-12:
            best, best_s = cand, s
    return best, scores


@dataclass(frozen=True)
class WalkForwardPolicy:
    """Targets of a policy whose parameters were re-selected walk-forward.

    ``segments`` lists each re-selection: its first bar and the parameters in force.
    """

    target: pd.Series
    segments: tuple[dict[str, object], ...]


def walk_forward_policy(
    policy: str,
    bars: pd.DataFrame,
    regime_family: Sequence[str | None] | np.ndarray,
    p_up: Sequence[float | None] | np.ndarray,
    vol: Sequence[float | None] | np.ndarray | None,
    reselect_at: Sequence[int],
    config: BacktestConfig | None = None,
    *,
    min_history: int = 252,
    grid: Sequence[PolicyParams] | None = None,
    validated_only: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> WalkForwardPolicy:
    """Target weights with parameters re-chosen at each position of ``reselect_at``.

    At position ``k`` the choice uses bars ``< k`` only (:func:`select_policy_params`).
    With ``validated_only`` (default) the policy makes no decision (NaN) until the first
    re-selection that could score the candidates on enough history, so every parameter in
    force was chosen by walk-forward validation; otherwise the defaults fill that gap.
    """
    _check_policy(policy)
    grid = tuple(grid or POLICY_GRIDS[policy])
    n = len(bars)
    fam = np.asarray(regime_family, dtype=object)
    p = np.asarray(p_up, dtype=float)
    v = None if vol is None else np.asarray(vol, dtype=float)
    if fam.shape != (n,) or p.shape != (n,) or (v is not None and v.shape != (n,)):
        raise ValueError("regime_family, p_up and vol must have one entry per bar")
    cuts = sorted({int(k) for k in reselect_at if 0 < int(k) < n})
    bounds = [0, *cuts, n]
    w = np.full(n, np.nan)
    segments = []
    for j, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        if lo == 0:
            params, scores = grid[0], []
        else:
            params, scores = select_policy_params(policy, bars, fam, p, v, lo, config,
                                                  min_history=min_history, grid=grid)
        if scores or not validated_only:
            w[lo:hi] = target_weights(policy, params, fam[lo:hi], p[lo:hi], None if v is None else v[lo:hi])
        segments.append({"start": bars.index[lo], "params": params.to_dict(), "scored": bool(scores)})
        if progress is not None:
            progress(j + 1, len(bounds) - 1)
    return WalkForwardPolicy(pd.Series(w, index=bars.index, name="target"), tuple(segments))
