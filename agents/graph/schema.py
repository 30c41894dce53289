"""Typed outputs of the graph's agents, and their one JSON form in the state.

Nodes return typed values (a :class:`NodeUpdate` around the agent's output type) and read
earlier agents' outputs through :class:`RunState`; the checkpointer still stores JSON. The
boundary is one rule: every type here has ``to_state()`` (its JSON) and the classmethod
``from_state(doc)`` (the inverse, ``T.from_state(x.to_state()) == x``), and the node wrapper
in :mod:`agents.graph.wiring` turns a node's :class:`NodeUpdate` into the state update with
:func:`state_update`, refusing anything else. The JSON is exactly what the state held before
the types existed, key order included, so checkpoints and ``regimedesk run --json`` read the
same.

Modelled field by field: market data, the decision with its proposed orders and portfolio,
the gate's verdicts, the approval, execution (sent and rejected orders), the run's report,
narratives and errors. Carried as a typed envelope around the service's JSON report
(``payload``), with accessors for the fields other agents read: the regime report, the
statistics report of a timeframe and the ML signal; execution's reconciliation entries stay
JSON mappings.

An agent that could not produce a result for a symbol (or one timeframe of it) puts a
:class:`SymbolError` there and an :class:`AgentError` in the run's errors; nothing is faked.
The run's request is :class:`agents.services.context.RunRequest`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Self, TypeVar

from agents.services.context import RunRequest
from analytics import PolicyParams
from analytics.risk_gate import ProposedOrder, Verdict

__all__ = [
    "AGENT_OUTPUTS",
    "AgentError",
    "AgentNarrative",
    "AgentOutput",
    "Approval",
    "ApprovalRequest",
    "Decision",
    "DecisionInputs",
    "Execution",
    "GateVerdicts",
    "MarketData",
    "MlSignal",
    "MlSignalOutput",
    "NodeUpdate",
    "PdfFailed",
    "PdfWritten",
    "PortfolioSnapshot",
    "PortfolioTargets",
    "RegimeOutput",
    "RegimeReport",
    "RejectedOrder",
    "RunReport",
    "RunRequest",
    "RunState",
    "SentOrder",
    "StatisticsOutput",
    "StatisticsReport",
    "SymbolDecision",
    "SymbolError",
    "SymbolRecord",
    "TimeframeBars",
    "TimeframeData",
    "TimeframeUnavailable",
    "UntypedOutputError",
    "Validation",
    "proposed_order_from_state",
    "state_update",
    "timeframe_from_state",
    "verdict_from_state",
    "verdict_to_state",
]

JSON = dict[str, Any]
T = TypeVar("T")


def _map(doc: Mapping[str, Any], parse: Callable[[Any], T]) -> dict[str, T]:
    return {key: parse(value) for key, value in doc.items()}


# ----------------------------------------------------------------------------- run-wide


@dataclass(frozen=True)
class AgentError:
    """An entry of the run's ``errors``: a result ``agent`` could not produce.

    ``symbol`` is None for a run-wide failure (e.g. the PDF report).
    """

    agent: str
    symbol: str | None
    error: str

    @classmethod
    def from_exception(cls, agent: str, symbol: str | None, exc: BaseException) -> AgentError:
        """The entry for ``exc``, named by its class."""
        return cls(agent, symbol, f"{type(exc).__name__}: {exc}")

    def to_state(self) -> JSON:
        return {"agent": self.agent, "symbol": self.symbol, "error": self.error}

    @classmethod
    def from_state(cls, doc: Mapping[str, Any]) -> AgentError:
        return cls(doc["agent"], doc["symbol"], doc["error"])


@dataclass(frozen=True)
class SymbolError:
    """No result for a symbol (or one timeframe of it), and why; state form ``{"error": ...}``."""

    error: str

    @staticmethod
    def is_state(doc: Any) -> bool:
        """Whether ``doc`` is the JSON of a :class:`SymbolError` (its only key is ``error``)."""
        return isinstance(doc, Mapping) and set(doc) == {"error"}

    def to_state(self) -> JSON:
        return {"error": self.error}

    @classmethod
    def from_state(cls, doc: Mapping[str, Any]) -> SymbolError:
        return cls(doc["error"])


@dataclass(frozen=True)
class AgentNarrative:
    """One narrative in the state: ``narratives[agent][symbol or "_run"]``.

    The prose a person reads; no agent reads it (numbers come from the outputs only).
    """

    text: str
    backend: str
    accepted: bool
    fallback_reason: str | None = None
    rejected_numbers: tuple[str, ...] = ()

    def to_state(self) -> JSON:
        return {
            "text": self.text,
            "backend": self.backend,
            "accepted": self.accepted,
            "fallback_reason": self.fallback_reason,
            "rejected_numbers": list(self.rejected_numbers),
        }

    @classmethod
    def from_state(cls, doc: Mapping[str, Any]) -> AgentNarrative:
        return cls(doc["text"], doc["backend"], doc["accepted"], doc["fallback_reason"],
                   tuple(doc["rejected_numbers"]))


@dataclass(frozen=True)
class _Payload:
    """A service's JSON report carried as is (see the module docstring for which)."""

    payload: Mapping[str, Any]

    def to_state(self) -> JSON:
        return dict(self.payload)

    @classmethod
    def from_state(cls, doc: Mapping[str, Any]) -> Self:
        return cls(dict(doc))


