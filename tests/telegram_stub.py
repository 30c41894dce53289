"""A loopback stub of the Telegram Bot API for python-telegram-bot's real ``Bot`` and ``Application``.

Point the bot at ``stub.base_url`` / ``stub.base_file_url``; every call is recorded in
``stub.calls`` as ``(method, params, files)`` with ``files`` mapping a field name to
``(filename, bytes)``. Chats listed in ``unknown_chats`` answer like Telegram does for a chat
the bot cannot reach.

For a polling bot, push updates with :meth:`BotApiStub.push_message` (a text message, with a
``bot_command`` entity when it starts with ``/``) or :meth:`BotApiStub.push_callback` (a
button press); ``getUpdates`` hands them out by ``offset`` like Telegram. ``getUpdates`` waits
up to ``poll_wait`` seconds for an update when there is none, so serve the stub from a
threaded server (``HTTPServer(threaded=True)``) when a bot polls it. Also answered:
``answerCallbackQuery``, ``editMessageText``, ``editMessageReplyMarkup``, ``deleteWebhook``,
``getWebhookInfo``, ``setMyCommands``, ``getMyCommands``, ``deleteMyCommands``,
``sendChatAction``, ``deleteMessage``, ``close`` and ``logOut``. :meth:`BotApiStub.wait_for`
polls the recorded calls until a condition holds; :meth:`BotApiStub.edits` lists a message's
states after each edit, so a test can wait for one particular edit (a message's text before
the edit may already satisfy a check meant for the text after it).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable

from werkzeug import Request, Response

__all__ = ["BotApiStub", "TOKEN"]

TOKEN = "123456:TEST-token-not-real"

_TRUE_METHODS = ("answerCallbackQuery", "deleteWebhook", "setMyCommands", "deleteMyCommands", "sendChatAction",
                 "deleteMessage", "close", "logOut")


def _ok(result) -> Response:
    return Response(json.dumps({"ok": True, "result": result}), status=200, content_type="application/json")


def _fail(code: int, description: str) -> Response:
    return Response(json.dumps({"ok": False, "error_code": code, "description": description}), status=code,
                    content_type="application/json")


class BotApiStub:
    """Bot API methods on a pytest-httpserver; see the module docstring."""

    def __init__(self, httpserver, token: str = TOKEN, poll_wait: float = 0.5) -> None:
        self.token = token
        self.poll_wait = float(poll_wait)
        self.calls: list[tuple[str, dict, dict]] = []
        self.unknown_chats: set[int] = set()
        self.commands: list[dict] = []
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._next_id = 100
        self._next_update = 1
        self._updates: list[dict] = []
        self._messages: dict[tuple[int, int], dict] = {}
        self._edits: dict[tuple[int, int], list[dict]] = {}
        httpserver.expect_request(re.compile(rf"^/bot{re.escape(token)}/\w+$")).respond_with_handler(self._handle)
        httpserver.expect_request(re.compile(r"^/bot[^/]+/\w+$")).respond_with_handler(
            lambda r: _fail(401, "Unauthorized"))
        root = httpserver.url_for("").rstrip("/")
        self.base_url = f"{root}/bot"
        self.base_file_url = f"{root}/file/bot"

    # ------------------------------------------------------------------ reading what the bot did

    def methods(self) -> list[str]:
        with self._lock:
            return [c[0] for c in self.calls]

    def calls_to(self, method: str) -> list[tuple[dict, dict]]:
        with self._lock:
            return [(p, f) for m, p, f in self.calls if m == method]

    def message(self, chat_id: int, message_id: int) -> dict | None:
        """The current state of a message the bot sent (text and buttons after edits)."""
        with self._lock:
            msg = self._messages.get((int(chat_id), int(message_id)))
            return dict(msg) if msg is not None else None

    def edits(self, chat_id: int, message_id: int) -> list[dict]:
        """The message as each successful edit left it, oldest first (empty before the first edit)."""
        with self._lock:
            return [dict(m) for m in self._edits.get((int(chat_id), int(message_id)), [])]

    def messages(self, chat_id: int) -> list[dict]:
        """Every message the bot sent to ``chat_id``, oldest first, as it stands now."""
        with self._lock:
            return [dict(m) for (c, _), m in sorted(self._messages.items()) if c == int(chat_id)]

    def wait_for(self, condition: Callable[[], object], timeout: float = 120.0, interval: float = 0.05):
        """Call ``condition`` until it returns something truthy; return it (AssertionError on time-out)."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout} s; calls: {self.methods()[-20:]}")
            time.sleep(interval)

    # ------------------------------------------------------------------ feeding the bot

    def push_update(self, update: dict) -> int:
        """Queue a raw update for ``getUpdates``; returns its ``update_id``."""
        with self._cond:
            uid = self._next_update
            self._next_update += 1
            self._updates.append({**update, "update_id": uid})
            self._cond.notify_all()
        return uid

    def push_message(self, text: str, chat_id: int, user_id: int | None = None, *,
                     chat_type: str | None = None, username: str = "tester") -> int:
        """Queue a text message from ``user_id`` (default: the chat id, a private chat)."""
        user_id = chat_id if user_id is None else user_id
        chat_type = chat_type or ("private" if chat_id == user_id else "group")
        with self._lock:
            self._next_id += 1
            mid = self._next_id
        chat = {"id": chat_id, "type": chat_type}
        if chat_type != "private":
            chat["title"] = "test group"
        msg = {"message_id": mid, "date": int(time.time()), "chat": chat, "text": text,
               "from": {"id": user_id, "is_bot": False, "first_name": "Test", "username": username}}
        if text.startswith("/"):
            msg["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        return self.push_update({"message": msg})

    def push_callback(self, data: str, chat_id: int, message_id: int, user_id: int | None = None) -> int:
        """Queue a press of an inline button with ``data`` on the bot's message ``message_id``."""
        user_id = chat_id if user_id is None else user_id
        msg = self.message(chat_id, message_id) or {
            "message_id": message_id, "date": int(time.time()), "chat": {"id": chat_id, "type": "private"},
            "text": ""}
        msg.pop("reply_markup", None)
        msg["from"] = {"id": 1, "is_bot": True, "first_name": "RegimeDesk", "username": "regimedesk_test_bot"}
        with self._lock:
            self._next_id += 1
            qid = str(self._next_id)
        return self.push_update({"callback_query": {
            "id": qid, "chat_instance": str(chat_id), "data": data, "message": msg,
            "from": {"id": user_id, "is_bot": False, "first_name": "Test"}}})

    # ------------------------------------------------------------------ the API

    def _message(self, chat_id: int, **extra) -> dict:
        with self._lock:
            self._next_id += 1
            mid = self._next_id
        msg = {"message_id": mid, "date": int(time.time()), "chat": {"id": chat_id, "type": "private"}, **extra}
        with self._lock:
            self._messages[(chat_id, mid)] = msg
        return msg

    def _get_updates(self, params: dict) -> Response:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        wait = min(float(params.get("timeout") or 0), self.poll_wait)
        deadline = time.monotonic() + wait
        with self._cond:
            while True:
                # Telegram forgets every update below the offset the bot confirmed.
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
                if self._updates:
                    return _ok(self._updates[:limit])
                left = deadline - time.monotonic()
                if left <= 0:
                    return _ok([])
                self._cond.wait(left)

    def _edit(self, params: dict, *, text: bool) -> Response:
        chat, mid = int(params["chat_id"]), int(params["message_id"])
        with self._lock:
            msg = self._messages.get((chat, mid))
            if msg is None:
                return _fail(400, "Bad Request: message to edit not found")
            if text:
                msg["text"] = params.get("text", "")
            if params.get("reply_markup"):
                msg["reply_markup"] = json.loads(params["reply_markup"]) if isinstance(
                    params["reply_markup"], str) else params["reply_markup"]
            else:
                msg.pop("reply_markup", None)
            msg["edit_date"] = int(time.time())
            self._edits.setdefault((chat, mid), []).append(dict(msg))
            return _ok(dict(msg))

    def _handle(self, request: Request) -> Response:
        method = request.path.rsplit("/", 1)[1]
        params = {k: v for k, v in request.form.items()}
        if not params and request.data:
            params = request.get_json(silent=True) or {}
        files = {k: (f.filename, f.read()) for k, f in request.files.items()}
        with self._lock:
            self.calls.append((method, params, files))
        if method == "getMe":
            return _ok({"id": 1, "is_bot": True, "first_name": "RegimeDesk", "username": "regimedesk_test_bot"})
        if method == "getUpdates":
            return self._get_updates(params)
        if method == "getWebhookInfo":
            return _ok({"url": "", "has_custom_certificate": False, "pending_update_count": 0})
        if method == "getMyCommands":
            return _ok(self.commands)
        if method == "setMyCommands" and params.get("commands"):
            raw = params["commands"]
            self.commands = json.loads(raw) if isinstance(raw, str) else raw
        chat = params.get("chat_id")
        if chat is not None and int(chat) in self.unknown_chats:
            return _fail(400, "Bad Request: chat not found")
        if method == "sendMessage":
            extra = {"text": params.get("text", "")}
            if params.get("reply_markup"):
                raw = params["reply_markup"]
                extra["reply_markup"] = json.loads(raw) if isinstance(raw, str) else raw
            return _ok(self._message(int(chat), **extra))
        if method == "sendDocument":
            name = next(iter(files.values()))[0] if files else "file"
            return _ok(self._message(int(chat), document={"file_id": "doc1", "file_unique_id": "u1",
                                                          "file_name": name},
                                     caption=params.get("caption")))
        if method in ("editMessageText", "editMessageReplyMarkup"):
            return self._edit(params, text=method == "editMessageText")
        if method in _TRUE_METHODS:
            return _ok(True)
        return _fail(404, f"Not Found: method {method} is not in the stub")
