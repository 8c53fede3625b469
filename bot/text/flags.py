"""Text commands as users type them (console, Slack, the CLI): ``<prompt> --ar 16:9 --seed 7``."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.errors import InvalidRequest
from bot.domain.models import COUNT_DEFAULT

MAX_SEED = 2**32 - 1
MAX_COUNT = 4

FLAG_HELP = {
    "--ar": "aspect ratio, like 16:9 (also --aspect)",
    "--size": "exact size, like 1024x768",
    "--seed": f"a whole number from 0 to {MAX_SEED}, for repeatable images",
    "--model": "model variant: pro, max, flex or klein (also -m)",
    "--n": f"how many images, 1 to {MAX_COUNT} (also --count)",
    "--image": "an input image to edit (a URL; on the console, a file path)",
    "--no-cache": "always generate anew, even for a seed seen before",
    "--private": "show the image to you only (Slack: in your DM with the bot)",
}
_ALIASES = {
    "--aspect": "--ar",
    "--aspect-ratio": "--ar",
    "-m": "--model",
    "--count": "--n",
    "--num": "--n",
}
_BOOLEAN = {"--no-cache", "--private"}


@dataclass(frozen=True)
class ImagineArgs:
    prompt: str
    aspect_ratio: str | None = None
    size: str | None = None
    seed: int | None = None
    model: str | None = None
    count: int = 1
    images: tuple[str, ...] = ()
    use_cache: bool = True
    help: bool = False
    private: bool = False


def flags_help() -> str:
    return "\n".join(f"  {flag:<10} {text}" for flag, text in FLAG_HELP.items())


def parse_imagine(text: str) -> ImagineArgs:
    """Split a command's text into the prompt and its flags; raises InvalidRequest with the fix."""
    words = text.replace("\u2014", "--").replace("\u2013", "--").split()
    if not words or words in (["help"], ["--help"], ["-h"]):
        return ImagineArgs(prompt="", help=True)
    prompt: list[str] = []
    values: dict[str, str] = {}
    images: list[str] = []
    use_cache = True
    private = False
    i = 0
    while i < len(words):
        word = words[i]
        if not word.startswith("-") or len(word) == 1 or word[1:].lstrip("-").isdigit():
            prompt.append(word)
            i += 1
            continue
        flag, _, inline = word.partition("=")
        flag = _ALIASES.get(flag.lower(), flag.lower())
        if flag not in FLAG_HELP:
            raise InvalidRequest(
                f"Unknown option {word!r}. Options:\n{flags_help()}", code="unknown_flag"
            )
        if flag in _BOOLEAN:
            if flag == "--private":
                private = True
            else:
                use_cache = False
            i += 1
            continue
        if inline:
            value = inline
            i += 1
        elif i + 1 < len(words):
            value = words[i + 1]
            i += 2
        else:
            raise InvalidRequest(
                f"Option {flag} needs a value: {FLAG_HELP[flag]}.", code="flag_value"
            )
        if flag == "--image":
            images.append(value)
        elif flag in values:
            raise InvalidRequest(f"Option {flag} is given twice.", code="flag_twice")
        else:
            values[flag] = value
    return ImagineArgs(
        prompt=" ".join(prompt),
        aspect_ratio=values.get("--ar"),
        size=values.get("--size"),
        seed=_parse_seed(values["--seed"]) if "--seed" in values else None,
        model=values.get("--model"),
        # Without --n the community's default count applies (COUNT_DEFAULT).
        count=_parse_count(values["--n"]) if "--n" in values else COUNT_DEFAULT,
        images=tuple(images),
        use_cache=use_cache,
        private=private,
    )


def option_args(
    prompt: str,
    *,
    aspect_ratio: str | None = None,
    size: str | None = None,
    seed: int | None = None,
    model: str | None = None,
    count: int | None = None,
    images: tuple[str, ...] = (),
) -> ImagineArgs:
    """The same arguments from a platform's typed options (Discord), checked like typed flags;
    no ``count`` leaves it to the community's default."""
    if seed is not None:
        _parse_seed(str(seed))
    if count is not None:
        _parse_count(str(count))
    else:
        count = COUNT_DEFAULT
    return ImagineArgs(
        prompt=prompt,
        aspect_ratio=aspect_ratio,
        size=size,
        seed=seed,
        model=model,
        count=count,
        images=images,
    )


def _parse_seed(text: str) -> int:
    if not text.isdigit() or int(text) > MAX_SEED:
        raise InvalidRequest(
            f"--seed must be {FLAG_HELP['--seed']}; got {text!r}.", code="flag_value"
        )
    return int(text)


def _parse_count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_COUNT:
        raise InvalidRequest(f"--n must be 1 to {MAX_COUNT}; got {text!r}.", code="flag_value")
    return int(text)
