"""Helpers shared by the node modules."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from agents.graph.schema import AgentError, AgentNarrative, RunState, SymbolError
from agents.services.context import AppContext
from analytics import json_safe

__all__ = ["narrate", "per_symbol"]

R = TypeVar("R")


def narrate(
    ctx: AppContext,
    run: RunState,
    agent: str,
    symbol: str | None,
    facts: Mapping[str, Any],
    template_text: str,
) -> AgentNarrative:
    """Narrate ``facts`` with the run's narrator (the template text when no LLM may say it)."""
    narrator = ctx.narrator(run.request_doc)
    n = narrator.narrate(agent, json_safe(facts), template_text, run_id=run.run_id, symbol=symbol)
    return AgentNarrative(n.text, n.backend, n.accepted, n.fallback_reason, tuple(n.rejected_numbers))


def per_symbol(
    ctx: AppContext,
    run: RunState,
    agent: str,
    compute: Callable[[str], R],
    facts: Callable[[Mapping[str, Any]], dict[str, Any]],
    template: Callable[[dict[str, Any]], str],
    errors: tuple[type[BaseException], ...],
) -> tuple[dict[str, R | SymbolError], dict[str, AgentNarrative], tuple[AgentError, ...]]:
    """An analysis agent's results: ``compute(symbol)`` for every symbol, narrated.

    ``compute`` returns a typed envelope (its ``payload`` is what ``facts`` reads). A symbol
    whose computation raises one of ``errors`` gets a :class:`SymbolError` and an entry in
    the run's errors; the other symbols are unaffected.

    Returns
    -------
    results, narratives, errors
        Per symbol; narratives only for the symbols with a result.
    """
    results: dict[str, R | SymbolError] = {}
    narratives: dict[str, AgentNarrative] = {}
    failed: list[AgentError] = []
    for symbol in run.request.symbols:
        try:
            out = compute(symbol)
        except errors as exc:
            results[symbol] = SymbolError(str(exc))
            failed.append(AgentError.from_exception(agent, symbol, exc))
            continue
        results[symbol] = out
        f = facts(out.payload)
        narratives[symbol] = narrate(ctx, run, agent, symbol, f, template(f))
    return results, narratives, tuple(failed)
