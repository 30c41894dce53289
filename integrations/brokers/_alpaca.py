"""Alpaca trading through ``alpaca-py``'s ``TradingClient``, idempotent under faults.

Orders are identified by their ``client_order_id``. :meth:`AlpacaBroker.submit` never sends an
order twice on its own account:

1. Before sending it looks the id up (``GET /v2/orders:by_client_order_id``); if Alpaca already
   has the order (a restart, a re-run decision) that order is returned.
2. After a transient failure of the ``POST`` (HTTP 429 or 5xx, a time-out, a dropped
   connection) the request may or may not have reached Alpaca, so it waits (backoff), looks the
   id up again and returns the order if it exists. Only a lookup answering 404 leads to a resend.
   If the lookup itself keeps failing, :class:`TransientError` is raised and nothing is resent.
3. An HTTP 422 saying the ``client_order_id`` must be unique means the order exists: it is
   looked up and returned.

Other 4xx answers are final: 401/403 about credentials raise :class:`PermanentError`, refusals
of the order itself (400, 403 "insufficient buying power", 422, ...) raise
:class:`OrderRejectedError` (a ``PermanentError``). Every error quotes Alpaca's message with
both keys redacted (:func:`integrations.redact`): a server may echo the key headers.

alpaca-py's own retry (it resends on 429/504 after sleeping 3 s) is switched off so that every
resend goes through the lookup above, and a per-request time-out is added (alpaca-py sets
none).

Status mapping (Alpaca -> normalised):

=====================================================================  ====================
``new``, ``pending_new``, ``pending_review``                           ``new``
``accepted``, ``accepted_for_bidding``, ``held``, ``done_for_day``,    ``accepted``
``stopped``, ``suspended``, ``calculated``, ``pending_cancel``,
``pending_replace``
``partially_filled``                                                   ``partially_filled``
``filled``                                                             ``filled``
``canceled``, ``replaced``                                             ``canceled``
``rejected``                                                           ``rejected``
``expired``                                                            ``expired``
=====================================================================  ====================

An order mapped to ``new``/``accepted`` that reports ``0 < filled_qty < qty`` is
``partially_filled``, and one reporting ``filled_qty >= qty`` is ``filled``. A status this code
does not know is logged and treated as ``accepted`` (still open), so callers keep watching it.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from typing import Any, TypeVar

from integrations._errors import MissingCredentialsError, PermanentError, TransientError
from integrations._redact import redact
from integrations._retry import call_with_retry
from integrations.brokers._base import (
    Account,
    BrokerConfigError,
    BrokerError,
    OrderRejectedError,
    OrderRequest,
    OrderStatus,
    Position,
    UnknownOrderError,
)

__all__ = ["AlpacaBroker", "ALPACA_STATUS_MAP"]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Alpaca order status -> normalised status (see the module notes for the fill refinements).
ALPACA_STATUS_MAP: dict[str, str] = {
    "new": "new",
    "pending_new": "new",
    "pending_review": "new",
    "accepted": "accepted",
    "accepted_for_bidding": "accepted",
    "held": "accepted",
    "done_for_day": "accepted",
    "stopped": "accepted",
    "suspended": "accepted",
    "calculated": "accepted",
    "pending_cancel": "accepted",
    "pending_replace": "accepted",
    "partially_filled": "partially_filled",
    "filled": "filled",
    "canceled": "canceled",
    "replaced": "canceled",
    "rejected": "rejected",
    "expired": "expired",
}

_MAX_SLEEP = 8.0


class _HTTPStatusError(Exception):
    """A non-retryable HTTP answer, kept with its status for the caller to interpret."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


def _value(x: Any) -> Any:
    return getattr(x, "value", x)


def _float(x: Any, default: float | None = None) -> float | None:
    if x is None or x == "":
        return default
    number = float(x)
    return number if math.isfinite(number) else default


def _api_message(exc: Exception, secrets: tuple[str, ...]) -> str:
    """Alpaca's error message, with ``secrets`` redacted before it is clipped."""
    text = str(exc)
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("message"):
        text = str(data["message"])
    return redact(text, secrets)[:300]


def _is_duplicate_id(message: str) -> bool:
    text = message.lower()
    return "client_order_id" in text and "unique" in text


def _is_auth_failure(err: _HTTPStatusError) -> bool:
    """401, or a 403 about the keys (a 403 may also refuse an order: no buying power, no shorting)."""
    text = err.message.lower()
    return err.status == 401 or (
        err.status == 403 and any(w in text for w in ("forbidden", "unauthorized", "api key", "access key"))
    )


