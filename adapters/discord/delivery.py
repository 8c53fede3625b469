"""Discord's DeliveryPort: edits the deferred interaction response over REST, or, once the
15-minute interaction token is gone, posts in the channel with the bot token and mentions the
requester. Works in any worker process; needs no gateway connection."""

from __future__ import annotations

import asyncio
import io
import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from PIL import Image

from adapters.discord import messages
from adapters.discord.rest import DiscordHTTPError, DiscordRest, DiscordUnreachable, FilePart
from bot.catalog import Catalog
from bot.clock import Clock
from bot.delivery import OutImage, Progress
from bot.errors import DeliveryError, InvalidImage
from bot.media import images
from bot.models import Job, JobStatus

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


def snowflake_time(snowflake: str | int) -> float:
    """Seconds since the epoch at which a Discord id was made."""
    return ((int(snowflake) >> 22) + DISCORD_EPOCH_MS) / 1000.0


class DiscordDelivery:
    def __init__(self, rest: DiscordRest, *, catalog: Catalog, clock: Clock) -> None:
        self._rest = rest
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
        if token is None:
            return
        if progress.stage == "queued":
            payload = messages.queued_payload(job, progress.queue_position or 0)
        else:
            variant = self._catalog.variants.get(job.variant)
            label = variant.label if variant else job.variant
            payload = messages.generating_payload(job, progress.elapsed, label)
        if self._token_left(job) < LATE_NOTICE:
            # The last edit this token allows: say where the image will appear instead.
            payload = messages.late_payload(job)
        try:
            await self._rest.edit_original(_app_id(job), token, payload)
        except DiscordHTTPError as exc:
            if not exc.token_gone:
                raise _delivery_error(exc) from None
        except DiscordUnreachable as exc:
            raise DeliveryError(str(exc)) from None

    async def deliver(self, job: Job, images_out: Sequence[OutImage]) -> Mapping[str, Any]:
        async with self._lock(job.id):
            receipt = await self._deliver(job, images_out)
            self._mark_finished(job.id)
            return receipt

    async def _deliver(self, job: Job, images_out: Sequence[OutImage]) -> Mapping[str, Any]:
        limit = _upload_limit(job)
        files = [await _fit(image, limit) for image in images_out[:10]]
        token = self._live_token(job)
        try:
            if token is not None:
                try:
                    message = await self._rest.edit_original(
                        _app_id(job), token, self._result_payload(job, files), files
                    )
                    return _receipt(message, "interaction")
                except DiscordHTTPError as exc:
                    if not exc.token_gone:
                        raise
                    log.info("job %s: interaction token gone; posting in the channel", job.id)
            files = await asyncio.to_thread(_refit, files, min(limit, DEFAULT_UPLOAD_LIMIT))
            payload = self._result_payload(job, files)
            payload["content"] = f"<@{job.user_id}> your image is ready."
            payload["allowed_mentions"] = {"parse": [], "users": [job.user_id]}
            message = await self._rest.create_message(_channel(job), payload, files)
            return _receipt(message, "channel")
        except DiscordHTTPError as exc:
            raise _delivery_error(exc) from None
        except DiscordUnreachable as exc:
            raise DeliveryError(str(exc)) from None

    def _result_payload(self, job: Job, files: Sequence[FilePart]) -> dict[str, Any]:
        first = files[0]
        _, width, height = images.inspect(first.data)
        embed = messages.result_embed(
            job,
            self._catalog,
            filename=first.filename,
            size=(width, height),
            seconds=max(0.0, self._clock.now() - job.created_at),
        )
        return {
            "content": "",
            "embeds": [embed],
            "components": messages.result_buttons(job),
            "allowed_mentions": dict(messages.NO_MENTIONS),
        }

    async def notify_failure(self, job: Job) -> None:
        async with self._lock(job.id):
            await self._notify_failure(job)
            self._mark_finished(job.id)

    async def _notify_failure(self, job: Job) -> None:
        text = messages.failure_text(job)
        token = self._live_token(job)
        try:
            if token is not None:
                try:
                    # The deferred response is public; the reason goes to the requester only.
                    await self._rest.delete_original(_app_id(job), token)
                except DiscordHTTPError as exc:
                    if not exc.token_gone:
                        raise
                try:
                    await self._rest.follow_up(
                        _app_id(job),
                        token,
                        {
                            "content": f"⚠️ {text}",
                            "flags": messages.EPHEMERAL,
                            "allowed_mentions": dict(messages.NO_MENTIONS),
                        },
                    )
                    return
                except DiscordHTTPError as exc:
                    if not exc.token_gone:
                        raise
            if job.status is JobStatus.CANCELLED:
                return  # the requester (or a moderator) cancelled it; no need to tell the channel
            await self._rest.create_message(
                _channel(job),
                {
                    "content": f"<@{job.user_id}> ⚠️ {text}",
                    "allowed_mentions": {"parse": [], "users": [job.user_id]},
                },
            )
        except DiscordHTTPError as exc:
            raise _delivery_error(exc) from None
        except DiscordUnreachable as exc:
            raise DeliveryError(str(exc)) from None

    # ---------------------------------------------------------------------------------------------

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
        interaction_id = data.get(INTERACTION_ID)
        if not token or not interaction_id or not data.get(APPLICATION_ID):
            return None
        if self._clock.now() > snowflake_time(interaction_id) + TOKEN_LIFETIME - TOKEN_MARGIN:
            return None
        return token


def _app_id(job: Job) -> str:
    return job.request.reply.data[APPLICATION_ID]


def _channel(job: Job) -> str:
    return job.request.reply.thread_id or job.request.reply.channel_id


def _upload_limit(job: Job) -> int:
    raw = job.request.reply.data.get(SIZE_LIMIT)
    try:
        return int(raw) if raw else DEFAULT_UPLOAD_LIMIT
    except ValueError:
        return DEFAULT_UPLOAD_LIMIT


def _receipt(message: Mapping[str, Any], via: str) -> dict[str, Any]:
    return {
        "via": via,
        "message_id": str(message.get("id", "")),
        "channel_id": str(message.get("channel_id", "")),
    }


async def _fit(image: OutImage, limit: int) -> FilePart:
    budget = max(64 * 1024, limit - UPLOAD_OVERHEAD)
    if len(image.data) <= budget:
        return FilePart(image.filename, image.data, image.content_type)
    fitted = await asyncio.to_thread(_refit_bytes, image.data, budget)
    stem = image.filename.rsplit(".", 1)[0]
    return FilePart(f"{stem}.{fitted.extension}", fitted.data, fitted.content_type)


def _refit_bytes(data: bytes, budget: int) -> images.CleanImage:
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return images.fit(img.copy(), budget)
    except OSError as exc:
        raise InvalidImage(f"cannot re-encode: {type(exc).__name__}") from None


def _refit(files: Sequence[FilePart], limit: int) -> list[FilePart]:
    budget = max(64 * 1024, limit - UPLOAD_OVERHEAD)
    out: list[FilePart] = []
    for part in files:
        if len(part.data) <= budget:
            out.append(part)
            continue
        fitted = _refit_bytes(part.data, budget)
        stem = part.filename.rsplit(".", 1)[0]
        out.append(FilePart(f"{stem}.{fitted.extension}", fitted.data, fitted.content_type))
    return out


def _delivery_error(exc: DiscordHTTPError) -> DeliveryError:
    return DeliveryError(str(exc), retryable=exc.retryable)
