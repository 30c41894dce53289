"""Bar feeds for live runs: replay of stored bars, or polling Alpaca / Polygon for closed bars.

A feed hands the live loop one :class:`BarBatch` at a time: the bars of every symbol that
share the next bar time of the session's timeframe, plus whatever else the data cache needs
(daily bars next to an intraday feed). A bar stamped ``t`` is closed at ``t + step``; feeds
never deliver a bar before that.

* :class:`ReplayFeed` plays bars a source already has (the embedded data by default) in
  order, on a virtual clock: the loop paces it at the chosen speed, so the whole live path
  runs offline and reproducibly.
* :class:`PollingFeed` asks a network source (the real ``alpaca-py`` or Polygon client,
  through :class:`~integrations.AlpacaSource` / :class:`~integrations.PolygonSource`) for
  recent bars. Transient errors are retried with backoff; when bars were missed (the
  process was down), it delivers only the newest closed bar and lists the others as
  skipped: a live system does not trade on bars whose moment has passed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from analytics.bars import Timeframe, empty_bars
from integrations._errors import NoDataError
from integrations._market_data import _utc
from integrations._retry import call_with_retry
from integrations._sources import BarSource

__all__ = ["BarBatch", "Feed", "ReplayFeed", "PollingFeed", "FEED_NAMES"]

FEED_NAMES: tuple[str, ...] = ("replay", "alpaca", "polygon")
_DAY = Timeframe.parse("1D")
_FAR_PAST = pd.Timestamp("1900-01-01", tz="UTC")


@dataclass(frozen=True)
class BarBatch:
    """The bars of one bar time.

    Attributes
    ----------
    time : Timestamp
        Stamp of the bars at the feed's timeframe (UTC).
    closes_at : Timestamp
        ``time + step``: when these bars closed.
    symbols : tuple of str
        Symbols with a bar at ``time``.
    updates : mapping
        ``(symbol, timeframe) -> frame`` of bars for the data cache.
    skipped : tuple of Timestamp
        Earlier bar times that closed while nobody was listening and are not handled.
    """

    time: pd.Timestamp
    closes_at: pd.Timestamp
    symbols: tuple[str, ...]
    updates: Mapping[tuple[str, str], pd.DataFrame] = field(default_factory=dict)
    skipped: tuple[pd.Timestamp, ...] = ()


class Feed:
    """Common shape of the feeds.

    Attributes
    ----------
    name : str
        ``replay``, ``alpaca`` or ``polygon``.
    upstream : BarSource
        Where bars come from (and how symbols are named).
    symbols : tuple of str
    timeframe : Timeframe
    virtual : bool
        True when the feed's clock is the bars' own time (replay).
    """

    name = "feed"
    virtual = False

    def __init__(self, upstream: BarSource, symbols: Sequence[str], timeframe: str | Timeframe) -> None:
        if not symbols:
            raise ValueError("a feed needs at least one symbol")
        self.upstream = upstream
        self.symbols = tuple(dict.fromkeys(upstream.canonical_symbol(s) for s in symbols))
        self.timeframe = Timeframe.parse(timeframe)
        if self.timeframe.unit == "W" or not upstream.supports(self.timeframe):
            raise ValueError(f"the {upstream.name} source cannot feed {self.timeframe} bars: it has {upstream.offers()}")

    def cache_timeframes(self) -> tuple[Timeframe, ...]:
        """Bar lengths the data cache keeps: the feed's, plus daily next to an intraday feed."""
        return (self.timeframe,) if self.timeframe.unit == "D" else (self.timeframe, _DAY)

    def history(self, symbol: str, timeframe: Timeframe, before: pd.Timestamp) -> pd.DataFrame:
        """Bars of ``symbol`` stamped before ``before`` (the back-fill of the data cache)."""
        raise NotImplementedError

    def next_batch(self, after: pd.Timestamp | None, now: pd.Timestamp) -> BarBatch | None:
        """The first closed bar time after ``after`` at ``now``, or None if there is none yet."""
        raise NotImplementedError

    def exhausted(self, after: pd.Timestamp | None) -> bool:
        """True when no bar will ever follow ``after`` (the end of a replay)."""
        return False

    def close(self) -> None:
        """Release resources (none by default)."""


