"""A provider task on a simulated clock, for the polling schedule: no server, no sleep.

A task finishes ``finish`` seconds after its submit; its progress grows evenly from ``start`` (a
queue wait before it) to the finish and is reported like BFL's fake reports it: rounded to
hundredths and capped at 0.99 while pending.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bot.providers.polling import Schedule


@dataclass(frozen=True)
class SimTask:
    finish: float
    start: float = 0.0
    reports_progress: bool = True

    def progress(self, at: float) -> float | None:
        if not self.reports_progress:
            return None
        share = max(0.0, at - self.start) / (self.finish - self.start)
        return round(min(0.99, share), 2)


def simulate(
    task: SimTask, typical: float, *, lag: float = 0.0, limit: int = 1000
) -> tuple[int, float]:
    """The polls until one sees the task finished, and how long after the finish that one came.
    ``lag``: how much sooner the bot's clock starts than the provider's (the submit's own trip)."""
    schedule = Schedule(typical, reports_progress=task.reports_progress)
    now = schedule.first_delay()
    for polls in range(1, limit + 1):
        at = now - lag
        if at >= task.finish:
            return polls, at - task.finish
        now += schedule.next_delay(now, task.progress(at))
    raise AssertionError(f"not seen finished after {limit} polls")


def fixed_loop(finish: float) -> tuple[int, float]:
    """The seed's loop, a poll every second: its polls and overshoot."""
    polls = math.floor(finish) + 1
    return polls, polls - finish


def spread(low: float = 1.0, high: float = 20.0, n: int = 191) -> list[float]:
    """Generation times evenly spread from ``low`` to ``high``."""
    return [low + (high - low) * i / (n - 1) for i in range(n)]
