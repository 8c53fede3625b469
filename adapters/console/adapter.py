"""A line-oriented chat on stdin/stdout that takes the same commands as the platforms."""

from __future__ import annotations

import asyncio
import hashlib
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from adapters.host import Host
from bot.domain.community import Actor
from bot.domain.errors import ImagineError, InvalidImage, InvalidRequest, RequestRejected
from bot.domain.models import ImagineRequest, Job, ReplyTarget
from bot.media import images
from bot.ports import OutImage, Progress
from bot.text import replies
from bot.text.flags import ImagineArgs, flags_help, parse_imagine
from bot.text.personal import HISTORY_EMPTY, PREFERENCES_RESET, history_lines, preferences_text
from bot.text.preferences import PREFER_HELP, ResetPreferences, SetPreference, parse_prefer
from bot.text.request import build_request
from bot.text.settings import (
    ListBlockedTerms,
    ShowAudit,
    ShowSettings,
    ShowSettingsHelp,
    parse_settings_command,
    settings_help,
)

PLATFORM = "console"
COMMUNITY = "console"
CHANNEL = "console"
USER = "console-user"

HELP = f"""Commands:
  /imagine <prompt> [options]   make an image (a line without a command does the same)
  /status <job>                 where a job stands
  /cancel <job>                 cancel a job that has not finished
  /upscale <job> [K]            image K (default 1) at about twice the pixels
  /vary <job> [K] [strong]      a variation of image K (strong: without it as the reference)
  /reroll <job>                 the same prompt and options with a new seed
  /edit <job> <new prompt>      a new prompt on image 1
  /blend <img> <img> [...] [prompt]   one image from 2 or more files or links
  /quota                        what you may still imagine today
  /history [count]              your recent images; /rerun <job> makes one again
  /prefer [show|reset|<name> <value>]  your own defaults (/prefer help for the list)
  /settings [...]               this community's settings (/settings help for the list)
  /help                         this text
Options of /imagine:
{flags_help()}"""

Write = Callable[[str], None]
ReadLine = Callable[[], Awaitable[str]]


DEFAULT_HISTORY = 10


def _file_of(job: Job) -> str | None:
    """Where the console saved a delivered image (its delivery receipt)."""
    saved = (job.delivery or {}).get("paths")
    return ", ".join(saved) if isinstance(saved, list) and saved else None


