"""Bad input at the command line fails at once, in one line, before any long work (issue 21).

Output paths, dates before the data, dates after the data, missing keys, binary or huge
arguments, file-source symbols that leave the data directory, implausible epoch timestamps;
plus the process-level hygiene: matplotlib's cache under the home, and the test session's own
temporary home.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agents.cli import build_parser, main
from agents.cli.options import OutputPathError, output_dir, output_file
from agents.config import load_settings

ROOT = Path(__file__).resolve().parents[2]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


# ----------------------------------------------------------------------------- output paths


@pytest.fixture
def blocker(tmp_path):
    """A regular file, so that ``blocker/x`` has a parent that is not a directory."""
    path = tmp_path / "file"
    path.write_text("not a directory")
    return path


@pytest.mark.parametrize(
    "argv",
    [
        # --end keeps the export short; the path must be refused before it even starts
        ("export", "csv", "SP500", "--end", "2001-06-29", "--out", "{blocker}/x.csv"),
        ("export", "quantconnect", "SP500", "--end", "2001-06-29", "--out", "{blocker}/x"),
        ("export", "quantconnect", "SP500", "--end", "2001-06-29", "--out", "{blocker}"),
        ("report", "SP500", "--as-of", "2001-06-29", "--out", "{blocker}/r.pdf"),
        ("report", "SP500", "--as-of", "2001-06-29", "--out", "{tmp}/r.pdf", "--format", "html"),
        ("report", "SP500", "--as-of", "2001-06-29", "--out", "{tmp}/r.txt"),
        ("run", "SP500", "--as-of", "2001-06-29", "--report", "{blocker}/sub/r.pdf"),
        ("config", "init", "{blocker}/r.toml"),
    ],
)
def test_bad_output_paths_are_one_line_and_exit_1_before_any_work(capsys, tmp_path, blocker, argv):
    argv = [a.format(blocker=blocker, tmp=tmp_path) for a in argv]
    code, out, err = run(capsys, *argv)
    line = one_line(err)
    assert code == 1, line
    assert line.startswith(("regimedesk: error: --out", "regimedesk: error: --report", "regimedesk: error: PATH"))
    assert "exporting" not in err and out == ""
    assert blocker.read_text() == "not a directory"


def test_output_file_and_dir_rules(tmp_path):
    (tmp_path / "d").mkdir()
    # a directory (existing, or a path ending in '/') means the default name inside it
    assert output_file(str(tmp_path / "d"), "--out", default_name="s.csv") == tmp_path / "d" / "s.csv"
    assert output_file(str(tmp_path / "new") + "/", "--out", default_name="s.csv") == tmp_path / "new" / "s.csv"
    assert output_file(str(tmp_path / "a" / "b" / "c.csv"), "--out") == tmp_path / "a" / "b" / "c.csv"
    with pytest.raises(OutputPathError, match="is a directory"):
        output_file(str(tmp_path / "d"), "--out")
    (tmp_path / "d" / "s.csv").mkdir()
    with pytest.raises(OutputPathError, match="is a directory"):
        output_file(str(tmp_path / "d"), "--out", default_name="s.csv")
    with pytest.raises(OutputPathError, match="give a file path"):
        output_file("  ", "--out")
    (tmp_path / "q").mkdir()
    (tmp_path / "q" / "main.py").mkdir()
    with pytest.raises(OutputPathError, match="main.py exists and is not a regular file"):
        output_dir(str(tmp_path / "q"), "--out", ("main.py",))
    assert output_dir(str(tmp_path / "x" / "y"), "--out") == tmp_path / "x" / "y"
    assert issubclass(OutputPathError, ValueError)


# ----------------------------------------------------------------------------- as-of dates


@pytest.mark.parametrize(
    "argv",
    [
        ("stats", "SP500", "--as-of", "1850-01-01"),
        ("regime", "SP500", "--as-of", "1850-01-01"),
        ("train", "SP500", "--as-of", "1850-01-01"),
        ("backtest", "SP500", "--end", "1850-01-01"),
        ("export", "csv", "SP500", "--end", "1850-01-01"),
        ("run", "SP500", "--as-of", "1850-01-01"),
    ],
)
def test_as_of_before_the_first_bar_is_an_error(capsys, argv):
    code, out, err = run(capsys, *argv)
    line = one_line(err)
    assert code == 1, line
    assert "no bars of SP500 at or before that date (the data start on 1999-01-04)" in line
    assert "1850-01-01" in line and out == ""


def test_as_of_after_the_last_bar_says_so_and_reports_the_effective_date(capsys):
    code, out, err = run(capsys, "stats", "SP500", "--horizon", "MT", "--as-of", "2030-01-01", "--json")
    assert code == 0
    notes = [ln for ln in err.splitlines() if "--as-of" in ln]
    assert notes == ["warning: --as-of '2030-01-01' is after the last bar (SP500 2018-12-31): "
                     "running as of 2018-12-31"]
    doc = json.loads(out)
    assert doc["as_of"] == "2030-01-01" and doc["as_of_effective"].startswith("2018-12-31")
    # inside the data: no warning, the effective date is the last bar by then
    code, out, err = run(capsys, "stats", "SP500", "--horizon", "MT", "--as-of", "2010-06-05", "--json")
    assert code == 0 and "--as-of" not in err
    assert json.loads(out)["as_of_effective"].startswith("2010-06-04")


def test_run_request_carries_the_effective_as_of(capsys):
    from agents.config import Secrets
    from agents.services.context import build_request

    req = build_request(load_settings(), Secrets.from_env({}), ["SP500"], as_of="2030-01-01")
    assert req.as_of_effective.startswith("2018-12-31")
    assert req.to_dict()["as_of_effective"] == req.as_of_effective
    assert type(req).from_dict(req.to_dict()) == req


@pytest.mark.parametrize(
    ("argv", "code", "needle"),
    [
        (("backtest", "SP500", "--start", "2000-06-01", "--end", "2000-01-01"), 2, "--start 2000-06-01 is after --end"),
        (("backtest", "SP500", "--start", "2025-01-01", "--end", "2030-01-01"), 1,
         "--start 2025-01-01 is after the last daily bar of SP500 (2018-12-31)"),
        (("backtest", "SP500", "--start", "someday"), 2, "--start: cannot parse 'someday'"),
        (("export", "csv", "SP500", "--start", "2025-01-01"), 1, "--start 2025-01-01 is after the last daily bar"),
        (("run", "SP500", "--as-of", "NaT"), 2, "--as-of: 'NaT' is not a date"),  # was an internal error
        (("run", "SP500", "--start", "NaT"), 2, "--start: 'NaT' is not a date"),
    ],
)
def test_backtest_and_export_dates_are_checked_first(capsys, argv, code, needle):
    got, out, err = run(capsys, *argv)
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("warning:")]
    assert "Traceback" not in err and len(lines) == 1, err
    assert got == code and needle in lines[0] and out == ""
    assert "backtesting" not in err and "exporting" not in err


# ----------------------------------------------------------------------------- keys


@pytest.mark.parametrize(
    ("argv", "variable"),
    [
        (("run", "SP500", "--broker", "alpaca"), "ALPACA_API_KEY"),
        (("run", "SP500", "--llm", "openai"), "OPENAI_API_KEY"),
        (("report", "SP500", "--llm", "openai", "--out", "r.pdf"), "OPENAI_API_KEY"),
    ],
)
def test_missing_keys_fail_before_the_agents_run(capsys, argv, variable):
    code, out, err = run(capsys, *argv)
    line = one_line(err)
    assert code == 1 and variable in line and out == ""
    assert main(["journal", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []  # no run was started


def test_alpaca_secret_alone_is_also_checked_first(capsys, monkeypatch):
    monkeypatch.setenv("ALPACA_API_KEY", "key-only")
    code, _, err = run(capsys, "run", "SP500", "--broker", "alpaca")
    assert code == 1 and "ALPACA_SECRET_KEY" in one_line(err)


# ----------------------------------------------------------------------------- hostile arguments


def test_binary_config_file_is_named_in_one_line(capsys, tmp_path):
    bad = tmp_path / "binary.toml"
    bad.write_bytes(bytes(range(256)))
    code, _, err = run(capsys, "--config", str(bad), "stats", "SP500")
    line = one_line(err)
    assert code == 1 and str(bad) in line and "UTF-8" in line


def test_long_values_are_cut_in_messages(capsys):
    code, _, err = run(capsys, "data", "show", "A" * 100_000)
    line = one_line(err)
    assert code == 2 and "(100,000 characters)" in line and len(line) < 200
    code, _, err = run(capsys, "stats", "SP500", "--as-of", "9" * 5000)
    line = one_line(err)
    assert code == 2 and "(5,000 characters)" in line and len(line) < 200


def test_file_source_symbol_cannot_leave_the_data_directory(capsys, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "OUTSIDE").mkdir()
    idx = pd.bdate_range("2021-01-01", periods=30)
    close = np.linspace(10, 20, 30)
    pd.DataFrame({"date": idx, "open": close, "high": close + 1, "low": close - 1, "close": close,
                  "volume": 100.0}).to_csv(tmp_path / "OUTSIDE" / "SECRET.csv", index=False)
    cfg = tmp_path / "file.toml"
    cfg.write_text(f"[data]\nsource = 'file'\n[data.file]\ndirectory = '{data}'\n")
    code, out, err = run(capsys, "--config", str(cfg), "data", "show", "../OUTSIDE/SECRET", "--json")
    line = one_line(err)
    assert code == 1 and "not a file name inside" in line and out == ""


def test_data_check_refuses_implausible_epoch_timestamps(capsys, tmp_path):
    days = pd.bdate_range("2020-01-02", periods=300, tz="UTC").as_unit("s").asi8.astype("float64")
    days[17] = 1e30
    close = np.linspace(10, 20, 300)
    path = tmp_path / "epochs.csv"
    pd.DataFrame({"t": days, "open": close, "high": close + 1, "low": close - 1, "close": close,
                  "volume": 100.0}).to_csv(path, index=False)
    code, out, err = run(capsys, "data", "check", str(path))
    line = one_line(err)
    assert code == 1 and "row 17" in line and out == ""


def test_no_help_or_error_names_a_config_template_command(capsys):
    parser = build_parser()
    texts = []

    def walk(p):
        texts.append(p.format_help())
        for action in p._actions:
            for sub in getattr(action, "choices", None).values() if isinstance(
                    getattr(action, "choices", None), dict) else ():
                walk(sub)

    walk(parser)
    assert len(texts) > 20
    assert not [t for t in texts if "config template" in t]
    code, _, err = run(capsys, "schedule", "--list")
    assert code == 2 and "config init" in one_line(err) and "config template" not in err


# ----------------------------------------------------------------------------- process hygiene


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("REGIMEDESK_", "MPLCONFIGDIR", "XDG_", "PYTEST_"))}
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", **extra)
    return env


#: A command, then what a chart-drawing command does when it runs: import matplotlib (the
#: commands import it only then, so a light command such as 'data show' never loads it).
_THEN_MATPLOTLIB = ("import sys\nfrom agents.cli import main\ncode = main(sys.argv[1:])\n"
                    "import matplotlib.font_manager\nraise SystemExit(code)\n")


def test_matplotlib_cache_stays_under_the_home_and_quiet(tmp_path):
    user = tmp_path / "user"
    user.mkdir()
    home = tmp_path / "rdhome"
    proc = subprocess.run(
        [sys.executable, "-c", _THEN_MATPLOTLIB, "data", "show", "SP500", "--start", "2018-12-01", "--json"],
        cwd=tmp_path, env=_clean_env(HOME=str(user), REGIMEDESK_HOME=str(home)),
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "matplotlib" not in proc.stderr.lower() and "font cache" not in proc.stderr
    assert list((home / "matplotlib").glob("fontlist*.json"))
    assert not (user / ".cache").exists() and not (user / ".config").exists()
    # a user's own MPLCONFIGDIR is left alone
    mine = tmp_path / "mine"
    proc = subprocess.run(
        [sys.executable, "-c", _THEN_MATPLOTLIB, "data", "show", "SP500", "--start", "2018-12-01", "--json"],
        cwd=tmp_path, env=_clean_env(HOME=str(user), REGIMEDESK_HOME=str(home), MPLCONFIGDIR=str(mine)),
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0 and list(mine.glob("fontlist*.json"))


@pytest.fixture(scope="module")
def module_scoped_environment():
    """What a module-scoped fixture sees: it runs before the per-test isolation."""
    return os.environ.get("REGIMEDESK_HOME"), os.environ.get("REGIMEDESK_CONFIG"), load_settings().home_dir


def test_module_fixtures_get_a_temporary_home(module_scoped_environment):
    home, config, settings_home = module_scoped_environment
    assert home is not None and config is None
    assert Path(home).name.startswith("regimedesk-test-home-")
    assert Path(home).parent == Path(tempfile.gettempdir())
    assert settings_home == Path(home)


_INNER_TEST = '''
import os
import pytest
from agents.config import load_settings

@pytest.fixture(scope="session")
def session_home():
    assert "REGIMEDESK_CONFIG" not in os.environ
    home = load_settings().home_dir
    home.mkdir(parents=True, exist_ok=True)
    (home / "written-by-a-session-fixture").write_text("x")
    return home

def test_inner(session_home):
    assert session_home.exists()
'''


def test_an_exported_user_home_and_config_are_never_used(tmp_path):
    user_home = tmp_path / "users-real-home"
    user_home.mkdir()
    user_config = tmp_path / "users.toml"
    user_config.write_text("[data]\nsource = 'builtin'\n")
    (tmp_path / "test_inner.py").write_text(_INNER_TEST)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
         "--rootdir", str(tmp_path), str(tmp_path / "test_inner.py")],
        cwd=ROOT, env=_clean_env(REGIMEDESK_HOME=str(user_home), REGIMEDESK_CONFIG=str(user_config)),
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert list(user_home.iterdir()) == []


# ----------------------------------------------------------------------------- review follow-ups (issue 21)


_AS_OF_FIELDS = ("as_of", "as_of_effective")


def _without_as_of(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k not in _AS_OF_FIELDS}


def test_as_of_after_the_last_bar_gives_the_numbers_of_the_last_bar(capsys):
    docs, headers = {}, {}
    for as_of in ("2030-01-01", "2018-12-31"):
        code, out, _ = run(capsys, "stats", "SP500", "--as-of", as_of, "--json")
        assert code == 0
        docs[as_of] = json.loads(out)
        code, out, _ = run(capsys, "stats", "SP500", "--as-of", as_of, "--horizon", "MT")
        assert code == 0
        headers[as_of] = out.splitlines()[0]
    assert docs["2030-01-01"]["as_of"] == "2030-01-01"
    assert _without_as_of(docs["2030-01-01"]) == _without_as_of(docs["2018-12-31"])
    assert docs["2030-01-01"]["timeframes"]["MT"]["nobs"] > 0
    # the header names the date the numbers are for, not the date asked for
    assert headers["2030-01-01"] == headers["2018-12-31"] == "SP500 statistics as of 2018-12-31"


def test_regime_as_of_after_the_last_bar_equals_the_last_bar(capsys):
    docs = {}
    for as_of in ("2030-01-01", "2018-12-31"):
        code, out, _ = run(capsys, "regime", "SP500", "--method", "garch", "--as-of", as_of, "--json")
        assert code == 0
        docs[as_of] = json.loads(out)
    assert _without_as_of(docs["2030-01-01"]) == _without_as_of(docs["2018-12-31"])
    code, out, _ = run(capsys, "regime", "SP500", "--method", "garch", "--as-of", "2030-01-01")
    assert code == 0 and out.splitlines()[0] == "SP500 regimes (garch) as of 2018-12-31"


def test_data_show_end_after_the_last_bar_loads_the_same_window(capsys):
    summaries = []
    for end in ("2030-01-01", "2018-12-31"):
        code, out, _ = run(capsys, "data", "show", "SP500", "--end", end, "--json")
        assert code == 0
        summaries.append(json.loads(out))
    assert summaries[0] == summaries[1]
    assert summaries[0]["first"].startswith("1999-01-04") and summaries[0]["bars"] == 5031


@pytest.fixture
def file_config(tmp_path):
    """A file-source configuration whose data folder holds GOOD.csv (300 daily bars) only."""
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "OUTSIDE").mkdir()
    idx = pd.bdate_range("2021-01-01", periods=300)
    close = 100 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.01, 300)))
    frame = pd.DataFrame({"date": idx, "open": close, "high": close * 1.01, "low": close * 0.99, "close": close,
                          "volume": 100.0})
    frame.to_csv(data / "GOOD.csv", index=False)
    frame.to_csv(tmp_path / "OUTSIDE" / "SECRET.csv", index=False)
    cfg = tmp_path / "file.toml"
    cfg.write_text(f"[data]\nsource = 'file'\n[data.file]\ndirectory = '{data}'\n")
    return str(cfg)


@pytest.mark.parametrize("command", ["stats", "regime"])
@pytest.mark.parametrize(("symbol", "needle"), [
    ("NOPE", "no file for symbol 'NOPE'"),
    ("../OUTSIDE/SECRET", "not a file name inside"),
])
def test_a_symbol_whose_data_cannot_load_is_an_error(capsys, file_config, command, symbol, needle):
    code, out, err = run(capsys, "--config", file_config, command, symbol)
    line = one_line(err)
    assert code == 1 and needle in line and out == ""


@pytest.mark.parametrize(
    ("argv", "variable"),
    [
        (("stats", "SP500", "--source", "polygon"), "POLYGON_API_KEY"),
        (("regime", "SP500", "--source", "polygon"), "POLYGON_API_KEY"),
        (("regime", "SP500", "--source", "alpaca"), "ALPACA_API_KEY"),
        (("train", "SP500", "--source", "polygon"), "POLYGON_API_KEY"),
        (("data", "show", "SP500", "--source", "alpaca"), "ALPACA_API_KEY"),
        (("export", "csv", "SP500", "--source", "polygon", "--out", "s.csv"), "POLYGON_API_KEY"),
        (("run", "SP500", "--source", "polygon"), "POLYGON_API_KEY"),
        (("report", "SP500", "--source", "alpaca", "--out", "r.pdf"), "ALPACA_API_KEY"),
    ],
)
def test_missing_data_source_keys_fail_first(capsys, argv, variable):
    code, out, err = run(capsys, *argv)
    line = one_line(err)
    assert code == 1 and variable in line and out == ""
    assert main(["journal", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []  # no run was started


def test_alpaca_source_secret_is_checked_too(capsys, monkeypatch):
    monkeypatch.setenv("ALPACA_API_KEY", "key-only")
    code, _, err = run(capsys, "stats", "SP500", "--source", "alpaca")
    assert code == 1 and "ALPACA_SECRET_KEY" in one_line(err)


def test_run_without_any_loadable_symbol_fails_naming_each(capsys, file_config):
    code, out, err = run(capsys, "--config", file_config, "run", "NOPE", "../OUTSIDE/SECRET")
    line = one_line(err)
    assert code == 1 and out == ""
    assert "no symbol's data could be loaded: NOPE: no file for symbol" in line
    assert "../OUTSIDE/SECRET: symbol '../OUTSIDE/SECRET' is not a file name inside" in line
    assert main(["journal", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_run_goes_on_without_the_symbols_that_do_not_load_and_names_them(capsys, file_config):
    code, out, err = run(capsys, "--config", file_config, "run", "GOOD", "NOPE", "--json")
    assert code == 0 and "Traceback" not in err
    warned = [ln for ln in err.splitlines() if ln.startswith("warning:") and "NOPE" in ln]
    assert warned == ["warning: left out of the run, their data cannot be loaded: NOPE: no file for symbol "
                      f"'NOPE' in {Path(file_config).parent / 'data'}; expected NOPE.csv or NOPE.parquet "
                      "(set data.file.directory or data.file.files in the configuration)"]
    state = json.loads(out)
    assert state["request"]["symbols"] == ["GOOD"] and state["market_data"]["GOOD"]["MT"]["available"]


def test_data_check_path_errors_are_one_short_line(capsys, tmp_path):
    code, out, err = run(capsys, "data", "check", "A" * 100_000)
    line = one_line(err)
    assert code == 1 and out == "" and "internal error" not in line
    assert "(100,000 characters)" in line and "cannot read file (File name too long)" in line and len(line) < 400
    folder = tmp_path / "bars.csv"
    folder.mkdir()
    code, out, err = run(capsys, "data", "check", str(folder))
    line = one_line(err)
    assert code == 1 and line == f"regimedesk: error: {folder}: cannot read file (Is a directory)"


@pytest.mark.parametrize(
    "argv",
    [
        ("export", "csv", "SP500", "--end", "2001-06-29", "--out", "/proc/x.csv"),
        ("export", "quantconnect", "SP500", "--end", "2001-06-29", "--out", "/proc/qc"),
        ("report", "SP500", "--as-of", "2001-06-29", "--out", "/proc/x.pdf"),
        ("run", "SP500", "--as-of", "2001-06-29", "--report", "/proc/sub/r.pdf"),
    ],
)
def test_output_paths_that_cannot_be_written_are_refused_before_any_work(capsys, argv):
    # /proc passes every permission check (and as root every check passes), yet no file can
    # be created there: only a real probe tells
    code, out, err = run(capsys, *argv)
    line = one_line(err)
    assert code == 1 and out == "" and "cannot write in /proc" in line
    assert line.startswith(("regimedesk: error: --out /proc/", "regimedesk: error: --report /proc/"))


def test_output_file_probe_leaves_nothing_behind(tmp_path):
    before = sorted(tmp_path.iterdir())
    assert output_file(str(tmp_path / "sub" / "x.csv"), "--out") == tmp_path / "sub" / "x.csv"
    assert output_dir(str(tmp_path / "qc"), "--out") == tmp_path / "qc"
    (tmp_path / "old.csv").write_text("x")
    assert output_file(str(tmp_path / "old.csv"), "--out") == tmp_path / "old.csv"
    assert sorted(tmp_path.iterdir()) == sorted([*before, tmp_path / "old.csv"])


def test_a_report_that_fails_while_writing_is_one_line_naming_the_users_path(capsys, monkeypatch, tmp_path):
    import agents.services.report

    def full_disk(ctx, state, path, **kwargs):
        raise FileNotFoundError(2, "No such file or directory", f"{tmp_path}/.r.pdf.0123abcd.tmp")

    monkeypatch.setattr(agents.services.report, "write_report", full_disk)
    target = tmp_path / "r.pdf"
    code, out, err = run(capsys, "report", "SP500", "--as-of", "2001-06-29", "--no-backtest", "--out", str(target))
    lines = [ln for ln in err.splitlines() if "error" in ln]
    assert code == 1 and "Traceback" not in err
    assert lines == [f"regimedesk: error: the report was not written to {target}: "
                     "cannot write (No such file or directory)"]
    assert ".tmp" not in err + out


# ----------------------------------------------------------------------------- issue 23: run dates, bar lengths


def test_run_as_of_after_the_data_warns_once_and_decides_as_of_the_last_bar(capsys, monkeypatch):
    import agents.cli

    # the CLI says each data warning once per process; earlier tests in this process said it
    monkeypatch.setattr(agents.cli, "_SHOWN", set())
    docs, errs = {}, {}
    for as_of in ("2030-01-01", "2018-12-31"):
        code, out, err = run(capsys, "run", "SP500", "--as-of", as_of, "--json")
        assert code == 0, err
        docs[as_of], errs[as_of] = json.loads(out), err
    assert [ln for ln in errs["2030-01-01"].splitlines() if "warning" in ln] == [
        "warning: --as-of '2030-01-01' is after the last bar (SP500 2018-12-31): running as of 2018-12-31"]
    assert "warning" not in errs["2018-12-31"]
    late, last = docs["2030-01-01"], docs["2018-12-31"]
    assert late["request"]["as_of"] == "2030-01-01"
    assert late["request"]["as_of_effective"] == last["request"]["as_of_effective"] == "2018-12-31T00:00:00+00:00"
    # the same decisions, verdicts and numbers; only the run's identity (and whether the ML
    # model was trained in this run or found stored) may differ
    for key in ("market_data", "regime", "statistics", "decision", "risk_gate", "execution", "errors", "status"):
        assert late[key] == last[key], key
    for doc in (late, last):
        doc["ml_signal"]["SP500"].pop("model_note", None)
    assert late["ml_signal"] == last["ml_signal"]
    assert late["decision"] and late["ml_signal"]["SP500"]["as_of"].startswith("2018-12-31")


def test_run_as_of_before_the_data_is_one_line_before_any_work(capsys):
    code, out, err = run(capsys, "run", "SP500", "--as-of", "1990-01-01")
    assert code == 1 and out == ""
    assert one_line(err) == ("regimedesk: error: --as-of '1990-01-01': no bars of SP500 at or before that date "
                             "(the data start on 1999-01-04)")


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("2D", "--timeframe '2D' is not available; the builtin source has 1D or 1W bars"),
        ("2W", "--timeframe '2W' is not available; the builtin source has 1D or 1W bars"),
        ("1H", "--timeframe '1H' is not available; the builtin source has 1D or 1W bars"),
        ("5Min", "--timeframe '5Min' is not available; the builtin source has 1D or 1W bars"),
        ("3Q", "--timeframe '3Q' not understood; the builtin source has 1D or 1W bars"),
    ],
)
def test_data_show_names_the_bar_lengths_of_the_source(capsys, value, needle):
    code, out, err = run(capsys, "data", "show", "SP500", "--timeframe", value)
    assert code == 2 and out == ""
    assert one_line(err) == f"regimedesk: error: {needle}"


def test_data_show_bar_lengths_of_a_network_source_are_checked_before_any_request(capsys, monkeypatch):
    monkeypatch.setenv("ALPACA_API_KEY", "k")
    monkeypatch.setenv("ALPACA_SECRET_KEY", "s")
    code, out, err = run(capsys, "data", "show", "SPY", "--source", "alpaca", "--timeframe", "2D")
    assert code == 2 and out == ""
    assert one_line(err) == ("regimedesk: error: --timeframe '2D' is not available; the alpaca source has "
                             "1Min, 5Min, 15Min, 1H, 1D or 1W bars (any number of minutes or hours)")


def test_data_show_accepts_the_bar_lengths_it_names(capsys):
    for value, shown_as in (("1d", "1D"), ("1W", "1W")):
        code, out, _ = run(capsys, "data", "show", "SP500", "--timeframe", value, "--json")
        assert code == 0 and json.loads(out)["timeframe"] == shown_as


def _command_parsers(parser, prefix=()):
    """Every (sub)command parser under ``parser``, its help filled in."""
    import argparse

    parser.format_help()  # runs fill_later, which adds the command's options
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _command_parsers(sub, (*prefix, name))


def test_timeframe_means_a_bar_length_in_every_command():
    import argparse

    from agents.config import TIMEFRAME_NAMES
    from analytics import Timeframe

    with_timeframe, with_horizon = set(), set()
    for path, parser in _command_parsers(build_parser()):
        for action in parser._actions:
            if "--timeframe" in action.option_strings and action.help != argparse.SUPPRESS:
                with_timeframe.add(path)
                assert "bar length" in action.help, path
                for choice in action.choices or ():
                    Timeframe.parse(choice)  # every choice is a bar length
            if action.choices is not None and set(action.choices) == set(TIMEFRAME_NAMES):
                with_horizon.add(path)
                assert action.option_strings == ["--horizon"], path
    assert with_timeframe == {("data", "show"), ("live",)}
    assert with_horizon == {("stats",)}


def test_stats_horizon_and_the_old_spelling(capsys):
    code, out, _ = run(capsys, "stats", "SP500", "--horizon", "MT", "--as-of", "2010-06-04", "--json")
    assert code == 0 and list(json.loads(out)["timeframes"]) == ["MT"]
    with pytest.raises(SystemExit) as exc:
        main(["stats", "SP500", "--timeframe", "MT"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[0] == ("regimedesk stats: error: --timeframe is a bar length (1D, 1W, 5Min) in "
                                   "regimedesk; stats takes the horizon as --horizon LT|MT|ST|US")
    with pytest.raises(SystemExit):
        main(["stats", "--help"])
    text = capsys.readouterr().out
    assert "--horizon {LT,MT,ST,US}" in text and "--timeframe" not in text
