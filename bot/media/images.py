"""Image checks before anything is stored or posted: a real image in an allowed format, of bounded
size, verified and decoded by Pillow, and re-encoded wherever more than its pixels would travel on.

Memory stays bounded: Pillow tries only the allowed formats' parsers, and size, pixel count and
animation are read from the header and checked before a single pixel is decoded.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from PIL import ExifTags, Image, ImageFile, ImageOps, PngImagePlugin, UnidentifiedImageError

from bot.domain.errors import InvalidImage
from bot.media.encode import FORMATS, CleanImage, as_format, encode, fit, has_alpha

__all__ = [
    "ALLOWED_FORMATS",
    "MAX_FILE_BYTES",
    "MAX_PIXELS",
    "MAX_SIDE",
    "CleanImage",
    "clean",
    "fit",
    "inspect",
]

ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP")
MAX_PIXELS = 40_000_000
MAX_SIDE = 8192
MAX_FILE_BYTES = 50 * 1024 * 1024
# Images decoded at once in this process: half the cores, the event loop and the rest keep the
# others. More at once would only add memory (a 4-megapixel image takes about 30 MB to decode and
# re-encode), and the same few threads reuse their buffers (glibc keeps a heap per thread: decodes
# spread over every thread of asyncio's default executor hold several times as much).
DECODERS = max(1, (os.cpu_count() or 1) // 2)
_decoders = ThreadPoolExecutor(DECODERS, thread_name_prefix="image-decode")
# The chunks of a PNG that hold nothing but its pixels (RGB or RGBA: no palette, no colour key).
_IMAGE_CHUNKS = frozenset({b"IHDR", b"IDAT"})
# The JPEG markers that hold nothing but how the pixels are coded (ITU-T T.81, table B.1): frames
# (SOF0-3, 5-7, 9-11, 13-15), Huffman and arithmetic tables, quantization tables, restart interval,
# number of lines. APPn (EXIF, XMP, ICC, Adobe...), COM and the reserved markers are not.
_JPEG_CODING_MARKERS = frozenset(
    {*range(0xC0, 0xC4), *range(0xC5, 0xC8), *range(0xC9, 0xCC), *range(0xCD, 0xD0)}
    | {0xC4, 0xCC, 0xDB, 0xDD, 0xDC}
)
# The modes a bare image of each format goes on in as it came (others are converted first).
_BARE_MODES = {"PNG": ("RGB", "RGBA"), "JPEG": ("RGB",)}
_SOS, _EOI, _APP0 = 0xDA, 0xD9, 0xE0
# In entropy-coded data a 0xFF byte is followed by 0x00 (a stuffed byte) or a restart marker
# (RST0-7): the next other marker ends the scan. 0xFF fill bytes may precede a marker.
_JPEG_NEXT_MARKER = re.compile(rb"\xff([^\x00\xd0-\xd7\xff])")


def inspect(
    data: bytes, *, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_FILE_BYTES
) -> tuple[str, int, int]:
    """Format and size of an image, from its header only. Raises InvalidImage."""
    with _guarded("unreadable image"), _opened(data, max_pixels, max_bytes) as img:
        return _format(img), img.width, img.height


def clean(
    data: bytes,
    *,
    max_pixels: int = MAX_PIXELS,
    max_bytes: int | None = None,
    output_format: str | None = None,
) -> CleanImage:
    """Verify and fully decode; then re-encode where needed: PNG (or JPEG where that is needed to
    fit ``max_bytes``) with no EXIF, GPS, XMP, ICC profile, comment, text chunk or trailing bytes.

    An RGB(A) PNG that holds nothing but its image goes on as it came. A JPEG stays a JPEG,
    written with its own quantization tables and subsampling. The EXIF orientation is applied to
    the pixels first, so a phone photo stays upright once its EXIF is gone. The work runs on the
    decoder threads and this call waits for it: call it off the event loop (``asyncio.to_thread``).

    With ``output_format`` (a name of ``encode.FORMATS``) the clean image comes out in that format:
    a provider that cannot make it gave another, and the user gets the one asked for.
    """
    return _decoders.submit(_clean_as, data, max_pixels, max_bytes, output_format).result()


def _clean_as(
    data: bytes, max_pixels: int, max_bytes: int | None, output_format: str | None
) -> CleanImage:
    cleaned = _clean(data, max_pixels, max_bytes)
    if output_format is None or FORMATS[output_format][2] == cleaned.extension:
        return cleaned
    if max_bytes is not None and cleaned.content_type == "image/jpeg" and output_format == "png":
        return cleaned  # made JPEG to fit the byte limit: a PNG of it would not fit
    with _opened(cleaned.data, max_pixels, MAX_FILE_BYTES) as img:
        img.load()
        return as_format(img, output_format)


def _clean(data: bytes, max_pixels: int, max_bytes: int | None) -> CleanImage:
    with _guarded("corrupt image"), _opened(data, max_pixels, MAX_FILE_BYTES) as img:
        if img.format == "PNG":
            bare = _bare_png(data)
        elif img.format == "JPEG":
            bare = _bare_jpeg(data)
        else:
            img.verify()  # a no-op for WEBP today (and JPEG); their decode below checks them
            bare = False
    # Pillow's docs: an image must be opened again after verify().
    with _guarded("truncated or corrupt image"), _opened(data, max_pixels, MAX_FILE_BYTES) as img:
        fmt, (width, height) = img.format or "", img.size
        passes = (
            bare
            and img.mode in _BARE_MODES.get(fmt, ())
            and (max_bytes is None or len(data) <= max_bytes)
        )
        if passes and fmt == "JPEG":
            # Only the checks are wanted, not the pixels: libjpeg still decodes every scan's
            # coded data (a cut or damaged stream fails as in a full decode), but rebuilds the
            # pixels at 1/8 scale (Image.draft), a third less work.
            img.draft("RGB", (max(1, width // 8), max(1, height // 8)))
        # The decoder gets the whole file in one call rather than one per 64 KB: each call
        # returns to Python, and a thread waits up to the GIL's switch interval (5 ms) to get it
        # back from a busy event loop (a burst of 500 results: 58 -> 31 ms per image).
        img.decodermaxblock = len(data)
        img.load()
        if passes:
            # Nothing to strip and every row decoded: re-encoding would only cost time.
            _, content_type, extension = FORMATS[fmt.lower()]
            return CleanImage(data, width, height, content_type, extension)
        orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
        if orientation == 1 and _format(img) == "JPEG" and img.mode == "RGB":
            # Only pixels travel on: a JPEG comment is the one thing Pillow copies from info.
            img.info = {}
            # "keep" writes the source's own tables and subsampling (JPEG images only).
            jpeg = encode(img, "JPEG", quality="keep")
            if max_bytes is None or len(jpeg) <= max_bytes:
                return CleanImage(jpeg, img.width, img.height, "image/jpeg", "jpg")
        # Transpose only when the EXIF asks for it: a copy of a large image is costly.
        upright = ImageOps.exif_transpose(img) if orientation != 1 else img
        mode = "RGBA" if has_alpha(upright) else "RGB"
        pixels = upright if upright.mode == mode else upright.convert(mode)
        # Only pixels travel on: EXIF, XMP, ICC, comments and text chunks stay behind.
        pixels.info = {}
        return fit(pixels, max_bytes)


def _bare_png(data: bytes) -> bool:
    """Whether a PNG is nothing but its image (IHDR and IDAT chunks, then IEND and not one byte
    more). Pillow's PngStream.verify(), which Image.verify() runs for a PNG, reads the chunks and
    checks each one's CRC; it stops at IEND, before its own 4-byte CRC."""
    fp = io.BytesIO(data)
    fp.seek(8)  # past the signature, which Image.open has checked
    with PngImagePlugin.PngStream(fp) as stream:
        kinds = stream.verify()
    return set(kinds) <= _IMAGE_CHUNKS and fp.tell() + 4 == len(data)


