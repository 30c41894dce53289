"""``regimedesk train`` and ``regimedesk backtest``: the ML model and the decision policy."""

from __future__ import annotations

import argparse
import sys
import time

from agents.cli.helptext import examples
from agents.cli.options import add_symbol_options, bar_store, date_option
from agents.cli.output import ProgressBar, print_json, print_table
from analytics import InsufficientDataError

# Services (and with them xgboost) are imported when a command runs, not at start-up.

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train and store the symbol's XGBoost signal model",
        description=(
            "Train the ML signal model of a symbol on its daily bars: causal features, labels "
            "over ml.horizon bars, a purged walk-forward (ml.min_train, ml.refit_every, "
            "ml.embargo) for an honest out-of-sample record (AUC, Brier score, reliability), "
            "walk-forward choice of the decision policy's parameters on that record, then the "
            "final model. Stored as a new version under home/models/SYMBOL with its metadata. "
            "Takes about half a minute for 20 years of daily bars."
        ),
    )
    p.epilog = examples("regimedesk train SP500", "regimedesk train NASDAQ --as-of 2016-12-30 --json")
    p.fill_later(add_symbol_options)
    p.set_defaults(handler=_train)

    b = sub.add_parser(
        "backtest",
        help="walk-forward backtest of the decision policy against buy-and-hold",
        description=(
            "Replay the decision policy through history exactly as the graph's decision node "
            "applies it: ML forecasts are purged walk-forward out-of-sample, the policy's "
            "parameters are re-chosen at each refit from the bars before it, a target decided "
            "at a bar's close is traded at the next bar's open, and costs are charged per unit "
            "of traded weight. The comparison with buy-and-hold covers the same bars, starting "
            "where the policy first has validated parameters (or --start, if later). With --universe "
            "the portfolio policy is replayed over many assets instead: regime-aware weights (--portfolio) "
            "re-estimated monthly and on regime changes, traded at the next close when the regime "
            "changed or a weight drifted beyond the band, against 1/N, inverse volatility and the index."
        ),
    )
    b.epilog = examples("regimedesk backtest NASDAQ --start 2010-01-01 --costs-bps 5",
                        "regimedesk backtest SP500 --end 2015-12-31 --json",
                        "regimedesk backtest --universe sp500-20 --portfolio all")
    b.fill_later(_backtest_options)
    b.set_defaults(handler=_backtest)
    _register_volatility(sub)


def _register_volatility(sub: argparse._SubParsersAction) -> None:
    v = sub.add_parser(
        "volatility",
        help="volatility forecasts (XGBoost, GARCH, EWMA) against HAR-RV, out of sample",
        description=(
            "Forecast the realised variance of the next --horizon daily bars (the sum of squared log "
            "returns) with XGBoost on the ML agent's causal features, and with the standard baselines "
            "HAR-RV (Corsi 2009), GARCH(1,1) and EWMA (RiskMetrics 0.94), each fitted on the same purged "
            "walk-forward folds as the signal model (ml.min_train, ml.refit_every, ml.embargo). Prints the "
            "out-of-sample QLIKE and MSE of log variance of each, the Diebold-Mariano test of each against "
            "HAR, and which forecast the walk-forward rule picks next (lowest QLIKE on the realised past)."
        ),
    )
    v.epilog = examples("regimedesk volatility SP500", "regimedesk volatility NASDAQ --horizon 21 --json",
                        "regimedesk volatility SP500 --as-of 2012-12-31")
    v.fill_later(_volatility_options)
    v.set_defaults(handler=_volatility)


def _volatility_options(v: argparse.ArgumentParser) -> None:
    add_symbol_options(v)
    v.add_argument("--horizon", type=int, default=5, help="bars ahead the variance is summed over (default 5)")


