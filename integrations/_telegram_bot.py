"""A python-telegram-bot command bot: allow-lists, rate limit, worker threads, approval buttons.

This is the generic plumbing of ``regimedesk bot``; it knows nothing about runs or regimes.
The application layer hands it :class:`CommandSpec` objects whose handlers are plain
functions ``handler(Invocation) -> CommandReply`` (testable without Telegram), and a
function that answers approval button presses.

Every message goes through the same gate, in this order:

1. **Allow-lists.** A message is obeyed only if its chat id is in ``chat_ids`` *and* its
   sender's user id is in ``user_ids`` or ``admin_ids`` (:class:`AccessPolicy`). Anyone
   else gets a polite refusal naming their chat and user ids, the refusal is logged, and
   nothing runs. Empty lists obey nobody.
2. **Rate limit.** At most ``rate_limit`` commands per chat in ``rate_window`` seconds
   (:class:`RateLimiter`); more get a short refusal and nothing runs.
3. **Admin.** Commands whose spec says so (for some commands depending on their
   arguments) need the sender in ``admin_ids``.
4. **Arguments.** A handler raising ``ValueError`` gets the command's usage text back.

Handlers run in a thread pool (``workers`` threads), never on the event loop, so a long
command does not block the bot; a ``long`` command first shows "working on /cmd..." and that
message is then edited with the result. A reply may carry a file (sent with sendDocument) and
an approval request: the bot then attaches Approve / Reject buttons whose callback data
holds the thread id and a one-shot nonce kept in SQLite (:class:`BotStateStore`), so a
second press, a press after a restart, a press in another chat or on an expired button is
refused without running anything.

The token never appears in replies, logs or errors: python-telegram-bot puts it in request
URLs and some of its messages, and the Bot API may quote it, so every error text goes through
:func:`redact_token` (:func:`integrations.redact`), and :class:`TokenRedactingFilter` can be
installed on log handlers.

Start-up: :meth:`CommandBot.connect` checks the token with getMe before polling, retrying an
unreachable or failing Bot API (network errors, time-outs, HTTP 5xx) with bounded exponential
backoff, and then raises one :class:`~integrations.TransientError` (or, for a refused token,
at once a :class:`~integrations.PermanentError`) whose message is one redacted line.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import secrets
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analytics.errors import RegimeDeskError
from integrations._errors import IntegrationError, PermanentError, TransientError
from integrations._market_data import SYMBOL_PATTERN
from integrations._redact import RedactingFilter
from integrations._sqlite import apply_schema, open_database
from integrations._telegram import TELEGRAM_CAPTION_LIMIT, TELEGRAM_TEXT_LIMIT, redact_token

__all__ = [
    "AccessPolicy",
    "Invocation",
    "CommandReply",
    "CommandSpec",
    "ParsedArgs",
    "RateLimiter",
    "BotStateStore",
    "TokenCheck",
    "TelegramBotError",
    "CommandBot",
    "TokenRedactingFilter",
    "parse_args",
    "parse_symbols",
    "help_text",
    "APPROVAL_DATA_PATTERN",
]

log = logging.getLogger(__name__)

_COMMAND_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
#: Callback data of an approval button: ``ap:THREAD:NONCE:y|n`` (at most 64 bytes).
APPROVAL_DATA_PATTERN = re.compile(r"^ap:([A-Za-z0-9_-]{1,40}):([0-9a-f]{16}):([yn])$")


class TelegramBotError(IntegrationError):
    """The bot's state file cannot be used, or the bot was set up wrongly."""


class TokenRedactingFilter(RedactingFilter):
    """A logging filter that removes the bot token (and every registered secret) from every record.

    Install it on handlers (``handler.addFilter``): it formats the record's message once
    with the token replaced, so neither ``msg`` nor ``args`` carry it any more; tracebacks
    are redacted too. A :class:`integrations.RedactingFilter` for one token.
    """

    def __init__(self, token: str) -> None:
        super().__init__((token,))


# ------------------------------------------------------------------ who may do what


