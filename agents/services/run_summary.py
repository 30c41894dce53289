"""The plain-text summary of a finished (or waiting) run: one text for every front door.

``regimedesk run`` prints it, the scheduler delivers it with a run job, and it is what a
person reads first about a run. It lives below the command line so that runtimes (the
scheduler) use it without importing a command-line module.
"""

from __future__ import annotations

__all__ = ["run_summary_text"]


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
    for agent in ("risk_gate", "execution"):
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
            add(f"\nreport: {pdf['path']} ({pdf['pages']} pages, {pdf['figures']} charts)")
    return "\n".join(lines)
