"""The portfolio agent: allocation from the agents' views, and its place in the graph."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from agents.config import Secrets, Settings, load_settings
from agents.services.allocation import SymbolView, aligned_returns, allocate, consensus_family
from analytics import DataQualityWarning, InsufficientDataError, regime_covariance


def _returns(n=400, k=3, seed=0):
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2010-01-01", periods=n, freq="B", tz="UTC")
    vols = np.array([0.01, 0.02, 0.03])[:k]
    return pd.DataFrame(rng.normal(0.0, 1.0, (n, k)) * vols, index=idx, columns=["A", "B", "C"][:k])


@pytest.mark.parametrize(("families", "expected"), [
    ({"A": "risk_on", "B": "risk_on", "C": "risk_off"}, "risk_on"),
    ({"A": "risk_on", "B": "risk_off"}, "risk_off"),  # a tie leans to caution
    ({"A": "risk_off", "B": None}, "risk_off"),
    ({"A": None, "B": "unavailable"}, "unavailable"),
    ({}, "unavailable"),
])
def test_consensus_family(families, expected):
    assert consensus_family(families) == expected


def test_invvol_targets_follow_the_volatility_forecasts_not_the_ewma():
    rets = _returns()
    # Forecasts say B is the calmest; the sample says A is. invvol reads the diagonal only.
    views = {"A": SymbolView("risk_on", None, 0.40), "B": SymbolView("risk_on", None, 0.10),
             "C": SymbolView("risk_on", None, 0.20)}
    settings = Settings.model_validate({"portfolio": {"caps": {
        "risk_on": {"gross": 1.0, "per_asset": 1.0}, "risk_off": {"gross": 0.6, "per_asset": 0.6},
        "unavailable": {"gross": 0.6, "per_asset": 0.6}}}})
    alloc = allocate(settings, "invvol", rets, views)
    inv = np.array([1 / 0.40, 1 / 0.10, 1 / 0.20])
    assert np.allclose([alloc.weights[a] for a in "ABC"], inv / inv.sum(), atol=1e-12)
    assert alloc.vol_sources == {"A": "garch forecast", "B": "garch forecast", "C": "garch forecast"}
    # Without forecasts it is the EWMA volatility of the regime's half-life.
    plain = allocate(settings, "invvol", rets, {a: SymbolView("risk_on") for a in "ABC"})
    sd = np.sqrt(np.diag(regime_covariance(rets, "risk_on", half_lives=settings.portfolio.half_lives).covariance))
    assert np.allclose([plain.weights[a] for a in "ABC"], (1 / sd) / (1 / sd).sum(), atol=1e-12)
    # Risk contributions sum to the annualised volatility.
    assert sum(alloc.risk_contributions.values()) == pytest.approx(alloc.volatility, rel=1e-9)


def test_caps_follow_the_consensus_and_mv_leans_to_the_signal():
    rets = _returns()
    off = allocate(Settings(), "erc", rets, {a: SymbolView("risk_off") for a in "ABC"})
    assert off.family == "risk_off" and sum(off.weights.values()) <= 0.6 + 1e-9
    assert max(off.weights.values()) <= 0.15 + 1e-9
    settings = Settings.model_validate({"portfolio": {"caps": {
        "risk_on": {"gross": 1.0, "per_asset": 0.9}, "risk_off": {"gross": 0.6, "per_asset": 0.6},
        "unavailable": {"gross": 0.6, "per_asset": 0.6}}}})
    up = allocate(settings, "mv", rets, {"A": SymbolView("risk_on", 0.5), "B": SymbolView("risk_on", 0.5),
                                          "C": SymbolView("risk_on", 0.5)})
    tilt = allocate(settings, "mv", rets, {"A": SymbolView("risk_on", 0.5), "B": SymbolView("risk_on", 0.5),
                                            "C": SymbolView("risk_on", 0.95)})
    assert tilt.expected_returns["C"] > 0 and up.expected_returns["C"] == 0
    assert tilt.weights["C"] > up.weights["C"] + 1e-4


def test_rebalance_only_on_regime_change_or_drift_beyond_the_band():
    rets = _returns()
    settings = Settings()
    views = {a: SymbolView("risk_on") for a in "ABC"}
    first = allocate(settings, "erc", rets, views)
    assert first.rebalance is None  # no book: targets only
    at_target = allocate(settings, "erc", rets, views, current=first.weights, previous_family="risk_on")
    assert at_target.rebalance is False and at_target.reason.startswith("held")
    moved = dict(first.weights, A=first.weights["A"] + 0.03)
    assert allocate(settings, "erc", rets, views, current=moved, previous_family="risk_on").rebalance is True
    changed = allocate(settings, "erc", rets, views, current=first.weights, previous_family="risk_off")
    assert changed.rebalance is True and "regime changed" in changed.reason


def test_too_little_common_history_is_refused():
    rets = _returns(n=100)
    with pytest.raises(InsufficientDataError, match="at least 252"):
        allocate(Settings(), "erc", rets, {a: SymbolView() for a in "ABC"})


def test_aligned_returns_keep_common_dates_only():
    idx = pd.date_range("2020-01-01", periods=6, freq="D", tz="UTC")
    a = pd.Series([1.0, 2, 3, 4, 5, 6], idx)
    b = pd.Series([10.0, 11, 12], idx[3:])
    out = aligned_returns({"A": a, "B": b}, 10)
    assert list(out.index) == list(idx[4:]) and out["A"].tolist() == pytest.approx([5 / 4 - 1, 6 / 5 - 1])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two paper runs of SP500 and NASDAQ as of 2006-12-29: one per-symbol, one with the ERC portfolio."""
    from agents.runtime.runner import Runner
    from agents.services.context import RunRequest

    home = tmp_path_factory.mktemp("pf")
    out = {}
    for method in ("none", "erc"):
        path = home / f"{method}.toml"
        path.write_text(f'home = "{home / method}"\n[ml]\nrefit_every = 252\n')
        with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
            mp.setenv("REGIMEDESK_HOME", str(home / method))  # each run its own paper book
            settings = load_settings(path)
            warnings.simplefilter("ignore", DataQualityWarning)
            with Runner(settings, Secrets.from_env({})) as runner:
                out[method] = runner.start(RunRequest(("SP500", "NASDAQ"), as_of="2006-12-29", broker="paper",
                                                      portfolio=method))
    return out


