"""``regimedesk risk``, ``positions`` and ``orders``: the gate's state and the broker's book."""

from __future__ import annotations

import argparse
import sys

from agents.cli.helptext import examples
from agents.cli.options import bar_store
from agents.cli.output import print_fields, print_json, print_table, print_var_backtest

# Services are imported when a command runs, not at start-up.

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
        epilog=examples("regimedesk risk status", "regimedesk risk halt --reason 'news' --cancel-open",
                        "regimedesk risk var SP500 --backtest"),
    )
    rsub = risk.add_subparsers(dest="risk_command", required=True, metavar="COMMAND")
    st = rsub.add_parser(
        "status",
        help="trading state, why, and recent changes",
        description=(
            "Show the risk gate's persisted state:\n\n"
            "  trading state           ACTIVE, REDUCING or HALTED (see 'regimedesk risk --help')\n"
            "  reason                  why it is in that state (a breaker's message or --reason)\n"
            "  day                     the trading day the daily-loss breaker measures from\n"
            "  peak equity             highest equity seen, for the drawdown breaker\n"
            "  recent approved orders  orders the gate passed lately (order-rate limit)\n"
            "  silent live feeds       feeds with no bar in time; new orders are rejected\n"
            "  checks switched off     gate checks the configuration disables, with the setting\n\n"
            "Then the history of state changes, newest first: when, from, to, by whom, why."
        ),
        epilog=examples("regimedesk risk status", "regimedesk risk status --json"),
    )
    st.add_argument("--json", action="store_true", help="print JSON")
    st.set_defaults(handler=_status)
    for name, to, text in (("halt", "HALTED", "reject every new order (kill switch)"),
                           ("reduce", "REDUCING", "let only exposure-reducing orders through"),
                           ("resume", "ACTIVE", "back to normal trading")):
        description = f"Set the trading state to {to}: {text}."
        if name == "halt":
            description += (" Orders already at the broker and positions stay unless --cancel-open is given "
                            "(then every open order is cancelled too); 'risk flatten' also closes the positions.")
        p = rsub.add_parser(name, help=text, description=description,
                            epilog=examples(f"regimedesk risk {name}",
                                            f"regimedesk risk {name} --reason 'checked the book'",
                                            *(["regimedesk risk halt --cancel-open --broker paper"]
                                              if name == "halt" else [])))
        p.add_argument("--reason", default=f"set by hand ({name})", help="why (kept in the history)")
        if name == "halt":
            p.add_argument("--cancel-open", dest="cancel_open", action="store_true",
                           help="also cancel every open order at the broker (journaled)")
            p.add_argument("--broker", choices=("paper", "alpaca"),
                           help="broker whose orders --cancel-open cancels (default paper)")
        p.set_defaults(handler=_set_state, to=to)
    fl = rsub.add_parser(
        "flatten",
        help="emergency stop: halt, cancel every open order, close every position",
        description=(
            "Emergency stop. First the trading state becomes HALTED (with --reason, by cli), then every "
            "open order at the broker is cancelled, then one market order per position closes it - sell "
            "a long, buy back a short, the whole quantity held. Each closing order passes the risk gate "
            "in exit mode (only orders that shrink a position without crossing zero; invalid input, a "
            "missing or stale price still reject) and is journaled before it is sent, under a "
            "deterministic client order id, so running flatten again sends nothing twice. Trading stays "
            "HALTED until 'risk resume'. Exit code 1 when a position could not be given a closing order."
        ),
        epilog=examples("regimedesk risk flatten", "regimedesk risk flatten --broker alpaca --yes --reason 'outage'"),
    )
    fl.add_argument("--broker", choices=("paper", "alpaca"), default="paper", help="default paper")
    fl.add_argument("--reason", default="emergency flatten", help="why (kept in the history)")
    fl.add_argument("--yes", action="store_true", help="do not ask for confirmation (needed without a terminal)")
    fl.add_argument("--source", help="market-data source of the prices the gate checks (default: data.source)")
    fl.add_argument("--as-of", dest="as_of", help="use only data available at the end of this date")
    fl.add_argument("--json", action="store_true", help="print JSON")
    fl.set_defaults(handler=_flatten)
    var = rsub.add_parser(
        "var",
        help="backtest 1-day VaR forecasts (Kupiec, Christoffersen, Basel zone)",
        description=(
            "Rolling one-day VaR and expected shortfall of a symbol's daily returns, each "
            "forecast from the trailing window before its day only; exceedances, the Kupiec "
            "proportion-of-failures test, the Christoffersen independence and conditional "
            "coverage tests, and the Basel traffic-light zone of the last 250 days.\n\n"
            "With --universe instead of a symbol: the one-day VaR and ES of today's portfolio of the "
            "universe over the trailing window (--method historical, normal, student_t, filtered, "
            "monte_carlo or all), with each asset's weight, component VaR (they sum to the VaR), "
            "marginal VaR and share of the VaR. Today's weights: see --weights (the policy's target "
            "is computed for the risk_on family, the loosest caps; no regime is fitted). With --universe "
            "--backtest: the same Kupiec, Christoffersen and Basel backtest of the portfolio's daily "
            "returns with today's weights held constant (rebalanced daily) over the history, --method "
            "historical, filtered or gjr_filtered."
        ),
        epilog=examples("regimedesk risk var SP500 --backtest --level 0.975 --method historical",
                        "regimedesk risk var --universe sp500-20 --method all --weights hrp --as-of 2020-03-31",
                        "regimedesk risk var --universe sp500-20 --backtest --method historical"),
    )
    var.add_argument("symbol", nargs="?", help="ticker, or SP500 / NASDAQ for the builtin source")
    var.add_argument("--universe", help="portfolio VaR of a universe (builtin or configured name, or a file "
                                        "listing symbols) instead of a symbol")
    _weights_option(var)
    var.add_argument("--sims", type=int, default=100_000,
                     help="--universe --method monte_carlo: scenarios drawn (default 100000)")
    var.add_argument("--seed", type=int, default=0, help="--universe --method monte_carlo: random seed (default 0)")
    var.add_argument("--backtest", action="store_true",
                     help="backtest rolling VaR forecasts (the only mode for a symbol; with --universe: of today's "
                          "weights held constant over the history)")
    var.add_argument("--source", help="market-data source (default: data.source)")
    var.add_argument("--as-of", dest="as_of", help="use only data available at the end of this date")
    var.add_argument("--level", type=float, default=None, help="confidence level (default: risk.var_level)")
    var.add_argument("--method", help="symbol: gjr_filtered, filtered or historical (default: risk.var_method, "
                                      "gjr_filtered unless configured); --universe: historical, normal, student_t, "
                                      "filtered, monte_carlo or all (default historical)")
    var.add_argument("--window", type=int, default=500, help="trailing window in days (default 500)")
    var.add_argument("--json", action="store_true", help="print JSON")
    var.set_defaults(handler=_var)
    stress = rsub.add_parser(
        "stress",
        help="historical stress scenarios and hypothetical shocks on a universe's portfolio",
        description=(
            "Replay historical stress windows on today's portfolio of a universe, held buy-and-hold from "
            "the close before the window: P&L, worst day, maximum drawdown, coverage (the share of the "
            "book with prices then) and the three worst drivers. Scenarios: ltcm (1998), dotcom "
            "(2000-2002), gfc (2007-2009), euro (2011), covid (2020), or all. A scenario before the data "
            "starts is reported as not covered.\n\n"
            "--shock SYMBOL=RETURN (repeatable; -20% or -0.2) moves the shocked symbols and every other "
            "asset by its conditional expectation under the covariance of the universe plus the shocked "
            "symbols (e.g. the index SP500X): the P&L and the three worst drivers."
        ),
        epilog=examples("regimedesk risk stress --universe sp500-20",
                        "regimedesk risk stress --universe sp500-20 --scenario gfc --weights hrp",
                        "regimedesk risk stress --universe sp500-20 --shock SP500X=-20% --shock XOM=-0.3 --json"),
    )
    stress.add_argument("--universe", required=True, help="builtin or configured universe name, or a file "
                                                          "listing symbols")
    stress.add_argument("--scenario", default="all",
                        help="ltcm, dotcom, gfc, euro, covid or all (default all)")
    stress.add_argument("--shock", action="append", default=[], metavar="SYMBOL=RETURN",
                        help="hypothetical shock, e.g. SP500X=-20%% (repeatable)")
    _weights_option(stress)
    stress.add_argument("--source", help="market-data source (default: data.source)")
    stress.add_argument("--as-of", dest="as_of", help="use only data available at the end of this date")
    stress.add_argument("--json", action="store_true", help="print JSON")
    stress.set_defaults(handler=_stress)

    for name, helptext in (("positions", "positions, cash and equity at the broker"),
                           ("orders", "orders at the broker (open ones by default)")):
        p = sub.add_parser(name, help=helptext, description=helptext[0].upper() + helptext[1:] + ".",
                           epilog=examples(f"regimedesk {name}", f"regimedesk {name} --broker alpaca --json"))
        p.add_argument("--broker", choices=("paper", "alpaca"), default="paper", help="default paper")
        p.add_argument("--json", action="store_true", help="print JSON")
        if name == "orders":
            p.add_argument("--all", action="store_true", help="every order, not only open ones")
        p.set_defaults(handler=_positions if name == "positions" else _orders)


