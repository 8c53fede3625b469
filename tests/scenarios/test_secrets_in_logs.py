"""RELIABILITY 33: jobs run at DEBUG, and no token, key, interaction token or response URL used
appears anywhere in what the bot logged."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from bot.domain.errors import DeliveryError
from bot.domain.models import Job, JobStatus, ReplyTarget
from bot.ops.logs import NOISY_LOGGERS, setup_logging
from bot.ports import OutImage, Progress
from bot.runtime.app import open_app
from bot.runtime.config import load_settings
from tests.factories import make_request

log = logging.getLogger("tests.careless_adapter")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


@pytest.fixture
async def platform() -> AsyncIterator[str]:
    """A platform on 127.0.0.1: follow-ups on /webhooks/<app>/<token>; one token is refused."""

    async def followup(request: web.Request) -> web.Response:
        if request.match_info["token"].startswith("expired"):
            return web.json_response(
                {"message": f"Unknown Webhook {request.path}", "code": 10015}, status=404
            )
        return web.json_response({"id": "m1"})

    app = web.Application()
    app.router.add_post("/webhooks/{app}/{token}", followup)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


class CarelessDelivery:
    """Posts like an adapter would, and logs far too much at DEBUG: the filter must catch it."""

    def __init__(self, http: httpx.AsyncClient, base: str, bot_token: str) -> None:
        self._http = http
        self._base = base
        self._bot_token = bot_token

    async def progress(self, job: Job, progress: Progress) -> None:
        log.debug("progress for %s via %s", job.id, job.request.reply.data)

    async def deliver(self, job: Job, images: Sequence[OutImage]) -> Mapping[str, Any]:
        data = job.request.reply.data
        url = f"{self._base}/webhooks/42/{data['interaction_token']}"
        headers = {"Authorization": f"Bot {self._bot_token}"}
        log.debug("POST %s headers=%s response_url=%s", url, headers, data["response_url"])
        response = await self._http.post(url, headers=headers, json={"content": "done"})
        if response.status_code != 200:
            raise DeliveryError(f"follow-up refused by {url}: {response.text}", retryable=False)
        return {"message_id": response.json()["id"]}

    async def notify_failure(self, job: Job) -> None:
        log.debug("notify %s at %s", job.id, job.request.reply.data["response_url"])


async def test_no_secret_used_by_a_job_reaches_the_logs_at_debug(
    data_dir: Path,
    platform: str,
    restore_logging: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def secret(prefix: str = "") -> str:
        return prefix + secrets.token_urlsafe(24)

    env = {
        "IMAGINE_DATA_DIR": str(data_dir),
        "IMAGINE_PROVIDERS": "offline",
        "IMAGINE_LOG_LEVEL": "DEBUG",
        "BFL_API_KEY": secret(),
        "FAL_KEY": secret(),
        "TOGETHER_API_KEY": secret(),
        "DISCORD_TOKEN": secret(),
        "SLACK_BOT_TOKEN": secret("xoxb-"),
        "SLACK_SIGNING_SECRET": secret(),
        "SLACK_APP_TOKEN": secret("xapp-"),
    }
    settings = load_settings(env, env_file=None)
    setup_logging(settings.log_level, "text", settings.secret_values())
    interaction_tokens = [secret(), "expired" + secret()]
    response_urls = [f"{platform}/commands/T1/{secret()}" for _ in interaction_tokens]

    async with open_app(settings) as app:
        discord_token = env["DISCORD_TOKEN"]
        app.add_delivery("console", CarelessDelivery(app.http, platform, discord_token))
        await app.start_workers()
        jobs = []
        for token, response_url in zip(interaction_tokens, response_urls, strict=True):
            reply = ReplyTarget(
                "console",
                "ch1",
                data={"interaction_token": token, "response_url": response_url, "app": "42"},
            )
            accepted = await app.service.imagine(make_request(reply=reply))
            jobs.append(await app.service.wait(accepted.job.id, timeout=30))

    assert [job.status for job in jobs] == [JobStatus.DELIVERED, JobStatus.FAILED]
    logged = capsys.readouterr().err
    # The careless lines and the failure were logged (redacted), so there was something to leak.
    assert f"job {jobs[0].id}: deliver" in logged
    assert f"job {jobs[1].id}: delivery failed" in logged
    assert logged.count("[redacted]") >= 4
    used = [*settings.secret_values(), *interaction_tokens, *response_urls]
    assert len(used) == 11
    leaked = [line for line in logged.splitlines() if any(value in line for value in used)]
    assert leaked == []
