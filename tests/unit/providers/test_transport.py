"""Provider API calls on the bot's client, faked at the transport (httpx.MockTransport): what each
foreign error means for a submit and a poll, the byte cap on an answer, Retry-After, and URLs
sent exactly as written."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from bot.domain.errors import ProviderFailed, ProviderUnavailable, SubmitOutcomeUnknown
from bot.net.httpclient import open_http_client
from bot.providers.transport import MAX_JSON_BYTES, Kind, request_json

Handler = Callable[[httpx.Request], httpx.Response]


async def call(handler: Handler, kind: Kind = "submit", url: str = "https://api.test/v1/x") -> int:
    async with open_http_client(httpx.MockTransport(handler)) as http:
        status, _, _ = await request_json(
            http, "POST", url, provider="p", kind=kind, headers={"x-key": "k"}, body={"a": 1}
        )
    return status


def raises(error: type[httpx.HTTPError]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error("boom", request=request)

    return handler


@pytest.mark.parametrize("error", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
@pytest.mark.parametrize("kind", ["submit", "poll"])
async def test_a_request_that_never_left_is_unavailable_not_unknown(
    error: type[httpx.HTTPError], kind: Kind
) -> None:
    """Only a failure to connect proves no task was created: the submit may be sent elsewhere."""
    with pytest.raises(ProviderUnavailable) as caught:
        await call(raises(error), kind)
    assert not isinstance(caught.value, SubmitOutcomeUnknown)
    assert error.__name__ in str(caught.value)


@pytest.mark.parametrize(
    "error", [httpx.ReadTimeout, httpx.WriteTimeout, httpx.RemoteProtocolError, httpx.ReadError]
)
async def test_a_submit_that_broke_after_sending_has_an_unknown_outcome(
    error: type[httpx.HTTPError],
) -> None:
    with pytest.raises(SubmitOutcomeUnknown):
        await call(raises(error), "submit")
    with pytest.raises(ProviderUnavailable) as caught:
        await call(raises(error), "poll")  # a poll can always be asked again
    assert not isinstance(caught.value, SubmitOutcomeUnknown)


async def test_a_body_that_cannot_be_decoded_is_a_broken_answer() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"not gzip", headers={"Content-Encoding": "gzip"})

    with pytest.raises(SubmitOutcomeUnknown, match="DecodingError"):
        await call(handler)


async def test_a_compressed_answer_is_decoded() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = gzip.compress(b'{"id": "t1"}')
        return httpx.Response(200, content=body, headers={"Content-Encoding": "gzip"})

    async with open_http_client(httpx.MockTransport(handler)) as http:
        _, data, _ = await request_json(
            http, "GET", "https://api.test/x", provider="p", kind="poll", headers={}
        )
    assert data == {"id": "t1"}


class Stream(httpx.AsyncByteStream):
    """A body that counts how much of it was read."""

    def __init__(self, chunks: int, size: int = 1024 * 1024) -> None:
        self.chunks = chunks
        self.size = size
        self.read = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.read += 1
            yield b"{" * self.size


async def test_a_declared_length_over_the_cap_is_refused_unread() -> None:
    body = Stream(chunks=10)

    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"Content-Length": str(MAX_JSON_BYTES + 1)}
        return httpx.Response(200, headers=headers, stream=body)

    with pytest.raises(SubmitOutcomeUnknown, match="malformed answer"):
        await call(handler)
    assert body.read == 0


async def test_an_endless_answer_is_cut_just_past_the_cap() -> None:
    body = Stream(chunks=10_000)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=body)

    with pytest.raises(ProviderUnavailable, match="malformed answer"):
        await call(handler, "poll")
    assert body.read == MAX_JSON_BYTES // (1024 * 1024) + 1


async def test_rate_limited_answers_carry_their_retry_after() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "7"}, json={"detail": "slow down"})

    with pytest.raises(ProviderUnavailable) as caught:
        await call(handler)
    assert caught.value.status == 429 and caught.value.retry_after == 7


async def test_a_redirect_is_never_followed() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"Location": "http://127.0.0.1:9/x"})

    with pytest.raises(SubmitOutcomeUnknown, match="redirect"):
        await call(handler)
    with pytest.raises(ProviderFailed, match="redirect"):
        await call(handler, "poll")
    assert seen == ["https://api.test/v1/x"] * 2


async def test_urls_go_out_as_written() -> None:
    """A signed URL's escapes reach the provider unchanged; a space is escaped."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    async with open_http_client(httpx.MockTransport(handler)) as http:
        for url in (
            "https://api.test/r/a%2Fb.png?sig=ab%2B%3D",
            "https://api.test/r/a b.png?q=x y",
        ):
            await request_json(http, "GET", url, provider="p", kind="poll", headers={})
    assert seen[0].url.raw_path == b"/r/a%2Fb.png?sig=ab%2B%3D"
    assert seen[1].url.raw_path == b"/r/a%20b.png?q=x%20y"


async def test_the_json_body_and_headers_are_sent() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "t"})

    await call(handler)
    assert json.loads(seen[0].content) == {"a": 1}
    assert seen[0].headers["content-type"] == "application/json"
    assert seen[0].headers["x-key"] == "k"


async def test_an_invalid_url_is_a_failure_before_anything_is_sent() -> None:
    with pytest.raises(ProviderFailed, match="invalid URL"):
        await call(lambda r: httpx.Response(200), url="https://exa mple.test:x/")
