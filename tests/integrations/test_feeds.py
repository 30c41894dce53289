"""Live-run building blocks: replay and polling feeds, the live data cache, the silence deadline.

Everything runs offline: the replay plays the embedded data, the polling feed talks to the
real ``alpaca-py`` / Polygon clients through loopback stubs defined below.
"""

from __future__ import annotations

import json
import re
from types import SimpleNamespace
from urllib.parse import parse_qs

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug import Response

from agents.runtime.live import silence_deadline
from analytics.bars import Timeframe
from integrations import (
    AlpacaSource,
    BuiltinSource,
    LiveBarStore,
    MarketData,
    NoDataError,
    PollingFeed,
    PolygonSource,
    ReplayFeed,
    StoredBarSource,
    TransientError,
    UnknownSymbolError,
)

pytestmark = pytest.mark.filterwarnings("ignore::analytics.DataQualityWarning")

UTC = "UTC"
NY = "America/New_York"
D1 = Timeframe.parse("1D")
M1 = Timeframe.parse("1Min")
M5 = Timeframe.parse("5Min")
FAR_PAST = pd.Timestamp("1900-01-01", tz=UTC)
FAR_FUTURE = pd.Timestamp("2200-01-01", tz=UTC)


def _utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=UTC)


@pytest.fixture(scope="module")
def builtin():
    """The embedded daily bars, straight from the source (what the replay must reproduce)."""
    src = BuiltinSource()
    return {s: src.fetch(s, D1, FAR_PAST, FAR_FUTURE) for s in ("SP500", "NASDAQ")}


def _walk(feed, now=None):
    """Every batch of a feed, each asked for after the previous one's bar time."""
    now = now if now is not None else FAR_FUTURE
    out, after = [], None
    while True:
        batch = feed.next_batch(after, now)
        if batch is None:
            return out
        out.append(batch)
        after = batch.time
        assert len(out) < 10_000


# ============================================================================ ReplayFeed


def test_replay_default_window_is_the_last_63_bar_times(builtin):
    sp = builtin["SP500"]
    feed = ReplayFeed(BuiltinSource(), ["SP500", "NASDAQ"])
    assert feed.name == "replay" and feed.virtual is True
    assert feed.symbols == ("SP500", "NASDAQ")
    assert feed.cache_timeframes() == (D1,)
    assert len(feed.schedule) == 63
    assert list(feed.schedule) == list(sp.index[-63:])
    assert feed.start == _utc("2018-10-01") and feed.end == _utc("2018-12-31")
    short = ReplayFeed(BuiltinSource(), ["^gspc"], default_bars=5)  # aliases are canonicalised
    assert short.symbols == ("SP500",)
    assert list(short.schedule) == list(sp.index[-5:])


def test_replay_start_end_window_is_inclusive():
    feed = ReplayFeed(BuiltinSource(), ["SP500"], start="2018-11-17", end="2018-11-23")
    # 17th/18th are a weekend, 22nd is Thanksgiving: no bars
    assert list(feed.schedule) == [_utc(d) for d in ("2018-11-19", "2018-11-20", "2018-11-21", "2018-11-23")]
    assert feed.start == _utc("2018-11-19") and feed.end == _utc("2018-11-23")
    aware = ReplayFeed(BuiltinSource(), ["SP500"], start=_utc("2018-11-20"), end=pd.Timestamp("2018-11-21", tz=UTC))
    assert list(aware.schedule) == [_utc("2018-11-20"), _utc("2018-11-21")]


