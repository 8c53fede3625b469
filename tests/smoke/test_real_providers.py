"""One real generation per provider whose key is set (``make smoke``; costs a few cents)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.e2e.conftest import REPO, bot_env
from tests.smoke.conftest import KEYS

pytestmark = pytest.mark.smoke

KEY_OF = {"bfl": "BFL_API_KEY", "fal": "FAL_KEY", "together": "TOGETHER_API_KEY"}


@pytest.mark.parametrize("name", ["bfl", "fal", "together"])
def test_one_real_generation(tmp_path: Path, name: str) -> None:
    values = KEYS[name]
    if KEY_OF[name] not in values:
        pytest.skip(f"{KEY_OF[name]} is not set")
    target = tmp_path / "out.png"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot",
            "imagine",
            "a small red lighthouse on a rock, watercolour",
            "--model",
            "klein" if name != "together" else "pro",
            "--ar",
            "4:3",
            "-o",
            str(target),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=bot_env(tmp_path / "data", IMAGINE_PROVIDERS=name, **values),
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    with Image.open(target) as image:
        assert image.size[0] * 3 == image.size[1] * 4
    assert values[KEY_OF[name]] not in out.stdout + out.stderr
