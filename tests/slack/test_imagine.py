"""/imagine over HTTP: ack, progress message, the uploaded image, the result card and its buttons."""

from __future__ import annotations

import json

from PIL import Image

from bot.domain.models import JobStatus
from tests.slack.conftest import BOT_TOKEN, SlackBot

# A JPEG: the bot's default format.
JPEG_MAGIC = b"\xff\xd8\xff"


async def test_imagine_acks_with_queued_then_posts_the_image_in_the_channel(
    slack_bot: SlackBot,
) -> None:
    fake = slack_bot.fake
    reply = await slack_bot.command("a red fox at dawn --ar 16:9 --seed 7", channel="C42")
    assert reply.status == 200
    assert reply.json["response_type"] == "ephemeral"
    assert "Queued" in reply.json["text"] and "a red fox at dawn" in reply.json["text"]

    await slack_bot.settle()
    [job] = await slack_bot.jobs()
    assert job.status is JobStatus.DELIVERED
    assert (job.seed, job.request.aspect_ratio, job.community_id) == (7, "16:9", "T1")

    # The progress message was posted in the channel and became the result card.
    [card] = fake.posted("C42")
    assert card.thread_ts is None
    section, actions = card.blocks
    assert "a red fox at dawn" in section["text"]["text"]
    assert "seed 7" in section["text"]["text"]
    assert [b["action_id"] for b in actions["elements"]] == [
        f"imagine:{verb}:{job.id}" for verb in ("reroll", "vary", "edit", "upscale", "delete")
    ]
    assert [b["text"]["text"] for b in actions["elements"]] == [
        "Reroll",
        "Vary",
        "Edit",
        "Upscale to Max",
        "Delete",
    ]
    assert job.delivery["ts"] == card.ts

    # The image went through files.getUploadURLExternal, the upload URL, completeUploadExternal.
    [upload] = fake.shared_files()
    assert upload.shared_to == "C42"
    assert upload.data is not None and upload.data.startswith(JPEG_MAGIC)
    assert upload.length == len(upload.data)
    assert "Authorization" not in upload.upload_headers
    assert "a red fox at dawn" in (upload.initial_comment or "")
    assert "seed 7" in (upload.initial_comment or "")
    width, height = Image.open(__import__("io").BytesIO(upload.data)).size
    assert (width, height) == (job.width, job.height) and width > height
    assert job.delivery["files"] == [upload.id]
    methods = [c.method for c in fake.calls]
    assert methods.index("files.getUploadURLExternal") < methods.index(
        "files.completeUploadExternal"
    )
    complete = fake.calls_to("files.completeUploadExternal")[0]
    assert json.loads(complete.args["files"])[0]["id"] == upload.id
    assert all(c.headers.get("Authorization") == f"Bearer {BOT_TOKEN}" for c in fake.calls)
    assert fake.violations == []


async def test_a_command_from_a_thread_is_answered_in_that_thread(slack_bot: SlackBot) -> None:
    reply = await slack_bot.command("a lighthouse", thread_ts="1699999999.000200")
    assert reply.status == 200
    await slack_bot.settle()
    [card] = slack_bot.fake.posted("C1")
    assert card.thread_ts == "1699999999.000200"
    [upload] = slack_bot.fake.shared_files()
    assert upload.thread_ts == "1699999999.000200"
    assert slack_bot.fake.violations == []


async def test_help_and_bad_flags_are_answered_in_the_ack_without_a_job(
    slack_bot: SlackBot,
) -> None:
    help_reply = await slack_bot.command("help")
    assert help_reply.status == 200
    assert help_reply.json["response_type"] == "ephemeral"
    assert "--ar" in help_reply.json["text"] and "--seed" in help_reply.json["text"]

    bad = await slack_bot.command("a fox --sed 7")
    assert bad.status == 200
    assert bad.json["response_type"] == "ephemeral"
    assert "Unknown option '--sed'" in bad.json["text"]

    seedless = await slack_bot.command("a fox --seed lots")
    assert "--seed must be" in seedless.json["text"]

    await slack_bot.settle()
    assert await slack_bot.jobs() == []
    assert slack_bot.fake.posted() == []


async def test_mentions_in_prompts_are_escaped(slack_bot: SlackBot) -> None:
    await slack_bot.command("<!channel> a cat <@U999> & friends")
    await slack_bot.settle()
    [card] = slack_bot.fake.posted("C1")
    text = card.blocks[0]["text"]["text"]
    assert "<!channel>" not in text and "<@U999>" not in text
    assert "&lt;!channel&gt;" in text and "&amp; friends" in text
