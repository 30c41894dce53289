"""The PDF report of a run: what every agent concluded, with the evidence behind it.

The report is assembled from the run's final state (the same numbers the CLI and the
journal show) plus deterministic extras computed from the run's own bars: the causal regime
path behind the price chart, the stored model's out-of-sample record, the walk-forward
backtest and the VaR backtest. Narratives are the run's checked narratives; nothing here
asks an LLM for anything. Rendering is ``integrations.render_pdf``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from agents.config import TIMEFRAME_NAMES
from agents.services.context import AppContext
from agents.services.format import METRIC_ROWS, format_metric, format_value, is_missing
from agents.services.ml import backtest_config, backtest_policy, model_store
from agents.services.regime import consensus_path, risk_off_path, run_regimes
from agents.services.risk import symbol_var_backtest
from analytics import (
    TIMEFRAME_TABLE,
    RegimeDeskError,
    drawdown_periods,
    monthly_returns,
    rolling_performance,
    trade_list,
    trade_summary,
    yearly_returns,
)
from integrations import (
    Chart,
    Figure,
    Paragraph,
    RenderedReport,
    ReportDocument,
    Section,
    Table,
    render_html,
    render_pdf,
    report_format,
)

__all__ = ["write_report", "build_document", "VAR_WINDOW", "ROLLING_WINDOW", "WORST_DRAWDOWNS",
           "RECENT_TRADES", "HEADLINE_METRICS"]

#: Trailing window (days) of the report's VaR backtest, as ``regimedesk risk var``'s default.
VAR_WINDOW = 500
#: Bars in the backtest's rolling Sharpe, volatility and exposure windows (six months).
ROLLING_WINDOW = 126
#: Rows of the backtest's drawdown table.
WORST_DRAWDOWNS = 5
#: Rows of the backtest's trade list (the most recent trades).
RECENT_TRADES = 10
#: The backtest's headline figures, shown first against buy-and-hold (the rest follow the equity chart).
HEADLINE_METRICS = ("cagr", "volatility", "sharpe", "sortino", "max_drawdown", "calmar")

Status = Callable[[str], None]

def _chart(kind: str, *args: Any, **kwargs: Any) -> Chart:
    """A chart the PDF draws as a PNG and the HTML page as an interactive chart."""
    return Chart(kind, args, kwargs)

_TF_NAMES = {name: row.meaning for name, row in TIMEFRAME_TABLE.items()}


def _num(x: Any, digits: int = 2) -> str:
    return format_value(x, f",.{digits}f")


def _pct(x: Any, digits: int = 1) -> str:
    if is_missing(x):
        return "n/a"
    text = f"{100 * x:.{digits}f}%"
    return text[1:] if text.startswith("-") and not text.strip("-0.%") else text  # no "-0.0%"


def _pval(p: Any) -> str:
    return "n/a" if is_missing(p) else "<0.001" if p < 0.001 else f"{p:.3f}"


def _label(s: Any) -> str:
    return str(s).replace("_", " ") if s is not None else "n/a"


def _narrative(state: Mapping[str, Any], agent: str, key: str) -> Paragraph | None:
    n = state.get("narratives", {}).get(agent, {}).get(key)
    if not n:
        return None
    text = n["text"]
    if not n.get("accepted", True):
        text += f" (LLM text rejected: {n.get('fallback_reason')}; deterministic text shown)"
    return Paragraph(text)


def _errors_for(state: Mapping[str, Any], symbol: str | None) -> list[Paragraph]:
    return [Paragraph(f"{e['agent']}: {e['error']}", "note") for e in state.get("errors", [])
            if e.get("symbol") == symbol]


# ---------------------------------------------------------------- cover and summary


def _cover_facts(state: Mapping[str, Any], as_of: str) -> tuple[tuple[str, str], ...]:
    req = state["request"]
    facts = [
        ("Run id", str(state.get("run_id"))),
        ("Thread id", str(state.get("thread_id"))),
        ("Data as of", as_of),
        ("Symbols", ", ".join(req["symbols"])),
        ("Narrator", req.get("llm", "template")),
        ("Broker", req.get("broker", "none")),
    ]
    for sym in req["symbols"]:
        md = state.get("market_data", {}).get(sym, {})
        mt = md.get("MT", {})
        if mt.get("available"):
            facts.append((f"Data: {sym}", f"source {mt['source']}, {mt['bars']:,} daily bars "
                                         f"{mt['first'][:10]} to {mt['last'][:10]}; {mt['validation']['summary']}"))
        else:
            facts.append((f"Data: {sym}", mt.get("reason") or md.get("error") or "not available"))
    ran = [a for a in state.get("agents_ran", []) if a != "reporting"] + ["reporting"]
    facts.append(("Agents", ", ".join(ran)))
    return tuple(facts)


def _glance_row(state: Mapping[str, Any], sym: str) -> tuple[str, ...]:
    mt = state.get("market_data", {}).get(sym, {}).get("MT", {})
    reg = state.get("regime", {}).get(sym, {})
    cons = reg.get("consensus") or {}
    stats = state.get("statistics", {}).get(sym, {}).get("MT", {})
    char = stats.get("character") or {}
    ml = state.get("ml_signal", {}).get(sym, {})
    dec = state.get("decision", {}).get("symbols", {}).get(sym, {})
    verdicts = state.get("risk_gate", {}).get("symbols", {}).get(sym, [])
    gate = ", ".join(f"{v['action']} {v['order']['side']} {v['qty']:g}" for v in verdicts) or "no order"
    regime = (f"{_label(cons.get('label'))} ({_label(cons.get('family'))}, p {_num(cons.get('probability'))})"
              if cons.get("family") else "n/a")
    return (
        sym,
        _num(mt.get("last_close")) if mt.get("available") else "n/a",
        regime,
        _label(char.get("character")) if char.get("available") else "n/a",
        _num(ml.get("p_up")),
        _pct(dec.get("target_weight")) if dec.get("target_weight") is not None else "none",
        gate,
    )


def _headline(state: Mapping[str, Any], sym: str) -> str:
    """The conclusions for one symbol in two or three sentences, from the state's numbers only."""
    mt = state.get("market_data", {}).get(sym, {}).get("MT", {})
    if not mt.get("available"):
        return f"{sym}: no daily data ({mt.get('reason') or 'see errors'})."
    parts = [f"{sym} closed at {_num(mt['last_close'])} on {mt['last'][:10]}."]
    cons = (state.get("regime", {}).get(sym) or {}).get("consensus") or {}
    if cons.get("family"):
        parts.append(f"The regime consensus is {_label(cons['label'])} ({_label(cons['family'])}), with "
                     f"{_pct(cons.get('agreement'), 0)} agreement across {cons.get('available_timeframes')} timeframes.")
    char = ((state.get("statistics", {}).get(sym) or {}).get("MT") or {}).get("character") or {}
    if char.get("available"):
        parts.append(f"Its market character over the last year: {_label(char['character'])}.")
    ml = state.get("ml_signal", {}).get(sym) or {}
    if "p_up" in ml:
        auc = ml["out_of_sample"]["auc"]
        skill = "no out-of-sample skill" if auc is None or auc < 0.52 else "some out-of-sample skill"
        parts.append(f"The ML signal gives P(up over {ml['horizon_bars']} bars) = {_num(ml['p_up'])}; the model "
                     f"shows {skill} (AUC {_num(auc, 3)}).")
    dec = state.get("decision", {}).get("symbols", {}).get(sym) or {}
    if dec.get("target_weight") is not None:
        parts.append(f"The {dec['policy']} policy targets a weight of {_pct(dec['target_weight'])}.")
    elif dec:
        parts.append(f"The {dec.get('policy')} policy makes no decision ({dec.get('reason') or 'no inputs'}).")
    return " ".join(parts)


