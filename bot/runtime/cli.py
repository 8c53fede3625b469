"""The ``imagine-bot`` command line: run, worker, imagine, doctor, models, sync-commands and
migrate-sqlite-to-postgres."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bot import __version__
from bot.domain.catalog import load_catalog
from bot.domain.errors import ConfigError, RequestRejected, StoreError
from bot.domain.models import Job, JobStatus, ReplyTarget
from bot.ops.logs import setup_logging
from bot.ports import OutImage, Progress
from bot.runtime.app import open_app
from bot.runtime.config import Settings, load_settings
from bot.text.flags import option_args
from bot.text.request import build_request

log = logging.getLogger("imagine-bot")

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_REFUSED = 3
EXIT_MODERATED = 4
EXIT_FAILED = 5


def _parser() -> argparse.ArgumentParser:
    # Plain text: argparse prints the description as it is, so no markup from the docstring.
    parser = argparse.ArgumentParser(
        prog="imagine-bot",
        description="An /imagine bot for Discord and Slack on FLUX.2. Settings come from the "
        "environment and .env (see .env.example); with no platform token, `run` is a console.",
    )
    parser.add_argument("--version", action="version", version=f"imagine-bot {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the bot (gateway, HTTP server and workers)")
    run.add_argument(
        "--no-workers", action="store_true", help="take commands only; workers elsewhere"
    )
    sub.add_parser("worker", help="run workers only (no platform gateway)")
    one = sub.add_parser("imagine", help="one generation through the whole core")
    one.add_argument("prompt")
    one.add_argument("--model", "-m", default=None)
    size = one.add_mutually_exclusive_group()
    size.add_argument("--ar", default=None, help="aspect ratio, e.g. 16:9")
    size.add_argument("--size", default=None, help="exact size, e.g. 1024x768")
    one.add_argument("--seed", type=int, default=None)
    one.add_argument("--n", type=int, default=1)
    one.add_argument("--image", action="append", default=[], help="input image (file or URL)")
    one.add_argument(
        "-o",
        "--output",
        default=None,
        help="where to write the image (default out.<format>); a .png/.jpg/.webp name also "
        "sets the format when --format is not given",
    )
    one.add_argument("--format", default=None, help="jpeg (default), png or webp")
    one.add_argument("--enhance", action="store_true", default=None, help="prompt upsampling")
    one.add_argument("--steps", type=int, default=None, help="inference steps (flex)")
    one.add_argument("--guidance", type=float, default=None, help="guidance scale (flex)")
    one.add_argument("--timeout", type=float, default=900.0)
    sub.add_parser("doctor", help="check the configuration and what it points at")
    move = sub.add_parser(
        "migrate-sqlite-to-postgres",
        help="copy an existing SQLite install into PostgreSQL (stop the bot first)",
    )
    move.add_argument(
        "--sqlite", default=None, help="the SQLite file (default: IMAGINE_DATA_DIR/imagine.db)"
    )
    move.add_argument(
        "--to", default=None, help="the postgresql:// URL (default: IMAGINE_DATABASE_URL)"
    )
    sub.add_parser("models", help="list the model catalog")
    sync = sub.add_parser("sync-commands", help="register Discord application commands")
    sync.add_argument("--guild", default=None, help="register in one guild (instant, for testing)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"imagine-bot: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    level = settings.log_level
    console = not (settings.discord_enabled or settings.slack_enabled)
    # A level set in .env counts like an exported one.
    chosen_level = "log_level" in settings.model_fields_set
    if args.command in ("run", "imagine") and console and not chosen_level:
        level = "WARNING"  # the console's own lines say what happens; logs would drown them
    if args.command == "sync-commands" and not chosen_level:
        level = "WARNING"  # one command, one line of outcome
    setup_logging(level, settings.log_format, settings.secret_values())
    try:
        if args.command == "models":
            return _models()
        if args.command == "run":
            return asyncio.run(run(settings, workers=not args.no_workers))
        if args.command == "worker":
            return asyncio.run(run(settings, workers=True, platforms=False))
        if args.command == "imagine":
            return asyncio.run(imagine_once(settings, args))
        if args.command == "migrate-sqlite-to-postgres":
            return asyncio.run(_migrate_sqlite_to_postgres(settings, args.sqlite, args.to))
        if args.command == "doctor":
            from bot.ops.doctor import doctor

            return asyncio.run(doctor(settings))
        if args.command == "sync-commands":
            return asyncio.run(_sync_commands(settings, args.guild))
    except ConfigError as exc:
        print(f"imagine-bot: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except StoreError as exc:
        print(f"imagine-bot: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return EXIT_OK  # pragma: no cover


def _models() -> int:
    catalog = load_catalog()
    for variant in catalog.variants.values():
        default = " (default)" if variant.name == catalog.default_variant else ""
        print(f"{variant.name}{default}: {variant.label}, usually {variant.typical_seconds:.0f} s")
        rules = variant.size
        print(
            f"  sizes: multiples of {rules.multiple}, sides {rules.min_side}-{rules.max_side} px, "
            f"up to {rules.max_megapixels:g} MP; safety {variant.safety_min}-{variant.safety_max}; "
            f"up to {variant.input_images} input images, {variant.max_count} images per request"
        )
        for provider, model in variant.providers.items():
            edit = f", edit: {model.edit_model_id}" if model.edit_model_id else ""
            print(f"  {provider:<9} {model.model_id}{edit}  {model.describe_price()}")
    return EXIT_OK


async def _sync_commands(settings: Settings, guild: str | None) -> int:
    if not settings.discord_enabled:
        raise ConfigError("DISCORD_TOKEN", "required to register Discord commands")
    import importlib

    module: Any = importlib.import_module("adapters.discord")
    return int(await module.sync_commands(settings, guild))


async def _migrate_sqlite_to_postgres(
    settings: Settings, sqlite: str | None, target: str | None
) -> int:
    from bot.store.transfer import copy_sqlite_to_postgres

    target = target or settings.database_url
    if not target.startswith(("postgresql:", "postgres:")):
        raise ConfigError(
            "IMAGINE_DATABASE_URL", "set it (or --to) to the postgresql:// URL to copy into"
        )
    path = Path(sqlite.removeprefix("sqlite:///")) if sqlite else settings.data_dir / "imagine.db"
    if not path.is_file():
        print(f"imagine-bot: no SQLite database at {path}", file=sys.stderr)
        return EXIT_FAILED
    report = await copy_sqlite_to_postgres(f"sqlite:///{path}", target, progress=print)
    total = sum(report.copied.values())
    print(
        f"copied {total} rows from {path}; now set IMAGINE_DATABASE_URL to the PostgreSQL URL "
        "and start the bot (images stay in IMAGINE_BLOB_URL / IMAGINE_DATA_DIR)"
    )
    return EXIT_OK


def _install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def run(settings: Settings, *, workers: bool = True, platforms: bool = True) -> int:
    """Run the adapters the settings enable (the console when none is), the HTTP server and workers."""
    from adapters.base import Adapter, PlatformName, load_platform

    if not (settings.discord_enabled or settings.slack_enabled) and not (platforms and workers):
        # Nothing to serve: stop cleanly (exit 0), so a supervisor that restarts failures only
        # (docker compose's on-failure) does not restart this in a loop.
        print(f"imagine-bot: {_nothing_to_serve(platforms)}", file=sys.stderr, flush=True)
        return EXIT_OK
    stop = asyncio.Event()
    _install_signal_handlers(stop)
    async with open_app(settings) as app:
        wanted: list[PlatformName] = []
        if settings.discord_enabled:
            wanted.append("discord")
        if settings.slack_enabled:
            wanted.append("slack")
        served = bool(wanted)
        if not served:
            wanted.append("console")
            _console_banner(settings)
        # Without a gateway (imagine-bot worker) an adapter only registers its delivery port,
        # which speaks REST: a worker delivers the jobs of every configured platform.
        adapters: list[Adapter] = [
            load_platform(name).create_adapter(app, gateway=platforms) for name in wanted
        ]
        for adapter in adapters:
            adapter.attach()
        # A worker serves /healthz and /metrics only when given a port (in the environment or
        # .env): several run on one host.
        if (served and platforms) or "http_port" in settings.model_fields_set:
            try:
                await app.http_server.start()
            except ConfigError:
                for adapter in adapters:
                    await adapter.aclose()
                raise
        if workers:
            worker = await app.start_workers()
            log.info(
                "%s: delivering %s jobs with %d workers",
                worker.worker_id,
                ", ".join(sorted(app.deliveries)),
                worker.config.concurrency,
            )
        else:
            _warn_without_workers(settings)
        tasks: list[asyncio.Task[Any]] = []
        if platforms:
            tasks = [asyncio.create_task(a.run(stop)) for a in adapters]
        await stop.wait()
        # Workers first: a job being posted right now still needs its adapter's client.
        await app.stop_workers()
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for adapter in adapters:
            await adapter.aclose()
    for result in results:
        if isinstance(result, ConfigError):  # e.g. a platform refused its token: stop, say why
            raise result
    return EXIT_OK


def _nothing_to_serve(platforms: bool) -> str:
    if platforms:
        return (
            "imagine-bot run --no-workers takes Discord and Slack commands, and neither "
            "DISCORD_TOKEN nor SLACK_BOT_TOKEN is set: set one (in .env with docker compose) and "
            "start it again; stopping"
        )
    return (
        "imagine-bot worker delivers Discord and Slack jobs: give it the same DISCORD_TOKEN / "
        "SLACK_BOT_TOKEN as the bot (in .env with docker compose; the console runs in "
        "imagine-bot run); stopping"
    )


def _warn_without_workers(settings: Settings) -> None:
    if settings.effective_database_url.startswith("sqlite:"):
        log.warning(
            "running without workers on SQLite: jobs wait until `imagine-bot worker` runs on this "
            "machine with the same IMAGINE_DATA_DIR (several machines need PostgreSQL)"
        )
    else:
        log.info("running without workers: `imagine-bot worker` processes run the jobs")


def _console_banner(settings: Settings) -> None:
    providers = ", ".join(settings.effective_providers)
    print(
        f"imagine-bot {__version__}: console mode (no DISCORD_TOKEN or SLACK_BOT_TOKEN set), "
        f"provider: {providers}, database: {settings.effective_database_url}",
        flush=True,
    )
    if settings.effective_providers == ("offline",):
        print(
            "Images come from the offline preview renderer. For real FLUX.2 images set "
            "BFL_API_KEY, FAL_KEY or TOGETHER_API_KEY; to serve a community set DISCORD_TOKEN "
            "or SLACK_BOT_TOKEN (see .env.example). Type /help for commands.",
            flush=True,
        )


class FileDelivery:
    """Delivery for ``imagine-bot imagine``: writes the images where ``-o`` says."""

    def __init__(self, output: Path | None) -> None:
        self._output = output
        self.written: list[Path] = []

    async def progress(self, job: Job, progress: Progress) -> None:
        where = f" (position {progress.queue_position})" if progress.queue_position else ""
        print(f"generating on {job.provider}: {progress.elapsed:.0f} s{where}", file=sys.stderr)

    async def deliver(self, job: Job, images: Sequence[OutImage]) -> Mapping[str, Any]:
        for index, image in enumerate(images, start=1):
            target = self._output or Path(f"out.{image.filename.rsplit('.', 1)[-1]}")
            if len(images) > 1:
                target = target.with_name(f"{target.stem}-{index}{target.suffix}")
            target.parent.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(target.write_bytes, image.data)
            self.written.append(target)
            print(f"image {index}/{len(images)} written to {target}", file=sys.stderr)
        return {"paths": [str(p) for p in self.written]}

    async def notify_failure(self, job: Job) -> None:
        return None


async def imagine_once(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.console.adapter import ConsoleAdapter

    output = Path(args.output) if args.output else None
    delivery = FileDelivery(output)
    wanted = args.format
    if wanted is None and output is not None:
        # ``-o out.png`` asks for a PNG; another suffix leaves the format to the defaults.
        wanted = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp"}.get(
            output.suffix.lower()
        )
    async with open_app(settings) as app:
        app.add_delivery("cli", delivery)
        await app.start_workers()
        try:
            parsed = option_args(
                args.prompt,
                aspect_ratio=args.ar,
                size=args.size,
                seed=args.seed,
                model=args.model,
                count=args.n,
                output_format=wanted,
                enhance=args.enhance,
                steps=args.steps,
                guidance=args.guidance,
            )
            reply = ReplyTarget(platform="cli", channel_id="cli")
            user = os.environ.get("USER", "operator")
            request = build_request(
                parsed,
                platform="cli",
                community_id="cli",
                channel_id="cli",
                user_id=user,
                reply=reply,
                user_is_admin=True,
            )
            helper = ConsoleAdapter(app)
            inputs = tuple([await helper._store_input(ref) for ref in args.image])
            request = request.with_changes(input_images=inputs)
            # Listening before the job exists: a worker may take it up before imagine returns.
            printer = ProgressPrinter()
            app.events.add_listener(printer)
            accepted = await app.service.imagine(request)
        except RequestRejected as exc:
            print(f"refused: {exc.user_message}", file=sys.stderr)
            return EXIT_REFUSED
        job = accepted.job
        print(
            f"job {job.id}: queued ({job.variant}, {job.width}x{job.height}, seed {job.seed})",
            file=sys.stderr,
        )
        printer.follow(job.id)
        job = await app.service.wait(job.id, timeout=args.timeout)
        return _report(job, delivery)


class ProgressPrinter:
    """Prints each new status of one job, so long work shows how far it has come. Changes seen
    before ``follow`` names the job are kept and printed then, in order."""

    def __init__(self) -> None:
        self._job_id: str | None = None
        self._early: list[Job] = []
        self._shown: set[JobStatus] = {JobStatus.QUEUED}
        self._started = time.monotonic()

    def follow(self, job_id: str) -> None:
        self._job_id = job_id
        early, self._early = self._early, []
        for job in early:
            self(job)

    def __call__(self, job: Job) -> None:
        if self._job_id is None:
            self._early.append(job)
            return
        if job.id != self._job_id or job.status in self._shown:
            return
        self._shown.add(job.status)
        took = f"{time.monotonic() - self._started:.1f} s"
        if job.status is JobStatus.SUBMITTED:
            print(f"job {job.id}: submitted to {job.provider} ({took})", file=sys.stderr)
        elif job.status is JobStatus.FETCHED:
            count = len(job.images)
            print(
                f"job {job.id}: {count} image{'s' if count != 1 else ''} ready, saving ({took})",
                file=sys.stderr,
            )
        elif job.status is JobStatus.DELIVERED:
            print(f"job {job.id}: done ({took})", file=sys.stderr)


def _report(job: Job, delivery: FileDelivery) -> int:
    if job.status is JobStatus.DELIVERED:
        for path in delivery.written:
            print(path)
        return EXIT_OK
    message = job.error_message or f"job ended as {job.status.value}"
    print(f"{job.status.value}: {message}", file=sys.stderr)
    if job.status is JobStatus.MODERATED:
        return EXIT_MODERATED
    return EXIT_FAILED
