"""The shape of the code: small modules and functions, dependencies one way, no import cycles, and a
README that names every module where it lives."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGES = ("searchsvc", "ingest")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
# A lower layer never imports a higher one (STYLE.md: data flows one way).
FORBIDDEN = {
    "ingest": ("searchsvc.api", "searchsvc.cli", "searchsvc.answering"),
    "searchsvc.storage": ("ingest", "searchsvc.api", "searchsvc.cli", "searchsvc.answering", "searchsvc.store"),
    "searchsvc.providers": ("ingest", "searchsvc.api", "searchsvc.cli", "searchsvc.storage", "searchsvc.store"),
    "searchsvc.answering": ("ingest", "searchsvc.api", "searchsvc.cli"),
}


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports_of(name: str, path: Path) -> set[str]:
    """Every module of ours that ``name`` imports, at any depth of its code."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    ours = modules()
    return {m for m in found if m in ours and m != name}


def test_no_module_is_over_400_lines() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in modules().items()}
    assert {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES} == {}


def test_no_function_is_over_60_lines() -> None:
    long = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{name}.{node.name}: {length} lines")
    assert long == []


def test_no_import_cycles() -> None:
    graph = {name: imports_of(name, path) for name, path in modules().items()}
    # A package's __init__ re-exporting its own modules is not a cycle between layers.
    for name in graph:
        graph[name] = {
            m for m in graph[name] if not (name.startswith(m + ".") and (REPO / m.replace(".", "/")).is_dir())
        }
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*trail[trail.index(nxt) :], nxt] if nxt in trail else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert cycles == []


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_lower_layers_never_import_higher_ones(layer: str) -> None:
    offending = [
        f"{name} imports {imported}"
        for name, path in modules().items()
        if name == layer or name.startswith(layer + ".")
        for imported in imports_of(name, path)
        if any(imported == banned or imported.startswith(banned + ".") for banned in FORBIDDEN[layer])
    ]
    assert offending == []


def test_the_readme_architecture_table_names_every_module_and_only_real_ones() -> None:
    """Each row starts with a path; the other file names in the row live in that path's folder."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Architecture") :]
    section = section[: section.index("\n## ", 1)]
    named: set[str] = set()
    for row in (line for line in section.splitlines() if line.startswith("| `")):
        names = re.findall(r"`([\w/.]+\.py|[\w/]+/)`", row)
        folder = names[0] if names[0].endswith("/") else names[0].rsplit("/", 1)[0] + "/"
        named.update(
            name if name.startswith(("searchsvc/", "ingest/", "migrations/")) else folder + name for name in names
        )
    assert {p for p in named if not (REPO / p).exists()} == set(), "the README names paths that do not exist"
    files = {str(p.relative_to(REPO)) for p in modules().values() if p.name not in ("__init__.py", "__main__.py")}
    assert files - named == set(), "modules the README's architecture table does not name"


def test_the_files_ci_runs_on_sqlite_only_never_use_a_database() -> None:
    """.ci/run leaves STORAGE_FREE out of its PostgreSQL and pgvector passes: none of them may open a store."""
    listed = re.search(r"STORAGE_FREE=\(([^)]*)\)", (REPO / ".ci" / "run").read_text())
    assert listed is not None
    storage = re.compile(r"make_settings|remote_settings|Store\(|Settings\(|cli_env|serving\(|create_app|TEST_DATABASE")
    others = [name for name in listed.group(1).split() if name != Path(__file__).stem]  # this file only reads files
    using = [name for name in others if storage.search((REPO / "tests" / f"{name}.py").read_text())]
    assert using == [], "these use a database: run them in every pass"
