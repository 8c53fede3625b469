"""A fake of Together AI's image API (api.together.ai/v1), after its public docs
(https://docs.together.ai/reference/post-images-generations).

``POST /v1/images/generations`` with ``Authorization: Bearer ...`` answers, once the images are
made, ``{id, model, object: "list", data: [{index, url}]}`` or ``b64_json`` items for
``response_format: "base64"``; ``n`` images per call. A prompt its safety checker refuses gets a 422.
``GET /v1/models`` lists models (a cheap authenticated call). Result links are refused (403) to a
download without a User-Agent, as Together's CDN does (https://docs.together.ai/docs/images-overview).
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from aiohttp import web

from tests.fakes.provider_common import FakeServer, make_image

MODELS = {
    "black-forest-labs/FLUX.2-pro",
    "black-forest-labs/FLUX.2-max",
    "black-forest-labs/FLUX.2-flex",
    "black-forest-labs/FLUX.2-dev",
    "black-forest-labs/FLUX.1-schnell",
    "black-forest-labs/FLUX.1.1-pro",
    "black-forest-labs/FLUX.1-kontext-pro",
}


class FakeTogether(FakeServer):
    def __init__(self, key: str = "together-test-key-0123456789") -> None:
        super().__init__()
        self.key = key
        self.generations: list[dict[str, Any]] = []
        # Prompts containing any of these words are refused by the "safety checker".
        self.unsafe_words: set[str] = {"forbidden"}
        self.require_user_agent = True
        self.app.router.add_post("/v1/images/generations", self._generate)
        self.app.router.add_get("/v1/models", self._models)

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    @property
    def paid_tasks(self) -> int:
        return len(self.generations)

    def _authorised(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bearer {self.key}":
            return web.json_response(
                {
                    "error": {
                        "message": "Invalid API key provided",
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                    }
                },
                status=401,
            )
        return None

    async def _models(self, request: web.Request) -> web.StreamResponse:
        refused = self._authorised(request)
        if refused:
            return refused
        return web.json_response(
            [{"id": m, "object": "model", "type": "image"} for m in sorted(MODELS)]
        )

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        refused = self._authorised(request)
        if refused:
            return refused
        fault = self.take_fault("submit")
        if fault is not None:
            return await self.apply(request, fault)
        try:
            body = await request.json()
        except (ValueError, json.JSONDecodeError):
            return _error(400, "invalid JSON")
        model = body.get("model") if isinstance(body, dict) else None
        if model not in MODELS:
            return _error(
                404, f"Unable to access model {model}. Please visit https://api.together.ai/models"
            )
        if not isinstance(body.get("prompt"), str) or not body["prompt"]:
            return _error(400, "prompt is required")
        width, height = body.get("width", 1024), body.get("height", 1024)
        if (
            not isinstance(width, int)
            or not isinstance(height, int)
            or width % 16
            or height % 16
            or not (64 <= width <= 2048 and 64 <= height <= 2048)
        ):
            return _error(400, "width and height must be multiples of 16 between 64 and 2048")
        # ``output_format``: jpeg (the default) or png
        # (https://docs.together.ai/reference/post-images-generations).
        fmt = body.get("output_format", "jpeg")
        if fmt not in ("jpeg", "png"):
            return _error(400, "output_format must be jpeg or png")
        steps = body.get("steps")
        if steps is not None and (not isinstance(steps, int) or not 1 <= steps <= 50):
            # https://docs.together.ai/docs/images-overview: steps 1-50
            return _error(400, "steps must be from 1 to 50")
        count = body.get("n", 1)
        if not isinstance(count, int) or not 1 <= count <= 4:
            return _error(400, "n must be between 1 and 4")
        if any(word in body["prompt"].lower() for word in self.unsafe_words) and not body.get(
            "disable_safety_checker"
        ):
            # The generation ran (and is billed); the checker refused to return it.
            self.generations.append(body)
            return _error(
                422,
                "Your request was flagged by our safety checker as potentially containing NSFW content.",
                kind="safety_error",
            )
        if self.generation_seconds:
            await asyncio.sleep(self.generation_seconds)
        self.generations.append(body)
        size = self.image_size or (width, height)
        data: list[dict[str, Any]] = []
        for index in range(count):
            image = make_image(*size, colour=(60, 160 + index * 20, 90), fmt=fmt)
            if body.get("response_format") == "base64":
                data.append(
                    {
                        "index": index,
                        "b64_json": base64.b64encode(image).decode(),
                        "type": "b64_json",
                    }
                )
            else:
                data.append({"index": index, "url": self.store_image(image, fmt), "type": "url"})
        after = self.take_fault("submit", after_accept=True)
        if after is not None:
            return await self.apply(request, after)
        return web.json_response(
            {"id": self.next_id("tog"), "model": model, "object": "list", "data": data}
        )


def _error(status: int, message: str, *, kind: str = "invalid_request_error") -> web.Response:
    return web.json_response({"error": {"message": message, "type": kind}}, status=status)
