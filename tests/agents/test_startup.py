"""Light commands start without the heavy libraries (issue 22, item 6).

``regimedesk --help``, ``data show`` and ``risk status`` used to import statsmodels, scipy,
matplotlib, reportlab, openai and pandas before doing anything (about 2.3 s). The packages
``analytics``, ``signals`` and ``integrations`` now import a name's submodule on first use, and
the command modules import services and heavy libraries only when a command runs. These tests
run each command in a fresh interpreter and look at ``sys.modules``: they fail when someone
adds a module-level import of a heavy library back on one of these paths. (Wall time is
measured by ``benchmarks/startup.py``, not here.)
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import analytics
import integrations
import signals
from agents.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]

#: Libraries that cost tenths of a second or more to import.
HEAVY = frozenset({"statsmodels", "arch", "xgboost", "langgraph", "openai", "reportlab", "matplotlib",
                   "telegram", "sklearn", "hmmlearn", "scipy", "pandas"})

#: Runs STATEMENTS in a fresh interpreter, then writes the top-level packages it imported.
_PROBE = """\
import json, sys
from pathlib import Path
code = None
{statements}
Path(sys.argv[1]).write_text(json.dumps({{"code": code, "modules": sorted(sys.modules)}}))
"""

_RUN_MAIN = """\
import agents.cli
try:
    code = agents.cli.main({args!r})
except SystemExit as exc:
    code = exc.code
