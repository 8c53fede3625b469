"""The process's one outbound client: no cookies kept, proxies from the environment, what each
failure means, and the byte-capped read every caller uses."""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bot.net.httpclient import open_http_client, read_capped
from tests.fakes.rawhttp import Handler, RawServer, endless, respond


async def test_no_cookie_a_server_sets_is_kept_or_sent() -> None:
    sent: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers.get("cookie"))
        return httpx.Response(200, headers={"Set-Cookie": "session=secret-from-host; Path=/"})

    async with open_http_client(httpx.MockTransport(handler)) as http:
        first = await http.get("https://a.test/x")
        await http.get("https://a.test/y")
        await http.get("https://b.test/z")
        assert "session" in first.headers["set-cookie"]
        assert len(http.cookies) == 0
    assert sent == [None, None, None]


async def test_redirects_are_left_to_the_caller() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "http://127.0.0.1:9/"})

    async with open_http_client(httpx.MockTransport(handler)) as http:
        assert (await http.get("https://a.test/x")).status_code == 302


async def test_the_proxy_in_the_environment_is_used_unless_no_proxy_names_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As httpx documents for ``trust_env``: HTTP_PROXY carries plain http, NO_PROXY exempts."""
    proxy = await RawServer(respond("200 OK", b"via proxy")).start()
    direct = await RawServer(respond("200 OK", b"direct")).start()
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.setenv("NO_PROXY", "localhost")
    try:
        async with open_http_client() as http:
            via = await http.get("http://images.example.test/a.png")
            local = await http.get(f"http://localhost:{direct.port}/b.png")
    finally:
        await proxy.aclose()
        await direct.aclose()
    assert via.text == "via proxy" and local.text == "direct"
    assert proxy.requests[0].startswith(b"GET http://images.example.test/a.png ")
    assert direct.requests[0].startswith(b"GET /b.png ")


class Body(httpx.AsyncByteStream):
    def __init__(self, *chunks: bytes) -> None:
        self.chunks = chunks
        self.read = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            self.read += 1
            yield chunk


async def capped(response: httpx.Response, max_bytes: int, *, raw: bool = False) -> bytes | None:
    async with (
        open_http_client(httpx.MockTransport(lambda r: response)) as http,
        http.stream("GET", "https://a.test/") as streamed,
    ):
        return await read_capped(streamed, max_bytes, raw=raw)


async def test_read_capped_refuses_a_declared_length_unread_and_cuts_a_long_stream() -> None:
    unread = Body(b"x" * 10)
    declared = httpx.Response(200, headers={"Content-Length": "11"}, stream=unread)
    assert await capped(declared, 10) is None and unread.read == 0
    long = Body(b"x" * 6, b"x" * 6, b"x" * 6)
    assert await capped(httpx.Response(200, stream=long), 10) is None and long.read == 2
    exact = Body(b"x" * 6, b"x" * 4)
    assert await capped(httpx.Response(200, stream=exact), 10) == b"x" * 10


async def test_read_capped_counts_raw_bytes_when_asked() -> None:
    """A small compressed body that inflates past the cap: decoded it is over, raw it is not."""
    packed = gzip.compress(b"\0" * 100_000)
    headers = {"Content-Encoding": "gzip"}
    assert await capped(httpx.Response(200, headers=headers, stream=Body(packed)), 10_000) is None
    raw = await capped(httpx.Response(200, headers=headers, stream=Body(packed)), 10_000, raw=True)
    assert raw == packed


async def test_the_client_is_bound_to_the_loop_it_runs_in() -> None:
    async with open_http_client(httpx.MockTransport(lambda r: httpx.Response(204))) as http:
        answers = await asyncio.gather(*(http.get(f"https://a.test/{i}") for i in range(20)))
    assert {a.status_code for a in answers} == {204}


# What a failure means, on real connections: only a failure to connect says the request never
# left (a provider submit is then sent elsewhere; any other failure may have created a task).


async def raw_server(handler: Handler) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def post(url: str, seconds: float = 5.0) -> bytes:
    async with open_http_client() as http:
        options: dict[str, Any] = {"json": {"prompt": "a fox"}, "timeout": seconds}
        async with http.stream("POST", url, **options) as response:
            return await response.aread()


async def test_a_refused_connection_is_a_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening: nothing answers there
        with pytest.raises((httpx.ConnectError, httpx.ConnectTimeout)):
            await post(f"http://127.0.0.1:{sock.getsockname()[1]}/")


async def test_a_connection_closed_after_the_request_is_not_a_connect_error() -> None:
    got: list[bytes] = []

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got.append(await reader.readuntil(b"\r\n\r\n"))
        writer.close()

    server, url = await raw_server(hang_up)
    async with server:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            await post(f"{url}/v1/flux-2-pro")
    assert got, "the request reached the server"


async def test_a_body_cut_short_is_a_read_error() -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
        await writer.drain()
        writer.close()

    server, url = await raw_server(cut)
    async with server:
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            await post(url)


async def test_an_answer_that_is_not_http_is_an_httpx_error() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()
        writer.close()

    server, url = await raw_server(garbage)
    async with server:
        with pytest.raises(httpx.RemoteProtocolError):
            await post(url)


async def test_a_server_that_stalls_is_a_read_timeout() -> None:
    release = asyncio.Event()

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await writer.drain()
        await release.wait()
        writer.close()

    server, url = await raw_server(stall)
    async with server:
        try:
            with pytest.raises(httpx.ReadTimeout):
                await post(url, seconds=0.3)
        finally:
            release.set()


async def test_signed_urls_reach_the_server_with_their_escapes() -> None:
    """A presigned result URL's escaped characters stay escaped (its signature covers them)."""
    server = await RawServer(respond("200 OK", b"ok")).start()
    path = "/bucket/a%2Fb%20c.png?X-Amz-Signature=ab%2Bcd%3D&X-Amz-Expires=60"
    try:
        async with open_http_client() as http:
            assert (await http.get(f"http://127.0.0.1:{server.port}{path}")).text == "ok"
    finally:
        await server.aclose()
    assert server.requests[0].startswith(f"GET {path} HTTP/1.1".encode())


async def test_an_answer_cut_at_its_cap_leaves_the_client_usable() -> None:
    server = await RawServer(endless).start()
    small = RawServer(respond("200 OK", gzip.compress(b"{}"), {"Content-Encoding": "gzip"}))
    await small.start()
    try:
        async with open_http_client() as http:
            async with http.stream("GET", f"http://127.0.0.1:{server.port}/") as response:
                assert await read_capped(response, 100_000) is None
            async with http.stream("GET", f"http://127.0.0.1:{small.port}/") as response:
                assert await read_capped(response, 100) == b"{}"  # decoded
    finally:
        await server.aclose()
        await small.aclose()
