"""The buttons under a result: Reroll, Edit (modal) and Delete, and the Vary and Upscale buttons
of messages sent before the per-image U/V buttons (they act on image 1)."""

from __future__ import annotations

from typing import Any

from bot.domain.models import CommunitySettings
from tests.discord.conftest import Bot
from tests.discord.test_imagine import USER, final_edit
from tests.fakes.discord import GUILD_ID, MANAGE_MESSAGES, MEMBER_PERMISSIONS
from tests.store_helpers import save_settings

OTHER_USER = "1400000000000000099"


async def imagine(
    bot: Bot, prompt: str = "a red fox", **options: Any
) -> tuple[str, dict[str, Any]]:
    """Run /imagine to the end; return the job id and the result message as Discord holds it."""
    token = bot.feed(bot.fake.imagine(prompt, **options))
    edit = await bot.fake.wait_for(lambda: final_edit(bot, token), what="the first image")
    job_id = edit.json["embeds"][0]["footer"]["text"].removeprefix("job ")
    message = bot.fake.original_message(token)
    assert message is not None
    return job_id, {k: v for k, v in message.items() if not k.startswith("_")}


async def press(bot: Bot, action: str, job_id: str, message: dict[str, Any], **kw: Any) -> str:
    return bot.feed(bot.fake.button(f"imagine:{action}:{job_id}", message, **kw))


async def test_reroll_makes_a_new_image_with_the_same_prompt_and_a_new_seed(bot: Bot) -> None:
    job_id, message = await imagine(bot, "a red fox", seed=7)
    await save_settings(
        bot.app.store,
        CommunitySettings(community_id=GUILD_ID, shared_buttons=True),
        bot.app.clock.now(),
    )
    token = await press(bot, "reroll", job_id, message, user_id=OTHER_USER)
    edit = await bot.fake.wait_for(lambda: final_edit(bot, token), what="the reroll")

    first = bot.fake.calls("create_interaction_response", token)[0]
    assert first.json["type"] == 5 and bot.fake.requests.index(first) == min(
        bot.fake.requests.index(r) for r in bot.fake.requests if token in r.path
    )
    embed = edit.json["embeds"][0]
    assert embed["title"] == "Reroll of an earlier image"
    assert embed["description"] == "a red fox"
    new_id = embed["footer"]["text"].removeprefix("job ")
    new = await bot.app.service.job(new_id)
    assert new.request.parent_job_id == job_id and new.request.action == "reroll"
    assert new.user_id == OTHER_USER
    assert edit.files  # a PNG again


def with_buttons(message: dict[str, Any], job_id: str, *actions: str) -> dict[str, Any]:
    """The message as if it carried these buttons (discord.py routes only the buttons a message
    has), such as those of a message sent by an earlier version of the bot."""
    row = [
        {"type": 2, "style": 2, "label": a, "custom_id": f"imagine:{a}:{job_id}"} for a in actions
    ]
    return {**message, "components": [{"type": 1, "components": row}]}


async def test_older_vary_and_upscale_buttons_act_on_image_1(bot: Bot) -> None:
    job_id, message = await imagine(bot, "a castle", seed=7)
    message = with_buttons(message, job_id, "vary", "upscale")
    vary = await press(bot, "vary", job_id, message)
    vary_edit = await bot.fake.wait_for(lambda: final_edit(bot, vary), what="the variation")
    upscale = await press(bot, "upscale", job_id, message)
    up_edit = await bot.fake.wait_for(lambda: final_edit(bot, upscale), what="the upscale")
    assert vary_edit.json["embeds"][0]["description"] == "a castle"
    up_fields = {f["name"]: f["value"] for f in up_edit.json["embeds"][0]["fields"]}
    assert up_fields["Model"] == "FLUX.2 [pro]"
    assert up_fields["Seed"] == "7"
    parent = await bot.app.service.job(job_id)
    up = await bot.app.service.job(up_edit.json["embeds"][0]["footer"]["text"].removeprefix("job "))
    assert up.request.input_images == (f"blob:{parent.images[0]}",)
    assert up.width * up.height > parent.width * parent.height


async def test_edit_opens_a_modal_and_its_prompt_edits_this_image(bot: Bot) -> None:
    job_id, message = await imagine(bot, "a house")
    token = await press(bot, "edit", job_id, message)
    callback = await bot.fake.wait_for(
        lambda: bot.fake.calls("create_interaction_response", token), what="the modal"
    )
    assert callback[0].json["type"] == 9
    assert callback[0].json["data"]["custom_id"] == f"imagine:edit-prompt:{job_id}"
    # One image: nothing to pick, only the new prompt is asked for.
    rows = callback[0].json["data"]["components"]
    assert [row["components"][0]["custom_id"] for row in rows] == ["prompt"]

    submit = bot.feed(
        bot.fake.modal_submit(f"imagine:edit-prompt:{job_id}", {"prompt": "the house at night"})
    )
    edit = await bot.fake.wait_for(lambda: final_edit(bot, submit), what="the edit")
    assert bot.fake.calls("create_interaction_response", submit)[0].json["type"] == 5
    embed = edit.json["embeds"][0]
    assert embed["description"] == "the house at night"
    new = await bot.app.service.job(embed["footer"]["text"].removeprefix("job "))
    assert new.request.action == "edit" and new.request.input_images[0].startswith("blob:")


async def test_only_the_requester_or_a_moderator_can_delete(bot: Bot) -> None:
    job_id, message = await imagine(bot, "a tree")
    stranger = await press(
        bot, "delete", job_id, message, user_id=OTHER_USER, permissions=MEMBER_PERMISSIONS
    )
    refusal = await bot.fake.wait_for(
        lambda: bot.fake.calls("execute_webhook", stranger), what="the refusal"
    )
    assert refusal[0].json["flags"] & 64
    assert "requester or a moderator" in refusal[0].json["content"]
    assert message["id"] not in bot.fake.deleted

    owner = await press(bot, "delete", job_id, message, user_id=USER)
    await bot.fake.wait_for(lambda: message["id"] in bot.fake.deleted, what="the deletion")
    assert bot.fake.calls("create_interaction_response", owner)[0].json["type"] == 6


async def test_a_moderator_can_delete_anyones_image(bot: Bot) -> None:
    job_id, message = await imagine(bot, "a boat")
    await press(
        bot,
        "delete",
        job_id,
        message,
        user_id=OTHER_USER,
        permissions=MEMBER_PERMISSIONS | MANAGE_MESSAGES,
    )
    await bot.fake.wait_for(lambda: message["id"] in bot.fake.deleted, what="the deletion")
