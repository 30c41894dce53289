"""The emergency stop: ``risk halt --cancel-open`` and ``risk flatten`` against the paper broker,
the Alpaca loopback stub and the command line (the bot's /flatten is in test_bot.py)."""

from __future__ import annotations

import io
import json
import sys
import warnings

import pytest

from agents.cli import main
from agents.config import Secrets, load_settings
from agents.services.emergency import flatten, flatten_client_order_id, halt_and_cancel
from agents.services.risk import RiskStateStore
from analytics import DataQualityWarning
from analytics.risk_gate import RiskState
from integrations import Journal, TransientError
from integrations.brokers import BrokerError, OrderRequest, PaperBroker
from tests.integrations.test_brokers_alpaca import AlpacaStub

warnings.filterwarnings("ignore", category=DataQualityWarning)

AS_OF = "2004-12-31"
SP, NQ = 1211.92, 2175.44  # the embedded closes on AS_OF
BAR = "2004-12-31T00:00:00+00:00"


def _settings(tmp_path, monkeypatch, extra: str = ""):
    path = tmp_path / "flatten.toml"
    path.write_text(extra)
    monkeypatch.setenv("REGIMEDESK_CONFIG", str(path))
    return load_settings(path)


def _paper(settings, fill: str = "last") -> PaperBroker:
    settings.home_dir.mkdir(parents=True, exist_ok=True)
    p = settings.broker.paper
    return PaperBroker(settings.home_dir / "paper_broker.sqlite", initial_cash=p.initial_cash,
                       slippage_bps=p.slippage_bps, commission_bps=p.commission_bps, fill=fill)


def _seed(settings, *, fill: str = "last") -> None:
    """Long 10 SP500, short 5 NASDAQ, and a resting limit buy of SP500 far below the market."""
    with _paper(settings, fill) as b:
        assert b.submit(OrderRequest("seed-long", "SP500", "buy", 10, reference_price=SP)).status == "filled"
        assert b.submit(OrderRequest("seed-short", "NASDAQ", "sell", 5, reference_price=NQ)).status == "filled"
        rest = b.submit(OrderRequest("seed-limit", "SP500", "buy", 3, order_type="limit", limit_price=500.0,
                           reference_price=SP))
        assert rest.status == "accepted"


def _journal_orders(settings, run_id: str | None = None) -> list[dict]:
    with Journal(settings.home_dir / "journal.sqlite") as j:
        sql = "SELECT run_id, client_order_id, symbol, side, qty, status FROM orders"
        rows = j._query(sql + (" WHERE run_id = ?" if run_id else "") + " ORDER BY id", (run_id,) if run_id else ())
    return rows


SECRETS = Secrets.from_env({})


# ------------------------------------------------------------------ paper broker


def test_flatten_cancels_closes_halts_and_journals(tmp_path, monkeypatch):
    settings = _settings(tmp_path, monkeypatch)
    _seed(settings)
    res = flatten(settings, SECRETS, "paper", reason="market crash", by="tester", as_of=AS_OF)
    assert res.complete and not res.errors and not res.rejected
    assert [(o["client_order_id"], o["status"]) for o in res.cancelled] == [("seed-limit", "canceled")]
    sent = {o["symbol"]: o for o in res.sent}
    assert (sent["SP500"]["side"], sent["SP500"]["qty"], sent["SP500"]["status"]) == ("sell", 10.0, "filled")
    assert (sent["NASDAQ"]["side"], sent["NASDAQ"]["qty"], sent["NASDAQ"]["status"]) == ("buy", 5.0, "filled")
    assert sent["SP500"]["client_order_id"] == flatten_client_order_id("regimedesk", "SP500", BAR, "sell")
    with _paper(settings) as b:
        assert b.positions() == {} and b.open_orders() == []
    # halted, with the reason and the person, and it stays halted
    store = RiskStateStore(settings.home_dir / "risk.sqlite")
    try:
        st = store.load()
        assert (st.trading_state, st.reason) == ("HALTED", "market crash")
        (event,) = store.events()
        assert (event["from"], event["to"], event["by"], event["reason"]) == ("ACTIVE", "HALTED", "tester",
                                                                              "market crash")
    finally:
        store.close()
    assert res.trading_state == "HALTED" and res.by == "tester"
    # journal: the cancel, and each close journaled 'submitting' before the broker's answer
    rows = _journal_orders(settings, res.run_id)
    assert [(r["client_order_id"], r["status"]) for r in rows if r["client_order_id"] == "seed-limit"] == [
        ("seed-limit", "canceled")]
    for o in res.sent:
        assert [r["status"] for r in rows if r["client_order_id"] == o["client_order_id"]] == ["submitting", "filled"]
    with Journal(settings.home_dir / "journal.sqlite") as j:
        run = j.get_run(res.run_id)
        assert run.status == "completed" and run.thread_id == f"flatten-{res.run_id}"
        assert sorted(run.symbols) == ["NASDAQ", "SP500"]
        doc = j.show_run(res.run_id)
        assert sorted(v["verdict"] for v in doc["verdicts"]) == ["approve", "approve"]
        assert len(doc["fills"]) == 2

    # a second run finds nothing to do and sends nothing
    again = flatten(settings, SECRETS, "paper", reason="again", by="tester", as_of=AS_OF)
    assert again.complete and again.sent == () and again.cancelled == () and again.rejected == ()
    with _paper(settings) as b:
        assert len(b.orders()) == 3 + 2


