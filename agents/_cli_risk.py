"""``regimedesk risk``, ``positions`` and ``orders``: the gate's state and the broker's book."""

from __future__ import annotations

import argparse
import sys

from agents._cli_stats import bar_store
from agents._output import print_fields, print_json, print_table
from agents.runtime import AppContext

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    risk = sub.add_parser(
        "risk",
        help="risk state (kill switch) and VaR backtests",
        description=(
            "The risk gate's persisted trading state: ACTIVE (normal), REDUCING (only orders "
            "that shrink a position pass) or HALTED (nothing but cancels passes). Circuit "
            "breakers move it to REDUCING or HALTED by themselves; only a person moves it back "
            "with 'resume'. 'var' backtests one-day VaR forecasts of a symbol."
        ),
    )
    rsub = risk.add_subparsers(dest="risk_command", required=True, metavar="COMMAND")
    st = rsub.add_parser("status", help="trading state, why, and recent changes")
    st.add_argument("--json", action="store_true", help="print JSON")
    st.set_defaults(handler=_status)
    for name, to, text in (("halt", "HALTED", "reject every new order (kill switch)"),
                           ("reduce", "REDUCING", "let only exposure-reducing orders through"),
                           ("resume", "ACTIVE", "back to normal trading")):
        p = rsub.add_parser(name, help=text, description=f"Set the trading state to {to}: {text}.")
        p.add_argument("--reason", default=f"set by hand ({name})", help="why (kept in the history)")
        p.set_defaults(handler=_set_state, to=to)
    var = rsub.add_parser(
        "var",
        help="backtest 1-day VaR forecasts (Kupiec, Christoffersen, Basel zone)",
        description=(
            "Rolling one-day VaR and expected shortfall of a symbol's daily returns, each "
            "forecast from the trailing window before its day only; exceedances, the Kupiec "
            "proportion-of-failures test, the Christoffersen independence and conditional "
            "coverage tests, and the Basel traffic-light zone of the last 250 days."
        ),
    )
    var.add_argument("symbol", help="ticker, or SP500 / NASDAQ for the builtin source")
    var.add_argument("--backtest", action="store_true", help="run the backtest (the only mode so far)")
    var.add_argument("--source", help="market-data source (default: data.source)")
    var.add_argument("--as-of", dest="as_of", help="use only data available at the end of this date")
    var.add_argument("--level", type=float, default=None, help="confidence level (default: risk.var_level)")
    var.add_argument("--method", choices=("historical", "filtered"), help="default: risk.var_method")
    var.add_argument("--window", type=int, default=500, help="trailing window in days (default 500)")
    var.add_argument("--json", action="store_true", help="print JSON")
    var.set_defaults(handler=_var)

    for name, helptext in (("positions", "positions, cash and equity at the broker"),
                           ("orders", "orders at the broker (open ones by default)")):
        p = sub.add_parser(name, help=helptext, description=helptext[0].upper() + helptext[1:] + ".")
        p.add_argument("--broker", choices=("paper", "alpaca"), default="paper", help="default paper")
        p.add_argument("--json", action="store_true", help="print JSON")
        if name == "orders":
            p.add_argument("--all", action="store_true", help="every order, not only open ones")
        p.set_defaults(handler=_positions if name == "positions" else _orders)


def _app(ctx) -> AppContext:
    return AppContext(ctx.settings, ctx.secrets)


def _status(args: argparse.Namespace, ctx) -> int:
    app = _app(ctx)
    try:
        store = app.risk_store()
        st = store.load()
        doc = {"trading_state": st.trading_state, "reason": st.reason, "day": st.day,
               "day_start_equity": st.day_start_equity, "peak_equity": st.peak_equity,
               "recent_orders": len(st.recent), "silent_feeds": store.silent_feeds(), "history": store.events()}
    finally:
        app.close()
    if args.json:
        print_json(doc)
        return 0
    print_fields("risk state", [("trading state", doc["trading_state"]), ("reason", doc["reason"] or "-"),
                                ("day", doc["day"] or "-"), ("peak equity", doc["peak_equity"] or "-"),
                                ("recent approved orders", doc["recent_orders"]),
                                ("silent live feeds", ", ".join(f"{s} since {v['since'][:19]} ({v['by']})" for s, v
                                                                in doc["silent_feeds"].items()) or "none")])
    if doc["history"]:
        print("history (newest first)")
        print_table(["when", "from", "to", "by", "why"],
                    [(e["ts"][:19], e["from"], e["to"], e["by"], e["reason"]) for e in doc["history"]])
    return 0


