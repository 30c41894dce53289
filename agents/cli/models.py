"""``regimedesk models status``: drift monitoring of the stored signal models (issue 27)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from agents.cli.helptext import examples
from agents.cli.output import print_json, print_table
from analytics import RegimeDeskError

# Services (and with them xgboost and scipy) are imported when the command runs, not at start-up.

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser(
        "models",
        help="stored signal models: drift of features and decay of the recent score",
        description=(
            "The stored XGBoost signal models (home/models) and whether they still fit the market. "
            "'status' compares, per model, the last ml.drift.window bars after its training data with "
            "its training window, and its recent out-of-sample score with the validated one."
        ),
        epilog=examples("regimedesk models status", "regimedesk models status SP500 --as-of 2016-12-30",
                        "regimedesk models status SP500 NASDAQ --json"),
    )
    msub = models.add_subparsers(dest="models_command", required=True, metavar="COMMAND")
    st = msub.add_parser(
        "status",
        help="per stored model: age, validated vs recent score, worst feature drift, breaches",
        description=(
            "For the newest stored model of each symbol (every symbol in the model store when none is "
            "given) allowed at the last bar:\n\n"
            "  version, train end, age   the model and how old its training data is\n"
            "  val Brier / recent Brier  the walk-forward Brier score validated at training, and the\n"
            "                            score of its forecasts on the last ml.drift.window bars after\n"
            "                            train end whose label is known (horizon bars later)\n"
            "  worst PSI                 the feature with the largest population stability index of\n"
            "                            the last ml.drift.window bars against the training window\n"
            "  breaches                  thresholds of [ml.drift] crossed: psi, ks_pvalue (two-sample\n"
            "                            Kolmogorov-Smirnov per feature), brier_increase\n\n"
            "Breaches are journaled (live events of session 'models:drift'), sent as one Telegram alert "
            "when a bot token and telegram.chat_ids are configured (each breach once per model version), "
            "and with ml.drift.retrain_on_breach mark the model due for the next scheduled retrain; "
            "--no-record only shows them. Scheduled run jobs run the same check after the run "
            "(ml.drift.after_runs)."
        ),
        epilog=examples("regimedesk models status", "regimedesk models status SP500 --as-of 2016-12-30",
                        "regimedesk models status SP500 NASDAQ --json --no-record"),
    )
    st.fill_later(_status_options)
    st.set_defaults(handler=_status)

    ex = msub.add_parser(
        "export-onnx",
        help="write a stored model as ONNX with a JSON sidecar of its features, checked against XGBoost",
        description=(
            "Convert the symbol's newest stored signal model (or --version) to ONNX (onnxmltools) for "
            "ML.NET, NinjaTrader, C# or any ONNX runtime, and write FILE.onnx plus FILE.json naming the "
            "input ('features', float32, one column per feature in the listed order) and the outputs "
            "('probabilities': [P(down), P(up)] per row). The export is kept only if onnxruntime "
            "reproduces XGBoost's P(up) to 1e-6 on the model's validation rows."
        ),
        epilog=examples("regimedesk models export-onnx SP500",
                        "regimedesk models export-onnx SP500 --out models/sp500.onnx --json",
                        "regimedesk models export-onnx NASDAQ --version v0002"),
    )
    ex.fill_later(_export_options)
    ex.set_defaults(handler=_export)


def _status_options(p: argparse.ArgumentParser) -> None:
    from agents.services.data import SOURCE_NAMES

    p.add_argument("symbols", nargs="*", metavar="SYMBOL",
                   help="symbols to check (default: every symbol with a stored model)")
    p.add_argument("--source", choices=SOURCE_NAMES, help="market-data source (default: data.source)")
    p.add_argument("--as-of", dest="as_of", help="check with only the data available at the end of this date")
    p.add_argument("--no-record", dest="record", action="store_false",
                   help="show breaches only: do not journal, alert or mark models due")
    p.add_argument("--json", action="store_true", help="print JSON")


def _export_options(p: argparse.ArgumentParser) -> None:
    from agents.cli.options import add_symbol_options

    add_symbol_options(p)
    p.add_argument("--version", help="the stored version to export, e.g. v0002 (default: the newest)")
    p.add_argument("--out", metavar="FILE.onnx", help="where to write (default: SYMBOL-VERSION.onnx here); "
                                                      "the sidecar is FILE.json")


def _export(args: argparse.Namespace, ctx) -> int:
    from agents.cli.options import bar_store, output_file
    from agents.services.model_export import export_model_onnx

    out = None
    if args.out is not None:
        if not args.out.lower().endswith(".onnx"):
            raise ValueError("--out must name a .onnx file")
        out = output_file(args.out, "--out")
    from agents.services.ml import model_store

    store, symbol = bar_store(args, ctx)
    model_store(ctx.settings).load(symbol, args.version)  # no such model: said before any work
    sys.stderr.write(f"exporting the {symbol} model to ONNX and checking it on its validation rows...\n")
    rep = export_model_onnx(store, symbol, ctx.settings, out, args.version)
    if args.json:
        print_json(rep)
        return 0
    print(f"{symbol} {rep['version']} -> {rep['onnx']} (+ {rep['sidecar']})")
    print(f"  input 'features': {len(rep['features'])} float32 columns in the sidecar's order; "
          "output 'probabilities'[:, 1] = P(up)")
    print(f"  onnxruntime vs XGBoost on {rep['rows_checked']} validation rows: max |difference| "
          f"{rep['max_difference']:.2e}")
    return 0


def _num(x: Any, fmt: str) -> str:
    from agents.services.format import is_missing

    return "-" if is_missing(x) else format(x, fmt)


def _status(args: argparse.Namespace, ctx) -> int:
    from agents.services.context import symbol_bar_store
    from agents.services.drift import model_drift, record_breaches, stored_symbols

    settings = ctx.settings
    symbols = list(dict.fromkeys(args.symbols))
    if not symbols:
        symbols = stored_symbols(settings)
        if not symbols:
            raise RegimeDeskError(f"no stored models in {settings.paths.models}; train one with "
                                  "'regimedesk train SYMBOL'")
    stores = []
    for symbol in symbols:  # every symbol's data must load before any work (one-line errors)
        stores.append(symbol_bar_store(settings, ctx.secrets, symbol, source=args.source, as_of=args.as_of))
    reports = []
    for store, symbol in stores:
        sys.stderr.write(f"checking the {symbol} model (regimes, features, forecasts after its training data)...\n")
        reports.append(model_drift(store, symbol, settings))
    recorded = None
    if args.record:
        from agents.runtime.scheduler import build_sender

        recorded = record_breaches(reports, settings, sender=build_sender(settings, ctx.secrets))
    if args.json:
        print_json({"as_of": args.as_of, "thresholds": settings.ml.drift.model_dump(),
                    "models": [r.to_dict() for r in reports], "recorded": recorded})
        return 0
    rows = []
    for r in reports:
        worst = r.worst_feature
        decay = r.decay
        rows.append((r.symbol, r.version, str(r.train_end.date()), f"{r.age_days:.0f} d",
                     _num(r.validation_brier, ".4f"), _num(decay.brier if decay else None, ".4f"),
                     f"{worst[0]} {worst[1]:.3f}" if worst else "-", str(len(r.breaches))))
    cfg = settings.ml.drift
    print(f"stored models checked at their last bar; window {cfg.window} bars, thresholds: PSI > {cfg.psi:g}, "
          f"KS p < {cfg.ks_pvalue:g}, Brier increase > {cfg.brier_increase:g}")
    print_table(["symbol", "version", "train end", "age", "val Brier", "recent Brier", "worst PSI", "breaches"],
                rows)
    for r in reports:
        decay = r.decay
        if decay is not None:
            auc = f", AUC {_num(decay.auc, '.3f')} (validated {_num(r.validation_auc, '.3f')})"
            print(f"\n{r.symbol} {r.version}: checked at {r.as_of.date()}, {r.bars_after} bars after train end; "
                  f"recent Brier {decay.brier:.4f} over {decay.n_recent} labelled forecasts "
                  f"({decay.brier_increase:+.4f} vs validated){auc}")
        else:
            print(f"\n{r.symbol} {r.version}: checked at {r.as_of.date()}, {r.bars_after} bars after train end")
        for note in r.notes:
            print(f"  note: {note}")
        for b in r.breaches:
            print(f"  breach: {b.text}")
    if recorded and recorded["journaled"]:
        sent = recorded["alerted"]
        print(f"\n{recorded['journaled']} breach(es) journaled"
              + (f"; Telegram alert: {sum(d['ok'] for d in sent)}/{len(sent)} chat(s)" if sent else "")
              + (f"; {recorded['already_alerted']} alerted before, not sent again"
                 if recorded["already_alerted"] else "")
              + (f"; marked due for retraining: {', '.join(recorded['marked'])}" if recorded["marked"] else ""))
    return 0
