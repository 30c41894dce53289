"""The typed graph schema: every output type round-trips through JSON, the wrapper refuses an
untyped node output, and a run's final state parses into the schema and back unchanged."""

from __future__ import annotations

import json
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.config import Secrets, load_settings
from agents.graph import ALL_AGENTS, schema
from agents.graph.schema import (
    AGENT_OUTPUTS,
    AgentError,
    AgentNarrative,
    Approval,
    ApprovalRequest,
    Decision,
    DecisionInputs,
    Execution,
    GateVerdicts,
    MarketData,
    MlSignal,
    MlSignalOutput,
    NodeUpdate,
    PdfFailed,
    PdfWritten,
    PortfolioSnapshot,
    PortfolioTargets,
    RegimeOutput,
    RegimeReport,
    RejectedOrder,
    RunReport,
    RunState,
    SentOrder,
    StatisticsOutput,
    StatisticsReport,
    SymbolDecision,
    SymbolError,
    SymbolRecord,
    TimeframeBars,
    TimeframeUnavailable,
    UntypedOutputError,
    Validation,
    state_update,
)
from agents.runtime.runner import Runner
from agents.services.context import RunRequest
from analytics import DataQualityWarning, PolicyParams
from analytics.risk_gate import ProposedOrder, Verdict

warnings.filterwarnings("ignore", category=DataQualityWarning)

# ----------------------------------------------------------------------------- strategies

text = st.text(max_size=12)
opt_text = st.none() | text
number = st.floats(allow_nan=False, allow_infinity=False, width=64)
opt_number = st.none() | number
symbol = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=6)
timeframe = st.sampled_from(("LT", "MT", "ST", "US"))
json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | number | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=12,
)
# A service report always has keys besides "error" (a mapping whose only key is "error" is a
# SymbolError in the state's JSON).
payload = st.builds(lambda s, rest: {"symbol": s, **rest}, symbol, st.dictionaries(text, json_value, max_size=4))


def per_symbol(values, max_size=3):
    return st.dictionaries(symbol, values, max_size=max_size)


def per_timeframe(values):
    return st.dictionaries(timeframe, values, max_size=4)


def tuples(values, max_size=3):
    return st.lists(values, max_size=max_size).map(tuple)


symbol_error = st.builds(SymbolError, text)
agent_error = st.builds(AgentError, st.sampled_from(ALL_AGENTS), st.none() | symbol, text)
narrative = st.builds(AgentNarrative, text, st.sampled_from(("template", "openai")), st.booleans(), opt_text,
                      tuples(text))
validation = st.builds(Validation, st.booleans(), text, st.dictionaries(text, st.integers(0, 10**6), max_size=3))
timeframe_data = st.builds(TimeframeBars, text, st.integers(0, 10**6), text, text, number, validation, text) | st.builds(
    TimeframeUnavailable, text, text)
market_data = st.builds(MarketData, per_symbol(per_timeframe(timeframe_data)))
regime_report = st.builds(RegimeReport, payload)
regime_output = st.builds(RegimeOutput, per_symbol(regime_report | symbol_error))
statistics_report = st.builds(StatisticsReport, payload)
statistics_output = st.builds(StatisticsOutput, per_symbol(per_timeframe(statistics_report | symbol_error)))
ml_signal = st.builds(MlSignal, payload)
ml_output = st.builds(MlSignalOutput, per_symbol(ml_signal | symbol_error))
unit = st.floats(0.0, 1.0)
policy_params = st.builds(PolicyParams, st.floats(-1.0, 1.0), st.floats(-1.0, 1.0), unit, unit, unit, st.floats(0.0, 2.0))
order = st.builds(ProposedOrder, opt_text, symbol, st.sampled_from(("buy", "sell", "cancel")), number,
                  st.sampled_from(("market", "limit")), opt_number, opt_number, opt_number)
inputs = st.builds(DecisionInputs, opt_text, opt_number, opt_number)
symbol_decision = st.one_of(
    st.builds(SymbolDecision, text, inputs, opt_text, st.none() | policy_params, opt_number, opt_text),
    st.builds(SymbolDecision, text, inputs, opt_text, st.none() | policy_params, opt_number, opt_text, opt_number,
              tuples(order)),
)
portfolio = st.builds(PortfolioSnapshot, number, number, st.dictionaries(symbol, number, max_size=3),
                      st.integers(0, 100))
