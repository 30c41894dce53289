"""The agent graph of DESIGN.md, built from the agents that exist.

::

    START -> market_data -> (regime | statistics | ml_signal) -> decision -> risk_gate
          -> [approval] -> execution -> reporting -> END

Fan-out per symbol: every node handles all symbols of the run in one call (a per-symbol
map in its state key) rather than one ``Send`` per symbol. Parallelism is across agents;
the analysis agents are numpy-bound and this machine has two cores, so per-symbol tasks
would add checkpoint writes and merge work without speed, and one task per agent keeps each
checkpoint step small and the journal ordered.

An agent whose capability has not landed is absent: the graph skips it and the run lists
it in ``agents_absent``; nothing fakes its result.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from typing import Any

from langgraph.graph import END, START, StateGraph

from agents.graph.state import ANALYSIS_AGENTS, PIPELINE_AGENTS, GraphState
from agents.services.context import AppContext

__all__ = ["available_agents", "build_graph", "agent_plan"]

#: agent -> module under agents.graph.nodes implementing it.
_NODE_MODULES: dict[str, str] = {
    "market_data": "agents.graph.nodes.market_data",
    "regime": "agents.graph.nodes.regime",
    "statistics": "agents.graph.nodes.statistics",
    "ml_signal": "agents.graph.nodes.ml_signal",
    "decision": "agents.graph.nodes.decision",
    "risk_gate": "agents.graph.nodes.risk_gate",
    "approval": "agents.graph.nodes.approval",
    "execution": "agents.graph.nodes.execution",
    "reporting": "agents.graph.nodes.reporting",
}


def available_agents() -> dict[str, Callable[[AppContext], Callable]]:
    """``agent -> make(ctx)`` for every agent whose node module exists."""
    found: dict[str, Callable[[AppContext], Callable]] = {}
    for agent, module in _NODE_MODULES.items():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise  # the module exists but one of its imports is missing: a real error
            continue
        found[agent] = mod.make
    return found


def agent_plan(approve: bool) -> tuple[list[str], list[str]]:
    """``(present, absent)`` agents for a graph with or without the approval step."""
    have = available_agents()
    wanted = ["market_data", *ANALYSIS_AGENTS, *PIPELINE_AGENTS]
    if not approve:
        wanted.remove("approval")
    present = [a for a in wanted if a in have]
    absent = [a for a in wanted if a not in have]
    return present, absent


def _wrap(ctx: AppContext, agent: str, fn: Callable[[dict], dict]) -> Callable[[dict], dict]:
    def node(state: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        update = fn(state)
        update = dict(update)
        update["agents_ran"] = [agent]
        if ctx.journal is not None and agent != "approval":
            own = {k: v for k, v in update.items() if k not in ("agents_ran",)}
            own["_seconds"] = round(time.perf_counter() - started, 4)
            ctx.journal.record_agent_output(state.get("run_id"), agent, None, own)
        return update

    node.__name__ = agent
    return node


def build_graph(ctx: AppContext, *, approve: bool = False, checkpointer=None):
    """Compile the graph from the agents that exist.

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
    graph, present, absent
        The compiled graph and the agents it has and lacks.
    """
    makers = available_agents()
    present, absent = agent_plan(approve)
    builder = StateGraph(GraphState)
    for agent in present:
        builder.add_node(agent, _wrap(ctx, agent, makers[agent](ctx)))
    builder.add_edge(START, "market_data")
    analysis = [a for a in ANALYSIS_AGENTS if a in present]
    chain = [a for a in PIPELINE_AGENTS if a in present]
    if not chain:
        raise RuntimeError("the reporting agent is missing; the graph cannot end a run")
    if analysis:
        for agent in analysis:
            builder.add_edge("market_data", agent)
        builder.add_edge(analysis, chain[0])  # waits for every analysis agent
    else:
        builder.add_edge("market_data", chain[0])
    for a, b in zip(chain, chain[1:], strict=False):
        builder.add_edge(a, b)
    builder.add_edge(chain[-1], END)
    return builder.compile(checkpointer=checkpointer), present, absent
