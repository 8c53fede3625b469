"""Community administration: who may change settings, the typed changes, and the audit log entries.

Adapters turn an admin command into one of the ``SettingsChange`` values below and hand it, with the
``Actor`` who asked, to ``ImagineService.update_settings``. The service re-checks the actor's
permission itself (whatever the platform's command-permission UI says), applies the change, and
writes the change or the refusal to the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.catalog import Catalog
from bot.domain.errors import InvalidRequest
from bot.domain.limits import UNLIMITED, format_rate
from bot.domain.models import CommunitySettings, Limits
from bot.domain.safety import parse_level

MAX_BLOCKED_TERMS = 500
MAX_TERM_CHARS = 100


@dataclass(frozen=True)
class Actor:
    """Who asks for an admin action, as the platform reports them.

    ``is_platform_admin`` is the platform's own word (Discord ``Manage Server`` / administrator
    permission of the member, Slack workspace admin or owner); the community's ``admin_roles`` and
    ``admin_users`` add more admins on top.
    """

    user_id: str
    role_ids: tuple[str, ...] = ()
    is_platform_admin: bool = False
    name: str | None = None


def is_admin(actor: Actor, settings: CommunitySettings) -> bool:
    return (
        actor.is_platform_admin
        or actor.user_id in settings.admin_users
        or bool(set(actor.role_ids) & set(settings.admin_roles))
    )


@dataclass(frozen=True)
class AuditEntry:
    """One line of a community's audit log: who did (or was refused) what, when.

    ``kind``: ``change`` (a settings change), ``denied`` (a settings change by a non-admin),
    ``refusal`` (a request refused by policy: banned, channel, word list, limits).
    """

    community_id: str
    at: float
    actor_id: str
    kind: str
    action: str
    detail: str = ""
    channel_id: str | None = None
    id: int | None = None


# The changes -------------------------------------------------------------------------------------
#
# Each change is a frozen value with ``action`` (a stable name, used in the audit log), ``apply``
# (returns the new settings or raises InvalidRequest with a message for the admin) and ``describe``
# (one line for the admin and the log). ``needs_platform_admin`` marks changes to who the admins
# are: only the platform's own admins may make them, so a bot admin cannot promote others.


def _norm_id(value: str, what: str) -> str:
    value = value.strip()
    if not value or len(value) > 100:
        raise InvalidRequest(f"Please give a {what}.")
    return value


def _limit_text(value: int | float | None, unit: str = "") -> str:
    if value is None:
        return "the bot default"
    if value == UNLIMITED:
        return "unlimited"
    return f"{value}{unit}"


def _check_count(value: int | None, what: str) -> None:
    if value is not None and value != UNLIMITED and not 0 <= value <= 1_000_000:
        raise InvalidRequest(f"{what} must be a whole number from 0 to 1,000,000 (or unlimited).")


@dataclass(frozen=True)
class SetSafetyLevel:
    """The community's safety level: strict, standard, relaxed, adult, or a raw tolerance 0-6."""

    level: str
    action = "safety_level"
    needs_platform_admin = False

    def apply(self, settings: CommunitySettings, catalog: Catalog) -> CommunitySettings:
        return settings.evolve(safety_level=parse_level(self.level).name)

    def describe(self) -> str:
        return f"safety level set to {parse_level(self.level).name}"


@dataclass(frozen=True)
class SetChannelSafety:
    """A channel's own safety level (``None`` clears it), within the community's level and the
    channel's cap (outside age-restricted channels at most ``standard``)."""

    channel_id: str
    level: str | None
    action = "channel_safety"
    needs_platform_admin = False

    def apply(self, settings: CommunitySettings, catalog: Catalog) -> CommunitySettings:
        channel = _norm_id(self.channel_id, "channel")
        levels = dict(settings.channel_safety)
        if self.level is None:
            levels.pop(channel, None)
        else:
            levels[channel] = parse_level(self.level).name
        return settings.evolve(channel_safety=levels)

    def describe(self) -> str:
        if self.level is None:
            return f"channel {self.channel_id}: own safety level cleared"
        return f"channel {self.channel_id}: safety level set to {parse_level(self.level).name}"


@dataclass(frozen=True)
class AllowChannel:
    """Add a channel to the allowed list (an empty list allows every channel)."""

    channel_id: str
    action = "allow_channel"
    needs_platform_admin = False

    def apply(self, settings: CommunitySettings, catalog: Catalog) -> CommunitySettings:
        channel = _norm_id(self.channel_id, "channel")
        if channel in settings.allowed_channels:
            return settings
        return settings.evolve(allowed_channels=(*settings.allowed_channels, channel))

    def describe(self) -> str:
        return f"channel {self.channel_id} allowed"


