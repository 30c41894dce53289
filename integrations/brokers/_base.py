"""What every broker speaks: order requests, order states, positions, the account, errors.

A broker adapter turns an :class:`OrderRequest` into an order at a broker and reports back in
the normalised types below, whatever the broker calls things. Every order carries a
``client_order_id`` chosen by the caller (see :func:`client_order_id`); brokers treat it as the
identity of the order, which makes :meth:`Broker.submit` idempotent: submitting the same id a
second time (after a crash, a lost response, a restart) returns the order that already exists
instead of creating another.

Normalised order statuses (:data:`ORDER_STATUSES`):

``new``
    Received, not yet acknowledged by the venue.
``accepted``
    Working (or waiting for the next bar / session); nothing filled yet.
``partially_filled``
    Some quantity filled, the rest still working.
``filled``, ``canceled``, ``rejected``, ``expired``
    Final.

The first three are *open* (:attr:`OrderStatus.is_open`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from typing import Any, Literal, Protocol, runtime_checkable

from integrations._errors import IntegrationError, PermanentError

__all__ = [
    "Side",
    "OrderType",
    "ORDER_STATUSES",
    "OPEN_STATUSES",
    "MAX_CLIENT_ORDER_ID_LENGTH",
    "OrderRequest",
    "OrderStatus",
    "Position",
    "Account",
    "Fill",
    "Broker",
    "client_order_id",
    "BrokerError",
    "BrokerConfigError",
    "OrderRejectedError",
    "UnknownOrderError",
]

Side = Literal["buy", "sell"]
OrderType = Literal["market", "limit"]

#: Every status an :class:`OrderStatus` may carry.
ORDER_STATUSES: frozenset[str] = frozenset(
    {"new", "accepted", "partially_filled", "filled", "canceled", "rejected", "expired"}
)
#: Statuses of orders that may still fill.
OPEN_STATUSES: frozenset[str] = frozenset({"new", "accepted", "partially_filled"})
#: Alpaca's limit on ``client_order_id``; every broker here applies it.
MAX_CLIENT_ORDER_ID_LENGTH = 48

_SIDES = ("buy", "sell")
_ORDER_TYPES = ("market", "limit")


class BrokerError(IntegrationError):
    """A broker could not do what was asked (or answered something unreadable)."""


class BrokerConfigError(BrokerError, PermanentError):
    """The broker is configured in a way that is refused (e.g. live trading not confirmed)."""


class OrderRejectedError(BrokerError, PermanentError):
    """The broker refused the order itself (bad quantity, no buying power, unknown symbol ...)."""


class UnknownOrderError(BrokerError, PermanentError):
    """No order with the given ``client_order_id`` exists at the broker."""


def _positive_finite(name: str, value: object) -> float:
    if isinstance(value, (bool, str, bytes)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    try:
        number = float(value)  # type: ignore[arg-type]  # numpy scalars included
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}") from None
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return number


def _check_client_order_id(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"client_order_id must be a non-empty string, got {value!r}")
    if len(value) > MAX_CLIENT_ORDER_ID_LENGTH:
        raise ValueError(
            f"client_order_id must be at most {MAX_CLIENT_ORDER_ID_LENGTH} characters, "
            f"got {len(value)}: {value!r}"
        )
    return value


@dataclasses.dataclass(frozen=True)
class OrderRequest:
    """An order the caller wants placed.

    Attributes
    ----------
    client_order_id : str
        The order's identity, at most 48 characters; use :func:`client_order_id` so that the
        same decision always yields the same id (that is what makes re-submission safe).
    symbol : str
        Instrument as the broker names it (``'SPY'``, ``'BTC/USD'``).
    side : {'buy', 'sell'}
    qty : float
        Quantity, finite and > 0 (fractions allowed where the broker allows them).
    order_type : {'market', 'limit'}, default 'market'
    limit_price : float, optional
        Required (finite, > 0) for limit orders; must be None for market orders.
    reference_price : float, optional
        Last price the decision saw. The paper broker fills at it (plus slippage) in
        ``fill='last'`` mode; live brokers ignore it.
    bar_time : str, optional
        ISO-8601 time of the bar the order belongs to (the paper broker's ``next_open`` mode
        fills it at the open of a later bar only).

    Raises
    ------
    ValueError, TypeError
        On construction, for a malformed request (these are programming errors, not broker
        rejections).
    """

    client_order_id: str
    symbol: str
    side: Side
    qty: float
    order_type: OrderType = "market"
    limit_price: float | None = None
    reference_price: float | None = None
    bar_time: str | None = None

    def __post_init__(self) -> None:
        _check_client_order_id(self.client_order_id)
        if not isinstance(self.symbol, str) or not self.symbol.strip() or self.symbol != self.symbol.strip():
            raise ValueError(f"symbol must be a non-empty string without spaces, got {self.symbol!r}")
        if self.side not in _SIDES:
            raise ValueError(f"side must be 'buy' or 'sell', got {self.side!r}")
        if self.order_type not in _ORDER_TYPES:
            raise ValueError(f"order_type must be 'market' or 'limit', got {self.order_type!r}")
        object.__setattr__(self, "qty", _positive_finite("qty", self.qty))
        if self.order_type == "limit":
            if self.limit_price is None:
                raise ValueError("a limit order needs limit_price")
            object.__setattr__(self, "limit_price", _positive_finite("limit_price", self.limit_price))
        elif self.limit_price is not None:
            raise ValueError("limit_price is only allowed on limit orders")
        if self.reference_price is not None:
            object.__setattr__(
                self, "reference_price", _positive_finite("reference_price", self.reference_price)
            )
        if self.bar_time is not None and (not isinstance(self.bar_time, str) or not self.bar_time):
            raise ValueError(f"bar_time must be an ISO-8601 string or None, got {self.bar_time!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class OrderStatus:
    """An order as the broker currently sees it.

    Attributes
    ----------
    client_order_id : str
    broker_order_id : str or None
        The broker's own id (None if the broker never assigned one).
    symbol : str
    side : {'buy', 'sell'}
    qty : float
        Ordered quantity.
    filled_qty : float
    avg_fill_price : float or None
        Volume-weighted fill price; None while nothing is filled.
    status : str
        One of :data:`ORDER_STATUSES` (see the module notes).
    submitted_at : str or None
        ISO-8601 UTC time the broker received the order.
    reason : str or None
        Why the order was rejected, when the broker says so (the paper broker always does).
    """

    client_order_id: str
    broker_order_id: str | None
    symbol: str
    side: Side
    qty: float
    filled_qty: float
    avg_fill_price: float | None
    status: str
    submitted_at: str | None
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.status not in ORDER_STATUSES:
            raise ValueError(
                f"status must be one of {sorted(ORDER_STATUSES)}, got {self.status!r}"
            )

    @property
    def is_open(self) -> bool:
        """True while the order may still fill (``new``, ``accepted``, ``partially_filled``)."""
        return self.status in OPEN_STATUSES

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types, with ``is_open`` added."""
        out = dataclasses.asdict(self)
        out["is_open"] = self.is_open
        return out


