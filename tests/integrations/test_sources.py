"""Market-data sources: builtin, files, and the real Polygon/Alpaca clients on loopback stubs."""

from __future__ import annotations

import json
import warnings
from urllib.parse import parse_qs

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug import Response

from analytics import DataQualityWarning, Timeframe
from integrations import (
    AlpacaSource,
    BuiltinSource,
    FileSource,
    MarketData,
    MissingCredentialsError,
    NoDataError,
    PermanentError,
    PolygonSource,
    UnknownSymbolError,
    read_bar_file,
)

warnings.filterwarnings("ignore", category=DataQualityWarning)
NOW = pd.Timestamp("2024-06-01", tz="UTC")


# ----------------------------------------------------------------------------- builtin


def test_builtin_sp500_is_complete_and_adjusted():
    bars = MarketData(BuiltinSource()).bars("SP500")
    frame = bars.frame
    assert len(frame) == 5031
    assert frame.index[0] == pd.Timestamp("1999-01-04", tz="UTC")
    assert frame.index[-1] == pd.Timestamp("2018-12-31", tz="UTC")
    assert str(frame.index.tz) == "UTC"
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
    assert all(frame[c].dtype == np.float64 for c in frame.columns)
    import arch.data.sp500

    raw = arch.data.sp500.load()
    np.testing.assert_allclose(frame["close"].to_numpy(), raw["Adj Close"].to_numpy())
    assert bars.report.ok


def test_builtin_aliases_ranges_and_weekly():
    md = MarketData(BuiltinSource())
    assert md.bars("^gspc").symbol == "SP500"
    nas = md.bars("NASDAQ", start="2008-09-15", end="2009-03-31")
    assert nas.frame.index[0] == pd.Timestamp("2008-09-15", tz="UTC")
    assert nas.frame.index[-1] == pd.Timestamp("2009-03-31", tz="UTC")
    weekly = md.bars("SP500", "1W").frame
    assert (weekly.index.day_of_week == 4).all()  # stamped on Fridays
    assert weekly.index[-1] == pd.Timestamp("2018-12-28", tz="UTC")  # the last week is partial


def test_builtin_errors():
    md = MarketData(BuiltinSource())
    with pytest.raises(UnknownSymbolError, match="SP500, NASDAQ"):
        md.bars("TSLA")
    with pytest.raises(NoDataError, match="no 5Min bars"):
        md.bars("SP500", "5Min")
    with pytest.raises(ValueError, match="empty date range"):
        md.bars("SP500", start="2010-01-01", end="2009-01-01")
    with pytest.raises(NoDataError, match="no 1D bars"):
        md.bars("SP500", start="2030-01-01")
    with pytest.raises(ValueError, match="not a valid ticker"):
        md.bars("rm -rf /")


def test_as_of_drops_bars_not_yet_closed():
    md = MarketData(BuiltinSource())
    frame = md.bars("SP500", end="2008-10-01", now="2008-10-01 12:00").frame
    assert frame.index[-1] == pd.Timestamp("2008-09-30", tz="UTC")


# ----------------------------------------------------------------------------- files


def _sample(n=30):
    idx = pd.bdate_range("2022-03-01", periods=n, name="Date")
    close = np.linspace(100, 110, n)
    return pd.DataFrame(
        {"Open": close - 0.5, "HIGH": close + 1, "low": close - 1, "Close": close, "Volume": np.arange(n) * 10.0},
        index=idx,
    )


def test_csv_case_insensitive_columns_and_timezone(tmp_path):
    df = _sample()
    path = tmp_path / "SPY.csv"
    df.reset_index().to_csv(path, index=False)
    frame = read_bar_file(path, "America/New_York")
    assert frame.index[0] == pd.Timestamp("2022-03-01 05:00", tz="UTC")
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
    src = FileSource(directory=tmp_path, timezone="America/New_York")
    bars = MarketData(src).bars("spy")
    assert bars.frame.index[0] == pd.Timestamp("2022-03-01", tz="UTC")  # session date
    assert len(bars.frame) == 30


