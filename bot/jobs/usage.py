"""A community's recent usage for its admins (the dashboard's usage page): charged images and spend
per day against the daily budget, policy refusals by reason, the top users and the queue now."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.clock import Clock
from bot.domain.community import Actor
from bot.domain.limits import UNLIMITED
from bot.domain.models import CommunitySettings
from bot.domain.policy import Policy
from bot.jobs.admin import Admin
from bot.store import Store
from bot.store.base import DayUsage, JobCounts, UserUsage

TOP_USERS = 10


@dataclass(frozen=True)
class UsageReport:
    """A community's recent usage (``Usage.usage_report``); ``days`` leaves out days without any
    charged image, ``first_day`` is the first UTC day (days since 1970) covered."""

    first_day: int
    days: list[DayUsage]
    refusals: dict[str, int]
    top_users: list[UserUsage]
    queue: JobCounts
    budget_usd: float | None


def daily_budget(settings: CommunitySettings, policy: Policy) -> float | None:
    """The community's daily budget in effect (its own, else the bot's); None when unlimited."""
    budget = settings.community_budget_usd
    if budget is None:
        budget = policy.defaults.limits.community_budget_usd
    return None if budget is None or budget == UNLIMITED else budget


class Usage:
    def __init__(self, *, store: Store, clock: Clock, policy: Policy, admin: Admin) -> None:
        self._store = store
        self._clock = clock
        self._policy = policy
        self._admin = admin

    async def usage_report(
        self, community_id: str, actor: Actor, *, days: int = 30, origin: str = ""
    ) -> UsageReport:
        """The community's last ``days`` UTC days (today included): charged images and spend per
        day, policy refusals by reason, the top users, and its queue now; for admins only (a
        refused look is audited as ``read_usage``)."""
        settings = await self._admin.admin_settings(
            community_id, actor, "read_usage", origin=origin
        )
        today = int(self._clock.now() // 86_400)
        since = (today - days + 1) * 86_400.0
        return UsageReport(
            first_day=today - days + 1,
            days=await self._store.usage_by_day(community_id, since),
            refusals=await self._store.refusals_by_reason(community_id, since),
            top_users=await self._store.top_users(community_id, since, TOP_USERS),
            queue=await self._store.community_job_counts(community_id),
            budget_usd=daily_budget(settings, self._policy),
        )
