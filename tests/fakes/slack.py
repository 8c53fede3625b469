"""A fake Slack Web API on 127.0.0.1 that records every call, plus helpers to sign requests.

It answers like https://docs.slack.dev/reference/methods (``{"ok": true, ...}``), checks each call's
arguments against Slack's official OpenAPI description (``specs/slack-web-openapi-v2.json``)
where it covers the method, and the two upload methods the way slack_sdk's ``files_upload_v2`` uses
them: ``files.getUploadURLExternal`` hands out an upload URL this fake also serves, and
``files.completeUploadExternal`` shares the uploaded files into a channel. Response URLs of slash
commands and buttons are served too (``response_url()``). Every argument problem is collected in
``violations`` (a test asserts it stays empty) and answered with ``invalid_arguments``.

Several workspaces: each bot token belongs to one (``workspaces``), and ``auth.test`` answers for
the token's own. OAuth v2 (https://docs.slack.dev/authentication/installing-with-oauth): the
consent page ``/oauth/v2/authorize`` approves at once for ``installing`` and sends the browser to
the redirect URL with ``code`` and ``state``; ``oauth.v2.access`` exchanges a code once for a new
bot token of that workspace. With ``rotation`` on, tokens expire and a refresh token renews one once
(https://docs.slack.dev/authentication/using-token-rotation).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import time
import urllib.parse
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.slack_openid import SlackOpenID

# github.com/slackapi/slack-api-specs web-api/slack_web_openapi_v2_without_examples.json at bc08db4
# (MIT, Copyright 2017 SlackAPI), copied unchanged.
SPEC_PATH = Path(__file__).resolve().parent / "specs" / "slack-web-openapi-v2.json"

# slack_sdk's files_upload_v2 (the OpenAPI file predates these two methods).
UPLOAD_METHODS: dict[str, dict[str, tuple[str, bool]]] = {
    "files.getUploadURLExternal": {
        "filename": ("string", True),
        "length": ("integer", True),
        "alt_txt": ("string", False),
        "snippet_type": ("string", False),
    },
    "files.completeUploadExternal": {
        "files": ("json_array", True),
        "channel_id": ("string", False),
        "channels": ("string", False),
        "initial_comment": ("string", False),
        "thread_ts": ("string", False),
        "blocks": ("json_array", False),
    },
}
# Block Kit limits (https://docs.slack.dev/reference/block-kit).
BUTTON_TEXT_MAX = 75
ACTION_ID_MAX = 255
VALUE_MAX = 2000
SECTION_TEXT_MAX = 3000
MAX_BLOCKS = 50


def sign(secret: str, body: bytes, timestamp: str) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(
    secret: str, body: bytes, *, timestamp: float | None = None, content_type: str | None = None
) -> dict[str, str]:
    stamp = str(int(time.time() if timestamp is None else timestamp))
    return {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": sign(secret, body, stamp),
        "Content-Type": content_type or "application/x-www-form-urlencoded",
    }


@cache
def _spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text("utf-8"))


def spec_parameters(method: str) -> dict[str, tuple[str, bool]] | None:
    """The method's arguments (name -> (type, required)), token excluded; None when not covered."""
    if method in UPLOAD_METHODS:
        return UPLOAD_METHODS[method]
    path = _spec()["paths"].get(f"/{method}")
    if path is None:
        return None
    operation = next(iter(path.values()))
    out: dict[str, tuple[str, bool]] = {}
    for param in operation.get("parameters", []):
        if param["name"] == "token":
            continue
        out[param["name"]] = (param.get("type", "string"), bool(param.get("required")))
    return out


def _type_problem(kind: str, value: Any) -> str | None:
    if kind == "boolean":
        if isinstance(value, bool) or str(value).lower() in ("true", "false", "1", "0"):
            return None
        return "is not a boolean"
    if kind in ("number", "integer"):
        if isinstance(value, bool):
            return "is not a number"
        try:
            number = float(value)
        except (TypeError, ValueError):
            return "is not a number"
        if kind == "integer" and not number.is_integer():
            return "is not an integer"
        return None
    if kind == "json_array":
        parsed = value
        if isinstance(value, str):
            try:
                parsed = json.loads(value)
            except ValueError:
                return "is not JSON"
        return None if isinstance(parsed, list) else "is not a JSON array"
    # "string": form values are strings; in JSON bodies Slack also takes arrays and objects for the
    # JSON-encoded arguments (blocks, attachments, view).
    if isinstance(value, (str, int, float, list, dict)) and not isinstance(value, bool):
        return None
    return "is not a string"


