"""Causal features from bars: a value stamped at bar ``t`` uses only bars closed at or before ``t``.

Every feature is a trailing-window function of the bars (or of an input series that is
itself causal, such as filtered regime probabilities), so recomputing on a prefix of the
data gives the same values on that prefix; ``tests/signals`` proves it column by column.
Early bars whose window is not yet full are NaN (XGBoost handles missing values natively);
nothing is back-filled and no scaler sees the whole sample.

GARCH volatility is walk-forward: GARCH(1,1) parameters are re-estimated every
``garch_refit`` bars on the returns before the refit bar only, and the one-step-ahead
conditional volatility of each block comes from the variance recursion with the parameters
in force at that time.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from analytics import is_close_only, rolling_adf, rolling_hurst, rolling_variance_ratio

__all__ = ["FeatureConfig", "FEATURE_DESCRIPTIONS", "build_features", "latest_features", "garch_volatility"]

#: Column -> what it measures (all trailing, as of the bar's close).
FEATURE_DESCRIPTIONS: dict[str, str] = {
    "ret_{h}": "log return over the last h bars",
    "rv_{w}": "annualised realised volatility of log returns over the last w bars",
    "garch_vol": "walk-forward GARCH(1,1) one-step-ahead volatility forecast, annualised",
    "vol_ratio": "rv of the short window over rv of the long window",
    "range": "log(high / low) of the bar",
    "park_vol": "Parkinson range volatility over the short window, annualised",
    "close_loc": "where the close sits in the bar's range (0 = low, 1 = high)",
    "ma_gap": "log(close / moving average of the long window)",
    "volume_z": "log volume minus its mean over the long window, in standard deviations",
    "volume_trend": "mean log volume of the last 5 bars minus that of the long window",
    "hurst": "DFA Hurst exponent of log returns over the stats window",
    "vr_stat": "robust variance-ratio z statistic (lag 5) over the stats window",
    "adf_stat": "ADF t statistic of log prices over the stats window",
    "regime_risk_off": "filtered probability of the risk-off regime family (input series)",
}


@dataclass(frozen=True)
class FeatureConfig:
    """Windows of the features (bars).

    Parameters
    ----------
    return_horizons : tuple of int, default (1, 5, 21, 63, 252)
    short_window : int, default 21
        Realised and Parkinson volatility.
    long_window : int, default 63
        Long realised volatility, volume normalisation, moving-average gap uses 4x this.
    stats_window : int, default 252
        Rolling Hurst, variance ratio and ADF (>= 64).
    garch_min_train : int, default 504
        Bars before the first GARCH estimate.
    garch_refit : int, default 252
        Bars between GARCH re-estimates.
    periods_per_year : int, default 252
    """

    return_horizons: tuple[int, ...] = (1, 5, 21, 63, 252)
    short_window: int = 21
    long_window: int = 63
    stats_window: int = 252
    garch_min_train: int = 504
    garch_refit: int = 252
    periods_per_year: int = 252

    def __post_init__(self) -> None:
        if not self.return_horizons or any(int(h) < 1 for h in self.return_horizons):
            raise ValueError("return_horizons must be positive integers")
        if not 2 <= self.short_window < self.long_window:
            raise ValueError("need 2 <= short_window < long_window")
        if self.stats_window < 64:
            raise ValueError("stats_window must be >= 64 (the Hurst estimator's shortest window)")
        if self.garch_min_train < 100 or self.garch_refit < 1:
            raise ValueError("garch_min_train must be >= 100 and garch_refit >= 1")
        if self.periods_per_year < 1:
            raise ValueError("periods_per_year must be >= 1")

    @property
    def lookback(self) -> int:
        """Bars the trailing-window features of one bar read, that bar included.

        The longest of: a return horizon plus one, the long realised-volatility window plus
        one, the moving average (4 x long window) and the stats window plus one (Hurst on
        its returns). GARCH volatility and the regime input are recursive and not bounded by it.
        """
        return max(max(int(h) for h in self.return_horizons) + 1, self.long_window + 1, 4 * self.long_window,
                   self.stats_window + 1)


def garch_volatility(
    returns: pd.Series, min_train: int = 504, refit_every: int = 252, periods_per_year: int = 252,
    fit_cache: MutableMapping[str, Any] | None = None, from_bar: int = 0,
) -> pd.Series:
    """Walk-forward GARCH(1,1) volatility forecast for the next bar, made at each bar's close.

    Parameters
    ----------
    returns : Series
        Log returns (finite).
    min_train : int
        Returns before the first fit; earlier values are NaN.
    refit_every : int
        Returns between fits; fit ``k`` uses ``returns[:min_train + k * refit_every]`` only.
    periods_per_year : int
    fit_cache : mutable mapping, optional
        GARCH parameters keyed by a digest of the returns each fit used; a fit whose key is
        present is read instead of estimated (same result, for live runs that add a bar).
    from_bar : int, default 0
        Only bars from this position on are wanted: blocks that end before it are neither
        fitted nor filtered and stay NaN. The values from ``from_bar`` on are those of the
        whole computation (the newest bar alone costs one variance recursion, no refit).

    Returns
    -------
    Series
        Annualised ``sigma_{t+1|t}`` stamped at ``t``.
    """
    r = returns.to_numpy(dtype=float) * 100.0  # arch converges better in percent
    n = r.size
    out = np.full(n, np.nan)
    start = min_train
    digest = hashlib.sha256(b"garch-volatility-v1")
    hashed = 0
    while start < n:
        stop = min(n, start + refit_every)
        digest.update(r[hashed:start].tobytes())
        hashed = start
        if stop <= from_bar:
            start = stop
            continue
        key = digest.hexdigest()
        params = None if fit_cache is None else fit_cache.get(key)
        if params is None:
            # only for a fit the cache lacks: arch takes ~0.5 s to import
            from arch import arch_model

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = arch_model(r[:start], mean="Constant", vol="GARCH", p=1, q=1).fit(disp="off")
            params = tuple(float(res.params[k]) for k in ("mu", "omega", "alpha[1]", "beta[1]"))
            if fit_cache is not None:
                fit_cache[key] = params
        mu, omega, alpha, beta = params
        e2 = (r[:stop] - mu) ** 2
        tau = min(75, start)
        w = 0.94 ** np.arange(tau)
        s2_0 = float(np.sum(e2[:tau] * w / w.sum()))  # arch's backcast, from the fit sample
        # sigma^2_{t+1|t} = omega + alpha e_t^2 + beta sigma^2_{t|t-1}, as one IIR filter
        s2 = lfilter([1.0], [1.0, -beta], omega + alpha * e2, zi=np.array([beta * s2_0]))[0]
        out[start:stop] = s2[start:stop]
        start = stop
    vol = np.sqrt(out) / 100.0 * np.sqrt(periods_per_year)
    return pd.Series(vol, index=returns.index, name="garch_vol")


def build_features(
    bars: pd.DataFrame,
    config: FeatureConfig | None = None,
    regime_risk_off: pd.Series | None = None,
    fit_cache: MutableMapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Feature matrix, one row per bar, every value known at that bar's close.

    Parameters
    ----------
    bars : DataFrame
        ``open, high, low, close`` (and optionally ``volume``) indexed by bar time,
        positive and finite.
    config : FeatureConfig, optional
    regime_risk_off : Series, optional
        Causal (filtered) probability of the risk-off regime family per bar; reindexed onto
        ``bars`` (bars before it starts are NaN).
    fit_cache : mutable mapping, optional
        Passed to :func:`garch_volatility`.

    Returns
    -------
    DataFrame
        Columns as in :data:`FEATURE_DESCRIPTIONS` (``ret_{h}`` per horizon); volume
        features only when a positive volume column exists; the range features (``range``,
        ``park_vol``, ``close_loc``) only when the bars are not close-only
        (:func:`analytics.is_close_only`), so no feature is read from invented highs and lows.
    """
    cfg = config or FeatureConfig()
    close = _checked_close(bars)
    r = np.log(close).diff()
    if len(r) > cfg.garch_min_train + 1:
        gv = garch_volatility(r.iloc[1:], cfg.garch_min_train, cfg.garch_refit, cfg.periods_per_year,
                              fit_cache=fit_cache).reindex(bars.index)
    else:
        gv = pd.Series(np.nan, index=bars.index)
    return _feature_frame(bars, cfg, gv, _regime_input(regime_risk_off, bars.index), _has_volume(bars),
                          not is_close_only(bars))


