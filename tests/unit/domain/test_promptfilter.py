"""RELIABILITY 30: blocked terms hidden by Unicode tricks are caught; ordinary words are not."""

from __future__ import annotations

import random

import pytest

from bot.domain.promptfilter import (
    PromptFilter,
    _contains,
    _term_forms,
    matches,
    normalize,
    word_sequences,
)

TERMS = ("nude", "gore", "rape", "blood bath", "ass")

EVASIONS = [
    "a nude figure",
    "NUDE portrait",
    "a n\u200bude figure",  # zero-width space
    "a nu\u00adde figure",  # soft hyphen
    "a nu\u200dd\u200ce figure",  # zero-width joiner and non-joiner
    "a nu\u2060de figure",  # word joiner
    "a nude\ufe0f figure",  # variation selector
    "a \uff4e\uff55\uff44\uff45 figure",  # full-width
    "a \U0001d427\U0001d42e\U0001d41d\U0001d41e figure",  # mathematical bold
    "a \U0001d52b\U0001d532\U0001d521\U0001d522 figure",  # mathematical fraktur
    "a nud\u0435 figure",  # Cyrillic e
    "a g\u043er\u0435 scene",  # Cyrillic o and e
    "a G\u039fRE scene",  # Greek capital omicron
    "a n\u0301u\u0308d\u0327e figure",  # combining marks
    "a n\u0336u\u0336d\u0336e\u0336 figure",  # strike-through overlay marks
    "a n u d e figure",  # spaced letters
    "n  u  d  e",
    "a b l o o d b a t h",
    "a n.u.d.e figure",  # dotted letters
    "a n-u-d-e figure",
    "a nud3 figure",  # leetspeak
    "a g0r3 scene",
    "r@pe",
    "a nudes collection",  # plural
    "a bloodbath",  # a two-word term written as one
    "blood  bath at dawn",
    "a b\u200blood b\u00adath",
    "\u24b7lood bath",  # circled letter
]

ORDINARY = [
    "a grape vineyard at dawn",  # contains "rape"
    "a drape over a chair",
    "scrape the paint",
    "the gorge at sunset",  # contains "gor"
    "Gorey style illustration",
    "a class of students",  # contains "ass"
    "a passionate embrace",
    "an assassin's creed cosplay",
    "a bass guitar",
    "a blood orange on a table",  # one word of a two-word term
    "a bath tub with bubbles",
    "a nuder colour palette",
    "Scunthorpe town hall",
    "a café in Zürich",
]


@pytest.mark.parametrize("prompt", EVASIONS)
def test_evasions_are_caught(prompt: str) -> None:
    assert matches(prompt, TERMS), normalize(prompt)


@pytest.mark.parametrize("prompt", ORDINARY)
def test_ordinary_prompts_pass(prompt: str) -> None:
    assert not matches(prompt, TERMS), normalize(prompt)


def test_terms_are_normalized_too() -> None:
    # An admin who types the term in full-width or with an accent still blocks the plain word.
    assert matches("a nude figure", ["\uff4e\uff55\uff44\uff45"])
    assert matches("a nude figure", ["NÜDE"])


def test_the_built_in_list_and_the_bot_wide_terms_always_apply() -> None:
    flt = PromptFilter(["dragon"])
    assert flt.blocks("a l0l1con drawing")
    assert flt.blocks("a DRAGON")
    assert flt.blocks("a fox", ["fox"])
    assert not flt.blocks("a fox")
    assert not flt.blocks("a lollipop")


def test_one_word_terms_found_by_look_up_agree_with_the_word_walk() -> None:
    """``matches`` looks one-word terms up in a set; the walk through the words (``_contains``)
    is the definition it must agree with, plurals included."""
    rng = random.Random(7)
    vocabulary = ["gore", "gores", "goreses", "go", "gos", "cat", "cats", "catz", "kiss", "kis"]
    vocabulary += ["bus", "buses", "bu", "ass", "as", "a", "es", "s", "z", "gorez"]
    for _ in range(400):
        prompt = " ".join(rng.choice(vocabulary) for _ in range(rng.randint(1, 6)))
        term = rng.choice(vocabulary)
        sequences, runs = word_sequences(prompt)
        walked = any(_contains(words, form) for form in _term_forms(term) for words in sequences)
        joined = "".join(_term_forms(term)[0]) if _term_forms(term) else ""
        in_runs = len(joined) > 1 and any(joined in run for run in runs)
        assert matches(prompt, [term]) == (walked or in_runs), (prompt, term)


def test_plain_ascii_takes_a_short_path_to_the_same_form() -> None:
    from bot.domain.promptfilter import _normalize_unicode

    samples = [
        "".join(chr(c) for c in range(128)),
        "A Majestic CASTLE at sunset, 8k | by GREG 1337 $@!+",
        "n.u.d.e  L0L1 sh0ta\tC$AM",
    ]
    for text in samples:
        assert normalize(text) == _normalize_unicode(text)


@pytest.mark.parametrize(
    "prompt",
    [
        "room 1011, third floor",
        "the year 1011.",
        "a poster reading (1011)",
        "ratio 16:9 in 2026",
        "model T-1011",
        "ref=q-1011",
    ],
)
def test_a_number_standing_alone_is_not_a_word_in_disguise(prompt: str) -> None:
    # 1011 folds to the same letters as a blocked term; as a number it is left as it is.
    assert not PromptFilter().blocks(prompt)


@pytest.mark.parametrize("prompt", ["l0l1 art", "a 1o1i figure", "sh0ta", "1 0 1 1", "10li"])
def test_digits_mixed_with_letters_or_spaced_out_are_still_folded(prompt: str) -> None:
    assert PromptFilter().blocks(prompt)
