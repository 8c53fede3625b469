"""Slack in many workspaces: OAuth install through Bolt against the fake Slack, each workspace's own
token for its requests and deliveries, tokens encrypted at rest, uninstall, bad redirects."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import sqlite3
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.slack import create_adapter
from adapters.slack.ingress import SeenEvents
from bot.domain.clock import ManualClock
from bot.ops.logs import NOISY_LOGGERS, quiet_noisy_loggers
from bot.runtime.app import open_app
from bot.runtime.config import load_settings
from tests.fakes.slack import FakeSlack, Workspace, form_body, interaction_body, signed_headers
from tests.slack.conftest import BOT_TOKEN, SIGNING_SECRET, Reply, SlackBot, new_trigger

SECRET_KEY = "test-secret-key-0123456789abcdef"
STATE_COOKIE = "slack-app-oauth-state"


class MultiBot(SlackBot):
    @property
    def base(self) -> str:
        return self.url.removesuffix("/slack/events")

    async def get(self, url: str, cookie: str | None = None) -> aiohttp.ClientResponse:
        headers = {"Cookie": f"{STATE_COOKIE}={cookie}"} if cookie else {}
        async with self.http.get(url, headers=headers, allow_redirects=False) as response:
            await response.read()
            return response

    async def install(self, workspace: Workspace) -> tuple[aiohttp.ClientResponse, str]:
        """A browser going through the install: our link, Slack's consent, our redirect."""
        self.fake.installing = workspace
        start = await self.get(f"{self.base}/slack/install")
        assert start.status == 302, start.status
        consent = await self.get(start.headers["Location"])
        assert consent.status == 302
        back = consent.headers["Location"]
        state = _query(back)["state"]
        async with self.http.get(
            back, headers={"Cookie": f"{STATE_COOKIE}={state}"}, allow_redirects=False
        ) as done:
            return done, await done.text()

    def command_in(self, team: str, text: str, *, channel: str = "C2", user: str = "U9") -> bytes:
        trigger = new_trigger()
        return form_body(
            {
                "team_id": team,
                "channel_id": channel,
                "user_id": user,
                "command": "/imagine",
                "text": text,
                "api_app_id": "A1",
                "is_enterprise_install": "false",
                "response_url": self.fake.response_url(trigger),
                "trigger_id": trigger,
            }
        )

    async def event(self, team: str, event: dict[str, Any], event_id: str, **headers: str) -> Reply:
        body = json.dumps(
            {
                "token": "legacy-verification-token",
                "team_id": team,
                "api_app_id": "A1",
                "event": event,
                "type": "event_callback",
                "event_id": event_id,
                "event_time": int(self.clock.now()),
                "authorizations": [
                    {"team_id": team, "user_id": "UBOT2", "is_bot": True, "enterprise_id": None}
                ],
            }
        ).encode()
        signed = signed_headers(
            SIGNING_SECRET, body, timestamp=self.clock.now(), content_type="application/json"
        )
        return await self.post(body, {**signed, **headers})

    def database(self) -> bytes:
        """The SQLite database as it is on disk, write-ahead log included."""
        folder = self.app.settings.data_dir
        return b"".join(p.read_bytes() for p in sorted(folder.glob("imagine.db*")))

    def installed_teams(self) -> list[str]:
        path = self.app.settings.data_dir / "imagine.db"
        with contextlib.closing(sqlite3.connect(path)) as db:
            return [row[0] for row in db.execute("SELECT team_id FROM installations")]


