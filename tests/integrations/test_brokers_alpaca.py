"""AlpacaBroker with the real alpaca-py TradingClient against a stateful loopback stub.

The stub keeps orders like Alpaca does: one per ``client_order_id`` (a duplicate POST gets
HTTP 422 "client_order_id must be unique"), looked up by ``/v2/orders:by_client_order_id``.
Faults are injected per request to check that the broker never creates an order twice.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from datetime import UTC, datetime
from urllib.parse import parse_qs

import pytest
from werkzeug import Request, Response

from integrations import MissingCredentialsError, PermanentError, TransientError
from integrations.brokers import (
    ALPACA_STATUS_MAP,
    ORDER_STATUSES,
    AlpacaBroker,
    Broker,
    BrokerConfigError,
    OrderRejectedError,
    OrderRequest,
    UnknownOrderError,
    client_order_id,
)
from integrations.brokers._alpaca import _normalise_status

OPEN = {"new", "pending_new", "accepted", "partially_filled", "held", "done_for_day",
        "pending_cancel", "pending_replace", "accepted_for_bidding", "stopped", "suspended",
        "calculated", "pending_review"}


def _json(body, status=200):
    return Response(json.dumps(body), status=status, content_type="application/json")


class AlpacaStub:
    """Just enough of Alpaca's trading API v2, with fault injection."""

    def __init__(self, httpserver):
        self.orders: dict[str, dict] = {}  # client_order_id -> order JSON
        self.posts = 0
        self.lookups = 0
        self.deletes = 0
        self.post_faults: list = []  # callables(request) -> Response | None, consumed per POST
        self.lookup_faults: list = []
        self.new_status = "pending_new"
        self.release = threading.Event()
        self.positions = [
            self._position("SPY", "10", "long", "400.5", "410.25"),
            self._position("QQQ", "-3", "short", "350", "340"),
        ]
        self.account = {
            "id": str(uuid.uuid4()), "account_number": "PA123", "status": "ACTIVE", "currency": "USD",
            "cash": "12345.67", "equity": "15000.5", "buying_power": "24691.34",
            "portfolio_value": "15000.5", "pattern_day_trader": False, "trading_blocked": False,
            "transfers_blocked": False, "account_blocked": False, "shorting_enabled": True,
            "multiplier": "2", "created_at": "2023-01-01T00:00:00Z",
        }
        httpserver.expect_request("/v2/orders", method="POST").respond_with_handler(self._authed(self.post))
        httpserver.expect_request("/v2/orders:by_client_order_id", method="GET").respond_with_handler(
            self._authed(self.lookup))
        httpserver.expect_request("/v2/orders", method="GET").respond_with_handler(self._authed(self.list))
        httpserver.expect_request(re.compile(r"^/v2/orders/[0-9a-f-]+$"), method="DELETE").respond_with_handler(
            self._authed(self.delete))
        httpserver.expect_request("/v2/positions", method="GET").respond_with_handler(
            self._authed(lambda r: _json(self.positions)))
        httpserver.expect_request("/v2/account", method="GET").respond_with_handler(
            self._authed(lambda r: _json(self.account)))
        self.base = httpserver.url_for("").rstrip("/")

    @staticmethod
    def _authed(fn):
        def handler(request: Request):
            if request.headers.get("APCA-API-KEY-ID") != "kid" or request.headers.get("APCA-API-SECRET-KEY") != "sec":
                return _json({"code": 40310000, "message": "forbidden"}, 403)
            return fn(request)
        return handler

    @staticmethod
    def _position(symbol, qty, side, avg, price):
        return {"asset_id": str(uuid.uuid4()), "symbol": symbol, "exchange": "NASDAQ",
                "asset_class": "us_equity", "asset_marginable": True, "avg_entry_price": avg,
                "qty": qty, "side": side, "market_value": "0", "cost_basis": "0",
                "unrealized_pl": "0", "unrealized_plpc": "0", "current_price": price,
                "lastday_price": price, "change_today": "0", "qty_available": qty}

    def record(self, body: dict) -> dict:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        order = {
            "id": str(uuid.uuid4()), "client_order_id": body["client_order_id"],
            "created_at": now, "updated_at": now, "submitted_at": now, "filled_at": None,
            "expired_at": None, "canceled_at": None, "failed_at": None, "replaced_at": None,
            "replaced_by": None, "replaces": None, "asset_id": str(uuid.uuid4()),
            "symbol": body["symbol"], "asset_class": "us_equity", "notional": None,
            "qty": str(body["qty"]), "filled_qty": "0", "filled_avg_price": None,
            "order_class": "", "order_type": body["type"], "type": body["type"],
            "side": body["side"], "time_in_force": body["time_in_force"],
            "limit_price": body.get("limit_price"), "stop_price": None, "status": self.new_status,
            "extended_hours": False, "legs": None, "trail_percent": None, "trail_price": None,
            "hwm": None, "position_intent": "buy_to_open" if body["side"] == "buy" else "sell_to_close",
        }
        self.orders[order["client_order_id"]] = order
        return order

    def post(self, request: Request):
        self.posts += 1
        body = json.loads(request.get_data())
        if self.post_faults:
            fault = self.post_faults.pop(0)(request, body)
            if fault is not None:
                return fault
        if body.get("client_order_id") in self.orders:
            return _json({"code": 40010001, "message": "client_order_id must be unique"}, 422)
        return _json(self.record(body))

    def lookup(self, request: Request):
        self.lookups += 1
        if self.lookup_faults:
            fault = self.lookup_faults.pop(0)(request)
            if fault is not None:
                return fault
        coid = parse_qs(request.query_string.decode())["client_order_id"][0]
        if coid not in self.orders:
            return _json({"code": 40410000, "message": "order not found"}, 404)
        return _json(self.orders[coid])

    def list(self, request: Request):
        q = parse_qs(request.query_string.decode())
        assert q.get("status") == ["open"]
        return _json([o for o in self.orders.values() if o["status"] in OPEN])

    def delete(self, request: Request):
        self.deletes += 1
        order_id = request.path.rsplit("/", 1)[1]
        for order in self.orders.values():
            if order["id"] == order_id:
                if order["status"] not in OPEN:
                    return _json({"code": 42210000, "message": "order is not cancelable"}, 422)
                order["status"] = "canceled"
                return Response(status=204)
        return _json({"code": 40410000, "message": "order not found"}, 404)


