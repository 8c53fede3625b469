"""When to ask a provider again. A task that reports progress is polled early once, for a first
sample, then at the middle and the end of the short window where its samples put the finish; one
without progress is polled near the variant's usual time, then in steps that grow with the time
spent. ``Retry-After`` always wins. With a webhook on the way, only a slow safety poll remains
(webhooks get lost)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Literal

# A poll never comes sooner than this after the previous one.
FLOOR = 0.15
# Without progress: steps between polls stay within these bounds.
MIN_STEP = 0.5
MAX_STEP = 5.0
# Without progress, past the usual time, each step is this share of the time spent so far.
GROWTH = 0.15
# The step from a poll at the middle of the finish window to its end may be this short, and a
# window whose half is this long is still cut at its middle: the finish is near, and it is one
# poll (the simulator: 25 ms after the finish on average at 4.2 polls, against 29 ms at 4.1
# with 0.05).
MIDDLE_STEP = 0.02
# With progress, a sample still comes at least this often (a wrong estimate cannot hide a task).
MAX_SAMPLE_GAP = 10.0
# With a webhook expected, the safety poll's period.
WEBHOOK_SAFETY_STEP = 30.0
# With progress, the first poll comes at this share of the usual time. It is the poll that yields
# the first sample, and a task faster than it is late by the difference, so it comes early: with
# times spread from about 1/8 to 2.5 times the usual one, few tasks beat it, and it still finds
# enough progress (5 % or more) to aim the next poll.
EARLY_SHARE = 0.125
# Providers round progress to hundredths: a reported value stands for +- half of one.
ROUNDING = 0.005
# A pending task reports at most this much progress; at it, the sample bounds the finish one way.
PROGRESS_CAP = 0.99
# Far from the finish, the next sample comes at this share of the time the task surely still runs.
APPROACH_SHARE = 0.95
# With one sample the rate is a guess (progress is taken to have started at the submit), so the
# second sample comes this far towards the earliest finish, where a queue wait cannot yet hide it.
GUESS_SHARE = 0.5
# Another sample is worth a poll while the finish window is this many times wider than the
# narrowest one rounded progress can give (about 1 % of the generation time).
SHARPEN_RATIO = 2.0


Aim = Literal["sample", "middle", "end"]


@dataclass(frozen=True)
class Window:
    """Seconds after the submit between which the task finishes; ``measured`` when the rate comes
    from two samples rather than from one and a guess of when progress started."""

    earliest: float
    latest: float
    measured: bool = False


@dataclass
class Schedule:
    """One job's waiting: its usual time, its progress samples and how often the poll aimed at its
    finish came too soon. ``next_delay`` is the one place that decides."""

    typical: float
    webhook: bool = False
    reports_progress: bool = False
    samples: list[tuple[float, float]] = field(default_factory=list)
    misses: int = 0
    # What the coming poll aims at: "sample" (the task surely still runs), "middle" (of the
    # finish window, cutting it in two), "end" (the latest finish).
    aim: Aim = "sample"

    @property
    def aimed_at_finish(self) -> bool:
        return self.aim != "sample"

    def first_delay(self, eta: float | None = None) -> float:
        """Seconds from the submit to the first poll."""
        return first_poll_delay(
            self.typical, eta=eta, webhook=self.webhook, early=self.reports_progress
        )

    def next_delay(
        self, elapsed: float, progress: float | None = None, retry_after: float | None = None
    ) -> float:
        """Seconds to the next poll after a pending answer ``elapsed`` seconds after the submit,
        which carried ``progress`` (0..1) if the provider reports it."""
        if progress is not None or self.reports_progress:
            self.samples.append((elapsed, progress or 0.0))
        after_middle = self.aim == "middle"
        if self.aim == "end":  # the latest finish passed and the task still runs: a wrong guess
            self.misses += 1
        window = None if self.webhook else finish_window(self.samples)
        if window is not None:
            delay, self.aim = progress_delay(elapsed, window, self.misses, after_middle)
        elif self.reports_progress and not self.webhook:
            # No progress yet (queued, or not said): the wait so far is the best guess of the
            # wait to come.
            delay, self.aim = min(MAX_STEP, max(MIN_STEP, elapsed)), "sample"
        else:
            delay = next_poll_delay(elapsed, self.typical, None, webhook=self.webhook)
            self.aim = "sample"
        return max(delay, retry_after or 0.0)


def first_poll_delay(
    typical: float, *, eta: float | None = None, webhook: bool = False, early: bool = False
) -> float:
    """Seconds from the submit to the first poll; ``early`` when the task reports progress."""
    expected = eta if eta is not None else typical
    if webhook:
        return max(10.0, expected * 2)
    if early:
        return max(FLOOR, expected * EARLY_SHARE)
    return max(0.0, expected * 0.85)


def next_poll_delay(
    elapsed: float, typical: float, retry_after: float | None, *, webhook: bool = False
) -> float:
    """Without progress: seconds to the next poll, ``elapsed`` seconds after the submit."""
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


def progress_delay(
    elapsed: float, window: Window, misses: int, after_middle: bool = False
) -> tuple[float, Aim]:
    """Seconds to the next poll from the finish window, and what that poll aims at.

    Far from the finish and with a wide window, the next sample comes while the task surely still
    runs, to narrow the window ("sample"). Near it, the first poll aimed at the finish comes at
    the middle of the window ("middle"): half the tasks are done by then, and the others get one
    more poll at the window's end, a short step later, which halves the mean wait after the
    finish for about half a poll more. Otherwise the poll comes just after the latest finish
    ("end"); each such poll that came too soon doubles the shortest step."""
    shortest = min(MAX_STEP, FLOOR * 2**misses)
    narrowest = SHARPEN_RATIO * 2 * ROUNDING * window.latest
    # Towards the earliest finish; with none ahead (progress only just started), halfway to the
    # latest one, but no longer than the wait so far.
    if window.earliest > elapsed:
        share = APPROACH_SHARE if window.measured else GUESS_SHARE
        approach = share * (window.earliest - elapsed)
    else:
        approach = min(elapsed, (window.latest - elapsed) / 2)
    if window.latest - window.earliest > narrowest and approach >= shortest:
        return min(MAX_SAMPLE_GAP, approach), "sample"
    start = max(window.earliest, elapsed)
    half = (window.latest - start) / 2
    to_middle = start + half - elapsed
    if misses == 0 and not after_middle and half >= MIDDLE_STEP and to_middle >= FLOOR:
        return min(MAX_SAMPLE_GAP, to_middle), "middle"
    # Right after a poll at the middle the end may come sooner than the usual shortest step.
    step = MIDDLE_STEP if after_middle and misses == 0 else shortest
    return min(MAX_SAMPLE_GAP, max(step, window.latest - elapsed)), "end"


def finish_window(samples: Sequence[tuple[float, float]]) -> Window | None:
    """Where the finish lies, from (elapsed, progress) samples of a pending task; ``None`` while
    no sample shows progress (no progress reported, or 0: still queued).

    With one sample, progress is taken to grow evenly from the submit. With more, each pair gives
    a rate and so a window, which holds even when progress started after a queue wait; the finish
    lies in all of them (rounding puts each a little apart, so together they are narrower)."""
    moving = [(e, p) for e, p in samples if p > 0]
    if not moving:
        return None
    last = moving[-1]
    queued = [e for e, p in samples if p <= 0 and e < moving[0][0]]
    evenly = [_from_start(queued[-1] if queued else 0.0, *sample) for sample in moving]
    # Progress that started late only makes these later, so their latest finish holds anyway.
    latest = min(w.latest for w in evenly)
    rates = [w for a, b in combinations(moving, 2) if (w := _from_rate(a, b)) is not None]
    if not rates:
        return Window(max(evenly[-1].earliest, last[0]), max(latest, last[0]))
    earliest = max(w.earliest for w in rates)
    latest = min(latest, *(w.latest for w in rates))
    if earliest > latest:
        earliest = last[0]  # progress that does not grow evenly: no lower bound then
    # Still pending at the last sample: it cannot have finished before.
    return Window(max(earliest, last[0]), max(latest, last[0]), measured=True)


def _bounds(progress: float) -> tuple[float, float]:
    """The true progress behind a rounded report (at the cap, anything up to the finish)."""
    high = 1.0 if progress >= PROGRESS_CAP else progress + ROUNDING
    return max(0.0, progress - ROUNDING), min(1.0, high)


def _from_start(start: float, elapsed: float, progress: float) -> Window:
    """Progress grows evenly from ``start`` at the latest: from the submit, or after the last
    sample that still showed none (then it may have started any time since, so the task may also
    be about to finish)."""
    low, high = _bounds(progress)
    latest = start + (elapsed - start) / max(low, ROUNDING)
    return Window(elapsed if start > 0 else elapsed / high, latest)


def _from_rate(first: tuple[float, float], last: tuple[float, float]) -> Window | None:
    span = last[0] - first[0]
    (first_low, first_high), (last_low, last_high) = _bounds(first[1]), _bounds(last[1])
    slowest = (last_low - first_high) / span if span > 0 else 0.0
    if slowest <= 0:
        return None  # too little change between them to tell a rate
    fastest = (last_high - first_low) / span
    return Window(last[0] + (1 - last_high) / fastest, last[0] + (1 - last_low) / slowest)
