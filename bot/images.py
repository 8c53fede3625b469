"""Image checks before anything is stored or posted: real image, allowed format, bounded size,
metadata stripped, re-encoded to fit a platform's upload limit.

An 8-bit RGB(A) PNG or an RGB JPEG that decodes completely and fits keeps its pixel data as sent:
only its metadata chunks or segments are dropped (re-encoding a PNG costs about 15 times its
decoding, and re-encoding a JPEG loses quality). Anything else is decoded and re-encoded.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
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
    kept = strip_metadata(data, img.format or "", img.mode)
    if kept is not None and (max_bytes is None or len(kept) <= max_bytes):
        png = img.format == "PNG"
        return CleanImage(
            kept,
            img.width,
            img.height,
            "image/png" if png else "image/jpeg",
            "png" if png else "jpg",
        )
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


# Chunks a PNG keeps: the image itself (what a re-encode of its pixels would write).
_PNG_KEEP = frozenset({b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND"})
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG segments a JPEG keeps: structure only (JFIF and Adobe's colour transform), no EXIF, XMP,
# ICC, IPTC or comments.
_JPEG_DROP = frozenset({*range(0xE1, 0xEE), 0xEF, 0xFE})


def strip_metadata(data: bytes, fmt: str, mode: str) -> bytes | None:
    """The same image without its metadata, its pixel data untouched; None where only a re-encode
    will do (another format or mode, or a structure this parser does not vouch for)."""
    try:
        if fmt == "PNG" and mode in ("RGB", "RGBA"):
            return _strip_png(data)
        if fmt == "JPEG" and mode == "RGB":
            return _strip_jpeg(data)
    except (IndexError, struct.error):
        return None
    return None


def _strip_png(data: bytes) -> bytes | None:
    if not data.startswith(_PNG_SIGNATURE):
        return None
    out = [_PNG_SIGNATURE]
    pos = len(_PNG_SIGNATURE)
    first = True
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            return None
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        if zlib.crc32(data[pos + 4 : end - 4]) != crc:
            return None
        if first:
            # 8 bits per sample, RGB (2) or RGBA (6): what a re-encode would have made.
            if kind != b"IHDR" or data[pos + 16] != 8 or data[pos + 17] not in (2, 6):
                return None
            first = False
        if kind in _PNG_KEEP:
            out.append(data[pos:end])
        if kind == b"IEND":
            return b"".join(out)
        pos = end
    return None


def _strip_jpeg(data: bytes) -> bytes | None:
    if not data.startswith(b"\xff\xd8"):
        return None
    out = [b"\xff\xd8"]
    pos = 2
    while pos + 2 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:
            out.append(b"\xff\xd9")
            return b"".join(out)
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        end = pos + 2 + length
        if length < 2 or end > len(data):
            return None
        if marker == 0xDA:
            # Entropy-coded data runs to the next marker that is not a stuffed 0 or a restart.
            scan = end
            while True:
                scan = data.index(b"\xff", scan)
                following = data[scan + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7:
                    scan += 2
                    continue
                break
            out.append(data[pos:scan])
            pos = scan
            continue
        if marker not in _JPEG_DROP:
            out.append(data[pos:end])
        pos = end
    return None