decision = st.builds(Decision, text, per_symbol(symbol_decision), st.none() | portfolio)
weights = st.none() | st.dictionaries(symbol, number, max_size=3)
portfolio_targets = st.builds(PortfolioTargets, st.sampled_from(("none", "erc", "mv", "hrp", "invvol")), opt_text,
                              weights, weights, opt_number, st.none() | st.dictionaries(text, number, max_size=2),
                              st.none() | st.booleans(), text, st.none() | tuples(order), opt_text)
verdict = st.builds(Verdict, order, st.sampled_from(("approve", "trim", "reject")), number, tuples(text))
gate = st.one_of(
    st.builds(GateVerdicts, text, opt_text, tuples(text), per_symbol(tuples(verdict)), opt_text, opt_text,
              tuples(symbol)),
    st.builds(lambda ts, r, n: GateVerdicts(ts, r, (), {}, note=n), text, opt_text, text),
)
approval = st.builds(Approval, st.booleans(), text, text, text)
approval_request = st.builds(ApprovalRequest, opt_text, opt_text, tuples(symbol), st.none() | decision,
                             st.none() | gate)
sent_order = st.builds(SentOrder, text, opt_text, symbol, st.sampled_from(("buy", "sell")), number, number, opt_number,
                       st.sampled_from(("new", "accepted", "filled", "rejected")), opt_text, opt_text, st.booleans())
rejected = st.builds(RejectedOrder, order, tuples(text))
reconciled = st.dictionaries(text, json_value, max_size=3)
execution = st.one_of(
    st.builds(Execution, text, per_symbol(tuples(sent_order)), tuples(reconciled), tuples(rejected)),
    st.builds(lambda b, n: Execution(b, {}, (), note=n), text, text),
)
pdf = st.builds(PdfWritten, text, st.integers(0, 99), st.integers(0, 9), st.integers(0, 10**7)) | st.builds(
    PdfFailed, text, text)
record = st.builds(SymbolRecord, symbol, st.none() | per_timeframe(timeframe_data), st.none() | regime_report
                   | symbol_error, st.none() | per_timeframe(statistics_report | symbol_error),
                   st.none() | ml_signal | symbol_error, st.none() | symbol_decision, st.none() | tuples(verdict),
                   st.none() | tuples(sent_order))
request = st.builds(RunRequest, st.lists(symbol, min_size=1, max_size=3, unique=True).map(tuple), text, opt_text,
                    st.sampled_from(("template", "openai")), st.sampled_from(("none", "paper", "alpaca")),
                    st.booleans(), opt_text, st.booleans(), opt_text)
# A portfolio method needs two symbols or more.
request = request | st.builds(RunRequest, st.lists(symbol, min_size=2, max_size=3, unique=True).map(tuple), text,
                              portfolio=st.sampled_from(("erc", "mv", "hrp", "invvol")))
run_report = st.builds(RunReport, opt_text, opt_text, request, tuples(st.sampled_from(ALL_AGENTS)),
                       per_symbol(record, max_size=2), tuples(agent_error), st.none() | pdf)

#: Every type with a state form, and how to generate values of it.
TYPES = {
    AgentError: agent_error, SymbolError: symbol_error, AgentNarrative: narrative, Validation: validation,
    TimeframeBars: timeframe_data.filter(lambda d: d.available),
    TimeframeUnavailable: timeframe_data.filter(lambda d: not d.available), MarketData: market_data,
    RegimeReport: regime_report, RegimeOutput: regime_output, StatisticsReport: statistics_report,
    StatisticsOutput: statistics_output, MlSignal: ml_signal, MlSignalOutput: ml_output, DecisionInputs: inputs,
    SymbolDecision: symbol_decision, PortfolioSnapshot: portfolio, Decision: decision,
    PortfolioTargets: portfolio_targets, GateVerdicts: gate,
    ApprovalRequest: approval_request, Approval: approval, SentOrder: sent_order, RejectedOrder: rejected,
    Execution: execution, PdfWritten: pdf.filter(lambda p: isinstance(p, PdfWritten)),
    PdfFailed: pdf.filter(lambda p: isinstance(p, PdfFailed)), SymbolRecord: record, RunReport: run_report,
}


