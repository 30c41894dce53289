"""The statistics report of one symbol and timeframe: tests, p-values and plain readings.

Shared by the statistics agent node, ``regimedesk stats`` and the Telegram bot so they say
the same thing. Numbers come from ``analytics``; this module only chooses the window and
words the readings.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import threading
from typing import Any

import numpy as np
import pandas as pd

from analytics import (
    InsufficientDataError,
    adf_test,
    autocorrelation,
    hurst_exponent,
    ljung_box,
    market_character,
    variance_ratio,
)

__all__ = ["statistics_report", "ALPHA", "MIN_CHARACTER_BARS"]

ALPHA = 0.05
#: market_character needs at least this many prices (its calibration is per sample size).
MIN_CHARACTER_BARS = 100


def _f(x: Any) -> float | None:
    v = float(x)
    return v if np.isfinite(v) else None


def _adf(logp: np.ndarray) -> dict[str, Any]:
    r = adf_test(logp, regression="c", autolag="AIC")
    if r.pvalue < ALPHA:
        reading = f"unit root rejected at {ALPHA:.0%} (p = {r.pvalue:.3f}): the price level reverts to a mean"
    else:
        reading = f"no evidence against a unit root (p = {r.pvalue:.3f}): the level wanders like a random walk"
    return {
        "stat": _f(r.stat),
        "pvalue": _f(r.pvalue),
        "lags": int(r.lags),
        "nobs": int(r.nobs),
        "critical_5pct": _f(r.critical_values["5%"]),
        "reading": reading,
    }


def _vr(logp: np.ndarray) -> dict[str, Any]:
    lags = tuple(q for q in (2, 4, 8, 16) if q <= (len(logp) - 1) // 4)
    if not lags:
        raise InsufficientDataError("too few bars for any variance-ratio horizon")
    r = variance_ratio(logp, lags, robust=True, debiased=True, overlap=True)
    above = int(np.sum(np.asarray(r.vr) > 1))
    if r.joint_pvalue < ALPHA:
        kind = "trending (positively autocorrelated returns)" if above * 2 > len(lags) else "mean-reverting (negatively autocorrelated returns)"
        reading = f"random walk rejected (Chow-Denning p = {r.joint_pvalue:.3f}): {kind}"
    else:
        reading = f"consistent with a random walk (Chow-Denning p = {r.joint_pvalue:.3f})"
    return {
        "lags": list(lags),
        "vr": [_f(v) for v in r.vr],
        "z": [_f(v) for v in r.stat],
        "pvalue": [_f(v) for v in r.pvalue],
        "joint_stat": _f(r.joint_stat),
        "joint_pvalue": _f(r.joint_pvalue),
        "reading": reading,
    }


def _hurst(returns: np.ndarray) -> dict[str, Any]:
    r = hurst_exponent(returns, method="dfa", alpha=ALPHA)
    if r.ci_low > 0.5:
        reading = f"persistent (H = {r.hurst:.2f}, {1 - ALPHA:.0%} CI above 0.5): moves tend to continue"
    elif r.ci_high < 0.5:
        reading = f"anti-persistent (H = {r.hurst:.2f}, {1 - ALPHA:.0%} CI below 0.5): moves tend to reverse"
    else:
        reading = f"no long memory (H = {r.hurst:.2f}, {1 - ALPHA:.0%} CI contains 0.5)"
    return {
        "hurst": _f(r.hurst),
        "stderr": _f(r.stderr),
        "ci_low": _f(r.ci_low),
        "ci_high": _f(r.ci_high),
        "method": r.method,
        "reading": reading,
    }


def _acf(returns: np.ndarray) -> dict[str, Any]:
    nlags = int(min(10, len(returns) // 5))
    ac = autocorrelation(returns, nlags=nlags, alpha=ALPHA)
    lb = ljung_box(returns, lags=nlags)
    p = float(np.asarray(lb.pvalue)[-1])
    reading = (
        f"returns are autocorrelated (Ljung-Box p = {p:.3f} over {nlags} lags)"
        if p < ALPHA
        else f"no significant autocorrelation (Ljung-Box p = {p:.3f} over {nlags} lags)"
    )
    acf = np.asarray(ac.acf)
    return {
        "acf": [_f(v) for v in acf[1 : min(6, len(acf))]],
        "ljung_box_lags": nlags,
        "ljung_box_stat": _f(np.asarray(lb.stat)[-1]),
        "ljung_box_pvalue": _f(p),
        "reading": reading,
    }


_READINGS = {
    "trending": "trending: persistence beyond what random walks of this length show",
    "mean_reverting": "mean-reverting: reversion beyond what random walks of this length show",
    "random_walk": "random walk: no evidence beyond the random-walk null at this length",
}


def _character(logp: np.ndarray, fit_cache=None) -> dict[str, Any]:
    if len(logp) < MIN_CHARACTER_BARS:
        return {"available": False, "reason": f"needs at least {MIN_CHARACTER_BARS} bars, window has {len(logp)}"}
    r = market_character(logp, alpha=ALPHA, calibration_cache=fit_cache)
    return {
        "available": True,
        "character": r.character,
        "confidence": _f(r.confidence),
        "pvalue_trending": _f(r.pvalue_trending),
        "pvalue_mean_reverting": _f(r.pvalue_mean_reverting),
        "reading": _READINGS.get(r.character, f"{r.character}: the statistics could not decide"),
    }


def statistics_report(close: pd.Series, window: int, fit_cache=None) -> dict[str, Any]:
    """Every statistic over the last ``window`` closes, with readings.

    Parameters
    ----------
    close : Series
        Closing prices with a DatetimeIndex (positive, finite).
    window : int
        Number of most recent closes to use (>= 20).
    fit_cache : mutable mapping, optional
        Keeps the market character's random-walk calibration between processes (the same
        tables, not simulated again).

    Returns
    -------
    dict
        JSON-ready: ``start, end, nobs, adf, variance_ratio, hurst, autocorrelation,
        character``. A test that cannot be computed on this window carries
        ``{"error": reason}`` instead of numbers.
    """
    if window < 20:
        raise ValueError(f"window must be >= 20, got {window}")
    tail = close.iloc[-window:]
    if len(tail) < 20:
        raise InsufficientDataError(f"only {len(tail)} bars available; statistics need at least 20")
    values = tail.to_numpy(dtype=float)
    key = hashlib.sha256(values.tobytes() + tail.index.asi8.tobytes() + str(window).encode()).hexdigest()
    with _REPORTS_LOCK:
        kept = _REPORTS.get(key)
    if kept is not None:  # the same window as an earlier run (a weekly timeframe between week ends)
        return copy.deepcopy(kept)
    report = _report(tail, values, fit_cache)
    with _REPORTS_LOCK:
        _REPORTS[key] = copy.deepcopy(report)
        while len(_REPORTS) > 256:
            del _REPORTS[next(iter(_REPORTS))]
    return report


#: Reports by a digest of their window (closes and stamps) and length: a pure function of it.
_REPORTS: dict[str, dict[str, Any]] = {}
_REPORTS_LOCK = threading.Lock()


def _report(tail: pd.Series, values: np.ndarray, fit_cache) -> dict[str, Any]:
    logp = np.log(values)
    returns = np.diff(logp)
    report: dict[str, Any] = {
        "start": tail.index[0].isoformat(),
        "end": tail.index[-1].isoformat(),
        "nobs": int(len(tail)),
    }
    for key, fn, arg in (
        ("adf", _adf, logp),
        ("variance_ratio", _vr, logp),
        ("hurst", _hurst, returns),
        ("autocorrelation", _acf, returns),
        ("character", functools.partial(_character, fit_cache=fit_cache), logp),
    ):
        try:
            report[key] = fn(arg)
        except InsufficientDataError as exc:
            report[key] = {"error": str(exc)}
    return report
