"""The agent graph; every agent is always present.

::

    START -> market_data -> (regime | statistics | ml_signal) -> decision -> portfolio -> risk_gate
          -> [approval] -> execution -> reporting -> END

Fan-out per symbol: every node handles all symbols of the run in one call (a per-symbol
map in its state key) rather than one ``Send`` per symbol. Parallelism is across agents;
the analysis agents are numpy-bound and this machine has two cores, so per-symbol tasks
would add checkpoint writes and merge work without speed, and one task per agent keeps each
checkpoint step small and the journal ordered.

Nodes return typed values (:class:`agents.graph.schema.NodeUpdate`); the wrapper here is the
one place they become the state's JSON (:func:`agents.graph.schema.state_update`), and it
refuses a node that returns anything else.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from langgraph.graph import END, START, StateGraph

from agents.graph.nodes import (
    approval,
    decision,
    execution,
    market_data,
    ml_signal,
    portfolio,
    regime,
    reporting,
    risk_gate,
    statistics,
)
from agents.graph.schema import RunState, state_update
from agents.graph.state import ALL_AGENTS, ANALYSIS_AGENTS, PIPELINE_AGENTS, GraphState
from agents.services.context import AppContext

__all__ = ["build_graph", "agent_plan"]

#: agent -> its node module (``make(ctx) -> node``), looked up when a graph is built.
_NODE_MODULES: dict[str, ModuleType] = {
    "market_data": market_data,
    "regime": regime,
    "statistics": statistics,
    "ml_signal": ml_signal,
    "decision": decision,
    "portfolio": portfolio,
    "risk_gate": risk_gate,
    "approval": approval,
    "execution": execution,
    "reporting": reporting,
}


def agent_plan(approve: bool) -> tuple[str, ...]:
    """The agents of a graph with or without the approval step, in order."""
    return tuple(a for a in ALL_AGENTS if approve or a != "approval")


def _wrap(ctx: AppContext, agent: str, fn: Callable[[Mapping[str, Any]], object]) -> Callable[[dict], dict]:
    def node(state: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        update = state_update(agent, fn(state))
        update["agents_ran"] = [agent]
        if ctx.journal is not None and agent != "approval":
            own = {k: v for k, v in update.items() if k != "agents_ran"}
            own["_seconds"] = round(time.perf_counter() - started, 4)
            ctx.journal.record_agent_output(RunState(state).run_id, agent, None, own)
        return update

    node.__name__ = agent
    return node


def build_graph(ctx: AppContext, *, approve: bool = False, checkpointer=None):
    """Compile the graph.

    Parameters
    ----------
    ctx : AppContext
        Services the nodes use (bars, narrator, journal).
    approve : bool
        Insert the approval interrupt before execution.
    checkpointer : BaseCheckpointSaver, optional
        Durable checkpoints (SQLite in the CLI); required for approval and resume.

    Returns
    -------
    CompiledStateGraph
        Nodes :func:`agent_plan` ``(approve)``.
    """
    builder = StateGraph(GraphState)
    for agent in agent_plan(approve):
        # Looked up now, not at import, so a test can replace a node module's make().
        builder.add_node(agent, _wrap(ctx, agent, _NODE_MODULES[agent].make(ctx)))
    chain = [a for a in PIPELINE_AGENTS if approve or a != "approval"]
    builder.add_edge(START, "market_data")
    for agent in ANALYSIS_AGENTS:
        builder.add_edge("market_data", agent)
    builder.add_edge(list(ANALYSIS_AGENTS), chain[0])  # waits for every analysis agent
    for a, b in zip(chain, chain[1:], strict=False):
        builder.add_edge(a, b)
    builder.add_edge(chain[-1], END)
    return builder.compile(checkpointer=checkpointer)
