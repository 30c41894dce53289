"""Statistics agent: report agrees with statsmodels/arch, node output, CLI."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from arch.unitroot import VarianceRatio
from statsmodels.tsa.stattools import adfuller

from agents.cli import main
from agents.config import Secrets, load_settings
from agents.graph import SymbolError, state_update
from agents.graph.nodes import statistics as stats_node
from agents.services.context import AppContext, RunRequest
from agents.services.statistics import statistics_report
from analytics import DataQualityWarning

warnings.filterwarnings("ignore", category=DataQualityWarning)


def _sp500_close(end: str) -> pd.Series:
    import arch.data.sp500

    s = arch.data.sp500.load()["Adj Close"]
    s.index = pd.DatetimeIndex(s.index).tz_localize("UTC")
    return s.loc[:end]


def test_report_agrees_with_references():
    close = _sp500_close("2008-12-31")
    rep = statistics_report(close, 252)
    logp = np.log(close.iloc[-252:].to_numpy())
    ref = adfuller(logp, regression="c", autolag="AIC")
    assert rep["adf"]["stat"] == pytest.approx(ref[0], rel=1e-8)
    assert rep["adf"]["pvalue"] == pytest.approx(ref[1], rel=1e-8)
    for q, vr, z in zip(rep["variance_ratio"]["lags"], rep["variance_ratio"]["vr"], rep["variance_ratio"]["z"], strict=True):
        ref_vr = VarianceRatio(logp, lags=q, trend="c", debiased=True, robust=True, overlap=True)
        assert vr == pytest.approx(ref_vr.vr, rel=1e-8)
        assert z == pytest.approx(ref_vr.stat, rel=1e-8)
    assert rep["end"].startswith("2008-12-31") and rep["nobs"] == 252
    json.dumps(rep)


def test_short_window_reports_per_test_errors_not_crashes():
    rep = statistics_report(_sp500_close("2008-12-31"), 40)
    assert "error" in rep["hurst"] or "hurst" in rep["hurst"]
    assert rep["character"]["available"] is False
    with pytest.raises(ValueError, match="window"):
        statistics_report(_sp500_close("2008-12-31"), 5)


def test_node_alone_writes_its_key_and_narrative():
    ctx = AppContext(load_settings(), Secrets.from_env({}))
    state = {"request": RunRequest(("SP500", "NASDAQ"), as_of="2009-03-31").to_dict()}
    update = stats_node.make(ctx)(state)
    assert set(update.output.symbols) == {"SP500", "NASDAQ"}
    mt = update.output.symbols["SP500"]["MT"].payload
    assert mt["end"].startswith("2009-03-31") and mt["bar"] == "1D"
    assert isinstance(update.output.symbols["SP500"]["US"], SymbolError)
    text = update.narratives["SP500"].text
    assert text.startswith("SP500:") and "ADF p" in text
    assert update.errors == ()
    out = state_update("statistics", update)
    json.dumps(out)
    assert set(out["statistics"]["SP500"]["US"]) == {"error"} and out["errors"] == []


def test_stats_cli(capsys):
    assert main(["stats", "NASDAQ", "--horizon", "MT", "--as-of", "2015-12-31", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    mt = doc["timeframes"]["MT"]
    assert mt["nobs"] == 252 and 0 <= mt["adf"]["pvalue"] <= 1
    assert mt["character"]["character"] in ("trending", "mean_reverting", "random_walk")
    assert main(["stats", "SP500", "--horizon", "LT"]) == 0
    out = capsys.readouterr().out
    assert "Variance ratio" in out and "->" in out
    assert main(["stats", "SP500", "--horizon", "US"]) == 1
    assert "no intraday bars" in capsys.readouterr().err
    assert main(["stats", "SP500", "--window", "5"]) == 2


def test_a_window_seen_before_is_not_computed_again_and_callers_cannot_change_it(monkeypatch):
    import agents.services.statistics as st

    monkeypatch.setattr(st, "_REPORTS", {})
    close = pd.Series(np.exp(np.cumsum(np.random.default_rng(2).normal(0, 0.01, 400))) * 100,
                      index=pd.bdate_range("2010-01-01", periods=400, tz="UTC"))
    first = st.statistics_report(close, 252)
    first["adf"]["pvalue"] = -1.0  # a caller editing its copy (the nodes add keys)
    calls = []
    monkeypatch.setattr(st, "_report", lambda *a: calls.append(a) or {"computed": True})
    again = st.statistics_report(close, 252)
    assert not calls and again["adf"]["pvalue"] != -1.0 and again["end"] == close.index[-1].isoformat()
    assert st.statistics_report(close, 200) == {"computed": True}  # another window length
    moved = close.copy()
    moved.iloc[-1] *= 1.01  # another last close
    assert st.statistics_report(moved, 252) == {"computed": True} and len(calls) == 2
