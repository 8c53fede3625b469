"""The settings page's forms, made from the settings described once in
``bot.domain.community_settings``, and posted forms read back into changes by the same grammar
functions the chat commands use (``bot.text.settings``), so the checks and messages are the same."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.domain.catalog import Catalog
from bot.domain.community import AddItem, Clear, RemoveItem, SettingsChange
from bot.domain.community_settings import (
    LIMITS,
    LIST_SETTINGS,
    VALUE_SETTINGS,
    LimitsSetting,
    ListSetting,
    ValueSetting,
    describe_limits,
    limit_text,
    money_text,
)
from bot.domain.errors import InvalidRequest
from bot.domain.models import OUTPUT_FORMATS, CommunitySettings, Limits
from bot.domain.safety import NAMED_LEVELS
from bot.text.settings import USAGE, channel_safety_change, limits_change, value_change

LIMIT_FIELDS = ("rate", "burst", "daily", "in-flight")
SWITCH = (("on", "on"), ("off", "off"))


@dataclass(frozen=True)
class Input:
    name: str
    label: str
    options: tuple[tuple[str, str], ...] = ()  # (value, label); empty: a text box
    value: str = ""
    placeholder: str = ""
    required: bool = True


@dataclass(frozen=True)
class Form:
    op: str  # set, add, remove or clear
    button: str
    inputs: tuple[Input, ...] = ()
    hidden: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SettingView:
    """One setting on the page: what it does, its value now, and the forms that change it."""

    name: str
    help: str
    usage: str
    current: str
    items: tuple[tuple[str, Form], ...]  # list entries, each with its remove form
    forms: tuple[Form, ...]
    platform_admins_only: bool = False


def _usage(name: str) -> tuple[str, str]:
    for usage, what in USAGE:
        if usage.split()[0] == name:
            return usage, what
    return name, ""


def _shown(value: Any, setting: ValueSetting) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, Limits):
        return describe_limits(value, only_set=True) if value != Limits() else "the bot defaults"
    if isinstance(value, Mapping):
        if not value:
            return "none"
        return "; ".join(f"{key}: {_shown(v, setting)}" for key, v in value.items())
    if setting.name == "budget":
        return money_text(value)
    if isinstance(value, (int, float)) or value is None:
        return limit_text(value)
    return str(value)


def _value_inputs(setting: ValueSetting, value: Any, catalog: Catalog) -> tuple[Input, ...]:
    if isinstance(value, bool):
        return (Input("value", setting.name, SWITCH, "on" if value else "off"),)
    if setting.name in ("safety", "channel-safety"):
        levels = tuple((name, name) for name in NAMED_LEVELS)
        if setting.keyed_by:
            levels += (("clear", "clear (follow the community)"),)
        return (Input("value", "level", levels, str(value) if isinstance(value, str) else ""),)
    if setting.name == "model":
        models = (("default", "the bot default"), *((n, n) for n in catalog.variants))
        return (Input("value", "model", models, str(value or "default")),)
    if setting.name == "format":
        formats = (("default", "the bot default (jpeg)"), *((f, f) for f in OUTPUT_FORMATS))
        return (Input("value", "format", formats, str(value or "default")),)
    hint = _usage(setting.name)[0].split(maxsplit=1)[-1]
    return (Input("value", setting.name, placeholder=hint),)


def _value_view(
    setting: ValueSetting, settings: CommunitySettings, catalog: Catalog
) -> SettingView:
    usage, what = _usage(setting.name)
    value = getattr(settings, setting.field)
    if isinstance(setting, LimitsSetting):
        inputs = (
            Input("key", "role (empty: every user)", required=False, placeholder="role id"),
            *(
                Input(
                    name,
                    name,
                    required=False,
                    placeholder="5/minute" if name == "rate" else "N or off",
                )
                for name in LIMIT_FIELDS
            ),
        )
        reset = Form(
            "clear",
            "Reset to the bot defaults",
            (Input("key", "role (empty: every user)", required=False, placeholder="role id"),),
        )
        roles = "; ".join(
            f"role {role}: {describe_limits(limits, only_set=True)}"
            for role, limits in settings.role_limits.items()
        )
        current = _shown(value, setting) + (f"; {roles}" if roles else "")
        return SettingView(
            setting.name, what, usage, current, (), (Form("set", "Save", inputs), reset)
        )
    inputs = _value_inputs(setting, None if setting.keyed_by else value, catalog)
    if setting.keyed_by:
        inputs = (Input("key", setting.keyed_by, placeholder=f"{setting.keyed_by} id"), *inputs)
    return SettingView(
        setting.name, what, usage, _shown(value, setting), (), (Form("set", "Save", inputs),)
    )


def _list_view(setting: ListSetting, settings: CommunitySettings) -> SettingView:
    usage, what = _usage(setting.name)
    entries: tuple[str, ...] = getattr(settings, setting.field)
    items = tuple((entry, Form("remove", "Remove", hidden=(("item", entry),))) for entry in entries)
    forms = [Form("add", "Add", (Input("item", setting.item, placeholder=f"{setting.item}"),))]
    if setting.clear_action:
        forms.append(Form("clear", f"Clear the list ({setting.cleared})"))
    current = f"{len(entries)} {setting.item}{'' if len(entries) == 1 else 's'}"
    if setting.name == "channels" and not entries:
        current = "every channel"
    return SettingView(
        setting.name,
        what,
        usage,
        current,
        items,
        tuple(forms),
        platform_admins_only=setting.needs_platform_admin,
    )


def setting_views(settings: CommunitySettings, catalog: Catalog) -> list[SettingView]:
    """Every setting the admin commands change, in the order they are described."""
    views = [_value_view(s, settings, catalog) for s in VALUE_SETTINGS.values()]
    views += [_list_view(s, settings) for s in LIST_SETTINGS.values()]
    return views


def change_from_form(name: str, op: str, form: Mapping[str, str]) -> SettingsChange:
    """The change a posted form asks for, read by the chat commands' grammar; InvalidRequest with
    the grammar's message when a value is wrong."""

    def field(key: str) -> str:
        return str(form.get(key, "")).strip()

    if name == "limits":
        role = field("key") or None
        if op == "clear":
            return Clear(LIMITS, role)
        if op == "set":
            return limits_change({k: field(k) for k in LIMIT_FIELDS if field(k)}, role)
    elif name == "channel-safety" and op == "set":
        if not field("key"):
            raise InvalidRequest("Please give a channel.")
        return channel_safety_change(field("key"), field("value") or None)
    elif name in VALUE_SETTINGS and op == "set":
        if not field("value"):
            raise InvalidRequest(f"Please give a value for {name}.")
        return value_change(name, field("value"))
    elif name in LIST_SETTINGS:
        setting = LIST_SETTINGS[name]
        if op == "add":
            return AddItem(setting, field("item"))
        if op == "remove":
            return RemoveItem(setting, field("item"))
        if op == "clear" and setting.clear_action:
            return Clear(setting)
    raise InvalidRequest("That form does not change a known setting.")
