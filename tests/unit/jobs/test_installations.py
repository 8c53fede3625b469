"""The core's read of sealed installations: one workspace's bot token and name, or nothing."""

from __future__ import annotations

import json

from bot.jobs.installations import InstalledWorkspaces, sealer_from_secret
from bot.ports import Installation, Store

KEY = "a-test-secret-key-of-enough-length"


async def _save(store: Store, team: str, values: dict[str, object], key: str = KEY) -> None:
    sealed = sealer_from_secret(key).encrypt(json.dumps(values).encode()).decode("ascii")
    await store.save_installation(Installation("slack", "", team, sealed, 1.0))


async def test_a_workspace_installation_gives_its_token_and_name(store: Store) -> None:
    await _save(store, "T2", {"team_id": "T2", "team_name": "Second", "bot_token": "xoxb-2"})
    found = await InstalledWorkspaces(store, sealer_from_secret(KEY), "slack").find("T2")
    assert found is not None and (found.team_id, found.name, found.bot_token) == (
        "T2",
        "Second",
        "xoxb-2",
    )
    assert "xoxb-2" not in repr(found)


async def test_nothing_without_a_readable_installation_with_a_bot_token(store: Store) -> None:
    await _save(store, "T2", {"team_id": "T2", "bot_token": "xoxb-2"}, key=KEY + "-rotated")
    await _save(store, "T3", {"team_id": "T3", "user_token": "xoxp-3"})
    await _save(store, "T4", {"team_id": "T4", "bot_token": "xoxb-4"})
    workspaces = InstalledWorkspaces(store, sealer_from_secret(KEY), "slack")
    assert await workspaces.find("T2") is None  # sealed with another key
    assert await workspaces.find("T3") is None  # no bot token
    assert await workspaces.find("T9") is None  # never installed
    assert await workspaces.find("") is None
    assert await InstalledWorkspaces(store, sealer_from_secret(KEY), "discord").find("T4") is None
    found = await workspaces.find("T4")
    assert found is not None and found.name == "T4"  # no team name kept: the id stands in
