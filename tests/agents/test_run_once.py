"""Work done once per run: bars loaded once per symbol, the broker's portfolio fetched once."""

from __future__ import annotations

import warnings

from agents.config import Secrets, Settings
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


def test_decision_and_gate_read_the_brokers_book_once_per_run(tmp_path, monkeypatch):
    # The decision sizes orders from the broker's book and the gate checks them against the
    # same book: one read per run. Execution still re-reads the broker right before sending.
    import inspect

    from agents.config import load_settings
    from agents.runtime.runner import Runner
    from agents.services.context import RunRequest
    from integrations.brokers import PaperBroker

    path = tmp_path / "fast.toml"
    path.write_text(f'home = "{tmp_path / "home"}"\n[ml]\nrefit_every = 252\n[decision]\npolicy = "regime"\n')
    settings = load_settings(path)
    readers: list[str] = []
    real = PaperBroker.account

    def account(self):
        files = {frame.filename.rsplit("/", 1)[-1] for frame in inspect.stack()[1:8]}
        readers.extend(sorted(files & {"decision.py", "risk_gate.py", "execution.py"}))
        return real(self)

    monkeypatch.setattr(PaperBroker, "account", account)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        with Runner(settings, Secrets.from_env({})) as runner:
            out = runner.start(RunRequest(("SP500",), as_of="2006-12-29", broker="paper"))
            runner.start(RunRequest(("SP500",), as_of="2006-12-29", broker="paper"))
    assert out.state["decision"]["symbols"]["SP500"]["orders"]  # an order was proposed and gated
    assert out.state["risk_gate"]["symbols"]["SP500"]
    # one read for the decision and the gate of each run; a second run reads afresh
    assert readers.count("decision.py") == 2 and "risk_gate.py" not in readers


def test_a_runner_compiles_its_graph_once(tmp_path, monkeypatch):
    # Start (waiting for approval), status, approve: one compiled graph. A resume used to build
    # a probe graph and then the run's graph.
    from agents.config import load_settings
    from agents.runtime import runner as runner_module
    from agents.services.context import RunRequest

    path = tmp_path / "fast.toml"
    path.write_text(f'home = "{tmp_path / "home"}"\n[ml]\nrefit_every = 252\n[decision]\npolicy = "regime"\n')
    settings = load_settings(path)
    built: list[bool] = []
    real = runner_module.build_graph
    monkeypatch.setattr(runner_module, "build_graph", lambda ctx, **kw: built.append(kw["approve"]) or real(ctx, **kw))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        with runner_module.Runner(settings, Secrets.from_env({})) as runner:
            waiting = runner.start(RunRequest(("SP500",), as_of="2006-12-29", broker="paper", approve=True))
            assert waiting.status == "interrupted"
            assert runner.checkpoint_state(waiting.thread_id) == "waiting"
            done = runner.resume(waiting.thread_id, {"approved": True, "by": "test"})
    assert done.status == "completed" and "execution" in done.state["agents_ran"]
    assert built == [True]
