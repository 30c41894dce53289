"""``regimedesk completion bash|zsh``: a shell completion script made from the real parser.

The script is generated from the argparse tree (commands, subcommands, options, and the
choices of options and positionals where they are fixed), so it cannot drift from the
command line. Options whose value is free (a path, a date, a symbol) fall back to the shell's
file-name completion. Use it with ``source <(regimedesk completion bash)`` in ``~/.bashrc``,
or ``source <(regimedesk completion zsh)`` in ``~/.zshrc`` (after ``compinit``).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import dataclass

from agents.cli.helptext import examples

__all__ = ["register", "CommandSpec", "command_specs", "completion_script", "SHELLS"]

#: Shells a script can be generated for.
SHELLS = ("bash", "zsh")


@dataclass(frozen=True)
class CommandSpec:
    """What completion needs to know about one command (or subcommand) of the parser.

    Attributes
    ----------
    path : tuple of str
        The command words after ``regimedesk`` (empty for the top level).
    subcommands : tuple of (name, help)
        Its subcommands with their one-line help.
    flags : tuple of str
        Options that take no value (``--json``, ``-h``).
    valued : tuple of str
        Options that take a value (``--source``, ``--out``).
    choices : dict
        Option -> its fixed choices, for the valued options that have them.
    positional_choices : tuple of str
        Fixed choices of its positional arguments (``completion bash|zsh``).
    """

    path: tuple[str, ...]
    subcommands: tuple[tuple[str, str], ...]
    flags: tuple[str, ...]
    valued: tuple[str, ...]
    choices: dict[str, tuple[str, ...]]
    positional_choices: tuple[str, ...]


def command_specs(parser: argparse.ArgumentParser) -> list[CommandSpec]:
    """Every command of ``parser``, depth first, its own entry first.

    A command whose arguments are added when it is first used
    (:meth:`agents.cli.options.CommandParser.fill_later`) is filled here, so its options count.
    Hidden options (``help=argparse.SUPPRESS``) are left out.
    """
    return list(_walk(parser, ()))


def _walk(parser: argparse.ArgumentParser, path: tuple[str, ...]):
    parser.format_usage()  # fills a fill_later parser; argparse itself only formats
    subs: list[tuple[str, str]] = []
    children: list[tuple[str, argparse.ArgumentParser]] = []
    flags: list[str] = []
    valued: list[str] = []
    choices: dict[str, tuple[str, ...]] = {}
    positional: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, child in action.choices.items():
                subs.append((name, helps.get(name, "")))
                children.append((name, child))
        elif action.help == argparse.SUPPRESS:
            continue
        elif action.option_strings:
            (flags if action.nargs == 0 else valued).extend(action.option_strings)
            if action.choices is not None and action.nargs != 0:
                for option in action.option_strings:
                    choices[option] = tuple(str(c) for c in action.choices)
        elif action.choices is not None:
            positional.extend(str(c) for c in action.choices)
    yield CommandSpec(tuple(path), tuple(subs), tuple(flags), tuple(valued), choices, tuple(positional))
    for name, child in children:
        yield from _walk(child, (*path, name))


def _data_function(specs: list[CommandSpec], described: bool) -> str:
    """``_regimedesk_data KIND PATH [OPTION]`` sets ``REPLY``: the tables as one case statement
    (plain POSIX-style ``case``, so the same text works in bash 3.2+ and zsh)."""
    lines = ["_regimedesk_data() {", '    REPLY=""', '    case "$1:$2:${3-}" in']

    def entry(kind: str, spec: CommandSpec, value: str, option: str = "") -> None:
        if value:
            key = f"{kind}:{' '.join(spec.path)}:{option}"
            lines.append(f"        {shlex.quote(key)}) REPLY={shlex.quote(value)} ;;")

    for spec in specs:
        entry("subs", spec, " ".join(name for name, _ in spec.subcommands))
        if described:
            # name:help lines for zsh's _describe (a colon in a name would need escaping)
            entry("described", spec, "\n".join(f"{name}:{' '.join(text.split())}"
                                               for name, text in spec.subcommands))
        entry("flags", spec, " ".join(spec.flags))
        entry("valued", spec, " ".join(spec.valued))
        entry("positional", spec, " ".join(spec.positional_choices))
        for option, values in spec.choices.items():
            entry("choices", spec, " ".join(values), option)
    lines += ["    esac", "}"]
    return "\n".join(lines)


# Walks the words before the cursor: options that take a value skip their value, and a word
# that names a subcommand of the command so far extends the command path.
_WALK = """\
    local cur="${{{words}[{cword}]}}" cmdpath="" word i skip=0 REPLY
    for (( i = {first}; i < {cword}; i++ )); do
        word="${{{words}[i]}}"
        if (( skip )); then skip=0; continue; fi
        if [[ "$word" == -* ]]; then
            [[ "$word" == *=* ]] && continue
            _regimedesk_data valued "$cmdpath"
            [[ " $REPLY " == *" $word "* ]] && skip=1
            continue
        fi
        _regimedesk_data subs "$cmdpath"
        if [[ " $REPLY " == *" $word "* ]]; then cmdpath="${{cmdpath:+$cmdpath }}$word"; fi
    done