def test_replay_walks_the_schedule_bar_by_bar(builtin):
    feed = ReplayFeed(BuiltinSource(), ["SP500", "NASDAQ"], start="2018-11-12", end="2018-12-07")
    first = feed.next_batch(None, _utc("2030-01-01"))
    assert first.time == _utc("2018-11-12")
    batches = _walk(feed)
    times = [b.time for b in batches]
    assert times == list(feed.schedule)  # in order, no gap, no repeat
    assert len(times) == len(set(times)) == 18  # 2018-11-22 and 2018-12-05: markets closed
    assert times == list(builtin["SP500"].loc["2018-11-12":"2018-12-07"].index)
    assert times == sorted(times)
    for b in batches:
        assert b.closes_at == b.time + pd.Timedelta(days=1)
        assert b.symbols == ("SP500", "NASDAQ")
        assert b.skipped == ()
        assert set(b.updates) == {("SP500", "1D"), ("NASDAQ", "1D")}
        for sym in ("SP500", "NASDAQ"):
            got = b.updates[(sym, "1D")]
            assert list(got.index) == [b.time]  # exactly the bar of this time, the first batch too
            pd.testing.assert_frame_equal(got, builtin[sym].loc[[b.time]], check_freq=False)
    assert feed.exhausted(feed.end) is True
    assert feed.exhausted(_utc("2018-12-06")) is False
    assert feed.exhausted(None) is False
    assert feed.next_batch(feed.end, _utc("2030-01-01")) is None
    # after a time between bars: the next bar of the schedule
    assert feed.next_batch(_utc("2018-11-17"), _utc("2030-01-01")).time == _utc("2018-11-19")
    assert feed.next_batch(_utc("2018-11-21"), _utc("2030-01-01")).time == _utc("2018-11-23")


def test_replay_history_is_strictly_before(builtin):
    sp = builtin["SP500"]
    feed = ReplayFeed(BuiltinSource(), ["SP500"], start="2018-11-12", end="2018-11-30")
    hist = feed.history("SP500", D1, feed.start)
    assert hist.index[-1] == _utc("2018-11-09")
    pd.testing.assert_frame_equal(hist, sp.loc[sp.index < _utc("2018-11-12")], check_freq=False)
    mid = feed.history("SP500", D1, _utc("2018-11-21"))
    assert mid.index[-1] == _utc("2018-11-20") and (mid.index < _utc("2018-11-21")).all()
    assert feed.history("SP500", D1, _utc("1999-01-04")).empty


@pytest.mark.parametrize(("start", "end"), [(None, None), ("2018-11-12", "2018-12-07"), ("2018-12-31", None)])
def test_replay_history_plus_batches_is_the_source_frame(builtin, start, end):
    feed = ReplayFeed(BuiltinSource(), ["SP500", "NASDAQ"], start=start, end=end)
    batches = _walk(feed)
    assert len(batches) == len(feed.schedule)
    for sym in ("SP500", "NASDAQ"):
        parts = [feed.history(sym, D1, feed.start)] + [b.updates[(sym, "1D")] for b in batches]
        full = builtin[sym]
        pd.testing.assert_frame_equal(pd.concat(parts), full.loc[full.index <= feed.end], check_freq=False)


def test_replay_refuses_empty_windows_and_unsupported_timeframes():
    src = BuiltinSource()
    with pytest.raises(NoDataError, match="nothing to replay"):
        ReplayFeed(src, ["SP500"], start="2019-01-02")  # after the data end (2018-12-31)
    with pytest.raises(NoDataError, match="nothing to replay"):
        ReplayFeed(src, ["SP500"], start="2018-12-01", end="2018-11-01")
    with pytest.raises(NoDataError, match="no 1D bars to replay"):
        ReplayFeed(src, ["SP500"], end="1990-01-01")  # before the data start
    for tf in ("5Min", "1Min", "1H", "1W"):
        with pytest.raises(ValueError, match="cannot feed"):
            ReplayFeed(src, ["SP500"], tf)
    with pytest.raises(ValueError, match="at least one symbol"):
        ReplayFeed(src, [])
    with pytest.raises(UnknownSymbolError):
        ReplayFeed(src, ["TSLA"])


# ============================================================================ live data cache


