"""The fake Discord's request checker refuses what Discord's API description refuses."""

from __future__ import annotations

import pytest

from tests.fakes.discord_spec import SpecViolation, check_request

BOT = {"Authorization": "Bot abc.def.ghi"}
HOOK = "/webhooks/1100000000000000001/itok-abc"


def test_requests_as_discord_py_sends_them_pass() -> None:
    body = {"content": "hi", "allowed_mentions": {"parse": [], "users": [1400000000000000004]}}
    assert (
        check_request("POST", "/channels/13/messages", {}, "application/json", body, BOT)
        == "create_message"
    )
    query = {"wait": "1", "with_components": "0"}
    assert check_request("POST", HOOK, query, "application/json", body, {}) == "execute_webhook"
    assert (
        check_request("PATCH", HOOK + "/messages/@original", {}, "application/json", body, {})
        == "update_original_webhook_message"
    )


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "headers", "why"),
    [
        ("POST", "/channels/general/messages", {}, {"content": "x"}, BOT, "path parameter"),
        ("POST", HOOK, {"wait": "maybe"}, {"content": "x"}, {}, "query parameter wait"),
        ("POST", HOOK, {"colour": "red"}, {"content": "x"}, {}, "unknown query"),
        ("POST", "/channels/13/messages", {}, {"content": "x"}, {}, "Authorization"),
        ("POST", "/channels/13/messages", {}, {"content": 5}, BOT, "content"),
        ("POST", "/channels/13/messages", {}, {"flags": "x"}, BOT, "flags"),
        ("GET", "/nowhere", {}, None, BOT, "no such operation"),
    ],
)
def test_requests_off_the_description_are_violations(
    method: str,
    path: str,
    query: dict[str, str],
    body: object,
    headers: dict[str, str],
    why: str,
) -> None:
    with pytest.raises(SpecViolation, match=why):
        check_request(method, path, query, "application/json", body, headers)
