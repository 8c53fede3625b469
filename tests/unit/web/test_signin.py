"""Discord rights from a guild's roles (the bot token's view), and platform errors at sign-in."""

from __future__ import annotations

import logging

import httpx
import pytest

from bot.ports import SignInFailed
from bot.web.signin import MAX_ANSWER_BYTES, DiscordSignIn

GUILD = "100"
USER = "200"
SECRET = "client-secret-0123456789"


def _discord(handler: httpx.MockTransport) -> DiscordSignIn:
    client = httpx.AsyncClient(transport=handler)
    return DiscordSignIn(
        client, api_base="http://discord.test/api/v10", client_id="1", client_secret=SECRET,
        bot_token="bot-token",
    )  # fmt: skip


def _guild(owner: str, member_roles: list[str], roles: dict[str, int]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Bot bot-token"
        if request.url.path.endswith(f"/members/{USER}"):
            return httpx.Response(200, json={"roles": member_roles})
        body = {
            "id": GUILD,
            "name": "G",
            "owner_id": owner,
            "roles": [{"id": k, "permissions": str(v)} for k, v in roles.items()],
        }
        return httpx.Response(200, json=body)

    return httpx.MockTransport(answer)


@pytest.mark.parametrize(
    ("owner", "member_roles", "roles", "admin"),
    [
        (USER, [], {GUILD: 0}, True),  # the owner
        ("9", ["1"], {GUILD: 0, "1": 1 << 3}, True),  # Administrator
        ("9", ["1"], {GUILD: 0, "1": 1 << 5}, True),  # Manage Server
        ("9", [], {GUILD: 1 << 5}, True),  # @everyone may manage
        ("9", ["1"], {GUILD: 1 << 10, "1": 1 << 13}, False),  # Manage Messages is not enough
    ],
)
async def test_manage_server_is_computed_from_the_guilds_roles(
    owner: str, member_roles: list[str], roles: dict[str, int], admin: bool
) -> None:
    membership = await _discord(_guild(owner, member_roles, roles)).membership(GUILD, USER)
    assert membership is not None
    assert membership.is_platform_admin is admin
    assert membership.role_ids == tuple(member_roles)


async def test_no_membership_where_the_bot_or_the_user_is_not() -> None:
    unknown = httpx.MockTransport(
        lambda r: httpx.Response(404, json={"message": "Unknown Member", "code": 10007})
    )
    assert await _discord(unknown).membership(GUILD, USER) is None
    assert await _discord(unknown).membership("not-a-snowflake", USER) is None


async def test_a_refused_code_is_a_sign_in_failure_without_the_secret() -> None:
    refused = httpx.MockTransport(lambda r: httpx.Response(400, json={"error": "invalid_grant"}))
    with pytest.raises(SignInFailed) as failed:
        await _discord(refused).finish("code", "http://bot/dashboard/auth/discord")
    assert failed.value.message != "s" and "Discord did not accept" in failed.value.message


async def test_an_unreachable_platform_fails_the_sign_in_without_the_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot connect to {request.url}", request=request)

    caplog.set_level(logging.INFO, logger="bot.web.signin")
    with pytest.raises(SignInFailed) as failed:
        await _discord(httpx.MockTransport(down)).finish("the-code", "http://bot/cb")
    assert failed.value.message == "Discord could not be reached; please try again in a moment."
    assert "the-code" not in caplog.text and SECRET not in caplog.text
    assert "ConnectError" in caplog.text


async def test_an_answer_over_the_cap_is_refused_unread() -> None:
    huge = b'{"access_token": "' + b"x" * MAX_ANSWER_BYTES + b'"}'
    with pytest.raises(SignInFailed) as failed:
        await _discord(httpx.MockTransport(lambda r: httpx.Response(200, content=huge))).finish(
            "code", "http://bot/cb"
        )
    assert failed.value.message == "Discord answered more than a sign-in needs."


async def test_an_answer_that_is_not_an_object_is_a_sign_in_failure() -> None:
    listed = httpx.MockTransport(lambda r: httpx.Response(200, json=["access_token"]))
    with pytest.raises(SignInFailed) as failed:
        await _discord(listed).finish("code", "http://bot/cb")
    assert failed.value.message == "Discord's answer had no access token."