def test_longs_are_sold_before_shorts_are_bought_back(tmp_path, monkeypatch):
    """Little cash: buying back the short (at the 2018 price) needs the proceeds of the long."""
    settings = _settings(tmp_path, monkeypatch, "[broker.paper]\ninitial_cash = 20000\n")
    _seed(settings)
    res = flatten(settings, SECRETS, "paper", reason="crash", by="tester")  # builtin data to 2018
    assert res.complete, res.rejected
    assert [(o["symbol"], o["side"], o["status"]) for o in res.sent] == [("SP500", "sell", "filled"),
                                                                         ("NASDAQ", "buy", "filled")]
    with _paper(settings) as b:
        assert b.positions() == {}


def test_a_close_the_broker_refuses_is_reported_not_sent(tmp_path, monkeypatch):
    # short only; at the 2018 price the equity is still positive but, with a 10% commission,
    # the cash does not cover buying it back
    settings = _settings(tmp_path, monkeypatch, "[broker.paper]\ninitial_cash = 25200\ncommission_bps = 1000\n")
    with _paper(settings) as b:
        assert b.submit(OrderRequest("seed-short", "NASDAQ", "sell", 5, reference_price=NQ)).status == "filled"
    res = flatten(settings, SECRETS, "paper", reason="crash", by="tester")
    assert not res.complete and res.sent == ()
    (rej,) = res.rejected
    assert rej["symbol"] == "NASDAQ" and rej["reasons"][0].startswith("broker_rejected: insufficient cash")


def test_rerun_leaves_working_closes_alone_and_sends_nothing_twice(tmp_path, monkeypatch):
    """Paper fill 'next_open': the closes stay open; a re-run keeps them and sends no second close."""
    settings = _settings(tmp_path, monkeypatch, "[broker.paper]\nfill = 'next_open'\n")
    _seed(settings)
    first = flatten(settings, SECRETS, "paper", reason="r1", by="tester", as_of=AS_OF)
    assert first.complete and sorted(o["status"] for o in first.sent) == ["accepted", "accepted"]
    second = flatten(settings, SECRETS, "paper", reason="r2", by="tester", as_of=AS_OF)
    assert second.complete and second.sent == () and second.cancelled == ()
    assert sorted(o["client_order_id"] for o in second.kept) == sorted(o["client_order_id"] for o in first.sent)
    with _paper(settings, "next_open") as b:
        assert len(b.orders()) == 3 + 2
        assert {o.client_order_id for o in b.open_orders()} == {o["client_order_id"] for o in first.sent}
        b.process_bar("SP500", "2005-01-03T00:00:00+00:00", 1211.92)  # the next bar: they fill
        b.process_bar("NASDAQ", "2005-01-03T00:00:00+00:00", 2175.44)
        assert b.positions() == {}


def test_crash_between_journal_and_broker_is_settled_then_sent_once(tmp_path, monkeypatch):
    settings = _settings(tmp_path, monkeypatch)
    _seed(settings)
    real = PaperBroker.submit
    calls = []

    def lost(self, order):  # the order never reaches the broker: the connection dropped
        calls.append(order.client_order_id)
        if order.symbol == "NASDAQ" and calls.count(order.client_order_id) == 1:
            raise TransientError("connection reset")
        return real(self, order)

    monkeypatch.setattr(PaperBroker, "submit", lost)
    first = flatten(settings, SECRETS, "paper", reason="r1", by="tester", as_of=AS_OF)
    assert not first.complete and [o["symbol"] for o in first.sent] == ["SP500"]
    assert any("NASDAQ" in e and "connection reset" in e for e in first.errors)
    nq = flatten_client_order_id("regimedesk", "NASDAQ", BAR, "buy")
    assert [r["status"] for r in _journal_orders(settings) if r["client_order_id"] == nq] == ["submitting"]

    second = flatten(settings, SECRETS, "paper", reason="r2", by="tester", as_of=AS_OF)
    assert second.complete
    assert [(s["client_order_id"], s["action"]) for s in second.settled] == [(nq, "cancelled (never sent)")]
    assert [(o["client_order_id"], o["status"]) for o in second.sent] == [(nq, "filled")]
    assert [r["status"] for r in _journal_orders(settings) if r["client_order_id"] == nq] == [
        "submitting", "canceled", "submitting", "filled"]
    with _paper(settings) as b:
        assert b.positions() == {}
        assert [o.client_order_id for o in b.orders()].count(nq) == 1


