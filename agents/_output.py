"""Printing for the command line: JSON for machines, aligned text for people."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import tempfile
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analytics import RegimeDeskError, shown

__all__ = ["to_jsonable", "print_json", "print_table", "print_fields", "ProgressBar", "METRIC_ROWS", "format_metric",
           "is_missing", "format_value", "OutputPathError", "output_file", "output_dir", "write_failed", "date_option"]

#: Performance metrics shown by ``backtest`` and the report: (key, label, kind).
METRIC_ROWS: tuple[tuple[str, str, str], ...] = (
    ("total_return", "Total return", "pct"),
    ("cagr", "CAGR", "pct"),
    ("volatility", "Volatility", "pct"),
    ("sharpe", "Sharpe", "num"),
    ("sortino", "Sortino", "num"),
    ("max_drawdown", "Max drawdown", "pct"),
    ("max_drawdown_duration", "Max DD duration (bars)", "int"),
    ("calmar", "Calmar", "num"),
    ("hit_rate", "Hit rate", "pct"),
    ("profit_factor", "Profit factor", "num"),
    ("turnover", "Turnover (per year)", "num"),
    ("exposure", "Exposure", "pct"),
)


def is_missing(v: Any) -> bool:
    """True for a value shown as 'n/a': None, NaN or an infinity."""
    return v is None or (isinstance(v, float) and not math.isfinite(v))


def format_value(v: Any, spec: str = ".2f") -> str:
    """``format(v, spec)``, or 'n/a' when :func:`is_missing`."""
    return "n/a" if is_missing(v) else format(v, spec)


def format_metric(v: Any, kind: str) -> str:
    """One metric value for display: ``kind`` is pct, int or num; missing values are 'n/a'."""
    if is_missing(v):
        return "n/a"
    if kind == "pct":
        return f"{100 * v:.1f}%"
    if kind == "int":
        return str(int(v))
    return f"{v:.2f}"


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


def to_jsonable(value: Any) -> Any:
    """Convert results to plain JSON types: NaN/inf become null, times ISO strings."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, (pd.Timestamp, datetime, date)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if hasattr(value, "to_dict"):
            return to_jsonable(value.to_dict())
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value.tolist()]
    if isinstance(value, Iterable):
        return [to_jsonable(v) for v in value]
    return str(value)


def print_json(value: Any, stream=None) -> None:
    """Print ``value`` as indented, strict JSON."""
    stream = stream or sys.stdout
    stream.write(json.dumps(to_jsonable(value), indent=2, allow_nan=False) + "\n")


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


class OutputPathError(RegimeDeskError, ValueError):
    """An output path (``--out``, ``--report``, ...) that cannot be written; the CLI exits 1."""


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return candidate
    return Path(path.anchor or ".")


def _check_creatable(path: Path, option: str, value: str) -> None:
    """``path`` does not exist yet: its nearest existing ancestor must be a writable directory."""
    base = _nearest_existing(path.parent)
    if not base.is_dir():
        raise OutputPathError(f"{option} {value}: {base} is not a directory")
    _probe(base, option, value)


def _probe(directory: Path, option: str, value: str) -> None:
    """Create and remove a file in ``directory``: the permission bits alone do not tell
    (root passes every access check; /proc, read-only mounts and full quotas refuse anyway)."""
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OutputPathError(f"{option} {value}: cannot write in {directory} (permission denied)")
    try:
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".regimedesk-probe-")
    except OSError as exc:
        raise OutputPathError(f"{option} {value}: cannot write in {directory} ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(probe)


def output_file(value: str, option: str, *, default_name: str | None = None, suffix: str | None = None) -> Path:
    """Check an output file path before any work starts; the absolute path to write.

    Parameters
    ----------
    value : str
        The path as the user gave it (``~`` is expanded).
    option : str
        The option's name for messages (``--out``).
    default_name : str, optional
        With a default name, a path ending in ``/`` or naming an existing directory means
        that directory, and the file is ``default_name`` inside it. Without one such a path
        is an error.
    suffix : str, optional
        Required file suffix (e.g. ``.pdf``), compared case-insensitively.

    Raises
    ------
    OutputPathError
        Empty path, a directory where a file is expected, a wrong suffix, an existing target
        that is not a regular file or not writable, a parent that is not a directory or in
        which no file can be created (tried: a probe file is created and removed). Missing
        parent folders are fine (they are created when writing).
    """
    if not isinstance(value, str) or not value.strip():
        raise OutputPathError(f"{option}: give a file path")
    path = Path(value).expanduser()
    names_dir = value.endswith(("/", os.sep)) or path.is_dir()
    if names_dir:
        if default_name is None:
            raise OutputPathError(f"{option} {value}: is a directory; give a file name"
                                  + (f" ending in {suffix}" if suffix else ""))
        if path.exists() and not path.is_dir():
            raise OutputPathError(f"{option} {value}: {path} is not a directory")
        path = path / default_name
    path = path.resolve()
    if suffix is not None and path.suffix.lower() != suffix:
        raise OutputPathError(f"{option} {value}: give a file name ending in {suffix}")
    if os.path.lexists(path):
        if path.is_dir():
            raise OutputPathError(f"{option} {value}: {path} is a directory")
        if not path.is_file():
            raise OutputPathError(f"{option} {value}: {path} exists and is not a regular file")
        if not os.access(path, os.W_OK):
            raise OutputPathError(f"{option} {value}: {path} is not writable")
        _probe(path.parent, option, value)  # the file is replaced through a new file beside it
    else:
        _check_creatable(path, option, value)
    return path


def output_dir(value: str, option: str, files: tuple[str, ...] = ()) -> Path:
    """Check an output directory before any work starts; its absolute path.

    The directory may exist (then it must be a writable directory, and each of ``files``
    in it that exists must be a regular file) or not (then it is created when writing, so
    its nearest existing ancestor must be a writable directory). Writable means a probe
    file could be created and removed there.

    Raises
    ------
    OutputPathError
        The path, or an ancestor, exists and is not a directory; it cannot be written;
        one of ``files`` inside it is a directory or another non-regular file.
    """
    if not isinstance(value, str) or not value.strip():
        raise OutputPathError(f"{option}: give a directory path")
    path = Path(value).expanduser().resolve()
    if os.path.lexists(path):
        if not path.is_dir():
            raise OutputPathError(f"{option} {value}: {path} exists and is not a directory")
        _probe(path, option, value)
        for name in files:
            target = path / name
            if os.path.lexists(target) and not target.is_file():
                raise OutputPathError(f"{option} {value}: {target} exists and is not a regular file")
    else:
        _check_creatable(path, option, value)
    return path


def write_failed(option: str, value: str, exc: OSError) -> OutputPathError:
    """The one-line error for an output that failed while writing (disk full, a race, ...)."""
    return OutputPathError(f"{option} {value}: cannot write ({exc.strerror or exc})")


def date_option(text: str | None, option: str) -> pd.Timestamp | None:
    """The date given to a command-line ``option`` (None when not given).

    Raises
    ------
    ValueError
        ``text`` is not a date; the message names ``option`` and shows the value, cut.
    """
    if text is None:
        return None
    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError):
        raise ValueError(f"{option}: cannot parse {shown(text)} as a date") from None
    if pd.isna(ts):
        raise ValueError(f"{option}: {shown(text)} is not a date")
    return ts
