"""Community administration: who may change settings, the changes, and the audit log entries.

Adapters turn an admin command into a ``SettingsChange`` (set a value, add to or remove from a
list, clear; the settings themselves are in ``bot.domain.community_settings``) and hand it, with the
``Actor`` who asked, to ``ImagineService.update_settings``. The service re-checks the actor's
permission itself (whatever the platform's command-permission UI says), applies the change, and
writes the change or the refusal to the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.domain.catalog import Catalog
from bot.domain.community_settings import LimitsSetting, ListSetting, ValueSetting
from bot.domain.models import CommunitySettings


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
    # Where a change was made: "" for a chat command, "dashboard" for the web dashboard.
    origin: str = ""


# The changes -------------------------------------------------------------------------------------
#
# Each change has ``action`` (a stable name, used in the audit log), ``apply`` (returns the new
# settings or raises InvalidRequest with a message for the admin), ``describe`` (one line for the
# admin and the log) and ``needs_platform_admin`` (changes to who the admins are: only the
# platform's own admins may make them, so a bot admin cannot promote others).


@dataclass(frozen=True)
class SetValue:
    """Set a value setting (for one channel or role when ``key`` is given; ``None`` clears it)."""

    setting: ValueSetting
    value: Any
    key: str | None = None
    needs_platform_admin = False

    @property
    def action(self) -> str:
        return self.setting.action

    def apply(self, settings: CommunitySettings, catalog: Catalog) -> CommunitySettings:
        return self.setting.set(settings, self.value, self.key, catalog)

    def describe(self) -> str:
        return self.setting.text(self.value, self.key)


@dataclass(frozen=True)
class AddItem:
    setting: ListSetting
    item: str

    @property
    def action(self) -> str:
        return self.setting.add_action

    @property
    def needs_platform_admin(self) -> bool:
        return self.setting.needs_platform_admin

    def apply(self, settings: CommunitySettings, catalog: Catalog) -> CommunitySettings:
        return self.setting.add(settings, self.item)

    def describe(self) -> str:
        return self.setting.added.format(self.setting.shown(self.item))


@dataclass(frozen=True)
class RemoveItem:
    setting: ListSetting
    item: str

    @property
    def action(self) -> str:
        return self.setting.remove_action

    @property
    def needs_platform_admin(self) -> bool:
        return self.setting.needs_platform_admin

    def apply(self, settings: CommunitySettings, catalog: Catalog) -> CommunitySettings:
        return self.setting.remove(settings, self.item)

    def describe(self) -> str:
        return self.setting.removed.format(self.setting.shown(self.item))


@dataclass(frozen=True)
class Clear:
    """Back to the start: an empty list, or the default limits (of one role, with ``key``)."""

    setting: ListSetting | LimitsSetting
    key: str | None = None

    @property
    def action(self) -> str:
        return self.setting.clear_action

    @property
    def needs_platform_admin(self) -> bool:
        return isinstance(self.setting, ListSetting) and self.setting.needs_platform_admin

    def apply(self, settings: CommunitySettings, catalog: Catalog) -> CommunitySettings:
        return self.setting.clear(settings, self.key)

    def describe(self) -> str:
        return self.setting.cleared_text(self.key)


SettingsChange = SetValue | AddItem | RemoveItem | Clear


@dataclass(frozen=True)
class SettingsChanged:
    """The outcome of an accepted change: the settings as now stored and a line for the admin."""

    settings: CommunitySettings
    message: str
