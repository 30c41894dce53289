"""The agent graph: its state schema, its static wiring and its thin nodes.

Layer three of four inside ``agents`` (front doors -> runtimes -> **graph** -> services).
Nodes read the run's request and the earlier agents' results through the typed view
(:class:`RunState`), call one service function, and return their own typed output
(:class:`NodeUpdate`, types in :mod:`agents.graph.schema`); the wiring turns it into the
state's JSON, adds ``agents_ran`` and journals it.
Only runtimes (``agents.runtime``) import this package.
"""

from agents.graph.schema import (
    AGENT_OUTPUTS,
    AgentError,
    AgentNarrative,
    Approval,
    ApprovalRequest,
    Decision,
    Execution,
    GateVerdicts,
    MarketData,
    MlSignal,
    MlSignalOutput,
    NodeUpdate,
    RegimeOutput,
    RegimeReport,
    RunReport,
    RunState,
    StatisticsOutput,
    StatisticsReport,
    SymbolDecision,
    SymbolError,
    UntypedOutputError,
    state_update,
)
from agents.graph.state import ALL_AGENTS, ANALYSIS_AGENTS, PIPELINE_AGENTS, GraphState
from agents.graph.wiring import agent_plan, build_graph

__all__ = [
    "AGENT_OUTPUTS",
    "ALL_AGENTS",
    "ANALYSIS_AGENTS",
    "PIPELINE_AGENTS",
    "AgentError",
    "AgentNarrative",
    "Approval",
    "ApprovalRequest",
    "Decision",
    "Execution",
    "GateVerdicts",
    "GraphState",
    "MarketData",
    "MlSignal",
    "MlSignalOutput",
    "NodeUpdate",
    "RegimeOutput",
    "RegimeReport",
    "RunReport",
    "RunState",
    "StatisticsOutput",
    "StatisticsReport",
    "SymbolDecision",
    "SymbolError",
    "UntypedOutputError",
    "agent_plan",
    "build_graph",
    "state_update",
]
