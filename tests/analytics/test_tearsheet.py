"""Tearsheet statistics: hand-computed values on small series and agreement with the metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics import (
    DrawdownPeriod,
    drawdown_periods,
    monthly_returns,
    performance_metrics,
    rolling_performance,
    yearly_returns,
)


def _series(values, dates) -> pd.Series:
    return pd.Series(values, index=pd.DatetimeIndex(dates, tz="UTC"), dtype=float)


SMALL = _series([0.10, -0.05, 0.02, -0.10, 0.05],
                ["2020-01-30", "2020-01-31", "2020-02-03", "2020-02-04", "2021-03-01"])


def test_monthly_returns_compound_within_each_month():
    table = monthly_returns(SMALL)
    assert list(table.index) == [2020, 2021] and list(table.columns) == list(range(1, 13))
    assert table.loc[2020, 1] == pytest.approx(1.10 * 0.95 - 1)  # 0.045
    assert table.loc[2020, 2] == pytest.approx(1.02 * 0.90 - 1)  # -0.082
    assert table.loc[2021, 3] == pytest.approx(0.05)
    assert table.notna().sum().sum() == 3  # every other month has no bar
    assert np.isnan(table.loc[2020, 3]) and np.isnan(table.loc[2021, 1])


def test_yearly_returns_compound_within_each_year():
    years = yearly_returns(SMALL)
    assert list(years.index) == [2020, 2021]
    assert years[2020] == pytest.approx(1.045 * 0.918 - 1)  # -0.04069
    assert years[2021] == pytest.approx(0.05)


def test_an_unrecovered_drawdown():
    (period,) = drawdown_periods(SMALL)
    # equity 1.1, 1.045, 1.0659, 0.95931, 1.00728 against the peak 1.1
    assert period.start == pd.Timestamp("2020-01-31", tz="UTC")
    assert period.trough == pd.Timestamp("2020-02-04", tz="UTC")
    assert period.recovery is None and not period.recovered
    assert period.depth == pytest.approx(0.95931 / 1.1 - 1)  # -0.1279
    assert period.length == 4


def test_drawdowns_are_ranked_by_depth_with_recoveries():
    dates = pd.bdate_range("2021-01-04", periods=6, tz="UTC")
    r = pd.Series([-0.1, 0.2, -0.5, 1.0, 0.1, -0.01], index=dates)
    # equity 0.9, 1.08, 0.54, 1.08, 1.188, 1.17612; the starting capital 1 is the first peak
    periods = drawdown_periods(r, top=None)
    assert periods == (
        DrawdownPeriod(dates[2], dates[2], dates[3], pytest.approx(-0.5), 1),
        DrawdownPeriod(dates[0], dates[0], dates[1], pytest.approx(-0.1), 1),
        DrawdownPeriod(dates[5], dates[5], None, pytest.approx(-0.01), 1),
    )
    assert drawdown_periods(r, top=2) == periods[:2]
    assert periods[0].to_dict()["recovery"] == dates[3].isoformat()
    assert drawdown_periods(pd.Series([0.01, 0.0, 0.02], index=dates[:3])) == ()


def test_rolling_sharpe_volatility_and_exposure():
    dates = pd.bdate_range("2021-01-04", periods=6)
    r = pd.Series([0.01, 0.02, 0.03, 0.0, 0.0, 0.0], index=dates)
    w = pd.Series([0.0, 1.0, 1.0, -1.0, 0.0, 0.5], index=dates)
    roll = rolling_performance(r, w, window=3, periods_per_year=4)
    assert roll.window == 3
    assert roll.sharpe.iloc[:2].isna().all() and roll.volatility.iloc[:2].isna().all()
    # window 0.01, 0.02, 0.03: mean 0.02, sd 0.01, sqrt(4) = 2
    assert roll.sharpe.iloc[2] == pytest.approx(4.0)
    assert roll.volatility.iloc[2] == pytest.approx(0.02)
    x = np.array([0.02, 0.03, 0.0])
    assert roll.sharpe.iloc[3] == pytest.approx(x.mean() * 2 / x.std(ddof=1))  # 2.18
    # a flat window has zero volatility and no Sharpe ratio
    assert roll.volatility.iloc[5] == 0.0 and np.isnan(roll.sharpe.iloc[5])
    assert roll.exposure.iloc[2] == pytest.approx(2 / 3) and roll.exposure.iloc[5] == pytest.approx(0.5)
    assert rolling_performance(r, window=3).exposure is None


def test_tables_agree_with_the_performance_metrics():
    rng = np.random.default_rng(7)
    dates = pd.bdate_range("2015-06-10", periods=900, tz="UTC")
    r = pd.Series(rng.normal(0.0003, 0.012, len(dates)), index=dates)
    m = performance_metrics(r.to_numpy())
    months = monthly_returns(r).to_numpy()
    assert np.prod(1 + months[np.isfinite(months)]) - 1 == pytest.approx(m.total_return, rel=1e-10)
    assert np.prod(1 + yearly_returns(r).to_numpy()) - 1 == pytest.approx(m.total_return, rel=1e-10)
    # months compound to their year
    assert np.nanprod(1 + monthly_returns(r).loc[2016].to_numpy()) - 1 == pytest.approx(yearly_returns(r)[2016])
    periods = drawdown_periods(r, top=None)
    assert periods[0].depth == pytest.approx(m.max_drawdown)
    assert max(p.length for p in periods) == m.max_drawdown_duration
    assert sum(p.length for p in periods) == int((r.add(1).cumprod() < r.add(1).cumprod().cummax().clip(lower=1)).sum())
    assert all(a.depth <= b.depth for a, b in zip(periods, periods[1:], strict=False))
    roll = rolling_performance(r, window=126)
    tail = r.iloc[-126:].to_numpy()
    assert roll.volatility.iloc[-1] == pytest.approx(tail.std(ddof=1) * np.sqrt(252))
    assert roll.sharpe.iloc[-1] == pytest.approx(performance_metrics(tail).sharpe)


@pytest.mark.parametrize("bad", [
    pd.Series([0.1, np.nan], index=pd.bdate_range("2021-01-04", periods=2)),
    pd.Series([0.1, 0.2], index=pd.DatetimeIndex(["2021-01-05", "2021-01-04"])),
])
def test_bad_returns_raise_value_error(bad):
    with pytest.raises(ValueError):
        monthly_returns(bad)


def test_bad_arguments_are_rejected():
    with pytest.raises(TypeError):
        yearly_returns(pd.Series([0.1, 0.2]))
    with pytest.raises(ValueError, match="window"):
        rolling_performance(SMALL, window=1)
    with pytest.raises(ValueError, match="top"):
        drawdown_periods(SMALL, top=0)
    with pytest.raises(ValueError, match="same index"):
        rolling_performance(SMALL, SMALL.iloc[:3], window=2)
