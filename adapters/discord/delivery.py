"""Discord's DeliveryPort: edits the deferred interaction response through the interaction's
webhook, or, once the 15-minute interaction token is gone, posts in the channel with the bot token
and mentions the requester (never for personal use or a private image: those wait in /history). All through discord.py, logged in without the gateway, so any worker
process delivers."""

from __future__ import annotations

import asyncio
import io
import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

import aiohttp
import discord
from PIL import Image

from adapters.discord import messages
from adapters.discord.components import result_view
from adapters.discord.login import DiscordLogin
from bot.domain.catalog import Catalog
from bot.domain.clock import Clock
from bot.domain.errors import ConfigError, DeliveryError, InvalidImage
from bot.domain.models import Job, JobStatus
from bot.domain.personal import is_personal
from bot.media import images
from bot.ports import OutImage, Progress

log = logging.getLogger(__name__)

PLATFORM = "discord"
DISCORD_EPOCH_MS = 1_420_070_400_000
TOKEN_LIFETIME = 15 * 60.0
# Stop using the token a little early: an upload started at 14:59 would end after expiry.
TOKEN_MARGIN = 30.0
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
# Multipart framing and the JSON part travel in the same request as the file.
UPLOAD_OVERHEAD = 16 * 1024
FINISHED_MEMORY = 10_000
# Progress edits within this many seconds of the token's end announce the channel post instead.
LATE_NOTICE = 90.0

# Keys of ReplyTarget.data (the interaction token is a credential: never logged).
APPLICATION_ID = "application_id"
INTERACTION_ID = "interaction_id"
INTERACTION_TOKEN = "interaction_token"  # noqa: S105 - a key name, not a secret
SIZE_LIMIT = "size_limit"
# Set when the deferral was ephemeral. A job made private later (by the user's /prefer) on a
# public deferral gets its image as an ephemeral follow-up instead of in that public message.
EPHEMERAL_ACK = "ephemeral_ack"

# Discord's id of an interaction's original response in webhook message routes; discord.py puts
# the id into the route as given (typed ``int`` there, as ordinary message ids are).
ORIGINAL: Final = cast(int, "@original")
# Discord answers 401 "Invalid Webhook Token" (50027) once an interaction token has expired,
# and 404 "Unknown Webhook" / "Unknown Message" when the original response is gone.
INVALID_WEBHOOK_TOKEN = 50027
UNKNOWN_WEBHOOK = 10015
UNKNOWN_MESSAGE = 10008
NO_MENTIONS = discord.AllowedMentions.none()
# What discord.py raises when Discord cannot be reached: aiohttp's errors, sockets, timeouts.
UNREACHABLE = (aiohttp.ClientError, OSError, TimeoutError)
# Failures without an HTTP answer of Discord's: no login, a rate limit too long to wait out.
NOT_ANSWERED = (discord.RateLimited, discord.LoginFailure, ConfigError, *UNREACHABLE)


def snowflake_time(snowflake: str | int) -> float:
    """Seconds since the epoch at which a Discord id was made."""
    return ((int(snowflake) >> 22) + DISCORD_EPOCH_MS) / 1000.0


@dataclass(frozen=True)
class Upload:
    """An image as it will be uploaded; a new ``discord.File`` is made of it for every request."""

    filename: str
    data: bytes

    def file(self) -> discord.File:
        return discord.File(io.BytesIO(self.data), filename=self.filename)


