"""One contract, three providers: each real provider class against its fake on 127.0.0.1."""

from __future__ import annotations

import io
import logging
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from PIL import Image

from bot.domain.catalog import load_catalog
from bot.domain.clock import ManualClock
from bot.domain.errors import (
    DownloadRefused,
    InvalidRequest,
    ProviderBalanceExhausted,
    ProviderError,
    ProviderModerated,
    ProviderUnavailable,
    SubmitOutcomeUnknown,
)
from bot.net.httpclient import open_http_client
from bot.providers.base import GenerationSpec, PollResult, PollState, Provider
from bot.providers.bfl import BflProvider
from bot.providers.fal import FalProvider
from bot.providers.together import TogetherProvider
from tests.fakes.bfl import FakeBfl
from tests.fakes.fal import FakeFal
from tests.fakes.provider_common import FakeServer, Fault, Sink
from tests.fakes.together import FakeTogether

NAMES = ("bfl", "fal", "together")


@dataclass
class Rig:
    name: str
    fake: Any
    provider: Any
    http: httpx.AsyncClient
    clock: ManualClock

    @property
    def key(self) -> str:
        return str(self.fake.key)

    def spec(self, **overrides: Any) -> GenerationSpec:
        variant = load_catalog().variants[overrides.pop("variant", "pro")]
        model = variant.model_for(self.name)
        assert model is not None
        values: dict[str, Any] = {
            "job_id": "job-contract-1",
            "prompt": "a lighthouse in a storm",
            "variant": variant,
            "model": model,
            "width": 1024,
            "height": 768,
            "seed": 11,
        }
        values.update(overrides)
        return GenerationSpec(**values)


def build(name: str, fake: Any, http: httpx.AsyncClient, clock: ManualClock, **kw: Any) -> Provider:
    common: dict[str, Any] = {"api_key": fake.key, "base_url": fake.base_url, "clock": clock}
    common["rng"] = random.Random(1)
    common.update(kw)
    if name == "bfl":
        return BflProvider(http, **common)
    if name == "fal":
        fal = FalProvider(http, **common)
        fal.rest_base = fake.base_url  # the fake serves fal's storage API too
        return fal
    return TogetherProvider(http, **common)


def new_fake(name: str) -> FakeServer:
    return {"bfl": FakeBfl, "fal": FakeFal, "together": FakeTogether}[name]()


@pytest.fixture(params=NAMES)
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    name = request.param
    fake: Any = new_fake(name)
    await fake.start()
    clock = ManualClock()
    # The bot's own client, as bot/runtime/app.py opens it.
    async with open_http_client() as http:
        provider = build(name, fake, http, clock)
        try:
            yield Rig(name, fake, provider, http, clock)
        finally:
            await fake.aclose()


async def run(
    provider: Provider, spec: GenerationSpec, polls: int = 50
) -> tuple[PollResult, list[bytes]]:
    submission = await provider.submit(spec)
    result = await provider.poll(submission.task)
    while result.state is PollState.PENDING and polls:
        polls -= 1
        result = await provider.poll(submission.task)
    if result.state is not PollState.READY:
        return result, []
    return result, await provider.fetch(submission.task, result)


def jpeg_size(data: bytes) -> tuple[int, int]:
    """The size of a JPEG: the format a spec asks for unless it names another (the bot's
    default, as BFL's)."""
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG"
        return image.size


async def test_a_generation_comes_back_as_the_image_asked_for(rig: Rig) -> None:
    result, images = await run(rig.provider, rig.spec())
    assert result.state is PollState.READY
    assert [jpeg_size(i) for i in images] == [(1024, 768)]
    assert rig.fake.paid_tasks == 1