def _or_error(parse: Callable[[Mapping[str, Any]], T]) -> Callable[[Mapping[str, Any]], T | SymbolError]:
    def read(doc: Mapping[str, Any]) -> T | SymbolError:
        return SymbolError.from_state(doc) if SymbolError.is_state(doc) else parse(doc)

    return read


# ----------------------------------------------------------------------------- market data


@dataclass(frozen=True)
class Validation:
    """The data-quality check of the bars (``integrations.Bars.summary()['validation']``)."""

    ok: bool
    summary: str
    counts: Mapping[str, int]

    def to_state(self) -> JSON:
        return {"ok": self.ok, "summary": self.summary, "counts": dict(self.counts)}

    @classmethod
    def from_state(cls, doc: Mapping[str, Any]) -> Validation:
        return cls(doc["ok"], doc["summary"], dict(doc["counts"]))


@dataclass(frozen=True)
class TimeframeBars:
    """Bars of one symbol and timeframe loaded and validated (the bars stay out of the state)."""

    bar: str
    bars: int
    first: str
    last: str
    last_close: float
    validation: Validation
    source: str

    available = True

    def to_state(self) -> JSON:
        return {"bar": self.bar, "available": True, "bars": self.bars, "first": self.first, "last": self.last,
                "last_close": self.last_close, "validation": self.validation.to_state(), "source": self.source}

    @classmethod
    def from_state(cls, doc: Mapping[str, Any]) -> TimeframeBars:
        return cls(doc["bar"], doc["bars"], doc["first"], doc["last"], doc["last_close"],
                   Validation.from_state(doc["validation"]), doc["source"])


@dataclass(frozen=True)
class TimeframeUnavailable:
    """A timeframe with no bars for the symbol, and why."""

    bar: str
    reason: str

    available = False

    def to_state(self) -> JSON:
        return {"bar": self.bar, "available": False, "reason": self.reason}

    @classmethod
    def from_state(cls, doc: Mapping[str, Any]) -> TimeframeUnavailable:
        return cls(doc["bar"], doc["reason"])


TimeframeData = TimeframeBars | TimeframeUnavailable


def timeframe_from_state(doc: Mapping[str, Any]) -> TimeframeData:
    """The :data:`TimeframeData` of a ``market_data[symbol][timeframe]`` entry."""
    return (TimeframeBars if doc["available"] else TimeframeUnavailable).from_state(doc)


def _timeframes(doc: Mapping[str, Any]) -> dict[str, TimeframeData]:
    return _map(doc, timeframe_from_state)


@dataclass(frozen=True)
class MarketData:
    """Output of ``market_data``: ``symbols[symbol][timeframe]``."""

    symbols: Mapping[str, Mapping[str, TimeframeData]]

    def to_state(self) -> JSON:
        return {s: {tf: d.to_state() for tf, d in per_tf.items()} for s, per_tf in self.symbols.items()}

    @classmethod
    def from_state(cls, doc: Mapping[str, Any]) -> MarketData:
        return cls(_map(doc, _timeframes))


# ----------------------------------------------------------------------------- analysis agents


@dataclass(frozen=True)
class RegimeReport(_Payload):
    """One symbol's multi-timeframe regimes (``agents.services.regime.regime_report``)."""

    @property
    def consensus_family(self) -> str:
        """``risk_on``/``risk_off``/... of the timeframes' consensus."""
        return self.payload["consensus"]["family"]

    @property
    def mt_label(self) -> str | None:
        """The MT (daily) regime label, None when MT had no data (the gate's regime caps)."""
        mt = (self.payload.get("timeframes") or {}).get("MT") or {}
        return mt["label"] if mt.get("available") else None


@dataclass(frozen=True)
class RegimeOutput:
    """Output of ``regime``: per symbol a report or why there is none."""

    symbols: Mapping[str, RegimeReport | SymbolError]

    def to_state(self) -> JSON:
        return {s: r.to_state() for s, r in self.symbols.items()}

    @classmethod
    def from_state(cls, doc: Mapping[str, Any]) -> RegimeOutput:
        return cls(_map(doc, _or_error(RegimeReport.from_state)))