class ReplayFeed(Feed):
    """Bars a source already has, one bar time after another.

    Parameters
    ----------
    upstream : BarSource
        Typically the builtin source (embedded S&P 500 and NASDAQ daily bars).
    symbols : sequence of str
    timeframe : str, default '1D'
    start, end : Timestamp or str, optional
        First and last bar time to play (inclusive). Default start: the last
        ``default_bars`` bar times of the data.
    default_bars : int, default 63
    """

    name = "replay"
    virtual = True

    def __init__(self, upstream: BarSource, symbols: Sequence[str], timeframe: str | Timeframe = "1D",
                 start: object = None, end: object = None, default_bars: int = 63) -> None:
        super().__init__(upstream, symbols, timeframe)
        first = _utc(start, "start")
        hi = _utc(end, "end") or pd.Timestamp("2262-01-01", tz="UTC")
        self._frames: dict[tuple[str, str], pd.DataFrame] = {}
        for sym in self.symbols:
            for tf in self.cache_timeframes():
                self._frames[(sym, str(tf))] = upstream.fetch(sym, tf, _FAR_PAST, hi)
        stamps = pd.DatetimeIndex([], tz="UTC")
        for sym in self.symbols:
            stamps = stamps.union(self._frames[(sym, str(self.timeframe))].index)
        if len(stamps) == 0:
            raise NoDataError(f"the {upstream.name} source has no {self.timeframe} bars to replay for "
                              f"{', '.join(self.symbols)}")
        if first is None:
            first = stamps[max(0, len(stamps) - default_bars)]
        self._stamps = stamps
        self.schedule = stamps[stamps >= first]
        if len(self.schedule) == 0:
            raise NoDataError(f"nothing to replay: the {upstream.name} bars of {', '.join(self.symbols)} end "
                              f"{stamps[-1].date()}, before the replay start {first.date()}")
        self.start = self.schedule[0]
        self.end = self.schedule[-1]

    def history(self, symbol: str, timeframe: Timeframe, before: pd.Timestamp) -> pd.DataFrame:
        frame = self._frames[(symbol, str(timeframe))]
        return frame.loc[frame.index < before]

    def next_batch(self, after: pd.Timestamp | None, now: pd.Timestamp) -> BarBatch | None:
        pos = 0 if after is None else int(self.schedule.searchsorted(after, side="right"))
        if pos >= len(self.schedule):
            return None
        t = self.schedule[pos]
        # The bar time before ``t`` in the data (not only in the schedule): the first batch
        # carries the bars of its own time, not the whole history before the replay start.
        i = int(self._stamps.searchsorted(t, side="left"))
        prev = self._stamps[i - 1] if i > 0 else None
        return _batch(self._frames, self.symbols, self.timeframe, t, prev, self.cache_timeframes())

    def exhausted(self, after: pd.Timestamp | None) -> bool:
        return after is not None and after >= self.end


def _batch(frames: Mapping[tuple[str, str], pd.DataFrame], symbols: Sequence[str], tf: Timeframe,
           t: pd.Timestamp, prev: pd.Timestamp | None, cache_tfs: Sequence[Timeframe],
           skipped: tuple[pd.Timestamp, ...] = ()) -> BarBatch:
    """Per symbol and cached timeframe, the bars that closed after bar ``prev`` closed and by
    the time bar ``t`` closed (for the feed's timeframe: the bars stamped in ``(prev, t]``)."""
    closes_at = t + tf.step
    opened = None if prev is None else prev + tf.step
    updates: dict[tuple[str, str], pd.DataFrame] = {}
    have = []
    for sym in symbols:
        for ctf in cache_tfs:
            frame = frames.get((sym, str(ctf)))
            if frame is None or frame.empty:
                continue
            closed = frame.index + ctf.step
            sel = closed <= closes_at
            if opened is not None:
                sel &= closed > opened
            part = frame.loc[sel]
            if not part.empty:
                updates[(sym, str(ctf))] = part
        main = frames.get((sym, str(tf)))
        if main is not None and t in main.index:
            have.append(sym)
    return BarBatch(t, closes_at, tuple(have), updates, skipped)


