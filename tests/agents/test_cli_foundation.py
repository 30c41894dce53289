"""The command line: data show/check and config show/init, errors as one line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from agents.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_data_show_sp500_json(capsys):
    code, out, _ = run(capsys, "data", "show", "SP500", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["bars"] == 5031
    assert doc["symbol"] == "SP500" and doc["source"] == "builtin"
    assert doc["first"].startswith("1999-01-04") and doc["last"].startswith("2018-12-31")
    assert doc["validation"]["ok"] is True


def test_data_show_text_and_weekly(capsys):
    code, out, _ = run(capsys, "data", "show", "NASDAQ", "--timeframe", "1W", "--start", "2010-01-01")
    assert code == 0 and "NASDAQ" in out and "bars" in out


@pytest.mark.parametrize(
    ("argv", "code", "needle"),
    [
        (("data", "show", "NOPE"), 1, "unknown symbol 'NOPE'"),
        (("data", "show", "SP500", "--start", "2011-01-01", "--end", "2010-01-01"), 2, "empty date range"),
        (("data", "show", "SP500", "--start", "yesterdayish"), 2, "start: cannot parse"),
        (("data", "show", "SPY", "--source", "polygon"), 1, "POLYGON_API_KEY"),
        (("data", "show", "SPY", "--source", "alpaca"), 1, "ALPACA_API_KEY"),
        (("data", "show", "SP500", "--timeframe", "3Q"), 2, "timeframe '3Q' not understood"),
        (("data", "check", "/no/such/file.csv"), 1, "no such file"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(capsys, argv, code, needle):
    got, out, err = run(capsys, *argv)
    assert got == code
    assert needle in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_usage_error_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["data", "show"])
    assert info.value.code == 2


def test_data_check_reports_rows(capsys, tmp_path):
    idx = pd.bdate_range("2021-01-01", periods=30)
    close = np.linspace(10, 20, 30)
    df = pd.DataFrame({"Date": idx, "Open": close, "High": close + 1, "Low": close - 1, "Close": close,
                       "Volume": 100.0})
    df.loc[4, "High"] = 1.0  # high below open/close: repaired
    df.loc[9, "Close"] = -3.0  # non-positive: error by default
    path = tmp_path / "bad.csv"
    df.to_csv(path, index=False)
    code, out, _ = run(capsys, "data", "check", str(path), "--json")
    assert code == 1
    doc = json.loads(out)
    rules = {(i["rule"], i["row"], i["action"]) for i in doc["issues"]}
    assert ("high_low", 4, "repaired") in rules and ("non_positive", 9, "error") in rules
    code, out, _ = run(capsys, "data", "check", str(path))
    assert code == 1 and "FAILED" in out and "non_positive" in out
    df.loc[9, "Close"] = 15.0
    df.to_csv(path, index=False)
    code, out, _ = run(capsys, "data", "check", str(path))
    assert code == 0


def test_config_show_masks_secrets(capsys, monkeypatch):
    monkeypatch.setenv("POLYGON_API_KEY", "super-secret-value")
    code, out, _ = run(capsys, "config", "show")
    assert code == 0 and "super-secret-value" not in out and "POLYGON_API_KEY = <set>" in out
    code, out, _ = run(capsys, "config", "show", "--json")
    doc = json.loads(out)
    assert doc["secrets"]["POLYGON_API_KEY"] == "set" and "super-secret-value" not in out


def test_config_init_writes_and_refuses_overwrite(capsys, tmp_path):
    target = tmp_path / "r.toml"
    code, _, _ = run(capsys, "config", "init", str(target))
    assert code == 0 and target.exists()
    code, _, err = run(capsys, "config", "init", str(target))
    assert code == 1 and "--force" in err
    code, out, _ = run(capsys, "--config", str(target), "config", "show", "--json")
    assert json.loads(out)["config_file"] == str(target)


def test_unknown_config_key_is_reported(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[data]\ncolour = 'red'\n")
    code, _, err = run(capsys, "--config", str(bad), "data", "show", "SP500")
    assert code == 1 and "unknown key 'data.colour'" in err


def test_help_texts_exist(capsys):
    for argv in (["--help"], ["data", "--help"], ["data", "show", "--help"], ["config", "init", "--help"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 0
    out = capsys.readouterr().out
    assert "regimedesk" in out and "validation" in out


@pytest.mark.parametrize(("exc", "code"), [(OSError("File name too long: '" + "A" * 100_000 + "'"), 1),
                                           (ValueError("bad\n" + "B" * 100_000), 2)])
def test_a_huge_error_message_is_cut_to_one_line(capsys, exc, code):
    import argparse

    from agents.cli import Context, _run_command

    def handler(args, ctx):
        raise exc

    args = argparse.Namespace(handler=handler, verbose=0)
    assert _run_command(args, Context(config_path=None)) == code
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and len(err) < 1200 and "100,0" in err
