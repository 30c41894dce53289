"""``regimedesk report --universe``: the portfolio report (issue 25) as PDF and HTML.

A configured universe of three builtin stocks keeps it small; the regime walk-forward of the
regime symbol (the slow part) runs once for the module in a shared home, whose fit cache the
later calls reuse. Truths: the summary's CAGR is the service's, the stress P&L is recomputed
by hand from the builtin closes, and the weights follow from the caps.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from pypdf import PdfReader

from agents.cli import main
from agents.config import Secrets, load_settings
from agents.services.context import AppContext
from agents.services.format import format_metric
from agents.services.portfolio import portfolio_backtest, resolve_universe
from agents.services.portfolio_report import PORTFOLIO_REPORT_SECTIONS
from integrations import (
    Chart,
    _interactive_portfolio,
    drawdown_comparison_chart,
    risk_contribution_chart,
    weights_area_chart,
)
from integrations import _portfolio_charts as png_charts

CONFIG = """[portfolio]
regime_symbol = "SP500X"

[portfolio.universes]
three = ["KO", "JNJ", "XOM"]
"""
PNG = b"\x89PNG\r\n\x1a\n"


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def _cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue()


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """The PDF and HTML reports of ``three``/erc, and the service's own backtest, in one home."""
    tmp = tmp_path_factory.mktemp("portfolio-report")
    (tmp / "config.toml").write_text(CONFIG)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REGIMEDESK_HOME", str(tmp / "home"))
        mp.setenv("REGIMEDESK_CONFIG", str(tmp / "config.toml"))
        pdf_code, pdf_out = _cli("report", "--universe", "three", "--portfolio", "erc",
                                 "--out", str(tmp / "out" / "p.pdf"), "--json")
        html_code, _ = _cli("report", "--universe", "three", "--portfolio", "erc",
                            "--out", str(tmp / "out" / "p.html"))
        settings = load_settings(None)
        service = portfolio_backtest(settings, Secrets(), resolve_universe(settings, "three"), ["erc"],
                                     benchmarks=False)
    assert pdf_code == 0 and html_code == 0
    return SimpleNamespace(pdf=tmp / "out" / "p.pdf", html=tmp / "out" / "p.html", doc=json.loads(pdf_out),
                           service=service)


def _builtin_close(symbol: str) -> pd.Series:
    store = AppContext(load_settings(None), None).bars({"source": "builtin", "as_of": None, "start": "1900-01-01"})
    close = store.get(symbol, "MT").frame["close"]
    close.index = close.index.tz_localize(None).normalize()
    return close


def test_the_pdf_has_the_six_sections_and_three_charts(reports):
    reader = PdfReader(str(reports.pdf))
    assert reports.doc["report"]["pages"] == len(reader.pages) >= 4
    assert reports.doc["report"]["format"] == "pdf" and reports.doc["report"]["figures"] == 3
    assert sum(len(p.images) for p in reader.pages) == 3
    text = _flat(" ".join(p.extract_text() for p in reader.pages))
    for k, title in enumerate(PORTFOLIO_REPORT_SECTIONS, start=1):
        assert f"{k}. {title}" in text, title
    assert "three (config): KO, JNJ, XOM" in text and "Regime symbol SP500X" in text
    for column in ("ERC", "1/N", "InvVol (no regime)"):
        assert column in text
    assert "The universe has no benchmark index." in text  # a configured universe has no index column


def test_the_summary_cagr_is_the_services_figure(reports):
    cagr = reports.service["results"]["erc"]["metrics"]["cagr"]
    assert reports.doc["metrics"]["erc"]["cagr"] == pytest.approx(cagr, rel=1e-12)
    summary = _flat(PdfReader(str(reports.pdf)).pages[1].extract_text())
    row = re.search(r"CAGR (\S+) (\S+) (\S+)", summary)
    assert row is not None, summary
    assert row.group(1) == format_metric(cagr, "pct")
    m = reports.doc["metrics"]
    assert (row.group(2), row.group(3)) == (format_metric(m["equal"]["cagr"], "pct"),
                                            format_metric(m["invvol_static"]["cagr"], "pct"))
    w = reports.service["window"]
    assert reports.doc["window"] == w and f"{w['start'][:10]} to {w['end'][:10]}" in summary


def test_the_stress_pnl_is_the_hand_computed_buy_and_hold(reports):
    # Three assets under a 25 % per-asset cap: ERC's risk-on target is 25 % of each (the rest cash).
    text = _flat(" ".join(p.extract_text() for p in PdfReader(str(reports.pdf)).pages))
    assert "KO 25.00% " in text and "JNJ 25.00% " in text and "XOM 25.00% " in text
    base, end = pd.Timestamp("2020-02-18"), pd.Timestamp("2020-03-23")  # the close before, the last day
    pnl = sum(0.25 * (_builtin_close(s)[end] / _builtin_close(s)[base] - 1.0) for s in ("KO", "JNJ", "XOM"))
    assert f"COVID-19 crash {base.date()} to {end.date()} {pnl:+.2%}" in text


