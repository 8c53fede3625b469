"""The result loop on Slack, as Block Kit: --n gives U1-U4 and V1-V4 per image, each follow-up
posts in the thread of its image and says what it is, Edit picks an image, Cancel while running,
and only the requester presses unless the workspace shares the buttons."""

from __future__ import annotations

import json
from typing import Any

from bot.domain.models import CommunitySettings, Job, JobStatus
from tests.fakes.slack import Message, interaction_body
from tests.slack.conftest import TEAM, SlackBot, new_trigger
from tests.store_helpers import save_settings

PARENT_TS = "1700000000.000100"  # the ts of the card whose button is pressed (conftest)


async def delivered(slack_bot: SlackBot, text: str) -> Job:
    await slack_bot.command(text)
    await slack_bot.settle()
    job = (await slack_bot.jobs())[-1]
    assert job.status is JobStatus.DELIVERED
    return job


def card_of(slack_bot: SlackBot, job: Job) -> Message:
    return slack_bot.fake.messages[(job.delivery["channel"], job.delivery["ts"])]


def labels(card: Message) -> list[list[str]]:
    return [[b["text"]["text"] for b in block["elements"]] for block in card.blocks[1:]]


async def test_n_4_gives_four_images_and_u_v_buttons_for_each(slack_bot: SlackBot) -> None:
    job = await delivered(slack_bot, "four foxes --n 4")
    assert len(job.images) == 4 and len(slack_bot.fake.shared_files()) == 4
    card = card_of(slack_bot, job)
    assert labels(card) == [
        ["U1", "U2", "U3", "U4"],
        ["V1", "V2", "V3", "V4"],
        ["Reroll", "Edit", "Delete"],
    ]
    ids = [b["action_id"] for block in card.blocks[1:] for b in block["elements"]]
    assert ids[:2] == [f"imagine:u1:{job.id}", f"imagine:u2:{job.id}"]
    assert slack_bot.fake.violations == []


async def test_v2_and_u3_work_from_their_image_in_the_thread_of_the_card(
    slack_bot: SlackBot,
) -> None:
    parent = await delivered(slack_bot, "a castle --n 3 --seed 9")
    await slack_bot.action("v2", parent)
    await slack_bot.action("u3", parent)
    await slack_bot.settle()
    children = {j.request.action: j for j in await slack_bot.jobs() if j.id != parent.id}
    vary, upscale = children["vary"], children["upscale"]
    assert vary.request.input_images == (f"blob:{parent.images[1]}",) and vary.seed != 9
    assert upscale.request.input_images == (f"blob:{parent.images[2]}",)
    assert upscale.seed == 9
    assert 1.9 <= upscale.width * upscale.height / (parent.width * parent.height) <= 2.0
    for child in (vary, upscale):
        assert child.status is JobStatus.DELIVERED
        assert child.request.reply.thread_id == PARENT_TS
        assert card_of(slack_bot, child).thread_ts == PARENT_TS
    assert (
        f"Variation of image 2 of job {parent.id}"
        in card_of(slack_bot, vary).blocks[0]["text"]["text"]
    )
    assert labels(card_of(slack_bot, upscale)) == [
        ["Vary (Subtle)", "Vary (Strong)", "Edit", "Delete"]
    ]
    assert slack_bot.fake.violations == []


async def test_without_n_the_workspace_count_applies(slack_bot: SlackBot) -> None:
    await save_settings(
        slack_bot.app.store, CommunitySettings(TEAM, default_count=2), slack_bot.clock.now()
    )
    job = await delivered(slack_bot, "two owls")
    assert job.request.count == 2 and len(job.images) == 2


async def test_someone_else_s_press_is_refused_only_to_them(slack_bot: SlackBot) -> None:
    parent = await delivered(slack_bot, "a lamp")
    await slack_bot.action("v1", parent, user="U2")
    await slack_bot.settle()
    assert [j.id for j in await slack_bot.jobs()] == [parent.id]
    [(_, refused)] = slack_bot.fake.responses
    assert refused["response_type"] == "ephemeral"
    assert "Only the person who asked" in refused["text"]


async def test_edit_picks_the_image_to_start_from(slack_bot: SlackBot) -> None:
    parent = await delivered(slack_bot, "a house --n 2")
    await slack_bot.action("edit", parent, trigger=new_trigger())
    await slack_bot.settle()
    [opened] = slack_bot.fake.calls_to("views.open")
    view = opened.args["view"]
    view = json.loads(view) if isinstance(view, str) else view
    select = view["blocks"][1]["element"]
    assert [o["value"] for o in select["options"]] == ["1", "2"]
    state: dict[str, Any] = {
        "values": {
            "prompt_block": {"prompt": {"type": "plain_text_input", "value": "at night"}},
            "image_block": {
                "image": {"type": "static_select", "selected_option": select["options"][1]}
            },
        }
    }
    submission = {
        "type": "view_submission",
        "team": {"id": TEAM, "domain": "fake"},
        "user": {"id": "U1", "team_id": TEAM},
        "api_app_id": "A1",
        "trigger_id": new_trigger(),
        "view": {**view, "id": "V1", "state": state},
    }
    assert (await slack_bot.signed(interaction_body(submission))).status == 200
    await slack_bot.settle()
    edit = next(j for j in await slack_bot.jobs() if j.request.action == "edit")
    assert edit.request.input_images == (f"blob:{parent.images[1]}",)
    assert edit.request.prompt == "at night" and edit.request.reply.thread_id == PARENT_TS


async def test_cancel_while_queued_posts_nothing(slack_bot: SlackBot) -> None:
    assert slack_bot.app.worker is not None
    await slack_bot.app.worker.stop(grace=1)
    await slack_bot.command("a slow comet", channel="C7")
    await slack_bot.adapter.drain()
    [progress] = slack_bot.fake.posted("C7")
    [button] = progress.blocks[1]["elements"]
    assert button["text"]["text"] == "Cancel"
    [job] = await slack_bot.jobs()

    await slack_bot.action("cancel", job, user="U2", channel="C7", message_ts=progress.ts)
    await slack_bot.adapter.drain()
    assert (await slack_bot.app.service.job(job.id)).status is JobStatus.QUEUED
    [(_, refused)] = slack_bot.fake.responses
    assert "or a moderator" in refused["text"]

    await slack_bot.action("cancel", job, channel="C7", message_ts=progress.ts)
    await slack_bot.adapter.drain()
    assert (await slack_bot.app.service.job(job.id)).status is JobStatus.CANCELLED
    [update] = slack_bot.fake.calls_to("chat.update")
    assert update.args["ts"] == progress.ts and "Cancelled" in update.args["text"]
    assert slack_bot.fake.messages[("C7", progress.ts)].blocks == []
    assert slack_bot.fake.shared_files() == []
    assert slack_bot.fake.violations == []
