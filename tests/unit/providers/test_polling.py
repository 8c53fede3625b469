"""The polling schedule on a simulated clock: polls and overshoot over generation times 1-20 s,
and the edge cases of progress (none, zero, capped), Retry-After and webhooks."""

from __future__ import annotations

import statistics

import pytest

from bot.providers.polling import (
    FLOOR,
    MAX_STEP,
    MIDDLE_STEP,
    WEBHOOK_SAFETY_STEP,
    Schedule,
    Window,
    finish_window,
)
from tests.fakes.simulated_task import SimTask, fixed_loop, simulate, spread

TYPICAL = 8.0


def mean_polls(runs: list[tuple[int, float]]) -> float:
    return statistics.mean(polls for polls, _ in runs)


def mean_late(runs: list[tuple[int, float]]) -> float:
    return statistics.mean(late for _, late in runs)


@pytest.mark.parametrize("lag", [0.0, 0.03])
def test_with_progress_a_job_costs_few_polls_and_is_seen_soon_after_it_finishes(
    lag: float,
) -> None:
    finishes = spread(1.0, 20.0)
    ours = [simulate(SimTask(f), TYPICAL, lag=lag) for f in finishes]
    seed = [fixed_loop(f) for f in finishes]
    # Half a poll more than aiming at the latest finish at once buys a third less lateness.
    assert mean_polls(ours) <= min(4.5, mean_polls(seed) / 2)
    assert mean_late(ours) <= min(0.045, mean_late(seed) / 4)
    # Rounded progress cannot pin the finish closer than about 1 % of the generation time.
    for finish, (_, late) in zip(finishes, ours, strict=True):
        assert late <= 0.015 * finish + FLOOR


def test_a_queue_wait_before_progress_starts_costs_polls_not_much_latency() -> None:
    finishes = spread(1.0, 20.0)
    for queue in (0.5, 2.0):
        runs = [simulate(SimTask(queue + f, start=queue), TYPICAL) for f in finishes]
        assert mean_polls(runs) <= 6.0
        assert mean_late(runs) <= 0.15


def test_without_progress_the_usual_time_schedule_still_halves_the_polls() -> None:
    finishes = spread(1.0, 20.0)
    runs = [simulate(SimTask(f, reports_progress=False), TYPICAL) for f in finishes]
    assert mean_polls(runs) <= mean_polls([fixed_loop(f) for f in finishes]) / 2
    assert max(late for _, late in runs) <= 0.3 * 20.0


def test_an_early_first_poll_only_where_progress_will_aim_the_next() -> None:
    assert Schedule(TYPICAL, reports_progress=True).first_delay() == pytest.approx(1.0)
    assert Schedule(TYPICAL).first_delay() == pytest.approx(0.85 * TYPICAL)
    assert Schedule(TYPICAL, reports_progress=True).first_delay(eta=16.0) == pytest.approx(2.0)


def test_one_sample_assumes_progress_from_the_submit() -> None:
    window = finish_window([(2.0, 0.25)])
    assert window == Window(pytest.approx(2.0 / 0.255), pytest.approx(2.0 / 0.245))
    assert window is not None and not window.measured


def test_two_samples_measure_the_rate_so_a_late_start_does_not_mislead() -> None:
    # Progress started at 3 s and runs 10 s: samples at 4 s (0.1) and 8 s (0.5).
    window = finish_window([(4.0, 0.1), (8.0, 0.5)])
    assert window is not None and window.measured
    assert window.earliest <= 13.0 <= window.latest
    assert window.latest - window.earliest < 0.4
    # Taken from the submit, 8 s at 0.5 would say 16 s: far too late.
    assert window.latest < 14.0


def test_every_sample_narrows_the_window() -> None:
    # A task finishing at 9.144 s, seen at 1, 5 and 9 s.
    samples = [(1.0, 0.11), (5.0, 0.55), (9.0, 0.98)]
    every = finish_window(samples)
    ends = finish_window([samples[0], samples[-1]])
    assert every is not None and ends is not None
    assert every.earliest <= 9.144 <= every.latest
    assert every.latest - every.earliest < (ends.latest - ends.earliest) / 2


