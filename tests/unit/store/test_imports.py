"""The store's modules import in one direction: the port and the shared logic know no backend, and
no import (at the top or inside a function) closes a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

STORE = Path(__file__).resolve().parents[3] / "bot" / "store"
BACKENDS = ("bot.store.sqlite", "bot.store.postgres")
# The two modules whose job is to pick a backend or to use both.
CHOOSERS = {"bot.store.factory", "bot.store.transfer"}


def _graph() -> dict[str, set[str]]:
    modules = {}
    for path in STORE.rglob("*.py"):
        parts = path.relative_to(STORE.parents[1]).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            edges.update(t for t in targets if t in modules and t != name)
        graph[name] = edges
    return graph


def test_the_port_and_the_shared_logic_import_no_backend() -> None:
    offenders = [
        f"{module} imports {target}"
        for module, targets in _graph().items()
        if not module.startswith(BACKENDS) and module not in CHOOSERS
        for target in targets
        if target.startswith(BACKENDS)
    ]
    assert offenders == []


def test_no_import_cycle_in_the_store() -> None:
    graph = _graph()
    assert "bot.store.sqlite.store" in graph and "bot.store.postgres.listen" in graph
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        for target in graph[module]:
            if target in path:
                cycles.append([*path[path.index(target) :], target])
            elif target not in seen:
                seen.add(target)
                visit(target, [*path, target])

    for start in graph:
        seen = {start}
        visit(start, [start])
    assert cycles == []
