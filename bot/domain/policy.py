"""Who may ask for what: the checks between a command and a stored job, in their fixed order.

Order: banned user, channel allowed, prompt filter (``admit``), then rate limits and quotas, which
the store decides atomically while storing the job (``plan`` resolves the limits it applies).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.domain.catalog import Variant
from bot.domain.errors import PolicyRefusal
from bot.domain.limits import LimitDefaults, LimitPlan, resolve_plan
from bot.domain.models import CommunitySettings, ImagineRequest, Job
from bot.domain.personal import PERSONAL_OFF, is_personal, personal_settings
from bot.domain.promptfilter import PromptFilter
from bot.domain.safety import MAX_TOLERANCE, MIN_TOLERANCE, effective_tolerance


@dataclass(frozen=True)
class PolicyDefaults:
    """Bot-wide defaults (from the environment) that each community may change for itself."""

    limits: LimitDefaults = field(default_factory=LimitDefaults)
    # Added to every community's own list; the built-in list applies too.
    blocked_terms: tuple[str, ...] = ()
    safety_level: str = "standard"
    # Personal use (``bot.domain.personal``): allowed at all, and its bot-wide daily budget.
    personal_enabled: bool = True
    personal_budget_usd: float | None = None


class Policy:
    def __init__(self, defaults: PolicyDefaults | None = None) -> None:
        self.defaults = defaults or PolicyDefaults()
        self._filter = PromptFilter(self.defaults.blocked_terms)

    def new_settings(self, community_id: str) -> CommunitySettings:
        """The settings of a community that has not changed any (personal use has only these)."""
        if is_personal(community_id):
            return personal_settings(self.defaults.personal_budget_usd)
        return CommunitySettings(community_id, safety_level=self.defaults.safety_level)

    async def admit(self, request: ImagineRequest, settings: CommunitySettings) -> None:
        """Raise PolicyRefusal with a message for the user when the request may not run.

        ``request.prompt`` should already be cleaned (``bot.jobs.service.clean_prompt``).
        """
        if is_personal(request.community_id) and not self.defaults.personal_enabled:
            raise PolicyRefusal(PERSONAL_OFF, code="personal_off")
        if request.user_id in settings.banned_users:
            raise PolicyRefusal(
                "You are not allowed to use /imagine in this community.", code="banned"
            )
        if settings.allowed_channels and request.channel_id not in settings.allowed_channels:
            raise PolicyRefusal(
                "/imagine is not enabled in this channel; a moderator can allow it.",
                code="channel_not_allowed",
            )
        if self._filter.blocks(request.prompt, settings.blocked_terms):
            raise PolicyRefusal(
                "Your prompt was blocked by this server's word list. Please rephrase it.",
                code="blocked_term",
            )

    def is_admin(self, request: ImagineRequest, settings: CommunitySettings) -> bool:
        return (
            request.user_is_admin
            or request.user_id in settings.admin_users
            or bool(set(request.user_roles) & set(settings.admin_roles))
        )

    def plan(self, request: ImagineRequest, settings: CommunitySettings) -> LimitPlan:
        """The limits that apply to this request's user."""
        return resolve_plan(
            settings,
            self.defaults.limits,
            user_id=request.user_id,
            roles=request.user_roles,
            is_admin=self.is_admin(request, settings),
        )

    def safety_tolerance(
        self,
        request: ImagineRequest,
        settings: CommunitySettings | None,
        variant: Variant | None = None,
    ) -> int:
        """BFL's 0-6 scale for this request (see ``bot.domain.safety``); ``standard`` is 2."""
        endpoint = (
            (variant.safety_min, variant.safety_max)
            if variant is not None
            else (MIN_TOLERANCE, MAX_TOLERANCE)
        )
        return effective_tolerance(
            settings or self.new_settings(request.community_id),
            channel_id=request.channel_id,
            age_restricted=request.channel_age_restricted,
            endpoint_range=endpoint,
        )

    def may_post(
        self,
        job: Job,
        settings: CommunitySettings | None,
        *,
        channel_age_restricted: bool | None = None,
        variant: Variant | None = None,
    ) -> bool:
        """Checked again just before posting: False when the image was made at a tolerance the
        channel no longer allows (the community lowered its level, or the channel lost its
        age restriction; ``channel_age_restricted`` None means "as when it was accepted")."""
        used = job.request.safety_tolerance
        if used is None:
            return True
        request = job.request
        if channel_age_restricted is not None:
            request = request.with_changes(channel_age_restricted=channel_age_restricted)
        return used <= self.safety_tolerance(request, settings, variant)
