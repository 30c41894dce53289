"""A simulated broker whose account lives in one SQLite file.

:class:`PaperBroker` keeps cash, positions, orders, fills and last prices in SQLite (WAL mode,
versioned schema, created on first use), so a new instance on the same file — after a crash
or a restart — carries on with the same account, and re-submitting an order under an existing
``client_order_id`` returns the recorded order instead of trading twice.

Fill model
----------
``fill='last'``
    Orders fill when submitted, at ``reference_price`` moved by the slippage (a buy pays
    ``p * (1 + slippage_bps / 1e4)``, a sell gets ``p * (1 - slippage_bps / 1e4)``). Without a
    ``reference_price`` the order is recorded as ``rejected``. A limit order fills only if the
    slipped price is within its limit (buy: ``<= limit``, sell: ``>= limit``); otherwise it
    stays ``accepted`` until a later :meth:`PaperBroker.process_bar` fills it or it is
    cancelled.
``fill='next_open'``
    Orders stay ``accepted`` until :meth:`PaperBroker.process_bar` reports a bar of their symbol
    that is *later* than the order's ``bar_time`` (an order with no ``bar_time`` takes the next
    bar reported); they fill at that bar's open, slipped as above, limits respected.

Every fill is for the whole quantity (no partial fills). Commission
``notional * commission_bps / 1e4 + commission_per_order`` is taken from cash on top of the
notional. Shorting is allowed (the risk gate decides); a buy whose notional plus commission
exceeds cash is ``rejected`` with reason ``insufficient cash`` (at submission in ``last`` mode,
at the fill bar in ``next_open`` mode). Malformed requests raise ``ValueError`` (see
:class:`OrderRequest`); business refusals are recorded as ``rejected`` orders with a
``reason``.

Positions keep a weighted average price on increases, the same price on reductions, and the
fill price when a fill crosses through zero; realised P&L (before commission) is booked on
reductions. Equity is cash plus every position marked at its last known price (the latest fill,
``process_bar`` open or :meth:`PaperBroker.mark`).
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from integrations._sqlite import apply_schema, open_database
from integrations.brokers._base import (
    Account,
    BrokerError,
    Fill,
    OrderRequest,
    OrderStatus,
    Position,
    UnknownOrderError,
)

__all__ = ["PaperBroker", "PAPER_SCHEMA_VERSION"]

log = logging.getLogger(__name__)

#: Version of the table layout written by this code; stored in ``schema_version``.
PAPER_SCHEMA_VERSION = 1

FillMode = Literal["last", "next_open"]
_EPS = 1e-9

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER PRIMARY KEY,
    applied_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS account (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    cash          REAL NOT NULL,
    initial_cash  REAL NOT NULL,
    created_at    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    client_order_id  TEXT NOT NULL UNIQUE,
    symbol           TEXT NOT NULL,
    side             TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    qty              REAL NOT NULL,
    order_type       TEXT NOT NULL CHECK (order_type IN ('market', 'limit')),
    limit_price      REAL,
    reference_price  REAL,
    bar_time         TEXT,
    status           TEXT NOT NULL,
    filled_qty       REAL NOT NULL DEFAULT 0,
    avg_fill_price   REAL,
    reason           TEXT,
    submitted_at     TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_symbol_status ON orders(symbol, status);
CREATE TABLE IF NOT EXISTS fills (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    client_order_id  TEXT NOT NULL REFERENCES orders(client_order_id),
    symbol           TEXT NOT NULL,
    side             TEXT NOT NULL,
    qty              REAL NOT NULL,
    price            REAL NOT NULL,
    commission       REAL NOT NULL,
    ts               TEXT NOT NULL,
    bar_time         TEXT
);
CREATE INDEX IF NOT EXISTS fills_order ON fills(client_order_id, id);
CREATE TABLE IF NOT EXISTS positions (
    symbol        TEXT PRIMARY KEY,
    qty           REAL NOT NULL,
    avg_price     REAL NOT NULL,
    realized_pnl  REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS marks (
    symbol  TEXT PRIMARY KEY,
    price   REAL NOT NULL,
    ts      TEXT NOT NULL
);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _non_negative(name: str, value: float) -> float:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got bool")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return number


def _price(name: str, value: float) -> float:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got bool")
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return number


def _parse_time(name: str, value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an ISO-8601 time, got {value!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _apply_fill(
    qty: float, avg: float, realized: float, signed: float, price: float
) -> tuple[float, float, float]:
    """New (qty, avg_price, realized_pnl) of a position after a signed fill at ``price``."""
    new_qty = qty + signed
    if abs(new_qty) <= _EPS * max(1.0, abs(qty), abs(signed)):
        new_qty = 0.0
    if qty == 0 or (qty > 0) == (signed > 0):
        if new_qty == 0:  # a fill too small to register (below the rounding tolerance)
            return 0.0, 0.0, realized
        # opening or increasing: weighted average
        avg = (abs(qty) * avg + abs(signed) * price) / abs(new_qty)
        return new_qty, avg, realized
    closed = min(abs(signed), abs(qty))
    realized += closed * (price - avg) * (1.0 if qty > 0 else -1.0)
    if new_qty == 0:
        return 0.0, 0.0, realized
    if (new_qty > 0) != (qty > 0):
        return new_qty, price, realized  # crossed zero: the remainder opened at this price
    return new_qty, avg, realized  # reduced: average unchanged


class PaperBroker:
    """Simulated broker on a SQLite file (see the module notes for the fill model).

    Parameters
    ----------
    path : str or Path
        Database file; its folder is created if missing, the schema on first use. A second
        instance on the same file sees the same account.
    initial_cash : float, default 100000.0
        Cash of a new account. Ignored when the file already holds an account (the file wins).
    slippage_bps : float, default 5.0
        Price moved against the order, in basis points of the reference or open price.
    commission_bps : float, default 0.0
        Commission in basis points of the fill notional.
    commission_per_order : float, default 0.0
        Fixed commission per filled order.
    fill : {'last', 'next_open'}, default 'last'
        When and at what price orders fill.

    Raises
    ------
    ValueError
        For a negative or non-finite cost parameter or an unknown ``fill`` mode.
    BrokerError
        If the file cannot be opened or was written by a newer schema version.

    Notes
    -----
    One connection per instance, every operation under one lock and in one SQLite transaction
    (``BEGIN IMMEDIATE``), so concurrent calls from threads — or another process on the same
    file — cannot create an order twice or lose a cash update.
    """

    name = "paper"

    def __init__(
        self,
        path: str | Path,
        *,
        initial_cash: float = 100_000.0,
        slippage_bps: float = 5.0,
        commission_bps: float = 0.0,
        commission_per_order: float = 0.0,
        fill: FillMode = "last",
    ) -> None:
        self.initial_cash = _non_negative("initial_cash", initial_cash)
        self.slippage_bps = _non_negative("slippage_bps", slippage_bps)
        self.commission_bps = _non_negative("commission_bps", commission_bps)
        self.commission_per_order = _non_negative("commission_per_order", commission_per_order)
        if fill not in ("last", "next_open"):
            raise ValueError(f"fill must be 'last' or 'next_open', got {fill!r}")
        self.fill_mode: FillMode = fill
        self._path = Path(path) if str(path) == ":memory:" else Path(path).expanduser()
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = open_database(self._path, what="paper account", error=BrokerError, setup=self._init_schema)

    # ------------------------------------------------------------------ plumbing

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    def _init_schema(self, conn: sqlite3.Connection) -> None:
        apply_schema(conn, _SCHEMA, PAPER_SCHEMA_VERSION, _now(), what="paper account", path=self._path,
                     error=BrokerError, then=self._seed_account)

    def _seed_account(self, conn: sqlite3.Connection) -> None:
        row = conn.execute("SELECT initial_cash FROM account WHERE id = 1").fetchone()
        if row is None:
            conn.execute(
                "INSERT INTO account(id, cash, initial_cash, created_at) VALUES (1, ?, ?, ?)",
                (self.initial_cash, self.initial_cash, _now()),
            )
        elif row[0] != self.initial_cash:
            log.info(
                "paper account %s exists (initial cash %.2f); initial_cash=%.2f ignored",
                self._path, row[0], self.initial_cash,
            )

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction under the instance lock."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise BrokerError(f"paper account {self._path} is closed")
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise BrokerError(f"paper account {self._path}: {exc}") from exc
            try:
                yield conn
            except BaseException as exc:
                conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise BrokerError(f"paper account {self._path}: {exc}") from exc
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                conn.execute("ROLLBACK")
                raise BrokerError(f"paper account {self._path}: {exc}") from exc

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._lock:
            if self._conn is None:
                raise BrokerError(f"paper account {self._path} is closed")
            try:
                cur = self._conn.execute(sql, params)
                names = [d[0] for d in cur.description]
                return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
            except sqlite3.Error as exc:
                raise BrokerError(f"paper account {self._path}: {exc}") from exc

    @staticmethod
    def _rows(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        cur = conn.execute(sql, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    @staticmethod
    def _status(row: dict[str, Any]) -> OrderStatus:
        return OrderStatus(
            client_order_id=row["client_order_id"],
            broker_order_id=f"paper-{row['seq']}",
            symbol=row["symbol"],
            side=row["side"],
            qty=row["qty"],
            filled_qty=row["filled_qty"],
            avg_fill_price=row["avg_fill_price"],
            status=row["status"],
            submitted_at=row["submitted_at"],
            reason=row["reason"],
        )

    def _order_row(self, conn: sqlite3.Connection, client_order_id: str) -> dict[str, Any] | None:
        rows = self._rows(conn, "SELECT * FROM orders WHERE client_order_id = ?", (client_order_id,))
        return rows[0] if rows else None

    def _slipped(self, side: str, price: float) -> float:
        factor = self.slippage_bps / 1e4
        return price * (1.0 + factor) if side == "buy" else price * (1.0 - factor)

    def _commission(self, notional: float) -> float:
        return notional * self.commission_bps / 1e4 + self.commission_per_order

    def _set_status(
        self, conn: sqlite3.Connection, seq: int, status: str, reason: str | None = None
    ) -> None:
        conn.execute(
            "UPDATE orders SET status = ?, reason = ?, updated_at = ? WHERE seq = ?",
            (status, reason, _now(), seq),
        )

    def _try_fill(
        self, conn: sqlite3.Connection, row: dict[str, Any], base_price: float, bar_time: str | None
    ) -> None:
        """Fill the open order ``row`` at ``base_price`` (before slippage) if its limit and cash allow."""
        side = row["side"]
        price = self._slipped(side, base_price)
        limit = row["limit_price"]
        if row["order_type"] == "limit" and limit is not None:
            if (side == "buy" and price > limit) or (side == "sell" and price < limit):
                return  # not marketable: stays open
        qty = float(row["qty"])
        notional = qty * price
        commission = self._commission(notional)
        cash = conn.execute("SELECT cash FROM account WHERE id = 1").fetchone()[0]
        if side == "buy":
            cost = notional + commission
            if cost > cash + _EPS:
                self._set_status(
                    conn, row["seq"], "rejected",
                    f"insufficient cash: the buy needs {cost:.2f} (with commission), cash is {cash:.2f}",
                )
                return
            cash -= cost
        else:
            cash += notional - commission
        now = _now()
        conn.execute("UPDATE account SET cash = ? WHERE id = 1", (cash,))
        pos = conn.execute(
            "SELECT qty, avg_price, realized_pnl FROM positions WHERE symbol = ?", (row["symbol"],)
        ).fetchone()
        old_qty, old_avg, realized = pos if pos is not None else (0.0, 0.0, 0.0)
        signed = qty if side == "buy" else -qty
        new_qty, new_avg, realized = _apply_fill(old_qty, old_avg, realized, signed, price)
        conn.execute(
            "INSERT INTO positions(symbol, qty, avg_price, realized_pnl) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(symbol) DO UPDATE SET qty = excluded.qty, avg_price = excluded.avg_price, "
            "realized_pnl = excluded.realized_pnl",
            (row["symbol"], new_qty, new_avg, realized),
        )
        conn.execute(
            "INSERT INTO fills(client_order_id, symbol, side, qty, price, commission, ts, bar_time) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (row["client_order_id"], row["symbol"], side, qty, price, commission, now, bar_time),
        )
        conn.execute(
            "UPDATE orders SET status = 'filled', filled_qty = ?, avg_fill_price = ?, reason = NULL, "
            "updated_at = ? WHERE seq = ?",
            (qty, price, now, row["seq"]),
        )
        self._mark(conn, row["symbol"], price, now)

    @staticmethod
    def _mark(conn: sqlite3.Connection, symbol: str, price: float, ts: str) -> None:
        conn.execute(
            "INSERT INTO marks(symbol, price, ts) VALUES (?, ?, ?) "
            "ON CONFLICT(symbol) DO UPDATE SET price = excluded.price, ts = excluded.ts",
            (symbol, price, ts),
        )

    # ------------------------------------------------------------------ the Broker protocol

    def submit(self, order: OrderRequest) -> OrderStatus:
        """Record ``order`` and, in ``last`` mode, fill it at once.

        Parameters
        ----------
        order : OrderRequest

        Returns
        -------
        OrderStatus
            ``filled``, ``accepted`` (waiting for a bar or a marketable price) or ``rejected``
            (with ``reason``). If an order with ``order.client_order_id`` already exists, its
            current status, and nothing is created or filled (idempotency).

        Raises
        ------
        TypeError, ValueError
            If ``order`` is not a valid :class:`OrderRequest`.
        BrokerError
            If the account file cannot be written.
        """
        if not isinstance(order, OrderRequest):
            raise TypeError(f"order must be an OrderRequest, got {type(order).__name__}")
        # OrderRequest validates itself on construction; re-run it in case it was bypassed.
        OrderRequest.__post_init__(order)
        with self._tx() as conn:
            existing = self._order_row(conn, order.client_order_id)
            if existing is not None:
                same = (existing["symbol"], existing["side"], existing["qty"]) == (
                    order.symbol, order.side, order.qty,
                )
                if not same:
                    log.warning(
                        "order %s re-submitted with different terms; returning the recorded order",
                        order.client_order_id,
                    )
                return self._status(existing)
            now = _now()
            conn.execute(
                "INSERT INTO orders(client_order_id, symbol, side, qty, order_type, limit_price, "
                "reference_price, bar_time, status, submitted_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'accepted', ?, ?)",
                (
                    order.client_order_id, order.symbol, order.side, order.qty, order.order_type,
                    order.limit_price, order.reference_price, order.bar_time, now, now,
                ),
            )
            row = self._order_row(conn, order.client_order_id)
            assert row is not None
            if self.fill_mode == "last":
                if order.reference_price is None:
                    self._set_status(
                        conn, row["seq"], "rejected",
                        "no reference_price: fill='last' fills at the last price the decision saw",
                    )
                else:
                    self._try_fill(conn, row, order.reference_price, order.bar_time)
            row = self._order_row(conn, order.client_order_id)
            assert row is not None
            return self._status(row)

    def get_order(self, client_order_id: str) -> OrderStatus | None:
        """The order with that id, or None if it was never submitted here."""
        rows = self._read("SELECT * FROM orders WHERE client_order_id = ?", (client_order_id,))
        return self._status(rows[0]) if rows else None

    def orders(self) -> list[OrderStatus]:
        """Every order, in submission order."""
        return [self._status(r) for r in self._read("SELECT * FROM orders ORDER BY seq")]

    def open_orders(self) -> list[OrderStatus]:
        """Orders still waiting to fill, in submission order."""
        rows = self._read(
            "SELECT * FROM orders WHERE status IN ('new', 'accepted', 'partially_filled') ORDER BY seq"
        )
        return [self._status(r) for r in rows]

    def cancel(self, client_order_id: str) -> OrderStatus:
        """Cancel an open order.

        Returns
        -------
        OrderStatus
            ``canceled``; for an order that is already final (filled, rejected, ...), its
            unchanged status.

        Raises
        ------
        UnknownOrderError
            If no order has that id.
        """
        with self._tx() as conn:
            row = self._order_row(conn, client_order_id)
            if row is None:
                raise UnknownOrderError(f"paper broker has no order {client_order_id!r}")
            if row["status"] in ("new", "accepted", "partially_filled"):
                self._set_status(conn, row["seq"], "canceled")
                row = self._order_row(conn, client_order_id)
                assert row is not None
            return self._status(row)

    def positions(self) -> dict[str, Position]:
        """Non-zero positions keyed by symbol, with their last known price."""
        rows = self._read(
            "SELECT p.symbol, p.qty, p.avg_price, m.price AS mark FROM positions p "
            "LEFT JOIN marks m ON m.symbol = p.symbol WHERE p.qty != 0 ORDER BY p.symbol"
        )
        return {
            r["symbol"]: Position(r["symbol"], r["qty"], r["avg_price"], r["mark"]) for r in rows
        }

    def account(self) -> Account:
        """Cash, equity (cash + positions at their last known price) and buying power (= cash)."""
        cash = self._read("SELECT cash FROM account WHERE id = 1")[0]["cash"]
        equity = cash
        for pos in self.positions().values():
            price = pos.market_price if pos.market_price is not None else pos.avg_price
            equity += pos.qty * price
        return Account(cash=cash, equity=equity, buying_power=cash)

    def close(self) -> None:
        """Close the database connection (idempotent)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> PaperBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ simulation

    def process_bar(self, symbol: str, bar_time: str, open_price: float) -> list[OrderStatus]:
        """Fill the open orders of ``symbol`` at the open of the bar at ``bar_time``.

        Works in both modes (in ``last`` mode it fills resting limit orders). Only orders whose
        ``bar_time`` is earlier than ``bar_time`` (or unset) are considered, so an order never
        fills at the open of the bar it was decided on. Each fills at ``open_price`` moved by
        the slippage if its limit allows, is ``rejected`` if a buy exceeds cash, or stays open.
        ``open_price`` becomes the symbol's last known price.

        Parameters
        ----------
        symbol : str
        bar_time : str
            ISO-8601 time of the bar (naive times are read as UTC).
        open_price : float
            The bar's open, finite and > 0.

        Returns
        -------
        list of OrderStatus
            The orders considered, after processing (in submission order).
        """
        price = _price("open_price", open_price)
        moment = _parse_time("bar_time", bar_time)
        with self._tx() as conn:
            self._mark(conn, symbol, price, _now())
            rows = self._rows(
                conn,
                "SELECT * FROM orders WHERE symbol = ? AND status IN ('new', 'accepted', "
                "'partially_filled') ORDER BY seq",
                (symbol,),
            )
            done: list[str] = []
            for row in rows:
                if row["bar_time"] is not None:
                    try:
                        due = _parse_time("order bar_time", row["bar_time"]) < moment
                    except ValueError:
                        log.warning("order %s has an unreadable bar_time %r; filling it",
                                    row["client_order_id"], row["bar_time"])
                        due = True
                    if not due:
                        continue
                self._try_fill(conn, row, price, bar_time)
                done.append(row["client_order_id"])
            out = []
            for coid in done:
                row = self._order_row(conn, coid)
                assert row is not None
                out.append(self._status(row))
            return out

    def mark(self, symbol: str, price: float) -> None:
        """Set the last known price of ``symbol`` (used for equity and ``Position.market_price``)."""
        value = _price("price", price)
        with self._tx() as conn:
            self._mark(conn, symbol, value, _now())

    def fills(self, client_order_id: str | None = None) -> list[Fill]:
        """Fills in the order they happened, all or those of one order."""
        if client_order_id is None:
            rows = self._read("SELECT * FROM fills ORDER BY id")
        else:
            rows = self._read(
                "SELECT * FROM fills WHERE client_order_id = ? ORDER BY id", (client_order_id,)
            )
        return [
            Fill(r["client_order_id"], r["symbol"], r["side"], r["qty"], r["price"],
                 r["commission"], r["ts"], r["bar_time"])
            for r in rows
        ]

    def realized_pnl(self, symbol: str | None = None) -> float:
        """Realised P&L before commission, of one symbol or of all."""
        if symbol is None:
            rows = self._read("SELECT COALESCE(SUM(realized_pnl), 0) AS v FROM positions")
        else:
            rows = self._read(
                "SELECT COALESCE(SUM(realized_pnl), 0) AS v FROM positions WHERE symbol = ?", (symbol,)
            )
        return float(rows[0]["v"])
