"""Writing decoded pixels out as PNG, JPEG or WEBP without any metadata, fitted to a byte limit."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

from PIL import Image

from bot.domain.errors import InvalidImage

# Fitting never goes below this shorter side; an image that still does not fit is refused.
MIN_FIT_SIDE = 64
# zlib's fastest level: every image is re-encoded, and Pillow's default (6) costs about three
# times the CPU for a somewhat smaller file (fitting takes care of upload limits).
PNG_COMPRESS_LEVEL = 1
_JPEG_QUALITIES = (92, 85, 75, 65)
_WEBP_QUALITY = 90
# A user's format name (``OUTPUT_FORMATS``): Pillow's name, the content type, the file extension.
FORMATS = {
    "jpeg": ("JPEG", "image/jpeg", "jpg"),
    "png": ("PNG", "image/png", "png"),
    "webp": ("WEBP", "image/webp", "webp"),
}


@dataclass(frozen=True)
class CleanImage:
    data: bytes
    width: int
    height: int
    content_type: str
    extension: str


def fit(image: Image.Image, max_bytes: int | None) -> CleanImage:
    """Encode as PNG; where that exceeds ``max_bytes``, JPEG at falling quality, then smaller sizes
    of the same aspect ratio. Metadata never reaches the output."""
    if image.info:
        # The caller's image keeps its info; the copy that is written carries none.
        image = image.convert("RGBA") if has_alpha(image) else image.copy()
        image.info = {}
    png = encode(image, "PNG")
    if max_bytes is None or len(png) <= max_bytes:
        return CleanImage(png, image.width, image.height, "image/png", "png")
    flat = _flatten(image)
    width, height = flat.size
    scale = 1.0
    while True:
        current = flat if scale == 1.0 else _scaled(flat, width, height, scale)
        smallest = 0
        for quality in _JPEG_QUALITIES:
            jpeg = encode(current, "JPEG", quality=quality)
            if len(jpeg) <= max_bytes:
                return CleanImage(jpeg, current.width, current.height, "image/jpeg", "jpg")
            smallest = len(jpeg)
        if min(current.size) <= MIN_FIT_SIDE:
            raise InvalidImage("image cannot be made small enough for the upload limit")
        # Bytes shrink roughly with the area: jump close to the size that fits.
        step = min(0.9, math.sqrt(max_bytes / smallest) * 0.95)
        scale = max(scale * step, MIN_FIT_SIDE / min(width, height))


def as_format(image: Image.Image, name: str) -> CleanImage:
    """Pixels without metadata written in the format a user asked for (``FORMATS``); a JPEG has
    no alpha, so a transparent image is flattened onto white first."""
    fmt, content_type, extension = FORMATS[name]
    if image.info:
        image = image.copy()
        image.info = {}
    if fmt == "JPEG":
        data = encode(_flatten(image), "JPEG", quality=_JPEG_QUALITIES[0])
    elif fmt == "WEBP":
        data = encode(image, "WEBP", quality=_WEBP_QUALITY)
    else:
        data = encode(image, "PNG")
    return CleanImage(data, image.width, image.height, content_type, extension)


def encode(image: Image.Image, fmt: str, **options: int | str) -> bytes:
    """``image`` saved as PNG or JPEG. Pillow writes EXIF, XMP, ICC profiles and PNG text only
    when they are passed as save options, except a few it takes from ``image.info`` (a JPEG
    comment, a PNG's ICC profile and transparency): callers hand in an image whose info is empty.
    """
    out = io.BytesIO()
    if fmt == "PNG":
        image.save(out, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    else:
        image.save(out, format=fmt, optimize=True, **options)
    return out.getvalue()


def has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


def _scaled(image: Image.Image, width: int, height: int, scale: float) -> Image.Image:
    """The image at ``scale`` of its original size, both sides from the original (no drift)."""
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def _flatten(image: Image.Image) -> Image.Image:
    """RGB for JPEG; transparent parts become white rather than black."""
    if image.mode == "RGB":
        return image
    if has_alpha(image):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")
