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


@pytest.mark.parametrize("symbol", ["SP500", "NASDAQ"])
def test_agent_method_switch_rates_per_timeframe(symbol):
    """The agent's HMM regimes on the embedded indices, every timeframe at its persistence
    rule. Before the one-regime test and ST's 5-bar confirmation SP500's ST switched 5.01 times
    a year and NASDAQ's 5.70 (now 3.80 and 3.96, docs/regimes.md); the project's limit is 4 on
    the index."""
    rep = regime_report(analyse_regimes(_store(None), symbol, "hmm"))
    rates = {tf: rep["timeframes"][tf]["switches_per_year"] for tf in ("LT", "MT", "ST")}
    print(f"\n{symbol} switches per year: {rates}")
    assert rates["LT"] <= 2.0 and rates["MT"] <= 4.0
    assert rates["ST"] <= (4.0 if symbol == "SP500" else 5.0)
    json.dumps(rep, allow_nan=False)


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


def test_history_marks_the_bars_held_by_the_persistence_rule(crisis):
    """On the real SP500 path some bars report a label the most probable state does not have;
    exactly those carry ``held_by_persistence`` (checked against the model's own argmax)."""
    import numpy as np

    from analytics import DEFAULT_TIMEFRAME_SPECS, detect_regimes

    hist = regime_history(crisis)
    for rows in hist.values():
        for r in rows:
            assert r["held_by_persistence"] is (r["label"] != r["most_probable_label"])
            # the most probable state is at least as probable as the one reported
            assert r["most_probable_probability"] >= r["probability"] - 1e-12
    held = [r for rows in hist.values() for r in rows if r["held_by_persistence"]]
    assert len(held) >= 10
    assert all(r["most_probable_probability"] > r["probability"] for r in held)

    # independently: the MT argmax label per bar from the walk-forward result itself
    spec = DEFAULT_TIMEFRAME_SPECS["MT"]
    close = _store("2008-12-31").get("SP500", "MT").frame["close"]
    res = detect_regimes(np.log(close.astype(float)).diff().iloc[1:], "garch", min_train=spec.min_train,
                         refit_every=spec.refit_every, max_train=spec.max_train,
                         persistence=spec.persistence, periods_per_year=spec.periods_per_year, seed=0)
    argmax = res.probabilities.argmax(axis=1)
    top = [res.fits[f].state_labels[s] for f, s in zip(res.fit_index, argmax, strict=True)]
    mt = hist["MT"]
    assert [r["date"] for r in mt] == [d.isoformat() for d in res.dates]
    assert [r["most_probable_label"] for r in mt] == top
    assert [r["held_by_persistence"] for r in mt] == [str(lab) != t for lab, t in zip(res.labels, top, strict=True)]
    assert sum(r["held_by_persistence"] for r in mt) > 0
    assert np.allclose([r["most_probable_probability"] for r in mt], res.probabilities.max(axis=1))


def test_history_text_marks_held_rows_and_explains_them_once(capsys, monkeypatch):
    from agents.cli.regime import HELD_LEGEND, HELD_MARK

    argv = ["regime", "SP500", "--method", "garch", "--as-of", "2004-12-31", "--history"]
    assert main([*argv, "--json"]) == 0
    hist = json.loads(capsys.readouterr().out)["history"]
    n_held = sum(r["held_by_persistence"] for rows in hist.values() for r in rows)
    assert n_held > 0
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count(HELD_MARK) == n_held + 1  # each held cell, and the legend
    assert out.rstrip().splitlines()[-1] == HELD_LEGEND and out.count(HELD_LEGEND) == 1
    first = next((tf, r) for tf, rows in hist.items() for r in rows if r["held_by_persistence"])
    line = next(ln for ln in out.splitlines() if ln.startswith(first[1]["date"][:10]))
    assert f"{first[1]['label']} {first[1]['probability']:.2f}{HELD_MARK}" in line

    # a history without held bars has no marks and no legend
    import agents.services.regime as service

    real = service.regime_history

    def unheld(analysis):
        return {tf: [{**r, "label": r["most_probable_label"], "held_by_persistence": False} for r in rows]
                for tf, rows in real(analysis).items()}

    monkeypatch.setattr(service, "regime_history", unheld)
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert HELD_MARK not in out and HELD_LEGEND not in out
    assert out.splitlines()[-1].startswith("2004-12-31")


def test_markov_regimes_survive_a_degenerate_optimiser_step(tmp_path, monkeypatch, capsys):
    # As of 2003-12-31 a BFGS step of one Markov refit made statsmodels' transition matrix
    # degenerate ("Steady-state probabilities could not be constructed", a RuntimeError): the
    # command died with an internal error. Such a start now counts as a failed start.
    monkeypatch.setenv("REGIMEDESK_HOME", str(tmp_path))
    assert main(["regime", "SP500", "--method", "markov", "--as-of", "2003-12-31", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["timeframes"]["MT"]["label"] in {"calm", "volatile", "turbulent", "crisis"}
