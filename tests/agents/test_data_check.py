"""``regimedesk data check`` lists every problem of a bar file; the file source still stops at one."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from agents.cli import main
from integrations import (
    FileSource,
    MarketData,
    PermanentError,
    inspect_bar_file,
    read_bar_file,
)

HEADER = "date,open,high,low,close,volume"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _rows(n: int = 30) -> list[str]:
    """``n`` clean daily bars as CSV lines (no header): close rises 10.00, 10.10, ..."""
    days = pd.bdate_range("2021-01-04", periods=n)
    return [
        f"{d.date()},{10 + k / 10:.2f},{11 + k / 10:.2f},{9 + k / 10:.2f},{10 + k / 10:.2f},1000"
        for k, d in enumerate(days)
    ]


def _broken_csv(path):
    """Four problems at known lines (the header is line 1, data row r is on line r + 2):

    line 5 (row 3): a date that cannot be read; line 9 (row 7): close is not a number;
    lines 13 and 14 (rows 11, 12): the same date, the earlier bar is the duplicate;
    line 22 (row 20): high below low.
    """
    rows = _rows()
    rows[3] = "2021-13-45" + rows[3][10:]
    rows[7] = ",".join(rows[7].split(",")[:4] + ["abc", "1000"])
    rows[12] = rows[11][:10] + rows[12][10:]
    rows[20] = "2021-02-01,12.00,11.00,13.00,12.00,1000"
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


def test_every_problem_is_reported_with_its_line_json(capsys, tmp_path):
    path = _broken_csv(tmp_path / "bars.csv")
    code, out, err = run(capsys, "data", "check", str(path), "--json")
    assert code == 1 and err == ""
    doc = json.loads(out)
    got = [(i["line"], i["row"], i["column"], i["rule"], i["action"]) for i in doc["issues"]]
    assert got == [
        (5, 3, "date", "bad_timestamp", "error"),
        (9, 7, "close", "non_numeric", "error"),
        (13, 11, None, "duplicate", "repaired"),
        (22, 20, None, "high_low", "repaired"),
    ]
    assert doc["issues"][0]["message"] == "cannot parse timestamp '2021-13-45'"
    assert doc["issues"][1]["message"] == "not a number: 'abc'"
    assert doc["issues"][1]["timestamp"] == "2021-01-13T00:00:00+00:00"  # the bad row's own date
    assert doc["issues"][2]["timestamp"] == "2021-01-19T00:00:00+00:00"
    assert doc["ok"] is False and doc["file"] == str(path)
    # 30 rows, 2 left out; of 28 bars the duplicate is dropped and the high/low bar repaired
    assert (doc["n_rows"], doc["n_input"], doc["n_output"]) == (30, 28, 27)
    assert doc["counts"] == {"bad_timestamp": 1, "non_numeric": 1, "duplicate": 1, "high_low": 1}


def test_every_problem_is_reported_with_its_line_text(capsys, tmp_path):
    path = _broken_csv(tmp_path / "bars.csv")
    code, out, _ = run(capsys, "data", "check", str(path))
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == (f"{path}: FAILED: 30 rows (2 unreadable), 27 bars out; "
                        "issues: bad_timestamp=1, non_numeric=1, duplicate=1, high_low=1")
    assert lines[1].split() == ["line", "column", "timestamp", "rule", "action", "message"]
    table = [line.split()[:2] + line.split()[3:5] for line in lines[2:]]
    assert table == [
        ["5", "date", "bad_timestamp", "error"],
        ["9", "close", "non_numeric", "error"],
        ["13", "-", "duplicate", "repaired"],
        ["22", "-", "high_low", "repaired"],
    ]
    code, out, _ = run(capsys, "data", "check", str(path), "--limit", "1")
    assert out.splitlines()[-1] == "... 3 more (use --json for all)"


def test_repairs_and_warnings_only_exit_0(capsys, tmp_path):
    rows = _rows()
    rows[12] = rows[11][:10] + rows[12][10:]
    rows[20] = "2021-02-01,12.00,11.00,13.00,12.00,1000"
    path = tmp_path / "usable.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    code, out, err = run(capsys, "data", "check", str(path))
    assert code == 0 and "ok with repairs/flags" in out and err == ""
    path.write_text("\n".join([HEADER, *_rows()]) + "\n")
    code, out, _ = run(capsys, "data", "check", str(path))
    assert code == 0 and out == f"{path}: ok: 30 rows, 30 bars, no issues\n"


def test_an_error_policy_rule_alone_exits_1(capsys, tmp_path):
    rows = _rows()
    rows[4] = "2021-01-08,10.40,11.40,9.40,10.40,-5"  # volume < 0: error by default
    path = tmp_path / "neg.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    code, out, _ = run(capsys, "data", "check", str(path), "--json")
    issues = json.loads(out)["issues"]
    assert code == 1 and [(i["line"], i["rule"], i["action"]) for i in issues] == [(6, "volume", "error")]


def test_lines_count_blank_lines_and_quoted_line_breaks(tmp_path):
    rows = _rows(25)
    rows[2] = '"2021-01-06",10.20,11.20,9.20,"1\n0.20",1000'  # a quoted cell over two lines
    rows[6] = "2021-01-12,10.60,11.60,9.60,oops,1000"
    text = "\n".join([HEADER, "", *rows[:5], "", "", *rows[5:]]) + "\n"
    path = tmp_path / "odd.csv"
    path.write_text(text)
    found = inspect_bar_file(path)
    bad = [i for i in found.issues if i.rule == "non_numeric"]
    # header 1, blank 2, rows 0-2 on lines 3-5 (row 2 takes 5-6), rows 3-4 on 7-8, blanks 9-10,
    # row 5 on 11, row 6 on 12
    assert [(i.row, i.line, i.column) for i in bad] == [(2, 5, "close"), (6, 12, "close")]
    assert text.splitlines()[12 - 1].startswith("2021-01-12,")
    assert found.has_lines


def test_a_row_empty_throughout_is_no_bad_cell(tmp_path):
    path = tmp_path / "trailing.csv"
    path.write_text("\n".join([HEADER, *_rows(25), ",,,,,"]) + "\n")
    found = inspect_bar_file(path)
    assert [(i.rule, i.line) for i in found.issues] == [("order", 27), ("non_finite", 27)]
    assert found.ok
    assert len(read_bar_file(path)) == 26  # the reader keeps it for validation to drop, as before


def test_missing_date_with_prices_and_a_skipped_local_time_are_bad_timestamps(tmp_path):
    rows = _rows(25)
    rows[1] = rows[1][10:]  # no date, prices present
    rows[10] = "2021-03-14 02:30" + rows[10][10:]  # does not exist in New York (clocks jump 2:00 -> 3:00)
    path = tmp_path / "ny.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    found = inspect_bar_file(path, "America/New_York")
    assert [(i.line, i.rule, i.message) for i in found.issues] == [
        (3, "bad_timestamp", "timestamp missing"),
        (12, "bad_timestamp", "'2021-03-14 02:30' is not one local time in America/New_York "
                              "(skipped or repeated at a daylight-saving change)"),
    ]
    assert len(found.frame) == 23 and not found.ok


def test_parquet_problems_are_located_by_data_row(capsys, tmp_path):
    frame = pd.DataFrame([r.split(",") for r in _rows(25)], columns=HEADER.split(","))
    frame.loc[4, "volume"] = "many"
    path = tmp_path / "bars.parquet"
    frame.to_parquet(path)
    code, out, _ = run(capsys, "data", "check", str(path))
    assert code == 1
    lines = out.splitlines()
    assert lines[1].split()[0] == "row" and lines[2].split()[:2] == ["4", "volume"]
    found = inspect_bar_file(path)
    assert [(i.row, i.line, i.rule) for i in found.issues] == [(4, None, "non_numeric")]
    assert not found.has_lines


def test_the_file_source_still_refuses_the_file_with_one_clear_error(capsys, tmp_path):
    _broken_csv(tmp_path / "BAD.csv")
    expected = (f"{tmp_path / 'BAD.csv'}: line 5 (data row 3), column 'date': cannot parse timestamp "
                "'2021-13-45' (1 more bad cell; `regimedesk data check` lists every problem)")
    with pytest.raises(PermanentError) as info:
        read_bar_file(tmp_path / "BAD.csv")
    assert str(info.value) == expected
    with pytest.raises(PermanentError) as info:
        MarketData(FileSource(directory=tmp_path)).bars("BAD")
    assert str(info.value) == expected
    cfg = tmp_path / "file.toml"
    cfg.write_text(f"[data]\nsource = 'file'\n[data.file]\ndirectory = '{tmp_path}'\n")
    code, out, err = run(capsys, "--config", str(cfg), "data", "show", "BAD")
    assert code == 1 and out == "" and err == f"regimedesk: error: {expected}\n"


def test_unreadable_files_are_still_one_error(capsys, tmp_path):
    path = tmp_path / "cols.csv"
    path.write_text("date,open,close\n2021-01-04,1,2\n")
    code, out, err = run(capsys, "data", "check", str(path))
    assert code == 1 and out == "" and "missing column 'high'" in err and len(err.splitlines()) == 1


def test_help_states_the_exit_codes(capsys):
    with pytest.raises(SystemExit) as info:
        main(["data", "check", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert info.value.code == 0
    assert "Exit code: 0 when the file is usable" in text and "1 when it has errors" in text
    assert "1-based line of a CSV file" in text
