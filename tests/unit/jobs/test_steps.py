"""Storing a job's steps under its lease: a step saved only while the lease holds, an ending with
its outcome's message, a hand-back, retries until the attempts are spent, the provider slots and
the crash hook."""

from __future__ import annotations

import ast
import random
from dataclasses import replace
from pathlib import Path

import pytest

from bot.domain.models import JobStatus
from bot.jobs.outcomes import INTERNAL, MODERATED
from bot.jobs.steps import LeaseLost, Released, backoff
from bot.ports import Progress
from bot.providers.offline import OfflineProvider
from tests.unit.jobs.conftest import Rig


async def test_a_step_is_stored_while_the_lease_holds(rig: Rig) -> None:
    steps = rig.steps()
    job = await rig.claimed()
    rig.clock.advance(3)
    saved = await steps.save(job, job.evolve(status=JobStatus.SUBMITTED, provider="offline"))
    assert saved.updated_at == rig.clock.now()
    stored = await rig.store.get_job(job.id)
    assert stored is not None and stored.status is JobStatus.SUBMITTED


async def test_a_step_from_a_stale_reading_is_refused(rig: Rig) -> None:
    steps = rig.steps()
    job = await rig.claimed()
    await steps.save(job, job.evolve(status=JobStatus.SUBMITTED))
    with pytest.raises(LeaseLost):  # another actor moved the job on meanwhile
        await steps.save(job, job.evolve(status=JobStatus.SUBMITTED))


async def test_finish_stores_the_outcome_with_the_job_id_in_its_message(rig: Rig) -> None:
    steps = rig.steps()
    job = await rig.claimed()
    ended = await steps.finish(job, MODERATED)
    stored = await rig.store.get_job(job.id)
    assert stored == ended
    assert (stored.status, stored.error_code) == (JobStatus.MODERATED, "moderated")
    assert stored.error_message == f"{MODERATED.message} (job {job.id})"
    assert stored.finished_at == rig.clock.now()


async def test_requeue_hands_the_job_back_for_later(rig: Rig) -> None:
    steps = rig.steps()
    job = await rig.claimed()
    with pytest.raises(Released):
        await steps.requeue(job, 2, 30.0)
    stored = await rig.store.get_job(job.id)
    assert stored is not None and stored.lease_owner is None
    assert (stored.attempts, stored.not_before) == (2, rig.clock.now() + 30.0)
    assert stored.status is JobStatus.QUEUED


async def test_retries_wait_at_least_as_asked_and_end_once_the_attempts_are_spent(
    rig: Rig,
) -> None:
    steps = rig.steps(max_attempts=3)
    job = await rig.claimed()
    with pytest.raises(Released):
        await steps.retry_or_finish(job, INTERNAL, at_least=40.0)
    stored = await rig.store.get_job(job.id)
    assert stored is not None and stored.attempts == 1
    assert stored.not_before >= rig.clock.now() + 40.0
    rig.clock.advance(60)
    [again] = await rig.store.claim_jobs(
        steps.worker_id, rig.clock.now(), 60.0, frozenset({"console"}), 1
    )
    ended = await steps.retry_or_finish(again.evolve(attempts=2), INTERNAL)
    assert (ended.status, ended.error_code) == (JobStatus.FAILED, "internal")


def test_backoff_grows_and_is_capped() -> None:
    rng = random.Random(1)
    assert all(0 <= backoff(1, rng) <= 2.0 for _ in range(50))
    assert all(0 <= backoff(30, rng) <= 60.0 for _ in range(50))
    assert max(backoff(5, rng) for _ in range(200)) > 2.0


async def test_a_job_holds_one_provider_slot_and_gives_it_back_once(rig: Rig) -> None:
    provider = OfflineProvider(concurrency=1)
    steps = rig.steps(provider)
    slot = steps.router.slot("offline")
    await steps.slots.acquire("j1", "offline")
    await steps.slots.acquire("j1", "offline")  # already held: not taken twice
    assert slot.locked()
    steps.slots.release("j1")
    steps.slots.release("j1")  # already given back: not released twice
    assert not slot.locked()
    await slot.acquire()  # one slot again, not two
    assert slot.locked()


async def test_the_crash_hook_hears_every_point_and_none_is_needed(rig: Rig) -> None:
    rig.steps().crash_point("before_submit")
    assert rig.crashes == ["before_submit"]
    steps = rig.steps()
    steps.config = replace(steps.config, crash_hook=None)
    steps.crash_point("after_submit")  # no hook configured: nothing happens
    assert rig.crashes == ["before_submit"]


async def test_progress_failures_do_not_reach_the_job(rig: Rig) -> None:
    class Broken:
        async def progress(self, job: object, progress: object) -> None:
            raise RuntimeError("platform down")

    steps = rig.steps()
    steps.deliveries = {"console": Broken()}  # type: ignore[dict-item]
    job = await rig.claimed()
    await steps.progress(job, Progress("generating"))  # does not raise
    stored = await rig.store.get_job(job.id)
    assert stored == job


def test_no_job_module_can_kill_the_process_itself() -> None:
    """Crash tests kill the process through the configured hook only (bot/runtime/crash.py)."""
    jobs = Path(__file__).resolve().parents[3] / "bot" / "jobs"
    importers = [
        path.name
        for path in sorted(jobs.glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if (isinstance(node, ast.Import) and any(a.name == "signal" for a in node.names))
        or (isinstance(node, ast.ImportFrom) and node.module == "signal")
    ]
    assert importers == []