@dataclass(frozen=True)
class AccessPolicy:
    """The allow-lists: who may command the bot, and who is an admin.

    A message is obeyed only if its chat id is in ``chat_ids`` and its sender's user id is
    in ``user_ids`` or ``admin_ids``. Admin-only actions also need the sender in
    ``admin_ids`` (and the chat allowed). In a private chat the chat id equals the user id;
    group chat ids are negative. Empty lists allow nobody (fail closed).
    """

    chat_ids: frozenset[int] = frozenset()
    user_ids: frozenset[int] = frozenset()
    admin_ids: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        for name in ("chat_ids", "user_ids", "admin_ids"):
            values = getattr(self, name)
            if isinstance(values, (str, bytes)) or not all(
                    isinstance(v, int) and not isinstance(v, bool) for v in values):
                raise ValueError(f"{name} must be integers")
            object.__setattr__(self, name, frozenset(values))

    @property
    def empty(self) -> bool:
        """True when no chat or no user is allowed: the bot obeys nobody."""
        return not self.chat_ids or not (self.user_ids or self.admin_ids)

    def allowed(self, chat_id: int | None, user_id: int | None) -> bool:
        """May this user in this chat command the bot?"""
        if chat_id is None or user_id is None:
            return False
        return chat_id in self.chat_ids and (user_id in self.user_ids or user_id in self.admin_ids)

    def is_admin(self, chat_id: int | None, user_id: int | None) -> bool:
        """May this user in this chat give admin-only commands?"""
        return self.allowed(chat_id, user_id) and user_id in self.admin_ids


class RateLimiter:
    """At most ``limit`` events per key in any ``window`` seconds (sliding window).

    Parameters
    ----------
    limit : int
        Events allowed per window (>= 1).
    window : float
        Window length in seconds (> 0).
    clock : callable, optional
        Monotonic seconds (default ``time.monotonic``).
    """

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be an integer >= 1, got {limit!r}")
        if not window > 0:
            raise ValueError(f"window must be > 0 seconds, got {window!r}")
        self.limit = limit
        self.window = float(window)
        self._clock = clock
        self._events: dict[Any, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: Any) -> float:
        """Count one event for ``key``: 0.0 if allowed, else the seconds until one would be."""
        now = self._clock()
        with self._lock:
            if len(self._events) > 10_000:  # many chats (e.g. strangers): forget the idle ones
                self._events = {k: q for k, q in self._events.items() if q and q[-1] > now - self.window}
            events = self._events.setdefault(key, deque())
            while events and events[0] <= now - self.window:
                events.popleft()
            if len(events) >= self.limit:
                return max(events[0] + self.window - now, 0.001)
            events.append(now)
            return 0.0


# ------------------------------------------------------------------ commands


@dataclass(frozen=True)
class Invocation:
    """One command as a handler sees it."""

    command: str
    args: tuple[str, ...]
    chat_id: int
    user_id: int
    is_admin: bool
    username: str | None = None

    @property
    def who(self) -> str:
        """How the journal and the risk history name this person: ``telegram:USER_ID``."""
        return f"telegram:{self.user_id}"


@dataclass(frozen=True)
class CommandReply:
    """What a handler answers.

    Parameters
    ----------
    text : str
        The message (clipped to Telegram's 4,096 characters).
    document : Path or None
        A file to send after the message (e.g. a PDF report).
    caption : str
        The file's caption.
    approval : str or None
        A thread id: attach Approve / Reject buttons for it.
    """

    text: str
    document: Path | None = None
    caption: str = ""
    approval: str | None = None


@dataclass(frozen=True)
class CommandSpec:
    """One bot command.

    Parameters
    ----------
    name : str
        Without the slash: lower-case letters, digits and ``_`` (Telegram's rule).
    handler : callable
        ``handler(Invocation) -> CommandReply | str``; runs in a worker thread. Raise
        ``ValueError`` for malformed arguments (the user gets ``usage``) and
        ``RegimeDeskError`` for anything else worth telling them.
    usage : str
        E.g. ``"/regime SYMBOL [--as-of DATE]"``, plus optional lines of explanation.
    summary : str
        One line for /help and the command menu.
    admin : bool or callable
        Admin-only; a callable ``admin(args) -> bool`` decides from the arguments (it may
        raise ``ValueError`` too).
    long : bool
        Show "working on /name..." first and edit it with the result.
    """

    name: str
    handler: Callable[[Invocation], CommandReply | str]
    usage: str
    summary: str
    admin: bool | Callable[[Sequence[str]], bool] = False
    long: bool = False

    def __post_init__(self) -> None:
        if not _COMMAND_NAME.match(self.name):
            raise ValueError(f"name: {self.name!r} is not a Telegram command name")
        if not callable(self.handler):
            raise TypeError("handler must be callable")

    def needs_admin(self, args: Sequence[str]) -> bool:
        """Whether these arguments make the command admin-only."""
        return bool(self.admin(args)) if callable(self.admin) else bool(self.admin)


