"""The ``regimedesk`` command line.

Every command has ``--help``, prints for people by default and JSON with ``--json``.
Errors are one line on stderr and a non-zero exit code, never a traceback:
exit 2 for bad arguments, 1 for everything else that went wrong (bad data, missing
credentials, a failing service); an unexpected exception is one ``internal error`` line too
(``-vv`` adds the traceback). No secret from the environment is ever printed or logged:
stdout, stderr and log records go through :func:`integrations.redact`.

Start-up stays short: building the parser imports the command modules only, which import
no service and no heavy library at module level (see :mod:`agents.cli.options`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from agents.cli.helptext import HelpFormatter, examples
from agents.cli.options import CommandParser
from agents.paths import HomePaths
from analytics import RegimeDeskError, RegimeDeskWarning

if TYPE_CHECKING:
    from agents.config import Secrets, Settings

__all__ = ["main", "build_parser", "Context", "version"]

log = logging.getLogger("regimedesk")

Handler = Callable[[argparse.Namespace, "Context"], int]


@dataclass
class Context:
    """What a command needs: settings (loaded on first use) and secrets from the environment."""

    config_path: str | None = None

    @cached_property
    def settings(self) -> Settings:
        # imported when a command runs, not for --help: start-up time (also below)
        from agents.config import load_settings

        return load_settings(self.config_path)

    @cached_property
    def secrets(self) -> Secrets:
        from agents.config import Secrets

        return Secrets.from_env()


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every subcommand registered.

    A command's own options may be added when it is first parsed or its help shown
    (:meth:`agents.cli.options.CommandParser.fill_later`); either way they are all there.
    """
    from agents.cli import (
        bot,
        completion,
        config,
        data,
        export,
        live,
        ml,
        models,
        regime,
        report,
        risk,
        run,
        scan,
        schedule,
        stats,
    )

    parser = _Parser(
        prog="regimedesk",
        description=(
            "RegimeDesk: market-regime detection and trading decisions from a graph of "
            "deterministic quantitative agents. Works offline on embedded SP500/NASDAQ daily "
            "data (1999-2018); network sources, brokers and LLMs switch on by configuration."
        ),
        epilog=(
            "Run 'regimedesk COMMAND --help' for a command's options and examples.\n\n"
            + examples("regimedesk run SP500",
                       "regimedesk regime NASDAQ --history",
                       "regimedesk risk status")
        ),
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="configuration file (default: $REGIMEDESK_CONFIG, then ./regimedesk.toml)",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("--version", action=_VersionAction, help="print 'regimedesk VERSION' and exit")
    # nested subparsers default to the parent's class, so every parser gets _Parser's formatter
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in (run, regime, stats, scan, ml, models, export, report, schedule, live, risk,
                   data, config, bot, completion):
        module.register(sub)
    return parser


class _Parser(CommandParser):
    """The parser of every command: help keeps the indented lines of descriptions and the
    ``examples:`` epilogs as written (:class:`agents.cli.helptext.HelpFormatter`)."""

    def __init__(self, *args, formatter_class: type[argparse.HelpFormatter] = HelpFormatter,
                 **kwargs) -> None:
        super().__init__(*args, formatter_class=formatter_class, **kwargs)


def version() -> str:
    """RegimeDesk's version: the installed distribution's, else ``pyproject.toml``'s.

    The second case is a source tree run without an install (``python -m agents.cli``).

    Returns
    -------
    str
        The version, e.g. ``"0.1.0"``; ``"unknown"`` when neither source says.
    """
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    try:
        return installed_version("regimedesk")
    except PackageNotFoundError:
        pass
    import tomllib

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return "unknown"
    return str(project.get("version", "unknown")) if project.get("name") == "regimedesk" else "unknown"


class _VersionAction(argparse.Action):
    """``--version``: like argparse's, but the version is looked up only when asked for
    (reading the distribution's metadata costs start-up time on every other command)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 default: str = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        sys.stdout.write(f"regimedesk {version()}\n")
        parser.exit(0)


_SHOWN: set[str] = set()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    if issubclass(category, RegimeDeskWarning):
        text = str(message)
        if text not in _SHOWN:  # the same data warning from several loads is said once
            _SHOWN.add(text)
            sys.stderr.write(f"warning: {text}\n")
    else:
        log.debug("%s: %s (%s:%s)", category.__name__, message, filename, lineno)


def _matplotlib_under_home(config_path: str | None) -> None:
    """Keep matplotlib's font cache under the RegimeDesk home, and quiet.

    matplotlib writes its font cache under ``$MPLCONFIGDIR``, else ``~/.cache/matplotlib``,
    and says so on stderr the first time. Unless the user set ``MPLCONFIGDIR`` it becomes
    ``home/matplotlib``. That must happen before matplotlib is first imported (the commands
    that draw charts import it when they run), so the home is read here already; a
    configuration that does not load falls back to ``REGIMEDESK_HOME`` or the default home
    (the command reports the problem).
    """
    from agents.config import Settings, load_settings

    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    if os.environ.get("MPLCONFIGDIR") or "matplotlib" in sys.modules:
        return
    try:
        home = load_settings(config_path).home_dir
    except (Exception, SystemExit):  # noqa: BLE001 - the command itself reports a bad configuration
        home = Path(os.environ.get("REGIMEDESK_HOME") or Settings.model_fields["home"].default).expanduser()
    os.environ["MPLCONFIGDIR"] = str(HomePaths(home).matplotlib)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``regimedesk`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING if args.verbose == 0 else logging.INFO if args.verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("urllib3", "httpx", "httpcore", "openai", "telegram", "apscheduler"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    _matplotlib_under_home(args.config)
    from agents.config import SECRET_VARIABLES
    from integrations import RedactingFilter, RedactingStream, register_secrets

    ctx = Context(config_path=args.config)
    # No configured secret is printed or logged, whatever a service echoed: the secrets in the
    # environment are registered for integrations.redact, which the journal and the adapters
    # apply too; here log records, stdout (human output and --json) and stderr go through it.
    register_secrets((ctx.secrets.get(name) for name in SECRET_VARIABLES), replace=True)
    redactor = RedactingFilter()
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(redactor)
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = RedactingStream(stdout), RedactingStream(stderr)
    try:
        return _run_command(args, ctx)
    finally:
        sys.stdout, sys.stderr = stdout, stderr
        for handler in handlers:
            handler.removeFilter(redactor)


#: Longest error message printed; a longer one (e.g. an OS error quoting a 100,000-character
#: path) is cut, so an error stays one readable line.
_ERROR_CHARS = 1000


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if len(text) > _ERROR_CHARS:
        text = f"{text[:_ERROR_CHARS]}... ({len(text):,} characters)"
    return text


def _run_command(args: argparse.Namespace, ctx: Context) -> int:
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        warnings.simplefilter("once")
        try:
            return int(args.handler(args, ctx) or 0)
        except KeyboardInterrupt:
            sys.stderr.write("interrupted\n")
            return 130
        except RegimeDeskError as exc:
            sys.stderr.write(f"regimedesk: error: {_one_line(exc)}\n")
            return 1
        except (ValueError, TypeError) as exc:
            if args.verbose >= 2:
                sys.stderr.write(traceback.format_exc())
            sys.stderr.write(f"regimedesk: error: {_one_line(exc)}\n")
            return 2
        except BrokenPipeError:
            return 0
        except Exception as exc:  # a bug or an unexpected library error: one line, never a raw traceback
            if args.verbose >= 2:
                sys.stderr.write(traceback.format_exc())  # through the redacting stream
            sys.stderr.write(f"regimedesk: internal error: {type(exc).__name__}: {_one_line(exc)}"
                             f"{'' if args.verbose >= 2 else ' (run with -vv for the traceback)'}\n")
            return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
