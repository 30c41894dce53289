"""The PDF report of a run: pages, text, charts, numbers that match the run, failures kept apart."""

from __future__ import annotations

import json
import re

import pytest
from pypdf import PdfReader

from agents.cli import main

#: Yearly ML refits keep the model training and the backtest quick; the procedure is the same.
FAST_ML = "[ml]\nrefit_every = 252\n"


@pytest.fixture(autouse=True)
def _fast_ml(tmp_path, monkeypatch):
    (tmp_path / "fast-ml.toml").write_text(FAST_ML)
    monkeypatch.setenv("REGIMEDESK_CONFIG", str(tmp_path / "fast-ml.toml"))


def _pages(path) -> list[str]:
    return [p.extract_text() for p in PdfReader(str(path)).pages]


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.fixture(scope="module")
def sp500_report(tmp_path_factory):
    """``regimedesk report SP500 --out ... --json`` once for the module."""
    import os

    tmp = tmp_path_factory.mktemp("report")
    (tmp / "fast.toml").write_text(FAST_ML)
    env = {"REGIMEDESK_HOME": str(tmp / "home"), "REGIMEDESK_CONFIG": str(tmp / "fast.toml")}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        import contextlib
        import io

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(["report", "SP500", "--out", str(tmp / "out" / "report.pdf"), "--json"])
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert code == 0
    return tmp / "out" / "report.pdf", json.loads(out.getvalue())


def test_report_has_the_expected_pages_text_and_charts(sp500_report):
    path, state = sp500_report
    reader = PdfReader(str(path))
    pdf = state["report"]["pdf"]
    assert pdf["path"] == str(path) and pdf["pages"] == len(reader.pages) >= 6
    pages = _pages(path)
    text = _flat(" ".join(pages))
    assert f"Run id {state['run_id']}" in _flat(pages[0]) and "Data as of 2018-12-31" in pages[0]
    assert "source builtin, 5,031 daily bars 1999-01-04 to 2018-12-31" in _flat(pages[0])
    for heading in ("Executive summary", "Regimes", "Statistics", "ML signal", "Walk-forward backtest",
                    "Value at risk", "Decision, risk gate and orders", "Risk state", "Methodology"):
        assert heading in text, heading
    n = len(pages)
    for i, page in enumerate(pages[1:], start=2):
        assert f"page {i} of {n}" in page
    # charts: price/regime over the backtest window and the last years, calibration, importance,
    # equity/drawdown, monthly heatmap, rolling Sharpe/volatility, exposure, VaR
    images = sum(len(p.images) for p in reader.pages)
    assert images == pdf["figures"] == 9


def test_report_numbers_are_the_runs_numbers(sp500_report):
    path, state = sp500_report
    text = _flat(" ".join(_pages(path)))
    ml = state["ml_signal"]["SP500"]
    assert f"P(up over 5 bars) = {ml['p_up']:.2f}" in text
    assert f"{ml['out_of_sample']['auc']:.3f}" in text
    mt = state["regime"]["SP500"]["timeframes"]["MT"]
    assert f"MT 1D {mt['label'].replace('_', ' ')}" in text and mt["since"][:10] in text
    adf = state["statistics"]["SP500"]["MT"]["adf"]
    assert f"{adf['pvalue']:.3f}" in text and adf["reading"][:40] in text
    for agent in ("regime", "statistics", "ml_signal", "decision"):  # the checked narratives are in the summary
        assert _flat(state["narratives"][agent]["SP500"]["text"])[:60] in text, agent
    weight = state["decision"]["symbols"]["SP500"]["target_weight"]
    assert f"targets a weight of {100 * weight:.1f}%" in text
    # the VaR table is the one `regimedesk risk var SP500 --backtest` prints
    assert "Kupiec POF" in text and "Basel traffic light" in text


def test_report_var_and_backtest_match_their_commands(sp500_report, capsys):
    path, _ = sp500_report
    text = _flat(" ".join(_pages(path)))
    assert main(["risk", "var", "SP500", "--backtest", "--json"]) == 0
    var = json.loads(capsys.readouterr().out)
    assert f"{var['n_exceptions']} of {var['n']:,}" in text
    assert f"expected {var['expected']:.1f}" in text


