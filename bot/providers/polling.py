"""When to ask a provider again: the first poll near the variant's usual time, then short steps
close to it and longer ones far past it; ``Retry-After`` always wins. With a webhook on the way,
only a slow safety poll remains (webhooks get lost)."""

from __future__ import annotations

# A poll never comes sooner than this after the previous one.
MIN_STEP = 0.5
# Far past the usual time a poll still comes at least this often.
MAX_STEP = 5.0
# With a webhook expected, the safety poll's period.
WEBHOOK_SAFETY_STEP = 30.0


def first_poll_delay(typical: float, *, eta: float | None = None, webhook: bool = False) -> float:
    """Seconds from the submit to the first poll."""
    expected = eta if eta is not None else typical
    if webhook:
        return max(10.0, expected * 2)
    return max(0.0, expected * 0.85)


def next_poll_delay(
    elapsed: float, typical: float, retry_after: float | None, *, webhook: bool = False
) -> float:
    """Seconds to the next poll, ``elapsed`` seconds after the submit."""
    if webhook:
        delay = WEBHOOK_SAFETY_STEP
    elif elapsed < typical:
        # Halve the distance to the usual finish, but never in tiny steps.
        delay = max(MIN_STEP, min((typical - elapsed) / 2, typical * 0.25))
    else:
        # Past the usual time: the longer it runs, the less likely it ends within a second.
        delay = min(MAX_STEP, MIN_STEP + (elapsed - typical) * 0.2)
    return max(delay, retry_after or 0.0)