def _volatility(args: argparse.Namespace, ctx) -> int:
    from agents.services.volatility import volatility_report

    if not 1 <= args.horizon <= 63:
        raise ValueError(f"--horizon must be between 1 and 63 bars, got {args.horizon}")
    store, symbol = bar_store(args, ctx)
    sys.stderr.write(f"forecasting {symbol}'s {args.horizon}-bar volatility walk-forward (4 models)...\n")
    rep = volatility_report(store, symbol, ctx.settings, args.horizon)
    if args.json:
        print_json({**rep, "as_of": args.as_of})
        return 0
    w = rep["window"]
    print(f"{symbol} realised variance over the next {rep['horizon']} bars, out of sample "
          f"{(w['start'] or '')[:10]} to {(w['end'] or '')[:10]} ({w['bars']} bars, {rep['folds']} folds)")

    def num(x, fmt):
        return "-" if x is None else format(x, fmt)

    print_table(["forecast", "QLIKE", "MSE log var", "DM vs HAR (QLIKE)", "p", "DM vs HAR (MSE log)", "p"],
                [(name, num(m["qlike"], ".4f"), num(m["mse_log"], ".4f"), num(m["dm_qlike"], "+.2f"),
                  num(m["p_qlike"], ".3f"), num(m["dm_mse_log"], "+.2f"), num(m["p_mse_log"], ".3f"))
                 for name, m in rep["models"].items()])
    print("negative DM: better than HAR. chosen = the walk-forward pick per fold (lowest QLIKE on earlier folds).")
    print(f"next pick: {rep['next_choice']}")
    return 0


def _backtest_options(b: argparse.ArgumentParser) -> None:
    from agents.cli.portfolio import PORTFOLIO_HELP
    from analytics import POLICIES

    b.add_argument("symbol", nargs="?", help="ticker, or SP500 / NASDAQ for the builtin source "
                   "(or --universe instead)")
    b.add_argument("--universe", help="backtest a portfolio over a universe instead: sp500-20, factors, "
                   "a [portfolio.universes] name, or a file listing symbols")
    b.add_argument("--portfolio", choices=("erc", "mv", "hrp", "invvol", "all"), help=PORTFOLIO_HELP)
    b.add_argument("--source", help="market-data source (default: data.source)")
    b.add_argument("--start", help="first date of the evaluation window (training still uses earlier bars)")
    b.add_argument("--end", help="last date: no bar after it is loaded")
    b.add_argument("--policy", choices=POLICIES, help="decision policy (default: decision.policy)")
    b.add_argument("--costs-bps", dest="costs_bps", type=float,
                   help="costs per unit of traded weight in basis points (default: decision.cost_bps)")
    b.add_argument("--json", action="store_true", help="print JSON (with the daily equity curves)")


def _train(args: argparse.Namespace, ctx) -> int:
    from agents.services.ml import train_model

    store, symbol = bar_store(args, ctx)
    sys.stderr.write(f"training the {symbol} signal model (regimes, features, purged walk-forward)...\n")
    t0 = time.perf_counter()
    stored = train_model(store, symbol, ctx.settings, progress=ProgressBar())
    meta = stored.metadata
    if args.json:
        print_json({"symbol": symbol, "as_of": args.as_of, "as_of_effective": store.as_of_effective,
                    "version": stored.version, "path": stored.path, "metadata": meta})
        return 0
    oos = meta["out_of_sample"]
    print(f"{symbol} model {stored.version} stored in {stored.path} ({time.perf_counter() - t0:.0f} s)")
    print(f"  data {meta['data_start'][:10]} to {meta['train_end'][:10]} ({meta['n_bars']} bars, "
          f"source {meta['source']}), label: up over {meta['label']['horizon']} bars ({meta['label']['method']})")
    print(f"  out of sample ({meta['walk_forward']['folds']} folds, {oos['n']} forecasts): AUC {oos['auc']:.3f}  "
          f"Brier {oos['brier']:.4f} (base-rate forecast {oos['brier_climatology']:.4f})  "
          f"accuracy {oos['accuracy']:.3f}  base rate {oos['base_rate']:.3f}")
    print("  reliability (forecast bin: mean forecast -> observed frequency, count)")
    for row in oos["reliability"]:
        print(f"    {row['bin_low']:.1f}-{row['bin_high']:.1f}: {row['mean_forecast']:.3f} -> "
              f"{row['observed_frequency']:.3f} ({row['count']})")
    top = sorted(meta["gain_importance"].items(), key=lambda kv: -kv[1])[:5]
    print("  gain importance: " + ", ".join(f"{k} {v:.2f}" for k, v in top))
    print("  policy parameters chosen walk-forward:")
    for policy, params in meta["policy_params"].items():
        print(f"    {policy:<9} " + "  ".join(f"{k} {v:g}" for k, v in params.items()))
    return 0


