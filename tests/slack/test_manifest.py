"""The shipped Slack app manifest matches what the adapter serves, with the minimum scopes."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.slack.adapter import EVENTS_PATH

yaml = pytest.importorskip("yaml")

MANIFEST = Path(__file__).resolve().parents[2] / "slack-manifest.yml"


def test_the_manifest_routes_everything_to_the_events_path_with_minimum_scopes() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text("utf-8"))
    commands = {c["command"]: c for c in manifest["features"]["slash_commands"]}
    assert set(commands) == {"/imagine", "/imagine-admin"}
    assert all(c["should_escape"] is True for c in commands.values())
    urls = [c["url"] for c in commands.values()]
    urls.append(manifest["settings"]["event_subscriptions"]["request_url"])
    urls.append(manifest["settings"]["interactivity"]["request_url"])
    assert all(url.endswith(EVENTS_PATH) for url in urls)
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == [
        "app_home_opened",
        "message.im",
    ]
    assert manifest["features"]["app_home"]["messages_tab_enabled"] is True
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == [
        "chat:write",
        "commands",
        "files:read",
        "files:write",
        "im:history",
        "im:write",
        "users:read",
    ]
