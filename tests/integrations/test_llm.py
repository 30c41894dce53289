"""The OpenAI chat client: the real ``openai`` SDK against a loopback chat-completions stub."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
from werkzeug import Request, Response

from integrations._errors import MissingCredentialsError, PermanentError, TransientError
from integrations._llm import KEYLESS_API_KEY, LLMReply, LLMTimeoutError, OpenAIChat
from tests.stubs import chat_completion, openai_error

PATH = "/v1/chat/completions"






def client(httpserver, **kw) -> OpenAIChat:
    kw.setdefault("api_key", "sk-test")
    kw.setdefault("model", "gpt-4o-mini")
    kw.setdefault("timeout", 5.0)
    kw.setdefault("max_retries", 0)
    return OpenAIChat(base_url=httpserver.url_for("/v1"), **kw)


def test_completion_is_returned_with_the_request_the_sdk_made(httpserver):
    httpserver.expect_request(PATH, method="POST").respond_with_json(chat_completion("Bull regime."))
    reply = client(httpserver, temperature=0.3).complete("SYSTEM", "USER")
    assert isinstance(reply, LLMReply)
    assert reply.text == "Bull regime."
    assert reply.model == "gpt-4o-mini-2024-07-18"
    assert reply.latency_s > 0
    (request, _), = httpserver.log
    body = json.loads(request.get_data())
    assert body["model"] == "gpt-4o-mini"
    assert body["messages"] == [
        {"role": "system", "content": "SYSTEM"},
        {"role": "user", "content": "USER"},
    ]
    assert body["temperature"] == 0.3
    assert request.headers["Authorization"] == "Bearer sk-test"


def test_key_less_local_server(httpserver):
    httpserver.expect_request(PATH, method="POST").respond_with_json(chat_completion("ok"))
    chat = client(httpserver, api_key=None)
    assert chat.complete("s", "u").text == "ok"
    assert httpserver.log[0][0].headers["Authorization"] == f"Bearer {KEYLESS_API_KEY}"


def test_missing_key_names_the_variable():
    with pytest.raises(MissingCredentialsError, match="OPENAI_API_KEY") as info:
        OpenAIChat(None, "gpt-4o-mini")
    assert isinstance(info.value, PermanentError)
    with pytest.raises(MissingCredentialsError):
        OpenAIChat("   ", "gpt-4o-mini")


def test_null_content_is_empty_text(httpserver):
    httpserver.expect_request(PATH, method="POST").respond_with_json(chat_completion(None))
    assert client(httpserver).complete("s", "u").text == ""


def test_no_choices_is_permanent(httpserver):
    body = chat_completion("x")
    body["choices"] = []
    httpserver.expect_request(PATH, method="POST").respond_with_json(body)
    with pytest.raises(PermanentError, match="no choices"):
        client(httpserver).complete("s", "u")


def test_timeout_is_transient(httpserver):
    release = threading.Event()

    def slow(request: Request) -> Response:
        release.wait(3.0)
        return Response(json.dumps(chat_completion("late")), content_type="application/json")

    httpserver.expect_request(PATH, method="POST").respond_with_handler(slow)
    start = time.perf_counter()
    try:
        with pytest.raises(LLMTimeoutError, match="did not answer within 0.3s") as info:
            client(httpserver, timeout=0.3).complete("s", "u")
    finally:
        release.set()  # free the single-threaded stub server for the next test
    assert isinstance(info.value, TransientError)
    assert time.perf_counter() - start < 2.5


@pytest.mark.parametrize(
    ("status", "kind", "error"),
    [
        (500, "server_error", TransientError),
        (503, "server_error", TransientError),
        (429, "rate_limit_exceeded", TransientError),
        (401, "invalid_request_error", PermanentError),
        (400, "invalid_request_error", PermanentError),
        (404, "invalid_request_error", PermanentError),
        (403, "invalid_request_error", PermanentError),
        (422, "invalid_request_error", PermanentError),
    ],
)
def test_http_errors_map_to_transient_or_permanent(httpserver, status, kind, error):
    httpserver.expect_request(PATH, method="POST").respond_with_data(
        openai_error(f"stub says {status}", kind), status=status, content_type="application/json"
    )
    marker = f"user-{status}-{kind}"
    with pytest.raises(error, match=f"HTTP {status}") as info:
        client(httpserver).complete("s", marker)
    other = PermanentError if error is TransientError else TransientError
    assert not isinstance(info.value, other)
    assert f"stub says {status}" in str(info.value)
    # max_retries=0 reached the SDK: exactly one request of this test (the stub server is
    # shared, so a late request of an earlier test may also be in its log)
    mine = [req for req, _ in httpserver.log if marker in req.get_data(as_text=True)]
    assert len(mine) == 1
    if status == 401:
        assert "OPENAI_API_KEY" in str(info.value)
        assert "sk-test" not in str(info.value)


def test_sdk_retries_are_configured(httpserver):
    httpserver.expect_oneshot_request(PATH, method="POST").respond_with_data(
        openai_error("busy", "server_error"), status=500, content_type="application/json",
        headers={"retry-after-ms": "10"},
    )
    httpserver.expect_request(PATH, method="POST").respond_with_json(chat_completion("second try"))
    assert client(httpserver, max_retries=1).complete("s", "retry-marker").text == "second try"
    mine = [req for req, _ in httpserver.log if "retry-marker" in req.get_data(as_text=True)]
    assert len(mine) == 2


def test_refused_connection_is_transient():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    chat = OpenAIChat("sk-test", "m", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0)
    with pytest.raises(TransientError, match="cannot reach") as info:
        chat.complete("s", "u")
    assert not isinstance(info.value, LLMTimeoutError)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"model": ""}, "model"),
        ({"timeout": 0}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 1.5}, "max_retries"),
        ({"temperature": 2.5}, "temperature"),
        ({"base_url": ""}, "base_url"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = {"api_key": "k", "model": "m", **kwargs}
    with pytest.raises(ValueError, match=match):
        OpenAIChat(**args)


def test_repr_and_properties_do_not_leak_the_key():
    chat = OpenAIChat("sk-secret", "gpt-4o-mini", base_url="http://127.0.0.1:9/v1")
    assert chat.model == "gpt-4o-mini"
    assert chat.base_url.startswith("http://127.0.0.1:9/v1")
    assert "sk-secret" not in repr(chat)


ECHO_KEY = "sk-ECHO-0123456789abcdef"


@pytest.mark.parametrize(("status", "error"), [(401, PermanentError), (500, TransientError), (400, PermanentError)])
def test_a_key_echoed_by_the_server_is_redacted_before_clipping(httpserver, status, error):
    padding = "x" * 240  # the key straddles the 300-character clip: a clipped key would survive redaction

    def echo(request: Request) -> Response:
        key = request.headers["Authorization"].split()[-1]
        return Response(openai_error(f"{padding} {key} and {key.upper()}", "invalid_request_error"),
                        status=status, content_type="application/json")

    httpserver.expect_request(PATH, method="POST").respond_with_handler(echo)
    with pytest.raises(error) as info:
        client(httpserver, api_key=ECHO_KEY).complete("s", "u")
    text = str(info.value)
    assert f"HTTP {status}" in text and "***" in text
    assert "sk-e" not in text.lower() and "0123456789" not in text
    assert info.value.__cause__ is None  # the SDK's exception holds the raw body: not chained


def test_a_key_echoed_in_the_answer_is_redacted(httpserver):
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        chat_completion(f"Bull regime. Your key is {ECHO_KEY}."))
    reply = client(httpserver, api_key=ECHO_KEY).complete("s", "u")
    assert reply.text == "Bull regime. Your key is ***."
