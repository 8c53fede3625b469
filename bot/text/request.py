"""The one builder of a core ``ImagineRequest`` from parsed /imagine arguments and who asked where."""

from __future__ import annotations

from bot.domain.catalog import parse_size
from bot.domain.models import ImagineRequest, ReplyTarget
from bot.text.flags import ImagineArgs


def build_request(
    args: ImagineArgs,
    *,
    platform: str,
    community_id: str,
    channel_id: str,
    user_id: str,
    reply: ReplyTarget,
    input_images: tuple[str, ...] = (),
    dedupe_key: str | None = None,
    user_roles: tuple[str, ...] = (),
    user_is_admin: bool = False,
    channel_age_restricted: bool = False,
) -> ImagineRequest:
    """``input_images`` are the references the platform made of ``args.images`` (a stored blob,
    a URL): storing them is the adapter's part. Raises InvalidRequest for a malformed size."""
    width, height = parse_size(args.size) if args.size else (None, None)
    return ImagineRequest(
        platform=platform,
        community_id=community_id,
        channel_id=channel_id,
        user_id=user_id,
        prompt=args.prompt,
        reply=reply,
        variant=args.model,
        aspect_ratio=args.aspect_ratio,
        width=width,
        height=height,
        seed=args.seed,
        count=args.count,
        input_images=input_images,
        dedupe_key=dedupe_key,
        user_roles=user_roles,
        user_is_admin=user_is_admin,
        channel_age_restricted=channel_age_restricted,
        use_cache=args.use_cache,
        output_format=args.output_format,
        enhance=args.enhance,
        steps=args.steps,
        guidance=args.guidance,
        private=args.private,
    )
