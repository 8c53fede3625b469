"""Sign in with Slack from any workspace the bot serves: the workspace of SLACK_BOT_TOKEN and those
that installed the app through OAuth (their installations sealed in the store by the Slack
adapter). Each workspace's admin rights are checked with its own bot token on every request."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest
from slack_sdk.oauth.installation_store.models.installation import Installation

from adapters.slack.installations import DatabaseInstallationStore, sealer_from_secret
from bot.store.base import AuditQuery
from tests.fakes import slack_openid
from tests.fakes.discord import FakeDiscord
from tests.fakes.slack import FakeSlack, Workspace
from tests.pg import private_schema
from tests.web.conftest import SECRET, Site, _site

TEAM = "T2"  # installed through OAuth
BOTLESS_TEAM = "T3"  # the bot was never installed here
TOKEN = "xoxb-T2-000000000042"


async def _install_second_workspace(site: Site) -> DatabaseInstallationStore:
    """What the OAuth redirect leaves behind: Slack issued T2's bot token and the adapter's
    installation store sealed it into the database."""
    site.slack.workspaces[TOKEN] = Workspace(TEAM, "Second", bot_user_id="UBOT2", bot_id="BBOT2")
    installations = DatabaseInstallationStore(site.app.store, sealer_from_secret(SECRET))
    await installations.async_save(
        Installation(
            app_id="A1",
            team_id=TEAM,
            team_name="Second",
            bot_token=TOKEN,
            bot_id="BBOT2",
            bot_user_id="UBOT2",
            bot_scopes="commands,chat:write,users:read",
            user_id="UINSTALLER",
            installed_at=time.time(),
        )
    )
    return installations


def _slack_user(site: Site, user: str, team: str, *, admin: bool) -> None:
    site.slack.users[user] = {"id": user, "team_id": team, "is_admin": admin}
    site.slack.user_teams[user] = team


async def _set_daily_limit(site: Site, daily: str) -> tuple[int, str]:
    token = await site.csrf(f"/dashboard/c/{TEAM}")
    response = await site.client.post(
        f"/dashboard/c/{TEAM}/settings/limits",
        data={"csrf_token": token, "op": "set", "daily": daily},
    )
    return response.status, await response.text()


async def test_a_moderator_of_an_oauth_installed_workspace_sees_and_changes_it(site: Site) -> None:
    installations = await _install_second_workspace(site)
    _slack_user(site, "UMOD2", TEAM, admin=True)
    page = await (await site.sign_in("slack", "UMOD2")).text()
    assert f"/dashboard/c/{TEAM}" in page and "Second" in page
    assert "/dashboard/c/T1" not in page
    status, page = await _set_daily_limit(site, "3")
    assert status == 200, page
    assert "Done: limits for every user: daily 3." in page
    assert (await site.app.service.get_settings(TEAM)).user_limits.daily == 3
    entry = (await site.app.store.search_audit(AuditQuery(TEAM)))[0]
    assert (entry.kind, entry.actor_id, entry.origin) == ("change", "UMOD2", "dashboard")
    # Every question about this moderator went to Slack with the second workspace's token.
    asked = [c for c in site.slack.calls_to("users.info") if c.args.get("user") == "UMOD2"]
    assert asked and {site.slack.team_of_call(c) for c in asked} == {TEAM}
    assert TOKEN not in page and TOKEN not in await (await site.client.get("/dashboard/")).text()

    # Re-checked on every request: no longer a workspace admin, the next change is refused...
    site.slack.users["UMOD2"]["is_admin"] = False
    status, _ = await _set_daily_limit(site, "5")
    assert status == 403
    assert (await site.app.service.get_settings(TEAM)).user_limits.daily == 3
    # ... and once the workspace uninstalls the app, its pages are gone even for an admin.
    site.slack.users["UMOD2"]["is_admin"] = True
    assert (await site.client.get(f"/dashboard/c/{TEAM}")).status == 200
    await installations.async_delete_all(enterprise_id=None, team_id=TEAM)
    assert (await site.client.get(f"/dashboard/c/{TEAM}")).status == 403
    page = await (await site.client.get("/dashboard/")).text()
    assert 'id="no-communities"' in page


async def test_a_member_of_the_installed_workspace_sees_nothing_until_made_bot_admin(
    site: Site,
) -> None:
    await _install_second_workspace(site)
    _slack_user(site, "UPLAIN2", TEAM, admin=False)
    page = await (await site.sign_in("slack", "UPLAIN2")).text()
    assert 'id="no-communities"' in page
    assert (await site.client.get(f"/dashboard/c/{TEAM}")).status == 403
    denied = await site.app.store.search_audit(AuditQuery(TEAM, kind="denied"))
    assert [e.actor_id for e in denied] == ["UPLAIN2"]

    # The community's own admin users: a workspace admin names the member a bot admin.
    site.client.session.cookie_jar.clear()
    _slack_user(site, "UMOD2", TEAM, admin=True)
    await site.sign_in("slack", "UMOD2")
    token = await site.csrf(f"/dashboard/c/{TEAM}")
    made = await site.client.post(
        f"/dashboard/c/{TEAM}/settings/admin-users",
        data={"csrf_token": token, "op": "add", "item": "UPLAIN2"},
    )
    assert made.status == 200, await made.text()
    site.client.session.cookie_jar.clear()
    page = await (await site.sign_in("slack", "UPLAIN2")).text()
    assert f"/dashboard/c/{TEAM}" in page
    status, page = await _set_daily_limit(site, "4")
    assert status == 200, page
    assert (await site.app.service.get_settings(TEAM)).user_limits.daily == 4


async def test_a_workspace_without_an_installation_shows_nothing(site: Site) -> None:
    await _install_second_workspace(site)
    _slack_user(site, "UBOSS3", BOTLESS_TEAM, admin=True)
    page = await (await site.sign_in("slack", "UBOSS3")).text()
    assert 'id="no-communities"' in page
    assert (await site.client.get(f"/dashboard/c/{BOTLESS_TEAM}")).status == 403
    # Nor does an admin of another workspace reach the installed one by its URL.
    assert (await site.client.get(f"/dashboard/c/{TEAM}")).status == 403
    assert (await site.app.service.get_settings(BOTLESS_TEAM)).user_limits.daily is None
    asked = [c for c in site.slack.calls_to("users.info") if c.args.get("user") == "UBOSS3"]
    assert {site.slack.team_of_call(c) for c in asked} <= {TEAM}


async def test_an_installation_sealed_with_another_key_shows_nothing(site: Site) -> None:
    site.slack.workspaces[TOKEN] = Workspace(TEAM, "Second")
    foreign = DatabaseInstallationStore(site.app.store, sealer_from_secret(SECRET + "-other"))
    await foreign.async_save(
        Installation(team_id=TEAM, team_name="Second", bot_token=TOKEN, user_id="UINSTALLER")
    )
    _slack_user(site, "UMOD2", TEAM, admin=True)
    page = await (await site.sign_in("slack", "UMOD2")).text()
    assert 'id="no-communities"' in page
    assert (await site.client.get(f"/dashboard/c/{TEAM}")).status == 403


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_without_slack_bot_token_the_installed_workspaces_are_served(
    backend: str, tmp_path: Path
) -> None:
    """OAuth mode alone (no SLACK_BOT_TOKEN): every Slack community comes from an installation."""
    discord, slack = await FakeDiscord().start(), await FakeSlack().start()
    env = {
        "IMAGINE_DATA_DIR": str(tmp_path / "data"),
        "IMAGINE_SECRET_KEY": SECRET,
        "SLACK_SIGNING_SECRET": "slack-signing-secret",
        "SLACK_API_URL": slack.api_url,
        "SLACK_CLIENT_ID": slack_openid.CLIENT_ID,
        "SLACK_CLIENT_SECRET": slack_openid.CLIENT_SECRET,
    }
    try:
        async with contextlib.AsyncExitStack() as stack:
            if backend == "postgres":
                env["IMAGINE_DATABASE_URL"] = await stack.enter_async_context(private_schema())
            site = await stack.enter_async_context(_site(env, discord, slack))
            await _install_second_workspace(site)
            _slack_user(site, "UMOD2", TEAM, admin=True)
            _slack_user(site, "UMOD1", "T1", admin=True)
            page = await (await site.sign_in("slack", "UMOD2")).text()
            assert f"/dashboard/c/{TEAM}" in page
            status, page = await _set_daily_limit(site, "2")
            assert status == 200, page
            site.client.session.cookie_jar.clear()
            page = await (await site.sign_in("slack", "UMOD1")).text()
            assert 'id="no-communities"' in page  # T1 has a token in the fake, not an install
        assert slack.violations == [] and slack.openid_violations == []
        assert slack.calls_to("auth.test") == []
    finally:
        await discord.aclose()
        await slack.aclose()