@dataclass(frozen=True)
class StatisticsReport(_Payload):
    """Statistics of one symbol and timeframe (``agents.services.statistics.statistics_report``
    plus the timeframe's ``bar``)."""


def _statistics_timeframes(doc: Mapping[str, Any]) -> dict[str, StatisticsReport | SymbolError]:
    return _map(doc, _or_error(StatisticsReport.from_state))


@dataclass(frozen=True)
class StatisticsOutput:
    """Output of ``statistics``: ``symbols[symbol][timeframe]``, a report or why there is none."""

    symbols: Mapping[str, Mapping[str, StatisticsReport | SymbolError]]

    def to_state(self) -> JSON:
        return {s: {tf: r.to_state() for tf, r in per_tf.items()} for s, per_tf in self.symbols.items()}

    @classmethod
    def from_state(cls, doc: Mapping[str, Any]) -> StatisticsOutput:
        return cls(_map(doc, _statistics_timeframes))


@dataclass(frozen=True)
class MlSignal(_Payload):
    """One symbol's current signal (``agents.services.ml.current_signal``)."""

    @property
    def p_up(self) -> float:
        return self.payload["p_up"]

    @property
    def vol_forecast(self) -> float:
        return self.payload["vol_forecast"]

    @property
    def model_version(self) -> str:
        return self.payload["model_version"]

    @property
    def confidence(self) -> float | None:
        return self.payload.get("confidence")

    def policy_params(self, policy: str) -> PolicyParams:
        """The policy's parameters chosen walk-forward when the model was trained."""
        return PolicyParams(**self.payload["policy_params"][policy])


@dataclass(frozen=True)
class MlSignalOutput:
    """Output of ``ml_signal``: per symbol a signal or why there is none."""

    symbols: Mapping[str, MlSignal | SymbolError]

    def to_state(self) -> JSON:
        return {s: r.to_state() for s, r in self.symbols.items()}

    @classmethod
    def from_state(cls, doc: Mapping[str, Any]) -> MlSignalOutput:
        return cls(_map(doc, _or_error(MlSignal.from_state)))


# ----------------------------------------------------------------------------- decision


def proposed_order_from_state(doc: Mapping[str, Any]) -> ProposedOrder:
    """The :class:`analytics.risk_gate.ProposedOrder` of its ``to_dict()``."""
    return ProposedOrder(**doc)


@dataclass(frozen=True)
class DecisionInputs:
    """What the policy saw; None for an input an agent could not give."""

    regime_family: str | None
    p_up: float | None
    vol_forecast: float | None

    def to_state(self) -> JSON:
        return {"regime_family": self.regime_family, "p_up": self.p_up, "vol_forecast": self.vol_forecast}

    @classmethod
    def from_state(cls, doc: Mapping[str, Any]) -> DecisionInputs:
        return cls(doc["regime_family"], doc["p_up"], doc["vol_forecast"])


@dataclass(frozen=True)
class SymbolDecision:
    """One symbol's target weight, and with a broker its current weight and proposed orders.

    ``orders`` is None without a broker (nothing proposed: the keys ``current_weight`` and
    ``orders`` are absent from the state); ``target_weight`` None comes with a ``reason``.
    """

    policy: str
    inputs: DecisionInputs
    model_version: str | None
    params: PolicyParams | None
    target_weight: float | None
    reason: str | None
    current_weight: float | None = None
    orders: tuple[ProposedOrder, ...] | None = None

    def __post_init__(self) -> None:
        if self.orders is None and self.current_weight is not None:
            raise ValueError("current_weight comes with the proposed orders (a broker); orders is None")

    def to_state(self) -> JSON:
        out: JSON = {"policy": self.policy, "inputs": self.inputs.to_state(), "model_version": self.model_version}
        # Key order as the state always had it: without parameters, target_weight came first.
        if self.params is None:
            out.update(target_weight=self.target_weight, params=None, reason=self.reason)
        else:
            out.update(params=self.params.to_dict(), target_weight=self.target_weight, reason=self.reason)
        if self.orders is not None:
            out["current_weight"] = self.current_weight
            out["orders"] = [o.to_dict() for o in self.orders]
        return out

    @classmethod
    def from_state(cls, doc: Mapping[str, Any]) -> SymbolDecision:
        orders = doc.get("orders")
        return cls(
            doc["policy"], DecisionInputs.from_state(doc["inputs"]), doc["model_version"],
            None if doc["params"] is None else PolicyParams(**doc["params"]),
            doc["target_weight"], doc["reason"], doc.get("current_weight"),
            None if orders is None else tuple(proposed_order_from_state(o) for o in orders),
        )


