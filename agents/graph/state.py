"""The shared state of the agent graph.

Each agent writes its own key. Keys written by agents that run in parallel (``regime``,
``statistics``, ``ml_signal``, ``narratives``, ``agents_ran``, ``errors``) have reducers so
that concurrent writes merge instead of colliding. Every value is JSON-serialisable (the
SQLite checkpointer stores it); raw bars never enter the state — nodes read them from the
run's keyed bar cache (:class:`agents.services.context.BarStore`).

Per-symbol layout: ``state[agent][symbol] = {...}``. An agent that could not produce a
result for a symbol writes ``{"error": "..."}`` there instead of inventing one.

This is the stored form only: nodes return and read the typed values of
:mod:`agents.graph.schema`, whose ``to_state()``/``from_state()`` give and parse each key's JSON.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

__all__ = ["GraphState", "merge_dicts", "merge_nested", "ANALYSIS_AGENTS", "PIPELINE_AGENTS", "ALL_AGENTS"]

#: Agents that read bars and run in parallel after ``market_data``.
ANALYSIS_AGENTS: tuple[str, ...] = ("regime", "statistics", "ml_signal")
#: Agents that run one after another after the analysis agents.
PIPELINE_AGENTS: tuple[str, ...] = ("decision", "portfolio", "risk_gate", "approval", "execution", "reporting")
ALL_AGENTS: tuple[str, ...] = ("market_data", *ANALYSIS_AGENTS, *PIPELINE_AGENTS)


def merge_dicts(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    """Reducer: shallow union, right wins on the same key."""
    out = dict(left or {})
    out.update(right or {})
    return out


def merge_nested(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    """Reducer for ``agent -> symbol -> value`` maps written by parallel agents."""
    out = {k: dict(v) for k, v in (left or {}).items()}
    for key, value in (right or {}).items():
        out.setdefault(key, {}).update(value)
    return out


class GraphState(TypedDict, total=False):
    """Everything a run knows, as JSON.

    Attributes
    ----------
    run_id, thread_id : str
        Journal id of the run and checkpoint thread.
    request : dict
        The :class:`agents.services.context.RunRequest` (``to_dict()``).
    agents_present : list of str
        The agents of this run's graph (with or without approval), in order.
    market_data : dict
        :class:`~agents.graph.schema.MarketData`: ``symbol -> timeframe -> {bar, available, ...}``.
    regime, statistics, ml_signal : dict
        ``symbol -> result`` of each analysis agent (:class:`~agents.graph.schema.RegimeOutput`,
        :class:`~agents.graph.schema.StatisticsOutput`, :class:`~agents.graph.schema.MlSignalOutput`).
    decision, portfolio, risk_gate, approval, execution, report : dict
        Outputs of the pipeline agents (:class:`~agents.graph.schema.Decision`,
        :class:`~agents.graph.schema.PortfolioTargets`,
        :class:`~agents.graph.schema.GateVerdicts`, :class:`~agents.graph.schema.Approval`,
        :class:`~agents.graph.schema.Execution`, :class:`~agents.graph.schema.RunReport`).
    narratives : dict
        ``agent -> symbol or "_run" -> {text, backend, accepted, fallback_reason, rejected_numbers}``
        (:class:`~agents.graph.schema.AgentNarrative`).
    agents_ran : list of str
        Agents in the order they finished.
    errors : list of dict
        ``{agent, symbol, error}`` (:class:`~agents.graph.schema.AgentError`) for results that
        could not be produced.
    """

    run_id: str
    thread_id: str
    request: dict[str, Any]
    agents_present: list[str]
    market_data: dict[str, Any]
    regime: Annotated[dict[str, Any], merge_dicts]
    statistics: Annotated[dict[str, Any], merge_dicts]
    ml_signal: Annotated[dict[str, Any], merge_dicts]
    decision: dict[str, Any]
    portfolio: dict[str, Any]
    risk_gate: dict[str, Any]
    approval: dict[str, Any]
    execution: dict[str, Any]
    report: dict[str, Any]
    narratives: Annotated[dict[str, Any], merge_nested]
    agents_ran: Annotated[list[str], operator.add]
    errors: Annotated[list[dict[str, Any]], operator.add]
