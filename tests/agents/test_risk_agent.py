"""Risk gate and execution in the graph: paper orders, no duplicates, crash reconciliation, kill switch."""

from __future__ import annotations

import json
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.bot import run_alerts
from agents.cli import main
from agents.config import Secrets, load_settings
from agents.graph.nodes import risk_gate as gate_node
from agents.runtime.runner import Runner
from agents.services.context import AppContext, RunRequest
from agents.services.risk import RECONCILE_ATTEMPTS, ReconcileError
from analytics import DataQualityWarning
from integrations import Journal, TransientError
from integrations.brokers import PaperBroker

warnings.filterwarnings("ignore", category=DataQualityWarning)

FAST = "[ml]\nrefit_every = 252\n[decision]\npolicy = \"regime\"\n"
AS_OF = "2006-12-29"  # a risk-on, calm regime: the policy wants to be invested


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    path = tmp_path / "fast.toml"
    path.write_text(FAST)
    monkeypatch.setenv("REGIMEDESK_CONFIG", str(path))
    return load_settings(path)


def _run(settings, **kw):
    with Runner(settings, Secrets.from_env({})) as r:
        out = r.start(RunRequest(("SP500",), as_of=AS_OF, broker="paper", **kw))
        events = r.journal._query("SELECT client_order_id, status FROM orders ORDER BY id")
    return out, events


def _paper(settings) -> PaperBroker:
    return PaperBroker(settings.home_dir / "paper_broker.sqlite")


def test_paper_run_sends_gated_orders_once(cfg):
    first, events = _run(cfg)
    dec = first.state["decision"]["symbols"]["SP500"]
    assert dec["target_weight"] > 0 and len(dec["orders"]) == 1
    verdict = first.state["risk_gate"]["symbols"]["SP500"][0]
    assert verdict["action"] in ("approve", "trim") and verdict["qty"] > 0
    sent = first.state["execution"]["symbols"]["SP500"][0]
    assert sent["status"] == "filled" and sent["qty"] == verdict["qty"]
    assert [e["status"] for e in events] == ["submitting", "filled"]  # journaled before sending
    second, events2 = _run(cfg)
    assert second.state["decision"]["symbols"]["SP500"]["orders"] == []  # already at target
    assert second.state["execution"]["symbols"] == {}
    with _paper(cfg) as b:
        assert len(b.orders()) == 1
        pos = b.positions()["SP500"].qty
    assert pos == verdict["qty"]
    assert len(events2) == 2


def test_crash_between_journal_and_send_is_reconciled(cfg, monkeypatch):
    real = PaperBroker.submit
    monkeypatch.setattr(PaperBroker, "submit", lambda self, order: (_ for _ in ()).throw(SystemExit("killed")))
    with pytest.raises(SystemExit):
        _run(cfg)
    monkeypatch.setattr(PaperBroker, "submit", real)
    with _paper(cfg) as b:
        assert b.orders() == []  # never reached the broker
    out, events = _run(cfg)  # the restart, for the same bar
    assert out.state["execution"]["reconciled"][0]["action"] == "sent after restart"
    verdict = out.state["risk_gate"]["symbols"]["SP500"]
    assert verdict == [] or verdict[0]["reasons"] == ["duplicate_order"]  # not sent a second time
    with _paper(cfg) as b:
        assert len(b.orders()) == 1 and b.orders()[0].status == "filled"
    assert [e["status"] for e in events] == ["submitting", "filled"]


def test_crash_after_the_broker_took_the_order_is_not_resent(cfg, monkeypatch):
    real = PaperBroker.submit

    def sent_then_killed(self, order):
        real(self, order)
        raise SystemExit("killed before the answer was journaled")

    monkeypatch.setattr(PaperBroker, "submit", sent_then_killed)
    with pytest.raises(SystemExit):
        _run(cfg)
    monkeypatch.setattr(PaperBroker, "submit", real)
    out, events = _run(cfg)
    assert out.state["execution"]["reconciled"][0]["action"] == "found at the broker"
    with _paper(cfg) as b:
        assert len(b.orders()) == 1


def test_an_order_that_cannot_be_settled_is_given_up_after_three_attempts(cfg, monkeypatch):
    real_submit, real_get = PaperBroker.submit, PaperBroker.get_order
    monkeypatch.setattr(PaperBroker, "submit", lambda self, order: (_ for _ in ()).throw(SystemExit("killed")))
    with pytest.raises(SystemExit):
        _run(cfg)  # leaves the order journaled 'submitting', never sent

    def broken(self, order):
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr(PaperBroker, "submit", broken)
    for attempt in (1, 2):
        with pytest.raises(ReconcileError, match=f"attempt {attempt} of {RECONCILE_ATTEMPTS}"):
            _run(cfg)
    # an unreachable broker says nothing about the order: not counted as an attempt
    monkeypatch.setattr(PaperBroker, "get_order", lambda self, coid: (_ for _ in ()).throw(TransientError("503")))
    with pytest.raises(TransientError):
        _run(cfg)
    monkeypatch.setattr(PaperBroker, "get_order", real_get)
    out, events = _run(cfg)
    (given_up,) = out.state["execution"]["reconciled"]
    assert given_up["action"] == "given up after 3 failed reconciliations" and given_up["status"] == "rejected"
    assert given_up["error"] == "ZeroDivisionError: float division by zero"
    with Journal(cfg.home_dir / "journal.sqlite") as j:
        alerts = run_alerts(j, out.run_id)
    assert any(a.startswith("Order given up BUY") and "after 3 attempts (ZeroDivisionError" in a for a in alerts)
    coid = given_up["client_order_id"]
    assert [e["status"] for e in events if e["client_order_id"] == coid][:4] == [
        "submitting", "reconcile_failed", "reconcile_failed", "rejected"]
    monkeypatch.setattr(PaperBroker, "submit", real_submit)
    again, _ = _run(cfg)  # later runs are no longer blocked by it
    assert again.state["execution"]["reconciled"] == []