def _bars(index, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = len(index)
    close = 100 + np.cumsum(rng.normal(0, 1, n))
    opn = close + rng.normal(0, 0.5, n)
    high = np.maximum(opn, close) + rng.uniform(0.1, 1.0, n)
    low = np.minimum(opn, close) - rng.uniform(0.1, 1.0, n)
    vol = rng.integers(100, 1000, n).astype(float)
    idx = pd.DatetimeIndex(index, name="timestamp").as_unit("ns")  # the unit every source returns
    return pd.DataFrame({"open": opn, "high": high, "low": low, "close": close, "volume": vol}, index=idx)


def test_live_bar_store_append_revise_and_read(tmp_path):
    store = LiveBarStore(tmp_path / "live_bars.sqlite")
    days = pd.bdate_range("2024-02-05", periods=5, tz=UTC)
    frame = _bars(days)
    assert store.last_time("builtin", "SP500", "1D") is None
    assert store.frame("builtin", "SP500", "1D").empty
    assert store.append("builtin", "SP500", "1D", frame.iloc[:3]) == 3
    assert store.append("builtin", "SP500", "1D", frame.iloc[:3]) == 0  # same rows: nothing new
    revised = frame.iloc[1:].copy()
    revised["close"] += 1.0
    assert store.append("builtin", "SP500", "1D", revised) == 2  # 2 revisions, 2 new bars
    want = pd.concat([frame.iloc[:1], revised])
    pd.testing.assert_frame_equal(store.frame("builtin", "SP500", "1D"), want, check_freq=False)
    # inclusive range
    got = store.frame("builtin", "SP500", "1D", days[1], days[3])
    assert list(got.index) == list(days[1:4])
    assert store.frame("builtin", "SP500", "1D", days[4] + pd.Timedelta(seconds=1)).empty
    assert store.last_time("builtin", "SP500", "1D") == days[4]
    assert store.append("builtin", "SP500", "1Min", _bars(pd.date_range("2024-02-09 14:30", periods=3,
                                                                         freq="1min", tz=UTC))) == 3
    assert store.timeframes("builtin", "SP500") == ["1D", "1Min"]
    assert store.timeframes("builtin", "NASDAQ") == [] and store.timeframes("alpaca", "SP500") == []
    assert store.append("builtin", "SP500", "1D", frame.iloc[:0]) == 0
    # a non-UTC index is stored as the same instants
    ny = _bars(pd.DatetimeIndex([pd.Timestamp("2024-02-12 09:30", tz=NY)]), seed=3)
    store.append("alpaca", "AAPL", "1Min", ny)
    assert store.last_time("alpaca", "AAPL", "1Min") == _utc("2024-02-12 14:30")
    store.close()
    again = LiveBarStore(tmp_path / "live_bars.sqlite")  # persisted
    pd.testing.assert_frame_equal(again.frame("builtin", "SP500", "1D"), want, check_freq=False)
    again.close()


def test_live_bar_store_reads_a_series_once_until_it_changes(tmp_path, monkeypatch):
    path = tmp_path / "live_bars.sqlite"
    store, other = LiveBarStore(path), LiveBarStore(path)  # the session and another process
    days = pd.bdate_range("2024-02-05", periods=6, tz=UTC)
    frame = _bars(days)
    store.append("builtin", "SP500", "1D", frame.iloc[:4])
    reads = []
    real_read = store._read
    monkeypatch.setattr(store, "_read", lambda *key: reads.append(key) or real_read(*key))
    first = store.frame("builtin", "SP500", "1D")
    first["close"] = -1.0  # a caller changing its frame changes nothing kept
    pd.testing.assert_frame_equal(store.frame("builtin", "SP500", "1D"), frame.iloc[:4], check_freq=False)
    assert list(store.frame("builtin", "SP500", "1D", days[1], days[2]).index) == list(days[1:3])
    assert len(reads) == 1  # three reads, one query
    store.append("builtin", "SP500", "1D", frame.iloc[4:5])  # our own write of a new bar: kept series extended
    pd.testing.assert_frame_equal(store.frame("builtin", "SP500", "1D"), frame.iloc[:5], check_freq=False)
    store.append("builtin", "NASDAQ", "1D", frame.iloc[:2])  # another key's write leaves this one kept
    assert store.frame("builtin", "SP500", "1D").index[-1] == days[4] and len(reads) == 1
    own = frame.iloc[1:2].copy()
    own["close"] += 2.0
    store.append("builtin", "SP500", "1D", own)  # our own revision: read again
    assert store.frame("builtin", "SP500", "1D")["close"].iloc[1] == own["close"].iloc[0] and len(reads) == 2
    revised = frame.iloc[2:3].copy()
    revised["close"] += 5.0
    other.append("builtin", "SP500", "1D", revised)  # a revision committed by another connection
    got = store.frame("builtin", "SP500", "1D")
    assert got["close"].iloc[2] == revised["close"].iloc[0] and len(reads) == 3
    other.append("builtin", "SP500", "1D", frame.iloc[5:])
    assert store.frame("builtin", "SP500", "1D").index[-1] == days[5]
    store.close(), other.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(1, 4), st.booleans(), st.booleans()), min_size=1, max_size=12))
