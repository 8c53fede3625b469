"""Personal use on Discord: /imagine in the bot's DM (user-installed app) answered through the
interaction only, private results, and the bot-wide rules of personal use."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.discord import create_adapter, interactions
from bot.domain.models import CommunitySettings, JobStatus
from bot.domain.personal import PERSONAL_COMMUNITY
from bot.domain.safety import NAMED_LEVELS
from bot.runtime.app import open_app
from bot.runtime.config import load_settings
from tests.discord.conftest import Bot, discord_env
from tests.factories import make_job, make_request
from tests.fakes.discord import BOT_TOKEN, GUILD_ID, FakeDiscord, Recorded
from tests.store_helpers import enqueue_job, save_settings

DM_CHANNEL = "1300000000000000099"


def final_edit(bot: Bot, token: str) -> Recorded | None:
    for r in reversed(bot.fake.calls("update_original_webhook_message", token)):
        if r.files:
            return r
    return None


def refusal(bot: Bot, token: str) -> Recorded | None:
    calls = bot.fake.calls("execute_webhook", token)
    return calls[0] if calls else None


async def open_bot(fake: FakeDiscord, data_dir: Path, **extra: str) -> AsyncIterator[Bot]:
    settings = load_settings(discord_env(fake, data_dir, **extra), env_file=None)
    async with open_app(settings) as app:
        adapter = create_adapter(app, gateway=True)
        adapter.attach()
        assert adapter.client is not None
        await adapter.client.login(BOT_TOKEN)
        await app.start_workers()
        try:
            yield Bot(app, adapter, fake)
        finally:
            await adapter.aclose()


@pytest.fixture
async def personal_off_bot(fake_discord: FakeDiscord, data_dir: Path) -> AsyncIterator[Bot]:
    async for bot in open_bot(fake_discord, data_dir, IMAGINE_PERSONAL="off"):
        yield bot


@pytest.fixture
async def budget_bot(fake_discord: FakeDiscord, data_dir: Path) -> AsyncIterator[Bot]:
    async for bot in open_bot(fake_discord, data_dir, IMAGINE_PERSONAL_DAILY_BUDGET_USD="0.5"):
        yield bot


def dm_imagine(fake: FakeDiscord, prompt: str, **options: Any) -> dict[str, Any]:
    return fake.imagine(prompt, dm=True, channel_id=DM_CHANNEL, **options)


async def test_a_dm_is_answered_through_the_interaction_only_with_personal_rules(bot: Bot) -> None:
    token = bot.feed(dm_imagine(bot.fake, "a paper boat"))
    edit = await bot.fake.wait_for(lambda: final_edit(bot, token), what="the image")
    ack = bot.fake.calls("create_interaction_response", token)[0]
    assert ack.json["type"] == 5 and not (ack.json.get("data") or {}).get("flags")
    assert bot.fake.calls("create_message") == []  # the bot never posts in a DM itself
    job_id = edit.json["embeds"][0]["footer"]["text"].removeprefix("job ")
    job = await bot.app.service.job(job_id)
    assert job.community_id == PERSONAL_COMMUNITY
    assert job.request.safety_tolerance == NAMED_LEVELS["strict"]


async def test_a_user_install_in_a_server_without_the_bot_is_personal_use(bot: Bot) -> None:
    payload = bot.fake.imagine("a tin robot")
    payload["authorizing_integration_owners"] = {"1": payload["member"]["user"]["id"]}
    token = bot.feed(payload)
    edit = await bot.fake.wait_for(lambda: final_edit(bot, token), what="the image")
    job_id = edit.json["embeds"][0]["footer"]["text"].removeprefix("job ")
    assert (await bot.app.service.job(job_id)).community_id == PERSONAL_COMMUNITY


async def test_in_a_server_with_the_bot_its_settings_apply(bot: Bot) -> None:
    await save_settings(
        bot.app.store, CommunitySettings(GUILD_ID, safety_level="relaxed"), bot.app.clock.now()
    )
    token = bot.feed(bot.fake.imagine("a tin robot", nsfw=True))
    edit = await bot.fake.wait_for(lambda: final_edit(bot, token), what="the image")
    job = await bot.app.service.job(edit.json["embeds"][0]["footer"]["text"].split()[-1])
    assert job.community_id == GUILD_ID
    assert job.request.safety_tolerance == NAMED_LEVELS["relaxed"]


async def test_personal_words_list_is_the_bots_default(bot: Bot) -> None:
    # The built-in list applies in personal use as everywhere.
    token = bot.feed(dm_imagine(bot.fake, "child porn"))
    answer = await bot.fake.wait_for(lambda: refusal(bot, token), what="the refusal")
    assert answer.json["flags"] & 64 and "blocked" in answer.json["content"]


async def test_personal_use_off_refuses_with_a_clear_answer(personal_off_bot: Bot) -> None:
    bot = personal_off_bot
    token = bot.feed(dm_imagine(bot.fake, "a paper boat"))
    answer = await bot.fake.wait_for(lambda: refusal(bot, token), what="the refusal")
    assert answer.json["flags"] & 64
    assert "turned off" in answer.json["content"] and "server" in answer.json["content"]
    # A server that installed the bot still works.
    token = bot.feed(bot.fake.imagine("a paper boat"))
    await bot.fake.wait_for(lambda: final_edit(bot, token), what="the image")


async def test_the_personal_budget_refuses_once_spent(budget_bot: Bot) -> None:
    bot = budget_bot
    # Someone else's personal image of today already cost more than the bot-wide budget.
    now = bot.app.clock.now()
    spent = make_job(
        now=now,
        request=make_request(community_id=PERSONAL_COMMUNITY, user_id="someone-else"),
        status=JobStatus.DELIVERED,
        cost_usd=0.6,
        created_at=now,
    )
    await enqueue_job(bot.app.store, spent)
    token = bot.feed(dm_imagine(bot.fake, "a paper boat"))
    answer = await bot.fake.wait_for(lambda: refusal(bot, token), what="the refusal")
    assert "daily budget for personal use" in answer.json["content"]
    counts = await bot.app.store.job_counts()
    assert counts.queued == 0
    # Servers that installed the bot have their own budgets.
    token = bot.feed(bot.fake.imagine("a paper boat"))
    await bot.fake.wait_for(lambda: final_edit(bot, token), what="the image")


async def test_private_defers_ephemerally_and_never_posts_in_the_channel(bot: Bot) -> None:
    token = bot.feed(bot.fake.imagine("a secret garden", private=True))
    edit = await bot.fake.wait_for(lambda: final_edit(bot, token), what="the image")
    ack = bot.fake.calls("create_interaction_response", token)[0]
    assert ack.json["data"]["flags"] & 64  # the deferral is ephemeral, so is every edit of it
    message = bot.fake.original_message(token)
    assert message is not None and message["flags"] & 64
    assert bot.fake.calls("create_message") == []
    job_id = edit.json["embeds"][0]["footer"]["text"].removeprefix("job ")
    assert (await bot.app.service.job(job_id)).request.private


async def test_a_button_under_a_private_image_answers_privately(bot: Bot) -> None:
    token = bot.feed(bot.fake.imagine("a secret garden", private=True, seed=3))
    await bot.fake.wait_for(lambda: final_edit(bot, token), what="the image")
    message = bot.fake.original_message(token)
    assert message is not None
    buttons = [b["custom_id"] for row in message["components"] for b in row["components"]]
    [custom_id] = [c for c in buttons if c.startswith("imagine:reroll:")]
    press = bot.feed(bot.fake.button(custom_id, message))
    edit = await bot.fake.wait_for(lambda: final_edit(bot, press), what="the reroll")
    ack = bot.fake.calls("create_interaction_response", press)[0]
    assert ack.json["data"]["flags"] & 64
    job_id = edit.json["embeds"][0]["footer"]["text"].removeprefix("job ")
    assert (await bot.app.service.job(job_id)).request.private
    assert bot.fake.calls("create_message") == []


async def test_a_community_may_forbid_private_images(bot: Bot) -> None:
    await save_settings(
        bot.app.store, CommunitySettings(GUILD_ID, allow_private=False), bot.app.clock.now()
    )
    token = bot.feed(bot.fake.imagine("a secret garden", private=True))
    answer = await bot.fake.wait_for(lambda: refusal(bot, token), what="the refusal")
    assert answer.json["flags"] & 64 and "Private images are turned off" in answer.json["content"]
    assert (await bot.app.store.job_counts()).queued == 0


def opt(name: str, kind: int, value: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, "value": value}


def prefer(bot: Bot, sub: str, options: list[dict[str, Any]], **kw: Any) -> str:
    return bot.feed(
        bot.fake.command("prefer", [{"name": sub, "type": 1, "options": options}], **kw)
    )


async def ephemeral_answer(bot: Bot, token: str) -> Recorded:
    def edited() -> Recorded | None:
        calls = bot.fake.calls("update_original_webhook_message", token)
        return calls[-1] if calls else None

    edit = await bot.fake.wait_for(edited, what="the answer")
    first = bot.fake.calls("create_interaction_response", token)[0]
    assert first.json["type"] == 5 and first.json["data"]["flags"] & 64
    return edit


async def test_prefer_set_show_reset_and_the_preferences_apply(bot: Bot) -> None:
    token = prefer(
        bot,
        "set",
        [opt("aspect", 3, "16:9"), opt("private", 5, True), opt("suffix", 3, "as a woodcut")],
        dm=True,
        channel_id=DM_CHANNEL,
    )
    text = (await ephemeral_answer(bot, token)).json["content"]
    assert "aspect: 16:9" in text and "private: on" in text and "suffix: as a woodcut" in text
    # In a DM (and in a server that installed the bot) the same user's preferences apply.
    token = bot.feed(dm_imagine(bot.fake, "a harbour", private=True))
    edit = await bot.fake.wait_for(lambda: final_edit(bot, token), what="the image")
    job = await bot.app.service.job(edit.json["embeds"][0]["footer"]["text"].split()[-1])
    assert job.request.prompt == "a harbour as a woodcut" and job.width > job.height
    assert job.request.private and bot.fake.calls("create_message") == []
    # In a server too: the preference is read before the acknowledgement, which is private
    # from the start, and the image replaces it.
    token = bot.feed(bot.fake.imagine("a harbour"))
    edit = await bot.fake.wait_for(lambda: final_edit(bot, token), what="the image")
    ack = bot.fake.calls("create_interaction_response", token)[0]
    assert ack.json["type"] == 5 and ack.json["data"]["flags"] & 64
    assert not bot.fake.calls("delete_original_webhook_message", token)
    assert bot.fake.calls("create_message") == []
    show = prefer(bot, "show", [])
    assert "suffix: as a woodcut" in (await ephemeral_answer(bot, show)).json["content"]
    reset = prefer(bot, "reset", [])
    assert "cleared" in (await ephemeral_answer(bot, reset)).json["content"]
    assert (
        await bot.app.service.preferences("discord", job.user_id)
        == type(await bot.app.service.preferences("discord", "nobody"))()
    )


async def test_a_private_preference_read_too_late_still_keeps_the_image_private(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past PREFERENCE_WAIT the deferral is public: the "thinking" line is taken away and the
    image comes as an ephemeral follow-up."""
    monkeypatch.setattr(interactions, "PREFERENCE_WAIT", 0.0)
    token = prefer(bot, "set", [opt("private", 5, True)])
    await ephemeral_answer(bot, token)
    token = bot.feed(bot.fake.imagine("a harbour"))
    followup = await bot.fake.wait_for(
        lambda: [r for r in bot.fake.calls("execute_webhook", token) if r.files], what="followup"
    )
    ack = bot.fake.calls("create_interaction_response", token)[0]
    assert not (ack.json.get("data") or {}).get("flags")
    assert followup[0].json["flags"] & 64
    assert bot.fake.calls("delete_original_webhook_message", token)
    assert not [r for r in bot.fake.calls("update_original_webhook_message", token) if r.files]


