"""The shared HTTP client's transport: httpx's API and error meanings over aiohttp's client.

The error meanings matter: a provider submit is resent only after a failure that proves the
request never left (ConnectError, ConnectTimeout)."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from aiohttp import web

from bot.aiohttp_transport import AiohttpTransport, Answer, CookielessClient
from bot.aiohttp_transport import fetch as fetch_any

LIMITS = httpx.Limits(max_connections=10, max_keepalive_connections=5)


def client(timeout: float = 5.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=AiohttpTransport(LIMITS), timeout=timeout)


def shared(timeout: float = 5.0) -> CookielessClient:
    return CookielessClient(transport=AiohttpTransport(LIMITS), timeout=timeout)


async def fetch(
    http: CookielessClient,
    url: str,
    *,
    method: str = "GET",
    seconds: float = 5.0,
    max_bytes: int = 4096,
    **kw: Any,
) -> Answer:
    return await fetch_any(
        http,
        method,
        url,
        headers={"x-key": "k"},
        timeout=httpx.Timeout(seconds),
        max_bytes=max_bytes,
        **kw,
    )


async def raw_server(
    handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


@pytest.fixture
async def web_server() -> AsyncIterator[tuple[str, list[web.Request], list[bytes]]]:
    seen: list[web.Request] = []
    bodies: list[bytes] = []

    async def echo(request: web.Request) -> web.StreamResponse:
        seen.append(request)
        bodies.append(await request.read())
        if request.path == "/gzip":
            return web.Response(
                body=gzip.compress(b'{"ok": true}'),
                headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
            )
        if request.path == "/big":
            return web.Response(body=b"x" * 3_000_000)
        if request.path == "/chunked":  # no Content-Length: the cap is met while reading
            streamed = web.StreamResponse()
            streamed.enable_chunked_encoding()
            await streamed.prepare(request)
            for _ in range(30):
                await streamed.write(b"y" * 100_000)
            await streamed.write_eof()
            return streamed
        return web.json_response({"path": request.raw_path, "method": request.method})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", seen, bodies
    await runner.cleanup()


# Each error test runs on both paths: a request through httpx's API on the aiohttp transport,
# and ``fetch``'s direct path on the shared client.
PATHS = ["httpx", "fetch"]


async def send(
    path: str, url: str, *, method: str = "GET", seconds: float = 5.0, **json: Any
) -> None:
    if path == "httpx":
        async with client(timeout=seconds) as http:
            await http.request(method, url, json=json or None)
    else:
        async with shared() as http:
            await fetch(http, url, method=method, seconds=seconds, json=json or None)


@pytest.mark.parametrize("path", PATHS)
async def test_a_refused_connection_is_a_connect_error(path: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: nothing answers there
        with pytest.raises(httpx.ConnectError):
            await send(path, f"http://127.0.0.1:{port}/")


@pytest.mark.parametrize("path", PATHS)
async def test_a_connection_closed_after_the_request_is_not_a_connect_error(path: str) -> None:
    """The server read the request, then hung up: it may have acted on it (unknown outcome)."""
    got: list[bytes] = []

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got.append(await reader.readuntil(b"\r\n\r\n"))
        writer.close()
        await writer.wait_closed()

    server, url = await raw_server(hang_up)
    async with server:
        with pytest.raises(httpx.TransportError) as caught:
            await send(path, f"{url}/v1/flux-2-pro", method="POST", prompt="a fox")
    assert got, "the request reached the server"
    assert not isinstance(caught.value, httpx.ConnectError | httpx.ConnectTimeout)
    assert isinstance(caught.value, httpx.RemoteProtocolError | httpx.ReadError)


@pytest.mark.parametrize("path", PATHS)
async def test_a_server_that_stalls_is_a_read_timeout(path: str) -> None:
    closed = asyncio.Event()

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await writer.drain()
        await reader.read()  # until the client gives up and closes the connection
        writer.close()
        await writer.wait_closed()
        closed.set()

    server, url = await raw_server(stall)
    async with server:
        with pytest.raises(httpx.ReadTimeout):
            await send(path, f"{url}/slow", seconds=0.3)
        await asyncio.wait_for(closed.wait(), 5)


async def test_signed_urls_reach_the_server_exactly_as_written(
    web_server: tuple[str, list[web.Request], list[bytes]],
) -> None:
    url, seen, _ = web_server
    path = "/bucket/a%2Fb%20c.png?X-Amz-Signature=ab%2Bcd%3D&X-Amz-Expires=60"
    async with client() as http:
        response = await http.get(url + path)
    assert response.status_code == 200
    assert seen[0].raw_path == path


async def test_bodies_headers_and_compression_behave_as_with_httpx(
    web_server: tuple[str, list[web.Request], list[bytes]],
) -> None:
    url, seen, bodies = web_server
    async with client() as http:
        posted = await http.post(
            f"{url}/upload",
            files=[("file", ("a.png", b"\x89PNG" + b"0" * 5000, "image/png"))],
            data={"channel": "C1"},
            headers={"Authorization": "Bearer token-1"},
        )
        unzipped = await http.get(f"{url}/gzip")
        async with http.stream("GET", f"{url}/big") as streamed:
            size = sum([len(chunk) async for chunk in streamed.aiter_bytes()])
    assert posted.json() == {"path": "/upload", "method": "POST"}
    assert seen[0].headers["Authorization"] == "Bearer token-1"
    assert seen[0].content_type == "multipart/form-data"
    assert b"\x89PNG" + b"0" * 5000 in bodies[0] and b'name="channel"' in bodies[0]
    assert unzipped.json() == {"ok": True}
    assert size == 3_000_000


async def test_the_proxy_in_the_environment_is_used_unless_no_proxy_names_the_host(
    web_server: tuple[str, list[web.Request], list[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """As with httpx: HTTP_PROXY carries plain http requests, NO_PROXY exempts hosts."""
    url, seen, _ = web_server
    proxied: list[str] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        proxied.append(head.split(b" ")[1].decode())  # a proxy gets the absolute URL
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    server, proxy_url = await raw_server(proxy)
    monkeypatch.delenv("ALL_PROXY", raising=False)
    monkeypatch.delenv("all_proxy", raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    monkeypatch.setenv("NO_PROXY", "localhost")
    try:
        async with client() as http:
            via_proxy = await http.get("http://images.example.test/a.png")
            port = url.rsplit(":", 1)[1]
            direct = await http.get(f"http://localhost:{port}/direct")
    finally:
        server.close()
    assert via_proxy.text == "ok"
    assert proxied == ["http://images.example.test/a.png"]
    assert direct.json()["path"] == "/direct" and seen[0].path == "/direct"


async def test_the_shared_client_keeps_no_cookie_a_server_sets() -> None:
    seen: list[str | None] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Cookie"))
        response = web.json_response({"ok": True})
        response.set_cookie("session", "secret-from-host", path="/")
        return response

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with CookielessClient(transport=AiohttpTransport(LIMITS), timeout=5) as http:
            first = await http.get(f"http://127.0.0.1:{port}/a")
            await http.get(f"http://127.0.0.1:{port}/b")
            assert "session" in first.headers["set-cookie"]
            assert len(http.cookies) == 0
            with pytest.raises(TypeError):
                http.cookies = {"a": "b"}  # type: ignore[assignment]
    finally:
        await runner.cleanup()
    assert seen == [None, None]


# The direct path (``fetch`` on the shared client): the provider calls' requests and answers, the
# same on the wire and in their errors as through httpx.


async def test_fetch_sends_what_httpx_sends_and_decodes_the_answer(
    web_server: tuple[str, list[web.Request], list[bytes]],
) -> None:
    url, seen, bodies = web_server
    body = {"prompt": "un renard roux ☀", "width": 1024, "seed": 7}
    signed = "/v1/get_result?id=a%2Fb&sig=ab%2Bcd%3D"
    async with shared() as http:
        through_httpx = await http.post(f"{url}/v1/flux-2-pro", json=body, headers={"x-key": "k"})
        direct = await fetch_any(
            http,
            "POST",
            f"{url}/v1/flux-2-pro",
            headers={"x-key": "k"},
            json=body,
            timeout=httpx.Timeout(5.0),
            max_bytes=4096,
        )
        unzipped = await fetch(http, f"{url}/gzip")
        exact = await fetch(http, url + signed)
        with_params = await fetch(
            http, f"{url}/status?a=1", params={"fal_webhook": "https://x/y?z=1"}
        )
    assert through_httpx.json() == json.loads(direct.content)
    assert direct.status == 200 and direct.headers["content-type"].startswith("application/json")
    assert bodies[0] == bodies[1]  # byte for byte
    for header in ("Content-Type", "User-Agent", "x-key"):
        assert seen[0].headers[header] == seen[1].headers[header]
    assert json.loads(unzipped.content) == {"ok": True}
    assert seen[3].raw_path == signed
    assert seen[4].query["fal_webhook"] == "https://x/y?z=1" and seen[4].query["a"] == "1"
    assert json.loads(with_params.content)["path"] == seen[4].raw_path
    assert exact.status == 200


@pytest.mark.parametrize("kind", ["shared", "httpx"])
async def test_fetch_cuts_an_answer_over_its_cap_and_stays_usable(
    web_server: tuple[str, list[web.Request], list[bytes]], kind: str
) -> None:
    """Declared too long: not read at all; too long as it comes: cut just past the cap. On the
    shared client (aiohttp) and on any other httpx client alike."""
    url, _, _ = web_server
    http = shared() if kind == "shared" else httpx.AsyncClient()
    async with http:
        options: dict[str, Any] = {"headers": {}, "timeout": httpx.Timeout(5.0)}
        declared = await fetch_any(http, "GET", f"{url}/big", max_bytes=10_000, **options)
        streamed = await fetch_any(http, "GET", f"{url}/chunked", max_bytes=10_000, **options)
        whole = await fetch_any(http, "GET", f"{url}/chunked", max_bytes=3_000_000, **options)
        after = await fetch_any(http, "GET", f"{url}/after", max_bytes=10_000, **options)
    assert declared.truncated and declared.content == b""
    assert streamed.truncated and len(streamed.content) == 10_001
    assert not whole.truncated and whole.content == b"y" * 3_000_000
    assert not after.truncated and json.loads(after.content)["path"] == "/after"


async def test_fetch_on_another_transport_goes_through_httpx() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json={"via": "mock", "body": json.loads(request.content)})

    async with CookielessClient(transport=httpx.MockTransport(answer)) as http:
        got = await fetch_any(
            http,
            "POST",
            "http://provider.test/v1/x",
            headers={},
            json={"a": 1},
            timeout=httpx.Timeout(1.0),
            max_bytes=100,
        )
    assert got.status == 201 and json.loads(got.content) == {"via": "mock", "body": {"a": 1}}


async def test_fetch_writes_urls_as_httpx_does(
    web_server: tuple[str, list[web.Request], list[bytes]],
) -> None:
    """A plain URL goes out exactly as written; one with a space is escaped as httpx escapes it."""
    url, seen, _ = web_server
    async with shared() as http:
        for path in ("/r/a%2Fb.png?sig=ab%2B%3D", "/r/a b.png?q=x y"):
            await http.get(url + path)  # through httpx
            await fetch(http, url + path)  # the direct path
    assert [r.raw_path for r in seen[0:2]] == ["/r/a%2Fb.png?sig=ab%2B%3D"] * 2
    assert seen[2].raw_path == seen[3].raw_path == "/r/a%20b.png?q=x%20y"
