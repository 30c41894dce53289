"""Reference check: headline metrics and calendar tables against empyrical (the library behind pyfolio).

Conventions compared (empyrical-reloaded 0.5+, ``period='daily'`` = 252 bars a year):

- CAGR: both ``equity[-1] ** (252 / n) - 1`` with ``n`` bars (empyrical ``annual_return``).
- Volatility: both the sample standard deviation (``ddof=1``) times ``sqrt(252)``.
- Sharpe: both ``mean / std(ddof=1) * sqrt(252)`` with no risk-free rate (empyrical's default
  ``risk_free=0``).
- Sortino: both ``mean * 252 / (sqrt(mean(min(r, 0) ** 2)) * sqrt(252))``: the downside deviation
  averages over *all* bars (zeros above the target 0), not only the losing ones.
- Max drawdown: both measure against a running peak that includes the starting capital.
  empyrical starts equity at 100 and we at 1, a scale factor that cancels in ``equity / peak``.
- Calmar: both CAGR / |max drawdown|, NaN when the equity never falls below a peak.
- Calendar returns: both compound ``prod(1 + r) - 1`` per calendar year / (year, month).

So the formulas agree and the comparisons use a relative tolerance of 1e-10 (floating-point
summation order only).
"""

from __future__ import annotations

import empyrical
import numpy as np
import pandas as pd
import pytest

from analytics import monthly_returns, performance_metrics, yearly_returns

REL = 1e-10


def _random(seed: int, n: int = 2000) -> pd.Series:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2012-03-14", periods=n, tz="UTC")
    # fat-ish tails and some flat bars, as a policy out of the market would give
    r = rng.standard_t(4, n) * 0.008 + 0.0003
    r[rng.random(n) < 0.15] = 0.0
    return pd.Series(r, index=dates, name="return")


def _long_drawdown() -> pd.Series:
    # 300 bars of rise, a 700-bar slide of about -60 %, then a slow partial recovery
    rng = np.random.default_rng(11)
    drift = np.concatenate([np.full(300, 0.001), np.full(700, -0.0013), np.full(1000, 0.0006)])
    r = drift + rng.normal(0, 0.01, drift.size)
    return pd.Series(r, index=pd.bdate_range("2006-01-02", periods=r.size, tz="UTC"), name="return")


SERIES = {"random_7": _random(7), "random_2024": _random(2024), "long_drawdown": _long_drawdown()}


@pytest.fixture(params=list(SERIES), ids=list(SERIES))
def returns(request) -> pd.Series:
    return SERIES[request.param]


def test_the_long_drawdown_series_is_what_its_name_says():
    m = performance_metrics(SERIES["long_drawdown"].to_numpy())
    assert m.max_drawdown < -0.4 and m.max_drawdown_duration > 1000


def test_headline_metrics_match_empyrical(returns):
    m = performance_metrics(returns.to_numpy())
    assert m.cagr == pytest.approx(empyrical.annual_return(returns), rel=REL)
    assert m.volatility == pytest.approx(empyrical.annual_volatility(returns), rel=REL)
    assert m.sharpe == pytest.approx(empyrical.sharpe_ratio(returns), rel=REL)
    assert m.sortino == pytest.approx(empyrical.sortino_ratio(returns), rel=REL)
    assert m.max_drawdown == pytest.approx(empyrical.max_drawdown(returns), rel=REL)
    assert m.calmar == pytest.approx(empyrical.calmar_ratio(returns), rel=REL)
    assert m.total_return == pytest.approx(empyrical.cum_returns_final(returns), rel=REL)


def test_annualisation_factor_is_passed_through():
    # weekly bars: our periods_per_year=52 is empyrical's period='weekly'
    r = SERIES["random_7"].iloc[:520]
    m = performance_metrics(r.to_numpy(), periods_per_year=52)
    assert m.cagr == pytest.approx(empyrical.annual_return(r, period="weekly"), rel=REL)
    assert m.volatility == pytest.approx(empyrical.annual_volatility(r, period="weekly"), rel=REL)
    assert m.sharpe == pytest.approx(empyrical.sharpe_ratio(r, period="weekly"), rel=REL)
    assert m.sortino == pytest.approx(empyrical.sortino_ratio(r, period="weekly"), rel=REL)
    assert m.calmar == pytest.approx(empyrical.calmar_ratio(r, period="weekly"), rel=REL)


def test_no_drawdown_gives_no_calmar_in_both():
    r = pd.Series([0.01, 0.0, 0.02, 0.005], index=pd.bdate_range("2021-01-04", periods=4, tz="UTC"))
    m = performance_metrics(r.to_numpy())
    assert m.max_drawdown == 0.0 == empyrical.max_drawdown(r)
    assert np.isnan(m.calmar) and np.isnan(empyrical.calmar_ratio(r))


def test_yearly_returns_match_empyrical(returns):
    ours = yearly_returns(returns)
    ref = empyrical.aggregate_returns(returns, "yearly")
    assert list(ours.index) == [int(y) for y in ref.index]
    np.testing.assert_allclose(ours.to_numpy(), ref.to_numpy(), rtol=REL, atol=1e-15)


def test_monthly_returns_match_empyrical(returns):
    # ours is a year x month table with NaN for months without bars; empyrical a (year, month) Series
    ours = monthly_returns(returns).stack().dropna()
    ref = empyrical.aggregate_returns(returns, "monthly")
    assert [(int(y), int(mo)) for y, mo in ours.index] == [(int(y), int(mo)) for y, mo in ref.index]
    np.testing.assert_allclose(ours.to_numpy(), ref.to_numpy(), rtol=REL, atol=1e-15)
    assert len(ref) > 90  # 2000 business days span 92 calendar months