def _summary(state: Mapping[str, Any]) -> Section:
    blocks: list[Any] = [Paragraph(_headline(state, s), "lead") for s in state["request"]["symbols"]]
    run = _narrative(state, "reporting", "_run")
    if run:
        blocks.append(Paragraph(run.text))
    blocks.append(Table(
        ("Symbol", "Last close", "Regime consensus", "Character (MT)", "P(up)", "Target", "Risk gate"),
        tuple(_glance_row(state, s) for s in state["request"]["symbols"]),
        col_widths=(1.0, 1.1, 2.4, 1.4, 0.8, 0.9, 1.8),
        numeric_cols=(1, 4, 5),
        caption="At a glance. Target = the decision policy's target weight; the gate column lists "
                "its verdicts on this run's orders (no broker: no orders).",
    ))
    for sym in state["request"]["symbols"]:
        for agent in ("regime", "statistics", "ml_signal", "decision"):
            p = _narrative(state, agent, sym)
            if p:
                blocks.append(Paragraph(p.text))
    for agent in ("risk_gate", "execution"):
        p = _narrative(state, agent, "_run")
        if p:
            blocks.append(Paragraph(p.text))
    note = state.get("execution", {}).get("note")
    if note:
        blocks.append(Paragraph(f"Execution: {note}.", "note"))
    blocks.append(Paragraph(
        "Every number in this report is computed by deterministic code from data available at the "
        "report date; the sentences above are checked so that every number they contain comes from "
        "those results.", "note"))
    return Section("Executive summary", tuple(blocks))


# ---------------------------------------------------------------- per-symbol sections


