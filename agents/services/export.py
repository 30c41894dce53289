"""Causal per-bar signals of one or more symbols, for CSV export and the QuantConnect algorithm.

Every value in a row is what RegimeDesk could have known at the close of that row's daily
bar, computed from bars up to that close only:

* per timeframe, the regime label and filtered probability of the regime agent's
  walk-forward models (``agents.services.regime``; a weekly regime counts from the close of its
  week) and the market character over the timeframe's lookback (the statistics agent's
  rule, ``analytics.rolling_market_character``);
* the consensus regime family the decision policy sees (``consensus_path``);
* P(up): the purged walk-forward out-of-sample forecast (the model of the fold covering
  the bar, trained before it), exactly the forecasts ``regimedesk backtest`` uses;
* the target weight from ``analytics.walk_forward_policy`` - the backtest's path, with the
  policy's parameters re-chosen at each refit from the bars before it - capped at
  ``decision.max_weight`` as the decision agent caps it;
* the gate-approved weight from replaying ``analytics.risk_gate.evaluate`` bar by bar on a
  simulated single-symbol book (see :func:`replay_gate` for what is and is not simulated).

Nothing here is fitted on the whole history: truncating the data at any date gives the
prefix of the longer export (the tests check it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from agents.config import TIMEFRAME_NAMES, Settings
from agents.services import ml as _ml
from agents.services.regime import AGENT_METHOD, analyse_regimes
from agents.services.risk import risk_limits
from agents.services.statistics import MIN_CHARACTER_BARS
from analytics import (
    POLICIES,
    InsufficientDataError,
    RegimeDeskError,
    Timeframe,
    rolling_market_character,
    walk_forward_policy,
)
from analytics.risk_gate import (
    MarketSnapshot,
    Portfolio,
    ProposedOrder,
    RiskLimits,
    RiskState,
    evaluate,
)
from integrations import SIGNAL_COLUMNS, coerce_signal_frame

__all__ = [
    "GATE_NOTIONAL",
    "GATE_RETURNS",
    "SignalExport",
    "GateReplay",
    "session_times",
    "replay_gate",
    "symbol_signals",
    "export_signals",
]

Progress = Callable[[str, int, int], None]

#: Equity of the simulated book the risk gate is replayed on.
GATE_NOTIONAL = 1_000_000.0
#: Daily returns in the gate's market snapshot (as ``agents.services.risk.market_snapshot``).
GATE_RETURNS = 500
_DAY_SECONDS = 86_400.0
_NY = "America/New_York"


@dataclass(frozen=True)
class SignalExport:
    """Signals of several symbols, one row per symbol and daily bar.

    Attributes
    ----------
    frame : DataFrame
        Columns :data:`integrations.SIGNAL_COLUMNS`, sorted by ``available_at`` then symbol.
    symbols : tuple of str
    policy : str
    source : str
        Market-data source name.
    first_decision : dict
        Symbol -> date of its first approved weight (None if the policy never decides).
    seconds : float
        Wall time of the computation.
    """

    frame: pd.DataFrame
    symbols: tuple[str, ...]
    policy: str
    source: str
    first_decision: dict[str, str | None] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Summary for JSON output (without the rows)."""
        f = self.frame
        return {
            "symbols": list(self.symbols),
            "policy": self.policy,
            "source": self.source,
            "rows": len(f),
            "first_date": f["date"].iloc[0] if len(f) else None,
            "last_date": f["date"].iloc[-1] if len(f) else None,
            "first_decision": dict(self.first_decision),
            "gate_actions": {str(k): int(v) for k, v in f["gate_action"].value_counts().items()},
            "seconds": round(self.seconds, 2),
        }


@dataclass(frozen=True)
class GateReplay:
    """Per-bar result of :func:`replay_gate` (arrays of the bars' length)."""

    approved: np.ndarray
    action: np.ndarray
    reasons: np.ndarray


def session_times(symbol: str, dates: pd.DatetimeIndex) -> tuple[pd.DatetimeIndex, pd.DatetimeIndex]:
    """``(bar_start, available_at)`` in UTC of daily bars stamped with their session date.

    US equity sessions (the daily bars of every RegimeDesk source) run 09:30-16:00
    America/New_York, so a daily value is available at 16:00 New York time on its date;
    crypto pairs (``BTC/USD``) have UTC-day bars, available at 00:00 UTC of the next day.
    """
    days = pd.DatetimeIndex(dates).tz_convert("UTC").normalize().tz_localize(None)
    if "/" in symbol:
        start = days.tz_localize("UTC")
        return start, start + pd.Timedelta(days=1)
    start = (days + pd.Timedelta(hours=9, minutes=30)).tz_localize(_NY).tz_convert("UTC")
    end = (days + pd.Timedelta(hours=16)).tz_localize(_NY).tz_convert("UTC")
    return start, end


