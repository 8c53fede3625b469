"""Preferences: each value checked (naming what is allowed), and applied only where the request
leaves a choice open, private only where the community allows it."""

from __future__ import annotations

import pytest

from bot.domain.catalog import load_catalog
from bot.domain.errors import InvalidRequest
from bot.domain.models import CommunitySettings
from bot.domain.preferences import (
    Preferences,
    apply_preferences,
    check_preference,
    describe_preferences,
)
from tests.factories import make_request

CATALOG = load_catalog()


@pytest.mark.parametrize(
    ("name", "value", "stored"),
    [
        ("model", "MAX", "max"),
        ("aspect", "16x9", "16:9"),
        ("format", "JPG", "jpeg"),
        ("count", "3", 3),
        ("private", "on", True),
        ("enhance", False, False),
        ("suffix", "  soft   light ", "soft light"),
        ("suffix", "default", None),
        ("model", None, None),
    ],
)
def test_values_are_checked_and_normalized(name: str, value: object, stored: object) -> None:
    assert check_preference(name, value, CATALOG) == stored


def test_a_bad_switch_names_the_choices() -> None:
    with pytest.raises(InvalidRequest, match="on or off"):
        check_preference("private", "maybe", CATALOG)


def test_the_request_wins_and_private_needs_the_communitys_leave() -> None:
    prefs = Preferences(model="flex", aspect="9:16", count=2, private=True, suffix="at dusk")
    allowed = CommunitySettings("c1")
    request = apply_preferences(make_request(variant=None, prompt="a fox"), prefs, allowed)
    assert (request.variant, request.aspect_ratio, request.count) == ("flex", "9:16", 2)
    assert request.private and request.prompt == "a fox at dusk"
    sized = apply_preferences(make_request(width=512, height=512), prefs, allowed)
    assert sized.aspect_ratio is None and sized.variant == "pro"
    forbidden = apply_preferences(
        make_request(), prefs, CommunitySettings("c1", allow_private=False)
    )
    assert not forbidden.private
    assert apply_preferences(make_request(), None, allowed) == make_request()


def test_describe_lists_only_what_is_set() -> None:
    assert describe_preferences(Preferences()) == []
    assert describe_preferences(Preferences(count=2, enhance=False)) == ["count: 2", "enhance: off"]
