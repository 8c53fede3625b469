"""Personal use on Slack: --private answers ephemerally and delivers in the user's DM;
/imagine history and /imagine prefer as subcommands."""

from __future__ import annotations

import json
from typing import Any

from bot.domain.models import JobStatus
from tests.slack.conftest import TEAM, SlackBot


def answers(bot: SlackBot, key: str) -> list[dict[str, Any]]:
    return [body for k, body in bot.fake.responses if k == key]


async def test_private_is_answered_ephemerally_and_delivered_in_the_users_dm(
    slack_bot: SlackBot,
) -> None:
    fake = slack_bot.fake
    reply = await slack_bot.command("a secret garden --private", channel="C42", user="U7")
    assert reply.json["response_type"] == "ephemeral" and "your DM" in reply.json["text"]
    await slack_bot.settle()
    [job] = await slack_bot.jobs()
    assert job.status is JobStatus.DELIVERED and job.request.private
    assert fake.posted("C42") == []  # nothing in the channel
    [card] = fake.posted("DU7")
    assert "a secret garden" in card.blocks[0]["text"]["text"]
    [upload] = fake.shared_files()
    assert upload.shared_to == "DU7"
    assert fake.calls_to("conversations.open")[0].args["users"] == "U7"
    assert fake.violations == []


async def test_prefer_then_history_with_a_rerun(slack_bot: SlackBot) -> None:
    fake = slack_bot.fake
    await slack_bot.command("prefer suffix as a linocut", response_key="p1")
    await slack_bot.settle()
    [said] = answers(slack_bot, "p1")
    assert said["response_type"] == "ephemeral" and "suffix: as a linocut" in said["text"]
    await slack_bot.command("a harbour", user="U1")
    await slack_bot.command("not mine", user="U2")
    await slack_bot.settle()

    await slack_bot.command("history 5", response_key="h1")
    await slack_bot.settle()
    [history] = answers(slack_bot, "h1")
    assert history["response_type"] == "ephemeral"
    assert "a harbour as a linocut" in history["text"] and "not mine" not in history["text"]
    [button] = history["blocks"][1]["elements"]
    assert button["action_id"].startswith("imagine:rerun:")

    jobs = {j.request.prompt: j for j in await slack_bot.jobs()}
    await slack_bot.action("rerun", jobs["a harbour as a linocut"])
    await slack_bot.settle()
    reruns = [j for j in await slack_bot.jobs() if j.request.action == "reroll"]
    assert len(reruns) == 1 and reruns[0].request.private
    assert reruns[0].request.prompt == "a harbour as a linocut"
    assert [u.shared_to for u in fake.shared_files()][-1] == "DU1"

    # Someone else's job cannot be re-run.
    await slack_bot.action("rerun", jobs["a harbour as a linocut"], user="U2")
    await slack_bot.settle()
    [refused] = answers(slack_bot, "action-rerun-U2")
    assert "only your own" in refused["text"]

    await slack_bot.command("prefer format gif", response_key="p2")
    await slack_bot.command("prefer reset", response_key="p3")
    await slack_bot.settle()
    assert "png, jpeg, webp" in answers(slack_bot, "p2")[0]["text"]
    assert "cleared" in answers(slack_bot, "p3")[0]["text"]
    assert fake.violations == []


async def test_a_prompt_starting_with_history_is_a_prompt(slack_bot: SlackBot) -> None:
    await slack_bot.command("history of rome as a mosaic")
    await slack_bot.settle()
    [job] = await slack_bot.jobs()
    assert job.request.prompt == "history of rome as a mosaic"


def dm_event(text: str, *, user: str = "U5", ts: str = "1790000001.000100", **extra: Any) -> bytes:
    # https://api.slack.com/events/message.im, inside the Events API envelope.
    event = {
        "type": "message",
        "channel": f"D{user}",
        "channel_type": "im",
        "user": user,
        "text": text,
        "ts": ts,
        "event_ts": ts,
        **extra,
    }
    return json.dumps(
        {
            "token": "legacy",
            "team_id": TEAM,
            "api_app_id": "A1",
            "type": "event_callback",
            "event_id": f"Ev{ts}",
            "event_time": 1790000001,
            "event": event,
        }
    ).encode()


async def test_a_message_to_the_bot_makes_an_image_in_that_dm(slack_bot: SlackBot) -> None:
    fake = slack_bot.fake
    body = dm_event("a paper lantern --ar 3:2")
    reply = await slack_bot.signed(body, content_type="application/json")
    assert reply.status == 200
    # Slack retries an event it thinks was lost: still one job.
    await slack_bot.signed(body, content_type="application/json")
    # The bot's own messages and edits are not commands.
    await slack_bot.signed(
        dm_event("a bot line", ts="1790000002.000100", bot_id="B1"),
        content_type="application/json",
    )
    await slack_bot.signed(
        dm_event("edited", ts="1790000003.000100", subtype="message_changed"),
        content_type="application/json",
    )
    await slack_bot.settle()
    [job] = await slack_bot.jobs()
    assert job.status is JobStatus.DELIVERED and job.request.aspect_ratio == "3:2"
    assert job.request.reply.channel_id == "DU5" and job.community_id == TEAM
    [upload] = fake.shared_files()
    assert upload.shared_to == "DU5"
    assert fake.violations == []


async def test_history_typed_in_the_dm_is_answered_there(slack_bot: SlackBot) -> None:
    await slack_bot.signed(dm_event("history"), content_type="application/json")
    await slack_bot.settle()
    [said] = slack_bot.fake.posted("DU5")
    assert said.text == "You have not made any images yet."