@dataclass(frozen=True)
class DisallowChannel:
    """Remove a channel from the allowed list."""

    channel_id: str
    action = "disallow_channel"
    needs_platform_admin = False

    def apply(self, settings: CommunitySettings, catalog: Catalog) -> CommunitySettings:
        channel = _norm_id(self.channel_id, "channel")
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
                "Allow another channel first, or use 'allow all channels'."
            )
        return settings.evolve(allowed_channels=remaining)

    def describe(self) -> str:
        return f"channel {self.channel_id} no longer allowed"


@dataclass(frozen=True)
class AllowAllChannels:
    """Clear the allowed list: /imagine works in every channel."""

    action = "allow_all_channels"
    needs_platform_admin = False

    def apply(self, settings: CommunitySettings, catalog: Catalog) -> CommunitySettings:
        return settings.evolve(allowed_channels=())

    def describe(self) -> str:
        return "every channel allowed"


@dataclass(frozen=True)
class BlockTerm:
    """Add a term to the community's word list (matched after normalization, on word bounds)."""

    term: str
    action = "block_term"
    needs_platform_admin = False

    def apply(self, settings: CommunitySettings, catalog: Catalog) -> CommunitySettings:
        term = " ".join(self.term.split())
        if not term or len(term) > MAX_TERM_CHARS:
            raise InvalidRequest(f"A blocked term is 1 to {MAX_TERM_CHARS} characters.")
        if term.casefold() in {t.casefold() for t in settings.blocked_terms}:
            return settings
        if len(settings.blocked_terms) >= MAX_BLOCKED_TERMS:
            raise InvalidRequest(f"The word list holds at most {MAX_BLOCKED_TERMS} terms.")
        return settings.evolve(blocked_terms=(*settings.blocked_terms, term))

    def describe(self) -> str:
        # The audit log is for admins, who may see the term.
        return f"blocked term added: {' '.join(self.term.split())!r}"


@dataclass(frozen=True)
class UnblockTerm:
    term: str
    action = "unblock_term"
    needs_platform_admin = False

    def apply(self, settings: CommunitySettings, catalog: Catalog) -> CommunitySettings:
        wanted = " ".join(self.term.split()).casefold()
        kept = tuple(t for t in settings.blocked_terms if t.casefold() != wanted)
        if len(kept) == len(settings.blocked_terms):
            raise InvalidRequest("That term is not on this community's word list.")
        return settings.evolve(blocked_terms=kept)

    def describe(self) -> str:
        return f"blocked term removed: {' '.join(self.term.split())!r}"


@dataclass(frozen=True)
class BanUser:
    user_id: str
    action = "ban"
    needs_platform_admin = False

    def apply(self, settings: CommunitySettings, catalog: Catalog) -> CommunitySettings:
        user = _norm_id(self.user_id, "user")
        if user in settings.banned_users:
            return settings
        return settings.evolve(banned_users=(*settings.banned_users, user))

    def describe(self) -> str:
        return f"user {self.user_id} banned from /imagine"


@dataclass(frozen=True)
class UnbanUser:
    user_id: str
    action = "unban"
    needs_platform_admin = False

    def apply(self, settings: CommunitySettings, catalog: Catalog) -> CommunitySettings:
        user = _norm_id(self.user_id, "user")
        return settings.evolve(banned_users=tuple(u for u in settings.banned_users if u != user))

    def describe(self) -> str:
        return f"user {self.user_id} unbanned"


@dataclass(frozen=True)
class SetUserLimits:
    """Per-user limits for everyone (``role_id`` None) or for one role's members (an override).

    Fields left ``None`` keep their current value; ``UNLIMITED`` (-1) lifts a limit. The rate is
    ``rate`` images per ``period`` seconds (``bot.domain.limits.parse_rate("5/minute")`` gives both).
    """

    limits: Limits
    role_id: str | None = None
    action = "user_limits"
    needs_platform_admin = False

    def apply(self, settings: CommunitySettings, catalog: Catalog) -> CommunitySettings:
        new = self.limits
        _check_count(new.rate, "The rate")
        _check_count(new.burst, "The burst")
        _check_count(new.daily, "The daily quota")
        _check_count(new.max_in_flight, "The in-progress cap")
        if new.rate is not None and new.rate != UNLIMITED and new.rate < 1:
            raise InvalidRequest("The rate is at least 1 image per period (or unlimited).")
        if new.period is not None and not 1 <= new.period <= 86_400:
            raise InvalidRequest("The rate's period is 1 second to 1 day.")
        if new.burst is not None and new.burst == 0:
            raise InvalidRequest("The burst is at least 1.")
        if self.role_id is None:
            return settings.evolve(user_limits=new.over(settings.user_limits))
        role = _norm_id(self.role_id, "role")
        roles = dict(settings.role_limits)
        roles[role] = new.over(roles.get(role, Limits()))
        return settings.evolve(role_limits=roles)

    def describe(self) -> str:
        who = f"role {self.role_id}" if self.role_id else "every user"
        return f"limits for {who}: {describe_limits(self.limits, only_set=True)}"