def _query(url: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


async def _multi_bot(
    data_dir: Path, fake: FakeSlack, extra: dict[str, str], *, workers: bool = True
) -> AsyncIterator[MultiBot]:
    settings = load_settings(
        {
            "IMAGINE_DATA_DIR": str(data_dir),
            "SLACK_CLIENT_ID": fake.client_id,
            "SLACK_CLIENT_SECRET": fake.client_secret,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "IMAGINE_SECRET_KEY": SECRET_KEY,
            "SLACK_API_URL": fake.api_url,
            "SLACK_FILES_URL": fake.files_url,
            "IMAGINE_HTTP_PORT": "0",
            **extra,
        },
        env_file=None,
    )
    clock = ManualClock(start=1_790_000_000.0)
    async with open_app(settings, clock=clock) as app:
        adapter = create_adapter(app, gateway=True)
        adapter.attach()
        port = await app.http_server.start()
        if workers:
            await app.start_workers()
        fake.redirect_url = f"http://127.0.0.1:{port}/slack/oauth_redirect"
        stop_run = asyncio.Event()
        runner = asyncio.create_task(adapter.run(stop_run))
        async with aiohttp.ClientSession() as http:
            yield MultiBot(
                app=app,
                adapter=adapter,
                fake=fake,
                clock=clock,
                url=f"http://127.0.0.1:{port}/slack/events",
                http=http,
            )
        stop_run.set()
        await runner
        await adapter.aclose()


@pytest.fixture
async def multi_bot(data_dir: Path, fake_slack: FakeSlack) -> AsyncIterator[MultiBot]:
    async for bot in _multi_bot(data_dir, fake_slack, {}):
        yield bot


SECOND = Workspace("T2", "Second", bot_user_id="UBOT2", bot_id="BBOT2")


async def test_an_install_stores_the_workspace_and_its_commands_use_its_own_token(
    multi_bot: MultiBot,
) -> None:
    done, page = await multi_bot.install(SECOND)
    assert done.status == 200
    assert "Thank you!" in page or "installed" in page.lower()
    consent = multi_bot.fake.authorize_requests[-1]
    assert consent["client_id"] == multi_bot.fake.client_id
    assert "app_mentions:read" in consent["scope"].split(",")
    assert multi_bot.installed_teams() == ["T2"]
    token = multi_bot.fake.token_of("T2")
    assert multi_bot.fake.calls_to("oauth.v2.access")[-1].args["code"].startswith("code-")

    reply = await multi_bot.signed(multi_bot.command_in("T2", "a lighthouse at dusk"))
    assert reply.status == 200 and "Queued" in reply.text
    await multi_bot.settle()
    (job,) = await multi_bot.jobs()
    assert job.community_id == "T2" and job.request.reply.data["team_id"] == "T2"
    uploads = multi_bot.fake.calls_to("files.completeUploadExternal")
    assert uploads and all(multi_bot.fake.team_of_call(c) == "T2" for c in uploads)
    assert uploads[-1].headers["Authorization"] == f"Bearer {token}"
    assert multi_bot.fake.shared_files()[-1].shared_to == "C2"
    # Encrypted at rest: the token is nowhere in the database file.
    assert token.encode() not in multi_bot.database()
    assert multi_bot.fake.violations == []


async def test_a_second_workspace_is_served_with_its_token_beside_the_first(
    multi_bot: MultiBot,
) -> None:
    await multi_bot.install(Workspace("T3", "Third", bot_user_id="UB3", bot_id="BB3"))
    await multi_bot.install(SECOND)
    assert sorted(multi_bot.installed_teams()) == ["T2", "T3"]
    await multi_bot.signed(multi_bot.command_in("T3", "a red fox", channel="C3"))
    await multi_bot.signed(multi_bot.command_in("T2", "a blue fox", channel="C2"))
    await multi_bot.settle()
    by_channel = {
        c.args.get("channel_id"): multi_bot.fake.team_of_call(c)
        for c in multi_bot.fake.calls_to("files.completeUploadExternal")
    }
    assert by_channel == {"C3": "T3", "C2": "T2"}


async def test_a_command_from_a_workspace_that_never_installed_makes_no_job(
    multi_bot: MultiBot,
) -> None:
    reply = await multi_bot.signed(multi_bot.command_in("T9", "a red fox"))
    assert reply.status == 200
    # Bolt answers through the command's response_url: the app is not installed here.
    await multi_bot.fake.wait_for(lambda: multi_bot.fake.responses)
    assert "install" in multi_bot.fake.responses[-1][1]["text"].lower()
    await multi_bot.adapter.drain()
    assert await multi_bot.jobs() == []
    assert multi_bot.fake.calls_to("chat.postMessage") == []


@pytest.mark.parametrize("problem", ["wrong", "reused", "expired", "no_cookie"])
async def test_a_redirect_with_a_bad_state_stores_nothing(
    multi_bot: MultiBot, problem: str
) -> None:
    multi_bot.fake.installing = SECOND
    start = await multi_bot.get(f"{multi_bot.base}/slack/install")
    consent = await multi_bot.get(start.headers["Location"])
    back = consent.headers["Location"]
    state = _query(back)["state"]
    if problem == "wrong":
        back = back.replace(state, "forged-state")
        response = await multi_bot.get(back, cookie="forged-state")
    elif problem == "reused":
        first = await multi_bot.get(back, cookie=state)
        assert first.status == 200
        multi_bot.fake.codes["code-again"] = (SECOND, time.time())
        response = await multi_bot.get(back.replace(_query(back)["code"], "code-again"), state)
        assert multi_bot.installed_teams() == ["T2"]  # from the first, good redirect only
        assert response.status >= 400
        return
    elif problem == "expired":
        multi_bot.clock.advance(601)
        response = await multi_bot.get(back, cookie=state)
    else:
        response = await multi_bot.get(back)
    assert response.status in (400, 401)
    assert multi_bot.installed_teams() == []
    assert multi_bot.fake.calls_to("oauth.v2.access") == []


async def test_a_failed_code_exchange_shows_the_failure_page_and_stores_nothing(
    multi_bot: MultiBot,
) -> None:
    multi_bot.fake.installing = SECOND
    start = await multi_bot.get(f"{multi_bot.base}/slack/install")
    consent = await multi_bot.get(start.headers["Location"])
    back = consent.headers["Location"]
    state = _query(back)["state"]
    multi_bot.fake.codes.clear()  # the code expired at Slack
    async with multi_bot.http.get(
        back, headers={"Cookie": f"{STATE_COOKIE}={state}"}, allow_redirects=False
    ) as response:
        page = await response.text()
    assert response.status == 401 and "invalid_code" in page
    assert multi_bot.installed_teams() == []


async def test_uninstall_deletes_the_token_and_keeps_the_workspace_settings(
    multi_bot: MultiBot,
) -> None:
    await multi_bot.install(SECOND)
    await multi_bot.signed(multi_bot.command_in("T2", "a red fox"))
    await multi_bot.settle()
    reply = await multi_bot.event("T2", {"type": "app_uninstalled"}, "Ev-uninstall")
    assert reply.status == 200
    assert multi_bot.installed_teams() == []
    multi_bot.fake.revoke("T2")
    await multi_bot.signed(multi_bot.command_in("T2", "another fox"))
    await multi_bot.fake.wait_for(lambda: multi_bot.fake.responses)
    assert "install" in multi_bot.fake.responses[-1][1]["text"].lower()
    await multi_bot.adapter.drain()
    assert len(await multi_bot.jobs()) == 1  # the first job stays, nothing new


async def test_tokens_revoked_deletes_the_bot_token(multi_bot: MultiBot) -> None:
    await multi_bot.install(SECOND)
    event = {"type": "tokens_revoked", "tokens": {"bot": ["UBOT2"]}}
    reply = await multi_bot.event("T2", event, "Ev-revoked")
    assert reply.status == 200
    assert multi_bot.installed_teams() == []


async def test_a_rotating_bot_token_is_renewed_before_it_expires_and_the_new_one_used(
    multi_bot: MultiBot, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Logging as the product sets it up at IMAGINE_LOG_LEVEL=DEBUG (the libraries held back).
    for name in NOISY_LOGGERS:
        monkeypatch.setattr(logging.getLogger(name), "level", logging.getLogger(name).level)
    quiet_noisy_loggers(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    fake = multi_bot.fake
    fake.rotation, fake.token_seconds = True, 3600  # due: under two hours left
    await multi_bot.install(SECOND)
    first = fake.token_of("T2")
    fake.token_seconds = 12 * 3600
    reply = await multi_bot.signed(multi_bot.command_in("T2", "a lighthouse at dusk"))
    assert reply.status == 200 and "Queued" in reply.text
    await multi_bot.settle()
    refreshes = [
        c for c in fake.calls_to("oauth.v2.access") if c.args.get("grant_type") == "refresh_token"
    ]
    assert len(refreshes) == 1  # once, though the command and the delivery both asked
    renewed = fake.token_of("T2")
    assert renewed != first
    uploads = fake.calls_to("files.completeUploadExternal")
    assert uploads and uploads[-1].headers["Authorization"] == f"Bearer {renewed}"
    # The old token may now stop working: nothing uses it any more.
    fake.expires[first] = time.time() - 1
    await multi_bot.signed(multi_bot.command_in("T2", "a red fox"))
    await multi_bot.settle()
    assert [job.status.value for job in await multi_bot.jobs()] == ["delivered", "delivered"]
    database = multi_bot.database()
    assert renewed.encode() not in database and b"xoxe-1-" not in database
    assert "renewed the bot token of T2" in caplog.text
    assert renewed not in caplog.text and "xoxe-1-" not in caplog.text  # even at DEBUG


def _used_up_elsewhere(bot: MultiBot) -> None:
    bot.fake.refresh_tokens.clear()  # another process used it and its new pair is not stored yet


def _out_of_reach(bot: MultiBot) -> None:
    rotator: Any = bot.adapter.bots._rotator  # its client, pointed where nothing answers
    rotator.client.base_url = "http://127.0.0.1:9/api/"


@pytest.mark.parametrize(
    ("break_renewal", "reasons"),
    [
        (_used_up_elsewhere, (["invalid_refresh_token"],)),
        # Refused, or cut at ROTATE_SECONDS.
        (_out_of_reach, (["ClientConnectorError"], ["TimeoutError"])),
    ],
    ids=["refresh-token-used-up-elsewhere", "slack-out-of-reach"],
)
async def test_a_renewal_that_fails_leaves_the_current_token_in_use(
    multi_bot: MultiBot,
    caplog: pytest.LogCaptureFixture,
    break_renewal: Callable[[MultiBot], None],
    reasons: tuple[list[str], ...],
) -> None:
    fake = multi_bot.fake
    fake.rotation, fake.token_seconds = True, 3600
    await multi_bot.install(SECOND)
    token = fake.token_of("T2")
    break_renewal(multi_bot)
    reply = await multi_bot.signed(multi_bot.command_in("T2", "a lighthouse at dusk"))
    assert reply.status == 200 and "Queued" in reply.text
    await multi_bot.settle()
    (job,) = await multi_bot.jobs()
    assert job.status.value == "delivered"
    uploads = fake.calls_to("files.completeUploadExternal")
    assert uploads[-1].headers["Authorization"] == f"Bearer {token}"
    # Tried once; the requests after it do not wait again.
    tries = re.findall(r"could not renew the bot token of T2 \((\w+)\)", caplog.text)
    assert tries in reasons


async def test_a_mention_in_a_thread_gets_its_image_in_that_thread_once(
    multi_bot: MultiBot,
) -> None:
    await multi_bot.install(SECOND)
    mention = {
        "type": "app_mention",
        "user": "U9",
        "text": "<@UBOT2> a red fox --ar 16:9",
        "ts": "1700000200.000300",
        "thread_ts": "1700000100.000100",
        "channel": "C2",
        "event_ts": "1700000200.000300",
    }
    first = await multi_bot.event("T2", mention, "Ev-mention-1")
    # Slack retries the event it thinks was lost; neither the retry nor a retry reaching after
    # the first was handled makes a second job.
    retry = await multi_bot.event(
        "T2", mention, "Ev-mention-1", **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "x"}
    )
    assert first.status == 200 and retry.status == 200
    await multi_bot.settle()
    (job,) = await multi_bot.jobs()
    assert job.request.prompt == "a red fox"
    assert job.request.reply.thread_id == "1700000100.000100"
    (shared,) = multi_bot.fake.shared_files()
    assert shared.thread_ts == "1700000100.000100" and shared.shared_to == "C2"


async def test_a_top_level_mention_starts_a_thread(multi_bot: MultiBot) -> None:
    await multi_bot.install(SECOND)
    mention = {
        "type": "app_mention",
        "user": "U9",
        "text": "<@UBOT2> a lighthouse",
        "ts": "1700000300.000100",
        "channel": "C2",
    }
    await multi_bot.event("T2", mention, "Ev-mention-2")
    await multi_bot.settle()
    (shared,) = multi_bot.fake.shared_files()
    assert shared.thread_ts == "1700000300.000100"


async def test_a_mention_retry_reaching_another_process_makes_no_second_job(
    multi_bot: MultiBot,
) -> None:
    """The in-process memory of events is bypassed (another process): the job's dedupe key holds."""
    await multi_bot.install(SECOND)
    mention = {
        "type": "app_mention",
        "user": "U9",
        "text": "<@UBOT2> owl",
        "ts": "1.1",
        "channel": "C2",
    }
    await multi_bot.event("T2", mention, "Ev-3")
    await multi_bot.settle()
    multi_bot.adapter._http._seen = SeenEvents()  # type: ignore[union-attr]
    await multi_bot.event("T2", mention, "Ev-3", **{"X-Slack-Retry-Num": "2"})
    await multi_bot.settle()
    assert len(await multi_bot.jobs()) == 1


async def test_the_bot_token_workspace_keeps_working_when_oauth_is_turned_on(
    data_dir: Path, fake_slack: FakeSlack
) -> None:
    async for bot in _multi_bot(data_dir, fake_slack, {"SLACK_BOT_TOKEN": BOT_TOKEN}):
        await bot.app.events.wait_for_change(0.1)
        for _ in range(50):
            if bot.installed_teams() == ["T1"]:
                break
            await asyncio.sleep(0.05)
        assert bot.installed_teams() == ["T1"]
        await bot.signed(bot.command_in("T1", "a red fox", channel="C1"))
        await bot.settle()
        (upload,) = bot.fake.calls_to("files.completeUploadExternal")
        assert upload.headers["Authorization"] == f"Bearer {BOT_TOKEN}"
        assert BOT_TOKEN.encode() not in bot.database()


async def test_jobs_in_flight_when_a_workspace_uninstalls_end_without_retries(
    data_dir: Path, fake_slack: FakeSlack
) -> None:
    async for bot in _multi_bot(data_dir, fake_slack, {}, workers=False):
        await bot.install(SECOND)
        await bot.signed(bot.command_in("T2", "a red fox"))
        await bot.adapter.drain()
        (queued,) = await bot.jobs()
        await bot.event("T2", {"type": "app_uninstalled"}, "Ev-uninstall-2")
        bot.fake.revoke("T2")
        posts_before = len(bot.fake.calls)
        await bot.app.start_workers()
        await bot.settle()
        (job,) = await bot.jobs()
        assert job.id == queued.id and job.outcome_sent
        assert job.status.value == "failed" and job.error_code == "delivery_failed"
        # Nothing was sent to Slack for it: no token to send with.
        sent = [c for c in bot.fake.calls[posts_before:] if c.method != "auth.test"]
        assert sent == []


async def test_the_imagine_this_shortcut_makes_the_message_the_prompt_in_its_thread(
    multi_bot: MultiBot,
) -> None:
    await multi_bot.install(SECOND)
    picture = multi_bot.fake.add_private_file("fox.png", _png(), team="T2")
    trigger = new_trigger()
    payload = {
        "type": "message_action",
        "callback_id": "imagine_this",
        "trigger_id": trigger,
        "response_url": multi_bot.fake.response_url(trigger),
        "team": {"id": "T2", "domain": "second"},
        "channel": {"id": "C2", "name": "general"},
        "user": {"id": "U9", "team_id": "T2"},
        "message": {
            "type": "message",
            "user": "U7",
            "ts": "1700000400.000100",
            "text": "a watercolour of this fox",
            "files": [
                {"id": "F1", "mimetype": "image/png", "url_private_download": picture},
                {"id": "F2", "mimetype": "application/pdf", "url_private_download": picture},
            ],
        },
        "message_ts": "1700000400.000100",
    }
    reply = await multi_bot.signed(interaction_body(payload))
    again = await multi_bot.signed(interaction_body(payload))  # the same trigger: one job
    assert reply.status == 200 and again.status == 200
    await multi_bot.settle()
    (job,) = await multi_bot.jobs()
    assert job.request.prompt == "a watercolour of this fox"
    assert len(job.request.input_images) == 1
    assert job.request.input_images[0].startswith("blob:")
    # The input image was fetched with the second workspace's token (for each of the two
    # deliveries of the shortcut: inputs are stored before the job's dedupe key is checked).
    tokens = {r.headers["Authorization"] for r in multi_bot.fake.file_requests}
    assert tokens == {f"Bearer {multi_bot.fake.token_of('T2')}"}
    (shared,) = multi_bot.fake.shared_files()
    assert shared.thread_ts == "1700000400.000100" and shared.shared_to == "C2"


def _png() -> bytes:
    from io import BytesIO

    from PIL import Image

    out = BytesIO()
    Image.new("RGB", (64, 64), (200, 80, 20)).save(out, "PNG")
    return out.getvalue()
