"""``/imagine``: check a request (banned user, channel, prompt filter, the request itself, limits)
and store it as a queued job, or serve it from an identical earlier job."""

from __future__ import annotations

import hashlib
import logging
import random
import re
import secrets
import unicodedata
from dataclasses import dataclass

from bot.domain.catalog import Catalog, Variant, resolve_size
from bot.domain.clock import Clock
from bot.domain.community import AuditEntry
from bot.domain.errors import InvalidRequest, PolicyRefusal, RequestRejected
from bot.domain.limits import refusal_message
from bot.domain.models import (
    CACHE_PROVIDER,
    COUNT_DEFAULT,
    DEFAULT_OUTPUT_FORMAT,
    OUTPUT_FORMATS,
    CommunitySettings,
    ImagineRequest,
    Job,
    JobStatus,
    dumps,
)
from bot.domain.personal import PERSONAL_BUDGET_SPENT, is_personal
from bot.domain.policy import Policy
from bot.domain.preferences import apply_preferences
from bot.jobs.admin import settings_of
from bot.jobs.events import JobEvents
from bot.ops import metrics
from bot.ops.logs import log_job_step
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
    # Only when set, so keys of requests without them stay as they were (every request accepted
    # now has its format fixed, JPEG unless asked otherwise).
    if request.output_format is not None:
        parts["format"] = request.output_format
    if request.enhance:
        parts["enhance"] = True
    if request.steps is not None:
        parts["steps"] = request.steps
    if request.guidance is not None:
        parts["guidance"] = request.guidance
    return hashlib.sha256(dumps(parts).encode()).hexdigest()


class Imagine:
    def __init__(
        self,
        *,
        store: Store,
        catalog: Catalog,
        clock: Clock,
        events: JobEvents,
        providers: tuple[str, ...],
        policy: Policy,
        rng: random.Random,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._clock = clock
        self._events = events
        self._providers = providers
        self._policy = policy
        self._rng = rng

    async def private_by_default(self, platform: str, user_id: str, community_id: str) -> bool:
        """Whether a request of this user that leaves it open becomes private: their /prefer
        says so and the community allows private images (as ``imagine`` decides it). For an
        adapter that must choose a private or public acknowledgement before it calls imagine."""
        prefs = await self._store.get_preferences(platform, user_id)
        if prefs is None or not prefs.private:
            return False
        return (await settings_of(self._store, self._policy, community_id)).allow_private

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
        settings = await settings_of(self._store, self._policy, request.community_id)
        # Upsampling the request itself asks for is refused where nothing offers it; asked by a
        # preference or the community, it applies only where offered.
        asked_enhance = request.enhance is True
        if request.action == "imagine":
            # The user's /prefer defaults fill what the request leaves open; the checks below
            # (the community's rules) still apply to the result.
            prefs = await self._store.get_preferences(request.platform, request.user_id)
            request = apply_preferences(request, prefs, settings)
        if request.count == COUNT_DEFAULT:
            # Neither the request nor the user's defaults name a count: the community's.
            request = request.with_changes(count=settings.default_count)
        prompt = clean_prompt(request.prompt)
        try:
            await self._policy.admit(request.with_changes(prompt=prompt), settings)
        except PolicyRefusal as exc:
            await self._audit_refusal(request, exc)
            raise
        if request.private and not settings.allow_private:
            refusal = PolicyRefusal(
                "Private images are turned off in this community; ask without `private`.",
                code="private",
            )
            await self._audit_refusal(request, refusal)
            raise refusal
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
        output_format, enhance = self._format_and_enhance(
            request, settings, variant, asked_enhance=asked_enhance
        )
        if request.steps is not None or request.guidance is not None:
            self._check_sampling(request, variant)
        seed = request.seed if request.seed is not None else self._rng.randrange(MAX_SEED)
        if not 0 <= seed <= MAX_SEED:
            raise InvalidRequest(f"Seeds are whole numbers from 0 to {MAX_SEED}.")
        tolerance = self._policy.safety_tolerance(request, settings, variant)
        now = self._clock.now()
        job = Job(
            id=new_job_id(),
            request=request.with_changes(
                prompt=prompt,
                variant=variant.name,
                seed=seed,
                safety_tolerance=tolerance,
                output_format=output_format,
                enhance=enhance,
            ),
            status=JobStatus.QUEUED,
            width=width,
            height=height,
            seed=seed,
            variant=variant.name,
            created_at=now,
            updated_at=now,
            cost_usd=self.price_usd(
                variant, request.count, width, height, len(request.input_images)
            ),
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
            message = refusal_message(admission.decision, plan, now)
            if is_personal(request.community_id) and admission.decision.limit == "community_budget":
                message = PERSONAL_BUDGET_SPENT
            refusal = PolicyRefusal(
                message,
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

    def _format_and_enhance(
        self,
        request: ImagineRequest,
        settings: CommunitySettings,
        variant: Variant,
        *,
        asked_enhance: bool,
    ) -> tuple[str, bool]:
        """The format and prompt upsampling a job is made with: as asked, else the community's
        default, else the bot's. Upsampling the request asked for where no configured provider
        offers it for this model is refused before anything is charged; a user's preference or
        the community's default of it applies only where it is offered."""
        output_format = request.output_format or settings.default_format or DEFAULT_OUTPUT_FORMAT
        if output_format not in OUTPUT_FORMATS:
            raise InvalidRequest(
                f"The format is one of {', '.join(OUTPUT_FORMATS)}; got {output_format!r}.",
                code="format",
            )
        offered = variant.offers_enhance(self._providers)
        if asked_enhance and not offered:
            where = [
                v.label
                for v in self._catalog.variants.values()
                if v.offers_enhance(self._providers)
            ]
            raise InvalidRequest(
                f"--enhance (prompt upsampling) is not offered for {variant.label} by this "
                "bot's providers"
                + (
                    f"; it is for {', '.join(where)}."
                    if where
                    else "; it is offered for no model here."
                ),
                code="enhance",
            )
        wanted = request.enhance if request.enhance is not None else settings.default_enhance
        return output_format, bool(wanted and offered)

    def _check_sampling(self, request: ImagineRequest, variant: Variant) -> None:
        """``--steps`` and ``--guidance`` only for a model that takes them, within its range."""
        for value, allowed, what, flag in (
            (request.steps, variant.steps, "Steps", "--steps"),
            (request.guidance, variant.guidance, "Guidance", "--guidance"),
        ):
            if value is None:
                continue
            if allowed is None:
                takes = [v.label for v in self._catalog.variants.values() if v.steps is not None]
                raise InvalidRequest(
                    f"{flag} is not taken by {variant.label}; it is for {', '.join(takes)}.",
                    code="sampling",
                )
            allowed.check(value, what, variant.label)

    def price_usd(
        self, variant: Variant, count: int, width: int, height: int, input_images: int = 0
    ) -> float:
        """What a job is charged against budgets before it runs: the catalog's price of its
        images at its size on the first configured provider that offers the variant."""
        for name in self._providers:
            model = variant.model_for(name)
            if model is not None:
                return model.price(width, height, count, input_images)
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
