"""``regimedesk completion bash|zsh`` (issue 23, item 3): scripts made from the real parser.

The bash script is sourced in a real ``bash`` and ``_regimedesk`` is driven the way bash
drives it (``COMP_WORDS``/``COMP_CWORD`` in, ``COMPREPLY`` out). The zsh script is loaded in a
real interactive ``zsh`` (after ``compinit``) running in a pseudo-terminal (``zsh/zpty``): the
test types the line and a TAB, zsh's own completion widget runs, and every word the completion
functions hand to ``compadd`` that matches the line is recorded. The zsh tests are skipped
when zsh is not installed; the script's text is checked either way.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

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
    expected = ["status", "halt", "reduce", "resume", "flatten", "var", "stress"]
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


# --- zsh: the real completion system in a pseudo-terminal -------------------------------------

# zsh -f ZPTY_DRIVER SETUP OUT LINE...: start an interactive zsh in a pty, run SETUP there, wrap
# compadd so that every matching word it is given is appended to OUT (the calls that already
# collect their matches with -A/-D/-O, as inside _describe and _path_files, pass through), then
# for each LINE: type it and a TAB, clear the line, wait until the shell has answered a marker
# command, and end that line's candidates in OUT with an END_MARK line.
END_MARK = "__RD_END__"
ZPTY_DRIVER = r"""
zmodload zsh/zpty || exit 3
setup=$1 out=$2
shift 2
zpty rd zsh -f -i || exit 4
# Wait for the prompt after the marker's output: zle has put the terminal in raw mode by then.
# (Typed earlier, while the terminal is still in line mode, the ^U below would wipe the line.)
rd_sync() { zpty -w rd "print -r -- __RD\"\"$1__"; zpty -r rd screen "*__RD$1__*<rd-prompt>*" || exit 5; }
zpty -w rd "PS1='<rd-prompt>' RPS1=''; unsetopt zle_bracketed_paste; LISTMAX=100000"
zpty -w rd "$setup"
zpty -w rd 'compadd() {
    if (( ${@[(I)-[ADO]*]} )); then builtin compadd "$@"; return; fi
    local -a rd_matches
    builtin compadd -O rd_matches "$@"
    (( $#rd_matches )) && print -rl -- $rd_matches >> '"${(q)out}"'
    builtin compadd "$@"
}'
rd_sync READY
: >> $out
for line; do
    zpty -w -n rd "$line"$'\t'
    zpty -w -n rd $'\C-e\C-u'
    rd_sync $(( ++n ))
    print -r -- {END_MARK} >> $out
done
zpty -d rd
""".replace("{END_MARK}", END_MARK)

ZSH = shutil.which("zsh")
needs_zsh = pytest.mark.skipif(ZSH is None, reason="zsh is not installed (apt-get install zsh)")
PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def zsh_script_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("zsh") / "regimedesk.zsh"
    path.write_text(completion_script("zsh", build_parser()))
    return path


def zsh_complete(cwd: Path, load: str, *lines: str) -> list[list[str]]:
    """For each of ``lines``, the sorted candidates zsh's completion offers (cursor at its end).

    ``load`` runs in the interactive shell (started in ``cwd``) before the first TAB; it must
    run ``compinit`` and make ``_regimedesk`` the completer of ``regimedesk``.
    """
    driver = cwd / "zpty_driver.zsh"
    driver.write_text(ZPTY_DRIVER)
    out = cwd / "candidates.txt"
    out.unlink(missing_ok=True)
    assert ZSH is not None
    env = {"PATH": f"{Path(ZSH).parent}:/usr/bin:/bin", "TERM": "xterm", "HOME": str(cwd), "LANG": "C.UTF-8",
           "PYTHONPATH": str(PROJECT)}
    proc = subprocess.run([ZSH, "-f", str(driver), load, str(out), *lines], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    answers: list[list[str]] = [[]]
    for word in out.read_text().splitlines():
        if word == END_MARK:
            answers.append([])
        else:
            answers[-1].append(word)
    assert answers.pop() == [] and len(answers) == len(lines)
    return [sorted(words) for words in answers]


def sourced(script: Path) -> str:
    return f"autoload -Uz compinit && compinit -u -D && source {shlex.quote(str(script))}"


@needs_zsh
def test_zsh_completes_commands_and_subcommands(zsh_script_file, tmp_path):
    top = sorted(name for name, _ in command_specs(build_parser())[0].subcommands)
    assert {"run", "risk", "journal", "data", "completion"} <= set(top)
    risk = ["flatten", "halt", "reduce", "resume", "status", "stress", "var"]
    cases = {
        "regimedesk ": top,
        "regimedesk ri": ["risk"],
        "regimedesk re": ["regime", "reject", "report"],
        "regimedesk data ": ["check", "show"],
        "regimedesk --config x.toml -v risk ": risk,
        "regimedesk completion ": ["bash", "zsh"],
    }
    assert zsh_complete(tmp_path, sourced(zsh_script_file), *cases) == list(cases.values())


@needs_zsh
def test_zsh_completes_options_and_their_choices(zsh_script_file, tmp_path):
    run_long = ["--approve", "--as-of", "--broker", "--help", "--json", "--llm", "--no-backtest", "--portfolio",
                "--recompute", "--report", "--resume", "--scheduler", "--source", "--start", "--universe",
                "--workers"]
    cases = {
        "regimedesk run --": run_long,
        "regimedesk run -": sorted([*run_long, "-h"]),
        "regimedesk run --source ": ["alpaca", "builtin", "file", "polygon"],
        "regimedesk run SPY --source b": ["builtin"],
        "regimedesk -v risk flatten --broker ": ["alpaca", "paper"],
        # --option=value in one word
        "regimedesk run --llm=": ["openai", "template"],
        "regimedesk run --source=po": ["polygon"],
        # a fill_later option is there; a hidden one (stats --timeframe) is not
        "regimedesk regime SP500 --m": ["--method"],
        "regimedesk regime SP500 --method ": ["ensemble", "garch", "hmm", "jump", "markov"],
        "regimedesk stats SP500 --time": [],
    }
    assert zsh_complete(tmp_path, sourced(zsh_script_file), *cases) == list(cases.values())


@needs_zsh
def test_zsh_falls_back_to_file_names_for_free_values(zsh_script_file, tmp_path):
    (tmp_path / "bars.csv").write_text("x\n")
    (tmp_path / "data").mkdir()
    cases = {
        "regimedesk report SP500 --out b": ["bars.csv"],
        "regimedesk report SP500 --out=b": ["bars.csv"],
        "regimedesk data check d": ["data"],
        # an option that does not exist gets nothing, not a file name
        "regimedesk run --bogus=b": [],
    }
    assert zsh_complete(tmp_path, sourced(zsh_script_file), *cases) == list(cases.values())


@needs_zsh
def test_zsh_loads_the_output_of_the_command_and_from_fpath(tmp_path):
    command = f"{shlex.quote(sys.executable)} -m agents.cli completion zsh"
    load = f"autoload -Uz compinit && compinit -u -D && source <({command})"
    assert zsh_complete(tmp_path, load, "regimedesk journal ") == [["list", "show"]]
    functions = tmp_path / "functions"
    functions.mkdir()
    (functions / "_regimedesk").write_text(completion_script("zsh", build_parser()))
    load = f"fpath=({shlex.quote(str(functions))} $fpath); autoload -Uz compinit && compinit -u -D"
    lines = ("regimedesk completion ", "regimedesk live --feed ")
    assert zsh_complete(tmp_path, load, *lines) == [["bash", "zsh"], ["alpaca", "polygon", "replay"]]
