"""The ``Store`` protocol: the intent-named operations every backend implements atomically."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from bot.domain.community import AuditEntry
from bot.domain.limits import Decision, LimitPlan, Usage
from bot.domain.models import CACHE_PROVIDER, CommunitySettings, Job, JobStatus
from bot.domain.preferences import Preferences

ClaimedJob = Job


@dataclass(frozen=True)
class JobCounts:
    queued: int
    running: int


@dataclass(frozen=True)
class DayUsage:
    """Charged images and spend of one UTC day (``day``: days since 1970-01-01)."""

    day: int
    images: int
    spend_usd: float


@dataclass(frozen=True)
class UserUsage:
    user_id: str
    images: int
    spend_usd: float


@dataclass(frozen=True)
class ProviderSpend:
    provider: str
    images: int
    spend_usd: float


@dataclass(frozen=True)
class ProviderError:
    """A provider's newest failed job: its error code and the message its user got."""

    provider: str
    code: str
    message: str
    at: float


@dataclass(frozen=True)
class AuditQuery:
    """One page of an audit log: entries older than ``before_id`` (0: the newest), optionally of
    one actor and one kind."""

    community_id: str
    limit: int = 50
    before_id: int = 0
    actor_id: str = ""
    kind: str = ""


@dataclass(frozen=True)
class Admission:
    """The outcome of ``Store.admit_job``: the job as stored (or the earlier one with the same
    dedupe key), whether it was created now, and the limits' decision."""

    job: Job
    created: bool
    decision: Decision


