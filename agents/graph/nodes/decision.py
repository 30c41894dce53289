"""decision node: the deterministic policy maps regime, signal and volatility to a target weight.

The same ``analytics.target_weights`` drives ``regimedesk backtest``; the policy's
parameters are the ones chosen walk-forward when the symbol's model was trained (stored in
its metadata). Missing inputs give no decision, never a guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from agents.graph.nodes._common import narrate
from agents.graph.schema import (
    AgentNarrative,
    Decision,
    DecisionInputs,
    MlSignal,
    NodeUpdate,
    PortfolioSnapshot,
    RegimeReport,
    RunState,
    SymbolDecision,
    SymbolError,
)
from agents.services.context import AppContext
from agents.services.ml import decide
from agents.services.risk import portfolio_of, propose_orders, run_book
from analytics import RegimeDeskError

__all__ = ["make", "decide_symbol", "decision_template"]


def decide_symbol(
    policy: str,
    regime: RegimeReport | SymbolError | None,
    signal: MlSignal | SymbolError | None,
    max_weight: float = 1.0,
) -> SymbolDecision:
    """Target weight of one symbol from the regime and ml_signal agents' results (capped at ``max_weight``)."""
    family = regime.consensus_family if isinstance(regime, RegimeReport) else None
    p_up = vol = version = params = None
    if isinstance(signal, MlSignal):
        p_up, vol, version = signal.p_up, signal.vol_forecast, signal.model_version
        params = signal.policy_params(policy)
    inputs = DecisionInputs(family, p_up, vol)
    if params is None:
        return SymbolDecision(policy, inputs, version, None, None,
                              "no trained model, so no walk-forward-validated policy parameters")
    w = decide(policy, params, family, p_up, vol)
    w = None if w is None else min(w, max_weight)
    reason = None
    if w is None:
        missing = [k for k, v in inputs.to_state().items() if v is None]
        reason = f"missing input(s): {', '.join(missing) or 'none'}"
    return SymbolDecision(policy, inputs, version, params, w, reason)


def decision_template(symbol: str, d: Mapping[str, Any]) -> str:
    """Deterministic prose for one symbol's decision, from its JSON (:meth:`SymbolDecision.to_state`)."""
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


def _orders(
    ctx: AppContext, run: RunState, symbols: dict[str, SymbolDecision]
) -> tuple[PortfolioSnapshot | None, dict[str, SymbolDecision]]:
    """Proposed orders from the broker's portfolio to the targets (none without a broker, and
    none when the run has a portfolio method: the portfolio agent proposes them then)."""
    book = run_book(ctx, run.request_doc, run.run_id)  # fetched once; the gate reads the same book
    if book is None:
        return None, symbols
    store = ctx.bars(run.request_doc)
    prices, bar_times, conf = {}, {}, {}
    for sym in symbols:
        try:
            frame = store.get(sym, "MT").frame
        except RegimeDeskError:
            continue
        prices[sym] = float(frame["close"].iloc[-1])
        bar_times[sym] = frame.index[-1]
        sig = run.signal_of(sym)
        conf[sym] = sig.confidence if isinstance(sig, MlSignal) else None
    portfolio, equity = portfolio_of(book, prices)
    targets = {s: d.target_weight for s, d in symbols.items() if s in prices}
    # With a portfolio method the portfolio agent proposes the orders (from its own targets).
    orders = (propose_orders(ctx.settings.broker.strategy, targets, portfolio, equity, prices, bar_times, conf)
              if run.request.portfolio == "none" else [])
    proposed = {}
    for sym, d in symbols.items():
        held = portfolio.positions.get(sym, 0.0)
        current = held * prices[sym] / equity if sym in prices and equity > 0 else None
        proposed[sym] = replace(d, current_weight=current, orders=tuple(o for o in orders if o.symbol == sym))
    snapshot = PortfolioSnapshot(equity, portfolio.cash, dict(portfolio.positions), len(portfolio.pending))
    return snapshot, proposed


def make(ctx: AppContext):
    def decision(state: Mapping[str, Any]) -> NodeUpdate:
        run = RunState(state)
        policy = ctx.settings.decision.policy
        symbols = {symbol: decide_symbol(policy, run.regime_of(symbol), run.signal_of(symbol),
                                         ctx.settings.decision.max_weight)
                   for symbol in run.request.symbols}
        portfolio, symbols = _orders(ctx, run, symbols)
        narratives: dict[str, AgentNarrative] = {}
        for symbol, d in symbols.items():
            doc = d.to_state()
            if ctx.journal is not None and run.run_id:
                ctx.journal.record_decision(run.run_id, symbol, doc)
            facts = {
                "symbol": symbol,
                "policy": policy,
                "target_weight": None if d.target_weight is None else round(d.target_weight, 2),
                "regime_family": d.inputs.regime_family,
                "p_up": None if d.inputs.p_up is None else round(d.inputs.p_up, 2),
                "vol_forecast": None if d.inputs.vol_forecast is None else round(d.inputs.vol_forecast, 2),
                "target_vol": None if d.params is None else d.params.target_vol,
                "reason": d.reason,
                "orders": [f"{o.side} {o.qty:g}" for o in d.orders or ()],
            }
            narratives[symbol] = narrate(ctx, run, "decision", symbol, facts, decision_template(symbol, doc))
        return NodeUpdate(Decision(policy, symbols, portfolio), narratives)

    return decision