def _regime_blocks(ctx: AppContext, state: Mapping[str, Any], sym: str, years: float,
                   since: pd.Timestamp | None = None) -> list[Any]:

    reg = state.get("regime", {}).get(sym)
    if not reg or "error" in reg:
        return [Paragraph(f"No regime result: {(reg or {}).get('error', 'the regime agent did not run')}.", "note")]
    rows = []
    for tf in TIMEFRAME_NAMES:
        t = reg["timeframes"].get(tf, {})
        if not t.get("available"):
            rows.append((tf, t.get("bar", ""), "unavailable", "", "", "", "", "", ""))
            continue
        rows.append((tf, t["bar"], _label(t["label"]), _label(t["family"]), _num(t["probability"]),
                     t["since"][:10], str(t["bars_in_regime"]), _num(t.get("expected_duration_bars"), 0),
                     _num(t.get("switches_per_year"), 1)))
    blocks: list[Any] = [Table(
        ("TF", "Bar", "Regime", "Family", "Prob.", "Since", "Bars in", "Exp. duration", "Switches/yr"),
        tuple(rows), col_widths=(0.5, 0.6, 1.5, 1.0, 0.7, 1.1, 0.8, 1.1, 1.0), numeric_cols=(4, 6, 7, 8),
        caption=f"Regimes per timeframe ({reg['method']} models refit walk-forward; probabilities are "
                "filtered, i.e. use bars up to the date only). Expected duration = 1/(1 - p_stay) bars.",
    )]
    unavailable = [f"{tf}: {reg['timeframes'][tf].get('reason')}" for tf in TIMEFRAME_NAMES
                   if not reg["timeframes"].get(tf, {}).get("available") and reg["timeframes"].get(tf, {}).get("reason")]
    for text in unavailable:
        blocks.append(Paragraph(text, "note"))
    cons = reg.get("consensus") or {}
    if cons.get("family"):
        text = (f"Consensus: {_label(cons['label'])} ({_label(cons['family'])}), agreement "
                f"{_pct(cons.get('agreement'), 0)} of {cons.get('available_timeframes')} timeframes.")
        if cons.get("conflicts"):
            text += " Conflicts: " + "; ".join(str(c) for c in cons["conflicts"]) + "."
        blocks.append(Paragraph(text))
    try:
        analysis = run_regimes(ctx, state["request"], sym)
        frame = ctx.bars(state["request"]).get(sym, "MT").frame
    except RegimeDeskError as exc:
        blocks.append(Paragraph(f"Price chart unavailable: {exc}", "note"))
        return blocks
    start = frame.index[-1] - pd.Timedelta(days=int(365.25 * years))
    if since is not None and since < start:
        # The backtest's whole window, so its crises (2008) are seen shaded, not only recent years.
        full = frame.loc[frame.index >= since]
        chart = _chart("price_regime_chart", full.index, full["close"].to_numpy(float),
                                 list(consensus_path(analysis, full.index).to_numpy()),
                                 title=f"{sym}: daily close (log scale) over the backtest window")
        blocks.append(Figure(chart, caption=(
            f"The regime consensus over the whole backtest window ({full.index[0]:%Y-%m-%d} to "
            f"{full.index[-1]:%Y-%m-%d}); the same causal shading as the chart below.")))
    window = frame.loc[frame.index >= start]
    family = consensus_path(analysis, window.index)
    risk_off = risk_off_path(analysis, "MT", window.index)
    chart = _chart("price_regime_chart", window.index, window["close"].to_numpy(float), list(family.to_numpy()),
                             risk_off_probability=risk_off.to_numpy(float),
                             title=f"{sym}: daily close (log scale) shaded by the regime consensus")
    blocks.append(Figure(chart, caption=(
        f"Shading: the consensus family the regime agent would have reported at each bar (causal, "
        f"from filtered probabilities of models fitted on earlier data). Lower panel: filtered MT "
        f"risk-off probability. Last {years:g} years.")))
    return blocks


_STAT_ROWS = (("adf", "ADF (unit root)"), ("variance_ratio", "Variance ratio"), ("hurst", "Hurst (DFA)"),
              ("autocorrelation", "Ljung-Box"), ("character", "Market character"))


def _stat_cells(key: str, r: Mapping[str, Any]) -> tuple[str, str]:
    if key == "adf":
        return f"{_num(r['stat'])} (5% crit. {_num(r['critical_5pct'])})", _pval(r["pvalue"])
    if key == "variance_ratio":
        vrs = ", ".join(f"q={q}: {_num(v)}" for q, v in zip(r["lags"], r["vr"], strict=False))
        return f"{vrs}; joint {_num(r['joint_stat'])}", _pval(r["joint_pvalue"])
    if key == "hurst":
        return f"H {_num(r['hurst'])} [{_num(r['ci_low'])}, {_num(r['ci_high'])}]", "n/a"
    if key == "autocorrelation":
        return f"Q({r['ljung_box_lags']}) {_num(r['ljung_box_stat'])}", _pval(r["ljung_box_pvalue"])
    return (f"{_label(r['character'])} (conf. {_num(r['confidence'])})",
            f"trend {_pval(r['pvalue_trending'])}, m.r. {_pval(r['pvalue_mean_reverting'])}")


def _statistics_blocks(state: Mapping[str, Any], sym: str) -> list[Any]:
    st = state.get("statistics", {}).get(sym)
    if not st or "error" in st:
        return [Paragraph(f"No statistics: {(st or {}).get('error', 'the statistics agent did not run')}.", "note")]
    rows = []
    for tf in TIMEFRAME_NAMES:
        r = st.get(tf, {})
        if "error" in r:
            rows.append((tf, "all tests", "unavailable", "", r["error"]))
            continue
        for key, name in _STAT_ROWS:
            t = r.get(key) or {}
            if "error" in t or (key == "character" and not t.get("available", False)):
                rows.append((tf, name, "unavailable", "", t.get("error") or t.get("reason", "")))
                continue
            stat, p = _stat_cells(key, t)
            rows.append((tf, name, stat, p, t.get("reading", "")))
    windows = "; ".join(f"{tf} {st[tf]['nobs']} bars to {st[tf]['end'][:10]}" for tf in TIMEFRAME_NAMES
                        if "nobs" in st.get(tf, {}))
    return [Table(("TF", "Test", "Statistic", "p-value", "Reading"), tuple(rows),
                  col_widths=(0.45, 1.2, 2.1, 1.1, 3.6), numeric_cols=(3,),
                  caption=f"Windows: {windows}. Significance level 5%. Market character p-values are "
                          "Monte Carlo p-values against simulated random walks of the same length: "
                          "'trend' is the share of random walks with at least the sample's trending "
                          "evidence (Hurst, variance ratios), 'm.r.' the same for mean-reverting evidence "
                          "(Hurst, variance ratios, ADF); a small value rejects the random walk on that side.")]