def _html_charts(html: str) -> list[dict]:
    ids = re.findall(r'<div class="chart" id="(chart-\d+)"></div>', html)
    return [json.loads(re.search(rf'<script type="application/json" id="{i}-data">(.*?)</script>', html).group(1))
            for i in ids]


def test_the_html_page_embeds_the_same_sections_and_three_plotly_charts(reports):
    html = reports.html.read_text(encoding="utf-8")
    for title in PORTFOLIO_REPORT_SECTIONS:
        assert title.replace("'", "&#x27;") in html or title in html, title
    assert "<img" not in html and "Plotly.newPlot" in html
    weights, risk, drawdown = _html_charts(html)
    # the weights: one stacked band per asset and the gross line, which is the sum of the bands
    bands = [t for t in weights["data"] if t.get("stackgroup")]
    assert [t["name"] for t in bands] == ["KO", "JNJ", "XOM"] and weights["data"][-1]["name"] == "gross"
    total = np.sum([t["y"] for t in bands], axis=0)
    np.testing.assert_allclose(weights["data"][-1]["y"], total, rtol=1e-5)
    # the risk: ERC holds 25 % of each asset, so each is a third of the gross weight
    share, var_share = risk["data"]
    assert share["x"] == pytest.approx([100 / 3] * 3, rel=1e-5) and sorted(share["y"]) == ["JNJ", "KO", "XOM"]
    assert sum(var_share["x"]) == pytest.approx(100.0, abs=1e-3)
    assert risk["layout"]["barmode"] == "group"
    # the drawdowns: ERC first, and its deepest point is the service's maximum drawdown
    assert drawdown["data"][0]["name"] == "ERC" and drawdown["data"][0]["fill"] == "tozeroy"
    erc = [v for v in drawdown["data"][0]["y"] if v is not None]
    mdd = reports.service["results"]["erc"]["metrics"]["max_drawdown"]
    assert min(erc) / 100 == pytest.approx(-abs(mdd), rel=1e-5) and max(erc) == 0.0


