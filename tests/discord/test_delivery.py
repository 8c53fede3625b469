"""DiscordDelivery against the fake Discord, through discord.py logged in without the gateway:
token expiry, upload limits, rate limits, failures."""

from __future__ import annotations

import io
import os
from collections.abc import AsyncIterator
from typing import Any

import discord
import httpx
import pytest
from PIL import Image

from adapters.discord.delivery import (
    APPLICATION_ID,
    EPHEMERAL_ACK,
    INTERACTION_ID,
    INTERACTION_TOKEN,
    SIZE_LIMIT,
    DiscordDelivery,
    snowflake_time,
)
from adapters.discord.login import DiscordLogin, rest_only_client
from bot.domain.catalog import load_catalog
from bot.domain.clock import ManualClock
from bot.domain.errors import DeliveryError
from bot.domain.models import Job, JobStatus, ReplyTarget
from bot.domain.personal import PERSONAL_COMMUNITY
from bot.ops import metrics
from bot.ports import OutImage, Progress
from tests.factories import make_job, make_request
from tests.fakes.discord import BOT_TOKEN, CHANNEL_ID, FakeDiscord

USER = "1400000000000000004"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """Stands in for the gateway process, which acknowledged each interaction before delivery."""
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
async def login(fake_discord: FakeDiscord) -> AsyncIterator[DiscordLogin]:
    """A discord.py client as a worker process has it: never connected to a gateway."""
    discord.http.Route.BASE = fake_discord.api_base  # the fake_discord fixture restores it
    client = rest_only_client()
    try:
        yield DiscordLogin(client, BOT_TOKEN)
    finally:
        await client.close()


async def deferred(fake: FakeDiscord, http: httpx.AsyncClient, **kw: Any) -> dict[str, Any]:
    """An interaction Discord delivered and the bot acknowledged (a "thinking" response)."""
    payload = fake.imagine("a red fox", **kw)
    response = await http.post(
        f"{fake.api_base}/interactions/{payload['id']}/{payload['token']}/callback",
        json={"type": 5},
    )
    assert response.status_code == 200
    return payload


def job_for(payload: dict[str, Any], **changes: Any) -> Job:
    reply = ReplyTarget(
        platform="discord",
        channel_id=CHANNEL_ID,
        data={
            APPLICATION_ID: payload["application_id"],
            INTERACTION_ID: payload["id"],
            INTERACTION_TOKEN: payload["token"],
            SIZE_LIMIT: str(payload["attachment_size_limit"]),
            **changes.pop("data", {}),
        },
    )
    request = make_request(platform="discord", user_id=USER, reply=reply)
    return make_job(request=request, provider="offline", seed=5, **changes)


def png(width: int = 64, height: int = 48, noise: bool = False) -> OutImage:
    if noise:
        img = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    else:
        img = Image.new("RGB", (width, height), (200, 30, 30))
    out = io.BytesIO()
    img.save(out, format="PNG")
    data = out.getvalue()
    return OutImage("k/1.png", data, "imagine-1.png", "image/png", width, height)


def delivery(login: DiscordLogin, clock: ManualClock) -> DiscordDelivery:
    return DiscordDelivery(login, catalog=load_catalog(), clock=clock)


def discord_429s() -> float:
    sample = metrics.REGISTRY.get_sample_value("imagine_http_429_total", {"service": "discord"})
    return sample or 0.0


def clock_at(payload: dict[str, Any], after: float) -> ManualClock:
    return ManualClock(snowflake_time(payload["id"]) + after)


async def test_a_live_token_edits_the_deferred_response(
    fake_discord: FakeDiscord, http: httpx.AsyncClient, login: DiscordLogin
) -> None:
    payload = await deferred(fake_discord, http)
    clock = clock_at(payload, 5)
    receipt = await delivery(login, clock).deliver(job_for(payload), [png()])
    assert receipt["via"] == "interaction"
    message = fake_discord.original_message(payload["token"])
    assert message is not None and message["attachments"][0]["filename"] == "imagine-1.png"
    assert message["id"] == receipt["message_id"]


async def test_after_15_minutes_the_image_is_posted_in_the_channel_mentioning_the_requester(
    fake_discord: FakeDiscord, http: httpx.AsyncClient, login: DiscordLogin
) -> None:
    payload = await deferred(fake_discord, http)
    clock = clock_at(payload, 16 * 60)
    receipt = await delivery(login, clock).deliver(job_for(payload), [png()])
    assert receipt["via"] == "channel"
    assert fake_discord.calls("update_original_webhook_message") == []  # no use of a dead token
    (post,) = fake_discord.calls("create_message")
    assert post.path == f"/channels/{CHANNEL_ID}/messages"
    assert post.headers["Authorization"] == f"Bot {BOT_TOKEN}"
    assert post.json["content"].startswith(f"<@{USER}>")
    # discord.py writes the ids as numbers (Discord takes both).
    assert post.json["allowed_mentions"] == {"parse": [], "users": [int(USER)]}
    assert post.json["embeds"][0]["image"]["url"] == "attachment://imagine-1.png"
    assert "files[0]" in post.files


