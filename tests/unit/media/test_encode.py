"""``fit``: decoded pixels written as PNG, or as JPEG (smaller if need be) to meet a byte limit,
never with metadata, whatever the image handed in still carries."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image, ImageCms

from bot.domain.errors import InvalidImage
from bot.media.encode import MIN_FIT_SIDE, encode, fit


def noise(width: int, height: int) -> Image.Image:
    return Image.frombytes("RGB", (width, height), random.Random(7).randbytes(width * height * 3))


def test_without_a_limit_the_pixels_are_written_as_png_exactly() -> None:
    image = noise(50, 40)
    fitted = fit(image, None)
    assert (fitted.content_type, fitted.extension) == ("image/png", "png")
    with Image.open(io.BytesIO(fitted.data)) as out:
        assert out.format == "PNG" and out.tobytes() == image.tobytes()


def test_what_the_image_still_carries_is_not_written_and_the_caller_keeps_it() -> None:
    image = noise(40, 30)
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    image.info = {
        "icc_profile": profile,
        "comment": b"SecretComment",
        "exif": b"Exif\x00\x00SecretExif",
        "dpi": (300, 300),
    }
    for limit in (None, 3000):
        fitted = fit(image, limit)
        for secret in (b"Secret", b"Exif", b"ICC_PROFILE", b"iCCP", b"pHYs"):
            assert secret not in fitted.data, (limit, secret)
        with Image.open(io.BytesIO(fitted.data)) as out:
            assert "icc_profile" not in out.info and "comment" not in out.info
    assert image.info["comment"] == b"SecretComment"


def test_a_lower_jpeg_quality_is_tried_before_the_size() -> None:
    image = noise(300, 200)
    # Room for quality 75, not for 92 or 85.
    limit = len(encode(image, "JPEG", quality=85)) - 1
    assert len(encode(image, "JPEG", quality=75)) <= limit
    fitted = fit(image, limit)
    assert fitted.content_type == "image/jpeg" and len(fitted.data) <= limit
    assert (fitted.width, fitted.height) == (300, 200)


def test_shrinking_stops_at_the_smallest_side() -> None:
    with pytest.raises(InvalidImage, match="upload limit"):
        fit(noise(MIN_FIT_SIDE * 3, MIN_FIT_SIDE * 2), 100)
