"""No configured secret is ever echoed, stored or printed.

Loopback servers echo the credentials they were sent, as real services do in error bodies:
an OpenAI-compatible server quotes the key in its 401, Polygon the ``apiKey``, Alpaca the
``APCA-API-KEY-ID`` and secret headers, the Telegram Bot API the token (in the request path).
The real client libraries talk to them through the real command line; the secrets must then
appear nowhere: stdout, stderr, log records, the journal's and the checkpoints' SQLite bytes,
``job_runs`` and ``schedule --history``.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path
from urllib.parse import quote, quote_plus

import pandas as pd
import pytest

from agents.cli import main
from tests.stubs import echo_alpaca_error, echo_openai_401, echo_polygon_error, echo_telegram_401

OPENAI_KEY = "sk-ECHO-0123456789abcdef"
POLYGON_KEY = "pg-ECHO-0123456789abcdef"
ALPACA_KEY = "PKECHO0123456789ABCD"
ALPACA_SECRET = "sec/ECHO+0123456789abcdef="  # '/', '+' and '=' change under URL encoding
TG_TOKEN = "987654321:ECHO-tg-0123456789abcdefXYZ"
TG_SECRET = TG_TOKEN.split(":", 1)[1]

FAST_ML = "[ml]\nrefit_every = 252\n"


def _forms(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}


def assert_clean(where: str, text: str | bytes, *secrets: str) -> None:
    """No form of any secret (any case) occurs in ``text``."""
    haystack = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    low = haystack.lower()
    for secret in secrets:
        for form in _forms(secret):
            assert form.lower() not in low, f"{where} contains a secret ({form[:6]}...)"


def _home_bytes(home: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in home.rglob("*") if p.is_file() and "sqlite" in p.name}


@pytest.fixture(autouse=True)
def _forget_secrets():
    yield
    from integrations import register_secrets

    register_secrets((), replace=True)


# ------------------------------------------------------------------ the one redaction function


def test_redact_every_form_of_a_secret():
    from integrations import MIN_SECRET_LENGTH, REDACTED, redact

    assert MIN_SECRET_LENGTH == 8 and REDACTED == "***"
    text = (f"key {ALPACA_SECRET}; url ?s={quote(ALPACA_SECRET, safe='')}&p={quote_plus(ALPACA_SECRET)}; "
            f"json {json.dumps({'s': ALPACA_SECRET})}; upper {ALPACA_SECRET.upper()}; inside x{OPENAI_KEY}y")
    out = redact(text, [ALPACA_SECRET, OPENAI_KEY])
    assert_clean("redacted text", out, ALPACA_SECRET, OPENAI_KEY)
    assert out.count("***") == 6 and out.startswith("key ***; url ?s=***&p=***") and "x***y" in out
    # a JSON document stays valid JSON
    doc = json.dumps({"error": f"bad key {OPENAI_KEY}", "n": 1})
    assert json.loads(redact(doc, [OPENAI_KEY])) == {"error": "bad key ***", "n": 1}
    # a Telegram token and its secret half
    assert redact(f"/bot{TG_TOKEN}/getMe and {TG_SECRET.lower()}", [TG_TOKEN]) == "/bot***/getMe and ***"


def test_short_values_and_none_are_not_redacted():
    from integrations import redact

    assert redact("a short key: abc1234 stays", ["abc1234", None, ""]) == "a short key: abc1234 stays"
    assert redact("12:abcdefg-xyz", ["12:abcdefg-xyz"]) == "***"  # the whole value, not the short half
    assert redact("", [OPENAI_KEY]) == ""
    with pytest.raises(TypeError, match="text"):
        redact(b"bytes", [OPENAI_KEY])
    with pytest.raises(TypeError, match="secrets"):
        redact("x", OPENAI_KEY)


def test_registered_secrets_apply_everywhere_until_replaced():
    from integrations import redact, redact_token, register_secrets

    register_secrets([OPENAI_KEY, None, "short"])
    assert redact(f"echo {OPENAI_KEY}") == "echo ***"
    assert redact_token(f"echo {OPENAI_KEY} {TG_TOKEN}", TG_TOKEN) == "echo *** ***"
    register_secrets([POLYGON_KEY])
    assert redact(f"{OPENAI_KEY} {POLYGON_KEY}") == "*** ***"
    register_secrets([POLYGON_KEY], replace=True)
    assert redact(f"{OPENAI_KEY} {POLYGON_KEY}") == f"{OPENAI_KEY} ***"


def test_logging_filter_and_stream():
    import io

    from integrations import RedactingFilter, RedactingStream

    try:
        raise RuntimeError(f"boom {OPENAI_KEY}")
    except RuntimeError:
        import sys

        exc_info = sys.exc_info()
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "call with %s failed", (OPENAI_KEY,), exc_info)
    assert RedactingFilter([OPENAI_KEY]).filter(record)
    formatted = logging.Formatter().format(record)
    assert "call with *** failed" in formatted and "RuntimeError: boom ***" in formatted
    assert_clean("log record", formatted, OPENAI_KEY)
    sink = io.StringIO()
    stream = RedactingStream(sink, [OPENAI_KEY])
    print(f"key={OPENAI_KEY}", file=stream)
    stream.flush()
    assert sink.getvalue() == "key=***\n" and stream.wrapped is sink


# ------------------------------------------------------------------ OpenAI-compatible server


def test_openai_key_echoed_in_a_401_reaches_no_output_journal_or_checkpoint(httpserver, tmp_path, monkeypatch,
                                                                           capsys, caplog):
    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(echo_openai_401)
    cfg = tmp_path / "llm.toml"
    cfg.write_text(FAST_ML + f'[llm]\nbackend = "openai"\nbase_url = "{httpserver.url_for("/v1")}"\n'
                   "max_retries = 0\n")
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    caplog.set_level(logging.INFO)
    assert main(["--config", str(cfg), "run", "SP500", "--as-of", "2015-06-30", "--json"]) == 0
    out = capsys.readouterr()
    assert httpserver.log, "the LLM server was not called"
    assert OPENAI_KEY in httpserver.log[0][1].get_data(as_text=True)  # the server did echo it
    state = json.loads(out.out)
    reasons = [n["fallback_reason"] for per in state["narratives"].values() for n in per.values()]
    assert reasons and all("PermanentError" in r and "HTTP 401" in r for r in reasons)
    assert_clean("stdout of run --json", out.out, OPENAI_KEY)
    assert_clean("stderr of run", out.err, OPENAI_KEY)
    run_id = state["run_id"]
    assert main(["--config", str(cfg), "journal", "show", run_id, "--json"]) == 0
    shown = capsys.readouterr()
    assert "llm_exchanges" in shown.out
    assert_clean("journal show", shown.out + shown.err, OPENAI_KEY)
    assert_clean("log records", caplog.text, OPENAI_KEY)
    files = _home_bytes(Path(tmp_path / "home"))
    assert any(name.startswith("checkpoints") for name in files) and any(n.startswith("journal") for n in files)
    for name, data in files.items():
        assert_clean(name, data, OPENAI_KEY)


# ------------------------------------------------------------------ Polygon


def _polygon_config(tmp_path, base: str) -> Path:
    cfg = tmp_path / "polygon.toml"
    cfg.write_text(f"[data]\nretries = 1\n[data.polygon]\nbase_url = '{base}'\nretries = 0\ntimeout = 5\n")
    return cfg


@pytest.mark.parametrize("status", [403, 400])
def test_polygon_key_echoed_in_an_error_is_not_printed(httpserver, tmp_path, monkeypatch, capsys, caplog, status):
    import re

    httpserver.expect_request(re.compile(r"^/v2/aggs/.*")).respond_with_handler(
        lambda r: echo_polygon_error(r, status))
    monkeypatch.setenv("POLYGON_API_KEY", POLYGON_KEY)
    caplog.set_level(logging.INFO)
    cfg = _polygon_config(tmp_path, httpserver.url_for("").rstrip("/"))
    code = main(["--config", str(cfg), "data", "show", "SPY", "--source", "polygon", "--start", "2024-01-02",
                 "--end", "2024-01-31", "--json"])
    out = capsys.readouterr()
    assert code == 1 and "polygon" in out.err and len(out.err.strip().splitlines()) == 1
    assert "Unknown API Key ***" in out.err  # the server's words are kept, the key is not
    assert_clean("polygon output", out.out + out.err + caplog.text, POLYGON_KEY)


def test_polygon_source_errors_carry_no_key(httpserver):
    import re

    from integrations import PermanentError, PolygonSource
    from integrations._market_data import MarketData

    httpserver.expect_request(re.compile(r"^/v2/aggs/.*")).respond_with_handler(
        lambda r: echo_polygon_error(r, 404))
    md = MarketData(PolygonSource(POLYGON_KEY, base_url=httpserver.url_for("").rstrip("/"), retries=0), retries=1)
    with pytest.raises(PermanentError) as info:
        md.bars("SPY", start="2024-01-01", end="2024-01-31", now=pd.Timestamp("2024-06-01", tz="UTC"))
    assert "polygon" in str(info.value)
    assert_clean("polygon error", str(info.value), POLYGON_KEY)


# ------------------------------------------------------------------ Alpaca


def _alpaca_env(monkeypatch) -> None:
    monkeypatch.setenv("ALPACA_API_KEY", ALPACA_KEY)
    monkeypatch.setenv("ALPACA_SECRET_KEY", ALPACA_SECRET)


def test_alpaca_keys_echoed_in_a_403_are_not_printed(httpserver, tmp_path, monkeypatch, capsys, caplog):
    httpserver.expect_request("/v2/account").respond_with_handler(echo_alpaca_error)
    httpserver.expect_request("/v2/positions").respond_with_handler(echo_alpaca_error)
    httpserver.expect_request("/v2/orders").respond_with_handler(echo_alpaca_error)
    _alpaca_env(monkeypatch)
    caplog.set_level(logging.INFO)
    cfg = tmp_path / "alpaca.toml"
    cfg.write_text(f"[broker.alpaca]\nbase_url = '{httpserver.url_for('').rstrip('/')}'\n")
    for argv in (["positions", "--broker", "alpaca"], ["positions", "--broker", "alpaca", "--json"],
                 ["orders", "--broker", "alpaca"]):
        assert main(["--config", str(cfg), *argv]) == 1
        out = capsys.readouterr()
        assert "alpaca refused" in out.err and len(out.err.strip().splitlines()) == 1
        assert_clean(" ".join(argv), out.out + out.err, ALPACA_KEY, ALPACA_SECRET)
    assert httpserver.log and ALPACA_SECRET in httpserver.log[0][1].get_data(as_text=True)
    assert_clean("log records", caplog.text, ALPACA_KEY, ALPACA_SECRET)


def test_alpaca_data_errors_carry_no_keys(httpserver, tmp_path, monkeypatch, capsys):
    httpserver.expect_request("/v2/stocks/bars").respond_with_handler(lambda r: echo_alpaca_error(r, 422))
    _alpaca_env(monkeypatch)
    cfg = tmp_path / "alpaca-data.toml"
    cfg.write_text(f"[data]\nretries = 1\n[data.alpaca]\nbase_url = '{httpserver.url_for('').rstrip('/')}'\n")
    code = main(["--config", str(cfg), "data", "show", "AAPL", "--source", "alpaca", "--start", "2024-01-02",
                 "--end", "2024-01-31"])
    out = capsys.readouterr()
    assert code == 1 and "alpaca error for AAPL (HTTP 422)" in out.err
    assert_clean("alpaca data output", out.out + out.err, ALPACA_KEY, ALPACA_SECRET)


@pytest.mark.parametrize("service", ["alpaca", "polygon"])
def test_live_feed_errors_carry_no_keys(httpserver, service):
    import re

    from integrations import AlpacaSource, IntegrationError, PollingFeed, PolygonSource

    base = httpserver.url_for("").rstrip("/")
    if service == "alpaca":
        httpserver.expect_request("/v2/stocks/bars").respond_with_handler(lambda r: echo_alpaca_error(r, 500))
        source = AlpacaSource(ALPACA_KEY, ALPACA_SECRET, base_url=base)
    else:
        httpserver.expect_request(re.compile(r"^/v2/aggs/.*")).respond_with_handler(
            lambda r: echo_polygon_error(r, 403))
        source = PolygonSource(POLYGON_KEY, base_url=base, retries=0, timeout=5)
    sleeps: list[float] = []
    feed = PollingFeed(source, ["AAPL"], "1Min", attempts=3, backoff=0.5, sleep=sleeps.append)
    with pytest.raises(IntegrationError) as info:
        feed.next_batch(None, pd.Timestamp("2024-06-03 15:00", tz="UTC"))
    assert service in str(info.value)
    assert_clean(f"{service} feed error", str(info.value), ALPACA_KEY, ALPACA_SECRET, POLYGON_KEY)
    assert httpserver.log


# ------------------------------------------------------------------ Telegram


def test_telegram_token_echoed_by_the_bot_api_reaches_no_job_run_history_or_log(httpserver, tmp_path, monkeypatch,
                                                                               capsys, caplog):
    import re

    httpserver.expect_request(re.compile(r"^/bot.*")).respond_with_handler(echo_telegram_401)
    base = httpserver.url_for("").rstrip("/")
    home = tmp_path / "home"
    cfg = tmp_path / "schedule.toml"
    cfg.write_text(FAST_ML + f"[telegram]\nbase_url = '{base}/bot'\nbase_file_url = '{base}/file/bot'\nchat_ids = [42]\n"
                   "[[schedule.jobs]]\nname = 'close'\nkind = 'run'\ncron = '30 17 * * mon-fri'\n"
                   "symbols = ['SP500']\n")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TG_TOKEN)
    caplog.set_level(logging.DEBUG)
    code = main(["--config", str(cfg), "schedule", "--once", "close", "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    outcome = json.loads(out.out)
    assert outcome["status"] == "partial" and outcome["deliveries"][0]["ok"] is False
    assert "***" in outcome["deliveries"][0]["error"]  # what Telegram said is kept, the token is not
    assert any(TG_TOKEN in (r.path or "") for r, _ in httpserver.log)  # the library did send it
    assert_clean("schedule --once", out.out + out.err, TG_TOKEN, TG_SECRET)
    for argv in (["schedule", "--history"], ["schedule", "--history", "--json"]):
        assert main(["--config", str(cfg), *argv]) == 0
        shown = capsys.readouterr()
        assert "close" in shown.out
        assert_clean(" ".join(argv), shown.out + shown.err, TG_TOKEN, TG_SECRET)
    assert_clean("log records", caplog.text, TG_TOKEN, TG_SECRET)
    with sqlite3.connect(home / "schedule_state.sqlite") as conn:
        rows = conn.execute("SELECT detail FROM job_runs").fetchall()
    assert rows and all("***" in r[0] for r in rows)
    for name, data in _home_bytes(home).items():
        assert_clean(name, data, TG_TOKEN, TG_SECRET)


def test_a_failing_job_alert_logs_no_token(httpserver, tmp_path, monkeypatch, capsys, caplog):
    import re

    httpserver.expect_request(re.compile(r"^/bot.*")).respond_with_handler(echo_telegram_401)
    base = httpserver.url_for("").rstrip("/")
    cfg = tmp_path / "schedule.toml"
    cfg.write_text(f"[telegram]\nbase_url = '{base}/bot'\nchat_ids = [42]\n"
                   "[[schedule.jobs]]\nname = 'bad'\nkind = 'run'\ncron = '30 17 * * mon-fri'\n"
                   "symbols = ['NOSUCHSYMBOL']\n")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TG_TOKEN)
    caplog.set_level(logging.DEBUG)
    assert main(["--config", str(cfg), "schedule", "--once", "bad"]) == 1
    out = capsys.readouterr()
    assert httpserver.log, "the alert was not attempted"
    assert_clean("schedule --once bad", out.out + out.err, TG_TOKEN, TG_SECRET)
    assert_clean("log records", caplog.text, TG_TOKEN, TG_SECRET)
    for name, data in _home_bytes(tmp_path / "home").items():
        assert_clean(name, data, TG_TOKEN, TG_SECRET)


def test_bot_refused_token_is_one_clean_line(httpserver, tmp_path, monkeypatch, capsys, caplog):
    import re

    from agents.cli import bot as _cli_bot

    httpserver.expect_request(re.compile(r"^/bot.*")).respond_with_handler(echo_telegram_401)
    base = httpserver.url_for("").rstrip("/")
    cfg = tmp_path / "bot.toml"
    cfg.write_text(f"[telegram]\nbase_url = '{base}/bot'\nchat_ids = [42]\nuser_ids = [42]\n")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TG_TOKEN)
    sleeps: list[float] = []
    monkeypatch.setattr(_cli_bot, "_startup_sleep", sleeps.append, raising=False)
    caplog.set_level(logging.DEBUG)
    assert main(["--config", str(cfg), "bot"]) == 1
    out = capsys.readouterr()
    assert sleeps == []  # a refused token is not retried
    lines = out.err.strip().splitlines()
    assert lines == [lines[0]] and lines[0].startswith("regimedesk: error:") and "TELEGRAM_BOT_TOKEN" in lines[0]
    assert_clean("bot stderr", out.out + out.err + caplog.text, TG_TOKEN, TG_SECRET)
