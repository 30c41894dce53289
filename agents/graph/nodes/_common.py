"""Helpers shared by the node modules."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from agents.services.context import AppContext
from agents.services.format import to_jsonable

__all__ = ["narrate", "symbol_error", "per_symbol"]


def narrate(
    ctx: AppContext,
    state: Mapping[str, Any],
    agent: str,
    symbol: str | None,
    facts: Mapping[str, Any],
    template_text: str,
) -> dict[str, Any]:
    """Narrate ``facts`` with the run's narrator; returns the JSON for ``state['narratives']``."""
    narrator = ctx.narrator(state["request"])
    n = narrator.narrate(agent, to_jsonable(facts), template_text, run_id=state.get("run_id"), symbol=symbol)
    return {
        "text": n.text,
        "backend": n.backend,
        "accepted": n.accepted,
        "fallback_reason": n.fallback_reason,
        "rejected_numbers": list(n.rejected_numbers),
    }


def symbol_error(agent: str, symbol: str, exc: BaseException) -> dict[str, Any]:
    """The ``errors`` entry for a result an agent could not produce."""
    return {"agent": agent, "symbol": symbol, "error": f"{type(exc).__name__}: {exc}"}


def per_symbol(
    ctx: AppContext,
    state: Mapping[str, Any],
    agent: str,
    compute: Callable[[str], dict[str, Any]],
    facts: Callable[[dict[str, Any]], dict[str, Any]],
    template: Callable[[dict[str, Any]], str],
    errors: tuple[type[BaseException], ...],
) -> dict[str, Any]:
    """An analysis agent's state update: ``compute(symbol)`` for every symbol, narrated.

    A symbol whose computation raises one of ``errors`` gets ``{"error": ...}`` and an
    entry in the run's ``errors``; the other symbols are unaffected.
    """
    results: dict[str, Any] = {}
    narratives: dict[str, Any] = {}
    failed: list[dict[str, Any]] = []
    for symbol in state["request"]["symbols"]:
        try:
            out = compute(symbol)
        except errors as exc:
            results[symbol] = {"error": str(exc)}
            failed.append(symbol_error(agent, symbol, exc))
            continue
        results[symbol] = out
        f = facts(out)
        narratives[symbol] = narrate(ctx, state, agent, symbol, f, template(f))
    return {agent: results, "narratives": {agent: narratives}, "errors": failed}
