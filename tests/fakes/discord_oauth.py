"""Discord's OAuth2 sign-in and the guild reads the dashboard makes, as part of ``FakeDiscord``.

Sources: discord.com/developers/docs/topics/oauth2 (authorization code grant: the authorize URL
with response_type=code, client_id, scope, state and redirect_uri; the redirect back with code and
state, or error=access_denied when the user cancels; the token exchange as a form-encoded POST to
/oauth2/token with grant_type=authorization_code, code, redirect_uri and the client's credentials,
answered with access_token, token_type "Bearer", expires_in, refresh_token and scope);
discord.com/.well-known/oauth-authorization-server (client_secret_basic or client_secret_post);
the OpenAPI description (get_my_user and list_my_guilds take a bot token or an OAuth2 bearer token
with the identify / guilds scope; get_guild and get_guild_member need a bot token; a partial guild
of list_my_guilds carries the user's ``permissions`` as a string); discord.com/developers/docs/
topics/opcodes-and-status-codes (10004 Unknown Guild, 10007 Unknown Member).
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from aiohttp import web

if TYPE_CHECKING:
    from tests.fakes.discord import Recorded

CLIENT_ID = "1100000000000000001"
CLIENT_SECRET = "fake-client-secret-0123456789"


@dataclass
class FakeGuild:
    id: str
    name: str
    owner_id: str
    # role id -> permission bits; the @everyone role has the guild's id.
    roles: dict[str, int] = field(default_factory=dict)
    # user id -> their role ids
    members: dict[str, list[str]] = field(default_factory=dict)
    bot_member: bool = True


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )


class DiscordOAuth:
    """The OAuth2 half of the fake: who is "signed in" at Discord in the browser
    (``browser_user``), whether they accept the consent screen, and the guilds."""

    api_prefix = "/api/v10"

    def _oauth_init(self) -> None:
        self.guilds: dict[str, FakeGuild] = {}
        self.user_names: dict[str, str] = {}
        self.browser_user: str | None = None
        self.consent = True
        self._codes: dict[str, tuple[str, str]] = {}  # code -> (user id, redirect_uri)
        self._tokens: dict[str, str] = {}  # access token -> user id
        self.oauth_violations: list[str] = []

    def add_oauth_routes(self, app: web.Application) -> None:
        # The authorization endpoint is unversioned (https://discord.com/api/oauth2/authorize).
        app.router.add_get("/api/oauth2/authorize", self._authorize)
        app.router.add_post(self.api_prefix + "/oauth2/token", self._token)

    def add_user(self, user_id: str, name: str) -> None:
        self.user_names[user_id] = name

    async def _authorize(self, request: web.Request) -> web.Response:
        q = request.query
        redirect = q.get("redirect_uri", "")
        problems = [
            f"authorize: {name} missing"
            for name in ("response_type", "client_id", "scope", "redirect_uri", "state")
            if not q.get(name)
        ]
        if q.get("client_id") != CLIENT_ID:
            problems.append("authorize: unknown client_id")
        if q.get("response_type") != "code":
            problems.append("authorize: response_type is not code")
        if set(q.get("scope", "").split()) != {"identify", "guilds"}:
            problems.append(f"authorize: scope {q.get('scope')!r}")
        if problems:
            self.oauth_violations.extend(problems)
            return web.Response(status=400, text="; ".join(problems))
        state = q["state"]
        if not self.consent or self.browser_user is None:
            answer = {
                "error": "access_denied",
                "error_description": "The resource owner or "
                "authorization server denied the request",
                "state": state,
            }
            raise web.HTTPFound(f"{redirect}?{urlencode(answer)}")
        code = secrets.token_urlsafe(16)
        self._codes[code] = (self.browser_user, redirect)
        raise web.HTTPFound(f"{redirect}?{urlencode({'code': code, 'state': state})}")

    async def _token(self, request: web.Request) -> web.Response:
        if request.content_type != "application/x-www-form-urlencoded":
            self.oauth_violations.append(f"token: content type {request.content_type}")
            return _json({"error": "invalid_request"}, 400)
        form = await request.post()
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = request.headers.get("Authorization", "")
        if basic.startswith("Basic "):
            client_id, _, client_secret = base64.b64decode(basic[6:]).decode().partition(":")
        if client_id != CLIENT_ID or client_secret != CLIENT_SECRET:
            return _json({"error": "invalid_client"}, 401)
        if form.get("grant_type") != "authorization_code":
            return _json({"error": "unsupported_grant_type"}, 400)
        grant = self._codes.pop(str(form.get("code", "")), None)
        if grant is None or grant[1] != form.get("redirect_uri"):
            return _json({"error": "invalid_grant", "error_description": "Invalid code"}, 400)
        token = secrets.token_urlsafe(24)
        self._tokens[token] = grant[0]
        return _json(
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": 604800,
                "refresh_token": secrets.token_urlsafe(24),
                "scope": "identify guilds",
            }
        )

    # Operations of the OpenAPI description (called by FakeDiscord._answer) --------------------

    def bearer_user(self, r: Recorded) -> str | None:
        authorization = r.headers.get("Authorization", "")
        if authorization.startswith("Bearer "):
            return self._tokens.get(authorization[7:])
        return None

    def oauth_get_my_user(self, r: Recorded) -> web.Response | None:
        """The signed-in user for a bearer token; None: a bot token, answered by FakeDiscord."""
        if not r.headers.get("Authorization", "").startswith("Bearer "):
            return None
        user_id = self.bearer_user(r)
        if user_id is None:
            return _json({"message": "401: Unauthorized", "code": 0}, 401)
        from tests.fakes.discord import user_payload

        return _json(user_payload(user_id, self.user_names.get(user_id, "someone")))

    def _op_list_my_guilds(self, r: Recorded, _: web.Request) -> web.Response:
        if r.headers.get("Authorization", "").startswith("Bearer "):
            user_id = self.bearer_user(r)
            if user_id is None:
                return _json({"message": "401: Unauthorized", "code": 0}, 401)
            mine = [g for g in self.guilds.values() if user_id in g.members]
            return _json([self._partial(g, user_id) for g in mine])
        denied = self._need_bot(r)  # type: ignore[attr-defined]
        if denied is not None:
            return denied  # type: ignore[no-any-return]
        after = int(r.query.get("after", "0"))
        limit = int(r.query.get("limit", "200"))
        ids = sorted((g.id for g in self.guilds.values() if g.bot_member), key=int)
        page = [i for i in ids if int(i) > after][:limit]
        return _json([self._partial(self.guilds[i], None) for i in page])

    def _permissions(self, guild: FakeGuild, user_id: str) -> int:
        if user_id == guild.owner_id:
            return (1 << 41) - 1
        bits = guild.roles.get(guild.id, 0)
        for role in guild.members.get(user_id, []):
            bits |= guild.roles.get(role, 0)
        return bits

    def _partial(self, guild: FakeGuild, user_id: str | None) -> dict[str, Any]:
        return {
            "id": guild.id,
            "name": guild.name,
            "icon": None,
            "owner": user_id == guild.owner_id,
            "permissions": str(self._permissions(guild, user_id) if user_id else 0),
            "features": [],
        }

    def _op_get_guild(self, r: Recorded, _: web.Request) -> web.Response:
        denied = self._need_bot(r)  # type: ignore[attr-defined]
        if denied is not None:
            return denied  # type: ignore[no-any-return]
        guild = self.guilds.get(r.path.split("/")[2])
        if guild is None or not guild.bot_member:
            return _json({"message": "Unknown Guild", "code": 10004}, 404)
        roles = [
            {"id": rid, "name": rid, "permissions": str(bits), "position": 0}
            for rid, bits in guild.roles.items()
        ]
        return _json(
            {"id": guild.id, "name": guild.name, "owner_id": guild.owner_id, "roles": roles}
        )

    def _op_get_guild_member(self, r: Recorded, _: web.Request) -> web.Response:
        denied = self._need_bot(r)  # type: ignore[attr-defined]
        if denied is not None:
            return denied  # type: ignore[no-any-return]
        parts = r.path.split("/")
        guild = self.guilds.get(parts[2])
        if guild is None or not guild.bot_member:
            return _json({"message": "Unknown Guild", "code": 10004}, 404)
        if parts[4] not in guild.members:
            return _json({"message": "Unknown Member", "code": 10007}, 404)
        from tests.fakes.discord import user_payload

        user_id = parts[4]
        return _json(
            {
                "user": user_payload(user_id, self.user_names.get(user_id, "someone")),
                "roles": guild.members[user_id],
                "joined_at": "2024-01-01T00:00:00+00:00",
                "deaf": False,
                "mute": False,
                "flags": 0,
            }
        )
