"""Printing for the command line: JSON for machines, aligned text for people.

On a terminal, tables and field lists are drawn with ``rich`` (a styled header, trading
states and regime families in colour). Piped or redirected output, ``NO_COLOR`` (any
non-empty value) or ``REGIMEDESK_COLOR=never`` give the plain aligned text, byte for byte
what scripts and tests read; ``REGIMEDESK_COLOR=always`` draws with rich even into a pipe.
``--json`` never goes through here.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from typing import Any

__all__ = ["print_json", "print_table", "print_fields", "ProgressBar", "COLOR_VARIABLE", "use_rich", "print_var_backtest"]

#: ``always``, ``never`` or ``auto`` (the default: rich on a terminal only).
COLOR_VARIABLE = "REGIMEDESK_COLOR"

#: Cell values drawn in colour: trading states and regime labels / families.
_STYLES = {
    "ACTIVE": "bold green", "REDUCING": "bold yellow", "HALTED": "bold red",
    "calm": "green", "bull": "green", "risk_on": "green",
    "bear": "red", "high_volatility": "magenta", "risk_off": "red",
    "unavailable": "dim",
}


class ProgressBar:
    """``bar(stage, done, total)`` draws a progress bar on stderr.

    On a terminal the bar redraws in place; otherwise (logs, pipes) one line is written per
    stage at roughly every quarter, so logs stay short.
    """

    def __init__(self, stream=None, width: int = 30) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self._last: tuple[str, int] | None = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        total = max(total, 1)
        frac = min(max(done / total, 0.0), 1.0)
        tty = getattr(self.stream, "isatty", lambda: False)()
        quarter = int(frac * 4)
        if not tty and self._last == (stage, quarter) and done != total:
            return
        self._last = (stage, quarter)
        fill = int(round(frac * self.width))
        line = f"  {stage:<22} [{'#' * fill}{'.' * (self.width - fill)}] {done}/{total}"
        if tty:
            self.stream.write("\r" + line + ("\n" if done >= total else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def print_json(value: Any, stream=None) -> None:
    """Print ``value`` as indented, strict JSON."""
    # imported when a command prints JSON, not at start-up (it loads numpy)
    from analytics import json_safe

    stream = stream or sys.stdout
    stream.write(json.dumps(json_safe(value), indent=2, allow_nan=False) + "\n")


def use_rich(stream) -> bool:
    """Whether human output to ``stream`` is drawn with rich.

    ``NO_COLOR`` (non-empty) or ``REGIMEDESK_COLOR=never``: no; ``REGIMEDESK_COLOR=always``:
    yes; otherwise only when ``stream`` is a terminal.
    """
    if os.environ.get("NO_COLOR"):
        return False
    mode = os.environ.get(COLOR_VARIABLE, "auto").strip().lower()
    if mode == "never":
        return False
    if mode == "always":
        return True
    return bool(getattr(stream, "isatty", lambda: False)())


def _console(stream):
    # imported only when drawing: --help and piped output never load rich
    from rich.console import Console

    # markup/emoji/highlight off: cell text such as "[x]" or ":warning:" is data, not markup
    return Console(file=stream, force_terminal=True, markup=False, emoji=False, highlight=False,
                   soft_wrap=False)


def _cell(value: Any):
    from rich.text import Text

    text = str(value)
    return Text(text, style=_STYLES.get(text, ""))


def print_fields(title: str, fields: Iterable[tuple[str, Any]], stream=None) -> None:
    """A heading and aligned ``name  value`` lines (a rich grid on a terminal)."""
    stream = stream or sys.stdout
    rows = list(fields)
    if use_rich(stream):
        from rich.padding import Padding
        from rich.table import Table
        from rich.text import Text

        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="cyan", no_wrap=True)
        grid.add_column()
        for key, val in rows:
            grid.add_row(Text(str(key)), _cell(val))
        console = _console(stream)
        console.print(Text(title, style="bold"))
        console.print(Padding(grid, (0, 0, 0, 2), expand=False))  # indented under the title, as in plain text
        return
    width = max((len(k) for k, _ in rows), default=0)
    stream.write(title + "\n")
    for key, val in rows:
        stream.write(f"  {key:<{width}}  {val}\n")


def print_table(headers: list[str], rows: Iterable[Iterable[Any]], stream=None) -> None:
    """A plain text table with left-aligned columns (a rich table on a terminal)."""
    stream = stream or sys.stdout
    body = [[str(c) for c in r] for r in rows]
    if use_rich(stream):
        from rich.table import Table

        table = Table(header_style="bold cyan", show_edge=False, pad_edge=False)
        for header in headers:
            table.add_column(str(header), overflow="fold")
        for r in body:
            table.add_row(*(_cell(c) for c in r))
        _console(stream).print(table)
        return
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(headers)]
    stream.write("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip() + "\n")
    for r in body:
        stream.write("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n")


def print_var_backtest(d: dict) -> None:
    """The VaR backtest's tests and zone, as ``risk var --backtest`` prints them."""
    k, c = d["kupiec"], d["christoffersen"]
    print(f"{d['symbol']} {d['method']} VaR {d['level']:.0%}, window {d['window']} days: "
          f"{d['n']} forecasts, {d['n_exceptions']} exceedances (expected {d['expected']:.1f})")
    print_table(["test", "statistic", "p-value"], [
        ("Kupiec POF", f"{k['lr']:.3f}", f"{k['pvalue']:.3f}"),
        ("Christoffersen independence", f"{c['lr_ind']:.3f}", f"{c['pvalue_ind']:.3f}"),
        ("Christoffersen conditional coverage", f"{c['lr_cc']:.3f}", f"{c['pvalue_cc']:.3f}"),
    ])
    print(f"Basel traffic light (last 250 days): {d['basel_zone']} ({d['basel_exceptions']} exceptions)")
