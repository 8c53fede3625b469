"""``ImagineService``: the one entry the adapters call."""

from __future__ import annotations

import logging
import random
import re
import secrets
import unicodedata
from dataclasses import dataclass

from bot import metrics
from bot.catalog import Catalog, resolve_size
from bot.clock import Clock
from bot.errors import InvalidRequest, JobNotFound, PolicyRefusal, RequestRejected
from bot.events import JobEvents
from bot.logs import log_job_step
from bot.models import CommunitySettings, ImagineRequest, Job, JobStatus
from bot.policy import Policy
from bot.store import Store

log = logging.getLogger(__name__)

MAX_PROMPT_CHARS = 2000
MAX_SEED = 2**32 - 1
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
    def catalog(self) -> Catalog:
        return self._catalog

    async def settings_for(self, community_id: str) -> CommunitySettings:
        return await self._store.get_settings(community_id) or CommunitySettings(community_id)

    async def imagine(self, request: ImagineRequest) -> Accepted:
        """Check a request and store it as a queued job. Raises RequestRejected with the reason."""
        started = self._clock.monotonic()
        try:
            accepted = await self._admit_and_store(request)
        except RequestRejected as exc:
            metrics.refused(exc.code)
            raise
        if not accepted.duplicate:
            metrics.accepted(accepted.job)
            log_job_step(log, accepted.job, "queue", self._clock.monotonic() - started)
        return accepted

    async def _admit_and_store(self, request: ImagineRequest) -> Accepted:
        if request.dedupe_key:
            request = request.with_changes(dedupe_key=f"{request.platform}:{request.dedupe_key}")
        settings = await self.settings_for(request.community_id)
        await self._policy.admit(request, settings)
        prompt = clean_prompt(request.prompt)
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
                raise PolicyRefusal(
                    "Input images are turned off in this community.", code="input_images"
                )
            if len(request.input_images) > variant.input_images:
                raise InvalidRequest(
                    f"{variant.label} takes at most {variant.input_images} input images."
                )
        seed = request.seed if request.seed is not None else self._rng.randrange(MAX_SEED)
        if not 0 <= seed <= MAX_SEED:
            raise InvalidRequest(f"Seeds are whole numbers from 0 to {MAX_SEED}.")
        now = self._clock.now()
        job = Job(
            id=new_job_id(),
            request=request.with_changes(prompt=prompt, variant=variant.name, seed=seed),
            status=JobStatus.QUEUED,
            width=width,
            height=height,
            seed=seed,
            variant=variant.name,
            created_at=now,
            updated_at=now,
        )
        stored, created = await self._store.enqueue_job(job)
        if created:
            self._events.work_available()
        position = await self._store.queue_position(stored)
        return Accepted(job=stored, position=position, duplicate=not created)

    async def job(self, job_id: str) -> Job:
        job = await self._store.get_job(job_id)
        if job is None:
            raise JobNotFound(f"No job {job_id}.")
        return job

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
