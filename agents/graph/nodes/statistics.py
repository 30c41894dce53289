"""statistics node: Hurst, variance ratio, ADF, autocorrelation and market character per timeframe."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agents.config import TIMEFRAME_NAMES
from agents.graph.nodes._common import narrate
from agents.graph.schema import (
    AgentError,
    AgentNarrative,
    NodeUpdate,
    RunState,
    StatisticsOutput,
    StatisticsReport,
    SymbolError,
)
from agents.services.analysis import run_statistics
from agents.services.context import AppContext
from analytics import RegimeDeskError

__all__ = ["make", "statistics_facts", "statistics_template"]


def statistics_facts(symbol: str, per_tf: Mapping[str, Any]) -> dict[str, Any]:
    """The compact facts the narrator may use, from the per-timeframe JSON (rounded as shown)."""
    facts: dict[str, Any] = {"symbol": symbol}
    for tf, rep in per_tf.items():
        if "error" in rep and len(rep) == 1:
            continue
        entry: dict[str, Any] = {"bars": rep["nobs"], "end": rep["end"][:10]}
        if "stat" in rep.get("adf", {}):
            entry["adf_pvalue"] = round(rep["adf"]["pvalue"], 3)
        if "joint_pvalue" in rep.get("variance_ratio", {}):
            entry["vr_joint_pvalue"] = round(rep["variance_ratio"]["joint_pvalue"], 3)
        if "hurst" in rep.get("hurst", {}):
            h = rep["hurst"]
            entry["hurst"] = round(h["hurst"], 2)
            entry["hurst_ci"] = [round(h["ci_low"], 2), round(h["ci_high"], 2)]
        if "ljung_box_pvalue" in rep.get("autocorrelation", {}):
            entry["ljung_box_pvalue"] = round(rep["autocorrelation"]["ljung_box_pvalue"], 3)
        ch = rep.get("character", {})
        if ch.get("available"):
            entry["character"] = ch["character"]
            entry["character_confidence"] = round(ch["confidence"], 2)
        facts[tf] = entry
    return facts


def statistics_template(symbol: str, facts: dict[str, Any]) -> str:
    """Deterministic prose from :func:`statistics_facts`."""
    parts = []
    for tf in TIMEFRAME_NAMES:
        f = facts.get(tf)
        if not f:
            continue
        head = f.get("character", "character n/a").replace("_", " ")
        bits = []
        if "adf_pvalue" in f:
            bits.append(f"ADF p {f['adf_pvalue']:.3f}")
        if "vr_joint_pvalue" in f:
            bits.append(f"VR p {f['vr_joint_pvalue']:.3f}")
        if "hurst" in f:
            bits.append(f"H {f['hurst']:.2f} [{f['hurst_ci'][0]:.2f}, {f['hurst_ci'][1]:.2f}]")
        if "ljung_box_pvalue" in f:
            bits.append(f"Ljung-Box p {f['ljung_box_pvalue']:.3f}")
        parts.append(f"{tf} {head} ({', '.join(bits)})")
    if not parts:
        return f"{symbol}: no timeframe had enough data for the statistics."
    return f"{symbol}: " + "; ".join(parts) + "."


def make(ctx: AppContext):
    def statistics(state: Mapping[str, Any]) -> NodeUpdate:
        run = RunState(state)
        results: dict[str, dict[str, StatisticsReport | SymbolError]] = {}
        narratives: dict[str, AgentNarrative] = {}
        errors: list[AgentError] = []
        for symbol in run.request.symbols:
            per_tf: dict[str, StatisticsReport | SymbolError] = {}
            for tf in TIMEFRAME_NAMES:
                try:
                    per_tf[tf] = StatisticsReport(run_statistics(ctx, run.request_doc, symbol, tf))
                except RegimeDeskError as exc:
                    per_tf[tf] = SymbolError(str(exc))
            results[symbol] = per_tf
            if all(isinstance(r, SymbolError) for r in per_tf.values()):
                errors.append(AgentError.from_exception("statistics", symbol, RegimeDeskError("no timeframe had data")))
            facts = statistics_facts(symbol, {tf: r.to_state() for tf, r in per_tf.items()})
            narratives[symbol] = narrate(ctx, run, "statistics", symbol, facts, statistics_template(symbol, facts))
        return NodeUpdate(StatisticsOutput(results), narratives, tuple(errors))

    return statistics
