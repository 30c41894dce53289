"""``regimedesk report --universe``: the portfolio report (issue 25) as PDF and HTML.

A configured universe of three builtin stocks keeps it small; the regime walk-forward of the
regime symbol (the slow part) runs once for the module in a shared home, whose fit cache the
later calls reuse. Truths: the summary's CAGR is the service's, the stress P&L is recomputed
by hand from the builtin closes, and the weights follow from the caps.
"""

from __future__ import annotations

import base64
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
from integrations import drawdown_comparison_chart, risk_contribution_chart, weights_area_chart

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


def test_the_html_page_embeds_the_same_sections_and_charts(reports):
    html = reports.html.read_text(encoding="utf-8")
    for title in PORTFOLIO_REPORT_SECTIONS:
        assert title.replace("'", "&#x27;") in html or title in html, title
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 3
    assert all(base64.b64decode(data).startswith(PNG) for data in images)


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
