from __future__ import annotations

import pytest

from bot.domain.errors import InvalidRequest
from bot.text.flags import option_args, parse_imagine


def test_prompt_and_flags_are_split() -> None:
    args = parse_imagine("a red fox at dawn --ar 16:9 --seed 7 --model max --n 2 --no-cache")
    assert args.prompt == "a red fox at dawn"
    assert (args.aspect_ratio, args.seed, args.model, args.count) == ("16:9", 7, "max", 2)
    assert args.use_cache is False


def test_flags_may_come_first_and_use_aliases_and_equals() -> None:
    args = parse_imagine("--aspect=3:2 -m klein a cat —seed 5")
    assert (args.prompt, args.aspect_ratio, args.model, args.seed) == ("a cat", "3:2", "klein", 5)


def test_negative_numbers_and_dashes_stay_in_the_prompt() -> None:
    assert parse_imagine("a cat at -5 degrees - cold").prompt == "a cat at -5 degrees - cold"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a cat --bogus 1", "Unknown option '--bogus'"),
        ("a cat --seed", "--seed needs a value"),
        ("a cat --seed -1", "--seed must be"),
        ("a cat --seed 99999999999", "--seed must be"),
        ("a cat --n 9", "--n must be 1 to 4"),
        ("a cat --ar 1:1 --ar 2:1", "given twice"),
        ("a cat --format gif", "--format is one of jpeg, png, webp; got 'gif'."),
        ("a cat --format", "--format needs a value"),
        ("a cat --steps many", "--steps is a whole number"),
        ("a cat --guidance high", "--guidance is a number like 4.5"),
        ("a cat --guidance nan", "--guidance is a number like 4.5"),
    ],
)
def test_bad_flags_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_imagine(text)
    assert message in caught.value.user_message


def test_help_and_empty() -> None:
    assert parse_imagine("").help
    assert parse_imagine("help").help


def test_typed_options_are_checked_like_typed_flags() -> None:
    args = option_args("a cat", aspect_ratio="16:9", seed=7, model="max", images=("u",))
    assert args == parse_imagine("a cat --ar 16:9 --seed 7 --model max --image u")
    with pytest.raises(InvalidRequest, match="--seed must be"):
        option_args("a cat", seed=2**32)
    with pytest.raises(InvalidRequest, match="--n must be 1 to 4"):
        option_args("a cat", count=5)


def test_format_enhance_steps_and_guidance() -> None:
    args = parse_imagine("a cat --format WEBP --enhance --steps 28 --guidance 3.5")
    assert args.prompt == "a cat"
    assert (args.output_format, args.enhance, args.steps, args.guidance) == ("webp", True, 28, 3.5)
    assert parse_imagine("a cat --fmt=jpg").output_format == "jpeg"
    plain = parse_imagine("a cat")
    # None: the community's default (then the bot's) decides at acceptance.
    assert (plain.output_format, plain.enhance, plain.steps, plain.guidance) == (None,) * 4
    assert option_args(
        "a cat", output_format="webp", enhance=True, steps=28, guidance=3.5
    ) == parse_imagine("a cat --format webp --enhance --steps 28 --guidance 3.5")
    with pytest.raises(InvalidRequest, match="--format is one of jpeg, png, webp"):
        option_args("a cat", output_format="bmp")


def test_private_is_a_flag_without_value() -> None:
    args = parse_imagine("a fox --private --seed 3")
    assert args.private and args.seed == 3 and args.prompt == "a fox"
    assert not parse_imagine("a fox").private
