"""``regimedesk run --start DATE``: an explicit first bar for a run (issue 24).

The run loads no bar before ``--start``, at any bar length (weekly bars are resampled from the
cut daily bars), however far back it lies (``data.history_years`` only bounds the default
window); the date travels with the request into the journal and the checkpoint, so a resumed
run keeps it; ``regime`` and ``stats`` take the same option.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from agents.cli import main
from agents.config import Secrets, load_settings
from agents.services.context import (
    AppContext,
    RunRequest,
    build_request,
    start_stamp,
    symbol_bar_store,
)
from analytics import DataQualityWarning
from integrations import BuiltinSource, MarketData, NoDataError

warnings.filterwarnings("ignore", category=DataQualityWarning)

FAST = "[ml]\nrefit_every = 252\n[decision]\npolicy = \"regime\"\n"
START = "2010-01-01"
#: 2010-01-01 is a holiday (a Friday): the first session of 2010 is Monday 4 January, and the
#: first weekly bar (stamped on its last session) that week's Friday.
FIRST_SESSION = pd.Timestamp("2010-01-04", tz="UTC")
FIRST_WEEK = pd.Timestamp("2010-01-08", tz="UTC")
LONG_BARS = 20_000


def run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _all_sp500() -> pd.DataFrame:
    """Every daily bar of the embedded SP500 (1999-2018), validated as the runs see them."""
    return MarketData(BuiltinSource(), history_years=200).bars("SP500").frame


def _write_bars(frame: pd.DataFrame, path) -> None:
    out = frame.loc[:, ["open", "high", "low", "close", "volume"]].copy()
    out.index = out.index.strftime("%Y-%m-%d")
    out.index.name = "date"
    out.to_csv(path)  # floats are written with repr: they read back exactly


def _long_csv(directory) -> pd.DatetimeIndex:
    """A synthetic daily file ``LONG.csv`` of 20,000 sessions (1940-2016); its dates."""
    rng = np.random.default_rng(24)
    days = pd.bdate_range("1940-01-02", periods=LONG_BARS, tz="UTC")
    close = 100 * np.exp(np.cumsum(rng.normal(0.0002, 0.008, LONG_BARS)))
    opens = np.r_[100.0, close[:-1]]
    frame = pd.DataFrame({"open": opens, "high": np.maximum(opens, close) * 1.002,
                          "low": np.minimum(opens, close) * 0.998, "close": close, "volume": 1000.0}, index=days)
    _write_bars(frame, directory / "LONG.csv")
    return days


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    """Fast ML settings, and a ``file`` source reading ``tmp_path/bars``."""
    (tmp_path / "bars").mkdir()
    path = tmp_path / "fast.toml"
    path.write_text(FAST + f"[data.file]\ndirectory = '{tmp_path / 'bars'}'\n")
    monkeypatch.setenv("REGIMEDESK_CONFIG", str(path))
    return load_settings(path)


# ----------------------------------------------------------------------------- the request


def test_the_request_checks_and_keeps_its_start():
    req = RunRequest(("SP500",), as_of="2015-06-30", start=START)
    doc = req.to_dict()
    assert doc["start"] == START and RunRequest.from_dict(doc) == req
    assert RunRequest.from_dict({k: v for k, v in doc.items() if k != "start"}).start is None  # older journals
    assert RunRequest(("SP500",), as_of="2015-06-30", start="2015-06-30").start == "2015-06-30"  # the same day is fine
    with pytest.raises(ValueError, match=r"^--start '2015-07-01' is after --as-of '2015-06-30'"):
        RunRequest(("SP500",), as_of="2015-06-30", start="2015-07-01")
    with pytest.raises(ValueError, match=r"^--start: cannot parse 'soon' as a date$"):
        RunRequest(("SP500",), start="soon")
    with pytest.raises(ValueError, match=r"^--start: 'NaT' is not a date$"):
        RunRequest(("SP500",), start="NaT")
    assert start_stamp("2010-01-01") == pd.Timestamp("2010-01-01", tz="UTC")
    assert start_stamp("2010-01-01T05:00:00-05:00") == pd.Timestamp("2010-01-01 10:00", tz="UTC")
    assert start_stamp(None, "2015-06-30") is None


# ----------------------------------------------------------------------------- the bars


def test_the_store_loads_no_bar_before_the_start():
    settings, secrets = load_settings(env={}), Secrets.from_env({})
    everything = _all_sp500()
    after = everything.loc[everything.index >= pd.Timestamp(START, tz="UTC")]
    assert after.index[0] == FIRST_SESSION
    store, symbol = symbol_bar_store(settings, secrets, "SP500", source="builtin", start=START)
    assert symbol == "SP500" and store.start == START
    for tf in ("MT", "ST"):
        pd.testing.assert_frame_equal(store.get(symbol, tf).frame, after)
    weekly = store.get(symbol, "LT").frame
    assert weekly.index[0] == FIRST_WEEK
    # the first weekly bar is the week 4-8 January 2010, built from those five sessions only
    week = after.loc[:FIRST_WEEK]
    assert len(week) == 5
    assert weekly.iloc[0][["open", "high", "low", "close"]].tolist() == [
        week["open"].iloc[0], week["high"].max(), week["low"].min(), week["close"].iloc[-1]]
    # ... exactly what MarketData gives for weekly bars asked from the start
    direct = MarketData(BuiltinSource()).bars("SP500", "1W", START).frame
    pd.testing.assert_frame_equal(weekly, direct)
    # without a start: the whole embedded history (well within the 30 default years)
    default, _ = symbol_bar_store(settings, secrets, "SP500", source="builtin")
    pd.testing.assert_frame_equal(default.get(symbol, "MT").frame, everything)
    assert default.get(symbol, "LT").frame.index[0] == pd.Timestamp("1999-01-08", tz="UTC")


def test_an_as_of_date_and_a_start_bound_the_bars_on_both_sides():
    settings, secrets = load_settings(env={}), Secrets.from_env({})
    store, symbol = symbol_bar_store(settings, secrets, "SP500", source="builtin", as_of="2010-12-31", start=START)
    frame = store.get(symbol, "MT").frame
    everything = _all_sp500()
    expected = everything.loc[pd.Timestamp(START, tz="UTC"):pd.Timestamp("2010-12-31", tz="UTC")]
    pd.testing.assert_frame_equal(frame, expected)
    assert len(frame) == 252  # the sessions of 2010


def test_a_start_after_the_data_names_the_data_span():
    settings, secrets = load_settings(env={}), Secrets.from_env({})
    with pytest.raises(NoDataError) as info:
        symbol_bar_store(settings, secrets, "SP500", source="builtin", start="2020-01-01")
    assert str(info.value) == ("--start '2020-01-01': no bars of SP500 from that date "
                               "(the data run from 1999-01-04 to 2018-12-31)")


def test_a_start_far_back_loads_every_bar_of_a_long_file(cfg, tmp_path):
    days = _long_csv(tmp_path / "bars")
    secrets = Secrets.from_env({})
    # the default window: 30 years back from the last bar
    default, _ = symbol_bar_store(cfg, secrets, "LONG", source="file")
    cutoff = (days[-1] - pd.Timedelta(days=round(365 * 30))).normalize()
    assert len(default.get("LONG", "MT").frame) == int((days >= cutoff).sum()) < LONG_BARS
    # --start far back: every bar, at any history_years
    store, _ = symbol_bar_store(cfg, secrets, "LONG", source="file", start="1900-01-01")
    frame = store.get("LONG", "MT").frame
    assert len(frame) == LONG_BARS and frame.index.equals(days.rename(frame.index.name))
    assert store.get("LONG", "LT").frame.index[0] == pd.Timestamp("1940-01-05", tz="UTC")  # first Friday
    # the run's path: build_request, then the bar store the agents get from the request
    request = build_request(cfg, secrets, ["LONG"], source="file", start="1900-01-01")
    assert request.start == "1900-01-01"
    assert len(AppContext(cfg, secrets).bars(request.to_dict()).get("LONG", "MT").frame) == LONG_BARS
    # data.history_years = 200 reaches every bar without a start
    wide = load_settings(env={}).model_copy(update={"data": cfg.data.model_copy(update={"history_years": 200.0})})
    store200, _ = symbol_bar_store(wide, secrets, "LONG", source="file")
    assert len(store200.get("LONG", "MT").frame) == LONG_BARS


# ----------------------------------------------------------------------------- the run


def test_run_start_uses_exactly_the_bars_from_the_start(cfg, capsys, tmp_path):
    code, out, err = run(capsys, "run", "SP500", "--start", START, "--json")
    assert code == 0, err
    assert f"from {START}" in err
    cut = json.loads(out)
    assert cut["request"]["start"] == START
    data = cut["market_data"]["SP500"]
    assert data["MT"]["first"] == data["ST"]["first"] == FIRST_SESSION.isoformat()
    assert data["MT"]["bars"] == len(_all_sp500().loc[FIRST_SESSION:])
    assert data["LT"]["first"] == FIRST_WEEK.isoformat()
    # the journal records the start with the request
    code, out, _ = run(capsys, "journal", "show", cut["run_id"], "--json")
    assert code == 0 and json.loads(out)["run"]["params"]["start"] == START

    code, out, err = run(capsys, "run", "SP500", "--json")
    assert code == 0, err
    full = json.loads(out)
    assert full["request"]["start"] is None
    assert full["market_data"]["SP500"]["MT"]["first"] == "1999-01-04T00:00:00+00:00"
    # the window is used: the walk-forward regimes differ ...
    cut_mt, full_mt = cut["regime"]["SP500"]["timeframes"]["MT"], full["regime"]["SP500"]["timeframes"]["MT"]
    assert cut_mt["n_fits"] < full_mt["n_fits"] and cut_mt["transition_matrix"] != full_mt["transition_matrix"]

    # ... and nothing before it leaks in: a file that holds only the bars from the start
    _write_bars(_all_sp500().loc[FIRST_SESSION:], tmp_path / "bars" / "SP500.csv")
    code, out, err = run(capsys, "run", "SP500", "--source", "file", "--json")
    assert code == 0, err
    from_file = json.loads(out)
    assert from_file["market_data"]["SP500"]["MT"]["first"] == FIRST_SESSION.isoformat()
    daily = ("LT", "MT", "ST")  # US: unavailable in both, for reasons naming the source
    regimes = {name: doc["regime"]["SP500"] for name, doc in (("file", from_file), ("cut", cut))}
    assert {tf: regimes["file"]["timeframes"][tf] for tf in daily} == {tf: regimes["cut"]["timeframes"][tf]
                                                                      for tf in daily}
    assert regimes["file"]["consensus"] == regimes["cut"]["consensus"]
    assert all(regimes["cut"]["timeframes"][tf]["available"] for tf in daily)
    stats = {name: doc["statistics"]["SP500"] for name, doc in (("file", from_file), ("cut", cut))}
    assert {tf: stats["file"][tf] for tf in daily} == {tf: stats["cut"][tf] for tf in daily}
    assert all("nobs" in stats["cut"][tf] for tf in daily)


def test_stats_start_cuts_into_the_lookback(capsys):
    """With a start inside a horizon's lookback the statistics see fewer bars: LT has 156 weekly
    bars by default, and 104 from 2017 (6 Jan 2017 to 28 Dec 2018)."""
    code, out, err = run(capsys, "stats", "SP500", "--horizon", "LT", "--json")
    assert code == 0, err
    full = json.loads(out)
    code, out, err = run(capsys, "stats", "SP500", "--horizon", "LT", "--start", "2017-01-01", "--json")
    assert code == 0, err
    late = json.loads(out)
    assert late["start"] == "2017-01-01" and full["start"] is None
    assert full["timeframes"]["LT"]["nobs"] == 156
    assert late["timeframes"]["LT"]["nobs"] == 104
    assert late["timeframes"]["LT"]["start"] == "2017-01-06T00:00:00+00:00"
    assert late["timeframes"]["LT"]["adf"] != full["timeframes"]["LT"]["adf"]


def test_regime_start_equals_a_file_cut_at_the_start(cfg, capsys, tmp_path):
    _write_bars(_all_sp500().loc[pd.Timestamp("2012-01-01", tz="UTC"):], tmp_path / "bars" / "SP500.csv")
    docs = {}
    for name, argv in (("start", ("--start", "2012-01-01")), ("file", ("--source", "file")), ("default", ())):
        code, out, err = run(capsys, "regime", "SP500", "--method", "garch", *argv, "--json")
        assert code == 0, err
        docs[name] = json.loads(out)
    assert docs["start"]["start"] == "2012-01-01"
    daily = ("LT", "MT", "ST")  # US: unavailable in all three, for reasons naming the source
    start, file, default = ({tf: docs[name]["timeframes"][tf] for tf in daily} for name in ("start", "file", "default"))
    assert all(r["available"] for r in start.values())
    assert start == file and docs["start"]["consensus"] == docs["file"]["consensus"]
    assert start != default
    assert start["MT"]["n_fits"] < default["MT"]["n_fits"]


def test_a_resumed_run_keeps_its_start(cfg, capsys):
    code, out, err = run(capsys, "run", "SP500", "--start", START, "--as-of", "2015-06-30", "--approve", "--json")
    assert code == 0, err
    waiting = json.loads(out)
    assert waiting["status"] == "interrupted" and waiting["request"]["start"] == START
    code, out, err = run(capsys, "reject", waiting["thread_id"], "--json")
    assert code == 0, err
    done = json.loads(out)
    assert done["status"] == "completed"
    assert done["request"] == waiting["request"]
    assert done["report"]["request"]["start"] == START
    assert done["market_data"]["SP500"]["MT"]["first"] == FIRST_SESSION.isoformat()


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("argv", "message"), [
    (("run", "SP500", "--start", "2012-01-01", "--as-of", "2011-01-01"),
     "--start '2012-01-01' is after --as-of '2011-01-01': the run would have no bars"),
    (("run", "SP500", "--start", "last tuesday"), "--start: cannot parse 'last tuesday' as a date"),
    (("stats", "SP500", "--start", "2012-13-01"), "--start: cannot parse '2012-13-01' as a date"),
    (("regime", "SP500", "--start", "2012-01-01", "--as-of", "2011-12-30"),
     "--start '2012-01-01' is after --as-of '2011-12-30': the run would have no bars"),
    (("run", "--resume", "run-x", "--start", START), "--resume continues a run with its own --start: give no --start"),
])
def test_bad_starts_are_one_line_usage_errors(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert (code, out, err) == (2, "", f"regimedesk: error: {message}\n")


def test_a_start_after_the_data_is_one_clear_error(capsys):
    code, out, err = run(capsys, "run", "SP500", "--start", "2020-01-01")
    assert (code, out) == (1, "")
    assert err.splitlines()[-1] == ("regimedesk: error: --start '2020-01-01': no bars of SP500 from that date "
                                    "(the data run from 1999-01-04 to 2018-12-31)")


def test_a_start_leaving_too_few_bars_gives_the_needs_more_bars_errors(cfg, capsys):
    code, out, err = run(capsys, "run", "SP500", "--start", "2018-12-01", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["market_data"]["SP500"]["MT"]["bars"] == 19  # the sessions of December 2018
    errors = {e["agent"]: e["error"] for e in doc["errors"]}
    assert errors["ml_signal"] == ("InsufficientDataError: SP500: 19 daily bars; the ML signal needs more than "
                                   "ml.min_train + 50 = 554")
    assert "Traceback" not in err
    stats = doc["statistics"]["SP500"]
    assert stats["MT"]["error"] == "only 19 bars available; statistics need at least 20"
    assert not any(r["available"] for r in doc["regime"]["SP500"]["timeframes"].values())


# ----------------------------------------------------------------------------- help


@pytest.mark.parametrize("command", ["run", "regime", "stats"])
def test_help_explains_start(capsys, command):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert info.value.code == 0
    assert "--start DATE first bar loaded (inclusive)" in text
    assert "see nothing earlier (default: data.history_years (30 unless configured) years back from the last bar" in text


def test_other_commands_keep_their_own_start(capsys):
    with pytest.raises(SystemExit):
        main(["backtest", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "first date of the evaluation window" in text and "first bar loaded" not in text


def test_the_ml_signal_of_a_start_run_uses_no_model_trained_before_the_start(cfg, capsys):
    from agents.services.ml import model_store

    code, _, err = run(capsys, "run", "SP500", "--json")  # stores a model trained on 1999-2018
    assert code == 0, err
    code, out, err = run(capsys, "run", "SP500", "--start", START, "--json")
    assert code == 0, err
    version = json.loads(out)["ml_signal"]["SP500"]["model_version"]
    used = model_store(cfg).load("SP500", version)
    assert pd.Timestamp(used.metadata["data_start"]) >= FIRST_SESSION
