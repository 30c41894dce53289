"""``regimedesk bot`` starts robustly: a failing or unreachable Bot API is retried, then one line.

python-telegram-bot's real ``Bot`` asks the loopback Bot API stub for getMe; the stub answers
HTTP 502 first (or always), or nothing listens on the port at all. Sleeps are recorded, not slept.
"""

from __future__ import annotations

import json
import re
import socket

import pytest
from werkzeug import Response

from agents.cli import bot as _cli_bot
from agents.cli import main
from integrations import AccessPolicy, BotStateStore, CommandBot, PermanentError, TransientError
from tests.telegram_stub import TOKEN, BotApiStub


def _bad_gateway(request):
    return Response(json.dumps({"ok": False, "error_code": 502, "description": "Bad Gateway"}), status=502,
                    content_type="application/json")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


def _bot(base_url: str) -> CommandBot:
    return CommandBot(TOKEN, [], AccessPolicy(), BotStateStore(":memory:"), base_url=f"{base_url}/bot", timeout=5)


def test_connect_retries_a_502_then_succeeds(httpserver):
    stub = BotApiStub(httpserver)
    httpserver.expect_oneshot_request(f"/bot{TOKEN}/getMe").respond_with_handler(_bad_gateway)
    httpserver.expect_oneshot_request(f"/bot{TOKEN}/getMe").respond_with_handler(_bad_gateway)
    bot = _bot(stub.base_url.removesuffix("/bot"))
    sleeps: list[float] = []
    try:
        assert bot.connect(sleep=sleeps.append) == "regimedesk_test_bot"
    finally:
        bot.close()
    assert sleeps == [1.0, 2.0]  # two failures, exponential backoff
    assert stub.methods() == ["getMe"]  # the third try reached the stub's own getMe


def test_connect_gives_up_after_five_attempts_with_one_line(httpserver):
    httpserver.expect_request(re.compile(r"^/bot.*")).respond_with_handler(_bad_gateway)
    bot = _bot(httpserver.url_for("").rstrip("/"))
    sleeps: list[float] = []
    try:
        with pytest.raises(TransientError) as info:
            bot.connect(sleep=sleeps.append)
    finally:
        bot.close()
    assert sleeps == [1.0, 2.0, 4.0, 8.0] and len(httpserver.log) == 5
    text = str(info.value)
    assert "\n" not in text and "Bad Gateway" in text and "after 5 attempts over 15 s" in text
    assert TOKEN not in text and TOKEN.split(":")[1] not in text
    with pytest.raises(ValueError, match="attempts"):
        bot.connect(attempts=0)


def test_connect_does_not_retry_a_refused_token(httpserver):
    httpserver.expect_request(re.compile(r"^/bot.*")).respond_with_json(
        {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
    bot = _bot(httpserver.url_for("").rstrip("/"))
    sleeps: list[float] = []
    try:
        with pytest.raises(PermanentError, match="refused the bot token") as info:
            bot.connect(sleep=sleeps.append)
    finally:
        bot.close()
    assert sleeps == [] and len(httpserver.log) == 1 and TOKEN not in str(info.value)


def _config(tmp_path, base_url: str):
    cfg = tmp_path / "bot.toml"
    cfg.write_text(f"[telegram]\nbase_url = '{base_url}/bot'\nchat_ids = [31]\nuser_ids = [31]\n"
                   "alert_poll_seconds = 0\n")
    return str(cfg)


@pytest.mark.parametrize("where", ["always 502", "closed port"])
def test_regimedesk_bot_exits_1_with_one_line(httpserver, tmp_path, monkeypatch, capsys, where):
    if where == "always 502":
        httpserver.expect_request(re.compile(r"^/bot.*")).respond_with_handler(_bad_gateway)
        base = httpserver.url_for("").rstrip("/")
    else:
        base = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    sleeps: list[float] = []
    monkeypatch.setattr(_cli_bot, "_startup_sleep", sleeps.append)
    assert main(["--config", _config(tmp_path, base), "bot"]) == 1
    out = capsys.readouterr()
    lines = out.err.strip().splitlines()
    assert len(lines) == 1, out.err
    assert lines[0].startswith("regimedesk: error: the Telegram Bot API at 127.0.0.1:")
    assert "unreachable or failing" in lines[0] and "after 5 attempts" in lines[0]
    assert "Traceback" not in out.err and TOKEN not in out.err and out.out == ""
    assert sleeps == [1.0, 2.0, 4.0, 8.0]
    if where == "always 502":
        assert len(httpserver.log) == 5


def test_regimedesk_bot_starts_after_a_502(tmp_path):
    """The real command in a subprocess: one 502 on getMe, then it polls and answers; SIGTERM stops it."""
    import os
    import signal
    import subprocess
    import sys

    from pytest_httpserver import HTTPServer

    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)  # the bot long-polls getUpdates
    server.start()
    try:
        stub = BotApiStub(server)
        server.expect_oneshot_request(f"/bot{TOKEN}/getMe").respond_with_handler(_bad_gateway)
        cfg = _config(tmp_path, stub.base_url.removesuffix("/bot"))
        env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN, "REGIMEDESK_CONFIG": cfg}
        proc = subprocess.Popen([sys.executable, "-m", "agents.cli", "bot"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            stub.push_message("/start", 31)
            stub.wait_for(lambda: stub.messages(31), timeout=120)
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    finally:
        server.clear()
        server.stop()
    assert proc.returncode == 0, err
    assert "start-up attempt 1 of 5 failed" in err and "Bad Gateway" in err
    assert "RegimeDesk bot polling 127.0.0.1" in err and "bot stopped" in err and "Traceback" not in err
    assert TOKEN not in err and TOKEN.split(":")[1] not in err
