"""The emergency stop: halt, cancel every open order, and flatten every position.

``regimedesk risk halt`` only stops *new* orders; orders already at the broker and the
positions stay. This module does the rest, for ``regimedesk risk halt --cancel-open``,
``regimedesk risk flatten`` and the bot's ``/flatten``:

1. **Halt first.** The persisted trading state becomes HALTED (with the reason and who
   asked) before the broker is even contacted, so whatever fails later, no new order passes
   the gate.
2. **Nothing left in flight.** Orders an interrupted run journaled as ``submitting`` are
   settled with the broker: if the broker has them they are journaled as it reports them
   (and cancelled below while open); if it never saw them they are journaled ``canceled``,
   so no later reconciliation sends them.
3. **Cancel every open order**, each cancellation journaled. The one exception is a closing
   order an earlier flatten already placed for the same position and bar (same client
   order id): it is left working and reported as already open, so re-running flatten never
   sends a close twice.
4. **Close every position** (flatten only): one market order per position for the whole
   quantity held - sell a long, buy back a short; the sales go first, so their proceeds
   are there for the buy-backs - under a deterministic client order id
   (``client_order_id(strategy + '-flatten', symbol, bar time, side)``). Each order goes
   through :func:`analytics.risk_gate.evaluate` in *exit mode*: the gate sees the state
   REDUCING (it is HALTED on disk throughout), so only orders that shrink a position
   without crossing zero - pending orders of the same side counted - can pass; the circuit
   breakers, the order-rate throttle, the same-size duplicate window and the symbol
   allow-list are off for these orders, because they exist to stop new risk and would
   otherwise block its removal in exactly the moments flatten is for. Everything else
   applies: invalid input, a missing or stale price, an untradable symbol, a silent feed,
   a closed market (when required), the price collar, a repeated client order id, and a
   portfolio that cannot be valued all reject. (The one id the gate may see again is that
   of a close an interrupted flatten journaled but the broker never received - settled in
   step 2 - and the broker keeps it to one order all the same.) Approved orders are
   journaled before they are sent (:func:`agents.services.risk.submit_approved`).
5. The state stays HALTED; only a person's ``resume`` re-opens trading.

Every step is recorded in the journal under one run (thread ``flatten-RUNID`` or
``halt-RUNID``), which the bot's alert watcher reports like any other run.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from agents.config import Secrets, Settings
from agents.services.risk import journal_status as _journal_status
from agents.services.risk import (
    market_snapshot,
    portfolio_of,
    risk_limits,
    run_clock,
    submit_approved,
)
from analytics import RegimeDeskError
from analytics.risk_gate import ProposedOrder, evaluate

__all__ = [
    "BROKERS",
    "EmergencyError",
    "EmergencyPreview",
    "CancelOutcome",
    "FlattenResult",
    "emergency_preview",
    "cancel_open_orders",
    "halt_and_cancel",
    "flatten",
    "exit_limits",
    "flatten_client_order_id",
]

#: Brokers the emergency stop can act on.
BROKERS: tuple[str, ...] = ("paper", "alpaca")


class EmergencyError(RegimeDeskError):
    """Trading was halted, but a later step of the emergency stop failed (the message says so)."""


@contextlib.contextmanager
def _after_halt(what: str, broker_name: str, reason: str):
    """Whatever fails after the halt says that the halt itself took effect."""
    try:
        yield
    except EmergencyError:
        raise
    except Exception as exc:  # noqa: BLE001 - reported with the fact that trading is halted
        raise EmergencyError(f"trading is HALTED ({reason}), but {what} at {broker_name} failed: "
                             f"{type(exc).__name__ + ': ' if not isinstance(exc, RegimeDeskError) else ''}{exc}"
                             ) from exc

_NEVER_SENT = "cancelled (never sent)"


def _check(broker_name: str, reason: str, by: str) -> None:
    if broker_name not in BROKERS:
        raise ValueError(f"broker must be one of {', '.join(BROKERS)}, not {broker_name!r}")
    for name, value in (("reason", reason), ("by", by)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{name} must be a non-empty string, got {value!r}")


def _order_row(status) -> dict[str, Any]:
    return {"client_order_id": status.client_order_id, "symbol": status.symbol, "side": status.side,
            "qty": float(status.qty), "filled_qty": float(status.filled_qty), "status": status.status}


# ------------------------------------------------------------------ preview


@dataclass(frozen=True)
class EmergencyPreview:
    """What an emergency stop would act on, as the broker reports it now.

    Attributes
    ----------
    broker : str
    trading_state : str
        The persisted trading state before anything is done.
    positions : tuple of dict
        ``symbol, qty`` (signed) and the closing ``side``.
    open_orders : tuple of dict
        ``client_order_id, symbol, side, qty, filled_qty, status``.
    """

    broker: str
    trading_state: str
    positions: tuple[dict[str, Any], ...]
    open_orders: tuple[dict[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        return {"broker": self.broker, "trading_state": self.trading_state,
                "positions": [dict(p) for p in self.positions], "open_orders": [dict(o) for o in self.open_orders]}


def emergency_preview(settings: Settings, secrets: Secrets, broker_name: str) -> EmergencyPreview:
    """The positions and open orders a flatten would close and cancel (nothing is changed).

    Raises
    ------
    ValueError
        An unknown broker name.
    """
    from agents.services.context import AppContext

    if broker_name not in BROKERS:
        raise ValueError(f"broker must be one of {', '.join(BROKERS)}, not {broker_name!r}")
    app = AppContext(settings, secrets)
    try:
        state = app.risk_store().load().trading_state
        broker = app.broker({"broker": broker_name})
        positions = tuple({"symbol": p.symbol, "qty": float(p.qty), "side": "sell" if p.qty > 0 else "buy"}
                          for p in broker.positions().values() if p.qty)
        orders = tuple(_order_row(o) for o in broker.open_orders())
    finally:
        app.close()
    return EmergencyPreview(broker_name, state, positions, orders)


# ------------------------------------------------------------------ cancelling


@dataclass(frozen=True)
class CancelOutcome:
    """What the cancel step did.

    Attributes
    ----------
    cancelled : tuple of dict
        Each open order cancelled, with the status the broker reported after the request
        (``canceled``; Alpaca may still say ``accepted`` while a cancel is pending).
    kept : tuple of dict
        Open orders deliberately left working (an earlier flatten's closing orders).
    settled : tuple of dict
        Orders an interrupted run left ``submitting``: ``client_order_id`` and ``action``.
    errors : tuple of str
        Cancels or look-ups that failed (the order may still be working).
    """

    cancelled: tuple[dict[str, Any], ...] = ()
    kept: tuple[dict[str, Any], ...] = ()
    settled: tuple[dict[str, Any], ...] = ()
    errors: tuple[str, ...] = ()

    @property
    def still_open(self) -> tuple[dict[str, Any], ...]:
        """Cancelled orders the broker still reports as open (cancel pending)."""
        return tuple(o for o in self.cancelled if o["status"] in ("new", "accepted", "partially_filled"))


def _settle_in_flight(broker, journal, run_id: str, broker_name: str, errors: list[str]) -> list[dict[str, Any]]:
    """Orders journaled ``submitting`` (or ``reconcile_failed``) and never settled."""
    from integrations import TransientError

    settled = []
    for coid, ev in journal.latest_orders(broker_name).items():
        if ev["status"] not in ("submitting", "reconcile_failed"):
            continue
        try:
            status = broker.get_order(coid)
        except (TransientError, RegimeDeskError) as exc:
            errors.append(f"could not look up order {coid} left by an interrupted run: {type(exc).__name__}: {exc}")
            continue
        if status is None:
            journal.record_order(run_id, coid, ev["symbol"], ev["side"], ev["qty"], "canceled", broker_name,
                                 {"reason": "emergency stop: the broker never received it; cancelled so that no "
                                            "reconciliation sends it"})
            settled.append({"client_order_id": coid, "symbol": ev["symbol"], "action": _NEVER_SENT})
        else:
            _journal_status(journal, run_id, broker_name, status)
            settled.append({"client_order_id": coid, "symbol": ev["symbol"],
                            "action": f"found at the broker ({status.status})"})
    return settled


def cancel_open_orders(broker, journal, run_id: str, broker_name: str,
                       keep: frozenset[str] = frozenset()) -> CancelOutcome:
    """Settle orders left in flight, then cancel every open order except those in ``keep``.

    Parameters
    ----------
    broker : integrations.brokers.Broker
    journal : integrations.Journal
        Every cancellation and settlement is journaled under ``run_id``.
    run_id : str
        A run started in ``journal``.
    broker_name : str
        The broker's name in the journal (``paper``, ``alpaca``).
    keep : frozenset of str
        Client order ids to leave working.

    Returns
    -------
    CancelOutcome
        A failure to cancel one order is reported in ``errors`` and the others are still
        cancelled.
    """
    from integrations import TransientError

    errors: list[str] = []
    settled = _settle_in_flight(broker, journal, run_id, broker_name, errors)
    cancelled, kept = [], []
    for order in broker.open_orders():
        if order.client_order_id in keep:
            kept.append(_order_row(order))
            continue
        try:
            status = broker.cancel(order.client_order_id)
        except (TransientError, RegimeDeskError) as exc:
            errors.append(f"could not cancel {order.client_order_id} ({order.side} {order.qty:g} {order.symbol}): "
                          f"{type(exc).__name__}: {exc}")
            continue
        _journal_status(journal, run_id, broker_name, status)
        cancelled.append(_order_row(status))
    return CancelOutcome(tuple(cancelled), tuple(kept), tuple(settled), tuple(errors))


def _journal(settings: Settings):
    from integrations import Journal

    settings.home_dir.mkdir(parents=True, exist_ok=True)
    return Journal(settings.paths.journal)


def halt_and_cancel(settings: Settings, secrets: Secrets, broker_name: str, *, reason: str,
                    by: str) -> tuple[str, CancelOutcome]:
    """``regimedesk risk halt --cancel-open``: HALTED first, then every open order cancelled.

    Positions are left as they are.

    Returns
    -------
    (str, CancelOutcome)
        The journal run id and what was cancelled.

    Raises
    ------
    ValueError
        An unknown broker, an empty reason or ``by``.
    RegimeDeskError
        The broker could not list its open orders (trading is HALTED all the same).
    """
    from agents.services.context import AppContext

    _check(broker_name, reason, by)
    app = AppContext(settings, secrets)
    try:
        app.risk_store().set_trading_state("HALTED", reason, by=by)
        with _after_halt("cancelling the open orders", broker_name, reason), _journal(settings) as journal:
            broker = app.broker({"broker": broker_name})
            run_id = uuid.uuid4().hex[:12]
            journal.start_run(run_id, f"halt-{run_id}", [], {"command": "risk halt --cancel-open",
                                                              "broker": broker_name, "reason": reason, "by": by})
            try:
                outcome = cancel_open_orders(broker, journal, run_id, broker_name)
            except BaseException as exc:
                journal.finish_run(run_id, "failed", error=f"{type(exc).__name__}: {exc}")
                raise
            journal.finish_run(run_id, "completed", summary={"cancelled": len(outcome.cancelled),
                                                             "errors": list(outcome.errors)})
    finally:
        app.close()
    return run_id, outcome


# ------------------------------------------------------------------ flattening


def exit_limits(settings: Settings):
    """The gate's limits for closing orders: as configured, with the circuit breakers, the
    order-rate throttle, the same-size duplicate window and the symbol allow-list off (see
    the module notes); every other check stays."""
    return replace(risk_limits(settings), daily_loss_reduce=None, daily_loss_halt=None, max_drawdown_halt=None,
                   max_orders_per_window=None, duplicate_window_seconds=None, allowed_symbols=None)


def flatten_client_order_id(strategy: str, symbol: str, bar_key: str, side: str) -> str:
    """The deterministic id of the closing order of ``symbol`` at the bar ``bar_key``.

    ``client_order_id(strategy + '-flatten', symbol, bar_key, side)``: distinct from every id
    the strategy's own runs use, and the same for a re-run of flatten at the same bar.
    """
    from integrations.brokers import client_order_id

    return client_order_id(f"{strategy}-flatten", symbol, bar_key, side)


@dataclass(frozen=True)
class FlattenResult:
    """What ``flatten`` did.

    Attributes
    ----------
    broker, run_id : str
        The broker and the journal run.
    trading_state, reason, by : str
        The persisted state afterwards (HALTED), why and who.
    cancelled, kept, settled : tuple of dict
        From the cancel step (:class:`CancelOutcome`); ``kept`` are closing orders an earlier
        flatten left working.
    sent : tuple of dict
        Closing orders sent, as the broker reported them (``filled``, or ``accepted`` when the
        paper broker fills at the next bar's open or the market is closed).
    rejected : tuple of dict
        Closing orders the gate or the broker refused: ``client_order_id, symbol, side, qty,
        reasons`` (a broker's refusal is ``broker_rejected: WHY``).
    errors : tuple of str
        Failed cancels and sends.
    events : tuple of str
        The gate's state changes during the evaluation.
    """

    broker: str
    run_id: str
    trading_state: str
    reason: str
    by: str
    cancelled: tuple[dict[str, Any], ...] = ()
    kept: tuple[dict[str, Any], ...] = ()
    settled: tuple[dict[str, Any], ...] = ()
    sent: tuple[dict[str, Any], ...] = ()
    rejected: tuple[dict[str, Any], ...] = ()
    errors: tuple[str, ...] = ()
    events: tuple[str, ...] = field(default=())

    @property
    def complete(self) -> bool:
        """True when every position has a closing order at the broker and nothing failed."""
        return not self.rejected and not self.errors

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            out[name] = [dict(v) if isinstance(v, Mapping) else v for v in value] if isinstance(value, tuple) else value
        out["complete"] = self.complete
        return out


def _bar_key(market, symbol: str) -> str:
    last = market.last_bar.get(symbol)
    return pd.Timestamp(last).isoformat() if last is not None else "no-bars"


def _snapshot(app, symbols: list[str], source: str, as_of: str | None):
    bars = app.bars({"source": source, "as_of": as_of})
    priced = []
    for sym in symbols:
        try:
            bars.get(sym, "MT")
        except RegimeDeskError:
            continue
        priced.append(sym)
    if priced:
        now = run_clock(bars, {"source": source, "symbols": priced})
    else:
        now = bars.now if bars.now is not None else pd.Timestamp.now(tz="UTC")
    return market_snapshot(bars, symbols, now, {}, feed_silent=app.risk_store().silent_feeds())


def flatten(settings: Settings, secrets: Secrets, broker_name: str, *, reason: str, by: str,
            source: str | None = None, as_of: str | None = None) -> FlattenResult:
    """Halt, cancel every open order and close every position through the gate's exit path.

    See the module notes for the order of the steps and the exit mode of the gate.

    Parameters
    ----------
    settings, secrets
        Configuration (``[risk]`` limits, ``[broker]``, the data source).
    broker_name : {'paper', 'alpaca'}
    reason : str
        Kept with the HALTED state in the risk history.
    by : str
        Who asked (``cli``, ``telegram:USER_ID``).
    source : str, optional
        Market-data source for the prices the gate checks (default ``data.source``).
    as_of : str, optional
        Use only data available at the end of this date (as ``regimedesk run --as-of``).

    Returns
    -------
    FlattenResult
        The state is HALTED afterwards whatever happened.

    Raises
    ------
    ValueError
        An unknown broker, an empty reason or ``by``, an unreadable ``as_of``.
    RegimeDeskError
        The broker could not be reached or refused to list positions or orders (trading
        is HALTED all the same; the journal run is marked failed).
    """
    from agents.services.context import AppContext, as_of_clock

    _check(broker_name, reason, by)
    as_of_clock(as_of)
    source = source or settings.data.source
    app = AppContext(settings, secrets)
    try:
        store = app.risk_store()
        halted = store.set_trading_state("HALTED", reason, by=by)  # the kill switch before anything else
        with _after_halt("flattening", broker_name, reason), _journal(settings) as journal:
            broker = app.broker({"broker": broker_name})
            held = sorted(s for s, p in broker.positions().items() if p.qty)
            run_id = uuid.uuid4().hex[:12]
            journal.start_run(run_id, f"flatten-{run_id}", held, {
                "command": "risk flatten", "broker": broker_name, "reason": reason, "by": by, "source": source,
                "as_of": as_of})
            try:
                result = _flatten(app, broker, journal, run_id, broker_name, held, source, as_of, halted, by)
            except BaseException as exc:
                journal.finish_run(run_id, "failed", error=f"{type(exc).__name__}: {exc}")
                raise
            journal.record_agent_output(run_id, "flatten", None, result.to_dict())
            journal.finish_run(run_id, "completed", summary={
                "sent": len(result.sent), "rejected": len(result.rejected), "cancelled": len(result.cancelled),
                "errors": list(result.errors)})
    finally:
        app.close()
    return result


def _flatten(app, broker, journal, run_id: str, broker_name: str, held: list[str], source: str,
             as_of: str | None, halted, by: str) -> FlattenResult:
    from integrations import TransientError
    from integrations.brokers import OrderRejectedError

    settings = app.settings
    strategy = settings.broker.strategy
    market = _snapshot(app, held, source, as_of)

    def plan_id(symbol: str, qty: float) -> str:
        return flatten_client_order_id(strategy, symbol, _bar_key(market, symbol), "sell" if qty > 0 else "buy")

    own = frozenset(plan_id(s, p.qty) for s, p in broker.positions().items() if p.qty)
    cancel = cancel_open_orders(broker, journal, run_id, broker_name, keep=own)
    errors = list(cancel.errors)
    portfolio, _ = portfolio_of(broker, market.prices)  # after the cancels: only kept orders are pending
    working = {o["client_order_id"] for o in cancel.kept}
    orders = []
    # longs first: their sales raise the cash that buying back the shorts may need
    for sym, qty in sorted(portfolio.positions.items(), key=lambda kv: (kv[1] < 0, kv[0])):
        if not qty:
            continue
        coid = plan_id(sym, qty)
        if coid in working:
            continue
        price = market.prices.get(sym)
        orders.append(ProposedOrder(coid, sym, "sell" if qty > 0 else "buy", abs(float(qty)), "market", None,
                                    price, None))
    # Exit mode: only reducing orders pass. A close the broker never received (a crash between the
    # journal and the broker; journaled cancelled above) may be evaluated again under its own id.
    never_sent = {s["client_order_id"] for s in cancel.settled if s["action"] == _NEVER_SENT}
    state = app.risk_store().load()
    state = replace(state, trading_state="REDUCING",
                    recent=tuple(r for r in state.recent if r.client_order_id not in never_sent))
    result = evaluate(orders, portfolio, market, exit_limits(settings), state)
    sent, rejected = [], []
    for v in result.verdicts:
        o = v.order
        journal.record_verdict(run_id, o.symbol, o.client_order_id, v.action, list(v.reasons),
                               {**o.to_dict(), "approved_qty": v.qty, "exit_mode": True})
        if not v.approved:
            rejected.append({"client_order_id": o.client_order_id, "symbol": o.symbol, "side": o.side,
                             "qty": o.qty, "reasons": list(v.reasons)})
            continue
        try:
            status = submit_approved(broker, journal, run_id, broker_name, o, v.qty, _bar_key(market, o.symbol))
            if status["status"] == "rejected":  # the paper broker answers a refusal with a status
                rejected.append({"client_order_id": o.client_order_id, "symbol": o.symbol, "side": o.side,
                                 "qty": v.qty, "reasons": [f"broker_rejected: {status.get('reason') or '-'}"]})
            else:
                sent.append(status)
        except OrderRejectedError as exc:
            journal.record_order(run_id, o.client_order_id, o.symbol, o.side, v.qty, "rejected", broker_name,
                                 {"reason": "broker_rejected", "error": str(exc)})
            rejected.append({"client_order_id": o.client_order_id, "symbol": o.symbol, "side": o.side,
                             "qty": v.qty, "reasons": [f"broker_rejected: {exc}"]})
        except (TransientError, RegimeDeskError) as exc:  # fate unknown: left 'submitting' for the next settle
            errors.append(f"could not send the close of {o.symbol} ({o.side} {v.qty:g}): "
                          f"{type(exc).__name__}: {exc}")
    store = app.risk_store()
    store.save(replace(result.state, trading_state="HALTED", reason=halted.reason), result.events, by=by)
    final = store.load()
    return FlattenResult(broker_name, run_id, final.trading_state, final.reason or "", by, cancel.cancelled,
                         cancel.kept, cancel.settled, tuple(sent), tuple(rejected), tuple(errors), result.events)
