"""garch_volatility with a fit cache gives the same forecasts and reuses earlier fits."""

from __future__ import annotations

import numpy as np
import pandas as pd

from signals._features import garch_volatility


def _returns(n: int = 900) -> pd.Series:
    rng = np.random.default_rng(3)
    idx = pd.bdate_range("2010-01-01", periods=n, tz="UTC")
    return pd.Series(0.01 * rng.standard_t(5, n), index=idx)


def test_cached_garch_volatility_is_identical_and_reuses_fits():
    r = _returns()
    cache: dict = {}
    for end in (650, 651, 760, len(r)):
        got = garch_volatility(r.iloc[:end], 504, 100, fit_cache=cache)
        pd.testing.assert_series_equal(got, garch_volatility(r.iloc[:end], 504, 100))
    assert len(cache) == 4  # fits at 504, 604, 704, 804: each estimated once