def _set_state(args: argparse.Namespace, ctx) -> int:
    app = _app(ctx)
    try:
        st = app.risk_store().set_trading_state(args.to, args.reason, by="cli")
    finally:
        app.close()
    print(f"trading state {st.trading_state}: {st.reason}")
    return 0


def _var(args: argparse.Namespace, ctx) -> int:
    from agents._risk import symbol_var_backtest

    if not args.backtest:
        raise ValueError("give --backtest (the only mode so far)")
    level = args.level if args.level is not None else ctx.settings.risk.var_level
    if not 0.5 < level < 1:
        raise ValueError("--level must be between 0.5 and 1")
    if args.window < 100:
        raise ValueError("--window must be >= 100")
    method = args.method or ctx.settings.risk.var_method
    store, symbol = bar_store(args, ctx)
    sys.stderr.write(f"backtesting {method} VaR {level:.0%} on {symbol} (daily returns)...\n")
    _, res = symbol_var_backtest(store, symbol, level=level, method=method, window=args.window)
    doc = {"symbol": symbol, "method": method, "level": level, "window": args.window, **res.to_dict()}
    if args.json:
        print_json(doc)
        return 0
    _print_var(doc)
    return 0


def _print_var(d: dict) -> None:
    k, c = d["kupiec"], d["christoffersen"]
    print(f"{d['symbol']} {d['method']} VaR {d['level']:.0%}, window {d['window']} days: "
          f"{d['n']} forecasts, {d['n_exceptions']} exceedances (expected {d['expected']:.1f})")
    print_table(["test", "statistic", "p-value"], [
        ("Kupiec POF", f"{k['lr']:.3f}", f"{k['pvalue']:.3f}"),
        ("Christoffersen independence", f"{c['lr_ind']:.3f}", f"{c['pvalue_ind']:.3f}"),
        ("Christoffersen conditional coverage", f"{c['lr_cc']:.3f}", f"{c['pvalue_cc']:.3f}"),
    ])
    print(f"Basel traffic light (last 250 days): {d['basel_zone']} ({d['basel_exceptions']} exceptions)")


def _with_broker(ctx, name: str):
    app = _app(ctx)
    return app, app.broker({"broker": name})


def _positions(args: argparse.Namespace, ctx) -> int:
    app, broker = _with_broker(ctx, args.broker)
    try:
        acct = broker.account()
        pos = broker.positions()
    finally:
        app.close()
    doc = {"broker": args.broker, "account": acct.to_dict(), "positions": [p.to_dict() for p in pos.values()]}
    if args.json:
        print_json(doc)
        return 0
    print(f"{args.broker}: equity {acct.equity:,.2f}  cash {acct.cash:,.2f}  buying power {acct.buying_power:,.2f}")
    if not pos:
        print("no positions")
        return 0
    print_table(["symbol", "qty", "avg price", "last price"],
                [(p.symbol, f"{p.qty:g}", f"{p.avg_price:,.2f}",
                  "-" if p.market_price is None else f"{p.market_price:,.2f}") for p in pos.values()])
    return 0


def _orders(args: argparse.Namespace, ctx) -> int:
    app, broker = _with_broker(ctx, args.broker)
    try:
        if args.all:
            if not hasattr(broker, "orders"):
                raise ValueError(f"--all is not available for {args.broker}")
            orders = broker.orders()
        else:
            orders = broker.open_orders()
    finally:
        app.close()
    if args.json:
        print_json({"broker": args.broker, "orders": [o.to_dict() for o in orders]})
        return 0
    if not orders:
        print("no orders" if args.all else "no open orders")
        return 0
    print_table(["client order id", "symbol", "side", "qty", "filled", "avg price", "status", "submitted"],
                [(o.client_order_id, o.symbol, o.side, f"{o.qty:g}", f"{o.filled_qty:g}",
                  "-" if o.avg_fill_price is None else f"{o.avg_fill_price:,.2f}", o.status,
                  (o.submitted_at or "-")[:19]) for o in orders])
    return 0