def _normalise_status(raw: str, qty: float, filled: float) -> str:
    status = ALPACA_STATUS_MAP.get(raw)
    if status is None:
        log.warning("unknown Alpaca order status %r; treating the order as open (accepted)", raw)
        status = "accepted"
    if status in ("new", "accepted") and filled > 0:
        status = "filled" if qty > 0 and filled >= qty else "partially_filled"
    return status


def _order_status(order: Any) -> OrderStatus:
    """An alpaca-py ``Order`` as an :class:`OrderStatus`."""
    side = _value(order.side)
    if side not in ("buy", "sell") or not order.symbol:
        raise BrokerError(
            f"alpaca order {order.client_order_id} has no single symbol/side (multi-leg orders "
            "are not supported)"
        )
    qty = _float(order.qty, 0.0) or 0.0
    filled = _float(order.filled_qty, 0.0) or 0.0
    avg = _float(order.filled_avg_price)
    submitted = order.submitted_at or order.created_at
    return OrderStatus(
        client_order_id=order.client_order_id,
        broker_order_id=str(order.id) if order.id is not None else None,
        symbol=order.symbol,
        side=side,
        qty=qty,
        filled_qty=filled,
        avg_fill_price=avg if (avg is not None and filled > 0) else None,
        status=_normalise_status(str(_value(order.status)), qty, filled),
        submitted_at=submitted.isoformat() if submitted is not None else None,
    )


def _timeout_adapter(timeout: float) -> Any:
    """A requests adapter that applies ``timeout`` to every request that sets none."""
    from requests.adapters import HTTPAdapter

    class _TimeoutAdapter(HTTPAdapter):
        def send(self, request, **kwargs):  # type: ignore[no-untyped-def]
            if kwargs.get("timeout") is None:
                kwargs["timeout"] = timeout
            return super().send(request, **kwargs)

    return _TimeoutAdapter()


