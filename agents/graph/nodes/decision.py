"""decision node: the deterministic policy maps regime, signal and volatility to a target weight.

The same ``analytics.target_weights`` drives ``regimedesk backtest``; the policy's
parameters are the ones chosen walk-forward when the symbol's model was trained (stored in
its metadata). Missing inputs give no decision, never a guess.
"""

from __future__ import annotations

from typing import Any

from agents.graph.nodes._common import narrate
from agents.services.context import AppContext
from agents.services.ml import decide
from analytics import PolicyParams, RegimeDeskError

__all__ = ["make", "decide_symbol", "decision_template"]


def decide_symbol(
    policy: str, regime: dict[str, Any] | None, signal: dict[str, Any] | None, max_weight: float = 1.0
) -> dict[str, Any]:
    """Target weight of one symbol from the regime and ml_signal agents' results (capped at ``max_weight``)."""
    family = None
    if regime and "error" not in regime:
        family = regime["consensus"]["family"]
    p_up = vol = None
    params = None
    version = None
    if signal and "error" not in signal:
        p_up, vol, version = signal["p_up"], signal["vol_forecast"], signal["model_version"]
        params = PolicyParams(**signal["policy_params"][policy])
    inputs = {"regime_family": family, "p_up": p_up, "vol_forecast": vol}
    out: dict[str, Any] = {"policy": policy, "inputs": inputs, "model_version": version}
    if params is None:
        out.update(target_weight=None, params=None,
                   reason="no trained model, so no walk-forward-validated policy parameters")
        return out
    w = decide(policy, params, family, p_up, vol)
    w = None if w is None else min(w, max_weight)
    out["params"] = params.to_dict()
    out["target_weight"] = w
    if w is None:
        missing = [k for k, v in inputs.items() if v is None]
        out["reason"] = f"missing input(s): {', '.join(missing) or 'none'}"
    else:
        out["reason"] = None
    return out


def decision_template(symbol: str, d: dict[str, Any]) -> str:
    """Deterministic prose for one symbol's decision."""
    if d["target_weight"] is None:
        return f"{symbol}: no target weight ({d['reason']})."
    i = d["inputs"]
    fam = (i["regime_family"] or "unavailable").replace("_", "-")
    text = f"{symbol}: {d['policy']} policy target weight {d['target_weight']:.2f} with a {fam} regime"
    if i["p_up"] is not None:
        text += f", P(up) {i['p_up']:.2f}"
    if d["params"]["target_vol"] > 0 and i["vol_forecast"] is not None:
        text += f", volatility forecast {i['vol_forecast']:.2f} against a target of {d['params']['target_vol']:.2f}"
    text += "."
    if "orders" in d:
        text += " Proposed: " + (", ".join(f"{o['side']} {o['qty']:g}" for o in d["orders"]) or "no order") + "."
    return text


def _orders(ctx: AppContext, state: dict[str, Any], symbols: dict[str, Any]) -> dict[str, Any] | None:
    """Proposed orders from the broker's portfolio to the targets (None without a broker)."""
    from agents.services.risk import portfolio_of, propose_orders

    broker = ctx.broker(state["request"])
    if broker is None:
        return None
    store = ctx.bars(state["request"])
    prices, bar_times, conf = {}, {}, {}
    for sym in symbols:
        try:
            frame = store.get(sym, "MT").frame
        except RegimeDeskError:
            continue
        prices[sym] = float(frame["close"].iloc[-1])
        bar_times[sym] = frame.index[-1]
        sig = state.get("ml_signal", {}).get(sym) or {}
        conf[sym] = sig.get("confidence")
    portfolio, equity = portfolio_of(broker, prices)
    targets = {s: d["target_weight"] for s, d in symbols.items() if s in prices}
    orders = propose_orders(ctx.settings.broker.strategy, targets, portfolio, equity, prices, bar_times, conf)
    for sym, d in symbols.items():
        held = portfolio.positions.get(sym, 0.0)
        d["current_weight"] = held * prices[sym] / equity if sym in prices and equity > 0 else None
        d["orders"] = [o.to_dict() for o in orders if o.symbol == sym]
    return {"equity": equity, "cash": portfolio.cash, "positions": dict(portfolio.positions),
            "open_orders": len(portfolio.pending)}


def make(ctx: AppContext):
    def decision(state: dict[str, Any]) -> dict[str, Any]:
        policy = ctx.settings.decision.policy
        symbols: dict[str, Any] = {}
        narratives: dict[str, Any] = {}
        for symbol in state["request"]["symbols"]:
            symbols[symbol] = decide_symbol(policy, state.get("regime", {}).get(symbol),
                                            state.get("ml_signal", {}).get(symbol), ctx.settings.decision.max_weight)
        portfolio = _orders(ctx, state, symbols)
        for symbol, d in symbols.items():
            if ctx.journal is not None and state.get("run_id"):
                ctx.journal.record_decision(state["run_id"], symbol, d)
            facts = {
                "symbol": symbol,
                "policy": policy,
                "target_weight": None if d["target_weight"] is None else round(d["target_weight"], 2),
                "regime_family": d["inputs"]["regime_family"],
                "p_up": None if d["inputs"]["p_up"] is None else round(d["inputs"]["p_up"], 2),
                "vol_forecast": None if d["inputs"]["vol_forecast"] is None else round(d["inputs"]["vol_forecast"], 2),
                "target_vol": None if d["params"] is None else d["params"]["target_vol"],
                "reason": d["reason"],
                "orders": [f"{o['side']} {o['qty']:g}" for o in d.get("orders", [])],
            }
            narratives[symbol] = narrate(ctx, state, "decision", symbol, facts, decision_template(symbol, d))
        out = {"policy": policy, "symbols": symbols, "portfolio": portfolio}
        return {"decision": out, "narratives": {"decision": narratives}}

    return decision
