"""Provider webhooks on the bot's own HTTP server: ``POST /webhooks/bfl/{job_id}`` and
``POST /webhooks/fal/{job_id}``.

A webhook is only a hint: once verified (BFL: HMAC-SHA256 of the body with the per-job secret in
``X-BFL-Signature``; fal: an Ed25519 signature over request id, user id, timestamp and the body's
SHA-256, with fal's published keys) it wakes the worker waiting on that job, which then polls at
once. The worker never takes an image URL from a webhook, so an unknown, finished, duplicate or
forged webhook changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import httpx
from aiohttp import web

from bot.domain.clock import Clock
from bot.domain.models import JobStatus
from bot.providers.bfl import webhook_secret_for
from bot.providers.router import Wakeups
from bot.providers.transport import host_of
from bot.store import Store

log = logging.getLogger(__name__)

FAL_JWKS_URL = "https://rest.alpha.fal.ai/.well-known/jwks.json"
FAL_TIMESTAMP_LEEWAY = 300.0
JWKS_CACHE_SECONDS = 24 * 3600.0
MAX_WEBHOOK_BYTES = 1024 * 1024


class FalKeys(Protocol):
    async def keys(self) -> list[bytes]:
        """Raw 32-byte Ed25519 public keys fal signs webhooks with."""


class StaticFalKeys:
    def __init__(self, keys: Iterable[bytes]) -> None:
        self._keys = list(keys)

    async def keys(self) -> list[bytes]:
        return list(self._keys)


class JwksFalKeys:
    """fal's published JWKS, fetched on first use and cached for a day."""

    def __init__(self, http: httpx.AsyncClient, clock: Clock, url: str = FAL_JWKS_URL) -> None:
        self._http = http
        self._clock = clock
        self._url = url
        self._keys: list[bytes] = []
        self._fetched = -1e18

    async def keys(self) -> list[bytes]:
        if self._keys and self._clock.monotonic() - self._fetched < JWKS_CACHE_SECONDS:
            return self._keys
        try:
            response = await self._http.get(self._url, timeout=10.0)
            response.raise_for_status()
            found = [_jwk_key(k) for k in response.json().get("keys", [])]
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            log.warning(
                "fal: could not fetch webhook keys from %s: %s",
                host_of(self._url),
                type(exc).__name__,
            )
            return self._keys
        self._keys = [k for k in found if k]
        self._fetched = self._clock.monotonic()
        return self._keys


def _jwk_key(jwk: Any) -> bytes | None:
    if not isinstance(jwk, Mapping) or jwk.get("crv") != "Ed25519" or not jwk.get("x"):
        return None
    text = str(jwk["x"])
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 32 else None


def bfl_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def fal_message(request_id: str, user_id: str, timestamp: str, body: bytes) -> bytes:
    return "\n".join([request_id, user_id, timestamp, hashlib.sha256(body).hexdigest()]).encode()


def verify_ed25519(public_keys: Iterable[bytes], signature: bytes, message: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    for raw in public_keys:
        try:
            Ed25519PublicKey.from_public_bytes(raw).verify(signature, message)
            return True
        except (InvalidSignature, ValueError):
            continue
    return False


class WebhookReceiver:
    def __init__(
        self,
        *,
        store: Store,
        wakeups: Wakeups,
        clock: Clock,
        bfl_key: str | None = None,
        fal_keys: FalKeys | None = None,
    ) -> None:
        self._store = store
        self._wakeups = wakeups
        self._clock = clock
        self._bfl_key = bfl_key
        self.fal_keys = fal_keys
        self.accepted = 0
        self.rejected = 0

    def install(self, app: web.Application) -> None:
        app.router.add_post("/webhooks/bfl/{job_id}", self.bfl)
        app.router.add_post("/webhooks/fal/{job_id}", self.fal)

    async def _body(self, request: web.Request) -> bytes | None:
        if (request.content_length or 0) > MAX_WEBHOOK_BYTES:
            return None
        body = await request.content.read(MAX_WEBHOOK_BYTES + 1)
        return None if len(body) > MAX_WEBHOOK_BYTES else body

    def _forged(self, provider: str, why: str) -> web.Response:
        self.rejected += 1
        log.warning("%s webhook rejected: %s", provider, why)
        return web.json_response({"error": "invalid signature"}, status=401)

    async def bfl(self, request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        if not self._bfl_key:
            return web.json_response({"error": "not configured"}, status=404)
        body = await self._body(request)
        if body is None:
            return web.json_response({"error": "too large"}, status=413)
        given = request.headers.get("X-BFL-Signature", "")
        expected = bfl_signature(webhook_secret_for(self._bfl_key, job_id), body)
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return self._forged("bfl", "signature mismatch")
        payload = _json(body)
        task_id = payload.get("id") or payload.get("task_id") if payload else None
        return await self._wake("bfl", job_id, str(task_id or ""))

    async def fal(self, request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        if self.fal_keys is None:
            return web.json_response({"error": "not configured"}, status=404)
        body = await self._body(request)
        if body is None:
            return web.json_response({"error": "too large"}, status=413)
        headers = request.headers
        request_id = headers.get("X-Fal-Webhook-Request-Id", "")
        user_id = headers.get("X-Fal-Webhook-User-Id", "")
        timestamp = headers.get("X-Fal-Webhook-Timestamp", "")
        try:
            signature = bytes.fromhex(headers.get("X-Fal-Webhook-Signature", ""))
            sent_at = float(timestamp)
        except ValueError:
            return self._forged("fal", "malformed signature headers")
        if not (request_id and timestamp and signature):
            return self._forged("fal", "missing signature headers")
        if abs(self._clock.now() - sent_at) > FAL_TIMESTAMP_LEEWAY:
            return self._forged("fal", "timestamp outside 5 minutes")
        message = fal_message(request_id, user_id, timestamp, body)
        if not verify_ed25519(await self.fal_keys.keys(), signature, message):
            return self._forged("fal", "signature mismatch")
        payload = _json(body)
        body_id = str(payload.get("request_id") or "") if payload else ""
        if body_id and body_id != request_id:
            return self._forged("fal", "request id differs from the signed one")
        return await self._wake("fal", job_id, request_id)

    async def _wake(self, provider: str, job_id: str, task_id: str) -> web.Response:
        job = await self._store.get_job(job_id)
        if job is None or job.provider != provider or not job.provider_task:
            return web.json_response({"status": "unknown job"}, status=404)
        known = {str(t.get("id")) for t in job.provider_task.get("tasks") or [job.provider_task]}
        if task_id not in known:
            return web.json_response({"status": "unknown task"}, status=404)
        if job.status is not JobStatus.SUBMITTED:
            return web.json_response({"status": "already done"})
        self.accepted += 1
        woke = self._wakeups.wake(job_id)
        log.info("%s webhook for job %s (%s)", provider, job_id, "woke" if woke else "no waiter")
        return web.json_response({"status": "ok"})


def _json(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def install_webhooks(
    settings: Any, *, server: Any, store: Store, router: Any, http: httpx.AsyncClient
) -> WebhookReceiver:
    """Add the webhook routes for the configured providers (``IMAGINE_PUBLIC_URL`` is set)."""
    names = settings.effective_providers
    receiver = WebhookReceiver(
        store=store,
        wakeups=router.wakeups,
        clock=router.clock,
        bfl_key=settings.secret("BFL_API_KEY") if "bfl" in names else None,
        fal_keys=JwksFalKeys(http, router.clock, settings.fal_jwks_url) if "fal" in names else None,
    )
    receiver.install(server.app)
    router.webhooks = receiver
    return receiver
