"""Refusals, the buttons under each image, the edit modal, Delete, App Home, failures."""

from __future__ import annotations

import json

import pytest

from bot.domain.errors import StoreError
from bot.domain.models import CommunitySettings, Job, JobStatus
from tests.fakes.slack import interaction_body
from tests.slack.conftest import TEAM, SlackBot, new_trigger
from tests.store_helpers import save_settings


async def _delivered(slack_bot: SlackBot, prompt: str = "a red fox --seed 11") -> Job:
    await slack_bot.command(prompt)
    await slack_bot.settle()
    jobs = await slack_bot.jobs()
    assert jobs[-1].status is JobStatus.DELIVERED
    return jobs[-1]


async def test_a_banned_user_gets_an_ephemeral_refusal_and_nothing_is_posted(
    slack_bot: SlackBot,
) -> None:
    await save_settings(
        slack_bot.app.store, CommunitySettings(TEAM, banned_users=("U9",)), slack_bot.clock.now()
    )
    reply = await slack_bot.command("a fox", user="U9", response_key="banned")
    assert reply.status == 200
    await slack_bot.settle()
    assert await slack_bot.jobs() == []
    assert slack_bot.fake.posted() == []
    [(key, body)] = slack_bot.fake.responses
    assert key == "banned"
    assert body["response_type"] == "ephemeral"
    assert "not allowed" in body["text"]


async def test_a_channel_not_allowed_is_refused_ephemerally(slack_bot: SlackBot) -> None:
    await save_settings(
        slack_bot.app.store,
        CommunitySettings(TEAM, allowed_channels=("CART",)),
        slack_bot.clock.now(),
    )
    await slack_bot.command("a fox", channel="CGEN", response_key="chan")
    await slack_bot.settle()
    assert await slack_bot.jobs() == []
    [(_, body)] = slack_bot.fake.responses
    assert body["response_type"] == "ephemeral" and "channel" in body["text"]


async def test_reroll_vary_and_upscale_make_new_jobs_from_the_image(slack_bot: SlackBot) -> None:
    parent = await _delivered(slack_bot)
    for verb in ("reroll", "vary", "upscale"):
        reply = await slack_bot.action(verb, parent, user="U2")
        assert reply.status == 200
    await slack_bot.settle()
    jobs = {j.request.action: j for j in await slack_bot.jobs() if j.id != parent.id}
    assert set(jobs) == {"reroll", "vary", "upscale"}
    for job in jobs.values():
        assert job.request.parent_job_id == parent.id
        assert job.request.prompt == parent.request.prompt
        assert job.user_id == "U2"
        assert job.status is JobStatus.DELIVERED
    assert jobs["upscale"].variant == "max" and jobs["upscale"].seed == parent.seed
    assert jobs["vary"].seed != parent.seed
    assert len(slack_bot.fake.shared_files()) == 4
    assert slack_bot.fake.violations == []


async def test_the_same_click_delivered_twice_makes_one_job(slack_bot: SlackBot) -> None:
    parent = await _delivered(slack_bot)
    body = slack_bot.action_body("reroll", parent, trigger=new_trigger())
    await slack_bot.signed(body)
    await slack_bot.signed(body)
    await slack_bot.settle()
    assert len(await slack_bot.jobs()) == 2


