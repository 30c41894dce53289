"""Sending messages and documents to Telegram chats with python-telegram-bot.

Used for scheduled deliveries and alerts. The bot token comes from the caller (read from
``TELEGRAM_BOT_TOKEN`` by the application) and never appears in messages, logs or errors:
python-telegram-bot puts it in request URLs and some of its own messages, and the Bot API may
quote it, so every error text goes through :func:`redact_token` (:func:`integrations.redact`).
A failure before any message is sent (the token refused by getMe, the Bot API unreachable)
is reported as a failed :class:`Delivery` for every chat, not raised.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from integrations._redact import redact

__all__ = ["TelegramSender", "Delivery", "TELEGRAM_TEXT_LIMIT", "TELEGRAM_CAPTION_LIMIT", "redact_token"]

log = logging.getLogger(__name__)

#: Longest text of one message and one document caption the Bot API accepts.
TELEGRAM_TEXT_LIMIT = 4096
TELEGRAM_CAPTION_LIMIT = 1024


@dataclass(frozen=True)
class Delivery:
    """The outcome of sending one item to one chat."""

    chat_id: int
    ok: bool
    message_id: int | None = None
    error: str | None = None


def redact_token(text: str, token: str | None) -> str:
    """``text`` with ``token`` (and its secret part) and every registered secret replaced by ``***``.

    A use of :func:`integrations.redact`: case-insensitive (python-telegram-bot rewrites the
    case of Bot API error descriptions), URL-encoded forms included.
    """
    return redact(text, (token,))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class TelegramSender:
    """Send text and files to chats through the Bot API.

    Parameters
    ----------
    token : str
        The bot token.
    base_url, base_file_url : str
        Bot API endpoints (the token is appended); point them at a local Bot API server or a
        loopback stub in tests.
    timeout : float, default 30
        Read/write/connect time-out per request, in seconds.
    retries : int, default 2
        Further attempts after a network error or a time-out; a flood-control answer waits
        the time Telegram asks for (at most 60 s) before the next attempt.
    """

    def __init__(self, token: str, *, base_url: str = "https://api.telegram.org/bot",
                 base_file_url: str = "https://api.telegram.org/file/bot", timeout: float = 30.0,
                 retries: int = 2) -> None:
        if not token or not token.strip():
            raise ValueError("token: the bot token is empty (set TELEGRAM_BOT_TOKEN)")
        if retries < 0:
            raise ValueError("retries must be >= 0")
        self._token = token.strip()
        self.base_url = base_url
        self.base_file_url = base_file_url
        self.timeout = float(timeout)
        self.retries = int(retries)

    def __repr__(self) -> str:
        return f"TelegramSender(base_url={self.base_url!r}, token=***)"

    def _bot(self):
        from telegram import Bot
        from telegram.request import HTTPXRequest

        req = HTTPXRequest(connect_timeout=self.timeout, read_timeout=self.timeout, write_timeout=self.timeout,
                           media_write_timeout=self.timeout)
        return Bot(self._token, base_url=self.base_url, base_file_url=self.base_file_url, request=req)

    async def _send_all(self, chat_ids: list[int], send) -> list[Delivery]:
        from telegram.error import TelegramError

        out: list[Delivery] = []
        try:
            async with self._bot() as bot:
                for chat in chat_ids:
                    out.append(await self._send_one(bot, chat, send))
        except TelegramError as exc:
            # Starting the bot (getMe) or closing it failed: a refused token, an unreachable or
            # failing Bot API. Every chat not yet served gets the (redacted) reason.
            error = redact_token(f"{type(exc).__name__}: {exc}", self._token)
            done = {d.chat_id for d in out}
            for chat in chat_ids:
                if chat not in done:
                    log.warning("telegram delivery to chat %s failed: %s", chat, error)
                    out.append(Delivery(chat, False, None, error))
        return out

    async def _send_one(self, bot, chat: int, send) -> Delivery:
        from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError

        delivery = None
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                msg = await send(bot, chat)
                delivery = Delivery(chat, True, msg.message_id)
                break
            except RetryAfter as exc:
                delivery = Delivery(chat, False, None, f"flood control: {exc}")
                wait = exc.retry_after
                seconds = wait.total_seconds() if hasattr(wait, "total_seconds") else float(wait)
                if not last:
                    await asyncio.sleep(min(seconds, 60.0))
            except BadRequest as exc:  # unknown chat, bad arguments: do not retry
                delivery = Delivery(chat, False, None, f"{type(exc).__name__}: {exc}")
                break
            except NetworkError as exc:  # includes TimedOut; worth another attempt
                delivery = Delivery(chat, False, None, f"{type(exc).__name__}: {exc}")
                if not last:
                    await asyncio.sleep(0.5 * 2**attempt)
            except TelegramError as exc:  # bad chat, blocked bot, bad token: do not retry
                delivery = Delivery(chat, False, None, f"{type(exc).__name__}: {exc}")
                break
        assert delivery is not None
        if delivery.error:
            delivery = Delivery(chat, False, None, redact_token(delivery.error, self._token))
        if not delivery.ok:
            log.warning("telegram delivery to chat %s failed: %s", chat, delivery.error)
        return delivery

    def send_message(self, chat_ids: Iterable[int], text: str) -> list[Delivery]:
        """Send ``text`` (clipped to the Bot API limit) to every chat; one Delivery per chat."""
        chats = [int(c) for c in chat_ids]
        body = _clip(text, TELEGRAM_TEXT_LIMIT)

        async def send(bot, chat):
            return await bot.send_message(chat_id=chat, text=body)

        return asyncio.run(self._send_all(chats, send)) if chats else []

    def send_document(self, chat_ids: Iterable[int], path: str | Path, caption: str = "") -> list[Delivery]:
        """Send the file at ``path`` with ``caption`` to every chat; one Delivery per chat."""
        p = Path(path)
        if not p.is_file():
            raise ValueError(f"path: {p} is not a file")
        chats = [int(c) for c in chat_ids]
        data = p.read_bytes()
        cap = _clip(caption, TELEGRAM_CAPTION_LIMIT) or None

        async def send(bot, chat):
            return await bot.send_document(chat_id=chat, document=data, filename=p.name, caption=cap)

        return asyncio.run(self._send_all(chats, send)) if chats else []

