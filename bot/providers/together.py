"""Together AI: ``POST /images/generations`` with a Bearer key, answered when the images are made
(OpenAI-style ``data[].url`` or ``data[].b64_json``). A safety-checker refusal is moderation."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import httpx

from bot.domain.errors import ProviderModerated, SubmitOutcomeUnknown
from bot.providers.base import GenerationSpec, PollResult, PollState, Submission, format_for
from bot.providers.keyed import KeyedProvider
from bot.providers.sizes import catalog_cost, provider_size
from bot.providers.transport import (
    error_detail,
    fail_for_status,
    mentions_moderation,
    request_json,
)

log = logging.getLogger(__name__)

# https://docs.together.ai/reference/post-images-generations (api.together.xyz is the old name).
DEFAULT_BASE = "https://api.together.ai/v1"
# Result links live on Together's API hosts; a redirect is followed only to these (and the
# configured base), never to a host the allow-list does not name.
RESULT_HOSTS = ("api.together.ai", "api.together.xyz")
# The request waits for the whole generation.
GENERATE_TIMEOUT = httpx.Timeout(connect=5.0, read=120.0, write=30.0, pool=10.0)


class TogetherProvider(KeyedProvider):
    name = "together"
    key_variable = "TOGETHER_API_KEY"
    default_base = DEFAULT_BASE
    default_concurrency = 8
    result_hosts = RESULT_HOSTS
    # The generation happens inside the submit call.
    submit_timeout = GENERATE_TIMEOUT
    # ``output_format``: jpeg (the default) or png
    # (https://docs.together.ai/reference/post-images-generations).
    output_formats = ("jpeg", "png")

    @property
    def _headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self._key}", "accept": "application/json"}

    def body(self, spec: GenerationSpec) -> dict[str, Any]:
        width, height = provider_size(spec.variant, spec.model, spec.width, spec.height)
        body: dict[str, Any] = {
            "model": spec.model_id,
            "prompt": spec.prompt,
            "width": width,
            "height": height,
            "n": max(1, spec.count),
            "seed": spec.seed,
            "response_format": "url",
            "output_format": format_for(spec.output_format, self.output_formats),
            # The safety checker stays on whatever the tolerance: Together has no finer control.
            "disable_safety_checker": False,
        }
        body.update(spec.tuning())
        if spec.input_images:
            if spec.model.extra.get("input_field") == "image_url":
                body["image_url"] = spec.input_images[0]
            else:
                body["reference_images"] = list(spec.input_images)
        return body

    async def submit(self, spec: GenerationSpec) -> Submission:
        body = self.body(spec)
        status, data, _ = await request_json(
            self._http,
            "POST",
            f"{self.base_url}/images/generations",
            provider=self.name,
            kind="submit",
            headers=self._headers,
            body=body,
            timeout=self.submit_timeout,
        )
        if not 200 <= status < 300:
            detail = error_detail(data)
            if status in (400, 422) and mentions_moderation(detail, ("flagged",)):
                raise ProviderModerated(f"together: {detail}", provider=self.name, status=status)
            if status == 422 and not detail:
                raise ProviderModerated("together: refused (422)", provider=self.name, status=422)
            raise fail_for_status(self.name, status, data)
        items = data.get("data") if isinstance(data, Mapping) else None
        if not isinstance(items, list):
            # The images were made (and paid) but the answer is unusable.
            raise SubmitOutcomeUnknown("together: answer without data", provider=self.name)
        outputs: list[str] = []
        for item in items:
            if not isinstance(item, Mapping):
                continue
            if isinstance(item.get("url"), str) and item["url"]:
                outputs.append(item["url"])
            elif isinstance(item.get("b64_json"), str) and item["b64_json"]:
                kind = "jpeg" if body["output_format"] == "jpeg" else "png"
                outputs.append(f"data:image/{kind};base64," + item["b64_json"])
        task_id = data.get("id") if isinstance(data.get("id"), str) else None
        return Submission(
            task={
                "id": task_id or f"together-{spec.job_id}",
                "model": spec.model_id,
                "outputs": outputs,
                "eta": 0.0,
            },
            cost_usd=catalog_cost(
                spec.model,
                int(body["width"]),
                int(body["height"]),
                spec.count,
                len(spec.input_images),
            ),
        )

    async def poll(self, task: Mapping[str, Any]) -> PollResult:
        outputs = task.get("outputs")
        if not isinstance(outputs, list) or not outputs:
            return PollResult(PollState.FAILED, message="together: the answer held no image")
        return PollResult(PollState.READY, outputs=tuple(str(o) for o in outputs))

    async def cancel(self, task: Mapping[str, Any]) -> None:
        return None

    async def check_key(self) -> str:
        """A cheap authenticated call: the model list."""
        await self._key_call(f"{self.base_url}/models", "model list")
        return "key accepted"


__all__ = ["TogetherProvider"]
