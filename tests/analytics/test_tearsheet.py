"""Tearsheet statistics: hand-computed values on small series, agreement with the metrics, trade invariants."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics import (
    DrawdownPeriod,
    Trade,
    drawdown_periods,
    monthly_returns,
    performance_metrics,
    rolling_performance,
    trade_list,
    trade_summary,
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


# Trades: weights 0, 1, 1, 0.5, 0, -1, -1, 1, 0 hold a long (bars 1-3, resized on bar 3), a short
# (bars 5-6), a flip to long (bar 7) and end flat.
TRADE_DATES = pd.bdate_range("2022-03-01", periods=9, tz="UTC")
TRADE_W = pd.Series([0, 1, 1, 0.5, 0, -1, -1, 1, 0], index=TRADE_DATES, dtype=float)
TRADE_R = pd.Series([0.05, 0.01, -0.02, 0.03, 0.04, -0.01, -0.02, 0.05, -0.03], index=TRADE_DATES)


def test_trade_list_by_hand():
    d = TRADE_DATES
    assert trade_list(TRADE_W, TRADE_R) == (
        Trade("long", d[1], d[3], 3, pytest.approx(1.01 * 0.98 * 1.03 - 1), pytest.approx(2.5 / 3), False),
        Trade("short", d[5], d[6], 2, pytest.approx(0.99 * 0.98 - 1), 1.0, False),
        Trade("long", d[7], d[7], 1, pytest.approx(0.05), 1.0, False),
    )
    assert trade_list(TRADE_W, TRADE_R)[1].to_dict() == {
        "side": "short", "entry": d[5].isoformat(), "exit": d[6].isoformat(), "bars": 2,
        "return": pytest.approx(-0.0298), "average_weight": 1.0, "open": False}


def test_trade_summary_by_hand():
    s = trade_summary(TRADE_W, TRADE_R)
    # trade returns 0.019494, -0.0298, 0.05; held 3, 2 and 1 bars; 6 of 9 bars in the market
    assert (s.n_trades, s.n_long, s.n_short, s.open_at_end) == (3, 2, 1, 0)
    assert s.win_rate == pytest.approx(2 / 3)
    assert s.average_return == pytest.approx((0.019494 - 0.0298 + 0.05) / 3)  # 0.0132313
    assert s.median_return == pytest.approx(0.019494)
    assert (s.best_return, s.worst_return) == (pytest.approx(0.05), pytest.approx(-0.0298))
    assert s.average_win == pytest.approx((0.019494 + 0.05) / 2)  # 0.034747
    assert s.average_loss == pytest.approx(-0.0298)
    assert s.profit_factor == pytest.approx(0.069494 / 0.0298)  # 2.332
    assert (s.average_bars, s.longest_bars) == (2.0, 3)
    assert s.time_in_market == pytest.approx(6 / 9)
    assert s.to_dict()["n_trades"] == 3 and set(s.to_dict()) == set(s.__dataclass_fields__)


def test_a_trade_still_held_on_the_last_bar_is_open():
    d = TRADE_DATES[:4]
    w = pd.Series([-0.5, -2.0, 1e-13, 0.3], index=d)  # 1e-13 counts as flat
    r = pd.Series([0.01, 0.02, 0.5, -0.04], index=d)
    trades = trade_list(w, r)
    assert [(t.side, t.bars, t.open) for t in trades] == [("short", 2, False), ("long", 1, True)]
    assert trades[0].return_ == pytest.approx(1.01 * 1.02 - 1) and trades[0].average_weight == 1.25
    assert trades[1].exit == d[3] and trades[1].return_ == pytest.approx(-0.04)
    s = trade_summary(w, r)
    assert s.open_at_end == 1 and s.win_rate == 0.5 and s.time_in_market == 0.75
    # only winners: no profit factor; only losers: zero
    assert np.isnan(trade_summary(w.iloc[:2], r.iloc[:2]).profit_factor)
    assert trade_summary(w.iloc[3:], r.iloc[3:]).profit_factor == 0.0


@pytest.mark.parametrize("n", [0, 5])
def test_never_in_the_market_gives_no_trades(n):
    d = pd.bdate_range("2022-03-01", periods=n, tz="UTC")
    w, r = pd.Series(0.0, index=d), pd.Series(0.01, index=d)
    assert trade_list(w, r) == ()
    s = trade_summary(w, r)
    assert (s.n_trades, s.n_long, s.n_short, s.open_at_end, s.longest_bars) == (0, 0, 0, 0, 0)
    for name in ("win_rate", "average_return", "median_return", "best_return", "worst_return",
                 "average_win", "average_loss", "profit_factor", "average_bars"):
        assert np.isnan(getattr(s, name)), name
    assert s.time_in_market == 0.0 if n else np.isnan(s.time_in_market)


def test_bad_trade_inputs_are_rejected():
    with pytest.raises(TypeError, match="weights"):
        trade_list(TRADE_W.to_numpy(), TRADE_R)
    with pytest.raises(TypeError, match="returns"):
        trade_list(TRADE_W, TRADE_R.reset_index(drop=True))
    with pytest.raises(ValueError, match="same index"):
        trade_list(TRADE_W.iloc[1:], TRADE_R)
    with pytest.raises(ValueError, match="weights contain NaN"):
        trade_summary(TRADE_W.where(TRADE_W != 0.5), TRADE_R)
    with pytest.raises(ValueError, match="returns contain NaN"):
        trade_list(TRADE_W, TRADE_R.replace(0.05, np.inf))
    with pytest.raises(ValueError, match="sorted"):
        trade_list(TRADE_W.iloc[::-1], TRADE_R.iloc[::-1])


_weight_values = st.sampled_from([0.0, 0.0, 1.0, 0.5, -1.0, -0.25, 2.0, 1e-13])


@settings(max_examples=200, deadline=None)
@given(data=st.data(), n=st.integers(0, 60))
def test_trade_invariants(data, n):
    d = pd.bdate_range("2019-12-30", periods=n, tz="UTC")
    w = pd.Series(data.draw(st.lists(_weight_values, min_size=n, max_size=n)), index=d, dtype=float)
    r = pd.Series(data.draw(st.lists(st.floats(-0.5, 0.5), min_size=n, max_size=n)), index=d, dtype=float)
    trades = trade_list(w, r)
    held = (w.abs() >= 1e-12).to_numpy()
    assert sum(t.bars for t in trades) == held.sum()
    # the trades partition the in-market bars, so their returns compound to the in-market return
    in_market = np.prod(1 + r.to_numpy()[held])
    assert np.prod([1 + t.return_ for t in trades]) == pytest.approx(in_market, rel=1e-9, abs=1e-12)
    for t in trades:
        bars = w.loc[t.entry:t.exit].to_numpy()
        assert len(bars) == t.bars and (np.sign(bars) == (1 if t.side == "long" else -1)).all()
        assert (np.abs(bars) >= 1e-12).all() and t.average_weight == pytest.approx(np.abs(bars).mean())
    for a, b in zip(trades, trades[1:], strict=False):
        assert a.exit < b.entry  # in order, never overlapping
        # consecutive trades are separated by a flat bar or flip side on the next bar
        assert d.get_loc(b.entry) > d.get_loc(a.exit) + 1 or a.side != b.side
    assert [t.open for t in trades] == [t.exit == d[-1] for t in trades]
    s = trade_summary(w, r)
    assert s.n_trades == len(trades) == s.n_long + s.n_short
    assert s.time_in_market == (held.mean() if n else pytest.approx(np.nan, nan_ok=True))
