"""A user's remaining allowances in a community and when each resets."""

from __future__ import annotations

from bot.domain.clock import Clock
from bot.domain.community import Actor, is_admin
from bot.domain.limits import QuotaReport, quota_report, resolve_plan
from bot.domain.policy import Policy
from bot.jobs.admin import settings_of
from bot.store import Store


class Quota:
    def __init__(self, *, store: Store, clock: Clock, policy: Policy) -> None:
        self._store = store
        self._clock = clock
        self._policy = policy

    async def quota(
        self,
        community_id: str,
        user_id: str,
        roles: tuple[str, ...] = (),
        *,
        is_platform_admin: bool = False,
    ) -> QuotaReport:
        """A user's remaining allowances and when they reset (``QuotaReport.lines()`` as text).

        ``roles`` are the user's role ids (for role overrides and admin roles);
        ``is_platform_admin`` is the platform's word that the user administers the community."""
        settings = await settings_of(self._store, self._policy, community_id)
        actor = Actor(user_id=user_id, role_ids=tuple(roles), is_platform_admin=is_platform_admin)
        plan = resolve_plan(
            settings,
            self._policy.defaults.limits,
            user_id=user_id,
            roles=tuple(roles),
            is_admin=is_admin(actor, settings),
        )
        now = self._clock.now()
        usage = await self._store.read_usage(plan, now)
        return quota_report(plan, usage, now)
