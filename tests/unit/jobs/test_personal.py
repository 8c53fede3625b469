"""A user's own corner: /prefer defaults fill a request and lose to stricter community rules;
/history lists only the user's own jobs; Re-run only of one's own job."""

from __future__ import annotations

import random
from typing import Any

import pytest

from bot.domain.errors import InvalidRequest, PolicyRefusal
from bot.domain.models import CommunitySettings
from bot.domain.preferences import MAX_SUFFIX_CHARS, Preferences
from bot.jobs.service import ImagineService
from tests.factories import make_request
from tests.store_helpers import save_settings
from tests.unit.jobs.conftest import Rig


@pytest.fixture
def service(service_parts: dict[str, Any]) -> ImagineService:
    return ImagineService(**service_parts, providers=("bfl",), rng=random.Random(3))


async def test_preferences_fill_what_the_request_leaves_open(service: ImagineService) -> None:
    await service.prefer(
        "console",
        "u1",
        {"model": "flex", "aspect": "16:9", "count": "2", "format": "jpg", "enhance": "on"},
    )
    await service.prefer("console", "u1", {"suffix": "  in  watercolor "})
    accepted = await service.imagine(make_request(variant=None, prompt="a fox"))
    request = accepted.job.request
    assert request.variant == "flex" and request.aspect_ratio == "16:9" and request.count == 2
    assert request.output_format == "jpeg" and request.enhance
    assert request.prompt == "a fox in watercolor"
    assert accepted.job.width > accepted.job.height
    # What the request says itself wins.
    asked = await service.imagine(make_request(variant="max", aspect_ratio="1:1", prompt="an owl"))
    assert asked.job.variant == "max" and asked.job.width == asked.job.height
    # Another user, another platform: untouched.
    other = await service.imagine(make_request(user_id="u2", variant=None, prompt="a cat"))
    assert other.job.request.prompt == "a cat" and other.job.request.count == 1


async def test_the_community_wins_where_it_is_stricter(rig: Rig, service: ImagineService) -> None:
    await save_settings(rig.store, CommunitySettings("c1", allow_private=False), rig.clock.now())
    await service.prefer("console", "u1", {"private": True})
    accepted = await service.imagine(make_request())
    assert not accepted.job.request.private  # the default gives way; no refusal
    with pytest.raises(PolicyRefusal, match="Private images are turned off"):
        await service.imagine(make_request(private=True, prompt="asked for it"))
    # Elsewhere the preference applies.
    elsewhere = await service.imagine(make_request(community_id="c2"))
    assert elsewhere.job.request.private


async def test_show_and_reset(service: ImagineService) -> None:
    assert await service.preferences("console", "u1") == Preferences()
    await service.prefer("console", "u1", {"model": "max", "private": "yes"})
    assert await service.preferences("console", "u1") == Preferences(model="max", private=True)
    await service.prefer("console", "u1", {"model": None})
    assert await service.preferences("console", "u1") == Preferences(private=True)
    await service.reset_preferences("console", "u1")
    assert await service.preferences("console", "u1") == Preferences()


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"model": "dall-e"}, "Choose one of: "),
        ({"format": "gif"}, "Choose one of: png, jpeg, webp"),
        ({"aspect": "wide"}, "not like 16:9"),
        ({"count": "9"}, "count is 1 to 4"),
        ({"suffix": "x" * (MAX_SUFFIX_CHARS + 1)}, f"at most {MAX_SUFFIX_CHARS} characters"),
        ({"colour": "red"}, "Preferences: model, aspect"),
    ],
)
async def test_bad_preferences_name_what_is_allowed(
    service: ImagineService, values: dict[str, object], says: str
) -> None:
    await service.prefer("console", "u1", {"model": "max"})
    with pytest.raises(InvalidRequest, match=says):
        await service.prefer("console", "u1", {"private": True, **values})
    assert await service.preferences("console", "u1") == Preferences(model="max")


async def test_history_lists_only_the_users_own_jobs(service: ImagineService) -> None:
    mine = [await service.imagine(make_request(prompt=f"fox {i}")) for i in range(3)]
    await service.imagine(make_request(user_id="u2", prompt="not mine"))
    listed = await service.history("console", "u1", 2)
    assert [j.id for j in listed] == [mine[2].job.id, mine[1].job.id]
    assert all(j.user_id == "u1" for j in await service.history("console", "u1", 100))


async def test_rerun_only_of_ones_own_job(service: ImagineService) -> None:
    original = await service.imagine(make_request(prompt="a lighthouse", seed=5))
    again = await service.rerun(original.job.id, make_request(prompt=""))
    assert again.job.request.prompt == "a lighthouse" and again.job.seed != 5
    with pytest.raises(PolicyRefusal, match="only your own"):
        await service.rerun(original.job.id, make_request(user_id="u2", prompt=""))