def _ml_blocks(ctx: AppContext, state: Mapping[str, Any], sym: str) -> list[Any]:
    ml = state.get("ml_signal", {}).get(sym)
    if not ml or "error" in ml:
        return [Paragraph(f"No ML signal: {(ml or {}).get('error', 'the ML agent did not run')}.", "note")]
    o = ml["out_of_sample"]
    blocks: list[Any] = [
        Paragraph(f"P(up over {ml['horizon_bars']} bars) = {_num(ml['p_up'])} ({ml['direction']}, confidence "
                  f"{_num(ml['confidence'])}) from model {ml['model_version']} trained on data to "
                  f"{ml['model_train_end'][:10]} (age {_num(ml['model_age_days'], 0)} days)."),
        Table(("Forecasts", "AUC", "Brier", "Brier (base rate)", "Accuracy", "Base rate"),
              ((f"{o['n']:,}", _num(o["auc"], 3), _num(o["brier"], 4), _num(o["brier_climatology"], 4),
                _pct(o["accuracy"]), _pct(o["base_rate"])),),
              numeric_cols=(0, 1, 2, 3, 4, 5),
              caption="Out-of-sample record of the purged walk-forward (each forecast from a model trained "
                      "only on earlier bars, purged by the label horizon plus an embargo). AUC 0.5 and a "
                      "Brier score no better than the base rate mean no skill."),
    ]
    if "top_contributions" in ml:
        # A contribution that prints as 0.0000 explains nothing: it is not a "largest" one.
        shown = [(k, v) for k, v in (ml["top_contributions"] or {}).items()
                 if not is_missing(v) and round(float(v), 4) != 0]
        if shown:
            blocks.append(Table(("Feature", "Contribution to the log-odds of this forecast"),
                                tuple((k, _num(v, 4)) for k, v in shown),
                                col_widths=(2, 3), numeric_cols=(1,)))
        else:
            blocks.append(Paragraph("Largest contributions to the log-odds of this forecast: none (every "
                                    "feature's contribution is zero).", "note"))
    if ml.get("model_note"):
        blocks.append(Paragraph(ml["model_note"], "note"))
    try:
        meta = model_store(ctx.settings).load(sym, ml["model_version"]).metadata
    except RegimeDeskError as exc:
        blocks.append(Paragraph(f"Model metadata unavailable: {exc}", "note"))
        return blocks
    rel = meta["out_of_sample"].get("reliability") or []
    if any(r.get("count") for r in rel):
        blocks.append(Figure(_chart("reliability_chart", rel, title=f"{sym}: calibration out of sample"), width=0.62,
                             caption="Mean forecast against observed frequency per forecast bin; on the "
                                     "diagonal the probabilities mean what they say."))
    gain = meta.get("gain_importance") or {}
    if gain:
        nonzero = {k: v for k, v in gain.items() if not is_missing(v) and float(v) != 0}
        zero = len(gain) - len(nonzero)
        not_shown = (f" {zero} of the {len(gain)} features have zero importance (the model never splits "
                     "on them) and are not shown." if zero else "")
        if nonzero:
            top = min(12, len(nonzero))
            more = f" The {top} largest of {len(nonzero)} are shown." if len(nonzero) > top else ""
            blocks.append(Figure(_chart("importance_chart", nonzero, top=top, title=f"{sym}: feature importance (gain)"),
                                 width=0.8, caption="XGBoost gain importance of the stored model." + more + not_shown))
        else:
            blocks.append(Paragraph("Feature importance: every feature has zero gain importance (the stored "
                                    "model makes no split).", "note"))
    return blocks


def _backtest_report(ctx: AppContext, state: Mapping[str, Any], sym: str, status: Status) -> dict[str, Any] | str:
    """The walk-forward backtest of the configured policy, or why there is none."""
    policy = ctx.settings.decision.policy
    status(f"report: walk-forward backtest of the {policy} policy on {sym}")
    try:
        # The run's regimes and the fit cache's fold outcomes: the backtest re-uses the
        # walk-forward the run's model was validated with instead of refitting every fold.
        return backtest_policy(ctx.bars(state["request"]), sym, ctx.settings, policy,
                               analysis=run_regimes(ctx, state["request"], sym), fit_cache=ctx.fit_cache())
    except RegimeDeskError as exc:
        return str(exc)


def _bar_returns(equity: pd.Series) -> pd.Series:
    # The first bar of the equity is the close the first decision was taken at: no return.
    return (equity / equity.shift(1) - 1.0).iloc[1:]


def _drawdown_rows(returns: pd.Series) -> tuple[tuple[str, ...], ...]:
    return tuple((str(i), f"{p.start:%Y-%m-%d}", f"{p.trough:%Y-%m-%d}",
                  f"{p.recovery:%Y-%m-%d}" if p.recovery is not None else "not recovered",
                  _pct(p.depth), f"{p.length:,}")
                 for i, p in enumerate(drawdown_periods(returns, top=WORST_DRAWDOWNS), start=1))