def test_kill_switch_rejects_and_persists(cfg, capsys):
    assert main(["risk", "halt", "--reason", "test"]) == 0
    out, _ = _run(cfg)
    verdicts = out.state["risk_gate"]["symbols"]["SP500"]
    assert verdicts and all(v["reasons"] == ["halted"] for v in verdicts)
    assert out.state["execution"]["symbols"] == {}
    capsys.readouterr()
    assert main(["risk", "status", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["trading_state"] == "HALTED" and doc["history"][0]["to"] == "HALTED"
    assert main(["risk", "resume"]) == 0
    out, _ = _run(cfg)
    assert out.state["execution"]["symbols"]["SP500"][0]["status"] == "filled"
    capsys.readouterr()
    assert main(["positions", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["positions"][0]["symbol"] == "SP500"
    assert main(["orders", "--all", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["orders"]) == 1


def test_next_open_fills_at_the_following_bars_open(tmp_path, monkeypatch):
    path = tmp_path / "next.toml"
    path.write_text(FAST + '[broker.paper]\nfill = "next_open"\nslippage_bps = 0.0\n')
    monkeypatch.setenv("REGIMEDESK_CONFIG", str(path))
    settings = load_settings(path)
    first, _ = _run(settings)
    assert first.state["execution"]["symbols"]["SP500"][0]["status"] == "accepted"
    with Runner(settings, Secrets.from_env({})) as r:
        r.start(RunRequest(("SP500",), as_of="2007-01-03", broker="paper"))
    with _paper(settings) as b:
        order = b.orders()[0]
        assert order.status == "filled"
    opened = AppContext(settings, Secrets.from_env({})).bars({"source": "builtin", "as_of": "2007-01-03"})
    assert order.avg_fill_price == pytest.approx(float(opened.get("SP500", "MT").frame["open"].iloc[-1]))


def test_rejected_approval_sends_nothing(cfg):
    with Runner(cfg, Secrets.from_env({})) as r:
        pending = r.start(RunRequest(("SP500",), as_of=AS_OF, broker="paper", approve=True))
        assert pending.status == "interrupted"
        assert pending.pending["risk_gate"]["symbols"]["SP500"][0]["action"] in ("approve", "trim")
        done = r.resume(pending.thread_id, {"approved": False, "by": "test"})
    assert done.state["execution"]["symbols"] == {} and "rejected" in done.state["execution"]["note"]
    with _paper(cfg) as b:
        assert b.orders() == []


@pytest.fixture(scope="module")
def gate_world(tmp_path_factory):
    """A decided state (with proposed orders) to feed the gate node repeatedly.

    Module-scoped, so it runs before the per-test isolation of tests/conftest.py: its home
    is its own temp directory whatever REGIMEDESK_HOME the environment holds.
    """
    home = tmp_path_factory.mktemp("gate-home")
    path = home / "fast.toml"
    path.write_text(FAST)
    settings = load_settings(path, env={"REGIMEDESK_HOME": str(home)})
    assert settings.home_dir == home
    with Runner(settings, Secrets.from_env({})) as r:
        pending = r.start(RunRequest(("SP500",), as_of=AS_OF, broker="paper", approve=True))
    return settings, pending.state


class _FixedStore:
    def __init__(self, state):
        self.state = state

    def load(self):
        return self.state

    def save(self, *a, **k):
        pass

    def commit_gate(self, evaluate_fn, by="gate"):
        return evaluate_fn(self.state)

    def silent_feeds(self):
        return {}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=300))
def test_gate_verdicts_identical_whatever_llm_text_the_state_holds(gate_world, text):
    from analytics.risk_gate import RiskState

    settings, state = gate_world
    ctx = AppContext(settings, Secrets.from_env({}))
    ctx._risk_store = _FixedStore(RiskState())
    try:
        node = gate_node.make(ctx)
        base = node(dict(state)).output.to_state()
        hostile = dict(state)
        hostile["narratives"] = {a: {"SP500": {"text": text, "accepted": True}, "_run": {"text": text}}
                                 for a in ("regime", "statistics", "ml_signal", "decision")}
        got = node(hostile).output.to_state()
        # everything but the wall-clock time of the verdicts (used to refuse a late approval)
        assert got.pop("checked_at") >= base.pop("checked_at")
        assert got == base
        assert base["symbols"]["SP500"][0]["action"] in ("approve", "trim")
    finally:
        ctx._risk_store = None
        ctx.close()
