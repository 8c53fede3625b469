"""Sign-in with Discord OAuth2, and the re-check of a user's admin rights with the bot's own token
on every request (Sign in with Slack is ``adapters.slack.signin``, on slack_sdk). All calls go
through the app's one httpx client; no token reaches a page, a URL the browser sees, or a log
line."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any
from urllib.parse import urlencode

import httpx

from bot.net.httpclient import read_capped
from bot.ports import MAX_COMMUNITIES, Community, Membership, SignedIn, SignInFailed

log = logging.getLogger(__name__)

# Discord permission bits (discord.com/developers/docs/topics/permissions#permissions-bitwise-
# permission-flags): ADMINISTRATOR implies every other; MANAGE_GUILD is "Manage Server".
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
# Most bytes one answer of a sign-in's API calls may hold (a page of 200 guilds is well under
# 100 KB); a longer one is no answer of theirs.
MAX_ANSWER_BYTES = 1024 * 1024


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
