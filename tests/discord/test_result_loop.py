"""The result loop on Discord: /imagine count, U1-U4 and V1-V4 per image, the Edit modal's image
number, Cancel while a job runs, /blend, links to the parent message, and who may press."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.discord import create_adapter
from bot.domain.models import CommunitySettings, JobStatus
from bot.runtime.app import open_app
from bot.runtime.config import load_settings
from tests.discord.conftest import Bot, discord_env
from tests.discord.test_buttons import OTHER_USER, imagine, press, with_buttons
from tests.discord.test_imagine import USER, final_edit
from tests.fakes.discord import (
    BOT_TOKEN,
    GUILD_ID,
    MANAGE_MESSAGES,
    MEMBER_PERMISSIONS,
    FakeDiscord,
)
from tests.fakes.fal import FakeFal
from tests.store_helpers import claim_next_job, save_settings


def job_of(edit: Any) -> str:
    return str(edit.json["embeds"][0]["footer"]["text"].removeprefix("job "))


def jump_url(message: dict[str, Any]) -> str:
    return f"https://discord.com/channels/{GUILD_ID}/{message['channel_id']}/{message['id']}"


async def refusal(bot: Bot, token: str) -> str:
    sent = await bot.fake.wait_for(lambda: bot.fake.calls("execute_webhook", token), what="answer")
    assert sent[0].json["flags"] & 64  # ephemeral: only the presser sees it
    return str(sent[0].json["content"])


async def test_count_4_gives_one_message_with_four_images_and_eight_u_v_buttons(bot: Bot) -> None:
    token = bot.feed(bot.fake.imagine("four foxes", count=4))
    edit = await bot.fake.wait_for(lambda: final_edit(bot, token), what="the images")
    assert len(bot.fake.calls("update_original_webhook_message", token)) >= 1
    assert len(edit.files) == 4
    rows = [[b["label"] for b in row["components"]] for row in edit.json["components"]]
    assert rows == [
        ["U1", "U2", "U3", "U4"],
        ["V1", "V2", "V3", "V4"],
        ["Reroll", "Edit", "Delete"],
    ]
    job = await bot.app.service.job(job_of(edit))
    assert job.request.count == 4 and len(job.images) == 4
    # Four images count four against the limits.
    assert (await bot.app.service.quota(GUILD_ID, USER)).used_today == 4


async def test_a_count_outside_1_to_4_is_refused_and_stores_nothing(bot: Bot) -> None:
    token = bot.feed(bot.fake.imagine("five foxes", count=5))
    assert "1 to 4" in await refusal(bot, token)
    assert (await bot.app.service.quota(GUILD_ID, USER)).used_today == 0


async def test_count_defaults_to_the_community_setting(bot: Bot) -> None:
    await save_settings(
        bot.app.store, CommunitySettings(community_id=GUILD_ID, default_count=2), 0.0
    )
    token = bot.feed(bot.fake.imagine("two owls"))
    edit = await bot.fake.wait_for(lambda: final_edit(bot, token), what="the images")
    assert len(edit.files) == 2


async def test_v2_varies_image_2_and_links_to_its_parent(bot: Bot) -> None:
    job_id, message = await imagine(bot, "a castle", seed=7, count=2)
    token = await press(bot, "v2", job_id, message)
    edit = await bot.fake.wait_for(lambda: final_edit(bot, token), what="the variation")
    parent = await bot.app.service.job(job_id)
    child = await bot.app.service.job(job_of(edit))
    assert child.request.input_images == (f"blob:{parent.images[1]}",)
    assert child.seed != 7 and (child.width, child.height) == (parent.width, parent.height)
    assert edit.json["content"] == f"Variation of image 2 of {jump_url(message)}"


async def test_u2_asks_for_about_twice_the_pixels_from_image_2(bot: Bot) -> None:
    job_id, message = await imagine(bot, "a harbour", seed=5, count=2)
    token = await press(bot, "u2", job_id, message)
    edit = await bot.fake.wait_for(lambda: final_edit(bot, token), what="the upscale")
    parent = await bot.app.service.job(job_id)
    child = await bot.app.service.job(job_of(edit))
    assert child.request.input_images == (f"blob:{parent.images[1]}",)
    assert 1.9 <= child.width * child.height / (parent.width * parent.height) <= 2.0
    assert child.seed == 5
    assert edit.json["content"] == f"Upscale of image 2 of {jump_url(message)}"
    labels = [b["label"] for row in edit.json["components"] for b in row["components"]]
    assert labels == ["Vary (Subtle)", "Vary (Strong)", "Edit", "Delete"]


async def test_an_image_number_beyond_the_job_is_refused(bot: Bot) -> None:
    job_id, message = await imagine(bot, "a pier", count=2)
    token = await press(bot, "u3", job_id, with_buttons(message, job_id, "u3"))
    assert "pick 1 to 2" in await refusal(bot, token)


async def test_the_edit_modal_asks_which_image(bot: Bot) -> None:
    job_id, message = await imagine(bot, "a house", count=2)
    opened = await press(bot, "edit", job_id, message)
    modal = await bot.fake.wait_for(
        lambda: bot.fake.calls("create_interaction_response", opened), what="the modal"
    )
    inputs = [c["components"][0] for c in modal[0].json["data"]["components"]]
    assert [i["custom_id"] for i in inputs] == ["prompt", "image"]
    assert inputs[1]["label"] == "Which image (1-2)"  # as many as the result shows
    submit = bot.feed(
        bot.fake.modal_submit(
            f"imagine:edit-prompt:{job_id}",
            {"prompt": "the house at night", "image": "2"},
            message=message,
        )
    )
    edit = await bot.fake.wait_for(lambda: final_edit(bot, submit), what="the edit")
    parent = await bot.app.service.job(job_id)
    child = await bot.app.service.job(job_of(edit))
    assert child.request.input_images == (f"blob:{parent.images[1]}",)
    assert edit.json["content"] == f"Edit of image 2 of {jump_url(message)}"
    bad = bot.feed(
        bot.fake.modal_submit(f"imagine:edit-prompt:{job_id}", {"prompt": "x", "image": "7"})
    )
    assert "1 to 4" in await refusal(bot, bad)


async def test_only_the_requester_presses_u_v_unless_the_community_shares_them(bot: Bot) -> None:
    job_id, message = await imagine(bot, "a lamp")
    stranger = await press(bot, "v1", job_id, message, user_id=OTHER_USER)
    assert "Only the person who asked" in await refusal(bot, stranger)
    await save_settings(
        bot.app.store, CommunitySettings(community_id=GUILD_ID, shared_buttons=True), 0.0
    )
    allowed = await press(bot, "v1", job_id, message, user_id=OTHER_USER)
    edit = await bot.fake.wait_for(lambda: final_edit(bot, allowed), what="the variation")
    assert (await bot.app.service.job(job_of(edit))).user_id == OTHER_USER


async def test_a_button_on_a_deleted_job_says_so(bot: Bot) -> None:
    job_id, message = await imagine(bot, "a kite")
    await press(bot, "delete", job_id, message)
    await bot.fake.wait_for(lambda: message["id"] in bot.fake.deleted, what="the deletion")
    token = await press(bot, "v1", job_id, message)
    assert "was deleted" in await refusal(bot, token)


async def queued(bot: Bot, prompt: str) -> tuple[str, str, dict[str, Any]]:
    """An /imagine that stays queued (workers stopped): its token, job id and message."""
    assert bot.app.worker is not None
    await bot.app.worker.stop(grace=1)
    token = bot.feed(bot.fake.imagine(prompt))
    edits = await bot.fake.wait_for(
        lambda: bot.fake.calls("update_original_webhook_message", token), what="queued"
    )
    [button] = edits[0].json["components"][0]["components"]
    assert button["label"] == "Cancel"
    job_id = button["custom_id"].removeprefix("imagine:cancel:")
    message = bot.fake.original_message(token)
    assert message is not None
    return token, job_id, message


async def test_cancel_while_queued_ends_the_job_and_posts_nothing(bot: Bot) -> None:
    token, job_id, message = await queued(bot, "a slow comet")
    stranger = await press(
        bot, "cancel", job_id, message, user_id=OTHER_USER, permissions=MEMBER_PERMISSIONS
    )
    assert "requester or a moderator" in await refusal(bot, stranger)
    press_token = await press(bot, "cancel", job_id, message)
    await bot.fake.wait_for(
        lambda: bot.fake.calls("update_original_webhook_message", press_token), what="cancelled"
    )
    assert bot.fake.calls("create_interaction_response", press_token)[0].json["type"] == 6
    edit = bot.fake.calls("update_original_webhook_message", press_token)[0]
    assert edit.json["content"].startswith("🚫 Cancelled")
    assert edit.json["components"] == []
    job = await bot.app.service.job(job_id)
    assert job.status is JobStatus.CANCELLED
    assert await claim_next_job(bot.app.store, "t", bot.app.clock.now(), 60, {"discord"}) is None
    assert final_edit(bot, token) is None
    assert (await bot.app.service.quota(GUILD_ID, USER)).used_today == 0  # refunded


async def test_a_moderator_may_cancel_anyones_job(bot: Bot) -> None:
    _, job_id, message = await queued(bot, "a slow meteor")
    pressed = await press(
        bot,
        "cancel",
        job_id,
        message,
        user_id=OTHER_USER,
        permissions=MEMBER_PERMISSIONS | MANAGE_MESSAGES,
    )
    edit = await bot.fake.wait_for(
        lambda: bot.fake.calls("update_original_webhook_message", pressed), what="cancelled"
    )
    assert edit[0].json["content"].startswith("🚫 Cancelled")
    assert (await bot.app.service.job(job_id)).status is JobStatus.CANCELLED


def attachment(n: int) -> dict[str, Any]:
    url = f"https://cdn.discordapp.com/attachments/1/2/in{n}.png?ex=1&is=2&hm=3"
    return {
        "id": f"17000000000000000{n:02d}",
        "filename": f"in{n}.png",
        "size": 1234,
        "url": url,
        "proxy_url": url,
        "content_type": "image/png",
    }


async def test_blend_sends_every_image(bot: Bot) -> None:
    assert bot.app.worker is not None
    await bot.app.worker.stop(grace=1)
    files = [attachment(n) for n in (1, 2, 3)]
    options = [
        {"name": f"image{n}", "type": 11, "value": a["id"]} for n, a in enumerate(files, start=1)
    ]
    payload = bot.fake.command("blend", options)
    payload["data"]["resolved"] = {"attachments": {a["id"]: a for a in files}}
    token = bot.feed(payload)
    await bot.fake.wait_for(
        lambda: bot.fake.calls("update_original_webhook_message", token), what="queued"
    )
    job = await claim_next_job(bot.app.store, "t", bot.app.clock.now(), 60, {"discord"})
    assert job is not None
    assert job.request.input_images == tuple(a["url"] for a in files)
    assert job.request.action == "blend" and job.request.prompt


@pytest.fixture
async def fal() -> AsyncIterator[FakeFal]:
    fake = await FakeFal().start()
    try:
        yield fake
    finally:
        await fake.aclose()


@pytest.fixture
async def fal_bot(fake_discord: FakeDiscord, fal: FakeFal, data_dir: Path) -> AsyncIterator[Bot]:
    """The Discord adapter on fal.ai's (fake) queue API instead of the offline renderer."""
    env = discord_env(
        fake_discord,
        data_dir,
        IMAGINE_PROVIDERS="fal",
        FAL_KEY=fal.key,
        FAL_QUEUE_BASE=fal.base_url,
    )
    async with open_app(load_settings(env, env_file=None)) as app:
        adapter = create_adapter(app, gateway=True)
        adapter.attach()
        assert adapter.client is not None
        await adapter.client.login(BOT_TOKEN)
        await app.start_workers()
        try:
            yield Bot(app, adapter, fake_discord)
        finally:
            await adapter.aclose()