@dataclass(frozen=True)
class PortfolioSnapshot:
    """The broker's account as the decision saw it."""

    equity: float
    cash: float
    positions: Mapping[str, float]
    open_orders: int

    def to_state(self) -> JSON:
        return {"equity": self.equity, "cash": self.cash, "positions": dict(self.positions),
                "open_orders": self.open_orders}

    @classmethod
    def from_state(cls, doc: Mapping[str, Any]) -> PortfolioSnapshot:
        return cls(doc["equity"], doc["cash"], dict(doc["positions"]), doc["open_orders"])


@dataclass(frozen=True)
class Decision:
    """Output of ``decision``: the policy's targets per symbol; ``portfolio`` None without a broker."""

    policy: str
    symbols: Mapping[str, SymbolDecision]
    portfolio: PortfolioSnapshot | None

    @property
    def proposed_orders(self) -> tuple[ProposedOrder, ...]:
        """Every proposed order, symbol by symbol."""
        return tuple(o for d in self.symbols.values() for o in (d.orders or ()))

    def to_state(self) -> JSON:
        return {"policy": self.policy, "symbols": {s: d.to_state() for s, d in self.symbols.items()},
                "portfolio": None if self.portfolio is None else self.portfolio.to_state()}

    @classmethod
    def from_state(cls, doc: Mapping[str, Any]) -> Decision:
        pf = doc["portfolio"]
        return cls(doc["policy"], _map(doc["symbols"], SymbolDecision.from_state),
                   None if pf is None else PortfolioSnapshot.from_state(pf))


@dataclass(frozen=True)
class PortfolioTargets:
    """Output of ``portfolio``: portfolio target weights and the orders to reach them.

    ``method`` ``"none"`` means the agent stood aside: each symbol keeps its decision's
    target and the gate checks the decision's orders. Otherwise the gate checks ``orders``
    (None without a broker; empty when the book is held within its band). ``error`` says why
    no targets could be computed (then there are no orders either: nothing is traded).
    """

    method: str
    family: str | None = None
    weights: Mapping[str, float] | None = None
    risk_contributions: Mapping[str, float] | None = None
    volatility: float | None = None
    caps: Mapping[str, float] | None = None
    rebalance: bool | None = None
    reason: str = ""
    orders: tuple[ProposedOrder, ...] | None = None
    error: str | None = None

    @property
    def active(self) -> bool:
        """True when the portfolio's orders replace the decision's."""
        return self.method != "none"

    def to_state(self) -> JSON:
        return {"method": self.method, "family": self.family,
                "weights": None if self.weights is None else dict(self.weights),
                "risk_contributions": None if self.risk_contributions is None else dict(self.risk_contributions),
                "volatility": self.volatility, "caps": None if self.caps is None else dict(self.caps),
                "rebalance": self.rebalance, "reason": self.reason,
                "orders": None if self.orders is None else [o.to_dict() for o in self.orders],
                "error": self.error}

    @classmethod
    def from_state(cls, doc: Mapping[str, Any]) -> PortfolioTargets:
        orders = doc.get("orders")
        return cls(doc["method"], doc.get("family"), doc.get("weights"), doc.get("risk_contributions"),
                   doc.get("volatility"), doc.get("caps"), doc.get("rebalance"), doc.get("reason", ""),
                   None if orders is None else tuple(proposed_order_from_state(o) for o in orders),
                   doc.get("error"))


# ----------------------------------------------------------------------------- risk gate, approval


def verdict_to_state(verdict: Verdict) -> JSON:
    """The JSON of one of the gate's :class:`analytics.risk_gate.Verdict`."""
    return verdict.to_dict()


def verdict_from_state(doc: Mapping[str, Any]) -> Verdict:
    """The :class:`analytics.risk_gate.Verdict` of :func:`verdict_to_state`."""
    return Verdict(proposed_order_from_state(doc["order"]), doc["action"], doc["qty"], tuple(doc["reasons"]))


def _verdicts(docs: list[Mapping[str, Any]]) -> tuple[Verdict, ...]:
    return tuple(verdict_from_state(v) for v in docs)


