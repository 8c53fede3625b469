"""Black Forest Labs: ``POST /v1/<endpoint>`` with ``x-key``, then poll the returned ``polling_url``.

The submit answer is an ``AsyncResponse`` (``id``, ``polling_url``, ``cost``...) or, when a webhook
was given, an ``AsyncWebhookResponse`` (``id``, ``status``, ``webhook_url``) without a polling URL
(https://docs.bfl.ai/api-reference/models/generate-or-edit-an-image-with-flux2-%5Bpro%5D). A given
``polling_url`` is always the one polled (the global endpoint routes tasks to regional clusters:
https://docs.bfl.ml/quick_start/generating_images.md); without one, ``/v1/get_result?id=`` on the
configured base, where a task just created may not be known yet ("Task not found") for a moment.

One BFL task makes one image, so a job asking for ``n`` images holds ``n`` tasks; all of them are
stored with the job before anything waits on them.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from bot.domain.errors import (
    ProviderError,
    ProviderFailed,
    ProviderModerated,
    ProviderUnavailable,
    SubmitOutcomeUnknown,
)
from bot.ops.logs import redaction_filter
from bot.providers.base import GenerationSpec, PollResult, PollState, Submission, format_for
from bot.providers.download import AllowList, HostRule, ResultExpired
from bot.providers.keyed import KeyedProvider
from bot.providers.sizes import catalog_cost, provider_size
from bot.providers.transport import (
    error_detail,
    fail_for_status,
    mentions_moderation,
    request_json,
)

log = logging.getLogger(__name__)

DEFAULT_BASE = "https://api.bfl.ai"
# Results come from region-specific ``delivery-*.bfl.ai`` / ``delivery.*.bfl.ai`` hosts (BFL's
# integration guide says to allow the wildcard); polling URLs from ``api*.bfl.ai``.
RESULT_HOSTS = ("*.bfl.ai",)
POLL_HOSTS = ("*.bfl.ai",)
PENDING = {"Pending", "Queued", "Processing", "Running"}
MODERATED = {"Request Moderated", "Content Moderated"}
# 1 BFL credit is 0.01 USD.
USD_PER_CREDIT = 0.01
# Seconds after its submit during which a task polled without a ``polling_url`` that BFL does
# not know yet ("Task not found") counts as pending, not failed.
NOT_FOUND_GRACE = 30.0


def webhook_secret_for(key: str, job_id: str) -> str:
    """A per-job webhook secret derived from the API key: stable across processes, never the key."""
    root = hmac.new(key.encode(), b"imagine-bot bfl webhook", hashlib.sha256).digest()
    return hmac.new(root, job_id.encode(), hashlib.sha256).hexdigest()


class BflProvider(KeyedProvider):
    name = "bfl"
    key_variable = "BFL_API_KEY"
    default_base = DEFAULT_BASE
    default_concurrency = 24
    result_hosts = RESULT_HOSTS
    # ``output_format``: jpeg (BFL's default) or png
    # (https://docs.bfl.ai/api-reference/models/generate-or-edit-an-image-with-flux2-%5Bpro%5D).
    output_formats = ("jpeg", "png")

    def _configure(self) -> None:
        # The key goes along with every poll, so polling URLs stay on the API's own host or
        # BFL's own domain over HTTPS (regional clusters).
        base = HostRule.for_base(self.base_url)
        self._poll_allow = AllowList(
            (
                HostRule(host=base.host, schemes=base.schemes, any_port=True),
                *AllowList.build(self.base_url, POLL_HOSTS).rules,
            )
        )

    @property
    def _headers(self) -> dict[str, str]:
        return {"x-key": self._key, "accept": "application/json"}

    def webhook_url(self, job_id: str) -> str | None:
        if not self.public_url:
            return None
        return f"{self.public_url}/webhooks/bfl/{quote(job_id, safe='')}"

    def webhook_secret(self, job_id: str) -> str:
        return webhook_secret_for(self._key, job_id)

    def body(self, spec: GenerationSpec, seed: int) -> dict[str, Any]:
        width, height = provider_size(spec.variant, spec.model, spec.width, spec.height)
        body: dict[str, Any] = {
            "prompt": spec.prompt,
            "width": width,
            "height": height,
            "seed": seed,
            "output_format": format_for(spec.output_format, self.output_formats),
            **spec.tuning(),
        }
        if spec.sends("safety_tolerance"):
            body["safety_tolerance"] = int(spec.safety_tolerance)
        for index, image in enumerate(spec.input_images[:8], start=1):
            body["input_image" if index == 1 else f"input_image_{index}"] = image
        url = spec.webhook_url or self.webhook_url(spec.job_id)
        if url:
            body["webhook_url"] = url
            body["webhook_secret"] = self.webhook_secret(spec.job_id)
        return body

    async def submit(self, spec: GenerationSpec) -> Submission:
        tasks: list[dict[str, Any]] = []
        cost: float | None = None
        endpoint = f"{self.base_url}/v1/{quote(spec.model_id, safe='.-_')}"
        for index in range(max(1, spec.count)):
            body = self.body(spec, spec.seed + index)
            try:
                status, data, _ = await request_json(
                    self._http,
                    "POST",
                    endpoint,
                    provider=self.name,
                    kind="submit",
                    timeout=self.submit_timeout,
                    headers=self._headers,
                    body=body,
                )
                task = self._accepted(status, data)
                task["submitted_at"] = self._clock.now()
            except ProviderError as exc:
                if not tasks:
                    raise
                # Some images are already paid for: keep those and say what was lost.
                log.warning(
                    "bfl: %d of %d tasks were created; the rest failed: %s",
                    len(tasks),
                    spec.count,
                    exc,
                )
                break
            tasks.append(task)
            if isinstance(data, Mapping) and isinstance(data.get("cost"), int | float):
                cost = (cost or 0.0) + float(data["cost"]) * USD_PER_CREDIT
        width, height = provider_size(spec.variant, spec.model, spec.width, spec.height)
        if cost is None:
            cost = catalog_cost(spec.model, width, height, len(tasks), len(spec.input_images))
        first = tasks[0]
        return Submission(
            task={
                "id": first["id"],
                "polling_url": first["polling_url"],
                "tasks": tasks,
                "eta": spec.variant.typical_seconds,
                "reports_progress": True,
                "webhook": bool(self.webhook_url(spec.job_id) or spec.webhook_url),
                "size": [width, height],
            },
            cost_usd=cost,
        )

    def _accepted(self, status: int, data: Any) -> dict[str, Any]:
        if status in (200, 201, 202):
            if isinstance(data, Mapping) and isinstance(data.get("id"), str) and data["id"]:
                polling = data.get("polling_url")
                return {
                    "id": data["id"],
                    "polling_url": polling if isinstance(polling, str) else None,
                }
            raise SubmitOutcomeUnknown(
                "bfl: the submit answer holds no task id", provider=self.name, status=status
            )
        detail = error_detail(data)
        if status in (400, 422) and mentions_moderation(detail):
            raise ProviderModerated(f"bfl: {detail}", provider=self.name, status=status)
        raise fail_for_status(self.name, status, data)

    def _poll_url(self, task: Mapping[str, Any]) -> str:
        """The task's own ``polling_url`` where BFL gave one (never rebuilt: the task may live on
        a regional cluster), else ``get_result`` on the configured base."""
        url = task.get("polling_url")
        if url:
            if isinstance(url, str) and self._poll_allow.allows(url):
                return url
            # The key goes along with every poll: never to a host that is not BFL's.
            raise ProviderFailed(
                "bfl: the task's polling_url is not on a BFL host; not polled", provider=self.name
            )
        return f"{self.base_url}/v1/get_result?id={quote(str(task['id']), safe='')}"

    def _just_created(self, task: Mapping[str, Any]) -> bool:
        """A task without a ``polling_url`` submitted under ``NOT_FOUND_GRACE`` seconds ago."""
        submitted = task.get("submitted_at")
        if task.get("polling_url") or not isinstance(submitted, int | float):
            return False
        return self._clock.now() - float(submitted) < NOT_FOUND_GRACE

    async def _poll_one(self, task: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
        status, data, _ = await request_json(
            self._http,
            "GET",
            self._poll_url(task),
            provider=self.name,
            kind="poll",
            headers=self._headers,
            timeout=self.poll_timeout,
        )
        if status == 404:
            return "Task not found", {}
        if not isinstance(data, Mapping):
            raise ProviderUnavailable(f"bfl: poll answered {status} without JSON", provider="bfl")
        if status >= 400:
            raise ProviderFailed(f"bfl: poll refused ({status}): {error_detail(data)}")
        return str(data.get("status", "")), data

    async def poll(self, task: Mapping[str, Any]) -> PollResult:
        tasks = task.get("tasks") or [task]
        outputs: list[str] = []
        cost: float | None = None
        seed: int | None = None
        pending: list[float | None] = []
        for one in tasks:
            try:
                state, data = await self._poll_one(one)
            except ProviderFailed as exc:
                return PollResult(PollState.FAILED, message=str(exc))
            if state == "Task not found" and self._just_created(one):
                pending.append(None)
                continue
            if state in PENDING:
                pending.append(_progress(data))
                continue
            if state in MODERATED:
                return PollResult(PollState.MODERATED, message=f"bfl: {state}")
            if state == "Ready":
                result = data.get("result")
                sample = result.get("sample") if isinstance(result, Mapping) else None
                if not isinstance(sample, str) or not sample:
                    return PollResult(PollState.FAILED, message="bfl: Ready without an image")
                outputs.append(sample)
                if isinstance(result, Mapping) and isinstance(result.get("seed"), int):
                    seed = seed if seed is not None else int(result["seed"])
                if isinstance(data.get("cost"), int | float):
                    cost = (cost or 0.0) + float(data["cost"]) * USD_PER_CREDIT
                continue
            if state == "Task not found":
                return PollResult(PollState.FAILED, message="bfl: task not found")
            if state == "Error":
                reason = error_details(data)
                return PollResult(PollState.FAILED, message=f"bfl: error: {reason}", reason=reason)
            return PollResult(PollState.FAILED, message=f"bfl: unknown status {state[:40]!r}")
        if pending:
            # The job is as far as its slowest task; unknown if any task does not say.
            known = [p for p in pending if p is not None]
            progress = min(known) if len(known) == len(pending) else None
            return PollResult(PollState.PENDING, progress=progress)
        return PollResult(PollState.READY, outputs=tuple(outputs), cost_usd=cost, seed=seed)

    async def fetch(self, task: Mapping[str, Any], result: PollResult) -> list[bytes]:
        out: list[bytes] = []
        for index, url in enumerate(result.outputs):
            try:
                out.append(await self.downloader.fetch(url))
            except ResultExpired:
                # One re-fetch: ask for the result again (a fresh URL where BFL gives one).
                tasks = task.get("tasks") or [task]
                again = await self._fresh_url(tasks[index] if index < len(tasks) else task)
                out.append(await self.downloader.fetch(again or url))
        return out

    async def _fresh_url(self, one: Mapping[str, Any]) -> str | None:
        state, data = await self._poll_one(one)
        result = data.get("result") if state == "Ready" else None
        sample = result.get("sample") if isinstance(result, Mapping) else None
        return sample if isinstance(sample, str) else None

    async def cancel(self, task: Mapping[str, Any]) -> None:
        return None  # BFL has no cancel for generation tasks

    async def check_key(self) -> str:
        """A cheap authenticated call: the credits balance."""
        data = await self._key_call(f"{self.base_url}/v1/credits", "credits check")
        credits = data.get("credits") if isinstance(data, Mapping) else None
        return f"key accepted, {credits} credits" if credits is not None else "key accepted"


def error_details(data: Mapping[str, Any]) -> str:
    """The text of an ``Error`` result's ``details`` (a string or an object of them: "Check the
    error details for more information", https://docs.bfl.ai/api_integration/errors), bounded and
    with secret-shaped parts (signed URL queries, keys) redacted: it is shown to the user."""
    details = data.get("details")
    if isinstance(details, Mapping):
        parts = [str(v) for v in details.values() if isinstance(v, str | int | float) and v != ""]
        text = "; ".join(parts)
    elif isinstance(details, list):
        text = "; ".join(str(v) for v in details if isinstance(v, str | int | float))
    elif details:
        text = str(details)
    else:
        text = error_detail(data)
    text = " ".join(text.split())[:200] or "no details given"
    return redaction_filter().redact(text)


def _progress(data: Mapping[str, Any]) -> float | None:
    """A pending task's ``progress`` as 0..1, or ``None``. BFL's schema says only "a number or
    null"; it is read as a fraction, and a value above 1 as a percentage, to be safe."""
    value = data.get("progress")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    fraction = value / 100 if value > 1 else value
    return min(1.0, max(0.0, float(fraction)))


__all__ = ["BflProvider", "HostRule", "webhook_secret_for"]
