"""Sign-in with Discord OAuth2 and with Sign in with Slack (OpenID Connect), and the re-check of
a user's admin rights with the bot's own token on every request. All calls go through the app's
one httpx client; no token reaches a page, a URL the browser sees, or a log line."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

import httpx

from bot.jobs.installations import InstalledWorkspace
from bot.net.httpclient import read_capped

log = logging.getLogger(__name__)

# Discord permission bits (discord.com/developers/docs/topics/permissions#permissions-bitwise-
# permission-flags): ADMINISTRATOR implies every other; MANAGE_GUILD is "Manage Server".
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
# At most this many communities are remembered in one session (the cookie stays small).
MAX_COMMUNITIES = 50
# Most bytes one answer of a sign-in's API calls may hold (a page of 200 guilds is well under
# 100 KB); a longer one is no answer of theirs.
MAX_ANSWER_BYTES = 1024 * 1024


class SignInFailed(Exception):
    """The platform refused or failed the sign-in; ``message`` is for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Installations(Protocol):
    """Workspaces the app was installed in through OAuth (``bot.jobs.installations``)."""

    async def find(self, team_id: str) -> InstalledWorkspace | None: ...


@dataclass(frozen=True)
class Community:
    platform: str
    id: str
    name: str


@dataclass(frozen=True)
class SignedIn:
    """Who signed in, and the communities that may be theirs to administer (re-checked later)."""

    platform: str
    user_id: str
    name: str
    candidates: tuple[Community, ...]


@dataclass(frozen=True)
class Membership:
    """A member's standing in a community, read with the bot's token just now."""

    role_ids: tuple[str, ...]
    is_platform_admin: bool


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


async def _ask(
    http: httpx.AsyncClient, method: str, url: str, what: str, **options: Any
) -> tuple[int, bytes]:
    """One call through the shared client, its answer read under ``MAX_ANSWER_BYTES``: the status
    and the body. A platform that cannot be reached, or answers too much, fails the sign-in."""
    try:
        async with http.stream(method, url, **options) as response:
            content = await read_capped(response, MAX_ANSWER_BYTES)
            status = response.status_code
    except httpx.HTTPError as exc:
        # The exception's text may hold the URL; its type is enough to tell what went wrong.
        log.info("%s could not be reached: %s", what, type(exc).__name__)
        raise SignInFailed(f"{what} could not be reached; please try again in a moment.") from None
    if content is None:
        raise SignInFailed(f"{what} answered more than a sign-in needs.")
    return status, content


def _json(content: bytes, what: str) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        raise SignInFailed(f"{what} answered something that is not JSON.") from None


