"""Downloads of provider results: only from allowed hosts, no redirects elsewhere, capped in size
and time, retried with backoff on passing faults.

Allowed: the configured API base's own scheme, host and port; each provider's documented result
hosts over HTTPS; and the hosts an operator lists in ``IMAGINE_DOWNLOAD_ALLOW``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx

from bot.domain.clock import Clock
from bot.domain.errors import DownloadRefused, ProviderFailed, ProviderTimeout, ProviderUnavailable
from bot.net.httpclient import read_capped
from bot.providers.retry import RetryPolicy
from bot.providers.transport import host_of, retry_after_seconds

log = logging.getLogger(__name__)

MAX_RESULT_BYTES = 40 * 1024 * 1024
DOWNLOAD_SECONDS = 60.0
MAX_REDIRECTS = 3
# Per connect and per read; DOWNLOAD_SECONDS bounds the whole download (a trickle).
DOWNLOAD_TIMEOUT = httpx.Timeout(10.0, read=30.0)
# What httpx calls a redirect (with a Location header).
REDIRECTS = frozenset({301, 302, 303, 307, 308})


class ResultExpired(ProviderFailed):
    """The result URL answered 403/404/410: it expired or was never there."""


@dataclass(frozen=True)
class HostRule:
    """One allowed origin: an exact host or ``*.suffix``, an optional port, allowed schemes."""

    host: str
    port: int | None = None
    schemes: frozenset[str] = frozenset({"https"})
    any_port: bool = False

    def matches(self, scheme: str, host: str, port: int | None) -> bool:
        if scheme not in self.schemes:
            return False
        if self.host.startswith("*."):
            suffix = self.host[1:]
            if not (host.endswith(suffix) and len(host) > len(suffix)):
                return False
        elif host != self.host:
            return False
        if self.any_port:
            return True
        if self.port is None:
            return port is None or port == _default_port(scheme)
        return (port or _default_port(scheme)) == self.port

    @classmethod
    def for_base(cls, url: str) -> HostRule:
        """The configured base URL's own origin (http allowed only where the base is http)."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        return cls(
            host=(parts.hostname or "").lower(),
            port=parts.port or _default_port(scheme),
            schemes=frozenset({scheme}),
        )

    @classmethod
    def parse(cls, entry: str) -> HostRule:
        """An ``IMAGINE_DOWNLOAD_ALLOW`` entry: ``host``, ``host:port``, ``*.domain`` or a URL."""
        entry = entry.strip().lower()
        if "://" in entry:
            parts = urlsplit(entry)
            scheme = parts.scheme
            return cls(
                host=parts.hostname or "", port=parts.port, schemes=frozenset({scheme or "https"})
            )
        host, _, port = entry.partition(":")
        # An operator's explicit entry may be plain http (a proxy or a local mirror).
        return cls(
            host=host,
            port=int(port) if port.isdigit() else None,
            schemes=frozenset({"http", "https"}),
        )


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


@dataclass(frozen=True)
class AllowList:
    rules: tuple[HostRule, ...] = field(default_factory=tuple)

    @classmethod
    def build(
        cls, base_url: str, documented: Iterable[str], extra: Iterable[str] = ()
    ) -> AllowList:
        rules = [HostRule.for_base(base_url)]
        rules += [HostRule(host=h.lower()) for h in documented]
        rules += [HostRule.parse(e) for e in extra if e.strip()]
        return cls(tuple(rules))

    def allows(self, url: str) -> bool:
        try:
            parts = urlsplit(url)
            scheme = parts.scheme.lower()
            host = (parts.hostname or "").lower()
            port = parts.port
        except ValueError:
            return False
        if not host or parts.username or parts.password:
            return False
        return any(rule.matches(scheme, host, port) for rule in self.rules)