def latest_features(
    bars: pd.DataFrame,
    config: FeatureConfig | None = None,
    regime_risk_off: pd.Series | None = None,
    fit_cache: MutableMapping[str, Any] | None = None,
) -> pd.DataFrame:
    """The last row of :func:`build_features`, computed from the bars that row reads.

    Trailing-window features are computed on the last :attr:`FeatureConfig.lookback` bars
    only; GARCH volatility runs the variance recursion of the newest block with the
    parameters in force (read from ``fit_cache`` when present); the regime input is read at
    the last bar. The values equal ``build_features(bars, ...).iloc[[-1]]`` up to rounding
    (rolling sums over a shorter series; ``tests/signals`` checks 1e-9), at a cost that does
    not grow with the history, so a decision at a new bar does not rebuild every row.

    Parameters
    ----------
    bars, config, regime_risk_off, fit_cache
        As in :func:`build_features`.

    Returns
    -------
    DataFrame
        One row, indexed by the last bar, with the columns of :func:`build_features`.
    """
    cfg = config or FeatureConfig()
    close = _checked_close(bars)
    n = len(close)
    tail = bars.iloc[-(cfg.lookback + 2):]  # one spare bar: the first return of the tail is NaN
    gv = pd.Series(np.nan, index=tail.index)
    if n > cfg.garch_min_train + 1:
        r = np.log(close).diff().iloc[1:]
        last = garch_volatility(r, cfg.garch_min_train, cfg.garch_refit, cfg.periods_per_year,
                                fit_cache=fit_cache, from_bar=len(r) - 1).iloc[-1]
        gv.iloc[-1] = last
    regime = _regime_input(regime_risk_off, bars.index)
    return _last_row(tail, cfg, float(gv.iloc[-1]), None if regime is None else float(regime.iloc[-1]),
                     _has_volume(bars), not is_close_only(bars))


