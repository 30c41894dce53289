"""Shared fixtures: an isolated home per test (and a temporary one for the whole session, set
at import), and a guard that keeps tests off the internet."""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import tempfile

import pytest

#: What the environment said before the guard below (a test checks the guard against it).
USER_REGIMEDESK_HOME = os.environ.get("REGIMEDESK_HOME")
USER_REGIMEDESK_CONFIG = os.environ.get("REGIMEDESK_CONFIG")

# Session-wide guard, set when this conftest is imported, i.e. before any fixture of any scope
# runs: a temporary home and no configuration file, whatever the user's environment exports.
# (Module- and session-scoped fixtures run before the per-test ``_isolated_env`` below; without
# this they saw the user's real REGIMEDESK_HOME and wrote into it.)
SESSION_HOME = tempfile.mkdtemp(prefix="regimedesk-test-home-")
os.environ["REGIMEDESK_HOME"] = SESSION_HOME
#: Configuration and secrets no test may inherit (tests that need one set it themselves).
CLEARED_VARIABLES = (
    "REGIMEDESK_CONFIG",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "POLYGON_API_KEY",
    "ALPACA_API_KEY",
    "ALPACA_SECRET_KEY",
    "TELEGRAM_BOT_TOKEN",
)
for _var in CLEARED_VARIABLES:
    os.environ.pop(_var, None)


def pytest_unconfigure(config) -> None:
    """Remove the session's temporary home."""
    shutil.rmtree(SESSION_HOME, ignore_errors=True)

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _check_address(address) -> None:
    if isinstance(address, tuple) and address:
        host = address[0]
        if host in ("localhost",):
            return
        try:
            if ipaddress.ip_address(host.split("%")[0]).is_loopback:
                return
        except ValueError:
            pass
        raise RuntimeError(f"test tried to reach {address!r}: tests must stay on loopback")


def _guarded_connect(self, address):
    _check_address(address)
    return _real_connect(self, address)


def _guarded_connect_ex(self, address):
    _check_address(address)
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """Refuse every connection that is not to 127.0.0.0/8 or ::1."""
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    """Each test gets its own home and working directory and no secrets or config."""
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("REGIMEDESK_HOME", str(home))
    monkeypatch.chdir(work)
    for var in CLEARED_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture(scope="session")
def httpserver_listen_address():
    """pytest-httpserver binds to 127.0.0.1 only, on a free port."""
    return ("127.0.0.1", 0)
