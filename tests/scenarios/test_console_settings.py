"""/quota and /settings on the console (one community, one admin user)."""

from __future__ import annotations

import pytest

from adapters.console.adapter import ConsoleAdapter
from bot.domain.community import AddItem, SetValue
from bot.domain.community_settings import BANNED_USERS, BUDGET, LIMITS
from bot.domain.errors import InvalidRequest
from bot.domain.limits import UNLIMITED
from bot.domain.models import Limits
from bot.runtime.app import App
from bot.text.settings import ListBlockedTerms, ShowAudit, ShowSettings, parse_settings_command


def console(app: App) -> tuple[ConsoleAdapter, list[str]]:
    lines: list[str] = []

    async def no_input() -> str:
        return ""

    adapter = ConsoleAdapter(app, write=lines.append, readline=no_input)
    adapter.attach()
    return adapter, lines


async def test_settings_changes_show_up_in_settings_and_the_audit_log(app: App) -> None:
    adapter, lines = console(app)
    await adapter.handle("/settings safety strict")
    await adapter.handle("/settings block dragon")
    await adapter.handle("/settings limits daily=3 rate=2/minute")
    assert lines == [
        "Done: safety level set to strict.",
        "Done: blocked term added: 'dragon'.",
        "Done: limits for every user: rate 2/minute, daily 3.",
    ]
    lines.clear()
    await adapter.handle("/settings")
    assert "Safety level: strict" in lines
    assert "Blocked terms: 1" in lines
    lines.clear()
    await adapter.handle("/settings blocked")
    assert lines == ["Blocked terms (1): dragon"]
    lines.clear()
    await adapter.handle("/settings audit 2")
    assert len(lines) == 2 and "user_limits" in lines[0] and "block_term" in lines[1]


async def test_bad_settings_are_explained(app: App) -> None:
    adapter, lines = console(app)
    await adapter.handle("/settings safety spicy")
    await adapter.handle("/settings frobnicate")
    await adapter.handle("/settings limits daily=lots")
    assert lines[0].startswith("refused: Unknown safety level 'spicy'")
    assert lines[1].startswith("refused: Unknown setting 'frobnicate'")
    assert lines[2] == "refused: daily is a whole number or off; got 'lots'."


async def test_quota_shows_what_is_left(app: App) -> None:
    adapter, lines = console(app)
    await app.start_workers()
    await adapter.handle("/settings admins-exempt off")
    await adapter.handle("/settings limits daily=4")
    await adapter.handle("/imagine a red fox --n 3")
    lines.clear()
    await adapter.handle("/quota")
    assert any(line.startswith("Today: 1 of 4 images left") for line in lines), lines
    await adapter.handle("/imagine a blue fox --n 2")
    assert lines[-1].startswith("refused: You have used your 4 images for today")
    await adapter.drain()


def test_the_parser_reads_every_documented_form() -> None:
    assert parse_settings_command("") == ShowSettings()
    assert parse_settings_command("blocked") == ListBlockedTerms()
    assert parse_settings_command("audit 5") == ShowAudit(5)
    assert parse_settings_command("ban 123") == AddItem(BANNED_USERS, "123")
    assert parse_settings_command("budget $2.50") == SetValue(BUDGET, 2.5)
    assert parse_settings_command("budget off") == SetValue(BUDGET, float(UNLIMITED))
    assert parse_settings_command("limits role=vip daily=off in-flight=9") == SetValue(
        LIMITS, Limits(daily=UNLIMITED, max_in_flight=9), key="vip"
    )
    with pytest.raises(InvalidRequest, match="Usage"):
        parse_settings_command("channel-safety only-one")


async def test_the_settings_screen_shows_the_bot_defaults_that_apply(app: App) -> None:
    adapter, lines = console(app)
    await adapter.handle("/settings")
    assert (
        "User limits: rate 5/minute (bot default), burst 5 (bot default), "
        "daily 100 (bot default), in progress 5 (bot default)"
    ) in lines
    await adapter.handle("/settings limits daily=off")
    lines.clear()
    await adapter.handle("/settings")
    assert any(line.startswith("User limits: rate 5/minute (bot default)") for line in lines)
    assert any("daily unlimited, in progress 5 (bot default)" in line for line in lines)