def _last_row(bars: pd.DataFrame, cfg: FeatureConfig, garch_vol: float, regime_risk_off: float | None,
              volume: bool, ranges: bool) -> pd.DataFrame:
    """The last row of :func:`_feature_frame` of ``bars``, from the windows that row reads.

    Every rolling statistic is taken over its own last window only (NumPy instead of pandas
    rolling over the whole tail; the same numbers to rounding, 1e-9 in
    ``tests/signals/test_latest_features.py``), so a decision's features cost about a
    millisecond plus the Hurst, variance-ratio and ADF estimates of one window.
    """
    close = bars["close"].to_numpy(dtype=float)
    high = bars["high"].to_numpy(dtype=float)
    low = bars["low"].to_numpy(dtype=float)
    m = close.size
    ppy = cfg.periods_per_year
    sw, lw, win = cfg.short_window, cfg.long_window, cfg.stats_window
    logc = np.log(close)
    r = np.diff(logc)  # the returns of the tail (pandas' first, NaN, return dropped)
    nan = float("nan")

    def mean(x: np.ndarray, w: int) -> float:
        return float(np.mean(x[-w:])) if x.size >= w else nan

    def std(x: np.ndarray, w: int) -> float:
        return float(np.std(x[-w:], ddof=1)) if x.size >= w >= 2 else nan

    row: dict[str, float] = {}
    for h in cfg.return_horizons:
        row[f"ret_{h}"] = float(logc[-1] - logc[-1 - int(h)]) if m > int(h) else nan
    row[f"rv_{sw}"] = std(r, sw) * np.sqrt(ppy)
    row[f"rv_{lw}"] = std(r, lw) * np.sqrt(ppy)
    row["garch_vol"] = garch_vol
    with np.errstate(divide="ignore", invalid="ignore"):
        row["vol_ratio"] = float(np.float64(row[f"rv_{sw}"]) / np.float64(row[f"rv_{lw}"]))
        if ranges:
            hl = np.log(high / low)
            row["range"] = float(hl[-1])
            row["park_vol"] = float(np.sqrt(mean(hl**2, sw) / (4 * np.log(2)) * ppy))
            span = high[-1] - low[-1]
            row["close_loc"] = float(np.clip((close[-1] - low[-1]) / span, 0, 1)) if span > 0 else nan
        row["ma_gap"] = float(logc[-1] - np.log(mean(close, 4 * lw)))
        if volume:
            lv = np.log(bars["volume"].to_numpy(dtype=float))
            row["volume_z"] = float(np.float64(lv[-1] - mean(lv, lw)) / np.float64(std(lv, lw)))
            row["volume_trend"] = mean(lv, 5) - mean(lv, lw)
    row["hurst"] = float(rolling_hurst(r[-win:], win).hurst[-1]) if r.size else nan
    vr = rolling_variance_ratio(logc[-(win + 1):], win, lags=5)
    row["vr_stat"] = float(np.asarray(vr.stat).reshape(min(m, win + 1), -1)[-1, 0])
    row["adf_stat"] = float(rolling_adf(logc[-(win + 1):], win, maxlag=1, autolag=None).stat[-1])
    if regime_risk_off is not None:
        row["regime_risk_off"] = regime_risk_off
    frame = pd.DataFrame({k: [v] for k, v in row.items()}, index=bars.index[-1:], dtype=float)
    return frame.replace([np.inf, -np.inf], np.nan)