def help_text(commands: Iterable[CommandSpec], *, title: str = "Commands") -> str:
    """The command list for /help: each command's usage line and summary; admin-only ones marked."""
    lines = [f"{title}:"]
    for spec in commands:
        first = spec.usage.splitlines()[0]
        mark = " [admin]" if spec.admin is True else ""
        lines.append(f"{first}{mark}\n  {spec.summary}")
    return "\n".join(lines)


@dataclass(frozen=True)
class ParsedArgs:
    """Command arguments split into positional words, flags and ``--name value`` options."""

    positional: tuple[str, ...]
    flags: frozenset[str] = frozenset()
    options: Mapping[str, str] = field(default_factory=dict)


def parse_args(args: Sequence[str], *, flags: Iterable[str] = (),
               options: Mapping[str, Sequence[str] | Callable[[str], str] | None] | None = None) -> ParsedArgs:
    """Split ``args`` into positional words, known ``--flags`` and ``--option value`` pairs.

    Parameters
    ----------
    args : sequence of str
        The words after the command.
    flags : iterable of str
        Allowed flags, without ``--``.
    options : mapping, optional
        Allowed options (without ``--``) to their allowed values (a sequence), a validator
        ``f(value) -> value`` (raising ``ValueError``), or None for any value.
        ``--name value`` and ``--name=value`` are both accepted.

    Raises
    ------
    ValueError
        An unknown flag or option, a missing or disallowed value, or a repeated option.
    """
    allowed_flags = frozenset(flags)
    allowed_options = dict(options or {})
    positional: list[str] = []
    seen_flags: set[str] = set()
    values: dict[str, str] = {}
    words = list(args)
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if not word.startswith("--"):
            positional.append(word)
            continue
        name, eq, value = word[2:].partition("=")
        name = name.lower()
        if name in allowed_flags and not eq:
            seen_flags.add(name)
            continue
        if name not in allowed_options:
            raise ValueError(f"unknown option --{name}")
        if not eq:
            if i >= len(words) or words[i].startswith("--"):
                raise ValueError(f"--{name} needs a value")
            value = words[i]
            i += 1
        if name in values:
            raise ValueError(f"--{name} given twice")
        rule = allowed_options[name]
        if callable(rule):
            value = rule(value)
        elif rule is not None:
            low = value.lower()
            if low not in rule:
                raise ValueError(f"--{name} must be one of {', '.join(rule)}, not {value!r}")
            value = low
        values[name] = value
    return ParsedArgs(tuple(positional), frozenset(seen_flags), values)


def parse_symbols(words: Sequence[str], *, at_least: int = 1, at_most: int = 5) -> tuple[str, ...]:
    """Validate symbols against :data:`integrations.SYMBOL_PATTERN`; upper-cased, duplicates dropped.

    Raises
    ------
    ValueError
        Too few or too many symbols, or one that does not look like a symbol.
    """
    if at_least < 0 or at_most < max(at_least, 1):
        raise ValueError("need 0 <= at_least <= at_most and at_most >= 1")
    out: list[str] = []
    for word in words:
        if not SYMBOL_PATTERN.match(word):
            shown = word if len(word) <= 24 else word[:21] + "..."
            raise ValueError(f"{shown!r} is not a symbol (letters, digits and . - / ^ = &, at most 20)")
        sym = word.upper()
        if sym not in out:
            out.append(sym)
    if len(out) < at_least:
        raise ValueError("give a symbol, e.g. SP500" if at_least == 1 else f"give at least {at_least} symbols")
    if len(out) > at_most:
        raise ValueError(f"at most {at_most} symbol{'s' if at_most > 1 else ''}, not {len(out)}")
    return tuple(out)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 4] + "\n..."


# ------------------------------------------------------------------ persistent state


_STATE_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS approval_tokens (
    nonce TEXT PRIMARY KEY, thread_id TEXT NOT NULL, chat_id INTEGER NOT NULL, issued_at REAL NOT NULL,
    used_at REAL, used_by INTEGER, approved INTEGER);
