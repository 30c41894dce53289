"""Printing for the command line: JSON for machines, aligned text for people."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any

__all__ = ["print_json", "print_table", "print_fields", "ProgressBar"]


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


def print_fields(title: str, fields: Iterable[tuple[str, Any]], stream=None) -> None:
    """A heading and aligned ``name  value`` lines."""
    stream = stream or sys.stdout
    rows = list(fields)
    width = max((len(k) for k, _ in rows), default=0)
    stream.write(title + "\n")
    for key, val in rows:
        stream.write(f"  {key:<{width}}  {val}\n")


def print_table(headers: list[str], rows: Iterable[Iterable[Any]], stream=None) -> None:
    """A plain text table with left-aligned columns."""
    stream = stream or sys.stdout
    body = [[str(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(headers)]
    stream.write("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip() + "\n")
    for r in body:
        stream.write("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n")
