"""The PDF/HTML report of a universe's portfolio: backtest, weights, risk, stress, crises.

``regimedesk report --universe NAME --portfolio METHOD --out FILE`` writes it. The numbers come
from the portfolio services (:func:`agents.services.portfolio.portfolio_backtest` and
:mod:`agents.services.portfolio_risk`); this module only lays them out as one
:class:`integrations.ReportDocument`, which :func:`integrations.render_pdf` and
:func:`integrations.render_html` render. Pages, in order:

1. summary: the method against 1/N, static inverse volatility and the index (backtest metrics);
2. weights over time: a stacked area of the method's held weights, sampled weekly;
3. today's weights and risk: component VaR per asset (chart and table);
4. stress: the historical scenarios replayed on today's weights;
5. drawdowns of the method against 1/N and the index;
6. crisis windows: each column's return and drawdown inside the historical stress windows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from agents.config import Secrets, Settings
from agents.services.format import METRIC_ROWS, format_metric
from agents.services.portfolio import METHOD_LABELS, portfolio_backtest, resolve_universe
from agents.services.portfolio_risk import WEIGHTS_FAMILY, load_book, universe_stress, universe_var
from analytics import HISTORICAL_SCENARIOS, PORTFOLIO_METHODS
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

__all__ = [
    "PORTFOLIO_REPORT_SECTIONS",
    "PORTFOLIO_VAR_METHOD",
    "PORTFOLIO_VAR_WINDOW",
    "PortfolioReport",
    "report_method",
    "portfolio_document",
    "build_portfolio_report",
    "write_portfolio_report",
]

#: Section titles of the portfolio report, in order.
PORTFOLIO_REPORT_SECTIONS: tuple[str, ...] = (
    "Portfolio summary",
    "Weights over time",
    "Today's weights and risk contributions",
    "Stress scenarios",
    "Drawdowns",
    "Crisis windows",
)
#: VaR of today's book: historical, over the trailing window of daily returns (as ``risk var``).
PORTFOLIO_VAR_METHOD = "historical"
PORTFOLIO_VAR_WINDOW = 500

Status = Callable[[str], None]
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class PortfolioReport:
    """A portfolio report and the figures it shows.

    Attributes
    ----------
    document : ReportDocument
        What the renderers draw.
    method : str
        The portfolio method reported (``erc``, ``mv``, ``hrp`` or ``invvol``).
    backtest : dict
        :func:`agents.services.portfolio.portfolio_backtest` of the method and its benchmarks.
    var : dict
        :func:`agents.services.portfolio_risk.universe_var` of today's weights.
    stress : dict
        :func:`agents.services.portfolio_risk.universe_stress` of today's weights (every
        historical scenario, no shock).
    """

    document: ReportDocument
    method: str
    backtest: dict[str, Any]
    var: dict[str, Any]
    stress: dict[str, Any]


def report_method(settings: Settings, choice: str | None) -> str:
    """The method a portfolio report shows: ``choice``, else ``portfolio.method`` (``erc`` for none).

    Raises
    ------
    ValueError
        ``choice`` is not one of :data:`analytics.PORTFOLIO_METHODS`.
    """
    method = choice or settings.portfolio.method
    if method == "none":
        return "erc"
    if method not in PORTFOLIO_METHODS:
        raise ValueError(f"--portfolio must be one of {', '.join(PORTFOLIO_METHODS)}, not {method!r}")
    return method


def _pct(x: Any, digits: int = 2, sign: bool = False) -> str:
    if x is None or x != x:
        return "n/a"
    return f"{x:+.{digits}%}" if sign else f"{x:.{digits}%}"


def _label(col: str) -> str:
    return METHOD_LABELS.get(col, col)


def _chart(kind: str, *args: Any, **kwargs: Any) -> Chart:
    """A chart the PDF draws as a PNG and the HTML page as an interactive Plotly chart."""
    return Chart(kind, args, kwargs)


# ---------------------------------------------------------------- sections


def _summary(bt: Mapping[str, Any], method: str) -> Section:
    cols = list(bt["results"])
    w, cfg = bt["window"], bt["config"]
    rows = [(label, *(format_metric(bt["results"][c]["metrics"].get(k), kind) for c in cols))
            for k, label, kind in METRIC_ROWS if k not in ("hit_rate", "profit_factor")]
    rows.append(("Average gross", *(format_metric(bt["results"][c]["metrics"].get("avg_gross"), "pct")
                                    for c in cols)))
    rows.append(("Trades", *(str(bt["results"][c]["rebalances"]) for c in cols)))
    index_note = (f" The index column is buy-and-hold of {bt['results']['index']['symbol']}."
                  if "index" in bt["results"] else " The universe has no benchmark index.")
    share = ", ".join(f"{k.replace('_', ' ')} {v:.0%}" for k, v in bt["regime"]["share"].items())
    blocks: list[Any] = [
        Paragraph(f"The {_label(method)} portfolio of the {bt['universe']['name']} universe "
                  f"({len(bt['assets'])} assets: {', '.join(bt['assets'])}) backtested walk-forward from "
                  f"{w['start'][:10]} to {w['end'][:10]} ({w['bars']:,} daily bars) against 1/N and static "
                  "inverse volatility over the same bars.", "lead"),
        Table(("", *(_label(c) for c in cols)), tuple(rows),
              col_widths=(2.0, *([1.0] * len(cols))), numeric_cols=tuple(range(1, len(cols) + 1)),
              caption=f"Net of {cfg['cost_bps']:g} bps per unit traded; weights reviewed every "
                      f"{cfg['review_every']} bars and traded when one drifts more than {cfg['band']:g} from its "
                      f"target; covariance {cfg['covariance']}; mv uses {cfg['mv_expected_returns']}. Parameters "
                      "are the fixed [portfolio] settings, never chosen on these results." + index_note),
        Paragraph(f"Consensus regime of {bt['regime']['symbol']} over the window (it sets the caps and the "
                  f"covariance half-life): {share}."),
    ]
    blocks += [Paragraph(f"Note: {n}", "note") for n in bt["notes"]]
    return Section(PORTFOLIO_REPORT_SECTIONS[0], tuple(blocks))


def _weights(bt: Mapping[str, Any], method: str) -> Section:
    held: pd.DataFrame = bt["weights"][method]
    weekly = held.resample("W-FRI").last().dropna(how="all")
    chart = _chart("weights_area_chart", weekly.index, {c: weekly[c].to_numpy(float) for c in weekly.columns},
                   title=f"{_label(method)}: weights held (weekly)")
    gross = held.sum(axis=1)
    return Section(PORTFOLIO_REPORT_SECTIONS[1], (
        Figure(chart, caption="Weight of each asset held at the end of each week, stacked; the top line is the "
                              "gross exposure (the rest is cash). Regime caps lower the gross in risk-off regimes."),
        Paragraph(f"Gross exposure: average {gross.mean():.1%}, lowest {gross.min():.1%}, highest {gross.max():.1%}; "
                  f"{bt['results'][method]['rebalances']} trades over the window."),
    ), new_page=True)


def _risk(var_doc: Mapping[str, Any], level: float) -> Section:
    res = var_doc["results"][PORTFOLIO_VAR_METHOD]
    assets = res["assets"]
    chart = _chart("risk_contribution_chart", [a["symbol"] for a in assets], [a["weight"] for a in assets],
                   [a["component_var"] for a in assets], total=res["var"],
                   title=f"Component VaR {level:.0%}, one day, as of {var_doc['as_of']}")
    rows = [(a["symbol"], _pct(a["weight"]), _pct(a["component_var"], 3), _pct(a["marginal_var"], 3),
             _pct(a["share"], 1), _pct(a["component_es"], 3)) for a in assets]
    rows.append(("Total", _pct(sum(a["weight"] for a in assets)), _pct(res["var"], 3), "",
                 _pct(1.0 if res["var"] else None, 1), _pct(res["es"], 3)))
    blocks: list[Any] = [
        Paragraph(f"Today's {var_doc['weights_method']} weights as of {var_doc['as_of']}: the target the policy "
                  f"would set in a {WEIGHTS_FAMILY.replace('_', '-')} regime (the loosest caps, hence the "
                  "largest risk)."),
        Figure(chart, caption="Each asset's share of the gross weight against its share of the VaR (component VaR, "
                              "an Euler allocation: the components sum to the portfolio's VaR)."),
        Table(("Asset", "Weight", "Component VaR", "Marginal VaR", "Share of VaR", "Component ES"), tuple(rows),
              col_widths=(1.2, 1.0, 1.2, 1.2, 1.1, 1.2), numeric_cols=(1, 2, 3, 4, 5),
              caption=f"{PORTFOLIO_VAR_METHOD} VaR and ES at {level:.0%}, one day, from the {var_doc['window']} "
                      f"daily returns {var_doc['start']} to {var_doc['as_of']}."),
    ]
    blocks += [Paragraph(f"Note: {n}", "note") for n in var_doc["notes"]]
    return Section(PORTFOLIO_REPORT_SECTIONS[2], tuple(blocks), new_page=True)


def _stress(stress: Mapping[str, Any]) -> Section:
    rows = []
    for sc in stress["scenarios"].values():
        if "error" in sc:
            rows.append((sc["name"], f"{sc['start']} to {sc['end']}", "not covered", "", "", "", sc["error"]))
            continue
        drivers = ", ".join(f"{d['symbol']} {d['pnl']:+.2%}" for d in sc["drivers"])
        rows.append((sc["name"], f"{sc['base_date']} to {sc['end_date']}", _pct(sc["pnl"], sign=True),
                     f"{sc['worst_date']} {_pct(sc['worst_return'], sign=True)}", _pct(-abs(sc["max_drawdown"])),
                     f"{sc['coverage']:.0%}", drivers))
    return Section(PORTFOLIO_REPORT_SECTIONS[3], (
        Table(("Scenario", "Window", "P&L", "Worst day", "Max DD", "Coverage", "Main drivers"), tuple(rows),
              col_widths=(1.5, 1.5, 0.8, 1.5, 0.8, 0.95, 2.1), numeric_cols=(2, 4, 5),
              caption=f"Today's weights ({stress['weights_method']}, as of {stress['as_of']}) held buy-and-hold "
                      "through each historical window from the close before it. Coverage: the share of the "
                      "book's weight whose assets have bars over the window; main drivers: the three worst asset "
                      "P&Ls, in percent of equity."),
    ))


def _drawdowns(bt: Mapping[str, Any], method: str) -> Section:
    cols = [c for c in (method, "equal", "index") if c in bt["equity"]]
    eq = pd.DataFrame({_label(c): bt["equity"][c] for c in cols})
    chart = _chart("drawdown_comparison_chart", eq.index, {c: eq[c].to_numpy(float) for c in eq.columns},
                   title=f"Drawdown: {', '.join(eq.columns)}")
    worst = ", ".join(f"{_label(c)} {format_metric(bt['results'][c]['metrics'].get('max_drawdown'), 'pct')}"
                      for c in cols)
    return Section(PORTFOLIO_REPORT_SECTIONS[4], (
        Figure(chart, caption="Fall from the running peak of each equity curve, net of costs, over the same bars."),
        Paragraph(f"Maximum drawdowns: {worst}."),
    ), new_page=True)


def _crises(bt: Mapping[str, Any]) -> Section:
    cols = list(bt["results"])
    keys = [k for k in HISTORICAL_SCENARIOS if any(k in bt["results"][c]["crisis"] for c in cols)]
    rows = []
    for key in keys:
        sc = next(bt["results"][c]["crisis"][key] for c in cols if key in bt["results"][c]["crisis"])
        for field, what in (("total_return", "return"), ("max_drawdown", "max drawdown"),
                            ("worst_day", "worst day")):
            first = field == "total_return"
            rows.append((f"{sc['name']} ({sc['start']} to {sc['end']})" if first else "", what,
                         *(format_metric(bt["results"][c]["crisis"].get(key, {}).get(field), "pct") for c in cols)))
    blocks: list[Any]
    if rows:
        blocks = [Table(("Window", "", *(_label(c) for c in cols)), tuple(rows),
                        col_widths=(2.6, 1.1, *([1.0] * len(cols))), numeric_cols=tuple(range(2, len(cols) + 2)),
                        caption="Each column's figures inside the historical stress windows its backtest covers.")]
    else:
        blocks = [Paragraph("The backtest window covers none of the historical stress windows.", "note")]
    return Section(PORTFOLIO_REPORT_SECTIONS[5], tuple(blocks))


def portfolio_document(bt: Mapping[str, Any], var_doc: Mapping[str, Any], stress: Mapping[str, Any],
                       method: str, *, level: float, source: str) -> ReportDocument:
    """Lay out the portfolio report from the services' results.

    Parameters
    ----------
    bt : mapping
        :func:`agents.services.portfolio.portfolio_backtest` with ``method`` among its methods.
    var_doc : mapping
        :func:`agents.services.portfolio_risk.universe_var` with :data:`PORTFOLIO_VAR_METHOD`.
    stress : mapping
        :func:`agents.services.portfolio_risk.universe_stress`.
    method : str
        The method reported.
    level : float
        The VaR level of ``var_doc``.
    source : str
        The market-data source, for the cover.
    """
    uni, w = bt["universe"], bt["window"]
    facts = (
        ("Universe", f"{uni['name']} ({uni['origin']}): {', '.join(bt['assets'])}"),
        ("Method", f"{_label(method)} ({method}) against 1/N, static inverse volatility"
                   + (" and the index" if "index" in bt["results"] else "")),
        ("Benchmark index", uni["benchmark"] or "none"),
        ("Regime symbol", str(bt["regime"]["symbol"])),
        ("Backtest window", f"{w['start'][:10]} to {w['end'][:10]} ({w['bars']:,} bars)"),
        ("Data", f"source {source}, as of {var_doc['as_of']}"),
    )
    sections = (_summary(bt, method), _weights(bt, method), _risk(var_doc, level), _stress(stress),
                _drawdowns(bt, method), _crises(bt))
    return ReportDocument(
        title=f"RegimeDesk portfolio report: {uni['name']} {_label(method)}",
        subtitle=f"Data as of {var_doc['as_of']}",
        cover_facts=facts,
        sections=sections,
        footer=f"RegimeDesk portfolio {uni['name']} {method}",
    )


def build_portfolio_report(
    settings: Settings,
    secrets: Secrets,
    universe: str,
    method: str | None = None,
    *,
    source: str | None = None,
    as_of: str | None = None,
    progress: Progress | None = None,
    status: Status | None = None,
) -> PortfolioReport:
    """Run the portfolio backtest and today's risk of ``universe`` and lay out the report.

    Parameters
    ----------
    universe : str
        Builtin or configured universe name, or a file listing symbols.
    method : str, optional
        ``erc``, ``mv``, ``hrp`` or ``invvol`` (default :func:`report_method`).
    source, as_of : str, optional
        Market-data source (default ``data.source``) and the last date used.
    progress : callable, optional
        ``progress(stage, done, total)`` of the backtest.
    status : callable, optional
        Receives one line per step.

    Raises
    ------
    UniverseError
        Unknown universe, or one without a regime symbol.
    ValueError
        Unknown method.
    """
    status = status or (lambda _m: None)
    chosen = report_method(settings, method)
    uni = resolve_universe(settings, universe)
    src = source or settings.data.source
    status(f"portfolio report: {chosen} backtest of {uni.name}")
    bt = portfolio_backtest(settings, secrets, uni, [chosen], source=src, end=as_of, progress=progress)
    status("portfolio report: today's weights, VaR and stress")
    book, store = load_book(settings, secrets, universe, chosen, source=src, as_of=as_of)
    level = settings.risk.var_level
    var_doc = universe_var(book, [PORTFOLIO_VAR_METHOD], level=level, window=PORTFOLIO_VAR_WINDOW)
    stress = universe_stress(settings, book, store, list(HISTORICAL_SCENARIOS), {})
    doc = portfolio_document(bt, var_doc, stress, chosen, level=level, source=src)
    return PortfolioReport(doc, chosen, bt, var_doc, stress)


def write_portfolio_report(
    settings: Settings,
    secrets: Secrets,
    universe: str,
    path: str | Path,
    method: str | None = None,
    *,
    source: str | None = None,
    as_of: str | None = None,
    progress: Progress | None = None,
    status: Status | None = None,
) -> tuple[RenderedReport, PortfolioReport]:
    """Build the portfolio report and render it to ``path`` (written atomically).

    A ``.html``/``.htm`` file is one self-contained page, anything else a PDF
    (:func:`integrations.report_format`). See :func:`build_portfolio_report` for the
    other parameters.
    """
    report = build_portfolio_report(settings, secrets, universe, method, source=source, as_of=as_of,
                                    progress=progress, status=status)
    fmt = report_format(path)
    if status:
        status(f"portfolio report: rendering {path} ({fmt.upper()})")
    rendered = (render_html if fmt == "html" else render_pdf)(report.document, path)
    return rendered, report

