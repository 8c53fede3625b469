"""How Slack's requests reach Bolt: ``POST /slack/events`` on the bot's own server (signature checked
first) or Bolt's Socket Mode handler. Both end in one call, ``AsyncApp.async_dispatch``."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.delivery import SLACK_ERRORS
from adapters.slack.verify import SignatureChecker
from bot.domain.errors import ConfigError

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"


class HttpIngress:
    """``/slack/events``: refuses unsigned or stale requests with 401, hands the rest to Bolt."""

    def __init__(self, bolt: AsyncApp, checker: SignatureChecker) -> None:
        self._bolt = bolt
        self._checker = checker

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if not self._checker.is_valid(body, request.headers):
            return web.json_response({"ok": False, "error": "invalid_signature"}, status=401)
        try:
            bolt_request = AsyncBoltRequest(
                body=body.decode("utf-8"),
                query=request.query_string,
                headers={key: value for key, value in request.headers.items()},
            )
            response = await self._bolt.async_dispatch(bolt_request)
        except (UnicodeDecodeError, ValueError, KeyError, TypeError):
            return web.json_response({"ok": False, "error": "malformed_request"}, status=400)
        return await to_aiohttp_response(response)


class SocketIngress:
    """Socket Mode through Bolt's ``AsyncSocketModeHandler`` (imported only when used)."""

    def __init__(self, bolt: AsyncApp, client: AsyncWebClient, app_token: str) -> None:
        self._bolt = bolt
        self._client = client
        self._app_token = app_token
        self._handler: Any = None

    async def connect(self) -> None:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        self._handler = AsyncSocketModeHandler(
            self._bolt, app_token=self._app_token, web_client=self._client
        )
        # The socket client retries a refused app token forever; asking for the first URL here
        # turns a refusal into one clear error (the client then connects to that URL).
        try:
            opened = await self._client.apps_connections_open(app_token=self._app_token)
        except SlackApiError as exc:
            raise ConfigError(
                "SLACK_APP_TOKEN",
                f"Slack refused the app token ({exc.response.get('error')}); it needs the "
                "connections:write scope",
            ) from None
        except SLACK_ERRORS:
            pass  # not reachable yet: the socket client keeps trying
        else:
            self._handler.client.wss_uri = opened.get("url")
        await self._handler.connect_async()

    async def is_connected(self) -> bool:
        client = getattr(self._handler, "client", None)
        return client is not None and bool(await client.is_connected())

    async def close(self) -> None:
        if self._handler is None:
            return
        try:
            await self._handler.close_async()
        except Exception as exc:  # closing is best effort
            log.info("Slack: Socket Mode close failed: %s", type(exc).__name__)
        self._handler = None
