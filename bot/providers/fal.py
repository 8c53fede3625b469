"""fal.ai through its queue API: ``POST /<app id>`` with ``Authorization: Key``, then the request's
``status_url`` until ``COMPLETED``, then its ``response_url`` (``images[].url``, ``seed``,
``has_nsfw_concepts``). A flagged image comes back black: that is moderation, never an image.

fal's errors are classified by their machine-readable ``type``, never by words in the message: a
``detail`` array of ``{loc, msg, type, url}`` objects (https://docs.fal.ai/errors), where
``content_policy_violation`` is a refusal for content (moderation, never failed over)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from bot.domain.errors import (
    ProviderBalanceExhausted,
    ProviderError,
    ProviderFailed,
    ProviderModerated,
    ProviderUnavailable,
    SubmitOutcomeUnknown,
)
from bot.providers.base import GenerationSpec, PollResult, PollState, Submission, format_for
from bot.providers.download import AllowList
from bot.providers.keyed import KeyedProvider
from bot.providers.sizes import catalog_cost, fal_image_size, provider_size
from bot.providers.transport import error_detail, request_json

log = logging.getLogger(__name__)

DEFAULT_BASE = "https://queue.fal.run"
# fal's REST API, where its storage lives: its JS client starts an upload with
# ``POST /storage/upload/initiate?storage_type=fal-cdn-v3`` and ``{content_type, file_name}``
# (https://github.com/fal-ai/fal-js/blob/main/libs/client/src/storage.ts).
DEFAULT_REST_BASE = "https://rest.fal.ai"
# fal serves results from its CDN (``v3.fal.media`` and siblings) and its storage bucket.
RESULT_HOSTS = ("fal.media", "*.fal.media", "storage.googleapis.com")
QUEUE_HOSTS = ("queue.fal.run",)
# The error ``type`` fal gives a request its content checker refused (422), on the submit, the
# status or the result: https://docs.fal.ai/errors#content_policy_violation
CONTENT_POLICY_VIOLATION = "content_policy_violation"


def fal_errors(data: Any) -> list[Mapping[str, Any]]:
    """The typed error objects of a fal error answer: ``detail`` is an array of
    ``{loc, msg, type, url, ctx?, input?}`` (https://docs.fal.ai/errors). Request-level errors
    carry a string ``detail`` and an ``error_type`` instead
    (https://fal.ai/docs/documentation/model-apis/request-errors): those hold no typed objects."""
    detail = data.get("detail") if isinstance(data, Mapping) else None
    if isinstance(detail, list):
        return [error for error in detail if isinstance(error, Mapping)]
    return []


def refused_for_content(data: Any) -> bool:
    """Whether a fal answer says its content checker refused the request (by ``type``)."""
    if isinstance(data, Mapping) and data.get("error_type") == CONTENT_POLICY_VIOLATION:
        return True
    return any(error.get("type") == CONTENT_POLICY_VIOLATION for error in fal_errors(data))


def balance_lock(data: Any) -> str | None:
    """The reason of fal's account lock for an exhausted balance, else None. fal answers every
    billable call of such an account 403 ``{"detail": "User is locked. Reason: Exhausted balance.
    Top up your balance at fal.ai/dashboard/billing."}`` (also ``Reason: TOP_UP``):
    https://github.com/fal-ai/fal/issues/1147, https://github.com/fal-ai/fal/issues/1163."""
    detail = data.get("detail") if isinstance(data, Mapping) else None
    if not isinstance(detail, str) or not detail.startswith("User is locked"):
        return None
    reason = detail.partition("Reason:")[2].strip()
    if reason.lower().startswith(("exhausted balance", "top_up")):
        return detail[:200]
    return None


def locked_account(status: int, data: Any) -> ProviderError | None:
    """The transport's classification of a fal error answer: a 403 whose body is the lock of an
    exhausted balance is that (not a refused key), so jobs fail over and the circuit opens."""
    reason = balance_lock(data) if status == 403 else None
    if reason is None:
        return None
    return ProviderBalanceExhausted(
        f"fal: the account's balance is exhausted ({reason}); top it up. Other providers are tried.",
        provider="fal",
        status=403,
    )


def describe(data: Any) -> str:
    """The human part of a fal error answer, bounded: the typed errors' ``msg``, else the detail."""
    messages = [str(error.get("msg", "")) for error in fal_errors(data) if error.get("msg")]
    if messages:
        return "; ".join(messages)[:300]
    return error_detail(data)


def _app_root(app_id: str) -> str:
    """Queue request URLs live under the app's owner/name, without sub-paths such as ``/edit``."""
    return "/".join(app_id.split("/")[:2])


class FalProvider(KeyedProvider):
    name = "fal"
    key_variable = "FAL_KEY"
    default_base = DEFAULT_BASE
    default_concurrency = 16
    result_hosts = RESULT_HOSTS
    # ``output_format``: jpeg (the default) or png (https://fal.ai/models/fal-ai/flux-2-pro/api).
    output_formats = ("jpeg", "png")

    rest_base = DEFAULT_REST_BASE

    def _configure(self) -> None:
        self._queue_allow = AllowList.build(self.base_url, QUEUE_HOSTS)

    @property
    def _headers(self) -> dict[str, str]:
        return {"authorization": f"Key {self._key}", "accept": "application/json"}

    def webhook_url(self, job_id: str) -> str | None:
        if not self.public_url:
            return None
        return f"{self.public_url}/webhooks/fal/{quote(job_id, safe='')}"

    def body(self, spec: GenerationSpec, seed: int, count: int) -> dict[str, Any]:
        width, height = provider_size(spec.variant, spec.model, spec.width, spec.height)
        body: dict[str, Any] = {
            "prompt": spec.prompt,
            "image_size": fal_image_size(width, height),
            "seed": seed,
            "enable_safety_checker": True,
            "output_format": format_for(spec.output_format, self.output_formats),
            **spec.tuning(),
        }
        if spec.sends("safety_tolerance"):
            # fal takes the tolerance as a string from "1" (strict) to "5"; [klein] and [dev]
            # have none (their schemas: https://fal.ai/models/fal-ai/flux-2/klein/9b/llms.txt).
            body["safety_tolerance"] = str(max(1, min(5, int(spec.safety_tolerance))))
        if count > 1:
            body["num_images"] = count
        if spec.input_images:
            body["image_urls"] = list(spec.input_images)
        return body

    async def submit(self, spec: GenerationSpec) -> Submission:
        app_id = spec.model_id
        url = f"{self.base_url}/{app_id}"
        hook = spec.webhook_url or self.webhook_url(spec.job_id)
        if hook:
            url = f"{url}?{urlencode({'fal_webhook': hook})}"
        # One request makes all images where the app takes ``num_images``; else one per image.
        per_request = spec.count if spec.model.extra.get("num_images") else 1
        requests = max(1, spec.count // per_request)
        tasks: list[dict[str, Any]] = []
        for index in range(requests):
            body = self.body(spec, spec.seed + index, per_request)
            try:
                status, data, _ = await request_json(
                    self._http,
                    "POST",
                    url,
                    provider=self.name,
                    kind="submit",
                    timeout=self.submit_timeout,
                    headers=self._headers,
                    body=body,
                    classify=locked_account,
                )
                tasks.append(self._accepted(app_id, status, data))
            except ProviderError as exc:
                if not tasks:
                    raise
                log.warning("fal: %d of %d requests were created: %s", len(tasks), requests, exc)
                break
        width, height = provider_size(spec.variant, spec.model, spec.width, spec.height)
        first = tasks[0]
        return Submission(
            task={
                **first,
                "tasks": tasks,
                "eta": spec.variant.typical_seconds,
                "webhook": bool(hook),
            },
            cost_usd=catalog_cost(
                spec.model, width, height, len(tasks) * per_request, len(spec.input_images)
            ),
        )

    def _accepted(self, app_id: str, status: int, data: Any) -> dict[str, Any]:
        if 200 <= status < 300:
            if isinstance(data, Mapping) and isinstance(data.get("request_id"), str):
                request_id = data["request_id"]
                root = f"{self.base_url}/{_app_root(app_id)}/requests/{quote(request_id, safe='')}"
                return {
                    "id": request_id,
                    "app_id": app_id,
                    "status_url": self._own(data.get("status_url"), f"{root}/status"),
                    "response_url": self._own(data.get("response_url"), root),
                    "cancel_url": self._own(data.get("cancel_url"), f"{root}/cancel"),
                }
            raise SubmitOutcomeUnknown(
                "fal: the submit answer holds no request_id", provider=self.name, status=status
            )
        if refused_for_content(data):
            raise ProviderModerated(
                f"fal: refused by the content checker: {describe(data)}",
                provider=self.name,
                status=status,
            )
        raise ProviderFailed(
            f"fal: request refused ({status}): {describe(data)}", provider=self.name, status=status
        )

    def _own(self, url: Any, fallback: str) -> str:
        """A queue URL from an answer, kept only where it points at the queue itself (the key
        goes along with every request to it)."""
        if isinstance(url, str) and self._queue_allow.allows(url):
            return url
        return fallback

    async def poll(self, task: Mapping[str, Any]) -> PollResult:
        tasks = task.get("tasks") or [task]
        outputs: list[str] = []
        seed: int | None = None
        position: int | None = None
        pending = False
        flagged = 0
        for one in tasks:
            status, data, _ = await request_json(
                self._http,
                "GET",
                str(one["status_url"]),
                provider=self.name,
                kind="poll",
                headers=self._headers,
                timeout=self.poll_timeout,
                classify=locked_account,
            )
            if status == 404:
                return PollResult(PollState.FAILED, message="fal: request not found")
            if status >= 400 and refused_for_content(data):
                return _moderated(data)
            if status >= 400 or not isinstance(data, Mapping):
                raise ProviderUnavailable(f"fal: status answered {status}", provider=self.name)
            state = str(data.get("status", ""))
            if state in ("IN_QUEUE", "IN_PROGRESS"):
                pending = True
                if state == "IN_QUEUE" and isinstance(data.get("queue_position"), int):
                    position = max(position or 0, int(data["queue_position"]))
                continue
            if state in ("FAILED", "CANCELED", "CANCELLED", "ERROR"):
                return PollResult(PollState.FAILED, message=f"fal: {state.lower()}")
            if state != "COMPLETED":
                return PollResult(PollState.FAILED, message=f"fal: unknown status {state[:40]!r}")
            if refused_for_content(data):
                return _moderated(data)
            if data.get("error"):
                return PollResult(PollState.FAILED, message=f"fal: {str(data['error'])[:200]}")
            result = await self._response(one)
            if result.state is not PollState.READY:
                return result
            outputs.extend(result.outputs)
            flagged += int(result.extra.get("flagged", 0))
            seed = seed if seed is not None else result.seed
        if pending:
            return PollResult(PollState.PENDING, queue_position=position)
        if not outputs:
            if flagged:
                return PollResult(PollState.MODERATED, message="fal: image flagged as NSFW")
            return PollResult(PollState.FAILED, message="fal: completed without an image")
        return PollResult(PollState.READY, outputs=tuple(outputs), seed=seed)

    async def _response(self, one: Mapping[str, Any]) -> PollResult:
        status, data, _ = await request_json(
            self._http,
            "GET",
            str(one["response_url"]),
            provider=self.name,
            kind="poll",
            headers=self._headers,
            timeout=self.poll_timeout,
            classify=locked_account,
        )
        if status >= 400:
            if refused_for_content(data):
                return _moderated(data)
            return PollResult(PollState.FAILED, message=f"fal: {describe(data)[:200]}")
        if not isinstance(data, Mapping):
            return PollResult(PollState.FAILED, message="fal: response without JSON")
        images = data.get("images")
        if not isinstance(images, list):
            return PollResult(PollState.FAILED, message="fal: response without images")
        nsfw = data.get("has_nsfw_concepts")
        flags = nsfw if isinstance(nsfw, list) else []
        urls: list[str] = []
        flagged = 0
        for index, image in enumerate(images):
            if index < len(flags) and flags[index] is True:
                flagged += 1  # a black image: never posted
                continue
            url = image.get("url") if isinstance(image, Mapping) else None
            if isinstance(url, str) and url:
                urls.append(url)
        if flagged and not urls:
            return PollResult(PollState.MODERATED, message="fal: image flagged as NSFW")
        seed = data.get("seed")
        return PollResult(
            PollState.READY,
            outputs=tuple(urls),
            seed=int(seed) if isinstance(seed, int) else None,
            extra={"flagged": flagged},
        )

    async def cancel(self, task: Mapping[str, Any]) -> None:
        for one in task.get("tasks") or [task]:
            url = one.get("cancel_url")
            if not isinstance(url, str):
                continue
            try:
                await request_json(
                    self._http,
                    "PUT",
                    url,
                    provider=self.name,
                    kind="poll",
                    headers=self._headers,
                    timeout=self.poll_timeout,
                )
            except ProviderError as exc:
                log.info("fal: cancel failed: %s", exc)

    async def check_key(self) -> str:
        """The key check, two free authenticated calls. The status of a request id that cannot
        exist: 401/403 for a refused key, 404 (or 400) for an unknown request. Then an upload
        initiation (nothing is uploaded): a locked account's status reads still answer, its
        storage and billable calls answer the 403 of the lock
        (https://github.com/fal-ai/fal/issues/1147), raised as ``ProviderBalanceExhausted``."""
        url = f"{self.base_url}/fal-ai/flux-2-pro/requests/00000000-0000-0000-0000-000000000000/status"
        status, _, _ = await request_json(
            self._http,
            "GET",
            url,
            provider=self.name,
            kind="poll",
            headers=self._headers,
            timeout=self.poll_timeout,
            classify=locked_account,
        )
        if status in (401, 403):
            raise ProviderFailed(f"fal: {self.key_variable} was refused", status=status)
        await request_json(
            self._http,
            "POST",
            f"{self.rest_base}/storage/upload/initiate?storage_type=fal-cdn-v3",
            provider=self.name,
            kind="poll",
            headers=self._headers,
            body={"content_type": "text/plain", "file_name": "imagine-bot-key-check.txt"},
            timeout=self.poll_timeout,
            classify=locked_account,
        )
        return "key accepted"


def _moderated(data: Any) -> PollResult:
    return PollResult(
        PollState.MODERATED, message=f"fal: refused by the content checker: {describe(data)[:200]}"
    )
