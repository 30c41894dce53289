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
    # charts: price/regime, calibration, importance, equity/drawdown, VaR
    images = sum(len(p.images) for p in reader.pages)
    assert images == pdf["figures"] == 5


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


def test_run_with_a_paper_broker_reports_verdicts_and_orders(tmp_path, capsys):
    out = tmp_path / "run.pdf"
    assert main(["run", "SP500", "--broker", "paper", "--report", str(out), "--no-backtest", "--json"]) == 0
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


def test_bad_output_paths_are_refused_before_anything_runs(tmp_path, capsys):
    assert main(["report", "SP500", "--out", str(tmp_path)]) == 1
    assert "is a directory" in capsys.readouterr().err
    assert main(["report", "SP500", "--out", str(tmp_path / "r.txt")]) == 1
    assert "ending in .pdf" in capsys.readouterr().err
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

    from integrations import _pdf

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_pdf.os, "fsync", disk_full)  # the path is fine; the write fails late
    out = tmp_path / "sub" / "r.pdf"
    assert main(["run", "SP500", "--report", str(out), "--no-backtest"]) == 1
    captured = capsys.readouterr()
    assert "the report was not written" in captured.err
    assert "report: NOT written" in captured.out
    assert not out.exists()
    assert main(["journal", "list", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert runs[0]["status"] == "completed"  # the run's results are journaled regardless