class PollingFeed(Feed):
    """Closed bars from a network source, asked for every poll.

    Parameters
    ----------
    upstream : BarSource
        :class:`~integrations.AlpacaSource` or :class:`~integrations.PolygonSource`.
    symbols : sequence of str
    timeframe : str
    lookback_bars : int, default 30
        How many bars back each poll asks for (covers a short outage of the feed).
    attempts, backoff : int, float
        Retry policy for transient errors (HTTP 429/5xx, time-outs).
    sleep : callable
        Used between retries (tests pass a recorder).
    """

    name = "poll"

    def __init__(self, upstream: BarSource, symbols: Sequence[str], timeframe: str | Timeframe = "1Min", *,
                 lookback_bars: int = 30, attempts: int = 4, backoff: float = 1.0,
                 sleep: Callable[[float], None] | None = None) -> None:
        super().__init__(upstream, symbols, timeframe)
        if lookback_bars < 2:
            raise ValueError("lookback_bars must be >= 2")
        self.name = upstream.name
        self.lookback_bars = int(lookback_bars)
        self.attempts = int(attempts)
        self.backoff = float(backoff)
        self._sleep = sleep

    def _fetch(self, symbol: str, tf: Timeframe, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        kwargs = {} if self._sleep is None else {"sleep": self._sleep}
        try:
            return call_with_retry(lambda: self.upstream.fetch(symbol, tf, start, end), attempts=self.attempts,
                                   backoff=self.backoff, what=f"{self.name} feed {symbol} {tf}", **kwargs)
        except NoDataError:
            return empty_bars()

    def history(self, symbol: str, timeframe: Timeframe, before: pd.Timestamp) -> pd.DataFrame:
        span = pd.Timedelta(days=365 * 12) if timeframe.unit == "D" else pd.Timedelta(days=10)
        frame = self._fetch(symbol, timeframe, before - span, before)
        return frame.loc[(frame.index < before) & (frame.index + timeframe.step <= before)]

    def next_batch(self, after: pd.Timestamp | None, now: pd.Timestamp) -> BarBatch | None:
        tf = self.timeframe
        span = tf.step * self.lookback_bars if tf.unit != "D" else pd.Timedelta(days=2 * self.lookback_bars)
        start = now - span
        if after is not None:
            start = max(start, after - tf.step) if tf.unit != "D" else max(start, after - pd.Timedelta(days=7))
        frames: dict[tuple[str, str], pd.DataFrame] = {}
        for sym in self.symbols:
            for ctf in self.cache_timeframes():
                lo = start if ctf == tf else now - pd.Timedelta(days=10)
                frame = self._fetch(sym, ctf, lo.floor("D") if ctf.unit == "D" else lo, now)
                frames[(sym, str(ctf))] = frame.loc[frame.index + ctf.step <= now]  # closed bars only
        stamps = pd.DatetimeIndex([], tz="UTC")
        for sym in self.symbols:
            idx = frames[(sym, str(tf))].index
            stamps = stamps.union(idx[idx > after] if after is not None else idx)
        if len(stamps) == 0:
            return None
        t = stamps[-1]
        skipped = tuple(stamps[:-1]) if after is not None else ()
        prev = after if after is not None else t - tf.step
        return _batch(frames, self.symbols, tf, t, prev, self.cache_timeframes(), skipped)
