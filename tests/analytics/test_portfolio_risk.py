"""Portfolio VaR/ES and attribution, historical stress windows, hypothetical shocks."""

from __future__ import annotations

import json
import math
from datetime import date

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from scipy.stats import t as student_t
from skfolio.datasets import load_factors_dataset, load_sp500_dataset
from skfolio.preprocessing import prices_to_returns

from analytics._portfolio_risk import PORTFOLIO_VAR_METHODS, portfolio_var
from analytics._stress import (
    HISTORICAL_SCENARIOS,
    StressScenario,
    historical_stress,
    hypothetical_shock,
)
from analytics._var import gjr_filtered_portfolio_var_es, historical_var_es
from analytics.errors import InsufficientDataError

STOCKS = ["AAPL", "JNJ", "JPM", "XOM", "KO", "MSFT"]
WEIGHTS = [0.2, 0.15, 0.25, 0.1, 0.2, -0.1]  # one short


@pytest.fixture(scope="module")
def sp500_prices() -> pd.DataFrame:
    return load_sp500_dataset()


@pytest.fixture(scope="module")
def sp500_returns(sp500_prices) -> pd.DataFrame:
    return prices_to_returns(sp500_prices[STOCKS]).iloc[-1000:]


@pytest.fixture(scope="module")
def simulated_returns() -> pd.DataFrame:
    # Fat-tailed (t with 4 dof) correlated returns, 1500 days, 4 assets.
    rng = np.random.default_rng(7)
    a = rng.normal(size=(4, 4))
    chol = np.linalg.cholesky(a @ a.T / 4 + np.eye(4))
    z = rng.standard_t(4, size=(1500, 4)) @ chol.T * 0.006 + 0.0003
    return pd.DataFrame(z, columns=["A", "B", "C", "D"])


def _cases(sp500_returns, simulated_returns):
    w_sp = pd.Series(WEIGHTS, index=STOCKS)
    w_sim = pd.Series([0.5, -0.3, 0.0, 0.8], index=["A", "B", "C", "D"])
    for method in PORTFOLIO_VAR_METHODS:
        if method == "filtered":  # one GARCH fit per asset: keep it to three assets
            yield method, sp500_returns[STOCKS[:3]], w_sp[STOCKS[:3]]
            yield method, simulated_returns[["A", "B", "C"]], w_sim[["A", "B", "C"]]
        else:
            yield method, sp500_returns, w_sp
            yield method, simulated_returns, w_sim


# ---------------------------------------------------------------------------------------
# Attribution


def test_components_sum_to_var_and_es_for_every_method(sp500_returns, simulated_returns):
    seen = set()
    for method, r, w in _cases(sp500_returns, simulated_returns):
        for level in (0.99, 0.975):
            res = portfolio_var(r, w, level=level, method=method, n_sims=20_000)
            assert res.method == method and res.assets == tuple(r.columns)
            assert res.var > 0 and res.es >= res.var
            assert abs(sum(res.component_var) - res.var) <= 1e-9, method
            assert abs(sum(res.component_es) - res.es) <= 1e-9, method
            for wi, ci, mi in zip(res.weights, res.component_var, res.marginal_var, strict=True):
                if wi == 0.0:
                    assert ci == 0.0
                    assert math.isnan(mi) == (method in ("historical", "filtered", "monte_carlo"))
                elif method in ("historical", "filtered", "monte_carlo"):
                    assert mi == pytest.approx(ci / wi, rel=1e-12)
            json.dumps(res.to_dict(), allow_nan=False)
        seen.add(method)
    assert seen == set(PORTFOLIO_VAR_METHODS)