def _trade_blocks(policy: str, weights: pd.Series, returns: pd.Series) -> list[Any]:
    trades = trade_list(weights, returns)
    if not trades:
        return [Paragraph(f"Trades: the {policy} policy never held a position.", "note")]
    t = trade_summary(weights, returns)
    sides = f"{t.n_long} long, {t.n_short} short" + (", the last still open" if t.open_at_end else "")
    rows = (
        ("Trades", f"{t.n_trades:,} ({sides})"),
        ("Winning trades", _pct(t.win_rate)),
        ("Average / median trade", f"{_pct(t.average_return, 2)} / {_pct(t.median_return, 2)}"),
        ("Best / worst trade", f"{_pct(t.best_return, 2)} / {_pct(t.worst_return, 2)}"),
        ("Average winning / losing trade", f"{_pct(t.average_win, 2)} / {_pct(t.average_loss, 2)}"),
        ("Profit factor (trades)", _num(t.profit_factor)),
        ("Holding period, average / longest", f"{t.average_bars:,.1f} / {t.longest_bars:,} bars"),
        ("Share of bars in the market", _pct(t.time_in_market)),
    )
    blocks: list[Any] = [Table(
        ("Trade statistics", f"{policy} policy"), rows, col_widths=(2.2, 2.2), numeric_cols=(1,),
        caption="A trade is a run of bars held on one side of the market; resizing inside it is the same trade. "
                "Trade returns compound the policy's net returns over the bars held (an open trade is marked to "
                "the last bar).")]
    last = trades[-RECENT_TRADES:]
    blocks.append(Table(
        ("Side", "Entry", "Exit", "Bars", "Average weight", "Return"),
        tuple((x.side, f"{x.entry:%Y-%m-%d}", "open" if x.open else f"{x.exit:%Y-%m-%d}", f"{x.bars:,}",
               _pct(x.average_weight), _pct(x.return_, 2)) for x in last),
        col_widths=(0.8, 1.2, 1.2, 0.8, 1.2, 1.0), numeric_cols=(3, 4, 5),
        caption=(f"The last {len(last)} of {len(trades):,} trades." if len(trades) > len(last)
                 else f"All {len(trades)} trade{'s' if len(trades) != 1 else ''}.")))
    return blocks


def _tearsheet_blocks(ctx: AppContext, state: Mapping[str, Any], sym: str, rep: Mapping[str, Any],
                      family: list[Any] | None) -> list[Any]:
    policy = rep["policy"]
    eq, bh = rep["equity"]["strategy"], rep["equity"]["buy_and_hold"]
    r_s, r_b = _bar_returns(eq), _bar_returns(bh)
    weights = rep["weights"].iloc[1:]
    fam = None if family is None else family[1:]
    ppy = backtest_config(ctx.settings).periods_per_year
    ys, yb = yearly_returns(r_s), yearly_returns(r_b)
    blocks: list[Any] = [
        Table(("Year", f"{policy} policy", "Buy and hold", "Difference"),
              tuple((str(y), _pct(ys[y]), _pct(yb[y]), _pct(ys[y] - yb[y]))
                    for y in ys.index),
              col_widths=(1, 1.3, 1.3, 1.3), numeric_cols=(1, 2, 3),
              caption=f"Calendar-year net returns compounded from the bar returns; the first row starts "
                      f"with the backtest window on {r_s.index[0]:%Y-%m-%d}, the last ends on "
                      f"{r_s.index[-1]:%Y-%m-%d}."),
        Figure(_chart("monthly_returns_heatmap", monthly_returns(r_s), title=f"{sym}: monthly returns of the {policy} "
                                                                    "policy (%)"),
               caption="Each cell compounds the policy's net returns over one calendar month; blank cells "
                       "are outside the backtest window. The colour scale is symmetric around zero."),
    ]
    rows = _drawdown_rows(r_s)
    if rows:
        blocks.append(Table(("#", "Start", "Trough", "Recovery", "Depth", "Length (bars)"), rows,
                            col_widths=(0.4, 1.2, 1.2, 1.3, 0.9, 1.1), numeric_cols=(0, 4, 5),
                            caption=f"The {len(rows)} deepest drawdowns of the {policy} policy: start = first "
                                    "bar below the previous equity peak, recovery = first bar back at it, "
                                    "length = bars spent below it (to the last bar when not recovered)."))
    else:
        blocks.append(Paragraph(f"The {policy} policy never fell below a previous equity peak.", "note"))
    blocks += _trade_blocks(policy, weights, r_s)
    roll_s = rolling_performance(r_s, weights, window=ROLLING_WINDOW, periods_per_year=ppy)
    roll_b = rolling_performance(r_b, window=ROLLING_WINDOW, periods_per_year=ppy)
    blocks.append(Figure(
        _chart("rolling_performance_chart", r_s.index, roll_s.sharpe.to_numpy(float), roll_s.volatility.to_numpy(float),
                                  benchmark_sharpe=roll_b.sharpe.to_numpy(float),
                                  benchmark_volatility=roll_b.volatility.to_numpy(float),
                                  strategy_label=f"{policy} policy",
                                  title=f"{sym}: rolling {ROLLING_WINDOW}-bar Sharpe ratio and volatility"),
        caption=f"Annualised Sharpe ratio (no risk-free rate) and volatility over the trailing {ROLLING_WINDOW} "
                "bars (six months), against buy-and-hold; a window with no variation (out of the market) has "
                "no Sharpe ratio."))
    blocks.append(Figure(
        _chart("exposure_chart", weights.index, weights.to_numpy(float), average=roll_s.exposure.to_numpy(float),
                       average_label=f"{ROLLING_WINDOW}-bar average", family=fam,
                       title=f"{sym}: exposure of the {policy} policy"),
        caption=f"Weight held over each bar (decided at the previous close) and its trailing {ROLLING_WINDOW}-bar "
                f"mean; average weight held {_pct(float(weights.abs().mean()))} (the metrics table's exposure "
                "is the share of bars with any position). Shading: regime consensus."))
    return blocks