async def test_a_token_discord_no_longer_accepts_falls_back_to_the_channel(
    fake_discord: FakeDiscord, http: httpx.AsyncClient, login: DiscordLogin
) -> None:
    payload = await deferred(fake_discord, http)
    fake_discord.expire(payload["token"])
    clock = clock_at(payload, 60)
    receipt = await delivery(login, clock).deliver(job_for(payload), [png()])
    assert receipt["via"] == "channel"
    assert [r.status for r in fake_discord.calls("update_original_webhook_message")] == [401]
    assert fake_discord.calls("create_message")[0].files


async def test_an_image_over_the_upload_limit_is_reencoded_to_fit(
    fake_discord: FakeDiscord, http: httpx.AsyncClient, login: DiscordLogin
) -> None:
    payload = await deferred(fake_discord, http)
    limit = 150_000
    big = png(400, 400, noise=True)
    assert len(big.data) > limit
    job = job_for(payload, data={SIZE_LIMIT: str(limit)})
    await delivery(login, clock_at(payload, 5)).deliver(job, [big])
    (edit,) = fake_discord.calls("update_original_webhook_message")
    ((name, data, _),) = edit.files.values()
    assert len(data) <= limit
    # Discord takes the type from the file name (discord.py labels every part octet-stream).
    assert name.endswith(".jpg")
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        assert img.format == "JPEG"
    assert edit.json["embeds"][0]["image"]["url"] == f"attachment://{name}"


async def test_a_rate_limit_is_waited_out(
    fake_discord: FakeDiscord, http: httpx.AsyncClient, login: DiscordLogin
) -> None:
    payload = await deferred(fake_discord, http)
    fake_discord.failures["update_original_webhook_message"] = [
        (429, {"message": "You are being rate limited.", "retry_after": 0.5, "global": False})
    ]
    before = discord_429s()
    receipt = await delivery(login, clock_at(payload, 5)).deliver(job_for(payload), [png()])
    assert receipt["via"] == "interaction"
    limited, edited = fake_discord.calls("update_original_webhook_message")
    assert (limited.status, edited.status) == (429, 200)
    assert edited.at - limited.at >= 0.5  # discord.py waited the retry_after Discord asked for
    assert discord_429s() == before + 1


async def test_a_rate_limit_on_a_channel_post_is_waited_out(
    fake_discord: FakeDiscord, http: httpx.AsyncClient, login: DiscordLogin
) -> None:
    payload = await deferred(fake_discord, http)
    fake_discord.failures["create_message"] = [
        (429, {"message": "You are being rate limited.", "retry_after": 0.5, "global": False})
    ]
    receipt = await delivery(login, clock_at(payload, 16 * 60)).deliver(job_for(payload), [png()])
    assert receipt["via"] == "channel"
    limited, posted = fake_discord.calls("create_message")
    assert (limited.status, posted.status) == (429, 200)
    assert posted.at - limited.at >= 0.5
    assert posted.files  # the file went again with the retry


async def test_a_rate_limit_too_long_to_wait_is_a_retryable_delivery_error(
    fake_discord: FakeDiscord, http: httpx.AsyncClient, login: DiscordLogin
) -> None:
    payload = await deferred(fake_discord, http)
    fake_discord.failures["create_message"] = [
        (429, {"message": "You are being rate limited.", "retry_after": 120.0, "global": False})
    ]
    with pytest.raises(DeliveryError) as caught:
        await delivery(login, clock_at(payload, 16 * 60)).deliver(job_for(payload), [png()])
    assert caught.value.retryable
    assert len(fake_discord.calls("create_message")) == 1


async def test_a_passing_server_error_is_retried_by_discord_py(
    fake_discord: FakeDiscord, http: httpx.AsyncClient, login: DiscordLogin
) -> None:
    payload = await deferred(fake_discord, http)
    fake_discord.failures["update_original_webhook_message"] = [
        (502, {"message": "Bad Gateway", "code": 0})
    ]
    receipt = await delivery(login, clock_at(payload, 5)).deliver(job_for(payload), [png()])
    assert receipt["via"] == "interaction"
    statuses = [r.status for r in fake_discord.calls("update_original_webhook_message")]
    assert statuses == [502, 200]


async def test_a_server_error_is_a_retryable_delivery_error(
    fake_discord: FakeDiscord, http: httpx.AsyncClient, login: DiscordLogin
) -> None:
    payload = await deferred(fake_discord, http)
    # discord.py retries 500, 502, 504 and 524 itself; a 503 comes straight back.
    fake_discord.failures["create_message"] = [(503, {"message": "Unavailable", "code": 0})]
    with pytest.raises(DeliveryError) as caught:
        await delivery(login, clock_at(payload, 16 * 60)).deliver(job_for(payload), [png()])
    assert caught.value.retryable
    assert "503" in str(caught.value)
    assert payload["token"] not in str(caught.value)


