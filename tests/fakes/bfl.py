"""A fake of the Black Forest Labs API (api.bfl.ai), after its public docs.

``POST /v1/<endpoint>`` with ``x-key`` answers ``{id, polling_url, cost, input_mp, output_mp}``
(``AsyncResponse``); the polling URL is "regional" (a path only that region serves). With a
``webhook_url`` it answers ``{id, status, webhook_url}`` (``AsyncWebhookResponse``, no polling URL:
https://docs.bfl.ai/api-reference/models/generate-or-edit-an-image-with-flux2-%5Bpro%5D); then the
task is read at ``GET /v1/get_result?id=`` (https://docs.bfl.ml/api-reference/utility/get-result.md),
which may not know a task for ``unknown_for`` seconds after it was made ("Task not found"). ``GET <polling_url>`` answers ``Pending`` until the
generation time has passed, then ``Ready`` with ``result.sample`` (a PNG this server serves), or the
scripted outcome: ``Request Moderated``, ``Content Moderated``, ``Error``, ``Task not found``.
With ``webhook_url`` + ``webhook_secret`` it POSTs the result, signed ``X-BFL-Signature:
sha256=<hex HMAC-SHA256(secret, body)>``. 402 without credits, scripted 429/5xx/hangs/drops.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.provider_common import FakeServer, Fault, make_image

# Credits (1 credit = $0.01) for the first output megapixel and for each further output or input
# megapixel, where a megapixel is 1024x1024 pixels: cost = first + (output_mp - 1) * mp +
# input_mp * mp (https://github.com/black-forest-labs/skills skills/bfl-api/SKILL.md). FLUX.1
# endpoints cost one flat price per image.
ENDPOINTS: dict[str, tuple[float, float]] = {
    "flux-2-pro": (3.0, 1.5),
    "flux-2-pro-preview": (3.0, 1.5),
    "flux-2-max": (7.0, 3.0),
    "flux-2-flex": (5.0, 5.0),
    "flux-2-klein-4b": (1.4, 0.1),
    "flux-2-klein-9b": (1.5, 0.2),
    "flux-2-klein-9b-preview": (1.5, 0.2),
    "flux-pro-1.1": (4.0, 0.0),
    "flux-pro-1.1-ultra": (6.0, 0.0),
    "flux-kontext-pro": (4.0, 0.0),
    "flux-kontext-max": (8.0, 0.0),
}


def credits_for(endpoint: str, body: dict[str, Any]) -> tuple[float, float, float]:
    """``(cost, input_mp, output_mp)`` of one task as BFL's submit answer reports them. Input
    images count one megapixel each (this fake does not fetch them)."""
    first, per_mp = ENDPOINTS[endpoint]
    output_mp = int(body.get("width") or 1024) * int(body.get("height") or 1024) / 1024**2
    inputs = sum(1 for key in body if key.startswith("input_image") and body[key])
    cost = first + max(0.0, output_mp - 1) * per_mp + inputs * per_mp
    return round(cost, 4), float(inputs), round(output_mp, 4)


OUTCOMES = ("Ready", "Request Moderated", "Content Moderated", "Error", "Task not found")


@dataclass
class BflTask:
    id: str
    endpoint: str
    body: dict[str, Any]
    created: float
    ready_at: float
    outcome: str = "Ready"
    sample: str | None = None
    polls: int = 0
    unknown_reads: int = 0
    webhook_sent: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class FakeBfl(FakeServer):
    def __init__(self, key: str = "bfl-test-key-0123456789", *, credits: float = 100.0) -> None:
        super().__init__()
        self.key = key
        self.credits = credits
        self.tasks: dict[str, BflTask] = {}
        self.outcomes: deque[str] = deque()
        # The ``details`` of an ``Error`` result ("Check the error details for more
        # information": https://docs.bfl.ai/api_integration/errors).
        self.error_details: Any = {"error": "Generation failed"}
        self.region = "eu1"
        # False: answer only ``{id}`` (no polling URL) even without a webhook.
        self.polling_url_in_answer = True
        # Seconds after its creation a task is not yet known to get_result, or the number of
        # its first reads that do not know it yet (for tests on a manual clock).
        self.unknown_for = 0.0
        self.unknown_reads = 0
        self.app.router.add_get("/v1/credits", self._credits)
        self.app.router.add_get("/v1/get_result", self._get_result)
        self.app.router.add_get("/{region}/v1/get_result", self._get_result)
        self.app.router.add_post("/v1/{endpoint}", self._submit)

    @property
    def base_url(self) -> str:
        return self.origin

    async def apply(self, request: web.Request, fault: Fault) -> web.StreamResponse:
        """A scripted 429 answers BFL's documented body, its ``retry_after`` beside the header
        (https://github.com/black-forest-labs/skills skills/bfl-api/references/rate-limiting.md)."""
        if fault.status == 429 and fault.body is None and not fault.html:
            body: dict[str, Any] = {
                "error": "rate_limit_exceeded",
                "message": "Too many concurrent requests",
            }
            if fault.retry_after is not None:
                body["retry_after"] = fault.retry_after
            fault = dataclasses.replace(fault, body=body)
        return await super().apply(request, fault)

    def next_outcomes(self, *outcomes: str) -> None:
        for outcome in outcomes:
            assert outcome in OUTCOMES, outcome
            self.outcomes.append(outcome)

    @property
    def paid_tasks(self) -> int:
        return len(self.tasks)

    def _authorised(self, request: web.Request) -> web.Response | None:
        if request.headers.get("x-key") != self.key:
            return web.json_response({"detail": "Not authenticated"}, status=401)
        return None

    async def _credits(self, request: web.Request) -> web.StreamResponse:
        return self._authorised(request) or web.json_response({"credits": self.credits})

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        refused = self._authorised(request)
        if refused:
            return refused
        fault = self.take_fault("submit")
        if fault is not None:
            return await self.apply(request, fault)
        endpoint = request.match_info["endpoint"]
        if endpoint not in ENDPOINTS:
            return web.json_response({"detail": "Not Found"}, status=404)
        try:
            body = await request.json()
        except (ValueError, json.JSONDecodeError):
            return web.json_response({"detail": "invalid JSON"}, status=422)
        problem = _validate(body) or _validate_flex(endpoint, body)
        if problem:
            return web.json_response(
                {"detail": [{"msg": problem, "type": "value_error"}]}, status=422
            )
        price, input_mp, output_mp = credits_for(endpoint, body)
        if self.credits < price:
            return web.json_response({"detail": "Insufficient credits"}, status=402)
        self.credits -= price
        task_id = self.next_id("bfl")
        now = time.monotonic()
        task = BflTask(
            id=task_id,
            endpoint=endpoint,
            body=body,
            created=now,
            ready_at=now + self.generation_seconds,
            outcome=self.outcomes.popleft() if self.outcomes else "Ready",
        )
        self.tasks[task_id] = task
        if body.get("webhook_url"):
            self.spawn(self._deliver_webhook(task))
        after = self.take_fault("submit", after_accept=True)
        if after is not None:
            return await self.apply(request, after)
        if body.get("webhook_url"):
            # AsyncWebhookResponse: the result comes to the webhook; no polling URL.
            return web.json_response(
                {"id": task_id, "status": "Pending", "webhook_url": body["webhook_url"]}
            )
        if not self.polling_url_in_answer:
            return web.json_response({"id": task_id})
        return web.json_response(
            {
                "id": task_id,
                "polling_url": f"{self.origin}/{self.region}/v1/get_result?id={task_id}",
                "cost": price,
                "input_mp": input_mp,
                "output_mp": output_mp,
            }
        )

    def _result(self, task: BflTask) -> dict[str, Any]:
        if task.outcome == "Ready":
            if task.sample is None:
                size = self.image_size or (
                    int(task.body.get("width", 1024)),
                    int(task.body.get("height", 768)),
                )
                # ``output_format`` defaults to jpeg (https://docs.bfl.ai/api-reference/models/
                # generate-or-edit-an-image-with-flux2-%5Bpro%5D).
                fmt = str(task.body.get("output_format") or "jpeg")
                task.sample = self.store_image(make_image(*size, fmt=fmt), fmt)
            return {
                "id": task.id,
                "status": "Ready",
                "result": {
                    "sample": task.sample,
                    "prompt": task.body.get("prompt"),
                    "seed": task.body.get("seed", 0),
                    "start_time": task.created,
                    "end_time": task.ready_at,
                    "duration": task.ready_at - task.created,
                },
                "progress": None,
                "details": None,
            }
        if task.outcome == "Error":
            return {
                "id": task.id,
                "status": "Error",
                "result": None,
                "progress": None,
                "details": self.error_details,
            }
        return {
            "id": task.id,
            "status": task.outcome,
            "result": None,
            "progress": None,
            "details": None,
        }

    async def _get_result(self, request: web.Request) -> web.StreamResponse:
        refused = self._authorised(request)
        if refused:
            return refused
        fault = self.take_fault("poll")
        if fault is not None:
            return await self.apply(request, fault)
        task = self.tasks.get(request.query.get("id", ""))
        if task is not None and (
            time.monotonic() - task.created < self.unknown_for
            or task.unknown_reads < self.unknown_reads
        ):
            task.unknown_reads += 1
            task = None  # not yet known where this read is served
        if task is None or task.outcome == "Task not found":
            return web.json_response(
                {"id": request.query.get("id", ""), "status": "Task not found"}
            )
        task.polls += 1
        if time.monotonic() < task.ready_at:
            progress = min(
                0.99, (time.monotonic() - task.created) / max(0.001, task.ready_at - task.created)
            )
            return web.json_response(
                {"id": task.id, "status": "Pending", "result": None, "progress": round(progress, 2)}
            )
        return web.json_response(self._result(task))

    async def _deliver_webhook(self, task: BflTask) -> None:
        await asyncio.sleep(max(0.0, task.ready_at - time.monotonic()))
        fault = self.take_fault("webhook")
        if fault is not None and fault.drop:
            return  # a lost webhook
        body = json.dumps(self._result(task)).encode()
        secret = str(task.body.get("webhook_secret", ""))
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        async with aiohttp.ClientSession() as session:
            try:
                async with session.post(
                    task.body["webhook_url"],
                    data=body,
                    headers={"Content-Type": "application/json", "X-BFL-Signature": signature},
                ) as response:
                    self.webhook_calls.append((task.id, response.status))
            except aiohttp.ClientError:
                self.webhook_calls.append((task.id, 0))
        task.webhook_sent = True


def _validate_flex(endpoint: str, body: dict[str, Any]) -> str | None:
    """FLUX.2 [flex]'s own fields: ``steps`` 1-50 (default 50), ``guidance`` 1.5-10 (default 4.5),
    ``prompt_upsampling`` (default true) (https://github.com/black-forest-labs/skills
    skills/bfl-api/references/endpoints.md; https://docs.bfl.ai/api-reference/models/
    generate-or-edit-an-image-with-flux2-[flex])."""
    if endpoint != "flux-2-flex":
        return None
    steps = body.get("steps", 50)
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= 50:
        return "steps must be an integer from 1 to 50"
    guidance = body.get("guidance", 4.5)
    if not isinstance(guidance, int | float) or not 1.5 <= guidance <= 10:
        return "guidance must be from 1.5 to 10"
    if not isinstance(body.get("prompt_upsampling", True), bool):
        return "prompt_upsampling must be a boolean"
    return None


def _validate(body: Any) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("prompt"), str) or not body["prompt"]:
        return "prompt is required"
    for side in ("width", "height"):
        value = body.get(side)
        if value is None:
            continue
        if not isinstance(value, int) or value % 16 or not 64 <= value <= 2048:
            return f"{side} must be a multiple of 16 between 64 and 2048"
    if body.get("width") and body.get("height") and body["width"] * body["height"] > 4_194_304:
        return "at most 4 megapixels"
    tolerance = body.get("safety_tolerance", 2)
    if not isinstance(tolerance, int) or not 0 <= tolerance <= 6:
        return "safety_tolerance must be an integer from 0 to 6"
    if body.get("output_format", "jpeg") not in ("jpeg", "png"):
        return "output_format must be jpeg or png"
    return None
