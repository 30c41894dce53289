"""The Telegram bot's commands, approvals and alerts, wired onto :class:`integrations.CommandBot`.

Each command is a plain method of :class:`DeskCommands` taking an
:class:`integrations.Invocation` and returning an :class:`integrations.CommandReply`, built
from the same code the command line uses (``statistics_report``, ``analyse_regimes``,
``current_signal``, the :class:`~agents.runtime.runner.Runner`, the risk-state store, the brokers,
the scheduler's fire times), so they can be tested without Telegram. Replies are short
plain text for a phone screen. ``integrations`` holds the Telegram plumbing (allow-lists,
rate limit, worker threads, buttons); see ``docs/telegram.md``.

Alerts: :func:`run_alerts` reads one finished run from the journal and compares it with the
previous run of the same symbols (regime consensus changes, gate rejections and trims,
circuit-breaker events, orders sent and fills); :class:`AlertWatcher` sends them with
:class:`integrations.TelegramSender` to ``telegram.chat_ids`` for every run that finishes
while the bot is up, whoever started it (the bot, ``regimedesk run`` or the scheduler).
Scheduled PDF reports are delivered by the scheduler itself.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agents.config import Secrets, Settings
from agents.services.context import as_of_clock
from agents.services.format import format_value
from agents.services.run_summary import order_line, run_brief_lines
from integrations import (
    AccessPolicy,
    BotStateStore,
    CommandBot,
    CommandReply,
    CommandSpec,
    Invocation,
    MissingCredentialsError,
    help_text,
    parse_args,
    parse_symbols,
)

__all__ = [
    "DeskCommands",
    "DeskBot",
    "AlertWatcher",
    "build_bot",
    "run_alerts",
    "send_run_alerts",
    "run_brief",
    "approval_text",
    "flatten_text",
    "FLATTEN_CONFIRM_SECONDS",
    "SCAN_MAX_SYMBOLS",
]

log = logging.getLogger(__name__)

_REGIME_METHODS = ("hmm", "garch", "markov", "jump", "ensemble")
#: Most symbols one /scan may list (a universe may hold more).
SCAN_MAX_SYMBOLS = 20
_BROKERS = ("none", "paper", "alpaca")
_MAX_LINES = 25


def _as_of(value: str) -> str:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError(f"--as-of must be a date like 2008-12-31, not {value!r}")
    as_of_clock(value)
    return value


def _lines(lines: Sequence[str], limit: int = _MAX_LINES) -> str:
    """Join lines, keeping a reply short enough for a phone screen."""
    out = list(lines)
    if len(out) > limit:
        out = out[: limit - 1] + [f"... ({len(out) - limit + 1} more lines)"]
    return "\n".join(out)


def _short(reason: object, limit: int = 70) -> str:
    """The first clause of an explanation, for one phone line."""
    text = str(reason or "").split(":")[0].strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _day(iso: str | None) -> str:
    return (iso or "-")[:10]


def _when(iso: str | None) -> str:
    return (iso or "-")[:16].replace("T", " ")


# ------------------------------------------------------------------ run summaries


def run_brief(outcome) -> str:
    """:func:`agents.services.run_summary.run_brief_lines`, cut to a phone screen."""
    return _lines(run_brief_lines(outcome))


def flatten_text(res) -> str:
    """What a flatten (an :class:`agents.services.emergency.FlattenResult`) did, for a phone screen."""
    head = "done" if res.complete else "INCOMPLETE"
    lines = [f"Flatten {res.broker}: {head} (journal run {res.run_id})",
             f"Cancelled {len(res.cancelled)} open order(s)" + (": " if res.cancelled else "")
             + ", ".join(f"{o['side'].upper()} {o['qty']:g} {o['symbol']}" for o in res.cancelled[:8])]
    if res.kept:
        lines.append(f"Left working (closes from an earlier flatten): {len(res.kept)}")
    lines.append(f"Sent {len(res.sent)} closing order(s)")
    for o in res.sent[:10]:
        px = o.get("avg_fill_price")
        fill = f" {o.get('filled_qty', 0):g} @ {px:,.2f}" if px else ""
        lines.append(f"  {o['side'].upper()} {o['qty']:g} {o['symbol']}: {o['status']}{fill}")
    for r in res.rejected[:8]:
        lines.append(f"NOT closed: {r['side'].upper()} {r['qty']:g} {r['symbol']} ({', '.join(r['reasons'])[:100]})")
    for err in res.errors[:3]:
        lines.append(f"! {err[:160]}")
    lines.append(f"Trading state {res.trading_state}: {res.reason} (by {res.by}). /resume re-opens trading.")
    return _lines(lines)


def approval_text(pending: Mapping[str, Any], broker: str) -> str:
    """The approval prompt: proposed orders with the gate's verdicts, for a phone screen."""
    lines = [f"Approval needed: run {pending.get('run_id')} (broker {broker})"]
    decision = pending.get("decision", {})
    gate = pending.get("risk_gate", {})
    n_orders = 0
    for symbol in pending.get("symbols", []):
        d = decision.get("symbols", {}).get(symbol, {})
        head = symbol
        if isinstance(d, dict) and d.get("target_weight") is not None:
            head += f": target {d['target_weight']:.0%} (now {d.get('current_weight') or 0:.0%})"
            family = d.get("inputs", {}).get("regime_family")
            if family:
                head += f", regime {family}"
        lines.append(head)
        verdicts = gate.get("symbols", {}).get(symbol, [])
        if not verdicts:
            lines.append("  no order proposed")
        for v in verdicts:
            lines.append(order_line(v))
            n_orders += 1
    lines.append(f"Trading state {gate.get('trading_state', '?')}")
    for event in gate.get("events", []):
        lines.append(f"Circuit breaker: {event}")
    lines.append("Approve sends the orders the gate approved; Reject sends nothing." if n_orders
                 else "Nothing to send either way; answering finishes the run.")
    lines.append(f"Thread {pending.get('thread_id')}")
    return _lines(lines)


