"""Sign in with Slack (OpenID Connect) for the dashboard, on slack_sdk's Web API client: the user
behind the code Slack sends back, and on every request their standing in the workspace, asked with
that workspace's own bot token. No token reaches a page, a URL the browser sees, or a log line."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.jobs.installations import InstalledWorkspace
from bot.ports import Community, Membership, SignedIn, SignInFailed

log = logging.getLogger(__name__)
# slack_sdk logs each request and answer at DEBUG, tokens in the answers included (the user's
# access token from openid.connect.token): its logger here never passes DEBUG on.
_web_log = logging.getLogger(f"{__name__}.web")
_web_log.setLevel(logging.INFO)

TIMEOUT = 15


class Installations(Protocol):
    """Workspaces the app was installed in through OAuth (``bot.jobs.installations``)."""

    async def find(self, team_id: str) -> InstalledWorkspace | None: ...


class SlackSignIn:
    """Every workspace the bot serves: the workspace of SLACK_BOT_TOKEN and those that installed
    the app through OAuth (found again on every request, so an uninstall counts at once)."""

    platform = "slack"
    label = "Slack"

    def __init__(
        self,
        *,
        api_url: str,
        client_id: str,
        client_secret: str,
        bot_token: str | None,
        installations: Installations | None = None,
    ) -> None:
        self._api = api_url if api_url.endswith("/") else api_url + "/"
        self._client_id = client_id
        self._client_secret = client_secret
        self._bot_token = bot_token
        self._installations = installations
        self._team: Community | None = None

    def authorize_url(self, state: str, redirect_uri: str) -> str:
        # docs.slack.dev/authentication/sign-in-with-slack: /openid/connect/authorize with
        # response_type=code, scope=openid profile, client_id, state, redirect_uri, nonce.
        query = urlencode(
            {
                "response_type": "code",
                "scope": "openid profile",
                "client_id": self._client_id,
                "state": state,
                "nonce": state,
                "redirect_uri": redirect_uri,
            }
        )
        parts = urlsplit(self._api)
        return f"{parts.scheme}://{parts.netloc}/openid/connect/authorize?{query}"

    def _client(self, token: str | None = None) -> AsyncWebClient:
        return AsyncWebClient(token=token, base_url=self._api, timeout=TIMEOUT, logger=_web_log)

    async def _call(
        self, method: str, call: Callable[[AsyncWebClient], Awaitable[Any]], token: str | None
    ) -> dict[str, Any]:
        """One Web API call; a refusal or an unreachable Slack fails the sign-in (the error's
        name is logged, never the request)."""
        try:
            response = await call(self._client(token))
        except SlackApiError as exc:
            log.info("Slack %s refused: %s", method, exc.response.get("error"))
            raise SignInFailed("Slack did not accept the sign-in; please try again.") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.info("Slack could not be reached: %s", type(exc).__name__)
            raise SignInFailed(
                "Slack could not be reached; please try again in a moment."
            ) from None
        return dict(response.data) if isinstance(response.data, dict) else {}

    async def finish(self, code: str, redirect_uri: str) -> SignedIn:
        tokens = await self._call(
            "openid.connect.token",
            lambda client: client.openid_connect_token(
                client_id=self._client_id,
                client_secret=self._client_secret,
                code=code,
                redirect_uri=redirect_uri,
                grant_type="authorization_code",
            ),
            None,
        )
        access = str(tokens.get("access_token") or "")
        info = await self._call(
            "openid.connect.userInfo", lambda client: client.openid_connect_userInfo(), access
        )
        user_id = str(info.get("https://slack.com/user_id") or info.get("sub") or "")
        team_id = str(info.get("https://slack.com/team_id") or "")
        if not user_id:
            raise SignInFailed("Slack's answer named no user.")
        served = await self._workspace(team_id)
        candidates = (served[0],) if served is not None else ()
        return SignedIn(self.platform, user_id, str(info.get("name") or user_id), candidates)

    async def _bot_team(self) -> Community | None:
        """The workspace of SLACK_BOT_TOKEN (auth.test), asked once."""
        if self._team is None and self._bot_token:
            body = await self._call("auth.test", lambda c: c.auth_test(), self._bot_token)
            self._team = Community(self.platform, str(body["team_id"]), str(body.get("team", "")))
        return self._team

    async def _workspace(self, team_id: str) -> tuple[Community, str] | None:
        """The workspace and the bot token to ask it with: its OAuth installation, else
        SLACK_BOT_TOKEN when that is the workspace's. None: the bot is not installed there."""
        if not team_id:
            return None
        if self._installations is not None:
            installed = await self._installations.find(team_id)
            if installed is not None:
                return Community(self.platform, team_id, installed.name), installed.bot_token
        team = await self._bot_team()
        if team is not None and team.id == team_id and self._bot_token:
            return team, self._bot_token
        return None

    async def membership(self, community_id: str, user_id: str) -> Membership | None:
        """users.info with the workspace's bot token: its admins and owners are platform admins."""
        served = await self._workspace(community_id)
        if served is None:
            return None
        try:
            body = await self._call("users.info", lambda c: c.users_info(user=user_id), served[1])
        except SignInFailed:
            return None
        user = body.get("user") or {}
        if user.get("deleted") or str(user.get("team_id", community_id)) != community_id:
            return None
        admin = bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))
        return Membership((), admin)

    async def community(self, community_id: str) -> Community | None:
        served = await self._workspace(community_id)
        return served[0] if served is not None else None

    async def application_owners(self) -> set[str]:
        return set()

    async def aclose(self) -> None:
        return None  # each call's client closes its own connection
