"""/imagine end to end inside one process: discord.py's state, the core, the worker, the fake."""

from __future__ import annotations

import io

from PIL import Image

from bot.domain.models import CommunitySettings
from tests.discord.conftest import Bot
from tests.fakes.discord import GUILD_ID, Recorded
from tests.store_helpers import claim_next_job, save_settings

USER = "1400000000000000004"


def token_calls(bot: Bot, token: str) -> list[Recorded]:
    return [r for r in bot.fake.requests if token in r.path]


def final_edit(bot: Bot, token: str) -> Recorded | None:
    for r in reversed(bot.fake.calls("update_original_webhook_message", token)):
        if r.files:
            return r
    return None


async def test_imagine_defers_first_then_edits_in_the_jpeg_with_embed_and_buttons(bot: Bot) -> None:
    token = bot.feed(bot.fake.imagine("a red fox at dawn @everyone", seed=42, aspect="16:9"))
    edit = await bot.fake.wait_for(lambda: final_edit(bot, token), what="the image")

    calls = token_calls(bot, token)
    assert calls[0].operation == "create_interaction_response"
    assert calls[0].json["type"] == 5  # deferred channel message: "imagine is thinking..."
    assert calls[0].status == 200

    # Discord types an upload by its name and bytes (discord.py sends every part octet-stream).
    ((name, data, _),) = edit.files.values()
    assert name.endswith(".jpg")  # JPEG: the bot's default format
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "JPEG"
        assert img.width > img.height  # 16:9
    payload = edit.json
    assert payload["allowed_mentions"] == {"parse": []}
    (embed,) = payload["embeds"]
    assert embed["description"] == "a red fox at dawn @everyone"
    assert embed["image"]["url"] == f"attachment://{name}"
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Seed"] == "42"
    assert fields["Model"].startswith("FLUX.2")
    assert fields["Provider"] == "offline"
    assert fields["Size"] == f"{img.width}×{img.height}"
    assert fields["Time"].endswith(" s")
    buttons = payload["components"][0]["components"]
    job_id = embed["footer"]["text"].removeprefix("job ")
    assert [b["custom_id"] for b in buttons] == [
        f"imagine:{action}:{job_id}" for action in ("reroll", "vary", "edit", "upscale", "delete")
    ]
    message = bot.fake.original_message(token)
    assert message is not None and message["attachments"][0]["filename"] == name

    job = await bot.app.service.job(job_id)
    assert job.request.dedupe_key == f"discord:{bot.fake.interactions[token].id}"
    assert job.request.community_id == GUILD_ID and job.request.user_id == USER


async def test_the_deferred_response_shows_the_queue_position(bot: Bot) -> None:
    assert bot.app.worker is not None
    await bot.app.worker.stop(grace=1)  # nothing gets picked up: the job stays queued
    token = bot.feed(bot.fake.imagine("a lighthouse"))

    def queued() -> Recorded | None:
        for r in bot.fake.calls("update_original_webhook_message", token):
            if "Queued" in (r.json or {}).get("content", ""):
                return r
        return None

    edit = await bot.fake.wait_for(queued, what="the queued line")
    assert "a lighthouse" in edit.json["content"]
    assert edit.json["allowed_mentions"] == {"parse": []}


async def test_a_banned_user_gets_an_ephemeral_refusal_and_no_job(bot: Bot) -> None:
    await save_settings(
        bot.app.store, CommunitySettings(GUILD_ID, banned_users=(USER,)), bot.app.clock.now()
    )
    token = bot.feed(bot.fake.imagine("a castle"))
    follow = await bot.fake.wait_for(
        lambda: bot.fake.calls("execute_webhook", token), what="the refusal"
    )
    assert follow[0].json["flags"] & 64  # ephemeral
    assert "not allowed" in follow[0].json["content"]
    assert bot.fake.calls("delete_original_webhook_message", token)
    assert bot.fake.original_message(token) is None  # the public "thinking" line is gone
    counts = await bot.app.store.job_counts()
    assert counts.queued == 0 and counts.running == 0


async def test_the_same_interaction_delivered_twice_makes_one_job(bot: Bot) -> None:
    payload = bot.fake.imagine("a single fox")
    token = bot.feed(payload)
    bot.feed(payload)  # a replayed gateway event
    edit = await bot.fake.wait_for(lambda: final_edit(bot, token), what="the image")
    await bot.app.service.wait(edit.json["embeds"][0]["footer"]["text"].removeprefix("job "))
    acks = await bot.fake.wait_for(
        lambda: (
            len(bot.fake.calls("create_interaction_response", token)) == 2
            and bot.fake.calls("create_interaction_response", token)
        ),
        what="both acknowledgements",
    )
    assert [a.status for a in acks] == [200, 400]  # Discord accepts one ack per interaction
    assert len([r for r in bot.fake.requests if r.files]) == 1
    counts = await bot.app.store.job_counts()
    assert counts.queued == 0 and counts.running == 0


