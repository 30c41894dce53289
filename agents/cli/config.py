"""``regimedesk config``: show the effective configuration, write a template."""

from __future__ import annotations

import argparse

from agents.cli.helptext import examples
from agents.cli.options import output_file, write_failed
from agents.cli.output import print_json
from analytics import ConfigError

# agents.config is imported when a command runs, not at start-up.

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    cfg = sub.add_parser(
        "config",
        help="show or create the configuration",
        description="Show the effective configuration or write a commented template.",
        epilog=examples("regimedesk config show", "regimedesk config init"),
    )
    csub = cfg.add_subparsers(dest="config_command", metavar="SUBCOMMAND")
    cfg.set_defaults(handler=lambda a, c: (cfg.print_help(), 2)[1])

    show = csub.add_parser(
        "show",
        help="print the effective configuration (secrets masked)",
        description=(
            "Print the configuration in force: the file it came from, every setting with its "
            "value, the risk-gate checks it switches off, and for each secret environment "
            "variable only whether it is set."
        ),
        epilog=examples("regimedesk config show", "regimedesk --config prod.toml config show --json"),
    )
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=_show)

    init = csub.add_parser(
        "init",
        help="write a commented regimedesk.toml with the defaults",
        description="Write a commented configuration template whose values are the defaults.",
        epilog=examples("regimedesk config init", "regimedesk config init ~/regimedesk.toml --force"),
    )
    init.add_argument("path", nargs="?", default="regimedesk.toml", help="where to write (default ./regimedesk.toml)")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    init.set_defaults(handler=_init)


def _show(args: argparse.Namespace, ctx) -> int:
    from agents.config import resolve_config_path

    settings = ctx.settings
    source = resolve_config_path(ctx.config_path)
    doc = {
        "config_file": str(source) if source else None,
        "settings": settings.model_dump(mode="json"),
        "secrets": ctx.secrets.masked(),
        "risk_checks_off": settings.risk.checks_off(),
    }
    if args.json:
        print_json(doc)
        return 0
    print(f"# configuration file: {doc['config_file'] or '(none; built-in defaults)'}")
    _print_tree(doc["settings"], "")
    print("\n# risk checks switched off (see docs/risk_gate.md)")
    for key, what in doc["risk_checks_off"].items():
        print(f"# risk.{key}: {what}")
    if not doc["risk_checks_off"]:
        print("# none")
    print("\n# secrets (environment only)")
    for var, state in doc["secrets"].items():
        print(f"{var} = <{state}>")
    return 0


def _print_tree(node: dict, prefix: str) -> None:
    for key, value in node.items():
        if isinstance(value, dict) and value:
            _print_tree(value, f"{prefix}{key}.")
        elif isinstance(value, str):
            print(f'{prefix}{key} = "{value}"')
        else:
            print(f"{prefix}{key} = {value!r}")


def _init(args: argparse.Namespace, ctx) -> int:
    from agents.config import config_template

    path = output_file(args.path, "PATH")
    if path.exists() and not args.force:
        raise ConfigError(f"{args.path} exists; use --force to overwrite it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(config_template(), encoding="utf-8")
    except OSError as exc:
        raise write_failed("PATH", args.path, exc) from None
    print(f"wrote {path}")
    return 0
