"""``regimedesk completion bash|zsh`` (issue 23, item 3): scripts made from the real parser.

The bash script is sourced in a real ``bash`` and ``_regimedesk`` is driven the way bash
drives it (``COMP_WORDS``/``COMP_CWORD`` in, ``COMPREPLY`` out). zsh need not be installed:
its script is checked for the ``#compdef`` line and every command name.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from agents.cli import build_parser, main
from agents.cli.completion import command_specs, completion_script


@pytest.fixture(scope="module")
def bash_script() -> str:
    return completion_script("bash", build_parser())


def complete(script: str, *words: str) -> list[str]:
    """COMPREPLY of ``_regimedesk`` with the cursor on the last of ``words``."""
    words_literal = " ".join(f"'{w}'" for w in words)
    driver = (f"{script}\nCOMP_WORDS=({words_literal}); COMP_CWORD={len(words) - 1}; "
              "_regimedesk; printf '%s\\n' \"${COMPREPLY[@]}\"")
    proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", driver], capture_output=True,
                          text=True, check=True)
    assert proc.stderr == ""
    return [line for line in proc.stdout.splitlines() if line]


needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")


@needs_bash
def test_bash_completes_a_command_prefix(bash_script):
    assert complete(bash_script, "regimedesk", "ri") == ["risk"]
    assert sorted(complete(bash_script, "regimedesk", "re")) == ["regime", "reject", "report"]


@needs_bash
def test_bash_completes_subcommands_after_global_options(bash_script):
    expected = ["status", "halt", "reduce", "resume", "flatten", "var"]
    assert complete(bash_script, "regimedesk", "risk", "") == expected
    assert complete(bash_script, "regimedesk", "--config", "x.toml", "-v", "risk", "") == expected


@needs_bash
def test_bash_completes_options_and_their_choices(bash_script):
    assert complete(bash_script, "regimedesk", "risk", "flatten", "--broker", "") == ["paper", "alpaca"]
    assert complete(bash_script, "regimedesk", "risk", "flatten", "--br") == ["--broker"]
    assert complete(bash_script, "regimedesk", "completion", "") == ["bash", "zsh"]
    # an option filled in later (fill_later) is there; a hidden one (stats --timeframe) is not
    assert "--method" in complete(bash_script, "regimedesk", "regime", "SP500", "--m")
    assert complete(bash_script, "regimedesk", "stats", "SP500", "--time") == []
    # a free value (a file) gets nothing from the script: bash falls back to file names
    assert complete(bash_script, "regimedesk", "report", "SP500", "--out", "") == []


def test_zsh_script_names_every_command():
    parser = build_parser()
    script = completion_script("zsh", parser)
    assert script.startswith("#compdef regimedesk\n")
    top = command_specs(parser)[0]
    names = [name for name, _ in top.subcommands]
    assert {"run", "risk", "journal", "data", "completion"} <= set(names)
    for name in names:
        assert f"{name}:" in script  # the _describe line "name:help"
    assert "compdef _regimedesk regimedesk" in script


def test_completion_command_prints_the_script(capsys):
    assert main(["completion", "bash"]) == 0
    out = capsys.readouterr().out
    assert "complete -o default -F _regimedesk regimedesk" in out
    with pytest.raises(SystemExit) as exc:
        main(["completion", "fish"])
    assert exc.value.code == 2
