"""The process's one outbound HTTP client (providers, result downloads, input images), and the
byte-capped read of a streamed answer that every caller uses."""

from __future__ import annotations

from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx

# Connect a few seconds; a request that waits on the provider at least 60 s (the seed's advice).
TIMEOUT = httpx.Timeout(connect=5.0, read=60.0, write=30.0, pool=10.0)
LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=50)


def open_http_client(transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """The outbound client, on httpx's own transport (proxies from the environment honoured);
    unit tests pass an ``httpx.MockTransport``.

    Redirects are never followed by the client: each caller decides per hop (result hosts are
    allow-listed, user links are re-checked). Cookies are never kept: providers authenticate with
    headers, and a cookie one host sets must not ride along to another (a policy with no allowed
    domain refuses every cookie, see ``http.cookiejar.DefaultCookiePolicy``)."""
    return httpx.AsyncClient(
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
