"""The settings forms: one per described setting, and posted forms read by the chat grammar."""

from __future__ import annotations

import pytest

from bot.domain.catalog import load_catalog
from bot.domain.community import AddItem, Clear, RemoveItem, SetValue
from bot.domain.community_settings import BLOCKED_TERMS, CHANNELS, LIMITS, SETTINGS
from bot.domain.errors import InvalidRequest
from bot.domain.models import CommunitySettings, Limits
from bot.text.settings import parse_settings_command
from bot.web.forms import change_from_form, setting_views


def test_every_described_setting_has_a_view_with_forms() -> None:
    settings = CommunitySettings("c1", blocked_terms=("dragon",), admin_users=("u9",))
    views = {v.name: v for v in setting_views(settings, load_catalog())}
    assert set(views) == set(SETTINGS)
    assert all(v.forms for v in views.values())
    assert [item for item, _ in views["blocked"].items] == ["dragon"]
    assert views["admin-users"].platform_admins_only
    assert views["input-images"].forms[0].inputs[0].options == (("on", "on"), ("off", "off"))
    assert views["channels"].current == "every channel"
    [format_input] = views["format"].forms[0].inputs
    assert [value for value, _ in format_input.options] == ["default", "jpeg", "png", "webp"]
    assert views["enhance"].current == "off"


@pytest.mark.parametrize(
    ("name", "op", "form", "typed"),
    [
        ("limits", "set", {"rate": "5/minute", "daily": "off"}, "limits rate=5/minute daily=off"),
        ("limits", "set", {"key": "r1", "burst": "3"}, "limits role=r1 burst=3"),
        ("limits", "clear", {"key": "r1"}, "limits reset r1"),
        ("safety", "set", {"value": "adult"}, "safety adult"),
        ("channel-safety", "set", {"key": "ch1", "value": "clear"}, "channel-safety ch1 clear"),
        ("server-daily", "set", {"value": "default"}, "server-daily default"),
        ("budget", "set", {"value": "$4"}, "budget $4"),
        ("model", "set", {"value": "default"}, "model default"),
        ("cache", "set", {"value": "on"}, "cache on"),
        ("format", "set", {"value": "webp"}, "format webp"),
        ("enhance", "set", {"value": "on"}, "enhance on"),
        ("channels", "add", {"item": "ch2"}, "channels allow ch2"),
        ("channels", "clear", {}, "channels allow-all"),
        ("blocked", "add", {"item": "two words"}, "blocked add two words"),
        ("banned", "remove", {"item": "u3"}, "unban u3"),
        ("admin-roles", "add", {"item": "r2"}, "admin-roles add r2"),
    ],
)
def test_a_form_is_the_same_change_as_the_typed_command(
    name: str, op: str, form: dict[str, str], typed: str
) -> None:
    assert change_from_form(name, op, form) == parse_settings_command(typed)


def test_forms_name_the_change_kinds() -> None:
    assert change_from_form("limits", "set", {"daily": "3"}) == SetValue(LIMITS, Limits(daily=3))
    assert change_from_form("limits", "clear", {}) == Clear(LIMITS, None)
    assert change_from_form("blocked", "remove", {"item": "x"}) == RemoveItem(BLOCKED_TERMS, "x")
    assert change_from_form("channels", "add", {"item": "c"}) == AddItem(CHANNELS, "c")


@pytest.mark.parametrize(
    ("name", "op", "form", "message"),
    [
        ("limits", "set", {}, "Usage: limits"),
        ("limits", "set", {"in-flight": "many"}, "in-flight is a whole number or off"),
        ("budget", "set", {"value": ""}, "Please give a value for budget."),
        ("channel-safety", "set", {"value": "strict"}, "Please give a channel."),
        ("nonsense", "add", {"item": "x"}, "That form does not change a known setting."),
        ("safety", "add", {"item": "x"}, "That form does not change a known setting."),
    ],
)
def test_wrong_forms_get_a_message(name: str, op: str, form: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        change_from_form(name, op, form)
    assert message in refused.value.user_message