def _stdout_write(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def _stdin_readline() -> str:
    return await asyncio.to_thread(sys.stdin.readline)


class ConsoleDelivery:
    """Prints progress and outcomes; each finished image is announced with its file's path."""

    def __init__(self, write: Write, output_dir: Path) -> None:
        self._write = write
        self._output_dir = output_dir

    async def progress(self, job: Job, progress: Progress) -> None:
        where = (
            f", position {progress.queue_position} at the provider"
            if progress.queue_position
            else ""
        )
        self._write(f"job {job.id}: generating on {job.provider} ({progress.elapsed:.0f} s{where})")

    async def deliver(self, job: Job, images_out: Sequence[OutImage]) -> Mapping[str, Any]:
        paths: list[str] = []
        for image in images_out:
            path = image.path
            if path is None:
                self._output_dir.mkdir(parents=True, exist_ok=True)
                path = self._output_dir / image.filename
                await asyncio.to_thread(path.write_bytes, image.data)
            paths.append(str(path))
            took = (job.updated_at or job.created_at) - job.created_at
            self._write(
                f"job {job.id}: done -> {path} ({image.width}x{image.height}, "
                f"{job.variant}, seed {job.seed}, {job.provider}, {took:.1f} s)"
            )
        return {"paths": paths}

    async def notify_failure(self, job: Job) -> None:
        self._write(f"job {job.id}: {job.status.value}: {job.error_message}")


class ConsoleAdapter:
    def __init__(
        self,
        app: Host,
        *,
        write: Write = _stdout_write,
        readline: ReadLine = _stdin_readline,
        user_id: str = USER,
    ) -> None:
        self._app = app
        self._write = write
        self._readline = readline
        self._user = user_id
        self._counter = 0
        self.delivery = ConsoleDelivery(write, app.settings.data_dir / "console")

    def attach(self) -> None:
        self._app.add_delivery(PLATFORM, self.delivery)

    async def run(self, stop: asyncio.Event) -> None:
        """Read commands until the end of input (or ``stop``), finish the accepted jobs, then set
        ``stop``: the console is the whole process's input."""
        stopped = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                reading = asyncio.ensure_future(self._readline())
                await asyncio.wait({reading, stopped}, return_when=asyncio.FIRST_COMPLETED)
                if not reading.done():
                    reading.cancel()
                    return
                line = reading.result()
                if not line:
                    break
                await self.handle(line.strip())
            await self.drain()
        finally:
            stopped.cancel()
            stop.set()

    async def aclose(self) -> None:
        return None  # nothing of its own to release: the app owns the store and the workers

    async def drain(self) -> None:
        """Wait until every console job has had its outcome shown."""
        while await self._app.store.count_pending({PLATFORM}) > 0:
            await self._app.events.wait_for_change(0.5)

    async def handle(self, line: str) -> None:
        if not line or line.startswith("#"):
            return
        command, _, rest = line.partition(" ")
        if not command.startswith("/"):
            command, rest = "/imagine", line
        try:
            await self._dispatch(command.lower(), rest.strip())
        except RequestRejected as exc:
            self._write(f"refused: {exc.user_message}")
        except ImagineError as exc:
            self._write(f"error: {exc}")

    async def _dispatch(self, command: str, rest: str) -> None:
        service = self._app.service
        if command == "/imagine":
            args = parse_imagine(rest)
            if args.help or not args.prompt:
                self._write(HELP)
                return
            await self._imagine(args)
        elif command == "/help":
            self._write(HELP)
        elif command == "/quota":
            report = await service.quota(COMMUNITY, self._user, is_platform_admin=True)
            for line in replies.quota_lines(report) or [replies.NO_LIMITS]:
                self._write(line)
        elif command in ("/settings", "/imagine-admin"):
            await self._settings(rest)
        elif command == "/history":
            await self._history(rest)
        elif command == "/rerun":
            accepted = await service.rerun(rest, self._request(ImagineArgs("")))
            self._announce(accepted.job, accepted.position)
        elif command == "/prefer":
            await self._prefer(rest)
        elif command == "/status":
            job = await service.job(rest)
            self._write(f"job {job.id}: {job.status.value}")
        elif command == "/cancel":
            job = await service.cancel(rest, user_id=self._user, is_admin=True)
            self._write(f"job {job.id}: {job.status.value}")
        elif command in ("/reroll", "/edit"):
            job_id, _, prompt = rest.partition(" ")
            accepted = await service.follow_up(
                job_id, command[1:], self._request(ImagineArgs("")), prompt=prompt.strip() or None
            )
            self._announce(accepted.job, accepted.position)
        elif command in ("/vary", "/upscale"):
            job_id, action, image = _image_command(command[1:], rest)
            accepted = await service.follow_up(
                job_id, action, self._request(ImagineArgs("")), image=image
            )
            self._announce(accepted.job, accepted.position)
        elif command == "/blend":
            refs, prompt = _blend_words(rest)
            request = self._request(ImagineArgs(prompt))
            inputs = tuple([await self._store_input(ref) for ref in refs])
            accepted = await service.blend(request.with_changes(input_images=inputs))
            self._announce(accepted.job, accepted.position)
        else:
            self._write(f"Unknown command {command}. Type /help for the list.")

    async def _settings(self, rest: str) -> None:
        """The console is one community whose one user administers it."""
        service = self._app.service
        actor = Actor(self._user, is_platform_admin=True)
        command = parse_settings_command(rest)
        if isinstance(command, ShowSettingsHelp):
            self._write(settings_help("/settings"))
        elif isinstance(command, ShowSettings):
            settings = await service.get_settings(COMMUNITY)
            app = self._app
            lines = replies.settings_lines(
                settings, app.policy.defaults.limits, app.catalog.default_variant
            )
            for line in lines:
                self._write(line)
        elif isinstance(command, ListBlockedTerms):
            self._write(replies.blocked_terms_text(await service.blocked_terms(COMMUNITY, actor)))
        elif isinstance(command, ShowAudit):
            entries = await service.audit_log(COMMUNITY, actor, command.limit)
            if not entries:
                self._write(replies.AUDIT_EMPTY)
            for entry in entries:
                when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(entry.at))
                self._write(
                    f"{when} UTC {entry.actor_id} {entry.kind} {entry.action}: {entry.detail}"
                )
        else:
            changed = await service.update_settings(COMMUNITY, actor, command)
            self._write(changed.message)

    async def _history(self, rest: str) -> None:
        count = int(rest) if rest.isdigit() else DEFAULT_HISTORY
        jobs = await self._app.service.history(PLATFORM, self._user, count)
        if not jobs:
            self._write(HISTORY_EMPTY)
        for job, line in zip(jobs, history_lines(jobs, self._app.catalog, _file_of), strict=True):
            self._write(f"{line} · job {job.id}")

    async def _prefer(self, rest: str) -> None:
        service = self._app.service
        if rest.strip() == "help":
            self._write(PREFER_HELP)
            return
        command = parse_prefer(rest)
        if isinstance(command, ResetPreferences):
            await service.reset_preferences(PLATFORM, self._user)
            self._write(PREFERENCES_RESET)
            return
        if isinstance(command, SetPreference):
            prefs = await service.prefer(PLATFORM, self._user, {command.name: command.value})
        else:
            prefs = await service.preferences(PLATFORM, self._user)
        self._write(preferences_text(prefs))

    def _request(self, args: ImagineArgs, inputs: tuple[str, ...] = ()) -> ImagineRequest:
        self._counter += 1
        return build_request(
            args,
            platform=PLATFORM,
            community_id=COMMUNITY,
            channel_id=CHANNEL,
            user_id=self._user,
            reply=ReplyTarget(platform=PLATFORM, channel_id=CHANNEL),
            input_images=inputs,
            user_is_admin=True,
        )

    async def _imagine(self, args: ImagineArgs) -> None:
        request = self._request(args)  # a malformed size is refused before reading any file
        inputs = tuple([await self._store_input(ref) for ref in args.images])
        accepted = await self._app.service.imagine(request.with_changes(input_images=inputs))
        self._announce(accepted.job, accepted.position)

    def _announce(self, job: Job, position: int) -> None:
        ahead = f", {position} ahead" if position else ""
        self._write(
            f"job {job.id}: queued ({job.variant}, {job.width}x{job.height}, seed {job.seed}{ahead})"
        )

    async def _store_input(self, ref: str) -> str:
        """A local file becomes a stored, cleaned input image; URLs pass through to the core."""
        if ref.startswith(("http://", "https://")):
            return ref
        path = Path(ref)
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            raise RequestRejected(f"Cannot read {ref}: {exc.strerror}.") from None
        try:
            clean = await asyncio.to_thread(images.clean, data)
        except InvalidImage as exc:
            raise RequestRejected(f"{ref} is not a usable image: {exc}.") from None
        key = f"inputs/{hashlib.sha256(clean.data).hexdigest()[:24]}.{clean.extension}"
        await self._app.blobs.put(key, clean.data, clean.content_type)
        return f"blob:{key}"


_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def _image_command(action: str, rest: str) -> tuple[str, str, int]:
    """``JOB [K] [strong]`` of /vary and /upscale: the job, the core's action and the image."""
    words = rest.split()
    if not words or len(words) > 3:
        usage = "/vary <job> [K] [strong]" if action == "vary" else "/upscale <job> [K]"
        raise InvalidRequest(f"Usage: {usage}")
    job_id, image, strong = words[0], 1, False
    for word in words[1:]:
        if word.isdigit():
            image = int(word)
        elif action == "vary" and word.lower() == "strong":
            strong = True
        else:
            raise InvalidRequest(f"{word!r} is neither an image number nor 'strong'.")
    return job_id, "vary-strong" if strong else action, image


def _blend_words(rest: str) -> tuple[list[str], str]:
    """The leading words of /blend that name images (links, image files), then the prompt."""
    words = rest.split()
    refs: list[str] = []
    while words and (
        words[0].startswith(("http://", "https://")) or words[0].lower().endswith(_IMAGE_SUFFIXES)
    ):
        refs.append(words.pop(0))
    return refs, " ".join(words)
