"""A fake of fal.ai's queue API (queue.fal.run), after its public docs.

``POST /<app id>`` with ``Authorization: Key ...`` answers ``request_id``, ``status_url``,
``response_url``, ``cancel_url`` (request URLs live under the app's owner/name, without ``/edit``).
``GET .../status`` answers ``IN_QUEUE`` (``queue_position``), ``IN_PROGRESS``, ``COMPLETED``;
``GET .../requests/<id>`` the result (``images[].url``, ``seed``, ``has_nsfw_concepts``; a flagged
image is black); ``PUT .../cancel``. Errors answer a ``detail`` array of typed objects
(https://docs.fal.ai/errors); a prompt the content checker refuses gets a 422 of type
``content_policy_violation`` on the submit, the status or the result (``content_policy_next``).
With ``?fal_webhook=`` it POSTs the result, signed with
Ed25519 over ``request id\\nuser id\\ntimestamp\\nsha256(body)`` (headers ``X-Fal-Webhook-*``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.fakes.provider_common import FakeServer, content_type_of, make_image

APPS = {
    "fal-ai/flux-2-pro",
    "fal-ai/flux-2-pro/edit",
    "fal-ai/flux-2-max",
    "fal-ai/flux-2-max/edit",
    "fal-ai/flux-2-flex",
    "fal-ai/flux-2-flex/edit",
    "fal-ai/flux-2/klein/4b",
    "fal-ai/flux-2/klein/4b/edit",
    "fal-ai/flux-2/klein/9b",
    "fal-ai/flux-2/klein/9b/edit",
    "fal-ai/flux-2",
    "fal-ai/flux-2/edit",
    "fal-ai/flux-pro/v1.1",
    "fal-ai/flux-pro/kontext",
}
PRESETS = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}


@dataclass
class FalRequest:
    id: str
    app_id: str
    body: dict[str, Any]
    created: float
    ready_at: float
    queue_until: float
    nsfw: bool = False
    error: str | None = None
    # "status" or "result": where this request's content-policy refusal shows.
    refused_at: str | None = None
    cancelled: bool = False
    webhook: str | None = None
    images: list[str] | None = None


class FakeFal(FakeServer):
    def __init__(self, key: str = "fal-test-key:0123456789abcdef") -> None:
        super().__init__()
        self.key = key
        self.user_id = "user-123"
        self.signing_key = Ed25519PrivateKey.generate()
        self.requests_by_id: dict[str, FalRequest] = {}
        self.queue_seconds = 0.0
        self.queue_position = 3
        self.nsfw_next: deque[bool] = deque()
        self.error_next: deque[str] = deque()
        # An account out of money: fal locks it and answers 403 with this detail on every
        # billable call and on storage uploads, while "a plain queue.fal.run/.../status GET
        # returns 200" (https://github.com/fal-ai/fal/issues/1147; the detail's wording also
        # https://github.com/fal-ai/fal/issues/1163). This fake does the same: submits and
        # upload initiations are locked, status, result and cancel reads are not.
        self.locked: str | None = None
        # Where the next requests are refused for content: "submit", "status" or "result".
        self.content_policy_next: deque[str] = deque()
        self.uploads_initiated = 0
        r = self.app.router
        r.add_get("/.well-known/jwks.json", self._jwks)
        # fal's storage: ``POST {rest}/storage/upload/initiate?storage_type=fal-cdn-v3`` with
        # ``{content_type, file_name}`` answers ``{upload_url, file_url}``
        # (https://github.com/fal-ai/fal-js/blob/main/libs/client/src/storage.ts).
        r.add_post("/storage/upload/initiate", self._upload_initiate)
        r.add_get("/{owner}/{name}/requests/{rid}/status", self._status)
        r.add_put("/{owner}/{name}/requests/{rid}/cancel", self._cancel)
        r.add_get("/{owner}/{name}/requests/{rid}", self._response)
        r.add_post("/{app:.+}", self._submit)

    @property
    def base_url(self) -> str:
        return self.origin

    @property
    def public_key(self) -> bytes:
        return self.signing_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def paid_tasks(self) -> int:
        return len(self.requests_by_id)

    @property
    def jwks_url(self) -> str:
        return f"{self.origin}/.well-known/jwks.json"

    async def _jwks(self, request: web.Request) -> web.StreamResponse:
        x = base64.urlsafe_b64encode(self.public_key).decode().rstrip("=")
        return web.json_response(
            {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "fake-1", "use": "sig"}]}
        )

    def _authorised(self, request: web.Request, *, billable: bool = False) -> web.Response | None:
        if request.headers.get("Authorization") != f"Key {self.key}":
            return web.json_response({"detail": "Unauthorized"}, status=401)
        if billable and self.locked is not None:
            return web.json_response({"detail": self.locked}, status=403)
        return None

    async def _upload_initiate(self, request: web.Request) -> web.StreamResponse:
        refused = self._authorised(request, billable=True)
        if refused:
            return refused
        body = await request.json()
        name = str(body.get("file_name") or "upload.bin")
        self.uploads_initiated += 1
        return web.json_response(
            {
                "upload_url": f"{self.origin}/uploads/{self.uploads_initiated}",
                "file_url": f"{self.origin}/files/{self.uploads_initiated}/{name}",
            }
        )

    def exhaust_balance(self) -> None:
        """Lock the account as fal does when its balance runs out."""
        self.locked = (
            "User is locked. Reason: Exhausted balance. "
            "Top up your balance at fal.ai/dashboard/billing."
        )

    def _urls(self, req: FalRequest) -> dict[str, str]:
        root = "/".join(req.app_id.split("/")[:2])
        base = f"{self.origin}/{root}/requests/{req.id}"
        return {
            "status_url": f"{base}/status",
            "response_url": base,
            "cancel_url": f"{base}/cancel",
        }

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        refused = self._authorised(request, billable=True)
        if refused:
            return refused
        fault = self.take_fault("submit")
        if fault is not None:
            return await self.apply(request, fault)
        app_id = request.match_info["app"]
        if app_id not in APPS:
            return web.json_response({"detail": f"Application '{app_id}' not found"}, status=404)
        try:
            body = await request.json()
        except (ValueError, json.JSONDecodeError):
            return web.json_response({"detail": "invalid JSON"}, status=422)
        problem = _validate(app_id, body)
        if problem:
            return web.json_response(
                {"detail": [{"loc": ["body"], "msg": problem, "type": "value_error"}]}, status=422
            )
        refused_at = self.content_policy_next.popleft() if self.content_policy_next else None
        if refused_at == "submit":
            return content_policy_violation(body.get("prompt"))
        now = time.monotonic()
        req = FalRequest(
            id=str(uuid.uuid4()),
            app_id=app_id,
            body=body,
            created=now,
            queue_until=now + self.queue_seconds,
            ready_at=now + self.queue_seconds + self.generation_seconds,
            nsfw=self.nsfw_next.popleft() if self.nsfw_next else False,
            error=self.error_next.popleft() if self.error_next else None,
            refused_at=refused_at,
            webhook=request.query.get("fal_webhook"),
        )
        self.requests_by_id[req.id] = req
        if req.webhook:
            self.spawn(self._deliver_webhook(req))
        after = self.take_fault("submit", after_accept=True)
        if after is not None:
            return await self.apply(request, after)
        return web.json_response(
            {"request_id": req.id, "gateway_request_id": req.id, **self._urls(req)}
        )

    def _find(self, request: web.Request) -> FalRequest | None:
        return self.requests_by_id.get(request.match_info["rid"])

    async def _status(self, request: web.Request) -> web.StreamResponse:
        refused = self._authorised(request)
        if refused:
            return refused
        fault = self.take_fault("poll")
        if fault is not None:
            return await self.apply(request, fault)
        req = self._find(request)
        if req is None:
            return web.json_response({"detail": "Request not found"}, status=404)
        now = time.monotonic()
        urls = self._urls(req)
        if req.cancelled:
            return web.json_response({"status": "CANCELLED", **urls})
        if now < req.queue_until:
            return web.json_response(
                {"status": "IN_QUEUE", "queue_position": self.queue_position, **urls}, status=202
            )
        if now < req.ready_at:
            return web.json_response({"status": "IN_PROGRESS", "logs": [], **urls}, status=202)
        if req.refused_at == "status":
            return content_policy_violation(req.body.get("prompt"))
        return web.json_response(
            {"status": "COMPLETED", "logs": [], "metrics": {"inference_time": 1.0}, **urls}
        )

    def _result(self, req: FalRequest) -> dict[str, Any]:
        count = int(req.body.get("num_images", 1))
        size = self.image_size or _size(req.body.get("image_size"))
        # ``output_format``: jpeg (the default) or png (https://fal.ai/models/fal-ai/flux-2-pro/api).
        fmt = str(req.body.get("output_format") or "jpeg")
        if req.images is None:
            colour = (0, 0, 0) if req.nsfw else (200, 80, 40)
            data = make_image(*size, colour=colour, fmt=fmt) if not req.nsfw else _black(*size)
            req.images = [self.store_image(data, fmt) for _ in range(count)]
        return {
            "images": [
                {
                    "url": url,
                    "content_type": content_type_of(fmt),
                    "width": size[0],
                    "height": size[1],
                }
                for url in req.images
            ],
            "seed": req.body.get("seed", 42),
            "has_nsfw_concepts": [req.nsfw] * count,
            "prompt": req.body.get("prompt"),
            "timings": {"inference": 1.0},
        }

    async def _response(self, request: web.Request) -> web.StreamResponse:
        refused = self._authorised(request)
        if refused:
            return refused
        fault = self.take_fault("response")
        if fault is not None:
            return await self.apply(request, fault)
        req = self._find(request)
        if req is None:
            return web.json_response({"detail": "Request not found"}, status=404)
        if time.monotonic() < req.ready_at:
            return web.json_response({"detail": "Request is still in progress"}, status=400)
        if req.refused_at == "result":
            return content_policy_violation(req.body.get("prompt"))
        if req.error:
            return web.json_response({"detail": req.error}, status=422)
        return web.json_response(self._result(req))

    async def _cancel(self, request: web.Request) -> web.StreamResponse:
        refused = self._authorised(request)
        if refused:
            return refused
        req = self._find(request)
        if req is None:
            return web.json_response({"detail": "Request not found"}, status=404)
        if time.monotonic() >= req.queue_until:
            return web.json_response({"status": "ALREADY_COMPLETED"}, status=400)
        req.cancelled = True
        return web.json_response({"status": "CANCELLATION_REQUESTED"}, status=202)

    def sign(self, request_id: str, timestamp: str, body: bytes) -> str:
        message = "\n".join([request_id, self.user_id, timestamp, hashlib.sha256(body).hexdigest()])
        return self.signing_key.sign(message.encode()).hex()

    async def _deliver_webhook(self, req: FalRequest) -> None:
        await asyncio.sleep(max(0.0, req.ready_at - time.monotonic()))
        fault = self.take_fault("webhook")
        if fault is not None and fault.drop:
            return
        if req.refused_at:
            # A failed request's webhook: status ERROR with the error body as its payload
            # (https://docs.fal.ai/model-endpoints/webhooks).
            payload: dict[str, Any] = {
                "request_id": req.id,
                "gateway_request_id": req.id,
                "status": "ERROR",
                "error": "Unprocessable Entity",
                "payload": json.loads(
                    content_policy_violation(req.body.get("prompt")).text or "{}"
                ),
            }
        elif req.error:
            payload = {
                "request_id": req.id,
                "gateway_request_id": req.id,
                "status": "ERROR",
                "error": req.error,
                "payload": {"detail": req.error},
            }
        else:
            payload = {
                "request_id": req.id,
                "gateway_request_id": req.id,
                "status": "OK",
                "payload": self._result(req),
            }
        body = json.dumps(payload).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Fal-Webhook-Request-Id": req.id,
            "X-Fal-Webhook-User-Id": self.user_id,
            "X-Fal-Webhook-Timestamp": timestamp,
            "X-Fal-Webhook-Signature": self.sign(req.id, timestamp, body),
        }
        assert req.webhook is not None
        async with aiohttp.ClientSession() as session:
            try:
                async with session.post(req.webhook, data=body, headers=headers) as response:
                    self.webhook_calls.append((req.id, response.status))
            except aiohttp.ClientError:
                self.webhook_calls.append((req.id, 0))


def content_policy_violation(prompt: Any) -> web.Response:
    """fal's answer to a request its content checker refused: 422 with a ``detail`` array of
    error objects ``{loc, msg, type, url, input}``; ``type`` is the field to act on, ``msg`` is
    for people (https://docs.fal.ai/errors, https://docs.fal.ai/errors#content_policy_violation)."""
    return web.json_response(
        {
            "detail": [
                {
                    "loc": ["body", "prompt"],
                    "msg": "The content was flagged by a content checker.",
                    "type": "content_policy_violation",
                    "url": "https://docs.fal.ai/errors#content_policy_violation",
                    "input": prompt,
                }
            ]
        },
        status=422,
        # Retrying the same request cannot succeed (https://docs.fal.ai/errors: X-Fal-Retryable).
        headers={"X-Fal-Retryable": "false"},
    )


def _size(image_size: Any) -> tuple[int, int]:
    if isinstance(image_size, dict):
        return int(image_size["width"]), int(image_size["height"])
    return PRESETS.get(str(image_size or "landscape_4_3"), (1024, 768))


def _black(width: int, height: int) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (0, 0, 0)).save(out, format="PNG")
    return out.getvalue()


