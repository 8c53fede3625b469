"""HTTP calls to provider APIs, with every foreign error translated at this boundary.

A submit and a poll fail differently: a submit whose request may have reached the provider can
have created a paid task (``SubmitOutcomeUnknown``); a poll can always be asked again.
Messages never carry request headers or URLs with credentials in them.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from bot.domain.errors import (
    ProviderError,
    ProviderFailed,
    ProviderUnavailable,
    SubmitOutcomeUnknown,
)
from bot.net.httpclient import read_capped

log = logging.getLogger(__name__)

# Connect a few seconds; a request that waits on the provider at least 60 s (the seed's advice).
SUBMIT_TIMEOUT = httpx.Timeout(connect=5.0, read=60.0, write=30.0, pool=10.0)
POLL_TIMEOUT = httpx.Timeout(connect=5.0, read=20.0, write=10.0, pool=10.0)
# Most JSON a provider answer may hold; more is not an API answer.
MAX_JSON_BYTES = 4 * 1024 * 1024

Kind = Literal["submit", "poll"]
# A provider's own reading of an error answer (status and parsed body), consulted before the
# generic mapping below: the error to raise, or None to leave the answer to that mapping.
Classify = Callable[[int, Any], ProviderError | None]


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds or seconds < 0:  # NaN or in the past
        return 0.0
    return min(seconds, 3600.0)


def host_of(url: str) -> str:
    """``host[:port]`` of a URL, for messages (never the path or query, which may hold tokens)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        return f"{host}:{parts.port}" if parts.port else host
    except ValueError:
        return "?"


def _snippet(content: bytes) -> str:
    """A short, printable hint of an error body (JSON detail or the first words of HTML)."""
    text = " ".join(content[:300].decode("utf-8", "replace").split())
    return text[:160]