def test_historical_var_es_and_components_by_hand(sp500_returns):
    w = np.array(WEIGHTS)
    res = portfolio_var(sp500_returns, w, level=0.99, method="historical")
    x = sp500_returns.to_numpy()
    port = x @ w
    ref = historical_var_es(port, 0.99)
    assert res.var == ref.var and res.es == ref.es and res.n == 1000
    assert res.var == -np.quantile(port, 0.01, method="lower")
    # Component VaR: the 2h+1 scenarios ranked k-h..k+h, h = floor(sqrt(1000 * .01 * .99)) = 3,
    # averaged and rescaled to the VaR.
    order = np.argsort(port, kind="stable")
    k = 9
    rows = order[k - 3 : k + 4]
    raw = -(x[rows] * w).mean(axis=0)
    np.testing.assert_allclose(res.component_var, raw * res.var / raw.sum(), rtol=1e-12, atol=1e-15)
    tail = port <= port[order[k]]
    assert tail.sum() == 10
    np.testing.assert_allclose(res.component_es, -(x[tail] * w).mean(axis=0), rtol=1e-12, atol=1e-15)


def test_single_asset_historical_components_are_the_whole_var(sp500_returns):
    res = portfolio_var(sp500_returns[["JNJ"]], [0.7], method="historical")
    assert res.component_var == pytest.approx((res.var,), abs=1e-15)
    assert res.var == pytest.approx(0.7 * historical_var_es(sp500_returns["JNJ"]).var, rel=1e-12)


# ---------------------------------------------------------------------------------------
# Parametric methods


def test_normal_method_equals_the_hand_formula(sp500_returns):
    w = np.array(WEIGHTS)
    x = sp500_returns.to_numpy()
    mu, cov = x.mean(axis=0), np.cov(x, rowvar=False)
    m_p, s_p = w @ mu, math.sqrt(w @ cov @ w)
    for level in (0.95, 0.99):
        res = portfolio_var(sp500_returns, w, level=level, method="normal")
        z = norm.ppf(level)
        assert res.var == pytest.approx(-m_p + z * s_p, rel=1e-12)
        assert res.es == pytest.approx(-m_p + s_p * norm.pdf(z) / (1 - level), rel=1e-12)
        grad = -mu + z * (cov @ w) / s_p
        np.testing.assert_allclose(res.marginal_var, grad, rtol=1e-10)
        np.testing.assert_allclose(res.component_var, w * grad, rtol=1e-10)


def test_normal_marginal_var_matches_finite_differences(sp500_returns):
    w = np.array(WEIGHTS)
    res = portfolio_var(sp500_returns, w, method="normal")
    h = 1e-5
    for i in range(w.size):
        up, dn = w.copy(), w.copy()
        up[i] += h
        dn[i] -= h
        fd = (portfolio_var(sp500_returns, up, method="normal").var
              - portfolio_var(sp500_returns, dn, method="normal").var) / (2 * h)
        assert abs(fd - res.marginal_var[i]) < 1e-6


def test_student_t_closed_form_and_fatter_than_normal(sp500_returns):
    w = np.array(WEIGHTS)
    x = sp500_returns.to_numpy()
    port = x @ w
    nu = max(student_t.fit(port)[0], 2.5)
    res = portfolio_var(sp500_returns, w, level=0.99, method="student_t")
    assert res.dof == pytest.approx(nu, rel=1e-12) and 2.5 <= res.dof < 10  # daily stock returns: fat tails
    s_p = math.sqrt(w @ np.cov(x, rowvar=False) @ w)
    c = math.sqrt((nu - 2) / nu)
    tq = student_t.ppf(0.99, nu)
    assert res.var == pytest.approx(-port.mean() + s_p * c * tq, rel=1e-10)
    es_ref = -port.mean() + s_p * c * student_t.pdf(tq, nu) * (nu + tq**2) / ((nu - 1) * 0.01)
    assert res.es == pytest.approx(es_ref, rel=1e-10)
    # The ES closed form equals the numerical tail mean of the scaled t.
    from scipy.integrate import quad

    lo = student_t.ppf(0.01, nu)
    tail_mean = quad(lambda u: u * student_t.pdf(u, nu), -np.inf, lo)[0] / 0.01
    assert res.es == pytest.approx(-port.mean() - s_p * c * tail_mean, rel=1e-7)
    normal = portfolio_var(sp500_returns, w, level=0.99, method="normal")
    assert res.var >= normal.var and res.es > normal.es


