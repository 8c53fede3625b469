"""Follow-ups: a new job made from an earlier one (reroll, vary, upscale, edit), checked and stored
like any /imagine."""

from __future__ import annotations

from bot.domain.catalog import Catalog
from bot.domain.errors import InvalidRequest
from bot.domain.models import ImagineRequest
from bot.jobs.imagine import MAX_SEED, Accepted, Imagine
from bot.jobs.tracking import Tracking


class FollowUps:
    def __init__(self, *, catalog: Catalog, imagine: Imagine, tracking: Tracking) -> None:
        self._catalog = catalog
        self._imagine = imagine
        self._tracking = tracking

    async def follow_up(
        self,
        job_id: str,
        action: str,
        request: ImagineRequest,
        *,
        prompt: str | None = None,
    ) -> Accepted:
        """A new job from an earlier one: reroll (new seed), vary (same seed), upscale (max), edit.

        ``request`` says who asks and where the outcome goes; the rest comes from the earlier job."""
        parent = await self._tracking.job(job_id)
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
            # A private image's buttons make private images.
            private=request.private or parent.request.private,
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
        return await self._imagine.imagine(base)
