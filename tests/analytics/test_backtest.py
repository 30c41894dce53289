"""Backtest engine: hypothesis invariants, timing and metric reference values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from analytics import InsufficientDataError
from analytics._backtest import BacktestConfig, performance_metrics, run_backtest


def _bars(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.012, n)))
    open_ = close * np.exp(rng.normal(0, 0.004, n))
    idx = pd.bdate_range("2020-01-01", periods=n, tz="UTC")
    return pd.DataFrame({"open": open_, "close": close}, index=idx)


bar_sets = st.builds(_bars, st.integers(3, 120), st.integers(0, 10_000))
weights = st.floats(-2, 2, allow_nan=False)


@settings(max_examples=100, deadline=None)
@given(bars=bar_sets)
def test_zero_position_earns_exactly_zero(bars):
    res = run_backtest(bars, pd.Series(0.0, bars.index), BacktestConfig(cost_bps=7, slippage_bps=3))
    assert (res.returns.to_numpy() == 0.0).all()
    assert (res.equity.to_numpy() == 1.0).all()


@settings(max_examples=100, deadline=None)
@given(bars=bar_sets)
def test_fully_long_without_costs_is_buy_and_hold(bars):
    res = run_backtest(bars, pd.Series(1.0, bars.index), BacktestConfig(cost_bps=0))
    c, o = bars["close"].to_numpy(), bars["open"].to_numpy()
    # enters at the open of bar 1, then holds: every later bar earns close-to-close
    np.testing.assert_allclose(res.returns.to_numpy()[2:], c[2:] / c[1:-1] - 1, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(res.equity.iloc[-1], c[-1] / o[1], rtol=1e-12)


@settings(max_examples=100, deadline=None)
@given(bars=bar_sets, data=st.data(), lo=st.floats(0, 50), hi=st.floats(0, 50))
def test_pnl_falls_monotonically_as_costs_rise(bars, data, lo, hi):
    lo, hi = sorted((lo, hi))
    target = pd.Series(data.draw(arrays(float, len(bars), elements=weights)), bars.index)
    cheap = run_backtest(bars, target, BacktestConfig(cost_bps=lo, min_weight=-1))
    dear = run_backtest(bars, target, BacktestConfig(cost_bps=hi, min_weight=-1))
    assert dear.equity.iloc[-1] <= cheap.equity.iloc[-1] + 1e-12
    assert (dear.returns.to_numpy() <= cheap.returns.to_numpy() + 1e-15).all()


@settings(max_examples=100, deadline=None)
@given(bars=bar_sets, data=st.data())
def test_limits_and_next_bar_timing(bars, data):
    target = pd.Series(data.draw(arrays(float, len(bars), elements=weights)), bars.index)
    cfg = BacktestConfig(max_weight=0.7, min_weight=-0.3)
    res = run_backtest(bars, target, cfg)
    w = res.weights.to_numpy()
    assert w[0] == 0.0
    assert (w <= 0.7).all() and (w >= -0.3).all()
    np.testing.assert_array_equal(w[1:], np.clip(target.to_numpy()[:-1], -0.3, 0.7))


@settings(max_examples=60, deadline=None)
@given(bars=bar_sets, data=st.data())
def test_prefix_invariance(bars, data):
    target = pd.Series(data.draw(arrays(float, len(bars), elements=weights)), bars.index)
    full = run_backtest(bars, target, BacktestConfig(min_weight=-1))
    t = data.draw(st.integers(3, len(bars)))
    part = run_backtest(bars.iloc[:t], target.iloc[:t], BacktestConfig(min_weight=-1))
    np.testing.assert_array_equal(part.returns.to_numpy(), full.returns.to_numpy()[:t])
    # a change of the target at the last bar cannot touch any return up to that bar
    changed = target.copy()
    changed.iloc[t - 1] += 0.5
    again = run_backtest(bars, changed, BacktestConfig(min_weight=-1))
    np.testing.assert_array_equal(again.returns.to_numpy()[:t], full.returns.to_numpy()[:t])


def test_metrics_reference_values():
    r = np.array([0.1, -0.2, 0.05, 0.05, -0.1, 0.3])
    m = performance_metrics(r, periods_per_year=2)
    equity = np.cumprod(1 + r)
    assert m.total_return == pytest.approx(equity[-1] - 1)
    assert m.cagr == pytest.approx(equity[-1] ** (1 / 3) - 1)
    assert m.volatility == pytest.approx(np.std(r, ddof=1) * np.sqrt(2))
    assert m.sharpe == pytest.approx(np.mean(r) / np.std(r, ddof=1) * np.sqrt(2))
    peak = np.maximum.accumulate(equity)
    assert m.max_drawdown == pytest.approx((equity / peak - 1).min())
    assert m.max_drawdown_duration == 4  # below the 1.1 peak from bar 2 through bar 5
    assert m.hit_rate == pytest.approx(4 / 6)
    assert m.profit_factor == pytest.approx(0.5 / 0.3)
    assert m.calmar == pytest.approx(m.cagr / abs(m.max_drawdown))
    assert m.exposure == 1.0


def test_metrics_degenerate_inputs():
    m = performance_metrics(np.zeros(10), np.zeros(10))
    assert np.isnan(m.sharpe) and np.isnan(m.hit_rate) and m.max_drawdown == 0.0 and m.exposure == 0.0
    with pytest.raises(InsufficientDataError):
        performance_metrics(np.array([0.01]))
    with pytest.raises(ValueError, match="NaN"):
        performance_metrics(np.array([0.01, np.nan]))


def test_bad_arguments():
    bars = _bars(10, 1)
    with pytest.raises(ValueError, match="cost_bps"):
        BacktestConfig(cost_bps=-1)
    with pytest.raises(ValueError, match="min_weight"):
        BacktestConfig(min_weight=0.5)
    with pytest.raises(InsufficientDataError):
        run_backtest(bars.iloc[:2], pd.Series(1.0, bars.index[:2]))
    with pytest.raises(ValueError, match="not in bars"):
        run_backtest(bars.iloc[:5], pd.Series(1.0, bars.index))
    bad = bars.copy()
    bad.iloc[3, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        run_backtest(bad, pd.Series(1.0, bars.index))
