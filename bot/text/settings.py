"""The one settings grammar: a community setting as admins type it (console ``/settings``, Slack
``/imagine-admin``) or pick it (Discord ``/imagine-admin`` options), into a typed change or a view.

``parse_settings_command("blocked add dragon")`` -> ``AddItem(BLOCKED_TERMS, "dragon")``; ``""`` ->
``ShowSettings()``. Discord's typed options go through ``value_change`` and ``limits_change``, so
every platform uses the same names and the same checks. The service decides who may do what.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from bot.domain.community import AddItem, Clear, RemoveItem, SettingsChange, SetValue
from bot.domain.community_settings import (
    ADMIN_ROLES,
    ADMIN_USERS,
    BANNED_USERS,
    BLOCKED_TERMS,
    CHANNEL_SAFETY,
    CHANNELS,
    LIMITS,
    VALUE_SETTINGS,
    ListSetting,
)
from bot.domain.errors import InvalidRequest
from bot.domain.limits import UNLIMITED, parse_rate
from bot.domain.models import Limits
from bot.text.flags import parse_format

# (usage, what it does): the help text and each command's usage line.
USAGE = (
    ("show", "this community's settings"),
    ("audit [count]", "the newest audit log entries"),
    ("safety strict|standard|relaxed|adult|0-6", "the community's safety level"),
    ("channel-safety <channel> <level>|clear", "a channel's own safety level"),
    ("channels allow <channel> | disallow <channel> | allow-all", "where /imagine works"),
    ("blocked add <term> | remove <term> | list", "the community's word list"),
    ("ban <user> | unban <user>", "who may not use /imagine"),
    (
        "limits [role=<role>] [rate=5/minute] [burst=N] [daily=N|off] [in-flight=N|off]",
        "per-user limits, for everyone or a role",
    ),
    ("limits reset [<role>]", "per-user limits back to the bot defaults"),
    ("server-daily <images>|off|default", "images per day for the whole community"),
    ("budget <usd>|off|default", "US dollars per day for the whole community"),
    ("model <name>|default", "the model used when a request names none"),
    ("format jpeg|png|webp|default", "the image format when a request names none"),
    ("enhance on|off", "prompt upsampling when a request does not say (where offered)"),
    ("input-images on|off", "whether /imagine takes images to edit"),
    ("cache on|off", "whether seeded requests may reuse a stored image"),
    ("admins-exempt on|off", "whether admins skip the per-user limits"),
    ("private on|off", "whether users may ask for private images (seen by them only)"),
    ("admin-roles add <role> | remove <role>", "bot admins by role (platform admins only)"),
    ("admin-users add <user> | remove <user>", "bot admins by user (platform admins only)"),
)
# Other spellings, kept because each platform once had its own grammar: the first word becomes
# the words given.
ALIASES = {
    "settings": ("show",),
    "allow": ("channels", "allow"),
    "disallow": ("channels", "disallow"),
    "allow-all": ("channels", "allow-all"),
    "block": ("blocked", "add"),
    "unblock": ("blocked", "remove"),
    "terms": ("blocked",),
    "admins": ("admin-users",),
    "images": ("input-images",),
    "workspace-daily": ("server-daily",),
}
_OFF = ("off", "none", "unlimited", "no-limit")
_SWITCH = {
    **dict.fromkeys(("on", "yes", "true", "enable", "enabled"), True),
    **dict.fromkeys(("off", "no", "false", "disable", "disabled"), False),
}
_LIST_VERBS = {"add": "add", "allow": "add", "remove": "remove", "disallow": "remove"}
_CLEAR_VERBS = ("allow-all", "all")
_LIMIT_NAMES = {
    "rate": "rate",
    "burst": "burst",
    "daily": "daily",
    "in-flight": "in-flight",
    "inflight": "in-flight",
    "max-in-flight": "in-flight",
    "in-progress": "in-flight",
    "role": "role",
}


def settings_help(command: str) -> str:
    width = 40
    return "\n".join(
        f"{command} {usage:<{width}} {what}" if len(usage) <= width else f"{command} {usage}"
        for usage, what in USAGE
    )


def usage(verb: str) -> str:
    lines = [u for u, _ in USAGE if u.split()[0] == verb]
    return "Usage: " + "  |  ".join(lines)


class Mentions(Protocol):
    """How a platform writes users, channels and roles in text (Slack: ``<@U123|name>``)."""

    def user(self, word: str) -> str: ...

    def channel(self, word: str) -> str: ...

    def role(self, word: str) -> str: ...


class PlainIds:
    """Ids written as they are (the console)."""

    def user(self, word: str) -> str:
        return word

    def channel(self, word: str) -> str:
        return word

    def role(self, word: str) -> str:
        return word


@dataclass(frozen=True)
class ShowSettings:
    pass


@dataclass(frozen=True)
class ListBlockedTerms:
    pass


@dataclass(frozen=True)
class ShowAudit:
    limit: int = 20


@dataclass(frozen=True)
class ShowSettingsHelp:
    pass


SettingsCommand = SettingsChange | ShowSettings | ListBlockedTerms | ShowAudit | ShowSettingsHelp


# Values ------------------------------------------------------------------------------------------


def parse_switch(word: str, name: str) -> bool:
    try:
        return _SWITCH[word.strip().lower()]
    except KeyError:
        raise InvalidRequest(f"{name} is on or off; got {word!r}.") from None


def parse_count(word: str, name: str) -> int:
    """A whole number, or ``off``/``unlimited`` (stored as UNLIMITED)."""
    lowered = word.strip().lower()
    if lowered in _OFF:
        return UNLIMITED
    if not lowered.isdigit():
        raise InvalidRequest(f"{name} is a whole number or off; got {word!r}.")
    return int(lowered)


def parse_money(word: str) -> float | None:
    """US dollars a day, ``off`` (UNLIMITED) or ``default`` (None: the bot's default applies)."""
    lowered = word.strip().lower().removeprefix("$")
    if lowered == "default":
        return None
    if lowered in _OFF:
        return float(UNLIMITED)
    try:
        return float(lowered)
    except ValueError:
        raise InvalidRequest(
            f"The budget is an amount in US dollars like 5 or 2.50; got {word!r}."
        ) from None


def _or_default(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    return lambda word: None if word.strip().lower() == "default" else parse(word)


# How the value of each one-value setting is read from a word.
VALUES: Mapping[str, Callable[[str], Any]] = {
    "safety": str.strip,
    "server-daily": _or_default(lambda w: parse_count(w, "server-daily")),
    "budget": parse_money,
    "model": _or_default(str.strip),
    "format": _or_default(parse_format),
    "enhance": lambda w: parse_switch(w, "enhance"),
    "input-images": lambda w: parse_switch(w, "input-images"),
    "cache": lambda w: parse_switch(w, "cache"),
    "admins-exempt": lambda w: parse_switch(w, "admins-exempt"),
    "private": lambda w: parse_switch(w, "private"),
}


def value_change(name: str, word: str) -> SetValue:
    """``value_change("server-daily", "40")``: the change of a one-value setting by name."""
    return SetValue(VALUE_SETTINGS[name], VALUES[name](word))


def channel_safety_change(channel: str, level: str | None) -> SetValue:
    """``level`` None (or ``clear``/``default``): the channel follows the community's level."""
    if level is not None and level.strip().lower() in ("clear", "default", "none"):
        level = None
    return SetValue(CHANNEL_SAFETY, level, key=channel)


def limits_change(values: Mapping[str, str], role: str | None = None) -> SetValue:
    """``{"rate": "5/minute", "daily": "off"}`` for everyone or ``role``; unnamed limits keep
    their value. Names: rate, burst, daily, in-flight."""
    if not values:
        raise InvalidRequest(usage("limits"))
    rate: int | None = None
    period: float | None = None
    counts: dict[str, int] = {}
    for name, value in values.items():
        if name == "rate":
            try:
                parsed = parse_rate(value)
            except ValueError as exc:
                raise InvalidRequest(f"rate: {exc}.") from None
            rate, period = parsed if parsed else (UNLIMITED, None)
        elif name in ("burst", "daily", "in-flight"):
            counts[name] = parse_count(value, name)
        else:
            raise InvalidRequest(f"Unknown limit {name!r}: use rate, burst, daily or in-flight.")
    limits = Limits(
        rate=rate,
        period=period,
        burst=counts.get("burst"),
        daily=counts.get("daily"),
        max_in_flight=counts.get("in-flight"),
    )
    return SetValue(LIMITS, limits, key=role)


# Text --------------------------------------------------------------------------------------------


def _one(rest: list[str], verb: str) -> str:
    if len(rest) != 1:
        raise InvalidRequest(usage(verb))
    return rest[0]


def parse_settings_command(text: str, ids: Mentions | None = None) -> SettingsCommand:
    """Read a settings command; raises InvalidRequest with the usage line when it is wrong."""
    ids = ids or PlainIds()
    words = text.split()
    if not words:
        return ShowSettings()
    verb, rest = words[0].lower(), words[1:]
    if verb in ALIASES:
        verb, *expanded = ALIASES[verb]
        rest = [*expanded, *rest]
    if verb == "show":
        return ShowSettings()
    if verb in ("help", "-h", "--help"):
        return ShowSettingsHelp()
    if verb == "audit":
        if len(rest) > 1 or (rest and not rest[0].isdigit()):
            raise InvalidRequest(usage("audit"))
        return ShowAudit(int(rest[0]) if rest else 20)
    if verb in VALUES:
        return value_change(verb, _one(rest, verb))
    if verb == "channel-safety":
        if len(rest) != 2:
            raise InvalidRequest(usage(verb))
        return channel_safety_change(ids.channel(rest[0]), rest[1])
    if verb == "limits":
        return _limits(rest, ids)
    if verb in ("ban", "unban"):
        user = ids.user(_one(rest, "ban"))
        return AddItem(BANNED_USERS, user) if verb == "ban" else RemoveItem(BANNED_USERS, user)
    lists: dict[str, tuple[ListSetting, Callable[[str], str]]] = {
        "channels": (CHANNELS, ids.channel),
        "blocked": (BLOCKED_TERMS, str),
        "admin-roles": (ADMIN_ROLES, ids.role),
        "admin-users": (ADMIN_USERS, ids.user),
    }
    if verb in lists:
        return _list_change(verb, rest, *lists[verb])
    raise InvalidRequest(f"Unknown setting {verb!r}. Settings:\n{settings_help('')}")


def _list_change(
    verb: str, rest: list[str], setting: ListSetting, read: Callable[[str], str]
) -> SettingsCommand:
    sub = rest[0].lower() if rest else ""
    if setting is BLOCKED_TERMS and sub in ("", "list"):
        return ListBlockedTerms()
    if setting is CHANNELS and sub in _CLEAR_VERBS and len(rest) == 1:
        return Clear(CHANNELS)
    kind = _LIST_VERBS.get(sub)
    if kind is None or (setting is CHANNELS) != (sub in ("allow", "disallow")):
        raise InvalidRequest(usage(verb))
    if setting is BLOCKED_TERMS:
        item = " ".join(rest[1:])
        if not item:
            raise InvalidRequest(usage(verb))
    else:
        item = read(_one(rest[1:], verb))
    return AddItem(setting, item) if kind == "add" else RemoveItem(setting, item)


def _limits(rest: list[str], ids: Mentions) -> SettingsChange:
    """``limits rate=5/minute daily=50`` or ``limits rate 5/minute daily 50``; ``limits reset``."""
    if rest and rest[0].lower() == "reset":
        if len(rest) > 2:
            raise InvalidRequest(usage("limits"))
        return Clear(LIMITS, ids.role(rest[1]) if len(rest) == 2 else None)
    values: dict[str, str] = {}
    role: str | None = None
    words = list(rest)
    while words:
        word = words.pop(0)
        key, sep, value = word.partition("=")
        if not sep:
            if not words:
                raise InvalidRequest(
                    f"Give limits as name=value, like rate=5/minute; {word!r} has no value."
                )
            value = words.pop(0)
        key = key.lower().replace("_", "-")
        if not value:
            raise InvalidRequest(f"Give limits as name=value, like rate=5/minute; got {word!r}.")
        name = _LIMIT_NAMES.get(key)
        if name is None:
            raise InvalidRequest(
                f"Unknown limit {key!r}: use rate, burst, daily, in-flight or role."
            )
        if name == "role":
            role = ids.role(value)
        else:
            values[name] = value
    return limits_change(values, role)
