"""Input images shared in Slack (url_private on files.slack.com): fetched by the adapter with the
bot token, which goes to that host only, then cleaned and stored for the worker."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import httpx
import pytest
from PIL import Image

from adapters.slack.files import SlackFiles
from bot.blobs import open_blobs
from bot.domain.errors import DownloadRefused
from bot.domain.models import JobStatus
from tests.factories import photo_with_gps
from tests.fakes.rawhttp import RawServer
from tests.fakes.slack import FakeSlack
from tests.slack.conftest import BOT_TOKEN, SlackBot


@pytest.fixture
async def sink() -> AsyncIterator[RawServer]:
    server = await RawServer().start()
    yield server
    await server.aclose()


async def test_a_slack_file_is_fetched_with_the_token_and_reaches_the_provider_cleaned(
    slack_bot: SlackBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake = slack_bot.fake
    url = fake.add_private_file("photo.jpg", photo_with_gps())
    await slack_bot.command(f"make it blue --image {url}")
    await slack_bot.settle()

    [job] = await slack_bot.jobs()
    assert job.status is JobStatus.DELIVERED
    [request] = fake.file_requests
    assert request.headers["Authorization"] == f"Bearer {BOT_TOKEN}"
    [stored] = job.request.input_images
    assert stored.startswith("blob:inputs/")  # the bytes, not the link the worker cannot open
    assert job.provider_task is not None and job.provider_task["inputs"] == 1
    kept = Image.open(io.BytesIO(await slack_bot.app.blobs.get(stored.removeprefix("blob:"))))
    assert kept.size == (120, 80) and not kept.getexif()  # metadata (GPS) stripped
    assert BOT_TOKEN not in caplog.text


async def test_without_files_read_slack_refuses_and_the_user_is_told(
    slack_bot: SlackBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake = slack_bot.fake
    fake.scopes = "commands,chat:write,files:write,users:read"
    url = fake.add_private_file("photo.jpg", photo_with_gps())
    await slack_bot.command(f"make it blue --image {url}", response_key="no-scope")
    await slack_bot.settle()

    assert await slack_bot.jobs() == []
    [(_, refusal)] = [r for r in fake.responses if r[0] == "no-scope"]
    assert "could not open that Slack file" in refusal["text"] and "files:read" in refusal["text"]
    assert len(fake.file_requests) == 1  # the redirect to the sign-in page was not followed
    assert BOT_TOKEN not in caplog.text and BOT_TOKEN not in refusal["text"]


async def test_the_fake_like_slack_serves_a_private_file_only_with_the_token(
    fake_slack: FakeSlack,
) -> None:
    url = fake_slack.add_private_file("photo.jpg", photo_with_gps())
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"Authorization": "Bearer xoxb-someone-else"}):
            async with http.get(url, headers=headers, allow_redirects=False) as response:
                assert response.status == 302
                assert response.headers["Location"].startswith("/signin")
        bearer = {"Authorization": f"Bearer {BOT_TOKEN}"}
        async with http.get(url, headers=bearer, allow_redirects=False) as response:
            assert response.status == 200 and await response.read() == photo_with_gps()


async def test_a_link_elsewhere_gets_no_token_and_goes_to_the_guarded_fetcher(
    slack_bot: SlackBot, sink: RawServer
) -> None:
    # Same path as a Slack file, another port of the same host: not Slack's origin.
    url = f"http://127.0.0.1:{sink.port}/files-pri/T1-F1/download/photo.jpg"
    await slack_bot.command(f"make it blue --image {url}")
    await slack_bot.settle()

    [job] = await slack_bot.jobs()
    assert job.request.input_images == (url,)
    assert job.status is JobStatus.FAILED  # the core's SSRF guard refuses a loopback link
    assert sink.connections == 0 and slack_bot.fake.file_requests == []


@pytest.mark.parametrize(
    "url",
    [
        "https://files.slack.com.evil.example/files-pri/T1-F1/x.png",
        "https://evil.example/files-pri/T1-F1/x.png?https://files.slack.com/",
        "http://files.slack.com/files-pri/T1-F1/x.png",
        "https://files.slack.com:8443/files-pri/T1-F1/x.png",
        "ftp://files.slack.com/files-pri/T1-F1/x.png",
        "https://files.slack.com:99999/x.png",
    ],
)
async def test_only_slacks_file_origin_gets_the_token(url: str, tmp_path: Path) -> None:
    async with httpx.AsyncClient() as http, open_blobs(f"file://{tmp_path}") as blobs:
        files = SlackFiles(http, BOT_TOKEN, blobs)
        assert files.is_slack_file("https://files.slack.com/files-pri/T1-F1/x.png")
        assert files.is_slack_file("https://FILES.slack.com/files-pri/T1-F1/x.png")
        assert not files.is_slack_file(url)
        with pytest.raises(DownloadRefused):
            await files.download(url)


async def test_a_slack_file_over_the_byte_cap_is_refused(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    url = fake_slack.add_private_file("big.png", b"\x89PNG\r\n\x1a\n" + bytes(5000))
    async with httpx.AsyncClient() as http, open_blobs(f"file://{tmp_path}") as blobs:
        files = SlackFiles(http, BOT_TOKEN, blobs, fake_slack.files_url, max_bytes=4096)
        with pytest.raises(DownloadRefused, match="larger than"):
            await files.store_inputs((url,))
    assert list(tmp_path.iterdir()) == []