def test_report_headline_figures_and_trades_are_the_backtest_commands(sp500_report, capsys):
    import numpy as np
    import pandas as pd

    from analytics import trade_list, trade_summary

    path, _ = sp500_report
    text = _flat(" ".join(_pages(path)))
    assert main(["backtest", "SP500", "--json"]) == 0
    bt = json.loads(capsys.readouterr().out)
    s, h = bt["metrics"]["strategy"], bt["metrics"]["buy_and_hold"]
    head = text[text.index("Headline figures"):text.index("Other figures")]
    for key, fmt in (("cagr", "{:.1%}"), ("volatility", "{:.1%}"), ("sharpe", "{:.2f}"), ("sortino", "{:.2f}"),
                     ("max_drawdown", "{:.1%}"), ("calmar", "{:.2f}")):
        assert fmt.format(s[key]) in head and fmt.format(h[key]) in head, key
    # The trade table is analytics.trade_list of the same backtest's weights and returns.
    equity = np.asarray(bt["equity"]["strategy"], float)
    index = pd.bdate_range("2000-01-03", periods=len(equity) - 1)
    returns = pd.Series(equity[1:] / equity[:-1] - 1.0, index=index)
    weights = pd.Series(np.asarray(bt["weights"], float)[1:], index=index)
    trades, summary = trade_list(weights, returns), trade_summary(weights, returns)
    assert summary.n_trades == len(trades) >= 1
    assert f"Trade statistics combined policy Trades {summary.n_trades:,} ({summary.n_long} long" in text
    assert f"Best / worst trade {100 * summary.best_return:.2f}% / {100 * summary.worst_return:.2f}%" in text
    last = trades[-1]
    assert f"{last.bars:,} {100 * last.average_weight:.1f}% {100 * last.return_:.2f}%" in text


def test_html_report_is_the_same_report_with_interactive_charts(tmp_path, capsys):
    from html.parser import HTMLParser

    out = tmp_path / "r.html"
    assert main(["report", "SP500", "--out", str(out), "--no-backtest", "--json"]) == 0
    state = json.loads(capsys.readouterr().out)
    assert state["report"]["pdf"] == {"path": str(out), "pages": 1, "figures": 4, "bytes": out.stat().st_size,
                                      "format": "html"}
    page = out.read_text(encoding="utf-8")

    class Parse(HTMLParser):
        def __init__(self):
            super().__init__()
            self.h2, self.charts, self.external, self.text, self._tag = [], {}, [], [], None

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            self._tag = (tag, a)
            for key in ("src", "href"):
                if (a.get(key) or "").startswith(("http:", "https:", "//")):
                    self.external.append(a[key])

        def handle_data(self, data):
            tag, a = self._tag or ("", {})
            if not data.strip():
                return
            if tag == "script" and a.get("type") == "application/json":
                self.charts[a["id"]] = json.loads(data)
            elif tag != "script":
                self.text.append(data)
                if tag == "h2":
                    self.h2.append(data)

    p = Parse()
    p.feed(page)
    assert not p.external
    assert p.h2[:2] == ["1.  Executive summary", "2.  SP500"] and p.h2[-1].endswith("Methodology")
    assert len(p.charts) == 4 and all(c["data"] and c["layout"] for c in p.charts.values())
    price = p.charts["chart-0-data"]
    close = [v for v in price["data"][0]["y"] if v is not None]
    assert price["data"][0]["x"][-1] == "2018-12-31" and close[-1] == pytest.approx(2506.85, abs=0.01)
    assert any(s.get("fillcolor") for s in price["layout"]["shapes"])  # regime shading
    text = _flat(" ".join(p.text))
    ml = state["ml_signal"]["SP500"]
    assert f"P(up over 5 bars) = {ml['p_up']:.2f}" in text and f"{ml['out_of_sample']['auc']:.3f}" in text
    assert page.count("Plotly.newPlot") == 1  # one loader, and plotly.js itself inlined once
    assert "report: " not in capsys.readouterr().out