class AlpacaBroker:
    """Orders, positions and the account at Alpaca (paper by default).

    Parameters
    ----------
    api_key, secret_key : str
        Alpaca keys (the caller reads ``ALPACA_API_KEY`` / ``ALPACA_SECRET_KEY``).
    paper : bool, default True
        Trade the paper account.
    live_confirmed : bool, default False
        Live trading needs ``paper=False`` *and* ``live_confirmed=True``.
    base_url : str, optional
        Override of the API root (a proxy, or a loopback stub in tests).
    retries : int, default 3
        Attempts (>= 1) for each request that fails transiently.
    retry_backoff : float, default 0.5
        First wait in seconds between attempts; doubles, capped at 8 s.
    timeout : float, default 30.0
        Seconds to wait for a connection and for each answer.
    sleep : callable, default time.sleep
        Used for the backoff waits (tests substitute it).

    Raises
    ------
    BrokerConfigError
        ``paper=False`` without ``live_confirmed=True``, or invalid retry/timeout settings.
    MissingCredentialsError
        A key is missing; the message names the environment variable.
    """

    def __init__(
        self,
        api_key: str | None,
        secret_key: str | None,
        *,
        paper: bool = True,
        live_confirmed: bool = False,
        base_url: str | None = None,
        retries: int = 3,
        retry_backoff: float = 0.5,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not paper and not live_confirmed:
            raise BrokerConfigError(
                "live trading refused: AlpacaBroker(paper=False) also needs live_confirmed=True "
                "(an explicit confirmation that real money may be traded)"
            )
        if not api_key:
            raise MissingCredentialsError(
                "the alpaca broker needs an API key: set the environment variable ALPACA_API_KEY"
            )
        if not secret_key:
            raise MissingCredentialsError(
                "the alpaca broker needs a secret key: set the environment variable ALPACA_SECRET_KEY"
            )
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 1:
            raise BrokerConfigError(f"retries must be an integer >= 1, got {retries!r}")
        if not (math.isfinite(retry_backoff) and retry_backoff >= 0):
            raise BrokerConfigError(f"retry_backoff must be >= 0, got {retry_backoff!r}")
        if not (math.isfinite(timeout) and timeout > 0):
            raise BrokerConfigError(f"timeout must be > 0, got {timeout!r}")
        from alpaca.trading.client import TradingClient

        self.paper = bool(paper)
        self.name = "alpaca-paper" if self.paper else "alpaca-live"
        self.base_url = base_url.rstrip("/") if base_url else None
        self.retries = retries
        self.retry_backoff = float(retry_backoff)
        self.timeout = float(timeout)
        self._sleep = sleep
        self._secrets = (api_key, secret_key)
        self._client = TradingClient(
            api_key, secret_key, paper=self.paper, url_override=self.base_url
        )
        # alpaca-py resends on 429/504 by itself (3 s sleeps, no lookup in between); every
        # resend here must go through the client-order-id lookup, so its loop runs once.
        self._client._retry = 0
        adapter = _timeout_adapter(self.timeout)
        self._client._session.mount("https://", adapter)
        self._client._session.mount("http://", adapter)

    # ------------------------------------------------------------------ plumbing

    def _attempt(self, fn: Callable[[], T], what: str) -> T:
        """Run one request; transient failures -> TransientError, other HTTP errors -> _HTTPStatusError."""
        import requests
        from alpaca.common.exceptions import APIError
        from pydantic import ValidationError

        try:
            return fn()
        except APIError as exc:
            status = exc.status_code
            message = _api_message(exc, self._secrets)
            if status == 429 or (status is not None and status >= 500):
                raise TransientError(f"alpaca {what}: HTTP {status}: {message}") from None
            raise _HTTPStatusError(status, message) from None
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            raise TransientError(f"alpaca {what}: {type(exc).__name__}: {redact(str(exc), self._secrets)}") from None
        except (ValidationError, TypeError) as exc:
            raise BrokerError(f"alpaca {what}: unreadable answer ({redact(str(exc), self._secrets)})") from None

    def _retrying(self, fn: Callable[[], T], what: str) -> T:
        """Run an idempotent request with bounded retries of transient failures."""
        return call_with_retry(
            lambda: self._attempt(fn, what),
            attempts=self.retries,
            backoff=self.retry_backoff,
            max_sleep=_MAX_SLEEP,
            what=f"alpaca {what}",
            sleep=self._sleep,
        )

    @staticmethod
    def _permanent(err: _HTTPStatusError, what: str) -> PermanentError:
        if err.status in (401, 403):
            return PermanentError(
                f"alpaca refused {what} (HTTP {err.status}: {err.message}); check the credentials "
                "ALPACA_API_KEY / ALPACA_SECRET_KEY and the account's permissions"
            )
        return PermanentError(f"alpaca {what} failed: HTTP {err.status}: {err.message}")

    # ------------------------------------------------------------------ the Broker protocol

    def get_order(self, client_order_id: str) -> OrderStatus | None:
        """The order with that client id, or None when Alpaca answers 404.

        Raises
        ------
        TransientError
            Alpaca unreachable or failing after all retries.
        PermanentError
            Any other refusal (e.g. bad credentials).
        """
        try:
            order = self._retrying(
                lambda: self._client.get_order_by_client_id(client_order_id), "order lookup"
            )
        except _HTTPStatusError as err:
            if err.status == 404:
                return None
            raise self._permanent(err, f"the lookup of order {client_order_id}") from None
        return _order_status(order)

    def submit(self, order: OrderRequest) -> OrderStatus:
        """Place ``order`` unless Alpaca already has its ``client_order_id`` (see module notes).

        Returns
        -------
        OrderStatus
            The new order, or the existing one with the same ``client_order_id``.

        Raises
        ------
        OrderRejectedError
            Alpaca refused the order (4xx about the order itself).
        PermanentError
            Credentials or permissions refused.
        TransientError
            All attempts failed and the order was not found: its fate is unknown to Alpaca's
            answers so far; call :meth:`get_order` before submitting again (``submit`` with
            the same id is safe too).
        """
        from alpaca.trading.enums import OrderSide, TimeInForce
        from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest

        if not isinstance(order, OrderRequest):
            raise TypeError(f"order must be an OrderRequest, got {type(order).__name__}")
        coid = order.client_order_id
        existing = self.get_order(coid)
        if existing is not None:
            log.info("order %s already at Alpaca (%s); not resent", coid, existing.status)
            return existing
        common: dict[str, Any] = {
            "symbol": order.symbol,
            "qty": order.qty,
            "side": OrderSide(order.side),
            "time_in_force": TimeInForce.DAY,
            "client_order_id": coid,
        }
        request = (
            LimitOrderRequest(limit_price=order.limit_price, **common)
            if order.order_type == "limit"
            else MarketOrderRequest(**common)
        )
        delay = self.retry_backoff
        last: TransientError | None = None
        for attempt in range(1, self.retries + 1):
            try:
                placed = self._attempt(lambda: self._client.submit_order(request), "order submission")
                return _order_status(placed)
            except TransientError as exc:
                last = exc
            except _HTTPStatusError as err:
                if err.status == 422 and _is_duplicate_id(err.message):
                    found = self.get_order(coid)
                    if found is not None:
                        log.info("order %s already at Alpaca (422 duplicate id); returning it", coid)
                        return found
                    raise BrokerError(
                        f"alpaca says client_order_id {coid} is taken but cannot find that order"
                    ) from None
                if _is_auth_failure(err):
                    raise self._permanent(err, f"order {coid}") from None
                raise OrderRejectedError(
                    f"alpaca rejected order {coid} ({order.side} {order.qty:g} {order.symbol}): "
                    f"HTTP {err.status}: {err.message}"
                ) from None
            log.warning(
                "submitting order %s failed (%s), attempt %d/%d; looking it up before any resend",
                coid, last, attempt, self.retries,
            )
            self._sleep(delay)
            delay = min(delay * 2, _MAX_SLEEP)
            try:
                found = self.get_order(coid)
            except TransientError as exc:
                raise TransientError(
                    f"order {coid}: submission failed ({last}) and the lookup failed too ({exc}); "
                    "not resent - its state is unknown, call get_order before submitting again"
                ) from None
            if found is not None:
                log.info("order %s reached Alpaca despite the failure; not resent", coid)
                return found
        raise TransientError(
            f"order {coid}: {self.retries} submission attempts failed (last: {last}) and Alpaca "
            "does not have it"
        )

    def cancel(self, client_order_id: str) -> OrderStatus:
        """Cancel an open order; a final order is returned unchanged.

        Returns
        -------
        OrderStatus
            The order after the cancel request (``canceled``, or still ``accepted`` while Alpaca
            reports ``pending_cancel``).

        Raises
        ------
        UnknownOrderError
            Alpaca has no order with that id.
        """
        current = self.get_order(client_order_id)
        if current is None:
            raise UnknownOrderError(f"alpaca has no order {client_order_id!r}")
        if not current.is_open:
            return current
        if current.broker_order_id is None:
            raise BrokerError(f"alpaca order {client_order_id} has no order id to cancel")
        order_id = current.broker_order_id
        try:
            self._retrying(lambda: self._client.cancel_order_by_id(order_id), "order cancel")
        except _HTTPStatusError as err:
            if err.status not in (404, 422):  # 422: no longer cancelable (filled meanwhile)
                raise self._permanent(err, f"cancelling order {client_order_id}") from None
        return self.get_order(client_order_id) or current

    def open_orders(self) -> list[OrderStatus]:
        """Open orders (up to 500, Alpaca's page limit)."""
        from alpaca.trading.enums import QueryOrderStatus
        from alpaca.trading.requests import GetOrdersRequest

        request = GetOrdersRequest(status=QueryOrderStatus.OPEN, limit=500)
        try:
            orders = self._retrying(lambda: self._client.get_orders(filter=request), "open orders")
        except _HTTPStatusError as err:
            raise self._permanent(err, "listing open orders") from None
        return [_order_status(o) for o in orders]

    def positions(self) -> dict[str, Position]:
        """Positions keyed by symbol (short positions with negative ``qty``)."""
        try:
            rows = self._retrying(self._client.get_all_positions, "positions")
        except _HTTPStatusError as err:
            raise self._permanent(err, "listing positions") from None
        out: dict[str, Position] = {}
        for p in rows:
            qty = abs(_float(p.qty, 0.0) or 0.0)
            if _value(p.side) == "short":
                qty = -qty
            out[p.symbol] = Position(
                symbol=p.symbol,
                qty=qty,
                avg_price=_float(p.avg_entry_price, 0.0) or 0.0,
                market_price=_float(p.current_price),
            )
        return out

    def account(self) -> Account:
        """Cash, equity and buying power as Alpaca reports them."""
        try:
            acct = self._retrying(self._client.get_account, "account")
        except _HTTPStatusError as err:
            raise self._permanent(err, "reading the account") from None
        values = {}
        for field in ("cash", "equity", "buying_power"):
            number = _float(getattr(acct, field, None))
            if number is None:
                raise BrokerError(f"alpaca account answer lacks {field}")
            values[field] = number
        return Account(**values)

    def close(self) -> None:
        """Close the HTTP session."""
        self._client._session.close()

    def __enter__(self) -> AlpacaBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
