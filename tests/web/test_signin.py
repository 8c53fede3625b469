"""Signing in to the dashboard with Discord and with Slack, and the pages a signed-in user sees."""

from __future__ import annotations

import logging

import pytest

from bot.domain.models import JobStatus
from tests.factories import make_job
from tests.fakes import discord_oauth, slack_openid
from tests.fakes.discord import BOT_TOKEN
from tests.store_helpers import enqueue_job, save_settings
from tests.web.conftest import (
    ADMIN,
    BOTLESS_GUILD,
    GUILD,
    HELPER_ROLE,
    MEMBER,
    OTHER_GUILD,
    OWNER,
    SECRET,
    Site,
)


async def test_the_sign_in_page_offers_both_platforms_with_safe_headers(site: Site) -> None:
    response = await site.client.get("/dashboard/")
    page = await response.text()
    assert response.status == 200
    assert "Sign in with Discord" in page and "Sign in with Slack" in page
    assert "<script" not in page
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "script-src" not in response.headers["Content-Security-Policy"]
    css = await site.client.get("/dashboard/static/style.css")
    assert css.status == 200 and "svg.chart" in await css.text()


async def test_discord_admin_sees_the_servers_they_manage_where_the_bot_is(site: Site) -> None:
    response = await site.sign_in("discord", ADMIN)
    page = await response.text()
    assert response.status == 200
    assert "Ada Admin" in page
    assert f"/dashboard/c/{GUILD}" in page and "Painters" in page
    assert OTHER_GUILD not in page  # not a member
    assert BOTLESS_GUILD not in page  # the bot is not there
    cookie = response.cookies.get("imagine_dashboard") or next(
        c for c in site.client.session.cookie_jar if c.key == "imagine_dashboard"
    )
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/dashboard"
    # The user's access token, the code and the secrets appear nowhere in the page or cookie.
    for token in site.discord._tokens:
        assert token not in page and token not in cookie.value


async def test_a_plain_member_sees_no_community(site: Site) -> None:
    page = await (await site.sign_in("discord", MEMBER)).text()
    assert 'id="no-communities"' in page
    assert f"/dashboard/c/{GUILD}" not in page
    assert (await site.client.get(f"/dashboard/c/{GUILD}")).status == 403


async def test_the_communitys_own_admin_users_and_roles_count(site: Site) -> None:
    settings = await site.app.service.get_settings(GUILD)
    await save_settings(site.app.store, settings.evolve(admin_users=(MEMBER,)), 0.0)
    page = await (await site.sign_in("discord", MEMBER)).text()
    assert f"/dashboard/c/{GUILD}" in page
    assert (await site.client.get(f"/dashboard/c/{GUILD}")).status == 200


async def test_a_member_holding_one_of_the_communitys_admin_roles_is_an_admin(site: Site) -> None:
    site.discord.guilds[GUILD].members[MEMBER] = [HELPER_ROLE]
    settings = await site.app.service.get_settings(GUILD)
    await save_settings(site.app.store, settings.evolve(admin_roles=(HELPER_ROLE,)), 0.0)
    page = await (await site.sign_in("discord", MEMBER)).text()
    assert f"/dashboard/c/{GUILD}" in page
    # The role is read from Discord on each request: without it, no more pages.
    site.discord.guilds[GUILD].members[MEMBER] = []
    assert (await site.client.get(f"/dashboard/c/{GUILD}")).status == 403


async def test_denied_consent_and_a_foreign_state_are_clear_pages(site: Site) -> None:
    site.discord.consent = False
    response = await site.sign_in("discord", ADMIN)
    assert response.status == 400
    assert "did not allow the dashboard" in await response.text()
    site.discord.consent = True
    forged = await site.client.get("/dashboard/auth/discord?code=abc&state=not-ours")
    assert forged.status == 400
    assert "out of date or was not started here" in await forged.text()
    home = await (await site.client.get("/dashboard/")).text()
    assert "Sign in with Discord" in home  # still signed out