def test_run_with_a_paper_broker_reports_verdicts_and_orders(tmp_path, capsys):
    # As of a calm mid-2017 bar (risk-on on every timeframe), so that the run has an order to report.
    out = tmp_path / "run.pdf"
    assert main(["run", "SP500", "--as-of", "2017-06-30", "--broker", "paper", "--report", str(out),
                 "--no-backtest", "--json"]) == 0
    state = json.loads(capsys.readouterr().out)
    assert state["report"]["pdf"]["path"] == str(out)
    text = _flat(" ".join(_pages(out)))
    assert "Walk-forward backtest" not in text
    (verdict,) = state["risk_gate"]["symbols"]["SP500"]
    assert "Risk-gate verdicts" in text and verdict["action"] in text
    (sent,) = state["execution"]["symbols"]["SP500"]
    assert "Orders sent" in text and sent["client_order_id"] in text
    assert "Broker paper" in text
    assert PdfReader(str(out)).pages and state["report"]["pdf"]["figures"] == 4


def test_two_symbols_get_a_section_each(tmp_path, capsys):
    out = tmp_path / "two.pdf"
    assert main(["report", "SP500", "NASDAQ", "--out", str(out), "--no-backtest", "--as-of", "2010-06-30"]) == 0
    assert "2 pages" not in capsys.readouterr().out
    pages = _pages(out)
    text = _flat(" ".join(pages))
    assert "Data as of 2010-06-30" in pages[0]
    assert "2. SP500" in text and "3. NASDAQ" in text
    assert "NASDAQ closed at" in text and "SP500 closed at" in text


def test_report_paths_choose_the_format_and_name_a_file_in_a_directory(tmp_path):
    from agents.cli.run import report_path

    assert report_path(str(tmp_path / "r.PDF")) == str(tmp_path / "r.PDF")
    assert report_path(str(tmp_path / "r.htm"), fmt="html") == str(tmp_path / "r.htm")
    assert report_path(str(tmp_path), symbols=["SP500", "X/Y"]) == str(tmp_path / "report-SP500-X_Y.pdf")
    assert report_path(str(tmp_path / "new") + "/", fmt="html") == str(tmp_path / "new" / "report.html")


