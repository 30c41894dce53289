"""The agent graph: its state schema, its static wiring and its thin nodes.

Layer three of four inside ``agents`` (front doors -> runtimes -> **graph** -> services).
Nodes read the run's request and the earlier agents' results from the state, call one service
function, and return their own typed output; the wiring adds ``agents_ran`` and journals it.
Only runtimes (``agents.runtime``) import this package.
"""

from agents.graph.state import ALL_AGENTS, ANALYSIS_AGENTS, PIPELINE_AGENTS, GraphState
from agents.graph.wiring import agent_plan, available_agents, build_graph

__all__ = [
    "ALL_AGENTS",
    "ANALYSIS_AGENTS",
    "PIPELINE_AGENTS",
    "GraphState",
    "agent_plan",
    "available_agents",
    "build_graph",
]