@pytest.mark.parametrize(("argv", "needle"), [
    (["report", "SP500", "--universe", "sp500-20", "--out", "x.pdf"], "not both"),
    (["report", "SP500", "--portfolio", "erc", "--out", "x.pdf"], "--portfolio goes with --universe"),
    (["report", "--out", "x.pdf"], "give symbols or --universe"),
    (["report", "--universe", "sp500-20", "--no-backtest", "--out", "x.pdf"], "--no-backtest"),
])
def test_bad_combinations_exit_2_before_any_work(capsys, tmp_path, argv, needle):
    argv = [a if a != "x.pdf" else str(tmp_path / "x.pdf") for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.pdf").exists()


# ----------------------------------------------------------------------------- the charts


def test_the_portfolio_charts_are_pngs_and_check_their_inputs():
    dates = pd.date_range("2020-01-03", periods=60, freq="W-FRI")
    w = {"A": np.linspace(0.1, 0.4, 60), "B": np.full(60, 0.3)}
    assert weights_area_chart(dates, w, title="w").startswith(PNG)
    assert drawdown_comparison_chart(dates, {"x": np.linspace(1, 2, 60), "y": np.linspace(2, 1, 60)}).startswith(PNG)
    assert risk_contribution_chart(["A", "B"], [0.5, 0.5], [0.01, -0.002], total=0.008).startswith(PNG)
    with pytest.raises(ValueError, match=r"weights\['B'\] has 59 values but dates has 60"):
        weights_area_chart(dates, {"A": w["A"], "B": w["B"][:-1]})
    with pytest.raises(ValueError, match="non-empty mapping"):
        drawdown_comparison_chart(dates, {})
    with pytest.raises(ValueError, match="contributions has 1 values but symbols has 2"):
        risk_contribution_chart(["A", "B"], [0.5, 0.5], [0.01])
    with pytest.raises(ValueError, match="symbols is empty"):
        risk_contribution_chart([], [], [])


# ----------------------------------------------------------------------------- the interactive twins

_DATES = pd.date_range("2020-01-03", periods=4, freq="W-FRI")
TWIN_BAD_INPUTS = [
    ("weights_area_chart", (_DATES, {"A": [0.1, 0.2, 0.3]}), {}),
    ("weights_area_chart", (_DATES, {}), {}),
    ("weights_area_chart", (_DATES[::-1], {"A": [0.1] * 4}), {}),
    ("weights_area_chart", (pd.DatetimeIndex([]), {"A": []}), {}),
    ("risk_contribution_chart", ([], [], []), {}),
    ("risk_contribution_chart", (["A", "B"], [0.5], [0.1, 0.1]), {}),
    ("risk_contribution_chart", (["A", "B"], [0.5, 0.5], [0.1]), {}),
    ("drawdown_comparison_chart", (_DATES, {"x": [1.0, 2.0]}), {}),
    ("drawdown_comparison_chart", (_DATES, []), {}),
]


@pytest.mark.parametrize("case", TWIN_BAD_INPUTS, ids=[f"{c[0]}-{i}" for i, c in enumerate(TWIN_BAD_INPUTS)])
def test_the_twins_validate_like_the_png_charts(case):
    kind, args, kwargs = case
    with pytest.raises(ValueError) as png_error:
        getattr(png_charts, kind)(*args, **kwargs)
    with pytest.raises(ValueError) as html_error:
        getattr(_interactive_portfolio, kind)(*args, **kwargs)
    assert str(html_error.value) == str(png_error.value)


def test_the_twins_have_the_png_signatures_and_charts_dispatch_to_them():
    import inspect

    assert _interactive_portfolio.__all__ == png_charts.__all__
    for kind in png_charts.__all__:
        png_params = inspect.signature(getattr(png_charts, kind)).parameters.values()
        html_params = inspect.signature(getattr(_interactive_portfolio, kind)).parameters.values()
        assert [(p.name, p.kind, p.default) for p in html_params] == \
            [(p.name, p.kind, p.default) for p in png_params], kind
    chart = Chart("drawdown_comparison_chart", (_DATES, {"x": [1.0, 2.0, 1.5, 3.0]}), {"title": "t"})
    assert chart.plotly() == _interactive_portfolio.drawdown_comparison_chart(*chart.args, **chart.kwargs)
    assert chart.png().startswith(PNG)
    with pytest.raises(ValueError, match="Chart.kind must be one of"):
        Chart("no_such_chart")


def test_weights_area_twin_stacks_percent_with_the_gross_line():
    spec = _interactive_portfolio.weights_area_chart(
        _DATES, {"A": [0.1, 0.2, np.nan, -0.1], "B": [0.3, 0.3, 0.3, 0.5]}, title="w")
    a, b, gross = spec["data"]
    assert a["y"] == [10.0, 20.0, 0.0, 0.0]  # NaN as 0, negative drawn as 0
    assert b["y"] == [30.0, 30.0, 30.0, 50.0] and a["stackgroup"] == b["stackgroup"]
    assert gross["name"] == "gross" and gross["y"] == [40.0, 50.0, 30.0, 50.0] and "stackgroup" not in gross
    assert a["x"] == ["2020-01-03", "2020-01-10", "2020-01-17", "2020-01-24"]
    assert spec["layout"]["yaxis"]["range"] == pytest.approx([0, 104.0])
    assert spec["layout"]["title"]["text"] == "w"
    json.dumps(spec, allow_nan=False)


def test_risk_contribution_twin_shares_largest_on_top_and_hedges_red():
    spec = _interactive_portfolio.risk_contribution_chart(["A", "B", "C"], [0.5, -0.25, 0.25],
                                                          [0.01, -0.002, 0.004], total=0.012)
    weight, risk = spec["data"]
    assert weight["y"] == risk["y"] == ["B", "C", "A"]  # Plotly draws the first category at the bottom
    assert weight["x"] == [25.0, 25.0, 50.0]  # |w| / sum |w|
    assert risk["x"] == [-16.6667, 33.3333, 83.3333]  # c / sum c, sum c = 0.012
    assert risk["marker"]["color"][0] != risk["marker"]["color"][1] == risk["marker"]["color"][2]
    assert risk["name"] == "share of risk (total 1.20% of equity)"
    assert weight["orientation"] == risk["orientation"] == "h" and spec["layout"]["barmode"] == "group"


def test_drawdown_twin_lines_from_the_running_peak():
    spec = _interactive_portfolio.drawdown_comparison_chart(
        _DATES, {"x": [1.0, 2.0, 1.5, 3.0], "y": [2.0, 1.0, np.nan, 4.0]})
    x, y = spec["data"]
    assert x["y"] == [0.0, 0.0, -25.0, 0.0] and x["fill"] == "tozeroy" and "fill" not in y
    assert y["y"] == [0.0, -50.0, None, 0.0]  # NaN is a gap
    assert spec["layout"]["yaxis"]["range"] == pytest.approx([-50 * 1.05 - 1, 1])
