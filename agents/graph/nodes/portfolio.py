"""portfolio node: per-symbol views become portfolio target weights, and orders to reach them.

With ``request.portfolio`` ``none`` (the default) the node stands aside and the gate checks the
decision's orders, as before. Otherwise :func:`agents.services.allocation.allocate` turns the
symbols' regimes, signals and volatility forecasts into target weights with the chosen method
within the consensus regime's caps; with a broker the book trades to them only when the regime
changed since the last portfolio decision or a weight drifted beyond ``portfolio.band``, and
the orders go to the gate exactly as the decision's would. Anything that prevents targets
(too little common history, a solver failure raised as an error) gives no orders: nothing is
traded on a guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agents.graph.nodes._common import narrate
from agents.graph.schema import (
    AgentError,
    MlSignal,
    NodeUpdate,
    PortfolioTargets,
    RegimeReport,
    RunState,
)
from agents.services.allocation import SymbolView, aligned_returns, allocate
from agents.services.context import AppContext
from agents.services.risk import portfolio_of, propose_orders, run_book
from analytics import RegimeDeskError

__all__ = ["make", "portfolio_template"]


def portfolio_template(out: PortfolioTargets) -> str:
    """Deterministic prose for the portfolio agent's result."""
    if not out.active:
        return "Portfolio method none: each symbol keeps its decision's target weight."
    if out.error is not None:
        return f"Portfolio method {out.method}: no targets ({out.error}); no order is proposed."
    fam = (out.family or "unavailable").replace("_", "-")
    weights = ", ".join(f"{s} {w:.2f}" for s, w in (out.weights or {}).items())
    text = (f"Portfolio method {out.method} with a {fam} consensus (gross cap {out.caps['gross']:.2f}, "
            f"per asset {out.caps['per_asset']:.2f}): targets {weights}; volatility {out.volatility:.2f}.")
    text += f" {out.reason[0].upper()}{out.reason[1:]}."
    if out.orders is not None:
        text += " Proposed: " + (", ".join(f"{o.side} {o.qty:g} {o.symbol}" for o in out.orders) or "no order") + "."
    return text


def _previous_family(ctx: AppContext, run: RunState) -> str | None:
    """The family of the last portfolio decision over the same symbols, method and broker."""
    if ctx.journal is None:
        return None
    req = run.request
    for rec in ctx.journal.latest_agent_outputs("portfolio", exclude_run=run.run_id):
        doc = (rec["output"] or {}).get("portfolio") or {}
        if (doc.get("method") == req.portfolio and doc.get("family") is not None
                and sorted(doc.get("weights") or {}) == sorted(req.symbols)):
            return doc["family"]
    return None


def make(ctx: AppContext):
    def portfolio(state: Mapping[str, Any]) -> NodeUpdate:
        run = RunState(state)
        req = run.request
        if req.portfolio == "none":
            out = PortfolioTargets("none", reason="each symbol keeps its decision's target")
            return NodeUpdate(out, {})
        store = ctx.bars(run.request_doc)
        closes, prices, bar_times, conf, views = {}, {}, {}, {}, {}
        for sym in req.symbols:
            try:
                frame = store.get(sym, "MT").frame
            except RegimeDeskError:
                continue
            closes[sym] = frame["close"]
            prices[sym] = float(frame["close"].iloc[-1])
            bar_times[sym] = frame.index[-1]
            reg, sig = run.regime_of(sym), run.signal_of(sym)
            conf[sym] = sig.confidence if isinstance(sig, MlSignal) else None
            views[sym] = SymbolView(
                family=reg.consensus_family if isinstance(reg, RegimeReport) else None,
                p_up=sig.p_up if isinstance(sig, MlSignal) else None,
                vol_forecast=sig.vol_forecast if isinstance(sig, MlSignal) else None,
            )
        book = run_book(ctx, run.request_doc, run.run_id)
        current = pf = equity = None
        if book is not None:
            pf, equity = portfolio_of(book, prices)
            current = {s: pf.positions.get(s, 0.0) * prices[s] / equity if equity > 0 else 0.0 for s in prices}
        errors: tuple[AgentError, ...] = ()
        try:
            if len(closes) < 2:
                raise RegimeDeskError(f"a portfolio needs at least 2 symbols with bars, got {len(closes)}")
            alloc = allocate(ctx.settings, req.portfolio, aligned_returns(closes, ctx.settings.portfolio.cov_window),
                             views, current=current, previous_family=_previous_family(ctx, run))
        except (RegimeDeskError, ValueError) as exc:
            out = PortfolioTargets(req.portfolio, error=str(exc), orders=None if book is None else ())
            errors = (AgentError.from_exception("portfolio", None, exc),)
        else:
            orders = None
            if book is not None:
                orders = ()
                if alloc.rebalance:
                    orders = tuple(propose_orders(ctx.settings.broker.strategy, alloc.weights, pf, equity, prices,
                                                  bar_times, conf))
            out = PortfolioTargets(
                req.portfolio, alloc.family, alloc.weights, alloc.risk_contributions, alloc.volatility,
                alloc.caps.to_dict(), alloc.rebalance, alloc.reason, orders,
            )
        facts = {
            "method": out.method, "family": out.family, "caps": out.caps, "error": out.error,
            "weights": {s: round(w, 2) for s, w in (out.weights or {}).items()},
            "risk_contributions": {s: round(w, 3) for s, w in (out.risk_contributions or {}).items()},
            "volatility": None if out.volatility is None else round(out.volatility, 2),
            "rebalance": out.rebalance, "reason": out.reason,
            "orders": [f"{o.side} {o.qty:g} {o.symbol}" for o in out.orders or ()],
        }
        narrative = narrate(ctx, run, "portfolio", None, facts, portfolio_template(out))
        return NodeUpdate(out, {"_run": narrative}, errors or None)

    return portfolio
