"""The Slack adapter: builds the Web API clients, Bolt and its listeners, and runs the transport.

HTTP mode serves ``/slack/events`` on the bot's own server; Socket Mode connects with the app token.
Either way a request ends in ``AsyncApp.async_dispatch`` (see ``ingress``), and the listeners
(``handlers``, ``mentions``, ``home``) ack at once and work in tracked background tasks. With
``SLACK_BOT_TOKEN`` alone the bot serves that token's workspace; with ``SLACK_CLIENT_ID`` and
``SLACK_CLIENT_SECRET`` workspaces install it through OAuth, each request and each delivery using
its own workspace's token from the database (``installations``).
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
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
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient

from adapters.host import Host
from adapters.slack.admin import AdminCommands, AdminGate
from adapters.slack.clients import FixedToken, SlackClients, TokenSource
from adapters.slack.delivery import PLATFORM, SLACK_ERRORS, ProgressBoard, SlackDelivery
from adapters.slack.doctor import INSTALL_SCOPES
from adapters.slack.files import SlackFiles
from adapters.slack.handlers import CommandHandlers
from adapters.slack.home import AppHome
from adapters.slack.ingress import (
    EVENTS_PATH,
    INSTALL_PATH,
    REDIRECT_PATH,
    HttpIngress,
    OAuthIngress,
    SocketIngress,
)
from adapters.slack.installations import (
    TOKEN_LOG,
    Bots,
    DatabaseInstallationStore,
    DatabaseStateStore,
    InstallationTokens,
    StoredAuthorize,
    sealer_from_secret,
)
from adapters.slack.mentions import MentionHandlers
from adapters.slack.payloads import text
from adapters.slack.replies import Replies
from adapters.slack.tasks import BackgroundWork
from adapters.slack.verify import SignatureChecker
from bot.domain.errors import ConfigError

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
    def __init__(self, app: Host, *, gateway: bool = True) -> None:
        settings = app.settings
        token = settings.secret("SLACK_BOT_TOKEN")
        self._oauth = settings.slack_oauth
        if not token and not self._oauth:  # pragma: no cover - the CLI checks the settings
            raise ValueError(
                "SLACK_BOT_TOKEN (or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET) required"
            )
        self._app = app
        self._gateway = gateway
        self._token = token
        signing_secret = settings.secret("SLACK_SIGNING_SECRET")
        self._app_token = settings.secret("SLACK_APP_TOKEN")
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        self.installations: DatabaseInstallationStore | None = None
        tokens: TokenSource
        if self._oauth:
            sealer = sealer_from_secret(settings.secret("IMAGINE_SECRET_KEY") or "")
            self.installations = DatabaseInstallationStore(app.store, sealer)
            rotator = AsyncTokenRotator(
                client_id=settings.slack_client_id or "",
                client_secret=settings.secret("SLACK_CLIENT_SECRET") or "",
                client=AsyncWebClient(
                    base_url=settings.slack_api_url, session=self._session, logger=TOKEN_LOG
                ),
            )
            self.bots = Bots(self.installations, rotator)
            tokens = InstallationTokens(self.bots)
        else:
            assert token is not None
            tokens = FixedToken(token)
        self.clients = SlackClients(self._session, settings.slack_api_url, tokens)
        # The process's own client: auth.test of SLACK_BOT_TOKEN, Socket Mode (which names the
        # app token itself). It carries no token in OAuth mode without SLACK_BOT_TOKEN.
        self.client = self.clients.client(token)
        self.board = ProgressBoard()
        self.delivery = SlackDelivery(
            self.clients, app.catalog, self.board, app.service, app.clock.now
        )
        self.files = SlackFiles(app.http, token, app.blobs, settings.slack_files_url)
        self.admins = AdminGate(self.clients, app.service, app.clock.monotonic)
        self.admin_commands = AdminCommands(app.service, self.admins, app.policy.defaults.limits)
        self._work = BackgroundWork()
        self._signed_in = False
        self._bot_user_id: str | None = None
        self._bot_id: str | None = None
        self.bolt = self._bolt(app)
        self.replies = Replies(self._session, self.clients)
        self.handlers = CommandHandlers(
            app.service,
            self.clients,
            self.replies,
            self.delivery,
            self.board,
            self.files,
            self.admins,
            self.admin_commands,
            self._work,
        )
        self.handlers.register(self.bolt)
        MentionHandlers(app.service, self.clients, self.handlers, self._work).register(self.bolt)
        self.home = AppHome(
            app.service, app.catalog, self.clients, self.admins, self.admin_commands, self._work
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

    def _bolt(self, app: Host) -> AsyncApp:
        settings = app.settings
        bolt_log = logging.getLogger("adapters.slack.bolt")
        bolt_log.addFilter(_quiet_unused_token)
        # Bolt gets each request's token from ``authorize`` (or the installations); a client of
        # its own carrying no token keeps it from warning that the client's token is ignored.
        client = AsyncWebClient(base_url=settings.slack_api_url, session=self._session)
        common: dict[str, Any] = {
            "client": client,
            "request_verification_enabled": False,  # done by SignatureChecker, which never raises
            "process_before_response": True,  # listeners only ack; the work runs in our tasks
            "logger": bolt_log,
        }
        if self.installations is None:
            return AsyncApp(authorize=self._authorizer(), **common)
        public = (settings.public_url or "").rstrip("/")
        oauth = AsyncOAuthSettings(
            client_id=settings.slack_client_id,
            client_secret=settings.secret("SLACK_CLIENT_SECRET"),
            scopes=list(settings.slack_scopes or sorted(INSTALL_SCOPES)),
            user_scopes=[],
            # Slack sends the browser back to the redirect URL registered with the app; naming it
            # is needed only when the app registers several.
            redirect_uri=f"{public}{REDIRECT_PATH}" if public else None,
            install_path=INSTALL_PATH,
            # /slack/install sends the browser straight to Slack's consent page.
            install_page_rendering_enabled=False,
            redirect_uri_path=REDIRECT_PATH,
            authorization_url=authorize_url(settings.slack_api_url),
            installation_store=self.installations,
            installation_store_bot_only=True,
            state_store=DatabaseStateStore(app.store, app.clock.now),
            logger=bolt_log,
        )
        # Bolt takes an AsyncAuthorize instance here too ("bolt-python should not prevent
        # customizing authorize middleware", slack_bolt/app/async_app.py); its annotation names
        # only plain functions.
        authorize: Any = StoredAuthorize(self.bots)
        bolt = AsyncApp(oauth_settings=oauth, authorize=authorize, **common)
        # app_uninstalled and tokens_revoked delete the workspace's tokens (Bolt's own listeners
        # on our installation store); its settings and audit log stay for a reinstall.
        bolt.enable_token_revocation_listeners()
        return bolt

    # Lifecycle --------------------------------------------------------------------------------

    def attach(self) -> None:
        self._app.add_delivery(PLATFORM, self.delivery)
        if not self._gateway:
            return
        router = self._app.http_server.app.router
        if self._http is not None:
            router.add_post(EVENTS_PATH, self.handle_http)
        if self.installations is not None:
            OAuthIngress(self.bolt).attach(router)
        self._app.http_server.add_readiness_check(PLATFORM, self.readiness)

    async def readiness(self) -> str | None:
        """For ``/readyz``: None once signed in (and, in Socket Mode, connected), else why not."""
        if not self._signed_in:
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
        if self.installations is not None:
            log.info("Slack: workspaces install the app at %s", INSTALL_PATH)
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

    async def _identify(self) -> None:
        if self._token is None:
            self._signed_in = True  # OAuth only: each workspace's token is checked on install
            return
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
        self._signed_in = self._bot_user_id is not None
        log.info("Slack: signed in to team %s as %s", me.get("team_id"), self._bot_user_id)
        if self.installations is not None:
            await self._keep_token_workspace(me.data if isinstance(me.data, dict) else {})

    async def _keep_token_workspace(self, me: dict[str, Any]) -> None:
        """OAuth mode with SLACK_BOT_TOKEN too: the token's workspace keeps working as an
        installation of its own, unless it has installed the app through OAuth already."""
        assert self.installations is not None and self._token is not None
        team, enterprise = text(me.get("team_id")), text(me.get("enterprise_id")) or None
        if not team:
            return
        found = await self.installations.async_find_bot(enterprise_id=enterprise, team_id=team)
        if found is not None:
            return
        await self.installations.async_save(
            Installation(
                enterprise_id=enterprise,
                team_id=team,
                team_name=text(me.get("team")) or None,
                bot_token=self._token,
                bot_id=self._bot_id,
                bot_user_id=self._bot_user_id,
                user_id=self._bot_user_id or "",
            )
        )

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


def authorize_url(api_url: str) -> str:
    """Slack's consent page beside its Web API: https://slack.com/api/ gives
    https://slack.com/oauth/v2/authorize (https://api.slack.com/authentication/oauth-v2)."""
    return urllib.parse.urljoin(api_url.rstrip("/") + "/", "../oauth/v2/authorize")
