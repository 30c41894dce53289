"""Close-only bars: construction, recognition, validation, weekly resampling, features, backtest.

Close-only bars (closes published without open, high, low or volume, such as the adjusted closes
of the embedded stock universe) carry NaN in those columns on every row. These tests check that
nothing is invented for them anywhere along the data path.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics import (
    BAR_COLUMNS,
    CLOSE_ONLY_MISSING,
    BacktestConfig,
    DataQualityWarning,
    DataValidationError,
    Timeframe,
    ValidationPolicy,
    close_only_bars,
    empty_bars,
    is_close_only,
    resample_bars,
    run_backtest,
    validate_bars,
)

RANGE_AND_VOLUME = ("range", "park_vol", "close_loc", "volume_z", "volume_trend")


def _closes(n: int, start: str = "2021-01-04", seed: int = 0, tz: str = "UTC") -> pd.Series:
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range(start, periods=n, tz=tz, name="timestamp")
    return pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 0.01, n))), index=idx, name="close")


def _ohlcv(n: int, seed: int = 0) -> pd.DataFrame:
    close = _closes(n, seed=seed)
    return pd.DataFrame(
        {"open": close * 0.999, "high": close * 1.01, "low": close * 0.99, "close": close,
         "volume": np.full(n, 1000.0)},
        index=close.index,
    )


def _aapl(n: int) -> pd.DataFrame:
    """The first ``n`` bars of the embedded AAPL adjusted closes (close-only)."""
    from integrations import BuiltinSource

    frame = BuiltinSource().fetch(
        "AAPL", Timeframe.parse("1D"), pd.Timestamp("1990-01-01", tz="UTC"), pd.Timestamp("2030-01-01", tz="UTC")
    )
    return frame.iloc[:n]


# ----------------------------------------------------------------------------- construction


def test_close_only_bars_round_trip():
    close = _closes(12)
    bars = close_only_bars(close)
    assert list(bars.columns) == list(BAR_COLUMNS)
    assert bars.index.name == "timestamp"
    assert str(bars.index.tz) == "UTC"
    np.testing.assert_array_equal(bars["close"].to_numpy(), close.to_numpy())
    assert bars.index.equals(close.index)
    assert bars.loc[:, list(CLOSE_ONLY_MISSING)].isna().all().all()
    assert all(bars[c].dtype == np.float64 for c in BAR_COLUMNS)
    # the frame's own closes give the frame back
    pd.testing.assert_frame_equal(close_only_bars(bars["close"]), bars)
    # the input is not modified
    assert close.name == "close" and np.isfinite(close).all()


def test_close_only_bars_converts_zones_and_refuses_bad_input():
    close = _closes(5, tz="America/New_York")
    bars = close_only_bars(close)
    assert str(bars.index.tz) == "UTC"
    # 00:00 New York is 05:00 UTC in January
    assert bars.index[0] == pd.Timestamp("2021-01-04 05:00", tz="UTC")
    with pytest.raises(TypeError, match="Series"):
        close_only_bars(close.to_frame())
    with pytest.raises(ValueError, match="tz-aware"):
        close_only_bars(close.tz_localize(None))


def test_is_close_only_true_and_false_cases():
    bars = close_only_bars(_closes(10))
    assert is_close_only(bars) is True
    assert is_close_only(empty_bars()) is False  # no rows: nothing says close-only
    assert is_close_only(close_only_bars(_closes(0))) is False
    assert is_close_only(_ohlcv(10)) is False
    partial = bars.copy()
    partial.iloc[3, partial.columns.get_loc("open")] = 101.0  # one row has an open
    assert is_close_only(partial) is False
    with_volume = bars.assign(volume=1.0)  # volume everywhere, no range
    assert is_close_only(with_volume) is False
    assert is_close_only(bars.drop(columns="volume")) is False  # not a bar frame
    # the close is not part of the test: a NaN close stays a close-only frame (validation catches it)
    nan_close = bars.copy()
    nan_close.iloc[2, nan_close.columns.get_loc("close")] = np.nan
    assert is_close_only(nan_close) is True


# ----------------------------------------------------------------------------- validation


def test_validate_close_only_fabricates_nothing():
    bars = close_only_bars(_closes(80))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataQualityWarning)
        clean, report = validate_bars(bars)
    assert report.close_only is True
    assert report.issues == ()
    assert report.n_input == report.n_output == 80
    assert "close-only" in report.summary()
    assert report.summary() == "ok: 80 close-only bars, no issues"
    assert report.to_dict()["close_only"] is True
    assert clean.loc[:, list(CLOSE_ONLY_MISSING)].isna().all().all()  # every row, every column
    np.testing.assert_array_equal(clean["close"].to_numpy(), bars["close"].to_numpy())


def test_validate_ohlcv_is_not_close_only():
    _, report = validate_bars(_ohlcv(30))
    assert report.close_only is False
    assert "close-only" not in report.summary()


def test_validate_close_only_catches_a_nan_close():
    bars = close_only_bars(_closes(30))
    bars.iloc[7, bars.columns.get_loc("close")] = np.nan
    with pytest.warns(DataQualityWarning, match="close-only"):
        clean, report = validate_bars(bars)
    assert [(i.rule, i.row, i.action) for i in report.issues] == [("non_finite", 7, "repaired")]
    assert report.issues[0].message == "non-finite close"
    assert report.close_only is True
    assert len(clean) == 29 and bars.index[7] not in clean.index
    assert clean.loc[:, list(CLOSE_ONLY_MISSING)].isna().all().all()
    # with the policy 'error' the NaN close stops the load
    with pytest.raises(DataValidationError, match="non_finite at row 7"):
        validate_bars(bars, ValidationPolicy(policies={"non_finite": "error"}))


@pytest.mark.parametrize("bad", [0.0, -3.5])
def test_validate_close_only_catches_a_non_positive_close(bad):
    bars = close_only_bars(_closes(30))
    bars.iloc[12, bars.columns.get_loc("close")] = bad
    with pytest.raises(DataValidationError, match="non_positive at row 12"):
        validate_bars(bars)
    clean, report = validate_bars(bars, raise_on_error=False)
    assert [(i.rule, i.row, i.action) for i in report.issues] == [("non_positive", 12, "error")]
    assert report.issues[0].message == "price <= 0 in close"
    assert not report.ok and report.close_only is True
    assert report.summary().startswith("FAILED: 30 close-only bars in")


def test_partial_nan_ohlc_is_a_non_finite_fault():
    bars = _ohlcv(25)
    bars.iloc[[4, 9], bars.columns.get_loc("open")] = np.nan
    bars.iloc[9, bars.columns.get_loc("high")] = np.nan
    bars.iloc[15, bars.columns.get_loc("volume")] = np.nan
    assert is_close_only(bars) is False
    with pytest.warns(DataQualityWarning):
        clean, report = validate_bars(bars)
    assert report.close_only is False
    assert [(i.rule, i.row) for i in report.issues] == [("non_finite", 4), ("non_finite", 9), ("non_finite", 15)]
    assert [i.message for i in report.issues] == ["non-finite open", "non-finite open, high", "non-finite volume"]
    assert len(clean) == 22 and np.isfinite(clean.to_numpy()).all()


def test_mostly_close_only_frame_with_one_complete_row_is_not_close_only():
    # One row with OHLCV among close-only rows: the other rows are faults, not close-only bars.
    bars = close_only_bars(_closes(6))
    bars.iloc[0] = [99.0, 101.0, 98.0, 100.0, 5.0]
    with pytest.warns(DataQualityWarning):
        clean, report = validate_bars(bars)
    assert report.close_only is False
    assert report.counts() == {"non_finite": 5}
    assert len(clean) == 1


# ----------------------------------------------------------------------------- weekly resampling


def test_weekly_close_only_closes_are_the_last_daily_close_of_each_week():
    daily = _aapl(400)  # 1990-01-02 .. 1991-07: holidays included
    weekly = resample_bars(daily, "1D", "1W")
    assert is_close_only(weekly)
    assert weekly.loc[:, list(CLOSE_ONLY_MISSING)].isna().all().all()
    expected = daily["close"].resample("W-FRI").last().dropna()
    # the last daily bar is not a Friday: its week is partial and not emitted
    assert daily.index[-1].day_of_week != 4
    expected = expected.iloc[:-1]
    assert weekly.index.equals(expected.index.rename("timestamp"))
    np.testing.assert_array_equal(weekly["close"].to_numpy(), expected.to_numpy())
    assert (weekly.index.day_of_week == 4).all()


def test_weekly_ohlcv_still_aggregates_the_range():
    daily = _ohlcv(10)  # two whole weeks
    weekly = resample_bars(daily, "1D", "1W")
    assert not is_close_only(weekly)
    assert weekly["high"].iloc[0] == daily["high"].iloc[:5].max()
    assert weekly["volume"].iloc[1] == 5000.0


@st.composite
def _close_only_days(draw):
    n = draw(st.integers(min_value=2, max_value=60))
    seed = draw(st.integers(min_value=0, max_value=10_000))
    closes = _closes(n, start="2020-12-28", seed=seed)
    keep = np.asarray(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    keep[0] = True  # holidays: any other day may be missing
    bars = close_only_bars(closes[keep])
    cut = draw(st.integers(min_value=1, max_value=len(bars)))
    return bars, cut


@settings(max_examples=60, deadline=None)
@given(case=_close_only_days())
def test_weekly_close_only_is_prefix_invariant(case):
    bars, cut = case
    full = resample_bars(bars, "1D", "1W")
    prefix = resample_bars(bars.iloc[:cut], "1D", "1W")
    t = bars.index[cut - 1]
    pd.testing.assert_frame_equal(prefix, full.loc[full.index <= t], check_freq=False)
    if len(full):
        assert is_close_only(full)
        # each weekly close is the close of the last day of its week
        for stamp, close in full["close"].items():
            week = bars.loc[(bars.index > stamp - pd.Timedelta(days=7)) & (bars.index <= stamp)]
            assert close == week["close"].iloc[-1]


# ----------------------------------------------------------------------------- features


@pytest.fixture(scope="module")
def aapl_600():
    return _aapl(600)


def test_features_of_close_only_bars_read_no_range_and_no_volume(aapl_600):
    from signals import build_features

    bars = aapl_600
    cache: dict = {}
    feats = build_features(bars, fit_cache=cache)
    assert not set(RANGE_AND_VOLUME) & set(feats.columns)
    c = bars["close"]
    synthetic = pd.DataFrame({"open": c, "high": c, "low": c, "close": c, "volume": 1.0}, index=bars.index)
    full = build_features(synthetic, fit_cache=cache)
    assert set(RANGE_AND_VOLUME) <= set(full.columns)  # the synthetic bars do get them
    assert list(feats.columns) == [k for k in full.columns if k not in RANGE_AND_VOLUME]
    pd.testing.assert_frame_equal(feats, full[feats.columns], rtol=0, atol=1e-12)
    # real values, not all NaN: the returns are the log returns of AAPL's closes
    np.testing.assert_allclose(feats["ret_1"].iloc[1:].to_numpy(), np.diff(np.log(c.to_numpy())), rtol=0, atol=1e-15)
    assert np.isfinite(feats["garch_vol"].iloc[-1]) and np.isfinite(feats["hurst"].iloc[-1])


def test_latest_features_of_close_only_bars_is_the_last_row(aapl_600):
    from signals import build_features, latest_features

    cache: dict = {}
    full = build_features(aapl_600, fit_cache=cache)
    last = latest_features(aapl_600, fit_cache=cache)
    assert list(last.columns) == list(full.columns)
    assert last.index.equals(full.index[-1:])
    pd.testing.assert_frame_equal(last, full.iloc[[-1]], rtol=0, atol=1e-9)
    assert last.notna().all().all()


# ----------------------------------------------------------------------------- backtest


def _six_closes() -> pd.Series:
    idx = pd.bdate_range("2024-01-01", periods=6, tz="UTC")
    return pd.Series([100.0, 110.0, 99.0, 99.0, 108.9, 98.01], index=idx)


def _hand_result():
    # Close-to-close returns: 0, +10%, -10%, 0, +10%, -10%.
    # Targets decided at each close: 1, 1, 0.5, 0, 1, 1.
    # Close-only: traded at the next close, so held over the bar after that (lag 2):
    #   weights 0, 0, 1, 1, 0.5, 0
    # gross = weight * return: 0, 0, -0.1, 0, 0.05, 0
    # cost  = |weight change| * 10 bp: 0, 0, 0.001, 0, 0.0005, 0.0005
    weights = np.array([0.0, 0.0, 1.0, 1.0, 0.5, 0.0])
    gross = np.array([0.0, 0.0, -0.1, 0.0, 0.05, 0.0])
    costs = np.array([0.0, 0.0, 0.001, 0.0, 0.0005, 0.0005])
    net = np.array([0.0, 0.0, -0.101, 0.0, 0.0495, -0.0005])
    equity = np.array([1.0, 1.0, 0.899, 0.899, 0.899 * 1.0495, 0.899 * 1.0495 * 0.9995])
    return weights, gross, costs, net, equity


def _check_hand(res) -> None:
    weights, gross, costs, net, equity = _hand_result()
    np.testing.assert_allclose(res.weights.to_numpy(), weights, rtol=0, atol=1e-15)
    np.testing.assert_allclose(res.gross_returns.to_numpy(), gross, rtol=0, atol=1e-15)
    np.testing.assert_allclose(res.costs.to_numpy(), costs, rtol=0, atol=1e-15)
    np.testing.assert_allclose(res.returns.to_numpy(), net, rtol=0, atol=1e-15)
    np.testing.assert_allclose(res.equity.to_numpy(), equity, rtol=1e-14)
    assert res.metrics.n_bars == 5
    assert res.metrics.total_return == pytest.approx(0.899 * 1.0495 * 0.9995 - 1, rel=1e-13)


def test_close_only_backtest_matches_the_hand_computation():
    closes = _six_closes()
    target = pd.Series([1.0, 1.0, 0.5, 0.0, 1.0, 1.0], index=closes.index)
    cfg = BacktestConfig(cost_bps=7.0, slippage_bps=3.0)
    res = run_backtest(close_only_bars(closes), target, cfg)
    _check_hand(res)
    assert res.weights.index.equals(closes.index)


def test_close_only_backtest_reads_no_open():
    closes = _six_closes()
    target = pd.Series([1.0, 1.0, 0.5, 0.0, 1.0, 1.0], index=closes.index)
    cfg = BacktestConfig(cost_bps=10.0)
    # only open and close columns, every open NaN: the same hand-computed result
    bare = pd.DataFrame({"open": np.nan, "close": closes})
    _check_hand(run_backtest(bare, target, cfg))
    # high, low and volume are not read either
    junk = close_only_bars(closes).assign(high=1e9, low=1e-9, volume=-5.0)
    _check_hand(run_backtest(junk, target, cfg))
    # with real opens the bars are OHLC bars: traded at the next open, one bar earlier (lag 1)
    ohlc = pd.DataFrame({"open": closes.to_numpy(), "close": closes.to_numpy()}, index=closes.index)
    ohlc["open"] = np.r_[closes.iloc[0], closes.iloc[:-1].to_numpy()]
    res = run_backtest(ohlc, target, cfg)
    np.testing.assert_allclose(res.weights.to_numpy(), [0.0, 1.0, 1.0, 0.5, 0.0, 1.0])


def test_backtest_refuses_a_partly_missing_open():
    closes = _six_closes()
    bars = pd.DataFrame({"open": closes.to_numpy(), "close": closes.to_numpy()}, index=closes.index)
    bars.iloc[3, 0] = np.nan
    with pytest.raises(ValueError, match="every open NaN"):
        run_backtest(bars, pd.Series(1.0, index=closes.index))
