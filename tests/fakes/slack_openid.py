"""Sign in with Slack (OpenID Connect) as part of ``FakeSlack``.

Sources: docs.slack.dev/authentication/sign-in-with-slack (the authorize URL /openid/connect/
authorize with response_type=code, scope openid (and profile, email), client_id, state, nonce and
redirect_uri; the redirect back with code and state, or error=access_denied; openid.connect.token
takes client_id, client_secret, code and redirect_uri and answers ok, access_token, token_type and
id_token; openid.connect.userInfo answers the claims sub, https://slack.com/user_id,
https://slack.com/team_id, name); slack.com/.well-known/openid-configuration (client_secret_post
or client_secret_basic; response_mode query). docs.slack.dev/reference/methods/users.info (the
user's is_admin, is_owner and is_primary_owner).
"""

from __future__ import annotations

import base64
import secrets
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

CLIENT_ID = "1111.2222"
CLIENT_SECRET = "fake-slack-client-secret"
TEAM_ID = "T1"


class SlackOpenID:
    def _openid_init(self) -> None:
        self.browser_user: str | None = None
        self.consent = True
        self._codes: dict[str, tuple[str, str]] = {}  # code -> (user id, redirect_uri)
        self._user_tokens: dict[str, str] = {}  # access token -> user id
        self.openid_violations: list[str] = []
        # The workspace each signing-in user belongs to (T1 when not named).
        self.user_teams: dict[str, str] = {}

    def add_openid_routes(self, app: web.Application) -> None:
        app.router.add_get("/openid/connect/authorize", self._authorize)

    async def _authorize(self, request: web.Request) -> web.Response:
        q = request.query
        problems = [
            f"authorize: {name} missing"
            for name in ("response_type", "client_id", "scope", "redirect_uri", "state")
            if not q.get(name)
        ]
        if q.get("client_id") != CLIENT_ID:
            problems.append("authorize: unknown client_id")
        if "openid" not in q.get("scope", "").split():
            problems.append("authorize: the scope lacks openid")
        if problems:
            self.openid_violations.extend(problems)
            return web.Response(status=400, text="; ".join(problems))
        redirect, state = q["redirect_uri"], q["state"]
        if not self.consent or self.browser_user is None:
            raise web.HTTPFound(
                f"{redirect}?{urlencode({'error': 'access_denied', 'state': state})}"
            )
        code = secrets.token_urlsafe(16)
        self._codes[code] = (self.browser_user, redirect)
        raise web.HTTPFound(f"{redirect}?{urlencode({'code': code, 'state': state})}")

    def openid_call(
        self, method: str, args: dict[str, Any], authorization: str
    ) -> dict[str, Any] | None:
        """The answer to an OpenID method, or None for any other method."""
        if method == "openid.connect.token":
            client_id, client_secret = args.get("client_id"), args.get("client_secret")
            if authorization.startswith("Basic "):  # client_secret_basic
                decoded = base64.b64decode(authorization.removeprefix("Basic ")).decode()
                client_id, _, client_secret = decoded.partition(":")
            if client_id != CLIENT_ID or client_secret != CLIENT_SECRET:
                return {"ok": False, "error": "invalid_client_id"}
            grant = self._codes.pop(str(args.get("code", "")), None)
            if grant is None:
                return {"ok": False, "error": "invalid_code"}
            if grant[1] != args.get("redirect_uri"):
                return {"ok": False, "error": "bad_redirect_uri"}
            token = "xoxp-" + secrets.token_hex(12)
            self._user_tokens[token] = grant[0]
            return {"ok": True, "access_token": token, "token_type": "Bearer", "id_token": "x.y.z"}
        if method == "openid.connect.userInfo":
            user = self._user_tokens.get(authorization.removeprefix("Bearer "))
            if user is None:
                return {"ok": False, "error": "invalid_auth"}
            return {
                "ok": True,
                "sub": user,
                "https://slack.com/user_id": user,
                "https://slack.com/team_id": self.user_teams.get(user, TEAM_ID),
                "name": f"Slack user {user}",
            }
        return None
