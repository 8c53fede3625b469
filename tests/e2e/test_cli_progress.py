"""``imagine-bot imagine --n 4`` says how far it has come while it works, then where each image is."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import run_bot


def test_imagine_with_four_images_shows_progress(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    done = run_bot(
        ["imagine", "a red fox at dawn", "--n", "4", "--seed", "7", "-o", str(target)],
        data_dir=tmp_path / "data",
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    steps = [line.split(": ", 1)[1] for line in lines if line.startswith("job ")]
    assert steps[0].startswith("queued (")
    assert steps[1].startswith("submitted to offline")
    assert steps[2].startswith("4 images ready, saving")
    assert steps[-1].startswith("done")
    written = [line for line in lines if line.startswith("image ")]
    assert written == [
        f"image {i}/4 written to {target.with_name(f'out-{i}.png')}" for i in range(1, 5)
    ]
    assert done.stdout.split() == [str(target.with_name(f"out-{i}.png")) for i in range(1, 5)]