def _backtest(args: argparse.Namespace, ctx) -> int:
    from agents.services.format import METRIC_ROWS, format_metric
    from agents.services.ml import backtest_policy
    from agents.services.significance import significance_text

    if args.costs_bps is not None and not (0 <= args.costs_bps <= 1000):
        raise ValueError("--costs-bps must be between 0 and 1000")
    if args.universe is not None:
        from agents.cli.portfolio import backtest_universe

        return backtest_universe(args, ctx)
    if args.portfolio is not None:
        raise ValueError("--portfolio needs --universe")
    if not args.symbol:
        raise ValueError("give a symbol (e.g. SP500) or --universe (e.g. sp500-20)")
    start = date_option(args.start, "--start")
    end = date_option(args.end, "--end")
    if start is not None and end is not None and start.tz_localize(None) > end.tz_localize(None):
        raise ValueError(f"--start {args.start} is after --end {args.end}")
    args.as_of = args.end
    store, symbol = bar_store(args, ctx, "--end")
    if start is not None:
        last = store.get(symbol, "MT").frame.index[-1]
        first = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
        if first > last:
            raise InsufficientDataError(
                f"--start {args.start} is after the last daily bar of {symbol} ({last.date()}): nothing to backtest"
            )
    policy = args.policy or ctx.settings.decision.policy
    sys.stderr.write(f"backtesting the {policy} policy on {symbol} walk-forward "
                     "(regimes, features, out-of-sample forecasts, policy re-selection)...\n")
    rep = backtest_policy(store, symbol, ctx.settings, policy, cost_bps=args.costs_bps, start=args.start,
                          progress=ProgressBar())
    if args.json:
        # Per-bar series as plain value lists, aligned with the window's bars.
        series = {"equity": {k: v.tolist() for k, v in rep["equity"].items()}, "weights": rep["weights"].tolist()}
        print_json({**rep, **series, "as_of": args.end, "as_of_effective": store.as_of_effective})
        return 0
    w = rep["window"]
    print(f"{symbol} {policy} policy vs buy-and-hold, {w['start'][:10]} to {w['end'][:10]} ({w['bars']} bars), "
          f"costs {rep['costs']['cost_bps']:g} bps + slippage {rep['costs']['slippage_bps']:g} bps")
    s, h = rep["metrics"]["strategy"], rep["metrics"]["buy_and_hold"]
    print_table(["", policy, "buy-and-hold"], [(label, format_metric(s[k], kind), format_metric(h[k], kind)) for k, label, kind in METRIC_ROWS])
    if rep["signal_out_of_sample"]:
        o = rep["signal_out_of_sample"]
        print(f"signal out of sample: AUC {o['auc']:.3f}, Brier {o['brier']:.4f} "
              f"(base-rate forecast {o['brier_climatology']:.4f}), {o['n']} forecasts")
    line = significance_text(rep.get("significance"))
    if line:
        print(line)
    print(f"policy parameters re-chosen {rep['reselections']} times; last: "
          + "  ".join(f"{k} {v:g}" for k, v in rep["params_last"].items()))
    return 0