def _gate_limits(settings: Settings) -> RiskLimits:
    # The breakers need an intraday P&L path the replay does not have (see replay_gate).
    return replace(risk_limits(settings), daily_loss_reduce=None, daily_loss_halt=None, max_drawdown_halt=None)


def replay_gate(
    symbol: str,
    bars: pd.DataFrame,
    target: np.ndarray,
    available_at: pd.DatetimeIndex,
    limits: RiskLimits,
    *,
    regime_labels: Sequence[str | None] | None = None,
    p_up: np.ndarray | None = None,
    notional: float = GATE_NOTIONAL,
    progress: Callable[[int, int], None] | None = None,
) -> GateReplay:
    """Replay the risk gate bar by bar on a simulated single-symbol book.

    At each bar with a target weight the book holds ``notional`` of equity: the previously
    approved weight in ``symbol`` (valued at this bar's close) and the rest in cash. The
    order that moves it to the target (fractional shares, at the close as reference
    price) goes through :func:`analytics.risk_gate.evaluate` with trading state ACTIVE, a
    fresh risk state, and a market snapshot at ``available_at`` holding this bar's close,
    its bar time, the daily simple returns up to this bar (the last 500), the symbol
    tradable and its market open (the order is sent for the next session's open), and the
    bar's MT regime label (for the per-regime gross caps). An approved order gives the
    target; a trimmed one the trimmed weight; a rejected one keeps the previous weight.

    Not simulated: the daily-loss and drawdown circuit breakers (they are switched off in
    ``limits`` here: one evaluation per day at a constant notional has no intraday P&L to
    trip them, and a simulated HALT would need a person's resume), duplicate and rate
    limits across bars (a fresh state per bar; one order per day cannot hit them), other
    symbols' positions, open orders, fills, costs and the drift of the weight between
    closes.

    Parameters
    ----------
    symbol : str
    bars : DataFrame
        Daily bars with ``close``.
    target : ndarray, shape (n,)
        Target weight per bar; NaN = no decision (the book keeps its weight, the row's
        action is None).
    available_at : DatetimeIndex, shape (n,)
        When each bar's decision is made (its close).
    limits : RiskLimits
    regime_labels : sequence of str or None, optional
        MT regime label per bar.
    p_up : ndarray, optional
        Signal probability per bar; the order's confidence is ``|p - 0.5| * 2``.
    notional : float
    progress : callable, optional
        ``progress(done, total)``.

    Returns
    -------
    GateReplay
    """
    n = len(bars)
    target = np.asarray(target, dtype=float)
    if target.shape != (n,) or len(available_at) != n:
        raise ValueError("target and available_at must have one entry per bar")
    if not (np.isfinite(notional) and notional > 0):
        raise ValueError(f"notional must be positive, got {notional!r}")
    close = bars["close"].to_numpy(dtype=float)
    rets = bars["close"].astype(float).pct_change().to_numpy()
    approved = np.full(n, np.nan)
    action = np.full(n, None, dtype=object)
    reasons = np.full(n, None, dtype=object)
    state = RiskState()
    prev = 0.0
    for i in range(n):
        w = target[i]
        if progress is not None and (i % 250 == 0 or i == n - 1):
            progress(i + 1, n)
        if not np.isfinite(w):
            continue
        delta = w - prev
        if abs(delta) < 1e-12:
            approved[i], action[i] = prev, "hold"
            continue
        price = close[i]
        side = "buy" if delta > 0 else "sell"
        p = None if p_up is None or not np.isfinite(p_up[i]) else float(p_up[i])
        order = ProposedOrder(
            client_order_id=f"regimedesk-export:{symbol}:{bars.index[i].date().isoformat()}:{side}",
            symbol=symbol, side=side, qty=abs(delta) * notional / price, order_type="market",
            reference_price=price, confidence=None if p is None else abs(p - 0.5) * 2.0,
        )
        pf = Portfolio(cash=notional * (1.0 - prev), positions={symbol: prev * notional / price} if prev else {})
        label = None if regime_labels is None else regime_labels[i]
        market = MarketSnapshot(
            now=available_at[i], prices={symbol: price}, last_bar={symbol: bars.index[i]},
            bar_seconds={symbol: _DAY_SECONDS}, tradable={symbol: True}, market_open={symbol: True},
            regime={symbol: label} if label else {},
            returns={symbol: rets[max(1, i + 1 - GATE_RETURNS): i + 1]},
        )
        v = evaluate([order], pf, market, limits, state).verdicts[0]
        action[i] = v.action
        reasons[i] = ";".join(v.reasons) or None
        if v.action == "approve":
            prev = w
        elif v.approved:
            prev = prev + (1.0 if side == "buy" else -1.0) * v.qty * price / notional
        approved[i] = prev
    return GateReplay(approved, action, reasons)


