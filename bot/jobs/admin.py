"""Community administration: reading the settings, applying a typed change for an admin, the word
list and the audit log (whole, or a page of it). Every permission is re-checked here, and every
change, refused change and refused look is written to the audit log, with where it was made."""

from __future__ import annotations

from dataclasses import replace

from bot.domain.catalog import Catalog
from bot.domain.clock import Clock
from bot.domain.community import Actor, AuditEntry, SettingsChange, SettingsChanged, is_admin
from bot.domain.errors import PolicyRefusal
from bot.domain.models import CommunitySettings
from bot.domain.personal import is_personal
from bot.domain.policy import Policy
from bot.store import Store
from bot.store.base import AuditQuery

MAX_AUDIT_ENTRIES = 200


async def settings_of(store: Store, policy: Policy, community_id: str) -> CommunitySettings:
    """The community's settings (the defaults when it never changed any). Personal use has the
    bot's settings only: nobody administers it."""
    if is_personal(community_id):
        return policy.new_settings(community_id)
    return await store.get_settings(community_id) or policy.new_settings(community_id)


class Admin:
    def __init__(self, *, store: Store, catalog: Catalog, clock: Clock, policy: Policy) -> None:
        self._store = store
        self._catalog = catalog
        self._clock = clock
        self._policy = policy

    async def get_settings(self, community_id: str) -> CommunitySettings:
        """The community's settings (the defaults when it never changed any).

        Blocked terms and banned users are in there: show them to admins only (``describe_settings``
        in ``bot.domain.community`` counts them without listing them)."""
        return await settings_of(self._store, self._policy, community_id)

    async def is_admin(self, community_id: str, actor: Actor) -> bool:
        """Whether ``actor`` may change this community's settings (platform admin, or one of the
        community's admin roles or admin users)."""
        return is_admin(actor, await self.get_settings(community_id))

    async def update_settings(
        self, community_id: str, actor: Actor, change: SettingsChange, *, origin: str = ""
    ) -> SettingsChanged:
        """Apply one typed change (``bot.domain.community``) for ``actor`` and audit it.

        The permission is checked here, in the same transaction as the change, whatever the
        platform's own command permissions say: a non-admin gets PolicyRefusal(code="not_admin")
        and the attempt is written to the audit log. Changes to who the admins are need the
        platform's own admin flag. A change that does not make sense raises InvalidRequest with
        a message for the admin (nothing is written). ``origin`` marks where the change was made
        in the audit log ("dashboard"; "" for chat commands)."""
        if is_personal(community_id):
            raise PolicyRefusal(
                "Personal use follows the bot's own settings; change a server's settings there.",
                code="not_admin",
            )
        now = self._clock.now()
        description = change.describe()

        def apply(current: CommunitySettings | None) -> CommunitySettings:
            settings = current or self._policy.new_settings(community_id)
            if not is_admin(actor, settings):
                raise PolicyRefusal(
                    "Only this server's admins can change /imagine settings.", code="not_admin"
                )
            if change.needs_platform_admin and not actor.is_platform_admin:
                raise PolicyRefusal(
                    "Only the server's own administrators can change who the bot admins are.",
                    code="not_admin",
                )
            return change.apply(settings, self._catalog)

        entry = AuditEntry(
            community_id=community_id,
            at=now,
            actor_id=actor.user_id,
            kind="change",
            action=change.action,
            detail=description,
            origin=origin,
        )
        try:
            settings = await self._store.change_settings(community_id, apply, entry)
        except PolicyRefusal as refusal:
            await self._store.add_audit(
                AuditEntry(
                    community_id=community_id,
                    at=now,
                    actor_id=actor.user_id,
                    kind="denied",
                    action=change.action,
                    detail=f"refused ({refusal.code}): {description}",
                    origin=origin,
                )
            )
            raise
        return SettingsChanged(settings=settings, message=f"Done: {description}.")

    async def blocked_terms(self, community_id: str, actor: Actor) -> tuple[str, ...]:
        """The community's own word list, for admins only (the built-in list is not shown)."""
        settings = await self.get_settings(community_id)
        await self._require_admin(settings, actor, "list_blocked_terms")
        return settings.blocked_terms

    async def audit_log(self, community_id: str, actor: Actor, limit: int = 20) -> list[AuditEntry]:
        """The newest audit entries first (changes, refused changes, policy refusals); admins only."""
        settings = await self.get_settings(community_id)
        await self._require_admin(settings, actor, "read_audit_log")
        return await self._store.list_audit(community_id, max(1, min(limit, MAX_AUDIT_ENTRIES)))

    async def require_admin(
        self, community_id: str, actor: Actor, action: str, *, origin: str = ""
    ) -> None:
        """Raise PolicyRefusal(code="not_admin") unless ``actor`` administers the community; a
        refused attempt is written to the audit log as ``action``."""
        await self.admin_settings(community_id, actor, action, origin=origin)

    async def admin_settings(
        self, community_id: str, actor: Actor, action: str, *, origin: str = ""
    ) -> CommunitySettings:
        """The community's settings once ``actor`` is found to administer it (else as
        ``require_admin``): for the use cases that read something only admins may see."""
        settings = await self.get_settings(community_id)
        await self._require_admin(settings, actor, action, origin)
        return settings

    async def note_attempt(
        self, community_id: str, actor_id: str, *, kind: str, action: str, detail: str, origin: str
    ) -> None:
        """Audit an attempt refused before it reached a change (a dashboard form with a bad CSRF
        token, ``kind="denied"``, or values the settings' checks refused, ``kind="invalid"``)."""
        await self._store.add_audit(
            AuditEntry(
                community_id=community_id,
                at=self._clock.now(),
                actor_id=actor_id,
                kind=kind,
                action=action,
                detail=detail,
                origin=origin,
            )
        )

    async def audit_page(
        self, query: AuditQuery, actor: Actor, *, origin: str = ""
    ) -> list[AuditEntry]:
        """One page of the audit log (``AuditQuery``), for admins only."""
        await self.admin_settings(query.community_id, actor, "read_audit_log", origin=origin)
        limit = max(1, min(query.limit, MAX_AUDIT_ENTRIES))
        return await self._store.search_audit(replace(query, limit=limit))

    async def _require_admin(
        self, settings: CommunitySettings, actor: Actor, action: str, origin: str = ""
    ) -> None:
        if is_admin(actor, settings):
            return
        await self._store.add_audit(
            AuditEntry(
                community_id=settings.community_id,
                at=self._clock.now(),
                actor_id=actor.user_id,
                kind="denied",
                action=action,
                detail="refused (not_admin)",
                origin=origin,
            )
        )
        raise PolicyRefusal("Only this server's admins can do that.", code="not_admin")
