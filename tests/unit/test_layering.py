"""The import rules of the house: the core never depends on a platform library, the domain imports
no other layer, adapters reach the core only through its public rooms, and no import cycle exists."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BOT = ROOT / "bot"
PLATFORM_LIBRARIES = {"discord", "slack_bolt", "slack_sdk"}
# What an adapter may import from the core (DESIGN.md: adapters use ports, jobs, text and domain;
# ops and media are the shared services every layer above the domain may call).
ADAPTER_ROOMS = ("bot.ports", "bot.jobs", "bot.text", "bot.domain", "bot.ops", "bot.media")
# Still reached from adapters, listed one by one so that nothing else creeps in: Settings (each
# adapter reads its platform's settings; the rest of the composition root reaches it only as
# ``adapters.host.Host``), and the byte and time caps that Slack's private file download reads
# under (the core's capped read on the shared client).
ADAPTER_EXCEPTIONS = frozenset({"bot.runtime.config", "bot.net.guard", "bot.net.httpclient"})


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _project_modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for top in ("bot", "adapters"):
        for path in sorted((ROOT / top).rglob("*.py")):
            found[_module_name(path)] = path
    return found


MODULES = _project_modules()


def _imports(name: str, path: Path) -> Iterator[tuple[int, str]]:
    """(line, imported project module) for every import in the file, at any depth."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield node.lineno, full if full in MODULES else base


def _edges() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for _, target in _imports(name, path):
            if target in MODULES and target != name:
                graph[name].add(target)
    return graph


def _offenders(
    rule: str, allowed: tuple[str, ...], exceptions: frozenset[str] = frozenset()
) -> list[str]:
    found = set()
    for name, path in MODULES.items():
        if not (name == rule or name.startswith(rule + ".")):
            continue
        for line, target in _imports(name, path):
            if not target.startswith(("bot", "adapters")) or target in exceptions:
                continue
            if not any(target == a or target.startswith(a + ".") for a in allowed):
                found.add(f"{path.relative_to(ROOT)}:{line} imports {target}")
    return sorted(found)


def test_bot_sources_import_no_platform_library() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {target}"
        for name, path in MODULES.items()
        if name.startswith("bot")
        for line, target in _imports(name, path)
        if target.split(".")[0] in PLATFORM_LIBRARIES
    ]
    assert offenders == []


def test_domain_imports_no_other_layer() -> None:
    assert _offenders("bot.domain", ("bot.domain",)) == []


def test_adapters_use_only_the_cores_public_rooms() -> None:
    assert _offenders("adapters", ("adapters", *ADAPTER_ROOMS), ADAPTER_EXCEPTIONS) == []


def test_no_import_cycles() -> None:
    graph = _edges()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in graph:
        if node not in index:
            visit(node)
    assert cycles == []


def test_the_rules_see_a_violation(tmp_path: Path) -> None:
    """The walker finds a relative import and resolves it to a project module."""
    path = BOT / "domain" / "models.py"
    found = {target for _, target in _imports("bot.domain.models", path)}
    assert all(not t.startswith("bot.") or t.startswith("bot.domain") for t in found)
    fake = tmp_path / "x.py"
    fake.write_text("from ..jobs import service\nimport bot.runtime.app\n", encoding="utf-8")
    assert {t for _, t in _imports("bot.domain.x", fake)} == {"bot.jobs.service", "bot.runtime.app"}


def test_importing_the_core_loads_no_platform_library() -> None:
    code = (
        "import sys, bot.runtime.app, bot.jobs.service, bot.jobs.pool, bot.runtime.cli, "
        "bot.net.server\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{sorted(PLATFORM_LIBRARIES)!r})\n"
        "print(','.join(loaded))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
