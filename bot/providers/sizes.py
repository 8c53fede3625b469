"""A job's size made valid for each provider, keeping the aspect the user asked for."""

from __future__ import annotations

from typing import Any

from bot.domain.catalog import ProviderModel, SizeRules, Variant, fit_size

# fal's named sizes (its ``image_size`` enum) and the pixels each stands for.
FAL_PRESETS: dict[str, tuple[int, int]] = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}


def rules_for(variant: Variant, model: ProviderModel) -> SizeRules:
    """The variant's size rules, narrowed by what this provider's entry says (``size``)."""
    base = variant.size
    extra: Any = model.extra.get("size") or {}
    return SizeRules(
        multiple=int(extra.get("multiple", base.multiple)),
        min_side=int(extra.get("min_side", base.min_side)),
        max_side=int(extra.get("max_side", base.max_side)),
        max_megapixels=float(extra.get("max_megapixels", base.max_megapixels)),
    )


def provider_size(
    variant: Variant, model: ProviderModel, width: int, height: int
) -> tuple[int, int]:
    """``width x height`` made valid for the provider: multiples, sides and area, same aspect."""
    rules = rules_for(variant, model)
    ok = (
        width % rules.multiple == 0
        and height % rules.multiple == 0
        and rules.min_side <= min(width, height)
        and max(width, height) <= rules.max_side
        and width * height <= rules.max_megapixels * 1_000_000
    )
    return (width, height) if ok else fit_size(width, height, rules)


def fal_image_size(width: int, height: int) -> str | dict[str, int]:
    """The fal preset naming exactly this size, else a custom ``{width, height}``."""
    for name, size in FAL_PRESETS.items():
        if size == (width, height):
            return name
    return {"width": width, "height": height}


def catalog_cost(
    model: ProviderModel, width: int, height: int, count: int, input_images: int = 0
) -> float:
    """The catalog's price of ``count`` images (``ProviderModel.price`` holds the rules)."""
    return model.price(width, height, count, input_images)