def test_student_t_dof_floor():
    rng = np.random.default_rng(3)
    cauchy = pd.DataFrame(rng.standard_cauchy(size=(500, 2)) * 0.01, columns=["a", "b"])
    res = portfolio_var(cauchy, [0.5, 0.5], method="student_t")
    assert student_t.fit(cauchy.to_numpy() @ [0.5, 0.5])[0] < 2.5
    assert res.dof == 2.5


# ---------------------------------------------------------------------------------------
# Simulation methods


def test_filtered_equals_gjr_filtered_portfolio(sp500_returns):
    r = sp500_returns[STOCKS[:3]]
    w = pd.Series([0.4, -0.2, 0.5], index=STOCKS[:3])
    ref = gjr_filtered_portfolio_var_es(r, w, 0.99)
    res = portfolio_var(r, w, level=0.99, method="filtered")
    assert abs(res.var - ref.var) <= 1e-12 and abs(res.es - ref.es) <= 1e-12
    assert res.n == 1000


def test_monte_carlo_matches_the_normal_closed_form(sp500_returns):
    w = np.array(WEIGHTS)
    normal = portfolio_var(sp500_returns, w, method="normal")
    x = sp500_returns.to_numpy()
    m_p, s_p = w @ x.mean(axis=0), math.sqrt(w @ np.cov(x, rowvar=False) @ w)
    values = []
    for seed in (1, 2, 3, 4, 5):
        mc = portfolio_var(sp500_returns, w, method="monte_carlo", seed=seed)
        assert mc.n == 100_000 and mc.seed == seed
        se = math.sqrt(0.01 * 0.99 / 100_000) / norm.pdf(-mc.var, m_p, s_p)
        assert mc.standard_error == pytest.approx(se, rel=1e-12)
        assert abs(mc.var - normal.var) < 3 * mc.standard_error
        values.append(mc.var)
    assert len(set(values)) == 5  # different seeds, different values
    again = portfolio_var(sp500_returns, w, method="monte_carlo", seed=3)
    assert again.var == values[2] and again.component_var == portfolio_var(
        sp500_returns, w, method="monte_carlo", seed=3).component_var
    assert portfolio_var(sp500_returns, w, method="normal").standard_error is None