def check_arguments(method: str, args: dict[str, Any]) -> list[str]:
    params = spec_parameters(method)
    if params is None:
        return []
    problems: list[str] = []
    for name, (_, required) in params.items():
        if required and (name not in args or args[name] in ("", None)):
            problems.append(f"{method}: missing required argument {name}")
    for name, value in args.items():
        if name not in params:
            problems.append(f"{method}: unknown argument {name}")
            continue
        problem = _type_problem(params[name][0], value)
        if problem:
            problems.append(f"{method}: {name} {problem}")
    for name in ("blocks",):
        if name in args:
            problems.extend(f"{method}: {p}" for p in check_blocks(args[name]))
    if "view" in args:
        view = args["view"]
        if isinstance(view, str):
            try:
                view = json.loads(view)
            except ValueError:
                return [*problems, f"{method}: view is not JSON"]
        if not isinstance(view, dict) or view.get("type") not in ("modal", "home"):
            problems.append(f"{method}: view has no valid type")
        else:
            problems.extend(f"{method}: view {p}" for p in check_blocks(view.get("blocks", [])))
            title = (view.get("title") or {}).get("text", "")
            if len(title) > 24:
                problems.append(f"{method}: view title longer than 24 characters")
    return problems


def check_blocks(blocks: Any) -> list[str]:
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks)
        except ValueError:
            return ["blocks are not JSON"]
    if not isinstance(blocks, list):
        return ["blocks are not an array"]
    problems: list[str] = []
    if len(blocks) > MAX_BLOCKS:
        problems.append("more than 50 blocks")
    action_ids: set[str] = set()
    for block in blocks:
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            problems.append("a block without a type")
            continue
        text = block.get("text")
        too_long = isinstance(text, dict) and len(text.get("text", "")) > SECTION_TEXT_MAX
        if block["type"] == "section" and too_long:
            problems.append("section text longer than 3000 characters")
        for element in block.get("elements", []) if block["type"] == "actions" else []:
            action_id = element.get("action_id", "")
            if action_id in action_ids:
                problems.append(f"duplicate action_id {action_id}")
            action_ids.add(action_id)
            if len(action_id) > ACTION_ID_MAX:
                problems.append("action_id longer than 255 characters")
            if element.get("type") == "button":
                if len(element.get("text", {}).get("text", "")) > BUTTON_TEXT_MAX:
                    problems.append("button text longer than 75 characters")
                if len(element.get("value", "")) > VALUE_MAX:
                    problems.append("button value longer than 2000 characters")
    return problems


@dataclass
class Workspace:
    team_id: str
    name: str
    bot_user_id: str = "UBOT"
    bot_id: str = "BBOT"


# https://docs.slack.dev/reference/methods/oauth.v2.access: "codes expire after ten minutes".
CODE_SECONDS = 600.0


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    headers: dict[str, str]


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    thread_ts: str | None = None
    deleted: bool = False


@dataclass
class UploadedFile:
    id: str
    filename: str
    length: int
    alt_txt: str | None = None
    title: str | None = None
    data: bytes | None = None
    upload_headers: dict[str, str] = field(default_factory=dict)
    shared_to: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None
    deleted: bool = False


