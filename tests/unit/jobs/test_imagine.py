"""/imagine: the prompt cleaned and bounded, the request checked and stored as a queued job at
its price, refusals audited, the same event once, and an identical earlier image served again."""

from __future__ import annotations

import random
from typing import Any

import pytest

from bot.domain.errors import InvalidRequest, PolicyRefusal
from bot.domain.models import CACHE_PROVIDER, CommunitySettings, JobStatus
from bot.jobs.imagine import MAX_PROMPT_CHARS, Imagine, clean_prompt, request_cache_key
from tests import store_helpers
from tests.factories import make_job, make_request
from tests.unit.jobs.conftest import Rig


def imagine(parts: dict[str, Any], providers: tuple[str, ...] = ("bfl", "fal")) -> Imagine:
    return Imagine(**parts, providers=providers, rng=random.Random(3))


def test_prompts_lose_control_characters_and_extra_space() -> None:
    assert clean_prompt("a\x00 fox\n\n at\tdawn ") == "a fox at dawn"
    with pytest.raises(InvalidRequest, match="describe the image"):
        clean_prompt(" \x07 ")
    with pytest.raises(InvalidRequest, match=f"at most {MAX_PROMPT_CHARS:,} characters") as caught:
        clean_prompt("x" * (MAX_PROMPT_CHARS + 1))
    assert caught.value.code == "prompt_too_long"


def test_the_cache_key_changes_with_anything_that_changes_the_image() -> None:
    job = make_job(seed=7)
    assert request_cache_key(job) == request_cache_key(make_job(seed=7))
    assert request_cache_key(job) != request_cache_key(make_job(seed=8))
    assert request_cache_key(job) != request_cache_key(make_job(seed=7, width=512))


async def test_a_request_is_stored_queued_at_its_first_provider_s_price(
    rig: Rig, service_parts: dict[str, Any]
) -> None:
    use_case = imagine(service_parts)
    accepted = await use_case.imagine(make_request(prompt=" a  fox "))
    stored = await rig.store.get_job(accepted.job.id)
    assert stored == accepted.job and stored.status is JobStatus.QUEUED
    assert stored.request.prompt == "a fox"
    variant = service_parts["catalog"].variants["pro"]
    assert stored.cost_usd == variant.model_for("bfl").price_usd
    assert accepted.position == 0 and not accepted.duplicate


async def test_the_same_event_twice_is_one_job(rig: Rig, service_parts: dict[str, Any]) -> None:
    use_case = imagine(service_parts)
    first = await use_case.imagine(make_request(dedupe_key="evt-1"))
    again = await use_case.imagine(make_request(dedupe_key="evt-1"))
    assert again.duplicate and again.job.id == first.job.id
    assert first.job.request.dedupe_key == "console:evt-1"


async def test_a_refusal_is_audited(rig: Rig, service_parts: dict[str, Any]) -> None:
    await store_helpers.save_settings(rig.store, CommunitySettings("c1", banned_users=("u1",)), 0)
    with pytest.raises(PolicyRefusal):
        await imagine(service_parts).imagine(make_request())
    # (store_helpers.save_settings writes its own "test setup" line)
    [entry] = [e for e in await rig.store.list_audit("c1", 10) if e.kind != "change"]
    assert (entry.kind, entry.actor_id, entry.channel_id) == ("refusal", "u1", "ch1")