async def test_edit_opens_a_modal_and_its_submission_edits_the_image(slack_bot: SlackBot) -> None:
    parent = await _delivered(slack_bot)
    trigger = new_trigger()
    await slack_bot.action("edit", parent, trigger=trigger, thread_ts="1699999999.000001")
    await slack_bot.settle()
    [opened] = slack_bot.fake.calls_to("views.open")
    assert opened.args["trigger_id"] == trigger
    view = opened.args["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert view["type"] == "modal"
    assert view["blocks"][0]["element"]["initial_value"] == parent.request.prompt

    state = {"values": {"prompt_block": {"prompt": {"type": "plain_text_input", "value": ""}}}}
    submission = {
        "type": "view_submission",
        "team": {"id": TEAM, "domain": "fake"},
        "user": {"id": "U1", "team_id": TEAM},
        "api_app_id": "A1",
        "trigger_id": new_trigger(),
        "view": {**view, "id": "V1", "state": state},
    }
    empty = await slack_bot.signed(interaction_body(submission))
    assert empty.status == 200
    assert empty.json["response_action"] == "errors"
    assert "prompt_block" in empty.json["errors"]

    state["values"]["prompt_block"]["prompt"]["value"] = "the fox now wears a hat"
    reply = await slack_bot.signed(interaction_body(submission))
    assert reply.status == 200
    await slack_bot.settle()
    edit = next(j for j in await slack_bot.jobs() if j.request.action == "edit")
    assert edit.request.prompt == "the fox now wears a hat"
    assert edit.request.parent_job_id == parent.id
    assert edit.request.input_images == (f"blob:{parent.images[0]}",)
    assert edit.request.reply.thread_id == "1699999999.000001"
    assert edit.status is JobStatus.DELIVERED
    assert slack_bot.fake.violations == []


async def test_only_the_requester_or_an_admin_may_delete(slack_bot: SlackBot) -> None:
    fake = slack_bot.fake
    job = await _delivered(slack_bot)
    [upload] = fake.shared_files()

    await slack_bot.action("delete", job, user="U2")
    await slack_bot.settle()
    assert fake.calls_to("files.delete") == [] and fake.calls_to("chat.delete") == []
    assert "U2" in [c.args["user"] for c in fake.calls_to("users.info")]
    [(_, refused)] = fake.responses
    assert refused["response_type"] == "ephemeral" and "Only" in refused["text"]

    await slack_bot.action("delete", job, user="U1")
    await slack_bot.settle()
    assert [c.args["file"] for c in fake.calls_to("files.delete")] == [upload.id]
    [deleted] = fake.calls_to("chat.delete")
    assert deleted.args["ts"] == job.delivery["ts"] and deleted.args["channel"] == "C1"
    assert fake.messages[("C1", job.delivery["ts"])].deleted
    assert fake.violations == []


async def test_a_workspace_admin_may_delete_anyones_image(slack_bot: SlackBot) -> None:
    fake = slack_bot.fake
    fake.users["UADMIN"] = {"id": "UADMIN", "is_admin": True, "is_owner": False}
    job = await _delivered(slack_bot)
    await slack_bot.action("delete", job, user="UADMIN")
    await slack_bot.settle()
    assert len(fake.calls_to("files.delete")) == 1
    assert fake.shared_files() == []


async def test_a_button_for_an_unknown_job_says_so(slack_bot: SlackBot) -> None:
    job = await _delivered(slack_bot)
    ghost = job.evolve(id="0000000000000000")
    await slack_bot.action("reroll", ghost)
    await slack_bot.settle()
    assert len(await slack_bot.jobs()) == 1
    assert "no longer known" in slack_bot.fake.responses[-1][1]["text"]


async def test_app_home_shows_the_allowance_and_settings_only_to_admins(
    slack_bot: SlackBot,
) -> None:
    fake = slack_bot.fake
    fake.users["UOWNER"] = {"id": "UOWNER", "is_admin": False, "is_owner": True}
    await slack_bot.command("a quiet harbour", user="U1")
    await slack_bot.settle()
    for user in ("U1", "UOWNER"):
        event = {
            "token": "legacy",
            "team_id": TEAM,
            "api_app_id": "A1",
            "type": "event_callback",
            "event_id": f"Ev{user}",
            "event_time": 1790000000,
            "event": {"type": "app_home_opened", "user": user, "channel": "D1", "tab": "home"},
        }
        reply = await slack_bot.signed(json.dumps(event).encode(), content_type="application/json")
        assert reply.status == 200
    await slack_bot.settle()
    views = {c.args["user_id"]: c.args["view"] for c in fake.calls_to("views.publish")}
    texts = {user: json.dumps(view) for user, view in views.items()}
    assert "Workspace settings" not in texts["U1"]
    assert "Workspace settings" in texts["UOWNER"]
    # Each user's own recent images, nobody else's.
    assert "Your recent images" in texts["U1"] and "a quiet harbour" in texts["U1"]
    assert "a quiet harbour" not in texts["UOWNER"]
    assert fake.violations == []


async def test_url_verification_is_answered(slack_bot: SlackBot) -> None:
    body = json.dumps({"token": "x", "challenge": "ch4ll3nge", "type": "url_verification"})
    reply = await slack_bot.signed(body.encode(), content_type="application/json")
    assert reply.status == 200
    assert "ch4ll3nge" in reply.text


async def test_a_channel_the_bot_is_not_in_gets_an_invite_hint_and_no_job_runs(
    slack_bot: SlackBot,
) -> None:
    slack_bot.fake.fail_always["chat.postMessage"] = "not_in_channel"
    await slack_bot.command("a fox", channel="CPRIV", response_key="priv")
    await slack_bot.settle()
    [job] = await slack_bot.jobs()
    assert job.status is JobStatus.CANCELLED
    assert slack_bot.fake.calls_to("files.getUploadURLExternal") == []
    [(_, body)] = [r for r in slack_bot.fake.responses if r[0] == "priv"]
    assert body["response_type"] == "ephemeral" and "Invite me" in body["text"]


async def test_a_refused_edit_is_told_ephemerally_in_the_channel(slack_bot: SlackBot) -> None:
    parent = await _delivered(slack_bot)
    await save_settings(
        slack_bot.app.store, CommunitySettings(TEAM, banned_users=("U1",)), slack_bot.clock.now()
    )
    metadata = {"job": parent.id, "channel": "C1", "thread_ts": ""}
    submission = {
        "type": "view_submission",
        "team": {"id": TEAM, "domain": "fake"},
        "user": {"id": "U1", "team_id": TEAM},
        "api_app_id": "A1",
        "trigger_id": new_trigger(),
        "view": {
            "id": "V2",
            "type": "modal",
            "callback_id": "imagine_edit",
            "private_metadata": json.dumps(metadata),
            "state": {"values": {"prompt_block": {"prompt": {"value": "a hat"}}}},
        },
    }
    reply = await slack_bot.signed(interaction_body(submission))
    assert reply.status == 200
    await slack_bot.settle()
    assert len(await slack_bot.jobs()) == 1
    [told] = slack_bot.fake.calls_to("chat.postEphemeral")
    assert (told.args["channel"], told.args["user"]) == ("C1", "U1")
    assert "not allowed" in told.args["text"]
    assert slack_bot.fake.violations == []


async def test_a_failing_store_still_gets_the_user_an_answer(
    slack_bot: SlackBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(request: object) -> None:
        raise StoreError("database unreachable")

    monkeypatch.setattr(slack_bot.app.service, "imagine", broken)
    reply = await slack_bot.command("a fox", response_key="broken")
    assert reply.status == 200
    await slack_bot.settle()
    [(_, body)] = [r for r in slack_bot.fake.responses if r[0] == "broken"]
    assert body["response_type"] == "ephemeral" and "went wrong" in body["text"]
    assert slack_bot.fake.posted() == []
