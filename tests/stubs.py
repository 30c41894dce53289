"""Bodies of the external APIs the loopback stub servers speak, and handlers that echo credentials."""

from __future__ import annotations

import json

__all__ = ["chat_completion", "openai_error", "echo_openai_401", "echo_polygon_error", "echo_alpaca_error",
           "echo_telegram_401"]


def chat_completion(content: str | None, model: str = "gpt-4o-mini-2024-07-18") -> dict:
    """The JSON shape of a real OpenAI chat-completions answer."""
    return {
        "id": "chatcmpl-test123",
        "object": "chat.completion",
        "created": 1_717_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150},
        "system_fingerprint": "fp_test",
    }


def openai_error(message: str, kind: str, code: str | None = None) -> str:
    """The JSON body of an OpenAI API error."""
    return json.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}})


# ------------------------------------------------------------------ servers that echo credentials
# Real services quote what they were sent in error bodies; these handlers (for pytest-httpserver's
# ``respond_with_handler``) do so on purpose, so that tests can prove no secret gets any further.


def _bearer(request) -> str:
    return request.headers.get("Authorization", "").partition(" ")[2]


def echo_openai_401(request):
    """An OpenAI-compatible server refusing the key and quoting it in the 401 body."""
    from werkzeug import Response

    key = _bearer(request)
    body = openai_error(f"Incorrect API key provided: {key}. Header was 'Authorization: Bearer {key}'.",
                        "invalid_request_error", "invalid_api_key")
    return Response(body, status=401, content_type="application/json")


def echo_polygon_error(request, status: int = 403):
    """Polygon refusing a request and echoing the key (``apiKey`` query parameter or bearer)."""
    from urllib.parse import parse_qs

    from werkzeug import Response

    key = parse_qs(request.query_string.decode()).get("apiKey", [""])[0] or _bearer(request)
    body = {"status": "NOT_AUTHORIZED", "request_id": "echo1",
            "message": f"Unknown API Key {key}; request {request.path}?apiKey={key}"}
    return Response(json.dumps(body), status=status, content_type="application/json")


def echo_alpaca_error(request, status: int = 403):
    """Alpaca refusing a request and echoing the ``APCA-API-KEY-ID`` and secret headers."""
    from werkzeug import Response

    key = request.headers.get("APCA-API-KEY-ID", "")
    secret = request.headers.get("APCA-API-SECRET-KEY", "")
    body = {"code": 40310000, "message": f"forbidden: key id {key} with secret {secret} is not authorized"}
    return Response(json.dumps(body), status=status, content_type="application/json")


def echo_telegram_401(request):
    """The Telegram Bot API refusing the token and quoting the request path (with the token) in the description."""
    from werkzeug import Response

    body = {"ok": False, "error_code": 401, "description": f"Unauthorized: invalid token in {request.path}"}
    return Response(json.dumps(body), status=401, content_type="application/json")