def through_json(value):
    return json.loads(json.dumps(value.to_state(), allow_nan=False))


# ----------------------------------------------------------------------------- round trips


def test_every_state_type_of_the_schema_has_a_strategy():
    stateful = {v for v in vars(schema).values()
                if isinstance(v, type) and v.__module__ == schema.__name__ and hasattr(v, "from_state")
                and not v.__name__.startswith("_")}
    assert stateful == set(TYPES)


@pytest.mark.parametrize("kind", list(TYPES), ids=lambda k: k.__name__)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_round_trip_through_json(kind, data):
    value = data.draw(TYPES[kind])
    assert isinstance(value, kind)
    back = kind.from_state(through_json(value))
    assert back == value
    assert back.to_state() == value.to_state()


@settings(max_examples=60, deadline=None)
@given(value=st.data())
def test_verdicts_round_trip_as_the_gate_writes_them(value):
    v = value.draw(verdict)
    assert schema.verdict_from_state(json.loads(json.dumps(v.to_dict()))) == v


def test_a_decision_without_parameters_keeps_the_state_key_order():
    d = SymbolDecision("regime", DecisionInputs("risk_on", None, None), None, None, None, "no trained model")
    assert list(d.to_state()) == ["policy", "inputs", "model_version", "target_weight", "params", "reason"]
    with_params = SymbolDecision("regime", DecisionInputs("risk_on", 0.6, 0.2), "v1", PolicyParams(), 1.0, None,
                                 0.0, ())
    assert list(with_params.to_state()) == ["policy", "inputs", "model_version", "params", "target_weight", "reason",
                                            "current_weight", "orders"]


def test_a_symbol_error_is_told_from_a_report_by_its_only_key():
    out = RegimeOutput.from_state({"A": {"error": "no data"}, "B": {"symbol": "B", "error": "x"}})
    assert out.symbols["A"] == SymbolError("no data")
    assert isinstance(out.symbols["B"], RegimeReport)


# ----------------------------------------------------------------------------- the wrapper


def _market_update() -> NodeUpdate:
    return NodeUpdate(MarketData({"X": {"US": TimeframeUnavailable("5Min", "no intraday bars")}}))


def test_state_update_serialises_a_typed_output():
    assert state_update("market_data", _market_update()) == {
        "market_data": {"X": {"US": {"bar": "5Min", "available": False, "reason": "no intraday bars"}}}}
    n = AgentNarrative("X: calm.", "template", True)
    update = state_update("regime", NodeUpdate(RegimeOutput({"X": SymbolError("short")}), {}, (AgentError(
        "regime", "X", "RegimeDeskError: short"),)))
    assert update == {"regime": {"X": {"error": "short"}}, "narratives": {"regime": {}},
                      "errors": [{"agent": "regime", "symbol": "X", "error": "RegimeDeskError: short"}]}
    gate = state_update("risk_gate", NodeUpdate(GateVerdicts("ACTIVE", None, (), {}, note="none"), {"_run": n}))
    assert gate["narratives"] == {"risk_gate": {"_run": n.to_state()}} and "errors" not in gate


@pytest.mark.parametrize("bad", [
    {"market_data": {}},  # the old dict shape
    NodeUpdate(RegimeOutput({})),  # another agent's output type
    NodeUpdate(MarketData({}), {"X": {"text": "t"}}),  # an untyped narrative
    NodeUpdate(MarketData({}), None, ({"agent": "market_data", "symbol": None, "error": "e"},)),  # untyped error
])
def test_state_update_refuses_untyped_values(bad):
    with pytest.raises(UntypedOutputError):
        state_update("market_data", bad)


def test_every_agent_has_one_output_type():
    assert tuple(AGENT_OUTPUTS) == ALL_AGENTS
    assert [key for key, _ in AGENT_OUTPUTS.values()] == [*ALL_AGENTS[:-1], "report"]


