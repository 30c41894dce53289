"""Every ``regimedesk`` command line in README.md's shell blocks runs (issue 23).

The README is the first thing a user pastes from. This module reads its shell blocks
(```` ```sh ````, ``shell``, ``bash``; in ``console`` blocks the lines after ``$ ``), checks
that each ``regimedesk`` line is one plain command (no ``|`` meaning "or"), that it parses, and
runs each one that needs no key, no network and no long wait through :func:`agents.cli.main`
in one shared temporary home, expecting exit code 0.

Placeholders are filled in by the test, not by the README: ``THREAD`` with a run stopped for
approval, ``RUN_ID`` with a journaled run, ``bars.csv`` with a small valid bar file. Output
paths (``--out``, ``--report``) are rewritten into the temporary directory.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from agents.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

#: Fences whose lines are commands; in a ``console`` block only the lines after ``$ `` are.
SHELL_FENCES = frozenset({"sh", "shell", "bash", "console"})

#: Shell operators: a README command line is one command, pasted as is.
OPERATORS = frozenset({"|", "||", "&", "&&", ";", "<", ">", ">>"})

#: Output options whose (relative) targets the test moves into its temporary directory.
OUTPUT_OPTIONS = frozenset({"--out", "--report"})

#: The scheduled job that ``JOB`` names: a graph run without a broker (the cheapest job).
JOB = "readme-run"

#: A fast configuration: yearly instead of quarterly ML refits (fewer walk-forward folds to
#: train; every command still produces the same kind of output), and one scheduled job for
#: ``schedule --list`` / ``--once JOB``.
FAST_CONFIG = f"""\
[ml]
refit_every = 252

[[schedule.jobs]]
name = "{JOB}"
kind = "run"
cron = "30 17 * * mon-fri"
symbols = ["SP500"]
telegram = false
"""


@dataclass(frozen=True)
class ReadmeCommand:
    """One ``regimedesk`` command line of a README shell block."""

    lineno: int
    section: str
    line: str
    argv: tuple[str, ...]  # without the leading "regimedesk"; comments removed

    @property
    def label(self) -> str:
        return f"README.md:{self.lineno} regimedesk {shlex.join(self.argv)}"


def _tokens(line: str) -> list[str]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    return list(lexer)


def readme_commands(text: str) -> list[ReadmeCommand]:
    """The ``regimedesk`` command lines in ``text``'s shell blocks, in order."""
    commands: list[ReadmeCommand] = []
    section, fence = "", None
    for lineno, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("```"):
            fence = None if fence is not None else (stripped[3:].strip() or "text")
            continue
        if fence is None:
            if raw.startswith("#"):
                section = raw.lstrip("#").strip()
            continue
        if fence not in SHELL_FENCES:
            continue
        if fence == "console":
            if not stripped.startswith("$ "):
                continue
            stripped = stripped[2:]
        tokens = _tokens(stripped)
        if tokens and tokens[0] == "regimedesk":
            commands.append(ReadmeCommand(lineno, section, stripped, tuple(tokens[1:])))
    return commands


def _option(argv: tuple[str, ...], name: str) -> str | None:
    for i, token in enumerate(argv):
        if token == name and i + 1 < len(argv):
            return argv[i + 1]
        if token.startswith(name + "="):
            return token.partition("=")[2]
    return None


def skip_reason(argv: tuple[str, ...]) -> str | None:
    """Why a README command is not run here (None: it is run).

    The rules, and why each is needed:

    - a key and the network: ``--source polygon|alpaca``, ``--broker alpaca``, ``--feed
      alpaca|polygon``, ``--llm openai`` (the adapters are tested against local stubs);
    - ``bot``: needs ``TELEGRAM_BOT_TOKEN`` and the Bot API, and polls until stopped;
    - ``schedule`` without a flag: serves until stopped (tests/agents/test_scheduler.py runs
      the scheduler);
    - ``live`` on the replay feed without ``--max-bars``: replays 63 bars per symbol, minutes
      of work (the README's ``--max-bars 10`` example runs instead).
    """
    command = argv[0] if argv else ""
    if (_option(argv, "--source") in ("polygon", "alpaca") or _option(argv, "--broker") == "alpaca"
            or _option(argv, "--feed") in ("polygon", "alpaca") or _option(argv, "--llm") == "openai"):
        return "needs a key and the network"
    if command == "bot":
        return "needs TELEGRAM_BOT_TOKEN and the Telegram Bot API"
    if command == "schedule" and len(argv) == 1:
        return "serves until stopped"
    if command == "live" and argv[1:2] != ("status",) and _option(argv, "--max-bars") is None:
        return "long-running: replays the last 63 bars of every symbol"
    return None