class Downloader:
    """Fetches result bytes for one provider under its allow-list."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        provider: str,
        allow: AllowList,
        clock: Clock,
        rng: random.Random,
        max_bytes: int = MAX_RESULT_BYTES,
        seconds: float = DOWNLOAD_SECONDS,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._http = http
        self._provider = provider
        self.allow = allow
        self._clock = clock
        self._rng = rng
        self.max_bytes = max_bytes
        self.seconds = seconds
        self._retry = retry or RetryPolicy(attempts=3, base=0.5, cap=8.0, budget=30.0)

    def check(self, url: str) -> None:
        """Raise DownloadRefused (naming the host) unless ``url`` may be fetched."""
        if url.startswith("data:"):
            return
        if not self.allow.allows(url):
            host = host_of(url)
            log.warning(
                "%s: refused to download a result from host %s: not the API's own host nor a "
                "documented result host (add it to IMAGINE_DOWNLOAD_ALLOW if you trust it)",
                self._provider,
                host,
            )
            raise DownloadRefused(f"{self._provider}: result host {host} is not allowed")

    async def fetch(self, url: str) -> bytes:
        """The bytes behind a result URL (or a ``data:`` URL), retried on passing faults."""
        if url.startswith("data:"):
            return decode_data_url(url, self.max_bytes)
        self.check(url)
        return await self._retry.run(
            lambda: self._fetch_once(url), clock=self._clock, rng=self._rng
        )

    async def _fetch_once(self, url: str) -> bytes:
        try:
            async with asyncio.timeout(self.seconds):
                return await self._follow(url)
        except TimeoutError:
            raise ProviderTimeout(
                f"{self._provider}: download from {host_of(url)} took over {self.seconds:.0f} s",
                provider=self._provider,
            ) from None

    async def _follow(self, url: str) -> bytes:
        """Each hop checked against the allow-list before it is asked for (a redirect is followed
        only to an allowed host)."""
        for _ in range(MAX_REDIRECTS + 1):
            self.check(url)
            try:
                async with self._http.stream(
                    "GET", url, timeout=DOWNLOAD_TIMEOUT, follow_redirects=False
                ) as response:
                    location = response.headers.get("location")
                    if response.status_code in REDIRECTS and location:
                        url = urljoin(url, location)
                        continue
                    self._refuse_status(url, response)
                    content = await read_capped(response, self.max_bytes)
            except httpx.InvalidURL:
                raise ProviderFailed(
                    f"{self._provider}: result URL for {host_of(url)} is not a valid URL",
                    provider=self._provider,
                ) from None
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                raise ProviderUnavailable(
                    f"{self._provider}: could not connect to {host_of(url)} ({type(exc).__name__})",
                    provider=self._provider,
                ) from None
            except httpx.RequestError as exc:
                raise ProviderUnavailable(
                    f"{self._provider}: download from {host_of(url)} broke ({type(exc).__name__})",
                    provider=self._provider,
                ) from None
            if content is None:
                raise DownloadRefused(f"{self._provider}: result is over {self.max_bytes} bytes")
            return content
        raise DownloadRefused(f"{self._provider}: too many redirects")

    def _refuse_status(self, url: str, response: httpx.Response) -> None:
        """The project's error for an answer other than 200 (its body is never read)."""
        status = response.status_code
        if status in (403, 404, 410):
            raise ResultExpired(
                f"{self._provider}: result URL answered {status} (expired?)",
                provider=self._provider,
                status=status,
            )
        if status == 429 or status >= 500:
            raise ProviderUnavailable(
                f"{self._provider}: result host {host_of(url)} answered {status}",
                provider=self._provider,
                status=status,
                retry_after=retry_after_seconds(response.headers.get("retry-after")),
            )
        if status != 200:
            raise ProviderFailed(
                f"{self._provider}: result download answered {status}",
                provider=self._provider,
                status=status,
            )


def decode_data_url(url: str, max_bytes: int) -> bytes:
    header, _, payload = url.partition(",")
    if ";base64" not in header:
        raise ProviderFailed("result data URL is not base64")
    if len(payload) > max_bytes * 4 // 3 + 8:
        raise DownloadRefused("result is over the size cap")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ProviderFailed("result data URL is not valid base64") from None