@dataclass(frozen=True)
class GateVerdicts:
    """Output of ``risk_gate``: the trading state and every proposed order's verdict.

    ``note`` set means nothing was checked (no broker): then the state holds only the
    trading state, the empty verdicts and the note; otherwise ``now`` (the run's clock),
    ``checked_at`` (wall clock of the verdicts) and ``silent_feeds``.
    """

    trading_state: str
    reason: str | None
    events: tuple[str, ...]
    symbols: Mapping[str, tuple[Verdict, ...]]
    now: str | None = None
    checked_at: str | None = None
    silent_feeds: tuple[str, ...] = ()
    note: str | None = None

    def __post_init__(self) -> None:
        if self.note is not None and (self.symbols or self.now or self.checked_at or self.silent_feeds):
            raise ValueError("a gate result with a note checked nothing: no verdicts, clock or silent feeds")

    def to_state(self) -> JSON:
        symbols = {s: [verdict_to_state(v) for v in vs] for s, vs in self.symbols.items()}
        head: JSON = {"trading_state": self.trading_state, "reason": self.reason, "events": list(self.events)}
        if self.note is not None:
            return {**head, "symbols": symbols, "note": self.note}
        return {**head, "now": self.now, "checked_at": self.checked_at, "symbols": symbols,
                "silent_feeds": list(self.silent_feeds)}

    @classmethod
    def from_state(cls, doc: Mapping[str, Any]) -> GateVerdicts:
        return cls(doc["trading_state"], doc["reason"], tuple(doc["events"]), _map(doc["symbols"], _verdicts),
                   doc.get("now"), doc.get("checked_at"), tuple(doc.get("silent_feeds", ())), doc.get("note"))


@dataclass(frozen=True)
class ApprovalRequest:
    """What the approval step shows a person (the ``interrupt`` value, ``RunOutcome.pending``)."""

    run_id: str | None
    thread_id: str | None
    symbols: tuple[str, ...]
    decision: Decision | None
    risk_gate: GateVerdicts | None

    def to_state(self) -> JSON:
        return {"run_id": self.run_id, "thread_id": self.thread_id, "symbols": list(self.symbols),
                "decision": {} if self.decision is None else self.decision.to_state(),
                "risk_gate": {} if self.risk_gate is None else self.risk_gate.to_state()}

    @classmethod
    def from_state(cls, doc: Mapping[str, Any]) -> ApprovalRequest:
        return cls(doc["run_id"], doc["thread_id"], tuple(doc["symbols"]),
                   Decision.from_state(doc["decision"]) if doc["decision"] else None,
                   GateVerdicts.from_state(doc["risk_gate"]) if doc["risk_gate"] else None)


@dataclass(frozen=True)
class Approval:
    """Output of ``approval``: a person's answer."""

    approved: bool
    by: str
    note: str
    at: str

    @classmethod
    def from_answer(cls, answer: Any, at: str) -> Approval:
        """The approval of an answer given to the interrupt; a malformed one is a rejection."""
        if not isinstance(answer, Mapping) or "approved" not in answer:
            answer = {"approved": False, "note": f"malformed approval answer {answer!r}"}
        return cls(bool(answer["approved"]), str(answer.get("by", "unknown")), str(answer.get("note", "")), at)

    def to_state(self) -> JSON:
        return {"approved": self.approved, "by": self.by, "note": self.note, "at": self.at}

    @classmethod
    def from_state(cls, doc: Mapping[str, Any]) -> Approval:
        return cls(doc["approved"], doc["by"], doc["note"], doc["at"])


# ----------------------------------------------------------------------------- execution


@dataclass(frozen=True)
class SentOrder:
    """An order sent to the broker and its status then (the broker's ``OrderStatus.to_dict()``)."""

    client_order_id: str
    broker_order_id: str | None
    symbol: str
    side: str
    qty: float
    filled_qty: float
    avg_fill_price: float | None
    status: str
    submitted_at: str | None
    reason: str | None
    is_open: bool

    def to_state(self) -> JSON:
        return {
            "client_order_id": self.client_order_id, "broker_order_id": self.broker_order_id,
            "symbol": self.symbol, "side": self.side, "qty": self.qty, "filled_qty": self.filled_qty,
            "avg_fill_price": self.avg_fill_price, "status": self.status, "submitted_at": self.submitted_at,
            "reason": self.reason, "is_open": self.is_open,
        }

    @classmethod
    def from_state(cls, doc: Mapping[str, Any]) -> SentOrder:
        return cls(doc["client_order_id"], doc["broker_order_id"], doc["symbol"], doc["side"], doc["qty"],
                   doc["filled_qty"], doc["avg_fill_price"], doc["status"], doc["submitted_at"], doc["reason"],
                   doc["is_open"])


def _sent(docs: list[Mapping[str, Any]]) -> tuple[SentOrder, ...]:
    return tuple(SentOrder.from_state(d) for d in docs)