#: The README lines skipped today (argv after "regimedesk"). Kept explicit so that a new
#: skipped line is a decision, not an accident.
EXPECTED_SKIPPED = {
    "data show SPY --source polygon",
    "schedule",
    "bot",
    "live SP500 NASDAQ --feed replay --broker paper",
}


# ----------------------------------------------------------------------------- running


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str


def call(argv: list[str]) -> Outcome:
    """``regimedesk ARGV`` in this process: exit code and what it printed."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse: --help, bad arguments
            code = exc.code if isinstance(exc.code, int) else 1
    return Outcome(int(code or 0), out.getvalue(), err.getvalue())


#: A small valid daily bar file for ``data check bars.csv``.
BARS_CSV = "date,open,high,low,close,volume\n" + "".join(
    f"2024-01-{day:02d},{100 + day},{101 + day},{99 + day},{100.5 + day},{1000 * day}\n"
    for day in (2, 3, 4, 5, 8, 9, 10, 11, 12)
)


class Workspace:
    """One home, configuration and working directory shared by the README commands."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.work = root / "work"
        self.outputs = root / "outputs"
        for folder in (self.home, self.work, self.outputs):
            folder.mkdir(parents=True, exist_ok=True)
        self.config = root / "fast.toml"
        self.config.write_text(FAST_CONFIG, encoding="utf-8")
        (self.work / "bars.csv").write_text(BARS_CSV, encoding="utf-8")

    def enter(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("REGIMEDESK_HOME", str(self.home))
        monkeypatch.setenv("REGIMEDESK_CONFIG", str(self.config))
        monkeypatch.chdir(self.work)

    def waiting_thread(self) -> str:
        """The thread id of a new run stopped for approval."""
        got = call(["run", "SP500", "--approve", "--json"])
        assert got.code == 0, got.stderr
        return json.loads(got.stdout)["thread_id"]

    def crashed_thread(self) -> str:
        """The thread id of a run that crashed in its last agent (reporting), for ``--resume``."""
        from agents.graph.nodes import reporting

        real_make = reporting.make

        def crashing_make(ctx):
            def node(state):
                raise RuntimeError("simulated crash")
            return node

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(reporting, "make", crashing_make)
            got = call(["run", "SP500"])
        assert got.code == 1 and "simulated crash" in got.stderr, got.stderr
        assert reporting.make is real_make
        got = call(["journal", "list", "--json"])
        newest = json.loads(got.stdout)[0]
        assert newest["status"] == "failed", newest
        return newest["thread_id"]

    def run_id(self) -> str:
        """The newest journaled run (one is started if there is none)."""
        got = call(["journal", "list", "--json"])
        assert got.code == 0, got.stderr
        runs = json.loads(got.stdout)
        if not runs:
            self.waiting_thread()
            return self.run_id()
        return runs[0]["run_id"]

    def argv(self, command: ReadmeCommand) -> list[str]:
        """The command's arguments with placeholders filled and outputs under ``outputs``."""
        argv: list[str] = []
        for i, token in enumerate(command.argv):
            previous = command.argv[i - 1] if i else ""
            if token == "THREAD":
                token = self.crashed_thread() if previous == "--resume" else self.waiting_thread()
            elif token == "JOB":
                token = JOB
            elif token == "RUN_ID":
                token = self.run_id()
            elif previous in OUTPUT_OPTIONS and token != "-":
                assert not Path(token).expanduser().is_absolute(), f"{command.label}: absolute output path"
                token = str(self.outputs / token) + ("/" if token.endswith("/") else "")
            argv.append(token)
        return argv


def run_commands(commands: list[ReadmeCommand], workspace: Workspace,
                 monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Run each command not skipped, in order; one line per command that did not exit 0."""
    workspace.enter(monkeypatch)
    failures = []
    for command in commands:
        if skip_reason(command.argv) is not None:
            continue
        got = call(workspace.argv(command))
        if got.code != 0:
            tail = " | ".join(got.stderr.strip().splitlines()[-3:])
            failures.append(f"{command.label}: exit {got.code}: {tail}")
    return failures


# ----------------------------------------------------------------------------- tests

COMMANDS = readme_commands(README.read_text(encoding="utf-8"))


def test_the_readme_has_commands_in_its_command_line_section_and_others():
    sections = {c.section for c in COMMANDS}
    assert "Command line" in sections and "Live runs" in sections
    assert sum(c.section == "Command line" for c in COMMANDS) >= 25
    assert any(c.argv[:2] == ("export", "csv") for c in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: f"line{c.lineno}")
def test_a_readme_command_is_one_command_that_parses(command, monkeypatch, tmp_path):
    operators = OPERATORS & set(_tokens(command.line))
    assert not operators, f"{command.label}: shell operator(s) {sorted(operators)} in a command line"
    # Placeholders parse as they are; only the options and their values are checked here.
    if {"--version", "--help", "-h"} & set(command.argv):
        with pytest.raises(SystemExit) as exc:
            build_parser().parse_args(list(command.argv))
        assert exc.value.code == 0, command.label
        return
    args = build_parser().parse_args(list(command.argv))
    assert getattr(args, "handler", None) is not None, command.label


def test_the_skipped_readme_commands_are_the_expected_few():
    skipped = {shlex.join(c.argv) for c in COMMANDS if skip_reason(c.argv) is not None}
    assert skipped == EXPECTED_SKIPPED


def test_export_csv_to_a_folder_writes_the_file_the_readme_names(tmp_path):
    # The README: "--out signals/ # signals/regimedesk_signals.csv": a trailing slash is a folder.
    line = next(c for c in COMMANDS if c.argv[:2] == ("export", "csv"))
    assert "signals/regimedesk_signals.csv" in line.line and _option(line.argv, "--out") == "signals/"
    args = build_parser().parse_args(["export", "csv", "SP500", "--out", f"{tmp_path}/signals/"])
    from agents.cli.options import output_file

    assert output_file(args.out, "--out", default_name="regimedesk_signals.csv") == (
        tmp_path / "signals" / "regimedesk_signals.csv")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Workspace:
    return Workspace(tmp_path_factory.mktemp("readme"))


@pytest.mark.slow
def test_every_readme_command_runs(workspace, monkeypatch):
    failures = run_commands(COMMANDS, workspace, monkeypatch)
    assert failures == []
    # What the README says the export writes, it wrote.
    written = workspace.outputs / "signals" / "regimedesk_signals.csv"
    assert written.read_text(encoding="utf-8").startswith("date,symbol,bar_start,available_at,close,")
    assert (workspace.outputs / "qc" / "main.py").is_file()
    assert (workspace.outputs / "report.pdf").read_bytes()[:5] == b"%PDF-"
    assert (workspace.outputs / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert (workspace.work / "regimedesk.toml").is_file()  # config init, in the working directory


def test_a_readme_line_with_a_typo_fails_the_check(workspace, monkeypatch):
    text = README.read_text(encoding="utf-8")
    typo = re.sub(r"(?m)^regimedesk config show\b", "regimedesk config show --jsn", text, count=1)
    assert typo != text
    bad = [c for c in readme_commands(typo) if "--jsn" in c.argv]
    assert len(bad) == 1
    with pytest.raises(SystemExit):
        build_parser().parse_args(list(bad[0].argv))
    failures = run_commands(bad, workspace, monkeypatch)
    assert len(failures) == 1 and "config show --jsn: exit 2" in failures[0]
    assert "unrecognized arguments: --jsn" in failures[0]
