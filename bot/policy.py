"""Who may ask for what: the checks between a command and a stored job, in their fixed order.

Order: banned user, channel allowed, prompt filter, rate limits and quotas (the last two grow with
the policy core).
"""

from __future__ import annotations

from bot.errors import PolicyRefusal
from bot.models import CommunitySettings, ImagineRequest


class Policy:
    async def admit(self, request: ImagineRequest, settings: CommunitySettings) -> None:
        """Raise PolicyRefusal with a message for the user when the request may not run."""
        if request.user_id in settings.banned_users:
            raise PolicyRefusal(
                "You are not allowed to use /imagine in this community.", code="banned"
            )
        if settings.allowed_channels and request.channel_id not in settings.allowed_channels:
            raise PolicyRefusal(
                "/imagine is not enabled in this channel; a moderator can allow it.",
                code="channel_not_allowed",
            )

    def safety_tolerance(self, request: ImagineRequest, settings: CommunitySettings) -> int:
        """BFL's 0-6 scale; the default ``standard`` level is 2."""
        return 2
