"""Portfolio construction: EWMA regime covariance, ERC/MV/HRP/inverse-vol weights, caps, drift.

Reference values: skfolio estimators fitted the ordinary way (on returns, with their own
empirical prior), analytic minimum-variance and inverse-volatility weights, hand-written
EWMA loops and hand-computed water-filling.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from skfolio.datasets import load_sp500_dataset
from skfolio.optimization import (
    HierarchicalRiskParity,
    MeanRisk,
    ObjectiveFunction,
    RiskBudgeting,
)
from skfolio.preprocessing import prices_to_returns

import analytics._portfolio as portfolio_mod
from analytics._covariance import (
    DEFAULT_HALF_LIVES,
    CovarianceEstimate,
    regime_covariance,
    risk_contributions,
)
from analytics._portfolio import (
    DEFAULT_REGIME_CAPS,
    PORTFOLIO_METHODS,
    RegimeCaps,
    caps_for,
    drift_weights,
    portfolio_weights,
    rebalance_due,
)
from analytics.errors import InsufficientDataError, RegimeDeskError

LOOSE = RegimeCaps(1.0, 1.0)


@pytest.fixture(scope="module")
def sp500() -> pd.DataFrame:
    """Last three years (756 bars) of skfolio's 20-stock S&P 500 daily returns."""
    return prices_to_returns(load_sp500_dataset()).iloc[-756:]


@pytest.fixture(scope="module")
def sample_cov(sp500: pd.DataFrame) -> CovarianceEstimate:
    """The sample covariance (ddof=1), which is what skfolio's EmpiricalPrior estimates."""
    return CovarianceEstimate(
        covariance=np.cov(sp500.to_numpy().T, ddof=1),
        assets=tuple(sp500.columns),
        half_life=math.inf,
        family="sample",
        nobs=len(sp500),
    )


def _random_cov(k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, k))
    return (a @ a.T / k + np.diag(rng.uniform(0.5, 3.0, k))) * 1e-4


def _estimate(cov: np.ndarray) -> CovarianceEstimate:
    k = cov.shape[0]
    return CovarianceEstimate(
        covariance=cov, assets=tuple(f"a{i}" for i in range(k)), half_life=21.0,
        family="risk_off", nobs=100,
    )


def _rc_spread(w: np.ndarray, cov: np.ndarray) -> float:
    rc = risk_contributions(w, cov)
    return float((rc.max() - rc.min()) / rc.mean())


# ---------------------------------------------------------------------------------------
# ERC


def test_erc_equal_risk_contributions_random_5_assets() -> None:
    cov = _random_cov(5, seed=3)
    pw = portfolio_weights("erc", _estimate(cov))
    assert pw.converged
    assert pw.gross == pytest.approx(1.0, abs=1e-12)
    assert _rc_spread(pw.weights, cov) < 1e-6
    # Not the trivial answer: the assets' volatilities differ, so do the ERC weights.
    assert np.ptp(pw.weights) > 0.01


def test_erc_equal_risk_contributions_sp500(sp500: pd.DataFrame) -> None:
    est = regime_covariance(sp500, "risk_on")
    pw = portfolio_weights("erc", est)
    assert pw.converged
    assert _rc_spread(pw.weights, est.covariance) < 1e-6
    assert pw.risk_contributions.sum() == pytest.approx(pw.volatility, rel=1e-12)


def test_erc_agrees_with_skfolio_fitted_on_returns(
    sp500: pd.DataFrame, sample_cov: CovarianceEstimate
) -> None:
    ours = portfolio_weights("erc", sample_cov).weights
    ref = RiskBudgeting().fit(sp500).weights_
    # skfolio's own answer at its default solver tolerance; ours is polished further.
    np.testing.assert_allclose(ours, ref, atol=1e-4)
    assert _rc_spread(ours, sample_cov.covariance) < _rc_spread(ref, sample_cov.covariance)


# ---------------------------------------------------------------------------------------
# invvol, HRP, MV


def test_invvol_is_the_closed_form() -> None:
    cov = _random_cov(6, seed=11)
    pw = portfolio_weights("invvol", _estimate(cov))
    inv = 1.0 / np.sqrt(np.diag(cov))
    np.testing.assert_allclose(pw.weights, inv / inv.sum(), rtol=1e-14)
    assert pw.converged and pw.note == ""


