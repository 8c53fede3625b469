"""Image checks before anything is stored or posted: real image, allowed format, bounded size,
metadata stripped, re-encoded to fit a platform's upload limit."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from bot.errors import InvalidImage

ALLOWED_FORMATS = frozenset({"PNG", "JPEG", "WEBP"})
MAX_PIXELS = 40_000_000
MAX_SIDE = 8192


@dataclass(frozen=True)
class CleanImage:
    data: bytes
    width: int
    height: int
    content_type: str
    extension: str


def inspect(data: bytes, *, max_pixels: int = MAX_PIXELS) -> tuple[str, int, int]:
    """Format and size of an image, without decoding its pixels. Raises InvalidImage."""
    if not data:
        raise InvalidImage("empty image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                fmt = img.format or ""
                width, height = img.size
                frames = getattr(img, "n_frames", 1)
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidImage("not an image, or too large to open safely") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise InvalidImage(f"unreadable image: {type(exc).__name__}") from None
    if fmt not in ALLOWED_FORMATS:
        raise InvalidImage(f"format {fmt or 'unknown'} is not allowed")
    if width * height > max_pixels or max(width, height) > MAX_SIDE:
        raise InvalidImage(f"image of {width}x{height} is too large")
    if frames != 1:
        raise InvalidImage("animated images are not allowed")
    return fmt, width, height


def clean(data: bytes, *, max_pixels: int = MAX_PIXELS, max_bytes: int | None = None) -> CleanImage:
    """Verify, fully decode, drop every piece of metadata and re-encode (PNG, or JPEG to fit)."""
    inspect(data, max_pixels=max_pixels)
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            mode = (
                "RGBA" if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info else "RGB"
            )
            pixels = img.convert(mode)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise InvalidImage("truncated or corrupt image") from None
    # A fresh image holds pixels only: EXIF, GPS, XMP and text chunks do not come along.
    bare = Image.new(pixels.mode, pixels.size)
    bare.paste(pixels)
    return fit(bare, max_bytes)


def fit(image: Image.Image, max_bytes: int | None) -> CleanImage:
    """Encode as PNG; where that exceeds ``max_bytes``, JPEG at falling quality, then smaller sizes."""
    png = _encode(image, "PNG")
    if max_bytes is None or len(png) <= max_bytes:
        return CleanImage(png, image.width, image.height, "image/png", "png")
    current = image.convert("RGB")
    while True:
        for quality in (92, 85, 75, 65):
            jpeg = _encode(current, "JPEG", quality=quality)
            if len(jpeg) <= max_bytes:
                return CleanImage(jpeg, current.width, current.height, "image/jpeg", "jpg")
        if min(current.size) < 64:
            raise InvalidImage("image cannot be made small enough for the upload limit")
        current = current.resize(
            (max(1, int(current.width * 0.8)), max(1, int(current.height * 0.8))),
            Image.Resampling.LANCZOS,
        )


def _encode(image: Image.Image, fmt: str, **options: int) -> bytes:
    out = io.BytesIO()
    if fmt == "PNG":
        image.save(out, format="PNG", compress_level=6)
    else:
        image.save(out, format=fmt, optimize=True, **options)
    return out.getvalue()