@dataclass(frozen=True)
class RejectedOrder:
    """An approved order the check at sending stopped, with its reason codes."""

    order: ProposedOrder
    reasons: tuple[str, ...]

    def to_state(self) -> JSON:
        return {"order": self.order.to_dict(), "reasons": list(self.reasons)}

    @classmethod
    def from_state(cls, doc: Mapping[str, Any]) -> RejectedOrder:
        return cls(proposed_order_from_state(doc["order"]), tuple(doc["reasons"]))


@dataclass(frozen=True)
class Execution:
    """Output of ``execution``: what was sent, reconciled and stopped at sending.

    ``note`` set means nothing was attempted (no broker, or a person rejected): the state
    then holds the note instead of ``rejected``. ``reconciled`` entries are the JSON of
    :func:`agents.services.risk.reconcile`.
    """

    broker: str
    symbols: Mapping[str, tuple[SentOrder, ...]]
    reconciled: tuple[Mapping[str, Any], ...]
    rejected: tuple[RejectedOrder, ...] = ()
    note: str | None = None

    def __post_init__(self) -> None:
        if self.note is not None and self.rejected:
            raise ValueError("an execution with a note attempted nothing, so rejected nothing")

    def to_state(self) -> JSON:
        out: JSON = {"broker": self.broker, "symbols": {s: [o.to_state() for o in os_] for s, os_ in self.symbols.items()},
                     "reconciled": [dict(r) for r in self.reconciled]}
        if self.note is not None:
            out["note"] = self.note
        else:
            out["rejected"] = [r.to_state() for r in self.rejected]
        return out

    @classmethod
    def from_state(cls, doc: Mapping[str, Any]) -> Execution:
        return cls(doc["broker"], _map(doc["symbols"], _sent), tuple(dict(r) for r in doc["reconciled"]),
                   tuple(RejectedOrder.from_state(r) for r in doc.get("rejected", ())), doc.get("note"))


# ----------------------------------------------------------------------------- report


@dataclass(frozen=True)
class PdfWritten:
    """The run's report, written: a PDF, or an HTML page (``format="html"``, one page).

    The state key stays ``pdf`` whatever the format, so older runs and their readers keep working.
    """

    path: str
    pages: int
    figures: int
    bytes: int
    format: str = "pdf"

    def to_state(self) -> JSON:
        return {"path": self.path, "pages": self.pages, "figures": self.figures, "bytes": self.bytes,
                "format": self.format}

    @classmethod
    def from_state(cls, doc: Mapping[str, Any]) -> PdfWritten:
        return cls(doc["path"], doc["pages"], doc["figures"], doc["bytes"], doc.get("format", "pdf"))


@dataclass(frozen=True)
class PdfFailed:
    """The run's report (PDF or HTML) could not be written, and why."""

    path: str
    error: str

    def to_state(self) -> JSON:
        return {"path": self.path, "error": self.error}

    @classmethod
    def from_state(cls, doc: Mapping[str, Any]) -> PdfFailed:
        return cls(doc["path"], doc["error"])


@dataclass(frozen=True)
class SymbolRecord:
    """What the run concluded for one symbol, agent by agent (None: no result from that agent)."""

    symbol: str
    market_data: Mapping[str, TimeframeData] | None = None
    regime: RegimeReport | SymbolError | None = None
    statistics: Mapping[str, StatisticsReport | SymbolError] | None = None
    ml_signal: MlSignal | SymbolError | None = None
    decision: SymbolDecision | None = None
    risk_gate: tuple[Verdict, ...] | None = None
    execution: tuple[SentOrder, ...] | None = None

    def to_state(self) -> JSON:
        out: JSON = {"symbol": self.symbol}
        if self.market_data is not None:
            out["market_data"] = {tf: d.to_state() for tf, d in self.market_data.items()}
        if self.regime is not None:
            out["regime"] = self.regime.to_state()
        if self.statistics is not None:
            out["statistics"] = {tf: r.to_state() for tf, r in self.statistics.items()}
        if self.ml_signal is not None:
            out["ml_signal"] = self.ml_signal.to_state()
        if self.decision is not None:
            out["decision"] = self.decision.to_state()
        if self.risk_gate is not None:
            out["risk_gate"] = [verdict_to_state(v) for v in self.risk_gate]
        if self.execution is not None:
            out["execution"] = [o.to_state() for o in self.execution]
        return out

    @classmethod
    def from_state(cls, doc: Mapping[str, Any]) -> SymbolRecord:
        def opt(key: str, parse: Callable[[Any], Any]) -> Any:
            return parse(doc[key]) if key in doc else None

        return cls(doc["symbol"], opt("market_data", _timeframes), opt("regime", _or_error(RegimeReport.from_state)),
                   opt("statistics", _statistics_timeframes), opt("ml_signal", _or_error(MlSignal.from_state)),
                   opt("decision", SymbolDecision.from_state), opt("risk_gate", _verdicts), opt("execution", _sent))


