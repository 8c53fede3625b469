"""The Slack installation store on the project's database: what Bolt saves comes back, sealed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from slack_sdk.oauth.installation_store.models.installation import Installation

from adapters.slack.installations import (
    Bots,
    DatabaseInstallationStore,
    DatabaseStateStore,
    InstallationTokens,
    sealer_from_secret,
)
from bot.domain.clock import ManualClock
from bot.store import Store, open_store

KEY = "a-secret-key-of-some-length-0001"
TOKEN = "xoxb-2-secret-bot-token-000000000000"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(f"sqlite:///{tmp_path / 'imagine.db'}") as opened:
        yield opened


def _installation(**overrides: object) -> Installation:
    values: dict[str, object] = {
        "app_id": "A1",
        "team_id": "T2",
        "team_name": "Second",
        "bot_token": TOKEN,
        "bot_id": "BBOT2",
        "bot_user_id": "UBOT2",
        "bot_scopes": "commands,chat:write",
        "user_id": "UINSTALLER",
        "user_token": "xoxp-installer-token-0000000000",
        "installed_at": 1_790_000_000.0,
    }
    values.update(overrides)
    return Installation(**values)  # type: ignore[arg-type]


async def test_a_saved_installation_comes_back_with_its_tokens(store: Store) -> None:
    installations = DatabaseInstallationStore(store, sealer_from_secret(KEY))
    await installations.async_save(_installation())
    found = await installations.async_find_installation(enterprise_id=None, team_id="T2")
    assert found is not None
    assert (found.bot_token, found.bot_user_id, found.team_name) == (TOKEN, "UBOT2", "Second")
    assert found.bot_scopes == ["commands", "chat:write"]
    bot = await installations.async_find_bot(enterprise_id=None, team_id="T2")
    assert bot is not None and bot.bot_token == TOKEN
    assert await InstallationTokens(Bots(installations)).bot_token(None, "T2") == TOKEN
    assert await InstallationTokens(Bots(installations)).bot_token(None, "T9") is None
    row = await store.find_installation("slack", "", "T2")
    assert row is not None and TOKEN not in row.secret and "xoxp" not in row.secret


async def test_another_secret_key_cannot_read_the_installation(store: Store) -> None:
    await DatabaseInstallationStore(store, sealer_from_secret(KEY)).async_save(_installation())
    other = DatabaseInstallationStore(store, sealer_from_secret(KEY + "-rotated"))
    assert await other.async_find_bot(enterprise_id=None, team_id="T2") is None


async def test_a_revoked_user_token_goes_and_the_bot_token_stays(store: Store) -> None:
    installations = DatabaseInstallationStore(store, sealer_from_secret(KEY))
    await installations.async_save(_installation())
    await installations.async_delete_installation(
        enterprise_id=None, team_id="T2", user_id="UINSTALLER"
    )
    found = await installations.async_find_installation(enterprise_id=None, team_id="T2")
    assert found is not None and found.user_token is None and found.bot_token == TOKEN


async def test_an_org_wide_install_serves_the_organisations_workspaces(store: Store) -> None:
    installations = DatabaseInstallationStore(store, sealer_from_secret(KEY))
    org = _installation(enterprise_id="E1", team_id=None, is_enterprise_install=True)
    await installations.async_save(org)
    bot = await installations.async_find_bot(enterprise_id="E1", team_id="T5")
    assert bot is not None and bot.bot_token == TOKEN
    await installations.async_delete_all(enterprise_id="E1", team_id="T5")
    assert await installations.async_find_bot(enterprise_id="E1", team_id="T5") is None


async def test_a_state_is_good_once_and_for_ten_minutes(store: Store) -> None:
    clock = ManualClock(start=1_790_000_000.0)
    states = DatabaseStateStore(store, clock.now)
    first, second = await states.async_issue(), await states.async_issue()
    assert first != second and len(first) >= 32
    assert await states.async_consume(first) is True
    assert await states.async_consume(first) is False
    clock.advance(601)
    assert await states.async_consume(second) is False
    assert await states.async_consume("") is False
