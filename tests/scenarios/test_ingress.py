"""Ingress: who may talk to the bot (RELIABILITY.md 1-6). Signed requests to the bot's own HTTP
server, Discord interactions through discord.py's own state, a real SQLite file or PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.discord import create_adapter as create_discord
from adapters.slack import create_adapter as create_slack
from bot.domain.clock import ManualClock
from bot.domain.models import JobStatus
from bot.runtime.app import App
from tests.discord.conftest import Bot, discord_env
from tests.fakes.discord import BOT_TOKEN as DISCORD_TOKEN
from tests.fakes.discord import GUILD_ID, MANAGE_GUILD, MEMBER_PERMISSIONS, FakeDiscord
from tests.fakes.slack import FakeSlack, sign, signed_headers
from tests.pg import private_schema
from tests.scenarios.conftest import opened_app, settle
from tests.slack.conftest import BOT_TOKEN, SIGNING_SECRET, SlackBot, new_trigger


def _headers(body: bytes, timestamp: str, signature: str | None = None) -> dict[str, str]:
    return {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": sign(SIGNING_SECRET, body, timestamp)
        if signature is None
        else signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }


async def _no_job_and_no_call(slack_bot: SlackBot) -> None:
    await slack_bot.settle()
    assert await slack_bot.jobs() == []
    assert [c.method for c in slack_bot.fake.calls if c.method != "auth.test"] == []


async def test_s01_fifty_concurrent_signed_commands_are_acked_at_once_and_all_served(
    slack_bot: SlackBot,
) -> None:
    """50 valid commands at once: each gets 200 with its ack in the body (the ack comes before any
    storage or provider call, so it never waits on them), and each ends with its image."""
    bodies = [
        slack_bot.command_body(f"a tiny boat {n} --size 64x64", user=f"U{n}") for n in range(50)
    ]
    replies = await asyncio.gather(*(slack_bot.signed(body) for body in bodies))
    assert [r.status for r in replies] == [200] * 50
    assert all("Queued" in r.json["text"] for r in replies)
    await slack_bot.settle()
    jobs = await slack_bot.jobs()
    assert len(jobs) == 50 and {j.status for j in jobs} == {JobStatus.DELIVERED}
    assert len(slack_bot.fake.shared_files()) == 50


TAMPERING = ["stale", "future", "one_byte", "no_signature", "no_timestamp", "other_secret"]


async def test_s02_unsigned_stale_or_altered_requests_get_401_and_no_job(
    slack_bot: SlackBot,
) -> None:
    now = int(slack_bot.clock.now())
    for tamper in TAMPERING:
        body = slack_bot.command_body("a fox")
        headers = _headers(body, str(now))
        if tamper == "stale":
            headers = _headers(body, str(now - 301))
        elif tamper == "future":
            headers = _headers(body, str(now + 301))
        elif tamper == "one_byte":
            body = body.replace(b"a+fox", b"a+fix")
        elif tamper == "no_signature":
            del headers["X-Slack-Signature"]
        elif tamper == "no_timestamp":
            del headers["X-Slack-Request-Timestamp"]
        elif tamper == "other_secret":
            headers["X-Slack-Signature"] = sign("not-the-secret", body, str(now))
        reply = await slack_bot.post(body, headers)
        assert reply.status == 401, tamper
    await _no_job_and_no_call(slack_bot)


async def test_s03_malformed_timestamps_get_401_never_500(slack_bot: SlackBot) -> None:
    for stamp in ["abc", "", "1e3", "0x10", "nan", "9" * 40, "-1", "١٧"]:
        body = slack_bot.command_body("a fox")
        reply = await slack_bot.post(body, _headers(body, stamp))
        assert reply.status == 401, stamp
    await _no_job_and_no_call(slack_bot)


async def test_s04_a_request_replayed_within_five_minutes_makes_one_job(
    slack_bot: SlackBot,
) -> None:
    """An attacker (or Slack's own retry) replays a captured, validly signed request: the same
    trigger id is one job, one image, one charge, however often and however concurrently."""
    body = slack_bot.command_body("a lighthouse --size 64x64")
    headers = signed_headers(SIGNING_SECRET, body, timestamp=slack_bot.clock.now())
    first = await slack_bot.post(body, headers)
    slack_bot.clock.advance(120)
    replays = await asyncio.gather(*(slack_bot.post(body, headers) for _ in range(5)))
    assert first.status == 200 and all(r.status == 200 for r in replays)
    await slack_bot.settle()
    [job] = await slack_bot.jobs()
    assert job.status is JobStatus.DELIVERED
    assert len(slack_bot.fake.shared_files()) == 1
    quota = await slack_bot.app.service.quota("T1", "U1")
    assert quota.used_today == 1


@contextlib.asynccontextmanager
async def shared_database(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    if backend == "postgres":
        async with private_schema() as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'shared.db'}"


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_s05_the_same_slack_command_at_two_instances_makes_one_job(
    tmp_path: Path, fake_slack: FakeSlack, backend: str
) -> None:
    """Two bot instances on one database each receive the same signed command (a retry routed to the
    other instance by a load balancer): one job, one image."""
    clock = ManualClock(start=time.time())
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(shared_database(backend, tmp_path))
        apps: list[App] = []
        adapters: list[Any] = []
        ports: list[int] = []
        for n in range(2):
            app = await stack.enter_async_context(
                opened_app(
                    tmp_path / f"data{n}",
                    clock=clock,
                    IMAGINE_DATABASE_URL=url,
                    SLACK_BOT_TOKEN=BOT_TOKEN,
                    SLACK_SIGNING_SECRET=SIGNING_SECRET,
                    SLACK_API_URL=fake_slack.api_url,
                    IMAGINE_HTTP_PORT="0",
                    IMAGINE_BLOB_URL=f"file://{tmp_path / 'images'}",
                )
            )
            adapter = create_slack(app, gateway=True)
            adapter.attach()
            stack.push_async_callback(adapter.aclose)
            adapters.append(adapter)
            ports.append(await app.http_server.start())
            await app.start_workers()
            apps.append(app)
        trigger = new_trigger()
        from tests.slack.conftest import SlackBot as Helper

        helper = Helper(apps[0], adapter, fake_slack, clock, "", None)  # type: ignore[arg-type]
        body = helper.command_body("a duplicate heron --size 64x64", trigger=trigger)
        headers = signed_headers(SIGNING_SECRET, body, timestamp=clock.now())
        async with aiohttp.ClientSession() as http:

            async def post(port: int) -> int:
                url = f"http://127.0.0.1:{port}/slack/events"
                async with http.post(url, data=body, headers=headers) as response:
                    return response.status

            statuses = await asyncio.gather(*(post(p) for p in ports * 2))
        assert statuses == [200] * 4
        for adapter in adapters:
            await adapter.drain()
        for app in apps:
            await settle(app, {"slack"})
        counts = [await app.store.job_counts() for app in apps]
        job = await apps[0].store.get_job(
            (await _only_job_id(apps[0], backend, url, tmp_path)) or ""
        )
    assert job is not None and job.request.dedupe_key == f"slack:{trigger}"
    assert job.status is JobStatus.DELIVERED
    assert counts[0].queued == 0 and counts[1].queued == 0
    assert len(fake_slack.shared_files()) == 1


async def _only_job_id(app: App, backend: str, url: str, tmp_path: Path) -> str | None:
    """The id of the one stored job; fails when there is not exactly one."""
    if backend == "postgres":
        import asyncpg

        conn = await asyncpg.connect(url)
        try:
            ids = [r["id"] for r in await conn.fetch("SELECT id FROM jobs")]
        finally:
            await conn.close()
    else:
        import sqlite3

        with contextlib.closing(sqlite3.connect(tmp_path / "shared.db")) as db:
            ids = [r[0] for r in db.execute("SELECT id FROM jobs")]
    assert len(ids) == 1, ids
    return str(ids[0])


async def test_s05_the_same_discord_interaction_at_two_instances_makes_one_job(
    tmp_path: Path, fake_discord: FakeDiscord
) -> None:
    """A gateway replay (RESUME) or a shard running twice hands the same INTERACTION_CREATE to two
    instances sharing one database: one job, one image; the second instance's acknowledgement is
    refused by Discord and the user sees nothing twice."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    async with contextlib.AsyncExitStack() as stack:
        bots: list[Bot] = []
        for n in range(2):
            env = discord_env(fake_discord, tmp_path / f"data{n}", IMAGINE_DATABASE_URL=url)
            app = await stack.enter_async_context(
                opened_app(
                    tmp_path / f"data{n}",
                    **{k: v for k, v in env.items() if k != "IMAGINE_DATA_DIR"},
                    IMAGINE_BLOB_URL=f"file://{tmp_path / 'images'}",
                )
            )
            adapter = create_discord(app, gateway=True)
            adapter.attach()
            stack.push_async_callback(adapter.aclose)
            assert adapter.client is not None
            await adapter.client.login(DISCORD_TOKEN)
            await app.start_workers()
            bots.append(Bot(app, adapter, fake_discord))
        payload = fake_discord.imagine("a duplicate crane", aspect="1:1")
        token = payload["token"]
        for b in bots:
            b.feed(dict(payload))

        def image_posted() -> Any:
            return [
                r for r in fake_discord.calls("update_original_webhook_message", token) if r.files
            ]

        await fake_discord.wait_for(image_posted, what="the image")
        for b in bots:
            await settle(b.app, {"discord"})
        job_id = await _only_job_id(bots[0].app, "sqlite", url, tmp_path)
        job = await bots[0].app.service.job(job_id or "")
    assert job.status is JobStatus.DELIVERED
    assert job.request.dedupe_key == f"discord:{fake_discord.interactions[token].id}"
    assert len(image_posted()) == 1


async def test_s06_a_member_re_granted_the_admin_command_is_still_refused_and_audited(
    bot: Bot,
) -> None:
    """Server admins can re-grant /imagine-admin to everyone in Discord's UI; the bot checks the
    member's own permissions itself: refused, nothing changed, the attempt in the audit log."""
    member = "1400000000000000123"
    payload = bot.fake.command(
        "imagine-admin",
        [
            {
                "name": "safety",
                "type": 1,
                "options": [{"name": "level", "type": 3, "value": "adult"}],
            }
        ],
        user_id=member,
        permissions=MEMBER_PERMISSIONS,
    )
    token = bot.feed(payload)

    def answered() -> Any:
        calls = bot.fake.calls("update_original_webhook_message", token)
        return calls[-1] if calls else None

    edit = await bot.fake.wait_for(answered, what="the refusal")
    assert "admins" in edit.json["content"]
    settings = await bot.app.service.get_settings(GUILD_ID)
    assert settings.safety_level == "standard"
    [entry, *_] = await bot.app.store.list_audit(GUILD_ID, 5)
    assert entry.kind == "denied" and entry.actor_id == member
    # And the same command from a member with Manage Server goes through.
    admin = bot.fake.command(
        "imagine-admin",
        [
            {
                "name": "safety",
                "type": 1,
                "options": [{"name": "level", "type": 3, "value": "strict"}],
            }
        ],
        user_id="1400000000000000124",
        permissions=MEMBER_PERMISSIONS | MANAGE_GUILD,
    )
    bot.feed(admin)
    async with asyncio.timeout(20):
        while (await bot.app.service.get_settings(GUILD_ID)).safety_level != "strict":
            await asyncio.sleep(0.05)