def test_hrp_agrees_with_skfolio_fitted_on_returns(
    sp500: pd.DataFrame, sample_cov: CovarianceEstimate
) -> None:
    ours = portfolio_weights("hrp", sample_cov)
    ref = HierarchicalRiskParity().fit(sp500).weights_
    np.testing.assert_allclose(ours.weights, ref, rtol=1e-9, atol=1e-12)
    # ... and HRP is neither ERC nor inverse-volatility on this data.
    inv = portfolio_weights("invvol", sample_cov).weights
    assert np.max(np.abs(ours.weights - inv)) > 1e-3


def test_mv_zero_mu_is_the_analytic_minimum_variance_portfolio() -> None:
    cov = _random_cov(5, seed=3)
    w_star = np.linalg.solve(cov, np.ones(5))
    w_star /= w_star.sum()
    assert np.all(w_star > 0)  # the long-only bound does not bind: the analytic answer applies
    pw = portfolio_weights("mv", _estimate(cov))
    assert pw.converged
    np.testing.assert_allclose(pw.weights, w_star, atol=1e-5)
    # The risk aversion only scales the objective when mu = 0.
    pw10 = portfolio_weights("mv", _estimate(cov), risk_aversion=10.0)
    np.testing.assert_allclose(pw10.weights, w_star, atol=1e-5)