def _app(ctx):
    from agents.services.context import AppContext

    return AppContext(ctx.settings, ctx.secrets)


def _risk_store(ctx):
    """The persisted risk state, opened as ``AppContext.risk_store`` opens it, without the
    market-data services an :class:`~agents.services.context.AppContext` loads."""
    from agents.services.risk import RiskStateStore

    return RiskStateStore(ctx.settings.paths.risk_state)


def _status(args: argparse.Namespace, ctx) -> int:
    store = _risk_store(ctx)
    try:
        st = store.load()
        doc = {"trading_state": st.trading_state, "reason": st.reason, "day": st.day,
               "day_start_equity": st.day_start_equity, "peak_equity": st.peak_equity,
               "recent_orders": len(st.recent), "silent_feeds": store.silent_feeds(), "history": store.events(),
               "checks_off": ctx.settings.risk.checks_off()}
    finally:
        store.close()
    if args.json:
        print_json(doc)
        return 0
    print_fields("risk state", [("trading state", doc["trading_state"]), ("reason", doc["reason"] or "-"),
                                ("day", doc["day"] or "-"), ("peak equity", doc["peak_equity"] or "-"),
                                ("recent approved orders", doc["recent_orders"]),
                                ("silent live feeds", ", ".join(f"{s} since {v['since'][:19]} ({v['by']})" for s, v
                                                                in doc["silent_feeds"].items()) or "none"),
                                ("checks switched off", ", ".join(f"{k} ({v})" for k, v
                                                                  in doc["checks_off"].items()) or "none")])
    if doc["history"]:
        print("history (newest first)")
        print_table(["when", "from", "to", "by", "why"],
                    [(e["ts"][:19], e["from"], e["to"], e["by"], e["reason"]) for e in doc["history"]])
    return 0


