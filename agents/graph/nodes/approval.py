"""approval node: stop the graph with ``interrupt()`` until a person approves or rejects."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from langgraph.types import interrupt

from agents.services.context import AppContext

__all__ = ["make"]


def make(ctx: AppContext):
    def approval(state: dict[str, Any]) -> dict[str, Any]:
        # interrupt() re-runs this node from the top on resume: no side effects before it.
        proposal = {
            "run_id": state.get("run_id"),
            "thread_id": state.get("thread_id"),
            "symbols": state["request"]["symbols"],
            "decision": state.get("decision", {}),
            "risk_gate": state.get("risk_gate", {}),
        }
        answer = interrupt(proposal)
        if not isinstance(answer, dict) or "approved" not in answer:
            answer = {"approved": False, "note": f"malformed approval answer {answer!r}"}
        return {
            "approval": {
                "approved": bool(answer["approved"]),
                "by": str(answer.get("by", "unknown")),
                "note": str(answer.get("note", "")),
                "at": datetime.now(UTC).isoformat(),
            }
        }

    return approval
