from __future__ import annotations

import pytest

from bot.domain.catalog import load_catalog, resolve_size
from bot.domain.errors import InvalidRequest

CATALOG = load_catalog()


@pytest.mark.parametrize("ratio", ["1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "21:9"])
@pytest.mark.parametrize("variant", list(CATALOG.variants))
def test_aspect_ratios_are_exact_multiples_of_16_near_one_megapixel(
    ratio: str, variant: str
) -> None:
    a, b = (int(x) for x in ratio.split(":"))
    width, height = resolve_size(CATALOG.variants[variant], aspect_ratio=ratio)
    assert width % 16 == 0 and height % 16 == 0
    assert width * b == height * a
    assert 0.5e6 <= width * height <= 1.1e6


def test_explicit_size_is_fitted_into_the_rules() -> None:
    pro = CATALOG.resolve("pro")
    assert resolve_size(pro, width=1920, height=1080) == (1920, 1088)
    width, height = resolve_size(pro, width=8000, height=8000)
    assert width <= pro.size.max_side and width * height <= pro.size.max_megapixels * 1e6


def test_aliases_and_unknown_names() -> None:
    assert CATALOG.resolve("flux-2-max").name == "max"
    assert CATALOG.resolve(None).name == CATALOG.default_variant
    with pytest.raises(InvalidRequest, match="Choose one of"):
        CATALOG.resolve("sdxl")


@pytest.mark.parametrize("ratio", ["16-9", "0:1", "9:1", "abc"])
def test_bad_aspect_ratios_are_refused(ratio: str) -> None:
    with pytest.raises(InvalidRequest):
        resolve_size(CATALOG.resolve("pro"), aspect_ratio=ratio)


def price(variant: str, provider: str, width: int, height: int, inputs: int = 0) -> float:
    model = CATALOG.variants[variant].model_for(provider)
    assert model is not None
    return model.price(width, height, 1, inputs)


@pytest.mark.parametrize(
    ("variant", "first", "extra", "one_mp_edit"),
    # BFL's FLUX.2 table: first MP, each further MP, and 1 MP text-to-image plus one 1 MP input
    # (https://github.com/black-forest-labs/skills skills/bfl-api/SKILL.md).
    [("pro", 0.03, 0.015, 0.045), ("max", 0.07, 0.03, 0.10), ("flex", 0.05, 0.05, 0.10)],
)
def test_bfl_prices_a_first_megapixel_of_1024_squared_and_then_per_megapixel(
    variant: str, first: float, extra: float, one_mp_edit: float
) -> None:
    assert price(variant, "bfl", 1024, 1024) == pytest.approx(first)  # 1024² is the base price
    assert price(variant, "bfl", 1024, 768) == pytest.approx(first)
    assert price(variant, "bfl", 2048, 2048) == pytest.approx(first + 3 * extra)
    assert price(variant, "bfl", 1024, 1024, inputs=1) == pytest.approx(one_mp_edit)


def test_klein_prices_per_provider_page() -> None:
    assert price("klein", "bfl", 1024, 1024) == pytest.approx(0.014)
    assert price("klein", "bfl", 1024, 1024, inputs=1) == pytest.approx(0.015)
    assert price("klein", "fal", 1024, 1024) == pytest.approx(0.005)
    assert price("klein", "fal", 1536, 1024) == pytest.approx(0.010)  # 1.5 MP: rounded up to 2


def test_fal_flex_is_five_cents_per_megapixel_rounded_up_on_both_sides() -> None:
    # fal's own examples (https://fal.ai/models/fal-ai/flux-2-flex/llms.txt).
    assert price("flex", "fal", 1024, 1024) == pytest.approx(0.05)
    assert price("flex", "fal", 1920, 1080) == pytest.approx(0.10)
    assert price("flex", "fal", 512, 512) == pytest.approx(0.05)
    assert price("flex", "fal", 1024, 1024, inputs=2) == pytest.approx(0.15)


def test_prices_scale_with_the_number_of_images() -> None:
    model = CATALOG.variants["pro"].model_for("bfl")
    assert model is not None
    assert model.price(2048, 2048, 3) == pytest.approx(3 * 0.075)
    assert "$0.030/image +$0.015/extra MP" in model.describe_price()
    flex = CATALOG.variants["flex"].model_for("fal")
    assert flex is not None and flex.describe_price().startswith("$0.050/MP (rounded up)")


def test_new_variants_and_where_prompt_upsampling_is_offered() -> None:
    nine = CATALOG.resolve("flux-2-klein-9b")
    assert nine.label == "FLUX.2 [klein] 9B" and nine.input_images == 4
    assert set(nine.providers) == {"offline", "bfl", "fal"}
    dev = CATALOG.resolve("flux-2-dev")
    assert dev.label == "FLUX.2 [dev]" and "bfl" not in dev.providers  # no BFL API for [dev]
    flex = CATALOG.resolve("flex")
    assert flex.offers_enhance(["together", "bfl"])
    assert not flex.offers_enhance(["together"])
    assert not CATALOG.resolve("pro").offers_enhance(["bfl", "fal", "together"])