class FakeSlack(SlackOpenID):
    def __init__(
        self,
        token: str = "xoxb-test-token-000000000000",
        app_token: str = "xapp-1-test-app-token-0000000000",
    ) -> None:
        self.app_token = app_token
        # Bot token -> its workspace; the default token (``token``) is workspace T1's.
        self.workspaces: dict[str, Workspace] = {token: Workspace("T1", "Fake")}
        self._default = token
        # OAuth: the app's credentials, the workspace the next consent installs into, codes
        # handed out (code -> workspace, issued at) and the tokens installs created.
        self.client_id = "1111.2222"
        self.client_secret = "fake-client-secret-3333"
        self.installing = Workspace("T2", "Second", bot_user_id="UBOT2", bot_id="BBOT2")
        self.codes: dict[str, tuple[Workspace, float]] = {}
        self.authorize_requests: list[dict[str, str]] = []
        # The redirect URL registered with the app, used when the request names none.
        self.redirect_url = ""
        self._tokens = itertools.count(1)
        self._caller: str = ""
        # Socket Mode: the connected sockets and every frame the app sent (acks with payloads).
        self.sockets: list[web.WebSocketResponse] = []
        self.socket_frames: list[dict[str, Any]] = []
        self.calls: list[Call] = []
        self.violations: list[str] = []
        self.messages: dict[tuple[str, str], Message] = {}
        self.files: dict[str, UploadedFile] = {}
        self.responses: list[tuple[str, dict[str, Any]]] = []
        self.users: dict[str, dict[str, Any]] = {}
        self.fail: dict[str, str] = {}  # method -> error to answer once
        self.fail_always: dict[str, str] = {}  # method -> error to answer every time
        # Slack names the token's scopes in this header of every answer.
        self.scopes = "commands,chat:write,files:read,files:write,users:read,im:write"
        # Token rotation, when the app turns it on (https://docs.slack.dev/authentication/
        # using-token-rotation): an install also gives a refresh token; an access token "expires
        # every 12 hours"; a refresh token gives a new access token and a new refresh token once,
        # and is "then revoked".
        self.rotation = False
        self.token_seconds = 12 * 3600
        self.expires: dict[str, float] = {}  # access token -> when it stops working
        self.refresh_tokens: dict[str, Workspace] = {}
        # Files users shared in Slack, served at their url_private (path -> bytes), and every
        # request made for one (with its headers).
        self.private_files: dict[str, bytes] = {}
        self.file_requests: list[Call] = []
        self.changed = asyncio.Event()
        self._ts = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._app = web.Application(client_max_size=1024**3)
        self._app.router.add_route("*", "/api/{method}", self._api)
        self._app.router.add_post("/upload/{file_id}", self._upload)
        self._app.router.add_post("/respond/{key}", self._respond)
        self._app.router.add_get("/link", self._socket)
        self._app.router.add_get("/files-pri/{path:.+}", self._private_file)
        self._app.router.add_get("/signin", self._signin)
        self._openid_init()
        self.add_openid_routes(self._app)
        self._app.router.add_get("/oauth/v2/authorize", self._oauth_authorize)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def token(self) -> str:
        return self._default

    @token.setter
    def token(self, value: str) -> None:
        """Workspace T1's token changes (the old one stops working)."""
        self.workspaces[value] = self.workspaces.pop(self._default)
        self._default = value

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, key: str) -> str:
        return f"http://127.0.0.1:{self.port}/respond/{key}"

    @property
    def files_url(self) -> str:
        """The origin of Slack-hosted files (files.slack.com in Slack)."""
        return f"http://127.0.0.1:{self.port}/"

    def add_private_file(self, name: str, data: bytes, *, team: str = "T1") -> str:
        """A file as if a user had uploaded it; returns its ``url_private_download``."""
        file_id = f"F{next(self._file_ids):08d}"
        path = f"{team}-{file_id}/download/{name}"
        self.private_files[path] = data
        return f"{self.files_url}files-pri/{path}"

    async def start(self) -> FakeSlack:
        self._runner = web.AppRunner(self._app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def aclose(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # What tests look at ------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def posted(self, channel: str | None = None) -> list[Message]:
        return [m for m in self.messages.values() if channel is None or m.channel == channel]

    def shared_files(self) -> list[UploadedFile]:
        return [f for f in self.files.values() if f.shared_to and not f.deleted]

    async def wait_for(self, predicate: Any, timeout: float = 30.0) -> None:
        """Wait until ``predicate()`` holds (a bound against hangs, not a timing assertion)."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

    # Handlers ---------------------------------------------------------------------------------

    def _touch(self) -> None:
        self.changed.set()

    async def _read_args(self, request: web.Request) -> dict[str, Any]:
        args: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            ctype = request.content_type
            if ctype == "application/json":
                body = await request.json()
                if isinstance(body, dict):
                    args.update(body)
            elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                args.update({k: v for k, v in form.items() if isinstance(v, str)})
        return args

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await self._read_args(request)
        headers = dict(request.headers)
        token = headers.get("Authorization", "").removeprefix("Bearer ") or args.pop("token", "")
        self.calls.append(Call(method, args, headers))
        self._touch()
        openid = self.openid_call(method, args, headers.get("Authorization", ""))
        if openid is not None:
            return web.json_response(openid)
        if method == "oauth.v2.access":
            return web.json_response(self._oauth_v2_access(headers.get("Authorization", ""), args))
        if method == "apps.connections.open":
            known = token == self.app_token
        else:
            known = token in self.workspaces
        if not known:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        if self.expires.get(token, float("inf")) <= time.time():
            # https://docs.slack.dev/reference/methods/auth.test: "token_expired".
            return web.json_response({"ok": False, "error": "token_expired"})
        self._caller = token
        problems = check_arguments(method, args)
        if problems:
            self.violations.extend(problems)
            return web.json_response({"ok": False, "error": "invalid_arguments"})
        if method in self.fail:
            return web.json_response({"ok": False, "error": self.fail.pop(method)})
        if method in self.fail_always:
            return web.json_response({"ok": False, "error": self.fail_always[method]})
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        answer = handler(args)
        self._touch()
        return web.json_response(
            {"ok": True, **answer} if "ok" not in answer else answer,
            headers={"X-OAuth-Scopes": self.scopes},
        )

    def _next_ts(self) -> str:
        return f"{1_700_000_000 + next(self._ts)}.000100"

    @staticmethod
    def _blocks(args: dict[str, Any]) -> list[dict[str, Any]]:
        blocks = args.get("blocks") or []
        return json.loads(blocks) if isinstance(blocks, str) else list(blocks)

    def _m_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        workspace = self.workspaces[self._caller]
        return {
            "url": "https://fake.slack.example/",
            "team": workspace.name,
            "user": "imaginebot",
            "team_id": workspace.team_id,
            "user_id": workspace.bot_user_id,
            "bot_id": workspace.bot_id,
        }

    def token_of(self, team_id: str) -> str:
        """The newest bot token of a workspace."""
        return [t for t, w in self.workspaces.items() if w.team_id == team_id][-1]

    def team_of_call(self, call: Call) -> str | None:
        """The workspace whose token made a call."""
        token = call.headers.get("Authorization", "").removeprefix("Bearer ")
        workspace = self.workspaces.get(token)
        return workspace.team_id if workspace else None

    def revoke(self, team_id: str) -> None:
        """The workspace uninstalled the app: its tokens stop working."""
        for token in [t for t, w in self.workspaces.items() if w.team_id == team_id]:
            del self.workspaces[token]

    async def _oauth_authorize(self, request: web.Request) -> web.Response:
        """The consent page, approved at once: back to ``redirect_uri`` (or the app's registered
        ``redirect_url``) with a code and the state, as Slack does."""
        query = dict(request.query)
        self.authorize_requests.append(query)
        self._touch()
        if query.get("client_id") != self.client_id:
            return web.Response(status=400, text="invalid client_id")
        code = f"code-{next(self._tokens)}"
        self.codes[code] = (self.installing, time.time())
        target = query.get("redirect_uri") or self.redirect_url
        sep = "&" if "?" in target else "?"
        params = urllib.parse.urlencode({"code": code, "state": query.get("state", "")})
        raise web.HTTPFound(f"{target}{sep}{params}")

    def _oauth_v2_access(self, authorization: str, args: dict[str, Any]) -> dict[str, Any]:
        """https://docs.slack.dev/reference/methods/oauth.v2.access: the client's id and secret
        by HTTP Basic auth (or as arguments), a code good once for ten minutes."""
        client_id, client_secret = args.get("client_id"), args.get("client_secret")
        if authorization.startswith("Basic "):
            decoded = base64.b64decode(authorization.removeprefix("Basic ")).decode()
            client_id, _, client_secret = decoded.partition(":")
        if client_id != self.client_id:
            return {"ok": False, "error": "invalid_client_id"}
        if client_secret != self.client_secret:
            return {"ok": False, "error": "bad_client_secret"}
        if args.get("grant_type") == "refresh_token":
            # Good once: the refresh token is revoked as it is used.
            workspace = self.refresh_tokens.pop(str(args.get("refresh_token", "")), None)
            if workspace is None:
                return {"ok": False, "error": "invalid_refresh_token"}
            return {"ok": True, **self._issue(workspace), "token_type": "bot"}
        granted = self.codes.pop(str(args.get("code", "")), None)
        if granted is None or time.time() - granted[1] > CODE_SECONDS:
            return {"ok": False, "error": "invalid_code"}
        workspace = granted[0]
        return {
            "ok": True,
            **self._issue(workspace),
            "token_type": "bot",
            "scope": self.scopes,
            "bot_user_id": workspace.bot_user_id,
            "app_id": "A1",
            "team": {"name": workspace.name, "id": workspace.team_id},
            "enterprise": None,
            "is_enterprise_install": False,
            "authed_user": {"id": "UINSTALLER"},
        }

    def _issue(self, workspace: Workspace) -> dict[str, Any]:
        """A new bot token of the workspace; with rotation, its lifetime and a refresh token."""
        n = next(self._tokens)
        if not self.rotation:
            token = f"xoxb-{workspace.team_id}-{n:012d}"
            self.workspaces[token] = workspace
            self._touch()
            return {"access_token": token}
        token = f"xoxe.xoxb-{workspace.team_id}-{n:012d}"
        refresh = f"xoxe-1-{workspace.team_id}-{n:012d}"
        self.workspaces[token] = workspace
        self.expires[token] = time.time() + self.token_seconds
        self.refresh_tokens[refresh] = workspace
        self._touch()
        return {"access_token": token, "expires_in": self.token_seconds, "refresh_token": refresh}

    def _m_apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"url": f"ws://127.0.0.1:{self.port}/link?ticket=fake"}

    def _m_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        ts = self._next_ts()
        channel = str(args["channel"])
        message = Message(
            channel, ts, str(args.get("text", "")), self._blocks(args), args.get("thread_ts")
        )
        self.messages[(channel, ts)] = message
        return {"channel": channel, "ts": ts, "message": {"text": message.text, "ts": ts}}

    def _m_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        key = (str(args["channel"]), str(args["ts"]))
        message = self.messages.get(key)
        if message is None or message.deleted:
            return {"ok": False, "error": "message_not_found"}
        if "text" in args:
            message.text = str(args["text"])
        if "blocks" in args:
            message.blocks = self._blocks(args)
        return {"channel": key[0], "ts": key[1], "text": message.text}

    def _m_chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        key = (str(args.get("channel")), str(args.get("ts")))
        message = self.messages.get(key)
        if message is None or message.deleted:
            return {"ok": False, "error": "message_not_found"}
        message.deleted = True
        return {"channel": key[0], "ts": key[1]}

    def _m_chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"message_ts": self._next_ts()}

    def _m_conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        # https://api.slack.com/methods/conversations.open: ``users`` (one id) opens or finds the
        # DM with the bot and answers ``{"channel": {"id": "D..."}}``; it needs im:write.
        if "im:write" not in self.scopes.split(","):
            return {"ok": False, "error": "missing_scope"}
        return {"channel": {"id": f"D{args['users']}"}}

    def _m_users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = str(args.get("user", ""))
        info = self.users.get(user)
        # A user of another workspace is not found with this workspace's token (users.info:
        # "user_not_found: Value passed for user was invalid").
        caller = self.workspaces[self._caller].team_id
        if info is not None and info.get("team_id", caller) != caller:
            return {"ok": False, "error": "user_not_found"}
        if info is None:
            info = {"id": user, "name": user.lower(), "is_admin": False, "is_owner": False}
        return {"user": info}

    def _m_views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"view": {"id": "V1"}}

    def _m_views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"view": {"id": "VH"}}

    def _m_files_getUploadURLExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        file_id = f"F{next(self._file_ids):08d}"
        self.files[file_id] = UploadedFile(
            id=file_id,
            filename=str(args["filename"]),
            length=int(args["length"]),
            alt_txt=args.get("alt_txt"),
        )
        return {"upload_url": f"http://127.0.0.1:{self.port}/upload/{file_id}", "file_id": file_id}

    def _m_files_completeUploadExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        raw = args["files"]
        items = json.loads(raw) if isinstance(raw, str) else raw
        out = []
        for item in items:
            upload = self.files.get(str(item.get("id")))
            if upload is None or upload.data is None:
                self.violations.append("files.completeUploadExternal: file not uploaded first")
                return {"ok": False, "error": "file_not_found"}
            if len(upload.data) != upload.length:
                self.violations.append("files.completeUploadExternal: length does not match")
                return {"ok": False, "error": "file_size_mismatch"}
            upload.title = item.get("title")
            upload.shared_to = args.get("channel_id") or args.get("channels")
            upload.thread_ts = args.get("thread_ts")
            upload.initial_comment = args.get("initial_comment")
            out.append({"id": upload.id, "title": upload.title, "name": upload.filename})
        return {"files": out}

    def _m_files_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        upload = self.files.get(str(args.get("file")))
        if upload is None or upload.deleted:
            return {"ok": False, "error": "file_not_found"}
        upload.deleted = True
        return {}

    async def _upload(self, request: web.Request) -> web.Response:
        upload = self.files.get(request.match_info["file_id"])
        if upload is None:
            return web.Response(status=404, text="not found")
        upload.data = await request.read()
        upload.upload_headers = dict(request.headers)
        self._touch()
        return web.Response(text=f"OK - {len(upload.data)}")

    async def _private_file(self, request: web.Request) -> web.StreamResponse:
        """Like files.slack.com: the file only for ``Authorization: Bearer`` with the bot token
        and the files:read scope; anyone else is redirected to the sign-in page."""
        path = request.match_info["path"]
        self.file_requests.append(Call("files-pri", {"path": path}, dict(request.headers)))
        self._touch()
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        workspace = self.workspaces.get(token)
        team = path.split("-", 1)[0]
        if workspace is None or workspace.team_id != team or "files:read" not in self.scopes:
            raise web.HTTPFound(f"/signin?redir=%2Ffiles-pri%2F{urllib.parse.quote(path)}")
        if path not in self.private_files:
            raise web.HTTPNotFound()
        return web.Response(body=self.private_files[path], content_type="image/png")

    async def _signin(self, request: web.Request) -> web.Response:
        return web.Response(
            text="<html><body>Sign in to Slack</body></html>", content_type="text/html"
        )

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        """Socket Mode (https://docs.slack.dev/apis/events-api/using-socket-mode): ``hello``,
        then envelopes from ``send_envelope``; the app answers each with its ``envelope_id``."""
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self.sockets.append(socket)
        await socket.send_json(
            {
                "type": "hello",
                "num_connections": 1,
                "debug_info": {"host": "fake", "approximate_connection_time": 18060},
                "connection_info": {"app_id": "A1"},
            }
        )
        self._touch()
        async for frame in socket:
            if frame.type == aiohttp.WSMsgType.TEXT:
                self.socket_frames.append(json.loads(frame.data))
                self._touch()
        self.sockets.remove(socket)
        self._touch()
        return socket

    async def send_envelope(self, kind: str, payload: dict[str, Any], envelope_id: str) -> None:
        await self.sockets[-1].send_json(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "payload": payload,
                "accepts_response_payload": kind != "events_api",
                "retry_attempt": 0,
                "retry_reason": "",
            }
        )

    async def _respond(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.responses.append((request.match_info["key"], body))
        self._touch()
        return web.Response(text="ok")


def form_body(fields: dict[str, str]) -> bytes:
    return urllib.parse.urlencode(fields).encode()


def interaction_body(payload: dict[str, Any]) -> bytes:
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