"""

_BASH = """\
# bash completion for regimedesk, generated by 'regimedesk completion bash'.
# Use it with:  source <(regimedesk completion bash)   (e.g. in ~/.bashrc)
{data}

_regimedesk() {{
{walk}\
    COMPREPLY=()
    if (( skip )); then
        _regimedesk_data choices "$cmdpath" "${{COMP_WORDS[COMP_CWORD-1]}}"
        [[ -n "$REPLY" ]] && COMPREPLY=( $(compgen -W "$REPLY" -- "$cur") )
        return 0
    fi
    local offer
    if [[ "$cur" == -* ]]; then
        _regimedesk_data flags "$cmdpath"; offer="$REPLY"
        _regimedesk_data valued "$cmdpath"; offer="$offer $REPLY"
    else
        _regimedesk_data subs "$cmdpath"; offer="$REPLY"
        _regimedesk_data positional "$cmdpath"; offer="$offer $REPLY"
    fi
    COMPREPLY=( $(compgen -W "$offer" -- "$cur") )
    return 0
}}

complete -o default -F _regimedesk regimedesk
"""

_ZSH = """\
#compdef regimedesk
# zsh completion for regimedesk, generated by 'regimedesk completion zsh'.
# Use it with:  source <(regimedesk completion zsh)   (in ~/.zshrc, after compinit)
# or save it as _regimedesk in a directory of $fpath.
{data}

_regimedesk() {{
{walk}\
    if (( skip )); then
        _regimedesk_data choices "$cmdpath" "${{words[CURRENT-1]}}"
        if [[ -n "$REPLY" ]]; then compadd -- ${{=REPLY}}; else _files; fi
        return
    fi
    if [[ "$cur" == --*=* ]]; then
        # --option=value in one word: complete the value after the '='
        _regimedesk_data valued "$cmdpath"
        [[ " $REPLY " == *" ${{cur%%=*}} "* ]] || return 1
        compset -P '*='
        _regimedesk_data choices "$cmdpath" "${{cur%%=*}}"
        if [[ -n "$REPLY" ]]; then compadd -- ${{=REPLY}}; else _files; fi
        return
    fi
    if [[ "$cur" == -* ]]; then
        local offer
        _regimedesk_data flags "$cmdpath"; offer="$REPLY"
        _regimedesk_data valued "$cmdpath"; offer="$offer $REPLY"
        compadd -- ${{=offer}}
        return
    fi
    _regimedesk_data described "$cmdpath"
    if [[ -n "$REPLY" ]]; then
        local -a commands
        commands=("${{(@f)REPLY}}")
        _describe -t commands 'regimedesk command' commands
        return
    fi
    _regimedesk_data positional "$cmdpath"
    if [[ -n "$REPLY" ]]; then compadd -- ${{=REPLY}}; else _files; fi
}}

if [[ "${{funcstack[1]}}" == _regimedesk ]]; then
    _regimedesk "$@"
else
    compdef _regimedesk regimedesk
fi
"""


def completion_script(shell: str, parser: argparse.ArgumentParser) -> str:
    """The completion script of ``parser`` for ``shell``.

    Parameters
    ----------
    shell : {'bash', 'zsh'}
        The shell to write for.
    parser : argparse.ArgumentParser
        The full ``regimedesk`` parser (:func:`agents.cli.build_parser`).

    Returns
    -------
    str
        A script that defines ``_regimedesk`` and registers it for ``regimedesk``.

    Raises
    ------
    ValueError
        ``shell`` is not one of :data:`SHELLS`.
    """
    specs = command_specs(parser)
    if shell == "bash":
        walk = _WALK.format(words="COMP_WORDS", cword="COMP_CWORD", first=1)
        return _BASH.format(data=_data_function(specs, described=False), walk=walk)
    if shell == "zsh":
        walk = _WALK.format(words="words", cword="CURRENT", first=2)
        return _ZSH.format(data=_data_function(specs, described=True), walk=walk)
    raise ValueError(f"no completion for shell {shell!r}; use one of {', '.join(SHELLS)}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "completion",
        help="print a shell completion script (bash or zsh)",
        description=(
            "Print a completion script for bash or zsh, generated from this command line's own "
            "parser: commands, subcommands, options and their fixed choices. Load it in the "
            "current shell with 'source <(regimedesk completion bash)', or add that line to "
            "~/.bashrc (zsh: 'source <(regimedesk completion zsh)' in ~/.zshrc, after compinit)."
        ),
        epilog=examples("regimedesk completion bash",
                        "regimedesk completion zsh",
                        "regimedesk completion bash > ~/.local/share/bash-completion/completions/regimedesk"),
    )
    p.add_argument("shell", choices=SHELLS, help="the shell to write the script for")
    p.set_defaults(handler=_completion)


def _completion(args: argparse.Namespace, ctx) -> int:
    from agents.cli import build_parser

    sys.stdout.write(completion_script(args.shell, build_parser()))
    return 0