@pytest.mark.parametrize("zone", ["Asia/Tokyo", "Australia/Sydney", "America/New_York", "UTC"])
def test_daily_file_sessions_are_the_dates_written_in_any_zone(tmp_path, zone):
    """A naive daily date is its session, wherever data.file.timezone is (east of UTC the
    session used to move back a day); a naive date with a late time stays on its date."""
    df = _sample()
    df.index = df.index + pd.Timedelta(hours=20)  # e.g. a close stamped 20:00 local
    df.reset_index().to_csv(tmp_path / "N.csv", index=False)
    got = FileSource(directory=tmp_path, timezone=zone).fetch("N", DAY, *WIDE)
    assert list(got.index) == list(pd.DatetimeIndex(_sample().index).tz_localize("UTC"))


def test_parquet_with_index_and_adjusted_close(tmp_path):
    df = _sample()
    df["Adj Close"] = df["Close"] / 2
    df.index = df.index.tz_localize("UTC")
    path = tmp_path / "X.parquet"
    df.to_parquet(path)
    frame = read_bar_file(path)
    np.testing.assert_allclose(frame["close"], df["Close"] / 2)
    np.testing.assert_allclose(frame["open"], df["Open"] / 2)
    np.testing.assert_allclose(frame["volume"], df["Volume"] * 2)