def test_the_gate_checks_the_portfolios_orders_when_it_sets_targets(runs):
    from agents.graph.schema import RunState

    run = RunState(runs["erc"].state)
    assert "portfolio" in run.agents_ran and run.portfolio.active and run.portfolio.error is None
    assert run.decision.proposed_orders == ()  # the decision proposes none when a portfolio method is set
    caps = run.portfolio.caps
    assert sum(run.portfolio.weights.values()) <= caps["gross"] + 1e-9
    assert run.portfolio.rebalance is True and run.portfolio.orders  # an empty book is far from any target
    gated = {v.order.client_order_id for vs in run.risk_gate.symbols.values() for v in vs}
    assert gated == {o.client_order_id for o in run.portfolio.orders}
    # Each order moves its symbol from 0 towards its target weight.
    for o in run.portfolio.orders:
        assert o.side == "buy" and run.portfolio.weights[o.symbol] > 0


def test_without_a_portfolio_method_the_decisions_orders_are_gated_as_before(runs):
    from agents.graph.schema import RunState

    run = RunState(runs["none"].state)
    assert not run.portfolio.active and run.portfolio.orders is None
    gated = {v.order.client_order_id for vs in run.risk_gate.symbols.values() for v in vs}
    assert gated == {o.client_order_id for o in run.decision.proposed_orders}


def test_a_portfolio_needs_two_symbols(capsys):
    from agents.cli import main
    from agents.services.context import RunRequest

    with pytest.raises(ValueError, match="at least 2 symbols"):
        RunRequest(("SP500",), portfolio="erc")
    assert RunRequest(("SP500",)).portfolio == "none"
    assert main(["run", "SP500", "--portfolio", "hrp"]) == 2  # refused before any agent runs
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["regimedesk: error: a portfolio (hrp) needs at least 2 symbols, got SP500"]
