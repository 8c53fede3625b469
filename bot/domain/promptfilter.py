"""The word-list filter: blocked terms matched after Unicode normalization, on word boundaries.

Both the prompt and every term go through the same ``normalize``:
1. default-ignorable and format characters removed (zero-width space and joiners, soft hyphen,
   bidi controls, variation selectors, tag characters ...);
2. lookalike letters from other scripts mapped to the Latin letter they imitate (a confusable
   skeleton in the spirit of UTS #39, from the table below: Cyrillic, Greek, and a few others),
   then NFKC (full-width and mathematical letters become plain ones) and the table again;
3. casefold, then combining marks removed (``é`` -> ``e``, "zalgo" text -> plain);
4. leetspeak folded (``0``->o, ``1``/``l``/``!``/``|``->i, ``3``->e, ``4``/``@``->a, ``5``/``$``->s,
   ``7``/``+``->t, ``8``->b), on both sides, so ``1`` and ``l`` cannot be told apart on purpose.

Then the prompt is split into words two ways (on every non-letter; on spaces only, with the
punctuation inside a word dropped: ``n.u.d.e``), and
a term matches when its words appear as whole, consecutive words (a plural ``s``/``es`` allowed) in
either, or anywhere inside a run of single letters (``a n u d e``: spaced-out letters have no word
boundaries to respect). Ordinary words that merely contain a term ("grape", "scunthorpe") pass.

The user is never told which term matched.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache

# Terms every community blocks, whatever it adds (IMAGINE_BLOCKED_TERMS adds more bot-wide).
# Kept short on purpose: the providers' own moderation is the main line; this list catches the
# requests no community wants to see at all.
DEFAULT_TERMS: tuple[str, ...] = (
    "child porn",
    "cp porn",
    "csam",
    "loli",
    "lolicon",
    "shota",
    "shotacon",
    "underage nude",
    "underage sex",
    "child nude",
    "kid nude",
    "preteen nude",
    "jailbait",
    "bestiality",
    "zoophilia",
    "necrophilia",
    "snuff",
)

# Default-ignorable code points (Unicode DerivedCoreProperties) beyond the Cf category.
_IGNORABLE_RANGES: tuple[tuple[int, int], ...] = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)

# Lookalikes to the Latin letter they imitate (from UTS #39 confusables, letters only).
_CONFUSABLES: dict[str, str] = {
    # Cyrillic, upper and lower case
    "А": "A", "В": "B", "С": "C", "Е": "E", "Н": "H", "І": "I", "Ј": "J", "К": "K", "М": "M",
    "О": "O", "Р": "P", "Ѕ": "S", "Т": "T", "Х": "X", "У": "Y", "Ү": "Y", "Ԁ": "D", "Ԛ": "Q",
    "Ԝ": "W", "Ӏ": "I", "З": "3", "Ь": "b", "Ꙅ": "S",
    "а": "a", "с": "c", "е": "e", "һ": "h", "і": "i", "ј": "j", "о": "o", "р": "p", "ѕ": "s",
    "х": "x", "у": "y", "ү": "y", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ӏ": "l", "ɡ": "g", "ь": "b",
    "ё": "e", "ї": "i", "к": "k", "п": "n", "г": "r", "т": "t", "м": "m", "в": "b", "н": "h",
    "ѵ": "v", "ԍ": "g", "ӧ": "o", "ӓ": "a",
    # Greek, upper and lower case
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
    "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "Ϲ": "C", "Ϳ": "J",
    "α": "a", "β": "b", "γ": "y", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o",
    "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ϲ": "c", "ϳ": "j", "ω": "w", "μ": "u", "ς": "s",
    "ά": "a", "έ": "e", "ή": "n", "ί": "i", "ό": "o", "ύ": "u", "ώ": "w",
    # Armenian, Cherokee and Latin lookalikes
    "օ": "o", "ս": "u", "ց": "g", "հ": "h", "ո": "n", "ք": "p", "Ꭺ": "A", "Ᏼ": "B", "Ꮯ": "C",
    "Ꭼ": "E", "Ꮋ": "H", "Ꮶ": "K", "Ꮇ": "M", "Ꮲ": "P", "Ꮪ": "S", "Ꭲ": "T", "Ꮃ": "W",
    "ı": "i", "ȷ": "j", "ɑ": "a", "ɩ": "i", "ʀ": "r", "ʏ": "y", "ɴ": "n", "ᴀ": "a", "ᴄ": "c",
    "ᴅ": "d", "ᴇ": "e", "ᴊ": "j", "ᴋ": "k", "ᴍ": "m", "ᴏ": "o", "ᴘ": "p", "ᴛ": "t", "ᴜ": "u",
    "ᴠ": "v", "ᴡ": "w", "ᴢ": "z", "ʙ": "b", "ɢ": "g", "ʜ": "h", "ʟ": "l", "ꜱ": "s", "ſ": "s",
}  # fmt: skip
_CONFUSABLE_TABLE = str.maketrans(_CONFUSABLES)
_LEET = str.maketrans(
    {"0": "o", "1": "i", "l": "i", "!": "i", "|": "i", "3": "e", "4": "a", "@": "a", "5": "s",
     "$": "s", "7": "t", "+": "t", "8": "b", "€": "e", "¡": "i"}
)  # fmt: skip
_NON_WORD = re.compile(r"[^0-9a-z]+")
_SPACES = re.compile(r"\s+")


def _ignorable(ch: str) -> bool:
    if unicodedata.category(ch) == "Cf":
        return True
    code = ord(ch)
    return any(low <= code <= high for low, high in _IGNORABLE_RANGES)


def normalize(text: str) -> str:
    """The comparable form of a prompt or a term (see the module docstring); spaces kept."""
    if text.isascii():
        # Every step but the case and the leetspeak leaves plain ASCII as it is.
        return _fold_leet(text.lower())
    return _normalize_unicode(text)


def _normalize_unicode(text: str) -> str:
    text = "".join(ch for ch in text if not _ignorable(ch))
    text = text.translate(_CONFUSABLE_TABLE)
    text = unicodedata.normalize("NFKC", text).translate(_CONFUSABLE_TABLE)
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    # Letters that still carry no ASCII form after NFKD (ø, ł, đ ...) get their base letter.
    text = text.translate(_STROKES).translate(_CONFUSABLE_TABLE).casefold()
    return _fold_leet(text)


# Two digits or more with no letter, digit or leetspeak symbol either side: a number. Captured,
# so that splitting on it keeps the numbers at the odd places.
_NUMBER = re.compile(r"((?<![\w!|@$+€¡])[0-9]{2,}(?![\w!|@$+€¡]))")


def _fold_leet(text: str) -> str:
    """Leetspeak folded, except in numbers of two digits or more standing alone (``1011``,
    ``2026``, ``room-1011``): a number is not a word in disguise. Digits mixed with letters,
    and single digits (spaced-out letters), are still folded."""
    parts = _NUMBER.split(text)
    return "".join(part if i % 2 else part.translate(_LEET) for i, part in enumerate(parts))


_STROKES = str.maketrans({"ø": "o", "ł": "l", "đ": "d", "ħ": "h", "ŧ": "t", "ƀ": "b", "ɨ": "i"})


def _words(normalized: str) -> list[str]:
    return [w for w in _NON_WORD.split(normalized) if w]


def word_sequences(prompt: str) -> tuple[list[list[str]], list[str]]:
    """The normalized prompt split into words the ways the module docstring describes, and the
    runs of single letters (``a n u d e``) joined, in which a term may start anywhere."""
    text = normalize(prompt)
    plain = _words(text)
    squeezed = [w for w in (_NON_WORD.sub("", chunk) for chunk in _SPACES.split(text)) if w]
    runs: list[str] = []
    run: list[str] = []
    for word in [*plain, ""]:
        if len(word) == 1:
            run.append(word)
            continue
        if len(run) > 1:
            runs.append("".join(run))
        run = []
    return [plain, squeezed], runs


@lru_cache(maxsize=4096)
def _term_forms(term: str) -> tuple[tuple[str, ...], ...]:
    words = tuple(_words(normalize(term)))
    if not words:
        return ()
    forms = {words}
    if len(words) > 1:
        forms.add(("".join(words),))
    return tuple(forms)


def _word_matches(word: str, wanted: str) -> bool:
    return word == wanted or (
        len(wanted) > 2 and word in (wanted + "s", wanted + "es", wanted + "z")
    )


def _contains(words: Sequence[str], term: Sequence[str]) -> bool:
    n = len(term)
    for start in range(len(words) - n + 1):
        if all(_word_matches(words[start + i], term[i]) for i in range(n)):
            return True
    return False


def _single_words(sequences: list[list[str]]) -> tuple[set[str], set[str]]:
    """Every word of the prompt, and every stem its plural endings leave: a one-word term then
    needs one set look-up instead of a walk through the words (``_word_matches`` in short)."""
    words = {w for sequence in sequences for w in sequence}
    stems = {w[: -len(end)] for w in words for end in ("s", "es", "z") if w.endswith(end)}
    return words, stems


def matches(prompt: str, terms: Iterable[str]) -> bool:
    """True when any term occurs in the prompt (after normalization, on word boundaries)."""
    sequences, runs = word_sequences(prompt)
    words, stems = _single_words(sequences)

    def present(word: str) -> bool:
        return word in words or (len(word) > 2 and word in stems)

    for term in terms:
        for form in _term_forms(term):
            if len(form) == 1:
                if present(form[0]):
                    return True
            # The words in order only when each is there at all (most prompts stop here).
            elif all(present(w) for w in form) and any(
                _contains(sequence, form) for sequence in sequences
            ):
                return True
            joined = "".join(form)
            if len(joined) > 1 and any(joined in run for run in runs):
                return True
    return False


class PromptFilter:
    """The built-in list, the bot-wide extra terms, and each community's own terms."""

    def __init__(self, extra_terms: Iterable[str] = (), *, defaults: Iterable[str] = DEFAULT_TERMS):
        self._terms = tuple(dict.fromkeys((*defaults, *extra_terms)))

    @property
    def terms(self) -> tuple[str, ...]:
        return self._terms

    def blocks(self, prompt: str, community_terms: Iterable[str] = ()) -> bool:
        return matches(prompt, (*self._terms, *community_terms))
