"""reporting node: assemble the run's record from every agent that ran; render the PDF when asked."""

from __future__ import annotations

import logging
from typing import Any

from agents.graph.nodes._common import narrate
from agents.services.context import AppContext

__all__ = ["make", "symbol_record"]

log = logging.getLogger(__name__)


def symbol_record(state: dict[str, Any], symbol: str) -> dict[str, Any]:
    """What the run concluded for one symbol, agent by agent (absent agents omitted)."""
    record: dict[str, Any] = {"symbol": symbol}
    for key in ("market_data", "regime", "statistics", "ml_signal"):
        if symbol in state.get(key, {}):
            record[key] = state[key][symbol]
    for key in ("decision", "risk_gate", "execution"):
        per_symbol = state.get(key, {}).get("symbols", {})
        if symbol in per_symbol:
            record[key] = per_symbol[symbol]
    return record


def _template(state: dict[str, Any]) -> str:
    ran = [a for a in state.get("agents_ran", []) if a != "reporting"]
    absent = state.get("agents_absent", [])
    errors = state.get("errors", [])
    text = f"Run over {', '.join(state['request']['symbols'])} with agents {', '.join(ran)}."
    if absent:
        text += f" Not yet available: {', '.join(absent)}."
    if errors:
        text += f" {len(errors)} result(s) could not be produced; see errors."
    return text


def make(ctx: AppContext):
    def reporting(state: dict[str, Any]) -> dict[str, Any]:
        report = {
            "run_id": state.get("run_id"),
            "thread_id": state.get("thread_id"),
            "request": state["request"],
            "agents_ran": [a for a in state.get("agents_ran", [])] + ["reporting"],
            "agents_absent": state.get("agents_absent", []),
            "symbols": {s: symbol_record(state, s) for s in state["request"]["symbols"]},
            "errors": state.get("errors", []),
        }
        facts = {
            "symbols": state["request"]["symbols"],
            "agents_ran": report["agents_ran"],
            "agents_absent": report["agents_absent"],
            "errors": len(report["errors"]),
        }
        narrative = narrate(ctx, state, "reporting", None, facts, _template(state))
        update: dict[str, Any] = {"report": report, "narratives": {"reporting": {"_run": narrative}}}
        path = state["request"].get("report")
        if path:
            narratives = {**state.get("narratives", {}), **update["narratives"]}  # the reducer merges later
            report["pdf"], errors = _render(ctx, {**state, "report": report, "narratives": narratives}, path)
            if errors:
                update["errors"] = errors
        return update

    return reporting


def _render(ctx: AppContext, state: dict[str, Any], path: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Render the PDF; a failure is recorded in the run, never lost and never half-written."""
    from agents.services.report import write_report

    try:
        out = write_report(ctx, state, path, backtest=state["request"].get("report_backtest", True),
                           status=ctx.status)
    except Exception as exc:  # the run's results stand even if the PDF cannot be written
        log.debug("report rendering failed", exc_info=True)
        # An OS error names the writer's temporary file, not the user's path: keep its reason only.
        err = (f"cannot write ({exc.strerror})" if isinstance(exc, OSError) and exc.strerror
               else f"{type(exc).__name__}: {exc}")
        return {"path": path, "error": err}, [{"agent": "reporting", "symbol": None, "error": err}]
    return {"path": str(out.path), "pages": out.pages, "figures": out.figures, "bytes": out.bytes}, []
