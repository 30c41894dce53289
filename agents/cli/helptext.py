"""Help text of the command line: an ``examples:`` epilog for every command, and the formatter
that keeps its lines.

argparse's default formatter re-wraps descriptions and epilogs into one paragraph, which
would run example command lines together; :class:`HelpFormatter` wraps prose paragraphs as
usual but keeps every indented line as written (example commands, field lists).
"""

from __future__ import annotations

import argparse
import textwrap

__all__ = ["HelpFormatter", "EXAMPLES_HEADING", "examples"]

#: First line of every command's epilog; ``tests/agents/test_cli_help.py`` looks for it.
EXAMPLES_HEADING = "examples:"


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, except that indented lines of a description or epilog are kept.

    Paragraphs (separated by blank lines) whose lines all start at the margin are wrapped to
    the terminal width; any other line is printed unchanged, so examples and tables survive.
    """

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out: list[str] = []
        prose: list[str] = []

        def flush() -> None:
            if prose:
                out.append(textwrap.fill(" ".join(prose), width, initial_indent=indent,
                                         subsequent_indent=indent))
                prose.clear()

        for line in text.splitlines():
            if not line.strip():
                flush()
                out.append("")
            elif line[:1].isspace() or line.strip() == EXAMPLES_HEADING:
                flush()  # the examples heading or an indented line stays as written
                out.append(indent + line.rstrip())
            else:
                prose.append(line.strip())
        flush()
        return "\n".join(out)


def examples(*lines: str) -> str:
    """An epilog listing example command lines, one per line under ``examples:``.

    Parameters
    ----------
    *lines : str
        Complete command lines starting with ``regimedesk``; each must parse with the real
        parser (the tests check).

    Returns
    -------
    str
        The epilog text, for ``add_parser(..., epilog=examples(...))``.
    """
    return "\n".join([EXAMPLES_HEADING, *(f"  {line}" for line in lines)])
