"""Human output: rich on a terminal, today's plain text into pipes or with NO_COLOR (issue 23)."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from agents.cli.output import COLOR_VARIABLE, print_fields, print_table, use_rich

PLAIN_TABLE = "when  to\n2024  ACTIVE\n2025  bear\n"
PLAIN_FIELDS = "risk state\n  trading state  HALTED\n  reason         [x] :warning:\n"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def draw(stream) -> str:
    print_table(["when", "to"], [("2024", "ACTIVE"), ("2025", "bear")], stream=stream)
    print_fields("risk state", [("trading state", "HALTED"), ("reason", "[x] :warning:")], stream=stream)
    return stream.getvalue()


@pytest.fixture(autouse=True)
def _no_colour_settings(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv(COLOR_VARIABLE, raising=False)


def test_pipe_gets_exactly_the_plain_text():
    assert draw(io.StringIO()) == PLAIN_TABLE + PLAIN_FIELDS


def test_terminal_gets_rich(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    out = draw(Terminal())
    assert "\x1b[" in out and "│" in out  # ANSI styles and column rules
    assert "\x1b[1;31mHALTED" in out and "\x1b[1;32mACTIVE" in out  # states in colour
    assert "[x] :warning:" in out  # data is not read as rich markup or emoji codes


@pytest.mark.parametrize(("env", "value"), [("NO_COLOR", "1"), (COLOR_VARIABLE, "never")])
def test_no_color_on_a_terminal_is_plain(monkeypatch, env, value):
    monkeypatch.setenv(env, value)
    assert draw(Terminal()) == PLAIN_TABLE + PLAIN_FIELDS


def test_forced_into_a_pipe(monkeypatch):
    monkeypatch.setenv(COLOR_VARIABLE, "always")
    assert use_rich(io.StringIO())
    assert "\x1b[" in draw(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")  # the user's NO_COLOR wins
    assert not use_rich(io.StringIO())


def test_plain_output_does_not_import_rich():
    code = ("import io, sys\nfrom agents.cli.output import print_table\n"
            "print_table(['a'], [['b']], stream=io.StringIO())\nprint('rich' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin"}).stdout
    assert out.strip() == "False"
