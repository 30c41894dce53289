"""Universes (builtin, configured, files) and ``regimedesk backtest --universe``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from agents.cli import main
from agents.config import PortfolioConfig, Secrets, Settings
from agents.services.portfolio import (
    Universe,
    UniverseError,
    backtest_config,
    portfolio_backtest,
    resolve_universe,
    universe_prices,
)


def _settings(**portfolio) -> Settings:
    return Settings(portfolio=PortfolioConfig(**portfolio))


def _one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


# ----------------------------------------------------------------------------- resolve_universe


@pytest.mark.parametrize("spec", ["sp500-20", "SP500-20", "  Sp500-20 "])
def test_builtin_universe_names_are_case_insensitive(spec):
    u = resolve_universe(_settings(), spec)
    assert u.name == "sp500-20" and u.origin == "builtin"
    assert len(u.symbols) == 20 and u.symbols[:3] == ("AAPL", "AMD", "BAC")
    assert u.benchmark == "SP500X" and u.regime_symbol == "SP500X"  # the benchmark by default
    f = resolve_universe(_settings(regime_symbol="SP500"), "FACTORS")
    assert f.symbols == ("MTUM", "QUAL", "SIZE", "USMV", "VLUE")
    assert f.benchmark == "SP500X" and f.regime_symbol == "SP500"  # the configured one wins


def test_configured_universes_are_upper_cased_and_take_the_configured_regime_symbol():
    s = _settings(universes={"Mine": ["ko", "Jnj"]}, regime_symbol="SP500X")
    u = resolve_universe(s, "Mine")
    assert u == Universe("Mine", ("KO", "JNJ"), None, "SP500X", "config")
    assert u.to_dict() == {"name": "Mine", "symbols": ["KO", "JNJ"], "benchmark": None,
                           "regime_symbol": "SP500X", "origin": "config"}
    assert resolve_universe(_settings(universes={"Mine": ["KO"]}), "Mine").regime_symbol is None


def test_a_file_universe_reads_commas_spaces_comments_and_drops_duplicates(tmp_path):
    path = tmp_path / "staples.txt"
    path.write_text("# my staples\nko, JNJ  # two of them\n\npg,,ko\nXOM pg\n   # only a comment\n")
    u = resolve_universe(_settings(regime_symbol="SP500X"), str(path))
    assert u == Universe("staples", ("KO", "JNJ", "PG", "XOM"), None, "SP500X", "file")


def test_an_unknown_universe_lists_the_known_names():
    s = _settings(universes={"mine": ["KO"]})
    with pytest.raises(UniverseError) as exc:
        resolve_universe(s, "nope.txt")  # no such file in the test's working directory
    msg = str(exc.value)
    assert "unknown universe" in msg and "nope.txt" in msg
    assert "sp500-20, factors, mine" in msg
    assert isinstance(exc.value, ValueError)
    with pytest.raises(UniverseError, match="needs a name or a file"):
        resolve_universe(s, "  ")


def test_a_file_without_symbols_or_unreadable_is_refused(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing here\n\n  , ,\n")
    with pytest.raises(UniverseError, match="lists no symbols"):
        resolve_universe(_settings(), str(empty))
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00KO")
    with pytest.raises(UniverseError, match="cannot read universe file"):
        resolve_universe(_settings(), str(binary))


# ----------------------------------------------------------------------------- prices and the service


def test_universe_prices_align_on_common_dates_and_say_which_asset_is_younger():
    from agents.services.context import AppContext

    settings = _settings()
    store = AppContext(settings, Secrets()).bars({"source": "builtin", "as_of": None, "start": "1900-01-01"})
    prices, notes = universe_prices(store, ["ko", "MTUM"])
    assert list(prices.columns) == ["KO", "MTUM"]
    mtum = store.get("MTUM", "MT").frame["close"]
    assert prices.index[0] == mtum.index[0] and prices.index[0].year == 2014
    assert np.isfinite(prices.to_numpy()).all()
    assert len(notes) == 1 and "MTUM has no earlier bars" in notes[0] and str(mtum.index[0].date()) in notes[0]


def test_the_backtest_of_a_universe_without_a_regime_symbol_fails_before_any_work():
    u = Universe("u", ("KO", "JNJ"), None, None, "file")
    with pytest.raises(UniverseError, match="portfolio.regime_symbol"):
        portfolio_backtest(_settings(), Secrets(), u, ["erc"])
    with pytest.raises(ValueError, match="--portfolio must be one of"):
        portfolio_backtest(_settings(), Secrets(), u, ["kelly"])


def test_backtest_config_takes_the_portfolio_settings():
    cfg = backtest_config(_settings(cov_window=300, band=0.1), cost_bps=2.5)
    assert (cfg.cov_window, cfg.min_history, cfg.band, cfg.cost_bps) == (300, 252, 0.1, 2.5)
    assert cfg.caps["risk_off"].gross == 0.6 and cfg.caps["risk_off"].per_asset == 0.15
    assert backtest_config(_settings()).cost_bps == 5.0


# ----------------------------------------------------------------------------- the command line


@pytest.mark.parametrize(("argv", "needle"), [
    (("backtest",), "give a symbol (e.g. SP500) or --universe"),
    (("backtest", "--portfolio", "erc"), "--portfolio needs --universe"),
    (("backtest", "SP500", "--portfolio", "invvol"), "--portfolio needs --universe"),
])
def test_backtest_usage_errors_exit_2_with_one_line(capsys, argv, needle):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert needle in _one_line(err)


def test_universe_errors_are_one_line_before_any_work(capsys, tmp_path):
    (tmp_path / "u.txt").write_text("KO JNJ\n")
    code = main(["backtest", "--universe", "no-such-universe"])
    out, err = capsys.readouterr()
    assert code == 1 and out == "" and "sp500-20, factors" in _one_line(err)
    code = main(["backtest", "--universe", str(tmp_path / "u.txt"), "--portfolio", "erc"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert "portfolio.regime_symbol" in err.splitlines()[-1]
    code = main(["backtest", "SP500", "--universe", "factors"])
    _, err = capsys.readouterr()
    assert code == 2 and "not both" in _one_line(err)
    # A start after the data is said before the regime walk-forward (which would take ~30 s).
    code = main(["backtest", "--universe", "factors", "--start", "2030-01-01"])
    out, err = capsys.readouterr()
    assert code == 1 and out == "" and "regimes of" not in err  # no walk-forward started
    assert err.splitlines()[-1] == ("regimedesk: error: --start 2030-01-01 is after the last common bar of the "
                                    "universe (2022-12-28)")


def test_backtest_of_a_file_universe_as_json(capsys, tmp_path, monkeypatch):
    """The one test that runs the regime walk-forward (~30 s cold)."""
    from analytics import Timeframe, run_portfolio_backtest
    from integrations import BuiltinSource

    (tmp_path / "staples.txt").write_text("ko, JNJ  # staples\nxom\n")
    (tmp_path / "regime.toml").write_text('[portfolio]\nregime_symbol = "SP500X"\n')
    monkeypatch.setenv("REGIMEDESK_CONFIG", str(tmp_path / "regime.toml"))
    code = main(["backtest", "--universe", str(tmp_path / "staples.txt"), "--portfolio", "invvol", "--json",
                 "--start", "2015-01-01"])
    out, _ = capsys.readouterr()
    assert code == 0
    doc = json.loads(out)
    assert doc["universe"] == {"name": "staples", "symbols": ["KO", "JNJ", "XOM"], "benchmark": None,
                               "regime_symbol": "SP500X", "origin": "file"}
    assert list(doc["results"]) == ["invvol", "equal", "invvol_static"]  # no benchmark: no index column
    start = pd.Timestamp(doc["window"]["start"])
    assert start >= pd.Timestamp("2015-01-01", tz="UTC") and start.year == 2015
    assert doc["regime"]["symbol"] == "SP500X"
    assert sum(doc["regime"]["share"].values()) == pytest.approx(1.0)
    for m in ("invvol", "equal", "invvol_static"):
        eq = doc["equity"][m]
        assert len(eq) == doc["window"]["bars"]
        assert eq[-1] == pytest.approx(1.0 + doc["results"][m]["metrics"]["total_return"], rel=1e-12)
    # invvol runs under the regime caps; the benchmarks are always fully invested
    assert doc["results"]["invvol"]["metrics"]["avg_gross"] < 0.99
    assert doc["results"]["equal"]["metrics"]["avg_gross"] == pytest.approx(1.0, abs=1e-12)
    # 1/N (regime-blind) from the embedded closes: the engine run directly on the same bars gives the
    # same figures, and it stays close to the daily-rebalanced 1/N computed by hand
    src = BuiltinSource()
    closes = pd.DataFrame({s: src.fetch(s, Timeframe.parse("1D"), pd.Timestamp("1900-01-01", tz="UTC"),
                                        pd.Timestamp("2100-01-01", tz="UTC"))["close"] for s in ("KO", "JNJ", "XOM")})
    closes = closes.dropna()
    direct = run_portfolio_backtest(closes, pd.Series("risk_on", closes.index), "equal", backtest_config(Settings()))
    net = direct.returns.loc[start:]
    assert len(net) == doc["window"]["bars"]
    assert doc["results"]["equal"]["metrics"]["total_return"] == pytest.approx(np.prod(1.0 + net) - 1.0, rel=1e-12)
    assert doc["results"]["equal"]["rebalances"] == sum(1 for t in direct.rebalances if t >= start)
    r = closes.pct_change().loc[start:]
    daily_1n = float(np.prod(1.0 + r.mean(axis=1).to_numpy()) - 1.0)
    assert doc["results"]["equal"]["metrics"]["total_return"] == pytest.approx(daily_1n, abs=0.01)
