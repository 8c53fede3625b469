"""The newcomer's first try: the real process, the console adapter, offline provider, SQLite."""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image

from tests.e2e.conftest import run_bot

DONE = re.compile(r"job (\w+): done -> (\S+\.(?:png|jpg|webp)) ")


def test_piped_imagine_prints_a_16_9_jpeg_and_repeats_identically(tmp_path: Path) -> None:
    data = tmp_path / "data"
    command = "/imagine a red fox at dawn --ar 16:9 --seed 7\n"
    first = run_bot(["run"], data_dir=data, stdin=command)
    # Without --no-cache the second run would be served the first one's stored image.
    second = run_bot(["run"], data_dir=data, stdin=command.replace("\n", " --no-cache\n"))
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert "console mode" in first.stdout.splitlines()[0]
    paths = [Path(DONE.search(out.stdout).group(2)) for out in (first, second)]  # type: ignore[union-attr]
    assert paths[0] != paths[1]
    with Image.open(paths[0]) as image:
        assert image.format == "JPEG"  # the bot's default format
        width, height = image.size
    assert width * 9 == height * 16
    assert paths[0].read_bytes() == paths[1].read_bytes()


def test_bad_commands_are_refused_and_the_rest_still_runs(tmp_path: Path) -> None:
    lines = "\n".join(
        [
            "/imagine --ar 99:1 a cat",
            "/imagine a cat --seed banana",
            "/frobnicate",
            "/imagine a cat --size 640x480 --seed 1",
            "",
        ]
    )
    out = run_bot(["run"], data_dir=tmp_path / "data", stdin=lines)
    assert out.returncode == 0, out.stderr
    refusals = [line for line in out.stdout.splitlines() if line.startswith("refused:")]
    assert len(refusals) == 2
    assert "between 1:4 and 4:1" in refusals[0]
    assert "--seed must be" in refusals[1]
    assert "Unknown command /frobnicate" in out.stdout
    assert len(DONE.findall(out.stdout)) == 1


def test_imagine_command_writes_the_output_file(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    out = run_bot(
        ["imagine", "a lighthouse", "--ar", "3:2", "--seed", "3", "-o", str(target)],
        data_dir=tmp_path / "data",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(target)
    with Image.open(target) as image:
        assert image.size[0] * 2 == image.size[1] * 3


def test_imagine_command_writes_the_format_asked_for(tmp_path: Path) -> None:
    # No -o: out.<format> in the working directory, JPEG by default.
    out = run_bot(["imagine", "a lighthouse", "--seed", "3"], data_dir=tmp_path / "data")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "out.jpg"
    with Image.open(tmp_path / "out.jpg") as image:
        assert image.format == "JPEG"
    # -o names the format when --format does not; --format wins over the name.
    webp = tmp_path / "pic.webp"
    out = run_bot(["imagine", "a lighthouse", "-o", str(webp)], data_dir=tmp_path / "data")
    assert out.returncode == 0, out.stderr
    with Image.open(webp) as image:
        assert image.format == "WEBP"
    out = run_bot(
        ["imagine", "a lighthouse", "--format", "bmp", "-o", str(tmp_path / "x.png")],
        data_dir=tmp_path / "data",
    )
    assert out.returncode == 3
    assert "--format is one of jpeg, png, webp" in out.stderr


def test_imagine_command_refusal_exits_non_zero(tmp_path: Path) -> None:
    out = run_bot(
        ["imagine", "a lighthouse", "--model", "nope", "-o", str(tmp_path / "x.png")],
        data_dir=tmp_path / "data",
    )
    assert out.returncode == 3
    assert "Unknown model 'nope'" in out.stderr
    assert not (tmp_path / "x.png").exists()


def test_a_wrong_setting_stops_with_one_line_naming_it(tmp_path: Path) -> None:
    out = run_bot(["run"], data_dir=tmp_path / "data", IMAGINE_PROVIDERS="bfl,acme")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "IMAGINE_PROVIDERS" in lines[0] and "acme" in lines[0]


def test_doctor_says_one_line_per_part(tmp_path: Path) -> None:
    out = run_bot(["doctor"], data_dir=tmp_path / "data")
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("ok    config: providers offline")
    assert any(line.startswith("ok    store: reachable") for line in lines)
    assert any(line.startswith("ok    images: writable") for line in lines)


def test_doctor_fails_when_the_store_cannot_be_opened(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = run_bot(
        ["doctor"],
        data_dir=tmp_path / "data",
        IMAGINE_DATABASE_URL=f"sqlite:///{blocker}/imagine.db",
    )
    assert out.returncode == 1
    assert any(line.startswith("FAIL  store:") for line in out.stdout.splitlines())


def test_models_lists_each_variant_with_its_pinned_ids(tmp_path: Path) -> None:
    out = run_bot(["models"], data_dir=tmp_path / "data")
    assert out.returncode == 0
    assert "pro (default): FLUX.2 [pro]" in out.stdout
    assert "black-forest-labs/FLUX.2-pro" in out.stdout


def test_run_with_an_unusable_database_says_so_in_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = run_bot(
        ["run"], data_dir=tmp_path / "data", IMAGINE_DATABASE_URL=f"sqlite:///{blocker}/x.db"
    )
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "IMAGINE_DATABASE_URL" in lines[0]