def _backtest_blocks(ctx: AppContext, state: Mapping[str, Any], sym: str, rep: Mapping[str, Any] | str) -> list[Any]:
    if isinstance(rep, str):
        return [Paragraph(f"No backtest: {rep}", "note")]
    policy = rep["policy"]
    w = rep["window"]
    s, h = rep["metrics"]["strategy"], rep["metrics"]["buy_and_hold"]
    eq, bh = rep["equity"]["strategy"], rep["equity"]["buy_and_hold"]
    try:
        family: list[Any] | None = list(consensus_path(run_regimes(ctx, state["request"], sym), eq.index).to_numpy())
    except RegimeDeskError:
        family = None
    ppy = backtest_config(ctx.settings).periods_per_year

    def metrics(keys: Any) -> tuple[tuple[str, str, str], ...]:
        return tuple((label, format_metric(s[k], kind), format_metric(h[k], kind))
                     for k, label, kind in METRIC_ROWS if k in keys)

    others = [k for k, _, _ in METRIC_ROWS if k not in HEADLINE_METRICS]
    return [
        Table(("Headline figures", f"{policy} policy", "Buy and hold"), metrics(HEADLINE_METRICS),
              col_widths=(2, 1.3, 1.3), numeric_cols=(1, 2),
              caption=f"{w['start'][:10]} to {w['end'][:10]} ({w['bars']:,} bars), costs "
                      f"{rep['costs']['cost_bps']:g} bps + slippage {rep['costs']['slippage_bps']:g} bps per unit "
                      f"traded. Decisions at each close trade at the next open; parameters re-chosen "
                      f"{rep['reselections']} times from past bars only. Annualised over {ppy} bars a year, no "
                      "risk-free rate; Calmar = CAGR / |max drawdown|."),
        Figure(_chart("equity_drawdown_chart", eq.index, eq.to_numpy(float), bh.to_numpy(float), family=family,
                      strategy_label=f"{policy} policy", title=f"{sym}: walk-forward backtest"),
               caption="Equity (log scale, rebased to 1) and drawdown against buy-and-hold over the same bars"
                       + ("; shading: the regime consensus at each bar, as in the price charts." if family
                          else ".")),
        Table(("Other figures", f"{policy} policy", "Buy and hold"), metrics(others),
              col_widths=(2, 1.3, 1.3), numeric_cols=(1, 2),
              caption="Hit rate and profit factor count bars with a position; exposure is the share of bars with "
                      "one; turnover is the sum of weight changes per year."),
        *_tearsheet_blocks(ctx, state, sym, rep, family),
    ]


def _var_blocks(ctx: AppContext, state: Mapping[str, Any], sym: str) -> list[Any]:
    risk = ctx.settings.risk
    try:
        returns, res = symbol_var_backtest(ctx.bars(state["request"]), sym, level=risk.var_level,
                                           method=risk.var_method, window=VAR_WINDOW)
    except RegimeDeskError as exc:
        return [Paragraph(f"No VaR backtest: {exc}", "note")]
    d = res.to_dict()
    dates = returns.index[VAR_WINDOW:VAR_WINDOW + res.n]
    return [
        Table(("Test", "Statistic", "p-value", "Reading"), (
            ("Exceedances", f"{res.n_exceptions} of {res.n:,}", "", f"expected {res.expected:.1f}"),
            ("Kupiec POF", _num(d["kupiec"]["lr"], 3), _pval(d["kupiec"]["pvalue"]),
             "coverage rejected at 5%" if d["kupiec"]["pvalue"] < 0.05 else "coverage not rejected"),
            ("Christoffersen independence", _num(d["christoffersen"]["lr_ind"], 3),
             _pval(d["christoffersen"]["pvalue_ind"]),
             "exceedances cluster" if d["christoffersen"]["pvalue_ind"] < 0.05 else "no clustering detected"),
            ("Christoffersen conditional coverage", _num(d["christoffersen"]["lr_cc"], 3),
             _pval(d["christoffersen"]["pvalue_cc"]), ""),
            ("Basel traffic light (last 250 days)", f"{res.basel_exceptions} exceptions", "", res.basel_zone),
        ), col_widths=(2.4, 1.3, 0.9, 2.2), numeric_cols=(1, 2),
            caption=f"{risk.var_method} VaR at {risk.var_level:.0%}, one day ahead, each forecast from the "
                    f"{VAR_WINDOW} returns before its day."),
        Figure(_chart("var_backtest_chart", dates, res.returns, res.var, title=f"{sym}: {risk.var_level:.0%} VaR backtest"),
               caption="Daily returns, the negative VaR forecast and the exceedances."),
    ]