"""


def probe(tmp_path: Path, statements: str) -> tuple[dict, subprocess.CompletedProcess]:
    """Run ``statements`` in a new interpreter with a fresh home; (what it imported, process)."""
    out = tmp_path / "probe.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGIMEDESK_", "MPLCONFIGDIR"))}
    env["REGIMEDESK_HOME"] = str(tmp_path / "home")
    proc = subprocess.run([sys.executable, "-c", _PROBE.format(statements=statements), str(out)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=120)
    assert out.exists(), proc.stderr
    doc = json.loads(out.read_text())
    doc["top"] = {name.partition(".")[0] for name in doc["modules"]}
    return doc, proc


def heavy(doc: dict) -> set[str]:
    return HEAVY & doc["top"]


# ----------------------------------------------------------------------------- the commands


def test_building_the_parser_imports_no_heavy_library(tmp_path):
    doc, _ = probe(tmp_path, "import agents.cli\nagents.cli.build_parser()")
    assert heavy(doc) == set()
    assert "agents.cli.export" in doc["modules"] and "agents.cli.regime" in doc["modules"]  # all registered
    light = {"agents.services.run_summary", "agents.services.format"}  # plain text, no libraries
    assert not [m for m in doc["modules"] if m.startswith("agents.services.") and m not in light]


def test_help_imports_no_heavy_library(tmp_path):
    doc, proc = probe(tmp_path, _RUN_MAIN.format(args=["--help"]))
    assert doc["code"] == 0
    assert "risk state (kill switch)" in proc.stdout and "export causal signals" in proc.stdout
    assert heavy(doc) == set()
    assert "pydantic" not in doc["top"]  # the configuration is not even loaded


def test_data_show_imports_pandas_only(tmp_path):
    doc, proc = probe(tmp_path, _RUN_MAIN.format(args=["data", "show", "SP500", "--json"]))
    assert doc["code"] == 0, proc.stderr
    shown = json.loads(proc.stdout)
    assert (shown["symbol"], shown["source"], shown["bars"]) == ("SP500", "builtin", 5031)
    assert (shown["first"], shown["last"]) == ("1999-01-04T00:00:00+00:00", "2018-12-31T00:00:00+00:00")
    assert heavy(doc) == {"pandas"}  # the bundled data is read without importing arch


def _pyproject_version() -> str:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def test_version_prints_the_version_and_imports_no_heavy_library(tmp_path):
    doc, proc = probe(tmp_path, _RUN_MAIN.format(args=["--version"]))
    assert doc["code"] == 0, proc.stderr
    assert proc.stdout == f"regimedesk {_pyproject_version()}\n" and proc.stderr == ""
    assert heavy(doc) == set()
    assert "pydantic" not in doc["top"]


def test_version_falls_back_to_pyproject_in_a_source_tree(monkeypatch, capsys):
    import importlib.metadata

    from agents.cli import version

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    assert version() == _pyproject_version()
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out == f"regimedesk {_pyproject_version()}\n"


@pytest.mark.parametrize("stored", [False, True], ids=["fresh home", "stored state"])
def test_risk_status_imports_no_heavy_library(tmp_path, stored):
    if stored:
        doc, proc = probe(tmp_path, _RUN_MAIN.format(args=["risk", "reduce", "--reason", "probe"]))
        assert doc["code"] == 0, proc.stderr
    doc, proc = probe(tmp_path, _RUN_MAIN.format(args=["risk", "status"]))
    assert doc["code"] == 0, proc.stderr
    state = "REDUCING" if stored else "ACTIVE"
    assert f"trading state           {state}" in proc.stdout
    assert ("probe" in proc.stdout) is stored
    assert heavy(doc) == set()


def test_a_command_help_shows_options_added_when_it_is_used(capsys):
    # Choices that come from the services are added when the command is parsed or its
    # help shown (CommandParser.fill_later): they are all there.
    with pytest.raises(SystemExit) as exc:
        main(["regime", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "--method {hmm,markov,garch,jump,ensemble}" in text and "--source {builtin,file,polygon,alpaca}" in text
    args = build_parser().parse_args(["export", "csv", "SP500", "--policy", "combined", "--source", "file"])
    assert (args.export_command, args.symbols, args.policy, args.source) == ("csv", ["SP500"], "combined", "file")
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["stats", "SP500", "--horizon", "XX"])
    assert exc.value.code == 2
    assert "invalid choice: 'XX' (choose from 'LT', 'MT', 'ST', 'US')" in capsys.readouterr().err


# ----------------------------------------------------------------------------- lazy packages

PACKAGES = (analytics, signals, integrations)


@pytest.mark.parametrize(("statement", "loaded", "absent"), [
    ("from analytics import RegimeDeskError", {"analytics.errors"}, {"analytics._adf", "analytics.bars"}),
    ("from integrations import redact", {"integrations._redact"}, {"integrations._charts", "integrations._llm"}),
    ("import signals", set(), {"signals._model", "signals._features"}),
])
def test_importing_one_name_imports_its_submodule_only(tmp_path, statement, loaded, absent):
    doc, _ = probe(tmp_path, statement)
    assert loaded <= set(doc["modules"]) and not absent & set(doc["modules"])
    assert heavy(doc) == set()


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_every_public_name_resolves_to_its_definition(package):
    module_of = {name: module for module, names in package._SOURCES.items() for name in names}
    assert set(module_of) == set(package.__all__)
    assert len(package.__all__) == len(set(package.__all__))
    for name in package.__all__:
        module = importlib.import_module(module_of[name])
        assert getattr(package, name) is getattr(module, name), name
    assert set(package.__all__) <= set(dir(package))
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        package.no_such_name  # noqa: B018
    assert not hasattr(package, "_adf_result")


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_the_type_checking_imports_match_the_table(package):
    # tests/test_import_graph.py and type checkers read the imports under TYPE_CHECKING; the
    # table is what runs. They must name the same things.
    tree = ast.parse(Path(package.__file__).read_text(encoding="utf-8"))
    blocks = [n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING"]
    assert len(blocks) == 1
    imported = {(n.module, alias.name) for n in blocks[0].body if isinstance(n, ast.ImportFrom)
                for alias in n.names}
    table = {(module, name) for module, names in package._SOURCES.items() for name in names}
    assert imported == table and len(table) == len(package.__all__)


# ----------------------------------------------------------------------------- lazy pandas


def _runtime_uses(node: ast.AST, name: str) -> list[int]:
    """Lines where ``name`` is read when ``node`` runs (annotations are never evaluated: the
    modules use ``from __future__ import annotations``)."""
    if isinstance(node, ast.arg):
        return []
    if isinstance(node, ast.AnnAssign):
        return _runtime_uses(node.value, name) if node.value is not None else []
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        evaluated = [*node.args.defaults, *[d for d in node.args.kw_defaults if d], *node.decorator_list, *node.body]
        return [line for child in evaluated for line in _runtime_uses(child, name)]
    lines = [node.lineno] if isinstance(node, ast.Name) and node.id == name else []
    return lines + [line for child in ast.iter_child_nodes(node) for line in _runtime_uses(child, name)]


def _imports_pandas(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Import) and any((a.name, a.asname) == ("pandas", "pd") for a in n.names)
               for n in ast.walk(node))


def unimported_pandas_uses(tree: ast.Module) -> list[int]:
    """Lines that read ``pd`` outside a function that imports it, in a module that does not
    import pandas at module level (it may do so under ``if TYPE_CHECKING:``, for annotations)."""
    if any(_imports_pandas(n) for n in tree.body if not isinstance(n, (ast.If, ast.FunctionDef, ast.ClassDef))):
        return []
    bad: list[int] = []

    def walk(node: ast.AST, covered: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inner = covered or _imports_pandas(child)
                if not inner:
                    bad.extend(_runtime_uses(child, "pd"))
                walk(child, inner)
            elif isinstance(child, ast.ClassDef):
                walk(child, covered)
            elif isinstance(child, ast.If) and ast.unparse(child.test) == "TYPE_CHECKING":
                continue
            elif not covered:
                bad.extend(_runtime_uses(child, "pd"))

    walk(tree, False)
    return sorted(set(bad))


def test_modules_that_import_pandas_lazily_import_it_where_they_use_it():
    # Several modules on the light commands' paths import pandas inside the functions that
    # use it; new code there that reads ``pd`` without the import would fail only at run time.
    lazy = {}
    for package in ("agents", "analytics", "integrations", "signals"):
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            if any(isinstance(n, ast.Import) and any(a.name == "pandas" for a in n.names) for n in ast.walk(tree)):
                lazy[str(path.relative_to(ROOT))] = unimported_pandas_uses(tree)
    assert {"analytics/bars.py", "agents/config.py", "agents/services/risk.py"} <= set(lazy)
    assert {k: v for k, v in lazy.items() if v} == {}


def test_the_lazy_pandas_check_can_fail():
    ok = ast.parse("from __future__ import annotations\nif TYPE_CHECKING:\n    import pandas as pd\n"
                   "def f(x: pd.Series) -> pd.Series:\n    import pandas as pd\n    return pd.Series(x)\n")
    bad = ast.parse("from __future__ import annotations\nif TYPE_CHECKING:\n    import pandas as pd\n"
                    "def f(x: pd.Series):\n    return pd.Series(x)\nDAY = pd.Timedelta(days=1)\n")
    assert unimported_pandas_uses(ok) == [] and unimported_pandas_uses(bad) == [5, 6]


# ----------------------------------------------------------------------------- builtin data


@pytest.mark.parametrize("name", ["sp500", "nasdaq"])
def test_builtin_data_is_what_arch_loads(name):
    from integrations._builtin import _arch_data

    pd = pytest.importorskip("pandas")
    arch_data = importlib.import_module(f"arch.data.{name}")
    ours, theirs = _arch_data(name), arch_data.load()
    pd.testing.assert_frame_equal(ours, theirs, check_exact=True)
    assert len(ours) == 5031 and ours.index[0] == pd.Timestamp("1999-01-04")
