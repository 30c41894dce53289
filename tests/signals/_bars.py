"""Seeded bar frames shared by the signals tests."""

from __future__ import annotations

import numpy as np
import pandas as pd


def random_walk_bars(n: int, seed: int, drift: float = 0.0) -> pd.DataFrame:
    """Daily OHLCV bars around a Gaussian random walk of log closes (sd 0.01 per bar).

    The index is business days in UTC; ``high >= max(open, close)``,
    ``low <= min(open, close)`` and every value is positive.
    """
    rng = np.random.default_rng(seed)
    logc = np.log(100.0) + np.cumsum(drift + 0.01 * rng.standard_normal(n))
    close = np.exp(logc)
    prev = np.concatenate([[close[0] * np.exp(-0.01 * rng.standard_normal())], close[:-1]])
    open_ = prev * np.exp(0.002 * rng.standard_normal(n))
    top = np.maximum(open_, close)
    bottom = np.minimum(open_, close)
    high = top * np.exp(np.abs(0.005 * rng.standard_normal(n)))
    low = bottom * np.exp(-np.abs(0.005 * rng.standard_normal(n)))
    volume = np.exp(13.0 + 0.3 * rng.standard_normal(n))
    index = pd.bdate_range("2010-01-04", periods=n, tz="UTC", name="time")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )
