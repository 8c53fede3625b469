"""Follow-ups: a new job made from an earlier one and one of its images (U, V, Reroll, Edit), and
/blend; each checked, priced and stored like any /imagine."""

from __future__ import annotations

from bot.domain.catalog import Catalog, upscale_size
from bot.domain.errors import InvalidRequest, PolicyRefusal
from bot.domain.models import ImagineRequest, Job, JobStatus
from bot.domain.policy import Policy
from bot.jobs.admin import settings_of
from bot.jobs.imagine import Accepted, Imagine
from bot.jobs.tracking import DELETED, Tracking
from bot.store import Store
from bot.text import replies

# What each action takes from the parent: (needs one of its images, open to anyone when the
# community shares its buttons).
ACTIONS = {
    "reroll": (False, True),
    "vary": (True, True),
    "vary-strong": (True, True),
    "upscale": (True, True),
    "edit": (True, False),
}


class FollowUps:
    def __init__(
        self,
        *,
        catalog: Catalog,
        imagine: Imagine,
        tracking: Tracking,
        store: Store,
        policy: Policy,
    ) -> None:
        self._catalog = catalog
        self._imagine = imagine
        self._tracking = tracking
        self._store = store
        self._policy = policy

    async def follow_up(
        self,
        job_id: str,
        action: str,
        request: ImagineRequest,
        *,
        prompt: str | None = None,
        image: int = 1,
    ) -> Accepted:
        """A new job from image ``image`` (1-based) of an earlier job.

        ``vary``: that image as the reference, the same prompt and size, a new seed.
        ``vary-strong``: no reference, the same prompt and size, a new seed.
        ``upscale``: that image re-rendered from itself at about twice the pixels (within the
        variant's caps), the same prompt and seed. ``reroll``: the same prompt and options, a new
        seed. ``edit``: that image as the reference with ``prompt``.
        ``request`` says who asks and where the outcome goes; the rest comes from the earlier job.
        Raises RequestRejected (nothing charged) for a foreign, deleted or failed job, an image
        number out of range, or an upscale of an image already at the variant's largest size.
        """
        if action not in ACTIONS:
            raise InvalidRequest(f"Unknown action {action!r}.")
        needs_image, shared = ACTIONS[action]
        parent = await self._tracking.job(job_id)
        await self._check_parent(parent, request, needs_image=needs_image, shared=shared)
        if needs_image and not 1 <= image <= len(parent.images):
            raise InvalidRequest(replies.image_number(len(parent.images)), code="image_number")
        variant = self._catalog.variants[parent.variant]
        if action in ("vary", "upscale", "edit") and variant.input_images < 1:
            raise InvalidRequest(replies.no_reference(variant.label), code="no_reference")
        reference = (f"blob:{parent.images[image - 1]}",) if needs_image else ()
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
            parent_image=image if needs_image else None,
            variant=parent.variant,
            width=parent.width,
            height=parent.height,
            aspect_ratio=None,
            seed=None,
            # A private image's buttons make private images.
            private=request.private or parent.request.private,
        )
        if action == "reroll":
            pass  # the parent's own options, inputs and count included
        elif action == "vary":
            base = base.with_changes(input_images=reference, count=1)
        elif action == "vary-strong":
            base = base.with_changes(input_images=(), count=1)
        elif action == "upscale":
            size = upscale_size(parent.width, parent.height, variant.size)
            if size is None:
                raise InvalidRequest(
                    replies.upscale_at_max(image, variant.label, parent.width, parent.height),
                    code="upscale_max",
                )
            base = base.with_changes(
                input_images=reference, count=1, seed=parent.seed, width=size[0], height=size[1]
            )
        else:  # edit
            base = base.with_changes(
                prompt=prompt or parent.request.prompt, input_images=reference, count=1
            )
        return await self._imagine.imagine(base)

    async def blend(self, request: ImagineRequest) -> Accepted:
        """One image from 2 or more input images (FLUX.2 multi-reference), with an optional
        prompt; the variant's input-image limit is checked like any /imagine's."""
        if len(request.input_images) < 2:
            raise InvalidRequest(replies.BLEND_TOO_FEW, code="blend")
        return await self._imagine.imagine(
            request.with_changes(
                action="blend", prompt=request.prompt.strip() or replies.BLEND_PROMPT
            )
        )

    async def _check_parent(
        self, parent: Job, request: ImagineRequest, *, needs_image: bool, shared: bool
    ) -> None:
        if parent.community_id != request.community_id:
            raise PolicyRefusal(replies.FOREIGN_JOB, code="foreign_job")
        if parent.status is JobStatus.CANCELLED or parent.delivery.get(DELETED):
            raise InvalidRequest(replies.JOB_DELETED, code="job_deleted")
        if needs_image and not parent.images:
            if parent.status.is_terminal:
                raise InvalidRequest(replies.JOB_NO_IMAGES, code="job_failed")
            raise InvalidRequest(replies.JOB_NOT_READY, code="job_not_ready")
        if parent.user_id != request.user_id:
            settings = await settings_of(self._store, self._policy, request.community_id)
            if not (shared and settings.shared_buttons):
                raise PolicyRefusal(replies.NOT_YOURS, code="not_owner")
