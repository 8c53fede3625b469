"""What users read of their own corner: the /history lines and the /prefer answers, the same on
every platform (each adapter gives the link to a delivered image, or none)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from bot.domain.catalog import Catalog
from bot.domain.models import Job, JobStatus
from bot.domain.preferences import Preferences, describe_preferences

HISTORY_EMPTY = "You have not made any images yet."
PREFERENCES_EMPTY = "You have no preferences set: /imagine uses the community's defaults."
PREFERENCES_RESET = "Your preferences are cleared: /imagine uses the community's defaults."
PROMPT_CHARS = 80

OUTCOMES = {
    JobStatus.QUEUED: "queued",
    JobStatus.SUBMITTED: "generating",
    JobStatus.FETCHED: "finishing",
    JobStatus.DELIVERED: "done",
    JobStatus.FAILED: "failed",
    JobStatus.MODERATED: "moderated",
    JobStatus.CANCELLED: "cancelled",
    JobStatus.EXPIRED: "expired",
}


def history_line(job: Job, catalog: Catalog, link: str | None) -> str:
    """``prompt · model · size · time · outcome · link or "private"``, one line."""
    prompt = " ".join(job.request.prompt.split())
    if len(prompt) > PROMPT_CHARS:
        prompt = prompt[: PROMPT_CHARS - 1] + "…"
    variant = catalog.variants.get(job.variant)
    when = dt.datetime.fromtimestamp(job.created_at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    where = "private" if job.request.private else (link or "-")
    outcome = OUTCOMES.get(job.status, job.status.value)
    return (
        f"{prompt} · {variant.label if variant else job.variant} · {job.width}×{job.height} · "
        f"{when} · {outcome} · {where}"
    )


def history_lines(
    jobs: Sequence[Job], catalog: Catalog, link_of: Callable[[Job], str | None]
) -> list[str]:
    return [
        f"{number}. {history_line(job, catalog, link_of(job))}"
        for number, job in enumerate(jobs, 1)
    ]


def preferences_text(prefs: Preferences) -> str:
    lines = describe_preferences(prefs)
    if not lines:
        return PREFERENCES_EMPTY
    return "Your preferences:\n" + "\n".join(f"• {line}" for line in lines)
