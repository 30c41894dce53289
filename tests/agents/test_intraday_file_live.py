"""regimedesk live on 5-minute bars from the file source: the intraday files plus their daily
companions (``SYMBOL.1D.csv``) feed a replay end to end, and the configuration of companions."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from agents.cli import main
from agents.config import load_settings
from analytics import ConfigError
from integrations import Journal, LiveStateStore

NY = "America/New_York"
#: Five full NYSE sessions: four back-filled, one replayed. The US regime needs more than 234
#: (3 x 78) 5-minute returns: with three back-filled sessions it is still unavailable on the first replayed bar.
SESSIONS = [pd.Timestamp(d) for d in ("2019-01-02", "2019-01-03", "2019-01-04", "2019-01-07", "2019-01-08")]
FAST = "[ml]\nrefit_every = 252\n[live]\nretry_backoff = 0.0\nretries = 3\n"


def _five_minute_bars(first_price: float, seed: int = 7) -> pd.DataFrame:
    """78 bars a session, 09:30-15:55 New York (bar starts), naive local stamps; a calm and a
    turbulent half of every session so the US regime has something to find."""
    rng = np.random.default_rng(seed)
    offsets = pd.to_timedelta(9 * 60 + 30 + 5 * np.arange(78), unit="min")
    index = pd.DatetimeIndex([d + off for d in SESSIONS for off in offsets], name="timestamp")
    sigma = np.tile(np.r_[np.full(39, 0.0006), np.full(39, 0.0020)], len(SESSIONS))
    close = first_price * np.exp(np.cumsum(rng.normal(0.0, sigma)))
    opens = np.r_[first_price, close[:-1]]
    wick = np.abs(rng.normal(0.0, 0.5, (2, len(close)))) * sigma
    return pd.DataFrame({"open": opens, "high": np.maximum(opens, close) * np.exp(wick[0]),
                         "low": np.minimum(opens, close) * np.exp(-wick[1]), "close": close,
                         "volume": np.round(rng.lognormal(10.0, 0.3, len(close)))}, index=index)


def _write(tmp_path, companion: bool = True):
    import arch.data.sp500

    data = tmp_path / "bars"
    data.mkdir()
    raw = arch.data.sp500.load()
    daily = raw[["Open", "High", "Low", "Close", "Volume"]].set_axis(["open", "high", "low", "close", "volume"],
                                                                      axis=1)
    bars = _five_minute_bars(float(daily["close"].iloc[-1]))
    sessions = bars.groupby(bars.index.normalize()).agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
    daily = pd.concat([daily, sessions])
    daily.index = pd.DatetimeIndex(daily.index).strftime("%Y-%m-%d").rename("date")
    if companion:
        daily.to_csv(data / "SPX.1D.csv")
    out = bars.copy()
    out.index = out.index.strftime("%Y-%m-%d %H:%M:%S").rename("timestamp")
    out.to_csv(data / "SPX.csv")
    cfg = tmp_path / "intraday.toml"
    cfg.write_text(f'[data]\nsource = "file"\n[data.file]\ndirectory = "{data}"\ntimeframe = "5Min"\n'
                   f'timezone = "{NY}"\n' + FAST)
    return cfg, bars, daily


def test_a_5min_replay_from_files_handles_bars_with_the_us_regime(tmp_path, monkeypatch, capsys):
    cfg, bars, daily = _write(tmp_path)
    monkeypatch.setenv("REGIMEDESK_CONFIG", str(cfg))
    argv = ["live", "SPX", "--feed", "replay", "--source", "file", "--timeframe", "5Min",
            "--start", "2019-01-08", "--max-bars", "5", "--json"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["handled"] == 5 and summary["failed"] == 0 and summary["stopped_by"] == "max bars"

    settings = load_settings()
    with LiveStateStore(settings.home_dir / "live_state.sqlite") as state, \
            Journal(settings.home_dir / "journal.sqlite") as journal:
        sessions = [s["session"] for s in state.live_sessions()]
        assert len(sessions) == 1
        rows = state.live_bars(sessions[0])
        # 09:30 .. 09:50 New York on 8 January 2019 (EST: UTC-5)
        expected = pd.date_range("2019-01-08 14:30", periods=5, freq="5min", tz="UTC")
        assert [pd.Timestamp(r["bar_time"]) for r in rows] == list(expected)
        assert {r["status"] for r in rows} == {"completed"}
        for row, bar_time in zip(rows, expected, strict=True):
            shown = journal.show_run(row["run_id"])
            regime = next(o["output"]["regime"]["SPX"] for o in shown["agent_outputs"] if o["agent"] == "regime")
            tfs = regime["timeframes"]
            us = tfs["US"]
            # the US regime is estimated from the back-filled 5-minute bars, up to this bar
            assert us["available"] is True and us["bar"] == "5Min"
            assert pd.Timestamp(us["as_of"]) == bar_time
            assert us["family"] in ("risk_on", "risk_off")
            assert math.isclose(sum(us["family_probabilities"].values()), 1.0, rel_tol=1e-9)
            # the daily timeframes read the companion: its last session before this one, 2019-01-07
            # (a daily bar exists beyond the embedded 2018-12-31 only in SPX.1D.csv), not 2019-01-08
            for name in ("MT", "ST"):
                assert tfs[name]["available"] is True
                assert pd.Timestamp(tfs[name]["as_of"]) == pd.Timestamp("2019-01-07", tz="UTC")
    assert daily.index[-1] == "2019-01-08" and len(bars) == 5 * 78


def test_a_5min_replay_without_the_daily_file_says_which_file_it_needs(tmp_path, monkeypatch, capsys):
    cfg, _, _ = _write(tmp_path, companion=False)
    monkeypatch.setenv("REGIMEDESK_CONFIG", str(cfg))
    assert main(["live", "SPX", "--feed", "replay", "--source", "file", "--timeframe", "5Min",
                 "--start", "2019-01-08", "--max-bars", "1"]) == 1
    err = capsys.readouterr().err
    assert "no daily file for SPX: expected SPX.1D.csv or SPX.1D.parquet beside SPX.csv" in err


@pytest.mark.parametrize(("body", "message"), [
    ('files = { "SPX.1D" = "/d/spx.csv" }\n', "names the daily file beside an intraday one, but "
                                              "data.file.timeframe is 1D"),
    ('timeframe = "5Min"\nfiles = { ".1d" = "/d/spx.csv" }\n', "names no symbol"),
])
def test_daily_companion_entries_are_checked(tmp_path, body, message):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[data.file]\n" + body)
    with pytest.raises(ConfigError, match=message):
        load_settings(cfg)


def test_an_intraday_file_configuration_lists_its_daily_companions(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[data.file]\ntimeframe = "5min"\nfiles = { SPX = "/d/spx5.csv", "spx.1d" = "/d/spx.csv" }\n')
    file_cfg = load_settings(cfg).data.file
    assert file_cfg.timeframe == "5Min" and set(file_cfg.files) == {"SPX", "spx.1d"}
