"""Image checks before anything is stored or posted: real image, allowed format, bounded size,
metadata stripped, re-encoded to fit a platform's upload limit.

Memory stays bounded: the signature is sniffed before any parser runs, only the allowed formats'
parsers are tried, and size, pixel count and frame count are read from the header and checked
before a single pixel is decoded.

An 8-bit RGB(A) PNG or an RGB JPEG that decodes completely and fits keeps its pixel data as sent:
only its metadata chunks or segments are dropped (re-encoding a PNG costs about 15 times its
decoding, and re-encoding a JPEG loses quality). Anything else is decoded and re-encoded. Such a
PNG (what the providers send) is not even decoded: its image data is inflated and its rows
counted (``_checked_png``), which checks what a decode would, for a fraction of the CPU.
"""

from __future__ import annotations

import io
import math
import struct
import warnings
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from bot.domain.errors import InvalidImage

ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP")
MAX_PIXELS = 40_000_000
MAX_SIDE = 8192
MAX_FILE_BYTES = 50 * 1024 * 1024
# Fitting never goes below this shorter side; an image that still does not fit is refused.
MIN_FIT_SIDE = 64

_ORIENTATION = 0x0112
_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")


@dataclass(frozen=True)
class CleanImage:
    data: bytes
    width: int
    height: int
    content_type: str
    extension: str


def sniff(data: bytes) -> str | None:
    """The format the first bytes announce (PNG, JPEG, WEBP), or None: HTML, ZIP, SVG, GIF..."""
    if data.startswith(_SIGNATURES[0]):
        return "PNG"
    if data.startswith(_SIGNATURES[1]):
        return "JPEG"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _open(data: bytes) -> Image.Image:
    """Open with the allowed parsers only (no other plugin ever sees the bytes)."""
    return Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)


