"""The plain-text summary of a finished (or waiting) run, for every front door.

Two forms of one summary: :func:`run_summary_text` (``regimedesk run`` prints it, the
scheduler delivers it with a run job) and :func:`run_brief_lines` (the Telegram bot's reply,
short enough for a phone). The PDF report's executive summary is built from the same
narratives. It lives below the front doors so that runtimes (the scheduler) and the bot use
it without importing a command-line module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agents.services.format import format_value

__all__ = ["run_summary_text", "run_brief_lines", "symbol_line", "order_line"]


def run_summary_text(outcome) -> str:
    """A readable per-symbol summary of a run's state (what ``run`` prints)."""
    lines: list[str] = []
    add = lines.append
    state = outcome.state
    add(f"run {outcome.run_id}  thread {outcome.thread_id}  status {outcome.status}")
    add(f"agents ran: {', '.join(state.get('agents_ran', []))}")
    narratives = state.get("narratives", {})
    for symbol in state.get("request", {}).get("symbols", []):
        add(f"\n== {symbol} ==")
        md = state.get("market_data", {}).get(symbol, {})
        mt = md.get("MT", {})
        if mt.get("available"):
            add(f"data: {mt['bars']} daily bars to {mt['last'][:10]}, last close {mt['last_close']:,.2f}")
        for agent in ("regime", "statistics", "ml_signal", "decision"):
            text = narratives.get(agent, {}).get(symbol)
            if text:
                flag = "" if text["accepted"] else f" [LLM text rejected: {text['fallback_reason']}]"
                add(f"{agent}: {text['text']}{flag}")
        for err in state.get("errors", []):
            if err.get("symbol") == symbol:
                add(f"! {err['agent']}: {err['error']}")
    for agent in ("portfolio", "risk_gate", "execution"):
        text = narratives.get(agent, {}).get("_run")
        if text:
            add(f"\n{agent}: {text['text']}")
    note = state.get("execution", {}).get("note")
    if note:
        add(f"\nexecution: {note}")
    run_text = narratives.get("reporting", {}).get("_run")
    if run_text:
        add(f"\nsummary: {run_text['text']}")
    if outcome.status == "interrupted":
        add(f"\nwaiting for approval: regimedesk approve {outcome.thread_id}  |  regimedesk reject {outcome.thread_id}")
    pdf = state.get("report", {}).get("pdf")
    if pdf:
        if pdf.get("error"):
            add(f"\nreport: NOT written to {pdf['path']}: {pdf['error']}")
        else:
            kind = ("HTML page, {figures} interactive charts" if pdf.get("format") == "html"
                    else "{pages} pages, {figures} charts")
            add(f"\nreport: {pdf['path']} ({kind.format(**pdf)})")
    return "\n".join(lines)


def order_line(verdict: Mapping[str, Any]) -> str:
    """One proposed order and the gate's verdict on it, indented under its symbol."""
    order = verdict.get("order", {})
    ref = order.get("reference_price")
    price = f" @~{ref:,.2f}" if isinstance(ref, (int, float)) else ""
    qty = verdict.get("qty", order.get("qty"))
    action = verdict.get("action", "?")
    text = f"  {str(order.get('side', '?')).upper()} {order.get('qty', 0):g}{price}: gate {action}"
    if action == "trim":
        text += f" to {qty:g}"
    if verdict.get("reasons"):
        text += f" ({', '.join(verdict['reasons'])})"
    return text


def symbol_line(state: Mapping[str, Any], symbol: str) -> str:
    """One symbol's regime consensus, P(up) and target weight on one line."""
    parts = [symbol + ":"]
    reg = state.get("regime", {}).get(symbol, {})
    cons = reg.get("consensus") if isinstance(reg, dict) else None
    if cons and cons.get("label"):
        parts.append(f"{cons['label']} ({cons.get('family')}, p {format_value(cons.get('probability'))})")
    sig = state.get("ml_signal", {}).get(symbol, {})
    if isinstance(sig, dict) and sig.get("p_up") is not None:
        parts.append(f"P(up) {sig['p_up']:.2f}")
    dec = state.get("decision", {}).get("symbols", {}).get(symbol, {})
    if isinstance(dec, dict) and dec.get("target_weight") is not None:
        parts.append(f"target {dec['target_weight']:.0%} (now {dec.get('current_weight') or 0:.0%})")
    return " ".join(parts)


def run_brief_lines(outcome) -> list[str]:
    """The short form of the summary, for a phone screen (the bot's replies), one line each.

    Per symbol the regime consensus, P(up) and target weight, each proposed order with the
    gate's verdict and what the broker did with it, the trading state and any errors.
    """
    state = outcome.state
    request = state.get("request", {})
    broker = request.get("broker", "none")
    lines = [f"Run {outcome.run_id}: {outcome.status} (broker {broker})"]
    gate = state.get("risk_gate", {})
    sent = {o.get("client_order_id"): o for os_ in state.get("execution", {}).get("symbols", {}).values() for o in os_}
    for symbol in request.get("symbols", []):
        lines.append(symbol_line(state, symbol))
        for v in gate.get("symbols", {}).get(symbol, []):
            line = order_line(v)
            done = sent.get(v.get("order", {}).get("client_order_id"))
            if done:
                px = done.get("avg_fill_price")
                line += f" -> {done.get('status')}" + (f" {done.get('filled_qty', 0):g} @ {px:,.2f}" if px else "")
            lines.append(line)
    if gate.get("trading_state"):
        lines.append(f"Trading state {gate['trading_state']}" + (f": {gate['reason']}" if gate.get("reason") else ""))
    for event in gate.get("events", []):
        lines.append(f"Circuit breaker: {event}")
    note = state.get("execution", {}).get("note")
    if note:
        lines.append(f"Execution: {note}")
    approval = state.get("approval")
    if approval:
        lines.append(f"{'Approved' if approval.get('approved') else 'Rejected'} by {approval.get('by')}")
    for err in state.get("errors", [])[:3]:
        lines.append(f"! {err.get('agent')} {err.get('symbol', '')}: {str(err.get('error'))[:120]}")
    pdf = state.get("report", {}).get("pdf")
    if pdf and pdf.get("error"):
        lines.append(f"Report NOT written: {pdf['error'][:200]}")
    lines.append(f"Thread {outcome.thread_id}")
    return lines
