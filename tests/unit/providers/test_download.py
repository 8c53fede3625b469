"""Result downloads on the bot's client, faked at the transport (httpx.MockTransport): allowed hosts
only, redirects followed on allowed hosts only, byte and time caps, and each foreign error as the
project's own."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from bot.domain.clock import ManualClock
from bot.domain.errors import DownloadRefused, ProviderFailed, ProviderTimeout, ProviderUnavailable
from bot.net.httpclient import open_http_client
from bot.providers.download import AllowList, Downloader, ResultExpired
from bot.providers.retry import RetryPolicy

Handler = Callable[[httpx.Request], httpx.Response]
RESULT = "https://delivery-eu1.bfl.ai/r/1.png?sig=ab%2B%3D"


def downloader(http: httpx.AsyncClient, **kw: float) -> Downloader:
    return Downloader(
        http,
        provider="bfl",
        allow=AllowList.build("https://api.bfl.ai", ("*.bfl.ai",)),
        clock=ManualClock(),
        rng=random.Random(0),
        retry=RetryPolicy(attempts=1),
        **kw,  # type: ignore[arg-type]
    )


async def download(handler: Handler, url: str = RESULT, **kw: float) -> bytes:
    async with open_http_client(httpx.MockTransport(handler)) as http:
        return await downloader(http, **kw).fetch(url)


async def test_the_result_is_fetched_with_its_signed_url_as_written() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"\x89PNG")

    assert await download(handler) == b"\x89PNG"
    assert seen[0].url.raw_path == b"/r/1.png?sig=ab%2B%3D"


async def test_a_redirect_on_an_allowed_host_is_followed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/r/1.png":
            return httpx.Response(302, headers={"Location": "/r/moved.png"})
        if request.url.host == "delivery-eu1.bfl.ai" and request.url.path == "/r/moved.png":
            return httpx.Response(307, headers={"Location": "https://cdn.bfl.ai/final.png"})
        assert str(request.url) == "https://cdn.bfl.ai/final.png"
        return httpx.Response(200, content=b"image")

    assert await download(handler) == b"image"


@pytest.mark.parametrize(
    "location",
    ["http://127.0.0.1:9/steal", "http://169.254.169.254/latest", "https://evil.example/x.png"],
)
async def test_a_redirect_to_a_foreign_host_is_refused_unasked(location: str) -> None:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(302, headers={"Location": location})

    with pytest.raises(DownloadRefused):
        await download(handler)
    assert asked == [RESULT]


async def test_a_redirect_loop_ends() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "/again"})

    with pytest.raises(DownloadRefused, match="too many redirects"):
        await download(handler)


class Stream(httpx.AsyncByteStream):
    """A body that counts how much of it was read, optionally a chunk every ``pause`` seconds."""

    def __init__(self, chunks: int, size: int = 1024, pause: float = 0.0) -> None:
        self.chunks, self.size, self.pause = chunks, size, pause
        self.read = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            if self.pause:
                await asyncio.sleep(self.pause)
            self.read += 1
            yield b"x" * self.size


async def test_a_declared_length_over_the_cap_is_refused_unread() -> None:
    body = Stream(chunks=100)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Length": "50000"}, stream=body)

    with pytest.raises(DownloadRefused, match="over 10000 bytes"):
        await download(handler, max_bytes=10_000)
    assert body.read == 0


async def test_an_endless_stream_is_cut_at_the_cap() -> None:
    body = Stream(chunks=1_000_000)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=body)

    with pytest.raises(DownloadRefused, match="over 10000 bytes"):
        await download(handler, max_bytes=10_000)
    assert body.read == 10


async def test_a_trickle_is_cut_at_the_time_cap() -> None:
    """Each chunk comes well inside the read timeout; only the total cap ends it."""
    body = Stream(chunks=1_000, size=1, pause=0.02)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=body)

    with pytest.raises(ProviderTimeout, match="took over"):
        await download(handler, seconds=0.2)
    assert body.read < 1_000


@pytest.mark.parametrize("status", [403, 404, 410])
async def test_an_expired_result_says_so(status: int) -> None:
    with pytest.raises(ResultExpired):
        await download(lambda r: httpx.Response(status, text="AccessDenied"))


async def test_a_busy_result_host_passes_on_its_retry_after() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "3"})

    with pytest.raises(ProviderUnavailable) as caught:
        await download(handler)
    assert caught.value.retry_after == 3 and caught.value.status == 429


async def test_another_status_is_a_failure() -> None:
    with pytest.raises(ProviderFailed, match="answered 204"):
        await download(lambda r: httpx.Response(204))


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (httpx.ConnectError, "could not connect"),
        (httpx.ConnectTimeout, "could not connect"),
        (httpx.ReadTimeout, "broke"),
        (httpx.RemoteProtocolError, "broke"),
        (httpx.ReadError, "broke"),
    ],
)
async def test_transport_errors_are_the_projects_own(
    error: type[httpx.TransportError], words: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error("boom", request=request)

    with pytest.raises(ProviderUnavailable, match=words) as caught:
        await download(handler)
    assert "sig=" not in str(caught.value)  # the signed query stays out of messages


async def test_a_broken_compressed_body_is_a_broken_download() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"not gzip", headers={"Content-Encoding": "gzip"})

    with pytest.raises(ProviderUnavailable, match="DecodingError"):
        await download(handler)


async def test_a_host_off_the_allow_list_is_never_asked() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"asked {request.url}")

    with pytest.raises(DownloadRefused, match=r"10\.0\.0\.5:8080"):
        await download(handler, url="http://10.0.0.5:8080/secret")