def test_epoch_milliseconds(tmp_path):
    df = _sample(5).reset_index()
    df["t"] = (df.pop("Date").astype("int64") // 10**6).astype("int64")
    df.to_csv(tmp_path / "e.csv", index=False)
    frame = read_bar_file(tmp_path / "e.csv")
    assert frame.index[0] == pd.Timestamp("2022-03-01", tz="UTC")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a,b\n1,2\n", "no timestamp column"),
        ("date,open,high,low,close\n2020-01-01,1,2,0.5,1\n", "missing column 'volume'"),
        ("date,open,high,low,close,volume\nnot-a-date,1,2,0.5,1,3\n",
         r"line 2 \(data row 0\), column 'date': cannot parse timestamp 'not-a-date'$"),
        ("date,open,high,low,close,volume\n2020-01-01,x,2,0.5,1,3\n",
         r"line 2 \(data row 0\), column 'open': not a number: 'x'$"),
        ("date,open,high,low,close,volume\n", "no rows"),
    ],
)
def test_malformed_files_raise_one_clear_error(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(PermanentError, match=message):
        read_bar_file(path)


def test_missing_and_unsupported_files(tmp_path):
    with pytest.raises(PermanentError, match="no such file"):
        read_bar_file(tmp_path / "nope.csv")
    (tmp_path / "a.xlsx").write_text("x")
    with pytest.raises(PermanentError, match="unsupported"):
        read_bar_file(tmp_path / "a.xlsx")
    with pytest.raises(UnknownSymbolError, match="QQQ.csv"):
        MarketData(FileSource(directory=tmp_path)).bars("QQQ")


def _epoch_file(tmp_path, seconds: np.ndarray, name: str = "e.csv"):
    n = len(seconds)
    close = np.linspace(10, 20, n)
    pd.DataFrame({"t": seconds, "open": close, "high": close + 1, "low": close - 1, "close": close,
                  "volume": 100.0}).to_csv(tmp_path / name, index=False)
    return tmp_path / name


def _daily_seconds(n: int) -> np.ndarray:
    days = pd.bdate_range("2020-01-02", periods=n, tz="UTC")
    return days.as_unit("s").asi8.astype("float64")


@pytest.mark.parametrize(("scale", "unit"), [(1, "s"), (10**3, "ms"), (10**6, "us"), (10**9, "ns")])
def test_epoch_units_are_recognised_by_size(tmp_path, scale, unit):
    secs = _daily_seconds(300)
    frame = read_bar_file(_epoch_file(tmp_path, secs * scale))
    assert frame.index[0] == pd.Timestamp("2020-01-02", tz="UTC")
    assert frame.index[-1] == pd.bdate_range("2020-01-02", periods=300, tz="UTC")[-1]


def test_one_out_of_range_epoch_is_an_error_naming_its_row(tmp_path):
    # Before: one 1e30 switched the whole column to nanoseconds, re-dating 299 bars to 1970.
    secs = _daily_seconds(300)
    secs[17] = 1e30
    with pytest.raises(PermanentError, match=r"epoch s but row 17 \(1e\+30\) is not a time in s"):
        read_bar_file(_epoch_file(tmp_path, secs))


def test_mixed_epoch_units_name_the_odd_rows(tmp_path):
    ms = _daily_seconds(300) * 1000
    ms[[5, 250]] /= 1000  # two rows written in seconds
    with pytest.raises(PermanentError, match="epoch ms but rows 5, 250"):
        read_bar_file(_epoch_file(tmp_path, ms))


@pytest.mark.parametrize("value", [1e20, -86400.0])
def test_implausible_epochs_everywhere_are_an_error(tmp_path, value):
    # Before: 400 bars of 1e20 collapsed into one bar "with repairs".
    with pytest.raises(PermanentError, match="no timestamp is an epoch time between 1970 and 2100"):
        read_bar_file(_epoch_file(tmp_path, np.full(400, value)))


def test_file_source_symbols_stay_inside_the_data_directory(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "OUTSIDE").mkdir()
    _sample().reset_index().to_csv(tmp_path / "OUTSIDE" / "SECRET.csv", index=False)
    _sample().reset_index().to_csv(data / "SPY.csv", index=False)
    market = MarketData(FileSource(directory=data))
    assert len(market.bars("SPY").frame) == 30
    for symbol in ("../OUTSIDE/SECRET", "..", "./../OUTSIDE/SECRET", "/OUTSIDE/SECRET", "A/../../OUTSIDE/SECRET"):
        with pytest.raises(UnknownSymbolError, match="not a file name inside"):
            FileSource(directory=data).path_for(symbol)
    with pytest.raises(UnknownSymbolError, match="not a file name inside"):
        market.bars("../OUTSIDE/SECRET")
    # an explicitly listed file may live anywhere
    listed = FileSource(directory=data, files={"SECRET": tmp_path / "OUTSIDE" / "SECRET.csv"})
    assert len(MarketData(listed).bars("SECRET").frame) == 30


def test_long_symbols_are_not_echoed_whole():
    with pytest.raises(ValueError, match=r"\.\.\. \(100,000 characters\)") as info:
        MarketData(BuiltinSource()).bars("A" * 100_000)
    assert len(str(info.value)) < 200
    with pytest.raises(UnknownSymbolError) as info:
        BuiltinSource().canonical_symbol("B" * 5000)
    # the message lists the 28 embedded symbols (about 200 characters), not the 5,000 given
    assert len(str(info.value)) < 400 and "(5,000 characters)" in str(info.value)


# ----------------------------------------------------------------------------- intraday files + daily companion

FIVE = Timeframe.parse("5Min")
DAY = Timeframe.parse("1D")
WIDE = (pd.Timestamp("1990-01-01", tz="UTC"), pd.Timestamp("2100-01-01", tz="UTC"))


def _intraday_csv(path, days=("2022-03-01", "2022-03-02"), first=100.0):
    """Two sessions of 5-minute bars 09:30-10:25 New York, naive local stamps (bar starts)."""
    stamps = [pd.Timestamp(d) + pd.Timedelta(minutes=9 * 60 + 30 + 5 * i) for d in days for i in range(12)]
    close = first + np.arange(len(stamps)) * 0.1
    pd.DataFrame({"timestamp": [s.strftime("%Y-%m-%d %H:%M:%S") for s in stamps], "open": close - 0.05,
                  "high": close + 0.2, "low": close - 0.2, "close": close, "volume": 1000.0}).to_csv(path, index=False)


def _daily_frame(n=30, first=50.0):
    """Daily bars on business days from 2022-03-01 (naive dates), closes ``first, first + 1, ...``."""
    idx = pd.bdate_range("2022-03-01", periods=n, name="date")
    close = first + np.arange(n, dtype=float)
    return pd.DataFrame({"open": close - 0.5, "high": close + 1, "low": close - 1, "close": close,
                         "volume": 1e6}, index=idx)


def test_intraday_file_source_serves_daily_bars_from_a_csv_companion(tmp_path):
    _intraday_csv(tmp_path / "SPY.csv")
    daily = _daily_frame()
    daily.reset_index().assign(date=lambda f: f["date"].dt.strftime("%Y-%m-%d")).to_csv(
        tmp_path / "SPY.1D.csv", index=False)
    src = FileSource(directory=tmp_path, timezone="America/New_York", timeframe="5Min")
    assert src.supports(FIVE) and src.supports(DAY)
    assert not src.supports(Timeframe.parse("1H")) and not src.supports(Timeframe.parse("1W"))
    assert src.offers() == "5Min bars (data.file.timeframe), and 1D bars from SYMBOL.1D.csv or " \
                           "SYMBOL.1D.parquet files beside them"
    assert src.daily_path_for("spy") == tmp_path / "SPY.1D.csv"
    five = src.fetch("SPY", FIVE, *WIDE)
    assert len(five) == 24 and five.index[0] == pd.Timestamp("2022-03-01 14:30", tz="UTC")  # 09:30 EST
    one = src.fetch("SPY", DAY, *WIDE)
    # session dates at 00:00 UTC, the daily file's values (not the 5-minute ones)
    assert list(one.index) == list(pd.bdate_range("2022-03-01", periods=30, tz="UTC"))
    np.testing.assert_array_equal(one["close"].to_numpy(), 50.0 + np.arange(30))
    with pytest.raises(NoDataError, match="holds 5Min bars and 1D bars, not 1H"):
        src.fetch("SPY", Timeframe.parse("1H"), *WIDE)
    # MarketData: daily, and weekly built from the companion (Friday closes)
    market = MarketData(src)
    assert len(market.bars("SPY", "1D", now=NOW).frame) == 30
    weekly = market.bars("SPY", "1W", now=NOW).frame
    assert (weekly.index.day_of_week == 4).all()
    assert weekly["close"].iloc[0] == 53.0  # Tue 1 .. Fri 4 March 2022: the 4th daily close


def test_daily_companion_dates_are_the_dates_written_whatever_the_intraday_zone(tmp_path):
    # A naive 2022-03-01 read in Asia/Tokyo would be 2022-02-28 15:00 UTC: the companion's
    # dates stay the sessions written.
    _intraday_csv(tmp_path / "N225.csv")
    _daily_frame(5).reset_index().to_csv(tmp_path / "N225.1D.csv", index=False)
    one = FileSource(directory=tmp_path, timezone="Asia/Tokyo", timeframe="1H").fetch("N225", DAY, *WIDE)
    assert one.index[0] == pd.Timestamp("2022-03-01", tz="UTC") and len(one) == 5


def test_daily_companion_from_parquet_and_from_an_explicit_entry(tmp_path):
    _intraday_csv(tmp_path / "QQQ.csv")
    aware = _daily_frame(10, first=200.0)
    aware.index = aware.index.tz_localize("UTC")
    aware.to_parquet(tmp_path / "qqq.1D.parquet")  # lower-case stem, as path_for finds qqq.csv
    src = FileSource(directory=tmp_path, timezone="America/New_York", timeframe="5Min")
    assert src.daily_path_for("QQQ") == tmp_path / "qqq.1D.parquet"
    one = src.fetch("QQQ", DAY, *WIDE)
    assert one.index[0] == pd.Timestamp("2022-03-01", tz="UTC")
    np.testing.assert_array_equal(one["close"].to_numpy(), 200.0 + np.arange(10))
    # the files entry "SYMBOL.1D" wins over the directory, and may live anywhere
    (tmp_path / "elsewhere").mkdir()
    _daily_frame(4, first=7.0).to_parquet(tmp_path / "elsewhere" / "daily.parquet")
    listed = FileSource(directory=tmp_path, files={"qqq.1d": tmp_path / "elsewhere" / "daily.parquet"},
                        timezone="America/New_York", timeframe="5Min")
    np.testing.assert_array_equal(listed.fetch("QQQ", DAY, *WIDE)["close"].to_numpy(), [7.0, 8.0, 9.0, 10.0])
    # only explicit files, no directory
    only = FileSource(files={"QQQ": tmp_path / "QQQ.csv", "QQQ.1D": tmp_path / "qqq.1D.parquet"},
                      timeframe="5Min")
    assert len(only.fetch("QQQ", DAY, *WIDE)) == 10


def test_a_missing_daily_companion_names_the_file_looked_for(tmp_path):
    _intraday_csv(tmp_path / "SPX.csv")
    src = FileSource(directory=tmp_path, timezone="America/New_York", timeframe="5Min")
    assert len(src.fetch("SPX", FIVE, *WIDE)) == 24  # the intraday bars alone are fine
    expected = (r"no daily file for SPX: expected SPX\.1D\.csv or SPX\.1D\.parquet beside SPX\.csv in .+ "
                r"\(an intraday file source needs one for the daily timeframes; or list it under "
                r"data\.file\.files as \"SPX\.1D\"\)")
    with pytest.raises(NoDataError, match=expected):
        src.fetch("spx", DAY, *WIDE)
    with pytest.raises(NoDataError, match="no daily file for SPX"):
        MarketData(src).bars("SPX", "1W", now=NOW)
    no_dir = FileSource(files={"SPX": tmp_path / "SPX.csv"}, timeframe="5Min")
    with pytest.raises(NoDataError, match=r"expected SPX\.1D\.csv or SPX\.1D\.parquet; set data\.file\.directory"):
        no_dir.fetch("SPX", DAY, *WIDE)


def test_daily_companions_stay_inside_the_data_directory(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "OUTSIDE").mkdir()
    _intraday_csv(data / "SPY.csv")
    _intraday_csv(tmp_path / "OUTSIDE" / "SECRET.csv")
    _daily_frame().to_csv(tmp_path / "OUTSIDE" / "SECRET.1D.csv")
    src = FileSource(directory=data, timezone="America/New_York", timeframe="5Min")
    for symbol in ("../OUTSIDE/SECRET", "..", "./../OUTSIDE/SECRET", "/OUTSIDE/SECRET", "A/../../OUTSIDE/SECRET"):
        with pytest.raises(UnknownSymbolError, match="not a file name inside"):
            src.daily_path_for(symbol)
        with pytest.raises(UnknownSymbolError, match="not a file name inside"):
            src.fetch(symbol, DAY, *WIDE)
    # a companion is not a symbol of its own: its daily rows would be served as 5-minute bars
    _daily_frame().to_csv(data / "SPY.1D.csv")
    with pytest.raises(UnknownSymbolError, match="names a daily companion file, not a symbol"):
        src.fetch("SPY.1D", FIVE, *WIDE)


def test_a_daily_file_source_is_unchanged_by_companions(tmp_path):
    _daily_frame().to_csv(tmp_path / "SPY.csv")
    _daily_frame(first=900.0).to_csv(tmp_path / "SPY.1D.csv")  # ignored by a daily source
    src = FileSource(directory=tmp_path)
    assert src.supports(DAY) and not src.supports(FIVE)
    assert src.offers() == "1D bars only (data.file.timeframe)"
    one = src.fetch("SPY", DAY, *WIDE)
    np.testing.assert_array_equal(one["close"].to_numpy(), 50.0 + np.arange(30))
    with pytest.raises(NoDataError, match="the file source holds 1D bars, not 5Min$"):
        src.fetch("SPY", FIVE, *WIDE)
    with pytest.raises(NoDataError, match="its files are the daily ones"):
        src.daily_path_for("SPY")
    # a daily source still reads a symbol named like a companion as its own file
    assert src.path_for("SPY.1D") == tmp_path / "SPY.1D.csv"


# ----------------------------------------------------------------------------- polygon stub


def _polygon_results(days, offset=0):
    out = []
    for i, d in enumerate(days, start=offset):
        ny_midnight = pd.Timestamp(d, tz="America/New_York")
        px = 400.0 + i
        out.append({"o": px, "h": px + 2, "l": px - 2, "c": px + 1, "v": 1000.0 + i, "vw": px, "n": 10,
                    "t": int(ny_midnight.timestamp() * 1000)})
    return out


@pytest.fixture
def polygon_stub(httpserver):
    days = pd.bdate_range("2024-01-02", "2024-01-31")
    pages = [_polygon_results(days[:12]), _polygon_results(days[12:], offset=12)]
    state = {"calls": 0, "fail_first": True}
    base = httpserver.url_for("").rstrip("/")

    def handler(request):
        state["calls"] += 1
        assert request.headers["Authorization"] == "Bearer test-key"
        if state["fail_first"]:
            state["fail_first"] = False
            return Response(json.dumps({"status": "ERROR", "error": "rate limited"}), status=429,
                            content_type="application/json")
        page = 1 if "cursor" in parse_qs(request.query_string.decode()) else 0
        body = {"ticker": "SPY", "adjusted": True, "status": "OK", "request_id": "r",
                "resultsCount": len(pages[page]), "results": pages[page]}
        if page == 0:
            body["next_url"] = f"{base}/v2/aggs/ticker/SPY/range/1/day/page2?cursor=abc"
        return Response(json.dumps(body), content_type="application/json")

    import re

    httpserver.expect_request(re.compile(r"^/v2/aggs/ticker/SPY/range/1/day/.*")).respond_with_handler(handler)
    return base, state, days


def test_polygon_pagination_retry_and_cache(polygon_stub, tmp_path):
    base, state, days = polygon_stub
    md = MarketData(PolygonSource("test-key", base_url=base, retries=3), cache_dir=tmp_path / "cache",
                    retry_backoff=0.01)
    bars = md.bars("SPY", "1D", start="2024-01-01", end="2024-01-31", now=NOW)
    assert len(bars.frame) == len(days)
    assert list(bars.frame.index) == list(days.tz_localize("UTC"))
    assert bars.frame["close"].iloc[-1] == 400.0 + len(days) - 1 + 1
    assert state["calls"] == 3  # 429, page 1, page 2
    again = md.bars("SPY", "1D", start="2024-01-01", end="2024-01-31", now=NOW)
    assert state["calls"] == 3 and again.cached
    pd.testing.assert_frame_equal(again.frame, bars.frame, check_freq=False)
    weekly = md.bars("SPY", "1W", start="2024-01-01", end="2024-01-31", now=NOW)
    assert list(weekly.frame.index.strftime("%Y-%m-%d")) == ["2024-01-05", "2024-01-12", "2024-01-19", "2024-01-26"]


def test_polygon_needs_key():
    with pytest.raises(MissingCredentialsError, match="POLYGON_API_KEY"):
        MarketData(PolygonSource(None)).bars("SPY", start="2024-01-01", end="2024-01-31", now=NOW)


def test_polygon_unreachable_is_transient(httpserver):
    from integrations import TransientError

    httpserver.expect_request("/nothing").respond_with_data("x")
    dead = "http://127.0.0.1:9"  # discard port: connection refused
    md = MarketData(PolygonSource("k", base_url=dead, retries=0, timeout=1), retries=2, retry_backoff=0.01)
    with pytest.raises(TransientError, match="polygon"):
        md.bars("SPY", start="2024-01-01", end="2024-01-31", now=NOW)


# ----------------------------------------------------------------------------- alpaca stub


def _alpaca_bars(days, hour=5, offset=0):
    return [{"t": (pd.Timestamp(d) + pd.Timedelta(hours=hour)).strftime("%Y-%m-%dT%H:%M:%SZ"),
             "o": 10.0 + i, "h": 12.0 + i, "l": 9.0 + i, "c": 11.0 + i, "v": 500 + i, "n": 5, "vw": 10.5 + i}
            for i, d in enumerate(days, start=offset)]


@pytest.fixture
def alpaca_stub(httpserver):
    days = pd.bdate_range("2024-02-01", "2024-02-29")
    state = {"calls": 0, "fail_first": True}

    def handler(request):
        state["calls"] += 1
        assert request.headers["APCA-API-KEY-ID"] == "kid"
        if state["fail_first"]:
            state["fail_first"] = False
            return Response(json.dumps({"message": "internal error"}), status=500, content_type="application/json")
        q = parse_qs(request.query_string.decode())
        assert q["symbols"] == ["AAPL"] and q["timeframe"] == ["1Day"] and q["adjustment"] == ["all"]
        if q.get("page_token") == ["p2"]:
            return Response(json.dumps({"bars": {"AAPL": _alpaca_bars(days[10:], offset=10)}, "next_page_token": None}),
                            content_type="application/json")
        return Response(json.dumps({"bars": {"AAPL": _alpaca_bars(days[:10])}, "next_page_token": "p2"}),
                        content_type="application/json")

    httpserver.expect_request("/v2/stocks/bars").respond_with_handler(handler)

    def crypto(request):
        q = parse_qs(request.query_string.decode())
        assert q["symbols"] == ["BTC/USD"]
        return Response(json.dumps({"bars": {"BTC/USD": _alpaca_bars(days[:3], hour=0)}, "next_page_token": None}),
                        content_type="application/json")

    httpserver.expect_request("/v1beta3/crypto/us/bars").respond_with_handler(crypto)
    return httpserver.url_for("").rstrip("/"), state, days


def test_alpaca_stock_pagination_retry_and_cache(alpaca_stub, tmp_path):
    base, state, days = alpaca_stub
    md = MarketData(AlpacaSource("kid", "sec", base_url=base), cache_dir=tmp_path, retry_backoff=0.01)
    bars = md.bars("AAPL", "1D", start="2024-02-01", end="2024-02-29", now=NOW)
    assert list(bars.frame.index) == list(days.tz_localize("UTC"))
    assert bars.frame["close"].iloc[0] == 11.0 and bars.frame["volume"].iloc[-1] == 500 + len(days) - 1
    assert state["calls"] == 3  # 500, page 1, page 2
    md.bars("AAPL", "1D", start="2024-02-01", end="2024-02-29", now=NOW)
    assert state["calls"] == 3


def test_alpaca_crypto(alpaca_stub):
    base, _, days = alpaca_stub
    bars = MarketData(AlpacaSource("kid", "sec", base_url=base)).bars(
        "BTC/USD", "1D", start="2024-02-01", end="2024-02-29", now=NOW)
    assert list(bars.frame.index) == list(days[:3].tz_localize("UTC"))


def test_alpaca_needs_both_keys():
    with pytest.raises(MissingCredentialsError, match="ALPACA_SECRET_KEY"):
        MarketData(AlpacaSource("kid", None)).bars("AAPL", start="2024-01-01", end="2024-01-31", now=NOW)


def test_alpaca_auth_failure_is_permanent(httpserver):
    httpserver.expect_request("/v2/stocks/bars").respond_with_json({"message": "forbidden"}, status=403)
    md = MarketData(AlpacaSource("kid", "bad", base_url=httpserver.url_for("").rstrip("/")))
    with pytest.raises(PermanentError, match="rejected the credentials"):
        md.bars("AAPL", start="2024-01-01", end="2024-01-31", now=NOW)


@settings(max_examples=12, deadline=None)
@given(day=st.integers(min_value=200, max_value=7300), hour=st.integers(min_value=0, max_value=23))
def test_weekly_from_daily_equals_a_weekly_load(day, hour):
    # A run loads daily bars once and resamples the weekly ones from them: it must give exactly
    # what a separate weekly load gives, for any wall clock (mid-week, weekends, holidays).
    now = pd.Timestamp("1999-01-01", tz="UTC") + pd.Timedelta(days=day, hours=hour)
    md = MarketData(BuiltinSource())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        weekly = md.bars("SP500", "1W", None, now, now=now)
        derived = md.weekly_from(md.bars("SP500", "1D", None, now, now=now), now=now)
    pd.testing.assert_frame_equal(derived.frame, weekly.frame)
    assert (derived.symbol, derived.source, derived.timeframe) == (weekly.symbol, weekly.source, weekly.timeframe)
    assert derived.report == weekly.report


def test_weekly_from_refuses_other_bars():
    md = MarketData(BuiltinSource())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        weekly = md.bars("SP500", "1W")
    with pytest.raises(ValueError, match="resampled from daily bars, not 1W"):
        md.weekly_from(weekly)



def test_known_flags_of_the_bundled_data_are_noted_not_warned():
    # The SP500 jump of 2018-02-05 is a real move: commands do not warn about it on every run,
    # 'data show' says it once. Any other issue still warns.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bars = MarketData(BuiltinSource()).bars("SP500")
        weekly = MarketData(BuiltinSource()).bars("SP500", "1W")
    assert [w for w in caught if issubclass(w.category, DataQualityWarning)] == []
    assert bars.report.counts() == {"jump": 1}  # still reported
    assert bars.summary()["known_flags"] == weekly.known_notes() == [
        "jump on 2018-02-05 is real: the S&P 500 fell 4.1% in the volatility spike of February 2018"
    ]
    assert "known_flags" not in MarketData(BuiltinSource()).bars("NASDAQ").summary()


def test_an_unknown_flag_still_warns(tmp_path):
    idx = pd.bdate_range("2020-01-01", periods=300)
    close = 100 * np.exp(np.cumsum(np.random.default_rng(1).normal(0, 0.01, len(idx))))
    close[200:] *= 0.8  # a 20% one-day drop nobody has vouched for
    frame = pd.DataFrame({"date": idx.strftime("%Y-%m-%d"), "open": close, "high": close * 1.001,
                          "low": close * 0.999, "close": close, "volume": 1e6})
    frame.to_csv(tmp_path / "XYZ.csv", index=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bars = MarketData(FileSource(tmp_path)).bars("XYZ", now=NOW)
    assert bars.report.counts().get("jump") and bars.known_notes() == []
    assert any(issubclass(w.category, DataQualityWarning) and "jump" in str(w.message) for w in caught)


def test_the_daily_history_window_is_configurable(tmp_path):
    # 60 years of business days in a file: the default reads back 30 years from the last bar.
    idx = pd.bdate_range("1960-01-04", "2019-12-31", tz="UTC")
    close = 100 * np.exp(np.cumsum(np.random.default_rng(3).normal(0, 0.01, len(idx))))
    pd.DataFrame({"timestamp": idx, "open": close, "high": close * 1.01, "low": close * 0.99, "close": close,
                  "volume": 1e6}).to_csv(tmp_path / "LONG.csv", index=False)
    default = MarketData(FileSource(directory=tmp_path)).bars("LONG").frame
    start = (idx[-1] - pd.Timedelta(days=365 * 30)).normalize()
    assert default.index[0] == idx[idx >= start][0] and default.index[-1] == idx[-1]
    everything = MarketData(FileSource(directory=tmp_path), history_years=100).bars("LONG").frame
    assert len(everything) == len(idx) and everything.index[0] == idx[0]
    five = MarketData(FileSource(directory=tmp_path), history_years=5).bars("LONG").frame
    assert (idx[-1] - five.index[0]).days <= round(365 * 5) and len(five) < len(default) < len(everything)
    for bad in (0.5, 500, "30"):
        with pytest.raises(ValueError, match="history_years"):
            MarketData(FileSource(directory=tmp_path), history_years=bad)