# ------------------------------------------------------------------ alerts


def _agent_output(doc: Mapping[str, Any], agent: str) -> dict[str, Any]:
    for row in reversed(doc.get("agent_outputs", [])):
        if row.get("agent") == agent:
            return row.get("output") or {}
    return {}


def _consensus(doc: Mapping[str, Any], symbol: str) -> dict[str, Any] | None:
    reg = _agent_output(doc, "regime").get("regime", {}).get(symbol)
    if isinstance(reg, dict) and isinstance(reg.get("consensus"), dict) and reg["consensus"].get("label"):
        return reg["consensus"]
    return None


def run_alerts(journal, run_id: str, *, lookback: int = 200) -> list[str]:
    """Alert lines for one finished run, read from the journal.

    Parameters
    ----------
    journal : integrations.Journal
    run_id : str
    lookback : int, default 200
        How many recent runs are searched for the previous run of each symbol.

    Returns
    -------
    list of str
        One line per alert, possibly empty: a regime consensus different from the previous
        completed run that covered the symbol, each gate rejection or trim, each
        circuit-breaker event, and each order sent with its latest status (fills with
        quantity and average price; an order given up because it could not be settled with
        the broker says so, with the error).
    """
    doc = journal.show_run(run_id)
    run = doc["run"]
    out: list[str] = []
    older = [r for r in journal.list_runs(lookback) if r.run_id != run_id and r.status == "completed"
             and (r.started_at or "") <= (run.get("started_at") or "")]
    for symbol in run.get("symbols", []):
        now = _consensus(doc, symbol)
        if now is None:
            continue
        for prev_run in older:
            if symbol not in prev_run.symbols:
                continue
            before = _consensus(journal.show_run(prev_run.run_id), symbol)
            if before is None:
                continue
            if before["label"] != now["label"]:
                out.append(f"{symbol} regime changed: {before['label']} -> {now['label']} "
                           f"({now.get('family')}, p {format_value(now.get('probability'))}; "
                           f"previous run {prev_run.run_id})")
            break
    for v in doc.get("verdicts", []):
        if v.get("verdict") in ("reject", "rejected", "trim", "trimmed"):
            order = v.get("order", {})
            word = "rejected" if v["verdict"].startswith("reject") else "trimmed"
            reasons = ", ".join(v.get("reasons") or []) or "no reason given"
            out.append(f"Gate {word} {v.get('symbol')} {str(order.get('side', '?')).upper()} "
                       f"{order.get('qty', 0):g}: {reasons}")
    for event in _agent_output(doc, "risk_gate").get("risk_gate", {}).get("events", []):
        out.append(f"Circuit breaker: {event}")
    latest: dict[str, dict[str, Any]] = {}
    for o in doc.get("orders", []):
        latest[o["client_order_id"]] = o
    fills: dict[str, list[dict[str, Any]]] = {}
    for f in doc.get("fills", []):
        fills.setdefault(f["client_order_id"], []).append(f)
    for coid, o in latest.items():
        got = fills.get(coid, [])
        qty = sum(f["qty"] for f in got)
        text = f"{o['side'].upper()} {o['qty']:g} {o['symbol']} ({o['broker']})"
        if qty > 0:
            avg = sum(f["qty"] * f["price"] for f in got) / qty
            out.append(f"Filled {text}: {qty:g} @ {avg:,.2f}")
        elif (o.get("payload") or {}).get("reason") == "reconcile_failed":
            out.append(f"Order given up {text}: could not be settled with the broker after "
                       f"{o['payload'].get('attempts')} attempts ({o['payload'].get('error')}); check it at the broker")
        else:
            out.append(f"Order sent {text}: {o['status']}")
    return out


def send_run_alerts(settings: Settings, secrets: Secrets, run_id: str, *, journal=None, sender=None) -> list:
    """Send :func:`run_alerts` of one run to ``telegram.chat_ids`` in one message.

    Parameters
    ----------
    settings, secrets
        Configuration (the token from ``TELEGRAM_BOT_TOKEN``).
    run_id : str
    journal : integrations.Journal, optional
        Default: the journal in ``home``.
    sender : integrations.TelegramSender, optional
        Default: one built from the configuration (nothing is sent without a token or chats).

    Returns
    -------
    list of integrations.Delivery
        Empty when there was nothing to say or nowhere to say it.
    """
    from agents.runtime.scheduler import build_sender
    from integrations import Journal

    own = journal is None
    if own:
        journal = Journal(settings.paths.journal)
    try:
        lines = run_alerts(journal, run_id)
        symbols = ", ".join(journal.get_run(run_id).symbols)
    finally:
        if own:
            journal.close()
    sender = sender if sender is not None else build_sender(settings, secrets)
    if not lines or sender is None or not settings.telegram.chat_ids:
        return []
    text = _lines([f"RegimeDesk alert, run {run_id} ({symbols}):", *(f"- {line}" for line in lines)], 30)
    return sender.send_message(settings.telegram.chat_ids, text)