def _set_state(args: argparse.Namespace, ctx) -> int:
    if getattr(args, "cancel_open", False):
        return _halt_and_cancel(args, ctx)
    if getattr(args, "broker", None) is not None:
        raise ValueError("--broker only goes with --cancel-open")
    store = _risk_store(ctx)
    try:
        st = store.set_trading_state(args.to, args.reason, by="cli")
    finally:
        store.close()
    print(f"trading state {st.trading_state}: {st.reason}")
    return 0


def _order_rows(orders) -> list[tuple]:
    return [(o["client_order_id"], o["symbol"], o["side"], f"{o['qty']:g}", o["status"]) for o in orders]


def _halt_and_cancel(args: argparse.Namespace, ctx) -> int:
    from agents.services.emergency import halt_and_cancel

    broker = args.broker or "paper"
    run_id, out = halt_and_cancel(ctx.settings, ctx.secrets, broker, reason=args.reason, by="cli")
    print(f"trading state HALTED: {args.reason}")
    if out.settled:
        print(f"settled {len(out.settled)} order(s) left by an interrupted run:")
        print_table(["client order id", "symbol", "action"],
                    [(s["client_order_id"], s["symbol"], s["action"]) for s in out.settled])
    if out.cancelled:
        print(f"cancelled {len(out.cancelled)} open order(s) at {broker} (journal run {run_id}):")
        print_table(["client order id", "symbol", "side", "qty", "status"], _order_rows(out.cancelled))
    else:
        print(f"no open orders at {broker}")
    for err in out.errors:
        sys.stderr.write(f"error: {err}\n")
    for o in out.still_open:
        sys.stderr.write(f"warning: {o['client_order_id']} ({o['symbol']}) is still {o['status']} at the broker "
                         "(cancel pending)\n")
    return 1 if out.errors else 0


