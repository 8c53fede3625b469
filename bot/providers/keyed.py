"""What the three paid providers share: the shared HTTP client, the key, the base URL, the cap on
tasks in flight, a downloader for result hosts, and the key check's one authenticated call."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from bot.domain.clock import Clock
from bot.domain.errors import ProviderFailed
from bot.providers.base import PollResult
from bot.providers.download import AllowList, Downloader, ResultExpired
from bot.providers.transport import POLL_TIMEOUT, SUBMIT_TIMEOUT, request_json


class KeyedProvider:
    """A provider behind an API key. Subclasses name themselves, their defaults and the hosts
    their results come from, and say how the key is sent (``_headers``)."""

    name: str
    key_variable: ClassVar[str]
    default_base: ClassVar[str]
    default_concurrency: ClassVar[int]
    result_hosts: ClassVar[tuple[str, ...]]
    submit_is_idempotent = False
    submit_timeout: httpx.Timeout = SUBMIT_TIMEOUT
    poll_timeout: httpx.Timeout = POLL_TIMEOUT

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_key: str,
        base_url: str | None = None,
        clock: Clock,
        rng: random.Random | None = None,
        download_allow: tuple[str, ...] = (),
        public_url: str | None = None,
        concurrency: int | None = None,
    ) -> None:
        self._http = http
        self._key = api_key
        self.base_url = (base_url or self.default_base).rstrip("/")
        self._clock = clock
        self._rng = rng or random.Random()
        self.concurrency = self.default_concurrency if concurrency is None else concurrency
        self.public_url = public_url.rstrip("/") if public_url else None
        self.downloader = Downloader(
            http,
            provider=self.name,
            allow=AllowList.build(self.base_url, self.result_hosts, download_allow),
            clock=clock,
            rng=self._rng,
        )
        self._configure()

    def _configure(self) -> None:
        """A subclass's own set-up, once the shared fields are set."""

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    @property
    def _headers(self) -> dict[str, str]:
        raise NotImplementedError

    async def fetch(self, task: Mapping[str, Any], result: PollResult) -> list[bytes]:
        """Each result URL, downloaded at once; one expired meanwhile is fetched once more."""
        out: list[bytes] = []
        for url in result.outputs:
            try:
                out.append(await self.downloader.fetch(url))
            except ResultExpired:
                out.append(await self.downloader.fetch(url))  # the one re-fetch
        return out

    async def _key_call(self, url: str, what: str, *, strict: bool = True) -> Any:
        """GET ``url`` with the key: a refused key (401/403) names its variable; with ``strict``,
        any other error status names ``what`` was asked. Returns the parsed answer."""
        status, data, _ = await request_json(
            self._http,
            "GET",
            url,
            provider=self.name,
            kind="poll",
            headers=self._headers,
            timeout=self.poll_timeout,
        )
        if status in (401, 403):
            raise ProviderFailed(f"{self.name}: {self.key_variable} was refused", status=status)
        if strict and status >= 400:
            raise ProviderFailed(f"{self.name}: {what} answered {status}", status=status)
        return data