class Store(Protocol):
    """Durable state. Every method is one atomic step; none holds a transaction across calls."""

    async def aclose(self) -> None: ...

    async def ping(self) -> None:
        """Raise StoreError if the backend cannot be reached."""

    async def listen_for_work(self, callback: Callable[[], None]) -> bool:
        """Call ``callback`` when another process queues or hands back a job. False when the
        backend cannot tell (then only this process's own events and polling wake workers)."""

    # Jobs ---------------------------------------------------------------------------------------

    async def get_job(self, job_id: str) -> Job | None: ...

    async def claim_jobs(
        self,
        worker_id: str,
        now: float,
        lease_seconds: float,
        platforms: Iterable[str],
        limit: int,
    ) -> list[Job]:
        """Lease up to ``limit`` jobs needing work on one of ``platforms``, one after the other
        in fair order: the community served longest ago, then its user served longest ago, then
        that user's oldest job. A job needs work until its outcome (image or failure) has been
        sent. In one trip to the store where the backend allows: a deep queue is taken in
        batches instead of a round trip per job."""

    async def renew_leases(
        self, worker_id: str, job_ids: Iterable[str], now: float, lease_seconds: float
    ) -> set[str]:
        """Extend this worker's leases; return the ids it still holds."""

    async def release_job(self, job_id: str, worker_id: str, not_before: float) -> None:
        """Hand a leased job back so any worker may take it from ``not_before`` on."""

    async def save_job_step(self, job: Job, *, worker_id: str, expected: JobStatus) -> bool:
        """Write the job's mutable fields if this worker holds its lease and its status is still
        ``expected``. False means someone else changed it (a cancel, a lease take-over). The
        delivery data is merged like ``merge_job_delivery`` does, so keys stored there meanwhile
        survive a save of an older copy of the job."""

    async def merge_job_delivery(self, job_id: str, values: Mapping[str, Any]) -> bool:
        """Merge ``values`` into the job's delivery data (the other keys stay; a key given as None
        is removed), whoever holds the job. For what an adapter must find again from any process,
        such as the message that shows the job's progress. False when there is no such job."""

    async def lease_owners(self) -> set[str]:
        """Workers holding leases on unfinished jobs."""

    async def release_leases_of(self, worker_id: str) -> int:
        """Hand back every lease of a worker known to be dead; return how many."""

    async def count_pending(self, platforms: Iterable[str]) -> int:
        """Jobs on these platforms whose outcome has not been sent yet."""

    async def cancel_job(self, job_id: str, now: float) -> Job | None:
        """Cancel a job that has not reached a final status; return it as it now is."""

    async def queue_position(self, job: Job) -> int:
        """How many queued jobs are ahead of this one (0 when it is next or not queued)."""

    async def job_counts(self) -> JobCounts: ...

    # Community settings -------------------------------------------------------------------------

    async def get_settings(self, community_id: str) -> CommunitySettings | None: ...

    async def change_settings(
        self,
        community_id: str,
        change: Callable[[CommunitySettings | None], CommunitySettings],
        audit: AuditEntry,
    ) -> CommunitySettings:
        """Read-modify-write one community's settings and append ``audit``, in one transaction
        (concurrent changes never lose each other). ``change`` gets the stored settings (None
        when there are none yet) and may raise: then nothing is written and the error propagates."""

    # Personal use: preferences and history (issue 19) -------------------------------------------

    async def get_preferences(self, platform: str, user_id: str) -> Preferences | None:
        """The user's /prefer defaults on this platform, or None when they set none."""

    async def save_preferences(
        self, platform: str, user_id: str, prefs: Preferences, now: float
    ) -> None:
        """Store the user's defaults as given (empty preferences remove them)."""

    async def list_user_jobs(self, platform: str, user_id: str, limit: int) -> list[Job]:
        """The user's newest jobs on this platform first, in every community (for /history)."""

    # Limits, cache and audit (issue 6) -----------------------------------------------------------

    async def admit_job(
        self,
        job: Job,
        plan: LimitPlan,
        cache_key: str | None = None,
        *,
        share_in_flight: bool = False,
    ) -> Admission:
        """Decide the limits and store the job, atomically: in one transaction (serialized per
        user and per community against every other process), return at once the earlier job when
        the dedupe key is already stored (never charged twice); else read the ``Usage`` of
        ``plan``'s user and community, call ``bot.domain.limits.decide(plan, usage, now=job.created_at,
        images=job.request.count, cost_usd=job.cost_usd)``, store ``decision.new_tat`` under
        ``plan.rate_key`` when it is not None (also on some refusals), and only when admitted
        insert the job and, with a ``cache_key``, remember it for ``find_cached_job``. With
        ``share_in_flight`` and a ``cache_key``, first look (in the same transaction) for the
        oldest unfinished job of the community with that key that follows no other
        (query ``find_leader_job``); if there is one, store ``as_follower(job, leader.id)``
        instead of ``job``."""

    async def read_usage(self, plan: LimitPlan, now: float) -> Usage:
        """What ``plan``'s user and community have used today (for ``/quota``); see the charged
        statuses in ``bot.domain.limits``. Days start at 00:00 UTC; later-stamped jobs count too."""

    async def find_cached_job(self, community_id: str, cache_key: str) -> Job | None:
        """The newest delivered job of this community made for ``cache_key``, if any."""

    async def add_audit(self, entry: AuditEntry) -> None: ...

    async def list_audit(self, community_id: str, limit: int) -> list[AuditEntry]:
        """The community's newest audit entries first."""

    async def search_audit(self, query: AuditQuery) -> list[AuditEntry]:
        """One page of the community's audit log, newest first, filtered by actor and kind."""

    # Reports (the dashboard) -----------------------------------------------------------------

    async def usage_by_day(self, community_id: str, since: float) -> list[DayUsage]:
        """Charged images and spend per UTC day since ``since``; days without any are left out."""

    async def top_users(self, community_id: str, since: float, limit: int) -> list[UserUsage]: ...

    async def refusals_by_reason(self, community_id: str, since: float) -> dict[str, int]:
        """Policy refusals (audit kind ``refusal``) since ``since``, counted by action."""

    async def community_job_counts(self, community_id: str) -> JobCounts: ...

    async def spend_by_provider(self, since: float) -> list[ProviderSpend]:
        """Every community's images and spend since ``since`` by the provider that made them."""

    async def last_provider_errors(self, since: float) -> list[ProviderError]:
        """Each provider's newest failed job since ``since`` (providers without one are left out)."""


def as_follower(job: Job, leader_id: str) -> Job:
    """The job, made to share an identical unfinished job's provider call (see the worker)."""
    return job.evolve(provider=CACHE_PROVIDER, provider_task={"follows": leader_id}, cost_usd=0.0)
