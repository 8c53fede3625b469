"""A user's own corner: their /prefer defaults and their /history, with Re-run of their own jobs."""

from __future__ import annotations

from bot.domain.catalog import Catalog
from bot.domain.clock import Clock
from bot.domain.errors import PolicyRefusal
from bot.domain.models import ImagineRequest, Job
from bot.domain.preferences import Preferences, check_preference
from bot.jobs.follow_ups import FollowUps
from bot.jobs.imagine import Accepted
from bot.jobs.tracking import Tracking
from bot.store import Store

MAX_HISTORY = 25
NOT_YOURS = "You can re-run only your own images."


class Personal:
    def __init__(
        self,
        *,
        store: Store,
        catalog: Catalog,
        clock: Clock,
        tracking: Tracking,
        follow_ups: FollowUps,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._clock = clock
        self._tracking = tracking
        self._follow_ups = follow_ups

    async def preferences(self, platform: str, user_id: str) -> Preferences:
        return await self._store.get_preferences(platform, user_id) or Preferences()

    async def prefer(self, platform: str, user_id: str, values: dict[str, object]) -> Preferences:
        """Set (or, with None, clear) some preferences; each is checked first (InvalidRequest
        names what is allowed) and nothing is stored unless all are valid."""
        checked = {name: check_preference(name, v, self._catalog) for name, v in values.items()}
        prefs = (await self.preferences(platform, user_id)).evolve(**checked)
        await self._store.save_preferences(platform, user_id, prefs, self._clock.now())
        return prefs

    async def reset(self, platform: str, user_id: str) -> None:
        await self._store.save_preferences(platform, user_id, Preferences(), self._clock.now())

    async def history(self, platform: str, user_id: str, count: int) -> list[Job]:
        """The user's newest jobs on this platform, in every community; only their own."""
        return await self._store.list_user_jobs(platform, user_id, max(1, min(count, MAX_HISTORY)))

    async def rerun(self, job_id: str, request: ImagineRequest) -> Accepted:
        """The same prompt and options with a new seed, for the job's own requester only."""
        job = await self._tracking.job(job_id)
        if job.user_id != request.user_id or job.request.platform != request.platform:
            raise PolicyRefusal(NOT_YOURS, code="not_owner")
        return await self._follow_ups.follow_up(job_id, "reroll", request)