def _confirm_flatten(args: argparse.Namespace, ctx) -> bool:
    """Ask on the terminal; refuse without one (scripts pass --yes)."""
    from agents.services.emergency import emergency_preview

    if not sys.stdin.isatty():
        raise ValueError("refusing to flatten without confirmation: no terminal to ask on (pass --yes)")
    p = emergency_preview(ctx.settings, ctx.secrets, args.broker)
    err = sys.stderr
    err.write(f"{args.broker}: trading state {p.trading_state}; {len(p.open_orders)} open order(s) to cancel, "
              f"{len(p.positions)} position(s) to close:\n")
    for pos in p.positions:
        err.write(f"  {pos['side']} {abs(pos['qty']):g} {pos['symbol']} (holding {pos['qty']:g})\n")
    for o in p.open_orders:
        err.write(f"  cancel {o['side']} {o['qty']:g} {o['symbol']} ({o['client_order_id']})\n")
    err.write("Halt trading, cancel these orders and close these positions? [y/N] ")
    err.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _flatten(args: argparse.Namespace, ctx) -> int:
    from agents.services.emergency import flatten

    if not args.yes and not _confirm_flatten(args, ctx):
        sys.stderr.write("not flattened: nothing was done\n")
        return 1
    res = flatten(ctx.settings, ctx.secrets, args.broker, reason=args.reason, by="cli", source=args.source,
                  as_of=args.as_of)
    if args.json:
        print_json(res.to_dict())
        return 0 if res.complete else 1
    print(f"{args.broker}: flatten (journal run {res.run_id})")
    if res.settled:
        print(f"settled {len(res.settled)} order(s) left by an interrupted run:")
        print_table(["client order id", "symbol", "action"],
                    [(s["client_order_id"], s["symbol"], s["action"]) for s in res.settled])
    print(f"cancelled {len(res.cancelled)} open order(s)" + (":" if res.cancelled else ""))
    if res.cancelled:
        print_table(["client order id", "symbol", "side", "qty", "status"], _order_rows(res.cancelled))
    if res.kept:
        print(f"already working from an earlier flatten, left open: {len(res.kept)}")
        print_table(["client order id", "symbol", "side", "qty", "status"], _order_rows(res.kept))
    print(f"sent {len(res.sent)} closing order(s)" + (":" if res.sent else ""))
    if res.sent:
        print_table(["client order id", "symbol", "side", "qty", "filled", "avg price", "status"],
                    [(o["client_order_id"], o["symbol"], o["side"], f"{o['qty']:g}", f"{o['filled_qty']:g}",
                      "-" if o["avg_fill_price"] is None else f"{o['avg_fill_price']:,.2f}", o["status"])
                     for o in res.sent])
    if res.rejected:
        print(f"NOT closed, {len(res.rejected)} position(s):")
        print_table(["symbol", "side", "qty", "why"],
                    [(r["symbol"], r["side"], f"{r['qty']:g}", ", ".join(r["reasons"])) for r in res.rejected])
    for event in res.events:
        print(f"gate: {event}")
    for err in res.errors:
        sys.stderr.write(f"error: {err}\n")
    print(f"trading state {res.trading_state}: {res.reason} (by {res.by}); 'regimedesk risk resume' re-opens trading")
    return 0 if res.complete else 1


def _weights_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", metavar="METHOD|FILE|SYM=W,...",
                   help="today's weights: erc, mv, hrp, invvol or equal (default: portfolio.method, erc when "
                        "that is none), a JSON file {\"AAPL\": 0.1, ...} or AAPL=0.1,MSFT=0.2 (the rest is cash)")


def _var(args: argparse.Namespace, ctx) -> int:
    from agents.services.risk import symbol_var_backtest

    if args.universe is not None or args.symbol is None:
        from agents.cli.portfolio import universe_var_command

        return universe_var_command(args, ctx)
    for option, default in (("weights", None), ("sims", 100_000), ("seed", 0)):
        if getattr(args, option) != default:
            raise ValueError(f"--{option} goes with --universe")
    if args.method is not None and args.method not in ("gjr_filtered", "filtered", "historical"):
        raise ValueError(f"--method {args.method}: a symbol's backtest takes gjr_filtered, filtered or historical")
    if not args.backtest:
        raise ValueError("give --backtest (the only mode so far)")
    level = args.level if args.level is not None else ctx.settings.risk.var_level
    if not 0.5 < level < 1:
        raise ValueError("--level must be between 0.5 and 1")
    if args.window < 100:
        raise ValueError("--window must be >= 100")
    method = args.method or ctx.settings.risk.var_method
    if method not in ("gjr_filtered", "filtered", "historical"):
        raise ValueError(f"risk.var_method {method} has no rolling backtest: give --method gjr_filtered, filtered "
                         "or historical")
    store, symbol = bar_store(args, ctx)
    sys.stderr.write(f"backtesting {method} VaR {level:.0%} on {symbol} (daily returns)...\n")
    _, res = symbol_var_backtest(store, symbol, level=level, method=method, window=args.window)
    doc = {"symbol": symbol, "method": method, "level": level, "window": args.window, **res.to_dict()}
    if args.json:
        print_json(doc)
        return 0
    print_var_backtest(doc)
    return 0


def _stress(args: argparse.Namespace, ctx) -> int:
    from agents.cli.portfolio import stress_command

    return stress_command(args, ctx)


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
