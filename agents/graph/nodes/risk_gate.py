"""risk_gate node: every proposed order through ``analytics.risk_gate.evaluate``.

Inputs are numbers only: the proposed orders (the portfolio agent's when it set portfolio
targets, else the decision's), the broker's portfolio, a market
snapshot from the run's bars, the configured limits and the persisted risk state. The
narratives in the state are never read, so no LLM text can change a verdict.

The state is read, evaluated and written back in one SQLite transaction, and the gate can
only tighten the trading state: a person's halt committed meanwhile is never undone. The
wall-clock time of the verdicts (``checked_at``) lets execution refuse a late approval.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pandas as pd

from agents.graph.nodes._common import narrate
from agents.graph.schema import GateVerdicts, NodeUpdate, RunState
from agents.services.context import AppContext
from agents.services.risk import (
    market_snapshot,
    portfolio_of,
    risk_limits,
    run_book,
    run_clock,
)
from analytics.risk_gate import Verdict, evaluate

__all__ = ["make", "gate_template"]


def gate_template(out: GateVerdicts) -> str:
    """Deterministic prose for the gate's result."""
    counts = {"approve": 0, "trim": 0, "reject": 0}
    reasons: set[str] = set()
    for vs in out.symbols.values():
        for v in vs:
            counts[v.action] += 1
            reasons.update(v.reasons)
    text = (f"Trading state {out.trading_state}. {counts['approve']} order(s) approved, {counts['trim']} trimmed, "
            f"{counts['reject']} rejected")
    text += f" (reasons: {', '.join(sorted(reasons))})." if reasons else "."
    if out.events:
        text += " Circuit breaker: " + "; ".join(out.events) + "."
    return text


def make(ctx: AppContext):
    def risk_gate(state: Mapping[str, Any]) -> NodeUpdate:
        run = RunState(state)
        request, symbols = run.request_doc, run.request.symbols
        store_state = ctx.risk_store()
        broker = ctx.broker(request)
        orders = list(run.proposed_orders)  # the portfolio agent's when it set targets, else the decision's
        if broker is None:
            st = store_state.load()
            return NodeUpdate(GateVerdicts(st.trading_state, st.reason, (), {}, note="no broker: nothing to check"))
        bars = ctx.bars(request)
        now = run_clock(bars, request)
        limits = risk_limits(ctx.settings)
        market = market_snapshot(bars, symbols, now, run.mt_regime_labels(symbols),
                                 check_market_open=limits.require_market_open)
        portfolio, _ = portfolio_of(run_book(ctx, request, run.run_id), market.prices)
        silent: dict[str, Any] = {}

        def gate(st):
            # Inside the store's transaction: the silent feeds and the trading state are read,
            # and the new state written, with no other writer in between.
            silent.update(store_state.silent_feeds())
            feed = {s: True for s in silent if s in symbols}
            return evaluate(orders, portfolio, replace(market, feed_silent=feed), limits, st)

        checked_at = pd.Timestamp.now(tz="UTC").isoformat()  # when the verdicts were given (wall clock)
        result = store_state.commit_gate(gate)
        per_symbol: dict[str, list[Verdict]] = {s: [] for s in symbols}
        for v in result.verdicts:
            per_symbol.setdefault(v.order.symbol, []).append(v)
            if ctx.journal is not None and run.run_id:
                ctx.journal.record_verdict(run.run_id, v.order.symbol, v.order.client_order_id, v.action,
                                           list(v.reasons), {**v.order.to_dict(), "approved_qty": v.qty})
        out = GateVerdicts(result.state.trading_state, result.state.reason, tuple(result.events),
                           {s: tuple(vs) for s, vs in per_symbol.items()}, now=now.isoformat(),
                           checked_at=checked_at, silent_feeds=tuple(sorted(s for s in silent if s in symbols)))
        facts = {"trading_state": out.trading_state, "events": list(out.events),
                 "verdicts": {s: [v.action for v in vs] for s, vs in out.symbols.items()}}
        narrative = narrate(ctx, run, "risk_gate", None, facts, gate_template(out))
        return NodeUpdate(out, {"_run": narrative})

    return risk_gate
