"""Input images given as links: fetched under the SSRF guard, cleaned, and handed to the provider
as data URLs; a refused link fails the job with a clear message and reaches nothing."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from adapters.console import ConsoleAdapter
from bot.jobs.pool import Worker, WorkerConfig
from bot.net.guard import SafeFetcher
from bot.providers.base import GenerationSpec, Submission
from bot.providers.offline import OfflineProvider
from bot.providers.router import Router
from bot.runtime.app import App
from tests.factories import photo_with_gps
from tests.fakes.rawhttp import RawServer, respond


class RecordingOffline(OfflineProvider):
    """The offline renderer, remembering what each submit was given."""

    def __init__(self) -> None:
        super().__init__()
        self.specs: list[GenerationSpec] = []

    async def submit(self, spec: GenerationSpec) -> Submission:
        self.specs.append(spec)
        return await super().submit(spec)


@pytest.fixture
async def photo_server() -> AsyncIterator[RawServer]:
    photo = respond("200 OK", photo_with_gps(), {"Content-Type": "image/jpeg"})
    server = await RawServer(photo).start()
    yield server
    await server.aclose()


async def test_a_linked_input_reaches_the_provider_cleaned(
    app: App, photo_server: RawServer, data_dir: Path
) -> None:
    lines: list[str] = []
    console = ConsoleAdapter(app, write=lines.append)
    console.attach()
    provider = RecordingOffline()
    fetcher = SafeFetcher(
        app.http,
        allow_http=True,
        extra_ports={photo_server.port},
        trusted_endpoints={("127.0.0.1", photo_server.port)},
    )
    worker = Worker(
        store=app.store,
        router=Router([provider]),
        blobs=app.blobs,
        deliveries=app.deliveries,
        events=app.events,
        clock=app.clock,
        catalog=app.catalog,
        config=WorkerConfig(platforms=frozenset({"console"})),
        input_fetcher=fetcher,
    )
    await worker.start()
    try:
        await console.handle(
            f"make it autumn --image http://127.0.0.1:{photo_server.port}/photo.jpg"
        )
        await console.drain()
    finally:
        await worker.stop()

    assert any(" done -> " in line for line in lines), lines
    assert photo_server.connections == 1
    (spec,) = provider.specs
    (sent,) = spec.input_images
    header, _, payload = sent.partition(",")
    # A JPEG photo stays a JPEG (its metadata dropped, its pixels not re-encoded).
    assert header == "data:image/jpeg;base64"
    with Image.open(io.BytesIO(base64.b64decode(payload))) as image:
        assert image.size == (120, 80)
        assert not image.getexif()
        assert "exif" not in image.info


async def test_a_refused_link_fails_the_job_and_reaches_nothing(app: App) -> None:
    sink = await RawServer(respond("200 OK", photo_with_gps())).start()
    lines: list[str] = []
    console = ConsoleAdapter(app, write=lines.append)
    console.attach()
    await app.start_workers()
    try:
        await console.handle(f"make it autumn --image http://127.0.0.1:{sink.port}/photo.jpg")
        await console.drain()
    finally:
        await sink.aclose()
    failed = [line for line in lines if ": failed: " in line]
    assert len(failed) == 1, lines
    assert "Your input image was refused. Only https:// image links can be used." in failed[0]
    assert sink.connections == 0


async def test_a_link_to_something_not_an_image_fails_clearly(app: App) -> None:
    page = await RawServer(
        respond("200 OK", b"<html><body>hello</body></html>", {"Content-Type": "image/png"})
    ).start()
    lines: list[str] = []
    console = ConsoleAdapter(app, write=lines.append)
    console.attach()
    worker = Worker(
        store=app.store,
        router=app.router,
        blobs=app.blobs,
        deliveries=app.deliveries,
        events=app.events,
        clock=app.clock,
        catalog=app.catalog,
        config=WorkerConfig(platforms=frozenset({"console"})),
        input_fetcher=SafeFetcher(
            app.http,
            allow_http=True,
            extra_ports={page.port},
            trusted_endpoints={("127.0.0.1", page.port)},
        ),
    )
    await worker.start()
    try:
        await console.handle(f"make it autumn --image http://127.0.0.1:{page.port}/cat.png")
        await console.drain()
    finally:
        await worker.stop()
        await page.aclose()
    failed = [line for line in lines if ": failed: " in line]
    assert len(failed) == 1, lines
    assert "Your input image is not usable: not an image" in failed[0]
