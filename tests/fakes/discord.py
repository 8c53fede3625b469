"""A fake Discord (REST + gateway) on 127.0.0.1 that records every request and checks each one
against Discord's OpenAPI description. It keeps messages and interaction tokens like Discord does:
an interaction must be acknowledged within 3 s and once; its token works for 15 minutes."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, WSMsgType, web

from tests.fakes.discord_oauth import DiscordOAuth
from tests.fakes.discord_spec import SpecViolation, check_request

API_PREFIX = "/api/v10"
DISCORD_EPOCH_MS = 1_420_070_400_000
BOT_TOKEN = "fake-bot-token.XYZ.abcdefghijklmnopqrstuvwxyz0123456789"
APPLICATION_ID = "1100000000000000001"
BOT_USER_ID = APPLICATION_ID
GUILD_ID = "1200000000000000002"
CHANNEL_ID = "1300000000000000003"
ACK_DEADLINE = 3.0
TOKEN_LIFETIME = 15 * 60.0

# Permission bits (Discord's documented values).
MANAGE_MESSAGES = 1 << 13
MANAGE_GUILD = 1 << 5
MEMBER_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 31)  # view, send, use application commands


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    operation: str
    headers: dict[str, str]
    json: Any = None
    files: dict[str, tuple[str, bytes, str]] = field(default_factory=dict)
    at: float = 0.0
    status: int = 0


@dataclass
class FakeInteraction:
    id: str
    token: str
    type: int
    sent_at: float
    channel_id: str
    message_id: str | None = None  # the component's message (for type 3)
    acked: bool = False
    response_type: int | None = None
    original_id: str | None = None
    expired: bool = False
    user: dict[str, Any] = field(default_factory=dict)


_COUNTER = itertools.count()


def snowflake(at: float | None = None) -> str:
    millis = int((time.time() if at is None else at) * 1000) - DISCORD_EPOCH_MS
    return str((millis << 22) | (next(_COUNTER) % 4096))


def user_payload(user_id: str, name: str = "someone", bot: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": user_id,
        "username": name,
        "discriminator": "0",
        "global_name": name,
        "avatar": None,
        "public_flags": 0,
    }
    if bot:
        data["bot"] = True
    return data


class FakeDiscord(DiscordOAuth):
    def __init__(self) -> None:
        self._oauth_init()
        self.requests: list[Recorded] = []
        self.violations: list[str] = []
        self.messages: dict[str, dict[str, Any]] = {}
        self.deleted: set[str] = set()
        self.interactions: dict[str, FakeInteraction] = {}
        self.commands: dict[str, list[dict[str, Any]]] = {}
        self.identifies: list[dict[str, Any]] = []
        self.sockets: list[web.WebSocketResponse] = []
        self._changed = asyncio.Condition()
        self._seq = 0
        self._runner: web.AppRunner | None = None
        self.port = 0
        # Tests may make the next calls of an operation fail: operation id -> [(status, body)].
        self.failures: dict[str, list[tuple[int, dict[str, Any]]]] = {}

    # Lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> FakeDiscord:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        self.add_oauth_routes(app)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def aclose(self) -> None:
        for ws in list(self.sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    # What tests look at ----------------------------------------------------------------------------

    def calls(self, operation: str, token: str | None = None) -> list[Recorded]:
        return [
            r
            for r in self.requests
            if r.operation == operation and (token is None or token in r.path)
        ]

    async def wait_for(
        self, predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition"
    ) -> Any:
        async def waiter() -> Any:
            async with self._changed:
                while True:
                    value = predicate()
                    if value:
                        return value
                    await self._changed.wait()

        try:
            return await asyncio.wait_for(waiter(), timeout)
        except TimeoutError:
            seen = [f"{r.method} {r.operation} {r.status}" for r in self.requests]
            raise AssertionError(
                f"timed out waiting for {what}; requests: {seen}; violations: {self.violations}"
            ) from None

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def original_message(self, token: str) -> dict[str, Any] | None:
        interaction = self.interactions[token]
        if interaction.original_id is None or interaction.original_id in self.deleted:
            return None
        return self.messages.get(interaction.original_id)

    def expire(self, token: str) -> None:
        self.interactions[token].expired = True

    # Interactions the tests send -----------------------------------------------------------------

    def interaction_payload(
        self,
        itype: int,
        data: dict[str, Any],
        *,
        user_id: str = "1400000000000000004",
        permissions: int = MEMBER_PERMISSIONS,
        channel_id: str = CHANNEL_ID,
        message: dict[str, Any] | None = None,
        nsfw: bool = False,
        sent_at: float | None = None,
        dm: bool = False,
    ) -> dict[str, Any]:
        interaction_id = snowflake(sent_at)
        token = f"itok-{interaction_id}-{'x' * 40}"
        payload: dict[str, Any] = {
            "id": interaction_id,
            "application_id": APPLICATION_ID,
            "type": itype,
            "data": data,
            "guild_id": GUILD_ID,
            "guild": {"id": GUILD_ID, "locale": "en-US", "features": []},
            "channel_id": channel_id,
            "channel": {
                "id": channel_id,
                "type": 0,
                "guild_id": GUILD_ID,
                "name": "art",
                "nsfw": nsfw,
                "position": 0,
                "permission_overwrites": [],
                "parent_id": None,
                "topic": None,
                "last_message_id": None,
                "rate_limit_per_user": 0,
                "flags": 0,
            },
            "member": {
                "user": user_payload(user_id),
                "roles": ["1500000000000000005"],
                "joined_at": "2025-01-01T00:00:00+00:00",
                "deaf": False,
                "mute": False,
                "flags": 0,
                "permissions": str(permissions),
            },
            "token": token,
            "version": 1,
            "app_permissions": str(MEMBER_PERMISSIONS | (1 << 15)),
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": GUILD_ID},
            "context": 0,
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        if dm:
            # An interaction in the bot's DM through the user-installed app: no guild, no member,
            # the invoking ``user`` instead, context 1 (BOT_DM) and only the user's install in
            # ``authorizing_integration_owners`` ("1": the user id).
            # https://discord.com/developers/docs/interactions/receiving-and-responding#interaction-object
            for key in ("guild_id", "guild", "member", "guild_locale"):
                payload.pop(key)
            payload["user"] = user_payload(user_id)
            payload["channel"] = {
                "id": channel_id,
                "type": 1,
                "recipients": [user_payload(user_id)],
            }
            payload["context"] = 1
            payload["authorizing_integration_owners"] = {"1": user_id}
        if message is not None:
            payload["message"] = message
        self.interactions[token] = FakeInteraction(
            id=interaction_id,
            token=token,
            type=itype,
            sent_at=time.time() if sent_at is None else sent_at,
            channel_id=channel_id,
            message_id=message["id"] if message else None,
            user=user_payload(user_id),
        )
        return payload

    def guild_create(self, channels: list[dict[str, Any]]) -> dict[str, Any]:
        """A GUILD_CREATE payload for the test guild with these channels."""
        return {
            "id": GUILD_ID,
            "name": "Test server",
            "icon": None,
            "owner_id": "1600000000000000006",
            "roles": [],
            "emojis": [],
            "stickers": [],
            "features": [],
            "channels": [{"guild_id": GUILD_ID, "position": 0, **c} for c in channels],
            "threads": [],
            "members": [],
            "member_count": 1,
            "large": False,
            "unavailable": False,
            "joined_at": "2025-01-01T00:00:00+00:00",
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "preferred_locale": "en-US",
        }

    def command(self, name: str, options: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
        return self.interaction_payload(
            2, {"id": snowflake(), "name": name, "type": 1, "options": options}, **kw
        )

    def imagine(self, prompt: str, **options: Any) -> dict[str, Any]:
        opts: list[dict[str, Any]] = [{"name": "prompt", "type": 3, "value": prompt}]
        for key in ("model", "aspect"):
            if key in options:
                opts.append({"name": key, "type": 3, "value": options.pop(key)})
        if "seed" in options:
            opts.append({"name": "seed", "type": 4, "value": options.pop("seed")})
        if "private" in options:
            opts.append({"name": "private", "type": 5, "value": options.pop("private")})
        return self.command("imagine", opts, **options)

    def button(self, custom_id: str, message: dict[str, Any], **kw: Any) -> dict[str, Any]:
        return self.interaction_payload(
            3, {"custom_id": custom_id, "component_type": 2}, message=message, **kw
        )

    def modal_submit(self, custom_id: str, values: dict[str, str], **kw: Any) -> dict[str, Any]:
        rows = [
            {"type": 1, "components": [{"type": 4, "custom_id": key, "value": value}]}
            for key, value in values.items()
        ]
        return self.interaction_payload(5, {"custom_id": custom_id, "components": rows}, **kw)

    # Gateway ---------------------------------------------------------------------------------------

    async def send_dispatch(self, event: str, data: dict[str, Any]) -> None:
        await self.wait_for(lambda: self.identifies, what="IDENTIFY")
        self._seq += 1
        frame = json.dumps({"op": 0, "t": event, "s": self._seq, "d": data})
        for ws in self.sockets:
            await ws.send_str(frame)

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.append(ws)
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}}))
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                if frame.get("op") == 1:
                    await ws.send_str(json.dumps({"op": 11}))
                elif frame.get("op") == 2:
                    self.identifies.append(frame["d"])
                    self._seq += 1
                    shard = frame["d"].get("shard", [0, 1])
                    ready = {
                        "v": 10,
                        "user": user_payload(BOT_USER_ID, "imagine", bot=True),
                        "guilds": [],
                        "session_id": "fake-session",
                        "resume_gateway_url": self.gateway_url,
                        "application": {"id": APPLICATION_ID, "flags": 0},
                        "shard": shard,
                    }
                    await ws.send_str(
                        json.dumps({"op": 0, "t": "READY", "s": self._seq, "d": ready})
                    )
                    await self._notify()
        finally:
            self.sockets.remove(ws)
        return ws

    # REST ------------------------------------------------------------------------------------------

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        query = dict(request.query)
        content_type = request.content_type
        body: Any = None
        files: dict[str, tuple[str, bytes, str]] = {}
        raw = b""
        if content_type == "multipart/form-data":
            body, files = await _parse_multipart(request)
        else:
            raw = await request.read()
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                return _json({"message": "400: Bad Request", "code": 50109}, 400)
        try:
            operation = check_request(
                request.method, path, query, content_type, body, request.headers
            )
        except SpecViolation as exc:
            self.violations.append(str(exc))
            operation = "violation"
        if files:
            attached = {a["id"] for a in (body or {}).get("attachments") or []}
            for name in files:
                index = int(name.removeprefix("files[").removesuffix("]"))
                if index not in attached and str(index) not in attached:
                    self.violations.append(f"{operation}: file {name} has no attachments entry")
        record = Recorded(
            method=request.method,
            path=path,
            query=query,
            operation=operation,
            headers=dict(request.headers),
            json=body,
            files=files,
            at=time.time(),
        )
        self.requests.append(record)
        response = await self._answer(record, request)
        record.status = response.status
        await self._notify()
        return response

    async def _answer(self, r: Recorded, request: web.Request) -> web.Response:
        queued = self.failures.get(r.operation)
        if queued:
            status, body = queued.pop(0)
            return _json(body, status, _rate_limit_headers(body) if status == 429 else None)
        handler = getattr(self, f"_op_{r.operation}", None)
        if handler is None:
            return _json({"message": "404: Not Found", "code": 0}, 404)
        result: web.Response = handler(r, request)
        return result

    def _need_bot(self, r: Recorded) -> web.Response | None:
        if r.headers.get("Authorization") != f"Bot {BOT_TOKEN}":
            return _json({"message": "401: Unauthorized", "code": 0}, 401)
        return None

    def _op_get_my_user(self, r: Recorded, _: web.Request) -> web.Response:
        return (
            self.oauth_get_my_user(r)
            or self._need_bot(r)
            or _json(user_payload(BOT_USER_ID, "imagine", bot=True))
        )

    def _application(self) -> dict[str, Any]:
        return {
            "id": APPLICATION_ID,
            "name": "imagine",
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": 0,
            "owner": user_payload("1600000000000000006", "owner"),
            "team": None,
            "rpc_origins": [],
        }

    def _op_get_my_oauth2_application(self, r: Recorded, _: web.Request) -> web.Response:
        return self._need_bot(r) or _json(self._application())

    def _op_get_my_application(self, r: Recorded, _: web.Request) -> web.Response:
        return self._need_bot(r) or _json(self._application())

    def _op_get_bot_gateway(self, r: Recorded, _: web.Request) -> web.Response:
        return self._need_bot(r) or _json(
            {
                "url": self.gateway_url,
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 0,
                    "max_concurrency": 16,
                },
            }
        )

    def _op_get_gateway(self, r: Recorded, _: web.Request) -> web.Response:
        return _json({"url": self.gateway_url})

    def _set_commands(self, r: Recorded, key: str) -> web.Response:
        denied = self._need_bot(r)
        if denied:
            return denied
        out = []
        for command in r.json or []:
            stored = {
                "id": snowflake(),
                "application_id": APPLICATION_ID,
                "version": snowflake(),
                "type": 1,
                "default_member_permissions": None,
                "nsfw": False,
                **command,
            }
            if key != "global":
                stored["guild_id"] = key
            out.append(stored)
        self.commands[key] = out
        return _json(out)

    def _op_list_application_commands(self, r: Recorded, _: web.Request) -> web.Response:
        return self._need_bot(r) or _json(self.commands.get("global", []))

    def _op_bulk_set_application_commands(self, r: Recorded, _: web.Request) -> web.Response:
        return self._set_commands(r, "global")

    def _op_bulk_set_guild_application_commands(
        self, r: Recorded, request: web.Request
    ) -> web.Response:
        return self._set_commands(r, r.path.split("/")[4])

    # Interactions ----------------------------------------------------------------------------------

    def _interaction_for(self, token: str) -> FakeInteraction | None:
        interaction = self.interactions.get(token)
        if interaction is None or interaction.expired:
            return None
        if time.time() > interaction.sent_at + TOKEN_LIFETIME:
            return None
        return interaction

    def _new_message(self, channel_id: str, data: dict[str, Any], **extra: Any) -> dict[str, Any]:
        message_id = snowflake()
        message = {
            "id": message_id,
            "channel_id": channel_id,
            "type": 0,
            "author": user_payload(BOT_USER_ID, "imagine", bot=True),
            "content": "",
            "timestamp": "2026-11-25T07:00:00+00:00",
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "components": [],
            "pinned": False,
            "flags": 0,
            "application_id": APPLICATION_ID,
            **extra,
        }
        self.messages[message_id] = message
        self._apply(message, data, {})
        return message

    def _apply(
        self,
        message: dict[str, Any],
        data: dict[str, Any],
        files: dict[str, tuple[str, bytes, str]],
    ) -> None:
        for key in ("content", "embeds", "components", "flags"):
            if key in data and data[key] is not None:
                message[key] = data[key]
        if "attachments" in data or files:
            attachments = []
            for entry in data.get("attachments") or []:
                part = files.get(f"files[{entry['id']}]")
                if part is None:
                    continue
                filename, content, ctype = part
                attachments.append(
                    {
                        "id": snowflake(),
                        "filename": entry.get("filename") or filename,
                        "size": len(content),
                        "url": f"http://127.0.0.1:{self.port}/attachments/{filename}",
                        "proxy_url": f"http://127.0.0.1:{self.port}/attachments/{filename}",
                        "content_type": ctype,
                    }
                )
            message["attachments"] = attachments
            message["_files"] = files

    def _op_create_interaction_response(self, r: Recorded, _: web.Request) -> web.Response:
        parts = r.path.split("/")
        interaction_id, token = parts[2], parts[3]
        interaction = self.interactions.get(token)
        if interaction is None or interaction.id != interaction_id:
            return _json({"message": "Unknown interaction", "code": 10062}, 404)
        if r.at > interaction.sent_at + ACK_DEADLINE:
            return _json({"message": "Unknown interaction", "code": 10062}, 404)
        if interaction.acked:
            return _json(
                {"message": "Interaction has already been acknowledged.", "code": 40060}, 400
            )
        body = r.json or {}
        rtype = int(body.get("type", 0))
        data = body.get("data") or {}
        interaction.acked = True
        interaction.response_type = rtype
        resource: dict[str, Any] = {"type": rtype}
        info: dict[str, Any] = {"id": interaction.id, "type": interaction.type}
        if rtype in (4, 5):
            message = self._new_message(
                interaction.channel_id,
                data,
                interaction_metadata={
                    "id": interaction.id,
                    "type": interaction.type,
                    "user": interaction.user,
                    "authorizing_integration_owners": {"0": GUILD_ID},
                },
            )
            if rtype == 5:
                message["flags"] = int(data.get("flags") or 0) | (1 << 7)  # LOADING
            interaction.original_id = message["id"]
            resource["message"] = _public(message)
            info["response_message_id"] = message["id"]
            info["response_message_loading"] = rtype == 5
            info["response_message_ephemeral"] = bool(int(data.get("flags") or 0) & 64)
        elif rtype in (6, 7) and interaction.message_id:
            interaction.original_id = interaction.message_id
        return _json({"interaction": info, "resource": resource})

    def _original_target(self, r: Recorded) -> tuple[FakeInteraction | None, web.Response | None]:
        token = r.path.split("/")[3]
        interaction = self._interaction_for(token)
        if interaction is None:
            return None, _json({"message": "Invalid Webhook Token", "code": 50027}, 401)
        return interaction, None

    def _op_update_original_webhook_message(self, r: Recorded, _: web.Request) -> web.Response:
        interaction, error = self._original_target(r)
        if error:
            return error
        assert interaction is not None
        message_id = interaction.original_id
        if message_id is None or message_id not in self.messages or message_id in self.deleted:
            return _json({"message": "Unknown Message", "code": 10008}, 404)
        message = self.messages[message_id]
        message["flags"] = int(message.get("flags") or 0) & ~(1 << 7)
        message["edited_timestamp"] = "2026-11-25T07:00:01+00:00"
        self._apply(message, r.json or {}, r.files)
        return _json(_public(message))

    def _op_delete_original_webhook_message(self, r: Recorded, _: web.Request) -> web.Response:
        interaction, error = self._original_target(r)
        if error:
            return error
        assert interaction is not None
        message_id = interaction.original_id
        if message_id is None or message_id not in self.messages or message_id in self.deleted:
            return _json({"message": "Unknown Message", "code": 10008}, 404)
        self.deleted.add(message_id)
        return web.Response(status=204)

    def _op_execute_webhook(self, r: Recorded, _: web.Request) -> web.Response:
        interaction, error = self._original_target(r)
        if error:
            return error
        assert interaction is not None
        if not interaction.acked:
            return _json({"message": "Unknown Webhook", "code": 10015}, 404)
        message = self._new_message(interaction.channel_id, r.json or {})
        self._apply(message, r.json or {}, r.files)
        return _json(_public(message))

    def _op_create_message(self, r: Recorded, _: web.Request) -> web.Response:
        denied = self._need_bot(r)
        if denied:
            return denied
        channel_id = r.path.split("/")[2]
        message = self._new_message(channel_id, r.json or {})
        self._apply(message, r.json or {}, r.files)
        return _json(_public(message))


def _public(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if not k.startswith("_")}


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # discord.py parses only responses whose Content-Type is exactly application/json.
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def _rate_limit_headers(body: dict[str, Any]) -> dict[str, str]:
    """The headers of Discord's 429 (docs.discord.com/developers/topics/rate-limits: Retry-After,
    X-RateLimit-Scope, X-RateLimit-Global on a global limit). Discord's 429s also pass its proxy,
    which adds ``Via``: discord.py treats a 429 without it as a Cloudflare ban and does not retry
    (discord/http.py and discord/webhook/async_.py, ``if not response.headers.get('Via')``)."""
    headers = {
        "Retry-After": str(body.get("retry_after", 1)),
        "X-RateLimit-Scope": "global" if body.get("global") else "user",
        "Via": "1.1 google",
    }
    if body.get("global"):
        headers["X-RateLimit-Global"] = "true"
    return headers


async def _parse_multipart(
    request: web.Request,
) -> tuple[Any, dict[str, tuple[str, bytes, str]]]:
    reader = await request.multipart()
    payload: Any = None
    files: dict[str, tuple[str, bytes, str]] = {}
    while True:
        part = await reader.next()
        if part is None:
            break
        assert isinstance(part, BodyPartReader)
        data = await part.read(decode=False)
        name = part.name or ""
        if name == "payload_json":
            payload = json.loads(data)
        elif name.startswith("files["):
            files[name] = (
                part.filename or name,
                bytes(data),
                part.headers.get("Content-Type", ""),
            )
    return payload, files
