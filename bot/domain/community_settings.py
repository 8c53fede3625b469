"""A community's settings, each described once: its name as admins type it on every platform,
the field it is stored in, its audit actions, how a value is checked, and its audit line."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.domain.catalog import Catalog
from bot.domain.errors import InvalidRequest
from bot.domain.limits import UNLIMITED, format_rate
from bot.domain.models import OUTPUT_FORMATS, CommunitySettings, Limits
from bot.domain.safety import parse_level

MAX_BLOCKED_TERMS = 500
MAX_TERM_CHARS = 100


def _norm_id(value: str, what: str) -> str:
    value = value.strip()
    if not value or len(value) > 100:
        raise InvalidRequest(f"Please give a {what}.")
    return value


def limit_text(value: int | float | None, unit: str = "") -> str:
    if value is None:
        return "the bot default"
    if value == UNLIMITED:
        return "unlimited"
    return f"{value}{unit}"


def money_text(usd: float | None) -> str:
    if usd is None or usd == UNLIMITED:
        return limit_text(usd)
    return f"${usd:.2f}"


def describe_limits(limits: Limits, *, only_set: bool = False) -> str:
    parts: list[str] = []
    if limits.rate is not None or not only_set:
        parts.append(f"rate {format_rate(limits.rate, limits.period or 60.0)}")
    for name, label in (("burst", "burst"), ("daily", "daily"), ("max_in_flight", "in progress")):
        value = getattr(limits, name)
        if value is not None or not only_set:
            parts.append(f"{label} {limit_text(value)}")
    return ", ".join(parts) or "no change"


def _count(value: int | None, what: str) -> int | None:
    if value is not None and value != UNLIMITED and not 0 <= value <= 1_000_000:
        raise InvalidRequest(f"{what} must be a whole number from 0 to 1,000,000 (or unlimited).")
    return value


def _budget(usd: float | None) -> float | None:
    if usd is not None and usd != UNLIMITED and not 0 <= usd <= 1_000_000:
        raise InvalidRequest("The budget is 0 to 1,000,000 US dollars a day (or unlimited).")
    return usd


def _limits(new: Limits) -> Limits:
    _count(new.rate, "The rate")
    _count(new.burst, "The burst")
    _count(new.daily, "The daily quota")
    _count(new.max_in_flight, "The in-progress cap")
    if new.rate is not None and new.rate != UNLIMITED and new.rate < 1:
        raise InvalidRequest("The rate is at least 1 image per period (or unlimited).")
    if new.period is not None and not 1 <= new.period <= 86_400:
        raise InvalidRequest("The rate's period is 1 second to 1 day.")
    if new.burst is not None and new.burst == 0:
        raise InvalidRequest("The burst is at least 1.")
    return new


def _on_off(value: bool) -> str:
    return "on" if value else "off"


@dataclass(frozen=True, eq=False)
class ValueSetting:
    """A setting holding one value, or one value per channel or role (``keyed_by``).

    ``check`` returns the value to store (raises InvalidRequest); ``text`` is the audit line of a
    change to ``value`` (for ``key``). A keyed value of ``None`` removes that key's own value.
    """

    name: str
    field: str
    action: str
    check: Callable[[Any, Catalog], Any]
    text: Callable[[Any, str | None], str]
    keyed_by: str | None = None

    def set(
        self, settings: CommunitySettings, value: Any, key: str | None, catalog: Catalog
    ) -> CommunitySettings:
        if self.keyed_by is None:
            return settings.evolve(**{self.field: self.check(value, catalog)})
        values = dict(getattr(settings, self.field))
        key = _norm_id(key or "", self.keyed_by)
        if value is None:
            values.pop(key, None)
        else:
            values[key] = self.check(value, catalog)
        return settings.evolve(**{self.field: values})


class LimitsSetting(ValueSetting):
    """Per-user limits for everyone (no key) or a role's override (keyed by role). Fields of the
    new ``Limits`` left ``None`` keep their value; clearing goes back to the defaults."""

    clear_action = "clear_user_limits"

    def set(
        self, settings: CommunitySettings, value: Any, key: str | None, catalog: Catalog
    ) -> CommunitySettings:
        new = _limits(value)
        if key is None:
            return settings.evolve(user_limits=new.over(settings.user_limits))
        role = _norm_id(key, "role")
        roles = dict(settings.role_limits)
        roles[role] = new.over(roles.get(role, Limits()))
        return settings.evolve(role_limits=roles)

    def clear(self, settings: CommunitySettings, key: str | None) -> CommunitySettings:
        if key is None:
            return settings.evolve(user_limits=Limits())
        roles = {r: v for r, v in settings.role_limits.items() if r != key}
        return settings.evolve(role_limits=roles)

    def cleared_text(self, key: str | None) -> str:
        if key is None:
            return "user limits back to the bot defaults"
        return f"limit override of role {key} removed"


def _channel_safety_text(level: str | None, channel: str | None) -> str:
    if level is None:
        return f"channel {channel}: own safety level cleared"
    return f"channel {channel}: safety level set to {parse_level(level).name}"


def _limits_text(limits: Limits, role: str | None) -> str:
    who = f"role {role}" if role else "every user"
    return f"limits for {who}: {describe_limits(limits, only_set=True)}"


SAFETY = ValueSetting(
    "safety",
    "safety_level",
    "safety_level",
    check=lambda level, _: parse_level(level).name,
    text=lambda level, _: f"safety level set to {parse_level(level).name}",
)
CHANNEL_SAFETY = ValueSetting(
    "channel-safety",
    "channel_safety",
    "channel_safety",
    check=lambda level, _: parse_level(level).name,
    text=_channel_safety_text,
    keyed_by="channel",
)
LIMITS = LimitsSetting(
    "limits",
    "user_limits",
    "user_limits",
    check=lambda limits, _: _limits(limits),
    text=_limits_text,
    keyed_by="role",
)
SERVER_DAILY = ValueSetting(
    "server-daily",
    "community_daily",
    "community_daily",
    check=lambda images, _: _count(images, "The daily quota"),
    text=lambda images, _: f"server daily quota set to {limit_text(images, ' images')}",
)
BUDGET = ValueSetting(
    "budget",
    "community_budget_usd",
    "budget",
    check=lambda usd, _: _budget(usd),
    text=lambda usd, _: f"server daily budget set to {money_text(usd)}",
)
DEFAULT_MODEL = ValueSetting(
    "model",
    "default_variant",
    "default_model",
    check=lambda name, catalog: catalog.resolve(name).name if name else None,
    text=lambda name, _: f"default model set to {name or 'the bot default'}",
)


def _format(name: str | None) -> str | None:
    if name is None:
        return None
    if name not in OUTPUT_FORMATS:
        raise InvalidRequest(f"The format is one of {', '.join(OUTPUT_FORMATS)}; got {name!r}.")
    return name


DEFAULT_FORMAT = ValueSetting(
    "format",
    "default_format",
    "default_format",
    check=lambda name, _: _format(name),
    text=lambda name, _: f"default image format set to {name or 'the bot default (jpeg)'}",
)
DEFAULT_ENHANCE = ValueSetting(
    "enhance",
    "default_enhance",
    "default_enhance",
    check=lambda on, _: bool(on),
    text=lambda on, _: f"prompt upsampling by default {_on_off(on)}",
)
INPUT_IMAGES = ValueSetting(
    "input-images",
    "allow_input_images",
    "input_images",
    check=lambda on, _: bool(on),
    text=lambda on, _: f"input images {_on_off(on)}",
)
CACHE = ValueSetting(
    "cache",
    "allow_cache",
    "cache",
    check=lambda on, _: bool(on),
    text=lambda on, _: f"cache {_on_off(on)}",
)
PRIVATE = ValueSetting(
    "private",
    "allow_private",
    "private",
    check=lambda on, _: bool(on),
    text=lambda on, _: f"private images {_on_off(on)}",
)
ADMINS_EXEMPT = ValueSetting(
    "admins-exempt",
    "admins_exempt",
    "admins_exempt",
    check=lambda on, _: bool(on),
    text=lambda on, _: "admins skip user limits" if on else "admins follow user limits",
)


@dataclass(frozen=True, eq=False)
class ListSetting:
    """A setting holding a list: allowed channels, blocked terms, banned users, admin roles and
    users. ``item`` names one entry for messages; ``added``/``removed``/``cleared`` are the audit
    lines (``{}`` is the entry). Changes to the admin lists need the platform's own admins."""

    name: str
    field: str
    item: str
    add_action: str
    remove_action: str
    added: str
    removed: str
    clear_action: str = ""
    cleared: str = ""
    needs_platform_admin: bool = False

    def normalize(self, item: str) -> str:
        return _norm_id(item, self.item)

    def shown(self, item: str) -> str:
        return item

    def add(self, settings: CommunitySettings, item: str) -> CommunitySettings:
        entry = self.normalize(item)
        current: tuple[str, ...] = getattr(settings, self.field)
        if entry in current:
            return settings
        return settings.evolve(**{self.field: (*current, entry)})

    def remove(self, settings: CommunitySettings, item: str) -> CommunitySettings:
        entry = self.normalize(item)
        current: tuple[str, ...] = getattr(settings, self.field)
        return settings.evolve(**{self.field: tuple(e for e in current if e != entry)})

    def clear(self, settings: CommunitySettings, key: str | None) -> CommunitySettings:
        return settings.evolve(**{self.field: ()})

    def cleared_text(self, key: str | None) -> str:
        return self.cleared


