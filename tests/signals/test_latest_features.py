"""Incremental features: ``latest_features`` equals the last row of ``build_features``.

``latest_features(bars[:t + 1])`` reads only the last ``FeatureConfig.lookback`` bars (plus the
newest GARCH block), so it is compared with ``build_features`` on the whole history at well
over 500 positions per series: the last 400 bars, every GARCH refit boundary +- 1 or 2, the
early bars whose windows are not full and the first bars with a full look-back. A shared fit
cache keeps GARCH from being re-estimated, and ``arch.arch_model`` is patched to raise while
the incremental rows are built, so a refit cannot hide in the comparison.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import arch
import numpy as np
import pandas as pd
import pytest

from analytics.bars import Timeframe
from integrations import BuiltinSource
from signals import FeatureConfig, build_features, garch_volatility, latest_features

RTOL = 1e-9
VOLUME_COLUMNS = ("volume_z", "volume_trend")
# A config whose look-back is set by its longest return horizon (301), not by the stats window.
HORIZON_CFG = FeatureConfig(return_horizons=(1, 10, 300), short_window=10, long_window=40, stats_window=128,
                            garch_min_train=300, garch_refit=100)
# One whose look-back is set by the moving average (4 x 80 = 320).
MA_CFG = FeatureConfig(long_window=80, garch_min_train=400, garch_refit=150)


# -- data ------------------------------------------------------------------------------------


def _builtin(symbol: str) -> pd.DataFrame:
    start, end = pd.Timestamp("1990-01-01", tz="UTC"), pd.Timestamp("2030-01-01", tz="UTC")
    return BuiltinSource().fetch(symbol, Timeframe(1, "D"), start, end)


def _switching_bars(n: int, seed: int, volume: bool = True) -> pd.DataFrame:
    """OHLC(V) bars whose log-return volatility switches between 0.6% and 2.5% per bar.

    The volatility regime is a two-state Markov chain (stay probability 0.98); highs and
    lows bracket the open and close, every value is positive, the index is UTC business days.
    """
    rng = np.random.default_rng(seed)
    state = np.zeros(n, dtype=int)
    for t in range(1, n):
        state[t] = state[t - 1] if rng.random() < 0.98 else 1 - state[t - 1]
    sigma = np.where(state == 1, 0.025, 0.006)
    close = 50.0 * np.exp(np.cumsum(0.0002 + sigma * rng.standard_normal(n)))
    prev = np.concatenate([[50.0], close[:-1]])
    open_ = prev * np.exp(0.2 * sigma * rng.standard_normal(n))
    high = np.maximum(open_, close) * np.exp(np.abs(0.5 * sigma * rng.standard_normal(n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(0.5 * sigma * rng.standard_normal(n)))
    cols: dict[str, np.ndarray] = {"open": open_, "high": high, "low": low, "close": close}
    if volume:
        cols["volume"] = np.exp(12.0 + 0.5 * state + 0.3 * rng.standard_normal(n))
    return pd.DataFrame(cols, index=pd.bdate_range("2005-01-03", periods=n, tz="UTC", name="time"))


def _risk_off(bars: pd.DataFrame, start: int = 30) -> pd.Series:
    """A causal stand-in for a filtered risk-off probability: share of down bars in the last 10."""
    down = (np.log(bars["close"]).diff() < 0).astype(float)
    return down.rolling(10).mean().iloc[start:]


def _nasdaq_positive_volume() -> pd.DataFrame:
    # The bundled NASDAQ series has volume 0 on 2015-05-12 and 2018-01-09; build_features then
    # drops the volume columns from every row (see test_zero_volume_outside_the_tail_*). The
    # equivalence runs on the series with those two volumes carried forward from the day before.
    bars = _builtin("NASDAQ").copy()
    vol = bars["volume"].where(bars["volume"] > 0)
    bars["volume"] = vol.ffill()
    return bars


def _with_gap(bars: pd.DataFrame, at: int) -> pd.DataFrame:
    return bars.drop(bars.index[at:at + 5])


#: name -> (bars factory, config, regime mode). Regime modes: "full" = series on every bar
#: (NaN before bar 30), "late" = series starting at bar 700 (sliced by time), None = no input.
CASES: dict[str, tuple[Callable[[], pd.DataFrame], FeatureConfig, str | None]] = {
    "sp500": (lambda: _builtin("SP500"), FeatureConfig(), "full"),
    "nasdaq": (_nasdaq_positive_volume, FeatureConfig(), "late"),
    "sp500_gap": (lambda: _with_gap(_builtin("SP500"), 2500), FeatureConfig(), "full"),
    "switching": (lambda: _switching_bars(3000, seed=7), FeatureConfig(), "full"),
    "switching_horizon_cfg": (lambda: _switching_bars(3000, seed=8), HORIZON_CFG, "late"),
    "switching_no_volume": (lambda: _switching_bars(3000, seed=9, volume=False), MA_CFG, None),
}


def _positions(n: int, cfg: FeatureConfig, seed: int, extra: tuple[int, ...] = ()) -> list[int]:
    """At least 500 bar positions: last 400, GARCH boundaries, early and look-back edges."""
    lb = cfg.lookback
    pos = set(range(n - 400, n))
    pos |= {0, 1, 2, 5, 20, 21, 22, 60, 62, 63, 64, 300, lb - 2, lb - 1, lb, lb + 1, lb + 2, lb + 3}
    # GARCH runs on r = log(close).diff().iloc[1:]: block k starts at return
    # garch_min_train + k * garch_refit, i.e. at that bar + 1.
    b = cfg.garch_min_train
    while b + 1 < n:
        pos |= {b - 1, b, b + 1, b + 2}
        b += cfg.garch_refit
    pos |= set(extra)
    rng = np.random.default_rng(seed)
    middle = [t for t in range(n) if t not in pos]
    need = max(0, 520 - len(pos))
    pos |= {int(t) for t in rng.choice(middle, size=need, replace=False)}
    return sorted(t for t in pos if 0 <= t < n)


# -- comparison --------------------------------------------------------------------------------


def _row_mismatch(got: pd.DataFrame, want: pd.DataFrame) -> str | None:
    """Why ``got`` differs from ``want`` (one row each), or None when they agree."""
    if list(got.columns) != list(want.columns):
        return f"columns {list(got.columns)} != {list(want.columns)}"
    if not got.index.equals(want.index):
        return f"index {list(got.index)} != {list(want.index)}"
    g, w = got.to_numpy(dtype=float), want.to_numpy(dtype=float)
    if not np.array_equal(np.isnan(g), np.isnan(w)):
        cols = [c for c, a, b in zip(want.columns, np.isnan(g[0]), np.isnan(w[0]), strict=True) if a != b]
        return f"NaN pattern differs in {cols}"
    ok = ~np.isnan(w)
    tol = RTOL * np.maximum(np.abs(w[ok]), 1.0)
    if not np.all(np.abs(g[ok] - w[ok]) <= tol):
        bad = [c for c, a, b in zip(want.columns, g[0], w[0], strict=True)
               if not (np.isnan(b) or abs(a - b) <= RTOL * max(abs(b), 1.0))]
        return f"values differ in {bad}"
    return None


def _regime(bars: pd.DataFrame, mode: str | None) -> pd.Series | None:
    if mode is None:
        return None
    if mode == "full":
        return _risk_off(bars, start=0)  # NaN for the first 10 bars, on every bar
    return _risk_off(bars, start=700)


def _forbid_arch(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("arch_model was called: a GARCH fit missed the cache")

    monkeypatch.setattr(arch, "arch_model", refuse)


@pytest.fixture(scope="module", params=list(CASES))
def case(request) -> dict[str, Any]:
    make, cfg, mode = CASES[request.param]
    bars = make()
    regime = _regime(bars, mode)
    cache: dict[str, Any] = {}
    full = build_features(bars, cfg, regime_risk_off=regime, fit_cache=cache)
    extra = (2495, 2496, 2497, 2498, 2499, 2500, 2501, 2502) if request.param == "sp500_gap" else ()
    return {"name": request.param, "bars": bars, "cfg": cfg, "regime": regime, "cache": cache, "full": full,
            "positions": _positions(len(bars), cfg, seed=len(request.param), extra=extra)}


def test_latest_row_equals_full_frame_row(case, monkeypatch):
    bars, cfg, regime, cache, full = case["bars"], case["cfg"], case["regime"], case["cache"], case["full"]
    positions = case["positions"]
    assert len(positions) >= 500
    assert len(cache) >= 1  # the full build filled it
    _forbid_arch(monkeypatch)
    mismatches: dict[int, str] = {}
    for t in positions:
        prefix = bars.iloc[: t + 1]
        r = None if regime is None else regime.loc[: prefix.index[-1]]
        got = latest_features(prefix, cfg, regime_risk_off=r, fit_cache=cache)
        why = _row_mismatch(got, full.iloc[[t]])
        if why is not None:
            mismatches[t] = why
    assert mismatches == {}


def test_the_comparison_sees_every_kind_of_row(case):
    # The positions above cover rows where the windows are not full (NaN) and rows where every
    # column, GARCH included, has a value, and the columns the case is meant to have.
    full, cfg, positions = case["full"], case["cfg"], case["positions"]
    rows = full.iloc[positions]
    assert positions[0] == 0
    assert set(full.columns[full.iloc[0].notna()]) == {"range", "close_loc"}  # the only one-bar features
    assert rows.notna().all(axis=1).sum() >= 400
    assert full["garch_vol"].iloc[: cfg.garch_min_train + 1].isna().all()
    assert full["garch_vol"].iloc[cfg.garch_min_train + 1:].notna().all()
    has_volume = case["name"] != "switching_no_volume"
    assert all((c in full.columns) == has_volume for c in VOLUME_COLUMNS)
    assert ("regime_risk_off" in full.columns) == (case["regime"] is not None)


def test_gap_series_really_has_a_gap():
    sp = _builtin("SP500")
    gapped = _with_gap(sp, 2500)
    assert len(gapped) == len(sp) - 5
    assert gapped.index[2500] == sp.index[2505]
    # the bar after the gap returns over six trading days of the original series
    lc = np.log(gapped["close"])
    assert lc.iloc[2500] - lc.iloc[2499] == pytest.approx(np.log(sp["close"].iloc[2505] / sp["close"].iloc[2499]))


def test_the_row_check_detects_a_difference():
    # _row_mismatch must not pass everything: a perturbation beyond 1e-9 relative is reported.
    bars = _switching_bars(400, seed=3)
    row = build_features(bars).iloc[[-1]]
    assert _row_mismatch(row, row.copy()) is None
    bumped = row.copy()
    bumped.iloc[0, bumped.columns.get_loc("ma_gap")] += 1e-6
    assert _row_mismatch(bumped, row) == "values differ in ['ma_gap']"
    nan_moved = row.copy()
    nan_moved.iloc[0, nan_moved.columns.get_loc("hurst")] = np.nan
    assert _row_mismatch(nan_moved, row) == "NaN pattern differs in ['hurst']"
    assert _row_mismatch(row.drop(columns="hurst"), row).startswith("columns")


def test_latest_features_without_cache_and_short_history():
    # No fit cache (GARCH estimated for the newest block) and histories shorter than the look-back.
    bars = _switching_bars(700, seed=21)
    full = build_features(bars, HORIZON_CFG)
    for t in (0, 3, 150, 301, 302, 303, 401, 402, 699):
        got = latest_features(bars.iloc[: t + 1], HORIZON_CFG)
        assert _row_mismatch(got, full.iloc[[t]]) is None, t


def test_zero_volume_outside_the_tail_gives_the_same_columns():
    bars = _switching_bars(600, seed=5)
    bars.iloc[10, bars.columns.get_loc("volume")] = 0.0
    want = build_features(bars)
    assert not any(c in want.columns for c in VOLUME_COLUMNS)
    got = latest_features(bars)
    assert list(got.columns) == list(want.columns)


def test_zero_volume_inside_the_tail_drops_volume_columns_in_both():
    bars = _switching_bars(600, seed=5)
    bars.iloc[-3, bars.columns.get_loc("volume")] = 0.0
    want = build_features(bars).iloc[[-1]]
    assert not any(c in want.columns for c in VOLUME_COLUMNS)
    assert _row_mismatch(latest_features(bars), want) is None


# -- GARCH from_bar --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def garch_case() -> dict[str, Any]:
    close = _builtin("SP500")["close"].iloc[:1601]
    r = np.log(close).diff().iloc[1:]  # 1600 returns: blocks start at 504, 756, 1008, 1260, 1512
    cache: dict[str, Any] = {}
    full = garch_volatility(r, fit_cache=cache)
    return {"r": r, "cache": cache, "full": full}


@pytest.mark.parametrize(("from_bar", "block_start"), [
    (0, 504), (100, 504), (503, 504), (504, 504), (505, 504), (755, 504), (756, 756), (757, 756),
    (1000, 756), (1259, 1008), (1260, 1260), (1511, 1260), (1512, 1512), (1599, 1512),
])
def test_garch_from_bar_matches_full_run(garch_case, monkeypatch, from_bar, block_start):
    r, cache, full = garch_case["r"], garch_case["cache"], garch_case["full"]
    assert len(cache) == 5
    _forbid_arch(monkeypatch)
    part = garch_volatility(r, fit_cache=cache, from_bar=from_bar)
    assert part.index.equals(full.index) and part.name == full.name == "garch_vol"
    assert part.iloc[:block_start].isna().all()
    assert part.iloc[block_start:].notna().all()
    np.testing.assert_array_equal(part.to_numpy()[block_start:], full.to_numpy()[block_start:])


def test_garch_from_bar_zero_is_the_full_call(garch_case, monkeypatch):
    r, cache, full = garch_case["r"], garch_case["cache"], garch_case["full"]
    _forbid_arch(monkeypatch)
    pd.testing.assert_series_equal(garch_volatility(r, fit_cache=cache, from_bar=0), full, check_exact=True)
    pd.testing.assert_series_equal(garch_volatility(r, fit_cache=cache), full, check_exact=True)
    assert full.iloc[:504].isna().all() and full.iloc[504:].notna().all()


def test_garch_from_bar_fits_only_the_newest_block(garch_case, monkeypatch):
    r, full = garch_case["r"], garch_case["full"]
    real = arch.arch_model
    calls: list[int] = []

    def spy(y: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(len(y))
        return real(y, *args, **kwargs)

    monkeypatch.setattr(arch, "arch_model", spy)
    cache: dict[str, Any] = {}
    last = garch_volatility(r, fit_cache=cache, from_bar=len(r) - 1)
    assert calls == [1512]  # one fit, on the returns before the newest block
    assert len(cache) == 1 and set(cache) <= set(garch_case["cache"])
    np.testing.assert_array_equal(last.to_numpy()[1512:], full.to_numpy()[1512:])


def test_garch_without_the_needed_fit_calls_arch(garch_case, monkeypatch):
    # The patch used above is effective: a cache missing a needed fit reaches arch_model.
    r = garch_case["r"]
    _forbid_arch(monkeypatch)
    # Every fit but the first (block 504..755), which from_bar >= 756 skips: it is not needed.
    partial = {k: v for i, (k, v) in enumerate(garch_case["cache"].items()) if i > 0}
    part = garch_volatility(r, fit_cache=partial, from_bar=756)
    np.testing.assert_array_equal(part.to_numpy()[756:], garch_case["full"].to_numpy()[756:])
    with pytest.raises(AssertionError, match="missed the cache"):
        garch_volatility(r, fit_cache=partial, from_bar=755)
    with pytest.raises(AssertionError, match="missed the cache"):
        garch_volatility(r, fit_cache={}, from_bar=600)


def test_latest_features_never_refits_with_a_filled_cache(monkeypatch):
    bars = _switching_bars(900, seed=4)
    cfg = FeatureConfig(garch_min_train=300, garch_refit=100)
    cache: dict[str, Any] = {}
    full = build_features(bars, cfg, fit_cache=cache)
    assert len(cache) == 6  # blocks at returns 300, 400, ..., 800
    _forbid_arch(monkeypatch)
    for t in (301, 302, 401, 899):
        assert _row_mismatch(latest_features(bars.iloc[: t + 1], cfg, fit_cache=cache), full.iloc[[t]]) is None
    with pytest.raises(AssertionError, match="missed the cache"):
        latest_features(bars, cfg, fit_cache={})


# -- look-back -----------------------------------------------------------------------------


@pytest.mark.parametrize(("cfg", "expected"), [
    (FeatureConfig(), 253),  # max(252 + 1, 63 + 1, 4 * 63, 252 + 1)
    (HORIZON_CFG, 301),  # max(300 + 1, 40 + 1, 4 * 40, 128 + 1)
    (MA_CFG, 320),  # max(252 + 1, 80 + 1, 4 * 80, 252 + 1)
    (FeatureConfig(stats_window=400), 401),  # max(253, 64, 252, 401)
    (FeatureConfig(return_horizons=(1, 5), short_window=5, long_window=10, stats_window=64), 65),
    (FeatureConfig(return_horizons=(1,), short_window=2, long_window=3, stats_window=64), 65),
])
def test_lookback_by_hand(cfg, expected):
    assert cfg.lookback == expected


# -- bad inputs ------------------------------------------------------------------------------


def _message(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ValueError) as info:
        fn(*args, **kwargs)
    return str(info.value)


def _bad_close(value: float, at: int) -> pd.DataFrame:
    bars = _switching_bars(400, seed=1)
    bars.iloc[at, bars.columns.get_loc("close")] = value
    return bars


@pytest.mark.parametrize(("make", "text"), [
    (lambda: _switching_bars(400, seed=1)["close"], "must be a DataFrame with open, high, low and close"),
    (lambda: _switching_bars(400, seed=1).drop(columns="low"), "must be a DataFrame with open, high, low and close"),
    (lambda: _bad_close(0.0, 0), "close must be finite and positive"),  # outside the tail
    (lambda: _bad_close(-1.0, -1), "close must be finite and positive"),
    (lambda: _bad_close(np.nan, 5), "close must be finite and positive"),
    (lambda: _bad_close(np.inf, 390), "close must be finite and positive"),
])
def test_bad_bars_raise_the_same_error(make, text):
    msg = _message(latest_features, make())
    assert text in msg
    assert msg == _message(build_features, make())


def test_regime_timestamps_not_in_bars_raise_the_same_error():
    bars = _switching_bars(400, seed=1)
    regime = _risk_off(bars)
    early = pd.Series([0.5], index=[bars.index[0] - pd.Timedelta(days=3)])  # before the tail and the bars
    late = pd.Series([0.5], index=[bars.index[-1] + pd.Timedelta(days=1)])
    for extra in (early, late):
        bad = pd.concat([regime, extra]).sort_index()
        msg = _message(latest_features, bars, regime_risk_off=bad)
        assert msg == "regime_risk_off has 1 timestamps not in bars"
        assert msg == _message(build_features, bars, regime_risk_off=bad)