def image_format(data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as image:
        return str(image.format)


@pytest.mark.parametrize(
    ("wanted", "sent", "made"), [("jpeg", "jpeg", "JPEG"), ("png", "png", "PNG")]
)
async def test_the_output_format_goes_in_the_providers_own_field(
    rig: Rig, wanted: str, sent: str, made: str
) -> None:
    result, images = await run(rig.provider, rig.spec(output_format=wanted))
    assert result.state is PollState.READY
    body = rig.fake.recorded("POST")[-1].json
    assert body["output_format"] == sent
    assert [image_format(i) for i in images] == [made]


async def test_a_format_the_provider_lacks_is_asked_for_as_png(rig: Rig) -> None:
    # None of the three makes WEBP (their output_format enums are jpeg and png).
    _, images = await run(rig.provider, rig.spec(output_format="webp"))
    assert rig.fake.recorded("POST")[-1].json["output_format"] == "png"
    assert [image_format(i) for i in images] == ["PNG"]


FLEX_FIELDS = {
    # provider: (steps field, guidance field, prompt-upsampling field or None)
    "bfl": ("steps", "guidance", "prompt_upsampling"),
    "fal": ("num_inference_steps", "guidance_scale", "enable_prompt_expansion"),
    "together": ("steps", "guidance_scale", None),
}


async def test_flex_steps_guidance_and_upsampling_are_sent_the_same_everywhere(rig: Rig) -> None:
    steps, guidance, enhance = FLEX_FIELDS[rig.name]
    result, _ = await run(rig.provider, rig.spec(variant="flex"))
    assert result.state is PollState.READY
    body = rig.fake.recorded("POST")[-1].json
    # BFL's own defaults (50 steps, guidance 4.5), sent explicitly: no provider picks its own.
    assert (body[steps], body[guidance]) == (50, 4.5)
    if enhance:
        assert body[enhance] is False  # BFL flex upsamples when the field is absent
    assert not any("upsampl" in key or "expansion" in key for key in body if key != enhance)
    await run(rig.provider, rig.spec(variant="flex", steps=20, guidance=3.0, enhance=True))
    body = rig.fake.recorded("POST")[-1].json
    assert (body[steps], body[guidance]) == (20, 3.0)
    if enhance:
        assert body[enhance] is True


async def test_flex_steps_out_of_range_are_refused_with_the_range(rig: Rig) -> None:
    with pytest.raises(InvalidRequest, match="from 1 to 50"):
        await rig.provider.submit(rig.spec(variant="flex", steps=60))
    with pytest.raises(InvalidRequest, match=r"from 1\.5 to 10"):
        await rig.provider.submit(rig.spec(variant="flex", guidance=12.0))
    assert rig.fake.paid_tasks == 0


async def test_pro_sends_no_steps_guidance_or_upsampling(rig: Rig) -> None:
    await run(rig.provider, rig.spec())
    body = rig.fake.recorded("POST")[-1].json
    for field in ("steps", "guidance", "num_inference_steps", "guidance_scale"):
        assert field not in body


@pytest.mark.parametrize(
    ("variant", "provider", "model_id"),
    [
        ("klein-9b", "bfl", "flux-2-klein-9b"),
        ("klein-9b", "fal", "fal-ai/flux-2/klein/9b"),
        ("dev", "fal", "fal-ai/flux-2"),
        ("dev", "together", "black-forest-labs/FLUX.2-dev"),
    ],
)
async def test_new_variants_run_on_each_provider_that_offers_them(
    variant: str, provider: str, model_id: str
) -> None:
    fake: Any = new_fake(provider)
    await fake.start()
    try:
        async with httpx.AsyncClient() as http:
            rig = Rig(
                provider, fake, build(provider, fake, http, ManualClock()), http, ManualClock()
            )
            spec = rig.spec(variant=variant, safety_tolerance=3)
            assert spec.model_id == model_id
            result, images = await run(rig.provider, spec)
            assert result.state is PollState.READY and len(images) == 1
            body = fake.recorded("POST")[-1].json
            if provider != "bfl":
                # fal's [klein] and [dev] schemas have no safety_tolerance.
                assert "safety_tolerance" not in body
            else:
                assert body["safety_tolerance"] == 3
    finally:
        await fake.aclose()


async def test_requests_carry_the_documented_auth_and_a_pinned_model(rig: Rig) -> None:
    await run(rig.provider, rig.spec())
    submit = rig.fake.recorded("POST")[0]
    headers = {k.lower(): v for k, v in submit.headers.items()}
    body = submit.json
    if rig.name == "bfl":
        assert headers["x-key"] == rig.key
        assert submit.path == "/v1/flux-2-pro"
        assert (body["width"], body["height"]) == (1024, 768)
        assert body["safety_tolerance"] == 2
    elif rig.name == "fal":
        assert headers["authorization"] == f"Key {rig.key}"
        assert submit.path == "/fal-ai/flux-2-pro"
        assert body["image_size"] == "landscape_4_3"
        assert body["safety_tolerance"] == "2"
        assert body["enable_safety_checker"] is True
    else:
        assert headers["authorization"] == f"Bearer {rig.key}"
        assert submit.path == "/v1/images/generations"
        assert body["model"] == "black-forest-labs/FLUX.2-pro"
        assert (body["width"], body["height"], body["n"]) == (1024, 768, 1)


async def test_429_with_retry_after_is_a_refusal_before_any_task(rig: Rig) -> None:
    rig.fake.fail("submit", Fault(status=429, retry_after=7))
    with pytest.raises(ProviderUnavailable) as caught:
        await rig.provider.submit(rig.spec())
    assert caught.value.retry_after == 7
    assert rig.fake.paid_tasks == 0


async def test_bfl_429_retry_after_in_the_body_counts_like_the_header(bfl: Rig) -> None:
    # BFL's documented 429 body, with no Retry-After header beside it
    # (https://github.com/black-forest-labs/skills skills/bfl-api/references/rate-limiting.md).
    body = {"error": "rate_limit_exceeded", "message": "Too many concurrent requests"}
    bfl.fake.fail("submit", Fault(status=429, body={**body, "retry_after": 5}))
    with pytest.raises(ProviderUnavailable) as caught:
        await bfl.provider.submit(bfl.spec())
    assert caught.value.status == 429 and caught.value.retry_after == 5
    # Header and body both: the longer wait is kept.
    bfl.fake.fail("submit", Fault(status=429, retry_after=2, body={**body, "retry_after": 9}))
    with pytest.raises(ProviderUnavailable) as caught:
        await bfl.provider.submit(bfl.spec())
    assert caught.value.retry_after == 9
    bfl.fake.fail("submit", Fault(status=429, body=body))
    with pytest.raises(ProviderUnavailable) as caught:
        await bfl.provider.submit(bfl.spec())
    assert caught.value.retry_after is None
    assert bfl.fake.paid_tasks == 0


@pytest.mark.parametrize(
    "fault", [Fault(status=500), Fault(status=503, html=True), Fault(status=402)]
)
async def test_server_errors_and_no_credits_fail_over_safely(rig: Rig, fault: Fault) -> None:
    rig.fake.fail("submit", fault)
    with pytest.raises(ProviderUnavailable):
        await rig.provider.submit(rig.spec())
    assert rig.fake.paid_tasks == 0


async def test_connection_dropped_after_accepting_is_an_unknown_outcome(rig: Rig) -> None:
    rig.fake.fail("submit", Fault(drop=True, after_accept=True))
    with pytest.raises(SubmitOutcomeUnknown):
        await rig.provider.submit(rig.spec())
    assert rig.fake.paid_tasks == 1  # it was paid for: the bot must not send it again


async def test_a_submit_that_hangs_past_the_timeout_is_an_unknown_outcome(rig: Rig) -> None:
    rig.provider.submit_timeout = httpx.Timeout(2.0, read=0.3)
    rig.fake.fail("submit", Fault(hang=3.0, after_accept=True))
    with pytest.raises(SubmitOutcomeUnknown):
        await rig.provider.submit(rig.spec())


async def test_malformed_json_after_accepting_is_an_unknown_outcome(rig: Rig) -> None:
    rig.fake.fail("submit", Fault(malformed=True, after_accept=True))
    with pytest.raises(SubmitOutcomeUnknown):
        await rig.provider.submit(rig.spec())


async def test_nothing_listening_is_a_refusal_before_any_task(rig: Rig) -> None:
    sink = await Sink().start()
    port = sink.port
    await sink.aclose()
    base = f"http://127.0.0.1:{port}" + ("/v1" if rig.name == "together" else "")
    provider = build(rig.name, rig.fake, rig.http, rig.clock, base_url=base)
    with pytest.raises(ProviderUnavailable):
        await provider.submit(rig.spec())


async def test_a_refused_key_fails_over_and_never_shows_the_key(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    provider = build(rig.name, rig.fake, rig.http, rig.clock, api_key="wrong-key-ABCDEFGH")
    with pytest.raises(ProviderUnavailable) as caught:
        await provider.submit(rig.spec())
    for text in (str(caught.value), repr(caught.value), caplog.text, repr(provider)):
        assert "wrong-key-ABCDEFGH" not in text
        assert rig.key not in text


async def test_errors_and_logs_never_carry_the_key(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    messages: list[str] = []
    for fault in (
        Fault(status=500),
        Fault(status=429, retry_after=1),
        Fault(drop=True, after_accept=True),
        Fault(malformed=True, after_accept=True),
        Fault(status=400, body={"detail": "bad"}),
    ):
        rig.fake.fail("submit", fault)
        try:
            await rig.provider.submit(rig.spec())
        except ProviderError as exc:
            messages += [str(exc), repr(exc)]
    assert len(messages) == 10
    assert all(rig.key not in m for m in messages)
    assert rig.key not in caplog.text


async def test_a_result_on_a_foreign_host_is_never_fetched(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    sink = await Sink().start()
    try:
        rig.fake.result_base = sink.origin.replace("127.0.0.1", "localhost")
        with pytest.raises(DownloadRefused):
            await run(rig.provider, rig.spec())
        assert sink.connections == 0
        assert "localhost" in caplog.text  # the operator is told which host was refused
    finally:
        await sink.aclose()


async def test_a_result_redirected_to_a_foreign_host_is_never_fetched(rig: Rig) -> None:
    sink = await Sink().start()
    try:
        foreign = sink.origin.replace("127.0.0.1", "localhost") + "/steal.png"
        rig.fake.fail("result", Fault(status=302, location=foreign))
        with pytest.raises(DownloadRefused):
            await run(rig.provider, rig.spec())
        assert sink.connections == 0
    finally:
        await sink.aclose()


async def test_a_result_redirected_on_its_own_host_is_followed(rig: Rig) -> None:
    # To the same path on the same host (the fault is spent: the second request gets the image).
    rig.fake.fail("result", Fault(status=307, location="{path}?moved=1"))
    _result, images = await run(rig.provider, rig.spec())
    assert len(images) == 1 and images[0].startswith(b"\xff\xd8")  # a JPEG (the default)
    [first, second] = rig.fake.recorded("GET", "/results/")
    assert first.path == second.path and second.query == {"moved": "1"}


async def test_download_allow_adds_a_result_host(rig: Rig) -> None:
    other: Any = new_fake(rig.name)
    await other.start()
    try:
        rig.fake.result_base = other.origin.replace("127.0.0.1", "localhost")
        # the image lives on the other server: copy it there on demand
        provider = build(
            rig.name, rig.fake, rig.http, rig.clock, download_allow=(f"localhost:{other.port}",)
        )
        submission = await provider.submit(rig.spec())
        result = await provider.poll(submission.task)
        while result.state is PollState.PENDING:
            result = await provider.poll(submission.task)
        for token, stored in rig.fake.images.items():
            other.images[token] = stored
        images = await provider.fetch(submission.task, result)
        assert [jpeg_size(i) for i in images] == [(1024, 768)]
    finally:
        await other.aclose()


async def test_an_expired_result_url_fails_cleanly_after_one_refetch(rig: Rig) -> None:
    rig.fake.result_ttl = 0.0
    with pytest.raises(ProviderError):
        await run(rig.provider, rig.spec())
    assert len(rig.fake.recorded("GET", "/results/")) == 2


async def test_a_passing_5xx_on_the_download_is_retried(rig: Rig) -> None:
    rig.fake.fail("result", Fault(status=503, retry_after=1))
    _result, images = await run(rig.provider, rig.spec())
    assert len(images) == 1
    assert len(rig.fake.recorded("GET", "/results/")) == 2


async def test_an_oversized_result_is_cut_at_the_cap(rig: Rig) -> None:
    rig.provider.downloader.max_bytes = 1000
    with pytest.raises(DownloadRefused):
        await run(rig.provider, rig.spec())


async def test_input_images_reach_the_provider(rig: Rig) -> None:
    spec = rig.spec(input_images=("https://example.com/a.png", "https://example.com/b.png"))
    await run(rig.provider, spec)
    body = rig.fake.recorded("POST")[0].json
    if rig.name == "bfl":
        assert (body["input_image"], body["input_image_2"]) == spec.input_images
    elif rig.name == "fal":
        assert rig.fake.recorded("POST")[0].path == "/fal-ai/flux-2-pro/edit"
        assert body["image_urls"] == list(spec.input_images)
    else:
        assert body["reference_images"] == list(spec.input_images)


# Provider-specific outcomes --------------------------------------------------------------------


@pytest.fixture
async def bfl() -> AsyncIterator[Rig]:
    fake = FakeBfl()
    await fake.start()
    clock = ManualClock()
    async with open_http_client() as http:
        yield Rig("bfl", fake, build("bfl", fake, http, clock), http, clock)
    await fake.aclose()


@pytest.mark.parametrize(
    ("outcome", "state"),
    [
        ("Request Moderated", PollState.MODERATED),
        ("Content Moderated", PollState.MODERATED),
        ("Error", PollState.FAILED),
        ("Task not found", PollState.FAILED),
    ],
)
async def test_bfl_outcomes(bfl: Rig, outcome: str, state: PollState) -> None:
    bfl.fake.next_outcomes(outcome)
    result, images = await run(bfl.provider, bfl.spec())
    assert result.state is state
    assert images == []


async def test_bfl_error_carries_its_details_redacted(bfl: Rig) -> None:
    bfl.fake.next_outcomes("Error")
    bfl.fake.error_details = {
        "error": "Input image could not be read from https://x.example/in.png?sig=s3cr3t-sig"
    }
    result, _ = await run(bfl.provider, bfl.spec())
    assert result.state is PollState.FAILED
    assert result.reason and "Input image could not be read" in result.reason
    assert "s3cr3t-sig" not in result.reason and "[redacted]" in result.reason


async def test_bfl_polls_the_regional_polling_url(bfl: Rig) -> None:
    await run(bfl.provider, bfl.spec())
    polls = bfl.fake.recorded("GET", "/eu1/v1/get_result")
    assert polls and all(p.headers.get("x-key") == bfl.key for p in polls)


async def test_bfl_answer_without_polling_url_is_polled_at_get_result(bfl: Rig) -> None:
    bfl.fake.polling_url_in_answer = False
    result, images = await run(bfl.provider, bfl.spec())
    assert result.state is PollState.READY and len(images) == 1
    polls = bfl.fake.recorded("GET", "/v1/get_result")
    assert polls and all(p.query["id"] == next(iter(bfl.fake.tasks)) for p in polls)
    assert bfl.fake.recorded("GET", "/eu1/") == []


async def test_bfl_webhook_answer_carries_no_polling_url(bfl: Rig) -> None:
    submission = await bfl.provider.submit(
        bfl.spec(webhook_url="http://127.0.0.1:9/webhooks/bfl/job-contract-1")
    )
    assert submission.task["polling_url"] is None
    result = await bfl.provider.poll(submission.task)
    assert result.state is PollState.READY
    assert bfl.fake.recorded("GET", "/v1/get_result")


async def test_bfl_task_not_found_right_after_submit_is_pending_for_30_s(bfl: Rig) -> None:
    bfl.fake.polling_url_in_answer = False
    bfl.fake.unknown_for = 3600
    submission = await bfl.provider.submit(bfl.spec())
    bfl.clock.advance(29)
    assert (await bfl.provider.poll(submission.task)).state is PollState.PENDING
    bfl.clock.advance(2)
    result = await bfl.provider.poll(submission.task)
    assert result.state is PollState.FAILED and "not found" in (result.message or "")


async def test_bfl_task_not_found_with_a_polling_url_fails_at_once(bfl: Rig) -> None:
    bfl.fake.unknown_for = 3600
    submission = await bfl.provider.submit(bfl.spec())
    assert submission.task["polling_url"]
    assert (await bfl.provider.poll(submission.task)).state is PollState.FAILED


async def test_bfl_without_credits_answers_402_and_no_task(bfl: Rig) -> None:
    bfl.fake.credits = 0
    with pytest.raises(ProviderUnavailable) as caught:
        await bfl.provider.submit(bfl.spec())
    assert caught.value.status == 402


async def test_bfl_n_images_are_n_tasks_all_stored(bfl: Rig) -> None:
    submission = await bfl.provider.submit(bfl.spec(count=2))
    assert len(submission.task["tasks"]) == 2 == bfl.fake.paid_tasks
    result = await bfl.provider.poll(submission.task)
    assert len(await bfl.provider.fetch(submission.task, result)) == 2


async def test_bfl_cost_comes_from_the_answer(bfl: Rig) -> None:
    submission = await bfl.provider.submit(bfl.spec())
    assert submission.cost_usd == pytest.approx(0.03)
    # 3 output megapixels of flex: 5 credits + 2 x 5 credits, read from BFL's answer.
    large = await bfl.provider.submit(bfl.spec(variant="flex", width=2048, height=1536))
    assert large.cost_usd == pytest.approx(0.15)


@pytest.mark.parametrize("name", NAMES)
async def test_the_recorded_cost_matches_the_catalog_price(name: str) -> None:
    """Each fake bills what its provider's page says: the cost the bot records (reported or
    computed) equals the catalog's price for the same size."""
    fake: Any = new_fake(name)
    await fake.start()
    try:
        async with httpx.AsyncClient() as http:
            provider = build(name, fake, http, ManualClock())
            rig = Rig(name, fake, provider, http, ManualClock())
            for width, height in ((1024, 1024), (1536, 1024)):
                spec = rig.spec(width=width, height=height)
                submission = await provider.submit(spec)
                assert submission.cost_usd == pytest.approx(spec.model.price(width, height))
    finally:
        await fake.aclose()


@pytest.fixture
async def fal() -> AsyncIterator[Rig]:
    fake = FakeFal()
    await fake.start()
    clock = ManualClock()
    async with open_http_client() as http:
        yield Rig("fal", fake, build("fal", fake, http, clock), http, clock)
    await fake.aclose()


async def test_fal_flagged_black_image_is_moderation_and_never_downloaded(fal: Rig) -> None:
    fal.fake.nsfw_next.append(True)
    result, images = await run(fal.provider, fal.spec())
    assert result.state is PollState.MODERATED
    assert images == []
    assert fal.fake.recorded("GET", "/results/") == []


async def test_fal_queue_position_is_reported(fal: Rig) -> None:
    fal.fake.queue_seconds = 30
    submission = await fal.provider.submit(fal.spec())
    result = await fal.provider.poll(submission.task)
    assert result.state is PollState.PENDING
    assert result.queue_position == 3


async def test_fal_cancel_while_queued(fal: Rig) -> None:
    fal.fake.queue_seconds = 30
    submission = await fal.provider.submit(fal.spec())
    await fal.provider.cancel(submission.task)
    assert fal.fake.recorded("PUT")
    result = await fal.provider.poll(submission.task)
    assert result.state is PollState.FAILED


async def test_fal_maps_sizes_to_presets_or_custom(fal: Rig) -> None:
    await run(fal.provider, fal.spec(width=1024, height=576))
    await run(fal.provider, fal.spec(width=1360, height=768))
    bodies = [r.json for r in fal.fake.recorded("POST")]
    assert bodies[0]["image_size"] == "landscape_16_9"
    assert bodies[1]["image_size"] == {"width": 1360, "height": 768}


async def test_fal_content_policy_on_submit_is_moderation_and_no_task(fal: Rig) -> None:
    fal.fake.content_policy_next.append("submit")
    with pytest.raises(ProviderModerated) as caught:
        await fal.provider.submit(fal.spec())
    assert caught.value.status == 422
    assert "content checker" in str(caught.value)
    assert fal.fake.paid_tasks == 0


@pytest.mark.parametrize("stage", ["status", "result"])
async def test_fal_content_policy_on_the_status_or_result_is_moderation(
    fal: Rig, stage: str
) -> None:
    fal.fake.content_policy_next.append(stage)
    result, images = await run(fal.provider, fal.spec())
    assert result.state is PollState.MODERATED
    assert images == []
    assert fal.fake.recorded("GET", "/results/") == []


async def test_fal_errors_are_classified_by_type_not_by_words(fal: Rig) -> None:
    # A validation error whose message mentions "nsfw" is still a validation error.
    body = {
        "detail": [
            {
                "loc": ["body", "enable_safety_checker"],
                "msg": "nsfw checks cannot be turned off for this content policy",
                "type": "value_error",
                "url": "https://docs.fal.ai/errors#value_error",
            }
        ]
    }
    fal.fake.fail("submit", Fault(status=422, body=body))
    with pytest.raises(ProviderError) as caught:
        await fal.provider.submit(fal.spec())
    assert not isinstance(caught.value, ProviderModerated)
    assert "nsfw checks cannot be turned off" in str(caught.value)


async def test_fal_exhausted_balance_is_a_balance_problem_not_a_refused_key(
    fal: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    fal.fake.exhaust_balance()
    with caplog.at_level(logging.INFO), pytest.raises(ProviderBalanceExhausted) as caught:
        await fal.provider.submit(fal.spec())
    assert isinstance(caught.value, ProviderUnavailable)  # fails over
    assert "balance is exhausted" in str(caught.value) and "refused" not in str(caught.value)
    assert fal.fake.paid_tasks == 0
    # Told from the submit's own answer: no second call to find out.
    assert [(r.method, r.path.count("/requests/")) for r in fal.fake.requests] == [("POST", 0)]
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "balance is exhausted" in logged and "key was refused" not in logged
    # Status reads still answer for a locked account (fal/fal#1147): the key check sees the lock
    # on its upload initiation.
    status = await fal.http.get(
        f"{fal.fake.base_url}/fal-ai/flux-2-pro/requests/x/status",
        headers={"authorization": f"Key {fal.key}"},
    )
    assert status.status_code == 404
    with pytest.raises(ProviderBalanceExhausted, match="balance is exhausted"):
        await fal.provider.check_key()
    assert fal.fake.uploads_initiated == 0
    fal.fake.locked = None
    assert await fal.provider.check_key() == "key accepted"
    assert fal.fake.uploads_initiated == 1


async def test_fal_refused_key_is_not_a_balance_problem(fal: Rig) -> None:
    fal.fake.key = "another-key-entirely"
    with pytest.raises(ProviderUnavailable) as caught:
        await fal.provider.submit(fal.spec())
    assert not isinstance(caught.value, ProviderBalanceExhausted)
    with pytest.raises(ProviderError, match="FAL_KEY was refused"):
        await fal.provider.check_key()


async def test_fal_error_in_the_response_is_a_failure(fal: Rig) -> None:
    fal.fake.error_next.append("Internal error while generating")
    result, _ = await run(fal.provider, fal.spec())
    assert result.state is PollState.FAILED


@pytest.fixture
async def together() -> AsyncIterator[Rig]:
    fake = FakeTogether()
    await fake.start()
    clock = ManualClock()
    async with open_http_client() as http:
        yield Rig("together", fake, build("together", fake, http, clock), http, clock)
    await fake.aclose()


async def test_together_safety_refusal_is_moderation(together: Rig) -> None:
    with pytest.raises(ProviderModerated):
        await together.provider.submit(together.spec(prompt="something forbidden"))


async def test_together_n_images_in_one_call(together: Rig) -> None:
    _result, images = await run(together.provider, together.spec(count=3))
    assert len(images) == 3
    assert together.fake.paid_tasks == 1


async def test_together_base64_answers_are_decoded(together: Rig) -> None:
    from bot.providers.base import Submission  # noqa: F401

    original = together.provider.body

    def base64_body(spec: GenerationSpec) -> dict[str, Any]:
        body = original(spec)
        body["response_format"] = "base64"
        return body

    together.provider.body = base64_body
    _result, images = await run(together.provider, together.spec())
    assert [jpeg_size(i) for i in images] == [(1024, 768)]
