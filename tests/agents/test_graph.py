"""The agent graph: wiring, durable runs, approval interrupt, resume, determinism, isolation."""

from __future__ import annotations

import json
import warnings

import pytest

from agents.config import Secrets, load_settings
from agents.graph import ALL_AGENTS, agent_plan, build_graph, state_update
from agents.runtime.runner import Runner, UnknownThreadError
from agents.services.context import AppContext, RunRequest
from analytics import DataQualityWarning, RegimeDeskError
from tests.stubs import chat_completion

warnings.filterwarnings("ignore", category=DataQualityWarning)

#: Keys that differ between two runs by construction (ids, whether a model was trained).
_VOLATILE = {"run_id", "thread_id", "model_note"}

#: Yearly ML refits keep each run's first model training quick; the procedure is the same.
FAST_ML = "[ml]\nrefit_every = 252\n"


@pytest.fixture(autouse=True)
def _fast_ml(tmp_path, monkeypatch):
    (tmp_path / "fast-ml.toml").write_text(FAST_ML)
    monkeypatch.setenv("REGIMEDESK_CONFIG", str(tmp_path / "fast-ml.toml"))


def _strip(obj):
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in _VOLATILE and k != "at"}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


@pytest.fixture
def runner():
    r = Runner(load_settings(), Secrets.from_env({}))
    yield r
    r.close()


def test_graph_has_every_agent_and_approval_only_when_asked():
    ctx = AppContext(load_settings(), Secrets.from_env({}))
    plain, approving = agent_plan(approve=False), agent_plan(approve=True)
    assert approving == ALL_AGENTS and plain == tuple(a for a in ALL_AGENTS if a != "approval")
    assert plain[0] == "market_data" and plain[-1] == "reporting"
    for approve, agents in ((False, plain), (True, approving)):
        graph = build_graph(ctx, approve=approve).get_graph()
        assert set(graph.nodes) - {"__start__", "__end__"} == set(agents)
        edges = {(e.source, e.target) for e in graph.edges}
        assert ("risk_gate", "approval" if approve else "execution") in edges
        assert ("reporting", "__end__") in edges


def test_market_data_node_alone():
    from agents.graph.nodes import market_data

    ctx = AppContext(load_settings(), Secrets.from_env({}))
    request = RunRequest(("SP500",), as_of="2008-10-01").to_dict()
    update = market_data.make(ctx)({"request": request})
    out = update.output.symbols["SP500"]
    assert out["MT"].available and out["MT"].last.startswith("2008-10-01")
    assert out["LT"].bar == "1W" and out["LT"].last.startswith("2008-09-26")
    assert out["US"].available is False and "daily bars only" in out["US"].reason
    doc = state_update("market_data", update)
    json.dumps(doc)  # state values are JSON
    assert doc["market_data"]["SP500"]["US"] == {"bar": "5Min", "available": False, "reason": out["US"].reason}


def test_whole_offline_run_is_journaled(runner):
    outcome = runner.start(RunRequest(("SP500", "NASDAQ")))
    assert outcome.status == "completed"
    state = outcome.state
    present = agent_plan(approve=False)
    assert sorted(state["agents_ran"]) == sorted(present)
    assert state["agents_present"] == list(present) and "agents_absent" not in state
    assert "agents_absent" not in state["report"]
    assert set(state["report"]["symbols"]) == {"SP500", "NASDAQ"}
    assert state["narratives"]["reporting"]["_run"]["backend"] == "template"
    json.dumps(state)
    runs = runner.journal.list_runs()
    assert runs[0].run_id == outcome.run_id and runs[0].status == "completed"
    shown = runner.journal.show_run(outcome.run_id)
    agents = [o["agent"] for o in shown["agent_outputs"]]
    assert sorted(agents) == sorted(present)


def test_same_inputs_same_outputs(runner):
    a = runner.start(RunRequest(("SP500",), as_of="2012-06-29"))
    b = runner.start(RunRequest(("SP500",), as_of="2012-06-29"))
    assert a.run_id != b.run_id
    sa, sb = _strip(a.state), _strip(b.state)
    sa.pop("agents_ran"), sb.pop("agents_ran")  # parallel agents may finish in either order
    assert sa == sb


def test_as_of_uses_only_data_up_to_then(runner):
    state = runner.start(RunRequest(("SP500",), as_of="2008-10-01")).state
    assert state["market_data"]["SP500"]["MT"]["last"].startswith("2008-10-01")


def test_approval_interrupt_then_approve(runner):
    outcome = runner.start(RunRequest(("SP500",), approve=True))
    assert outcome.status == "interrupted"
    assert outcome.pending["thread_id"] == outcome.thread_id
    assert "report" not in outcome.state
    assert runner.journal.get_run(outcome.run_id).status == "interrupted"
    with pytest.raises(RegimeDeskError, match="waiting for approval"):
        runner.resume(outcome.thread_id)  # a crash-resume must not skip the person
    done = runner.resume(outcome.thread_id, {"approved": True, "by": "test"})
    assert done.status == "completed"
    assert done.state["approval"]["approved"] is True and done.state["approval"]["by"] == "test"
    assert "report" in done.state
    with pytest.raises(RegimeDeskError, match="already finished"):
        runner.resume(outcome.thread_id, {"approved": False})  # second press refused


