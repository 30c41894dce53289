"""The analysis timeframes LT, MT, ST and US: the one table the rest of the project reads.

An *analysis timeframe* is a horizon (long, medium, short, ultra-short term), not a bar
length: bar lengths are :class:`analytics.bars.Timeframe` (``1W``, ``1D``, ``5Min``), and
each analysis timeframe has a default one. :data:`TIMEFRAME_TABLE` gives, per timeframe,

* its meaning (``'long term'``, ...),
* its default bar length and lookback in bars (the defaults of the ``[timeframes.XX]``
  sections of ``regimedesk.toml``; the lookback is the trailing window of the statistics),
* the bar length its default bars are resampled from with :func:`analytics.resample_bars`
  (weekly bars from closed daily bars; ``None``: the data source delivers the bars),
* its walk-forward regime settings, a :class:`TimeframeSpec`.

Everything else derives from it: :data:`TIMEFRAMES`, :data:`DEFAULT_TIMEFRAME_SPECS`, the
configuration defaults and names (``agents.config``), the column prefixes of the signal CSV
(``integrations.SIGNAL_TIMEFRAMES``, the names lower-cased) and the command-line choices.
Tests pin the values, so a change here is deliberate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from analytics._regime_common import PersistenceRule
from analytics.bars import Timeframe

__all__ = [
    "TimeframeSpec",
    "AnalysisTimeframe",
    "TIMEFRAME_TABLE",
    "TIMEFRAMES",
    "DEFAULT_TIMEFRAME_SPECS",
]


@dataclass(frozen=True)
class TimeframeSpec:
    """Walk-forward settings of one timeframe.

    Parameters
    ----------
    min_train : int
        Bars in the first training window.
    refit_every : int
        Bars between refits.
    max_train : int or None
        Rolling window length; ``None`` = expanding.
    periods_per_year : float
        Bars per year.
    persistence : PersistenceRule
    """

    min_train: int
    refit_every: int
    max_train: int | None
    periods_per_year: float
    persistence: PersistenceRule = field(default_factory=PersistenceRule)


@dataclass(frozen=True)
class AnalysisTimeframe:
    """One row of :data:`TIMEFRAME_TABLE`.

    Attributes
    ----------
    name : str
        ``'LT'``, ``'MT'``, ``'ST'`` or ``'US'``: the key in configuration, JSON and state.
    meaning : str
        The horizon in words (``'long term'``, ``'medium term'``, ...).
    bar : Timeframe
        Default bar length.
    lookback : int
        Default number of trailing bars the statistics look at.
    resampled_from : Timeframe or None
        Bar length the default bars are built from with :func:`analytics.resample_bars`
        (closed buckets only); ``None`` when the data source delivers them as they are.
    spec : TimeframeSpec
        Default walk-forward regime settings.
    """

    name: str
    meaning: str
    bar: Timeframe
    lookback: int
    resampled_from: Timeframe | None
    spec: TimeframeSpec

    @property
    def bar_kind(self) -> str:
        """``'weekly'``, ``'daily'`` or ``'intraday'``: the default bar length in words."""
        if self.bar.intraday:
            return "intraday"
        return "weekly" if self.bar.unit == "W" else "daily"


_DAY = Timeframe(1, "D")

#: The analysis timeframes, longest first (the order of every per-timeframe listing).
#: Walk-forward defaults, fixed a priori from the bar length of each timeframe (not tuned on
#: data): LT weekly bars: 2-year first window, refit every 4 weeks, 2-week confirmation;
#: MT daily bars: 2-year first window, monthly refits, expanding, 1-week confirmation;
#: ST daily bars: 1-year first window, monthly refits on a rolling 2-year window (adapts
#: faster than MT), 1-week confirmation like MT (was 2 days: the confirmation guards against the
#: noise of the daily features, whose volatility half-life is 5 bars on both; docs/regimes.md);
#: US 5-minute bars (78 per session): 3 sessions first, refit every session on a rolling
#: 10-session window, 30-minute confirmation.
#: A timeframe needs more than ``min_train`` bars to report a regime; the cost grows with the
#: number of refits, so pass the history the model needs, not more (e.g. ST: ~3 years).
#: Lookbacks (the display horizons): LT ~3 years, MT ~1 year, ST ~3 months,
#: US ~5 sessions.
TIMEFRAME_TABLE: Mapping[str, AnalysisTimeframe] = MappingProxyType({
    row.name: row
    for row in (
        AnalysisTimeframe(
            "LT", "long term", Timeframe(1, "W"), 156, _DAY,
            TimeframeSpec(min_train=104, refit_every=4, max_train=None, periods_per_year=52.0,
                          persistence=PersistenceRule(0.8, 2)),
        ),
        AnalysisTimeframe(
            "MT", "medium term", _DAY, 252, None,
            TimeframeSpec(min_train=504, refit_every=21, max_train=None, periods_per_year=252.0,
                          persistence=PersistenceRule(0.8, 5)),
        ),
        AnalysisTimeframe(
            "ST", "short term", _DAY, 63, None,
            TimeframeSpec(min_train=252, refit_every=21, max_train=504, periods_per_year=252.0,
                          persistence=PersistenceRule(0.8, 5)),
        ),
        AnalysisTimeframe(
            "US", "ultra-short", Timeframe(5, "Min"), 390, None,
            TimeframeSpec(min_train=234, refit_every=78, max_train=780, periods_per_year=252.0 * 78,
                          persistence=PersistenceRule(0.8, 6)),
        ),
    )
})

#: Timeframe keys, longest first.
TIMEFRAMES: tuple[str, ...] = tuple(TIMEFRAME_TABLE)

#: Default walk-forward settings per timeframe (read-only; pass overrides as ``specs``).
DEFAULT_TIMEFRAME_SPECS: Mapping[str, TimeframeSpec] = MappingProxyType(
    {name: row.spec for name, row in TIMEFRAME_TABLE.items()}
)