@dataclass(frozen=True)
class RunReport:
    """Output of ``reporting`` (state key ``report``): the run's record."""

    run_id: str | None
    thread_id: str | None
    request: RunRequest
    agents_ran: tuple[str, ...]
    symbols: Mapping[str, SymbolRecord]
    errors: tuple[AgentError, ...]
    pdf: PdfWritten | PdfFailed | None = None

    def to_state(self) -> JSON:
        out: JSON = {"run_id": self.run_id, "thread_id": self.thread_id, "request": self.request.to_dict(),
                     "agents_ran": list(self.agents_ran), "symbols": {s: r.to_state() for s, r in self.symbols.items()},
                     "errors": [e.to_state() for e in self.errors]}
        if self.pdf is not None:
            out["pdf"] = self.pdf.to_state()
        return out

    @classmethod
    def from_state(cls, doc: Mapping[str, Any]) -> RunReport:
        pdf = doc.get("pdf")
        return cls(doc["run_id"], doc["thread_id"], RunRequest.from_dict(doc["request"]), tuple(doc["agents_ran"]),
                   _map(doc["symbols"], SymbolRecord.from_state), tuple(AgentError.from_state(e) for e in doc["errors"]),
                   None if pdf is None else (PdfFailed if "error" in pdf else PdfWritten).from_state(pdf))


# ----------------------------------------------------------------------------- node outputs

AgentOutput = (MarketData | RegimeOutput | StatisticsOutput | MlSignalOutput | Decision | PortfolioTargets | GateVerdicts | Approval
               | Execution | RunReport)

#: agent -> (state key it writes, the type of its output).
AGENT_OUTPUTS: Mapping[str, tuple[str, type]] = {
    "market_data": ("market_data", MarketData),
    "regime": ("regime", RegimeOutput),
    "statistics": ("statistics", StatisticsOutput),
    "ml_signal": ("ml_signal", MlSignalOutput),
    "decision": ("decision", Decision),
    "portfolio": ("portfolio", PortfolioTargets),
    "risk_gate": ("risk_gate", GateVerdicts),
    "approval": ("approval", Approval),
    "execution": ("execution", Execution),
    "reporting": ("report", RunReport),
}


class UntypedOutputError(TypeError):
    """A node returned something other than a :class:`NodeUpdate` of its agent's output type."""


@dataclass(frozen=True)
class NodeUpdate:
    """What a node returns: its agent's output, plus narratives and errors for the reducers.

    ``narratives`` maps a symbol (or ``"_run"``) to the agent's narrative; ``errors`` are
    results it could not produce. None leaves the key out of the state update (an empty
    map still writes the agent's empty narratives, as the analysis agents always do).
    """

    output: AgentOutput
    narratives: Mapping[str, AgentNarrative] | None = None
    errors: tuple[AgentError, ...] | None = None


def state_update(agent: str, update: object) -> JSON:
    """The JSON state update of ``agent``'s :class:`NodeUpdate` (the one serialisation rule).

    Raises
    ------
    UntypedOutputError
        ``update`` is not a :class:`NodeUpdate` whose output is ``agent``'s type, or holds
        a narrative or error of the wrong type (a dict shape is refused, not passed on).
    KeyError
        ``agent`` is not an agent of the graph.
    """
    key, kind = AGENT_OUTPUTS[agent]
    if not isinstance(update, NodeUpdate) or not isinstance(update.output, kind):
        got = type(update.output if isinstance(update, NodeUpdate) else update).__name__
        raise UntypedOutputError(f"the {agent} node returned {got}; it must return NodeUpdate({kind.__name__})")
    out: JSON = {key: update.output.to_state()}
    if update.narratives is not None:
        bad = [k for k, n in update.narratives.items() if not isinstance(n, AgentNarrative)]
        if bad:
            raise UntypedOutputError(f"the {agent} node's narratives {bad} are not AgentNarrative")
        out["narratives"] = {agent: {k: n.to_state() for k, n in update.narratives.items()}}
    if update.errors is not None:
        if not all(isinstance(e, AgentError) for e in update.errors):
            raise UntypedOutputError(f"the {agent} node's errors are not all AgentError")
        out["errors"] = [e.to_state() for e in update.errors]
    return out


# ----------------------------------------------------------------------------- reading the state


