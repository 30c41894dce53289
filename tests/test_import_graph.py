"""The dependency rules of DESIGN.md, checked on the source with ``ast``.

* ``analytics`` imports no other project package.
* ``integrations`` imports nothing from ``agents``.
* The narrator and the LLM client never reach (transitively) a module whose name mentions a
  broker, execution, the risk gate or orders.

Edges follow Python's import semantics: ``import a.b.c`` and ``from a.b.c import x`` execute
``a/__init__``, ``a/b/__init__`` and ``a/b/c``; ``from a.b import c`` also executes ``a.b.c``
when ``c`` is a submodule; relative imports are resolved against the importing package. Every
import statement counts, including those inside functions and ``if TYPE_CHECKING:`` blocks
(stricter than runtime, never looser).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agents", "integrations", "analytics", "signals", "prompts")
FORBIDDEN = ("broker", "execution", "risk_gate", "order")


def discover(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under the given top-level packages."""
    modules: dict[str, Path] = {}
    for package in packages:
        base = root / package
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _is_package(name: str, modules: dict[str, Path]) -> bool:
    return name in modules and modules[name].name == "__init__.py"


def direct_imports(name: str, modules: dict[str, Path]) -> set[str]:
    """Project modules whose code runs when module ``name`` is imported (one step)."""
    path = modules[name]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if _is_package(name, modules) else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                if node.level > 1:
                    base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(p for p in [*base_parts, node.module or ""] if p)
            else:
                base = node.module or ""
            targets = [base]
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if alias.name != "*" and sub in modules:
                    targets.append(sub)
        for target in targets:
            if target.split(".")[0] not in PACKAGES:
                continue
            for module in _with_parents(target):
                if module in modules:
                    found.add(module)
    found.discard(name)
    return found


def closure(start: str, modules: dict[str, Path]) -> set[str]:
    """Every project module executed by importing ``start`` (its parent packages included)."""
    seen: set[str] = set()
    todo = [m for m in _with_parents(start) if m in modules]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        todo.extend(direct_imports(current, modules) - seen)
    return seen


@pytest.fixture(scope="module")
def modules() -> dict[str, Path]:
    return discover(ROOT, PACKAGES)


# ----------------------------------------------------------------------------- the resolver itself


def test_resolver_follows_python_semantics(tmp_path):
    files = {
        "agents/__init__.py": "",
        "agents/nodes/__init__.py": "from .execution import run\n",
        "agents/nodes/execution.py": "from integrations import _broker_alpaca\n",
        "agents/narrator.py": "from . import helpers\nfrom .nodes import thing\n",
        "agents/helpers.py": "def f():\n    import analytics._x as x\n",
        "analytics/__init__.py": "from analytics.errors import E\n",
        "analytics/errors.py": "",
        "analytics/_x.py": "from ..integrations import y\n",
        "integrations/__init__.py": "",
        "integrations/_broker_alpaca.py": "",
    }
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    mods = discover(tmp_path, PACKAGES)
    assert direct_imports("agents.narrator", mods) == {"agents", "agents.helpers", "agents.nodes"}
    assert direct_imports("agents.helpers", mods) == {"analytics", "analytics._x"}
    assert direct_imports("analytics._x", mods) == {"integrations"}
    assert direct_imports("agents.nodes", mods) == {"agents", "agents.nodes.execution"}
    reached = closure("agents.narrator", mods)
    # the package __init__ of .nodes drags in execution and, through it, the broker
    assert {"agents", "agents.nodes.execution", "integrations._broker_alpaca", "analytics.errors"} <= reached


# ----------------------------------------------------------------------------- the rules


def test_every_project_module_parses(modules):
    assert "agents.services.narrator" in modules and "integrations._llm" in modules
    for name in modules:
        direct_imports(name, modules)


def test_analytics_imports_no_other_project_package(modules):
    offenders = {
        name: sorted(dep for dep in direct_imports(name, modules) if dep.split(".")[0] != "analytics")
        for name in modules
        if name.split(".")[0] == "analytics"
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_integrations_imports_nothing_from_agents(modules):
    offenders = {
        name: sorted(dep for dep in closure(name, modules) if dep.split(".")[0] == "agents")
        for name in modules
        if name.split(".")[0] == "integrations"
    }
    assert {k: v for k, v in offenders.items() if v} == {}


@pytest.mark.parametrize("start", ["agents.services.narrator", "integrations._llm"])
def test_narrator_and_llm_client_never_reach_a_broker(modules, start):
    reached = closure(start, modules)
    assert start in reached and len(reached) > 1  # the walk really ran
    bad = sorted(m for m in reached if any(word in m for word in FORBIDDEN))
    assert bad == [], f"{start} imports (transitively) {bad}"


def test_narrator_closure_contains_what_it_should(modules):
    reached = closure("agents.services.narrator", modules)
    assert {"agents", "agents.config", "integrations._llm", "integrations._journal", "analytics"} <= reached
    assert "integrations._llm" in closure("integrations._llm", modules)
    assert not any(m.startswith("agents") for m in closure("integrations._llm", modules))


def private_imports_of_other_packages(modules: dict[str, Path]) -> dict[str, list[str]]:
    """``module -> [private modules of another top-level package it imports directly]``.

    A module's own package's private modules are its business; another package's are not:
    that package's public names (its ``__init__`` or a public module) are the contract.
    """
    offenders: dict[str, list[str]] = {}
    for name in modules:
        own = name.split(".")[0]
        bad = sorted(dep for dep in direct_imports(name, modules)
                     if dep.split(".")[0] != own and any(part.startswith("_") for part in dep.split(".")[1:]))
        if bad:
            offenders[name] = bad
    return offenders


def test_no_module_imports_another_packages_private_module(modules):
    assert private_imports_of_other_packages(modules) == {}


def test_the_private_import_rule_can_fail(tmp_path):
    for rel, text in {"agents/__init__.py": "", "agents/a.py": "from integrations._x import y\n",
                      "agents/_b.py": "from agents._c import z\n", "agents/_c.py": "",
                      "integrations/__init__.py": "", "integrations/_x.py": ""}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    mods = discover(tmp_path, PACKAGES)
    assert private_imports_of_other_packages(mods) == {"agents.a": ["integrations._x"]}


#: The layers inside ``agents``, highest first; a module imports only its own layer or lower.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("front door", ("agents.cli", "agents.bot", "agents.web")),
    ("runtime", ("agents.runtime",)),
    ("graph", ("agents.graph",)),
    ("service", ("agents.services",)),
    ("base", ("agents.config", "agents.paths", "agents")),
)