def test_all_zero_weights_and_validation(sp500_returns):
    res = portfolio_var(sp500_returns, np.zeros(6), method="historical")
    assert res.var == res.es == 0.0 and res.component_var == (0.0,) * 6
    with pytest.raises(InsufficientDataError):
        portfolio_var(sp500_returns.iloc[:99], np.ones(6) / 6)
    with pytest.raises(InsufficientDataError):
        portfolio_var(sp500_returns.iloc[:99], np.ones(6) / 6, level=0.95, method="filtered")
    with pytest.raises(ValueError, match="method"):
        portfolio_var(sp500_returns, np.ones(6), method="garch")
    with pytest.raises(ValueError, match="no entry"):
        portfolio_var(sp500_returns, pd.Series({"AAPL": 1.0}))
    with pytest.raises(ValueError, match="not in returns"):
        portfolio_var(sp500_returns, pd.Series(1.0, index=[*STOCKS, "GE"]))
    holed = sp500_returns.copy()
    holed.iloc[5, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        portfolio_var(holed, np.ones(6))
    with pytest.raises(ValueError, match="n_sims"):
        portfolio_var(sp500_returns, np.ones(6), method="monte_carlo", n_sims=50)


# ---------------------------------------------------------------------------------------
# Historical stress


def test_scenarios_table():
    assert list(HISTORICAL_SCENARIOS) == ["ltcm", "dotcom", "gfc", "euro", "covid"]
    gfc = HISTORICAL_SCENARIOS["gfc"]
    assert (gfc.start, gfc.end) == (date(2007, 10, 9), date(2009, 3, 9))
    assert HISTORICAL_SCENARIOS["covid"].start == date(2020, 2, 19)
    with pytest.raises(ValueError, match="before start"):
        StressScenario("x", "x", "2020-01-02", "2020-01-01")


def test_one_asset_stress_is_the_asset_return(sp500_prices):
    jnj = sp500_prices["JNJ"]
    res = historical_stress(sp500_prices, pd.Series({"JNJ": 1.0}), "gfc")
    assert res.base_date == date(2007, 10, 8) and res.end_date == date(2009, 3, 9)
    expected = jnj.loc["2009-03-09"] / jnj.loc["2007-10-08"] - 1
    assert abs(res.pnl - expected) <= 1e-12 and res.pnl < -0.2
    daily = jnj.loc["2007-10-08":"2009-03-09"].pct_change().dropna().to_numpy()
    np.testing.assert_allclose(res.daily_returns, daily, rtol=1e-9, atol=1e-13)
    assert res.dates[0] == date(2007, 10, 9) and len(res.dates) == daily.size
    window = jnj.loc["2007-10-08":"2009-03-09"].to_numpy()
    assert res.max_drawdown == pytest.approx(np.max(1 - window / np.maximum.accumulate(window)), rel=1e-12)
    assert res.missing == () and res.coverage == 1.0 and res.drivers == ("JNJ",)


def test_stress_book_with_missing_factor_etf(sp500_prices):
    prices = sp500_prices.join(load_factors_dataset(), how="left")  # MTUM starts in 2014
    w = pd.Series({"JNJ": 0.3, "JPM": 0.4, "MTUM": 0.2, "XOM": -0.1, "KO": 0.0})
    res = historical_stress(prices, w, HISTORICAL_SCENARIOS["gfc"])
    assert res.missing == ("MTUM",)
    assert res.coverage == pytest.approx(0.8 / 1.0, rel=1e-12)
    assert set(res.asset_pnl) == {"JNJ", "JPM", "XOM"}
    assert res.pnl == sum(res.asset_pnl.values())
    for a in ("JNJ", "JPM", "XOM"):
        assert res.asset_pnl[a] == pytest.approx(w[a] * (prices.loc["2009-03-09", a] / prices.loc["2007-10-08", a] - 1),
                                                 rel=1e-12)
    assert list(res.drivers) == sorted(res.asset_pnl, key=res.asset_pnl.get)
    assert res.drivers[0] == "JPM"  # the bank lost most
    # Book path by hand: V_t = 1 + sum_i w_i (P_i(t) / P_i(base) - 1).
    px = prices.loc["2007-10-08":"2009-03-09", ["JNJ", "JPM", "XOM"]]
    book = 1 + (px / px.iloc[0] - 1).to_numpy() @ np.array([0.3, 0.4, -0.1])
    np.testing.assert_allclose(res.daily_returns, book[1:] / book[:-1] - 1, rtol=1e-10, atol=1e-14)
    i = int(np.argmin(res.daily_returns))
    assert res.worst_return == res.daily_returns.min() and res.worst_date == res.dates[i]
    assert res.max_drawdown == pytest.approx(np.max(1 - book / np.maximum.accumulate(book)), rel=1e-12)
    json.dumps(res.to_dict(), allow_nan=False)
    with pytest.raises(InsufficientDataError):
        historical_stress(prices, pd.Series({"MTUM": 1.0}), "gfc")
    # The same window on a UTC index, and a hand-built window ending on a non-session day.
    utc = prices.tz_localize("UTC")
    assert historical_stress(utc, w, "gfc").pnl == res.pnl
    custom = StressScenario("wk", "one week", "2008-10-06", "2008-10-11")  # the 11th is a Saturday
    week = historical_stress(prices, w, custom)
    assert week.base_date == date(2008, 10, 3) and week.end_date == date(2008, 10, 10) and len(week.dates) == 5


def test_stress_errors(sp500_prices):
    with pytest.raises(ValueError, match="unknown scenario"):
        historical_stress(sp500_prices, pd.Series({"JNJ": 1.0}), "crash")
    early = StressScenario("early", "before data", "1987-10-01", "1987-10-30")
    with pytest.raises(InsufficientDataError):
        historical_stress(sp500_prices, pd.Series({"JNJ": 1.0}), early)
    with pytest.raises(ValueError, match="entries"):
        historical_stress(sp500_prices, [1.0, 0.0], "gfc")


# ---------------------------------------------------------------------------------------
# Hypothetical shocks


def test_shock_of_the_only_held_asset():
    cov = np.array([[0.04, 0.012, 0.0], [0.012, 0.09, 0.01], [0.0, 0.01, 0.01]])
    res = hypothetical_shock(cov, ["A", "B", "C"], [0.6], {"A": -0.2}, held=["A"])
    assert res.pnl == pytest.approx(0.6 * -0.2, abs=1e-15)
    assert dict(res.asset_pnl) == {"A": pytest.approx(-0.12)} and res.drivers == ("A",)
    assert res.returns["B"] == pytest.approx(0.012 / 0.04 * -0.2, rel=1e-12)
    assert res.returns["C"] == 0.0


def test_shock_of_an_unheld_index_moves_the_book_by_beta():
    # Index X (unheld) and stock S: beta = cov / var = 0.018 / 0.03 = 0.6.
    cov = pd.DataFrame([[0.03, 0.018], [0.018, 0.05]], index=["X", "S"], columns=["X", "S"])
    res = hypothetical_shock(cov, ["X", "S"], pd.Series({"S": 0.5}), {"X": -0.20})
    assert res.returns["S"] == pytest.approx(0.6 * -0.20, rel=1e-12)
    assert res.pnl == pytest.approx(0.5 * 0.6 * -0.20, rel=1e-12)
    assert res.shocked == ("X",) and not res.singular and res.weights["X"] == 0.0
    json.dumps(res.to_dict(), allow_nan=False)


def test_two_shocks_use_the_conditional_expectation_and_singular_blocks():
    cov = np.array([[0.04, 0.01, 0.012], [0.01, 0.02, 0.006], [0.012, 0.006, 0.03]])
    res = hypothetical_shock(cov, ["a", "b", "c"], [1.0, 1.0, 1.0], {"a": -0.1, "b": 0.05})
    r_c = cov[2, :2] @ np.linalg.solve(cov[:2, :2], [-0.1, 0.05])
    assert res.returns["c"] == pytest.approx(r_c, rel=1e-12)
    assert res.pnl == pytest.approx(-0.1 + 0.05 + r_c, rel=1e-12)
    # Two perfectly collinear shocked assets (b = 2a): the pseudo-inverse, flagged.
    sing = np.array([[1.0, 2.0, 0.5], [2.0, 4.0, 1.0], [0.5, 1.0, 1.0]]) * 0.01
    res2 = hypothetical_shock(sing, ["a", "b", "c"], [0.0, 0.0, 1.0], {"a": -0.1, "b": -0.2})
    assert res2.singular and res2.rank == 1
    assert res2.returns["c"] == pytest.approx(0.5 * -0.1, rel=1e-9)  # c's beta on a is 0.5


def test_shock_errors():
    cov = np.eye(2) * 0.01
    with pytest.raises(ValueError, match="'Z'"):
        hypothetical_shock(cov, ["A", "B"], [1.0, 0.0], {"Z": -0.1})
    with pytest.raises(ValueError, match="empty"):
        hypothetical_shock(cov, ["A", "B"], [1.0, 0.0], {})
    with pytest.raises(ValueError, match="symmetric"):
        hypothetical_shock(np.array([[0.01, 0.002], [0.0, 0.01]]), ["A", "B"], [1.0, 0.0], {"A": -0.1})
    with pytest.raises(ValueError, match="'Q'"):
        hypothetical_shock(cov, ["A", "B"], pd.Series({"Q": 1.0}), {"A": -0.1})


def test_minimum_sample_uses_the_worst_scenario_exactly(sp500_returns):
    # 100 rows at 99%: k = 0, so the neighbourhood is the single worst day (h = 0).
    r = sp500_returns.iloc[:100]
    w = np.array(WEIGHTS)
    res = portfolio_var(r, w, method="historical")
    x = r.to_numpy()
    worst = int(np.argmin(x @ w))
    assert res.var == -(x @ w)[worst]
    np.testing.assert_allclose(res.component_var, -x[worst] * w, rtol=0, atol=1e-17)
    np.testing.assert_allclose(res.component_es, -x[worst] * w, rtol=0, atol=1e-17)
