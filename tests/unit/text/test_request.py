from __future__ import annotations

import pytest

from bot.domain.errors import InvalidRequest
from bot.domain.models import ReplyTarget
from bot.text.flags import parse_imagine
from bot.text.request import build_request

REPLY = ReplyTarget(platform="console", channel_id="ch")


def test_every_parsed_argument_reaches_the_request() -> None:
    args = parse_imagine("a fox --size 1024x768 --seed 7 -m max --n 2 --no-cache --image x.png")
    request = build_request(
        args,
        platform="console",
        community_id="c",
        channel_id="ch",
        user_id="u",
        reply=REPLY,
        input_images=("blob:inputs/x.png",),
        dedupe_key="d1",
        user_roles=("r",),
        user_is_admin=True,
    )
    assert (request.prompt, request.width, request.height) == ("a fox", 1024, 768)
    assert (request.seed, request.variant, request.count) == (7, "max", 2)
    assert request.use_cache is False and request.input_images == ("blob:inputs/x.png",)
    assert (request.dedupe_key, request.user_roles, request.user_is_admin) == ("d1", ("r",), True)


def test_format_enhance_steps_and_guidance_reach_the_request() -> None:
    args = parse_imagine("a fox -m flex --format png --enhance --steps 20 --guidance 2.5")
    request = build_request(
        args, platform="console", community_id="c", channel_id="ch", user_id="u", reply=REPLY
    )
    assert (request.output_format, request.enhance) == ("png", True)
    assert (request.steps, request.guidance) == (20, 2.5)


def test_a_malformed_size_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="not like 1024x768"):
        build_request(
            parse_imagine("a fox --size big"),
            platform="console",
            community_id="c",
            channel_id="ch",
            user_id="u",
            reply=REPLY,
        )