def _decision_blocks(state: Mapping[str, Any], sym: str) -> list[Any]:
    dec = state.get("decision", {}).get("symbols", {}).get(sym)
    blocks: list[Any] = []
    if dec:
        inputs = dec.get("inputs", {})
        blocks.append(Table(("Policy", "Regime family", "P(up)", "Vol forecast", "Target weight", "Parameters"), ((
            dec["policy"], _label(inputs.get("regime_family")), _num(inputs.get("p_up")),
            _pct(inputs.get("vol_forecast")),
            _pct(dec.get("target_weight")) if dec.get("target_weight") is not None else "none",
            ", ".join(f"{k} {v:g}" for k, v in (dec.get("params") or {}).items())),),
            col_widths=(0.9, 1.1, 0.6, 0.9, 0.9, 3.2), numeric_cols=(2, 3, 4)))
        if dec.get("reason"):
            blocks.append(Paragraph(dec["reason"], "note"))
    verdicts = state.get("risk_gate", {}).get("symbols", {}).get(sym, [])
    if verdicts:
        blocks.append(Table(("Side", "Proposed", "Approved", "Price", "Verdict", "Reasons"), tuple(
            (v["order"]["side"], f"{v['order']['qty']:g}", f"{v['qty']:g}", _num(v["order"].get("price")),
             v["action"], ", ".join(v["reasons"]) or "-") for v in verdicts),
            col_widths=(0.7, 0.9, 0.9, 1.0, 0.8, 3.5), numeric_cols=(1, 2, 3), caption="Risk-gate verdicts."))
    sent = state.get("execution", {}).get("symbols", {}).get(sym, [])
    if sent:
        blocks.append(Table(("Client order id", "Side", "Qty", "Filled", "Avg price", "Status"), tuple(
            (o["client_order_id"], o["side"], f"{o['qty']:g}", f"{o.get('filled_qty', 0):g}",
             _num(o.get("avg_fill_price")), o["status"]) for o in sent),
            col_widths=(3.0, 0.6, 0.7, 0.7, 0.9, 1.0), numeric_cols=(2, 3, 4), caption="Orders sent."))
    if not verdicts:
        blocks.append(Paragraph("No orders for this symbol in this run "
                                f"({state.get('execution', {}).get('note') or 'nothing to trade'}).", "note"))
    return blocks


def _symbol_section(ctx: AppContext, state: Mapping[str, Any], sym: str, backtest: bool, status: Status) -> Section:
    status(f"report: {sym}")
    # The backtest first: its window sets the span of the long regime chart.
    bt = _backtest_report(ctx, state, sym, status) if backtest else None
    since = bt["equity"]["strategy"].index[1] if isinstance(bt, Mapping) else None
    blocks: list[Any] = [Paragraph("Regimes", "subheading"),
                         *_regime_blocks(ctx, state, sym, ctx.settings.report.chart_years, since)]
    p = _narrative(state, "regime", sym)
    blocks += [p] if p else []
    blocks += [Paragraph("Statistics", "subheading"), *_statistics_blocks(state, sym)]
    blocks += [Paragraph("ML signal", "subheading"), *_ml_blocks(ctx, state, sym)]
    if bt is not None:
        blocks += [Paragraph("Walk-forward backtest", "subheading"), *_backtest_blocks(ctx, state, sym, bt)]
    blocks += [Paragraph("Value at risk", "subheading"), *_var_blocks(ctx, state, sym)]
    blocks += [Paragraph("Decision, risk gate and orders", "subheading"), *_decision_blocks(state, sym)]
    blocks += _errors_for(state, sym)
    return Section(sym, tuple(blocks), new_page=True)


def _risk_section(state: Mapping[str, Any]) -> Section:
    gate = state.get("risk_gate", {})
    blocks: list[Any] = [Paragraph(f"Trading state: {gate.get('trading_state', 'n/a')}"
                                   + (f" ({gate['reason']})" if gate.get("reason") else "") + ".")]
    for e in gate.get("events", []):
        blocks.append(Paragraph(f"Circuit breaker: {e}"))
    if gate.get("note"):
        blocks.append(Paragraph(f"Risk gate: {gate['note']}.", "note"))
    pf = state.get("decision", {}).get("portfolio")
    if pf:
        blocks.append(Table(("Equity", "Cash", "Positions"), ((
            _num(pf.get("equity")), _num(pf.get("cash")),
            ", ".join(f"{s} {q:g}" for s, q in (pf.get("positions") or {}).items()) or "none"),),
            col_widths=(1, 1, 3), numeric_cols=(0, 1), caption="Portfolio before this run's orders."))
    rec = state.get("execution", {}).get("reconciled") or []
    if rec:
        blocks.append(Paragraph(f"Reconciled {len(rec)} order(s) left by an interrupted run.", "note"))
    blocks += _errors_for(state, None)
    return Section("Risk state", tuple(blocks))


