"""Bodies of the external APIs the loopback stub servers speak."""

from __future__ import annotations

import json

__all__ = ["chat_completion", "openai_error"]


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