def test_progress_zero_means_queued_and_moves_the_start() -> None:
    assert finish_window([(1.0, 0.0)]) is None
    window = finish_window([(1.0, 0.0), (3.0, 0.2)])
    assert window is not None
    # Progress began somewhere after 1 s: it may finish any moment, or by 1 + 2 / 0.195 s.
    assert window.earliest == 3.0
    assert window.latest == pytest.approx(1.0 + 2.0 / 0.195)
    schedule = Schedule(TYPICAL, reports_progress=True)
    queued = schedule.next_delay(1.0, 0.0)
    assert FLOOR <= queued <= MAX_STEP


def test_capped_progress_bounds_the_finish_from_above_only() -> None:
    window = finish_window([(9.9, 0.99)])
    assert window == Window(9.9, pytest.approx(9.9 / 0.985))
    schedule = Schedule(TYPICAL, reports_progress=True)
    assert schedule.next_delay(9.9, 0.99) == pytest.approx(max(FLOOR, 9.9 / 0.985 - 9.9))
    assert schedule.aimed_at_finish


def test_null_progress_falls_back_to_growing_steps() -> None:
    schedule = Schedule(TYPICAL, reports_progress=True)
    now, delays = 1.0, []
    while now < 30.0:
        delays.append(schedule.next_delay(now, None))
        now += delays[-1]
    assert delays == sorted(delays)
    assert all(FLOOR <= d <= MAX_STEP for d in delays)
    assert len(delays) <= 10


def test_a_finish_that_keeps_not_coming_is_asked_ever_less_often() -> None:
    # Progress stuck at 0.99 from 10 s to 40 s (an upload after the last step, say).
    schedule = Schedule(TYPICAL, reports_progress=True)
    now, delays = 10.0, []
    while now < 40.0:
        delays.append(schedule.next_delay(now, 0.99))
        now += delays[-1]
    assert delays[-1] == MAX_STEP
    assert delays[1:] == sorted(delays[1:])
    assert len(delays) <= 14


def test_retry_after_always_wins() -> None:
    schedule = Schedule(TYPICAL, reports_progress=True)
    assert schedule.next_delay(1.0, 0.12, retry_after=30.0) == 30.0
    assert Schedule(TYPICAL).next_delay(1.0, None, retry_after=30.0) == 30.0
    assert schedule.next_delay(9.9, 0.99, retry_after=2.0) == 2.0


def test_with_a_webhook_only_the_slow_safety_poll_remains() -> None:
    schedule = Schedule(TYPICAL, webhook=True, reports_progress=True)
    assert schedule.first_delay() >= 10.0
    assert schedule.next_delay(16.0, 0.5) == WEBHOOK_SAFETY_STEP
    assert schedule.next_delay(46.0, 0.99) == WEBHOOK_SAFETY_STEP


def test_near_the_finish_the_window_is_cut_at_its_middle_then_its_end_comes_soon() -> None:
    # Seen at 2 s (0.20) and 8 s (0.80): the finish lies about 10 s after the submit, within
    # a window of a few hundredths of a second either side.
    schedule = Schedule(TYPICAL, reports_progress=True)
    schedule.samples.append((2.0, 0.20))
    window = finish_window([(2.0, 0.20), (8.0, 0.80)])
    assert window is not None
    to_middle = schedule.next_delay(8.0, 0.80)
    assert schedule.aim == "middle"
    assert 8.0 + to_middle == pytest.approx((window.earliest + window.latest) / 2, abs=0.01)
    # Still running at the middle: not a wrong guess, and the end follows a short step later.
    at = 8.0 + to_middle
    to_end = schedule.next_delay(at, 0.99)
    assert schedule.aim == "end" and schedule.misses == 0
    assert MIDDLE_STEP <= to_end < FLOOR
    assert at + to_end == pytest.approx(window.latest, abs=0.01)
