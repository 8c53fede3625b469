"""The model catalog: each variant's per-provider model ids, size rules, safety range and price."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from bot.domain.errors import InvalidRequest

ASPECT_RE = re.compile(r"^\s*(\d{1,3})\s*[:x/]\s*(\d{1,3})\s*$")
SIZE_RE = re.compile(r"^\s*(\d{2,5})\s*[xX×]\s*(\d{2,5})\s*$")
# The area a request gets when it names only an aspect ratio: about one megapixel.
DEFAULT_MEGAPIXELS = 1.05
MAX_ASPECT = 4.0


# A megapixel as the providers bill it: 1024 x 1024 pixels (BFL's ``output_mp`` for 1024x768 is
# 0.75: https://docs.bfl.ai/api-reference/models/generate-or-edit-an-image-with-flux2-%5Bflex%5D;
# fal: "1 megapixel = 1024x1024", https://fal.ai/models/fal-ai/flux-2-flex/llms.txt).
PIXELS_PER_MEGAPIXEL = 1024 * 1024


def billed_megapixels(width: int, height: int) -> float:
    return width * height / PIXELS_PER_MEGAPIXEL


@dataclass(frozen=True)
class ProviderModel:
    model_id: str
    price_usd: float
    edit_model_id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def price(self, width: int, height: int, count: int = 1, input_images: int = 0) -> float:
        """US dollars for ``count`` images of ``width x height`` from ``input_images`` inputs.

        Two price rules, after the providers' pages: ``price_per_mp`` is per megapixel rounded up
        to whole megapixels, output and each input alike (fal's FLUX.2 [flex] and [klein]);
        otherwise ``price_usd`` is the first output megapixel and ``price_per_extra_mp`` each
        further one, with ``price_per_input_mp`` per input megapixel (BFL's formula
        ``firstMP + (outputMP - 1) * mpPrice + inputMP * mpPrice``). Input images count as one
        megapixel each: their size is not known before they are fetched.
        """
        output_mp = billed_megapixels(width, height)
        per_mp = self.extra.get("price_per_mp")
        if per_mp:
            per_image = float(per_mp) * max(1, math.ceil(output_mp - 1e-9))
            per_image += float(self.extra.get("price_per_input_mp") or 0.0) * input_images
        else:
            per_image = self.price_usd
            per_image += float(self.extra.get("price_per_extra_mp") or 0.0) * max(
                0.0, output_mp - 1.0
            )
            per_image += float(self.extra.get("price_per_input_mp") or 0.0) * input_images
        return round(per_image * max(1, count), 6)

    def describe_price(self) -> str:
        """The price rule in a few words, for ``imagine-bot models``."""
        per_mp = self.extra.get("price_per_mp")
        text = (
            f"${float(per_mp):.3f}/MP (rounded up)"
            if per_mp
            else f"${self.price_usd:.3f}/image"
            + (
                f" +${float(self.extra['price_per_extra_mp']):.3f}/extra MP"
                if self.extra.get("price_per_extra_mp")
                else ""
            )
        )
        if self.extra.get("price_per_input_mp"):
            text += f" +${float(self.extra['price_per_input_mp']):.3f}/input MP"
        return text


@dataclass(frozen=True)
class ParamRange:
    """A generation parameter every provider of a variant takes: its default and allowed range."""

    default: float
    min: float
    max: float

    def check(self, value: float | None, what: str, label: str) -> float:
        """``value`` (the default when None) inside the range; else InvalidRequest naming it."""
        if value is None:
            return self.default
        if not self.min <= value <= self.max:
            raise InvalidRequest(f"{what} for {label} must be from {self.min:g} to {self.max:g}.")
        return value


@dataclass(frozen=True)
class SizeRules:
    multiple: int
    min_side: int
    max_side: int
    max_megapixels: float


@dataclass(frozen=True)
class Variant:
    name: str
    label: str
    aliases: tuple[str, ...]
    typical_seconds: float
    size: SizeRules
    safety_min: int
    safety_max: int
    input_images: int
    max_count: int
    providers: Mapping[str, ProviderModel]
    # Sent explicitly, the same on every provider, where the variant takes them (FLUX.2 [flex]).
    steps: ParamRange | None = None
    guidance: ParamRange | None = None

    def model_for(self, provider: str) -> ProviderModel | None:
        return self.providers.get(provider)

    def offers_enhance(self, providers: tuple[str, ...] | list[str]) -> bool:
        """Whether any of ``providers`` can upsample this variant's prompts."""
        return any(
            (model := self.providers.get(name)) is not None and model.extra.get("enhance_field")
            for name in providers
        )


@dataclass(frozen=True)
class Catalog:
    variants: Mapping[str, Variant]
    default_variant: str

    def resolve(self, name: str | None) -> Variant:
        """The variant for a user's name or alias; raises InvalidRequest listing the choices."""
        if not name:
            return self.variants[self.default_variant]
        wanted = name.strip().lower()
        for variant in self.variants.values():
            if wanted == variant.name or wanted in variant.aliases:
                return variant
        choices = ", ".join(self.variants)
        raise InvalidRequest(f"Unknown model {name!r}. Choose one of: {choices}.")


def _load(raw: Mapping[str, Any]) -> Catalog:
    variants: dict[str, Variant] = {}
    for name, spec in raw["variants"].items():
        size = spec["size"]
        variants[name] = Variant(
            name=name,
            label=spec["label"],
            aliases=tuple(spec.get("aliases", ())),
            typical_seconds=float(spec["typical_seconds"]),
            size=SizeRules(
                multiple=int(size["multiple"]),
                min_side=int(size["min_side"]),
                max_side=int(size["max_side"]),
                max_megapixels=float(size["max_megapixels"]),
            ),
            safety_min=int(spec["safety"]["min"]),
            safety_max=int(spec["safety"]["max"]),
            input_images=int(spec["input_images"]),
            max_count=int(spec["max_count"]),
            steps=_range(spec.get("steps")),
            guidance=_range(spec.get("guidance")),
            providers={
                provider: ProviderModel(
                    model_id=entry["model_id"],
                    price_usd=float(entry["price_usd"]),
                    edit_model_id=entry.get("edit_model_id"),
                    extra={
                        k: v
                        for k, v in entry.items()
                        if k not in {"model_id", "price_usd", "edit_model_id"}
                    },
                )
                for provider, entry in spec["providers"].items()
            },
        )
    return Catalog(variants=variants, default_variant=raw["default_variant"])


def _range(raw: Mapping[str, Any] | None) -> ParamRange | None:
    if raw is None:
        return None
    return ParamRange(default=float(raw["default"]), min=float(raw["min"]), max=float(raw["max"]))


@cache
def load_catalog() -> Catalog:
    text = resources.files("bot.domain").joinpath("catalog.json").read_text(encoding="utf-8")
    return _load(json.loads(text))


def parse_aspect(text: str) -> tuple[int, int]:
    match = ASPECT_RE.match(text)
    if not match:
        raise InvalidRequest(f"Aspect ratio {text!r} is not like 16:9.")
    a, b = int(match.group(1)), int(match.group(2))
    if a == 0 or b == 0 or max(a / b, b / a) > MAX_ASPECT:
        raise InvalidRequest(f"Aspect ratio {text!r} must be between 1:4 and 4:1.")
    return a, b


def parse_size(text: str) -> tuple[int, int]:
    match = SIZE_RE.match(text)
    if not match:
        raise InvalidRequest(f"Size {text!r} is not like 1024x768.")
    return int(match.group(1)), int(match.group(2))


def size_for_aspect(
    a: int, b: int, rules: SizeRules, megapixels: float = DEFAULT_MEGAPIXELS
) -> tuple[int, int]:
    """The largest size of exactly a:b, in multiples of the rules, at most ``megapixels``.

    Exact ratios are preferred; when no exact size fits the side limits, the nearest one is used.
    """
    g = math.gcd(a, b)
    a, b = a // g, b // g
    m = rules.multiple
    budget = min(megapixels, rules.max_megapixels) * 1_000_000
    k = math.floor(math.sqrt(budget / (a * b * m * m)))
    while k >= 1:
        w, h = a * m * k, b * m * k
        if rules.min_side <= min(w, h) and max(w, h) <= rules.max_side:
            return w, h
        k -= 1
    return fit_size(round(math.sqrt(budget * a / b)), round(math.sqrt(budget * b / a)), rules)


def fit_size(width: int, height: int, rules: SizeRules) -> tuple[int, int]:
    """Scale a wanted size into the rules (sides, area, multiple), keeping its aspect as near as may be."""
    scale = 1.0
    if width * height > rules.max_megapixels * 1_000_000:
        scale = math.sqrt(rules.max_megapixels * 1_000_000 / (width * height))
    if max(width, height) * scale > rules.max_side:
        scale = rules.max_side / max(width, height)
    w, h = width * scale, height * scale
    if min(w, h) < rules.min_side:
        up = rules.min_side / min(w, h)
        w, h = w * up, h * up
    m = rules.multiple
    w_i = max(rules.min_side, min(rules.max_side, round(w / m) * m))
    h_i = max(rules.min_side, min(rules.max_side, round(h / m) * m))
    return w_i, h_i


def resolve_size(
    variant: Variant,
    *,
    aspect_ratio: str | None = None,
    width: int | None = None,
    height: int | None = None,
) -> tuple[int, int]:
    """The size a job runs at, from what the user asked (ratio, explicit size, or neither)."""
    if width is not None and height is not None:
        if width <= 0 or height <= 0 or max(width / height, height / width) > MAX_ASPECT:
            raise InvalidRequest(f"Size {width}x{height} is out of range.")
        return fit_size(width, height, variant.size)
    if aspect_ratio:
        a, b = parse_aspect(aspect_ratio)
        return size_for_aspect(a, b, variant.size)
    return size_for_aspect(1, 1, variant.size)
