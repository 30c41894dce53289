"""The SQLite paper broker: fills, costs, limits, idempotency, persistence, positions."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from integrations.brokers import (
    MAX_CLIENT_ORDER_ID_LENGTH,
    PAPER_SCHEMA_VERSION,
    Broker,
    BrokerError,
    OrderRequest,
    PaperBroker,
    UnknownOrderError,
    client_order_id,
)


def _order(coid="o1", side="buy", qty=10.0, ref=100.0, **kw):
    return OrderRequest(client_order_id=coid, symbol="SPY", side=side, qty=qty, reference_price=ref, **kw)


@pytest.fixture
def db(tmp_path):
    return tmp_path / "paper" / "account.sqlite"


# ----------------------------------------------------------------------------- fills and costs


def test_buy_fills_at_last_price_with_slippage_and_commission(db):
    broker = PaperBroker(db, initial_cash=10_000.0, slippage_bps=5.0, commission_bps=10.0,
                         commission_per_order=1.0)
    assert isinstance(broker, Broker) and broker.name == "paper"
    status = broker.submit(_order(bar_time="2024-01-02T21:00:00+00:00"))
    assert status.status == "filled" and not status.is_open
    assert status.filled_qty == 10.0 and status.broker_order_id == "paper-1"
    assert status.avg_fill_price == pytest.approx(100.05, abs=1e-12)  # 100 * (1 + 5bp)
    (fill,) = broker.fills("o1")
    assert fill.qty == 10.0 and fill.price == pytest.approx(100.05, abs=1e-12)
    assert fill.commission == pytest.approx(1000.5 * 0.001 + 1.0, abs=1e-12)  # 2.0005
    assert fill.bar_time == "2024-01-02T21:00:00+00:00"
    acct = broker.account()
    assert acct.cash == pytest.approx(10_000.0 - 1000.5 - 2.0005, abs=1e-9)  # 8997.4995
    assert acct.buying_power == acct.cash
    assert acct.equity == pytest.approx(acct.cash + 10 * 100.05, abs=1e-9)
    pos = broker.positions()["SPY"]
    assert (pos.qty, pos.avg_price, pos.market_price) == (10.0, pytest.approx(100.05), pytest.approx(100.05))

    sell = broker.submit(_order("o2", side="sell", qty=4.0, ref=110.0))
    assert sell.avg_fill_price == pytest.approx(110.0 * (1 - 5e-4), abs=1e-12)  # 109.945
    sell_commission = 4 * 109.945 * 0.001 + 1.0
    assert broker.fills("o2")[0].commission == pytest.approx(sell_commission, abs=1e-12)
    assert broker.account().cash == pytest.approx(8997.4995 + 4 * 109.945 - sell_commission, abs=1e-9)
    assert broker.positions()["SPY"].avg_price == pytest.approx(100.05)  # unchanged on decrease
    assert broker.realized_pnl("SPY") == pytest.approx(4 * (109.945 - 100.05), abs=1e-9)
    broker.mark("SPY", 120.0)
    acct = broker.account()
    assert acct.equity == pytest.approx(acct.cash + 6 * 120.0, abs=1e-9)
    assert [f.client_order_id for f in broker.fills()] == ["o1", "o2"]
    assert broker.positions()["SPY"].to_dict()["market_price"] == 120.0


def test_last_mode_needs_a_reference_price(db):
    broker = PaperBroker(db)
    status = broker.submit(_order(ref=None))
    assert status.status == "rejected" and "reference_price" in status.reason
    assert broker.fills() == [] and broker.account().cash == 100_000.0
    # the rejection is recorded: the same id again returns it and does not retry
    assert broker.submit(_order(ref=100.0)).status == "rejected"


def test_insufficient_cash_rejects_the_buy(db):
    broker = PaperBroker(db, initial_cash=1_000.0, slippage_bps=0.0, commission_per_order=1.0)
    status = broker.submit(_order(qty=10.0, ref=100.0))  # needs 1001
    assert status.status == "rejected" and "insufficient cash" in status.reason
    assert broker.account().cash == 1_000.0 and broker.positions() == {} and broker.fills() == []
    # exactly affordable
    assert broker.submit(_order("o2", qty=9.99, ref=100.0)).status == "filled"
    assert broker.account().cash == pytest.approx(0.0, abs=1e-9)


def test_short_selling_is_allowed_and_cash_goes_up(db):
    broker = PaperBroker(db, initial_cash=0.0, slippage_bps=0.0)
    assert broker.submit(_order(side="sell", qty=5.0, ref=50.0)).status == "filled"
    assert broker.positions()["SPY"].qty == -5.0 and broker.account().cash == 250.0
    broker.mark("SPY", 40.0)
    assert broker.account().equity == pytest.approx(250.0 - 200.0)


# ----------------------------------------------------------------------------- next_open and limits


def test_next_open_fills_at_the_next_bars_open(db):
    broker = PaperBroker(db, slippage_bps=10.0, fill="next_open")
    status = broker.submit(_order(ref=None, bar_time="2024-01-02T00:00:00+00:00"))
    assert status.status == "accepted" and status.is_open and status.filled_qty == 0.0
    assert [o.client_order_id for o in broker.open_orders()] == ["o1"]
    # the bar the order was decided on (and other symbols) do not fill it
    assert broker.process_bar("SPY", "2024-01-02T00:00:00+00:00", 90.0) == []
    assert broker.process_bar("QQQ", "2024-01-03T00:00:00Z", 90.0) == []
    (done,) = broker.process_bar("SPY", "2024-01-03T00:00:00Z", 101.0)
    assert done.status == "filled" and done.avg_fill_price == pytest.approx(101.0 * 1.001, abs=1e-12)
    assert broker.fills("o1")[0].bar_time == "2024-01-03T00:00:00Z"
    assert broker.open_orders() == []
    assert broker.process_bar("SPY", "2024-01-04T00:00:00Z", 102.0) == []
    assert broker.positions()["SPY"].market_price == 102.0


def test_next_open_checks_cash_at_the_fill(db):
    broker = PaperBroker(db, initial_cash=500.0, slippage_bps=0.0, fill="next_open")
    broker.submit(_order(qty=10.0, ref=None))
    (done,) = broker.process_bar("SPY", "2024-01-03", 60.0)  # naive time read as UTC
    assert done.status == "rejected" and "insufficient cash" in done.reason


def test_limit_orders(db):
    broker = PaperBroker(db, slippage_bps=10.0)
    # buy limit 100.05: slipped 100 * 1.001 = 100.1 > limit -> rests
    resting = broker.submit(_order("b1", ref=100.0, order_type="limit", limit_price=100.05))
    assert resting.status == "accepted" and broker.fills() == []
    # buy limit 100.1: slipped price within the limit -> fills at the slipped price
    filled = broker.submit(_order("b2", ref=100.0, order_type="limit", limit_price=100.2))
    assert filled.status == "filled" and filled.avg_fill_price == pytest.approx(100.1)
    # sell limit above the slipped price rests, below fills
    assert broker.submit(_order("s1", side="sell", qty=1, ref=100.0, order_type="limit",
                                limit_price=99.95)).status == "accepted"  # 99.9 < 99.95
    assert broker.submit(_order("s2", side="sell", qty=1, ref=100.0, order_type="limit",
                                limit_price=99.8)).status == "filled"
    # a later bar fills the resting orders whose limit it satisfies
    done = {o.client_order_id: o for o in broker.process_bar("SPY", "2024-01-05T00:00:00Z", 99.0)}
    assert done["b1"].status == "filled" and done["b1"].avg_fill_price == pytest.approx(99.099)
    assert done["s1"].status == "accepted"
    assert [o.client_order_id for o in broker.open_orders()] == ["s1"]


def test_malformed_requests_raise():
    with pytest.raises(ValueError, match="qty"):
        _order(qty=0)
    with pytest.raises(ValueError, match="qty"):
        _order(qty=float("nan"))
    with pytest.raises(ValueError, match="side"):
        _order(side="hold")
    with pytest.raises(ValueError, match="limit_price"):
        _order(order_type="limit")
    with pytest.raises(ValueError, match="48"):
        _order(coid="x" * 49)
    with pytest.raises(ValueError, match="fill"):
        PaperBroker(":memory:", fill="close")


# ----------------------------------------------------------------------------- idempotency and persistence


def test_submit_is_idempotent(db):
    broker = PaperBroker(db)
    first = broker.submit(_order())
    again = broker.submit(_order())
    assert again == first
    assert len(broker.orders()) == 1 and len(broker.fills()) == 1
    assert broker.positions()["SPY"].qty == 10.0


def test_concurrent_duplicate_submits_create_one_order(db):
    brokers = [PaperBroker(db) for _ in range(4)]  # separate connections, same file
    barrier = threading.Barrier(len(brokers))
    results = []

    def go(b):
        barrier.wait()
        results.append(b.submit(_order()))

    threads = [threading.Thread(target=go, args=(b,)) for b in brokers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r.broker_order_id for r in results}) == 1
    assert len(brokers[0].fills()) == 1 and brokers[0].positions()["SPY"].qty == 10.0


def test_state_survives_a_new_instance(db):
    broker = PaperBroker(db, initial_cash=50_000.0, slippage_bps=0.0, fill="next_open")
    broker.submit(_order("open1", ref=None))
    first = PaperBroker(db, initial_cash=50_000.0, slippage_bps=0.0)
    first.submit(_order("o1", qty=10.0, ref=100.0))
    broker.close()
    first.close()
    with pytest.raises(BrokerError, match="closed"):
        first.account()

    again = PaperBroker(db, initial_cash=1.0, slippage_bps=0.0)  # existing account wins
    assert again.account().cash == pytest.approx(49_000.0)
    assert again.positions()["SPY"].qty == 10.0
    assert [o.client_order_id for o in again.open_orders()] == ["open1"]
    assert again.submit(_order("o1", qty=10.0, ref=100.0)).status == "filled"
    assert len(again.fills()) == 1  # re-submission after the restart did not trade
    assert again.get_order("o1").filled_qty == 10.0 and again.get_order("nope") is None
    version = sqlite3.connect(db).execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
    assert version == PAPER_SCHEMA_VERSION
    assert sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_newer_schema_is_refused(db):
    PaperBroker(db).close()
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO schema_version VALUES (?, 'x')", (PAPER_SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(BrokerError, match="schema version"):
        PaperBroker(db)


# ----------------------------------------------------------------------------- positions


def test_average_price_and_flip_through_zero(db):
    broker = PaperBroker(db, slippage_bps=0.0)
    broker.submit(_order("a", qty=10, ref=100.0))
    broker.submit(_order("b", qty=30, ref=120.0))
    assert broker.positions()["SPY"].avg_price == pytest.approx(115.0)  # (1000 + 3600) / 40
    broker.submit(_order("c", side="sell", qty=20, ref=130.0))
    pos = broker.positions()["SPY"]
    assert pos.qty == 20 and pos.avg_price == pytest.approx(115.0)
    assert broker.realized_pnl("SPY") == pytest.approx(20 * 15.0)
    # sell 50 from +20: closes 20 at 110 (realises -100), opens -30 at 110
    broker.submit(_order("d", side="sell", qty=50, ref=110.0))
    pos = broker.positions()["SPY"]
    assert pos.qty == -30 and pos.avg_price == pytest.approx(110.0)
    assert broker.realized_pnl("SPY") == pytest.approx(300.0 - 100.0)
    # adding to the short averages; buying back through zero resets again
    broker.submit(_order("e", side="sell", qty=10, ref=90.0))
    assert broker.positions()["SPY"].avg_price == pytest.approx((30 * 110 + 10 * 90) / 40)
    broker.submit(_order("f", qty=45, ref=100.0))
    pos = broker.positions()["SPY"]
    assert pos.qty == 5 and pos.avg_price == pytest.approx(100.0)
    assert broker.realized_pnl() == pytest.approx(200.0 + 40 * (105.0 - 100.0))
    broker.submit(_order("g", side="sell", qty=5, ref=100.0))
    assert broker.positions() == {}  # flat positions are not listed
    cash = broker.account().cash
    assert cash == pytest.approx(100_000.0 + broker.realized_pnl())  # no costs configured
    assert broker.account().equity == pytest.approx(cash)


# ----------------------------------------------------------------------------- cancel


def test_cancel_open_orders_only(db):
    broker = PaperBroker(db, fill="next_open")
    broker.submit(_order("w", ref=None))
    canceled = broker.cancel("w")
    assert canceled.status == "canceled" and not canceled.is_open
    assert broker.open_orders() == []
    assert broker.process_bar("SPY", "2024-01-03T00:00:00Z", 100.0) == []
    assert broker.cancel("w").status == "canceled"

    last = PaperBroker(db)
    filled = last.submit(_order("f"))
    assert last.cancel("f") == filled  # a final order is returned unchanged
    with pytest.raises(UnknownOrderError):
        last.cancel("missing")


# ----------------------------------------------------------------------------- client order ids


def test_client_order_id_is_deterministic_short_and_distinct():
    base = ("trend-v1", "SPY", "2024-01-02T00:00:00+00:00", "buy")
    coid = client_order_id(*base)
    assert coid == client_order_id(*base)
    assert coid.startswith("rd-") and len(coid) == 43 <= MAX_CLIENT_ORDER_ID_LENGTH
    import hashlib

    assert coid == "rd-" + hashlib.sha256("|".join(base).encode()).hexdigest()[:40]
    variants = {
        client_order_id("trend-v2", *base[1:]),
        client_order_id(base[0], "QQQ", *base[2:]),
        client_order_id(base[0], base[1], "2024-01-03T00:00:00+00:00", base[3]),
        client_order_id(*base[:3], "sell"),
    }
    assert coid not in variants and len(variants) == 4
    with pytest.raises(ValueError):
        client_order_id("a|b", "SPY", "t", "buy")
    with pytest.raises(ValueError):
        client_order_id("s", "SPY", "t", "hold")
    OrderRequest(coid, "SPY", "buy", 1.0)  # fits


def test_a_fill_below_the_rounding_tolerance_leaves_a_flat_position_flat():
    # found by the 5-year live replay benchmark: a sub-tolerance quantity divided by zero
    from integrations.brokers._paper import _apply_fill

    assert _apply_fill(0.0, 0.0, 1.5, 5e-10, 100.0) == (0.0, 0.0, 1.5)
    assert _apply_fill(2.0, 10.0, 0.0, 1.0, 13.0) == (3.0, 11.0, 0.0)
