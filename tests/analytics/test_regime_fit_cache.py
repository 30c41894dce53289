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


@pytest.fixture(autouse=True)
def _no_kept_blocks(monkeypatch):
    """Each test starts with no finished blocks in memory, as a fresh process would."""
    import analytics._regime_common as rc

    monkeypatch.setattr(rc, "_PREFIXES", rc._PrefixStore())


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


# ------------------------------------------------------------------- finished blocks kept in memory


def _same_all(a, b) -> None:
    _same(a, b)
    for field in ("states", "persistent_states", "raw_labels"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert [f.state_labels for f in a.fits] == [f.state_labels for f in b.fits]
    assert [(f.first_date, f.train_start, f.train_end) for f in a.fits] == [
        (f.first_date, f.train_start, f.train_end) for f in b.fits]
    assert a.label_probabilities().equals(b.label_probabilities())


@pytest.mark.parametrize("model", [GaussianHMMRegime(), MarkovSwitchingRegime(), GarchVolatilityRegime()],
                         ids=["hmm", "markov", "garch"])
def test_bar_by_bar_with_kept_blocks_equals_a_full_recomputation(series, model, monkeypatch):
    import analytics._regime_common as rc

    monkeypatch.setattr(rc, "_PREFIXES", rc._PrefixStore())
    cache: dict = {}
    # every bar from before the refit at 400 to after the one at 450: two block boundaries
    for end in range(395, 456):
        inc = walk_forward_regimes(series.iloc[:end], model, fit_cache=cache, **WF)
        _same_all(inc, walk_forward_regimes(series.iloc[:end], model, **WF))


def test_a_new_bar_reads_only_the_open_block(series, monkeypatch):
    import analytics._regime_common as rc

    monkeypatch.setattr(rc, "_PREFIXES", rc._PrefixStore())
    cache = CountingDict()
    walk_forward_regimes(series.iloc[:610], GaussianHMMRegime(), fit_cache=cache, **WF)
    cache.hits = 0
    res = walk_forward_regimes(series.iloc[:611], GaussianHMMRegime(), fit_cache=cache, **WF)
    # six finished blocks come from memory in one piece; only the open block's fit is looked up
    assert len(res.fits) == 7 and cache.hits == 1
    # a restart (nothing in memory) rebuilds the same result from the fit cache
    monkeypatch.setattr(rc, "_PREFIXES", rc._PrefixStore())
    _same_all(walk_forward_regimes(series.iloc[:611], GaussianHMMRegime(), fit_cache=cache, **WF), res)


def test_kept_blocks_are_never_used_for_other_data(series, monkeypatch):
    import analytics._regime_common as rc

    monkeypatch.setattr(rc, "_PREFIXES", rc._PrefixStore())
    cache: dict = {}
    walk_forward_regimes(series, GaussianHMMRegime(), fit_cache=cache, **WF)
    revised = series.copy()
    revised.iloc[320] += 0.01  # inside a finished block
    _same_all(walk_forward_regimes(revised, GaussianHMMRegime(), fit_cache=cache, **WF),
              walk_forward_regimes(revised, GaussianHMMRegime(), **WF))
    gap = series.drop(series.index[340:345])  # missing bars: other dates, other blocks
    _same_all(walk_forward_regimes(gap, GaussianHMMRegime(), fit_cache=cache, **WF),
              walk_forward_regimes(gap, GaussianHMMRegime(), **WF))
    moved = series.copy()
    moved.index = moved.index + pd.Timedelta(days=1)  # same returns on other dates
    res = walk_forward_regimes(moved, GaussianHMMRegime(), fit_cache=cache, **WF)
    assert res.fits[0].first_date == moved.index[300]
    other_rule = dict(WF, persistence=PersistenceRule(0.6, 2))
    _same_all(walk_forward_regimes(series, GaussianHMMRegime(), fit_cache=cache, **other_rule),
              walk_forward_regimes(series, GaussianHMMRegime(), **other_rule))


@pytest.mark.parametrize("name", ["SP500", "NASDAQ"])
def test_500_bars_of_real_data_bar_by_bar_equal_a_full_recomputation(name, monkeypatch):
    """The embedded index series, 500 consecutive bars (about 24 monthly refits): each bar with
    the finished blocks kept equals a run that walks every block again."""
    import analytics._regime_common as rc
    from analytics import detect_regimes
    from tests.analytics import _series

    logp = getattr(_series, name)[-1501:]
    r = pd.Series(np.diff(logp), index=pd.bdate_range("2013-01-01", periods=len(logp) - 1, tz="UTC"))
    kept = rc._PrefixStore()
    cache: dict = {}
    for end in range(1000, 1500):
        monkeypatch.setattr(rc, "_PREFIXES", kept)
        inc = detect_regimes(r.iloc[:end], method="hmm", fit_cache=cache)
        monkeypatch.setattr(rc, "_PREFIXES", rc._PrefixStore(size=0))  # nothing kept: every block walked
        _same_all(inc, detect_regimes(r.iloc[:end], method="hmm", fit_cache=cache))
