"""``ImagineService``: the one entry the adapters call.

Users: ``imagine`` (and ``follow_up``, ``cancel``, ``job``, ``wait``), ``quota``.
Admins: ``get_settings``, ``update_settings`` with a typed change from ``bot.domain.community``,
``blocked_terms``, ``audit_log``, ``is_admin``. The service re-checks every admin permission itself
and writes every settings change, every refused change and every policy refusal to the audit log.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from bot.domain.catalog import Catalog, Variant, resolve_size
from bot.domain.clock import Clock
from bot.domain.community import Actor, AuditEntry, SettingsChange, SettingsChanged, is_admin
from bot.domain.errors import InvalidRequest, JobNotFound, PolicyRefusal, RequestRejected
from bot.domain.limits import (
    UNLIMITED,
    QuotaReport,
    quota_report,
    refusal_message,
    resolve_plan,
)
from bot.domain.models import (
    CACHE_PROVIDER,
    CommunitySettings,
    ImagineRequest,
    Job,
    JobStatus,
    dumps,
)
from bot.domain.policy import Policy, PolicyDefaults
from bot.jobs.events import JobEvents
from bot.ops import metrics
from bot.ops.logs import log_job_step
from bot.store import Store
from bot.store.base import AuditQuery, DayUsage, JobCounts, UserUsage

log = logging.getLogger(__name__)

MAX_PROMPT_CHARS = 2000
MAX_SEED = 2**32 - 1
MAX_AUDIT_ENTRIES = 200
TOP_USERS = 10
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Accepted:
    job: Job
    position: int
    # True when this event was already turned into a job (a retried or replayed delivery).
    duplicate: bool = False


def clean_prompt(prompt: str) -> str:
    """Control characters removed, white space folded, length bounded; raises InvalidRequest."""
    kept = "".join(
        " " if ch in "\t\r\n" else ch
        for ch in prompt
        if ch in "\t\r\n" or unicodedata.category(ch) != "Cc"
    )
    text = _SPACES.sub(" ", kept).strip()
    if not text:
        raise InvalidRequest("Please describe the image you want, e.g. /imagine a red fox at dawn.")
    if len(text) > MAX_PROMPT_CHARS:
        raise InvalidRequest(
            f"Prompts are at most {MAX_PROMPT_CHARS:,} characters; yours has {len(text):,}.",
            code="prompt_too_long",
        )
    return text


def new_job_id() -> str:
    return secrets.token_hex(8)


def request_cache_key(job: Job) -> str:
    """A hash of everything that decides a job's image: equal keys, equal images."""
    request = job.request
    parts = {
        "prompt": request.prompt,
        "variant": job.variant,
        "width": job.width,
        "height": job.height,
        "seed": job.seed,
        "count": request.count,
        "inputs": list(request.input_images),
        "tolerance": request.safety_tolerance,
        "action": request.action if request.action in ("upscale", "edit") else "imagine",
    }
    return hashlib.sha256(dumps(parts).encode()).hexdigest()


@dataclass(frozen=True)
class UsageReport:
    """A community's recent usage (``ImagineService.usage_report``); ``days`` leaves out days
    without any charged image, ``first_day`` is the first UTC day (days since 1970) covered."""

    first_day: int
    days: list[DayUsage]
    refusals: dict[str, int]
    top_users: list[UserUsage]
    queue: JobCounts
    budget_usd: float | None


