"""When to ask a provider again: the first poll near the variant's usual time, then short steps
close to it and longer ones far past it; ``Retry-After`` always wins. With a webhook on the way,
only a slow safety poll remains (webhooks get lost)."""

from __future__ import annotations

# A poll never comes sooner than this after the previous one.
MIN_STEP = 0.5
# Far past the usual time a poll still comes at least this often.
MAX_STEP = 5.0
# Past the usual time, each step is this share of the time spent so far.
GROWTH = 0.15
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
        # Early (a Retry-After, or a restart): straight to the usual finish.
        delay = max(MIN_STEP, typical - elapsed)
    else:
        # Past the usual time: steps grow with the time already spent (a geometric schedule), so
        # a slow task costs few polls and a fast one little added latency.
        delay = min(MAX_STEP, max(MIN_STEP, elapsed * GROWTH))
    return max(delay, retry_after or 0.0)