@pytest.fixture
def stub(httpserver):
    s = AlpacaStub(httpserver)
    yield s
    s.release.set()  # never leave a handler blocked


def _broker(stub, **kw):
    kw.setdefault("retry_backoff", 0)
    return AlpacaBroker("kid", "sec", base_url=stub.base, **kw)


COID = client_order_id("trend", "SPY", "2024-01-02T00:00:00+00:00", "buy")
ORDER = OrderRequest(COID, "SPY", "buy", 10.0, reference_price=100.0)


# ----------------------------------------------------------------------------- happy path


def test_submit_market_and_limit(stub):
    broker = _broker(stub)
    assert isinstance(broker, Broker) and broker.name == "alpaca-paper"
    status = broker.submit(ORDER)
    assert status.client_order_id == COID and status.symbol == "SPY" and status.side == "buy"
    assert status.qty == 10.0 and status.filled_qty == 0.0 and status.avg_fill_price is None
    assert status.status == "new" and status.is_open  # pending_new
    assert status.broker_order_id == stub.orders[COID]["id"]
    assert stub.posts == 1 and stub.lookups == 1  # looked up once before sending
    limit = broker.submit(OrderRequest("lim-1", "QQQ", "sell", 2.5, order_type="limit", limit_price=401.5))
    sent = stub.orders["lim-1"]
    assert (sent["type"], sent["time_in_force"], sent["side"], sent["qty"]) == ("limit", "day", "sell", "2.5")
    assert float(sent["limit_price"]) == 401.5 and limit.status == "new"
    assert [o.client_order_id for o in broker.open_orders()] == [COID, "lim-1"]
    assert broker.get_order(COID) == status


def test_get_order_unknown_is_none(stub):
    assert _broker(stub).get_order("never-sent") is None


def test_positions_and_account_are_parsed(stub):
    broker = _broker(stub)
    pos = broker.positions()
    assert set(pos) == {"SPY", "QQQ"}
    assert (pos["SPY"].qty, pos["SPY"].avg_price, pos["SPY"].market_price) == (10.0, 400.5, 410.25)
    assert pos["QQQ"].qty == -3.0 and pos["QQQ"].avg_price == 350.0
    acct = broker.account()
    assert (acct.cash, acct.equity, acct.buying_power) == (12345.67, 15000.5, 24691.34)


