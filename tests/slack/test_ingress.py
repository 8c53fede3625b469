"""Who may talk to the bot (RELIABILITY.md 1-4): signatures, timestamps, replays, bursts."""

from __future__ import annotations

import asyncio

import pytest

from tests.fakes.slack import sign
from tests.slack.conftest import SIGNING_SECRET, SlackBot, new_trigger


def _headers(body: bytes, timestamp: str, signature: str | None = None) -> dict[str, str]:
    return {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature
        if signature is not None
        else sign(SIGNING_SECRET, body, timestamp),
        "Content-Type": "application/x-www-form-urlencoded",
    }


async def _assert_nothing_happened(slack_bot: SlackBot) -> None:
    await slack_bot.settle()
    assert await slack_bot.jobs() == []
    assert slack_bot.fake.calls == []
    assert slack_bot.fake.responses == []


@pytest.mark.parametrize("skew", [-301, 301, -3600, 86_400])
async def test_a_stale_or_future_timestamp_gets_401_and_no_job(
    slack_bot: SlackBot, skew: int
) -> None:
    body = slack_bot.command_body("a fox")
    stamp = str(int(slack_bot.clock.now()) + skew)
    reply = await slack_bot.post(body, _headers(body, stamp))
    assert reply.status == 401
    await _assert_nothing_happened(slack_bot)


async def test_a_timestamp_inside_the_window_is_accepted(slack_bot: SlackBot) -> None:
    body = slack_bot.command_body("a fox")
    stamp = str(int(slack_bot.clock.now()) - 290)
    reply = await slack_bot.post(body, _headers(body, stamp))
    assert reply.status == 200
    await slack_bot.settle()
    assert len(await slack_bot.jobs()) == 1


@pytest.mark.parametrize("stamp", ["abc", "", "1e3", " 1790000000", "-5", "1790000000.5", "١٧٩"])
async def test_a_malformed_timestamp_gets_401_never_500(slack_bot: SlackBot, stamp: str) -> None:
    body = slack_bot.command_body("a fox")
    reply = await slack_bot.post(body, _headers(body, stamp))
    assert reply.status == 401
    await _assert_nothing_happened(slack_bot)


async def test_a_body_changed_by_one_byte_gets_401(slack_bot: SlackBot) -> None:
    body = slack_bot.command_body("a fox")
    stamp = str(int(slack_bot.clock.now()))
    headers = _headers(body, stamp)
    tampered = body.replace(b"a+fox", b"a+fix")
    assert tampered != body and len(tampered) == len(body)
    reply = await slack_bot.post(tampered, headers)
    assert reply.status == 401
    await _assert_nothing_happened(slack_bot)


@pytest.mark.parametrize(
    "signature", ["", "v0=", "v0=" + "0" * 64, "v1=abc", "sha256=abc", "v0=zz"]
)
async def test_a_wrong_signature_gets_401(slack_bot: SlackBot, signature: str) -> None:
    body = slack_bot.command_body("a fox")
    reply = await slack_bot.post(body, _headers(body, str(int(slack_bot.clock.now())), signature))
    assert reply.status == 401
    await _assert_nothing_happened(slack_bot)


async def test_missing_signature_headers_get_401(slack_bot: SlackBot) -> None:
    body = slack_bot.command_body("a fox")
    stamp = str(int(slack_bot.clock.now()))
    full = _headers(body, stamp)
    for missing in ("X-Slack-Signature", "X-Slack-Request-Timestamp"):
        headers = {k: v for k, v in full.items() if k != missing}
        reply = await slack_bot.post(body, headers)
        assert reply.status == 401
    reply = await slack_bot.post(body, {"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status == 401
    await _assert_nothing_happened(slack_bot)


async def test_a_signature_made_with_another_secret_gets_401(slack_bot: SlackBot) -> None:
    body = slack_bot.command_body("a fox")
    stamp = str(int(slack_bot.clock.now()))
    reply = await slack_bot.post(body, _headers(body, stamp, sign("another-secret", body, stamp)))
    assert reply.status == 401
    await _assert_nothing_happened(slack_bot)


async def test_a_replayed_request_makes_one_job(slack_bot: SlackBot) -> None:
    body = slack_bot.command_body("a fox in the snow")
    headers = _headers(body, str(int(slack_bot.clock.now())))
    first = await slack_bot.post(body, headers)
    await slack_bot.settle()
    slack_bot.clock.advance(120)  # still inside the five minutes
    again = await asyncio.gather(*[slack_bot.post(body, headers) for _ in range(5)])
    assert first.status == 200 and all(r.status == 200 for r in again)
    await slack_bot.settle()
    assert len(await slack_bot.jobs()) == 1
    assert len(slack_bot.fake.posted("C1")) == 1
    assert len(slack_bot.fake.shared_files()) == 1


async def test_concurrent_replays_make_one_job(slack_bot: SlackBot) -> None:
    body = slack_bot.command_body("a fox in the rain")
    headers = _headers(body, str(int(slack_bot.clock.now())))
    replies = await asyncio.gather(*[slack_bot.post(body, headers) for _ in range(8)])
    assert all(r.status == 200 for r in replies)
    await slack_bot.settle()
    assert len(await slack_bot.jobs()) == 1
    assert len(slack_bot.fake.posted("C1")) == 1
    assert len(slack_bot.fake.shared_files()) == 1


async def test_fifty_concurrent_signed_commands_are_all_acked(slack_bot: SlackBot) -> None:
    bodies = [
        slack_bot.command_body(f"a fox number {i}", user=f"U{i:03d}", trigger=new_trigger())
        for i in range(50)
    ]
    replies = await asyncio.gather(*[slack_bot.signed(body) for body in bodies])
    assert [r.status for r in replies] == [200] * 50
    assert all(r.json["response_type"] == "ephemeral" for r in replies)
    assert all("Queued" in r.json["text"] for r in replies)
    await slack_bot.settle()
    jobs = await slack_bot.jobs()
    assert len(jobs) == 50
    assert len(slack_bot.fake.shared_files()) == 50
    assert slack_bot.fake.violations == []


async def test_unsigned_get_and_other_paths_do_not_reach_bolt(slack_bot: SlackBot) -> None:
    async with slack_bot.http.get(slack_bot.url) as response:
        assert response.status == 405
    await _assert_nothing_happened(slack_bot)
