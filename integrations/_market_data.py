"""One interface for bars: source + Parquet cache + weekly resampling + validation."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analytics import shown
from analytics.bars import Timeframe, resample_bars
from analytics.errors import DataQualityWarning
from analytics.validation import ValidationPolicy, ValidationReport, validate_bars
from integrations._errors import NoDataError
from integrations._retry import call_with_retry
from integrations._sources import BarSource

__all__ = ["BarCache", "Bars", "MarketData", "SYMBOL_PATTERN"]

log = logging.getLogger(__name__)

#: Symbols: letters, digits and . - / ^ = & (e.g. BRK.B, BTC/USD, ^GSPC), at most 20 characters.
SYMBOL_PATTERN = re.compile(r"^[A-Za-z0-9.\-/^=&]{1,20}$")

#: How far back an open-ended request reaches, per bar unit.
_DEFAULT_HISTORY = {
    "Min": pd.Timedelta(days=10),
    "H": pd.Timedelta(days=120),
    "D": pd.Timedelta(days=365 * 30),
    "W": pd.Timedelta(days=365 * 30),
}
#: Start of an open-ended read of a local source (before any bar a file can hold).
_EARLIEST = pd.Timestamp.min.ceil("D").tz_localize("UTC")


class BarCache:
    """Parquet files of network answers, keyed by the exact request.

    A request is cached only when its range is closed (its end lies in the past by at least
    one bar), so an answer can never go stale. Files are written atomically.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path(self, identity: str, symbol: str, timeframe: Timeframe, start, end) -> Path:
        key = f"{identity}|{symbol}|{timeframe}|{pd.Timestamp(start).isoformat()}|{pd.Timestamp(end).isoformat()}"
        digest = hashlib.sha256(key.encode()).hexdigest()[:24]
        safe = re.sub(r"[^A-Za-z0-9]+", "_", symbol)
        return self.directory / f"{safe}_{timeframe}_{digest}.parquet"

    def load(self, path: Path) -> pd.DataFrame | None:
        if not path.exists():
            return None
        try:
            return pd.read_parquet(path)
        except Exception as exc:  # noqa: BLE001 - a corrupt cache file is just a miss
            log.warning("ignoring unreadable cache file %s: %s", path, exc)
            return None

    def store(self, path: Path, frame: pd.DataFrame) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        try:
            frame.to_parquet(tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


@dataclass(frozen=True)
class Bars:
    """Validated bars with their provenance.

    Attributes
    ----------
    symbol, source, timeframe : str
        What was asked for, as the source names it.
    frame : DataFrame
        Canonical bars (UTC index; open, high, low, close, volume).
    report : ValidationReport
        Validation of the source bars (before any weekly resampling).
    cached : bool
        True when the answer came from the Parquet cache.
    known : mapping
        Issues of ``report`` the source knows to be real features of its data, as
        ``(rule, timestamp) -> explanation`` (e.g. a real market crash flagged as a jump).
        They are not warned about; ``data show`` lists them.
    """

    symbol: str
    source: str
    timeframe: str
    frame: pd.DataFrame
    report: ValidationReport
    cached: bool = False
    known: Mapping[tuple[str, str | None], str] = field(default_factory=dict)

    def known_notes(self) -> list[str]:
        """The explanations of the known issues present in :attr:`report`, in bar order."""
        return [self.known[(i.rule, i.timestamp)] for i in self.report.issues if (i.rule, i.timestamp) in self.known]

    def summary(self) -> dict[str, object]:
        """JSON-ready description: symbol, source, first/last timestamp, bar count, validation."""
        idx = self.frame.index
        return {
            "symbol": self.symbol,
            "source": self.source,
            "timeframe": self.timeframe,
            "first": idx[0].isoformat() if len(idx) else None,
            "last": idx[-1].isoformat() if len(idx) else None,
            "bars": int(len(self.frame)),
            "validation": {
                "ok": self.report.ok,
                "summary": self.report.summary(),
                "counts": self.report.counts(),
            },
            "cached": self.cached,
            **({"known_flags": notes} if (notes := self.known_notes()) else {}),
        }


def _utc(value: object, name: str) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ValueError(f"{name}: cannot parse {shown(value)} as a date or time") from None
    if pd.isna(ts):
        raise ValueError(f"{name}: {shown(value)} is not a date or time")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


class MarketData:
    """Bars for (symbol, timeframe, start, end), validated, from one source.

    Parameters
    ----------
    source : BarSource
        Where bars come from.
    policy : ValidationPolicy, optional
        Validation rules; the gap limit is widened to at least two bars of the timeframe.
    cache_dir : Path, optional
        Parquet cache for network sources; None disables caching.
    retries : int
        Attempts for transient source errors (rate limits, 5xx, time-outs).
    retry_backoff : float
        First backoff in seconds.
    history_years : float, default 30
        How far back an open-ended request for daily or weekly bars reaches, counted from its
        last bar (intraday requests reach 10 days for minutes, 120 for hours).
    """

    def __init__(
        self,
        source: BarSource,
        policy: ValidationPolicy | None = None,
        cache_dir: Path | None = None,
        retries: int = 4,
        retry_backoff: float = 0.5,
        history_years: float = 30.0,
    ) -> None:
        if not (isinstance(history_years, int | float) and 1 <= history_years <= 200):
            raise ValueError(f"history_years must be between 1 and 200, got {history_years!r}")
        days = pd.Timedelta(days=round(365 * history_years))
        self.history = {**_DEFAULT_HISTORY, "D": days, "W": days}
        self.source = source
        self.policy = policy or ValidationPolicy()
        self.cache = BarCache(cache_dir) if (cache_dir and source.cacheable) else None
        self.retries = retries
        self.retry_backoff = retry_backoff

    def _policy_for(self, timeframe: Timeframe) -> ValidationPolicy:
        gap = self.policy.max_gap
        if gap is not None:
            gap = max(pd.Timedelta(gap), 2 * timeframe.step)
        return ValidationPolicy(
            policies=dict(self.policy.policies),
            max_gap=gap,
            jump_z=self.policy.jump_z,
            jump_window=self.policy.jump_window,
        )

    def _fetch(self, symbol: str, tf: Timeframe, start: pd.Timestamp, end: pd.Timestamp, now: pd.Timestamp):
        closed_range = end + tf.step <= now
        path = None
        if self.cache is not None and closed_range:
            path = self.cache.path(self.source.cache_identity(), symbol, tf, start, end)
            hit = self.cache.load(path)
            if hit is not None:
                return hit, True
        frame = call_with_retry(
            lambda: self.source.fetch(symbol, tf, start, end),
            attempts=self.retries,
            backoff=self.retry_backoff,
            what=f"{self.source.name} bars {symbol} {tf}",
        )
        # Drop a bar that is still forming: a bar stamped t closes at t + step.
        frame = frame.loc[frame.index + tf.step <= now]
        if path is not None:
            self.cache.store(path, frame)
        return frame, False

    @staticmethod
    def _weekly(daily: pd.DataFrame, base: Timeframe, tf: Timeframe, now: pd.Timestamp) -> pd.DataFrame:
        as_of = min(now, daily.index[-1] + base.step) if len(daily) else None
        return resample_bars(daily, base, tf, as_of=as_of)

    def weekly_from(self, daily: Bars, *, now: object = None) -> Bars:
        """Weekly bars resampled from daily bars already loaded and validated by :meth:`bars`.

        Gives exactly what ``bars(symbol, "1W", None, end, now=now)`` gives for the same open
        range, without fetching and validating the daily bars a second time.

        Parameters
        ----------
        daily : Bars
            The result of ``bars(symbol, "1D", None, end, now=now)``.
        now : date-like, optional
            The same wall clock that call used (default: now).

        Raises
        ------
        ValueError
            ``daily`` is not daily bars.
        NoDataError
            No weekly bar closes by ``now``.
        """
        base, tf = Timeframe.parse("1D"), Timeframe.parse("1W")
        if Timeframe.parse(daily.timeframe) != base:
            raise ValueError(f"weekly bars are resampled from daily bars, not {daily.timeframe} bars")
        t_now = _utc(now, "now") or pd.Timestamp.now(tz="UTC")
        frame = self._weekly(daily.frame, base, tf, t_now)
        if frame.empty:
            raise NoDataError(f"no {tf} bars for {daily.symbol} from {self.source.name} between the beginning and now")
        return Bars(daily.symbol, daily.source, str(tf), frame, daily.report, daily.cached, daily.known)

    def bars(
        self,
        symbol: str,
        timeframe: str | Timeframe = "1D",
        start: object = None,
        end: object = None,
        *,
        now: object = None,
    ) -> Bars:
        """Load, validate and (for weekly) resample bars.

        Parameters
        ----------
        symbol : str
            Ticker or builtin name (``SP500``, ``NASDAQ``); must match :data:`SYMBOL_PATTERN`.
        timeframe : str or Timeframe, default '1D'
            Bar length; ``1W`` is built from closed daily bars.
        start, end : date-like, optional
            Inclusive UTC range of bar stamps. Without ``start``: a timeframe-dependent
            look-back (``history_years``, 30 by default, of daily or weekly bars, 120 days of hourly, 10 days of minute
            bars), counted back from the last bar a local source (builtin, file) has by
            ``end``, or from ``end`` (default: now) for a network source.
        now : date-like, optional
            Wall clock (tests, ``--as-of``); bars not closed by then are dropped.

        Raises
        ------
        ValueError
            Malformed symbol, timeframe or dates, or ``start`` after ``end``.
        NoDataError
            Nothing in the range.
        """
        if not isinstance(symbol, str) or not SYMBOL_PATTERN.match(symbol.strip()):
            raise ValueError(f"symbol {shown(symbol)} is not a valid ticker")
        tf = Timeframe.parse(timeframe)
        t_start = _utc(start, "start")
        t_end = _utc(end, "end")
        t_now = _utc(now, "now") or pd.Timestamp.now(tz="UTC")
        if t_start is not None and t_end is not None and t_start > t_end:
            raise ValueError(f"empty date range: start {t_start.date()} is after end {t_end.date()}")
        name = self.source.canonical_symbol(symbol)
        base = Timeframe.parse("1D") if tf.unit == "W" else tf
        if not self.source.supports(base):
            raise NoDataError(
                f"the {self.source.name} source has no {tf} bars for {name}: it has {self.source.offers()}"
            )
        fetch_end = t_end if t_end is not None else t_now.floor("min")
        # An open-ended request reaches a fixed history back from its last bar. A local source
        # is read whole anyway, so its window is counted back from the last bar it really has
        # by ``end``: an end after the data gives exactly the bars of an end at the last bar.
        # A network source cannot be asked what it has, so its window counts back from ``end``.
        anchored = t_start is None and not self.source.cacheable
        if t_start is not None:
            fetch_start = t_start
        elif anchored:
            fetch_start = _EARLIEST
        else:
            fetch_start = fetch_end - self.history[tf.unit]
        if tf.unit in ("D", "W"):
            fetch_start = fetch_start.normalize()
        raw, cached = self._fetch(name, base, fetch_start, fetch_end, t_now)
        if anchored and len(raw):
            window_start = raw.index.max() - self.history[tf.unit]
            if tf.unit in ("D", "W"):
                window_start = window_start.normalize()
            raw = raw.loc[raw.index >= window_start]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataQualityWarning)
            frame, report = validate_bars(raw, self._policy_for(base))
        known = self.source.known_issues(name)
        if any((i.rule, i.timestamp) not in known for i in report.issues):
            warnings.warn(f"{name} {base} from {self.source.name}: {report.summary()}", DataQualityWarning, stacklevel=2)
        if tf.unit == "W":
            frame = self._weekly(frame, base, tf, t_now)
        if t_start is not None:
            frame = frame.loc[frame.index >= t_start]
        if frame.empty:
            lo = t_start.date() if t_start is not None else "the beginning"
            hi = t_end.date() if t_end is not None else "now"
            raise NoDataError(f"no {tf} bars for {name} from {self.source.name} between {lo} and {hi}")
        return Bars(name, self.source.name, str(tf), frame, report, cached, known)
