"""Sign in with Slack for the dashboard (adapters/slack/signin.py) against the fake Slack: the code
exchanged with the client's id and secret, the user's claims, the workspace the bot serves, and
refusals and an unreachable Slack as clear sign-in failures."""

from __future__ import annotations

import logging

import aiohttp
import pytest

from adapters.slack.signin import SlackSignIn
from bot.ports import Community, SignInFailed
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_openid import CLIENT_ID, CLIENT_SECRET
from tests.slack.conftest import BOT_TOKEN


def _signin(fake: FakeSlack, **overrides: str) -> SlackSignIn:
    options = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, **overrides}
    return SlackSignIn(api_url=fake.api_url, bot_token=BOT_TOKEN, **options)


async def _code(fake: FakeSlack, user: str, redirect: str) -> str:
    """What the browser brings back from Slack's consent page."""
    fake.browser_user = user
    signin = _signin(fake)
    url = signin.authorize_url("st", redirect)
    async with aiohttp.ClientSession() as http, http.get(url, allow_redirects=False) as back:
        location = back.headers["Location"]
    return location.split("code=")[1].split("&")[0]


async def test_a_sign_in_names_the_user_and_the_workspace_the_bot_serves(
    fake_slack: FakeSlack,
) -> None:
    redirect = "http://bot.test/dashboard/auth/slack"
    code = await _code(fake_slack, "U42", redirect)
    signed = await _signin(fake_slack).finish(code, redirect)
    assert (signed.platform, signed.user_id, signed.name) == ("slack", "U42", "Slack user U42")
    assert signed.candidates == (Community("slack", "T1", "Fake"),)
    assert fake_slack.openid_violations == []


async def test_a_refused_code_or_client_is_a_sign_in_failure_naming_no_secret(
    fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="adapters.slack.signin")
    with pytest.raises(SignInFailed) as failed:
        await _signin(fake_slack).finish("no-such-code", "http://bot.test/cb")
    assert failed.value.message == "Slack did not accept the sign-in; please try again."
    redirect = "http://bot.test/cb"
    code = await _code(fake_slack, "U42", redirect)
    with pytest.raises(SignInFailed):
        await _signin(fake_slack, client_secret="wrong-secret").finish(code, redirect)
    assert "invalid_client_id" in caplog.text and "wrong-secret" not in caplog.text
    assert CLIENT_SECRET not in caplog.text


async def test_an_unreachable_slack_fails_the_sign_in() -> None:
    signin = SlackSignIn(
        api_url="http://127.0.0.1:9/api/", client_id="1", client_secret="s", bot_token="xoxb-x"
    )
    with pytest.raises(SignInFailed) as failed:
        await signin.finish("code", "http://bot.test/cb")
    assert failed.value.message == "Slack could not be reached; please try again in a moment."
    assert signin.authorize_url("st", "http://bot.test/cb").startswith(
        "http://127.0.0.1:9/openid/connect/authorize?response_type=code&scope=openid+profile"
    )


async def test_an_admin_of_the_workspace_is_a_platform_admin_and_a_stranger_is_not(
    fake_slack: FakeSlack,
) -> None:
    fake_slack.users["U7"] = {"id": "U7", "team_id": "T1", "is_admin": True}
    fake_slack.users["U8"] = {"id": "U8", "team_id": "T1"}
    signin = _signin(fake_slack)
    admin = await signin.membership("T1", "U7")
    member = await signin.membership("T1", "U8")
    assert admin is not None and admin.is_platform_admin
    assert member is not None and not member.is_platform_admin
    assert await signin.membership("T9", "U7") is None  # a workspace the bot does not serve
    assert await signin.community("T1") == Community("slack", "T1", "Fake")
