"""ml_signal node: P(up) from the symbol's walk-forward-validated XGBoost model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agents.graph.nodes._common import per_symbol
from agents.graph.schema import MlSignal, MlSignalOutput, NodeUpdate, RunState
from agents.services.analysis import run_signal
from agents.services.context import AppContext
from agents.services.progress import status_progress
from analytics import RegimeDeskError

__all__ = ["make", "ml_facts", "ml_template"]


def ml_facts(sig: Mapping[str, Any]) -> dict[str, Any]:
    """Compact facts for the narrator from a signal's JSON, rounded as they are shown."""
    oos = sig["out_of_sample"]
    return {
        "symbol": sig["symbol"],
        "horizon_bars": sig["horizon_bars"],
        "p_up": round(sig["p_up"], 2),
        "direction": sig["direction"],
        "confidence": round(sig["confidence"], 2),
        "model_version": sig["model_version"],
        "out_of_sample": {
            "predictions": oos["n"],
            "auc": round(oos["auc"], 3),
            "brier": round(oos["brier"], 3),
            "brier_base_rate_forecast": round(oos["brier_climatology"], 3),
            "accuracy": round(oos["accuracy"], 2),
        },
        "top_features": list(sig["top_contributions"])[:3],
    }


def ml_template(f: dict[str, Any]) -> str:
    """Deterministic prose from :func:`ml_facts`."""
    o = f["out_of_sample"]
    skill = "better than" if o["brier"] < o["brier_base_rate_forecast"] else "no better than"
    return (
        f"{f['symbol']}: P(up over {f['horizon_bars']} bars) {f['p_up']:.2f} ({f['direction']}, confidence "
        f"{f['confidence']:.2f}) from model {f['model_version']}. Out of sample over {o['predictions']} "
        f"predictions: AUC {o['auc']:.3f}, Brier {o['brier']:.3f}, {skill} always forecasting the base rate "
        f"({o['brier_base_rate_forecast']:.3f}). Largest contributions: {', '.join(f['top_features'])}."
    )


def make(ctx: AppContext):
    def ml_signal(state: Mapping[str, Any]) -> NodeUpdate:
        run = RunState(state)
        results, narratives, errors = per_symbol(
            ctx, run, "ml_signal",
            lambda symbol: MlSignal(run_signal(ctx, run.request_doc, symbol,
                                               progress=status_progress(ctx.status, f"ml_signal {symbol}"))),
            ml_facts, ml_template, (RegimeDeskError, ValueError),
        )
        return NodeUpdate(MlSignalOutput(results), narratives, errors)

    return ml_signal
