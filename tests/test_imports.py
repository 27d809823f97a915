"""The import structure of `gradcheck/`, read from the source (ast), not by importing it.

Every `import` and `from ... import` counts, inside functions and `if TYPE_CHECKING:` too: a
deferred import still ties two modules together. Importing a package's submodule is an edge to
that submodule only (not to the packages around it).
"""

from __future__ import annotations

import ast
from pathlib import Path

import gradcheck

PACKAGE = Path(gradcheck.__file__).parent
ADAPTERS = "gradcheck.adapters"


def _modules() -> dict[str, Path]:
    """Dotted name -> file, for every module of the package."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    package = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join([*package, *([base] if base else [])])
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    edges.add(submodule if submodule in modules else base)
        graph[name] = {edge for edge in edges if edge in modules and edge != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_is_read() -> None:
    graph = _graph()
    assert "gradcheck.adapters.torch._flat" in graph["gradcheck.adapters.torch"]
    assert "gradcheck._differentiable" in graph["gradcheck.adapters._common"]


def test_no_import_cycle_in_the_package() -> None:
    assert _cycles(_graph()) == []


def test_only_the_binding_module_imports_the_adapters() -> None:
    importers = sorted(
        name
        for name, edges in _graph().items()
        if not name.startswith(ADAPTERS) and any(e.startswith(ADAPTERS) for e in edges)
    )
    assert len(importers) <= 1, importers


def test_adapters_use_only_the_contract_and_the_errors_of_the_core() -> None:
    allowed = {"gradcheck._differentiable", "gradcheck._errors"}
    for name, edges in _graph().items():
        if name.startswith(ADAPTERS):
            core = {e for e in edges if not e.startswith(ADAPTERS)}
            assert core <= allowed, (name, core - allowed)