class RunState:
    """Typed, read-only view of the graph's state; each key is parsed on first access.

    Nodes read the request and earlier agents' outputs through it (an agent that has not
    run reads as None). ``to_state()`` gives back the JSON of every key it knows, so
    ``RunState(s).to_state() == s`` for any state a run produced.

    Parameters
    ----------
    values : mapping
        The state (or a run's final state, ``RunOutcome.state``).
    """

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = values

    def _get(self, key: str, parse: Callable[[Any], T]) -> T | None:
        doc = self._values.get(key)
        return None if doc is None else parse(doc)

    @property
    def run_id(self) -> str | None:
        return self._values.get("run_id")

    @property
    def thread_id(self) -> str | None:
        return self._values.get("thread_id")

    @cached_property
    def request(self) -> RunRequest:
        """The run's parsed request."""
        return RunRequest.from_dict(self._values["request"])

    @cached_property
    def request_doc(self) -> JSON:
        """The request as the services take it (its JSON)."""
        return self.request.to_dict()

    @cached_property
    def agents_present(self) -> tuple[str, ...]:
        """The agents of this run's graph, in order."""
        return tuple(self._values.get("agents_present", ()))

    @cached_property
    def market_data(self) -> MarketData | None:
        return self._get("market_data", MarketData.from_state)

    @cached_property
    def regime(self) -> RegimeOutput | None:
        return self._get("regime", RegimeOutput.from_state)

    @cached_property
    def statistics(self) -> StatisticsOutput | None:
        return self._get("statistics", StatisticsOutput.from_state)

    @cached_property
    def ml_signal(self) -> MlSignalOutput | None:
        return self._get("ml_signal", MlSignalOutput.from_state)

    @cached_property
    def decision(self) -> Decision | None:
        return self._get("decision", Decision.from_state)

    @cached_property
    def portfolio(self) -> PortfolioTargets | None:
        return self._get("portfolio", PortfolioTargets.from_state)

    @property
    def proposed_orders(self) -> tuple[ProposedOrder, ...]:
        """The orders the gate checks: the portfolio agent's when it set targets, else the decision's."""
        pf = self.portfolio
        if pf is not None and pf.active:
            return pf.orders or ()
        return self.decision.proposed_orders if self.decision is not None else ()

    @cached_property
    def risk_gate(self) -> GateVerdicts | None:
        return self._get("risk_gate", GateVerdicts.from_state)

    @cached_property
    def approval(self) -> Approval | None:
        return self._get("approval", Approval.from_state)

    @cached_property
    def execution(self) -> Execution | None:
        return self._get("execution", Execution.from_state)

    @cached_property
    def report(self) -> RunReport | None:
        return self._get("report", RunReport.from_state)

    @cached_property
    def narratives(self) -> dict[str, dict[str, AgentNarrative]]:
        """``agent -> symbol or "_run" -> narrative``."""
        return {a: _map(per, AgentNarrative.from_state) for a, per in (self._values.get("narratives") or {}).items()}

    @cached_property
    def agents_ran(self) -> tuple[str, ...]:
        """Agents in the order they finished."""
        return tuple(self._values.get("agents_ran", ()))

    @cached_property
    def errors(self) -> tuple[AgentError, ...]:
        return tuple(AgentError.from_state(e) for e in self._values.get("errors", ()))

    def regime_of(self, symbol: str) -> RegimeReport | SymbolError | None:
        return None if self.regime is None else self.regime.symbols.get(symbol)

    def signal_of(self, symbol: str) -> MlSignal | SymbolError | None:
        return None if self.ml_signal is None else self.ml_signal.symbols.get(symbol)

    def mt_regime_labels(self, symbols) -> dict[str, str]:
        """The MT regime label per symbol that has one (for the gate's regime caps)."""
        labels = {}
        for symbol in symbols:
            reg = self.regime_of(symbol)
            if isinstance(reg, RegimeReport) and reg.mt_label is not None:
                labels[symbol] = reg.mt_label
        return labels

    def to_state(self) -> JSON:
        """The JSON of every key present, parsed and serialised again (unknown keys are left out)."""
        out: JSON = {key: self._values[key] for key in ("run_id", "thread_id") if key in self._values}
        if "request" in self._values:
            out["request"] = self.request.to_dict()
        if "agents_present" in self._values:
            out["agents_present"] = list(self.agents_present)
        for key, _ in AGENT_OUTPUTS.values():
            value = getattr(self, key)
            if value is not None:
                out[key] = value.to_state()
        if "narratives" in self._values:
            out["narratives"] = {a: {k: n.to_state() for k, n in per.items()} for a, per in self.narratives.items()}
        if "agents_ran" in self._values:
            out["agents_ran"] = list(self.agents_ran)
        if "errors" in self._values:
            out["errors"] = [e.to_state() for e in self.errors]
        return out