#: Yearly ML refits (quick first training); the regime policy wants to be invested at AS_OF.
FAST = "[ml]\nrefit_every = 252\n[decision]\npolicy = \"regime\"\n"
AS_OF = "2006-12-29"


@pytest.fixture
def fast_settings(tmp_path, monkeypatch):
    (tmp_path / "fast-ml.toml").write_text(FAST)
    monkeypatch.setenv("REGIMEDESK_CONFIG", str(tmp_path / "fast-ml.toml"))
    return load_settings()


def test_the_wrapper_refuses_a_node_returning_a_dict(fast_settings, monkeypatch):
    from agents.graph.nodes import market_data

    real = market_data.make
    monkeypatch.setattr(market_data, "make", lambda ctx: lambda state: {"market_data": {}})
    request = RunRequest(("SP500",), as_of="2008-10-01")
    with Runner(fast_settings, Secrets.from_env({})) as runner:
        with pytest.raises(UntypedOutputError, match="market_data node returned dict"):
            runner.start(request)
        assert runner.journal.list_runs()[0].status == "failed"
        # The real node's typed output passes the same check.
        typed = real(runner.ctx)({"request": request.to_dict()})
        assert state_update("market_data", typed)["market_data"]["SP500"]["MT"]["available"] is True


def test_invariants_keep_the_state_form_lossless():
    with pytest.raises(ValueError, match="current_weight"):
        SymbolDecision("regime", DecisionInputs(None, None, None), None, None, None, "x", current_weight=0.5)
    with pytest.raises(ValueError, match="checked nothing"):
        GateVerdicts("ACTIVE", None, (), {"X": ()}, note="no broker")
    with pytest.raises(ValueError, match="rejected nothing"):
        Execution("none", {}, (), (RejectedOrder(ProposedOrder("c", "X", "buy", 1.0), ("r",)),), note="n")


# ----------------------------------------------------------------------------- a real run


def test_a_runs_final_state_parses_into_the_schema(fast_settings):
    with Runner(fast_settings, Secrets.from_env({})) as runner:
        waiting = runner.start(RunRequest(("SP500",), as_of=AS_OF, broker="paper", approve=True))
        assert waiting.status == "interrupted"
        pending = ApprovalRequest.from_state(waiting.pending)
        assert pending.to_state() == waiting.pending and pending.decision is not None
        done = runner.resume(waiting.thread_id, {"approved": True, "by": "test"})
    state = done.state
    run = RunState(state)
    assert done.run_state.request == run.request
    assert run.to_state() == state  # every key known, and its JSON is the state's
    assert run.request == RunRequest.from_dict(state["request"]) and run.agents_present == ALL_AGENTS
    assert isinstance(run.market_data.symbols["SP500"]["MT"], TimeframeBars)
    assert isinstance(run.market_data.symbols["SP500"]["US"], TimeframeUnavailable)
    assert isinstance(run.regime.symbols["SP500"], RegimeReport)
    assert isinstance(run.statistics.symbols["SP500"]["US"], SymbolError)
    assert isinstance(run.ml_signal.symbols["SP500"], MlSignal)
    dec = run.decision.symbols["SP500"]
    assert dec.inputs.regime_family == run.regime.symbols["SP500"].consensus_family
    assert dec.orders and all(isinstance(o, ProposedOrder) for o in dec.orders)
    (v,) = run.risk_gate.symbols["SP500"]
    assert isinstance(v, Verdict) and v.order == dec.orders[0]
    assert run.approval.approved is True and run.approval.by == "test"
    (sent,) = run.execution.symbols["SP500"]
    assert isinstance(sent, SentOrder) and sent.client_order_id == v.order.client_order_id
    rec = run.report.symbols["SP500"]
    assert rec.decision == dec and rec.risk_gate == (v,) and rec.execution == (sent,)
    assert run.report.request == run.request and "agents_absent" not in state
    assert set(run.narratives) == {"regime", "statistics", "ml_signal", "decision", "portfolio", "risk_gate",
                                   "execution", "reporting"}
    assert run.errors == ()