class AllowedChannels(ListSetting):
    """An empty list allows every channel, so the list is never emptied by removing from it."""

    def remove(self, settings: CommunitySettings, item: str) -> CommunitySettings:
        channel = self.normalize(item)
        if channel not in settings.allowed_channels:
            if not settings.allowed_channels:
                raise InvalidRequest(
                    "Every channel is allowed now. Allow the channels /imagine should work in; "
                    "the others are then closed."
                )
            return settings
        remaining = tuple(c for c in settings.allowed_channels if c != channel)
        if not remaining:
            raise InvalidRequest(
                "That is the last allowed channel; an empty list would allow every channel. "
                "Allow another channel first, or allow every channel (channels allow-all)."
            )
        return settings.evolve(allowed_channels=remaining)


class BlockedTerms(ListSetting):
    """Terms are matched after normalization, so entries compare without case and spacing."""

    def normalize(self, item: str) -> str:
        term = " ".join(item.split())
        if not term or len(term) > MAX_TERM_CHARS:
            raise InvalidRequest(f"A blocked term is 1 to {MAX_TERM_CHARS} characters.")
        return term

    def shown(self, item: str) -> str:
        # The audit log is for admins, who may see the term.
        return repr(" ".join(item.split()))

    def add(self, settings: CommunitySettings, item: str) -> CommunitySettings:
        term = self.normalize(item)
        if term.casefold() in {t.casefold() for t in settings.blocked_terms}:
            return settings
        if len(settings.blocked_terms) >= MAX_BLOCKED_TERMS:
            raise InvalidRequest(f"The word list holds at most {MAX_BLOCKED_TERMS} terms.")
        return settings.evolve(blocked_terms=(*settings.blocked_terms, term))

    def remove(self, settings: CommunitySettings, item: str) -> CommunitySettings:
        wanted = " ".join(item.split()).casefold()
        kept = tuple(t for t in settings.blocked_terms if t.casefold() != wanted)
        if len(kept) == len(settings.blocked_terms):
            raise InvalidRequest("That term is not on this community's word list.")
        return settings.evolve(blocked_terms=kept)