class AlertWatcher:
    """Alerts about every run that finishes, and every live-session event, while the bot is up.

    A daemon thread looks in the journal every ``interval`` seconds (or at once after
    :meth:`poke`) for completed runs not yet alerted, and sends :func:`run_alerts` for each.
    Runs are remembered in the bot's state file, so each is alerted at most once, also
    across restarts; runs finished before that file was created are never alerted.

    Parameters
    ----------
    settings, secrets
        Configuration.
    store : integrations.BotStateStore
        Remembers alerted runs.
    sender : integrations.TelegramSender
        Where alerts go (to ``telegram.chat_ids``).
    interval : float
        Seconds between looks (> 0).
    """

    def __init__(self, settings: Settings, secrets: Secrets, store: BotStateStore, sender, interval: float) -> None:
        if not interval > 0:
            raise ValueError("interval must be > 0 seconds")
        self.settings = settings
        self.secrets = secrets
        self.store = store
        self.sender = sender
        self.interval = float(interval)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._scan_lock = threading.Lock()
        self._live_after = 0  # live events are read forward from here, 500 per look

    def scan_once(self) -> list[str]:
        """Alert every completed, not yet alerted run and live-session event (feed silent or back,
        failed bar, ...); returns the run ids (and ``live:<event id>``) looked at."""
        from integrations import Journal

        since = datetime.fromtimestamp(self.store.created_at, UTC).isoformat()
        done: list[str] = []
        with self._scan_lock, Journal(self.settings.paths.journal) as journal:
            for run in reversed(journal.list_runs(50)):
                if run.status != "completed" or not run.finished_at or run.finished_at < since:
                    continue
                if not self.store.mark_notified(f"run:{run.run_id}"):
                    continue
                try:
                    send_run_alerts(self.settings, self.secrets, run.run_id, journal=journal, sender=self.sender)
                except Exception:  # one bad run or a Telegram outage must not stop the watcher
                    log.warning("could not send the alerts of run %s", run.run_id, exc_info=True)
                done.append(run.run_id)
            for event in journal.live_events(after_id=self._live_after, limit=500):
                self._live_after = max(self._live_after, int(event["id"]))
                if event["ts"] < since or not self.store.mark_notified(f"live:{event['id']}"):
                    continue
                text = f"RegimeDesk live {event['session']}: [{event['kind']}] {event['message']}"
                try:
                    if self.settings.telegram.chat_ids:
                        self.sender.send_message(self.settings.telegram.chat_ids, text)
                except Exception:  # a Telegram outage must not stop the watcher
                    log.warning("could not send live event %s", event["id"], exc_info=True)
                done.append(f"live:{event['id']}")
        return done

    def poke(self) -> None:
        """Look now (after a run the bot started)."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.scan_once()
            except Exception:
                log.warning("the alert watcher could not read the journal", exc_info=True)
            self._wake.wait(self.interval)
            self._wake.clear()

    def start(self) -> None:
        """Start the daemon thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="regimedesk-alerts", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread (after the current look)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None


# ------------------------------------------------------------------ commands


def _builtin_universes() -> tuple[str, ...]:
    from integrations import BUILTIN_UNIVERSES

    return tuple(BUILTIN_UNIVERSES)


def _universe_names(settings: Settings) -> list[str]:
    from agents.services.portfolio import universe_names

    return list(universe_names(settings))


_ADMIN_NOTE = ("Admin only: /halt, /reduce, /resume, /flatten, /run with --broker or --approve, and the "
               "Approve / Reject buttons.")

#: Seconds a /flatten confirmation stays valid; an older button is refused (send /flatten again).
FLATTEN_CONFIRM_SECONDS = 300.0


