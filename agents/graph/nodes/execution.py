"""execution node: approved orders, and only those, to the run's broker.

Before anything new is sent, orders journaled as ``submitting`` by an earlier, interrupted
run are reconciled with the broker by client order id. Then the gate runs again on the
approved orders against the state of this moment (trading state, silent feeds, staleness,
portfolio, the approval's age): a halt, a reducing state, a silent feed or an approval given
too late since the gate ran stops an order (its verdict is journaled with ``stage``
``execution``); the check can only shrink or reject, never grant more. Each order is
journaled before it is sent; brokers treat a client order id they already know as the same
order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from agents.graph.nodes._common import narrate
from agents.graph.schema import Execution, NodeUpdate, RejectedOrder, RunState, SentOrder
from agents.services.context import AppContext
from agents.services.risk import (
    journal_status,
    market_snapshot,
    portfolio_of,
    recheck_approved,
    reconcile,
    risk_limits,
    run_clock,
    submit_approved,
)
from analytics import RegimeDeskError, is_close_only

__all__ = ["make", "execution_template"]


def execution_template(out: Execution) -> str:
    """Deterministic prose for what was sent."""
    sent = [o for os_ in out.symbols.values() for o in os_]
    if not sent:
        text = "No order was sent."
    else:
        text = "Sent " + ", ".join(f"{o.side} {o.qty:g} {o.symbol} ({o.status})" for o in sent) + "."
    if out.rejected:
        text += " Not sent, stopped by the check at sending: " + ", ".join(
            f"{r.order.side} {r.order.qty:g} {r.order.symbol} ({', '.join(r.reasons)})"
            for r in out.rejected) + "."
    if out.reconciled:
        text += f" Reconciled {len(out.reconciled)} order(s) left by an interrupted run."
    return text


def _recheck(ctx: AppContext, run: RunState, broker, bars, approved) -> tuple:
    """The gate's verdicts again, against the risk state, silent feeds, bars and portfolio of
    this moment (see :func:`agents.services.risk.recheck_approved`)."""
    if not approved:
        return ()
    symbols = run.request.symbols
    limits = risk_limits(ctx.settings)
    store = ctx.risk_store()
    market = market_snapshot(bars, symbols, run_clock(bars, run.request_doc),
                             run.mt_regime_labels(symbols), feed_silent=store.silent_feeds(),
                             check_market_open=limits.require_market_open)
    portfolio, _ = portfolio_of(broker, market.prices)
    return recheck_approved(store, approved, portfolio, market, limits,
                            checked_at=None if run.risk_gate is None else run.risk_gate.checked_at,
                            now=pd.Timestamp.now(tz="UTC"),
                            max_age_seconds=ctx.settings.risk.max_approval_age_seconds)


def make(ctx: AppContext):
    def execution(state: Mapping[str, Any]) -> NodeUpdate:
        run = RunState(state)
        request = run.request
        broker = ctx.broker(run.request_doc)
        if broker is None:
            return NodeUpdate(Execution("none", {}, (), note="no broker: orders are neither proposed nor sent"))
        if run.approval is not None and not run.approval.approved:
            return NodeUpdate(Execution(request.broker, {}, (), note="rejected by a person: nothing sent"))
        run_id = run.run_id
        reconciled = reconcile(broker, ctx.journal, run_id, request.broker)
        bars = ctx.bars(run.request_doc)
        # Paper broker: earlier orders fill at this bar's open; close-only bars have none, so at its
        # close (the backtest of close-only bars trades at the next close too).
        if hasattr(broker, "process_bar"):
            for sym in request.symbols:
                try:
                    frame = bars.get(sym, "MT").frame
                except RegimeDeskError:
                    continue
                fill = frame["close" if is_close_only(frame) else "open"].iloc[-1]
                for status in broker.process_bar(sym, frame.index[-1].isoformat(), float(fill)):
                    journal_status(ctx.journal, run_id, request.broker, status)
        gate = run.risk_gate
        approved = [(v.order, float(v.qty))
                    for verdicts in (gate.symbols.values() if gate is not None else ()) for v in verdicts
                    if v.action in ("approve", "trim") and v.qty > 0 and v.order.side != "cancel"]
        # An order already journaled went out before a crash (reconciled above): sending it again
        # under its id is a no-op at the broker. Every other one is checked again, now.
        journaled = set(ctx.journal.latest_orders(request.broker))
        fresh = [(o, q) for o, q in approved if o.client_order_id not in journaled]
        final = {id(o): q for o, q in approved}
        rejected: list[RejectedOrder] = []
        for verdict, (o, _) in zip(_recheck(ctx, run, broker, bars, fresh), fresh, strict=True):
            final[id(o)] = verdict.qty
            ctx.journal.record_verdict(run_id, o.symbol, o.client_order_id, verdict.action, list(verdict.reasons),
                                       {**verdict.order.to_dict(), "approved_qty": verdict.qty,
                                        "stage": "execution"})
            if verdict.qty <= 0:
                rejected.append(RejectedOrder(verdict.order, tuple(verdict.reasons)))
        sent: dict[str, list[SentOrder]] = {}
        for order, _ in approved:
            qty = final[id(order)]
            if qty <= 0:
                continue
            bar_time = bars.get(order.symbol, "MT").frame.index[-1].isoformat()
            status = submit_approved(broker, ctx.journal, run_id, request.broker, order, qty, bar_time)
            sent.setdefault(order.symbol, []).append(SentOrder.from_state(status))
        out = Execution(request.broker, {s: tuple(os_) for s, os_ in sent.items()}, tuple(reconciled),
                        tuple(rejected))
        facts = {"sent": sum(len(v) for v in sent.values()), "reconciled": len(reconciled),
                 "rejected": len(rejected)}
        narrative = narrate(ctx, run, "execution", None, facts, execution_template(out))
        return NodeUpdate(out, {"_run": narrative})

    return execution
