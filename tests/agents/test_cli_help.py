"""Every command's ``--help`` ends with examples that really parse (issue 23, item 3)."""

from __future__ import annotations

import argparse
import shlex

import pytest

from agents.cli import build_parser
from agents.cli.completion import command_specs
from agents.cli.helptext import EXAMPLES_HEADING, HelpFormatter, examples


def parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command words, parser) for the top level and every command and subcommand."""
    parser.format_usage()  # fills a fill_later parser
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from parsers(child, (*path, name))


def example_lines(epilog: str) -> list[str]:
    lines = epilog.split(EXAMPLES_HEADING, 1)[1].splitlines()
    return [line.strip() for line in lines if line.strip()]


def test_every_command_has_examples_that_parse():
    walked = list(parsers(build_parser()))
    assert len(walked) >= 30  # the top level, every command and subcommand
    for path, parser in walked:
        epilog = parser.epilog or ""
        assert EXAMPLES_HEADING in epilog, f"{' '.join(path) or 'regimedesk'} has no examples"
        found = example_lines(epilog)
        assert 2 <= len(found) <= 3, (path, found)
        assert EXAMPLES_HEADING in parser.format_help()
        for line in found:
            words = shlex.split(line)
            if ">" in words:  # a shell redirection is not the command's
                words = words[:words.index(">")]
            assert words[0] == "regimedesk", line
            args = build_parser().parse_args(words[1:])  # exits 2 on a line that does not parse
            assert args.handler is not None, line
            n = len(path)  # the example runs this very command: its words appear in order
            assert any(tuple(words[i:i + n]) == path for i in range(1, len(words) - n + 1)), line


def test_help_keeps_example_lines_and_wraps_prose(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["risk", "status", "--help"])
    out = capsys.readouterr().out
    assert "\nexamples:\n  regimedesk risk status\n  regimedesk risk status --json\n" in out
    # the field list of the description keeps one field per line
    assert "\n  trading state           ACTIVE, REDUCING or HALTED" in out
    assert "\n  peak equity             highest equity seen" in out


def test_formatter_wraps_paragraphs_and_keeps_indented_lines():
    text = "word " * 30 + "\n\n  kept   as   is\n" + examples("regimedesk run SP500")
    filled = HelpFormatter("prog")._fill_text(text, 40, "")
    lines = filled.splitlines()
    assert max(len(line) for line in lines[:4]) <= 40 and lines[0].startswith("word word")
    assert "  kept   as   is" in lines
    assert lines[-2:] == ["examples:", "  regimedesk run SP500"]


def test_journal_show_and_risk_status_describe_their_fields():
    specs = {spec.path: spec for spec in command_specs(build_parser())}
    assert ("journal", "show") in specs and ("risk", "status") in specs
    help_text = {path: parser.format_help() for path, parser in parsers(build_parser())}
    for field in ("agent_outputs", "llm_exchanges", "decisions", "verdicts", "orders", "fills"):
        assert f"  {field} " in help_text[("journal", "show")]
    for field in ("reason", "day", "silent live feeds", "checks switched off"):
        assert f"  {field} " in help_text[("risk", "status")]
