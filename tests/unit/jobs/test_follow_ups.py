"""Follow-ups: U{k}, V{k}, Reroll and Edit make a new job from image k of an earlier one, checked
and priced like any /imagine; /blend takes two or more images. Refusals charge nothing."""

from __future__ import annotations

import random
from typing import Any

import pytest

from bot.domain.catalog import load_catalog, upscale_size
from bot.domain.community import AuditEntry
from bot.domain.errors import InvalidRequest, JobNotFound, PolicyRefusal
from bot.domain.models import CommunitySettings, Job, JobStatus, ReplyTarget
from bot.domain.policy import Policy
from bot.jobs.follow_ups import FollowUps
from bot.jobs.imagine import Imagine
from bot.jobs.tracking import Tracking
from tests.factories import make_request
from tests.unit.jobs.conftest import Rig

IMAGES = ("p/1.png", "p/2.png", "p/3.png", "p/4.png")


@pytest.fixture
def tracking(service_parts: dict[str, Any]) -> Tracking:
    parts = service_parts
    return Tracking(store=parts["store"], clock=parts["clock"], events=parts["events"])


@pytest.fixture
def follow_ups(service_parts: dict[str, Any], tracking: Tracking) -> FollowUps:
    parts = dict(service_parts)
    imagine = Imagine(**parts, providers=("bfl",), rng=random.Random(1))
    return FollowUps(
        catalog=parts["catalog"],
        imagine=imagine,
        tracking=tracking,
        store=parts["store"],
        policy=parts["policy"],
    )


async def parent(
    rig: Rig,
    images: tuple[str, ...] = IMAGES,
    *,
    size: tuple[int, int] = (1216, 832),
    status: JobStatus = JobStatus.DELIVERED,
) -> Job:
    request = make_request(seed=41, prompt="a lighthouse", aspect_ratio="3:2", count=len(images))
    job = await rig.claimed(request=request, seed=41, width=size[0], height=size[1])
    done = job.evolve(status=status, images=images, outcome_sent=True)
    assert await rig.store.save_job_step(done, worker_id=job.lease_owner or "", expected=job.status)
    return done


# The requester, asking from another channel (the outcome goes where the button was pressed).
ASKER = make_request(channel_id="ch9", reply=ReplyTarget(platform="console", channel_id="ch9"))
STRANGER = ASKER.with_changes(user_id="u2")


async def test_vary_sends_image_k_as_the_reference_with_a_new_seed(
    rig: Rig, follow_ups: FollowUps
) -> None:
    earlier = await parent(rig)
    job = (await follow_ups.follow_up(earlier.id, "vary", ASKER, image=2)).job
    assert job.request.input_images == ("blob:p/2.png",)
    assert (job.variant, job.width, job.height, job.request.count) == ("pro", 1216, 832, 1)
    assert job.seed != 41
    assert job.request.prompt == "a lighthouse"
    assert (job.request.action, job.request.parent_job_id) == ("vary", earlier.id)
    assert job.request.parent_image == 2
    assert job.request.channel_id == "ch9"


async def test_strong_variation_has_no_reference(rig: Rig, follow_ups: FollowUps) -> None:
    earlier = await parent(rig)
    job = (await follow_ups.follow_up(earlier.id, "vary-strong", ASKER, image=1)).job
    assert job.request.input_images == () and job.seed != 41
    assert (job.width, job.height) == (1216, 832)


async def test_upscale_asks_for_about_twice_the_pixels_from_image_k(
    rig: Rig, follow_ups: FollowUps
) -> None:
    earlier = await parent(rig)
    job = (await follow_ups.follow_up(earlier.id, "upscale", ASKER, image=3)).job
    assert job.request.input_images == ("blob:p/3.png",)
    assert (job.variant, job.seed) == ("pro", 41)
    ratio = job.width * job.height / (1216 * 832)
    assert 1.9 <= ratio <= 2.0
    assert job.width % 16 == 0 and job.height % 16 == 0
    assert abs(job.width / job.height - 1216 / 832) < 0.02
    # Priced at its output size, with its one input image.
    model = load_catalog().variants["pro"].model_for("bfl")
    assert model is not None
    assert job.cost_usd == model.price(job.width, job.height, 1, 1)
    assert job.cost_usd > model.price(1216, 832, 1, 1)


def test_upscale_sizes_stay_within_the_variant() -> None:
    rules = load_catalog().variants["pro"].size
    assert upscale_size(1024, 1024, rules) == (1440, 1440)
    big = upscale_size(1920, 1440, rules)
    assert big is not None and big[0] * big[1] <= 4_000_000
    assert upscale_size(2048, 1952, rules) is None


async def test_an_upscale_at_the_largest_size_is_refused_and_stores_nothing(
    rig: Rig, follow_ups: FollowUps
) -> None:
    earlier = await parent(rig, size=(2048, 1952))
    with pytest.raises(InvalidRequest, match="already at the largest size"):
        await follow_ups.follow_up(earlier.id, "upscale", ASKER, image=1)
    assert (await rig.store.job_counts()).queued == 0