def _budget(settings: CommunitySettings, policy: Policy) -> float | None:
    """The community's daily budget in effect (its own, else the bot's); None when unlimited."""
    budget = settings.community_budget_usd
    if budget is None:
        budget = policy.defaults.limits.community_budget_usd
    return None if budget is None or budget == UNLIMITED else budget


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
        self._store = store
        self._catalog = catalog
        self._clock = clock
        self._events = events
        self._providers = providers
        self._policy = policy or Policy()
        self._rng = rng or random.SystemRandom()

    @property
    def policy_defaults(self) -> PolicyDefaults:
        """The limits, word list and safety level every community starts from."""
        return self._policy.defaults

    @property
    def catalog(self) -> Catalog:
        return self._catalog

    async def settings_for(self, community_id: str) -> CommunitySettings:
        return await self._store.get_settings(community_id) or self._policy.new_settings(
            community_id
        )

    async def get_settings(self, community_id: str) -> CommunitySettings:
        """The community's settings (the defaults when it never changed any).

        Blocked terms and banned users are in there: show them to admins only (``describe_settings``
        in ``bot.domain.community`` counts them without listing them)."""
        return await self.settings_for(community_id)

    async def imagine(self, request: ImagineRequest) -> Accepted:
        """Check a request and store it as a queued job. Raises RequestRejected with the reason."""
        try:
            return await self._admit_and_store(request, started=self._clock.monotonic())
        except RequestRejected as exc:
            metrics.refused(exc.code)
            raise

    async def _admit_and_store(self, request: ImagineRequest, *, started: float) -> Accepted:
        """The checks and the storing of ``imagine``.

        Checks, in order: banned user, channel allowed, prompt filter, then the request itself
        (model, size, count, inputs), then rate limits and quotas, decided atomically with storing
        the job. Every policy refusal is written to the audit log. A request with an explicit seed
        that matches a delivered job of this community is served from its stored image, and one
        that matches an unfinished job shares that job's provider call (each requester still gets
        their own job and outcome), unless the community turned the cache off or the request says
        ``use_cache=False``.
        """
        if request.dedupe_key:
            request = request.with_changes(dedupe_key=f"{request.platform}:{request.dedupe_key}")
        settings = await self.settings_for(request.community_id)
        prompt = clean_prompt(request.prompt)
        try:
            await self._policy.admit(request.with_changes(prompt=prompt), settings)
        except PolicyRefusal as exc:
            await self._audit_refusal(request, exc)
            raise
        variant = self._catalog.resolve(request.variant or settings.default_variant)
        if not any(p in variant.providers for p in self._providers):
            raise InvalidRequest(
                f"Model {variant.name} is not offered by this bot's providers.", code="model"
            )
        width, height = resolve_size(
            variant, aspect_ratio=request.aspect_ratio, width=request.width, height=request.height
        )
        if not 1 <= request.count <= variant.max_count:
            raise InvalidRequest(f"{variant.label} makes 1 to {variant.max_count} images at once.")
        if request.input_images:
            if not settings.allow_input_images:
                refusal = PolicyRefusal(
                    "Input images are turned off in this community.", code="input_images"
                )
                await self._audit_refusal(request, refusal)
                raise refusal
            if len(request.input_images) > variant.input_images:
                raise InvalidRequest(
                    f"{variant.label} takes at most {variant.input_images} input images."
                )
        seed = request.seed if request.seed is not None else self._rng.randrange(MAX_SEED)
        if not 0 <= seed <= MAX_SEED:
            raise InvalidRequest(f"Seeds are whole numbers from 0 to {MAX_SEED}.")
        tolerance = self._policy.safety_tolerance(request, settings, variant)
        now = self._clock.now()
        job = Job(
            id=new_job_id(),
            request=request.with_changes(
                prompt=prompt, variant=variant.name, seed=seed, safety_tolerance=tolerance
            ),
            status=JobStatus.QUEUED,
            width=width,
            height=height,
            seed=seed,
            variant=variant.name,
            created_at=now,
            updated_at=now,
            cost_usd=self.price_usd(variant, request.count),
        )
        cache_key: str | None = None
        share = False
        if request.seed is not None:
            cache_key = request_cache_key(job)
            if request.use_cache and settings.allow_cache:
                job = await self._from_cache(job, cache_key)
                share = job.provider is None
        plan = self._policy.plan(request, settings)
        admission = await self._store.admit_job(job, plan, cache_key, share_in_flight=share)
        if not admission.decision.admitted:
            refusal = PolicyRefusal(
                refusal_message(admission.decision, plan, now),
                code=admission.decision.limit or "limit",
                retry_after=(
                    max(0.0, admission.decision.retry_at - now)
                    if admission.decision.retry_at is not None
                    else None
                ),
            )
            await self._audit_refusal(request, refusal)
            raise refusal
        if admission.created:
            # Counted and logged before any worker hears of it: its "queue" step comes first.
            metrics.accepted(admission.job)
            log_job_step(log, admission.job, "queue", self._clock.monotonic() - started)
            self._events.work_available()
        position = await self._store.queue_position(admission.job)
        return Accepted(job=admission.job, position=position, duplicate=not admission.created)

    def price_usd(self, variant: Variant, count: int) -> float:
        """What a job is charged against budgets: images x the price per image of the variant on
        the first configured provider that offers it."""
        for name in self._providers:
            model = variant.model_for(name)
            if model is not None:
                return model.price_usd * count
        return 0.0

    async def _from_cache(self, job: Job, cache_key: str) -> Job:
        earlier = await self._store.find_cached_job(job.community_id, cache_key)
        if earlier is None:
            return job
        return job.evolve(
            status=JobStatus.FETCHED,
            images=earlier.images,
            provider=CACHE_PROVIDER,
            model_id=earlier.model_id,
            cost_usd=0.0,
            delivery={"cached_from": earlier.id},
        )

    async def _audit_refusal(self, request: ImagineRequest, refusal: PolicyRefusal) -> None:
        await self._store.add_audit(
            AuditEntry(
                community_id=request.community_id,
                at=self._clock.now(),
                actor_id=request.user_id,
                kind="refusal",
                action=refusal.code,
                detail=refusal.user_message,
                channel_id=request.channel_id,
            )
        )

    # Quota and administration ------------------------------------------------------------------

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
        settings = await self.settings_for(community_id)
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

    async def is_admin(self, community_id: str, actor: Actor) -> bool:
        """Whether ``actor`` may change this community's settings (platform admin, or one of the
        community's admin roles or admin users)."""
        return is_admin(actor, await self.settings_for(community_id))

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
        settings = await self.settings_for(community_id)
        await self._require_admin(settings, actor, "list_blocked_terms")
        return settings.blocked_terms

    async def audit_log(self, community_id: str, actor: Actor, limit: int = 20) -> list[AuditEntry]:
        """The newest audit entries first (changes, refused changes, policy refusals); admins only."""
        settings = await self.settings_for(community_id)
        await self._require_admin(settings, actor, "read_audit_log")
        return await self._store.list_audit(community_id, max(1, min(limit, MAX_AUDIT_ENTRIES)))

    async def require_admin(
        self, community_id: str, actor: Actor, action: str, *, origin: str = ""
    ) -> None:
        """Raise PolicyRefusal(code="not_admin") unless ``actor`` administers the community; a
        refused attempt is written to the audit log as ``action``."""
        await self._require_admin(await self.settings_for(community_id), actor, action, origin)

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
        settings = await self.settings_for(query.community_id)
        await self._require_admin(settings, actor, "read_audit_log", origin)
        limit = max(1, min(query.limit, MAX_AUDIT_ENTRIES))
        return await self._store.search_audit(replace(query, limit=limit))

    async def usage_report(
        self, community_id: str, actor: Actor, *, days: int = 30, origin: str = ""
    ) -> UsageReport:
        """The community's last ``days`` UTC days (today included): charged images and spend per
        day, policy refusals by reason, the top users, and its queue now; for admins only."""
        settings = await self.settings_for(community_id)
        await self._require_admin(settings, actor, "read_usage", origin)
        today = int(self._clock.now() // 86_400)
        since = (today - days + 1) * 86_400.0
        return UsageReport(
            first_day=today - days + 1,
            days=await self._store.usage_by_day(community_id, since),
            refusals=await self._store.refusals_by_reason(community_id, since),
            top_users=await self._store.top_users(community_id, since, TOP_USERS),
            queue=await self._store.community_job_counts(community_id),
            budget_usd=_budget(settings, self._policy),
        )

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

    async def job(self, job_id: str) -> Job:
        job = await self._store.get_job(job_id)
        if job is None:
            raise JobNotFound(f"No job {job_id}.")
        return job

    async def note_delivery(self, job_id: str, values: Mapping[str, Any]) -> bool:
        """Record with the job what its adapter must find again from any process (such as the
        message that shows its progress); None removes a key. False when there is no such job."""
        return await self._store.merge_job_delivery(job_id, values)

    async def wait(self, job_id: str, *, timeout: float | None = None) -> Job:
        """Wait until the job's outcome has been sent (or its final status reached)."""
        start = self._clock.monotonic()
        while True:
            job = await self.job(job_id)
            if job.outcome_sent:
                return job
            if timeout is not None and self._clock.monotonic() - start > timeout:
                return job
            await self._events.wait_for_change(0.5)

    async def cancel(self, job_id: str, *, user_id: str, is_admin: bool = False) -> Job:
        job = await self.job(job_id)
        if job.user_id != user_id and not is_admin:
            raise PolicyRefusal("Only the requester or a moderator can do that.", code="not_owner")
        cancelled = await self._store.cancel_job(job_id, self._clock.now())
        if cancelled is None:  # pragma: no cover - the job existed a moment ago
            raise JobNotFound(f"No job {job_id}.")
        await self._events.job_changed(cancelled)
        return cancelled

    async def follow_up(
        self,
        job_id: str,
        action: str,
        request: ImagineRequest,
        *,
        prompt: str | None = None,
    ) -> Accepted:
        """A new job from an earlier one: reroll (new seed), vary (same seed), upscale (max), edit."""
        parent = await self.job(job_id)
        base = parent.request.with_changes(
            platform=request.platform,
            community_id=request.community_id,
            channel_id=request.channel_id,
            user_id=request.user_id,
            reply=request.reply,
            dedupe_key=request.dedupe_key,
            user_roles=request.user_roles,
            user_is_admin=request.user_is_admin,
            channel_age_restricted=request.channel_age_restricted,
            action=action,
            parent_job_id=parent.id,
            width=parent.width,
            height=parent.height,
            aspect_ratio=None,
        )
        if action == "reroll":
            base = base.with_changes(seed=None)
        elif action == "vary":
            base = base.with_changes(seed=(parent.seed + 1) % MAX_SEED)
        elif action == "upscale":
            top = list(self._catalog.variants)[-1] if "max" not in self._catalog.variants else "max"
            base = base.with_changes(variant=top, seed=parent.seed)
        elif action == "edit":
            if not parent.images:
                raise InvalidRequest("That job has no image to edit.")
            base = base.with_changes(
                prompt=prompt or parent.request.prompt,
                input_images=(f"blob:{parent.images[0]}",),
                seed=None,
            )
        else:
            raise InvalidRequest(f"Unknown action {action!r}.")
        return await self.imagine(base)
