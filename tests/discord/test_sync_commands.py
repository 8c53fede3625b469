"""``imagine-bot sync-commands``: the commands Discord receives, checked against its API."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.runtime.cli import main
from tests.discord.conftest import discord_env
from tests.fakes.discord import GUILD_ID, FakeDiscord


@pytest.fixture
def env(
    fake_discord: FakeDiscord, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    for name, value in discord_env(fake_discord, data_dir).items():
        monkeypatch.setenv(name, value)
    # main() installs its own root handler on this test's captured stderr: take it out after.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)


async def _main(*argv: str) -> int:
    import asyncio

    return await asyncio.to_thread(main, list(argv))


@pytest.mark.usefixtures("env")
async def test_global_sync_registers_every_command(
    fake_discord: FakeDiscord, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _main("sync-commands") == 0
    (call,) = fake_discord.calls("bulk_set_application_commands")
    commands = {c["name"]: c for c in call.json}
    assert set(commands) == {
        "imagine",
        "quota",
        "imagine-help",
        "imagine-admin",
        "history",
        "prefer",
    }
    imagine = {o["name"]: o for o in commands["imagine"]["options"]}
    assert imagine["prompt"]["required"] is True
    assert [c["value"] for c in imagine["aspect"]["choices"]][:3] == ["1:1", "16:9", "9:16"]
    assert "max" in [c["value"] for c in imagine["model"]["choices"]]
    assert imagine["image"]["type"] == 11  # attachment
    assert imagine["private"]["type"] == 5 and not imagine["private"].get("required")  # boolean
    # Installable to servers and to users' accounts; usable in servers, the bot's DM, private
    # channels (Discord's integration types GUILD_INSTALL/USER_INSTALL, contexts 0-2).
    assert commands["imagine"]["integration_types"] == [0, 1]
    assert commands["imagine"]["contexts"] == [0, 1, 2]
    admin = commands["imagine-admin"]
    assert int(admin["default_member_permissions"]) == 1 << 5  # Manage Server
    names = {o["name"] for o in admin["options"]}
    assert {"safety", "channel-safety", "channels", "blocked", "ban", "unban", "limits"} <= names
    assert {"budget", "audit"} <= names
    for personal in ("history", "prefer"):
        assert commands[personal]["integration_types"] == [0, 1]
        assert commands[personal]["contexts"] == [0, 1, 2]
    (count,) = commands["history"]["options"]
    assert count["type"] == 4 and count["min_value"] == 1 and count["max_value"] == 25
    prefer = {o["name"]: o for o in commands["prefer"]["options"]}
    assert set(prefer) == {"set", "show", "reset"}
    set_options = {o["name"]: o["type"] for o in prefer["set"]["options"]}
    assert set_options == {
        "model": 3,
        "aspect": 3,
        "format": 3,
        "count": 4,
        "private": 5,
        "enhance": 5,
        "suffix": 3,
    }
    assert "registered 6 commands" in capsys.readouterr().out


@pytest.mark.usefixtures("env")
async def test_guild_sync_registers_in_one_guild(fake_discord: FakeDiscord) -> None:
    assert await _main("sync-commands", "--guild", GUILD_ID) == 0
    (call,) = fake_discord.calls("bulk_set_guild_application_commands")
    assert call.path.endswith(f"/guilds/{GUILD_ID}/commands")
    assert fake_discord.calls("bulk_set_application_commands") == []


@pytest.mark.usefixtures("env")
async def test_a_refused_sync_says_why(fake_discord: FakeDiscord) -> None:
    fake_discord.failures["bulk_set_application_commands"] = [
        (403, {"message": "Missing Access", "code": 50001})
    ]
    assert await _main("sync-commands") == 1


@pytest.mark.usefixtures("env")
async def test_doctor_checks_the_token_and_the_registration(
    fake_discord: FakeDiscord, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.ops import doctor

    monkeypatch.setattr(doctor, "CHECKS", dict(doctor.CHECKS))
    assert await _main("doctor") == 0
    assert "/imagine is not registered globally" in capsys.readouterr().out
    assert await _main("sync-commands") == 0
    assert await _main("doctor") == 0
    out = capsys.readouterr().out
    assert "ok    discord: logged in as imagine" in out and "/imagine-admin" in out

    monkeypatch.setenv("DISCORD_TOKEN", "wrong-token-value")
    assert await _main("doctor") == 1
    out = capsys.readouterr().out
    assert "FAIL  discord: DISCORD_TOKEN was refused" in out and "wrong-token-value" not in out