class DeskCommands:
    """The bot's commands as plain functions ``method(Invocation) -> CommandReply``.

    Parameters
    ----------
    settings, secrets
        Configuration.
    after_run : callable, optional
        Called after every run a command started (the bot pokes its alert watcher).
    clock : callable, optional
        The current aware datetime (for /schedule).
    """

    def __init__(self, settings: Settings, secrets: Secrets, *, after_run: Callable[[], None] | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.settings = settings
        self.secrets = secrets
        self.after_run = after_run
        self.clock = clock or (lambda: datetime.now(UTC))
        self._flattens: dict[str, dict[str, Any]] = {}  # confirmation token -> the pending /flatten
        self._flatten_lock = threading.Lock()

    # -------------------------------------------------------------- plumbing

    def specs(self) -> tuple[CommandSpec, ...]:
        """Every command, in the order /help lists them."""
        n = self.settings.telegram.max_symbols
        return (
            CommandSpec("start", self.start, "/start", "who you are to this bot"),
            CommandSpec("help", self.help, "/help", "this list"),
            CommandSpec("status", self.status, "/status", "trading state, last run, positions"),
            CommandSpec("regime", self.regime, "/regime SYMBOL [--method hmm|garch|markov|jump|ensemble] [--as-of DATE]",
                        "regime per timeframe and consensus", long=True),
            CommandSpec("stats", self.stats, "/stats SYMBOL [--as-of DATE]",
                        "ADF, variance ratio, Hurst, market character", long=True),
            CommandSpec("signal", self.signal, "/signal SYMBOL [--as-of DATE]",
                        "ML P(up) with its out-of-sample record", long=True),
            CommandSpec("run", self.run,
                        f"/run SYMBOL... [--broker none|paper|alpaca] [--approve] [--as-of DATE]\n"
                        f"At most {n} symbols. --broker and --approve need an admin.",
                        "run the agent graph", admin=self.run_needs_admin, long=True),
            CommandSpec("report", self.report, f"/report SYMBOL... [--no-backtest] [--as-of DATE]\nAt most {n} symbols.",
                        "PDF report (no broker)", long=True),
            CommandSpec("positions", self.positions, "/positions [paper|alpaca]", "the broker's positions"),
            CommandSpec("orders", self.orders, "/orders [paper|alpaca] [--all]", "open (or all) orders"),
            CommandSpec("risk", self.risk, "/risk", "risk state and its recent changes"),
            CommandSpec("portfolio", self.portfolio, "/portfolio [UNIVERSE] [erc|mv|hrp|invvol|equal] [--as-of DATE]",
                        "a universe's target weights, 99% VaR and ES", long=True),
            CommandSpec("stress", self.stress, "/stress [UNIVERSE] [ltcm|dotcom|gfc|euro|covid|all] [--as-of DATE]",
                        "historical stress windows on those weights", long=True),
            CommandSpec("scan", self.scan,
                        f"/scan UNIVERSE|SYMBOL...\nA universe name (builtin or [portfolio.universes]) or at most "
                        f"{SCAN_MAX_SYMBOLS} symbols.",
                        "regimes and what changed since the last scan", long=True),
            CommandSpec("halt", self.halt, "/halt [REASON]", "kill switch: reject every new order", admin=True),
            CommandSpec("reduce", self.reduce, "/reduce [REASON]", "only exposure-reducing orders", admin=True),
            CommandSpec("resume", self.resume, "/resume [REASON]", "back to normal trading", admin=True),
            CommandSpec("flatten", self.flatten,
                        "/flatten [paper|alpaca] [REASON]\nShows what would be cancelled and closed; Approve "
                        f"(within {FLATTEN_CONFIRM_SECONDS / 60:g} minutes) halts, cancels and closes.",
                        "emergency stop: halt, cancel open orders, close positions", admin=True, long=True),
            CommandSpec("schedule", self.schedule, "/schedule", "next scheduled jobs"),
        )

    def _store(self, symbol: str, as_of: str | None):
        from agents.services.context import symbol_bar_store

        return symbol_bar_store(self.settings, self.secrets, symbol, as_of=as_of)

    def _one_symbol(self, inv: Invocation, **options) -> tuple[str, dict[str, str]]:
        parsed = parse_args(inv.args, options={"as-of": _as_of, **options})
        (symbol,) = parse_symbols(parsed.positional, at_least=1, at_most=1)
        return symbol, dict(parsed.options)

    def _runner(self):
        from agents.runtime.runner import Runner

        return Runner(self.settings, self.secrets)

    def _ran(self) -> None:
        if self.after_run is not None:
            try:
                self.after_run()
            except Exception:
                log.warning("after-run hook failed", exc_info=True)

    # -------------------------------------------------------------- commands

    def start(self, inv: Invocation) -> CommandReply:
        """Greeting with the caller's role and ids."""
        role = "an admin" if inv.is_admin else "a user"
        return CommandReply(f"RegimeDesk bot. You are {role} here (chat id {inv.chat_id}, user id {inv.user_id}).\n"
                            "/help lists the commands.")

    def help(self, inv: Invocation) -> CommandReply:
        """The command list."""
        text = help_text(self.specs(), title="RegimeDesk commands")
        return CommandReply(f"{text}\n{_ADMIN_NOTE} DATE is YYYY-MM-DD (data up to that day only).")

    def status(self, inv: Invocation) -> CommandReply:
        """Trading state, last run, positions summary, next scheduled job."""
        from agents.services.context import AppContext
        from integrations import Journal

        if inv.args:
            raise ValueError("/status takes no arguments")
        lines = ["RegimeDesk status"]
        app = AppContext(self.settings, self.secrets)
        try:
            st = app.risk_store().load()
            lines.append(f"Trading: {st.trading_state}" + (f" ({st.reason})" if st.reason else ""))
            self.settings.home_dir.mkdir(parents=True, exist_ok=True)
            with Journal(self.settings.paths.journal) as journal:
                runs = journal.list_runs(1)
            if runs:
                r = runs[0]
                lines.append(f"Last run: {r.run_id} {r.status}, {_when(r.started_at)} UTC ({', '.join(r.symbols)})")
            else:
                lines.append("Last run: none yet")
            name = self.settings.telegram.broker
            try:
                broker = app.broker({"broker": name})
                acct, pos, open_orders = broker.account(), broker.positions(), broker.open_orders()
                held = ", ".join(f"{p.symbol} {p.qty:g}" for p in pos.values()) or "no positions"
                lines.append(f"{name}: equity {acct.equity:,.2f}, cash {acct.cash:,.2f}")
                lines.append(f"Positions: {held}; open orders: {len(open_orders)}")
            except Exception as exc:  # status must answer even when the broker cannot
                lines.append(f"{name}: unavailable ({type(exc).__name__}: {str(exc)[:120]})")
        finally:
            app.close()
        from agents.runtime.live import format_live_status, live_status

        doc = live_status(self.settings)
        if doc["sessions"] or doc["risk"]["silent_feeds"]:
            lines.extend(format_live_status(doc, with_trading_state=False))
        upcoming = [(times[0], name) for name, times in self._next_jobs(1) if times]
        if upcoming:
            when, name = min(upcoming)
            lines.append(f"Next job: {name} at {when.astimezone(UTC):%Y-%m-%d %H:%M} UTC")
        return CommandReply(_lines(lines))

    def regime(self, inv: Invocation) -> CommandReply:
        """Per-timeframe regimes and consensus, as ``regimedesk regime SYMBOL``."""
        from agents.services.regime import analyse_regimes, regime_report

        symbol, opts = self._one_symbol(inv, method=_REGIME_METHODS)
        method = opts.get("method", "hmm")
        store, symbol = self._store(symbol, opts.get("as-of"))
        logging.getLogger("hmmlearn").setLevel(logging.ERROR)
        report = regime_report(analyse_regimes(store, symbol, method))
        lines = [f"{symbol} regimes ({method})" + (f" as of {opts['as-of']}" if "as-of" in opts else "")]
        for tf, r in report["timeframes"].items():
            if not r.get("available"):
                lines.append(f"{tf}: unavailable - {_short(r.get('reason'))}")
                continue
            lines.append(f"{tf} {r['bar']}: {r['label']} p {format_value(r['probability'])}, since {_day(r['since'])} "
                         f"({r['bars_in_regime']} bars)")
        c = report["consensus"]
        agreement = "" if c.get("agreement") is None else f", agreement {c['agreement']:.2f}"
        lines.append(f"Consensus: {c['label']} ({c['family']}{agreement})")
        for conflict in c.get("conflicts", [])[:3]:
            lines.append(f"Conflict: {conflict['timeframe_a']} {conflict['label_a']} vs "
                         f"{conflict['timeframe_b']} {conflict['label_b']}")
        return CommandReply(_lines(lines))

    def stats(self, inv: Invocation) -> CommandReply:
        """Statistical tests per timeframe, as ``regimedesk stats SYMBOL``."""
        from agents.config import TIMEFRAME_NAMES
        from agents.services.statistics import statistics_report
        from analytics import RegimeDeskError

        symbol, opts = self._one_symbol(inv)
        store, symbol = self._store(symbol, opts.get("as-of"))
        lines = [f"{symbol} statistics" + (f" as of {opts['as-of']}" if "as-of" in opts else "")]
        for tf in TIMEFRAME_NAMES:
            try:
                rep = statistics_report(store.get(symbol, tf).frame["close"], store.lookback(tf))
            except RegimeDeskError as exc:
                lines.append(f"{tf}: unavailable - {_short(str(exc))}")
                continue
            ch = rep.get("character", {})
            char = (f"{str(ch['character']).replace('_', ' ')} (confidence {ch['confidence']:.2f})"
                    if ch.get("available") else "character n/a")
            lines.append(f"{tf} {store.bar_of(tf)}, {rep['nobs']} bars to {_day(rep['end'])}: {char}")
            parts = []
            if "pvalue" in rep.get("adf", {}):
                parts.append(f"ADF p {rep['adf']['pvalue']:.2f}")
            if "joint_pvalue" in rep.get("variance_ratio", {}):
                parts.append(f"VR p {rep['variance_ratio']['joint_pvalue']:.2f}")
            if "hurst" in rep.get("hurst", {}):
                parts.append(f"H {rep['hurst']['hurst']:.2f}")
            if "ljung_box_pvalue" in rep.get("autocorrelation", {}):
                parts.append(f"LB p {rep['autocorrelation']['ljung_box_pvalue']:.2f}")
            if parts:
                lines.append("  " + " | ".join(parts))
        return CommandReply(_lines(lines))

    def signal(self, inv: Invocation) -> CommandReply:
        """The ML signal at the last bar, as the ml_signal agent computes it."""
        from agents.services.ml import current_signal

        symbol, opts = self._one_symbol(inv)
        store, symbol = self._store(symbol, opts.get("as-of"))
        s = current_signal(store, symbol, self.settings, recompute=self.settings.engine.recompute)
        oos = s["out_of_sample"]
        top = sorted(s["top_contributions"].items(), key=lambda kv: -abs(kv[1]))[:3]
        lines = [f"{symbol} signal, data to {_day(s['as_of'])}",
                 f"P(up over {s['horizon_bars']} bars): {s['p_up']:.2f} -> {s['direction']} "
                 f"(confidence {s['confidence']:.2f})",
                 f"Model {s['model_version']}, trained to {_day(s['model_train_end'])} "
                 f"({s['model_age_days']:.0f} days old)",
                 f"Out of sample: AUC {format_value(oos['auc'], '.3f')}, Brier {format_value(oos['brier'], '.4f')} "
                 f"vs {format_value(oos['brier_climatology'], '.4f')} base rate, {oos['n']:,} forecasts"]
        if top:
            lines.append("Drivers: " + ", ".join(f"{k} {v:+.3f}" for k, v in top))
        if s.get("model_note"):
            lines.append(f"Note: {s['model_note'][:160]}")
        return CommandReply(_lines(lines))

    @staticmethod
    def _parse_run(args: Sequence[str], max_symbols: int):
        parsed = parse_args(args, flags=("approve",), options={"broker": _BROKERS, "as-of": _as_of})
        symbols = parse_symbols(parsed.positional, at_least=1, at_most=max_symbols)
        return symbols, parsed.options.get("broker", "none"), "approve" in parsed.flags, parsed.options.get("as-of")

    def run_needs_admin(self, args: Sequence[str]) -> bool:
        """/run needs an admin when it names a broker or asks for approval."""
        _, broker, approve, _ = self._parse_run(args, self.settings.telegram.max_symbols)
        return broker != "none" or approve

    def run(self, inv: Invocation) -> CommandReply:
        """Run the agent graph; with --approve, stop for the Approve / Reject buttons."""
        from agents.services.context import build_request

        symbols, broker, approve, as_of = self._parse_run(inv.args, self.settings.telegram.max_symbols)
        if (broker != "none" or approve) and not inv.is_admin:  # the bot checks first; never trust one layer
            raise ValueError("--broker and --approve need an admin")
        request = build_request(self.settings, self.secrets, symbols, broker=broker, approve=approve, as_of=as_of)
        with self._runner() as runner:
            outcome = runner.start(request)
        if outcome.status == "interrupted" and outcome.pending is not None:
            return CommandReply(approval_text(outcome.pending, broker), approval=outcome.thread_id)
        self._ran()
        return CommandReply(run_brief(outcome))

    def approve(self, thread_id: str, approved: bool, inv: Invocation) -> CommandReply:
        """Answer a run waiting for approval, or a /flatten confirmation (an admin pressed
        Approve or Reject).

        ``thread_id`` is a run's thread, or the ``flatten-...`` token of a /flatten reply.

        Raises
        ------
        RegimeDeskError
            The run is unknown, finished or not waiting (a second answer).
        ValueError
            Not an admin; a /flatten confirmation that is unknown, already answered, from
            another chat or older than :data:`FLATTEN_CONFIRM_SECONDS`.
        """
        if not inv.is_admin:
            raise ValueError("only an admin may approve or reject")
        if thread_id.startswith("flatten-"):
            return self._answer_flatten(thread_id, approved, inv)
        with self._runner() as runner:
            outcome = runner.resume(thread_id, {"approved": bool(approved), "by": inv.who, "note": "telegram button"})
        self._ran()
        return CommandReply(run_brief(outcome))

    def report(self, inv: Invocation) -> CommandReply:
        """Run the graph without a broker and send its PDF report."""
        from agents.services.context import build_request

        parsed = parse_args(inv.args, flags=("no-backtest",), options={"as-of": _as_of})
        symbols = parse_symbols(parsed.positional, at_least=1, at_most=self.settings.telegram.max_symbols)
        folder = self.settings.reports_dir
        folder.mkdir(parents=True, exist_ok=True)
        stamp = self.clock().astimezone(UTC).strftime("%Y%m%d-%H%M%S")
        path = folder / f"telegram-{'-'.join(s.replace('/', '_') for s in symbols)}-{stamp}-{uuid.uuid4().hex[:4]}.pdf"
        backtest = self.settings.report.backtest and "no-backtest" not in parsed.flags
        request = build_request(self.settings, self.secrets, symbols, as_of=parsed.options.get("as-of"),
                                report=str(path), report_backtest=backtest)
        with self._runner() as runner:
            outcome = runner.start(request)
        self._ran()
        pdf = outcome.state.get("report", {}).get("pdf") or {}
        if pdf.get("error") or not Path(path).is_file():
            return CommandReply(f"Report NOT written: {pdf.get('error', 'no file')}\n(run {outcome.run_id})")
        as_of = outcome.state.get("market_data", {}).get(request.symbols[0], {}).get("MT", {}).get("last")
        caption = f"RegimeDesk report {', '.join(request.symbols)}, data to {_day(as_of)}"
        return CommandReply(f"Report {', '.join(request.symbols)}: {pdf.get('pages')} pages, {pdf.get('figures')} "
                            f"charts (run {outcome.run_id}{', no backtest' if not backtest else ''}).",
                            document=Path(path), caption=caption)

    def _broker_arg(self, words: Sequence[str]) -> str:
        names = [w.lower() for w in words if w.lower() in ("paper", "alpaca")]
        if len(names) > 1 or len(names) != len(words):
            raise ValueError("give at most one broker: paper or alpaca")
        return names[0] if names else self.settings.telegram.broker

    def positions(self, inv: Invocation) -> CommandReply:
        """Positions, cash and equity at the broker."""
        from agents.services.context import AppContext

        name = self._broker_arg(inv.args)
        app = AppContext(self.settings, self.secrets)
        try:
            broker = app.broker({"broker": name})
            acct, pos = broker.account(), broker.positions()
        finally:
            app.close()
        lines = [f"{name}: equity {acct.equity:,.2f}, cash {acct.cash:,.2f}"]
        if not pos:
            lines.append("No positions.")
        for p in pos.values():
            last = "" if p.market_price is None else f", last {p.market_price:,.2f}"
            lines.append(f"{p.symbol}: {p.qty:g} @ {p.avg_price:,.2f}{last}")
        return CommandReply(_lines(lines))

    def orders(self, inv: Invocation) -> CommandReply:
        """Open orders at the broker (``--all``: every order, newest last)."""
        from agents.services.context import AppContext

        parsed = parse_args(inv.args, flags=("all",))
        name = self._broker_arg(parsed.positional)
        show_all = "all" in parsed.flags
        app = AppContext(self.settings, self.secrets)
        try:
            broker = app.broker({"broker": name})
            if show_all and not hasattr(broker, "orders"):
                raise ValueError(f"--all is not available for {name}")
            orders = broker.orders() if show_all else broker.open_orders()
        finally:
            app.close()
        lines = [f"{name}: {'all' if show_all else 'open'} orders ({len(orders)})"]
        if not orders:
            lines[0] = f"{name}: no {'' if show_all else 'open '}orders"
        for o in orders[-20:]:
            px = "" if o.avg_fill_price is None else f" @ {o.avg_fill_price:,.2f}"
            lines.append(f"{o.symbol} {o.side.upper()} {o.qty:g}: {o.status}, filled {o.filled_qty:g}{px} "
                         f"({_day(o.submitted_at)})")
        return CommandReply(_lines(lines))

    def risk(self, inv: Invocation) -> CommandReply:
        """The risk gate's trading state and its latest changes."""
        from agents.services.context import AppContext

        if inv.args:
            raise ValueError("/risk takes no arguments")
        app = AppContext(self.settings, self.secrets)
        try:
            store = app.risk_store()
            st, events = store.load(), store.events(5)
        finally:
            app.close()
        lines = [f"Trading state: {st.trading_state}", f"Reason: {st.reason or '-'}",
                 f"Peak equity: {format_value(st.peak_equity, ',.2f')}; "
                 f"day start: {format_value(st.day_start_equity, ',.2f')}"]
        if events:
            lines.append("Recent changes (newest first):")
        for e in events:
            lines.append(f"{_when(e['ts'])} {e['from']}->{e['to']} by {e['by']}: {str(e['reason'])[:80]}")
        return CommandReply(_lines(lines))

    def portfolio(self, inv: Invocation) -> CommandReply:
        """Today's target weights of a universe with their one-day VaR and ES (read-only)."""
        from agents.services import portfolio_text as text
        from agents.services.portfolio_risk import load_book, universe_var

        parsed = parse_args(inv.args, options={"as-of": _as_of})
        universe, method = text.portfolio_args(self.settings, parsed.positional)
        book, _ = load_book(self.settings, self.secrets, universe, method, as_of=parsed.options.get("as-of"))
        doc = universe_var(book, [text.VAR_METHOD], level=text.VAR_LEVEL)
        return CommandReply(text.portfolio_text(self.settings, book, doc))

    def stress(self, inv: Invocation) -> CommandReply:
        """Historical stress windows on a universe's target weights (read-only)."""
        from agents.services.portfolio_risk import load_book, universe_stress
        from agents.services.portfolio_text import stress_args, stress_text

        parsed = parse_args(inv.args, options={"as-of": _as_of})
        universe, keys = stress_args(self.settings, parsed.positional)
        book, store = load_book(self.settings, self.secrets, universe, as_of=parsed.options.get("as-of"))
        return CommandReply(stress_text(universe_stress(self.settings, book, store, keys, {})))

    def _scan_targets(self, words: Sequence[str]) -> tuple[str, list[str], bool]:
        """``/scan`` arguments -> (name shown, symbols, whether one word was taken as a symbol).

        Only universe *names* are looked up, never files: a chat must not make the bot read
        files on its host.
        """
        from agents.services.portfolio import resolve_universe
        from agents.services.portfolio_text import BotInputError

        parsed = parse_args(words)
        if not parsed.positional:
            raise ValueError("give a universe or symbols")
        if len(parsed.positional) == 1:
            word = parsed.positional[0]
            configured = self.settings.portfolio.universes
            folded = [n for n in configured if n.lower() == word.lower()]
            name = word if word in configured else folded[0] if len(folded) == 1 else word.lower()
            if name in configured or name in _builtin_universes():
                uni = resolve_universe(self.settings, name)
                return uni.name, list(uni.symbols), False
        try:
            symbols = parse_symbols(parsed.positional, at_least=1, at_most=SCAN_MAX_SYMBOLS)
        except ValueError as exc:
            raise BotInputError(f"{exc}; or name one universe: {', '.join(_universe_names(self.settings))}") from None
        return ", ".join(symbols), list(symbols), len(symbols) == 1

    def scan(self, inv: Invocation) -> CommandReply:
        """Scan a universe or symbols like ``regimedesk scan`` (workers from ``[compute]``) and
        answer with what changed since the last scan (the scan state is shared with the command line)."""
        from agents.runtime.scan import run_scan
        from agents.runtime.scan_text import scan_summary
        from agents.services.portfolio_text import BotInputError

        name, symbols, lone = self._scan_targets(inv.args)
        outcome = run_scan(self.settings, symbols, universe=name, save=True)
        if lone and not outcome.records[0].ok:
            reason = " ".join(str(outcome.records[0].error).split())
            reason = reason if len(reason) <= 120 else reason[:117] + "..."
            raise BotInputError(f"{name!r} is not a universe ({', '.join(_universe_names(self.settings))}) "
                                f"and scanning it as a symbol failed: {reason}")
        return CommandReply(scan_summary(outcome))

    def _set_state(self, inv: Invocation, to: str) -> CommandReply:
        from agents.services.context import AppContext

        if not inv.is_admin:  # the bot checks first; never trust one layer
            raise ValueError("this command needs an admin")
        reason = " ".join(inv.args).strip()[:200] or f"/{inv.command} from Telegram"
        app = AppContext(self.settings, self.secrets)
        try:
            st = app.risk_store().set_trading_state(to, reason, by=inv.who)
        finally:
            app.close()
        return CommandReply(f"Trading state {st.trading_state}: {st.reason} (by {inv.who})")

    def halt(self, inv: Invocation) -> CommandReply:
        """Kill switch: HALTED."""
        return self._set_state(inv, "HALTED")

    def reduce(self, inv: Invocation) -> CommandReply:
        """Only exposure-reducing orders: REDUCING."""
        return self._set_state(inv, "REDUCING")

    def resume(self, inv: Invocation) -> CommandReply:
        """Back to normal trading: ACTIVE."""
        return self._set_state(inv, "ACTIVE")

    def flatten(self, inv: Invocation) -> CommandReply:
        """Emergency stop, first step: show what would be cancelled and closed, with the buttons.

        Nothing changes until an admin presses Approve on the reply (in the same chat, once,
        within :data:`FLATTEN_CONFIRM_SECONDS`); then :meth:`approve` runs
        :func:`agents.services.emergency.flatten`.
        """
        from agents.services.emergency import emergency_preview

        if not inv.is_admin:  # the bot checks first; never trust one layer
            raise ValueError("/flatten needs an admin")
        words = list(inv.args)
        broker = self.settings.telegram.broker
        if words and words[0].lower() in ("paper", "alpaca"):
            broker = words.pop(0).lower()
        reason = " ".join(words).strip()[:200] or "/flatten from Telegram"
        preview = emergency_preview(self.settings, self.secrets, broker)
        token = f"flatten-{uuid.uuid4().hex[:16]}"
        with self._flatten_lock:
            now = self.clock()
            for old in [t for t, r in self._flattens.items()
                        if (now - r["issued"]).total_seconds() > FLATTEN_CONFIRM_SECONDS]:
                del self._flattens[old]
            self._flattens[token] = {"broker": broker, "reason": reason, "chat_id": inv.chat_id, "issued": now}
        lines = [f"Flatten {broker}? Approve will:",
                 f"1. halt trading (now {preview.trading_state}; reason: {reason})",
                 f"2. cancel {len(preview.open_orders)} open order(s)"]
        lines += [f"   {o['side'].upper()} {o['qty']:g} {o['symbol']} ({o['status']})" for o in preview.open_orders[:8]]
        if len(preview.open_orders) > 8:
            lines.append(f"   ... and {len(preview.open_orders) - 8} more")
        lines.append(f"3. close {len(preview.positions)} position(s) with market orders, through the risk gate")
        lines += [f"   {p['side'].upper()} {abs(p['qty']):g} {p['symbol']} ({'long' if p['qty'] > 0 else 'short'} "
                  f"{abs(p['qty']):g})" for p in preview.positions[:8]]
        if len(preview.positions) > 8:
            lines.append(f"   ... and {len(preview.positions) - 8} more")
        lines.append(f"Approve within {FLATTEN_CONFIRM_SECONDS / 60:g} minutes to do it; Reject does nothing. "
                     "Trading then stays HALTED until /resume.")
        return CommandReply(_lines(lines), approval=token)

    def _answer_flatten(self, token: str, approved: bool, inv: Invocation) -> CommandReply:
        from agents.services.emergency import flatten

        with self._flatten_lock:
            request = self._flattens.pop(token, None)
        if request is None:
            raise ValueError("this /flatten confirmation is unknown or already answered (or the bot restarted); "
                             "nothing was done - send /flatten again")
        if request["chat_id"] != inv.chat_id:
            raise ValueError("this /flatten confirmation belongs to another chat; nothing was done")
        age = (self.clock() - request["issued"]).total_seconds()
        if age > FLATTEN_CONFIRM_SECONDS:
            raise ValueError(f"this /flatten confirmation expired ({age:.0f} s old, limit "
                             f"{FLATTEN_CONFIRM_SECONDS:g} s); nothing was done - send /flatten again")
        if not approved:
            return CommandReply("Flatten cancelled: nothing was done.")
        res = flatten(self.settings, self.secrets, request["broker"], reason=request["reason"], by=inv.who)
        return CommandReply(flatten_text(res))

    def _next_jobs(self, count: int) -> list[tuple[str, list[datetime]]]:
        from agents.runtime.scheduler import next_fire_times

        now = self.clock()
        return [(job.name, next_fire_times(job, now, count)) for job in self.settings.schedule.jobs if job.enabled]

    def schedule(self, inv: Invocation) -> CommandReply:
        """The next fire times of the scheduled jobs (local and UTC)."""
        if inv.args:
            raise ValueError("/schedule takes no arguments")
        jobs = self.settings.schedule.jobs
        if not jobs:
            return CommandReply("No scheduled jobs are configured ([[schedule.jobs]] in regimedesk.toml).")
        nxt = dict(self._next_jobs(2))
        lines = ["Scheduled jobs (run by 'regimedesk schedule'):"]
        for job in jobs:
            targets = f"universe {job.universe}" if job.universe is not None else ", ".join(job.symbols[:8]) + (
                f" and {len(job.symbols) - 8} more" if len(job.symbols) > 8 else "")
            what = f"{job.kind} {targets}" + (f", broker {job.broker}" if job.kind == "run" else "")
            lines.append(f"{job.name} ({what})" + ("" if job.enabled else ": disabled"))
            for t in nxt.get(job.name, []):
                lines.append(f"  {t:%a %Y-%m-%d %H:%M} {job.timezone} ({t.astimezone(UTC):%H:%M} UTC)")
        return CommandReply(_lines(lines))


# ------------------------------------------------------------------ assembly


@dataclass
class DeskBot:
    """The assembled bot: the Telegram application, its commands and the alert watcher."""

    bot: CommandBot
    commands: DeskCommands
    store: BotStateStore
    watcher: AlertWatcher | None = None

    @property
    def application(self):
        """The python-telegram-bot ``Application``."""
        return self.bot.application

    def run(self) -> None:
        """Poll until SIGINT/SIGTERM, alerting in the background; then close everything."""
        if self.watcher is not None:
            self.watcher.start()
        try:
            self.bot.run_polling()
        finally:
            self.close()

    def close(self) -> None:
        """Stop the watcher, wait for running commands, close the state file."""
        if self.watcher is not None:
            self.watcher.stop()
        self.bot.close()
        self.store.close()


def build_bot(settings: Settings, secrets: Secrets, *, sender: Any = "default",
              store: BotStateStore | None = None) -> DeskBot:
    """Build ``regimedesk bot`` from the configuration.

    Parameters
    ----------
    settings, secrets
        ``settings.telegram`` (allow-lists, base URLs, limits) and ``TELEGRAM_BOT_TOKEN``.
    sender : integrations.TelegramSender or None, optional
        Where alerts go (default: one on the same Bot API; None: no alerts).
    store : integrations.BotStateStore, optional
        Default ``home/telegram_bot.sqlite``.

    Raises
    ------
    MissingCredentialsError
        ``TELEGRAM_BOT_TOKEN`` is not set.
    """
    from integrations import TelegramSender

    token = secrets.get("telegram_bot_token")
    if not token:
        raise MissingCredentialsError(
            "the bot needs a token: set TELEGRAM_BOT_TOKEN (create a bot with @BotFather; see docs/telegram.md)")
    tg = settings.telegram
    settings.home_dir.mkdir(parents=True, exist_ok=True)
    store = store if store is not None else BotStateStore(settings.paths.bot_state)
    if sender == "default":
        sender = TelegramSender(token, base_url=tg.base_url, base_file_url=tg.base_file_url, timeout=tg.timeout)
    watcher = None
    if sender is not None and tg.chat_ids and tg.alert_poll_seconds > 0:
        watcher = AlertWatcher(settings, secrets, store, sender, tg.alert_poll_seconds)
    commands = DeskCommands(settings, secrets, after_run=watcher.poke if watcher is not None else None)
    policy = AccessPolicy(frozenset(tg.chat_ids), frozenset(tg.user_ids), frozenset(tg.admin_ids))
    bot = CommandBot(token, commands.specs(), policy, store, on_approval=commands.approve, base_url=tg.base_url,
                     base_file_url=tg.base_file_url, timeout=tg.timeout, rate_limit=tg.rate_limit,
                     rate_window=tg.rate_window_seconds, workers=tg.workers, approval_ttl=tg.approval_ttl_seconds)
    return DeskBot(bot, commands, store, watcher)