@dataclass(frozen=True)
class ClearUserLimits:
    """Back to the defaults: the community's user limits (``role_id`` None) or one role's override."""

    role_id: str | None = None
    action = "clear_user_limits"
    needs_platform_admin = False

    def apply(self, settings: CommunitySettings, catalog: Catalog) -> CommunitySettings:
        if self.role_id is None:
            return settings.evolve(user_limits=Limits())
        roles = {r: v for r, v in settings.role_limits.items() if r != self.role_id}
        return settings.evolve(role_limits=roles)

    def describe(self) -> str:
        if self.role_id is None:
            return "user limits back to the bot defaults"
        return f"limit override of role {self.role_id} removed"


@dataclass(frozen=True)
class SetCommunityDaily:
    """The community's daily image quota (``None``: the bot default; ``UNLIMITED``: none)."""

    images: int | None
    action = "community_daily"
    needs_platform_admin = False

    def apply(self, settings: CommunitySettings, catalog: Catalog) -> CommunitySettings:
        _check_count(self.images, "The daily quota")
        return settings.evolve(community_daily=self.images)

    def describe(self) -> str:
        return f"server daily quota set to {_limit_text(self.images, ' images')}"


@dataclass(frozen=True)
class SetBudget:
    """The community's daily spend budget in US dollars (``None``: default; ``UNLIMITED``: none)."""

    usd: float | None
    action = "budget"
    needs_platform_admin = False

    def apply(self, settings: CommunitySettings, catalog: Catalog) -> CommunitySettings:
        if self.usd is not None and self.usd != UNLIMITED and not 0 <= self.usd <= 1_000_000:
            raise InvalidRequest("The budget is 0 to 1,000,000 US dollars a day (or unlimited).")
        return settings.evolve(community_budget_usd=self.usd)

    def describe(self) -> str:
        if self.usd is None or self.usd == UNLIMITED:
            return f"server daily budget set to {_limit_text(self.usd)}"
        return f"server daily budget set to ${self.usd:.2f}"


@dataclass(frozen=True)
class SetAdminsExempt:
    exempt: bool
    action = "admins_exempt"
    needs_platform_admin = False

    def apply(self, settings: CommunitySettings, catalog: Catalog) -> CommunitySettings:
        return settings.evolve(admins_exempt=self.exempt)

    def describe(self) -> str:
        return "admins skip user limits" if self.exempt else "admins follow user limits"


@dataclass(frozen=True)
class SetDefaultModel:
    """The model used when a request names none (``None``: the catalog's default)."""

    variant: str | None
    action = "default_model"
    needs_platform_admin = False

    def apply(self, settings: CommunitySettings, catalog: Catalog) -> CommunitySettings:
        name = catalog.resolve(self.variant).name if self.variant else None
        return settings.evolve(default_variant=name)

    def describe(self) -> str:
        return f"default model set to {self.variant or 'the bot default'}"


@dataclass(frozen=True)
class SetInputImages:
    enabled: bool
    action = "input_images"
    needs_platform_admin = False

    def apply(self, settings: CommunitySettings, catalog: Catalog) -> CommunitySettings:
        return settings.evolve(allow_input_images=self.enabled)

    def describe(self) -> str:
        return f"input images {'on' if self.enabled else 'off'}"


@dataclass(frozen=True)
class SetCache:
    """Whether identical requests with an explicit seed may be served from the stored image."""

    enabled: bool
    action = "cache"
    needs_platform_admin = False

    def apply(self, settings: CommunitySettings, catalog: Catalog) -> CommunitySettings:
        return settings.evolve(allow_cache=self.enabled)

    def describe(self) -> str:
        return f"cache {'on' if self.enabled else 'off'}"


