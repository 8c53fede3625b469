"""Bolt listeners for /imagine, the buttons under an image, the edit modal and /imagine-admin.

Each listener acks from the request alone and hands the work (storing the job, asking who is an
admin, replying) to a background task, so Slack's three-second window is never at risk.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.errors import SlackApiError

from adapters.slack import messages
from adapters.slack.admin import AdminCommands, AdminGate
from adapters.slack.clients import NotInstalled, SlackClients
from adapters.slack.delivery import (
    CANNOT_POST,
    PLATFORM,
    SLACK_ERRORS,
    ProgressBoard,
    SlackDelivery,
)
from adapters.slack.files import SlackFiles
from adapters.slack.payloads import (
    Action,
    BlockActions,
    SlashCommand,
    View,
    ViewSubmission,
    team_of,
    text,
)
from adapters.slack.personal import RERUN, PersonalCommands, subcommand
from adapters.slack.replies import Message, Replies
from adapters.slack.requests import slack_request
from adapters.slack.tasks import BackgroundWork
from bot.domain.errors import (
    DownloadRefused,
    InvalidImage,
    InvalidRequest,
    JobNotFound,
    RequestRejected,
)
from bot.domain.models import ImagineRequest, Job, JobStatus
from bot.jobs.service import ImagineService
from bot.text import replies
from bot.text.flags import ImagineArgs, parse_imagine

log = logging.getLogger("adapters.slack.adapter")


class CommandHandlers:
    """/imagine, the buttons, the edit modal and /imagine-admin, as Bolt listeners."""

    def __init__(
        self,
        service: ImagineService,
        clients: SlackClients,
        replies_: Replies,
        delivery: SlackDelivery,
        board: ProgressBoard,
        files: SlackFiles,
        admins: AdminGate,
        admin_commands: AdminCommands,
        work: BackgroundWork,
    ) -> None:
        self._service = service
        self._clients = clients
        self._replies = replies_
        self._delivery = delivery
        self._board = board
        self._files = files
        self._admins = admins
        self._admin_commands = admin_commands
        self._work = work
        self.personal = PersonalCommands(service)

    def register(self, bolt: AsyncApp) -> None:
        bolt.command("/imagine")(self.on_imagine)
        bolt.command("/imagine-admin")(self.on_admin)
        bolt.action(re.compile(r"^imagine:"))(self.on_button)
        bolt.view(messages.EDIT_CALLBACK)(self.on_edit_submit)

    async def tell(
        self,
        team: str,
        response_url: str,
        channel: str,
        user: str,
        message: Message,
        *,
        thread_ts: str | None = None,
    ) -> None:
        await self._replies.tell(team, response_url, channel, user, message, thread_ts=thread_ts)

    # /imagine ---------------------------------------------------------------------------------

    async def on_imagine(self, ack: AsyncAck, command: SlashCommand) -> None:
        sub = subcommand(text(command.get("text")))
        if sub is not None:
            await ack()
            self._work.spawn(self._personal_command(command, *sub), sub[0])
            return
        try:
            args = parse_imagine(text(command.get("text")))
            request = self._imagine_request(command, args)
        except InvalidRequest as exc:
            await ack(**messages.refusal(exc.user_message))
            return
        if args.help or not args.prompt:
            await ack(**messages.ephemeral(messages.HELP))
            return
        await ack(**messages.ack_queued(args.prompt, private=args.private))
        self._work.spawn(self.imagine(request, args), "imagine")

    def _imagine_request(self, command: SlashCommand, args: ImagineArgs) -> ImagineRequest:
        """The request without its input images (stored after the ack) and admin flag."""
        return slack_request(
            args,
            team=text(command.get("team_id")),
            channel=text(command.get("channel_id")),
            user=text(command.get("user_id")),
            thread=text(command.get("thread_ts")) or None,
            response_url=text(command.get("response_url")),
            dedupe=text(command.get("trigger_id")) or None,
        )

    async def imagine(self, request: ImagineRequest, args: ImagineArgs) -> None:
        """Store the input images, then the job; the user sees the queued message or why not."""
        user = request.user_id
        channel = request.channel_id
        team = request.community_id
        thread = request.reply.thread_id
        response_url = str(request.reply.data.get("response_url", ""))
        try:
            token = await self._clients.token_for(team) if args.images else None
            inputs = await self._files.store_inputs(args.images, token=token)
        except (DownloadRefused, NotInstalled) as exc:
            refusal = messages.refusal(str(exc))
            await self.tell(team, response_url, channel, user, refusal, thread_ts=thread)
            return
        except InvalidImage as exc:
            refusal = messages.refusal(f"That Slack file is not a usable image: {exc}.")
            await self.tell(team, response_url, channel, user, refusal, thread_ts=thread)
            return
        request = request.with_changes(
            input_images=inputs,
            user_is_admin=await self.is_admin(team, user),
        )
        await self.submit(request, self._service.imagine, response_url, channel, user)

    async def submit(
        self,
        request: ImagineRequest,
        call: Callable[[ImagineRequest], Awaitable[Any]],
        response_url: str,
        channel: str,
        user: str,
    ) -> None:
        """Store the job (or learn why not) and show the outcome: progress message or refusal."""
        key = f"{PLATFORM}:{request.dedupe_key}" if request.dedupe_key else None

        async def say(message: Message) -> None:
            team, thread = request.community_id, request.reply.thread_id
            await self.tell(team, response_url, channel, user, message, thread_ts=thread)

        if key:
            self._board.expect(key)
        try:
            accepted = await call(request)
        except RequestRejected as exc:
            if key:
                self._board.forget(key)
            await say(messages.refusal(exc.user_message))
            return
        except Exception as exc:  # the store or the service failed: say so, never stay silent
            if key:
                self._board.forget(key)
            log.warning("Slack: a command failed: %s", type(exc).__name__, exc_info=exc)
            await say(messages.refusal(replies.SOMETHING_WRONG))
            return
        if accepted.duplicate:
            return
        problem = await self._delivery.post_queued(accepted.job, accepted.position)
        if problem in CANNOT_POST:
            # The image could never be posted here: say so now instead of failing later.
            await self._service.cancel(accepted.job.id, user_id=request.user_id)
            await say(messages.refusal(messages.CANNOT_POST))

    async def _personal_command(self, command: SlashCommand, name: str, rest: str) -> None:
        """``/imagine history`` and ``/imagine prefer``, answered ephemerally."""
        user = text(command.get("user_id"))
        try:
            reply = await self.personal.run(user, name, rest)
        except RequestRejected as exc:
            reply = messages.refusal(exc.user_message)
        except Exception as exc:  # the store or the service failed: say so, never stay silent
            log.warning("Slack: /imagine %s failed: %s", name, type(exc).__name__, exc_info=exc)
            reply = messages.refusal(replies.SOMETHING_WRONG)
        await self.tell(
            text(command.get("team_id")),
            text(command.get("response_url")),
            text(command.get("channel_id")),
            user,
            reply,
        )

    # Buttons and the edit modal ---------------------------------------------------------------

    async def on_button(self, ack: AsyncAck, body: BlockActions, action: Action) -> None:
        parsed = messages.parse_action_id(text(action.get("action_id")))
        await ack()
        if parsed is not None:
            self._work.spawn(self._button(body, *parsed), parsed[0])

    async def _button(self, body: BlockActions, verb: str, job_id: str) -> None:
        user = text((body.get("user") or {}).get("id"))
        team = team_of(body)
        container = body.get("container") or {}
        message = body.get("message") or {}
        channel = text((body.get("channel") or {}).get("id")) or text(container.get("channel_id"))
        thread_ts = text(container.get("thread_ts")) or text(message.get("thread_ts")) or None
        response_url = text(body.get("response_url"))
        trigger = text(body.get("trigger_id")) or None
        job = await self._job_of_team(job_id, team, response_url, channel, user)
        if job is None:
            return
        if verb == "delete":
            await self._delete(job, team, user, channel, response_url)
            return
        if verb == "cancel":
            await self._cancel(job, team, user, channel, text(message.get("ts")), response_url)
            return
        if verb == "edit":
            thread_ts = thread_ts or text(message.get("ts")) or None
            metadata = {"job": job.id, "channel": channel, "thread_ts": thread_ts or ""}
            try:
                client = await self._clients.for_team(team)
                await client.views_open(
                    trigger_id=trigger or "", view=messages.edit_modal(job, metadata)
                )
            except (NotInstalled, SlackApiError, *SLACK_ERRORS) as exc:
                log.warning("Slack: could not open the edit modal: %s", type(exc).__name__)
                await self.tell(
                    team,
                    response_url,
                    channel,
                    user,
                    messages.refusal("The editor could not open."),
                )
            return
        if verb == RERUN:
            # From the user's (ephemeral) history: the new image goes to their DM, theirs only.
            request = _follow_up_request(team, channel, thread_ts, user, trigger, response_url)
            request = request.with_changes(private=True)

            async def rerun(r: ImagineRequest) -> Any:
                return await self._service.rerun(job.id, r)

            await self.submit(await self._with_admin(request), rerun, response_url, channel, user)
            return
        # The result goes in the thread of the image it came from.
        thread_ts = thread_ts or text(message.get("ts")) or None
        request = _follow_up_request(team, channel, thread_ts, user, trigger, response_url)
        action, image = follow_up_of(verb)

        async def call(r: ImagineRequest) -> Any:
            return await self._service.follow_up(job.id, action, r, image=image)

        await self.submit(await self._with_admin(request), call, response_url, channel, user)

    async def on_edit_submit(self, ack: AsyncAck, body: ViewSubmission, view: View) -> None:
        values = (view.get("state") or {}).get("values") or {}
        prompt = text(
            ((values.get(messages.EDIT_BLOCK) or {}).get(messages.EDIT_INPUT) or {}).get("value")
        )
        if not prompt.strip():
            await ack(
                response_action="errors", errors={messages.EDIT_BLOCK: "Describe the change."}
            )
            return
        chosen = (values.get(messages.EDIT_IMAGE_BLOCK) or {}).get(messages.EDIT_IMAGE_INPUT) or {}
        number = text((chosen.get("selected_option") or {}).get("value")) or "1"
        if not number.isdigit():
            await ack(
                response_action="errors", errors={messages.EDIT_IMAGE_BLOCK: "Pick an image."}
            )
            return
        await ack()
        self._work.spawn(self._edit(body, view, prompt.strip(), int(number)), "edit")

    async def _edit(self, body: ViewSubmission, view: View, prompt: str, image: int) -> None:
        try:
            metadata = json.loads(text(view.get("private_metadata")) or "{}")
        except ValueError:
            return
        if not isinstance(metadata, dict):
            return
        user = text((body.get("user") or {}).get("id"))
        team = team_of(body)
        channel = text(metadata.get("channel"))
        trigger = text(body.get("trigger_id")) or text(view.get("id")) or None
        job = await self._job_of_team(text(metadata.get("job")), team, "", channel, user)
        if job is None:
            return
        request = _follow_up_request(
            team, channel, text(metadata.get("thread_ts")) or None, user, trigger, ""
        )

        async def call(r: ImagineRequest) -> Any:
            return await self._service.follow_up(job.id, "edit", r, prompt=prompt, image=image)

        await self.submit(await self._with_admin(request), call, "", channel, user)

    async def _job_of_team(
        self, job_id: str, team: str, response_url: str, channel: str, user: str
    ) -> Job | None:
        """The job a button or modal names, if it belongs to this workspace; else say so."""
        try:
            job = await self._service.job(job_id)
            if job.community_id == team:
                return job
        except JobNotFound:
            pass
        await self.tell(team, response_url, channel, user, messages.refusal(replies.JOB_UNKNOWN))
        return None

    async def _with_admin(self, request: ImagineRequest) -> ImagineRequest:
        return request.with_changes(
            user_is_admin=await self.is_admin(request.community_id, request.user_id)
        )

    async def is_admin(self, team: str, user: str) -> bool:
        try:
            return await self._admins.is_admin(team, user)
        except Exception as exc:  # an admin flag is a bonus; the request goes on without it
            log.warning("Slack: admin check failed: %s", type(exc).__name__)
            return False

    async def _requester_or_admin(
        self, job: Job, team: str, user: str, channel: str, response_url: str, action: str
    ) -> bool:
        """Whether ``user`` asked for the job or is an admin here; else they are told."""
        if job.user_id == user:
            return True
        try:
            await self._service.require_admin(team, await self._admins.actor(team, user), action)
        except RequestRejected:
            await self.tell(
                team, response_url, channel, user, messages.refusal(replies.MODERATORS_ONLY)
            )
            return False
        return True

    async def _cancel(
        self, job: Job, team: str, user: str, channel: str, ts: str, response_url: str
    ) -> None:
        """Cancel a queued or generating job; its progress message says so, nothing is posted."""
        if not await self._requester_or_admin(job, team, user, channel, response_url, "cancel_job"):
            return
        cancelled = await self._service.cancel(job.id, user_id=user, is_admin=True)
        if cancelled.status is not JobStatus.CANCELLED:
            await self.tell(
                team, response_url, channel, user, messages.refusal(replies.NOT_CANCELLABLE)
            )
            return
        if not ts:
            return
        try:
            client = await self._clients.for_team(team)
            await client.chat_update(
                channel=channel, ts=ts, text=messages.cancelled_text(cancelled), blocks=[]
            )
        except (NotInstalled, SlackApiError, *SLACK_ERRORS) as exc:
            log.warning("Slack: job %s cancelled; its message not updated: %s", job.id, exc)

    async def _delete(
        self, job: Job, team: str, user: str, channel: str, response_url: str
    ) -> None:
        if not await self._requester_or_admin(
            job, team, user, channel, response_url, "delete_image"
        ):
            return
        # Its buttons answer "deleted" from now on (and a job still running ends).
        await self._service.delete(job.id, user_id=user, is_admin=True)
        where = text(job.delivery.get("channel")) or job.request.reply.channel_id
        try:
            client = await self._clients.for_team(team)
            for file_id in job.delivery.get("files") or []:
                await client.files_delete(file=str(file_id))
            ts = text(job.delivery.get("ts"))
            if ts:
                await client.chat_delete(channel=where, ts=ts)
        except (NotInstalled, SlackApiError, *SLACK_ERRORS) as exc:
            log.warning("Slack: deleting job %s's image failed: %s", job.id, type(exc).__name__)
            await self.tell(
                team,
                response_url,
                channel,
                user,
                messages.refusal("The image could not be deleted."),
            )
            return
        await self.tell(team, response_url, channel, user, messages.ephemeral("Deleted."))

    # /imagine-admin ---------------------------------------------------------------------------

    async def on_admin(self, ack: AsyncAck, command: SlashCommand) -> None:
        await ack()
        self._work.spawn(self._admin(command), "admin")

    async def _admin(self, command: SlashCommand) -> None:
        team = text(command.get("team_id"))
        user = text(command.get("user_id"))
        reply = await self._admin_commands.run(team, user, text(command.get("text")))
        await self.tell(
            team,
            text(command.get("response_url")),
            text(command.get("channel_id")),
            user,
            messages.ephemeral(reply),
        )


def follow_up_of(verb: str) -> tuple[str, int]:
    """A button's verb as the core's follow-up and image number: ``u2`` upscales image 2, ``v3``
    varies image 3; the buttons of an upscale (one image) and older buttons act on image 1."""
    if verb[0] in "uv" and verb[1:].isdigit():
        return ("upscale" if verb[0] == "u" else "vary"), int(verb[1:])
    return {"vary-subtle": "vary"}.get(verb, verb), 1


def _follow_up_request(
    team: str,
    channel: str,
    thread_ts: str | None,
    user: str,
    trigger: str | None,
    response_url: str,
) -> ImagineRequest:
    """A follow-up's request: the job supplies prompt and options, this says who and where."""
    return slack_request(
        ImagineArgs(""),
        team=team,
        channel=channel,
        user=user,
        thread=thread_ts,
        response_url=response_url,
        dedupe=trigger,
    )
