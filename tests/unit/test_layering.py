"""The core never depends on a platform library: adapters hold all platform glue."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

BOT = Path(__file__).resolve().parents[2] / "bot"
PLATFORM_LIBRARIES = {"discord", "slack_bolt", "slack_sdk"}


def test_bot_sources_import_no_platform_library() -> None:
    offenders: list[str] = []
    for path in sorted(BOT.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in PLATFORM_LIBRARIES:
                    offenders.append(f"{path.relative_to(BOT.parent)}:{node.lineno} imports {name}")
    assert offenders == []


def test_importing_the_core_loads_no_platform_library() -> None:
    code = (
        "import sys, bot.runtime.app, bot.jobs.service, bot.jobs.pool, bot.runtime.cli\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{sorted(PLATFORM_LIBRARIES)!r})\n"
        "print(','.join(loaded))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
