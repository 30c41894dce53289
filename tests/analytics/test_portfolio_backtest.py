"""The walk-forward portfolio backtest: causality (prefix invariance), trade timing, costs,
regime caps, crisis windows and bad input, checked against hand-computed truths."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics import (
    InsufficientDataError,
    PortfolioBacktestConfig,
    RegimeCaps,
    StressScenario,
    Timeframe,
    crisis_windows,
    drift_weights,
    run_portfolio_backtest,
)

_STOCKS = ("AAPL", "JNJ", "KO", "XOM", "WMT")
_SMALL = PortfolioBacktestConfig(min_history=120, cov_window=250, review_every=21)


def _closes(n: int = 600) -> pd.DataFrame:
    """``n`` common bars of five embedded stocks' adjusted closes, from 2000 on."""
    from integrations import BuiltinSource

    src = BuiltinSource()
    tf = Timeframe.parse("1D")
    cols = {s: src.fetch(s, tf, pd.Timestamp("2000-01-01", tz="UTC"), pd.Timestamp("2030-01-01", tz="UTC"))["close"]
            for s in _STOCKS}
    return pd.DataFrame(cols).dropna().iloc[:n]


def _families(index: pd.DatetimeIndex) -> pd.Series:
    """risk_on, switching to risk_off for stretches of 40 bars every 110 bars (several switches)."""
    fam = np.where((np.arange(len(index)) % 110) >= 70, "risk_off", "risk_on").astype(object)
    return pd.Series(fam, index=index)


@pytest.fixture(scope="module")
def closes() -> pd.DataFrame:
    return _closes()


# ----------------------------------------------------------------------------- prefix invariance


@pytest.mark.parametrize("method", ["erc", "mv", "hrp", "invvol", "equal"])
def test_cutting_the_future_off_changes_nothing_before_the_cut(closes, method):
    fam = _families(closes.index)
    full = run_portfolio_backtest(closes, fam, method, _SMALL)
    assert len(full.rebalances) >= 6  # the comparison covers trades, not only the empty book
    for cut in (200, 333, 480):  # after the first decision; at and around family switches
        part = run_portfolio_backtest(closes.iloc[: cut + 1], fam.iloc[: cut + 1], method, _SMALL)
        np.testing.assert_allclose(part.weights.to_numpy(), full.weights.iloc[: cut + 1].to_numpy(),
                                   rtol=0, atol=1e-12)
        np.testing.assert_allclose(part.returns.to_numpy(), full.returns.iloc[: cut + 1].to_numpy(),
                                   rtol=0, atol=1e-12)
        assert part.rebalances == tuple(t for t in full.rebalances if t <= closes.index[cut])
        np.testing.assert_allclose(part.targets.to_numpy(), full.targets.iloc[: cut + 1].to_numpy(),
                                   rtol=0, atol=1e-12)
        assert part.trade_due.equals(full.trade_due.iloc[: cut + 1])  # the last close's decision too
    # the future families alone cannot change the past either
    other = fam.copy()
    other.iloc[400:] = "risk_off"
    alt = run_portfolio_backtest(closes, other, method, _SMALL)
    np.testing.assert_allclose(alt.weights.iloc[:401].to_numpy(), full.weights.iloc[:401].to_numpy(),
                               rtol=0, atol=1e-12)


def test_families_do_change_the_regime_aware_book(closes):
    """The prefix test above is not vacuous: the families drive erc's weights."""
    on = run_portfolio_backtest(closes, pd.Series("risk_on", closes.index), "erc", _SMALL)
    mixed = run_portfolio_backtest(closes, _families(closes.index), "erc", _SMALL)
    assert np.abs(on.weights.to_numpy() - mixed.weights.to_numpy()).max() > 0.05


# ----------------------------------------------------------------------------- timing


