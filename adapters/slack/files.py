"""Input images hosted by Slack (``url_private`` links on files.slack.com): downloaded here with the
bot token, which the core's fetcher never sends, then cleaned and kept in the blob store."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from urllib.parse import urlsplit

import httpx

from bot.domain.errors import DownloadRefused
from bot.media import images
from bot.net.guard import MAX_BYTES, TIMEOUT
from bot.net.httpclient import read_capped
from bot.ports import BlobStore

log = logging.getLogger(__name__)

DEFAULT_FILES_URL = "https://files.slack.com/"
_DEFAULT_PORTS = {"https": 443, "http": 80}


def origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL, or None for anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[parts.scheme]


class SlackFiles:
    """Fetches files of the one Slack origin (``SLACK_FILES_URL``) with the bot token.

    The token goes only to that exact origin (scheme, host and port), redirects are never followed
    (Slack answers a request it does not accept with a redirect to its sign-in page), and the body
    is cut at the same byte and time caps as any input image."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        token: str | None,
        blobs: BlobStore,
        files_url: str = DEFAULT_FILES_URL,
        *,
        max_bytes: int = MAX_BYTES,
        timeout: float = TIMEOUT,
    ) -> None:
        self._http = http
        self._token = token
        self._blobs = blobs
        self._origin = origin(files_url)
        self._max_bytes = max_bytes
        self._timeout = timeout

    def is_slack_file(self, url: str) -> bool:
        return self._origin is not None and origin(url) == self._origin

    async def store_inputs(
        self, refs: tuple[str, ...], *, token: str | None = None
    ) -> tuple[str, ...]:
        """The user's input images, with each Slack-hosted one replaced by its stored copy
        (``blob:<key>``); other links pass through to the core's fetcher. Raises DownloadRefused
        or InvalidImage with a message for the user. ``token`` is the workspace's bot token
        (default: the one given at construction)."""
        return tuple(
            [await self._store(ref, token) if self.is_slack_file(ref) else ref for ref in refs]
        )

    async def _store(self, url: str, token: str | None) -> str:
        data = await self.download(url, token=token)
        clean = await asyncio.to_thread(images.clean, data)
        key = f"inputs/{hashlib.sha256(clean.data).hexdigest()[:24]}.{clean.extension}"
        await self._blobs.put(key, clean.data, clean.content_type)
        return f"blob:{key}"

    async def download(self, url: str, *, token: str | None = None) -> bytes:
        """The file's bytes; DownloadRefused when Slack does not hand them over."""
        if not self.is_slack_file(url):
            raise DownloadRefused("That is not a file hosted by Slack.")
        token = token or self._token
        if not token:
            raise DownloadRefused("The app is not installed in this workspace.")
        too_large = f"That image is larger than the {self._max_bytes / 1024**2:.0f} MB limit."
        try:
            async with asyncio.timeout(self._timeout):
                async with self._http.stream(
                    "GET",
                    url,
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=self._timeout,
                    follow_redirects=False,
                ) as response:
                    if response.status_code != 200:
                        log.info("Slack file: HTTP %d", response.status_code)
                        raise DownloadRefused(
                            "The bot could not open that Slack file (is it shared in a channel "
                            "the bot is in, and does the app have the files:read scope?)."
                        )
                    data = await read_capped(response, self._max_bytes)
        except (TimeoutError, httpx.TimeoutException):
            raise DownloadRefused("That image took too long to download.") from None
        except httpx.RequestError as exc:
            log.info("Slack file: download failed: %s", type(exc).__name__)
            raise DownloadRefused("That image could not be downloaded.") from None
        if data is None:
            raise DownloadRefused(too_large)
        return data
