"""regime node: multi-timeframe causal regimes and their consensus, per symbol."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from agents.config import TIMEFRAME_NAMES
from agents.graph.nodes._common import per_symbol
from agents.graph.schema import NodeUpdate, RegimeOutput, RegimeReport, RunState
from agents.services.analysis import prefetch
from agents.services.context import AppContext
from agents.services.regime import regime_report, run_regimes
from analytics import RegimeDeskError

__all__ = ["make", "regime_facts", "regime_template"]


def regime_facts(report: Mapping[str, Any]) -> dict[str, Any]:
    """Compact facts for the narrator from a regime report's JSON, rounded as they are shown."""
    facts: dict[str, Any] = {"symbol": report["symbol"], "method": report["method"]}
    for tf in TIMEFRAME_NAMES:
        r = report["timeframes"][tf]
        if not r["available"]:
            facts[tf] = "unavailable"
            continue
        entry = {"regime": r["label"], "probability": round(r["probability"], 2), "since": r["since"][:10]}
        dur = r.get("expected_duration_bars")
        if dur is not None and math.isfinite(dur):
            entry["expected_duration_bars"] = round(dur)
        facts[tf] = entry
    c = report["consensus"]
    facts["consensus"] = {"family": c["family"], "label": c["label"]}
    if c["agreement"] is not None:
        facts["consensus"]["agreement"] = round(c["agreement"], 2)
    facts["conflicts"] = len(c["conflicts"])
    return facts


def regime_template(facts: dict[str, Any]) -> str:
    """Deterministic prose from :func:`regime_facts`."""
    parts = []
    for tf in TIMEFRAME_NAMES:
        f = facts.get(tf)
        if f is None or f == "unavailable":
            continue
        text = f"{tf} {f['regime'].replace('_', ' ')} (p {f['probability']:.2f}, since {f['since']}"
        if "expected_duration_bars" in f:
            text += f", expected {f['expected_duration_bars']} bars"
        parts.append(text + ")")
    c = facts["consensus"]
    tail = f"consensus {c['label'].replace('_', ' ')} ({c['family'].replace('_', '-')}"
    tail += f", agreement {c['agreement']:.2f})" if "agreement" in c else ")"
    if facts["conflicts"]:
        tail += f" with {facts['conflicts']} timeframe conflict(s)"
    body = "; ".join(parts) if parts else "no timeframe had enough data"
    return f"{facts['symbol']}: {body}; {tail}."


def make(ctx: AppContext):
    def regime(state: Mapping[str, Any]) -> NodeUpdate:
        run = RunState(state)
        prefetch(ctx, run.request_doc)
        results, narratives, errors = per_symbol(
            ctx, run, "regime",
            lambda symbol: RegimeReport(regime_report(run_regimes(ctx, run.request_doc, symbol))),
            regime_facts, regime_template, (RegimeDeskError,),
        )
        return NodeUpdate(RegimeOutput(results), narratives, errors)

    return regime
