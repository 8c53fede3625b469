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
