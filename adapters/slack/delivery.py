"""Slack's delivery port: a progress message updated in place, the image uploaded with the
``files_upload_v2`` flow, and the result card with its buttons. REST only, so any worker delivers."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import messages
from bot.domain.catalog import Catalog
from bot.domain.errors import DeliveryError, JobNotFound
from bot.domain.models import Job
from bot.ops import metrics
from bot.ports import OutImage, Progress

log = logging.getLogger(__name__)

PLATFORM = "slack"
# Errors worth trying again later; anything else (channel_not_found, not_in_channel, ...) is final.
RETRYABLE_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
# Errors that mean the bot cannot post in the channel at all (it must be invited first).
CANNOT_POST = frozenset(
    {
        "not_in_channel",
        "channel_not_found",
        "is_archived",
        "restricted_action",
        "cannot_reply_to_message",
    }
)
# Slack allows about one chat.update per second per channel (Tier 3 per workspace): a job's
# "generating" message is refreshed at most this often, whatever the worker's pace.
PROGRESS_EVERY_SECONDS = 15.0
# How long a worker waits for the command handler to post the "queued" message of a new job.
BOARD_WAIT_SECONDS = 10.0
# How often a worker in another process than the command handler looks for that message.
RECORD_POLL_SECONDS = 0.2
# The key of a job's delivery data holding its progress message's ts, so that any process
# updates that message; "" when the command handler could not post one.
PROGRESS_TS = "progress_ts"


class SlackDeliveryError(DeliveryError):
    """A delivery Slack refused or could not take; ``code`` is Slack's error (``not_in_channel``)."""

    def __init__(self, message: str, *, retryable: bool = True, code: str | None = None) -> None:
        super().__init__(message, retryable=retryable)
        self.code = code


def delivery_error(exc: Exception, what: str) -> SlackDeliveryError:
    """A Slack or network failure as the core's DeliveryError (never carrying a token)."""
    if isinstance(exc, SlackApiError):
        code = str(exc.response.get("error", "")) if exc.response is not None else ""
        status = exc.response.status_code if exc.response is not None else 0
        if status == 429:
            metrics.rate_limited("slack")
        retryable = code in RETRYABLE_ERRORS or status == 429 or status >= 500
        return SlackDeliveryError(
            f"Slack refused {what}: {code or status}", retryable=retryable, code=code or None
        )
    return SlackDeliveryError(f"Slack could not be reached for {what}: {type(exc).__name__}")


SLACK_ERRORS = (SlackClientError, aiohttp.ClientError, TimeoutError)


class ProgressBoard:
    """Which message shows each job's progress, as far as this process knows.

    The command handler posts a job's "queued" message once the job is stored; a worker in the same
    process that reaches the job first waits for that message instead of posting a second one.
    (Workers in other processes find it recorded with the job.) Keys are the job's dedupe key
    (the Slack trigger id), known before the job exists."""

    def __init__(self, limit: int = 10_000) -> None:
        self._limit = limit
        self._entries: OrderedDict[str, asyncio.Future[str | None]] = OrderedDict()

    def expect(self, key: str) -> None:
        if key not in self._entries:
            self._entries[key] = asyncio.get_running_loop().create_future()
            while len(self._entries) > self._limit:
                _, old = self._entries.popitem(last=False)
                if not old.done():
                    old.set_result(None)

    def settle(self, key: str, ts: str | None) -> None:
        future = self._entries.get(key)
        if future is None:
            self.expect(key)
            future = self._entries[key]
        if future.done():
            if ts is not None:
                self._entries[key] = asyncio.get_running_loop().create_future()
                self._entries[key].set_result(ts)
        else:
            future.set_result(ts)

    def expects(self, key: str) -> bool:
        """Whether this process posts, or has posted, the key's progress message."""
        return key in self._entries

    async def ts_for(self, key: str, timeout: float = BOARD_WAIT_SECONDS) -> str | None:
        future = self._entries.get(key)
        if future is None:
            return None
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            return None

    def forget(self, key: str) -> None:
        future = self._entries.pop(key, None)
        if future is not None and not future.done():
            future.set_result(None)