@dataclass(frozen=True)
class AddAdminRole:
    role_id: str
    action = "add_admin_role"
    needs_platform_admin = True

    def apply(self, settings: CommunitySettings, catalog: Catalog) -> CommunitySettings:
        role = _norm_id(self.role_id, "role")
        if role in settings.admin_roles:
            return settings
        return settings.evolve(admin_roles=(*settings.admin_roles, role))

    def describe(self) -> str:
        return f"role {self.role_id} made bot admin"


@dataclass(frozen=True)
class RemoveAdminRole:
    role_id: str
    action = "remove_admin_role"
    needs_platform_admin = True

    def apply(self, settings: CommunitySettings, catalog: Catalog) -> CommunitySettings:
        return settings.evolve(
            admin_roles=tuple(r for r in settings.admin_roles if r != self.role_id)
        )

    def describe(self) -> str:
        return f"role {self.role_id} no longer bot admin"


@dataclass(frozen=True)
class AddAdminUser:
    user_id: str
    action = "add_admin_user"
    needs_platform_admin = True

    def apply(self, settings: CommunitySettings, catalog: Catalog) -> CommunitySettings:
        user = _norm_id(self.user_id, "user")
        if user in settings.admin_users:
            return settings
        return settings.evolve(admin_users=(*settings.admin_users, user))

    def describe(self) -> str:
        return f"user {self.user_id} made bot admin"


@dataclass(frozen=True)
class RemoveAdminUser:
    user_id: str
    action = "remove_admin_user"
    needs_platform_admin = True

    def apply(self, settings: CommunitySettings, catalog: Catalog) -> CommunitySettings:
        return settings.evolve(
            admin_users=tuple(u for u in settings.admin_users if u != self.user_id)
        )

    def describe(self) -> str:
        return f"user {self.user_id} no longer bot admin"


SettingsChange = (
    SetSafetyLevel
    | SetChannelSafety
    | AllowChannel
    | DisallowChannel
    | AllowAllChannels
    | BlockTerm
    | UnblockTerm
    | BanUser
    | UnbanUser
    | SetUserLimits
    | ClearUserLimits
    | SetCommunityDaily
    | SetBudget
    | SetAdminsExempt
    | SetDefaultModel
    | SetInputImages
    | SetCache
    | AddAdminRole
    | RemoveAdminRole
    | AddAdminUser
    | RemoveAdminUser
)


@dataclass(frozen=True)
class SettingsChanged:
    """The outcome of an accepted change: the settings as now stored and a line for the admin."""

    settings: CommunitySettings
    message: str


def describe_limits(limits: Limits, *, only_set: bool = False) -> str:
    parts: list[str] = []
    if limits.rate is not None or not only_set:
        parts.append(f"rate {format_rate(limits.rate, limits.period or 60.0)}")
    for name, label in (("burst", "burst"), ("daily", "daily"), ("max_in_flight", "in progress")):
        value = getattr(limits, name)
        if value is not None or not only_set:
            parts.append(f"{label} {_limit_text(value)}")
    return ", ".join(parts) or "no change"


def describe_settings(settings: CommunitySettings) -> list[str]:
    """The settings as lines of plain text for an admin (blocked terms counted, not listed)."""
    channels = ", ".join(settings.allowed_channels) or "all"
    overrides = ", ".join(f"{c}: {lvl}" for c, lvl in settings.channel_safety.items()) or "none"
    lines = [
        f"Safety level: {settings.safety_level}",
        f"Channel safety levels: {overrides}",
        f"Allowed channels: {channels}",
        f"Blocked terms: {len(settings.blocked_terms)}",
        f"Banned users: {len(settings.banned_users)}",
        f"Admin roles: {', '.join(settings.admin_roles) or 'none'}; "
        f"admin users: {', '.join(settings.admin_users) or 'none'}",
        f"User limits: {describe_limits(settings.user_limits)}",
    ]
    for role, limits in settings.role_limits.items():
        lines.append(f"Role {role}: {describe_limits(limits, only_set=True)}")
    budget = settings.community_budget_usd
    lines += [
        f"Server daily quota: {_limit_text(settings.community_daily, ' images')}",
        "Server daily budget: "
        + (f"${budget:.2f}" if budget is not None and budget != UNLIMITED else _limit_text(budget)),
        f"Admins skip user limits: {'yes' if settings.admins_exempt else 'no'}",
        f"Default model: {settings.default_variant or 'the bot default'}",
        f"Input images: {'on' if settings.allow_input_images else 'off'}",
        f"Cache for seeded requests: {'on' if settings.allow_cache else 'off'}",
    ]
    return lines
