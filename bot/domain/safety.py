"""Safety tolerance: the level a community chose, capped by the channel and the model endpoint.

Levels are named (``strict``, ``standard``, ``relaxed``, ``adult``) or raw tolerances 0-6 on Black
Forest Labs' scale (0 strictest, 6 most permissive); ``standard`` is 2. The effective tolerance of
a request is::

    min(level, channel cap), then held inside the endpoint's allowed range

where ``level`` is the channel's own override if an admin set one, else the community's level, and
the channel cap is ``standard`` outside an age-restricted channel (a thread follows its parent: the
adapter reports the parent's flag) and 6 inside one. So ``adult`` only ever applies in an
age-restricted channel. The worker checks again before posting: an image made at a tolerance the
channel no longer allows is not posted.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.errors import InvalidRequest
from bot.domain.models import CommunitySettings

MIN_TOLERANCE = 0
MAX_TOLERANCE = 6
NAMED_LEVELS = {"strict": 0, "standard": 2, "relaxed": 4, "adult": 6}
STANDARD = NAMED_LEVELS["standard"]
# Outside an age-restricted channel nothing above ``standard`` is allowed.
OPEN_CHANNEL_CAP = STANDARD


@dataclass(frozen=True)
class SafetyLevel:
    name: str
    tolerance: int


def parse_level(text: str | int) -> SafetyLevel:
    """A named level or a raw tolerance 0-6; raises InvalidRequest listing the choices."""
    raw = str(text).strip().lower()
    if raw in NAMED_LEVELS:
        return SafetyLevel(raw, NAMED_LEVELS[raw])
    if raw.isdigit() and MIN_TOLERANCE <= int(raw) <= MAX_TOLERANCE:
        value = int(raw)
        for name, tolerance in NAMED_LEVELS.items():
            if tolerance == value:
                return SafetyLevel(name, value)
        return SafetyLevel(str(value), value)
    raise InvalidRequest(
        f"Unknown safety level {str(text)!r}. Choose strict, standard, relaxed, adult, "
        f"or a number from {MIN_TOLERANCE} to {MAX_TOLERANCE}."
    )


def level_tolerance(text: str) -> int:
    """The tolerance of a stored level; an unreadable stored value falls back to ``standard``."""
    try:
        return parse_level(text).tolerance
    except InvalidRequest:
        return STANDARD


def channel_cap(age_restricted: bool) -> int:
    return MAX_TOLERANCE if age_restricted else OPEN_CHANNEL_CAP


def effective_tolerance(
    settings: CommunitySettings,
    *,
    channel_id: str,
    age_restricted: bool,
    endpoint_range: tuple[int, int] = (MIN_TOLERANCE, MAX_TOLERANCE),
) -> int:
    """The tolerance a request runs at (see the module docstring)."""
    override = settings.channel_safety.get(channel_id)
    chosen = level_tolerance(override if override is not None else settings.safety_level)
    value = min(chosen, channel_cap(age_restricted))
    low, high = endpoint_range
    return max(low, min(high, value))
