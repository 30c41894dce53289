"""The walk-forward fit cache: reuse only what a prefix already fixed, and change nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics._regime_common import PersistenceRule, walk_forward_regimes
from analytics._regime_garch import GarchVolatilityRegime
from analytics._regime_hmm import GaussianHMMRegime
from analytics._regime_markov import MarkovSwitchingRegime
from tests.analytics.test_regime_sim import MU2, P2, SIGMA2, simulate

WF = dict(min_train=300, refit_every=50, persistence=PersistenceRule(0.8, 3))


class CountingDict(dict):
    """A dict that counts lookups that found something."""

    hits = 0

    def get(self, key, default=None):
        if key in self:
            self.hits += 1
        return super().get(key, default)


@pytest.fixture(scope="module")
def series() -> pd.Series:
    r, _ = simulate(MU2, SIGMA2, P2, 640, seed=4)
    return r


def _same(a, b) -> None:
    np.testing.assert_array_equal(a.probabilities, b.probabilities)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.fit_index, b.fit_index)
    assert [f.loglik for f in a.fits] == [f.loglik for f in b.fits]
    assert a.dates.equals(b.dates)


@pytest.mark.parametrize("model", [GaussianHMMRegime(), MarkovSwitchingRegime(), GarchVolatilityRegime()],
                         ids=["hmm", "markov", "garch"])
def test_cached_walk_forward_equals_uncached_bar_by_bar(series, model):
    cache = CountingDict()
    # a live system: one call per new bar with the same cache
    for end in (451, 452, 500, 551, len(series)):
        cached = walk_forward_regimes(series.iloc[:end], model, fit_cache=cache, **WF)
        _same(cached, walk_forward_regimes(series.iloc[:end], model, **WF))
    # the last call re-estimated nothing it had seen: every earlier refit came from the cache
    n_fits = len(cached.fits)
    assert n_fits == 7
    assert cache.hits > 0
    fits = {k: v for k, v in cache.items() if not isinstance(v, np.ndarray)}
    assert len(fits) == n_fits  # one entry per refit, however many calls there were


def test_cache_entries_depend_on_the_data_seed_and_schedule(series):
    cache: dict = {}
    walk_forward_regimes(series, GaussianHMMRegime(), fit_cache=cache, **WF)
    n = len(cache)
    walk_forward_regimes(series, GaussianHMMRegime(), fit_cache=cache, **WF)
    assert len(cache) == n  # same inputs: nothing new
    walk_forward_regimes(series, GaussianHMMRegime(), fit_cache=cache, seed=1, **WF)
    assert len(cache) == 2 * n  # another seed: all new keys
    changed = series.copy()
    changed.iloc[10] += 0.01  # a revised early bar invalidates every later refit
    before = len(cache)
    res = walk_forward_regimes(changed, GaussianHMMRegime(), fit_cache=cache, **WF)
    assert len(cache) == before + n
    _same(res, walk_forward_regimes(changed, GaussianHMMRegime(), **WF))
    walk_forward_regimes(series, GaussianHMMRegime(), fit_cache=cache, min_train=300, refit_every=60,
                         persistence=WF["persistence"])
    assert len(cache) > before + n  # another schedule: new keys


def test_revised_recent_bar_only_refits_from_there(series):
    cache = CountingDict()
    walk_forward_regimes(series, GaussianHMMRegime(), fit_cache=cache, **WF)
    changed = series.copy()
    changed.iloc[-5] -= 0.02  # after the last refit: every fit and finished block is reused
    size = len(cache)
    res = walk_forward_regimes(changed, GaussianHMMRegime(), fit_cache=cache, **WF)
    assert len(cache) == size
    _same(res, walk_forward_regimes(changed, GaussianHMMRegime(), **WF))
