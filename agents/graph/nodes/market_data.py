"""market_data node: load and validate bars per symbol and timeframe (bars stay out of state)."""

from __future__ import annotations

from typing import Any

from agents.config import TIMEFRAME_NAMES
from agents.services.context import AppContext
from analytics import RegimeDeskError

__all__ = ["make"]


def make(ctx: AppContext):
    def market_data(state: dict[str, Any]) -> dict[str, Any]:
        store = ctx.bars(state["request"])
        out: dict[str, Any] = {}
        for symbol in state["request"]["symbols"]:
            per_tf: dict[str, Any] = {}
            for tf in TIMEFRAME_NAMES:
                bar = store.bar_of(tf)
                try:
                    bars = store.get(symbol, tf)
                except RegimeDeskError as exc:
                    per_tf[tf] = {"bar": bar, "available": False, "reason": str(exc)}
                    continue
                s = bars.summary()
                per_tf[tf] = {
                    "bar": bar,
                    "available": True,
                    "bars": s["bars"],
                    "first": s["first"],
                    "last": s["last"],
                    "last_close": float(bars.frame["close"].iloc[-1]),
                    "validation": s["validation"],
                    "source": s["source"],
                }
            out[symbol] = per_tf
        return {"market_data": out}

    return market_data