def _positions(stamps: pd.DatetimeIndex, at: pd.DatetimeIndex) -> np.ndarray:
    """Index of the last stamp <= each ``at`` (-1 where none)."""
    return np.searchsorted(stamps.as_unit("ns").asi8, at.as_unit("ns").asi8, side="right") - 1


def _take(values: np.ndarray, pos: np.ndarray, missing: Any = None) -> list[Any]:
    return [values[k] if k >= 0 else missing for k in pos]


def _stamp_text(stamps: pd.DatetimeIndex, intraday: bool) -> np.ndarray:
    if intraday:
        return np.array([t.isoformat() for t in stamps], dtype=object)
    return np.array([t.date().isoformat() for t in stamps], dtype=object)


def _character(store, symbol: str, tf: str) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray] | None:
    window = store.lookback(tf)
    if window < MIN_CHARACTER_BARS:
        return None
    try:
        close = store.get(symbol, tf).frame["close"].astype(float)
    except RegimeDeskError:
        return None
    if len(close) < window:
        return None
    rc = rolling_market_character(np.log(close.to_numpy()), window)
    ok = np.asarray(rc.reason) == "ok"
    labels = np.asarray(rc.character, dtype=object).copy()
    labels[~ok] = None
    conf = np.where(ok, rc.confidence, np.nan)
    return close.index, labels, conf


def symbol_signals(
    store, symbol: str, settings: Settings, policy: str | None = None, *, progress: Progress | None = None,
) -> pd.DataFrame:
    """Every signal column of one symbol for every daily bar the store holds.

    Parameters
    ----------
    store : agents.services.context.BarStore
        Bars up to the export's end (its as-of date).
    symbol : str
        Canonical symbol.
    settings : Settings
    policy : {'regime', 'ml', 'combined'}, optional
        Default ``decision.policy``.
    progress : callable, optional
        ``progress(stage, done, total)``.

    Returns
    -------
    DataFrame
        Columns :data:`integrations.SIGNAL_COLUMNS`, one row per daily bar, oldest first.

    Raises
    ------
    InsufficientDataError
        Too few daily bars for the ML signal (``ml.min_train + 50``).
    """
    policy = policy or settings.decision.policy
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}, not {policy!r}")
    analysis = analyse_regimes(store, symbol, AGENT_METHOD)
    ds = _ml.build_dataset(store, symbol, settings, analysis)
    bars = ds.bars
    idx = bars.index
    n = len(idx)
    bar_start, available = session_times(symbol, idx)
    cols: dict[str, Any] = {
        "date": [t.date().isoformat() for t in idx],
        "symbol": [symbol] * n,
        "bar_start": [t.isoformat() for t in bar_start],
        "available_at": [t.isoformat() for t in available],
        "close": bars["close"].to_numpy(dtype=float),
    }
    mt_labels: list[str | None] = [None] * n
    for tf in TIMEFRAME_NAMES:
        p = tf.lower()
        step = Timeframe.parse(store.bar_of(tf))
        path = analysis.paths.get(tf)
        if path is None:
            cols[f"{p}_label"] = cols[f"{p}_bar"] = [None] * n
            cols[f"{p}_probability"] = np.full(n, np.nan)
        else:
            # a daily or weekly bar is stamped with its (last) session date and closes then;
            # an intraday bar is stamped with its start and closes one step later
            pos = (_positions(path.dates + step.step, available) if step.intraday
                   else _positions(path.dates, idx))
            cols[f"{p}_label"] = _take(np.asarray(path.labels, dtype=object), pos)
            cols[f"{p}_probability"] = np.array(_take(path.probability, pos, np.nan), dtype=float)
            cols[f"{p}_bar"] = _take(_stamp_text(path.dates, step.intraday), pos)
            if tf == "MT":
                mt_labels = cols["mt_label"]
        ch = _character(store, symbol, tf)
        if ch is None:
            cols[f"{p}_character"] = [None] * n
            cols[f"{p}_character_confidence"] = np.full(n, np.nan)
        else:
            stamps, labels, conf = ch
            pos = _positions(stamps + step.step, available) if step.intraday else _positions(stamps, idx)
            cols[f"{p}_character"] = _take(labels, pos)
            cols[f"{p}_character_confidence"] = np.array(_take(conf, pos, np.nan), dtype=float)
    cols["regime_family"] = ds.regime_family.to_numpy(dtype=object)

    wf = _ml._wf(ds, settings, progress)
    p_up = wf.probability.to_numpy(dtype=float)
    trained = np.full(n, None, dtype=object)
    for f in wf.folds:
        if "train_end" in f:
            lo, hi = idx.get_loc(f["test_start"]), idx.get_loc(f["test_end"])
            trained[lo:hi + 1] = pd.Timestamp(f["train_end"]).date().isoformat()
    cols["p_up"] = p_up
    cols["p_up_trained_through"] = trained
    cols["vol_forecast"] = ds.vol.to_numpy(dtype=float)
    # The same inputs and re-selection dates as agents.services.ml.backtest_policy.
    if policy == "regime":
        p_policy = np.full(n, np.nan)
        folds = list(_ml.splitter(settings).fold_starts(n))
    else:
        p_policy = p_up
        folds = [idx.get_loc(ts) for ts in wf.fold_starts]
    cb = (lambda d, t: progress("policy re-selections", d, t)) if progress else None
    wp = walk_forward_policy(policy, bars, ds.regime_family.to_numpy(), p_policy, ds.vol.to_numpy(), folds,
                             _ml.backtest_config(settings), progress=cb)
    target = np.minimum(wp.target.to_numpy(dtype=float), settings.decision.max_weight)
    cb2 = (lambda d, t: progress("risk-gate replay", d, t)) if progress else None
    gate = replay_gate(symbol, bars, target, available, _gate_limits(settings), regime_labels=mt_labels,
                       p_up=p_up, progress=cb2)
    cols["policy"] = [policy] * n
    cols["target_weight"] = target
    cols["approved_weight"] = gate.approved
    cols["gate_action"] = gate.action
    cols["gate_reasons"] = gate.reasons
    return coerce_signal_frame(pd.DataFrame(cols, columns=list(SIGNAL_COLUMNS)))


