"""market_data node: load and validate bars per symbol and timeframe (bars stay out of state)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agents.config import TIMEFRAME_NAMES
from agents.graph.schema import (
    MarketData,
    NodeUpdate,
    RunState,
    TimeframeBars,
    TimeframeData,
    TimeframeUnavailable,
    Validation,
)
from agents.services.context import AppContext
from analytics import RegimeDeskError

__all__ = ["make"]


def make(ctx: AppContext):
    def market_data(state: Mapping[str, Any]) -> NodeUpdate:
        run = RunState(state)
        store = ctx.bars(run.request_doc)
        out: dict[str, dict[str, TimeframeData]] = {}
        for symbol in run.request.symbols:
            per_tf: dict[str, TimeframeData] = {}
            for tf in TIMEFRAME_NAMES:
                bar = store.bar_of(tf)
                try:
                    bars = store.get(symbol, tf)
                except RegimeDeskError as exc:
                    per_tf[tf] = TimeframeUnavailable(bar, str(exc))
                    continue
                s = bars.summary()
                per_tf[tf] = TimeframeBars(bar, s["bars"], s["first"], s["last"], float(bars.frame["close"].iloc[-1]),
                                           Validation.from_state(s["validation"]), s["source"])
            out[symbol] = per_tf
        return NodeUpdate(MarketData(out))

    return market_data