class DiscordDelivery:
    def __init__(self, login: DiscordLogin, *, catalog: Catalog, clock: Clock) -> None:
        self._login = login
        self._catalog = catalog
        self._clock = clock
        # Jobs whose outcome this process has posted: a late "queued" edit must not cover it.
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

    async def show_queued(self, job: Job, position: int) -> None:
        """The adapter's first edit of the deferred response, unless the outcome came first."""
        async with self._lock(job.id):
            if job.id in self._finished:
                return
            try:
                await self.progress(job, Progress("queued", queue_position=position))
            except DeliveryError as exc:
                log.info("job %s: could not show the queue position: %s", job.id, exc)
        lock = self._locks.get(job.id)
        if lock is not None and not lock.locked():
            # The job may be delivered by another process; keep no lock for it here.
            self._locks.pop(job.id, None)

    # DeliveryPort --------------------------------------------------------------------------------

    async def progress(self, job: Job, progress: Progress) -> None:
        token = self._live_token(job)
        if token is None or _private_on_public_ack(job):
            return
        if self._token_left(job) < LATE_NOTICE:
            # The last edit this token allows: say where the image will appear instead.
            content = (
                messages.late_history_text(job)
                if _interaction_only(job)
                else messages.late_text(job)
            )
        elif progress.stage == "queued":
            content = messages.queued_text(job, progress.queue_position or 0)
        else:
            variant = self._catalog.variants.get(job.variant)
            label = variant.label if variant else job.variant
            content = messages.generating_text(job, progress.elapsed, label)
        try:
            webhook = await self._interaction(job, token)
            await webhook.edit_message(ORIGINAL, content=content, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as exc:
            if not _token_gone(exc):
                raise _delivery_error("edit_original_response", exc) from None
        except NOT_ANSWERED as exc:
            raise _other_error("edit_original_response", exc) from None

    async def deliver(self, job: Job, images_out: Sequence[OutImage]) -> Mapping[str, Any]:
        async with self._lock(job.id):
            receipt = await self._deliver(job, images_out)
            self._mark_finished(job.id)
            return receipt

    async def _deliver(self, job: Job, images_out: Sequence[OutImage]) -> Mapping[str, Any]:
        limit = _upload_limit(job)
        uploads = [await _fit(image, limit) for image in images_out[:10]]
        token = self._live_token(job)
        operation = "edit_original_response"
        try:
            if token is not None and _private_on_public_ack(job):
                operation = "create_followup_message"
                try:
                    webhook = await self._interaction(job, token)
                    followup = await webhook.send(
                        embed=self._result_embed(job, uploads),
                        files=[upload.file() for upload in uploads],
                        view=result_view(job),
                        ephemeral=True,
                        allowed_mentions=NO_MENTIONS,
                        wait=True,
                    )
                    return _receipt(followup, "followup")
                except discord.HTTPException as exc:
                    if not _token_gone(exc):
                        raise
            elif token is not None:
                try:
                    webhook = await self._interaction(job, token)
                    message: discord.Message = await webhook.edit_message(
                        ORIGINAL,
                        content=None,
                        embed=self._result_embed(job, uploads),
                        attachments=[upload.file() for upload in uploads],
                        view=result_view(job),
                        allowed_mentions=NO_MENTIONS,
                    )
                    return _receipt(message, "interaction")
                except discord.HTTPException as exc:
                    if not _token_gone(exc):
                        raise
                    log.info("job %s: interaction token gone; posting in the channel", job.id)
            if _interaction_only(job):
                # No channel to post in (or the image is private): it waits in /history.
                log.info("job %s: interaction token gone; the image is left in /history", job.id)
                return {"via": "history"}
            operation = "create_message"
            uploads = await asyncio.to_thread(_refit, uploads, min(limit, DEFAULT_UPLOAD_LIMIT))
            channel = await self._channel(job)
            message = await channel.send(
                content=f"<@{job.user_id}> your image is ready.",
                embed=self._result_embed(job, uploads),
                files=[upload.file() for upload in uploads],
                view=result_view(job),
                allowed_mentions=messages.mention_only(job.user_id),
            )
            return _receipt(message, "channel")
        except discord.HTTPException as exc:
            raise _delivery_error(operation, exc) from None
        except NOT_ANSWERED as exc:
            raise _other_error(operation, exc) from None

    def _result_embed(self, job: Job, uploads: Sequence[Upload]) -> discord.Embed:
        first = uploads[0]
        _, width, height = images.inspect(first.data)
        return messages.result_embed(
            job,
            self._catalog,
            filename=first.filename,
            size=(width, height),
            seconds=max(0.0, self._clock.now() - job.created_at),
        )

    async def notify_failure(self, job: Job) -> None:
        async with self._lock(job.id):
            await self._notify_failure(job)
            self._mark_finished(job.id)

    async def _notify_failure(self, job: Job) -> None:
        text = messages.failure_text(job)
        token = self._live_token(job)
        operation = "delete_original_response"
        try:
            if token is not None:
                webhook = await self._interaction(job, token)
                try:
                    # The deferred response is public; the reason goes to the requester only.
                    await webhook.delete_message(ORIGINAL)
                except discord.HTTPException as exc:
                    if not _token_gone(exc):
                        raise
                operation = "create_followup_message"
                try:
                    await webhook.send(
                        f"⚠️ {text}", ephemeral=True, allowed_mentions=NO_MENTIONS, wait=True
                    )
                    return
                except discord.HTTPException as exc:
                    if not _token_gone(exc):
                        raise
            if job.status is JobStatus.CANCELLED or _interaction_only(job):
                # Cancelled by the requester (or a moderator): no need to tell the channel.
                # Personal or private: never in a channel; /history shows the outcome.
                return
            operation = "create_message"
            channel = await self._channel(job)
            await channel.send(
                f"<@{job.user_id}> ⚠️ {text}",
                allowed_mentions=messages.mention_only(job.user_id),
            )
        except discord.HTTPException as exc:
            raise _delivery_error(operation, exc) from None
        except NOT_ANSWERED as exc:
            raise _other_error(operation, exc) from None

    # ---------------------------------------------------------------------------------------------

    async def _interaction(self, job: Job, token: str) -> discord.Webhook:
        """The interaction's webhook (its token is the credential), on the logged-in client."""
        client = await self._login.logged_in()
        data = job.request.reply.data
        webhook = discord.Webhook.partial(int(data[APPLICATION_ID]), token, client=client)
        # An interaction's webhook is an application webhook (as discord.py's own
        # ``Interaction.followup`` makes it), the kind that may send ephemeral messages.
        webhook.type = discord.WebhookType.application
        return webhook

    async def _channel(self, job: Job) -> discord.PartialMessageable:
        client = await self._login.logged_in()
        reply = job.request.reply
        return client.get_partial_messageable(int(reply.thread_id or reply.channel_id))

    def _lock(self, job_id: str) -> asyncio.Lock:
        lock = self._locks.get(job_id)
        if lock is None:
            lock = self._locks[job_id] = asyncio.Lock()
        return lock

    def _mark_finished(self, job_id: str) -> None:
        self._locks.pop(job_id, None)
        self._finished[job_id] = None
        while len(self._finished) > FINISHED_MEMORY:
            self._finished.popitem(last=False)

    def _token_left(self, job: Job) -> float:
        interaction_id = job.request.reply.data.get(INTERACTION_ID)
        if not interaction_id:
            return 0.0
        return snowflake_time(interaction_id) + TOKEN_LIFETIME - TOKEN_MARGIN - self._clock.now()

    def _live_token(self, job: Job) -> str | None:
        data = job.request.reply.data
        token = data.get(INTERACTION_TOKEN)
        if not token or not data.get(INTERACTION_ID) or not data.get(APPLICATION_ID):
            return None
        if self._token_left(job) < 0:
            return None
        return token


def _private_on_public_ack(job: Job) -> bool:
    return job.request.private and not job.request.reply.data.get(EPHEMERAL_ACK)


def _interaction_only(job: Job) -> bool:
    """Outcomes of personal use (the bot may not post in a DM or a server without it) and of
    private requests go through the interaction only, never into a channel."""
    return job.request.private or is_personal(job.community_id)


def _token_gone(exc: discord.HTTPException) -> bool:
    """The interaction token expired or its message is gone: post in the channel instead."""
    return exc.status == 401 or exc.code in (
        INVALID_WEBHOOK_TOKEN,
        UNKNOWN_WEBHOOK,
        UNKNOWN_MESSAGE,
    )


def _delivery_error(operation: str, exc: discord.HTTPException) -> DeliveryError:
    # Only status and code: the interaction token is in the URL, which stays out of messages.
    code = f" (code {exc.code})" if exc.code else ""
    return DeliveryError(
        f"{operation}: HTTP {exc.status}{code}", retryable=exc.status == 429 or exc.status >= 500
    )


def _other_error(operation: str, exc: Exception) -> DeliveryError:
    """A failure without an answer of Discord's (one of NOT_ANSWERED) as the worker's error."""
    if isinstance(exc, discord.RateLimited):
        return DeliveryError(f"{operation}: rate limited for {exc.retry_after:.0f} s")
    if isinstance(exc, ConfigError):
        return DeliveryError(f"{operation}: {exc}", retryable=False)
    if isinstance(exc, discord.LoginFailure):
        return DeliveryError(f"{operation}: Discord refused DISCORD_TOKEN", retryable=False)
    # Only the type: aiohttp's messages carry the URL, and with it the interaction token.
    return DeliveryError(f"{operation}: {type(exc).__name__}")


def _upload_limit(job: Job) -> int:
    raw = job.request.reply.data.get(SIZE_LIMIT)
    try:
        return int(raw) if raw else DEFAULT_UPLOAD_LIMIT
    except ValueError:
        return DEFAULT_UPLOAD_LIMIT


def _receipt(message: discord.Message, via: str) -> dict[str, Any]:
    return {"via": via, "message_id": str(message.id), "channel_id": str(message.channel.id)}


async def _fit(image: OutImage, limit: int) -> Upload:
    budget = max(64 * 1024, limit - UPLOAD_OVERHEAD)
    if len(image.data) <= budget:
        return Upload(image.filename, image.data)
    return await asyncio.to_thread(_refit_one, Upload(image.filename, image.data), budget)


def _refit_one(upload: Upload, budget: int) -> Upload:
    try:
        with Image.open(io.BytesIO(upload.data)) as img:
            img.load()
            fitted = images.fit(img.copy(), budget)
    except OSError as exc:
        raise InvalidImage(f"cannot re-encode: {type(exc).__name__}") from None
    stem = upload.filename.rsplit(".", 1)[0]
    return Upload(f"{stem}.{fitted.extension}", fitted.data)


def _refit(uploads: Sequence[Upload], limit: int) -> list[Upload]:
    budget = max(64 * 1024, limit - UPLOAD_OVERHEAD)
    return [u if len(u.data) <= budget else _refit_one(u, budget) for u in uploads]
