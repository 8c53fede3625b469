"""The Discord adapter's modules import one another without a cycle (TYPE_CHECKING imports too)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "adapters" / "discord"
NAME = "adapters.discord"


def _imports(path: Path) -> set[str]:
    """Modules of the package that ``path`` imports; ``from pkg import mod`` counts as ``mod``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(NAME):
            for alias in node.names:
                module = f"{node.module}.{alias.name}".removeprefix(NAME + ".")
                if (PACKAGE / f"{module}.py").exists():
                    found.add(module)
                elif node.module != NAME:
                    found.add(node.module.removeprefix(NAME + "."))
        elif isinstance(node, ast.Import):
            found.update(
                a.name.removeprefix(NAME + ".") for a in node.names if a.name.startswith(NAME + ".")
            )
    return found


def test_the_discord_modules_have_no_import_cycle() -> None:
    graph = {p.stem: _imports(p) for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert "interactions" in graph["commands"]  # the walk sees TYPE_CHECKING imports

    def cycle_from(start: str) -> list[str] | None:
        stack = [(start, [start])]
        while stack:
            module, path = stack.pop()
            for dep in graph.get(module, ()):
                if dep == start:
                    return [*path, dep]
                if dep not in path:
                    stack.append((dep, [*path, dep]))
        return None

    cycles = [c for c in (cycle_from(m) for m in sorted(graph)) if c]
    assert cycles == []
