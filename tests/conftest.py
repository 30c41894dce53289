"""Shared fixtures: an isolated home per test and a guard that keeps tests off the internet."""

from __future__ import annotations

import ipaddress
import socket

import pytest

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
    for var in (
        "REGIMEDESK_CONFIG",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "POLYGON_API_KEY",
        "ALPACA_API_KEY",
        "ALPACA_SECRET_KEY",
        "TELEGRAM_BOT_TOKEN",
    ):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture(scope="session")
def httpserver_listen_address():
    """pytest-httpserver binds to 127.0.0.1 only, on a free port."""
    return ("127.0.0.1", 0)
