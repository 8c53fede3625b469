"""Unit tests of the provider parts: transport errors (httpx.MockTransport), allow-list, sizes,
polling schedule, retries and the circuit breaker."""

from __future__ import annotations

import json
import random
from typing import Any

import httpx
import pytest

from bot.domain.catalog import load_catalog
from bot.domain.clock import ManualClock
from bot.domain.errors import (
    DownloadRefused,
    ProviderFailed,
    ProviderModerated,
    ProviderUnavailable,
    SubmitOutcomeUnknown,
)
from bot.providers.base import GenerationSpec, PollState
from bot.providers.bfl import BflProvider
from bot.providers.circuit import CircuitBreaker
from bot.providers.download import AllowList, HostRule
from bot.providers.polling import first_poll_delay, next_poll_delay
from bot.providers.retry import RetryPolicy
from bot.providers.sizes import catalog_cost, fal_image_size, provider_size
from bot.providers.together import TogetherProvider
from bot.providers.transport import retry_after_seconds

KEY = "secret-key-XYZ-123456"


def spec(name: str, **kw: Any) -> GenerationSpec:
    variant = load_catalog().variants[kw.pop("variant", "pro")]
    model = variant.model_for(name)
    assert model is not None
    values: dict[str, Any] = {
        "job_id": "j1",
        "prompt": "p",
        "variant": variant,
        "model": model,
        "width": 1024,
        "height": 1024,
        "seed": 1,
    }
    values.update(kw)
    return GenerationSpec(**values)


def bfl_with(handler: Any) -> BflProvider:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return BflProvider(
        http, api_key=KEY, base_url="https://api.bfl.ai", clock=ManualClock(), rng=random.Random(0)
    )


async def test_connect_error_means_no_task() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(ProviderUnavailable) as caught:
        await bfl_with(handler).submit(spec("bfl"))
    assert KEY not in str(caught.value)


async def test_read_timeout_after_sending_is_unknown() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(SubmitOutcomeUnknown):
        await bfl_with(handler).submit(spec("bfl"))


async def test_remote_protocol_error_is_unknown() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError(
            "Server disconnected without sending a response.", request=request
        )

    with pytest.raises(SubmitOutcomeUnknown):
        await bfl_with(handler).submit(spec("bfl"))


async def test_gateway_timeout_is_unknown_but_503_is_a_refusal() -> None:
    with pytest.raises(SubmitOutcomeUnknown):
        await bfl_with(lambda r: httpx.Response(504, text="<html>timeout</html>")).submit(
            spec("bfl")
        )
    with pytest.raises(ProviderUnavailable):
        await bfl_with(lambda r: httpx.Response(503, text="<html>down</html>")).submit(spec("bfl"))


async def test_validation_error_is_a_failure_and_moderation_is_moderation() -> None:
    with pytest.raises(ProviderFailed):
        await bfl_with(
            lambda r: httpx.Response(422, json={"detail": "width must be a multiple of 16"})
        ).submit(spec("bfl"))
    with pytest.raises(ProviderModerated):
        await bfl_with(
            lambda r: httpx.Response(400, json={"detail": "Request Moderated by safety filter"})
        ).submit(spec("bfl"))


async def test_bfl_never_sends_its_key_to_a_foreign_polling_url() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"status": "Pending"})

    provider = bfl_with(handler)
    foreign = await provider.poll(
        {"id": "t1", "polling_url": "http://169.254.169.254/latest?id=t1"}
    )
    await provider.poll({"id": "t2", "polling_url": "https://api.eu.bfl.ai/v1/get_result?id=t2"})
    await provider.poll({"id": "t3", "polling_url": None})
    # A given polling URL is never rebuilt into another: a foreign one fails the task unpolled.
    assert foreign.state is PollState.FAILED and "not on a BFL host" in (foreign.message or "")
    assert seen == [
        "https://api.eu.bfl.ai/v1/get_result?id=t2",
        "https://api.bfl.ai/v1/get_result?id=t3",
    ]