async def test_an_attached_image_becomes_the_input_image(bot: Bot) -> None:
    assert bot.app.worker is not None
    await bot.app.worker.stop(grace=1)
    payload = bot.fake.imagine("make it snowy")
    attachment_id = "1700000000000000007"
    url = "https://cdn.discordapp.com/attachments/1/2/house.png?ex=1&is=2&hm=3"
    payload["data"]["options"].append({"name": "image", "type": 11, "value": attachment_id})
    payload["data"]["resolved"] = {
        "attachments": {
            attachment_id: {
                "id": attachment_id,
                "filename": "house.png",
                "size": 1234,
                "url": url,
                "proxy_url": url,
                "content_type": "image/png",
            }
        }
    }
    token = bot.feed(payload)
    await bot.fake.wait_for(
        lambda: bot.fake.calls("update_original_webhook_message", token), what="queued"
    )
    assert "Queued" in bot.fake.calls("update_original_webhook_message", token)[0].json["content"]
    job = await claim_next_job(bot.app.store, "test", bot.app.clock.now(), 60, {"discord"})
    assert job is not None and job.request.input_images == (url,)
    assert job.request.prompt == "make it snowy"


async def test_a_non_image_attachment_is_refused(bot: Bot) -> None:
    payload = bot.fake.imagine("make it snowy")
    attachment_id = "1700000000000000008"
    payload["data"]["options"].append({"name": "image", "type": 11, "value": attachment_id})
    payload["data"]["resolved"] = {
        "attachments": {
            attachment_id: {
                "id": attachment_id,
                "filename": "notes.zip",
                "size": 99,
                "url": "https://cdn.discordapp.com/attachments/1/2/notes.zip",
                "proxy_url": "https://cdn.discordapp.com/attachments/1/2/notes.zip",
                "content_type": "application/zip",
            }
        }
    }
    token = bot.feed(payload)
    refusal = await bot.fake.wait_for(
        lambda: bot.fake.calls("execute_webhook", token), what="the refusal"
    )
    assert refusal[0].json["flags"] & 64 and "PNG, JPEG or WebP" in refusal[0].json["content"]


async def test_help_is_ephemeral(bot: Bot) -> None:
    token = bot.feed(bot.fake.command("imagine-help", []))
    (callback,) = await bot.fake.wait_for(
        lambda: bot.fake.calls("create_interaction_response", token), what="the help"
    )
    assert callback.json["type"] == 4 and callback.json["data"]["flags"] & 64
    assert "Reroll" in callback.json["data"]["content"]


async def test_a_thread_inherits_the_age_restriction_of_its_parent_channel(bot: Bot) -> None:
    parent, thread = "1300000000000000050", "1300000000000000051"
    client = bot.adapter.client
    assert client is not None
    client._connection.parse_guild_create(
        bot.fake.guild_create(
            [
                {
                    "id": parent,
                    "type": 0,
                    "name": "adult-art",
                    "nsfw": True,
                    "permission_overwrites": [],
                }
            ]
        )
    )
    assert bot.app.worker is not None
    await bot.app.worker.stop(grace=1)
    payload = bot.fake.imagine("a dark forest", channel_id=thread)
    payload["channel"] = {
        "id": thread,
        "type": 11,
        "guild_id": GUILD_ID,
        "name": "a thread",
        "parent_id": parent,
        "owner_id": USER,
        "thread_metadata": {
            "archived": False,
            "auto_archive_duration": 1440,
            "archive_timestamp": "2026-11-25T07:00:00+00:00",
            "locked": False,
        },
        "flags": 0,
        "permissions": "0",
        "message_count": 0,
        "member_count": 1,
        "rate_limit_per_user": 0,
        "last_message_id": None,
    }
    token = bot.feed(payload)
    await bot.fake.wait_for(
        lambda: bot.fake.calls("update_original_webhook_message", token), what="queued"
    )
    job = await claim_next_job(bot.app.store, "test", bot.app.clock.now(), 60, {"discord"})
    assert job is not None and job.request.channel_age_restricted
    assert job.request.channel_id == thread


async def test_the_format_option_decides_the_uploaded_file(bot: Bot) -> None:
    options = [
        {"name": "prompt", "type": 3, "value": "a red fox"},
        {"name": "format", "type": 3, "value": "webp"},
    ]
    token = bot.feed(bot.fake.command("imagine", options))
    edit = await bot.fake.wait_for(lambda: final_edit(bot, token), what="the image")
    ((name, data, _),) = edit.files.values()
    assert name.endswith(".webp")
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "WEBP"


async def test_steps_on_a_model_without_them_are_refused_naming_where_they_apply(bot: Bot) -> None:
    options = [
        {"name": "prompt", "type": 3, "value": "a red fox"},
        {"name": "model", "type": 3, "value": "pro"},
        {"name": "steps", "type": 4, "value": 20},
    ]
    token = bot.feed(bot.fake.command("imagine", options))
    reply = await bot.fake.wait_for(
        lambda: next(
            (c for c in token_calls(bot, token) if c.json and "--steps" in str(c.json)), None
        ),
        what="the refusal",
    )
    assert "FLUX.2 [flex]" in str(reply.json)