def test_bad_output_paths_are_refused_before_anything_runs(tmp_path, capsys):
    assert main(["report", "SP500", "--out", str(tmp_path / "r.pdf"), "--format", "html"]) == 1
    assert "give a file name ending in .html or .htm" in capsys.readouterr().err
    assert main(["report", "SP500", "--out", str(tmp_path / "r.txt")]) == 1
    assert "ending in .pdf or .html or .htm" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    for argv in (["report", "SP500", "--out", str(blocker / "sub" / "r.pdf")],
                 ["run", "SP500", "--report", str(blocker / "r.pdf")]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert f"{blocker} is not a directory" in err and len(err.strip().splitlines()) == 1
    assert main(["report", "NOSUCH", "--out", str(tmp_path / "r.pdf")]) != 0
    assert not (tmp_path / "r.pdf").exists()
    assert main(["journal", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []  # refused before any run started


def test_a_report_that_cannot_be_written_fails_the_command_but_keeps_the_run(tmp_path, capsys, monkeypatch):
    import errno

    from integrations import _document

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_document.os, "fsync", disk_full)  # the path is fine; the write fails late
    out = tmp_path / "sub" / "r.pdf"
    assert main(["run", "SP500", "--report", str(out), "--no-backtest"]) == 1
    captured = capsys.readouterr()
    assert "the report was not written" in captured.err
    assert "report: NOT written" in captured.out
    assert not out.exists()
    assert main(["journal", "list", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert runs[0]["status"] == "completed"  # the run's results are journaled regardless


def _pcts(cells: str) -> list[float]:
    return [float(x) / 100 for x in re.findall(r"(-?\d+\.\d)%", cells)]


def test_report_backtest_tearsheet_tables_agree_with_the_metrics(sp500_report):
    path, _ = sp500_report
    text = _flat(" ".join(_pages(path)))
    total_s, total_b = _pcts(re.search(r"Total return (\S+) (\S+)", text).group(0))
    years = re.findall(r"\b(20\d\d) (-?\d+\.\d%) (-?\d+\.\d%) (-?\d+\.\d%)", text)
    first = int(re.search(r"starts with the backtest window on (\d{4})-", text).group(1))
    assert 2000 < first < 2010 and [int(y[0]) for y in years] == list(range(first, 2019))
    # the calendar years compound to the window's total return (cells are rounded to 0.1%)
    growth_s = growth_b = 1.0
    for _, s, b, d in years:
        (rs,), (rb,), (rd,) = _pcts(s), _pcts(b), _pcts(d)
        growth_s, growth_b = growth_s * (1 + rs), growth_b * (1 + rb)
        assert rd == pytest.approx(rs - rb, abs=0.0011)
    assert growth_s - 1 == pytest.approx(total_s, abs=0.02)
    assert growth_b - 1 == pytest.approx(total_b, abs=0.02)
    # the deepest drawdown is the metrics' max drawdown; the longest is its duration
    max_dd = _pcts(re.search(r"Max drawdown (\S+)", text).group(1))[0]
    duration = int(re.search(r"Max DD duration \(bars\) ([\d,]+)", text).group(1).replace(",", ""))
    rows = re.findall(r"\b([1-5]) (\d{4}-\d\d-\d\d) (\d{4}-\d\d-\d\d) (\d{4}-\d\d-\d\d|not recovered) "
                      r"(-\d+\.\d)% ([\d,]+)", text)
    assert [r[0] for r in rows] == ["1", "2", "3", "4", "5"]
    depths = [float(r[4]) / 100 for r in rows]
    assert depths[0] == pytest.approx(max_dd, abs=1e-9) and depths == sorted(depths)
    assert duration >= max(int(r[5].replace(",", "")) for r in rows)  # the longest may not be a deepest
    for r in rows:
        assert r[1] <= r[2] and (r[3] == "not recovered" or r[2] < r[3])
    assert "volatility over the trailing 126 bars" in text and "its trailing 126-bar mean" in text
    assert "over the whole backtest window" in text and "shading: the regime consensus at each bar" in text
    assert "Monte Carlo p-values against simulated random walks" in text


def test_report_hides_zero_importances_and_contributions(sp500_report, tmp_path):
    path, state = sp500_report
    text = _flat(" ".join(_pages(path)))
    from agents.config import load_settings
    from agents.services.ml import model_store

    ml = state["ml_signal"]["SP500"]
    home = path.parent.parent / "home"
    settings = load_settings(path.parent.parent / "fast.toml", env={"REGIMEDESK_HOME": str(home)})
    gain = model_store(settings).load("SP500", ml["model_version"]).metadata["gain_importance"]
    zero = sum(1 for v in gain.values() if v == 0)
    if zero:
        assert f"{zero} of the {len(gain)} features have zero importance" in text
    else:
        assert "have zero importance" not in text
    for name, value in ml["top_contributions"].items():
        if round(value, 4) == 0:
            assert f"{name} 0.0000" not in text and f"{name} -0.0000" not in text


def test_ml_blocks_say_none_when_every_contribution_is_zero(tmp_path):
    from types import SimpleNamespace

    from agents.config import load_settings
    from agents.services.report import _ml_blocks
    from integrations import Paragraph, Table

    settings = load_settings(None, env={"REGIMEDESK_HOME": str(tmp_path)})
    ml = {"horizon_bars": 5, "p_up": 0.5, "direction": "up", "confidence": 0.0, "model_version": "v0001",
          "model_train_end": "2018-12-31", "model_age_days": 0,
          "out_of_sample": {"n": 10, "auc": 0.5, "brier": 0.25, "brier_climatology": 0.25,
                            "accuracy": 0.5, "base_rate": 0.5}}
    state = {"ml_signal": {"X": {**ml, "top_contributions": {"a": 0.0, "b": 0.0}}}}
    blocks = _ml_blocks(SimpleNamespace(settings=settings), state, "X")
    assert not [b for b in blocks if isinstance(b, Table) and b.header[0] == "Feature"]
    assert any(isinstance(b, Paragraph) and "contributions" in b.text and ": none" in b.text for b in blocks)
    state = {"ml_signal": {"X": {**ml, "top_contributions": {"a": 0.5, "b": 0.0, "c": -0.00001}}}}
    (table,) = [b for b in _ml_blocks(SimpleNamespace(settings=settings), state, "X")
                if isinstance(b, Table) and b.header[0] == "Feature"]
    assert table.rows == (("a", "0.5000"),)