def export_signals(
    store, symbols: Sequence[str], settings: Settings, *, policy: str | None = None, start: str | None = None,
    progress: Progress | None = None, status: Callable[[str], Any] | None = None,
) -> SignalExport:
    """Signals of ``symbols`` from ``start`` to the store's end, merged in time order.

    Parameters
    ----------
    store : agents.services.context.BarStore
        Its as-of date is the export's end: no bar after it is loaded.
    symbols : sequence of str
        Canonical symbols, at least one, no duplicates.
    settings : Settings
    policy : str, optional
        Default ``decision.policy``.
    start : str, optional
        First date of the rows kept (computations still use all earlier bars).
    progress : callable, optional
        ``progress(stage, done, total)``.
    status : callable, optional
        Receives a line when each symbol starts.

    Raises
    ------
    ValueError
        No symbol, duplicates, or an unparseable ``start``.
    InsufficientDataError
        No row on or after ``start``.
    """
    symbols = tuple(symbols)
    if not symbols:
        raise ValueError("symbols: at least one symbol is needed")
    if len(set(symbols)) != len(symbols):
        raise ValueError(f"symbols: duplicates in {list(symbols)}")
    first_day = None
    if start is not None:
        try:
            first_day = pd.Timestamp(start).date().isoformat()
        except (ValueError, TypeError):
            raise ValueError(f"--start: cannot parse {start!r} as a date") from None
    policy = policy or settings.decision.policy
    t0 = time.perf_counter()
    frames = []
    first: dict[str, str | None] = {}
    for sym in symbols:
        if status is not None:
            status(f"{sym}: regimes, features, walk-forward forecasts, policy, risk-gate replay")
        f = symbol_signals(store, sym, settings, policy, progress=progress)
        ok = f["approved_weight"].notna()
        first[sym] = f.loc[ok, "date"].iloc[0] if ok.any() else None
        if first_day is not None:
            f = f[f["date"] >= first_day]
        frames.append(f)
    frame = pd.concat(frames, ignore_index=True)
    if frame.empty:
        raise InsufficientDataError(f"no bars on or after {first_day} up to the end of the data")
    order = np.lexsort((frame["symbol"].to_numpy(dtype=str), frame["available_at"].to_numpy(dtype=str)))
    frame = frame.iloc[order].reset_index(drop=True)
    source = store.get(symbols[0], "MT").source
    return SignalExport(frame, symbols, policy, source, first, time.perf_counter() - t0)