def _bare_jpeg(data: bytes) -> bool:
    """Whether a JPEG is nothing but its coded pixels: SOI, then only table, frame and scan
    segments (and at most a JFIF APP0 without a thumbnail), then EOI and not one byte more.
    The segments are walked here; Pillow decodes the pixels (and refuses damaged ones)."""
    if not data.startswith(b"\xff\xd8"):
        return False
    pos = 2
    while True:
        if pos + 2 > len(data) or data[pos] != 0xFF:
            return False
        while pos + 1 < len(data) and data[pos + 1] == 0xFF:  # fill bytes before a marker
            pos += 1
        if pos + 2 > len(data):
            return False
        marker = data[pos + 1]
        if marker == _EOI:
            return pos + 2 == len(data)
        if pos + 4 > len(data):
            return False
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        end = pos + 2 + length
        if length < 2 or end > len(data):
            return False
        if marker == _APP0:
            # JFIF (version, density, then a thumbnail of Xthumbnail x Ythumbnail pixels):
            # allowed only with no thumbnail; a JFXX extension (a thumbnail) is not.
            segment = data[pos + 4 : end]
            if (
                len(segment) != 14
                or not segment.startswith(b"JFIF\x00")
                or segment[12:14] != b"\0\0"
            ):
                return False
        elif marker != _SOS and marker not in _JPEG_CODING_MARKERS:
            return False
        pos = end
        if marker == _SOS:
            found = _JPEG_NEXT_MARKER.search(data, pos)
            if found is None:
                return False
            pos = found.start()


def _format(img: Image.Image) -> str:
    # A phone photo with extra pictures (depth, preview) opens as MPO: its first is the photo.
    return "JPEG" if img.format == "MPO" else img.format or ""


@contextmanager
def _opened(data: bytes, max_pixels: int, max_bytes: int) -> Iterator[ImageFile.ImageFile]:
    """The image opened by the allowed parsers only, its header checked against the limits."""
    if not data:
        raise InvalidImage("empty image")
    if len(data) > max_bytes:
        raise InvalidImage(f"file of {len(data) // (1024 * 1024)} MB is too large")
    with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as img:
        width, height = img.size
        if width < 1 or height < 1:
            raise InvalidImage("image has no pixels")
        if width * height > max_pixels or max(width, height) > MAX_SIDE:
            raise InvalidImage(f"image of {width}x{height} is too large")
        if _format(img) not in ALLOWED_FORMATS:  # pragma: no cover - no other parser is tried
            raise InvalidImage(f"format {img.format or 'unknown'} is not allowed")
        # Read from the header (acTL, the WEBP animation flag): no walk through the frames.
        if img.format != "MPO" and getattr(img, "is_animated", False):
            raise InvalidImage("animated images are not allowed")
        yield img


@contextmanager
def _guarded(failure: str) -> Iterator[None]:
    """Any parser or decoder error becomes InvalidImage with a short reason.

    Pillow's own guard fires while a header is read: past ``Image.MAX_IMAGE_PIXELS`` a
    DecompressionBombWarning (an error where warnings are errors), past twice that a
    DecompressionBombError. The tighter caps above are checked right after, still before decoding.
    """
    try:
        yield
    except InvalidImage:
        raise
    except UnidentifiedImageError:
        raise InvalidImage("not an image (only PNG, JPEG and WEBP are accepted)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidImage("image too large to open safely") from None
    except MemoryError:
        raise
    except Exception as exc:  # hostile files make decoders raise all sorts of things
        raise InvalidImage(f"{failure} ({type(exc).__name__})") from None
