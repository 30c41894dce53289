"""Timeframes and causal resampling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.bars import Timeframe, resample_bars


def _daily(n: int, start: str = "2021-01-04", seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range(start, periods=n, tz="UTC", name="timestamp")
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = close * np.exp(rng.normal(0, 0.003, n))
    high = np.maximum(open_, close) * 1.01
    low = np.minimum(open_, close) * 0.99
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": rng.integers(1, 100, n).astype(float)},
        index=idx,
    )


def test_timeframe_parse_and_errors():
    assert str(Timeframe.parse("5min")) == "5Min"
    assert Timeframe.parse("1h").step == pd.Timedelta(hours=1)
    assert Timeframe.parse("1W").unit == "W"
    with pytest.raises(ValueError, match="not understood"):
        Timeframe.parse("weekly")
    with pytest.raises(ValueError, match="only 1D"):
        Timeframe.parse("2D")


def test_weekly_values_match_hand_computation():
    bars = _daily(10)  # Mon 2021-01-04 .. Fri 2021-01-15: two whole weeks
    weekly = resample_bars(bars, "1D", "1W")
    assert list(weekly.index) == [pd.Timestamp("2021-01-08", tz="UTC"), pd.Timestamp("2021-01-15", tz="UTC")]
    first = bars.iloc[:5]
    row = weekly.iloc[0]
    assert row["open"] == first["open"].iloc[0]
    assert row["close"] == first["close"].iloc[-1]
    assert row["high"] == first["high"].max()
    assert row["low"] == first["low"].min()
    assert row["volume"] == first["volume"].sum()


def test_partial_last_week_is_not_a_bar():
    bars = _daily(13)  # ends Wednesday 2021-01-20
    weekly = resample_bars(bars, "1D", "1W")
    assert weekly.index[-1] == pd.Timestamp("2021-01-15", tz="UTC")
    # ... unless the clock says the week is over (e.g. a holiday Friday, run on Saturday)
    weekly2 = resample_bars(bars, "1D", "1W", as_of=pd.Timestamp("2021-01-23", tz="UTC"))
    assert weekly2.index[-1] == pd.Timestamp("2021-01-22", tz="UTC")


def test_holiday_friday_week_closes_when_next_week_starts():
    bars = _daily(15).drop(pd.Timestamp("2021-01-15", tz="UTC"))  # Friday missing
    through_thursday = bars.loc[: "2021-01-14"]
    assert resample_bars(through_thursday, "1D", "1W").index[-1] == pd.Timestamp("2021-01-08", tz="UTC")
    full = resample_bars(bars, "1D", "1W")
    assert pd.Timestamp("2021-01-15", tz="UTC") in full.index


@settings(max_examples=40, deadline=None)
@given(n=st.integers(5, 60), seed=st.integers(0, 10_000), drop=st.lists(st.integers(0, 59), max_size=8))
def test_weekly_prefix_invariance(n, seed, drop):
    bars = _daily(n, seed=seed)
    bars = bars.drop(bars.index[[d for d in set(drop) if d < n - 1]])
    full = resample_bars(bars, "1D", "1W")
    for t in bars.index:
        part = resample_bars(bars.loc[:t], "1D", "1W")
        pd.testing.assert_frame_equal(part, full.loc[:t])


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 200), seed=st.integers(0, 1000))
def test_intraday_prefix_invariance(n, seed):
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2024-03-04 14:30", periods=n, freq="5min", tz="UTC", name="timestamp")
    keep = rng.random(n) > 0.1
    keep[-1] = True
    bars = _daily(n, seed=seed).set_axis(idx)[keep]
    full = resample_bars(bars, "5Min", "1H")
    assert (full.index.minute == 55).all()
    for t in bars.index[::7]:
        pd.testing.assert_frame_equal(resample_bars(bars.loc[:t], "5Min", "1H"), full.loc[:t])


def test_resample_refuses_impossible_conversions():
    bars = _daily(10)
    with pytest.raises(ValueError, match="daily"):
        resample_bars(bars, "5Min", "1D")
    with pytest.raises(ValueError, match="weekly bars are built from daily"):
        resample_bars(bars, "1H", "1W")
    with pytest.raises(ValueError, match="multiple"):
        resample_bars(bars, "15Min", "20Min")


def test_resample_empty_input():
    empty = _daily(3).iloc[:0]
    assert resample_bars(empty, "1D", "1W").empty


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 120), seed=st.integers(0, 10_000), weekly=st.booleans(), unit=st.sampled_from(["ns", "s"]),
       scale=st.sampled_from([1.0, 1e-3, 1e9]))
def test_sorted_fast_path_equals_the_groupby_path(n, seed, weekly, unit, scale):
    """Time-sorted finite bars take a by-position path; it gives pandas' groupby numbers
    (first/max/min/last exactly, the volume sum to rounding), index and its unit included."""
    from analytics import bars as mod

    rng = np.random.default_rng(seed)
    bars = _daily(n, seed=seed)
    if not weekly:
        bars = bars.set_axis(pd.date_range("2024-03-04 14:30", periods=n, freq="5min", tz="UTC", name="timestamp"))
    bars = bars.iloc[np.sort(rng.choice(n, size=max(1, n - n // 5), replace=False))]
    bars["volume"] = rng.random(len(bars)) * scale  # fractional volumes: the sum's rounding matters
    bars.index = bars.index.as_unit(unit)
    base, target = ("1D", "1W") if weekly else ("5Min", "1H")
    fast = mod.resample_bars(bars, base, target)
    values = np.column_stack([bars[c].to_numpy(dtype=float) for c in mod.BAR_COLUMNS])
    ends = pd.DatetimeIndex(mod._bucket_ends(bars.index.tz_convert("UTC"), Timeframe.parse(target)))
    out, bucket_end = mod._aggregate_grouped(values, ends)
    coverage = bars.index[-1] + Timeframe.parse(base).step
    if coverage < bucket_end[-1]:
        out, bucket_end = out.iloc[:-1], bucket_end[:-1]
    out.index = pd.DatetimeIndex(bucket_end - Timeframe.parse(base).step, name="timestamp")
    want = out.astype("float64")
    pd.testing.assert_frame_equal(fast.drop(columns="volume"), want.drop(columns="volume"), check_exact=True)
    np.testing.assert_allclose(fast["volume"], want["volume"], rtol=1e-14, atol=0)


def test_missing_values_keep_groupby_semantics():
    bars = _daily(10)
    bars.iloc[0, 0] = np.nan  # Monday's open missing: the week opens at Tuesday's
    bars.iloc[2, 4] = np.nan  # a missing volume counts as nothing
    out = resample_bars(bars, "1D", "1W")
    assert out["open"].iloc[0] == bars["open"].iloc[1]
    assert out["volume"].iloc[0] == bars["volume"].iloc[[0, 1, 3, 4]].sum()
