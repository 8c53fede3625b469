"""Personal use: /imagine outside any community that installed the bot (a DM with the bot, a
private channel, or a server where only the user installed the app). One bot-wide community holds
it, so its daily budget is bot-wide and its settings are the bot's, never changed by anyone."""

from __future__ import annotations

from bot.domain.limits import UNLIMITED
from bot.domain.models import CommunitySettings

PERSONAL_COMMUNITY = "personal"
# The strictest named level (``bot.domain.safety.NAMED_LEVELS``): nobody moderates a DM.
PERSONAL_SAFETY_LEVEL = "strict"

PERSONAL_OFF = (
    "Personal use of /imagine (in DMs, private channels, or with the app installed to your "
    "account) is turned off on this bot. Use /imagine in a server that has the bot installed."
)
PERSONAL_BUDGET_SPENT = (
    "The bot's daily budget for personal use is spent; it resets at 00:00 UTC. "
    "/imagine in a server that has the bot installed still works."
)


def is_personal(community_id: str) -> bool:
    return community_id == PERSONAL_COMMUNITY


def personal_settings(budget_usd: float | None) -> CommunitySettings:
    """The settings of personal use: the bot's user limits and word list (the defaults of every
    community), the strictest safety level, the bot-wide personal budget, no community quota."""
    return CommunitySettings(
        PERSONAL_COMMUNITY,
        safety_level=PERSONAL_SAFETY_LEVEL,
        community_daily=UNLIMITED,
        community_budget_usd=UNLIMITED if budget_usd is None else budget_usd,
        admins_exempt=False,
    )