def layer_of(name: str) -> int | None:
    """Rank of an ``agents`` module's layer (0 = front doors ... 4 = config and paths)."""
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return rank
    return None


def _front_door(name: str) -> str | None:
    """Which front door a module belongs to: ``cli``, ``bot`` or ``web``."""
    for door in ("cli", "bot", "web"):
        if name == f"agents.{door}" or name.startswith(f"agents.{door}."):
            return door
    return None


#: The one arrow between front doors: ``regimedesk bot`` is how the bot is started (it has no
#: executable of its own), so that command's module launches it. Nothing else may cross.
LAUNCHERS: frozenset[tuple[str, str]] = frozenset({("agents.cli.bot", "agents.bot")})


def upward_imports(modules: dict[str, Path]) -> dict[str, list[str]]:
    """``module -> [agents modules of a higher layer, or another front door, it imports]``."""
    offenders: dict[str, list[str]] = {}
    for name in modules:
        rank = layer_of(name)
        if rank is None or name == "agents":
            continue
        bad = []
        for dep in direct_imports(name, modules):
            dep_rank = layer_of(dep)
            if dep_rank is None or dep == "agents" or (name, dep) in LAUNCHERS:
                continue
            if dep_rank < rank or (rank == dep_rank == 0 and _front_door(dep) != _front_door(name)):
                bad.append(dep)
        if bad:
            offenders[name] = sorted(bad)
    return offenders


def test_every_agents_module_is_in_a_layer(modules):
    assert sorted(m for m in modules if m.startswith("agents") and layer_of(m) is None) == []
    assert sorted(m for m in modules if m.count(".") == 1 and m.startswith("agents.")) == [
        "agents.bot", "agents.cli", "agents.config", "agents.graph", "agents.paths", "agents.runtime",
        "agents.services",
    ]


def test_layers_import_only_downward_and_front_doors_not_each_other(modules):
    assert upward_imports(modules) == {}


def test_the_layer_rule_can_fail(tmp_path):
    for rel, text in {
        "agents/__init__.py": "", "agents/config.py": "",
        "agents/services/__init__.py": "", "agents/services/a.py": "from agents.runtime import runner\n",
        "agents/runtime/__init__.py": "", "agents/runtime/runner.py": "from agents.services import a\n",
        "agents/bot.py": "from agents.cli import run\n", "agents/cli/__init__.py": "",
        "agents/cli/run.py": "from agents.config import x\nfrom agents.runtime import runner\n",
    }.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    mods = discover(tmp_path, PACKAGES)
    assert upward_imports(mods) == {
        "agents.services.a": ["agents.runtime", "agents.runtime.runner"],
        "agents.bot": ["agents.cli", "agents.cli.run"],
    }


def test_front_doors_are_imported_by_no_runtime_or_service(modules):
    # Runtimes (runner, live, scheduler), the graph and the services sit below the front doors:
    # the scheduler used to import the run summary from the CLI, and the bot a CLI helper.
    offenders = {
        name: sorted(dep for dep in direct_imports(name, modules) if _front_door(dep))
        for name in modules
        if name.split(".")[0] == "agents" and _front_door(name) is None
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_bot_imports_no_command_line_module(modules):
    assert sorted(dep for dep in closure("agents.bot", modules) if _front_door(dep) == "cli") == []


def import_cycles(modules: dict[str, Path]) -> list[list[str]]:
    """Groups of modules that import each other, directly or through others (imports inside
    functions count: a cycle hidden in a function is still a cycle). The edge from a module to
    its own parent packages is left out: ``import a.b`` always runs ``a/__init__`` first."""
    graph = {m: {d for d in direct_imports(m, modules) if not m.startswith(d + ".")} for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_no_import_cycles(modules):
    assert import_cycles(modules) == []


def test_the_cycle_rule_can_fail(tmp_path):
    for rel, text in {"agents/__init__.py": "", "agents/services/__init__.py": "",
                      "agents/services/report.py": "def f():\n    from agents.graph.nodes import common\n",
                      "agents/graph/__init__.py": "", "agents/graph/nodes/__init__.py": "",
                      "agents/graph/nodes/common.py": "from agents.services import report\n"}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    assert import_cycles(discover(tmp_path, PACKAGES)) == [
        ["agents.graph.nodes.common", "agents.services.report"]
    ]
