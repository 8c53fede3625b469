"""The core request each Slack entry point makes (adapters/slack/requests.py)."""

from __future__ import annotations

from adapters.slack.requests import slack_request
from bot.text.flags import parse_imagine


def test_a_command_request_says_who_where_and_how_to_answer() -> None:
    request = slack_request(
        parse_imagine("a fox --ar 16:9"),
        team="T1",
        channel="C1",
        user="U1",
        thread="1700000000.000100",
        response_url="https://hooks.slack.test/r/1",
        dedupe="trigger-1",
    )
    assert (request.platform, request.community_id, request.channel_id) == ("slack", "T1", "C1")
    assert (request.user_id, request.prompt, request.aspect_ratio) == ("U1", "a fox", "16:9")
    assert request.dedupe_key is not None and "trigger-1" in request.dedupe_key
    assert request.reply.thread_id == "1700000000.000100"
    assert request.reply.data == {
        "team_id": "T1",
        "user_id": "U1",
        "response_url": "https://hooks.slack.test/r/1",
    }


def test_a_direct_message_has_no_response_url_to_answer_through() -> None:
    request = slack_request(parse_imagine("a fox"), team="T1", channel="D1", user="U1")
    assert request.reply.data == {"team_id": "T1", "user_id": "U1"}
    assert request.reply.thread_id is None and request.dedupe_key is None