async def test_a_model_no_configured_provider_offers_is_refused(
    service_parts: dict[str, Any],
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await imagine(service_parts, providers=("together",)).imagine(make_request(variant="klein"))
    assert caught.value.code == "model"


async def test_an_explicit_seed_already_delivered_is_served_from_its_image(
    rig: Rig, service_parts: dict[str, Any]
) -> None:
    use_case = imagine(service_parts)
    first = await use_case.imagine(make_request(seed=5, dedupe_key="a"))
    [job] = await rig.store.claim_jobs("w", rig.clock.now(), 60, frozenset({"console"}), 1)
    done = job.evolve(status=JobStatus.DELIVERED, images=("x/1.png",), outcome_sent=True)
    assert await rig.store.save_job_step(done, worker_id="w", expected=JobStatus.QUEUED)
    again = await use_case.imagine(make_request(seed=5, dedupe_key="b"))
    assert again.job.id != first.job.id
    assert (again.job.status, again.job.provider, again.job.images, again.job.cost_usd) == (
        JobStatus.FETCHED,
        CACHE_PROVIDER,
        ("x/1.png",),
        0.0,
    )


def test_the_cache_key_holds_the_format_enhancement_and_sampling() -> None:
    def key(**changes: Any) -> str:
        return request_cache_key(make_job(seed=7, request=make_request(**changes)))

    assert key(output_format="jpeg") == key(output_format="jpeg")
    assert key(output_format="jpeg") != key(output_format="png")
    assert key(output_format="jpeg") != key(output_format="webp")
    assert key(enhance=True) != key(enhance=False)
    assert key(steps=20) != key(steps=30)
    assert key(guidance=3.0) != key(guidance=5.0)


async def test_the_format_is_the_request_s_then_the_community_s_then_jpeg(
    rig: Rig, service_parts: dict[str, Any]
) -> None:
    use_case = imagine(service_parts)
    plain = await use_case.imagine(make_request())
    assert plain.job.request.output_format == "jpeg"
    await store_helpers.save_settings(rig.store, CommunitySettings("c1", default_format="webp"), 0)
    community = await use_case.imagine(make_request(prompt="a wolf"))
    assert community.job.request.output_format == "webp"
    asked = await use_case.imagine(make_request(prompt="an owl", output_format="png"))
    stored = await rig.store.get_job(asked.job.id)
    assert stored.request.output_format == "png"


async def test_enhance_where_no_provider_offers_it_is_refused_before_any_charge(
    rig: Rig, service_parts: dict[str, Any]
) -> None:
    # FLUX.2 [pro] has no upsampling switch on any provider; [flex] has one on BFL and fal.
    use_case = imagine(service_parts, providers=("bfl", "fal", "together"))
    with pytest.raises(InvalidRequest, match=r"--enhance .* FLUX.2 \[flex\]") as caught:
        await use_case.imagine(make_request(variant="pro", enhance=True))
    assert caught.value.code == "enhance"
    only_together = imagine(service_parts, providers=("together",))
    with pytest.raises(InvalidRequest, match="offered for no model"):
        await only_together.imagine(make_request(variant="flex", enhance=True))
    assert (await rig.store.job_counts()).queued == 0
    flex = await use_case.imagine(make_request(variant="flex", enhance=True))
    assert flex.job.request.enhance is True


async def test_the_community_s_enhance_default_applies_only_where_offered(
    rig: Rig, service_parts: dict[str, Any]
) -> None:
    await store_helpers.save_settings(rig.store, CommunitySettings("c1", default_enhance=True), 0)
    use_case = imagine(service_parts)
    pro = await use_case.imagine(make_request(variant="pro"))
    flex = await use_case.imagine(make_request(variant="flex", prompt="a wolf"))
    off = await use_case.imagine(make_request(variant="flex", prompt="an owl", enhance=False))
    assert (pro.job.request.enhance, flex.job.request.enhance, off.job.request.enhance) == (
        False,
        True,
        False,
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"variant": "flex", "steps": 51}, r"Steps for FLUX.2 \[flex\] must be from 1 to 50"),
        ({"variant": "flex", "guidance": 12.0}, r"Guidance .* must be from 1.5 to 10"),
        ({"variant": "pro", "steps": 20}, r"--steps is not taken by FLUX.2 \[pro\]"),
    ],
)
async def test_steps_and_guidance_out_of_range_are_refused_naming_the_range(
    rig: Rig, service_parts: dict[str, Any], changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message):
        await imagine(service_parts).imagine(make_request(**changes))
    assert (await rig.store.job_counts()).queued == 0


async def test_flex_steps_and_guidance_in_range_are_kept(
    rig: Rig, service_parts: dict[str, Any]
) -> None:
    accepted = await imagine(service_parts).imagine(
        make_request(variant="flex", steps=28, guidance=3.5)
    )
    stored = await rig.store.get_job(accepted.job.id)
    assert (stored.request.steps, stored.request.guidance) == (28, 3.5)


async def test_a_user_s_preferences_sit_between_the_request_and_the_community(
    rig: Rig, service_parts: dict[str, Any]
) -> None:
    from bot.domain.preferences import Preferences

    await store_helpers.save_settings(
        rig.store, CommunitySettings("c1", default_format="webp", default_enhance=True), 0
    )
    await rig.store.save_preferences("console", "u1", Preferences(format="png", enhance=False), 0.0)
    use_case = imagine(service_parts)
    preferred = await use_case.imagine(make_request(variant="flex"))
    assert (preferred.job.request.output_format, preferred.job.request.enhance) == ("png", False)
    asked = await use_case.imagine(
        make_request(variant="flex", prompt="an owl", output_format="jpeg", enhance=True)
    )
    assert (asked.job.request.output_format, asked.job.request.enhance) == ("jpeg", True)
    # Upsampling by preference on a model nothing upsamples: off, not refused.
    await rig.store.save_preferences("console", "u1", Preferences(enhance=True), 0.0)
    pro = await use_case.imagine(make_request(variant="pro", prompt="a wolf"))
    assert pro.job.request.enhance is False
