"""``regimedesk run --workers N`` (issue 26, item 3): the per-symbol analysis runs on the compute
engine and the run's state is the same as in one process; a symbol lost on the cluster is that
symbol's error, not the run's."""

from __future__ import annotations

import json

import pytest

from agents.cli import main
from agents.config import Secrets, load_settings
from agents.runtime.compute import symbol_mapper
from agents.runtime.runner import Runner
from agents.services.analysis import SymbolAnalysis, analyse_symbol, prefetch
from agents.services.context import AppContext, build_request
from analytics import RegimeDeskError

AS_OF = "2006-12-29"
ANALYSIS = ("market_data", "regime", "statistics", "ml_signal", "decision", "portfolio", "risk_gate", "errors")


def _run(capsys, *argv) -> dict:
    code = main(["run", *argv, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


@pytest.mark.slow
def test_a_run_on_a_local_cluster_has_the_state_of_a_run_in_one_process(capsys):
    args = ("SP500", "NASDAQ", "--as-of", AS_OF, "--portfolio", "erc")
    # First on two worker processes with an empty home: the workers train and store the models.
    first = _run(capsys, *args, "--workers", "2")
    assert all(s["model_note"].startswith("trained a new model") for s in first["ml_signal"].values())
    # Then in this process and on the cluster again, both reading the stored models and fits:
    # every analysis output and every verdict is the same.
    here = _run(capsys, *args)
    there = _run(capsys, *args, "--workers", "2")
    for key in ANALYSIS:
        assert here[key] == there[key], key
    assert set(there["regime"]) == {"SP500", "NASDAQ"} and not there["errors"]
    assert there["portfolio"]["method"] == "erc"
    # the first run's numbers are those of the model its workers trained
    for sym, sig in first["ml_signal"].items():
        assert {**sig, "model_note": None} == {**here["ml_signal"][sym], "model_note": None}


def _no_training():
    settings = load_settings(None)
    return settings.model_copy(update={"ml": settings.ml.model_copy(update={"auto_train": False})})


def test_the_agents_read_what_the_engine_computed_and_a_lost_symbol_is_its_own_error():
    settings = _no_training()
    request = build_request(settings, Secrets.from_env(), ["SP500", "NASDAQ"], as_of=AS_OF).to_dict()
    calls = []

    def mapper(fn, symbols, *args, lost):
        calls.append(tuple(symbols))
        # SP500 is analysed (in this process, by the worker's function); NASDAQ's worker "died"
        return [fn(s, *args) if s == "SP500" else lost(s, RuntimeError("worker killed")) for s in symbols]

    ctx = AppContext(settings, None, mapper=mapper)
    prefetch(ctx, request)
    prefetch(ctx, request)  # once per run, however many agents ask
    assert calls == [("SP500", "NASDAQ")]
    from agents.services.analysis import run_signal, run_statistics
    from agents.services.regime import run_regimes

    # what the agents get equals a direct computation in a fresh context
    direct = analyse_symbol("SP500", settings, request)
    assert run_regimes(ctx, request, "SP500").paths["MT"].labels.tolist() == direct.regimes.paths["MT"].labels.tolist()
    assert run_statistics(ctx, request, "SP500", "MT") == direct.statistics["MT"]
    assert isinstance(direct.signal, RegimeDeskError) and "no stored model" in str(direct.signal)
    with pytest.raises(RegimeDeskError, match="no stored model"):
        run_signal(ctx, request, "SP500")  # a failure computed on a worker is raised here
    for part in (lambda: run_regimes(ctx, request, "NASDAQ"), lambda: run_statistics(ctx, request, "NASDAQ", "LT"),
                 lambda: run_signal(ctx, request, "NASDAQ")):
        with pytest.raises(RegimeDeskError, match="lost on the cluster: RuntimeError: worker killed"):
            part()


def test_a_graph_run_with_a_lost_symbol_reports_it_and_goes_on():
    settings = _no_training()
    request = build_request(settings, Secrets.from_env(), ["SP500", "NASDAQ"], as_of=AS_OF)

    def mapper(fn, symbols, *args, lost):
        return [fn(s, *args) if s == "SP500" else lost(s, RuntimeError("worker killed")) for s in symbols]

    with Runner(settings, Secrets.from_env(), mapper=mapper) as runner:
        state = runner.start(request).state
    assert "error" not in state["regime"]["SP500"]
    assert "lost on the cluster" in state["regime"]["NASDAQ"]["error"]
    agents = {(e["agent"], e["symbol"]) for e in state["errors"]}
    assert {("regime", "NASDAQ"), ("ml_signal", "NASDAQ"), ("statistics", "NASDAQ")} <= agents
    assert not any(e["symbol"] == "SP500" for e in state["errors"] if e["agent"] == "regime")
    # the decision for the lost symbol is made from nothing it does not have: no weight
    lost = state["decision"]["symbols"]["NASDAQ"]
    assert lost["target_weight"] is None and lost["inputs"]["regime_family"] is None
    assert state["decision"]["symbols"]["SP500"]["inputs"]["regime_family"] == "risk_on"


def test_engine_options_are_checked_before_any_work(capsys):
    assert symbol_mapper(1, None) is None
    with pytest.raises(ValueError):
        symbol_mapper(0, None)
    for argv, needle in ((["run", "SP500", "--workers", "0"], "--workers must be >= 1"),
                         (["run", "SP500", "--universe", "factors"], "not both")):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], err


def test_lost_marks_every_part():
    lost = SymbolAnalysis.lost("X", KeyError("k"))
    assert isinstance(lost.regimes, RegimeDeskError) and lost.signal is lost.regimes
    assert set(lost.statistics) == {"LT", "MT", "ST", "US"}
