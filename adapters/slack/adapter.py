"""The Slack adapter: builds the Web API client, Bolt and its listeners, and runs the transport.

HTTP mode serves ``/slack/events`` on the bot's own server; Socket Mode connects with the app token.
Either way a request ends in ``AsyncApp.async_dispatch`` (see ``ingress``), and the listeners
(``handlers``, ``home``) ack at once and work in tracked background tasks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.logger.messages import (
    warning_client_prioritized_and_token_skipped,
    warning_token_skipped,
)
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.admin import AdminCommands, AdminGate
from adapters.slack.delivery import PLATFORM, SLACK_ERRORS, ProgressBoard, SlackDelivery
from adapters.slack.files import SlackFiles
from adapters.slack.handlers import CommandHandlers, Replies
from adapters.slack.home import AppHome
from adapters.slack.ingress import EVENTS_PATH, HttpIngress, SocketIngress
from adapters.slack.payloads import text
from adapters.slack.tasks import BackgroundWork
from adapters.slack.verify import SignatureChecker
from bot.domain.errors import ConfigError
from bot.runtime.app import App

log = logging.getLogger(__name__)

__all__ = ["DRAIN_SECONDS", "EVENTS_PATH", "SlackAdapter"]

# How long shutdown waits for acknowledged commands to reach the store.
DRAIN_SECONDS = 10.0


def _quiet_unused_token(record: logging.LogRecord) -> bool:
    """Drop Bolt's warning that ``token`` is unused: Bolt reads SLACK_BOT_TOKEN from the
    environment by itself, and the bot hands the token over through ``authorize`` instead."""
    return record.getMessage() not in _UNUSED_TOKEN_WARNINGS


_UNUSED_TOKEN_WARNINGS = frozenset(
    {warning_client_prioritized_and_token_skipped(), warning_token_skipped()}
)


class SlackAdapter:
    def __init__(self, app: App, *, gateway: bool = True) -> None:
        settings = app.settings
        token = settings.secret("SLACK_BOT_TOKEN")
        if not token:  # pragma: no cover - the CLI only builds the adapter with a token
            raise ValueError("SLACK_BOT_TOKEN is required")
        self._app = app
        self._gateway = gateway
        self._token = token
        signing_secret = settings.secret("SLACK_SIGNING_SECRET")
        self._app_token = settings.secret("SLACK_APP_TOKEN")
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        self.client = AsyncWebClient(
            token=token,
            base_url=settings.slack_api_url,
            session=self._session,
            timeout=30,
            logger=logging.getLogger("adapters.slack.web"),
        )
        self.client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
        self.board = ProgressBoard()
        self.delivery = SlackDelivery(
            self.client, app.catalog, self.board, app.service, app.clock.now
        )
        self.files = SlackFiles(app.http, token, app.blobs, settings.slack_files_url)
        self.admins = AdminGate(self.client, app.service, app.clock.monotonic)
        self.admin_commands = AdminCommands(app.service, self.admins, app.policy.defaults.limits)
        self._work = BackgroundWork()
        self._bot_user_id: str | None = None
        self._bot_id: str | None = None
        bolt_log = logging.getLogger("adapters.slack.bolt")
        bolt_log.addFilter(_quiet_unused_token)
        self.bolt = AsyncApp(
            # Bolt gets the token from ``authorize``; a client of its own carrying no token keeps
            # it from warning that the client's token is ignored.
            client=AsyncWebClient(base_url=settings.slack_api_url, session=self._session),
            authorize=self._authorizer(),
            request_verification_enabled=False,  # done by SignatureChecker, which never raises
            process_before_response=True,  # listeners only ack; the work runs in our own tasks
            logger=bolt_log,
        )
        self.replies = Replies(self._session, self.client)
        self.handlers = CommandHandlers(
            app.service,
            self.client,
            self.replies,
            self.delivery,
            self.board,
            self.files,
            self.admins,
            self.admin_commands,
            self._work,
        )
        self.handlers.register(self.bolt)
        self.home = AppHome(
            app.service, app.catalog, self.client, self.admins, self.admin_commands, self._work
        )
        self.home.register(self.bolt)
        self._http = (
            HttpIngress(self.bolt, SignatureChecker(signing_secret, app.clock.now))
            if signing_secret
            else None
        )
        self._socket = (
            SocketIngress(self.bolt, self.client, self._app_token) if self._app_token else None
        )

    # Lifecycle --------------------------------------------------------------------------------

    def attach(self) -> None:
        self._app.add_delivery(PLATFORM, self.delivery)
        if self._gateway and self._http is not None:
            self._app.http_server.app.router.add_post(EVENTS_PATH, self.handle_http)
        if self._gateway:
            self._app.http_server.add_readiness_check(PLATFORM, self.readiness)

    async def readiness(self) -> str | None:
        """For ``/readyz``: None once signed in (and, in Socket Mode, connected), else why not."""
        if self._bot_user_id is None:
            return "not signed in (auth.test)"
        if self._socket is not None and not await self._socket.is_connected():
            return "Socket Mode not connected"
        return None

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await self._identify()
            if self._socket is not None:
                await self._socket.connect()
        except ConfigError:
            stop.set()  # nothing works without the token: stop the whole process, say why
            raise
        if self._socket is not None:
            log.info("Slack: connected in Socket Mode")
        else:
            log.info("Slack: taking requests at %s", EVENTS_PATH)
        await stop.wait()

    async def aclose(self) -> None:
        if self._socket is not None:
            await self._socket.close()
        await self.drain(DRAIN_SECONDS)
        await self._session.close()

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for the work of acknowledged requests (tests and shutdown)."""
        await self._work.drain(timeout)

    async def handle_http(self, request: web.Request) -> web.StreamResponse:
        assert self._http is not None  # the route exists only with a signing secret
        return await self._http.handle(request)

    async def tell(self, response_url: str, channel: str, user: str, message: Any) -> None:
        await self.replies.tell(response_url, channel, user, message)

    async def _identify(self) -> None:
        try:
            me = await self.client.auth_test()
        except SlackApiError as exc:
            # auth.test takes nothing but the token: any refusal is the token's.
            raise ConfigError(
                "SLACK_BOT_TOKEN",
                f"Slack refused the token ({exc.response.get('error')}); copy the Bot User OAuth "
                "Token (xoxb-...) from the app's OAuth & Permissions page",
            ) from None
        except SLACK_ERRORS as exc:
            log.warning(
                "Slack: auth.test failed (%s); check the network and SLACK_API_URL",
                type(exc).__name__,
            )
            return
        self._bot_user_id = text(me.get("user_id")) or None
        self._bot_id = text(me.get("bot_id")) or None
        log.info("Slack: signed in to team %s as %s", me.get("team_id"), self._bot_user_id)

    def _authorizer(self) -> Callable[..., Awaitable[AuthorizeResult]]:
        # One workspace, one bot token: no network call stands before the ack. (Bolt reads the
        # function's parameter names, so this is a plain function, not a bound method.)
        async def authorize(
            enterprise_id: str | None, team_id: str | None, user_id: str | None
        ) -> AuthorizeResult:
            return AuthorizeResult(
                enterprise_id=enterprise_id,
                team_id=team_id,
                user_id=user_id,
                bot_token=self._token,
                bot_user_id=self._bot_user_id,
                bot_id=self._bot_id,
            )

        return authorize