class DiscordSignIn:
    platform = "discord"
    label = "Discord"

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_base: str,
        client_id: str,
        client_secret: str,
        bot_token: str | None,
    ) -> None:
        self._http = http
        self._api = api_base.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._bot_token = bot_token

    def authorize_url(self, state: str, redirect_uri: str) -> str:
        # discord.com/developers/docs/topics/oauth2#authorization-code-grant: response_type=code,
        # client_id, scope (space-separated), state, redirect_uri.
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self._client_id,
                "scope": "identify guilds",
                "state": state,
                "redirect_uri": redirect_uri,
            }
        )
        # The authorization endpoint has no API version (discord.com/.well-known/oauth-
        # authorization-server: https://discord.com/api/oauth2/authorize).
        return f"{re.sub(r'/v[0-9]+$', '', self._api)}/oauth2/authorize?{query}"

    async def finish(self, code: str, redirect_uri: str) -> SignedIn:
        # Token exchange: form-encoded POST to /oauth2/token with grant_type=authorization_code,
        # code, redirect_uri and the client's id and secret (client_secret_post).
        status, content = await _ask(
            self._http,
            "POST",
            f"{self._api}/oauth2/token",
            "Discord",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "client_id": self._client_id,
                "client_secret": self._client_secret,
            },
        )
        if status != 200:
            raise SignInFailed("Discord did not accept the sign-in; please try again.")
        answer = _json(content, "Discord")
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str):
            raise SignInFailed("Discord's answer had no access token.")
        bearer = {"Authorization": f"Bearer {token}"}
        user = await self._get("/users/@me", bearer)
        guilds = await self._get("/users/@me/guilds", bearer)
        if not isinstance(user, dict) or "id" not in user or not isinstance(guilds, list):
            raise SignInFailed("Discord's answer did not name the user and their servers.")
        bot_guilds = await self._bot_guild_ids()
        candidates = tuple(
            Community(self.platform, str(g["id"]), str(g.get("name", g["id"])))
            for g in guilds
            if isinstance(g, dict) and str(g.get("id")) in bot_guilds
        )[:MAX_COMMUNITIES]
        name = user.get("global_name") or user.get("username") or str(user["id"])
        return SignedIn(self.platform, str(user["id"]), str(name), candidates)

    async def _get(self, path: str, headers: dict[str, str]) -> Any:
        status, content = await _ask(
            self._http, "GET", f"{self._api}{path}", "Discord", headers=headers
        )
        if status != 200:
            raise SignInFailed("Discord did not answer the sign-in's questions; please try again.")
        return _json(content, "Discord")

    def _bot(self) -> dict[str, str]:
        return {"Authorization": f"Bot {self._bot_token}"}

    async def _bot_guild_ids(self) -> set[str]:
        """Guilds the bot is in (GET /users/@me/guilds with the bot token, 200 a page)."""
        if not self._bot_token:
            return set()
        ids: set[str] = set()
        after = "0"
        while True:
            status, content = await _ask(
                self._http,
                "GET",
                f"{self._api}/users/@me/guilds",
                "Discord",
                params={"limit": "200", "after": after},
                headers=self._bot(),
            )
            if status != 200:
                raise SignInFailed("The bot could not list its servers; please try again.")
            page = _json(content, "Discord")
            ids.update(str(g["id"]) for g in page)
            if len(page) < 200:
                return ids
            after = str(page[-1]["id"])

    async def membership(self, community_id: str, user_id: str) -> Membership | None:
        """The member's roles and Manage Server right, computed from the guild's roles the way
        discord.com/developers/docs/topics/permissions#permission-overwrites describes (base
        permissions: the owner has all; @everyone's role, then every role of the member;
        ADMINISTRATOR implies all). None: the bot or the user is not in that guild."""
        if not self._bot_token or not community_id.isdigit() or not user_id.isdigit():
            return None
        (guild_status, guild_body), (member_status, member_body) = await asyncio.gather(
            _ask(
                self._http, "GET", f"{self._api}/guilds/{community_id}", "Discord",
                headers=self._bot(),
            ),
            _ask(
                self._http, "GET", f"{self._api}/guilds/{community_id}/members/{user_id}",
                "Discord", headers=self._bot(),
            ),
        )  # fmt: skip
        if guild_status in (403, 404) or member_status in (403, 404):
            return None
        if guild_status != 200 or member_status != 200:
            raise SignInFailed("Discord did not answer; please try again in a moment.")
        guild = _json(guild_body, "Discord")
        member = _json(member_body, "Discord")
        roles = tuple(str(r) for r in member.get("roles", []))
        if str(guild.get("owner_id")) == user_id:
            return Membership(roles, True)
        by_id = {str(r["id"]): int(r.get("permissions", 0)) for r in guild.get("roles", [])}
        permissions = by_id.get(community_id, 0)
        for role in roles:
            permissions |= by_id.get(role, 0)
        admin = bool(permissions & (ADMINISTRATOR | MANAGE_GUILD))
        return Membership(roles, admin)

    async def community(self, community_id: str) -> Community | None:
        if not self._bot_token or not community_id.isdigit():
            return None
        status, content = await _ask(
            self._http, "GET", f"{self._api}/guilds/{community_id}", "Discord", headers=self._bot()
        )
        if status != 200:
            return None
        guild = _json(content, "Discord")
        return Community(self.platform, community_id, str(guild.get("name", community_id)))

    async def application_owners(self) -> set[str]:
        """The application's owner, or its team's members (GET /oauth2/applications/@me)."""
        if not self._bot_token:
            return set()
        status, content = await _ask(
            self._http,
            "GET",
            f"{self._api}/oauth2/applications/@me",
            "Discord",
            headers=self._bot(),
        )
        if status != 200:
            return set()
        app = _json(content, "Discord")
        team = app.get("team") or {}
        members = {str(m["user"]["id"]) for m in team.get("members", []) if m.get("user")}
        owner = app.get("owner") or {}
        return members | ({str(owner["id"])} if owner.get("id") else set())


class SlackSignIn:
    """Sign in with Slack for every workspace the bot serves: the workspace of SLACK_BOT_TOKEN
    and those that installed the app through OAuth. Each workspace's questions (users.info) are
    asked with that workspace's own bot token, found again on every request."""

    platform = "slack"
    label = "Slack"

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_url: str,
        client_id: str,
        client_secret: str,
        bot_token: str | None,
        installations: Installations | None = None,
    ) -> None:
        self._http = http
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
        return f"{_origin(self._api)}/openid/connect/authorize?{query}"

    async def _call(self, method: str, token: str | None, **form: str) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        status, content = await _ask(
            self._http, "POST", f"{self._api}{method}", "Slack", data=form, headers=headers
        )
        body = _json(content, "Slack")
        if status != 200 or not isinstance(body, dict) or not body.get("ok"):
            error = body.get("error") if isinstance(body, dict) else None
            log.info("Slack %s refused: %s", method, error or status)
            raise SignInFailed("Slack did not accept the sign-in; please try again.")
        return body

    async def finish(self, code: str, redirect_uri: str) -> SignedIn:
        # openid.connect.token takes client_id, client_secret, code, redirect_uri (form-encoded);
        # openid.connect.userInfo answers the user's claims for the access token.
        tokens = await self._call(
            "openid.connect.token",
            None,
            client_id=self._client_id,
            client_secret=self._client_secret,
            code=code,
            redirect_uri=redirect_uri,
            grant_type="authorization_code",
        )
        info = await self._call("openid.connect.userInfo", str(tokens.get("access_token", "")))
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
            body = await self._call("auth.test", self._bot_token)
            self._team = Community(self.platform, str(body["team_id"]), str(body.get("team", "")))
        return self._team

    async def _workspace(self, team_id: str) -> tuple[Community, str] | None:
        """The workspace and the bot token to ask it with: its OAuth installation (read now, so
        an uninstall counts at the next request; in OAuth mode the adapter, too, serves it with
        that token), else SLACK_BOT_TOKEN when that is the workspace's. None: the bot is not
        installed there."""
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
            body = await self._call("users.info", served[1], user=user_id)
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


SignIn = DiscordSignIn | SlackSignIn
