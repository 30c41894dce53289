"""execution node: approved orders, and only those, to the run's broker.

Before anything new is sent, orders journaled as ``submitting`` by an earlier, interrupted
run are reconciled with the broker by client order id. Each new order is journaled before
it is sent; brokers treat a client order id they already know as the same order.
"""

from __future__ import annotations

from typing import Any

from agents._risk import journal_status, reconcile, submit_approved
from agents.nodes._common import narrate
from agents.runtime import AppContext
from analytics import RegimeDeskError
from analytics.risk_gate import ProposedOrder

__all__ = ["make", "execution_template"]


def execution_template(out: dict[str, Any]) -> str:
    """Deterministic prose for what was sent."""
    sent = [o for os_ in out["symbols"].values() for o in os_]
    if not sent:
        text = "No order was sent."
    else:
        text = "Sent " + ", ".join(f"{o['side']} {o['qty']:g} {o['symbol']} ({o['status']})" for o in sent) + "."
    if out["reconciled"]:
        text += f" Reconciled {len(out['reconciled'])} order(s) left by an interrupted run."
    return text


def make(ctx: AppContext):
    def execution(state: dict[str, Any]) -> dict[str, Any]:
        request = state["request"]
        broker = ctx.broker(request)
        if broker is None:
            return {"execution": {"broker": "none", "symbols": {}, "reconciled": [],
                                  "note": "no broker: orders are neither proposed nor sent"}}
        if state.get("approval") and not state["approval"].get("approved"):
            return {"execution": {"broker": request["broker"], "symbols": {}, "reconciled": [],
                                  "note": "rejected by a person: nothing sent"}}
        run_id = state["run_id"]
        reconciled = reconcile(broker, ctx.journal, run_id, request["broker"])
        bars = ctx.bars(request)
        if hasattr(broker, "process_bar"):  # paper broker: earlier orders fill at this bar's open
            for sym in request["symbols"]:
                try:
                    frame = bars.get(sym, "MT").frame
                except RegimeDeskError:
                    continue
                for status in broker.process_bar(sym, frame.index[-1].isoformat(), float(frame["open"].iloc[-1])):
                    journal_status(ctx.journal, run_id, request["broker"], status)
        sent: dict[str, list[dict[str, Any]]] = {}
        for sym, verdicts in state.get("risk_gate", {}).get("symbols", {}).items():
            for v in verdicts:
                if v["action"] not in ("approve", "trim") or v["qty"] <= 0 or v["order"]["side"] == "cancel":
                    continue
                order = ProposedOrder(**v["order"])
                bar_time = bars.get(sym, "MT").frame.index[-1].isoformat()
                status = submit_approved(broker, ctx.journal, run_id, request["broker"], order, v["qty"], bar_time)
                sent.setdefault(sym, []).append(status)
        out = {"broker": request["broker"], "symbols": sent, "reconciled": reconciled}
        facts = {"sent": sum(len(v) for v in sent.values()), "reconciled": len(reconciled)}
        narrative = narrate(ctx, state, "execution", None, facts, execution_template(out))
        return {"execution": out, "narratives": {"execution": {"_run": narrative}}}

    return execution
