"""Brokers: a SQLite paper broker and Alpaca, behind one :class:`Broker` protocol.

This package is deliberately *not* imported by ``integrations/__init__``: the narrator and the
LLM client must never reach broker code (``tests/test_import_graph.py``). Import it explicitly::

    from integrations.brokers import PaperBroker, OrderRequest, client_order_id
"""

from integrations.brokers._alpaca import ALPACA_STATUS_MAP, AlpacaBroker
from integrations.brokers._base import (
    MAX_CLIENT_ORDER_ID_LENGTH,
    OPEN_STATUSES,
    ORDER_STATUSES,
    Account,
    Broker,
    BrokerConfigError,
    BrokerError,
    Fill,
    OrderRejectedError,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Side,
    UnknownOrderError,
    client_order_id,
)
from integrations.brokers._paper import PAPER_SCHEMA_VERSION, PaperBroker

__all__ = [
    "Broker",
    "PaperBroker",
    "AlpacaBroker",
    "OrderRequest",
    "OrderStatus",
    "Position",
    "Account",
    "Fill",
    "Side",
    "OrderType",
    "client_order_id",
    "ORDER_STATUSES",
    "OPEN_STATUSES",
    "MAX_CLIENT_ORDER_ID_LENGTH",
    "ALPACA_STATUS_MAP",
    "PAPER_SCHEMA_VERSION",
    "BrokerError",
    "BrokerConfigError",
    "OrderRejectedError",
    "UnknownOrderError",
]
