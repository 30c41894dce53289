"""Options shared by the commands, checked before any work: symbols, dates and output paths.

Also :class:`CommandParser`, the parser of every command. The command modules import no
service and no heavy library at module level - each does so in its handler, when the command
runs - so that ``regimedesk --help`` and the light commands start fast
(``benchmarks/startup.py``; ``tests/agents/test_startup.py`` keeps it so). A command whose
options need such a module (choices from the services, say) adds them with
:meth:`CommandParser.fill_later`, which runs only when that command is parsed or its help shown.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from analytics import RegimeDeskError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CommandParser", "add_symbol_options", "add_start_option", "bar_store", "OutputPathError", "output_file",
           "output_dir", "write_failed", "date_option", "bar_length"]


class CommandParser(argparse.ArgumentParser):
    """argparse that reports usage errors in one line plus a pointer to --help, and can add a
    command's arguments when the command is used rather than when the parser is built."""

    _fill: Callable[[CommandParser], None] | None = None

    def fill_later(self, fill: Callable[[CommandParser], None]) -> None:
        """Call ``fill(self)`` (which adds this parser's arguments, subcommands, description and
        defaults) before this parser first parses, or formats its help or usage."""
        self._fill = fill

    def _filled(self) -> None:
        fill, self._fill = self._fill, None
        if fill is not None:
            fill(self)

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        self._filled()
        return super().parse_known_args(args, namespace)

    def format_usage(self) -> str:
        self._filled()
        return super().format_usage()

    def format_help(self) -> str:
        self._filled()
        return super().format_help()

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n(see '{self.prog} --help')\n")


def add_symbol_options(p: argparse.ArgumentParser) -> None:
    """Options shared by the per-symbol analysis commands (for a :meth:`CommandParser.fill_later`
    function: the source names come from the services)."""
    from agents.services.data import SOURCE_NAMES

    p.add_argument("symbol", help="ticker, or SP500 / NASDAQ for the builtin source")
    p.add_argument("--source", choices=SOURCE_NAMES, help="market-data source (default: data.source)")
    p.add_argument("--as-of", dest="as_of", help="use only data available at the end of this date")
    p.add_argument("--json", action="store_true", help="print JSON")


def add_start_option(p: argparse.ArgumentParser, what: str = "computations") -> None:
    """``--start DATE``: the first bar loaded (``run``, ``regime``, ``stats``; ``dest='start'``).

    Only for commands whose ``--start`` has no other meaning (in ``export``, ``backtest``,
    ``data show`` and ``live`` it has its own).
    """
    p.add_argument("--start", metavar="DATE",
                   help="first bar loaded (inclusive), e.g. 2010-01-01; the "
                        f"{what} see nothing earlier (default: data.history_years (30 unless configured) years "
                        "back from the last bar; intraday bars keep their short look-back)")


def bar_store(args: argparse.Namespace, ctx, option: str = "--as-of", *, start: str | None = None):
    """The run-style bar store for a single-symbol command, and the canonical symbol.

    The symbol's bars must load, from ``start`` (``--start``, the first bar loaded; default
    ``data.history_years`` back from the last bar) and by the as-of date if one is given
    (``option`` names it in messages); else the command fails at once with the reason (unknown
    symbol, missing key, no bars then). A date after the last bar is said in one warning, and
    ``store.as_of_effective`` is the last bar's stamp (see :meth:`BarStore.check_data`).
    ``start`` is passed explicitly: some commands' ``--start`` means something else.
    """
    from agents.services.context import symbol_bar_store

    return symbol_bar_store(ctx.settings, ctx.secrets, args.symbol, source=args.source, as_of=args.as_of,
                            option=option, start=start)


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


def output_file(value: str, option: str, *, default_name: str | None = None,
                suffix: str | tuple[str, ...] | None = None) -> Path:
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
    suffix : str or tuple of str, optional
        Required file suffix (e.g. ``.pdf``), or the suffixes allowed, compared
        case-insensitively.

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
    suffixes = (suffix,) if isinstance(suffix, str) else suffix
    wanted = " or ".join(suffixes) if suffixes else ""
    path = Path(value).expanduser()
    names_dir = value.endswith(("/", os.sep)) or path.is_dir()
    if names_dir:
        if default_name is None:
            raise OutputPathError(f"{option} {value}: is a directory; give a file name"
                                  + (f" ending in {wanted}" if wanted else ""))
        if path.exists() and not path.is_dir():
            raise OutputPathError(f"{option} {value}: {path} is not a directory")
        path = path / default_name
    path = path.resolve()
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise OutputPathError(f"{option} {value}: give a file name ending in {wanted}")
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
    import pandas as pd

    from analytics import shown

    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError):
        raise ValueError(f"{option}: cannot parse {shown(text)} as a date") from None
    if pd.isna(ts):
        raise ValueError(f"{option}: {shown(text)} is not a date")
    return ts


#: Bar lengths named in messages; a source may take other multiples (30Min, 2H) too.
_COMMON_BAR_LENGTHS = ("1Min", "5Min", "15Min", "1H", "1D", "1W")


def bar_length(text: str, source, option: str = "--timeframe") -> str:
    """The bar length ``text`` (``--timeframe``) checked against what ``source`` delivers.

    Parameters
    ----------
    text : str
        E.g. ``1D``, ``1W``, ``5Min`` (case-insensitive).
    source : integrations BarSource
        The source that will load the bars (``MarketData.source``).
    option : str
        The option's name for messages.

    Returns
    -------
    str
        The canonical spelling (``'1D'``).

    Raises
    ------
    ValueError
        ``text`` is not a bar length, or not one the source has; the message names the bar
        lengths the source has (weekly bars count when it has daily ones: they are built).
    """
    from analytics import Timeframe, shown

    def has(tf: Timeframe) -> bool:
        return bool(source.supports(Timeframe(1, "D") if tf.unit == "W" else tf))

    offered = [name for name in _COMMON_BAR_LENGTHS if has(Timeframe.parse(name))]
    listing = ", ".join(offered[:-1]) + f" or {offered[-1]}" if len(offered) > 1 else "".join(offered)
    multiples = " (any number of minutes or hours)" if has(Timeframe(7, "Min")) and has(Timeframe(7, "H")) else ""
    use = (f"the {source.name} source has {listing} bars{multiples}" if offered
           else f"the {source.name} source has {source.offers()}")
    try:
        tf = Timeframe.parse(text)
    except ValueError as exc:
        # Timeframe refuses unreadable text ("not understood") and well-formed lengths no
        # source has (2D: sessions are not calendar days); both get the source's list here.
        what = "not understood" if "not understood" in str(exc) else "is not available"
        raise ValueError(f"{option} {shown(text)} {what}; {use}") from None
    if not has(tf):
        raise ValueError(f"{option} {shown(text)} is not available; {use}")
    return str(tf)
