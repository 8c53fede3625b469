"""Helpers to run the real ``imagine-bot`` process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def bot_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("IMAGINE_", "BFL_", "FAL_", "TOGETHER_", "DISCORD_", "SLACK_"))
    }
    env.update(IMAGINE_DATA_DIR=str(data_dir), PYTHONPATH=str(REPO))
    env.update(extra)
    return env


def run_bot(
    args: list[str],
    *,
    data_dir: Path,
    stdin: str = "",
    timeout: float = 60,
    cwd: Path | None = None,
    **extra: str,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=bot_env(data_dir, **extra),
        cwd=cwd or data_dir.parent,
    )