async def request_json(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    provider: str,
    kind: Kind,
    headers: Mapping[str, str],
    body: Mapping[str, Any] | None = None,
    timeout: httpx.Timeout | None = None,
    classify: Classify | None = None,
) -> tuple[int, Any, Mapping[str, str]]:
    """Send one request and return ``(status, parsed JSON or None, headers)`` for 2xx and 4xx
    answers the caller interprets. Raises the project's errors for everything else; an error
    answer ``classify`` recognises (fal's 403 of a locked account) raises what it returns."""
    timeout = timeout or (SUBMIT_TIMEOUT if kind == "submit" else POLL_TIMEOUT)
    where = host_of(url)
    # httpx bounds each read; this bounds the whole answer (a body trickling in byte by byte).
    total = (timeout.connect or 5.0) + (timeout.read or 60.0)
    try:
        async with asyncio.timeout(total):
            async with http.stream(
                method,
                url,
                headers=headers,
                json=body,
                timeout=timeout,
                follow_redirects=False,
            ) as response:
                content = await read_capped(response, MAX_JSON_BYTES)
    except httpx.InvalidURL:
        # Before anything was sent: a base URL or a provider's link that httpx cannot parse.
        raise ProviderFailed(f"{provider}: invalid URL for {where}", provider=provider) from None
    except TimeoutError:
        if kind == "submit":
            raise SubmitOutcomeUnknown(
                f"{provider}: the answer from {where} took over {total:.0f} s after sending",
                provider=provider,
            ) from None
        raise ProviderUnavailable(
            f"{provider}: the answer from {where} took over {total:.0f} s", provider=provider
        ) from None
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        # The request never left this machine: no task can exist.
        raise ProviderUnavailable(
            f"{provider}: could not connect to {where} ({type(exc).__name__})", provider=provider
        ) from None
    except httpx.TimeoutException as exc:
        if kind == "submit":
            raise SubmitOutcomeUnknown(
                f"{provider}: no answer from {where} after sending the request "
                f"({type(exc).__name__})",
                provider=provider,
            ) from None
        raise ProviderUnavailable(
            f"{provider}: {where} did not answer in time ({type(exc).__name__})", provider=provider
        ) from None
    except (httpx.TransportError, httpx.DecodingError) as exc:
        # The connection broke after the request may have been sent.
        if kind == "submit":
            raise SubmitOutcomeUnknown(
                f"{provider}: connection to {where} broke after sending the request "
                f"({type(exc).__name__})",
                provider=provider,
            ) from None
        raise ProviderUnavailable(
            f"{provider}: connection to {where} broke ({type(exc).__name__})", provider=provider
        ) from None
    status = response.status_code
    snippet = _snippet(content or b"")
    data = None if content is None else parse_json(content)
    if status >= 400 and classify is not None:
        classified = classify(status, data)
        if classified is not None:
            log.error("%s", classified)
            raise classified
    retry_after = retry_after_seconds(response.headers.get("retry-after"))
    if status == 429:
        # BFL documents the wait in the 429's body as well: ``{"error": "rate_limit_exceeded",
        # "message": ..., "retry_after": 5}`` (https://github.com/black-forest-labs/skills,
        # skills/bfl-api/references/rate-limiting.md). The longer of the two is honoured.
        in_body = body_retry_after(data)
        if in_body is not None:
            retry_after = max(retry_after or 0.0, in_body)
        raise ProviderUnavailable(
            f"{provider}: rate limited (429)",
            provider=provider,
            status=429,
            retry_after=retry_after,
        )
    if status == 402:
        log.error(
            "%s: the account has no credits left (402); add credits. Other providers are tried.",
            provider,
        )
        raise ProviderUnavailable(
            f"{provider}: no credits (402)", provider=provider, status=402, retry_after=None
        )
    if status in (401, 403) and kind == "submit":
        log.error("%s: the API key was refused (%d); check its variable", provider, status)
        raise ProviderUnavailable(
            f"{provider}: the API key was refused ({status})", provider=provider, status=status
        )
    if status == 504 and kind == "submit":
        # A gateway gave up waiting; the provider behind it may have accepted the task.
        raise SubmitOutcomeUnknown(
            f"{provider}: gateway timeout (504) after sending the request",
            provider=provider,
            status=504,
        )
    if status >= 500 or status == 408:
        raise ProviderUnavailable(
            f"{provider}: server error {status}: {snippet}",
            provider=provider,
            status=status,
            retry_after=retry_after,
        )
    if 200 <= status < 300 and data is None:
        message = f"{provider}: malformed answer ({status}) from {where}: {snippet}"
        if kind == "submit":
            raise SubmitOutcomeUnknown(message, provider=provider, status=status)
        raise ProviderUnavailable(message, provider=provider, status=status)
    if 300 <= status < 400:
        message = f"{provider}: unexpected redirect ({status}) from {where}"
        if kind == "submit":
            raise SubmitOutcomeUnknown(message, provider=provider, status=status)
        raise ProviderFailed(message, provider=provider, status=status)
    return status, data, response.headers


def body_retry_after(data: Any) -> float | None:
    """Seconds from a numeric ``retry_after`` in an error body, bounded like the header."""
    value = data.get("retry_after") if isinstance(data, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    return retry_after_seconds(str(value))


def parse_json(content: bytes) -> Any:
    try:
        return json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None


def error_detail(data: Any) -> str:
    """The human part of a provider's error JSON, bounded."""
    if isinstance(data, Mapping):
        for key in ("detail", "error", "message", "msg"):
            value = data.get(key)
            if value:
                if isinstance(value, Mapping):
                    value = value.get("message") or value
                return str(value)[:300]
    return str(data)[:300] if data is not None else ""


def fail_for_status(provider: str, status: int, data: Any) -> ProviderError:
    """A 4xx answer to a submit that is neither moderation nor a known refusal."""
    return ProviderFailed(
        f"{provider}: request refused ({status}): {error_detail(data)}",
        provider=provider,
        status=status,
    )


MODERATION_WORDS = ("nsfw", "moderat", "safety", "content policy")


def mentions_moderation(detail: str, extra: tuple[str, ...] = ()) -> bool:
    """Whether a provider's error text says its safety system refused the request."""
    lowered = detail.lower()
    return any(word in lowered for word in MODERATION_WORDS + extra)