@pytest.mark.parametrize(
    ("reported", "expected"),
    [(0.42, 0.42), (0, 0.0), (0.99, 0.99), (42, 0.42), (None, None), ("half", None), (True, None)],
)
async def test_bfl_pending_progress_is_read_as_a_fraction(reported: Any, expected: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"status": "Pending", "result": None, "progress": reported})

    result = await bfl_with(handler).poll({"id": "t1", "polling_url": None})
    assert result.state is PollState.PENDING
    assert result.progress == (pytest.approx(expected) if expected is not None else None)


async def test_bfl_job_of_several_tasks_is_as_far_as_its_slowest() -> None:
    progress = {"t1": 0.8, "t2": 0.3, "t3": None}

    def handler(request: httpx.Request) -> httpx.Response:
        value = progress[request.url.params["id"]]
        return httpx.Response(200, json={"status": "Pending", "progress": value})

    provider = bfl_with(handler)
    two = [{"id": "t1", "polling_url": None}, {"id": "t2", "polling_url": None}]
    assert (await provider.poll({"id": "t1", "tasks": two})).progress == 0.3
    three = [*two, {"id": "t3", "polling_url": None}]
    assert (await provider.poll({"id": "t1", "tasks": three})).progress is None


async def test_bfl_tasks_say_they_report_progress() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": "t1", "polling_url": None})

    submission = await bfl_with(handler).submit(spec("bfl"))
    assert submission.task["reports_progress"] is True


async def test_bfl_body_maps_safety_and_sizes() -> None:
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(
            200, json={"id": "t", "polling_url": "https://api.bfl.ai/v1/get_result?id=t"}
        )

    await bfl_with(handler).submit(spec("bfl", width=1000, height=750, safety_tolerance=5))
    assert bodies[0]["width"] % 16 == 0 and bodies[0]["height"] % 16 == 0
    assert abs(bodies[0]["width"] / bodies[0]["height"] - 4 / 3) < 0.02
    assert bodies[0]["safety_tolerance"] == 5


async def test_together_refusal_422_is_moderation() -> None:
    http = httpx.AsyncClient(
        transport=httpx.MockTransport(
            lambda r: httpx.Response(
                422,
                json={
                    "error": {"message": "NSFW content detected", "type": "invalid_request_error"}
                },
            )
        )
    )
    provider = TogetherProvider(http, api_key=KEY, clock=ManualClock())
    with pytest.raises(ProviderModerated):
        await provider.submit(spec("together"))


def test_allow_list() -> None:
    allow = AllowList.build(
        "http://127.0.0.1:8123", ("*.bfl.ai",), ("cdn.example.com", "http://mirror.local:9000")
    )
    assert allow.allows("http://127.0.0.1:8123/results/x.png")
    assert not allow.allows("http://127.0.0.1:8124/results/x.png")  # another port
    assert allow.allows("https://delivery-eu1.bfl.ai/a/b.png")
    assert not allow.allows("http://delivery-eu1.bfl.ai/a/b.png")  # documented hosts: HTTPS only
    assert not allow.allows("https://bfl.ai.evil.com/x")
    assert not allow.allows("https://evilbfl.ai/x")
    assert allow.allows("https://cdn.example.com/x")
    assert allow.allows("http://mirror.local:9000/x")
    assert not allow.allows("http://169.254.169.254/latest/meta-data")
    assert not allow.allows("https://user:pw@delivery.bfl.ai/x")
    assert not allow.allows("file:///etc/passwd")
    assert HostRule.parse("*.fal.media").matches("https", "v3.fal.media", None)


def test_retry_after_parsing() -> None:
    assert retry_after_seconds("12") == 12
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(
        10
    )
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("-5") == 0.0


def test_sizes() -> None:
    variant = load_catalog().variants["pro"]
    model = variant.model_for("bfl")
    assert model is not None
    assert provider_size(variant, model, 1024, 576) == (1024, 576)
    w, h = provider_size(variant, model, 1001, 999)
    assert w % 16 == 0 and h % 16 == 0
    assert fal_image_size(1024, 576) == "landscape_16_9"
    assert fal_image_size(576, 1024) == "portrait_16_9"
    assert fal_image_size(1360, 768) == {"width": 1360, "height": 768}
    assert catalog_cost(model, 1024, 1024, 2) == pytest.approx(2 * model.price_usd, rel=0.2)


