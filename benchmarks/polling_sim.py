"""The polling schedule against simulated tasks on a simulated clock (no servers, no sleep).

``python -m benchmarks.polling_sim`` prints polls per job and the mean and worst overshoot (how long
after the finish the poll that saw it came) for generation times spread evenly over 1-20 s, next
to the seed's fixed 1 s loop.
"""

from __future__ import annotations

import statistics

from tests.fakes.simulated_task import SimTask, fixed_loop, simulate, spread

TYPICAL = 8.0


def summary(runs: list[tuple[int, float]]) -> str:
    polls = statistics.mean(p for p, _ in runs)
    late = [late * 1000 for _, late in runs]
    return (
        f"{polls:5.2f} polls/job, overshoot mean {statistics.mean(late):5.0f} ms, "
        f"max {max(late):5.0f} ms"
    )


def main() -> None:
    finishes = spread()
    rows = {
        "progress": [simulate(SimTask(f), TYPICAL) for f in finishes],
        "progress, 30 ms submit lag": [simulate(SimTask(f), TYPICAL, lag=0.03) for f in finishes],
        "progress after a 0.5 s queue": [
            simulate(SimTask(f + 0.5, start=0.5), TYPICAL) for f in finishes
        ],
        "progress after a 2 s queue": [
            simulate(SimTask(f + 2.0, start=2.0), TYPICAL) for f in finishes
        ],
        "no progress": [simulate(SimTask(f, reports_progress=False), TYPICAL) for f in finishes],
        "seed's 1 s loop": [fixed_loop(f) for f in finishes],
    }
    print(f"generation 1-20 s ({len(finishes)} tasks), typical {TYPICAL:g} s")
    for name, runs in rows.items():
        print(f"  {name:30} {summary(runs)}")


if __name__ == "__main__":
    main()