async def test_v2_on_fal_sends_image_2_to_the_edit_endpoint(fal_bot: Bot, fal: FakeFal) -> None:
    bot = fal_bot
    job_id, message = await imagine(bot, "a castle", count=2)
    token = await press(bot, "v2", job_id, message)
    await bot.fake.wait_for(lambda: final_edit(bot, token), what="the variation")
    parent = await bot.app.service.job(job_id)
    stored = await bot.app.blobs.get(parent.images[1])
    [edit] = [r for r in fal.requests_by_id.values() if r.app_id.endswith("/edit")]
    [reference] = edit.body["image_urls"]
    assert base64.b64decode(reference.split(",", 1)[1]) == stored
    assert edit.body["prompt"] == "a castle"


async def test_cancel_on_a_slow_fal_job_cancels_it_at_fal_and_posts_nothing(
    fal_bot: Bot, fal: FakeFal
) -> None:
    bot = fal_bot
    fal.queue_seconds = 120
    token = bot.feed(bot.fake.imagine("a slow comet"))

    def cancel_button() -> dict[str, Any] | None:
        for edit in bot.fake.calls("update_original_webhook_message", token):
            if "Generating" in (edit.json or {}).get("content", ""):
                return dict(edit.json["components"][0]["components"][0])
        return None

    button = await bot.fake.wait_for(cancel_button, what="generating")
    job_id = button["custom_id"].removeprefix("imagine:cancel:")
    message = bot.fake.original_message(token)
    assert message is not None
    pressed = await press(bot, "cancel", job_id, message)
    await bot.fake.wait_for(
        lambda: bot.fake.calls("update_original_webhook_message", pressed), what="cancelled"
    )
    for _ in range(500):  # the fal fake tells no one; look until the worker's cancel arrives
        if any(r.cancelled for r in fal.requests_by_id.values()):
            break
        await asyncio.sleep(0.02)
    assert [r.cancelled for r in fal.requests_by_id.values()] == [True]
    assert (await bot.app.service.job(job_id)).status is JobStatus.CANCELLED
    assert final_edit(bot, token) is None
    assert not bot.fake.calls("execute_webhook", token)  # no failure notice either
