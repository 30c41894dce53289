"""A symbol's analysis for one run (regimes, statistics, ML signal), computed once, here or on a worker.

The regime, statistics and ML-signal agents each ask for their part of a symbol's analysis
through :func:`agents.services.regime.run_regimes`, :func:`run_statistics` and
:func:`run_signal`; each part is memoised in the run's :class:`AppContext`, so the agents
that share a part compute it once.

When the context has a ``mapper`` (a runtime sets one for ``regimedesk run --workers N`` or
``--scheduler``: :func:`agents.runtime.compute.map_symbols`), the first agent that asks calls
:func:`prefetch`, which sends every symbol of the run to :func:`analyse_symbol` on the worker
processes at once and stores the answers under the same memo keys. The agents then read them as
if computed here: the same service functions run on the workers, from the same bars (each
worker loads them through the same market-data layer), so the numbers are the same. Decisions,
the portfolio, the gate and execution always stay in the run's own process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agents.config import TIMEFRAME_NAMES, Secrets, Settings
from agents.services.context import AppContext
from agents.services.ml import current_signal
from agents.services.regime import AGENT_METHOD, run_regimes
from agents.services.statistics import statistics_report
from analytics import RegimeDeskError

__all__ = ["SymbolAnalysis", "analyse_symbol", "prefetch", "process_context", "run_signal", "run_statistics"]

#: What an agent turns into a per-symbol error rather than a failed run (as the nodes did).
_EXPECTED = (RegimeDeskError, ValueError)

_CONTEXTS: dict[str, AppContext] = {}
_CONTEXTS_LOCK = threading.Lock()


def process_context(settings: Settings) -> AppContext:
    """One application context per settings per process (a worker analyses many symbols).

    Secrets come from this process's environment: a remote worker never receives keys.
    """
    key = settings.model_dump_json()
    with _CONTEXTS_LOCK:
        if key not in _CONTEXTS:
            _CONTEXTS[key] = AppContext(settings, Secrets.from_env())
        return _CONTEXTS[key]


def _key(part: str, request: Mapping[str, Any], symbol: str, *extra: Any) -> tuple:
    # (part, source, as_of, ...): the layout AppContext.release drops per request; "regimes"
    # is the key of agents.services.regime.run_regimes.
    return (part, request["source"], request.get("as_of"), request.get("start"), symbol, *extra)


def run_statistics(ctx: AppContext, request: Mapping[str, Any], symbol: str, timeframe: str) -> dict[str, Any]:
    """The statistics report of ``symbol`` on ``timeframe`` for this run (memoised in ``ctx``).

    Raises
    ------
    RegimeDeskError
        No bars for the timeframe, or too few for the statistics.
    """
    prefetch(ctx, request)

    def compute() -> dict[str, Any]:
        store = ctx.bars(dict(request))
        rep = statistics_report(store.get(symbol, timeframe).frame["close"], store.lookback(timeframe),
                                fit_cache=ctx.fit_cache())
        rep["bar"] = store.bar_of(timeframe)
        return rep

    return ctx.memo(_key("statistics", request, symbol, timeframe), compute)


def run_signal(ctx: AppContext, request: Mapping[str, Any], symbol: str,
               progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The ML signal of ``symbol`` for this run (memoised in ``ctx``); see
    :func:`agents.services.ml.current_signal` (it may train a model when ``ml.auto_train``).

    Raises
    ------
    RegimeDeskError or ValueError
        No usable model and none could be trained, or too little data.
    """
    prefetch(ctx, request)

    def compute() -> dict[str, Any]:
        return current_signal(ctx.bars(dict(request)), symbol, ctx.settings,
                              analysis=run_regimes(ctx, request, symbol), fit_cache=ctx.fit_cache(),
                              recompute=bool(request.get("recompute")), progress=progress)

    return ctx.memo(_key("signal", request, symbol, bool(request.get("recompute"))), compute)


@dataclass(frozen=True)
class SymbolAnalysis:
    """Every analysis part of one symbol: a value, or the exception that part raised."""

    symbol: str
    regimes: Any
    statistics: Mapping[str, Any] = field(default_factory=dict)
    signal: Any = None

    @classmethod
    def lost(cls, symbol: str, error: BaseException) -> SymbolAnalysis:
        """Every part failed with ``error`` (the worker died, or a bug)."""
        exc = RegimeDeskError(f"the analysis was lost on the cluster: {type(error).__name__}: {error}")
        return cls(symbol, exc, {tf: exc for tf in TIMEFRAME_NAMES}, exc)


def _attempt(compute: Callable[[], Any]) -> Any:
    try:
        return compute()
    except _EXPECTED as exc:
        return exc


def analyse_symbol(symbol: str, settings: Settings, request: Mapping[str, Any]) -> SymbolAnalysis:
    """All of ``symbol``'s analysis for the run ``request`` (a worker's task).

    Uses this process's context (:func:`process_context`): its bars, fit cache and model store.
    The expected failures of each part (as the agents treat them) are returned, not raised.
    """
    ctx = process_context(settings)
    try:
        regimes = _attempt(lambda: run_regimes(ctx, request, symbol))
        stats = {tf: _attempt(lambda tf=tf: run_statistics(ctx, request, symbol, tf)) for tf in TIMEFRAME_NAMES}
        signal = _attempt(lambda: run_signal(ctx, request, symbol))
    finally:
        ctx.release(dict(request))  # a worker keeps no run's bars after answering
    return SymbolAnalysis(symbol, regimes, stats, signal)


def prefetch(ctx: AppContext, request: Mapping[str, Any]) -> None:
    """With ``ctx.mapper`` set: analyse every symbol of ``request`` on it once and memoise the parts.

    Without a mapper it does nothing (each part is computed here when first asked for). The
    agents running in parallel call it; the first one sends the work, the others wait for it.
    """
    if ctx.mapper is None:
        return
    symbols = tuple(request["symbols"])

    def compute() -> bool:
        if ctx.status is not None:
            ctx.status(f"analysing {len(symbols)} symbol(s) on the compute engine")
        results = ctx.mapper(analyse_symbol, symbols, ctx.settings, dict(request), lost=SymbolAnalysis.lost)
        for res in results:
            parts: list[tuple[tuple, Any]] = [
                (_key("regimes", request, res.symbol, AGENT_METHOD), res.regimes),
                (_key("signal", request, res.symbol, bool(request.get("recompute"))), res.signal),
            ]
            parts += [(_key("statistics", request, res.symbol, tf), rep) for tf, rep in res.statistics.items()]
            for key, value in parts:
                ctx.remember(key, value)
        return True

    ctx.memo(("prefetch", request["source"], request.get("as_of"), request.get("start"), symbols), compute)
