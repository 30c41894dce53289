"""The embedded multi-asset universe: skfolio's stocks, S&P 500 index and factor ETFs, close-only."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from analytics import CLOSE_ONLY_MISSING, DataQualityWarning, Timeframe, is_close_only
from integrations import (
    BUILTIN_SYMBOLS,
    BUILTIN_UNIVERSES,
    BuiltinSource,
    MarketData,
    UnknownSymbolError,
)

DAY = Timeframe.parse("1D")
EVER = (pd.Timestamp("1900-01-01", tz="UTC"), pd.Timestamp("2100-01-01", tz="UTC"))
STOCKS = ("AAPL", "AMD", "BAC", "BBY", "CVX", "GE", "HD", "JNJ", "JPM", "KO",
          "LLY", "MRK", "MSFT", "PEP", "PFE", "PG", "RRC", "UNH", "WMT", "XOM")
FACTORS = ("MTUM", "QUAL", "SIZE", "USMV", "VLUE")


def _whole(symbol: str) -> pd.DataFrame:
    return BuiltinSource().fetch(symbol, DAY, *EVER)


@pytest.fixture(scope="module")
def skfolio_data():
    from skfolio.datasets import load_factors_dataset, load_sp500_dataset, load_sp500_index

    return load_sp500_dataset(), load_sp500_index(), load_factors_dataset()


def _utc(index: pd.Index) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(index).tz_localize("UTC").as_unit("ns")


def test_universes_name_the_stocks_and_the_factor_etfs():
    assert BUILTIN_UNIVERSES == {"sp500-20": (STOCKS, "SP500X"), "factors": (FACTORS, "SP500X")}
    for symbols, benchmark in BUILTIN_UNIVERSES.values():
        for name in (*symbols, benchmark):
            assert BUILTIN_SYMBOLS[name].close_only is True
            assert BUILTIN_SYMBOLS[name].package == "skfolio"
    assert BUILTIN_SYMBOLS["SP500"].close_only is False
    assert BUILTIN_SYMBOLS["NASDAQ"].close_only is False


def test_aapl_is_skfolio_aapl_exactly(skfolio_data):
    prices, _, _ = skfolio_data
    frame = _whole("AAPL")
    assert len(frame) == 8313
    assert frame.index[0] == pd.Timestamp("1990-01-02", tz="UTC")
    assert frame.index[-1] == pd.Timestamp("2022-12-28", tz="UTC")
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
    assert frame.index.equals(_utc(prices.index))
    np.testing.assert_array_equal(frame["close"].to_numpy(), prices["AAPL"].to_numpy())
    assert is_close_only(frame)
    assert frame.loc[:, list(CLOSE_ONLY_MISSING)].isna().all().all()


def test_every_stock_and_factor_equals_its_skfolio_column(skfolio_data):
    prices, _, factors = skfolio_data
    for table, symbols in ((prices, STOCKS), (factors, FACTORS)):
        for symbol in symbols:
            frame = _whole(symbol)
            column = table[symbol].dropna()
            assert frame.index.equals(_utc(column.index)), symbol
            np.testing.assert_array_equal(frame["close"].to_numpy(), column.to_numpy(), err_msg=symbol)
            assert is_close_only(frame), symbol


def test_sp500x_is_the_skfolio_index(skfolio_data):
    _, index, _ = skfolio_data
    frame = _whole("SP500X")
    assert len(frame) == 8313
    assert frame.index.equals(_utc(index.index))
    np.testing.assert_array_equal(frame["close"].to_numpy(), index["SP500"].to_numpy())
    assert is_close_only(frame)


def test_factor_etfs_start_in_2014():
    for symbol in FACTORS:
        frame = _whole(symbol)
        assert frame.index[0] == pd.Timestamp("2014-01-02", tz="UTC"), symbol
        assert frame.index[-1] == pd.Timestamp("2022-12-28", tz="UTC"), symbol
        assert len(frame) == 2264, symbol


def test_arch_sp500_stays_ohlcv():
    frame = _whole("SP500")
    assert not is_close_only(frame)
    assert np.isfinite(frame.to_numpy()).all()
    assert (frame["high"] >= frame["low"]).all() and (frame["volume"] > 0).all()
    assert len(frame) == 5031


def test_aliases_and_unknown_symbols():
    src = BuiltinSource()
    assert src.canonical_symbol("SP500-1990") == "SP500X"
    assert src.canonical_symbol(" sp500-1990 ") == "SP500X"
    assert src.canonical_symbol("aapl") == "AAPL"
    assert src.canonical_symbol("^GSPC") == "SP500"  # the arch series keeps its aliases
    pd.testing.assert_frame_equal(src.fetch("sp500-1990", DAY, *EVER), _whole("SP500X"))
    with pytest.raises(UnknownSymbolError) as info:
        src.canonical_symbol("TSLA")
    message = str(info.value)
    assert "'TSLA'" in message
    for name in ("SP500", "NASDAQ", *STOCKS, "SP500X", *FACTORS):
        assert name in message


def test_known_issues_of_the_close_only_series():
    src = BuiltinSource()
    known = src.known_issues("AAPL")
    key = ("jump", "2000-09-29T00:00:00+00:00")
    assert key in known
    assert "2000-09-29" in known[key] and "real move" in known[key]
    assert all(rule == "jump" for rule, _ in known)
    assert ("jump", "2004-09-30T00:00:00+00:00") in src.known_issues("MRK")  # Vioxx withdrawn
    assert src.known_issues("aapl") == known  # by canonical name
    # the arch series keeps its hand-written note and nothing else
    assert list(src.known_issues("SP500")) == [("jump", "2018-02-05T00:00:00+00:00")]


def test_market_data_serves_every_symbol_close_only_without_warnings():
    md = MarketData(BuiltinSource())
    names = sorted({s for symbols, bench in BUILTIN_UNIVERSES.values() for s in (*symbols, bench)})
    assert len(names) == 26
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataQualityWarning)  # the known jumps are not warned about
        for name in names:
            daily = md.bars(name)
            weekly = md.weekly_from(daily, now="2023-01-01")
            assert daily.report.ok and daily.report.close_only, name
            assert daily.report.summary().startswith("ok"), name
            assert "close-only" in daily.report.summary(), name
            assert set(daily.report.counts()) <= {"jump"}, name
            assert is_close_only(daily.frame) and is_close_only(weekly.frame), name
            assert daily.frame["close"].notna().all() and weekly.frame["close"].notna().all(), name
            assert (weekly.frame.index.day_of_week == 4).all(), name
            assert weekly.frame.index[-1] == pd.Timestamp("2022-12-23", tz="UTC"), name  # last week partial
            known = daily.known_notes()
            assert len(known) == daily.report.counts().get("jump", 0), name


def test_market_data_daily_and_weekly_values(skfolio_data):
    prices, _, _ = skfolio_data
    md = MarketData(BuiltinSource())
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataQualityWarning)
        daily = md.bars("AAPL", start="1990-01-01")
        weekly = md.bars("AAPL", "1W", start="1990-01-01")
        window = md.bars("AAPL", start="2000-01-01", end="2000-12-31")
    assert (daily.symbol, daily.source, daily.timeframe) == ("AAPL", "builtin", "1D")
    assert len(daily.frame) == 8313
    np.testing.assert_array_equal(daily.frame["close"].to_numpy(), prices["AAPL"].to_numpy())
    assert daily.frame.loc[:, list(CLOSE_ONLY_MISSING)].isna().all().all()
    # 2000-09-29: the profit warning, flagged and explained, not warned about
    assert "jump on 2000-09-29 is a real move" in " ".join(daily.known_notes())
    assert "known_flags" in daily.summary()
    # weekly closes are the last daily close of each complete week
    expected = pd.Series(prices["AAPL"].to_numpy(), index=_utc(prices.index)).resample("W-FRI").last().dropna()
    expected = expected.iloc[:-1]  # 2022-12-28 is a Wednesday: that week is partial
    assert weekly.frame.index.equals(expected.index.rename("timestamp"))
    np.testing.assert_array_equal(weekly.frame["close"].to_numpy(), expected.to_numpy())
    assert weekly.frame.loc[:, list(CLOSE_ONLY_MISSING)].isna().all().all()
    assert window.frame.index[0] == pd.Timestamp("2000-01-03", tz="UTC")
    assert window.frame.index[-1] == pd.Timestamp("2000-12-29", tz="UTC")
    assert len(window.frame) == 252


def test_configured_market_data_serves_close_only_bars():
    from agents.config import Secrets, Settings
    from agents.services.data import build_market_data

    md = build_market_data(Settings(), Secrets(), "builtin")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataQualityWarning)
        daily = md.bars("MTUM")
        weekly = md.weekly_from(daily, now="2023-06-01")
        direct = md.bars("MTUM", "1W", now="2023-06-01")
    assert daily.report.close_only and len(daily.frame) == 2264
    pd.testing.assert_frame_equal(weekly.frame, direct.frame)
    assert len(weekly.frame) == 469
    assert is_close_only(weekly.frame)