def test_cancel(stub):
    broker = _broker(stub)
    broker.submit(ORDER)
    canceled = broker.cancel(COID)
    assert canceled.status == "canceled" and not canceled.is_open and stub.deletes == 1
    assert broker.cancel(COID).status == "canceled" and stub.deletes == 1  # final: not re-sent
    assert broker.open_orders() == []
    with pytest.raises(UnknownOrderError):
        broker.cancel("missing")


# ----------------------------------------------------------------------------- faults: no duplicates


def test_lost_response_after_500_does_not_duplicate(stub):
    def recorded_then_500(request, body):
        stub.record(body)  # Alpaca took the order, but the answer never arrives
        return _json({"message": "internal server error"}, 500)

    stub.post_faults.append(recorded_then_500)
    status = _broker(stub).submit(ORDER)
    assert status.client_order_id == COID and status.broker_order_id == stub.orders[COID]["id"]
    assert len(stub.orders) == 1 and stub.posts == 1  # found by lookup, never resent
    assert stub.lookups == 2


@pytest.mark.parametrize("code", [500, 503, 504, 429])
def test_failure_before_recording_is_resent_once(stub, code):
    stub.post_faults.append(lambda request, body: _json({"message": "try later"}, code))
    status = _broker(stub).submit(ORDER)
    assert status.status == "new" and len(stub.orders) == 1 and stub.posts == 2
    assert stub.lookups == 2  # before sending, and after the failure (404) before resending


def test_timeout_after_recording_does_not_duplicate(stub, caplog):
    def recorded_then_hang(request, body):
        stub.record(body)
        stub.release.wait(30)  # hold the answer until the client has given up
        return _json({"message": "too late"}, 500)

    stub.post_faults.append(recorded_then_hang)
    waits = []

    def sleep(seconds):  # the broker's backoff: the moment to let the stuck handler go
        waits.append(seconds)
        stub.release.set()

    broker = _broker(stub, timeout=0.5, sleep=sleep)
    status = broker.submit(ORDER)
    assert status.broker_order_id == stub.orders[COID]["id"]
    assert len(stub.orders) == 1 and stub.posts == 1 and waits == [0]
    assert "ReadTimeout" in caplog.text  # the POST really timed out on the client side


def test_restart_resubmits_same_id_without_duplicate(stub):
    first = _broker(stub).submit(ORDER)
    restarted = _broker(stub)  # a new process after a crash
    again = restarted.submit(ORDER)
    assert again.broker_order_id == first.broker_order_id
    assert len(stub.orders) == 1 and stub.posts == 1


def test_duplicate_id_422_returns_the_existing_order(stub):
    first = _broker(stub).submit(ORDER)
    # the pre-send lookup misses (e.g. a lagging replica), so the POST goes out and gets 422
    stub.lookup_faults.append(lambda request: _json({"message": "order not found"}, 404))
    again = _broker(stub).submit(ORDER)
    assert again.broker_order_id == first.broker_order_id
    assert len(stub.orders) == 1 and stub.posts == 2


def test_unknown_state_is_transient_and_not_resent(stub):
    def recorded_then_502(request, body):
        stub.record(body)
        return _json({"message": "bad gateway"}, 502)

    stub.post_faults.append(recorded_then_502)
    broker = _broker(stub, retries=2)
    # first lookup (before sending) answers; every later one fails
    stub.lookup_faults.extend([lambda r: None] + [lambda r: _json({"message": "down"}, 503)] * 10)
    with pytest.raises(TransientError, match="not resent"):
        broker.submit(ORDER)
    assert stub.posts == 1 and len(stub.orders) == 1
    stub.lookup_faults.clear()
    assert broker.submit(ORDER).broker_order_id == stub.orders[COID]["id"] and stub.posts == 1


def test_exhausted_attempts_raise_transient(stub):
    stub.post_faults.extend([lambda r, b: _json({"message": "down"}, 500)] * 3)
    with pytest.raises(TransientError, match="3 submission attempts"):
        _broker(stub).submit(ORDER)
    assert stub.posts == 3 and stub.orders == {}


# ----------------------------------------------------------------------------- permanent errors and config