CREATE INDEX IF NOT EXISTS approval_tokens_thread ON approval_tokens (thread_id);
CREATE TABLE IF NOT EXISTS notified (key TEXT PRIMARY KEY, at REAL NOT NULL)
"""


@dataclass(frozen=True)
class TokenCheck:
    """The outcome of pressing an approval button: ``ok``, or why not (``reason``)."""

    ok: bool
    reason: str = ""


class BotStateStore:
    """The bot's durable state in SQLite: approval nonces and what was already alerted.

    Parameters
    ----------
    path : str or Path
        Database file (``':memory:'`` allowed).
    clock : callable, optional
        Wall-clock seconds (default ``time.time``), for the approval time-to-live.

    Raises
    ------
    TelegramBotError
        The file cannot be opened or is from a newer RegimeDesk.
    """

    def __init__(self, path: str | Path, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path) if str(path) != ":memory:" else Path(":memory:")
        self._clock = clock
        self._lock = threading.Lock()

        def seed(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('created_at', ?)", (repr(clock()),))

        self._conn = open_database(
            self.path, what="telegram bot state", error=TelegramBotError,
            setup=lambda conn: apply_schema(conn, _STATE_SCHEMA, 1, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                            what="telegram bot state", path=self.path, error=TelegramBotError,
                                            then=seed))

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @property
    def created_at(self) -> float:
        """When this state file was first created (wall-clock seconds)."""
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = 'created_at'").fetchone()
        return float(row[0])

    def issue(self, thread_id: str, chat_id: int) -> str:
        """A new one-shot nonce for the approval buttons of ``thread_id`` shown in ``chat_id``."""
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", thread_id or ""):
            raise ValueError(f"thread_id: {thread_id!r} cannot go into a button")
        nonce = secrets.token_hex(8)
        with self._lock:
            self._conn.execute("INSERT INTO approval_tokens (nonce, thread_id, chat_id, issued_at) VALUES (?, ?, ?, ?)",
                               (nonce, thread_id, int(chat_id), self._clock()))
        return nonce

    def consume(self, nonce: str, thread_id: str, chat_id: int, user_id: int, approved: bool,
                ttl: float) -> TokenCheck:
        """Use the nonce once: the first valid press wins, every later one is refused.

        A used nonce also uses every other nonce of the same thread, so two prompts for
        one run cannot both be answered.
        """
        now = self._clock()
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                row = self._conn.execute(
                    "SELECT thread_id, chat_id, issued_at, used_at FROM approval_tokens WHERE nonce = ?",
                    (nonce,)).fetchone()
                if row is None or row[0] != thread_id:
                    check = TokenCheck(False, "unknown")
                elif row[3] is not None:
                    check = TokenCheck(False, "used")
                elif int(row[1]) != int(chat_id):
                    check = TokenCheck(False, "other chat")
                elif now - float(row[2]) > ttl:
                    check = TokenCheck(False, "expired")
                else:
                    self._conn.execute(
                        "UPDATE approval_tokens SET used_at = ?, used_by = ?, approved = ? "
                        "WHERE thread_id = ? AND used_at IS NULL", (now, int(user_id), int(approved), thread_id))
                    check = TokenCheck(True)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return check

    def mark_notified(self, key: str) -> bool:
        """Remember ``key``; True the first time, False if it was already there."""
        with self._lock:
            cur = self._conn.execute("INSERT OR IGNORE INTO notified (key, at) VALUES (?, ?)", (key, self._clock()))
            return cur.rowcount == 1

    def was_notified(self, key: str) -> bool:
        """Whether :meth:`mark_notified` has seen ``key``."""
        with self._lock:
            return self._conn.execute("SELECT 1 FROM notified WHERE key = ?", (key,)).fetchone() is not None


# ------------------------------------------------------------------ the bot


ApprovalHandler = Callable[[str, bool, Invocation], "CommandReply | str"]

_REFUSED = ("Sorry, this bot only answers its owners. Your chat id is {chat} and your user id is {user}; "
            "ask the owner to add them to telegram.chat_ids and telegram.user_ids.")
_BUTTON_REFUSALS = {
    "unknown": "This button is not valid (any more). Nothing was done.",
    "used": "This approval was already answered. Nothing was done.",
    "other chat": "This button belongs to another chat. Nothing was done.",
    "expired": "This approval button has expired; answer with 'regimedesk approve|reject THREAD'.",
}


class CommandBot:
    """A python-telegram-bot ``Application`` that obeys :class:`CommandSpec` commands; see the module docstring.

    Parameters
    ----------
    token : str
        The bot token (from ``TELEGRAM_BOT_TOKEN``).
    commands : iterable of CommandSpec
        The commands, in the order /help lists them.
    policy : AccessPolicy
        The allow-lists.
    store : BotStateStore
        Approval nonces (persisted across restarts).
    on_approval : callable, optional
        ``on_approval(thread_id, approved, Invocation) -> CommandReply | str``, called in a
        worker thread after an admin's valid press. Without it, replies asking for approval
        get no buttons.
    base_url, base_file_url : str
        Bot API endpoints (the token is appended); a local Bot API server or a stub.
    timeout : float
        Connect/read/write time-out of Bot API requests, seconds.
    rate_limit, rate_window : int, float
        Commands per chat per window.
    workers : int
        Threads that run handlers.
    approval_ttl : float
        Seconds an approval button stays valid.
    on_refusal : callable, optional
        ``on_refusal(kind, chat_id, user_id, command)`` after every refusal (tests, audit).
    """

    def __init__(self, token: str, commands: Iterable[CommandSpec], policy: AccessPolicy, store: BotStateStore, *,
                 on_approval: ApprovalHandler | None = None, base_url: str = "https://api.telegram.org/bot",
                 base_file_url: str = "https://api.telegram.org/file/bot", timeout: float = 30.0,
                 rate_limit: int = 10, rate_window: float = 60.0, workers: int = 2, approval_ttl: float = 86_400.0,
                 on_refusal: Callable[[str, int | None, int | None, str], None] | None = None) -> None:
        from telegram.ext import ApplicationBuilder, CallbackQueryHandler, MessageHandler, filters

        if not token or not token.strip():
            raise ValueError("token: the bot token is empty (set TELEGRAM_BOT_TOKEN)")
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
        if not approval_ttl > 0:
            raise ValueError("approval_ttl must be > 0 seconds")
        self._token = token.strip()
        self._base_url, self._base_file_url, self._timeout = base_url, base_file_url, float(timeout)
        self.commands: dict[str, CommandSpec] = {}
        for spec in commands:
            if spec.name in self.commands:
                raise ValueError(f"commands: /{spec.name} defined twice")
            self.commands[spec.name] = spec
        self.policy = policy
        self.store = store
        self.on_approval = on_approval
        self.approval_ttl = float(approval_ttl)
        self.limiter = RateLimiter(rate_limit, rate_window)
        self._refusal_limiter = RateLimiter(rate_limit, rate_window)
        self._on_refusal = on_refusal
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="regimedesk-bot")
        self._closed = False
        self.application = (
            ApplicationBuilder()
            .token(self._token)
            .base_url(base_url)
            .base_file_url(base_file_url)
            .connect_timeout(timeout).read_timeout(timeout).write_timeout(timeout).media_write_timeout(timeout)
            .get_updates_connect_timeout(timeout).get_updates_read_timeout(timeout)
            .concurrent_updates(True)
            .job_queue(None)
            .post_init(self._post_init)
            .build()
        )
        app = self.application
        app.add_handler(MessageHandler(filters.COMMAND, self._on_command))
        app.add_handler(CallbackQueryHandler(self._on_callback))
        # Anything else from a stranger is ignored silently; from an owner, pointed at /help.
        app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, self._on_text))
        app.add_error_handler(self._on_error)

    def __repr__(self) -> str:
        return f"CommandBot(commands={list(self.commands)}, token=***)"

    # -------------------------------------------------------------- lifecycle

    async def publish_commands(self) -> bool:
        """Set the bot's command menu (setMyCommands); False (logged) if Telegram refused."""
        from telegram import BotCommand

        menu = [BotCommand(s.name, s.summary[:256]) for s in self.commands.values()]
        try:
            return bool(await self.application.bot.set_my_commands(menu))
        except Exception as exc:  # the menu is a convenience; the bot works without it
            log.warning("could not set the command menu: %s", self._scrub(exc))
            return False

    async def _post_init(self, application) -> None:
        await self.publish_commands()

    @property
    def api_host(self) -> str:
        """The Bot API's host (and port), as named in messages; never the token."""
        return self._base_url.split("//", 1)[-1].split("/", 1)[0]

    def _failure(self, exc: Exception) -> IntegrationError:
        """A python-telegram-bot error as a one-line, redacted TransientError or PermanentError."""
        from telegram.error import Forbidden, InvalidToken, NetworkError, RetryAfter

        text = " ".join(self._scrub(exc).split())
        if isinstance(exc, (InvalidToken, Forbidden)):
            return PermanentError(
                f"the Telegram Bot API at {self.api_host} refused the bot token ({text}); check TELEGRAM_BOT_TOKEN "
                "and telegram.base_url")
        if isinstance(exc, (NetworkError, RetryAfter)):  # NetworkError covers time-outs and HTTP 5xx
            return TransientError(f"the Telegram Bot API at {self.api_host} is unreachable or failing ({text})")
        return PermanentError(f"the Telegram Bot API at {self.api_host} refused the request ({text})")

    async def _get_me(self) -> str:
        from telegram import Bot
        from telegram.request import HTTPXRequest

        request = HTTPXRequest(connect_timeout=self._timeout, read_timeout=self._timeout,
                               write_timeout=self._timeout, pool_timeout=self._timeout)
        async with Bot(self._token, base_url=self._base_url, base_file_url=self._base_file_url,
                       request=request) as bot:  # entering calls getMe
            return bot.username

    def connect(self, *, attempts: int = 5, backoff: float = 1.0, max_sleep: float = 16.0,
                sleep: Callable[[float], None] = time.sleep) -> str:
        """Check that the Bot API answers and accepts the token (getMe) before polling.

        An unreachable or failing Bot API (connection refused, time-out, HTTP 5xx, flood
        control) is retried: ``attempts`` tries in all, sleeping ``backoff`` seconds after the
        first failure and twice as long after each further one, at most ``max_sleep``
        (defaults: 1, 2, 4 and 8 s, about 15 s in all). Each retry is logged at INFO level.

        Parameters
        ----------
        attempts : int, default 5
            Tries in all, >= 1.
        backoff : float, default 1.0
            First sleep in seconds, >= 0.
        max_sleep : float, default 16.0
            Longest sleep in seconds, >= 0.
        sleep : callable, default time.sleep
            Does the waiting (tests pass a recorder).

        Returns
        -------
        str
            The bot's username, as the Bot API reports it.

        Raises
        ------
        TransientError
            Every attempt failed; the one-line message names the Bot API host, the number of
            attempts and the last error, with the token redacted.
        PermanentError
            The token was refused (HTTP 401/403/404) or the request was (HTTP 400/409); not retried.
        ValueError
            ``attempts``, ``backoff`` or ``max_sleep`` out of range.
        """
        from telegram.error import TelegramError

        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ValueError(f"attempts must be an integer >= 1, got {attempts!r}")
        if not backoff >= 0 or not max_sleep >= 0:
            raise ValueError(f"backoff and max_sleep must be >= 0 seconds, got {backoff!r} and {max_sleep!r}")
        delay, waited = float(backoff), 0.0
        for attempt in range(1, attempts + 1):
            try:
                return asyncio.run(self._get_me())
            except TelegramError as exc:
                failure = self._failure(exc)
            if not isinstance(failure, TransientError):
                raise failure
            if attempt == attempts:
                raise TransientError(
                    f"{failure} after {attempts} attempt{'s' if attempts > 1 else ''} over {waited:g} s; "
                    "check the network and telegram.base_url, then start the bot again")
            log.info("telegram: start-up attempt %d of %d failed: %s; retrying in %g s",
                     attempt, attempts, failure, delay)
            sleep(delay)
            waited += delay
            delay = min(delay * 2, max_sleep)
        raise AssertionError("unreachable")

    def run_polling(self, *, poll_interval: float = 0.0, timeout: float = 10.0) -> None:
        """Poll for updates until SIGINT or SIGTERM, then stop cleanly (see :meth:`close`).

        Raises
        ------
        TransientError, PermanentError
            python-telegram-bot could not start (e.g. the Bot API went away after
            :meth:`connect`); one redacted line, as :meth:`connect` words it.
        """
        import signal

        from telegram.error import TelegramError

        try:
            self.application.run_polling(
                poll_interval=poll_interval, timeout=int(timeout), allowed_updates=["message", "callback_query"],
                stop_signals=(signal.SIGINT, signal.SIGTERM), close_loop=False)
        except TelegramError as exc:
            raise self._failure(exc) from None
        finally:
            self.close()

    def close(self) -> None:
        """Wait for running handlers (their work is journaled), then close the thread pool."""
        if not self._closed:
            self._closed = True
            self._executor.shutdown(wait=True, cancel_futures=True)

    # -------------------------------------------------------------- helpers

    def _scrub(self, value: object) -> str:
        text = value if isinstance(value, str) else f"{type(value).__name__}: {value}"
        return redact_token(text, self._token)

    def _refused(self, kind: str, chat: int | None, user: int | None, command: str, why: str) -> None:
        log.warning("telegram: refused %s from chat %s user %s: %s", command, chat, user, why)
        if self._on_refusal is not None:
            self._on_refusal(kind, chat, user, command)

    async def _send(self, bot, chat_id: int, text: str, **kw):
        return await bot.send_message(chat_id=chat_id, text=_clip(text, TELEGRAM_TEXT_LIMIT), **kw)

    async def _in_worker(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    def _split(self, text: str, bot_username: str | None) -> tuple[str | None, tuple[str, ...]]:
        words = text.split()
        head = words[0][1:]
        name, _, target = head.partition("@")
        if target and bot_username and target.lower() != bot_username.lower():
            return None, ()  # addressed to another bot in a group
        return name.lower(), tuple(words[1:])

    def _call(self, spec: CommandSpec, inv: Invocation) -> CommandReply:
        try:
            reply = spec.handler(inv)
        except ValueError as exc:
            return CommandReply(f"{exc}\n\nUsage: {spec.usage}")
        except RegimeDeskError as exc:
            return CommandReply(f"/{spec.name} failed: {self._scrub(str(exc))}")
        except Exception as exc:
            log.exception("telegram: /%s failed", spec.name)
            return CommandReply(f"/{spec.name} failed with an internal error ({type(exc).__name__}); see the bot's log.")
        return reply if isinstance(reply, CommandReply) else CommandReply(str(reply))

    def _approval(self, thread_id: str, approved: bool, inv: Invocation) -> CommandReply:
        assert self.on_approval is not None
        try:
            reply = self.on_approval(thread_id, approved, inv)
        except ValueError as exc:
            return CommandReply(f"Refused: {exc}")
        except RegimeDeskError as exc:
            return CommandReply(f"Refused: {self._scrub(str(exc))}")
        except Exception as exc:
            log.exception("telegram: approval of %s failed", thread_id)
            return CommandReply(f"The approval failed with an internal error ({type(exc).__name__}); see the bot's log.")
        return reply if isinstance(reply, CommandReply) else CommandReply(str(reply))

    def _keyboard(self, thread_id: str, nonce: str):
        from telegram import InlineKeyboardButton, InlineKeyboardMarkup

        return InlineKeyboardMarkup([[
            InlineKeyboardButton("Approve", callback_data=f"ap:{thread_id}:{nonce}:y"),
            InlineKeyboardButton("Reject", callback_data=f"ap:{thread_id}:{nonce}:n"),
        ]])

    async def _deliver(self, bot, chat_id: int, reply: CommandReply, placeholder=None) -> None:
        markup = None
        if reply.approval and self.on_approval is not None:
            nonce = await self._in_worker(self.store.issue, reply.approval, chat_id)
            markup = self._keyboard(reply.approval, nonce)
        text = _clip(reply.text, TELEGRAM_TEXT_LIMIT)
        sent = False
        if placeholder is not None:
            try:
                await bot.edit_message_text(chat_id=chat_id, message_id=placeholder.message_id, text=text,
                                            reply_markup=markup)
                sent = True
            except Exception as exc:  # e.g. the placeholder was deleted: send the result instead
                log.warning("telegram: could not edit the working message: %s", self._scrub(exc))
        if not sent:
            await self._send(bot, chat_id, text, reply_markup=markup)
        if reply.document is not None:
            path = Path(reply.document)
            data = await self._in_worker(path.read_bytes)
            await bot.send_document(chat_id=chat_id, document=data, filename=path.name,
                                    caption=_clip(reply.caption, TELEGRAM_CAPTION_LIMIT) or None)

    # -------------------------------------------------------------- handlers

    async def _on_error(self, update, context) -> None:
        log.error("telegram: error while handling an update: %s", self._scrub(context.error))

    async def _on_text(self, update, context) -> None:
        chat, user = update.effective_chat, update.effective_user
        if chat is None or user is None or chat.type != "private":
            return
        if self.policy.allowed(chat.id, user.id) and not self.limiter.hit(chat.id):
            await self._send(context.bot, chat.id, "Send a command; /help lists them.")

    async def _on_command(self, update, context) -> None:
        msg, chat, user = update.effective_message, update.effective_chat, update.effective_user
        if msg is None or chat is None or not msg.text:
            return
        name, args = self._split(msg.text, context.bot.username)
        if name is None:
            return
        user_id = user.id if user is not None else None
        if not self.policy.allowed(chat.id, user_id):
            self._refused("unauthorised", chat.id, user_id, f"/{name}", "not in the allow-lists")
            if not self._refusal_limiter.hit(chat.id):  # strangers cannot make the bot spam
                await self._send(context.bot, chat.id, _REFUSED.format(chat=chat.id, user=user_id))
            return
        assert user_id is not None
        wait = self.limiter.hit(chat.id)
        if wait:
            self._refused("rate", chat.id, user_id, f"/{name}", "rate limit")
            await self._send(context.bot, chat.id,
                             f"Too many commands: at most {self.limiter.limit} per {self.limiter.window:g} s in "
                             f"this chat. Try again in {wait:.0f} s; nothing was run.")
            return
        spec = self.commands.get(name)
        if spec is None:
            await self._send(context.bot, chat.id, f"Unknown command /{name}. /help lists the commands.")
            return
        inv = Invocation(name, args, chat.id, user_id, self.policy.is_admin(chat.id, user_id),
                         getattr(user, "username", None))
        try:
            needs_admin = spec.needs_admin(args)
        except ValueError as exc:
            await self._send(context.bot, chat.id, f"{exc}\n\nUsage: {spec.usage}")
            return
        if needs_admin and not inv.is_admin:
            self._refused("admin", chat.id, user_id, f"/{name}", "needs an admin")
            await self._send(context.bot, chat.id,
                             f"Sorry, /{name} (with these arguments) needs an admin; nothing was run. "
                             "/help lists what you may use.")
            return
        log.info("telegram: /%s from chat %s user %s", name, chat.id, user_id)
        placeholder = None
        if spec.long:
            placeholder = await self._send(context.bot, chat.id, f"Working on /{name}...")
        reply = await self._in_worker(self._call, spec, inv)
        await self._deliver(context.bot, chat.id, reply, placeholder)

    async def _on_callback(self, update, context) -> None:
        query = update.callback_query
        if query is None:
            return
        chat = update.effective_chat
        chat_id = chat.id if chat is not None else None
        user_id = query.from_user.id if query.from_user is not None else None
        match = APPROVAL_DATA_PATTERN.match(query.data or "")
        if not self.policy.allowed(chat_id, user_id):
            self._refused("unauthorised", chat_id, user_id, "button", "not in the allow-lists")
            await query.answer("Sorry, you may not use this bot. Nothing was done.", show_alert=True)
            return
        assert chat_id is not None and user_id is not None
        if match is None or self.on_approval is None:
            self._refused("button", chat_id, user_id, "button", f"unknown button data {query.data!r}")
            await query.answer(_BUTTON_REFUSALS["unknown"], show_alert=True)
            return
        thread_id, nonce, verdict = match.groups()
        approved = verdict == "y"
        if not self.policy.is_admin(chat_id, user_id):
            self._refused("admin", chat_id, user_id, f"approval of {thread_id}", "needs an admin")
            await query.answer("Sorry, only an admin may approve or reject orders. Nothing was done.",
                               show_alert=True)
            return
        if self.limiter.hit(chat_id):
            self._refused("rate", chat_id, user_id, f"approval of {thread_id}", "rate limit")
            await query.answer("Too many commands in this chat; try again shortly. Nothing was done.",
                               show_alert=True)
            return
        check = await self._in_worker(self.store.consume, nonce, thread_id, chat_id, user_id, approved,
                                      self.approval_ttl)
        if not check.ok:
            self._refused("button", chat_id, user_id, f"approval of {thread_id}", check.reason)
            await query.answer(_BUTTON_REFUSALS[check.reason], show_alert=True)
            return
        word = "Approved" if approved else "Rejected"
        log.info("telegram: %s %s by user %s in chat %s", word.lower(), thread_id, user_id, chat_id)
        await query.answer(f"{word}; working on it...")
        original = query.message.text if query.message is not None and query.message.text else ""
        head = f"{original}\n\n{word} by telegram:{user_id}."
        message_id = query.message.message_id if query.message is not None else None
        if message_id is not None:
            try:
                await context.bot.edit_message_text(chat_id=chat_id, message_id=message_id,
                                                    text=_clip(head + " Working on it...", TELEGRAM_TEXT_LIMIT))
            except Exception as exc:
                log.warning("telegram: could not edit the approval message: %s", self._scrub(exc))
        inv = Invocation("approve" if approved else "reject", (thread_id,), chat_id, user_id, True,
                         getattr(query.from_user, "username", None))
        reply = await self._in_worker(self._approval, thread_id, approved, inv)
        final = CommandReply(f"{head}\n\n{reply.text}", reply.document, reply.caption)
        await self._deliver(context.bot, chat_id, final, query.message if message_id is not None else None)