async def test_slack_admins_see_their_workspace_and_members_do_not(site: Site) -> None:
    site.slack.users["UADMIN"] = {"id": "UADMIN", "team_id": "T1", "is_admin": True}
    site.slack.users["UPLAIN"] = {"id": "UPLAIN", "team_id": "T1", "is_admin": False}
    page = await (await site.sign_in("slack", "UADMIN")).text()
    assert "/dashboard/c/T1" in page and "Fake" in page
    assert (await site.client.get("/dashboard/c/T1")).status == 200
    site.client.session.cookie_jar.clear()
    page = await (await site.sign_in("slack", "UPLAIN")).text()
    assert 'id="no-communities"' in page
    assert site.slack.calls_to("openid.connect.token")
    assert slack_openid.CLIENT_SECRET not in page


async def test_owner_page_for_the_application_owner_and_named_owners_only(site: Site) -> None:
    await site.sign_in("discord", ADMIN)
    assert (await site.client.get("/dashboard/owner")).status == 403
    site.client.session.cookie_jar.clear()
    page = await (await site.sign_in("discord", OWNER)).text()
    assert "Bot owner page" in page
    now = site.app.clock.now()
    failed = make_job(
        now,
        status=JobStatus.FAILED,
        provider="offline",
        cost_usd=0.03,
        error_code="provider_error",
        error_message="The image service failed.",
        updated_at=now,
    )
    await enqueue_job(site.app.store, failed)
    owner = await site.client.get("/dashboard/owner")
    page = await owner.text()
    assert owner.status == 200
    row = page.split('id="providers"')[1].split("</tr>")[1]
    assert "offline" in row and "closed" in row
    assert "provider_error, The image service failed." in row
    assert "<td>offline</td><td>1</td><td>$0.03</td>" in page.split('id="spend"')[1]
    site.client.session.cookie_jar.clear()
    site.slack.users["UOWNER"] = {"id": "UOWNER", "team_id": "T1"}
    await site.sign_in("slack", "UOWNER")  # named in IMAGINE_OWNERS
    assert (await site.client.get("/dashboard/owner")).status == 200


async def test_sign_in_starts_are_rate_limited(site: Site) -> None:
    statuses = [
        (await site.client.get("/dashboard/login/discord", allow_redirects=False)).status
        for _ in range(11)
    ]
    assert statuses[:10] == [302] * 10
    assert statuses[10] == 429


async def test_sign_out_needs_the_forms_token(site: Site) -> None:
    await site.sign_in("discord", ADMIN)
    refused = await site.client.post("/dashboard/logout", data={})
    assert refused.status == 403
    token = await site.csrf("/dashboard/")
    out = await site.client.post("/dashboard/logout", data={"csrf_token": token})
    assert "Sign in with Discord" in await out.text()
    assert (await site.client.get(f"/dashboard/c/{GUILD}")).status == 401


async def test_no_token_code_or_secret_reaches_a_log_line_or_a_url(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    site.slack.users["UADMIN"] = {"id": "UADMIN", "team_id": "T1", "is_admin": True}
    urls: list[str] = []
    for platform, user in (("discord", ADMIN), ("slack", "UADMIN")):
        site.client.session.cookie_jar.clear()
        response = await site.sign_in(platform, user)
        urls += [str(r.url) for r in response.history] + [str(response.url)]
        await site.client.get(f"/dashboard/c/{GUILD if platform == 'discord' else 'T1'}")
    secrets_ = [
        SECRET,
        BOT_TOKEN,
        site.slack.token,
        discord_oauth.CLIENT_SECRET,
        slack_openid.CLIENT_SECRET,
        *site.discord._tokens,
        *site.slack._user_tokens,
    ]
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for secret in secrets_:
        assert secret not in logged
        assert not any(secret in url for url in urls)