def _two_assets(n: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    r = rng.normal(0.0, [0.01, 0.03], size=(n, 2))
    idx = pd.bdate_range("2020-01-01", periods=n, tz="UTC")
    return pd.DataFrame(100.0 * np.cumprod(1.0 + r, axis=0), index=idx, columns=["A", "B"])


def test_a_decision_at_close_t_is_traded_at_t_plus_1_and_held_from_t_plus_2():
    prices = _two_assets()
    cfg = PortfolioBacktestConfig(min_history=20, cov_window=20, review_every=100, band=0.5, cost_bps=10.0)
    res = run_portfolio_backtest(prices, pd.Series("risk_on", prices.index), "equal", cfg)
    r = prices.pct_change().to_numpy()
    idx = prices.index
    # first decision at close 20 (min_history), traded at close 21, held over bar 22
    assert res.rebalances[0] == idx[21]
    held = res.weights.to_numpy()
    assert (held[:22] == 0).all()
    np.testing.assert_array_equal(held[22], [0.5, 0.5])
    assert res.turnover.iloc[21] == pytest.approx(1.0, abs=1e-15)  # from cash to fully invested
    assert res.returns.iloc[21] == pytest.approx(-1.0 * 10.0 / 1e4, abs=1e-15)  # only the cost
    assert res.returns.iloc[22] == pytest.approx(0.5 * r[22, 0] + 0.5 * r[22, 1], abs=1e-15)
    # band 0.5 is never reached: one trade only, the book then drifts by hand
    assert len(res.rebalances) == 1
    w = np.array([0.5, 0.5])
    for t in range(23, len(prices)):
        w = drift_weights(w, r[t - 1])
        np.testing.assert_allclose(held[t], w, rtol=0, atol=1e-14)
        assert res.returns.iloc[t] == pytest.approx(float(w @ r[t]), abs=1e-15)


def test_too_little_history_for_a_decision_holds_nothing_and_min_history_plus_3_bars_is_the_floor():
    prices = _two_assets(23)
    cfg = PortfolioBacktestConfig(min_history=20, cov_window=20, review_every=100)
    res = run_portfolio_backtest(prices, pd.Series("risk_on", prices.index), "equal", cfg)
    assert res.weights.iloc[22].tolist() == [0.5, 0.5]
    with pytest.raises(InsufficientDataError, match="at least 23"):
        run_portfolio_backtest(prices.iloc[:22], pd.Series("risk_on", prices.index), "equal", cfg)


# ----------------------------------------------------------------------------- costs


def test_net_is_gross_minus_turnover_costs_and_turnover_is_the_traded_weight(closes):
    fam = _families(closes.index)
    cfg = PortfolioBacktestConfig(min_history=120, cov_window=250, review_every=21, cost_bps=7.5)
    res = run_portfolio_backtest(closes, fam, "erc", cfg)
    r = closes.pct_change().fillna(0.0).to_numpy()
    held = res.weights.to_numpy()
    gross = (held * r).sum(axis=1)
    np.testing.assert_allclose(res.returns.to_numpy(), gross - res.turnover.to_numpy() * 7.5e-4, rtol=0, atol=1e-15)
    np.testing.assert_allclose(res.costs.to_numpy(), res.turnover.to_numpy() * 7.5e-4, rtol=0, atol=1e-18)
    trade_bars = {closes.index.get_loc(t) for t in res.rebalances}
    for t in range(1, len(closes) - 1):
        drifted = drift_weights(held[t], r[t]) if held[t].any() else held[t]
        if t in trade_bars:  # the weights held over the next bar are the new ones
            assert res.turnover.iloc[t] == pytest.approx(np.abs(held[t + 1] - drifted).sum(), abs=1e-13)
            assert res.turnover.iloc[t] > 0
        else:  # no trade: the book drifts and nothing is paid
            assert res.turnover.iloc[t] == 0.0
            np.testing.assert_allclose(held[t + 1], drifted, rtol=0, atol=1e-13)
    np.testing.assert_allclose(res.equity.to_numpy(), np.cumprod(1.0 + res.returns.to_numpy()), rtol=1e-13)


def test_band_zero_equal_weight_alternates_between_one_over_n_and_its_one_bar_drift(closes):
    """band 0 trades after every drift, but a trade decided at close t is done at close t+1:
    the book is 1/N over bars m+2, m+4, ... and 1/N drifted by one bar over m+3, m+5, ..."""
    cfg = PortfolioBacktestConfig(min_history=120, cov_window=250, review_every=21, band=0.0, cost_bps=0.0)
    res = run_portfolio_backtest(closes, pd.Series("risk_on", closes.index), "equal", cfg)
    r = closes.pct_change().fillna(0.0).to_numpy()
    k = r.shape[1]
    m = 120
    eq = np.full(k, 1.0 / k)
    assert (res.returns.iloc[: m + 2] == 0).all()
    for t in range(m + 2, len(closes)):
        if (t - m) % 2 == 0:
            expected_w = eq
            assert res.returns.iloc[t] == pytest.approx(r[t].mean(), abs=1e-15)
        else:
            expected_w = drift_weights(eq, r[t - 1])
            # traded at this close, from the book drifted over two bars back to 1/N
            two_bars = drift_weights(expected_w, r[t])
            assert res.turnover.iloc[t] == pytest.approx(np.abs(eq - two_bars).sum(), abs=1e-14)
        np.testing.assert_allclose(res.weights.iloc[t].to_numpy(), expected_w, rtol=0, atol=1e-14)
        assert res.returns.iloc[t] == pytest.approx(float(expected_w @ r[t]), abs=1e-15)
    assert res.costs.abs().sum() == 0.0


# ----------------------------------------------------------------------------- regime caps


@pytest.mark.parametrize("method", ["erc", "mv", "hrp", "invvol"])
def test_risk_off_caps_bind_on_every_traded_book(closes, method):
    caps = {"risk_on": RegimeCaps(1.0, 1.0), "risk_off": RegimeCaps(0.6, 0.3), "unavailable": RegimeCaps(1.0, 1.0)}
    cfg = PortfolioBacktestConfig(min_history=120, cov_window=250, review_every=21, caps=caps)
    res = run_portfolio_backtest(closes, pd.Series("risk_off", closes.index), method, cfg)
    held = res.weights.to_numpy()
    after_trade = [closes.index.get_loc(t) + 1 for t in res.rebalances if closes.index.get_loc(t) + 1 < len(closes)]
    assert after_trade
    for t in after_trade:
        assert held[t].sum() <= 0.6 + 1e-9
        assert held[t].max() <= 0.3 + 1e-9
        assert held[t].min() >= -1e-12
    assert held[after_trade[0]].sum() > 0.59  # the cap binds, not an empty book
    # between trades the book only drifts: the gross stays near the cap
    assert held[after_trade[0]:].sum(axis=1).max() < 0.7


# ----------------------------------------------------------------------------- crisis windows


def test_crisis_windows_of_a_hand_example():
    idx = pd.bdate_range("2021-03-01", periods=8, tz="UTC")
    r = pd.Series([0.5, 0.10, -0.20, 0.05, -0.10, 0.02, 0.3, 0.4], idx)
    sc = {"mine": StressScenario("mine", "My window", "2021-03-02", "2021-03-08")}
    (w,) = crisis_windows(r, sc)
    inside = np.array([0.10, -0.20, 0.05, -0.10, 0.02])  # 03-02 .. 03-08 (business days)
    assert (w.scenario, w.name, w.start, w.end) == ("mine", "My window", "2021-03-02", "2021-03-08")
    assert w.total_return == pytest.approx(1.1 * 0.8 * 1.05 * 0.9 * 1.02 - 1.0, abs=1e-15)
    # peak 1.1 after day one; trough 1.1*0.8*1.05*0.9 = 0.8316
    assert w.max_drawdown == pytest.approx(0.8316 / 1.1 - 1.0, abs=1e-14)
    assert w.worst_day == -0.20
    assert w.volatility == pytest.approx(np.std(inside, ddof=1) * np.sqrt(252), abs=1e-14)
    # a window with fewer than two bars is left out; naive dates work the same
    one = {"one": StressScenario("one", "One day", "2021-03-05", "2021-03-05")}
    assert crisis_windows(r, one) == ()
    naive = pd.Series(r.to_numpy(), idx.tz_localize(None))
    assert crisis_windows(naive, sc) == (w,)


def test_crisis_windows_of_a_series_before_every_default_scenario_is_empty():
    r = pd.Series([0.01, 0.02, -0.01], pd.bdate_range("1990-01-01", periods=3, tz="UTC"))
    assert crisis_windows(r) == ()


# ----------------------------------------------------------------------------- bad input


def test_bad_input_is_refused():
    prices = _two_assets()
    fam = pd.Series("risk_on", prices.index)
    cfg = PortfolioBacktestConfig(min_history=20, cov_window=20)
    holed = prices.copy()
    holed.iloc[5, 1] = np.nan
    with pytest.raises(ValueError, match="finite and positive"):
        run_portfolio_backtest(holed, fam, "equal", cfg)
    with pytest.raises(ValueError, match="method must be one of"):
        run_portfolio_backtest(prices, fam, "kelly", cfg)
    with pytest.raises(InsufficientDataError):
        run_portfolio_backtest(prices.iloc[:22], fam, "equal", cfg)
    with pytest.raises(ValueError, match="sorted DatetimeIndex"):
        run_portfolio_backtest(prices.iloc[::-1], fam, "equal", cfg)
    with pytest.raises(ValueError, match="min_history must be >= 20"):
        PortfolioBacktestConfig(min_history=10)