def board_key(job: Job) -> str:
    return job.request.dedupe_key or job.id


class JobNotes(Protocol):
    """Where delivery reads a job as stored and records its progress message (the core service)."""

    async def job(self, job_id: str) -> Job: ...

    async def note_delivery(self, job_id: str, values: Mapping[str, Any]) -> bool: ...


class SlackDelivery:
    def __init__(
        self,
        client: AsyncWebClient,
        catalog: Catalog,
        board: ProgressBoard,
        notes: JobNotes,
        now: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._client = client
        self._catalog = catalog
        self._board = board
        self._notes = notes
        self._now = now
        self._sleep = sleep
        self._last_progress: dict[str, tuple[str, float]] = {}
        # The bot's DM with each user of a private job (conversations.open answers the same one).
        self._dms: OrderedDict[str, str] = OrderedDict()

    async def _where(self, job: Job) -> tuple[str, str | None]:
        """Channel and thread of a job's messages: the request's, or for a private job the
        user's DM with the bot, so nobody else ever sees it."""
        reply = job.request.reply
        if not job.request.private:
            return reply.channel_id, reply.thread_id
        dm = self._dms.get(job.user_id)
        if dm is None:
            try:
                # https://api.slack.com/methods/conversations.open: ``users`` opens (or finds)
                # the DM and answers ``channel.id``; needs im:write.
                opened = await self._client.conversations_open(users=job.user_id)
            except SLACK_ERRORS as exc:
                raise delivery_error(exc, "opening the DM") from None
            channel = opened.get("channel") or {}
            dm = str(channel.get("id", "")) if isinstance(channel, dict) else ""
            if not dm:
                raise SlackDeliveryError("Slack opened no DM channel", retryable=False)
            self._dms[job.user_id] = dm
            while len(self._dms) > 10_000:
                self._dms.popitem(last=False)
        return dm, None

    def _label(self, job: Job) -> str:
        variant = self._catalog.variants.get(job.variant)
        return variant.label if variant else job.variant

    async def post_queued(self, job: Job, position: int) -> str | None:
        """The progress message of a newly stored job (called by the command handler). Returns
        Slack's error code when it could not be posted (``not_in_channel``, ...), else None."""
        key = board_key(job)
        self._board.expect(key)
        ts: str | None = None
        problem: str | None = None
        try:
            ts = await self._post(job, messages.queued_text(job, self._label(job), position))
        except SlackDeliveryError as exc:
            log.warning("job %s: could not post the queued message: %s", job.id, exc)
            problem = exc.code or "unreachable"
        self._board.settle(key, ts)
        await self._record(job, ts or "")
        return problem

    async def progress(self, job: Job, progress: Progress) -> None:
        now = self._now()
        last = self._last_progress.get(job.id)
        if last and last[0] == progress.stage and now - last[1] < PROGRESS_EVERY_SECONDS:
            return
        self._last_progress[job.id] = (progress.stage, now)
        text = messages.generating_text(job, self._label(job), progress.elapsed)
        await self._show(job, text)

    async def deliver(self, job: Job, images: Sequence[OutImage]) -> Mapping[str, Any]:
        label = self._label(job)
        took = max(0.0, self._now() - job.created_at)
        uploads = [
            {
                "content": image.data,
                "filename": image.filename,
                "title": messages.short(job.request.prompt, 100),
                "alt_txt": messages.short(job.request.prompt, 1000),
            }
            for image in images
        ]
        channel, thread = await self._where(job)
        try:
            done = await self._client.files_upload_v2(
                file_uploads=uploads,
                channel=channel,
                thread_ts=thread,
                initial_comment=messages.upload_comment(job, label, took),
            )
        except SLACK_ERRORS as exc:
            raise delivery_error(exc, "the image upload") from None
        file_ids = [str(f.get("id")) for f in done.get("files") or [] if isinstance(f, dict)]
        # The image is posted: from here on nothing may raise, or a retry would post it twice.
        blocks = messages.result_blocks(job, label, took)
        fallback = f"{messages.escape(messages.short(job.request.prompt))} ({label})"
        ts, _ = await self._progress_ts(job, final=True)
        try:
            if ts is not None:
                await self._client.chat_update(channel=channel, ts=ts, text=fallback, blocks=blocks)
            else:
                ts = await self._post(job, fallback, blocks=blocks)
        except (DeliveryError, *SLACK_ERRORS) as exc:
            log.warning("job %s: image posted but its buttons were not: %s", job.id, exc)
        self._board.forget(board_key(job))
        self._last_progress.pop(job.id, None)
        return {
            "channel": channel,
            "thread_ts": thread,
            "ts": ts,
            "files": file_ids,
        }

    async def notify_failure(self, job: Job) -> None:
        await self._show(job, messages.failure_text(job), final=True)
        self._board.forget(board_key(job))
        self._last_progress.pop(job.id, None)

    async def _show(self, job: Job, text: str, *, final: bool = False) -> None:
        """Update the job's progress message, or post one when the job has none."""
        ts, settled = await self._progress_ts(job, final=final)
        if ts is not None:
            try:
                channel, _ = await self._where(job)
                await self._client.chat_update(channel=channel, ts=ts, text=text)
                return
            except SlackApiError as exc:
                if exc.response.get("error") != "message_not_found":
                    raise delivery_error(exc, "the progress update") from None
            except SLACK_ERRORS as exc:
                raise delivery_error(exc, "the progress update") from None
        elif not settled:
            return  # the command handler, in another process, is still posting it
        ts = await self._post(job, text)
        if not final:
            self._board.settle(board_key(job), ts)
            await self._record(job, ts or "")

    async def _progress_ts(self, job: Job, *, final: bool) -> tuple[str | None, bool]:
        """The ts of the job's progress message, and whether that is settled: False while the
        command handler may still post it. The last update of a job waits for it a while."""
        key = board_key(job)
        if self._board.expects(key):
            ts = await self._board.ts_for(key)
            if ts is not None:
                return ts, True
        for _ in range(int(BOARD_WAIT_SECONDS / RECORD_POLL_SECONDS) + 1):
            recorded = await self._recorded_ts(job)
            if recorded is not None:
                if recorded:
                    self._board.settle(key, recorded)
                return recorded or None, True
            if self._now() - job.created_at > BOARD_WAIT_SECONDS:
                return None, True  # long enough: the command handler is not going to post it
            if not final:
                return None, False
            await self._sleep(RECORD_POLL_SECONDS)
        return None, True

    async def _recorded_ts(self, job: Job) -> str | None:
        """The progress message's ts recorded with the job ("" for none); None if not yet."""
        ts = job.delivery.get(PROGRESS_TS)
        if isinstance(ts, str):
            return ts
        try:
            stored = await self._notes.job(job.id)
        except JobNotFound:
            return ""
        except Exception as exc:  # after an upload nothing may raise: post a message of our own
            log.warning("job %s: could not read its progress message: %s", job.id, exc)
            return ""
        ts = stored.delivery.get(PROGRESS_TS)
        return ts if isinstance(ts, str) else None

    async def _record(self, job: Job, ts: str) -> None:
        """Record the progress message with the job, for workers in other processes."""
        try:
            await self._notes.note_delivery(job.id, {PROGRESS_TS: ts})
        except Exception as exc:  # the message still works in this process; others post anew
            log.warning("job %s: could not record its progress message: %s", job.id, exc)

    async def _post(
        self, job: Job, text: str, *, blocks: list[dict[str, Any]] | None = None
    ) -> str | None:
        channel, thread = await self._where(job)
        try:
            response = await self._client.chat_postMessage(
                channel=channel,
                thread_ts=thread,
                text=text,
                blocks=blocks,
                unfurl_links=False,
                unfurl_media=False,
            )
        except SLACK_ERRORS as exc:
            raise delivery_error(exc, "the message") from None
        ts = response.get("ts")
        return str(ts) if ts else None