def test_exit_mode_ignores_the_breakers_but_not_a_pending_order_that_could_cross_zero(tmp_path, monkeypatch):
    settings = _settings(tmp_path, monkeypatch)
    _seed(settings)
    with _paper(settings) as b:  # a sell that cannot be cancelled: closing 10 more would go short
        b.submit(OrderRequest("stuck-sell", "SP500", "sell", 4, order_type="limit", limit_price=5000.0,
                                  reference_price=SP))
    # a day that started with far more equity: the daily-loss breaker would halt a normal evaluation
    store = RiskStateStore(settings.home_dir / "risk.sqlite")
    store.save(RiskState("ACTIVE", None, "2005-01-01", 1e9, 1e9))
    store.close()
    real_cancel = PaperBroker.cancel

    def cancel(self, coid):
        if coid == "stuck-sell":
            raise BrokerError("the venue refused the cancel")
        return real_cancel(self, coid)

    monkeypatch.setattr(PaperBroker, "cancel", cancel)
    res = flatten(settings, SECRETS, "paper", reason="crash", by="tester", as_of=AS_OF)
    assert not res.complete
    assert [o["client_order_id"] for o in res.cancelled] == ["seed-limit"]
    assert any("stuck-sell" in e and "refused the cancel" in e for e in res.errors)
    (rej,) = res.rejected
    assert (rej["symbol"], rej["side"], rej["qty"], rej["reasons"]) == ("SP500", "sell", 10.0, ["reducing_only"])
    assert [(o["symbol"], o["side"], o["status"]) for o in res.sent] == [("NASDAQ", "buy", "filled")]
    with _paper(settings) as b:
        assert b.positions()["SP500"].qty == 10.0 and "NASDAQ" not in b.positions()


def test_a_position_without_a_price_rejects_every_close(tmp_path, monkeypatch):
    settings = _settings(tmp_path, monkeypatch)
    _seed(settings)
    with _paper(settings) as b:
        b.submit(OrderRequest("seed-zz", "ZZZZ", "buy", 2, reference_price=10.0))
    res = flatten(settings, SECRETS, "paper", reason="crash", by="tester", as_of=AS_OF)
    assert not res.complete and res.sent == ()
    assert {r["symbol"] for r in res.rejected} == {"SP500", "NASDAQ", "ZZZZ"}
    assert all(r["reasons"] == ["missing_price:ZZZZ"] for r in res.rejected)
    assert res.trading_state == "HALTED" and res.reason == "crash"
    with _paper(settings) as b:
        assert {s: p.qty for s, p in b.positions().items()} == {"SP500": 10.0, "NASDAQ": -5.0, "ZZZZ": 2.0}


def test_halt_cancel_open_keeps_positions(tmp_path, monkeypatch):
    settings = _settings(tmp_path, monkeypatch)
    _seed(settings)
    run_id, out = halt_and_cancel(settings, SECRETS, "paper", reason="stop", by="tester")
    assert [(o["client_order_id"], o["status"]) for o in out.cancelled] == [("seed-limit", "canceled")]
    assert [r["status"] for r in _journal_orders(settings, run_id)] == ["canceled"]
    with _paper(settings) as b:
        assert b.open_orders() == [] and set(b.positions()) == {"SP500", "NASDAQ"}
    with pytest.raises(ValueError, match="broker must be one of"):
        halt_and_cancel(settings, SECRETS, "ibkr", reason="x", by="tester")


# ------------------------------------------------------------------ Alpaca (loopback stub)


