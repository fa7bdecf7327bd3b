"""The house rules, read from the code itself (issue 11, "Done when"):

* SQL lives only in repositories: no stage, route, `service.py` (and none of the few other
  modules that used to run statements) executes SQL or builds a statement;
* the layers hold: `rules` <- `core` <- the domain packages <- `main`/`cli`/`demo`: nothing
  imports a layer above its own, and there is no import cycle between packages or modules.

Both are plain `ast` scans of `app/`: no import of the code under test.
"""

import ast
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Final

import pytest

ROOT: Final = Path(__file__).resolve().parents[2]
APP: Final = ROOT / "app"

# ---- SQL only in repositories --------------------------------------------------------------

# Calls that run a statement on a session or connection.
EXECUTING: Final = frozenset(
    {"execute", "executemany", "fetch", "fetchrow", "fetchval", "scalar", "scalars", "stream"}
)
# `get` runs SQL on a session (`session.get(Model, id)`), not on a dict: only session-like
# receivers count.
SESSION_LIKE: Final = re.compile(r"(session|connection|conn)$", re.IGNORECASE)
# Statement constructors, by their home in SQLAlchemy.
BUILDING: Final = frozenset(
    {
        "sqlalchemy.select",
        "sqlalchemy.insert",
        "sqlalchemy.update",
        "sqlalchemy.delete",
        "sqlalchemy.text",
        "sqlalchemy.dialects.postgresql.insert",
    }
)
# Besides stages, routes and services: the modules that ran SQL before issue 11 moved it.
ALSO_CHECKED: Final = (
    "core/auth.py",
    "core/transaction.py",
    "outbox/writer.py",
    "main.py",
    "cli.py",
    "demo.py",
)


def _is_checked(path: Path) -> bool:
    relative = path.relative_to(APP)
    parts = relative.parts
    return (
        "stages" in parts[:-1]
        or any(part.startswith("routes") for part in parts)
        or relative.name == "service.py"
        or relative.as_posix() in ALSO_CHECKED
    )


def checked_modules() -> list[Path]:
    return sorted(path for path in APP.rglob("*.py") if _is_checked(path))


def _receiver_name(node: ast.expr) -> str:
    """The last name of a call's receiver: `self.session` -> session, `x.get()` -> get."""
    while isinstance(node, ast.Call | ast.Await):
        node = node.func if isinstance(node, ast.Call) else node.value
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _sqlalchemy_names(tree: ast.AST) -> dict[str, str]:
    """Local name -> dotted SQLAlchemy origin, from the module's imports."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "sqlalchemy":
                    names[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _dotted(node: ast.expr, names: Mapping[str, str]) -> str | None:
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value, names)
        return None if base is None else f"{base}.{node.attr}"
    return None


def sql_sites(source: str) -> list[str]:
    """Where the module runs SQL or builds a statement: 'line: what'."""
    tree = ast.parse(source)
    names = _sqlalchemy_names(tree)
    found: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute):
            receiver = _receiver_name(func.value)
            if func.attr in EXECUTING or (func.attr == "get" and SESSION_LIKE.search(receiver)):
                found.append(f"{node.lineno}: {receiver}.{func.attr}()")
                continue
        origin = _dotted(func, names)
        if origin in BUILDING:
            found.append(f"{node.lineno}: {origin}()")
    return found


@pytest.mark.parametrize(
    ("source", "sites"),
    [
        ("await session.execute(q)", 1),
        ("row = await connection.fetchrow(SQL, 1)", 1),
        ("n = await (await self.session()).scalar(q)", 1),
        ("user = await session.get(User, user_id)", 1),
        ("import sqlalchemy as sa\nq = sa.select(User)", 1),
        ("from sqlalchemy import text\nq = text('SELECT 1')", 1),
        ("from sqlalchemy.dialects.postgresql import insert\nq = insert(T)", 1),
        ("value = headers.get('etag')", 0),
        ("await repository.user(session, user_id)", 0),
        ("import sqlalchemy as sa\nc = sa.func.now()", 0),
    ],
)
def test_the_sql_scan_recognises_statements(source: str, sites: int) -> None:
    assert len(sql_sites(source)) == sites


def test_the_scan_covers_stages_routes_and_services() -> None:
    names = {path.relative_to(APP).as_posix() for path in checked_modules()}
    assert {"directory/routes.py", "directory/service.py", "policy/service.py"} <= names
    assert {"kpis/service.py", "ops/routes.py", "core/auth.py"} <= names
    assert any(name.startswith("events/stages/") for name in names)
    assert not any(name.endswith("repository.py") for name in names)


@pytest.mark.parametrize(
    "path", checked_modules(), ids=lambda path: path.relative_to(APP).as_posix()
)
def test_no_sql_outside_repositories(path: Path) -> None:
    """Issue 11 item 1: stages, services and routes call named repository functions."""
    assert sql_sites(path.read_text(encoding="utf-8")) == []


# ---- layers and cycles ---------------------------------------------------------------------

RULES, CORE, DOMAIN, TOP = 0, 1, 2, 3
LAYER_NAMES: Final = ("rules", "core", "domain", "top")
TOP_MODULES: Final = frozenset({"main", "cli", "demo", "__main__", "models", "jobs"})


def layer(module: str) -> int:
    """The layer of a module named like `app.events.service`."""
    first = module.split(".")[1] if "." in module else ""
    if first == "rules":
        return RULES
    if first == "core":
        return CORE
    if first in TOP_MODULES:
        return TOP
    return DOMAIN


def package(module: str) -> str:
    """`app.events.stages.review` -> `app.events`; `app.main` -> `app.main`."""
    return ".".join(module.split(".")[:2])


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_only(tree: ast.AST) -> set[int]:
    """Ids of import nodes under `if TYPE_CHECKING:` (not imported at run time)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(child) for child in ast.walk(node)}
    return skipped


