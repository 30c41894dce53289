"""The embedded data: series that ship inside installed packages, usable with no key or network.

Two packages carry them:

* ``arch`` (``arch.data``): daily S&P 500 and NASDAQ Composite OHLCV, 1999-01-04 .. 2018-12-31.
* ``skfolio`` (``skfolio.datasets``): daily adjusted closes of 20 large S&P 500 stocks and the
  S&P 500 index, 1990-01-02 .. 2022-12-28, and 5 factor ETFs, 2014-01-02 .. 2022-12-28. These
  are **close-only**: the bars carry NaN open, high, low and volume (see
  :func:`analytics.is_close_only`); nothing is invented for them.

Both are read straight from the CSV files inside the packages (importing ``arch`` or ``skfolio``
costs seconds and is not needed to read a file).
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analytics import close_only_bars, shown
from analytics.bars import BAR_COLUMNS, Timeframe
from integrations._errors import NoDataError, UnknownSymbolError
from integrations._sources import BarSource

__all__ = [
    "BUILTIN_SYMBOLS",
    "BUILTIN_UNIVERSES",
    "BuiltinSeries",
    "BuiltinSource",
]


@dataclass(frozen=True)
class BuiltinSeries:
    """One embedded series.

    Attributes
    ----------
    name : str
        Canonical symbol.
    package : {'arch', 'skfolio'}
        The installed package whose data file holds it.
    path : str
        The file inside the package, relative to the package's folder.
    column : str or None
        The column of a wide close-price file (skfolio); None for an OHLCV file (arch).
    aliases : tuple of str
        Other names accepted for it.
    description : str
        What it is, for ``data show`` and the docs.
    """

    name: str
    package: str
    path: str
    column: str | None
    aliases: tuple[str, ...]
    description: str

    @property
    def close_only(self) -> bool:
        """True for the close-price files (no open, high, low or volume)."""
        return self.column is not None


_ARCH_SERIES = (
    BuiltinSeries("SP500", "arch", "data/sp500/sp500.csv.gz", None, ("^GSPC", "GSPC", "SPX", "S&P500"),
                  "S&P 500 index, daily OHLCV 1999-2018 (arch)"),
    BuiltinSeries("NASDAQ", "arch", "data/nasdaq/nasdaq.csv.gz", None, ("^IXIC", "IXIC", "COMP"),
                  "NASDAQ Composite index, daily OHLCV 1999-2018 (arch)"),
)
_STOCKS = ("AAPL", "AMD", "BAC", "BBY", "CVX", "GE", "HD", "JNJ", "JPM", "KO",
           "LLY", "MRK", "MSFT", "PEP", "PFE", "PG", "RRC", "UNH", "WMT", "XOM")
_FACTORS = {
    "MTUM": "iShares MSCI USA Momentum Factor ETF",
    "QUAL": "iShares MSCI USA Quality Factor ETF",
    "SIZE": "iShares MSCI USA Size Factor ETF",
    "USMV": "iShares MSCI USA Min Vol Factor ETF",
    "VLUE": "iShares MSCI USA Value Factor ETF",
}
_SKFOLIO_SERIES = (
    *(BuiltinSeries(s, "skfolio", "datasets/data/sp500_dataset.csv.gz", s, (),
                    f"{s}, daily adjusted close 1990-2022, close-only (skfolio)") for s in _STOCKS),
    # The index is the same market as SP500 above over a longer span, but close-only; it keeps
    # its own name so that SP500 stays the OHLCV series every existing command and model uses.
    BuiltinSeries("SP500X", "skfolio", "datasets/data/sp500_index.csv.gz", "SP500", ("SP500-1990",),
                  "S&P 500 index, daily close 1990-2022, close-only (skfolio)"),
    *(BuiltinSeries(s, "skfolio", "datasets/data/factors_dataset.csv.gz", s, (),
                    f"{text}, daily adjusted close 2014-2022, close-only (skfolio)")
      for s, text in _FACTORS.items()),
)

#: Every embedded series by canonical name.
BUILTIN_SYMBOLS: dict[str, BuiltinSeries] = {s.name: s for s in (*_ARCH_SERIES, *_SKFOLIO_SERIES)}

#: Named universes of embedded symbols: name -> (symbols, benchmark).
BUILTIN_UNIVERSES: dict[str, tuple[tuple[str, ...], str]] = {
    "sp500-20": (_STOCKS, "SP500X"),
    "factors": (tuple(_FACTORS), "SP500X"),
}

#: The bundled series' validation flags that are real market moves, checked by eye against the
#: index's history: said once by ``data show``, not warned about by every command.
_BUILTIN_KNOWN: dict[str, dict[tuple[str, str | None], str]] = {
    "SP500": {
        ("jump", "2018-02-05T00:00:00+00:00"):
            "jump on 2018-02-05 is real: the S&P 500 fell 4.1% in the volatility spike of February 2018",
    },
}


class BuiltinSource(BarSource):
    """The embedded daily series (see the module docstring); no intraday bars.

    OHLCV series (SP500, NASDAQ) are adjusted with ``factor = Adj Close / Close``: open, high,
    low and close are multiplied by the factor and volume is divided by it, so that returns
    include distributions and the OHLC relations of each bar are preserved. (For these two
    indices the factor is 1.0 on every day; the rule is applied anyway so that the data path is
    the same as for files with an ``adj close`` column.) The skfolio series are already
    adjusted closes and are delivered close-only.
    """

    name = "builtin"

    def supports(self, timeframe: Timeframe) -> bool:
        return timeframe.unit == "D"

    def offers(self) -> str:
        return "daily bars only (weekly built from daily); no intraday bars"

    def known_issues(self, symbol: str) -> Mapping[tuple[str, str | None], str]:
        name = self.canonical_symbol(symbol)
        if BUILTIN_SYMBOLS[name].close_only:
            return _close_only_known(name)
        return _BUILTIN_KNOWN.get(name, {})

    def canonical_symbol(self, symbol: str) -> str:
        key = symbol.strip().upper()
        for name, series in BUILTIN_SYMBOLS.items():
            if key == name or key in series.aliases:
                return name
        raise UnknownSymbolError(
            f"unknown symbol {shown(symbol)} for the builtin source; available: "
            f"{', '.join(BUILTIN_SYMBOLS)} (use --source file|polygon|alpaca for others)"
        )

    def fetch(self, symbol, timeframe, start, end):
        name = self.canonical_symbol(symbol)
        if not self.supports(timeframe):
            raise NoDataError(f"the builtin source has daily bars only, not {timeframe}")
        frame = _builtin_frame(name)
        return frame.loc[(frame.index >= start) & (frame.index <= end)]  # a copy: the cached frame stays intact


#: Why the skfolio series' jump flags are not faults. Spot-checked by eye against the companies'
#: histories: AAPL 2000-09-29 (profit warning), MRK 2004-09-30 (Vioxx withdrawn), PG 2000-03-07
#: (profit warning), LLY 2000-08-09 (Prozac patent ruling), JNJ 2018-12-14 (talc report),
#: WMT 2017-11-16 (results), and the March 2020 crash days in every series.
_CLOSE_ONLY_JUMP = ("jump on {day} is a real move of the adjusted close shipped by skfolio "
                    "(company news or a market crash), not a data fault")


@functools.lru_cache(maxsize=32)
def _close_only_known(name: str) -> Mapping[tuple[str, str | None], str]:
    """Every jump the validation flags in an embedded close-only series, as known."""
    import warnings

    from analytics import validate_bars

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, report = validate_bars(_builtin_frame(name), raise_on_error=False)
    return {("jump", i.timestamp): _CLOSE_ONLY_JUMP.format(day=(i.timestamp or "")[:10])
            for i in report.issues if i.rule == "jump"}


@functools.lru_cache(maxsize=32)
def _builtin_frame(name: str) -> pd.DataFrame:
    """The whole embedded series as bars, parsed once per process."""
    series = BUILTIN_SYMBOLS[name]
    raw = _package_csv(series.package, series.path)
    index = pd.DatetimeIndex(raw.index).tz_localize("UTC").as_unit("ns")
    if series.close_only:
        close = raw[series.column].dropna()  # a wide file: a younger column starts later
        return close_only_bars(pd.Series(close.to_numpy(float), index=index[raw[series.column].notna()]))
    factor = (raw["Adj Close"] / raw["Close"]).to_numpy(dtype=float)
    frame = pd.DataFrame(
        {
            "open": raw["Open"].to_numpy(float) * factor,
            "high": raw["High"].to_numpy(float) * factor,
            "low": raw["Low"].to_numpy(float) * factor,
            "close": raw["Adj Close"].to_numpy(float),
            "volume": raw["Volume"].to_numpy(float) / factor,
        },
        index=index,
    )
    frame.index.name = "timestamp"
    return frame.loc[:, list(BAR_COLUMNS)].astype(np.float64)


def _package_csv(package: str, path: str) -> pd.DataFrame:
    """A CSV data file inside an installed package, read without importing the package.

    Importing ``arch`` runs its ``__init__``, which loads scipy and statsmodels (about 2 s), and
    ``skfolio`` loads scikit-learn and cvxpy; the data are plain files inside the packages.
    """
    spec = importlib.util.find_spec(package)  # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"the builtin source reads the data bundled with the {package!r} package, "
                                  "which is not installed", name=package)
    data = pd.read_csv(Path(spec.submodule_search_locations[0], path))
    if "Date" in data:
        data["Date"] = pd.to_datetime(data["Date"])
        data = data.set_index("Date")
    for col in data:
        data[col] = pd.to_numeric(data[col], errors="coerce")
    return data


def _arch_data(module_name: str) -> pd.DataFrame:
    """What ``arch.data.<module_name>.load()`` returns, read from the file as arch reads it."""
    return _package_csv("arch", f"data/{module_name}/{module_name}.csv.gz")
