"""SIGKILL at each step of a job, then a restart: every job delivered exactly once, none
submitted twice once its provider task id was stored."""

from __future__ import annotations

import re
import signal
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from bot.jobs.steps import CRASH_POINTS
from tests.e2e.conftest import run_bot

DONE = re.compile(r"job (\w+): done -> (\S+\.(?:png|jpg|webp)) ")
QUEUED = re.compile(r"job (\w+): queued")
SUBMITTED = re.compile(r"job (\w+): submitted to offline")
COMMANDS = "".join(f"/imagine crash test number {i} --seed {i}\n" for i in range(4))

# After posting and before the delivery is stored, a restart posts again: the one window where
# delivery is at least once rather than exactly once (the platforms' idempotent edits cover it).
EXACTLY_ONCE_POINTS = [p for p in CRASH_POINTS if p != "after_posting"]


@pytest.mark.parametrize("point", EXACTLY_ONCE_POINTS)
def test_killed_at_each_step_every_job_is_delivered_exactly_once(
    tmp_path: Path, point: str
) -> None:
    data = tmp_path / "data"
    crashed = run_bot(
        ["run"],
        data_dir=data,
        stdin=COMMANDS,
        IMAGINE_TEST_CRASH_AT=point,
        IMAGINE_LOG_LEVEL="INFO",
        IMAGINE_WORKERS="2",
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    # The kill may come before the console printed a "queued" line: the store is the record.
    accepted = QUEUED.findall(crashed.stdout)

    restarted = run_bot(["run"], data_dir=data, IMAGINE_LOG_LEVEL="INFO")
    assert restarted.returncode == 0, restarted.stderr

    with sqlite3.connect(data / "imagine.db") as db:
        rows = dict(db.execute("SELECT id, status FROM jobs").fetchall())
    # A job may be stored a moment before the kill, without its "queued" line printed.
    assert rows, crashed.stdout
    assert set(accepted) <= set(rows)
    assert set(rows.values()) == {"delivered"}
    delivered = Counter(DONE.findall(crashed.stdout + restarted.stdout))
    by_job = Counter(job for job, _ in delivered.elements())
    assert set(by_job) == set(rows)
    assert all(count == 1 for count in by_job.values()), by_job
    for _, path in delivered:
        assert Path(path).is_file()
    submits = Counter(SUBMITTED.findall(crashed.stderr + restarted.stderr))
    assert all(count == 1 for count in submits.values()), submits
    # A kill may land between a job's stored submission and its log line, so some may be unlogged.
    assert set(submits) <= set(rows)


def test_the_crash_hook_is_inert_when_unset(tmp_path: Path) -> None:
    out = run_bot(["run"], data_dir=tmp_path / "data", stdin=COMMANDS)
    assert out.returncode == 0
    assert len(DONE.findall(out.stdout)) == 4