def imports_of(module: str, source: str, *, is_package: bool = False) -> set[str]:
    """The `app` modules (or packages) a module imports, its relative imports resolved."""
    tree = ast.parse(source)
    skipped = _type_checking_only(tree)
    here = module.split(".") if is_package else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "app"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.split(".")[0] != "app":
                continue
            # `from app.events import repository` imports the module app.events.repository
            found |= {f"{target}.{alias.name}" for alias in node.names} | {target}
    return found


def import_graph() -> dict[str, set[str]]:
    """Every module of `app` -> the modules of `app` it imports (existing modules only)."""
    sources = {
        _module_name(path): (path.read_text(encoding="utf-8"), path.name == "__init__.py")
        for path in APP.rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for module, (source, is_package) in sources.items():
        targets = imports_of(module, source, is_package=is_package)
        graph[module] = {t for t in targets if t in sources and t != module}
    return graph


def upward_imports(graph: Mapping[str, set[str]]) -> list[str]:
    return sorted(
        f"{module} ({LAYER_NAMES[layer(module)]}) imports {target} ({LAYER_NAMES[layer(target)]})"
        for module, targets in graph.items()
        for target in targets
        if layer(target) > layer(module)
    )


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def package_graph(graph: Mapping[str, set[str]]) -> dict[str, set[str]]:
    packages: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph.items():
        packages[package(module)] |= {package(t) for t in targets} - {package(module)}
    return dict(packages)


def _edges(graph: Mapping[str, set[str]], component: list[str]) -> Iterator[str]:
    members = set(component)
    for module in component:
        for target in sorted(graph[module] & members):
            yield f"{module} -> {target}"


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("app.rules.kpis", RULES),
        ("app.core.auth", CORE),
        ("app.events.stages.review", DOMAIN),
        ("app.outbox.writer", DOMAIN),
        ("app.webhooks.delivery", DOMAIN),
        ("app.main", TOP),
        ("app.cli", TOP),
        ("app.demo", TOP),
    ],
)
def test_layers_are_named_by_package(module: str, expected: int) -> None:
    assert layer(module) == expected


def test_the_graph_checks_see_an_upward_import_and_a_cycle() -> None:
    graph = {
        "app.core.auth": {"app.directory.repository"},
        "app.directory.repository": {"app.core.auth"},
        "app.outbox.writer": {"app.events.timeline"},
        "app.events.timeline": {"app.outbox.writer"},
    }
    assert upward_imports(graph) == [
        "app.core.auth (core) imports app.directory.repository (domain)"
    ]
    assert cycles(graph) == [
        ["app.core.auth", "app.directory.repository"],
        ["app.events.timeline", "app.outbox.writer"],
    ]
    assert cycles(package_graph(graph)) == [
        ["app.core", "app.directory"],
        ["app.events", "app.outbox"],
    ]


def test_relative_and_from_imports_are_resolved() -> None:
    source = "from . import repository\nfrom ..core.db import Base\nimport app.rules.kpis\n"
    assert imports_of("app.kpis.service", source) >= {
        "app.kpis.repository",
        "app.core.db",
        "app.rules.kpis",
    }


def test_nothing_imports_a_layer_above_its_own() -> None:
    """rules <- core <- domain packages <- main/cli/demo (issue 11, "Done when")."""
    assert upward_imports(import_graph()) == []


def test_no_import_cycle_between_modules() -> None:
    graph = import_graph()
    assert [list(_edges(graph, component)) for component in cycles(graph)] == []


def test_no_import_cycle_between_packages() -> None:
    """E.g. the outbox writer importing from events while events publish through it."""
    graph = import_graph()
    packages = package_graph(graph)
    found = cycles(packages)
    detail = [
        f"{module} -> {target}"
        for component in found
        for module, targets in sorted(graph.items())
        for target in sorted(targets)
        if package(module) in component
        and package(target) in component
        and package(target) != package(module)
    ]
    assert found == [], detail


# ---- small functions -------------------------------------------------------------------------

MAX_FUNCTION_LINES: Final = 80


def long_functions(source: str, name: str) -> list[str]:
    """`name:function (lines)` for each function of `source` longer than the house allows."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno:
            lines = node.end_lineno - node.lineno + 1
            if lines > MAX_FUNCTION_LINES:
                found.append(f"{name}:{node.name} ({lines})")
    return found


def test_the_length_check_sees_a_long_function() -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    assert long_functions(f"def long() -> None:\n{body}", "m.py") == ["m.py:long (81)"]
    assert long_functions("def short() -> None:\n    pass\n", "m.py") == []


def test_no_function_is_longer_than_80_lines() -> None:
    """Issue 11: a function that needs more lines does more than one thing."""
    found = [
        entry
        for path in sorted(APP.rglob("*.py"))
        for entry in long_functions(path.read_text(encoding="utf-8"), str(path.relative_to(APP)))
    ]
    assert found == []