_METHODOLOGY = (
    ("Data", "Bars come from the configured source (by default the SP500 and NASDAQ daily closes embedded "
             "in the arch package, 1999-2018) and are validated: duplicates, gaps, non-positive prices, "
             "high/low consistency and extreme jumps are repaired or flagged as configured. Weekly bars are "
             "resampled from closed daily bars only. A run as of a date sees bars up to that date only."),
    ("Regimes", "A two-state Gaussian hidden Markov model per timeframe on log returns, refit walk-forward on "
                "an expanding window. The probability reported at each bar is the filtered probability "
                "P(state | returns up to that bar) of the model fitted before it; no smoothed or Viterbi "
                "path is ever used, so the regime path in the chart is what the agent would have said at "
                "the time. States are labelled by their mean and volatility (bull, bear, high volatility, "
                "...) and grouped into risk-on and risk-off families; the consensus weighs the timeframes. "
                "Expected duration is 1/(1 - p_stay) of the fitted transition matrix."),
    ("Statistics", "Over each timeframe's trailing window: the augmented Dickey-Fuller test (statsmodels; lag by "
                   "AIC), the Lo-MacKinlay variance ratio with heteroskedasticity-robust z and the "
                   "Chow-Denning joint test (as arch), the Hurst exponent by detrended fluctuation analysis "
                   "with a confidence interval, and the Ljung-Box test of return autocorrelation. The "
                   "market character (trending, mean-reverting, random walk) combines the variance ratio and "
                   "Hurst evidence against random-walk simulations of the same length."),
    ("ML signal", "An XGBoost classifier of 'close higher in h bars' on causal features (returns over several "
                  "horizons, realised, range-based and walk-forward GARCH volatility, rolling Hurst, variance "
                  "ratio and ADF, and the filtered regime probability). The out-of-sample record comes from a "
                  "purged walk-forward: each fold's model is trained only on bars whose labels were known "
                  "before the fold, with an embargo; features are checked to be prefix-invariant (the value "
                  "at a bar does not change when later bars are added)."),
    ("Decision and backtest", "A deterministic policy maps the regime family, P(up) and the volatility forecast "
                              "to a target weight; its parameters are chosen walk-forward at each refit by "
                              "Sharpe ratio after costs on past bars only, and there is no decision before the "
                              "first validated choice. The backtest applies the same function bar by bar: a "
                              "decision at a close is traded at the next open, with costs per unit traded."),
    ("Value at risk", "One-day VaR and expected shortfall from the trailing window of returns before each day "
                      "(historical, or filtered historical with a GARCH(1,1) volatility). Backtested with the "
                      "Kupiec proportion-of-failures test, the Christoffersen independence and conditional "
                      "coverage tests, and the Basel traffic light over the last 250 days."),
    ("Risk gate", "Every proposed order passes a deterministic gate before a broker sees it: trading state and "
                  "circuit breakers, allow-list, staleness, price collar, duplicates, order rate, size, "
                  "position weight, gross and net exposure (with regime caps), buying power, and VaR/ES of "
                  "the portfolio after the trade. It fails closed: missing or non-finite inputs reject. "
                  "Narratives are never inputs to the gate."),
    ("Narratives", "Summaries come from a deterministic template or an LLM that is given only the computed "
                   "results; an LLM text containing a number that is not in those results is rejected and the "
                   "template text is used instead."),
)


def build_document(ctx: AppContext, state: Mapping[str, Any], *, backtest: bool = True,
                   status: Status | None = None) -> ReportDocument:
    """The report of a run as a renderable document.

    Parameters
    ----------
    ctx : AppContext
        The run's context (its bars, memoised regimes and settings).
    state : mapping
        The run's state after the risk gate and execution (the reporting node's input).
    backtest : bool, default True
        Include the walk-forward backtest (the slowest part).
    status : callable, optional
        Receives one line per long step.
    """
    status = status or (lambda _m: None)
    symbols = list(state["request"]["symbols"])
    lasts = [md.get("MT", {}).get("last", "")[:10] for md in state.get("market_data", {}).values()
             if md.get("MT", {}).get("available")]
    as_of = max(lasts) if lasts else (state["request"].get("as_of") or "n/a")
    sections = [_summary(state)]
    sections += [_symbol_section(ctx, state, s, backtest, status) for s in symbols]
    sections.append(_risk_section(state))
    sections.append(Section("Methodology", tuple(
        b for title, text in _METHODOLOGY for b in (Paragraph(title, "subheading"), Paragraph(text))), new_page=True))
    return ReportDocument(
        title=f"RegimeDesk report: {', '.join(symbols)}",
        subtitle=f"Data as of {as_of}",
        cover_facts=_cover_facts(state, as_of),
        sections=tuple(sections),
        footer=f"RegimeDesk run {state.get('run_id')}",
    )


def write_report(ctx: AppContext, state: Mapping[str, Any], path: str | Path, *, backtest: bool = True,
                 status: Status | None = None) -> RenderedReport:
    """Build and render the report of a run to ``path`` (written atomically).

    The file name chooses the format (:func:`integrations.report_format`): a ``.html`` or ``.htm`` file is
    one self-contained page with interactive charts, anything else a PDF. Both show the same
    sections, tables and charts. See :func:`build_document` for the other parameters.
    """
    doc = build_document(ctx, state, backtest=backtest, status=status)
    fmt = report_format(path)
    if status:
        status(f"report: rendering {path} ({fmt.upper()})")
    return (render_html if fmt == "html" else render_pdf)(doc, path)
