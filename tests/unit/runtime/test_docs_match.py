"""The self-hoster's pages say what the program does: numbers and names are read from the code."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot.domain.catalog import load_catalog
from bot.runtime.config import Settings

ROOT = Path(__file__).resolve().parents[3]


def test_the_readme_links_every_page_under_docs() -> None:
    readme = (ROOT / "README.md").read_text()
    pages = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))
    missing = [page for page in pages if f"]({page})" not in readme]
    assert not missing, f"README.md does not link {missing}"
    assert "docker compose up" in readme


def test_the_readme_names_every_model_variant() -> None:
    readme = (ROOT / "README.md").read_text()
    (listed,) = re.findall(r"`--model ([\w.|-]+)`", readme)
    assert listed.split("|") == list(load_catalog().variants)


def test_scaling_states_the_workers_default_and_maximum() -> None:
    field = Settings.model_fields["workers"]
    maximum = next(m.le for m in field.metadata if getattr(m, "le", None) is not None)
    text = " ".join((ROOT / "docs" / "scaling.md").read_text().split())
    assert f"`IMAGINE_WORKERS` jobs at once (default {field.default}, at most {maximum})" in text


def test_the_manifest_notes_count_its_urls() -> None:
    text = (ROOT / "slack-manifest.yml").read_text()
    manifest = yaml.safe_load(text)
    urls = [c["url"] for c in manifest["features"]["slash_commands"]]
    urls += [
        manifest["settings"][part]["request_url"]
        for part in ("event_subscriptions", "interactivity")
    ]
    words = {2: "two", 3: "three", 4: "four", 5: "five"}
    notes = " ".join(line.lstrip("# ") for line in text.splitlines() if line.startswith("#"))
    assert f"its {words[len(urls)]} URLs" in notes and f"those {words[len(urls)]}" in notes
    slack_page = " ".join((ROOT / "docs" / "slack.md").read_text().split())
    assert f"the manifest's {words[len(urls)]} URLs" in slack_page


def test_the_slack_page_shows_its_settings_as_a_dot_env_file() -> None:
    page = (ROOT / "docs" / "slack.md").read_text()
    blocks = re.findall(r"```(\w*)\n(.*?)```", page, re.S)
    settings_blocks = [(lang, body) for lang, body in blocks if "SLACK_BOT_TOKEN=" in body]
    assert settings_blocks
    for lang, body in settings_blocks:
        assert lang == "ini" and body.startswith("# .env\n")
        assert not re.search(r"^(make|imagine-bot|export) ", body, re.M)
