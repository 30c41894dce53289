"""reporting node: assemble the run's record from every agent that ran; render the PDF when asked."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from agents.graph.nodes._common import narrate
from agents.graph.schema import (
    AgentError,
    NodeUpdate,
    PdfFailed,
    PdfWritten,
    RunReport,
    RunState,
    SymbolRecord,
)
from agents.services.context import AppContext

__all__ = ["make", "symbol_record"]

log = logging.getLogger(__name__)


def symbol_record(run: RunState, symbol: str) -> SymbolRecord:
    """What the run concluded for one symbol, agent by agent (agents without a result omitted)."""

    def of(output: Any) -> Any:
        return None if output is None else output.symbols.get(symbol)

    return SymbolRecord(symbol, market_data=of(run.market_data), regime=of(run.regime),
                        statistics=of(run.statistics), ml_signal=of(run.ml_signal), decision=of(run.decision),
                        risk_gate=of(run.risk_gate), execution=of(run.execution))


def _template(run: RunState) -> str:
    ran = [a for a in run.agents_ran if a != "reporting"]
    text = f"Run over {', '.join(run.request.symbols)} with agents {', '.join(ran)}."
    if run.errors:
        text += f" {len(run.errors)} result(s) could not be produced; see errors."
    return text


def make(ctx: AppContext):
    def reporting(state: Mapping[str, Any]) -> NodeUpdate:
        run = RunState(state)
        symbols = run.request.symbols
        report = RunReport(run.run_id, run.thread_id, run.request, (*run.agents_ran, "reporting"),
                           {s: symbol_record(run, s) for s in symbols}, run.errors)
        facts = {"symbols": list(symbols), "agents_ran": list(report.agents_ran), "errors": len(report.errors)}
        narrative = narrate(ctx, run, "reporting", None, facts, _template(run))
        path = run.request.report
        if not path:
            return NodeUpdate(report, {"_run": narrative})
        # The PDF service reads the state's JSON; with this node's own output merged as the
        # reducers will merge it.
        narratives = {**state.get("narratives", {}), "reporting": {"_run": narrative.to_state()}}
        pdf, errors = _render(ctx, {**state, "report": report.to_state(), "narratives": narratives}, path,
                              run.request.report_backtest)
        return NodeUpdate(replace(report, pdf=pdf), {"_run": narrative}, errors or None)

    return reporting


def _render(
    ctx: AppContext, state: Mapping[str, Any], path: str, backtest: bool
) -> tuple[PdfWritten | PdfFailed, tuple[AgentError, ...]]:
    """Render the PDF; a failure is recorded in the run, never lost and never half-written."""
    from agents.services.report import write_report

    try:
        out = write_report(ctx, state, path, backtest=backtest, status=ctx.status)
    except Exception as exc:  # the run's results stand even if the PDF cannot be written
        log.debug("report rendering failed", exc_info=True)
        # An OS error names the writer's temporary file, not the user's path: keep its reason only.
        err = (f"cannot write ({exc.strerror})" if isinstance(exc, OSError) and exc.strerror
               else f"{type(exc).__name__}: {exc}")
        return PdfFailed(path, err), (AgentError("reporting", None, err),)
    return PdfWritten(str(out.path), out.pages, out.figures, out.bytes, out.format), ()
