"""The SSRF guard on the bot's client, faked at the transport (httpx.MockTransport): what it asks
for once a hop is vetted. The refusals themselves, against real sockets, are in
tests/scenarios/test_input_urls.py."""

from __future__ import annotations

import gzip
from collections.abc import Callable

import httpx
import pytest

from bot.domain.errors import DownloadRefused
from bot.net.guard import SafeFetcher
from bot.net.httpclient import open_http_client

PUBLIC = ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]
Handler = Callable[[httpx.Request], httpx.Response]


def body(data: bytes) -> httpx.ByteStream:
    """A body streamed as a transport streams it (``content=`` would be read and decoded at once)."""
    return httpx.ByteStream(data)


async def resolve(host: str, port: int) -> list[str]:
    return {"images.example": PUBLIC, "cdn.example": ["93.184.215.99"]}[host]


async def fetch(handler: Handler, url: str, **kw: object) -> bytes:
    async with open_http_client(httpx.MockTransport(handler)) as http:
        fetcher = SafeFetcher(http, resolver=resolve, **kw)  # type: ignore[arg-type]
        return await fetcher.fetch(url)


async def test_the_vetted_address_is_asked_with_the_links_host_for_host_and_tls() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, stream=body(b"\x89PNG"))

    assert await fetch(handler, "https://images.example/a%2Fb.png?sig=ab%2B") == b"\x89PNG"
    [request] = seen
    assert request.url.host == "93.184.215.14" and request.url.scheme == "https"
    assert request.url.raw_path == b"/a%2Fb.png?sig=ab%2B"
    assert request.headers["host"] == "images.example"
    assert request.extensions["sni_hostname"] == "images.example"  # the certificate's name
    assert request.headers["connection"] == "close"  # never pooled for another link
    assert request.headers["accept-encoding"] == "identity"
    assert "cookie" not in request.headers


async def test_the_next_vetted_address_is_tried_when_one_refuses_the_connection() -> None:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.host)
        if request.url.host == PUBLIC[0]:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, stream=body(b"img"))

    assert await fetch(handler, "https://images.example/x.png") == b"img"
    assert asked == PUBLIC


async def test_a_redirect_is_vetted_and_asked_at_its_own_address() -> None:
    asked: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append((request.url.host, request.headers["host"]))
        if request.headers["host"] == "images.example":
            return httpx.Response(302, headers={"Location": "https://cdn.example/y.png"})
        return httpx.Response(200, stream=body(b"img"))

    assert await fetch(handler, "https://images.example/x.png") == b"img"
    assert asked == [("93.184.215.14", "images.example"), ("93.184.215.99", "cdn.example")]


async def test_a_compressed_body_is_counted_as_sent_and_never_inflated() -> None:
    packed = gzip.compress(b"\0" * 1_000_000)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=body(packed), headers={"Content-Encoding": "gzip"})

    assert await fetch(handler, "https://images.example/x.png", max_bytes=100_000) == packed


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (httpx.ConnectError, "That image could not be downloaded."),
        (httpx.RemoteProtocolError, "That image could not be downloaded."),
        (httpx.ReadError, "That image could not be downloaded."),
        (httpx.ReadTimeout, "That image took too long to download."),
        (httpx.ConnectTimeout, "That image took too long to download."),
    ],
)
async def test_transport_errors_are_refusals_with_a_message_for_the_user(
    error: type[httpx.TransportError], message: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error("boom", request=request)

    with pytest.raises(DownloadRefused) as caught:
        await fetch(handler, "https://images.example/x.png")
    assert str(caught.value) == message