async def test_reroll_keeps_options_and_count_with_a_new_seed(
    rig: Rig, follow_ups: FollowUps
) -> None:
    earlier = await parent(rig)
    job = (await follow_ups.follow_up(earlier.id, "reroll", ASKER)).job
    assert job.seed != 41 and job.request.action == "reroll"
    assert (job.request.count, job.request.input_images) == (4, ())


async def test_edit_starts_from_image_k(rig: Rig, follow_ups: FollowUps) -> None:
    earlier = await parent(rig)
    job = (await follow_ups.follow_up(earlier.id, "edit", ASKER, prompt="at night", image=4)).job
    assert job.request.prompt == "at night"
    assert job.request.input_images == ("blob:p/4.png",)


async def test_refused_follow_ups(rig: Rig, follow_ups: FollowUps) -> None:
    earlier = await parent(rig, images=("p/1.png", "p/2.png"))
    with pytest.raises(InvalidRequest, match="pick 1 to 2"):
        await follow_ups.follow_up(earlier.id, "vary", ASKER, image=3)
    with pytest.raises(InvalidRequest, match="Unknown action 'zoom'"):
        await follow_ups.follow_up(earlier.id, "zoom", ASKER)
    with pytest.raises(JobNotFound):
        await follow_ups.follow_up("nosuchjob", "vary", ASKER)
    with pytest.raises(PolicyRefusal, match="another community"):
        await follow_ups.follow_up(earlier.id, "vary", ASKER.with_changes(community_id="c2"))
    failed = await parent(rig, images=(), status=JobStatus.FAILED)
    with pytest.raises(InvalidRequest, match="ended without images"):
        await follow_ups.follow_up(failed.id, "upscale", ASKER)


async def test_a_model_without_reference_images_cannot_vary_or_upscale(
    rig: Rig, follow_ups: FollowUps
) -> None:
    request = make_request(seed=41, prompt="a lighthouse", variant="pro-1.1")
    job = await rig.claimed(request=request, seed=41, width=1024, height=1024, variant="pro-1.1")
    done = job.evolve(status=JobStatus.DELIVERED, images=("p/1.png",), outcome_sent=True)
    assert await rig.store.save_job_step(done, worker_id=job.lease_owner or "", expected=job.status)
    for action in ("vary", "upscale", "edit"):
        with pytest.raises(InvalidRequest, match="takes no reference image"):
            await follow_ups.follow_up(done.id, action, ASKER)
    assert (await follow_ups.follow_up(done.id, "vary-strong", ASKER)).job.variant == "pro-1.1"


async def test_a_deleted_job_s_buttons_say_so(
    rig: Rig, follow_ups: FollowUps, tracking: Tracking
) -> None:
    earlier = await parent(rig)
    await tracking.delete(earlier.id, user_id="u1")
    with pytest.raises(InvalidRequest, match="was deleted"):
        await follow_ups.follow_up(earlier.id, "vary", ASKER, image=1)


async def test_only_the_requester_presses_unless_the_community_shares_buttons(
    rig: Rig, follow_ups: FollowUps
) -> None:
    earlier = await parent(rig)
    for action in ("vary", "upscale", "reroll", "edit"):
        with pytest.raises(PolicyRefusal, match="Only the person who asked"):
            await follow_ups.follow_up(earlier.id, action, STRANGER)
    await rig.store.change_settings(
        "c1",
        lambda s: (s or Policy().new_settings("c1")).evolve(shared_buttons=True),
        AuditEntry(community_id="c1", at=0.0, actor_id="admin", kind="settings", action="x"),
    )
    for action in ("vary", "upscale", "reroll"):
        rig.clock.advance(600)  # past the per-user rate limit
        job = (await follow_ups.follow_up(earlier.id, action, STRANGER)).job
        assert job.user_id == "u2"
    with pytest.raises(PolicyRefusal):
        await follow_ups.follow_up(earlier.id, "edit", STRANGER)


async def test_blend_takes_every_image_and_a_default_prompt(
    rig: Rig, follow_ups: FollowUps
) -> None:
    inputs = ("blob:a.png", "blob:b.png", "blob:c.png")
    job = (await follow_ups.blend(make_request(prompt="", input_images=inputs))).job
    assert job.request.input_images == inputs and job.request.action == "blend"
    assert job.request.prompt
    with pytest.raises(InvalidRequest, match="at least two"):
        await follow_ups.blend(make_request(prompt="x", input_images=("blob:a.png",)))
    with pytest.raises(InvalidRequest, match="at most 8 input images"):
        await follow_ups.blend(
            make_request(prompt="x", input_images=tuple(f"blob:{i}.png" for i in range(9)))
        )


async def test_count_left_to_the_community_uses_its_setting(
    rig: Rig, follow_ups: FollowUps, service_parts: dict[str, Any]
) -> None:
    imagine = Imagine(**service_parts, providers=("bfl",), rng=random.Random(1))
    assert (await imagine.imagine(make_request(count=0))).job.request.count == 1
    await rig.store.change_settings(
        "c1",
        lambda s: CommunitySettings("c1").evolve(default_count=3),
        AuditEntry(community_id="c1", at=0.0, actor_id="admin", kind="settings", action="x"),
    )
    rig.clock.advance(600)
    job = (await imagine.imagine(make_request(count=0, prompt="other"))).job
    assert job.request.count == 3
