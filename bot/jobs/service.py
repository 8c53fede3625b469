"""``ImagineService``: the one entry the adapters call, a facade over the use cases.

Users: ``imagine`` (``bot.jobs.imagine``), ``follow_up`` and ``blend`` (``bot.jobs.follow_ups``),
``job``, ``wait``, ``cancel``, ``delete`` and ``note_delivery`` (``bot.jobs.tracking``), ``quota``
(``bot.jobs.quota``).
Admins: ``get_settings``, ``update_settings``, ``blocked_terms``, ``audit_log``, ``audit_page``,
``note_attempt``, ``is_admin`` and ``require_admin`` (``bot.jobs.admin``), which re-check every
permission and audit every change; ``usage_report`` (``bot.jobs.usage``).
A user's own: ``preferences``, ``prefer``, ``reset_preferences``, ``history``, ``rerun``
(``bot.jobs.personal``).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from bot.domain.catalog import Catalog
from bot.domain.clock import Clock
from bot.domain.community import Actor, AuditEntry, SettingsChange, SettingsChanged
from bot.domain.limits import QuotaReport
from bot.domain.models import CommunitySettings, ImagineRequest, Job
from bot.domain.policy import Policy, PolicyDefaults
from bot.domain.preferences import Preferences
from bot.jobs.admin import Admin
from bot.jobs.events import JobEvents
from bot.jobs.follow_ups import FollowUps
from bot.jobs.imagine import Accepted, Imagine, clean_prompt
from bot.jobs.personal import Personal
from bot.jobs.quota import Quota
from bot.jobs.tracking import Tracking
from bot.jobs.usage import Usage, UsageReport
from bot.store import Store
from bot.store.base import AuditQuery

# Named here too: adapters import the answer of ``imagine`` from the service they call.
__all__ = ["Accepted", "ImagineService", "UsageReport", "clean_prompt"]


class ImagineService:
    def __init__(
        self,
        *,
        store: Store,
        catalog: Catalog,
        clock: Clock,
        events: JobEvents,
        providers: tuple[str, ...],
        policy: Policy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        policy = policy or Policy()
        self._catalog = catalog
        self._policy = policy
        self._imagine = Imagine(
            store=store,
            catalog=catalog,
            clock=clock,
            events=events,
            providers=providers,
            policy=policy,
            rng=rng or random.SystemRandom(),
        )
        self._tracking = Tracking(store=store, clock=clock, events=events)
        self._follow_ups = FollowUps(
            catalog=catalog,
            imagine=self._imagine,
            tracking=self._tracking,
            store=store,
            policy=policy,
        )
        self._admin = Admin(store=store, catalog=catalog, clock=clock, policy=policy)
        self._quota = Quota(store=store, clock=clock, policy=policy)
        self._usage = Usage(store=store, clock=clock, policy=policy, admin=self._admin)
        self._personal = Personal(
            store=store,
            catalog=catalog,
            clock=clock,
            tracking=self._tracking,
            follow_ups=self._follow_ups,
        )

    @property
    def catalog(self) -> Catalog:
        return self._catalog

    @property
    def policy_defaults(self) -> PolicyDefaults:
        """The limits, word list and safety level every community starts from."""
        return self._policy.defaults

    # Users -----------------------------------------------------------------------------------------

    async def imagine(self, request: ImagineRequest) -> Accepted:
        return await self._imagine.imagine(request)

    async def private_by_default(self, platform: str, user_id: str, community_id: str) -> bool:
        return await self._imagine.private_by_default(platform, user_id, community_id)

    async def follow_up(
        self,
        job_id: str,
        action: str,
        request: ImagineRequest,
        *,
        prompt: str | None = None,
        image: int = 1,
    ) -> Accepted:
        return await self._follow_ups.follow_up(job_id, action, request, prompt=prompt, image=image)

    async def blend(self, request: ImagineRequest) -> Accepted:
        return await self._follow_ups.blend(request)

    async def job(self, job_id: str) -> Job:
        return await self._tracking.job(job_id)

    async def wait(self, job_id: str, *, timeout: float | None = None) -> Job:
        return await self._tracking.wait(job_id, timeout=timeout)

    async def cancel(self, job_id: str, *, user_id: str, is_admin: bool = False) -> Job:
        return await self._tracking.cancel(job_id, user_id=user_id, is_admin=is_admin)

    async def delete(self, job_id: str, *, user_id: str, is_admin: bool = False) -> Job:
        return await self._tracking.delete(job_id, user_id=user_id, is_admin=is_admin)

    async def note_delivery(self, job_id: str, values: Mapping[str, Any]) -> bool:
        return await self._tracking.note_delivery(job_id, values)

    async def quota(
        self,
        community_id: str,
        user_id: str,
        roles: tuple[str, ...] = (),
        *,
        is_platform_admin: bool = False,
    ) -> QuotaReport:
        return await self._quota.quota(
            community_id, user_id, roles, is_platform_admin=is_platform_admin
        )

    # A user's own: /prefer and /history ---------------------------------------------------------

    async def preferences(self, platform: str, user_id: str) -> Preferences:
        return await self._personal.preferences(platform, user_id)

    async def prefer(self, platform: str, user_id: str, values: dict[str, object]) -> Preferences:
        return await self._personal.prefer(platform, user_id, values)

    async def reset_preferences(self, platform: str, user_id: str) -> None:
        await self._personal.reset(platform, user_id)

    async def history(self, platform: str, user_id: str, count: int = 10) -> list[Job]:
        return await self._personal.history(platform, user_id, count)

    async def rerun(self, job_id: str, request: ImagineRequest) -> Accepted:
        return await self._personal.rerun(job_id, request)

    # Admins ----------------------------------------------------------------------------------------

    async def get_settings(self, community_id: str) -> CommunitySettings:
        return await self._admin.get_settings(community_id)

    async def is_admin(self, community_id: str, actor: Actor) -> bool:
        return await self._admin.is_admin(community_id, actor)

    async def update_settings(
        self, community_id: str, actor: Actor, change: SettingsChange, *, origin: str = ""
    ) -> SettingsChanged:
        return await self._admin.update_settings(community_id, actor, change, origin=origin)

    async def blocked_terms(self, community_id: str, actor: Actor) -> tuple[str, ...]:
        return await self._admin.blocked_terms(community_id, actor)

    async def audit_log(self, community_id: str, actor: Actor, limit: int = 20) -> list[AuditEntry]:
        return await self._admin.audit_log(community_id, actor, limit)

    async def require_admin(
        self, community_id: str, actor: Actor, action: str, *, origin: str = ""
    ) -> None:
        await self._admin.require_admin(community_id, actor, action, origin=origin)

    async def note_attempt(
        self, community_id: str, actor_id: str, *, kind: str, action: str, detail: str, origin: str
    ) -> None:
        await self._admin.note_attempt(
            community_id, actor_id, kind=kind, action=action, detail=detail, origin=origin
        )

    async def audit_page(
        self, query: AuditQuery, actor: Actor, *, origin: str = ""
    ) -> list[AuditEntry]:
        return await self._admin.audit_page(query, actor, origin=origin)

    async def usage_report(
        self, community_id: str, actor: Actor, *, days: int = 30, origin: str = ""
    ) -> UsageReport:
        return await self._usage.usage_report(community_id, actor, days=days, origin=origin)