def test_live_bar_store_kept_series_equals_a_fresh_read(tmp_path, writes):
    """Whatever mix of new bars, revisions, repeated and unsorted stamps is written, the
    series kept in memory equals what another connection reads from the file."""
    path = tmp_path / f"kept-{abs(hash(tuple(writes)))}.sqlite"
    days = pd.bdate_range("2024-01-01", periods=40, tz=UTC)
    store = LiveBarStore(path)
    for k, (first, n, shuffle, repeat) in enumerate(writes):
        chunk = _bars(days[first:first + n], seed=k)
        if repeat:
            again = chunk.iloc[-1:].copy()
            again["close"] += 1.0
            chunk = pd.concat([chunk, again])
        if shuffle:
            chunk = chunk.iloc[::-1]
        store.append("builtin", "SP500", "1D", chunk)
        kept = store.frame("builtin", "SP500", "1D")
        fresh = LiveBarStore(path)
        pd.testing.assert_frame_equal(kept, fresh.frame("builtin", "SP500", "1D"), check_freq=False)
        fresh.close()
    store.close()
    path.unlink()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_live_bar_store_refuses_non_finite_bars(tmp_path, bad):
    store = LiveBarStore(tmp_path / "live_bars.sqlite")
    frame = _bars(pd.bdate_range("2024-02-05", periods=3, tz=UTC))
    frame.iloc[2, 1] = bad
    with pytest.raises(ValueError, match="finite"):
        store.append("builtin", "SP500", "1D", frame)
    assert store.frame("builtin", "SP500", "1D").empty  # nothing half-written
    with pytest.raises(ValueError, match="lacks columns"):
        store.append("builtin", "SP500", "1D", frame.drop(columns="volume"))
    store.close()


def test_stored_bar_source_daily(tmp_path, builtin):
    store = LiveBarStore(tmp_path / "live_bars.sqlite")
    src = StoredBarSource(store, BuiltinSource())
    assert src.name == "live:builtin" and src.cacheable is False
    assert src.canonical_symbol("^GSPC") == "SP500"
    assert src.supports(D1) and not src.supports(M5)
    with pytest.raises(NoDataError, match="no bars for SP500"):
        src.fetch("SP500", D1, FAR_PAST, FAR_FUTURE)
    part = builtin["SP500"].loc["2018-11-01":"2018-11-30"]
    store.append("builtin", "SP500", "1D", part)
    got = src.fetch("spx", D1, _utc("2018-11-05"), _utc("2018-11-09"))
    pd.testing.assert_frame_equal(got, part.loc["2018-11-05":"2018-11-09"], check_freq=False)
    with pytest.raises(NoDataError):
        src.fetch("NASDAQ", D1, FAR_PAST, FAR_FUTURE)
    # through MarketData, as a graph run reads it (as of a date)
    bars = MarketData(src).bars("SP500", "1D", end="2018-11-20", now="2018-11-21")
    assert bars.frame.index[-1] == _utc("2018-11-20") and len(bars.frame) == 14
    store.close()


