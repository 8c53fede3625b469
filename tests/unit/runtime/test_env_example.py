""".env.example: names every setting the configuration reads and nothing else, and copied as it is to
.env (or passed to ``docker run --env-file``) it changes nothing but what the operator fills in."""

from __future__ import annotations

import re
from pathlib import Path

from dotenv import dotenv_values

from bot.blobs.s3 import _SESSION_VARIABLES
from bot.runtime.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / ".env.example"
# Test-only hooks are settings, but not for operators.
TEST_ONLY = {"IMAGINE_TEST_CRASH_AT"}
# Read from the environment and .env by the S3 blob store (bot/blobs/s3.py), not by Settings.
S3_VARIABLES = {*_SESSION_VARIABLES, "AWS_DEFAULT_REGION", "S3_ENDPOINT_URL"}
_LINE = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")


def example_lines() -> dict[str, tuple[bool, str]]:
    """Each variable of the example: (commented out?, value)."""
    found: dict[str, tuple[bool, str]] = {}
    for line in EXAMPLE.read_text().splitlines():
        match = _LINE.match(line.strip())
        if match:
            name = match.group(2)
            assert name not in found, f"{name} appears twice in .env.example"
            found[name] = (match.group(1) is not None, match.group(3))
    return found


def settings_variables() -> set[str]:
    return {str(info.alias) for info in Settings.model_fields.values()} - TEST_ONLY


def test_every_variable_in_the_example_is_read_by_the_configuration() -> None:
    unknown = set(example_lines()) - settings_variables() - S3_VARIABLES
    assert not unknown, f".env.example names variables nothing reads: {sorted(unknown)}"


def test_every_configuration_variable_is_in_the_example() -> None:
    missing = settings_variables() - set(example_lines())
    assert not missing, f"settings missing from .env.example: {sorted(missing)}"


def test_only_values_to_fill_in_are_left_uncommented() -> None:
    active = {name: value for name, (commented, value) in example_lines().items() if not commented}
    assert set(active) >= {"DISCORD_TOKEN", "SLACK_BOT_TOKEN", "BFL_API_KEY"}
    assert all(value == "" for value in active.values()), active


def test_the_example_as_dot_env_keeps_every_default(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(EXAMPLE.read_text())
    assert load_settings({}, env_file=env_file) == load_settings({}, env_file=None)


def test_changing_the_data_dir_moves_the_database_and_the_images(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        EXAMPLE.read_text().replace("# IMAGINE_DATA_DIR=data", "IMAGINE_DATA_DIR=/srv/imagine")
    )
    settings = load_settings({}, env_file=env_file)
    assert settings.effective_database_url == "sqlite:////srv/imagine/imagine.db"
    assert settings.effective_blob_url == "file:///srv/imagine/images"


def test_docker_env_file_keeps_the_images_own_data_folder_and_address() -> None:
    # The Dockerfile's ENV, then `docker run --env-file .env`, whose values win over the image's.
    dockerfile = (ROOT / "Dockerfile").read_text()
    env = dict(re.findall(r"\b(IMAGINE_[A-Z_]+)=(\S+)", dockerfile))
    assert env["IMAGINE_DATA_DIR"] == "/data" and env["IMAGINE_HTTP_HOST"] == "0.0.0.0"
    env.update({k: v or "" for k, v in dotenv_values(EXAMPLE).items()})
    settings = load_settings(env, env_file=None)
    assert settings.data_dir == Path("/data")
    assert settings.effective_database_url == "sqlite:////data/imagine.db"
    assert settings.http_host == "0.0.0.0"