async def test_a_private_preference_is_not_followed_where_the_community_forbids_private(
    bot: Bot,
) -> None:
    await save_settings(
        bot.app.store, CommunitySettings(GUILD_ID, allow_private=False), 1_700_000_000.0
    )
    token = prefer(bot, "set", [opt("private", 5, True)])
    await ephemeral_answer(bot, token)
    token = bot.feed(bot.fake.imagine("a harbour"))
    edit = await bot.fake.wait_for(lambda: final_edit(bot, token), what="the image")
    ack = bot.fake.calls("create_interaction_response", token)[0]
    assert not (ack.json.get("data") or {}).get("flags")
    job = await bot.app.service.job(edit.json["embeds"][0]["footer"]["text"].split()[-1])
    assert not job.request.private


async def test_prefer_with_a_bad_value_names_what_is_allowed(bot: Bot) -> None:
    token = prefer(bot, "set", [opt("aspect", 3, "very wide")])
    text = (await ephemeral_answer(bot, token)).json["content"]
    assert text.startswith("⚠️") and "16:9" in text


async def test_history_lists_only_the_users_own_jobs_with_a_rerun_each(bot: Bot) -> None:
    mine = bot.feed(bot.fake.imagine("a lantern", seed=8))
    await bot.fake.wait_for(lambda: final_edit(bot, mine), what="my image")
    private = bot.feed(dm_imagine(bot.fake, "a diary"))
    await bot.fake.wait_for(lambda: final_edit(bot, private), what="my DM image")
    theirs = bot.feed(bot.fake.imagine("not mine", user_id="1400000000000000077"))
    await bot.fake.wait_for(lambda: final_edit(bot, theirs), what="their image")

    token = bot.feed(bot.fake.command("history", [opt("count", 4, 5)]))
    edit = await ephemeral_answer(bot, token)
    lines = edit.json["content"].splitlines()
    assert len(lines) == 2 and "not mine" not in edit.json["content"]
    assert lines[0].startswith("1. a diary") and "done" in lines[0]
    assert lines[1].startswith("2. a lantern") and "https://discord.com/channels/" in lines[1]
    buttons = [b for row in edit.json["components"] for b in row["components"]]
    assert [b["label"] for b in buttons] == ["Re-run 1", "Re-run 2"]
    assert all(b["custom_id"].startswith("imagine:rerun:") for b in buttons)

    # Re-run from the (ephemeral) history: a private new image of the same prompt.
    message = bot.fake.original_message(token)
    assert message is not None
    press = bot.feed(bot.fake.button(buttons[1]["custom_id"], message))
    rerun = await bot.fake.wait_for(lambda: final_edit(bot, press), what="the re-run")
    assert rerun.json["embeds"][0]["description"] == "a lantern"
    assert bot.fake.calls("create_interaction_response", press)[0].json["data"]["flags"] & 64

    # Someone else pressing it (a forwarded message, a crafted id) is refused.
    other = bot.feed(
        bot.fake.button(buttons[1]["custom_id"], message, user_id="1400000000000000077")
    )
    answer = await bot.fake.wait_for(lambda: refusal(bot, other), what="the refusal")
    assert "only your own" in answer.json["content"]