def test_stored_bar_source_builds_5min_from_stored_minutes(tmp_path):
    store = LiveBarStore(tmp_path / "live_bars.sqlite")
    src = StoredBarSource(store, AlpacaSource("kid", "sec"))  # never asked: no network
    assert src.name == "live:alpaca"
    minutes = pd.date_range("2024-03-05 14:30", periods=12, freq="1min", tz=UTC)  # 14:30 .. 14:41
    frame = pd.DataFrame({
        "open": [10.0, 11.0, 12.0, 11.0, 13.0, 14.0, 12.0, 12.0, 14.0, 13.0, 15.0, 16.0],
        "high": [11.0, 12.0, 13.5, 12.0, 13.5, 14.5, 13.0, 12.5, 15.0, 14.0, 16.0, 16.5],
        "low": [9.5, 10.5, 11.5, 10.0, 12.5, 13.0, 11.0, 11.5, 13.5, 12.5, 14.5, 15.5],
        "close": [11.0, 12.0, 11.0, 13.0, 13.2, 12.0, 12.0, 14.0, 13.0, 13.8, 16.0, 16.2],
        "volume": np.arange(1.0, 13.0) * 100,
    }, index=pd.DatetimeIndex(minutes, name="timestamp").as_unit("ns"))
    store.append("alpaca", "AAPL", "1Min", frame)
    got = src.fetch("AAPL", M5, _utc("2024-03-05 14:00"), _utc("2024-03-05 15:00"))
    # two complete buckets, stamped with their start like any intraday bar; 14:40-14:41 is not complete
    assert list(got.index) == [_utc("2024-03-05 14:30"), _utc("2024-03-05 14:35")]
    want = pd.DataFrame({"open": [10.0, 14.0], "high": [13.5, 15.0], "low": [9.5, 11.0], "close": [13.2, 13.8],
                         "volume": [1500.0, 4000.0]}, index=got.index)
    pd.testing.assert_frame_equal(got, want, check_freq=False)
    # a start inside a bucket does not yield a partial bucket
    late = src.fetch("AAPL", M5, _utc("2024-03-05 14:32"), _utc("2024-03-05 15:00"))
    assert list(late.index) == [_utc("2024-03-05 14:35")]
    # the bucket completes once its last minute is stored
    store.append("alpaca", "AAPL", "1Min", _bars(pd.date_range("2024-03-05 14:42", periods=3, freq="1min", tz=UTC)))
    assert src.fetch("AAPL", M5, _utc("2024-03-05 14:00"), _utc("2024-03-05 15:00")).index[-1] == \
        _utc("2024-03-05 14:40")
    # stored minutes are served as they are; no daily or hourly bars can be built from them
    pd.testing.assert_frame_equal(src.fetch("AAPL", M1, minutes[0], minutes[-1]), frame, check_freq=False)
    assert src.fetch("AAPL", D1, FAR_PAST, FAR_FUTURE).empty
    assert src.fetch("AAPL", Timeframe.parse("1H"), FAR_PAST, FAR_FUTURE).empty
    # a run at 14:35 sees the 14:30-14:35 bucket, which closed at 14:35
    seen = MarketData(src).bars("AAPL", "5Min", end="2024-03-05 14:35", now="2024-03-05 14:35").frame
    assert seen.index[-1] == _utc("2024-03-05 14:30")
    assert seen["close"].iloc[-1] == 13.2
    store.close()


# ============================================================================ PollingFeed on loopback stubs

SESSION1 = pd.date_range("2024-03-05 14:30", "2024-03-05 15:29", freq="1min", tz=UTC)  # Tue 09:30-10:29 NY
SESSION2 = pd.date_range("2024-03-06 14:30", "2024-03-06 14:39", freq="1min", tz=UTC)  # Wed 09:30-09:39 NY
DAYS = pd.bdate_range("2024-02-01", "2024-03-06", tz=UTC)  # session dates; 03-06 still forming


@pytest.fixture(scope="module")
def market():
    return {"1Min": _bars(SESSION1.append(SESSION2), seed=1), "1D": _bars(DAYS, seed=2)}