CHANNELS = AllowedChannels(
    "channels",
    "allowed_channels",
    "channel",
    add_action="allow_channel",
    remove_action="disallow_channel",
    added="channel {} allowed",
    removed="channel {} no longer allowed",
    clear_action="allow_all_channels",
    cleared="every channel allowed",
)
BLOCKED_TERMS = BlockedTerms(
    "blocked",
    "blocked_terms",
    "term",
    add_action="block_term",
    remove_action="unblock_term",
    added="blocked term added: {}",
    removed="blocked term removed: {}",
    clear_action="clear_blocked_terms",
    cleared="word list emptied",
)
BANNED_USERS = ListSetting(
    "banned",
    "banned_users",
    "user",
    add_action="ban",
    remove_action="unban",
    added="user {} banned from /imagine",
    removed="user {} unbanned",
    clear_action="unban_all",
    cleared="every user unbanned",
)
ADMIN_ROLES = ListSetting(
    "admin-roles",
    "admin_roles",
    "role",
    add_action="add_admin_role",
    remove_action="remove_admin_role",
    added="role {} made bot admin",
    removed="role {} no longer bot admin",
    clear_action="clear_admin_roles",
    cleared="no role is bot admin",
    needs_platform_admin=True,
)
ADMIN_USERS = ListSetting(
    "admin-users",
    "admin_users",
    "user",
    add_action="add_admin_user",
    remove_action="remove_admin_user",
    added="user {} made bot admin",
    removed="user {} no longer bot admin",
    clear_action="clear_admin_users",
    cleared="no user is bot admin",
    needs_platform_admin=True,
)

VALUE_SETTINGS: Mapping[str, ValueSetting] = {
    s.name: s
    for s in (
        SAFETY,
        CHANNEL_SAFETY,
        LIMITS,
        SERVER_DAILY,
        BUDGET,
        DEFAULT_MODEL,
        DEFAULT_FORMAT,
        DEFAULT_ENHANCE,
        INPUT_IMAGES,
        CACHE,
        ADMINS_EXEMPT,
        PRIVATE,
    )
}
LIST_SETTINGS: Mapping[str, ListSetting] = {
    s.name: s for s in (CHANNELS, BLOCKED_TERMS, BANNED_USERS, ADMIN_ROLES, ADMIN_USERS)
}
SETTINGS: Mapping[str, ValueSetting | ListSetting] = {**VALUE_SETTINGS, **LIST_SETTINGS}