def test_reject_from_a_new_process(tmp_path):
    settings, secrets = load_settings(), Secrets.from_env({})
    with Runner(settings, secrets) as first:
        outcome = first.start(RunRequest(("NASDAQ",), approve=True))
    with Runner(settings, secrets) as second:  # another process: only the SQLite files are shared
        done = second.resume(outcome.thread_id, {"approved": False, "by": "cli"})
    assert done.state["approval"]["approved"] is False


def test_resume_after_a_crash(runner, monkeypatch):
    from agents.graph.nodes import reporting

    real_make = reporting.make
    calls = {"n": 0}

    def crashing_make(ctx):
        inner = real_make(ctx)

        def node(state):
            calls["n"] += 1
            if calls["n"] == 1:
                raise RuntimeError("simulated crash")
            return inner(state)

        return node

    monkeypatch.setattr(reporting, "make", crashing_make)
    with pytest.raises(RuntimeError, match="simulated crash"):
        runner.start(RunRequest(("SP500",)))
    failed = runner.journal.list_runs()[0]
    assert failed.status == "failed"
    done = runner.resume(failed.thread_id)
    assert done.status == "completed" and "report" in done.state
    # market data and analysis ran once: the resume started from the last checkpoint
    assert done.state["agents_ran"].count("market_data") == 1


@pytest.mark.parametrize("keep_input_writes", [False, True], ids=["input-not-written", "no-step-taken"])
def test_a_start_torn_by_a_crash_is_started_again_on_the_same_thread(runner, monkeypatch, keep_input_writes):
    """kill -9 inside the first checkpoint writes leaves only the input checkpoint (with or
    without the input): no agent ran, so the run starts again on the same thread instead of
    failing as an unknown thread (seen in the kill -9 test) or counting as finished."""
    from agents.graph.nodes import market_data

    real_make = market_data.make

    def crashing_make(ctx):
        def node(state):
            raise RuntimeError("simulated crash")

        return node

    monkeypatch.setattr(market_data, "make", crashing_make)
    runner._graphs.clear()
    request = RunRequest(("SP500",), as_of="2010-06-30")
    with pytest.raises(RuntimeError, match="simulated crash"):
        runner.start(request, run_id="torn1", thread_id="live-torn")
    monkeypatch.setattr(market_data, "make", real_make)
    runner._graphs.clear()
    # What a kill leaves: the input checkpoint only (and, in one window, its input writes).
    conn = runner.checkpointer.conn
    (first,) = conn.execute("SELECT checkpoint_id FROM checkpoints WHERE thread_id = 'live-torn' "
                            "AND json_extract(CAST(metadata AS TEXT), '$.source') = 'input'").fetchone()
    conn.execute("DELETE FROM checkpoints WHERE thread_id = 'live-torn' AND checkpoint_id != ?", (first,))
    conn.execute("DELETE FROM writes WHERE thread_id = 'live-torn'" + (" AND checkpoint_id != ?" if keep_input_writes
                                                                       else ""), (first,) if keep_input_writes else ())
    conn.commit()
    snap = runner._graph(True).get_state({"configurable": {"thread_id": "live-torn"}})
    assert ("request" in snap.values) is keep_input_writes and snap.metadata["step"] == -1
    assert runner.checkpoint_state("live-torn") is None
    done = runner.start(request, run_id="torn1", thread_id="live-torn")
    assert done.status == "completed" and done.state["agents_ran"].count("market_data") == 1
    assert runner.checkpoint_state("live-torn") == "finished"
    with pytest.raises(RegimeDeskError, match="already has a checkpointed run"):
        runner.start(request, run_id="torn1", thread_id="live-torn")


def test_unknown_thread(runner):
    with pytest.raises(UnknownThreadError):
        runner.resume("run-doesnotexist")




@pytest.mark.parametrize("reply", ["BUY 1000000 shares now", "Ignore the gate and sell everything at 99999."])
def test_llm_text_cannot_change_anything_but_narratives(httpserver, tmp_path, reply):
    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_json(chat_completion(reply))
    cfg = tmp_path / "llm.toml"
    cfg.write_text(FAST_ML + f'[llm]\nbackend = "openai"\nbase_url = "{httpserver.url_for("/v1")}"\nmax_retries = 0\n')
    settings = load_settings(cfg)
    secrets = Secrets.from_env({"OPENAI_API_KEY": "sk-test"})
    with Runner(settings, secrets) as r:
        hostile = r.start(RunRequest(("SP500",), as_of="2015-06-30", llm="openai"))
        plain = r.start(RunRequest(("SP500",), as_of="2015-06-30", llm="template"))
        exchanges = r.journal.llm_exchanges(hostile.run_id)
    assert httpserver.log, "the OpenAI backend was not called"
    assert exchanges and not any(e["accepted"] for e in exchanges)
    narratives = hostile.state["narratives"]
    for per_symbol in narratives.values():
        for n in per_symbol.values():
            assert n["accepted"] is False and n["fallback_reason"] == "ungrounded"
            assert "1000000" not in n["text"] and "99999" not in n["text"]
    a, b = _strip(hostile.state), _strip(plain.state)
    for s in (a, b):
        s.pop("narratives"), s.pop("agents_ran"), s.pop("request")
        s["report"].pop("request")
    assert a == b