def test_403_is_permanent(stub):
    stub.post_faults.append(lambda r, b: _json({"code": 40310000, "message": "insufficient buying power"}, 403))
    with pytest.raises(OrderRejectedError, match="insufficient buying power"):
        _broker(stub).submit(ORDER)
    assert stub.posts == 1
    bad_keys = AlpacaBroker("kid", "wrong", base_url=stub.base, retry_backoff=0)
    with pytest.raises(PermanentError, match="ALPACA_API_KEY"):
        bad_keys.submit(ORDER)
    with pytest.raises(PermanentError, match="credentials"):
        bad_keys.account()
    assert stub.posts == 1


def test_422_other_than_duplicate_is_a_rejection(stub):
    stub.post_faults.append(lambda r, b: _json({"code": 42210000, "message": "qty must be integer"}, 422))
    with pytest.raises(OrderRejectedError, match="qty must be integer"):
        _broker(stub).submit(ORDER)
    assert stub.posts == 1


def test_live_needs_confirmation():
    with pytest.raises(BrokerConfigError, match="live_confirmed=True"):
        AlpacaBroker("kid", "sec", paper=False)
    assert issubclass(BrokerConfigError, PermanentError)
    live = AlpacaBroker("kid", "sec", paper=False, live_confirmed=True, base_url="http://127.0.0.1:9")
    assert live.name == "alpaca-live"
    assert AlpacaBroker("kid", "sec", live_confirmed=True).name == "alpaca-paper"


@pytest.mark.parametrize(("key", "secret", "variable"), [(None, "sec", "ALPACA_API_KEY"),
                                                         ("kid", "", "ALPACA_SECRET_KEY")])
def test_missing_keys(key, secret, variable):
    with pytest.raises(MissingCredentialsError, match=variable):
        AlpacaBroker(key, secret)


def test_unreachable_is_transient():
    broker = AlpacaBroker("kid", "sec", base_url="http://127.0.0.1:9", retries=2, retry_backoff=0, timeout=2)
    with pytest.raises(TransientError, match="alpaca"):
        broker.get_order("x")


def test_status_mapping():
    assert set(ALPACA_STATUS_MAP.values()) <= ORDER_STATUSES
    assert _normalise_status("pending_new", 10, 0) == "new"
    assert _normalise_status("done_for_day", 10, 0) == "accepted"
    assert _normalise_status("calculated", 10, 10) == "filled"
    assert _normalise_status("accepted", 10, 4) == "partially_filled"
    assert _normalise_status("replaced", 10, 0) == "canceled"
    assert _normalise_status("something_new", 10, 0) == "accepted"


# ----------------------------------------------------------------------------- echoed keys

ECHO_KEY = "PKECHO0123456789ABCD"
ECHO_SECRET = "sec/ECHO+0123456789abcdef="


def _echo(status):
    def handler(request: Request):
        key, secret = request.headers.get("APCA-API-KEY-ID"), request.headers.get("APCA-API-SECRET-KEY")
        return _json({"code": 40010000, "message": f"{status}: key {key} secret {secret} ({secret.lower()})"}, status)
    return handler


def _assert_no_keys(text: str) -> None:
    low = text.lower()
    for form in (ECHO_KEY, ECHO_SECRET, "sec%2fecho%2b0123456789abcdef%3d"):
        assert form.lower() not in low, text


@pytest.mark.parametrize("status", [401, 403, 422, 500])
def test_keys_echoed_by_alpaca_never_reach_an_error_or_a_log(httpserver, caplog, status):
    for path in ("/v2/orders:by_client_order_id", "/v2/orders", "/v2/account", "/v2/positions"):
        httpserver.expect_request(path).respond_with_handler(_echo(status))
    sleeps: list[float] = []
    broker = AlpacaBroker(ECHO_KEY, ECHO_SECRET, base_url=httpserver.url_for("").rstrip("/"), retries=2,
                          retry_backoff=0.5, sleep=sleeps.append)
    for call in (lambda: broker.submit(ORDER), broker.account, broker.positions, broker.open_orders):
        with pytest.raises((PermanentError, TransientError)) as info:
            call()
        assert f"{status}: key *** secret *** (***)" in str(info.value)
        _assert_no_keys(str(info.value))
    assert (sleeps != []) == (status == 500)  # only the 5xx answers were retried
    assert ECHO_SECRET in httpserver.log[0][0].headers.values()  # alpaca-py did send the secret
    _assert_no_keys(caplog.text)
