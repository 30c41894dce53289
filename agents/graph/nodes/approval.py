"""approval node: stop the graph with ``interrupt()`` until a person approves or rejects."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from langgraph.types import interrupt

from agents.graph.schema import Approval, ApprovalRequest, NodeUpdate, RunState
from agents.services.context import AppContext

__all__ = ["make"]


def make(ctx: AppContext):
    def approval(state: Mapping[str, Any]) -> NodeUpdate:
        # interrupt() re-runs this node from the top on resume: no side effects before it.
        run = RunState(state)
        proposal = ApprovalRequest(run.run_id, run.thread_id, run.request.symbols, run.decision, run.risk_gate)
        answer = interrupt(proposal.to_state())
        return NodeUpdate(Approval.from_answer(answer, at=datetime.now(UTC).isoformat()))

    return approval
