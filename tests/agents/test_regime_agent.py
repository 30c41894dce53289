"""Regime agent: report shape, causality through the data path, node, CLI."""

from __future__ import annotations

import json
import math
import warnings

import pytest

from agents.cli import main
from agents.config import Secrets, load_settings
from agents.graph import state_update
from agents.graph.nodes import regime as regime_node
from agents.graph.nodes.regime import regime_facts, regime_template
from agents.services.context import AppContext, RunRequest
from agents.services.regime import analyse_regimes, regime_history, regime_report
from analytics import REGIME_LABELS, DataQualityWarning

warnings.filterwarnings("ignore", category=DataQualityWarning)


def _store(as_of):
    ctx = AppContext(load_settings(), Secrets.from_env({}))
    return ctx.bars({"source": "builtin", "as_of": as_of})


@pytest.fixture(scope="module")
def crisis():
    return analyse_regimes(_store("2008-12-31"), "SP500", "garch")


def test_report_in_the_2008_crisis(crisis):
    rep = regime_report(crisis)
    assert rep["timeframes"]["US"]["available"] is False
    for tf in ("LT", "MT", "ST"):
        r = rep["timeframes"][tf]
        assert r["available"] and r["label"] in REGIME_LABELS
        assert 0.0 <= r["probability"] <= 1.0
        assert r["as_of"] <= "2008-12-31T23:59"
        assert r["since"] <= r["as_of"] and r["bars_in_regime"] >= 1
    assert rep["timeframes"]["MT"]["family"] == "risk_off"
    assert rep["consensus"]["family"] == "risk_off"
    json.dumps(rep)


def test_history_is_causal_prefix(crisis):
    """The path computed as of 2008-12-31 is the prefix of the path computed as of 2009-06-30."""
    later = analyse_regimes(_store("2009-06-30"), "SP500", "garch")
    early_h, late_h = regime_history(crisis), regime_history(later)
    for tf in ("LT", "MT", "ST"):
        early, late = early_h[tf], late_h[tf]
        assert late[: len(early)] == early


def test_facts_and_template_are_consistent(crisis):
    facts = regime_facts(regime_report(crisis))
    text = regime_template(facts)
    assert text.startswith("SP500:") and "consensus" in text
    for tf in ("LT", "MT", "ST"):
        assert facts[tf]["regime"] in text.replace(" ", "_") or facts[tf]["regime"].replace("_", " ") in text
    assert facts["US"] == "unavailable"


def test_infinite_expected_duration_does_not_break_facts():
    rep = {"symbol": "X", "method": "hmm", "timeframes": {
        tf: {"available": True, "label": "calm", "probability": 0.9, "since": "2020-01-01",
             "expected_duration_bars": math.inf} for tf in ("LT", "MT", "ST", "US")},
        "consensus": {"family": "risk_on", "label": "calm", "agreement": 1.0, "conflicts": []}}
    facts = regime_facts(rep)
    assert "expected_duration_bars" not in facts["MT"]


def test_node_alone():
    ctx = AppContext(load_settings(), Secrets.from_env({}))
    state = {"request": RunRequest(("NASDAQ",), as_of="2006-06-30").to_dict()}
    update = regime_node.make(ctx)(state)
    rep = update.output.symbols["NASDAQ"]
    assert rep.payload["method"] == "hmm" and rep.payload["timeframes"]["MT"]["available"]
    assert rep.mt_label == rep.payload["timeframes"]["MT"]["label"]
    assert update.narratives["NASDAQ"].text.startswith("NASDAQ:")
    assert update.errors == ()
    out = state_update("regime", update)
    json.dumps(out)
    assert out["narratives"]["regime"]["NASDAQ"]["text"] == update.narratives["NASDAQ"].text and out["errors"] == []


def test_regime_cli(capsys):
    assert main(["regime", "SP500", "--method", "garch", "--as-of", "2004-12-31", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["timeframes"]["MT"]["label"] in REGIME_LABELS
    assert doc["timeframes"]["US"]["label"] == "unavailable"
    assert main(["regime", "SP500", "--method", "garch", "--as-of", "2004-12-31", "--history", "--json"]) == 0
    hist = json.loads(capsys.readouterr().out)["history"]
    assert hist["MT"][-1]["date"].startswith("2004-12-31")
    assert main(["regime", "SP500", "--method", "garch", "--as-of", "2004-12-31"]) == 0
    out = capsys.readouterr().out
    assert "consensus" in out and "expected bars" in out
    assert main(["regime", "NOPE"]) == 1
    with pytest.raises(SystemExit):
        main(["regime", "SP500", "--method", "magic"])
