"""The process's one outbound HTTP client (providers, result downloads, input images), and the
byte-capped read of a streamed answer that every caller uses."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import HttpxAiohttpClient

# Connect a few seconds; a request that waits on the provider at least 60 s (the seed's advice).
TIMEOUT = httpx.Timeout(connect=5.0, read=60.0, write=30.0, pool=10.0)
LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=50)

# aiohttp's errors that prove the request never left: no connection was made, or none came free.
_NOT_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)


def open_http_client(transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """The outbound client: httpx's API on aiohttp's connections (httpx-aiohttp), proxies from
    the environment honoured; unit tests pass an ``httpx.MockTransport``.

    Redirects are never followed by the client: each caller decides per hop (result hosts are
    allow-listed, user links are re-checked). Cookies are never kept: providers authenticate with
    headers, and a cookie one host sets must not ride along to another (a policy with no allowed
    domain refuses every cookie, see ``http.cookiejar.DefaultCookiePolicy``)."""
    return _Client(
        timeout=TIMEOUT,
        limits=LIMITS,
        follow_redirects=False,
        transport=transport,
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
    )


async def read_capped(
    response: httpx.Response, max_bytes: int, *, raw: bool = False
) -> bytes | None:
    """The body of a streamed answer, or None when it is over ``max_bytes``: a declared
    Content-Length over the cap is refused unread, a longer stream is cut as soon as it passes the
    cap (leaving the ``stream`` block then closes the connection). ``raw``: the bytes as sent,
    not decoded (a compressed body cannot grow past the cap after counting)."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        return None
    chunks = response.aiter_raw() if raw else response.aiter_bytes()
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            return None
        parts.append(chunk)
    return b"".join(parts)


@contextmanager
def _as_sent(request: httpx.Request) -> Iterator[None]:
    """Errors with the meaning httpx's own transport gives them, which the providers rely on: a
    connect error only when the request never left (a submit is then sent elsewhere). httpx-aiohttp
    0.2.0 also calls a connection closed after the request a ``ConnectTimeout`` and lets an
    unparsable answer's ``aiohttp.ClientResponseError`` through."""
    try:
        yield
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        cause = exc.__cause__
        if isinstance(cause, aiohttp.ClientError) and not isinstance(cause, _NOT_SENT):
            raise _after_sending(cause, request) from cause
        raise
    except aiohttp.ClientError as exc:
        raise _after_sending(exc, request) from exc


def _after_sending(cause: aiohttp.ClientError, request: httpx.Request) -> httpx.TransportError:
    # The type name only: aiohttp's texts can carry the URL, with its signed query.
    name = type(cause).__name__
    if isinstance(cause, TimeoutError):
        return httpx.ReadTimeout(name, request=request)
    if isinstance(cause, aiohttp.ClientOSError | aiohttp.ClientPayloadError):
        return httpx.ReadError(name, request=request)
    return httpx.RemoteProtocolError(name, request=request)


class _Body(httpx.AsyncByteStream):
    def __init__(self, body: httpx.AsyncByteStream, request: httpx.Request) -> None:
        self._body = body
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_sent(self._request):
            async for chunk in self._body:
                yield chunk

    async def aclose(self) -> None:
        with _as_sent(self._request):
            await self._body.aclose()


class _Sent(httpx.AsyncBaseTransport):
    """The transport beneath, its errors read by ``_as_sent``."""

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self._transport = transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with _as_sent(request):
            response = await self._transport.handle_async_request(request)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Body(response.stream, request)
        return response

    async def aclose(self) -> None:
        await self._transport.aclose()


class _Client(HttpxAiohttpClient):
    """httpx-aiohttp's client (its transports for direct and proxied requests), each transport
    behind ``_Sent``."""

    def _init_transport(self, *args: Any, **kwargs: Any) -> httpx.AsyncBaseTransport:
        return _Sent(super()._init_transport(*args, **kwargs))

    def _init_proxy_transport(self, *args: Any, **kwargs: Any) -> httpx.AsyncBaseTransport:
        return _Sent(super()._init_proxy_transport(*args, **kwargs))
