"""How Slack's requests reach Bolt: ``POST /slack/events`` on the bot's own server (signature checked
first, retries of an event already handled dropped) or Bolt's Socket Mode handler; both end in one
call, ``AsyncApp.async_dispatch``. With OAuth installs, ``GET /slack/install`` and
``/slack/oauth_redirect`` run Bolt's OAuth flow."""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.delivery import SLACK_ERRORS
from adapters.slack.verify import SignatureChecker
from bot.domain.errors import ConfigError

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
# How many handled event ids are remembered to drop Slack's retries of them.
SEEN_EVENTS = 10_000


class SeenEvents:
    """Event ids answered with success lately. Slack retries an event it thinks was lost (up to
    three times, ``X-Slack-Retry-Num``, https://api.slack.com/apis/events-api#retries); a retry
    of one already handled here is answered 200 and goes no further. Jobs carry the event id as
    their dedupe key too, which catches a retry that reaches another process."""

    def __init__(self, limit: int = SEEN_EVENTS) -> None:
        self._limit = limit
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, event_id: str) -> bool:
        return event_id in self._ids

    def add(self, event_id: str) -> None:
        self._ids[event_id] = None
        self._ids.move_to_end(event_id)
        while len(self._ids) > self._limit:
            self._ids.popitem(last=False)


class HttpIngress:
    """``/slack/events``: refuses unsigned or stale requests with 401, hands the rest to Bolt."""

    def __init__(self, bolt: AsyncApp, checker: SignatureChecker) -> None:
        self._bolt = bolt
        self._checker = checker
        self._seen = SeenEvents()

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
            event_id = bolt_request.body.get("event_id")
            event_id = event_id if isinstance(event_id, str) and event_id else None
            if event_id is not None and event_id in self._seen:
                log.info("Slack: retry of event %s dropped", event_id)
                return web.Response(status=200)
            response = await self._bolt.async_dispatch(bolt_request)
        except (UnicodeDecodeError, ValueError, KeyError, TypeError):
            return web.json_response({"ok": False, "error": "malformed_request"}, status=400)
        if event_id is not None and response.status < 300:
            self._seen.add(event_id)
        return await to_aiohttp_response(response)


class OAuthIngress:
    """Bolt's OAuth flow on the bot's server: the install link and Slack's redirect back."""

    def __init__(self, bolt: AsyncApp) -> None:
        flow = bolt.oauth_flow
        if flow is None:  # pragma: no cover - built only for an app with OAuth settings
            raise ValueError("the Bolt app has no OAuth flow")
        self._flow = flow

    def attach(self, router: web.UrlDispatcher) -> None:
        router.add_get(INSTALL_PATH, self.install)
        router.add_get(REDIRECT_PATH, self.redirect)

    async def install(self, request: web.Request) -> web.StreamResponse:
        response = await self._flow.handle_installation(await to_bolt_request(request))
        return await to_aiohttp_response(response)

    async def redirect(self, request: web.Request) -> web.StreamResponse:
        response = await self._flow.handle_callback(await to_bolt_request(request))
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
