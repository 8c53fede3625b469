"""The project as ``pip install .`` (and so the Docker image) installs it: the wheel carries every
data file the code opens, and ``imagine-bot doctor`` and an offline ``imagine-bot imagine`` run from a
fresh virtual environment that has no view of this checkout."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO

pytestmark = pytest.mark.slow


def _build_wheel(out: Path) -> Path:
    # From a copy of the sources: setuptools reuses a ``build/`` folder left in the checkout, which
    # could hold files the project's own settings would no longer ship.
    source = out.parent / "source"
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "data", "*.egg-info", "__pycache__", ".*_cache"
        ),
    )
    # No build isolation: the test downloads nothing (setuptools and wheel are dev dependencies).
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(out),
            str(source),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=240,
    )
    (wheel,) = out.glob("imagine_bot-*.whl")
    return wheel


def _fresh_venv(root: Path, wheel: Path) -> Path:
    venv.EnvBuilder(with_pip=False).create(root)
    python = root / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # The dependencies come from the test's own environment as a plain path entry: its .pth files
    # (the editable install of this checkout among them) are not run, so ``bot`` can only come
    # from the wheel installed below.
    deps = [p for p in site.getsitepackages() if "site-packages" in p]
    Path(purelib, "zz_dependencies.pth").write_text("\n".join(deps) + "\n", encoding="utf-8")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=240,
    )
    return root / "bin"


def test_installed_wheel_runs_doctor_and_an_offline_imagine(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path / "wheel")
    bin_dir = _fresh_venv(tmp_path / "venv", wheel)
    work = tmp_path / "work"
    work.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("IMAGINE_", "BFL_", "FAL_", "TOGETHER_", "DISCORD_", "SLACK_"))
        and k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    env["IMAGINE_DATA_DIR"] = str(work / "data")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(bin_dir / "imagine-bot"), *args],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    where = subprocess.run(
        [str(bin_dir / "python"), "-c", "import bot; print(bot.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(tmp_path / "venv") in where, where

    # Every data file the source tree holds is in the installed package (SQL, catalog, the
    # dashboard's templates and stylesheet), so no page or query is missing from an install.
    shipped = subprocess.run(
        [
            str(bin_dir / "python"),
            "-c",
            "import bot, pathlib; print(pathlib.Path(bot.__file__).parent)",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    data = {".sql", ".json", ".html", ".css"}
    wanted = {p.relative_to(REPO / "bot") for p in (REPO / "bot").rglob("*") if p.suffix in data}
    installed = {p.relative_to(shipped) for p in Path(shipped).rglob("*") if p.suffix in data}
    assert wanted and wanted <= installed, sorted(map(str, wanted - installed))

    doctor = run("doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "FileNotFoundError" not in doctor.stderr

    out = work / "fox.png"
    imagine = run("imagine", "a red fox at dawn", "--seed", "7", "-o", str(out))
    assert imagine.returncode == 0, imagine.stdout + imagine.stderr
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
