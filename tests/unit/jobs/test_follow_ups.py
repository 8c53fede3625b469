"""Follow-ups: reroll, vary, upscale and edit make a new job from an earlier one, for whoever asks,
checked like any /imagine; an unknown action or an edit of a job without image is refused."""

from __future__ import annotations

import random
from typing import Any

import pytest

from bot.domain.errors import InvalidRequest, JobNotFound
from bot.domain.models import Job, JobStatus, ReplyTarget
from bot.jobs.follow_ups import FollowUps
from bot.jobs.imagine import Imagine
from bot.jobs.tracking import Tracking
from tests.factories import make_request
from tests.unit.jobs.conftest import Rig


@pytest.fixture
def follow_ups(service_parts: dict[str, Any]) -> FollowUps:
    parts = dict(service_parts)
    imagine = Imagine(**parts, providers=("bfl",), rng=random.Random(1))
    tracking = Tracking(store=parts["store"], clock=parts["clock"], events=parts["events"])
    return FollowUps(catalog=parts["catalog"], imagine=imagine, tracking=tracking)


async def parent(rig: Rig, images: tuple[str, ...] = ("p/1.png",)) -> Job:
    request = make_request(seed=41, prompt="a lighthouse", aspect_ratio="3:2")
    job = await rig.claimed(request=request, seed=41, width=1216, height=832)
    done = job.evolve(status=JobStatus.DELIVERED, images=images, outcome_sent=True)
    assert await rig.store.save_job_step(done, worker_id=job.lease_owner or "", expected=job.status)
    return done


ASKER = make_request(
    user_id="u2", channel_id="ch9", reply=ReplyTarget(platform="console", channel_id="ch9")
)


@pytest.mark.parametrize(
    ("action", "variant", "seed"),
    [("vary", "pro", 42), ("upscale", "max", 41)],
)
async def test_vary_and_upscale_keep_the_parent_s_size_and_seed(
    rig: Rig, follow_ups: FollowUps, action: str, variant: str, seed: int
) -> None:
    earlier = await parent(rig)
    accepted = await follow_ups.follow_up(earlier.id, action, ASKER)
    job = accepted.job
    assert (job.variant, job.seed, job.width, job.height) == (variant, seed, 1216, 832)
    assert (job.user_id, job.request.channel_id) == ("u2", "ch9")
    assert (job.request.action, job.request.parent_job_id) == (action, earlier.id)
    assert job.request.prompt == "a lighthouse"


async def test_reroll_draws_a_new_seed(rig: Rig, follow_ups: FollowUps) -> None:
    earlier = await parent(rig)
    job = (await follow_ups.follow_up(earlier.id, "reroll", ASKER)).job
    assert job.seed != 41 and job.request.action == "reroll"


async def test_edit_starts_from_the_parent_s_image(rig: Rig, follow_ups: FollowUps) -> None:
    earlier = await parent(rig)
    job = (await follow_ups.follow_up(earlier.id, "edit", ASKER, prompt="at night")).job
    assert job.request.prompt == "at night"
    assert job.request.input_images == ("blob:p/1.png",)


async def test_refused_follow_ups(rig: Rig, follow_ups: FollowUps) -> None:
    earlier = await parent(rig, images=())
    with pytest.raises(InvalidRequest, match="no image to edit"):
        await follow_ups.follow_up(earlier.id, "edit", ASKER)
    with pytest.raises(InvalidRequest, match="Unknown action 'zoom'"):
        await follow_ups.follow_up(earlier.id, "zoom", ASKER)
    with pytest.raises(JobNotFound):
        await follow_ups.follow_up("nosuchjob", "vary", ASKER)