def test_flatten_at_alpaca(tmp_path, monkeypatch, httpserver):
    stub = AlpacaStub(httpserver)
    stub.positions = [stub._position("SP500", "10", "long", "1200", "1211.92"),
                      stub._position("NASDAQ", "-3", "short", "2200", "2175.44")]
    stub.record({"client_order_id": "manual-1", "symbol": "SP500", "qty": 2, "side": "buy", "type": "limit",
                 "time_in_force": "day", "limit_price": "900"})
    settings = _settings(tmp_path, monkeypatch, f"[broker.alpaca]\nbase_url = '{stub.base}'\n")
    secrets = Secrets.from_env({"ALPACA_API_KEY": "kid", "ALPACA_SECRET_KEY": "sec"})
    res = flatten(settings, secrets, "alpaca", reason="crash", by="tester", as_of=AS_OF)
    assert res.complete
    assert [(o["client_order_id"], o["status"]) for o in res.cancelled] == [("manual-1", "canceled")]
    assert stub.orders["manual-1"]["status"] == "canceled" and stub.deletes == 1
    sent = {o["symbol"]: o for o in res.sent}
    for sym, side, qty in (("SP500", "sell", 10.0), ("NASDAQ", "buy", 3.0)):
        at = stub.orders[sent[sym]["client_order_id"]]
        assert (at["side"], float(at["qty"]), at["type"]) == (side, qty, "market")
        assert sent[sym]["status"] == "new"  # pending_new: reported as submitted
    assert stub.posts == 2
    assert {r["status"] for r in _journal_orders(settings, res.run_id) if r["client_order_id"] != "manual-1"} == {
        "submitting", "new"}
    # the stub's positions do not move; a re-run keeps the working closes and posts nothing
    again = flatten(settings, secrets, "alpaca", reason="again", by="tester", as_of=AS_OF)
    assert again.complete and again.sent == () and again.cancelled == () and len(again.kept) == 2
    assert stub.posts == 2 and stub.deletes == 1


# ------------------------------------------------------------------ command line


def test_cli_flatten_json_and_human(tmp_path, monkeypatch, capsys):
    settings = _settings(tmp_path, monkeypatch)
    _seed(settings)
    assert main(["risk", "flatten", "--yes", "--json", "--as-of", AS_OF, "--reason", "cli test"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["complete"] and doc["trading_state"] == "HALTED" and doc["by"] == "cli"
    assert len(doc["sent"]) == 2 and [o["client_order_id"] for o in doc["cancelled"]] == ["seed-limit"]
    assert main(["risk", "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["reason"] == "cli test"
    # human output of a flatten that cannot close everything: exit code 1, the reason shown
    with _paper(settings) as b:
        b.submit(OrderRequest("seed-zz", "ZZZZ", "buy", 2, reference_price=10.0))
    assert main(["risk", "flatten", "--yes", "--as-of", AS_OF]) == 1
    out = capsys.readouterr().out
    assert "NOT closed, 1 position(s)" in out and "missing_price:ZZZZ" in out
    assert "trading state HALTED: emergency flatten (by cli)" in out


def test_cli_flatten_confirmation(tmp_path, monkeypatch, capsys):
    settings = _settings(tmp_path, monkeypatch)
    _seed(settings)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # not a terminal
    assert main(["risk", "flatten"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "refusing to flatten without confirmation" in err and "--yes" in err

    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdin", Tty("n\n"))
    assert main(["risk", "flatten", "--as-of", AS_OF]) == 1
    err = capsys.readouterr().err
    assert "2 position(s) to close" in err and "sell 10 SP500" in err and "cancel buy 3 SP500" in err
    assert "nothing was done" in err
    with _paper(settings) as b:
        assert len(b.positions()) == 2 and len(b.open_orders()) == 1
    store = RiskStateStore(settings.home_dir / "risk.sqlite")
    assert store.load().trading_state == "ACTIVE"
    store.close()
    monkeypatch.setattr(sys, "stdin", Tty("y\n"))
    assert main(["risk", "flatten", "--as-of", AS_OF]) == 0
    assert "sent 2 closing order(s)" in capsys.readouterr().out
    with _paper(settings) as b:
        assert b.positions() == {}


def test_cli_halt_cancel_open(tmp_path, monkeypatch, capsys):
    settings = _settings(tmp_path, monkeypatch)
    _seed(settings)
    assert main(["risk", "halt", "--broker", "paper"]) == 2
    assert "--broker only goes with --cancel-open" in capsys.readouterr().err
    assert main(["risk", "halt", "--cancel-open", "--reason", "stop all"]) == 0
    out = capsys.readouterr().out
    assert "trading state HALTED: stop all" in out and "cancelled 1 open order(s) at paper" in out
    assert "seed-limit" in out
    with _paper(settings) as b:
        assert b.open_orders() == [] and len(b.positions()) == 2


@pytest.mark.parametrize("command", [["risk", "halt", "--cancel-open", "--broker", "alpaca", "--reason", "stop"],
                                     ["risk", "flatten", "--broker", "alpaca", "--yes", "--reason", "stop"]])
def test_a_broker_failure_after_the_halt_says_the_halt_took_effect(tmp_path, monkeypatch, capsys, command):
    # Found by review: without Alpaca keys the state became HALTED but the only line printed was
    # the key error, so the user could not tell whether the kill switch had worked.
    _settings(tmp_path, monkeypatch)
    assert main(command) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "trading is HALTED (stop)" in err and "alpaca" in err and "API key" in err
    assert main(["risk", "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["trading_state"] == "HALTED"