def fixed_loop_polls(finish: float) -> int:
    return int(finish) + 1


def adaptive_polls(finish: float, typical: float) -> tuple[int, float]:
    t = first_poll_delay(typical)
    polls = 1
    while t < finish:
        t += next_poll_delay(t, typical, None)
        polls += 1
    return polls, t - finish


@pytest.mark.parametrize("typical", [8.0, 15.0, 30.0])
def test_adaptive_polling_uses_at_most_half_the_polls_of_a_one_second_loop(typical: float) -> None:
    finishes = [typical * f for f in (0.6, 0.8, 0.9, 1.0, 1.1, 1.3, 1.6, 2.0, 3.0)]
    ours = [adaptive_polls(f, typical) for f in finishes]
    assert sum(p for p, _ in ours) <= sum(fixed_loop_polls(f) for f in finishes) / 2
    assert max(late for _, late in ours) <= max(5.0, 0.3 * typical)


def test_short_variants_still_poll_less_than_a_one_second_loop() -> None:
    finishes = [3.0 * f for f in (0.6, 0.8, 1.0, 1.3, 2.0, 3.0)]
    assert sum(adaptive_polls(f, 3.0)[0] for f in finishes) < sum(
        fixed_loop_polls(f) for f in finishes
    )


def test_retry_after_always_wins_and_webhooks_poll_slowly() -> None:
    assert next_poll_delay(1.0, 8.0, 30.0) == 30.0
    assert next_poll_delay(20.0, 8.0, None, webhook=True) >= 30.0
    assert first_poll_delay(8.0, webhook=True) >= 10.0


async def test_retry_policy_honours_retry_after_and_gives_up() -> None:
    clock = ManualClock()
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ProviderUnavailable("busy", retry_after=4.0)
        return "ok"

    start = clock.monotonic()
    policy = RetryPolicy(attempts=4, base=0.5, cap=8.0, budget=60.0)
    assert await policy.run(flaky, clock=clock, rng=random.Random(3)) == "ok"
    assert clock.monotonic() - start >= 8.0

    async def always() -> str:
        raise ProviderUnavailable("down")

    with pytest.raises(ProviderUnavailable):
        await RetryPolicy(attempts=3).run(always, clock=clock, rng=random.Random(3))


def test_full_jitter_stays_within_its_bounds() -> None:
    policy = RetryPolicy(base=1.0, cap=10.0)
    rng = random.Random(9)
    delays = [policy.delay(attempt, rng, None) for attempt in range(1, 8) for _ in range(20)]
    assert all(0 <= d <= 10.0 for d in delays)
    assert max(delays) > 5  # grows with the attempts


def test_circuit_opens_skips_then_probes() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(clock, threshold=3, reset_after=30)
    for _ in range(3):
        assert not breaker.is_open("bfl")
        breaker.failure("bfl")
    assert breaker.is_open("bfl")
    clock.advance(31)
    assert not breaker.is_open("bfl")  # one probe
    assert breaker.is_open("bfl")  # the others keep skipping
    breaker.failure("bfl")  # the probe failed: open again
    assert breaker.is_open("bfl")
    clock.advance(31)
    assert not breaker.is_open("bfl")
    breaker.success("bfl")
    assert breaker.state("bfl") == "closed"


async def test_download_refusal_names_the_host(caplog: pytest.LogCaptureFixture) -> None:
    provider = bfl_with(lambda r: httpx.Response(200, content=b"x"))
    with pytest.raises(DownloadRefused) as caught:
        await provider.downloader.fetch("http://10.0.0.5:8080/secret?sig=abc")
    assert "10.0.0.5:8080" in str(caught.value)
    assert "10.0.0.5:8080" in caplog.text
    assert "sig=abc" not in caplog.text


async def test_redirect_to_another_host_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "delivery-eu1.bfl.ai":
            return httpx.Response(302, headers={"location": "http://127.0.0.1:9/steal"})
        raise AssertionError(f"fetched {request.url}")

    provider = bfl_with(handler)
    with pytest.raises(DownloadRefused):
        await provider.downloader.fetch("https://delivery-eu1.bfl.ai/r/1.png")
