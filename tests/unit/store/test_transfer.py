"""``imagine-bot migrate-sqlite-to-postgres``: an existing SQLite install moves to PostgreSQL with
every job, setting, limit state and audit line, and the bot carries on from there."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.domain.community import AuditEntry
from bot.domain.limits import LimitPlan
from bot.domain.models import CommunitySettings, JobStatus
from bot.runtime.cli import main
from bot.store import open_store
from tests.factories import make_job, make_request
from tests.pg import private_schema
from tests.store_helpers import claim_next_job, enqueue_job, save_settings

pytestmark = pytest.mark.postgres

NOW = 1_700_000_000.0
CONSOLE = {"console"}


@pytest.fixture
async def url() -> AsyncIterator[str]:
    async with private_schema() as schema_url:
        yield schema_url


def plan(user: str) -> LimitPlan:
    return LimitPlan(
        community_id="c1",
        user_id=user,
        rate=5,
        period=60.0,
        burst=5,
        daily=100,
        max_in_flight=None,
        community_daily=None,
        community_budget_usd=None,
    )


async def test_every_row_moves_and_the_bot_carries_on(
    tmp_path: Path, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    sqlite_url = f"sqlite:///{data / 'imagine.db'}"
    async with open_store(sqlite_url) as old:
        done = make_job(request=make_request(prompt="long done"))
        await enqueue_job(old, done)
        claimed = await claim_next_job(old, "w1", NOW, 30, CONSOLE)
        assert claimed is not None and claimed.id == done.id
        queued = make_job(request=make_request(prompt="still waiting", dedupe_key="console:e1"))
        await enqueue_job(old, queued)
        admitted = await old.admit_job(make_job(request=make_request(user_id="u7")), plan("u7"))
        assert admitted.created
        delivered = claimed.evolve(
            status=JobStatus.DELIVERED,
            outcome_sent=True,
            images=(f"{claimed.id}/1.png",),
            delivery={"message": "m1"},
            finished_at=NOW + 5,
            lease_owner=None,
            lease_expires_at=None,
        )
        assert await old.save_job_step(delivered, worker_id="w1", expected=JobStatus.QUEUED)
        settings = CommunitySettings("c1", safety_level="strict", banned_users=("u9",))
        await save_settings(old, settings, NOW)
        for n in range(3):
            await old.add_audit(AuditEntry("c1", NOW + n, "admin", "change", f"step {n}"))
        jobs_before = {j.id: await old.get_job(j.id) for j in (queued, admitted.job, done)}
        usage_before = await old.read_usage(plan("u7"), NOW)

    env = {"IMAGINE_DATA_DIR": str(data), "IMAGINE_DATABASE_URL": url}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        assert await asyncio.to_thread(main, ["migrate-sqlite-to-postgres"]) == 0
        out = capsys.readouterr().out
        assert "jobs: 3 of 3 rows copied" in out
        # Run again (say it stopped half-way): nothing is copied twice.
        assert await asyncio.to_thread(main, ["migrate-sqlite-to-postgres"]) == 0
        assert "jobs: 0 of 3 rows copied" in capsys.readouterr().out

    async with open_store(url) as new:
        for job_id, before in jobs_before.items():
            assert await new.get_job(job_id) == before
        assert await new.get_settings("c1") == settings
        audit = await new.list_audit("c1", 10)
        assert [a.action for a in audit] == ["step 2", "step 1", "step 0", "test setup"]
        await new.add_audit(AuditEntry("c1", NOW + 9, "admin", "change", "after the move"))
        assert (await new.list_audit("c1", 1))[0].action == "after the move"
        assert await new.read_usage(plan("u7"), NOW) == usage_before
        # The same event replayed after the move is still one job.
        _, created = await enqueue_job(
            new, make_job(request=make_request(prompt="still waiting", dedupe_key="console:e1"))
        )
        assert not created
        # The queued jobs are worked on from where they stood.
        claims = [await claim_next_job(new, "w2", NOW + 60, 30, CONSOLE) for _ in range(3)]
        assert {c.id for c in claims if c is not None} == {queued.id, admitted.job.id}


async def test_refuses_without_a_postgres_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGINE_DATA_DIR", str(tmp_path / "data"))
    assert await asyncio.to_thread(main, ["migrate-sqlite-to-postgres"]) == 2
    assert "postgresql:// URL to copy into" in capsys.readouterr().err


async def test_says_when_there_is_no_sqlite_database(
    tmp_path: Path, url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGINE_DATABASE_URL", url)
    missing = tmp_path / "nowhere.db"
    assert (
        await asyncio.to_thread(main, ["migrate-sqlite-to-postgres", "--sqlite", str(missing)]) == 5
    )
    assert f"no SQLite database at {missing}" in capsys.readouterr().err
    assert not missing.exists()
