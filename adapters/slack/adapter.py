"""The Slack adapter: Bolt listeners that turn commands, buttons and modals into core calls.

Every transport ends in one call, ``AsyncApp.async_dispatch``: the bot's own aiohttp server for HTTP
mode (``/slack/events``, signatures checked here first) or Bolt's Socket Mode handler. Listeners ack
at once from the request alone and do the work in a tracked background task.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.logger.messages import (
    warning_client_prioritized_and_token_skipped,
    warning_token_skipped,
)
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import messages
from adapters.slack.admin import AdminCommands, AdminGate
from adapters.slack.delivery import (
    CANNOT_POST,
    PLATFORM,
    SLACK_ERRORS,
    ProgressBoard,
    SlackDelivery,
)
from adapters.slack.files import SlackFiles
from adapters.slack.verify import SignatureChecker
from bot.domain.errors import (
    ConfigError,
    DownloadRefused,
    InvalidImage,
    InvalidRequest,
    JobNotFound,
    RequestRejected,
)
from bot.domain.models import ImagineRequest, Job, ReplyTarget
from bot.runtime.app import App
from bot.text import replies
from bot.text.flags import ImagineArgs, parse_imagine
from bot.text.request import build_request

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
# How long shutdown waits for acknowledged commands to reach the store.
DRAIN_SECONDS = 10.0
_MENTION = re.compile(r"^<[@#]([A-Z0-9]+)(?:\|[^>]*)?>$")

Ack = AsyncAck
Payload = dict[str, Any]


def _quiet_unused_token(record: logging.LogRecord) -> bool:
    """Drop Bolt's warning that ``token`` is unused: Bolt reads SLACK_BOT_TOKEN from the
    environment by itself, and the bot hands the token over through ``authorize`` instead."""
    return record.getMessage() not in _UNUSED_TOKEN_WARNINGS


_UNUSED_TOKEN_WARNINGS = frozenset(
    {warning_client_prioritized_and_token_skipped(), warning_token_skipped()}
)


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


class SlackAdapter:
    def __init__(self, app: App, *, gateway: bool = True) -> None:
        settings = app.settings
        token = settings.secret("SLACK_BOT_TOKEN")
        if not token:  # pragma: no cover - the CLI only builds the adapter with a token
            raise ValueError("SLACK_BOT_TOKEN is required")
        self._app = app
        self._gateway = gateway
        self._token = token
        self._signing_secret = settings.secret("SLACK_SIGNING_SECRET")
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
        self._checker = (
            SignatureChecker(self._signing_secret, app.clock.now) if self._signing_secret else None
        )
        self._bot_user_id: str | None = None
        self._bot_id: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._socket: Any = None
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
        self.bolt.command("/imagine")(self._on_imagine)
        self.bolt.command("/imagine-admin")(self._on_admin)
        self.bolt.action(re.compile(r"^imagine:"))(self._on_button)
        self.bolt.view(messages.EDIT_CALLBACK)(self._on_edit_submit)
        self.bolt.event("app_home_opened")(self._on_home_opened)

    # Lifecycle --------------------------------------------------------------------------------

    def attach(self) -> None:
        self._app.add_delivery(PLATFORM, self.delivery)
        if self._gateway and self._checker is not None:
            self._app.http_server.app.router.add_post(EVENTS_PATH, self.handle_http)
        if self._gateway:
            self._app.http_server.add_readiness_check(PLATFORM, self.readiness)

    async def readiness(self) -> str | None:
        """For ``/readyz``: None once signed in (and, in Socket Mode, connected), else why not."""
        if self._bot_user_id is None:
            return "not signed in (auth.test)"
        if self._app_token:
            client = getattr(self._socket, "client", None)
            if client is None or not await client.is_connected():
                return "Socket Mode not connected"
        return None

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await self._identify()
            if self._app_token:
                await self._connect_socket_mode(self._app_token)
        except ConfigError:
            stop.set()  # nothing works without the token: stop the whole process, say why
            raise
        if self._app_token:
            log.info("Slack: connected in Socket Mode")
        else:
            log.info("Slack: taking requests at %s", EVENTS_PATH)
        await stop.wait()

    async def aclose(self) -> None:
        if self._socket is not None:
            try:
                await self._socket.close_async()
            except Exception as exc:  # closing is best effort
                log.info("Slack: Socket Mode close failed: %s", type(exc).__name__)
            self._socket = None
        await self.drain(DRAIN_SECONDS)
        await self._session.close()

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for the work of acknowledged requests (tests and shutdown)."""
        while self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            if pending:
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending)
                return

    async def _connect_socket_mode(self, app_token: str) -> None:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        self._socket = AsyncSocketModeHandler(
            self.bolt, app_token=app_token, web_client=self.client
        )
        # The socket client retries a refused app token forever; asking for the first URL here
        # turns a refusal into one clear error (the client then connects to that URL).
        try:
            opened = await self.client.apps_connections_open(app_token=app_token)
        except SlackApiError as exc:
            raise ConfigError(
                "SLACK_APP_TOKEN",
                f"Slack refused the app token ({exc.response.get('error')}); it needs the "
                "connections:write scope",
            ) from None
        except SLACK_ERRORS:
            pass  # not reachable yet: the socket client keeps trying
        else:
            self._socket.client.wss_uri = opened.get("url")
        await self._socket.connect_async()

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
        self._bot_user_id = _str(me.get("user_id")) or None
        self._bot_id = _str(me.get("bot_id")) or None
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

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=f"slack-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("Slack: %s failed: %s", task.get_name(), type(exc).__name__, exc_info=exc)

    # HTTP mode --------------------------------------------------------------------------------

    async def handle_http(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        assert self._checker is not None
        if not self._checker.is_valid(body, request.headers):
            return web.json_response({"ok": False, "error": "invalid_signature"}, status=401)
        try:
            bolt_request = AsyncBoltRequest(
                body=body.decode("utf-8"),
                query=request.query_string,
                headers={key: value for key, value in request.headers.items()},
            )
            response = await self.bolt.async_dispatch(bolt_request)
        except (UnicodeDecodeError, ValueError, KeyError, TypeError):
            return web.json_response({"ok": False, "error": "malformed_request"}, status=400)
        return await to_aiohttp_response(response)

    # /imagine ---------------------------------------------------------------------------------

    async def _on_imagine(self, ack: Ack, command: Payload) -> None:
        try:
            args = parse_imagine(_str(command.get("text")))
            request = self._imagine_request(command, args)
        except InvalidRequest as exc:
            await ack(**messages.refusal(exc.user_message))
            return
        if args.help or not args.prompt:
            await ack(**messages.ephemeral(messages.HELP))
            return
        await ack(**messages.ack_queued(args.prompt))
        self._spawn(self._imagine(request, args), "imagine")

    def _imagine_request(self, command: Payload, args: ImagineArgs) -> ImagineRequest:
        """The request without its input images (stored after the ack) and admin flag."""
        team = _str(command.get("team_id"))
        user = _str(command.get("user_id"))
        channel = _str(command.get("channel_id"))
        reply = ReplyTarget(
            platform=PLATFORM,
            channel_id=channel,
            thread_id=_str(command.get("thread_ts")) or None,
            data={
                "team_id": team,
                "user_id": user,
                "response_url": _str(command.get("response_url")),
            },
        )
        return build_request(
            args,
            platform=PLATFORM,
            community_id=team,
            channel_id=channel,
            user_id=user,
            reply=reply,
            dedupe_key=_str(command.get("trigger_id")) or None,
        )

    async def _imagine(self, request: ImagineRequest, args: ImagineArgs) -> None:
        user = request.user_id
        channel = request.channel_id
        response_url = str(request.reply.data.get("response_url", ""))
        try:
            inputs = await self.files.store_inputs(args.images)
        except DownloadRefused as exc:
            await self.tell(response_url, channel, user, messages.refusal(str(exc)))
            return
        except InvalidImage as exc:
            message = f"That Slack file is not a usable image: {exc}."
            await self.tell(response_url, channel, user, messages.refusal(message))
            return
        request = request.with_changes(
            input_images=inputs,
            user_is_admin=await self._is_admin(request.community_id, user),
        )
        await self._submit(
            request, lambda r: self._app.service.imagine(r), response_url, channel, user
        )

    async def _submit(
        self,
        request: ImagineRequest,
        call: Callable[[ImagineRequest], Awaitable[Any]],
        response_url: str,
        channel: str,
        user: str,
    ) -> None:
        """Store the job (or learn why not) and show the outcome: progress message or refusal."""
        key = f"{PLATFORM}:{request.dedupe_key}" if request.dedupe_key else None
        if key:
            self.board.expect(key)
        try:
            accepted = await call(request)
        except RequestRejected as exc:
            if key:
                self.board.forget(key)
            await self.tell(response_url, channel, user, messages.refusal(exc.user_message))
            return
        except Exception as exc:  # the store or the service failed: say so, never stay silent
            if key:
                self.board.forget(key)
            log.warning("Slack: a command failed: %s", type(exc).__name__, exc_info=exc)
            await self.tell(
                response_url,
                channel,
                user,
                messages.refusal(replies.SOMETHING_WRONG),
            )
            return
        if accepted.duplicate:
            return
        problem = await self.delivery.post_queued(accepted.job, accepted.position)
        if problem in CANNOT_POST:
            # The image could never be posted here: say so now instead of failing later.
            await self._app.service.cancel(accepted.job.id, user_id=request.user_id)
            await self.tell(response_url, channel, user, messages.refusal(messages.CANNOT_POST))

    async def tell(self, response_url: str, channel: str, user: str, message: Payload) -> None:
        """An ephemeral reply: through the request's response_url, else chat.postEphemeral."""
        if response_url.startswith(("https://", "http://")):
            try:
                async with self._session.post(response_url, json=message) as response:
                    if response.status < 300:
                        return
                    log.info("Slack: response_url answered %s", response.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.info("Slack: response_url failed: %s", type(exc).__name__)
        if not channel or not user:
            return
        try:
            await self.client.chat_postEphemeral(channel=channel, user=user, text=message["text"])
        except (SlackApiError, *SLACK_ERRORS) as exc:
            log.warning("Slack: could not reply to %s: %s", user, type(exc).__name__)

    # Buttons and the edit modal ---------------------------------------------------------------

    async def _on_button(self, ack: Ack, body: Payload, action: Payload) -> None:
        parsed = messages.parse_action_id(_str(action.get("action_id")))
        await ack()
        if parsed is not None:
            self._spawn(self._button(body, *parsed), parsed[0])

    async def _button(self, body: Payload, verb: str, job_id: str) -> None:
        user = _str((body.get("user") or {}).get("id"))
        team = _str((body.get("team") or {}).get("id")) or _str(
            (body.get("user") or {}).get("team_id")
        )
        container = body.get("container") or {}
        message = body.get("message") or {}
        channel = _str((body.get("channel") or {}).get("id")) or _str(container.get("channel_id"))
        thread_ts = _str(container.get("thread_ts")) or _str(message.get("thread_ts")) or None
        response_url = _str(body.get("response_url"))
        trigger = _str(body.get("trigger_id")) or None
        try:
            job = await self._app.service.job(job_id)
            if job.community_id != team:
                raise JobNotFound(job_id)
        except JobNotFound:
            await self.tell(response_url, channel, user, messages.refusal(replies.JOB_UNKNOWN))
            return
        if verb == "delete":
            await self._delete(job, team, user, channel, response_url)
            return
        if verb == "edit":
            metadata = {"job": job.id, "channel": channel, "thread_ts": thread_ts or ""}
            try:
                await self.client.views_open(
                    trigger_id=trigger or "", view=messages.edit_modal(job, metadata)
                )
            except (SlackApiError, *SLACK_ERRORS) as exc:
                log.warning("Slack: could not open the edit modal: %s", type(exc).__name__)
                await self.tell(
                    response_url, channel, user, messages.refusal("The editor could not open.")
                )
            return
        request = self._follow_up_request(team, channel, thread_ts, user, trigger, response_url)
        await self._submit(
            await self._with_admin(request),
            lambda r: self._app.service.follow_up(job.id, verb, r),
            response_url,
            channel,
            user,
        )

    async def _on_edit_submit(self, ack: Ack, body: Payload, view: Payload) -> None:
        values = (view.get("state") or {}).get("values") or {}
        prompt = _str(
            ((values.get(messages.EDIT_BLOCK) or {}).get(messages.EDIT_INPUT) or {}).get("value")
        )
        if not prompt.strip():
            await ack(
                response_action="errors", errors={messages.EDIT_BLOCK: "Describe the change."}
            )
            return
        await ack()
        self._spawn(self._edit(body, view, prompt.strip()), "edit")

    async def _edit(self, body: Payload, view: Payload, prompt: str) -> None:
        try:
            metadata = json.loads(_str(view.get("private_metadata")) or "{}")
        except ValueError:
            return
        user = _str((body.get("user") or {}).get("id"))
        team = _str((body.get("team") or {}).get("id")) or _str(
            (body.get("user") or {}).get("team_id")
        )
        channel = _str(metadata.get("channel"))
        job_id = _str(metadata.get("job"))
        trigger = _str(body.get("trigger_id")) or _str(view.get("id")) or None
        try:
            job = await self._app.service.job(job_id)
            if job.community_id != team:
                raise JobNotFound(job_id)
        except JobNotFound:
            await self.tell("", channel, user, messages.refusal(replies.JOB_UNKNOWN))
            return
        request = self._follow_up_request(
            team, channel, _str(metadata.get("thread_ts")) or None, user, trigger, ""
        )

        async def call(r: ImagineRequest) -> Any:
            return await self._app.service.follow_up(job.id, "edit", r, prompt=prompt)

        await self._submit(await self._with_admin(request), call, "", channel, user)

    def _follow_up_request(
        self,
        team: str,
        channel: str,
        thread_ts: str | None,
        user: str,
        trigger: str | None,
        response_url: str,
    ) -> ImagineRequest:
        reply = ReplyTarget(
            platform=PLATFORM,
            channel_id=channel,
            thread_id=thread_ts,
            data={"team_id": team, "user_id": user, "response_url": response_url},
        )
        return build_request(
            ImagineArgs(""),
            platform=PLATFORM,
            community_id=team,
            channel_id=channel,
            user_id=user,
            reply=reply,
            dedupe_key=trigger,
        )

    async def _with_admin(self, request: ImagineRequest) -> ImagineRequest:
        return request.with_changes(
            user_is_admin=await self._is_admin(request.community_id, request.user_id)
        )

    async def _is_admin(self, team: str, user: str) -> bool:
        try:
            return await self.admins.is_admin(team, user)
        except Exception as exc:  # an admin flag is a bonus; the request goes on without it
            log.warning("Slack: admin check failed: %s", type(exc).__name__)
            return False

    async def _delete(
        self, job: Job, team: str, user: str, channel: str, response_url: str
    ) -> None:
        if job.user_id != user:
            try:
                await self._app.service.require_admin(
                    team, await self.admins.actor(user), "delete_image"
                )
            except RequestRejected:
                await self.tell(
                    response_url,
                    channel,
                    user,
                    messages.refusal(
                        "Only the person who asked for this image or an admin can delete it."
                    ),
                )
                return
        where = _str(job.delivery.get("channel")) or job.request.reply.channel_id
        try:
            for file_id in job.delivery.get("files") or []:
                await self.client.files_delete(file=str(file_id))
            ts = _str(job.delivery.get("ts"))
            if ts:
                await self.client.chat_delete(channel=where, ts=ts)
        except (SlackApiError, *SLACK_ERRORS) as exc:
            log.warning("Slack: deleting job %s's image failed: %s", job.id, type(exc).__name__)
            await self.tell(
                response_url, channel, user, messages.refusal("The image could not be deleted.")
            )
            return
        await self.tell(response_url, channel, user, messages.ephemeral("Deleted."))

    # /imagine-admin and App Home --------------------------------------------------------------

    async def _on_admin(self, ack: Ack, command: Payload) -> None:
        await ack()
        self._spawn(self._admin(command), "admin")

    async def _admin(self, command: Payload) -> None:
        team = _str(command.get("team_id"))
        user = _str(command.get("user_id"))
        text = await self.admin_commands.run(team, user, _str(command.get("text")))
        await self.tell(
            _str(command.get("response_url")),
            _str(command.get("channel_id")),
            user,
            messages.ephemeral(text),
        )

    async def _on_home_opened(self, body: Payload, event: Payload) -> None:
        if event.get("tab", "home") != "home":
            return
        team = _str(body.get("team_id"))
        user = _str(event.get("user"))
        self._spawn(self._publish_home(team, user), "home")

    async def _publish_home(self, team: str, user: str) -> None:
        service = self._app.service
        actor = await self.admins.actor(user)
        report = await service.quota(team, user, is_platform_admin=actor.is_platform_admin)
        admin = await service.is_admin(team, actor)
        view = messages.home_view(
            quota_lines=replies.quota_lines(report) or [replies.NO_LIMITS],
            settings_lines=await self.admin_commands.settings_lines(team) if admin else None,
            catalog=self._app.catalog,
        )
        try:
            await self.client.views_publish(user_id=user, view=view)
        except (SlackApiError, *SLACK_ERRORS) as exc:
            log.warning("Slack: could not publish App Home: %s", type(exc).__name__)
