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


class _Counting(dict):
    fits = 0

    def __setitem__(self, key, value):
        self.fits += 1
        super().__setitem__(key, value)


def test_cached_walk_forward_predict_is_identical_and_refits_only_changed_folds():
    from signals import PurgedWalkForwardSplit, walk_forward_predict
    from tests.signals.test_model import FAST, planted

    X, y = planted(1000, seed=5)
    sp = PurgedWalkForwardSplit(min_train=400, test_size=200, horizon=1, embargo=1)
    cache = _Counting()
    first = walk_forward_predict(X.iloc[:900], y.iloc[:900], sp, FAST, fit_cache=cache)
    assert cache.fits == 3  # folds at 400, 600, 800
    y_later = y.copy()
    y_later.iloc[899] = 1.0 - y.iloc[899]  # a revised label inside the newest fold only
    later = walk_forward_predict(X, y_later, sp, FAST, fit_cache=cache)
    # the fold at 800 is new (its test rows grew), 400 and 600 are unchanged
    assert cache.fits == 3 + 1
    plain = walk_forward_predict(X, y_later, sp, FAST)
    pd.testing.assert_series_equal(later.probability, plain.probability)
    assert later.folds == plain.folds
    assert later.metrics == plain.metrics
    again = walk_forward_predict(X.iloc[:900], y.iloc[:900], sp, FAST)
    pd.testing.assert_series_equal(first.probability, again.probability)