def test_mv_utility_agrees_with_skfolio_fitted_on_returns(
    sp500: pd.DataFrame, sample_cov: CovarianceEstimate
) -> None:
    mu = sp500.mean()
    ours = portfolio_weights(
        "mv", sample_cov, caps=RegimeCaps(1.0, 0.25), expected_returns=mu, risk_aversion=5.0
    )
    ref = MeanRisk(
        objective_function=ObjectiveFunction.MAXIMIZE_UTILITY,
        risk_aversion=5.0,
        max_weights=0.25,
        solver_params={"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10},
    ).fit(sp500).weights_
    np.testing.assert_allclose(ours.weights, ref, atol=1e-5)
    # The expected returns matter: the answer is not the minimum-variance portfolio.
    minvar = portfolio_weights("mv", sample_cov, caps=RegimeCaps(1.0, 0.25)).weights
    assert np.max(np.abs(ours.weights - minvar)) > 0.01
    # A Series is aligned by name, not by position.
    shuffled = portfolio_weights(
        "mv", sample_cov, caps=RegimeCaps(1.0, 0.25), expected_returns=mu[::-1],
        risk_aversion=5.0,
    )
    np.testing.assert_allclose(shuffled.weights, ours.weights, atol=1e-9)


def test_mv_turnover_cost_agrees_with_skfolio_and_pins_the_holdings(
    sp500: pd.DataFrame, sample_cov: CovarianceEstimate
) -> None:
    mu = sp500.mean().to_numpy()
    prev = np.full(20, 0.05)
    ours = portfolio_weights(
        "mv", sample_cov, caps=RegimeCaps(1.0, 0.25), expected_returns=mu,
        previous_weights=prev, turnover_cost=2e-4, risk_aversion=5.0,
    ).weights
    ref = MeanRisk(
        objective_function=ObjectiveFunction.MAXIMIZE_UTILITY,
        risk_aversion=5.0,
        max_weights=0.25,
        transaction_costs=2e-4,
        previous_weights=prev,
        solver_params={"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10},
    ).fit(sp500).weights_
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    free = portfolio_weights(
        "mv", sample_cov, caps=RegimeCaps(1.0, 0.25), expected_returns=mu,
        previous_weights=prev, risk_aversion=5.0,
    ).weights
    # The cost pulls the answer towards the holdings ...
    assert np.abs(ours - prev).sum() < np.abs(free - prev).sum() - 0.05
    # ... and a prohibitive cost (far above any per-bar edge) keeps them exactly.
    pinned = portfolio_weights(
        "mv", sample_cov, caps=RegimeCaps(1.0, 0.25), expected_returns=mu,
        previous_weights=prev, turnover_cost=1.0, risk_aversion=5.0,
    ).weights
    np.testing.assert_allclose(pinned, prev, atol=1e-6)


# ---------------------------------------------------------------------------------------
# Caps


@pytest.mark.parametrize("method", PORTFOLIO_METHODS)
def test_caps_bind_and_risk_off_is_tighter(method: str, sp500: pd.DataFrame) -> None:
    results = {}
    for family in ("risk_on", "risk_off"):
        caps = caps_for(family)
        pw = portfolio_weights(method, regime_covariance(sp500, family), caps=caps)
        assert np.all(pw.weights >= 0)
        assert np.max(pw.weights) <= caps.per_asset + 1e-9
        assert pw.weights.sum() <= caps.gross + 1e-9
        assert pw.gross == pytest.approx(caps.gross, abs=1e-6)  # 20 * per_asset > gross
        assert pw.caps == caps
        results[family] = pw
    assert results["risk_off"].gross < results["risk_on"].gross
    assert results["risk_off"].volatility < results["risk_on"].volatility


def test_per_asset_cap_binds_on_mv() -> None:
    cov = _random_cov(5, seed=3)
    loose = portfolio_weights("mv", _estimate(cov)).weights
    assert loose.max() > 0.3  # so a 0.3 cap must bind
    tight = portfolio_weights("mv", _estimate(cov), caps=RegimeCaps(1.0, 0.3)).weights
    assert tight.max() <= 0.3 + 1e-9
    assert tight.sum() == pytest.approx(1.0, abs=1e-7)
    assert np.sum(np.isclose(tight, 0.3, atol=1e-6)) >= 1


def _cov_for_invvol(weights: list[float]) -> CovarianceEstimate:
    """A diagonal covariance whose inverse-volatility weights are ``weights``."""
    sigma = 0.01 / np.asarray(weights)
    return _estimate(np.diag(sigma**2))


def test_water_filling_hand_computed() -> None:
    # 0.5 > 0.4: the excess 0.1 goes to 0.3 and 0.2 pro rata (0.06 and 0.04).
    pw = portfolio_weights("invvol", _cov_for_invvol([0.5, 0.3, 0.2]), caps=RegimeCaps(1.0, 0.4))
    np.testing.assert_allclose(pw.weights, [0.4, 0.36, 0.24], atol=1e-12)
    # A cascade: 0.6 -> 0.35 hands 0.25 to the others (0.3 -> 0.4875 > 0.35, capped in turn),
    # and the last asset takes what is left: 1 - 0.35 - 0.35 = 0.3.
    pw = portfolio_weights("invvol", _cov_for_invvol([0.6, 0.3, 0.1]), caps=RegimeCaps(1.0, 0.35))
    np.testing.assert_allclose(pw.weights, [0.35, 0.35, 0.3], atol=1e-12)
    # Scale to gross first: 0.6 * [0.5, 0.3, 0.2] = [0.3, 0.18, 0.12]; 0.3 > 0.25.
    pw = portfolio_weights("invvol", _cov_for_invvol([0.5, 0.3, 0.2]), caps=RegimeCaps(0.6, 0.25))
    np.testing.assert_allclose(pw.weights, [0.25, 0.21, 0.14], atol=1e-12)


@pytest.mark.parametrize("method", PORTFOLIO_METHODS)
def test_too_few_assets_for_the_gross_leaves_cash(method: str) -> None:
    cov = _random_cov(3, seed=5)
    caps = caps_for("risk_off")  # 3 * 0.15 = 0.45 < 0.6
    pw = portfolio_weights(method, _estimate(cov), caps=caps)
    np.testing.assert_allclose(pw.weights, [0.15, 0.15, 0.15], atol=1e-7)
    assert "cash" in pw.note


def test_caps_table_and_unknown_family() -> None:
    assert caps_for("risk_on") == RegimeCaps(1.0, 0.25)
    assert caps_for("risk_off") == RegimeCaps(0.6, 0.15)
    assert caps_for("unavailable") == RegimeCaps(0.6, 0.15)
    assert caps_for("mixed") == RegimeCaps(0.6, 0.15)  # the tightest, never the loosest
    table = {"a": RegimeCaps(2.0, 1.0), "b": RegimeCaps(0.5, 0.2), "c": RegimeCaps(0.5, 0.1)}
    assert caps_for("zzz", table) == RegimeCaps(0.5, 0.1)
    assert set(DEFAULT_REGIME_CAPS) == {"risk_on", "risk_off", "unavailable"}
    with pytest.raises(ValueError, match="table"):
        caps_for("risk_on", {})
    with pytest.raises(TypeError, match="family"):
        caps_for(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("gross", "per_asset"), [(1.0, 0.0), (0.5, 0.6), (2.5, 0.1), (1.0, -0.1), (math.nan, 0.1)]
)
def test_regime_caps_validation(gross: float, per_asset: float) -> None:
    with pytest.raises(ValueError, match="per_asset|gross"):
        RegimeCaps(gross, per_asset)


# ---------------------------------------------------------------------------------------
# regime_covariance


def _hand_ewma(x: np.ndarray, h: float) -> np.ndarray:
    n, k = x.shape
    v = [0.5 ** ((n - 1 - t) / h) for t in range(n)]
    s = sum(v)
    a = [vi / s for vi in v]
    m = [sum(a[t] * x[t, i] for t in range(n)) for i in range(k)]
    s2 = sum(ai * ai for ai in a)
    out = np.empty((k, k))
    for i in range(k):
        for j in range(k):
            out[i, j] = sum(a[t] * (x[t, i] - m[i]) * (x[t, j] - m[j]) for t in range(n)) / (1 - s2)
    return out


def test_regime_covariance_equals_a_hand_written_ewma() -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((80, 3)) * [0.01, 0.02, 0.015] + 0.001
    idx = pd.bdate_range("2024-01-01", periods=80)
    df = pd.DataFrame(x, columns=["SPY", "TLT", "GLD"], index=idx)
    est = regime_covariance(df, "risk_off")
    assert est.half_life == 21.0 and est.family == "risk_off"
    assert est.nobs == 80 and est.end == idx[-1] and est.assets == ("SPY", "TLT", "GLD")
    np.testing.assert_allclose(est.covariance, _hand_ewma(x, 21.0), rtol=1e-12)
    assert not est.covariance.flags.writeable
    # window: only the last rows
    est_w = regime_covariance(df, "risk_on", window=60, min_obs=60)
    np.testing.assert_allclose(est_w.covariance, _hand_ewma(x[-60:], 126.0), rtol=1e-12)
    assert est_w.nobs == 60
    json.dumps(est.to_dict(), allow_nan=False)


def test_regime_covariance_recovers_a_known_sigma() -> None:
    rng = np.random.default_rng(2024)
    sigma = np.array([[4.0, 1.2, -0.8], [1.2, 2.25, 0.3], [-0.8, 0.3, 1.0]]) * 1e-4
    x = rng.multivariate_normal(np.zeros(3), sigma, size=20_000)
    df = pd.DataFrame(x, columns=["a", "b", "c"])
    est = regime_covariance(df, "calm", half_lives={"calm": 5_000.0})
    # ~14,000 effective observations: standard error of each entry below 1.5% of sigma_ii.
    scale = np.sqrt(np.outer(np.diag(sigma), np.diag(sigma)))
    assert np.max(np.abs(est.covariance - sigma) / scale) < 0.05
    assert est.end is None


def test_regime_covariance_is_unbiased_for_iid_rows() -> None:
    # A short half-life (8 bars) on 60 rows: the bias correction 1 / (1 - sum a^2) is ~4.2%,
    # about ten standard errors of the Monte Carlo mean, so a missing correction would fail.
    rng = np.random.default_rng(99)
    reps, n, h = 5_000, 60, 8.0
    x = rng.standard_normal((reps, n, 2)) * [0.01, 0.02]
    ests = np.array([
        regime_covariance(pd.DataFrame(x[r]), "fast", half_lives={"fast": h}).covariance
        for r in range(reps)
    ])
    a = 0.5 ** (np.arange(n - 1, -1, -1) / h)
    a /= a.sum()
    uncorrected = 1.0 - np.sum(a * a)
    mean = ests.mean(axis=0)
    assert mean[0, 0] / 1e-4 == pytest.approx(1.0, abs=0.015)
    assert mean[1, 1] / 4e-4 == pytest.approx(1.0, abs=0.015)
    assert abs(mean[0, 1]) / 2e-4 < 0.015
    # Without the correction the same sample would miss by more than the tolerance.
    assert abs(mean[0, 0] * uncorrected / 1e-4 - 1.0) > 0.025


def test_regime_covariance_family_switch_changes_half_life_and_value(sp500: pd.DataFrame) -> None:
    on = regime_covariance(sp500, "risk_on")
    off = regime_covariance(sp500, "risk_off")
    unav = regime_covariance(sp500, "unavailable")
    mixed = regime_covariance(sp500, "mixed")  # unknown: the shortest half-life
    assert (on.half_life, off.half_life, unav.half_life) == (126.0, 21.0, 42.0)
    assert mixed.half_life == min(DEFAULT_HALF_LIVES.values())
    np.testing.assert_array_equal(mixed.covariance, off.covariance)
    assert np.max(np.abs(on.covariance - off.covariance)) > 0.05 * np.mean(np.diag(on.covariance))
    # Causal by construction: the estimate at t uses rows[:t] only.
    t = 500
    past = regime_covariance(sp500.iloc[:t], "risk_off")
    assert past.end == sp500.index[t - 1]
    np.testing.assert_allclose(
        past.covariance[:3, :3], _hand_ewma(sp500.to_numpy()[:t, :3], 21.0), rtol=1e-10
    )


def test_regime_covariance_is_psd(sp500: pd.DataFrame) -> None:
    for family in ("risk_on", "risk_off"):
        cov = regime_covariance(sp500, family).covariance
        np.testing.assert_array_equal(cov, cov.T)
        assert np.min(np.linalg.eigvalsh(cov)) > 0
    # Fewer rows than assets: singular, still PSD within rounding.
    cov = regime_covariance(sp500.iloc[:10], "risk_off", min_obs=5).covariance
    eig = np.linalg.eigvalsh(cov)
    assert eig.min() > -1e-15 * eig.max()
    assert np.sum(eig > 1e-10 * eig.max()) == 9  # rank n - 1 after demeaning


def test_regime_covariance_errors(sp500: pd.DataFrame) -> None:
    bad = sp500.iloc[:100].copy()
    bad.iloc[40, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        regime_covariance(bad, "risk_on")
    with pytest.raises(InsufficientDataError, match="min_obs"):
        regime_covariance(sp500.iloc[:59], "risk_on")
    assert issubclass(InsufficientDataError, RegimeDeskError)
    with pytest.raises(ValueError, match="window"):
        regime_covariance(sp500, "risk_on", window=30)
    with pytest.raises(ValueError, match="half_lives"):
        regime_covariance(sp500, "risk_on", half_lives={"risk_on": 0.0})
    with pytest.raises(TypeError, match="DataFrame"):
        regime_covariance(sp500.to_numpy(), "risk_on")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# Results, arguments, fallback


def test_result_fields_and_serialisation(sample_cov: CovarianceEstimate) -> None:
    pw = portfolio_weights("erc", sample_cov, caps=caps_for("risk_on"))
    assert not pw.weights.flags.writeable and not pw.risk_contributions.flags.writeable
    cov = sample_cov.covariance
    assert pw.volatility == pytest.approx(math.sqrt(pw.weights @ cov @ pw.weights), rel=1e-14)
    s = pw.as_series()
    assert list(s.index) == list(sample_cov.assets) and s.name == "erc"
    d = json.loads(json.dumps(pw.to_dict(), allow_nan=False))
    assert d["caps"] == {"gross": 1.0, "per_asset": 0.25} and d["method"] == "erc"
    assert len(d["weights"]) == 20


def test_argument_errors(sample_cov: CovarianceEstimate) -> None:
    with pytest.raises(ValueError, match="method"):
        portfolio_weights("equal", sample_cov)
    with pytest.raises(TypeError, match="CovarianceEstimate"):
        portfolio_weights("erc", np.eye(3))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expected_returns"):
        portfolio_weights("mv", sample_cov, expected_returns=np.zeros(3))
    with pytest.raises(ValueError, match="expected_returns"):
        portfolio_weights("mv", sample_cov, expected_returns=pd.Series({"AAPL": 0.0}))
    with pytest.raises(ValueError, match="turnover_cost"):
        portfolio_weights("mv", sample_cov, turnover_cost=-0.1)
    with pytest.raises(ValueError, match="risk_aversion"):
        portfolio_weights("mv", sample_cov, risk_aversion=0.0)
    flat = np.diag([1e-4, 0.0, 2e-4])
    with pytest.raises(InsufficientDataError, match="zero variance"):
        portfolio_weights("invvol", _estimate(flat))
    with pytest.raises(ValueError, match="positive semi-definite"):
        _estimate(np.array([[1.0, 2.0], [2.0, 1.0]]))


def test_solver_failure_falls_back_to_capped_invvol(monkeypatch: pytest.MonkeyPatch) -> None:
    cov = _random_cov(5, seed=3)

    def failing(estimator: object, x: np.ndarray) -> tuple[None, str, bool]:
        return None, "RiskBudgeting failed: test", False

    monkeypatch.setattr(portfolio_mod, "_fit_skfolio", failing)
    caps = RegimeCaps(0.6, 0.15)
    pw = portfolio_weights("erc", _estimate(cov), caps=caps)
    inv = portfolio_weights("invvol", _estimate(cov), caps=caps)
    assert not pw.converged
    assert "failed" in pw.note and "fallback" in pw.note
    np.testing.assert_array_equal(pw.weights, inv.weights)


# ---------------------------------------------------------------------------------------
# Drift, risk contributions, rebalancing


def test_drift_weights_hand_computed() -> None:
    # Values 0.5 * 1.1 = 0.55 and 0.3 * 0.8 = 0.24, cash 0.2: total 0.99.
    out = drift_weights([0.5, 0.3], [0.1, -0.2])
    np.testing.assert_allclose(out, [0.55 / 0.99, 0.24 / 0.99], rtol=1e-15)
    with pytest.raises(ValueError, match="asset_returns"):
        drift_weights([0.5, 0.3], [0.1])
    with pytest.raises(ValueError, match="-1"):
        drift_weights([0.5, 0.3], [-1.5, 0.0])


_weights = arrays(np.float64, 4, elements=st.floats(0.0, 0.5))
_rets = arrays(np.float64, 4, elements=st.floats(-0.5, 0.5))


@settings(max_examples=200, deadline=None)
@given(w=_weights, r=_rets)
def test_drift_weights_keeps_value_ratios_and_cash(w: np.ndarray, r: np.ndarray) -> None:
    out = drift_weights(w, r)
    values = w * (1 + r)
    cash = 1.0 - w.sum()
    # The assets' value ratios are kept ...
    for i in range(4):
        for j in range(4):
            assert out[i] * values[j] == pytest.approx(out[j] * values[i], abs=1e-12)
    # ... and the weights plus the cash weight still sum to one, with cash unchanged in value.
    total = values.sum() + cash
    assert out.sum() == pytest.approx(values.sum() / total, abs=1e-12)
    assert 1.0 - out.sum() == pytest.approx(cash / total, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(
    w=arrays(np.float64, 5, elements=st.floats(0.0, 1.0)),
    a=arrays(np.float64, (5, 5), elements=st.floats(-1.0, 1.0)),
)
def test_risk_contributions_sum_to_volatility(w: np.ndarray, a: np.ndarray) -> None:
    cov = a @ a.T + 1e-3 * np.eye(5)
    rc = risk_contributions(w, cov)
    vol = math.sqrt(w @ cov @ w)
    assert rc.sum() == pytest.approx(vol, rel=1e-9, abs=1e-15)
    np.testing.assert_allclose(rc, w * (cov @ w) / vol if vol > 0 else 0.0, rtol=1e-12)


def test_risk_contributions_hand_computed() -> None:
    # Two uncorrelated assets, vols 0.1 and 0.2, weights 0.5 each: variance 0.0125.
    cov = np.diag([0.01, 0.04])
    rc = risk_contributions([0.5, 0.5], cov)
    vol = math.sqrt(0.0125)
    np.testing.assert_allclose(rc, [0.0025 / vol, 0.01 / vol], rtol=1e-14)
    np.testing.assert_array_equal(risk_contributions([0.0, 0.0], cov), [0.0, 0.0])


def test_rebalance_due() -> None:
    cur, tgt = np.array([0.30, 0.20]), np.array([0.25, 0.20])
    assert not rebalance_due(cur, tgt, band=0.06, regime_changed=False)
    assert rebalance_due(cur, tgt, band=0.04, regime_changed=False)
    assert rebalance_due(cur, cur, band=0.5, regime_changed=True)
    assert not rebalance_due(cur, cur, band=0.0, regime_changed=False)
    with pytest.raises(ValueError, match="band"):
        rebalance_due(cur, tgt, band=-0.01, regime_changed=False)
    with pytest.raises(ValueError, match="target"):
        rebalance_due(cur, [0.1], band=0.01, regime_changed=False)
