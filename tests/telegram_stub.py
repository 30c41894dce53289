"""A loopback stub of the Telegram Bot API for python-telegram-bot's real ``Bot``.

Point the bot at ``stub.base_url`` / ``stub.base_file_url``; every call is recorded in
``stub.calls`` as ``(method, params, files)`` with ``files`` mapping a field name to
``(filename, bytes)``. Chats listed in ``unknown_chats`` answer like Telegram does for a chat
the bot cannot reach.
"""

from __future__ import annotations

import json
import re
import threading
import time

from werkzeug import Request, Response

__all__ = ["BotApiStub", "TOKEN"]

TOKEN = "123456:TEST-token-not-real"


def _ok(result) -> Response:
    return Response(json.dumps({"ok": True, "result": result}), status=200, content_type="application/json")


def _fail(code: int, description: str) -> Response:
    return Response(json.dumps({"ok": False, "error_code": code, "description": description}), status=code,
                    content_type="application/json")


class BotApiStub:
    """Bot API methods on a pytest-httpserver; see the module docstring."""

    def __init__(self, httpserver, token: str = TOKEN) -> None:
        self.token = token
        self.calls: list[tuple[str, dict, dict]] = []
        self.unknown_chats: set[int] = set()
        self._lock = threading.Lock()
        self._next_id = 100
        httpserver.expect_request(re.compile(rf"^/bot{re.escape(token)}/\w+$")).respond_with_handler(self._handle)
        httpserver.expect_request(re.compile(r"^/bot[^/]+/\w+$")).respond_with_handler(
            lambda r: _fail(401, "Unauthorized"))
        root = httpserver.url_for("").rstrip("/")
        self.base_url = f"{root}/bot"
        self.base_file_url = f"{root}/file/bot"

    def methods(self) -> list[str]:
        with self._lock:
            return [c[0] for c in self.calls]

    def calls_to(self, method: str) -> list[tuple[dict, dict]]:
        with self._lock:
            return [(p, f) for m, p, f in self.calls if m == method]

    def _message(self, chat_id: int, **extra) -> dict:
        with self._lock:
            self._next_id += 1
            mid = self._next_id
        return {"message_id": mid, "date": int(time.time()), "chat": {"id": chat_id, "type": "private"}, **extra}

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
        chat = params.get("chat_id")
        if chat is not None and int(chat) in self.unknown_chats:
            return _fail(400, "Bad Request: chat not found")
        if method == "sendMessage":
            return _ok(self._message(int(chat), text=params.get("text", "")))
        if method == "sendDocument":
            name = next(iter(files.values()))[0] if files else "file"
            return _ok(self._message(int(chat), document={"file_id": "doc1", "file_unique_id": "u1",
                                                          "file_name": name},
                                     caption=params.get("caption")))
        return _fail(404, f"Not Found: method {method} is not in the stub")
