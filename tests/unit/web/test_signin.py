"""Discord's OAuth2 sign-in over httpx: a refused code, an unreachable Discord, an answer too long
or of the wrong shape are sign-in failures naming no secret. (What the bot's token says about
guilds is tests/discord/test_guilds.py.)"""

from __future__ import annotations

import logging

import httpx
import pytest

from bot.ports import SignInFailed
from bot.web.signin import MAX_ANSWER_BYTES, DiscordSignIn

SECRET = "client-secret-0123456789"


def _discord(handler: httpx.MockTransport) -> DiscordSignIn:
    client = httpx.AsyncClient(transport=handler)
    return DiscordSignIn(
        client, api_base="http://discord.test/api/v10", client_id="1", client_secret=SECRET,
        guilds=None,
    )  # fmt: skip


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
