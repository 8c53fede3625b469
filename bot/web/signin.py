"""Sign-in with Discord OAuth2 for the dashboard: the authorization-code grant and the user's own
answers (who they are, their servers) over the app's one httpx client, with the user's bearer
token, which discord.py does not take. What the bot's token says (its guilds, a member's rights,
the application's owners) comes from ``adapters.discord.guilds`` on discord.py; Sign in with Slack
is ``adapters.slack.signin`` on slack_sdk. No token reaches a page, a URL the browser sees, or a
log line."""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import urlencode

import httpx

from bot.net.httpclient import read_capped
from bot.ports import (
    MAX_COMMUNITIES,
    Community,
    GuildReader,
    Membership,
    SignedIn,
    SignInFailed,
)

log = logging.getLogger(__name__)

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
        guilds: GuildReader | None,
    ) -> None:
        self._http = http
        self._api = api_base.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        # The bot's own view of its guilds (adapters.discord.guilds, on discord.py); None
        # without DISCORD_TOKEN, and then no guild can be administered here.
        self._guilds = guilds

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
        bot_guilds = await self._guilds.guild_ids() if self._guilds is not None else set()
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

    async def membership(self, community_id: str, user_id: str) -> Membership | None:
        if self._guilds is None:
            return None
        return await self._guilds.membership(community_id, user_id)

    async def community(self, community_id: str) -> Community | None:
        if self._guilds is None:
            return None
        return await self._guilds.guild(community_id)

    async def application_owners(self) -> set[str]:
        if self._guilds is None:
            return set()
        return await self._guilds.application_owners()

    async def aclose(self) -> None:
        if self._guilds is not None:
            await self._guilds.aclose()
