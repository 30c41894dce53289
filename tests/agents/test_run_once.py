"""Work done once per run: bars loaded once per symbol, the broker's portfolio fetched once."""

from __future__ import annotations

import warnings

from agents.config import Settings
from agents.services.context import BarStore
from analytics import DataQualityWarning
from integrations import BuiltinSource, MarketData


def test_a_run_loads_and_validates_daily_bars_once_per_symbol(monkeypatch):
    md = MarketData(BuiltinSource())
    calls = []
    real = md.bars
    monkeypatch.setattr(md, "bars", lambda *a, **k: calls.append(a[:2]) or real(*a, **k))
    store = BarStore(md, Settings(), "2017-06-30")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        for tf in ("LT", "MT", "ST", "LT", "MT"):
            store.get("SP500", tf)
    assert calls == [("SP500", "1D")]


class _CountingCache(dict):
    """A fit cache that counts the parameter sets computed (written) rather than read back."""

    writes = 0

    def __setitem__(self, key, value):
        self.writes += 1
        super().__setitem__(key, value)


def test_the_reports_backtest_reuses_the_runs_walk_forward(tmp_path):
    # --report used to refit every walk-forward fold the run's model had just been validated
    # with; with the run's fit cache it reads them back and gets the same numbers.
    from agents.config import Secrets, load_settings
    from agents.services import ml
    from agents.services.context import AppContext

    path = tmp_path / "fast.toml"
    path.write_text(f'home = "{tmp_path / "home"}"\n[ml]\nrefit_every = 252\n')
    settings = load_settings(path)
    store = AppContext(settings, Secrets.from_env({})).bars({"source": "builtin", "as_of": "2006-12-29"})
    cache = _CountingCache()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        ml.current_signal(store, "SP500", settings, fit_cache=cache)  # trains: fills the cache
        before = cache.writes
        reused = ml.backtest_policy(store, "SP500", settings, "combined", fit_cache=cache)
        fresh = ml.backtest_policy(store, "SP500", settings, "combined")
    assert before > 0 and cache.writes == before  # nothing refitted
    assert reused["metrics"] == fresh["metrics"]
    assert reused["equity"]["strategy"].equals(fresh["equity"]["strategy"])
