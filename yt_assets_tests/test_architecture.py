"""The package layout holds: the three import walls, no import cycles, and every ``Example::`` of a
public docstring in the Dagster-free code runs.

The import graph is read from the source (every ``import``, also inside functions), so a wall
broken by a lazy import is caught too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "yt_assets"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def _imports(module: str, path: Path) -> Iterator[str]:
    """Every module ``module`` imports (absolute names; ``from X import Y`` yields ``X.Y`` too,
    which only counts when ``X.Y`` is a module)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join([*base_parts, node.module] if node.module else base_parts)
            else:
                base = node.module or ""
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: set(_imports(name, path)) for name, path in modules.items()}


def _internal_edges(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Edges between our modules; a package's import of its own parents is not an edge (Python
    imports the parents first anyway)."""
    edges: dict[str, set[str]] = {}
    for module, imported in graph.items():
        targets = {
            name
            for name in imported
            if name in graph and name != module and not module.startswith(name + ".")
        }
        edges[module] = targets
    return edges


def _violations(prefixes: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for module, imported in _graph().items():
        if not module.startswith(prefixes):
            continue
        for name in sorted(imported):
            if name.startswith(forbidden):
                found.append(f"{module} imports {name}")
    return found


def test_the_import_graph_is_read() -> None:
    graph = _graph()
    assert "yt_assets.s3.fast_listing" in graph["yt_assets.s3.listing"]
    assert "yt_assets.local_yt.cluster" in graph["yt_assets.local_yt.server"]


def test_local_yt_imports_nothing_of_dagster_or_the_assets() -> None:
    found = [
        line
        for line in _violations(("yt_assets.local_yt",), ("dagster", "yt_assets"))
        if not line.split(" imports ")[1].startswith("yt_assets.local_yt")
    ]
    assert found == []


def test_job_code_imports_neither_dagster_nor_the_local_yt() -> None:
    assert _violations(("yt_assets.yt_jobs",), ("dagster", "yt_assets.local_yt")) == []


def test_s3_and_yt_packages_import_no_dagster() -> None:
    walled = ("yt_assets.s3", "yt_assets.yt.", "yt_assets.settings")
    assert _violations(walled, ("dagster",)) == []
    # ...and nothing of the Dagster modules of the package either
    dagster_modules = tuple(
        f"yt_assets.{name}"
        for name in (
            "definitions",
            "resources",
            "io_manager",
            "assets",
            "configs",
            "partitions",
            "sensors",
            "schedules",
            "checks",
        )
    )
    assert _violations(walled, dagster_modules) == []


def test_a_wall_break_is_seen(tmp_path: Path) -> None:
    source = tmp_path / "probe.py"
    source.write_text("def f():\n    import dagster\n    from .. import resources\n")
    imported = set(_imports("yt_assets.s3.probe", source))
    assert {"dagster", "yt_assets.resources"} <= imported


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
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
                components.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return components


def test_there_are_no_import_cycles() -> None:
    assert _cycles(_internal_edges(_graph())) == []


def test_a_cycle_is_seen() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
