"""The delivery port alone against the fake Slack: failures, progress, errors as DeliveryError."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from adapters.slack.clients import FixedToken, SlackClients
from adapters.slack.delivery import ProgressBoard, SlackDelivery
from bot.domain.catalog import load_catalog
from bot.domain.clock import ManualClock
from bot.domain.errors import DeliveryError
from bot.domain.models import JobStatus, ReplyTarget
from bot.jobs.events import JobEvents
from bot.jobs.service import ImagineService
from bot.ports import OutImage, Progress
from bot.providers.offline import render_preview
from bot.store import Store, open_store
from tests.factories import make_job, make_request
from tests.fakes.slack import FakeSlack
from tests.slack.conftest import BOT_TOKEN
from tests.store_helpers import enqueue_job


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(f"sqlite:///{tmp_path / 'jobs.db'}") as opened:
        yield opened


@pytest.fixture
def service(store: Store) -> ImagineService:
    return ImagineService(
        store=store,
        catalog=load_catalog(),
        clock=ManualClock(start=1_790_000_010.0),
        events=JobEvents(),
        providers=("offline",),
    )


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


def _delivery(
    fake_slack: FakeSlack,
    session: aiohttp.ClientSession,
    service: ImagineService,
    now: Callable[[], float] = lambda: 1_790_000_010.0,
) -> SlackDelivery:
    """The delivery port of one process: its own board, the shared job store."""
    clients = SlackClients(session, fake_slack.api_url, FixedToken(BOT_TOKEN))
    return SlackDelivery(clients, load_catalog(), ProgressBoard(), service, now)


@pytest.fixture
def delivery(
    fake_slack: FakeSlack, session: aiohttp.ClientSession, service: ImagineService
) -> SlackDelivery:
    return _delivery(fake_slack, session, service)


def _slack_job(**overrides: object):  # type: ignore[no-untyped-def]
    request = make_request(
        platform="slack",
        community_id="T1",
        channel_id="C7",
        user_id="U5",
        prompt="a <b>bold</b> owl",
        reply=ReplyTarget("slack", "C7", None, {"response_url": "http://127.0.0.1:9/x"}),
        dedupe_key="slack:trig-1",
    )
    return make_job(now=1_790_000_000.0, request=request, **overrides)


def _png(width: int = 64, height: int = 48) -> OutImage:
    data = render_preview(prompt="owl", model_id="m", width=width, height=height, seed=1)
    return OutImage("k", data, "imagine-x-1.png", "image/png", width, height)


async def test_a_failed_job_tells_its_user_in_the_channel(
    delivery: SlackDelivery, fake_slack: FakeSlack
) -> None:
    job = _slack_job(
        status=JobStatus.MODERATED, error_message="The safety filter blocked this request."
    )
    await delivery.notify_failure(job)
    [message] = fake_slack.posted("C7")
    assert "<@U5>" in message.text and "safety filter blocked" in message.text
    assert "<b>" not in message.text
    assert fake_slack.violations == []


async def test_progress_updates_the_queued_message_in_place(
    delivery: SlackDelivery, fake_slack: FakeSlack
) -> None:
    job = _slack_job()
    await delivery.post_queued(job, position=3)
    [queued] = fake_slack.posted("C7")
    assert "3 ahead" in queued.text
    await delivery.progress(job, Progress("generating", elapsed=4.0))
    assert fake_slack.posted("C7") == [queued]
    assert "Generating" in queued.text
    receipt = await delivery.deliver(job, [_png()])
    assert receipt["ts"] == queued.ts and receipt["channel"] == "C7"
    assert queued.blocks and queued.blocks[1]["type"] == "actions"
    assert fake_slack.violations == []


async def test_a_worker_that_gets_there_first_waits_for_the_queued_message(
    delivery: SlackDelivery, fake_slack: FakeSlack
) -> None:
    job = _slack_job()
    board: ProgressBoard = delivery._board
    board.expect("slack:trig-1")  # the command handler is still storing the job
    progress = asyncio.create_task(delivery.progress(job, Progress("generating", elapsed=1.0)))
    await asyncio.sleep(0)
    await delivery.post_queued(job, position=0)
    await progress
    [message] = fake_slack.posted("C7")
    assert "Generating" in message.text


async def test_a_final_slack_error_is_a_final_delivery_error(
    delivery: SlackDelivery, fake_slack: FakeSlack
) -> None:
    fake_slack.fail["files.completeUploadExternal"] = "channel_not_found"
    with pytest.raises(DeliveryError) as caught:
        await delivery.deliver(_slack_job(), [_png()])
    assert caught.value.retryable is False
    assert "channel_not_found" in str(caught.value)
    assert BOT_TOKEN not in str(caught.value)


async def test_a_passing_slack_error_may_be_tried_again(
    delivery: SlackDelivery, fake_slack: FakeSlack
) -> None:
    fake_slack.fail["files.getUploadURLExternal"] = "internal_error"
    with pytest.raises(DeliveryError) as caught:
        await delivery.deliver(_slack_job(), [_png()])
    assert caught.value.retryable is True


async def test_several_images_are_uploaded_in_one_share(
    delivery: SlackDelivery, fake_slack: FakeSlack
) -> None:
    receipt = await delivery.deliver(_slack_job(), [_png(64, 48), _png(48, 64)])
    shared = fake_slack.shared_files()
    assert len(shared) == 2 and len(fake_slack.calls_to("files.completeUploadExternal")) == 1
    assert receipt["files"] == [f.id for f in shared]
    assert fake_slack.violations == []


async def test_progress_is_refreshed_at_most_every_fifteen_seconds(
    fake_slack: FakeSlack, session: aiohttp.ClientSession, service: ImagineService
) -> None:
    now = [1_790_000_000.0]
    delivery = _delivery(fake_slack, session, service, lambda: now[0])
    job = _slack_job()
    await delivery.post_queued(job, position=0)
    for elapsed in (0.0, 5.0, 10.0, 15.0, 20.0):
        now[0] = 1_790_000_000.0 + elapsed
        await delivery.progress(job, Progress("generating", elapsed=elapsed))
    updates = [c.args["text"] for c in fake_slack.calls_to("chat.update")]
    assert len(updates) == 2
    assert "(0 s)" in updates[0] and "(15 s)" in updates[1]


async def test_a_worker_in_another_process_updates_the_recorded_message(
    fake_slack: FakeSlack, session: aiohttp.ClientSession, service: ImagineService, store: Store
) -> None:
    handler, worker = (
        _delivery(fake_slack, session, service),
        _delivery(fake_slack, session, service),
    )
    job = _slack_job()
    await enqueue_job(store, job)
    await handler.post_queued(job, position=0)
    [queued] = fake_slack.posted("C7")
    # The worker's copy of the job was read before the message was recorded.
    await worker.progress(job, Progress("generating", elapsed=2.0))
    assert fake_slack.posted("C7") == [queued] and "Generating" in queued.text
    receipt = await worker.deliver(job, [_png()])
    assert fake_slack.posted("C7") == [queued]
    assert receipt["ts"] == queued.ts and queued.blocks and queued.blocks[1]["type"] == "actions"
    stored = await service.job(job.id)
    assert stored.delivery["progress_ts"] == queued.ts
    assert fake_slack.violations == []


async def test_a_worker_elsewhere_waits_for_the_handler_to_post_the_queued_message(
    fake_slack: FakeSlack, session: aiohttp.ClientSession, service: ImagineService, store: Store
) -> None:
    handler, worker = (
        _delivery(fake_slack, session, service),
        _delivery(fake_slack, session, service),
    )
    job = _slack_job()
    await enqueue_job(store, job)
    # Nothing recorded yet: progress is skipped rather than posted twice ...
    await worker.progress(job, Progress("generating", elapsed=1.0))
    assert fake_slack.posted("C7") == []
    # ... and the final card waits for the handler's message and replaces it.
    delivered = asyncio.create_task(worker.deliver(job, [_png()]))
    await fake_slack.wait_for(lambda: fake_slack.calls_to("files.completeUploadExternal"))
    await handler.post_queued(job, position=0)
    receipt = await delivered
    [message] = fake_slack.posted("C7")
    assert receipt["ts"] == message.ts and message.blocks


async def test_a_worker_elsewhere_posts_its_own_message_when_the_handler_could_not(
    fake_slack: FakeSlack, session: aiohttp.ClientSession, service: ImagineService, store: Store
) -> None:
    handler, worker = (
        _delivery(fake_slack, session, service),
        _delivery(fake_slack, session, service),
    )
    job = _slack_job()
    await enqueue_job(store, job)
    fake_slack.fail["chat.postMessage"] = "internal_error"
    await handler.post_queued(job, position=0)
    await worker.progress(job, Progress("generating", elapsed=1.0))
    [message] = fake_slack.posted("C7")
    assert "Generating" in message.text
    assert (await service.job(job.id)).delivery["progress_ts"] == message.ts