@dataclasses.dataclass(frozen=True)
class Position:
    """A holding: ``qty`` > 0 long, < 0 short.

    Attributes
    ----------
    symbol : str
    qty : float
    avg_price : float
        Average entry price of the current position.
    market_price : float or None
        Last known price (None when the broker does not report one).
    """

    symbol: str
    qty: float
    avg_price: float
    market_price: float | None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Account:
    """Cash, equity (cash plus marked positions) and buying power, in account currency."""

    cash: float
    equity: float
    buying_power: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Fill:
    """One execution of (part of) an order.

    Attributes
    ----------
    client_order_id, symbol : str
    side : {'buy', 'sell'}
    qty, price : float
        Executed quantity and price (slippage included).
    commission : float
        Charged to cash on top of ``qty * price``.
    ts : str
        ISO-8601 UTC time the fill was recorded.
    bar_time : str or None
        The bar whose price the fill used (``process_bar``), else the order's bar.
    """

    client_order_id: str
    symbol: str
    side: Side
    qty: float
    price: float
    commission: float
    ts: str
    bar_time: str | None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        return dataclasses.asdict(self)


@runtime_checkable
class Broker(Protocol):
    """What the execution layer needs from a broker.

    ``submit`` must be idempotent per ``client_order_id``: if the broker already has an order
    with that id it returns that order's status and creates nothing.
    """

    name: str

    def account(self) -> Account:
        """Cash, equity and buying power."""
        ...

    def positions(self) -> dict[str, Position]:
        """Non-zero positions keyed by symbol."""
        ...

    def open_orders(self) -> list[OrderStatus]:
        """Orders that may still fill."""
        ...

    def get_order(self, client_order_id: str) -> OrderStatus | None:
        """The order with that id, or None when the broker never saw it."""
        ...

    def submit(self, order: OrderRequest) -> OrderStatus:
        """Place ``order`` (idempotent per ``client_order_id``)."""
        ...

    def cancel(self, client_order_id: str) -> OrderStatus:
        """Cancel an open order; returns its status afterwards."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


def client_order_id(strategy: str, symbol: str, bar_time: str, side: str) -> str:
    """The deterministic order id of one decision.

    ``"rd-" + sha256(f"{strategy}|{symbol}|{bar_time}|{side}").hexdigest()[:40]`` (UTF-8):
    43 characters, within Alpaca's 48. The same inputs always give the same id, so a decision
    that is re-run (after a crash or restart) re-submits under the same id and the broker
    returns the existing order instead of placing a second one. Any input that differs gives a
    different id (up to a 160-bit hash collision).

    Parameters
    ----------
    strategy : str
        Name of the strategy (or run configuration) that decided.
    symbol : str
    bar_time : str
        ISO-8601 time of the bar the decision belongs to. The text is hashed as given: pass one
        canonical form (e.g. ``pd.Timestamp(...).isoformat()`` in UTC) every time.
    side : {'buy', 'sell'}

    Returns
    -------
    str

    Raises
    ------
    ValueError
        If a part is empty or contains ``'|'`` (which would make different inputs collide), or
        ``side`` is not buy/sell.
    """
    parts = {"strategy": strategy, "symbol": symbol, "bar_time": bar_time, "side": side}
    for name, value in parts.items():
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string, got {value!r}")
        if "|" in value:
            raise ValueError(f"{name} must not contain '|', got {value!r}")
    if side not in _SIDES:
        raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
    digest = hashlib.sha256(f"{strategy}|{symbol}|{bar_time}|{side}".encode()).hexdigest()
    return "rd-" + digest[:40]