async def test_a_refused_post_is_a_final_delivery_error(
    fake_discord: FakeDiscord, http: httpx.AsyncClient, login: DiscordLogin
) -> None:
    payload = await deferred(fake_discord, http)
    fake_discord.failures["create_message"] = [
        (403, {"message": "Missing Permissions", "code": 50013})
    ]
    with pytest.raises(DeliveryError) as caught:
        await delivery(login, clock_at(payload, 16 * 60)).deliver(job_for(payload), [png()])
    assert not caught.value.retryable
    assert "50013" in str(caught.value)


async def test_a_worker_logs_in_once_and_never_opens_the_gateway(
    fake_discord: FakeDiscord, http: httpx.AsyncClient, login: DiscordLogin
) -> None:
    port = delivery(login, ManualClock(0))
    for _ in range(3):
        payload = await deferred(fake_discord, http)
        port._clock = clock_at(payload, 5)
        assert (await port.deliver(job_for(payload), [png()]))["via"] == "interaction"
    assert len(fake_discord.calls("get_my_user")) == 1
    assert fake_discord.calls("get_bot_gateway") == [] and fake_discord.identifies == []


async def test_an_unreachable_discord_is_a_retryable_delivery_error(
    fake_discord: FakeDiscord, http: httpx.AsyncClient, login: DiscordLogin
) -> None:
    payload = await deferred(fake_discord, http)
    await login.logged_in()
    await fake_discord.aclose()  # nothing answers on its port any more
    with pytest.raises(DeliveryError) as caught:
        await delivery(login, clock_at(payload, 16 * 60)).deliver(job_for(payload), [png()])
    assert caught.value.retryable
    assert payload["token"] not in str(caught.value)


async def test_a_failure_is_told_to_the_requester_only(
    fake_discord: FakeDiscord, http: httpx.AsyncClient, login: DiscordLogin
) -> None:
    payload = await deferred(fake_discord, http)
    job = job_for(
        payload, status=JobStatus.MODERATED, error_message="The safety filter blocked this."
    )
    await delivery(login, clock_at(payload, 5)).notify_failure(job)
    assert fake_discord.original_message(payload["token"]) is None
    (follow,) = fake_discord.calls("execute_webhook")
    assert follow.json["flags"] & 64
    assert "safety filter" in follow.json["content"]


async def test_a_late_failure_mentions_the_requester_in_the_channel(
    fake_discord: FakeDiscord, http: httpx.AsyncClient, login: DiscordLogin
) -> None:
    payload = await deferred(fake_discord, http)
    job = job_for(payload, status=JobStatus.FAILED, error_message="The image service failed.")
    await delivery(login, clock_at(payload, 20 * 60)).notify_failure(job)
    (post,) = fake_discord.calls("create_message")
    assert post.json["content"] == f"<@{USER}> ⚠️ The image service failed."


async def test_progress_shows_generating_with_elapsed_time(
    fake_discord: FakeDiscord, http: httpx.AsyncClient, login: DiscordLogin
) -> None:
    payload = await deferred(fake_discord, http)
    job = job_for(payload, status=JobStatus.SUBMITTED)
    await delivery(login, clock_at(payload, 5)).progress(job, Progress("generating", elapsed=12.4))
    (edit,) = fake_discord.calls("update_original_webhook_message")
    assert "Generating" in edit.json["content"] and "12 s" in edit.json["content"]


async def test_near_the_end_of_the_token_progress_says_where_the_image_will_appear(
    fake_discord: FakeDiscord, http: httpx.AsyncClient, login: DiscordLogin
) -> None:
    payload = await deferred(fake_discord, http)
    job = job_for(payload, status=JobStatus.SUBMITTED)
    await delivery(login, clock_at(payload, 14 * 60)).progress(
        job, Progress("generating", elapsed=800)
    )
    (edit,) = fake_discord.calls("update_original_webhook_message")
    assert "posted in this channel" in edit.json["content"]


async def test_a_private_image_past_the_token_waits_in_history(
    fake_discord: FakeDiscord, http: httpx.AsyncClient, login: DiscordLogin
) -> None:
    payload = await deferred(fake_discord, http)
    job = job_for(payload)
    job = job.evolve(request=job.request.with_changes(community_id=PERSONAL_COMMUNITY))
    receipt = await delivery(login, clock_at(payload, 16 * 60)).deliver(job, [png()])
    assert receipt == {"via": "history"}
    assert fake_discord.calls("create_message") == []
    await delivery(login, clock_at(payload, 16 * 60)).notify_failure(
        job.evolve(status=JobStatus.FAILED, error_message="no")
    )
    assert fake_discord.calls("create_message") == []


async def test_near_the_end_of_the_token_a_personal_job_points_at_history(
    fake_discord: FakeDiscord, http: httpx.AsyncClient, login: DiscordLogin
) -> None:
    payload = await deferred(fake_discord, http)
    job = job_for(payload, status=JobStatus.SUBMITTED, data={EPHEMERAL_ACK: "1"})
    job = job.evolve(request=job.request.with_changes(private=True))
    await delivery(login, clock_at(payload, 14 * 60)).progress(
        job, Progress("generating", elapsed=800)
    )
    (edit,) = fake_discord.calls("update_original_webhook_message")
    assert "/history" in edit.json["content"] and "channel" not in edit.json["content"]