@contextmanager
def _guarded(failure: str) -> Iterator[None]:
    """Pillow's bomb warning becomes a refusal; any parser or decoder error becomes InvalidImage."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            warnings.simplefilter("ignore", UserWarning)  # "malformed MPO": read as plain JPEG
            yield
    except InvalidImage:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidImage("not an image, or too large to open safely") from None
    except MemoryError:
        raise
    except Exception as exc:  # hostile files make decoders raise all sorts of things
        raise InvalidImage(f"{failure} ({type(exc).__name__})") from None


def inspect(
    data: bytes, *, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_FILE_BYTES
) -> tuple[str, int, int]:
    """Format and size of an image, from its header only. Raises InvalidImage."""
    if not data:
        raise InvalidImage("empty image")
    if len(data) > max_bytes:
        raise InvalidImage(f"file of {len(data) // (1024 * 1024)} MB is too large")
    if sniff(data) is None:
        raise InvalidImage("not an image (only PNG, JPEG and WEBP are accepted)")
    with _guarded("unreadable image"), _open(data) as img:
        fmt = img.format or ""
        width, height = img.size
        _check_size(width, height, max_pixels)
        # Read from the header (acTL, the WEBP animation flag): no walk through the frames.
        animated = bool(getattr(img, "is_animated", False))
    if fmt == "MPO":  # a phone photo with extra pictures (depth, preview): its first is the photo
        fmt, animated = "JPEG", False
    if fmt not in ALLOWED_FORMATS:  # pragma: no cover - _open tries no other parser
        raise InvalidImage(f"format {fmt or 'unknown'} is not allowed")
    if animated:
        raise InvalidImage("animated images are not allowed")
    return fmt, width, height


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width < 1 or height < 1:
        raise InvalidImage("image has no pixels")
    if width * height > max_pixels or max(width, height) > MAX_SIDE:
        raise InvalidImage(f"image of {width}x{height} is too large")


def clean(data: bytes, *, max_pixels: int = MAX_PIXELS, max_bytes: int | None = None) -> CleanImage:
    """Verify, fully decode, drop every piece of metadata and re-encode (PNG, or JPEG to fit).

    The EXIF orientation is applied to the pixels first, so a phone photo stays upright once its
    EXIF is gone.
    """
    fmt, width, height = inspect(data, max_pixels=max_pixels)
    if fmt == "PNG":
        kept = _checked_png(data)
        if kept is not None and (max_bytes is None or len(kept) <= max_bytes):
            return CleanImage(kept, width, height, "image/png", "png")
    with _guarded("truncated or corrupt image"), _open(data) as img:
        img.load()
        # Transpose only when the EXIF asks for it: a copy of a large image is costly.
        upright = ImageOps.exif_transpose(img) if img.getexif().get(_ORIENTATION, 1) != 1 else img
        if upright is img:
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
        pixels = upright.convert("RGBA" if _has_alpha(upright) or _has_alpha(img) else "RGB")
    # Only pixels travel on: EXIF, GPS, XMP, ICC, comments and text chunks stay behind.
    pixels.info = {}
    return fit(pixels, max_bytes)


def fit(image: Image.Image, max_bytes: int | None) -> CleanImage:
    """Encode as PNG; where that exceeds ``max_bytes``, JPEG at falling quality, then smaller sizes
    of the same aspect ratio. Metadata never reaches the output."""
    if image.info:
        image = image.convert("RGBA") if _has_alpha(image) else image.copy()
        image.info = {}
    png = _encode(image, "PNG")
    if max_bytes is None or len(png) <= max_bytes:
        return CleanImage(png, image.width, image.height, "image/png", "png")
    flat = _flatten(image)
    width, height = flat.size
    scale = 1.0
    while True:
        current = flat if scale == 1.0 else _scaled(flat, width, height, scale)
        smallest = 0
        for quality in (92, 85, 75, 65):
            jpeg = _encode(current, "JPEG", quality=quality)
            if len(jpeg) <= max_bytes:
                return CleanImage(jpeg, current.width, current.height, "image/jpeg", "jpg")
            smallest = len(jpeg)
        if min(current.size) <= MIN_FIT_SIDE:
            raise InvalidImage("image cannot be made small enough for the upload limit")
        # Bytes shrink roughly with the area: jump close to the size that fits.
        step = min(0.9, math.sqrt(max_bytes / smallest) * 0.95)
        scale = max(scale * step, MIN_FIT_SIDE / min(width, height))


def _scaled(image: Image.Image, width: int, height: int, scale: float) -> Image.Image:
    """The image at ``scale`` of its original size, both sides from the original (no drift)."""
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def _flatten(image: Image.Image) -> Image.Image:
    """RGB for JPEG; transparent parts become white rather than black."""
    if image.mode == "RGB":
        return image
    if _has_alpha(image):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


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
            return _checked_png(data)
        if fmt == "JPEG" and mode == "RGB":
            return _strip_jpeg(data)
    except (IndexError, struct.error):
        return None
    return None


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """Each chunk of a PNG as (type, start, end), its CRC checked; stops after IEND. Raises
    ValueError on a bad signature, a bad CRC, a chunk past the end or a missing IEND."""
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError("not a PNG")
    pos = len(_PNG_SIGNATURE)
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            raise ValueError("chunk runs past the end")
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        if zlib.crc32(data[pos + 4 : end - 4]) != crc:
            raise ValueError("bad chunk CRC")
        yield kind, pos, end
        if kind == b"IEND":
            return
        pos = end
    raise ValueError("no IEND")


def _checked_png(data: bytes) -> bytes | None:
    """The PNG without its metadata, checked as completely as a full decode would check it, or
    None where only Pillow's decode may decide (another bit depth, colour type or interlacing,
    an EXIF orientation to apply, or anything this check does not vouch for).

    The check: every chunk's CRC, then the image data inflated (in pieces, never held whole) to
    exactly one filter byte plus one row of pixels per row, each filter byte a known filter.
    Unfiltering cannot fail on such data, so a full decode would accept the file too; skipping it
    saves most of the CPU (zlib also runs without the GIL, so other threads go on meanwhile).
    """
    try:
        chunks = list(_png_chunks(data))
    except ValueError:
        return None
    kind, start, _ = chunks[0]
    if kind != b"IHDR" or any(k == b"eXIf" for k, _, _ in chunks):
        return None
    width, height, depth, colour, _, _, interlace = struct.unpack(
        ">IIBBBBB", data[start + 8 : start + 21]
    )
    if depth != 8 or colour not in (2, 6) or interlace != 0:
        return None
    stride = 1 + width * (3 if colour == 2 else 4)
    # Views, not slices: a large image's data is never copied to be checked or kept.
    view = memoryview(data)
    if not _rows_complete(
        (view[s + 8 : e - 4] for k, s, e in chunks if k == b"IDAT"), stride, height
    ):
        return None
    kept = [(s, e) for k, s, e in chunks if k in _PNG_KEEP]
    if len(kept) == len(chunks) and kept[-1][1] == len(data):
        return data  # nothing to drop (no metadata, nothing after IEND): the file as it came
    return b"".join([_PNG_SIGNATURE, *(view[s:e] for s, e in kept)])


# Enough output per step to keep memory small and the Python-level loop short.
_INFLATE_STEP = 1 << 20


def _rows_complete(parts: Iterable[bytes | memoryview], stride: int, rows: int) -> bool:
    """Whether the zlib stream split over ``parts`` inflates to exactly ``rows`` rows of
    ``stride`` bytes, each starting with a filter type from 0 to 4."""
    inflater = zlib.decompressobj()
    expected = stride * rows
    seen = 0

    def rows_ok(out: bytes) -> bool:
        nonlocal seen
        # Filter bytes sit at every multiple of the stride.
        if any(out[i] > 4 for i in range(-seen % stride, len(out), stride)):
            return False
        seen += len(out)
        return seen <= expected

    try:
        for part in parts:
            pending = part
            while pending:
                if not rows_ok(inflater.decompress(pending, _INFLATE_STEP)):
                    return False
                pending = inflater.unconsumed_tail
        if not rows_ok(inflater.flush()):
            return False
    except zlib.error:
        return False
    return inflater.eof and seen == expected and not inflater.unused_data


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