def _validate(app_id: str, body: Any) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("prompt"), str) or not body["prompt"]:
        return "field required: prompt"
    size = body.get("image_size")
    if size is not None:
        if isinstance(size, str):
            if size not in PRESETS:
                return f"image_size must be one of {sorted(PRESETS)}"
        elif isinstance(size, dict):
            w, h = size.get("width"), size.get("height")
            if (
                not isinstance(w, int)
                or not isinstance(h, int)
                or not (64 <= w <= 14142 and 64 <= h <= 14142)
            ):
                return "image_size width/height out of range"
        else:
            return "image_size must be a preset or {width, height}"
    tolerance = body.get("safety_tolerance")
    # FLUX.2 [klein] and [dev] have no safety_tolerance in their input schemas
    # (https://fal.ai/models/fal-ai/flux-2/klein/9b/llms.txt, https://fal.ai/models/fal-ai/flux-2-dev/llms.txt):
    # this fake refuses the field there, so a bot sending it is caught.
    if tolerance is not None and (app_id.startswith("fal-ai/flux-2/") or app_id == "fal-ai/flux-2"):
        return f"safety_tolerance is not a field of {app_id}"
    if tolerance is not None and tolerance not in ("1", "2", "3", "4", "5"):
        return "safety_tolerance must be one of '1'..'5'"
    if app_id.startswith("fal-ai/flux-2-flex"):
        steps = body.get("num_inference_steps")
        if steps is not None and (not isinstance(steps, int) or not 1 <= steps <= 50):
            return "num_inference_steps must be from 1 to 50"
        guidance = body.get("guidance_scale")
        if guidance is not None and not 1.5 <= float(guidance) <= 10:
            return "guidance_scale must be from 1.5 to 10"
    if body.get("output_format", "jpeg") not in ("jpeg", "png"):
        return "output_format must be one of 'jpeg', 'png'"
    if app_id.endswith("/edit") and not body.get("image_urls"):
        return "field required: image_urls"
    return None
