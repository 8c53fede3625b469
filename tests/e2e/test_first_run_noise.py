"""What a self-hoster sees first: ``--help`` in plain text, and ``doctor`` leaving nothing behind.
(discord.py's voice warnings and Bolt's unused-token warning: tests/e2e/test_startup_errors.py.)"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import run_bot


def test_help_is_plain_text(tmp_path: Path) -> None:
    done = run_bot(["--help"], data_dir=tmp_path / "data")
    assert done.returncode == 0
    assert done.stdout.startswith("usage: imagine-bot ")
    assert "An /imagine bot for Discord and Slack" in done.stdout
    for markup in ("``", ":class:", ":func:", ".. "):
        assert markup not in done.stdout


def test_doctor_leaves_no_folder_of_its_own_behind(tmp_path: Path) -> None:
    data = tmp_path / "data"
    done = run_bot(["doctor"], data_dir=data)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok    images: writable" in done.stdout
    assert list((data / "images").iterdir()) == []