class _Stub:
    """Serves ``market`` for one symbol; answers the queued HTTP statuses first."""

    def __init__(self, market, symbol="AAPL"):
        self.market = market
        self.symbol = symbol
        self.fail: list[int] = []
        self.calls: list[tuple[str, pd.Timestamp, pd.Timestamp]] = []
        self.failed = 0

    def _failure(self):
        if not self.fail:
            return None
        self.failed += 1
        status = self.fail.pop(0)
        return Response(json.dumps({"message": f"stub error {status}", "status": "ERROR"}), status=status,
                        content_type="application/json")

    def _select(self, tf: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        frame = self.market[tf]
        if tf == "1D":  # the services stamp daily bars at New York midnight
            instants = pd.DatetimeIndex([pd.Timestamp(d.date(), tz=NY).tz_convert(UTC) for d in frame.index])
        else:
            instants = frame.index
        sel = (instants >= start) & (instants <= end)
        self.calls.append((tf, start, end))
        return frame.loc[sel].set_axis(instants[sel])


class AlpacaStub(_Stub):
    """``GET /v2/stocks/bars`` of Alpaca's market-data API (one page)."""

    def __call__(self, request):
        fail = self._failure()
        if fail is not None:
            return fail
        q = parse_qs(request.query_string.decode())
        assert request.headers["APCA-API-KEY-ID"] == "kid"
        assert q["symbols"] == [self.symbol] and q["adjustment"] == ["all"]
        tf = {"1Min": "1Min", "1Day": "1D"}[q["timeframe"][0]]
        start, end = (pd.Timestamp(q[k][0].replace(" ", "+")) for k in ("start", "end"))
        part = self._select(tf, start, end)
        bars = [{"t": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "o": r.open, "h": r.high, "l": r.low, "c": r.close,
                 "v": r.volume, "n": 7, "vw": r.close} for t, r in zip(part.index, part.itertuples(), strict=True)]
        body = {"bars": {self.symbol: bars} if bars else {}, "next_page_token": None}
        return Response(json.dumps(body), content_type="application/json")


class PolygonStub(_Stub):
    """``GET /v2/aggs/ticker/{T}/range/{n}/{span}/{from}/{to}`` of Polygon (one page)."""

    PATH = re.compile(r"^/v2/aggs/ticker/(?P<t>[^/]+)/range/(?P<n>\d+)/(?P<span>\w+)/(?P<a>\d+)/(?P<b>\d+)$")

    def __call__(self, request):
        fail = self._failure()
        if fail is not None:
            return fail
        m = self.PATH.match(request.path)
        assert m and m["t"] == self.symbol and m["n"] == "1"
        tf = {"minute": "1Min", "day": "1D"}[m["span"]]
        start, end = (pd.Timestamp(int(m[k]), unit="ms", tz=UTC) for k in ("a", "b"))
        part = self._select(tf, start, end)
        results = [{"o": r.open, "h": r.high, "l": r.low, "c": r.close, "v": r.volume, "vw": r.close, "n": 7,
                    "t": int(t.value // 1_000_000)} for t, r in zip(part.index, part.itertuples(), strict=True)]
        body = {"ticker": self.symbol, "adjusted": True, "status": "OK", "request_id": "r",
                "resultsCount": len(results), "results": results}
        return Response(json.dumps(body), content_type="application/json")


@pytest.fixture
def alpaca(httpserver, market):
    stub = AlpacaStub(market)
    httpserver.expect_request("/v2/stocks/bars").respond_with_handler(stub)
    return SimpleNamespace(stub=stub, source=AlpacaSource("kid", "sec", base_url=httpserver.url_for("").rstrip("/")))


@pytest.fixture
def polygon(httpserver, market):
    stub = PolygonStub(market)
    httpserver.expect_request(PolygonStub.PATH).respond_with_handler(stub)
    return SimpleNamespace(stub=stub, source=PolygonSource("pk", base_url=httpserver.url_for("").rstrip("/"),
                                                           retries=0, timeout=5))


def _no_sleep(seconds):  # a poll must not wait when nothing fails
    raise AssertionError(f"slept {seconds} s without a failure")


def test_polling_delivers_only_closed_minute_bars(alpaca, market):
    feed = PollingFeed(alpaca.source, ["aapl"], "1Min", sleep=_no_sleep)
    assert feed.name == "alpaca" and feed.virtual is False and feed.symbols == ("AAPL",)
    assert feed.cache_timeframes() == (M1, D1)
    minutes = market["1Min"]
    for now, newest in (("15:00:30", "14:59"), ("15:00:00", "14:59"), ("14:59:59.999", "14:58")):
        b = feed.next_batch(None, _utc(f"2024-03-05 {now}"))
        t = _utc(f"2024-03-05 {newest}")
        assert b.time == t and b.closes_at == t + pd.Timedelta(minutes=1)
        assert b.symbols == ("AAPL",) and b.skipped == ()
        assert set(b.updates) == {("AAPL", "1Min")}  # no daily bar closed within this minute
        pd.testing.assert_frame_equal(b.updates[("AAPL", "1Min")], minutes.loc[[t]], check_freq=False)
    # the stub served the forming 15:00 bar: the feed dropped it
    assert any(tf == "1Min" and end >= _utc("2024-03-05 15:00") for tf, _, end in alpaca.stub.calls)
    assert feed.next_batch(None, _utc("2024-03-05 14:30:59")) is None  # nothing closed yet today


def test_polling_after_a_gap_delivers_the_newest_bar_and_lists_the_skipped(alpaca, market):
    feed = PollingFeed(alpaca.source, ["AAPL"], "1Min", sleep=_no_sleep)
    now = _utc("2024-03-05 15:00:30")
    b = feed.next_batch(_utc("2024-03-05 14:50"), now)
    assert b.time == _utc("2024-03-05 14:59")
    assert b.skipped == tuple(pd.date_range("2024-03-05 14:51", "2024-03-05 14:58", freq="1min", tz=UTC))
    pd.testing.assert_frame_equal(b.updates[("AAPL", "1Min")], market["1Min"].loc["2024-03-05 14:51":"2024-03-05 14:59"],
                                  check_freq=False)
    assert feed.next_batch(b.time, now) is None  # the next bar has not closed
    nxt = feed.next_batch(b.time, _utc("2024-03-05 15:01"))
    assert nxt.time == _utc("2024-03-05 15:00") and nxt.skipped == ()
    # the next session's first bar brings the daily bar that closed overnight, not the forming one
    b = feed.next_batch(_utc("2024-03-05 15:29"), _utc("2024-03-06 14:31"))
    assert b.time == _utc("2024-03-06 14:30") and b.skipped == ()
    pd.testing.assert_frame_equal(b.updates[("AAPL", "1D")], market["1D"].loc[[_utc("2024-03-05")]], check_freq=False)
    pd.testing.assert_frame_equal(b.updates[("AAPL", "1Min")], market["1Min"].loc[[_utc("2024-03-06 14:30")]],
                                  check_freq=False)


def test_polling_daily_bars_and_history(alpaca, market):
    days = market["1D"]
    feed = PollingFeed(alpaca.source, ["AAPL"], "1D", sleep=_no_sleep)
    assert feed.cache_timeframes() == (D1,)
    now = _utc("2024-02-15 23:00")  # Thursday evening: Thursday's bar closes at midnight UTC
    b = feed.next_batch(None, now)
    assert b.time == _utc("2024-02-14") and b.closes_at == _utc("2024-02-15")
    pd.testing.assert_frame_equal(b.updates[("AAPL", "1D")], days.loc[[_utc("2024-02-14")]], check_freq=False)
    b = feed.next_batch(_utc("2024-02-09"), now)  # Friday: Monday and Tuesday were missed
    assert b.time == _utc("2024-02-14") and b.skipped == (_utc("2024-02-12"), _utc("2024-02-13"))
    pd.testing.assert_frame_equal(b.updates[("AAPL", "1D")], days.loc["2024-02-12":"2024-02-14"], check_freq=False)
    assert feed.next_batch(_utc("2024-02-14"), now) is None
    assert feed.next_batch(_utc("2024-02-14"), _utc("2024-02-16")).time == _utc("2024-02-15")
    hist = feed.history("AAPL", D1, _utc("2024-02-15 12:00"))
    pd.testing.assert_frame_equal(hist, days.loc[:"2024-02-14"], check_freq=False)
    mins = feed.history("AAPL", M1, _utc("2024-03-05 15:00:30"))
    pd.testing.assert_frame_equal(mins, market["1Min"].loc[:"2024-03-05 14:59"], check_freq=False)


def test_polling_polygon_daily(polygon, market):
    feed = PollingFeed(polygon.source, ["AAPL"], "1D", sleep=_no_sleep)
    assert feed.name == "polygon"
    b = feed.next_batch(_utc("2024-02-09"), _utc("2024-02-15 23:00"))
    assert b.time == _utc("2024-02-14") and b.skipped == (_utc("2024-02-12"), _utc("2024-02-13"))
    got = b.updates[("AAPL", "1D")]
    got = got.set_axis(got.index.as_unit("ns"))  # PolygonSource's daily index is in microseconds
    pd.testing.assert_frame_equal(got, market["1D"].loc["2024-02-12":"2024-02-14"], check_freq=False)


@pytest.mark.parametrize("status", [500, 503])
def test_polling_retries_alpaca_server_errors(alpaca, market, status):
    slept = []
    feed = PollingFeed(alpaca.source, ["AAPL"], "1D", attempts=4, backoff=0.5, sleep=slept.append)
    alpaca.stub.fail = [status, status]
    b = feed.next_batch(None, _utc("2024-02-15 23:00"))
    assert b.time == _utc("2024-02-14")
    assert slept == [0.5, 1.0]
    assert alpaca.stub.failed == 2 and len(alpaca.stub.calls) == 1


def test_polling_retries_alpaca_rate_limits(alpaca, market, monkeypatch):
    import alpaca.common.rest as rest

    client_waits = []  # alpaca-py waits and retries a 429 itself (3 s, 3 times) before failing
    monkeypatch.setattr(rest, "time", SimpleNamespace(sleep=client_waits.append))
    slept = []
    feed = PollingFeed(alpaca.source, ["AAPL"], "1D", attempts=3, backoff=0.5, sleep=slept.append)
    alpaca.stub.fail = [429] * 5  # the client's 4 tries, then one of the feed's retry
    b = feed.next_batch(None, _utc("2024-02-15 23:00"))
    assert b.time == _utc("2024-02-14")
    assert slept == [0.5]
    assert client_waits == [3, 3, 3, 3]
    assert alpaca.stub.failed == 5


def test_polling_retries_polygon_rate_limits(polygon, market):
    slept = []
    feed = PollingFeed(polygon.source, ["AAPL"], "1D", attempts=4, backoff=0.25, sleep=slept.append)
    polygon.stub.fail = [429, 429, 500]
    b = feed.next_batch(None, _utc("2024-02-15 23:00"))
    assert b.time == _utc("2024-02-14")
    assert slept == [0.25, 0.5, 1.0]
    assert polygon.stub.failed == 3


@pytest.mark.parametrize("which", ["alpaca", "polygon"])
def test_polling_gives_up_after_the_attempts(request, which):
    world = request.getfixturevalue(which)
    slept = []
    feed = PollingFeed(world.source, ["AAPL"], "1D", attempts=3, backoff=0.5, sleep=slept.append)
    world.stub.fail = [500] * 10
    with pytest.raises(TransientError, match=which):
        feed.next_batch(None, _utc("2024-02-15 23:00"))
    assert slept == [0.5, 1.0]
    assert world.stub.failed == 3 and world.stub.calls == []


def test_polling_feed_refuses_bad_options(alpaca):
    with pytest.raises(ValueError, match="lookback_bars"):
        PollingFeed(alpaca.source, ["AAPL"], "1Min", lookback_bars=1)
    with pytest.raises(ValueError, match="cannot feed 1W"):
        PollingFeed(alpaca.source, ["AAPL"], "1W")


# ============================================================================ silence deadline


def test_silence_deadline_daily_counts_two_sessions():
    # Friday's bar: overdue when Tuesday's bar (closing Wednesday 00:00 UTC) has not come
    assert silence_deadline(_utc("2018-11-16"), "1D") == _utc("2018-11-21")
    # Monday's bar: when Wednesday's bar has not closed
    assert silence_deadline(_utc("2018-11-19"), D1) == _utc("2018-11-22")
    # Thursday's bar: Monday's bar closes Tuesday 00:00 UTC
    assert silence_deadline(_utc("2018-11-15"), "1D") == _utc("2018-11-20")


def test_silence_deadline_intraday_counts_session_minutes_only():
    # 5Min bar 15:50-15:55 New York on Friday 2024-03-08 (EST, UTC-5): 10 session minutes later
    # is Monday 2024-03-11 09:35 New York, which is EDT (UTC-4) after the switch on the 10th
    last = pd.Timestamp("2024-03-08 15:50", tz=NY).tz_convert(UTC)
    assert last == _utc("2024-03-08 20:50")
    got = silence_deadline(last, "5Min")
    assert got == pd.Timestamp("2024-03-11 09:35", tz=NY)
    assert got == _utc("2024-03-11 13:35")
    # the same bar in November (no switch): 09:35 EST = 14:35 UTC
    assert silence_deadline(_utc("2018-11-16 20:50"), M5) == _utc("2018-11-19 14:35")
    # a bar closing at the bell: the whole 10 minutes fall on Monday
    assert silence_deadline(pd.Timestamp("2024-03-08 15:55", tz=NY), "5Min") == pd.Timestamp("2024-03-11 09:40", tz=NY)
    # 1Min bar mid-session: its close plus two minutes
    mid = pd.Timestamp("2024-03-06 11:00", tz=NY)
    assert silence_deadline(mid, "1Min") == pd.Timestamp("2024-03-06 11:03", tz=NY) == _utc("2024-03-06 16:03")
    # 1Min bar closing at 15:59: one minute today, one tomorrow morning
    assert silence_deadline(pd.Timestamp("2024-03-06 15:58", tz=NY), "1Min") == pd.Timestamp("2024-03-07 09:31", tz=NY)