def _checked_close(bars: pd.DataFrame) -> pd.Series:
    need = {"open", "high", "low", "close"}
    if not isinstance(bars, pd.DataFrame) or not need <= set(bars.columns):
        raise ValueError("bars must be a DataFrame with open, high, low and close columns")
    close = bars["close"].astype(float)
    if not (np.isfinite(close).all() and (close > 0).all()):
        raise ValueError("bars close must be finite and positive")
    return close


def _has_volume(bars: pd.DataFrame) -> bool:
    """Volume features exist when every bar of the whole frame has a positive volume."""
    return "volume" in bars.columns and bool((bars["volume"].astype(float) > 0).all())


def _regime_input(regime_risk_off: pd.Series | None, index: pd.DatetimeIndex) -> pd.Series | None:
    if regime_risk_off is None:
        return None
    extra = regime_risk_off.index.difference(index)
    if len(extra):
        raise ValueError(f"regime_risk_off has {len(extra)} timestamps not in bars")
    return regime_risk_off.astype(float).reindex(index)


def _feature_frame(bars: pd.DataFrame, cfg: FeatureConfig, garch_vol: pd.Series,
                   regime_risk_off: pd.Series | None, volume: bool, ranges: bool) -> pd.DataFrame:
    """Every feature of ``bars`` given the GARCH volatility and regime input already on its index."""
    close = bars["close"].astype(float)
    ppy = cfg.periods_per_year
    logc = np.log(close)
    r = logc.diff()
    out: dict[str, pd.Series] = {}
    for h in cfg.return_horizons:
        out[f"ret_{h}"] = logc.diff(int(h))
    sw, lw = cfg.short_window, cfg.long_window
    out[f"rv_{sw}"] = r.rolling(sw).std() * np.sqrt(ppy)
    out[f"rv_{lw}"] = r.rolling(lw).std() * np.sqrt(ppy)
    out["garch_vol"] = garch_vol
    out["vol_ratio"] = out[f"rv_{sw}"] / out[f"rv_{lw}"]
    if ranges:
        hl = np.log(bars["high"].astype(float) / bars["low"].astype(float))
        out["range"] = hl
        out["park_vol"] = np.sqrt((hl**2).rolling(sw).mean() / (4 * np.log(2)) * ppy)
        span = (bars["high"] - bars["low"]).astype(float)
        out["close_loc"] = ((close - bars["low"]) / span.where(span > 0)).clip(0, 1)
    out["ma_gap"] = logc - np.log(close.rolling(4 * lw).mean())
    if volume:
        lv = np.log(bars["volume"].astype(float))
        out["volume_z"] = (lv - lv.rolling(lw).mean()) / lv.rolling(lw).std()
        out["volume_trend"] = lv.rolling(5).mean() - lv.rolling(lw).mean()
    win = cfg.stats_window
    # Called at every length (windows not yet full are NaN), so a value never depends on
    # how much history follows it.
    rr = r.iloc[1:]
    h = np.full(len(close), np.nan)
    if len(rr):
        h[1:] = rolling_hurst(rr.to_numpy(), win).hurst
    out["hurst"] = pd.Series(h, index=bars.index)
    vr = rolling_variance_ratio(logc.to_numpy(), win, lags=5)
    out["vr_stat"] = pd.Series(np.asarray(vr.stat).reshape(len(logc), -1)[:, 0], index=bars.index)
    out["adf_stat"] = pd.Series(rolling_adf(logc.to_numpy(), win, maxlag=1, autolag=None).stat, index=bars.index)
    if regime_risk_off is not None:
        out["regime_risk_off"] = regime_risk_off
    frame = pd.DataFrame(out, index=bars.index)
    return frame.replace([np.inf, -np.inf], np.nan)
