"""The text platforms' /prefer grammar."""

from __future__ import annotations

import pytest

from bot.domain.errors import InvalidRequest
from bot.text.preferences import ResetPreferences, SetPreference, ShowPreferences, parse_prefer


def test_show_reset_and_set() -> None:
    assert parse_prefer("") == ShowPreferences() == parse_prefer(" show ")
    assert parse_prefer("reset") == ResetPreferences()
    assert parse_prefer("suffix in the style of a woodcut") == SetPreference(
        "suffix", "in the style of a woodcut"
    )
    assert parse_prefer("Model max") == SetPreference("model", "max")


@pytest.mark.parametrize(
    ("text", "says"), [("colour red", "Unknown preference"), ("model", "needs a value")]
)
def test_mistakes_say_what_is_allowed(text: str, says: str) -> None:
    with pytest.raises(InvalidRequest, match=says):
        parse_prefer(text)
