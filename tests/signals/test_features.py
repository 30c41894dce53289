"""Features: prefix invariance of every column, GARCH recovery, values and input checks."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from signals import (
    FEATURE_DESCRIPTIONS,
    FeatureConfig,
    LeakageError,
    assert_prefix_invariant,
    build_features,
    garch_volatility,
    prefix_violations,
)
from tests.signals._bars import random_walk_bars

# Small windows so the whole history (GARCH refits, rolling statistics) fits in 900 bars.
CFG = FeatureConfig(stats_window=100, garch_min_train=300, garch_refit=100)
N = 900
# GARCH runs on r = log(close).diff().iloc[1:], so fit k covers returns [:300 + 100 k] and
# its first forecast is stamped at bar 300 + 100 k + 1; cutting at L bars keeps L - 1 returns.
GARCH_REFIT_BARS = [CFG.garch_min_train + k * CFG.garch_refit + 1 for k in range(6)]
CUTS = sorted(
    {5, 21, 22, 64, 99, 102, 103, 150, 252, 253, 254, N - 1}
    | {b + d for b in GARCH_REFIT_BARS for d in (0, 1, 2)}
)
# The first bars with a full rolling-statistics window.
STATS_EDGE = [CFG.stats_window, CFG.stats_window + 1]


def _risk_off(bars: pd.DataFrame) -> pd.Series:
    """A causal stand-in for a filtered regime probability, starting after bar 30."""
    down = (np.log(bars["close"]).diff() < 0).astype(float)
    return down.rolling(10).mean().iloc[30:]


def _make(bars: pd.DataFrame) -> pd.DataFrame:
    return build_features(bars, CFG, regime_risk_off=_risk_off(bars))


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return random_walk_bars(N, seed=11)


@pytest.fixture(scope="module")
def full(bars) -> pd.DataFrame:
    return _make(bars)


def test_feature_set_is_complete_and_described(full):
    expected = {
        "ret_1", "ret_5", "ret_21", "ret_63", "ret_252", "rv_21", "rv_63", "garch_vol",
        "vol_ratio", "range", "park_vol", "close_loc", "ma_gap", "volume_z", "volume_trend",
        "hurst", "vr_stat", "adf_stat", "regime_risk_off",
    }
    assert set(full.columns) == expected
    keys = {re.sub(r"\{\w\}", "", k) for k in FEATURE_DESCRIPTIONS}
    for col in full.columns:
        assert re.sub(r"\d+$", "", col) in keys, col
    # every column becomes available within the history (nothing is NaN throughout)
    for col in full.columns:
        assert full[col].iloc[-100:].notna().all(), col


def test_every_column_is_prefix_invariant(bars, full):
    assert prefix_violations(_make, bars, CUTS) == {}
    assert_prefix_invariant(_make, bars, CUTS)  # does not raise


@pytest.mark.parametrize("cut", [GARCH_REFIT_BARS[0] + 1, GARCH_REFIT_BARS[2] + 1, 555])
def test_prefix_equals_full_directly(bars, full, cut):
    part = _make(bars.iloc[:cut])
    assert list(part.columns) == list(full.columns)
    pd.testing.assert_frame_equal(part, full.iloc[:cut], check_exact=False, rtol=1e-9, atol=1e-12)
    if cut > GARCH_REFIT_BARS[0]:
        # the GARCH forecast at the last bar of the prefix exists and is the full one
        assert np.isfinite(part["garch_vol"].iloc[-1])


def test_rolling_stats_prefix_invariant_at_stats_window_edge(bars, full):
    """Histories of exactly stats_window (+1) bars already carry the first rolling values."""
    assert prefix_violations(_make, bars, STATS_EDGE) == {}
    w = CFG.stats_window
    assert np.isfinite(full["vr_stat"].iloc[w - 1]) and np.isfinite(full["adf_stat"].iloc[w - 1])
    assert np.isfinite(full["hurst"].iloc[w])
    assert np.isfinite(_make(bars.iloc[: w + 1])[["hurst", "vr_stat", "adf_stat"]].iloc[-1]).all()


def test_guard_catches_a_leak_among_the_real_features(bars):
    def leaky(b: pd.DataFrame) -> pd.DataFrame:
        f = _make(b)
        f["next_range"] = f["range"].shift(-1)
        return f

    cuts = [5, GARCH_REFIT_BARS[1] + 1, N - 1]
    with pytest.raises(LeakageError, match=r"next_range \(cut 5\)"):
        assert_prefix_invariant(leaky, bars, cuts)
    assert prefix_violations(leaky, bars, cuts) == {"next_range": 5}


# --- GARCH ---------------------------------------------------------------------------------


def _simulate_garch(n: int, seed: int, omega=0.05, alpha=0.08, beta=0.9, mu=0.03):
    """Returns (decimal) and the true conditional sd (percent) of a GARCH(1,1) in percent."""
    rng = np.random.default_rng(seed)
    burn = 500
    z = rng.standard_normal(n + burn)
    s2 = np.empty(n + burn)
    e = np.empty(n + burn)
    s2[0] = omega / (1 - alpha - beta)
    for t in range(n + burn):
        if t:
            s2[t] = omega + alpha * e[t - 1] ** 2 + beta * s2[t - 1]
        e[t] = np.sqrt(s2[t]) * z[t]
    r_pct = mu + e[burn:]
    return r_pct / 100.0, np.sqrt(s2[burn:])


def test_garch_tracks_true_conditional_volatility():
    n, min_train = 3000, 1000
    r, sigma = _simulate_garch(n, seed=3)
    idx = pd.bdate_range("2005-01-03", periods=n, tz="UTC")
    gv = garch_volatility(pd.Series(r, index=idx), min_train=min_train, refit_every=500)
    assert gv.name == "garch_vol" and gv.index.equals(idx)
    assert gv.iloc[:min_train].isna().all()
    assert np.isfinite(gv.iloc[min_train:]).all()
    # stamped at t: forecast of sigma_{t+1}; annualised from percent units
    forecast = gv.to_numpy()[min_train:-1]
    truth = sigma[min_train + 1 :] / 100.0 * np.sqrt(252)
    assert np.corrcoef(forecast, truth)[0, 1] > 0.9
    assert np.median(forecast / truth) == pytest.approx(1.0, abs=0.1)


def test_garch_is_nan_before_min_train_and_refits_causally():
    r, _ = _simulate_garch(700, seed=4)
    s = pd.Series(r)
    gv = garch_volatility(s, min_train=400, refit_every=100)
    assert gv.iloc[:400].isna().all() and gv.iloc[400:].notna().all()
    # a prefix ending just after the second refit reproduces the full values
    part = garch_volatility(s.iloc[:502], min_train=400, refit_every=100)
    np.testing.assert_allclose(part.to_numpy(), gv.iloc[:502].to_numpy(), rtol=1e-12)
    # too short: nothing estimated
    assert garch_volatility(s.iloc[:400], min_train=400).isna().all()


# --- values --------------------------------------------------------------------------------


def test_returns_and_realised_volatility_values(bars, full):
    logc = np.log(bars["close"])
    for h in (1, 5, 21, 63, 252):
        pd.testing.assert_series_equal(full[f"ret_{h}"], logc.diff(h), check_names=False)
        assert full[f"ret_{h}"].iloc[:h].isna().all()
    r = logc.diff()
    for w in (21, 63):
        expected = r.rolling(w).std() * np.sqrt(252)
        pd.testing.assert_series_equal(full[f"rv_{w}"], expected, check_names=False)
        assert full[f"rv_{w}"].iloc[:w].isna().all() and np.isfinite(full[f"rv_{w}"].iloc[w])
    # a random walk with sd 0.01 per bar: about 0.01 * sqrt(252) annualised
    assert full["rv_63"].iloc[-1] == pytest.approx(0.01 * np.sqrt(252), rel=0.3)
    np.testing.assert_allclose(full["vol_ratio"], full["rv_21"] / full["rv_63"])


def test_bar_shape_features(bars, full):
    np.testing.assert_allclose(full["range"], np.log(bars["high"] / bars["low"]))
    loc = (bars["close"] - bars["low"]) / (bars["high"] - bars["low"])
    np.testing.assert_allclose(full["close_loc"], loc)
    assert full["close_loc"].between(0, 1).all()
    ma = bars["close"].rolling(4 * 63).mean()
    np.testing.assert_allclose(full["ma_gap"], np.log(bars["close"] / ma))
    assert full["ma_gap"].iloc[: 4 * 63 - 1].isna().all()


def test_regime_input_is_reindexed_with_nan_before_its_start(bars, full):
    reg = _risk_off(bars)
    assert full["regime_risk_off"].iloc[:30].isna().all()
    pd.testing.assert_series_equal(
        full["regime_risk_off"].iloc[30:], reg.astype(float), check_names=False
    )


def test_volume_features_only_with_positive_volume(bars):
    short = FeatureConfig(stats_window=64, garch_min_train=100)
    no_vol = build_features(bars.drop(columns="volume").iloc[:200], short)
    assert "volume_z" not in no_vol.columns and "volume_trend" not in no_vol.columns
    zero = bars.iloc[:200].copy()
    zero.iloc[7, zero.columns.get_loc("volume")] = 0.0
    assert "volume_z" not in build_features(zero, short).columns
    with_vol = build_features(bars.iloc[:200], short)
    lv = np.log(bars["volume"].iloc[:200])
    expected = (lv - lv.rolling(63).mean()) / lv.rolling(63).std()
    np.testing.assert_allclose(with_vol["volume_z"], expected)
    assert "regime_risk_off" not in with_vol.columns


def test_short_history_gives_nan_not_errors(bars):
    f = build_features(bars.iloc[:50])
    assert len(f) == 50
    for col in ("garch_vol", "hurst", "vr_stat", "adf_stat", "ret_63", "rv_63", "ma_gap"):
        assert f[col].isna().all(), col
    assert f["ret_1"].iloc[1:].notna().all()


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b.drop(columns="low"),
        lambda b: b.assign(close=b["close"].where(b.index != b.index[10], 0.0)),
        lambda b: b.assign(close=b["close"].where(b.index != b.index[10], -1.0)),
        lambda b: b.assign(close=b["close"].where(b.index != b.index[10], np.nan)),
        lambda b: b.assign(close=b["close"].where(b.index != b.index[10], np.inf)),
        lambda b: b["close"],
    ],
    ids=["missing-low", "zero-close", "negative-close", "nan-close", "inf-close", "series"],
)
def test_bad_bars_raise(bars, mutate):
    with pytest.raises(ValueError):
        build_features(mutate(bars.iloc[:80]))


def test_regime_with_foreign_timestamps_raises(bars):
    b = bars.iloc[:80]
    reg = pd.Series(0.5, index=b.index.append(pd.DatetimeIndex(["2030-01-01"], tz="UTC")))
    with pytest.raises(ValueError, match="1 timestamps not in bars"):
        build_features(b, regime_risk_off=reg)


def test_smallest_working_stats_window_is_64(bars):
    f = build_features(bars.iloc[:120], FeatureConfig(stats_window=64, garch_min_train=100))
    assert f["hurst"].iloc[:64].isna().all() and np.isfinite(f["hurst"].iloc[-1])
    with pytest.raises(ValueError, match="stats_window must be >= 64"):
        FeatureConfig(stats_window=63, garch_min_train=100)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"return_horizons": ()},
        {"return_horizons": (1, 0)},
        {"short_window": 1},
        {"short_window": 63, "long_window": 63},
        {"stats_window": 31},
        {"garch_min_train": 99},
        {"garch_refit": 0},
        {"periods_per_year": 0},
    ],
)
def test_feature_config_validation(kwargs):
    with pytest.raises(ValueError):
        FeatureConfig(**kwargs)
