"""The few Discord REST calls a worker needs to deliver, on the app's shared httpx client.

No gateway and no discord.py client: any worker process can deliver any Discord job. Interaction
tokens sit in the URL path; they never reach an exception message or a log line from here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from bot.domain.clock import Clock
from bot.ops import metrics

log = logging.getLogger(__name__)

# Discord answers 401 "Invalid Webhook Token" (50027) once an interaction token has expired,
# and 404 "Unknown Webhook" / "Unknown Message" when the original response is gone.
INVALID_WEBHOOK_TOKEN = 50027
UNKNOWN_WEBHOOK = 10015
UNKNOWN_MESSAGE = 10008
MAX_RATE_LIMIT_WAIT = 30.0
MAX_TRIES = 4


@dataclass(frozen=True)
class FilePart:
    filename: str
    data: bytes
    content_type: str


class DiscordHTTPError(Exception):
    """A Discord REST call failed; the message names the operation, never the URL."""

    def __init__(self, operation: str, status: int, code: int | None, text: str) -> None:
        super().__init__(f"{operation}: HTTP {status}" + (f" (code {code})" if code else ""))
        self.operation = operation
        self.status = status
        self.code = code
        self.text = text

    @property
    def token_gone(self) -> bool:
        """The interaction token expired or its message is gone: use the bot token instead."""
        return self.status == 401 or self.code in (
            INVALID_WEBHOOK_TOKEN,
            UNKNOWN_WEBHOOK,
            UNKNOWN_MESSAGE,
        )

    @property
    def retryable(self) -> bool:
        return self.status == 429 or self.status >= 500


class DiscordUnreachable(Exception):
    def __init__(self, operation: str, exc: Exception) -> None:
        super().__init__(f"{operation}: {type(exc).__name__}")


class DiscordRest:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_base: str,
        bot_token: str | None,
        clock: Clock,
    ) -> None:
        self._http = http
        self._base = api_base.rstrip("/")
        self._bot_token = bot_token
        self._clock = clock

    # Interaction webhook (the interaction token is the credential) -----------------------------

    async def edit_original(
        self,
        application_id: str,
        token: str,
        payload: Mapping[str, Any],
        files: Sequence[FilePart] = (),
    ) -> dict[str, Any]:
        return await self._send(
            "edit_original_response",
            "PATCH",
            f"/webhooks/{application_id}/{token}/messages/@original",
            payload,
            files,
            auth=False,
        )

    async def delete_original(self, application_id: str, token: str) -> None:
        await self._send(
            "delete_original_response",
            "DELETE",
            f"/webhooks/{application_id}/{token}/messages/@original",
            None,
            (),
            auth=False,
        )

    async def follow_up(
        self,
        application_id: str,
        token: str,
        payload: Mapping[str, Any],
        files: Sequence[FilePart] = (),
    ) -> dict[str, Any]:
        return await self._send(
            "create_followup_message",
            "POST",
            f"/webhooks/{application_id}/{token}?wait=true",
            payload,
            files,
            auth=False,
        )

    # Bot token -----------------------------------------------------------------------------------

    async def create_message(
        self, channel_id: str, payload: Mapping[str, Any], files: Sequence[FilePart] = ()
    ) -> dict[str, Any]:
        return await self._send(
            "create_message", "POST", f"/channels/{channel_id}/messages", payload, files, auth=True
        )

    # ---------------------------------------------------------------------------------------------

    async def _send(
        self,
        operation: str,
        method: str,
        path: str,
        payload: Mapping[str, Any] | None,
        files: Sequence[FilePart],
        *,
        auth: bool,
    ) -> dict[str, Any]:
        headers = {"User-Agent": "DiscordBot (https://github.com/imagine-bot, 0.1) imagine-bot"}
        if auth:
            if not self._bot_token:
                raise DiscordHTTPError(operation, 401, None, "no bot token configured")
            headers["Authorization"] = f"Bot {self._bot_token}"
        for attempt in range(1, MAX_TRIES + 1):
            request = self._build(method, path, payload, files, headers)
            try:
                response = await self._http.send(request)
            except httpx.HTTPError as exc:
                raise DiscordUnreachable(operation, exc) from None
            if response.status_code == 429:
                metrics.rate_limited("discord")
            if response.status_code == 429 and attempt < MAX_TRIES:
                wait = _retry_after(response)
                log.info("discord %s rate limited; waiting %.2f s", operation, wait)
                await self._clock.sleep(min(wait, MAX_RATE_LIMIT_WAIT))
                continue
            if response.status_code >= 400:
                code = None
                try:
                    body = response.json()
                    if isinstance(body, dict) and isinstance(body.get("code"), int):
                        code = body["code"]
                except ValueError:
                    pass
                raise DiscordHTTPError(operation, response.status_code, code, response.text[:500])
            if response.status_code == 204 or not response.content:
                return {}
            try:
                data = response.json()
            except ValueError:
                return {}
            return data if isinstance(data, dict) else {}
        raise AssertionError("unreachable")  # pragma: no cover

    def _build(
        self,
        method: str,
        path: str,
        payload: Mapping[str, Any] | None,
        files: Sequence[FilePart],
        headers: Mapping[str, str],
    ) -> httpx.Request:
        url = self._base + path
        if payload is None:
            return self._http.build_request(method, url, headers=headers)
        if not files:
            return self._http.build_request(method, url, headers=headers, json=dict(payload))
        body = dict(payload)
        body["attachments"] = [
            {"id": str(index), "filename": part.filename} for index, part in enumerate(files)
        ]
        multipart: list[tuple[str, tuple[str | None, bytes, str]]] = [
            ("payload_json", (None, json.dumps(body).encode(), "application/json"))
        ]
        for index, part in enumerate(files):
            multipart.append((f"files[{index}]", (part.filename, part.data, part.content_type)))
        return self._http.build_request(method, url, headers=headers, files=multipart)


def _retry_after(response: httpx.Response) -> float:
    try:
        body = response.json()
        if isinstance(body, dict) and body.get("retry_after") is not None:
            return max(0.0, float(body["retry_after"]))
    except ValueError:
        pass
    try:
        return max(0.0, float(response.headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0
