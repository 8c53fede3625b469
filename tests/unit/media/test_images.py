"""``clean`` and ``inspect``: Pillow verifies and decodes every image; what comes out is the same
pixels, with every piece of metadata and anything after the image left behind (re-encoded unless
there was nothing to leave), and damaged files are refused."""

from __future__ import annotations

import io
import struct
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image, ImageChops, PngImagePlugin

from bot.domain.errors import InvalidImage
from bot.media import images

SIGNATURE = b"\x89PNG\r\n\x1a\n"
GPS = "48.8584 N, 2.2945 E (home of the requester)"


def chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )


def png(width: int, height: int, rows: bytes, *, colour: int = 2) -> bytes:
    """A PNG built by hand from raw (filtered) row bytes, so tests can damage any part of it."""
    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    data = zlib.compress(rows)
    # Two IDAT chunks: the image data runs across chunks.
    middle = len(data) // 2
    return (
        SIGNATURE
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", data[:middle])
        + chunk(b"IDAT", data[middle:])
        + chunk(b"IEND", b"")
    )


def rows(
    width: int, height: int, channels: int = 3, filters: bytes = b"\x00\x01\x02\x03\x04"
) -> bytes:
    return b"".join(
        bytes([filters[y % len(filters)]])
        + bytes((x * 7 + y) % 256 for x in range(width * channels))
        for y in range(height)
    )


def pillow_pixels(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        return image.tobytes()


def photo(mode: str = "RGB", size: tuple[int, int] = (96, 64)) -> Image.Image:
    image = Image.linear_gradient("L").resize(size).convert(mode)
    for x in range(0, size[0], 7):
        for y in range(size[1]):
            image.putpixel((x, y), (200, 30, 90, 255)[: len(mode)] if mode != "L" else 200)
    return image


def exif_with_gps() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"  # Make
    exif[0x9286] = GPS  # UserComment
    return exif


def text_info() -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_text("Location", GPS)
    return info


# PNG: the pixels survive exactly ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height", "channels", "colour"),
    [(40, 30, 3, 2), (16, 9, 4, 6), (700, 600, 3, 2)],
    ids=["rgb", "rgba", "large"],
)
def test_a_sound_png_keeps_its_pixels(width: int, height: int, channels: int, colour: int) -> None:
    data = png(width, height, rows(width, height, channels), colour=colour)
    cleaned = images.clean(data)
    assert cleaned.content_type == "image/png" and cleaned.extension == "png"
    assert (cleaned.width, cleaned.height) == (width, height)
    assert pillow_pixels(cleaned.data) == pillow_pixels(data)


def test_a_png_with_nothing_to_drop_goes_on_as_it_came() -> None:
    data = png(40, 30, rows(40, 30, channels=4), colour=6)
    assert images.clean(data).data is data


def test_metadata_and_bytes_after_the_end_are_dropped_and_the_pixels_kept() -> None:
    plain = png(40, 30, rows(40, 30))
    end = len(plain) - 12  # the IEND chunk
    text = chunk(b"tEXt", b"Comment\x00taken at 48.85N 2.29E")
    private = chunk(b"prVt", b"a payload no viewer shows")  # an ancillary chunk Pillow skips
    data = plain[:33] + text + private + plain[33:end] + chunk(b"IEND", b"") + b"trailing bytes"
    cleaned = images.clean(data)
    for marker in (b"tEXt", b"48.85N", b"prVt", b"payload", b"trailing"):
        assert marker not in cleaned.data
    assert pillow_pixels(cleaned.data) == pillow_pixels(plain)


def test_a_png_loses_text_exif_and_density_chunks() -> None:
    source = photo("RGBA")
    info = text_info()
    info.add_itxt("Prompt", "a secret prompt", zip=True)
    raw = io.BytesIO()
    source.save(raw, format="PNG", pnginfo=info, exif=exif_with_gps(), dpi=(300, 300))
    assert GPS.encode() in raw.getvalue()

    cleaned = images.clean(raw.getvalue())

    for marker in (GPS.encode(), b"tEXt", b"iTXt", b"eXIf", b"pHYs", b"CameraMaker"):
        assert marker not in cleaned.data
    with Image.open(io.BytesIO(cleaned.data)) as out:
        assert out.mode == "RGBA" and out.size == source.size
        assert out.tobytes() == source.tobytes()
        assert not out.info.get("Location") and not out.getexif()


def test_other_modes_are_decoded_and_written_as_rgb() -> None:
    grey = io.BytesIO()
    photo("L").save(grey, format="PNG", pnginfo=text_info())
    cleaned = images.clean(grey.getvalue())
    assert GPS.encode() not in cleaned.data
    with Image.open(io.BytesIO(cleaned.data)) as out:
        assert out.mode == "RGB" and out.width == 96


def test_a_colour_key_becomes_an_alpha_channel() -> None:
    image = Image.new("RGB", (10, 10), (0, 255, 0))
    image.putpixel((0, 0), (1, 2, 3))
    raw = io.BytesIO()
    image.save(raw, format="PNG", transparency=(0, 255, 0))  # green is transparent
    with Image.open(io.BytesIO(images.clean(raw.getvalue()).data)) as out:
        assert out.mode == "RGBA"
        assert out.getpixel((5, 5)) == (0, 255, 0, 0) and out.getpixel((0, 0)) == (1, 2, 3, 255)
        assert "transparency" not in out.info


# PNG: damage is refused or decoded, never passed on ---------------------------------------------


@pytest.mark.parametrize("damage", ["bad filter byte", "truncated stream", "bad chunk checksum"])
def test_damaged_image_data_is_refused(damage: str) -> None:
    width, height = 32, 24
    body = rows(width, height)
    stride = 1 + width * 3
    if damage == "bad filter byte":
        data = png(width, height, body[: 5 * stride] + b"\x09" + body[5 * stride + 1 :])
    elif damage == "truncated stream":
        header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
        stream = zlib.compress(body)[:-40]
        data = SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", stream) + chunk(b"IEND", b"")
    else:
        damaged = bytearray(png(width, height, body))
        damaged[-20] ^= 0xFF  # inside the last IDAT chunk's data: verify() finds the bad CRC
        data = bytes(damaged)
    with pytest.raises(InvalidImage):
        images.clean(data)


@pytest.mark.parametrize("damage", ["missing row", "extra row", "bytes after the stream"])
def test_odd_image_data_is_left_to_pillow(damage: str) -> None:
    """Pillow reads what it needs (a short stream leaves the last row blank) and decides: what
    goes on shows exactly the image Pillow read."""
    width, height = 32, 24
    body = rows(width, height)
    stride = 1 + width * 3
    if damage == "missing row":
        data = png(width, height, body[:-stride])
    elif damage == "extra row":
        data = png(width, height, body + body[:stride])
    else:
        header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
        stream = zlib.compress(body) + b"more"
        data = SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", stream) + chunk(b"IEND", b"")
    cleaned = images.clean(data)
    assert (cleaned.width, cleaned.height) == (width, height)
    assert pillow_pixels(cleaned.data) == pillow_pixels(data)


# JPEG -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("progressive", [False, True], ids=["baseline", "progressive"])
def test_a_jpeg_stays_a_jpeg_with_its_own_tables_and_no_exif_or_comment(progressive: bool) -> None:
    raw = io.BytesIO()
    photo(size=(160, 120)).save(
        raw,
        format="JPEG",
        quality=90,
        progressive=progressive,
        exif=exif_with_gps(),
        comment=b"shot at " + GPS.encode(),
    )
    with Image.open(io.BytesIO(raw.getvalue())) as original:
        original.load()
        tables = original.quantization

        cleaned = images.clean(raw.getvalue())

        assert cleaned.content_type == "image/jpeg" and cleaned.extension == "jpg"
        assert GPS.encode() not in cleaned.data and b"Exif" not in cleaned.data
        with Image.open(io.BytesIO(cleaned.data)) as out:
            assert out.format == "JPEG" and out.size == original.size
            assert not out.getexif() and "comment" not in out.info
            # Written with the source's quality settings: the pixels stay close.
            assert out.quantization == tables
            difference = ImageChops.difference(original, out.convert("RGB")).convert("L")
            assert sum(difference.histogram()[8:]) < 0.1 * 160 * 120


def plain_jpeg(*, progressive: bool = False) -> bytes:
    """A JPEG as Pillow writes it with no metadata options: SOI, a JFIF APP0 without thumbnail,
    tables, frame, scan(s), EOI."""
    raw = io.BytesIO()
    photo(size=(160, 120)).save(raw, format="JPEG", quality=90, progressive=progressive)
    return raw.getvalue()


def segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


@pytest.mark.parametrize("progressive", [False, True], ids=["baseline", "progressive"])
def test_a_jpeg_with_nothing_to_drop_goes_on_as_it_came(progressive: bool) -> None:
    data = plain_jpeg(progressive=progressive)
    cleaned = images.clean(data)
    assert cleaned.data is data
    assert (cleaned.content_type, cleaned.extension) == ("image/jpeg", "jpg")
    assert (cleaned.width, cleaned.height) == (160, 120)
    assert images.clean(data, output_format="jpeg").data is data


def _jfif_thumbnail(data: bytes) -> bytes:
    # APP0 JFIF: version, units, densities, then a 1x1 RGB thumbnail (JFIF 1.02, section "JFIF").
    thumb = segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x01\x01" + b"\xff\x00\x00")
    assert data[2:4] == b"\xff\xe0"
    return data[:2] + thumb + data[4 + struct.unpack(">H", data[4:6])[0] :]


def _comment_between_scans(data: bytes) -> bytes:
    second_scan = data.find(b"\xff\xda", data.find(b"\xff\xda") + 2)
    assert second_scan > 0
    return data[:second_scan] + segment(0xFE, b"shot at " + GPS.encode()) + data[second_scan:]


@pytest.mark.parametrize(
    ("progressive", "alter", "secret"),
    [
        (False, lambda d: d[:2] + segment(0xFE, GPS.encode()) + d[2:], GPS.encode()),
        (False, lambda d: d[:2] + segment(0xE1, b"Exif\x00\x00" + GPS.encode()) + d[2:], b"Exif"),
        (False, lambda d: d[:2] + segment(0xEE, b"Adobe\x00" + bytes(6)) + d[2:], b"Adobe"),
        (False, _jfif_thumbnail, b"\x01\x01\xff\x00\x00"),
        (False, lambda d: d + b"trailing " + GPS.encode(), GPS.encode()),
        (True, _comment_between_scans, GPS.encode()),
    ],
    ids=["comment", "exif", "app14", "jfif-thumbnail", "after-eoi", "comment-between-scans"],
)
def test_a_jpeg_with_anything_besides_its_pixels_is_re_encoded(
    progressive: bool, alter: Callable[[bytes], bytes], secret: bytes
) -> None:
    plain = plain_jpeg(progressive=progressive)
    data = alter(plain)
    assert secret in data
    cleaned = images.clean(data)
    assert cleaned.data is not data and secret not in cleaned.data
    assert cleaned.content_type == "image/jpeg"
    with Image.open(io.BytesIO(cleaned.data)) as out, Image.open(io.BytesIO(plain)) as original:
        assert out.size == original.size and "comment" not in out.info and not out.getexif()


def test_a_jpeg_cut_short_is_refused() -> None:
    data = plain_jpeg()
    with pytest.raises(InvalidImage):
        images.clean(data[: len(data) // 2])


@pytest.mark.parametrize("progressive", [False, True], ids=["baseline", "progressive"])
def test_a_jpeg_with_nothing_to_drop_but_damaged_coding_is_refused(progressive: bool) -> None:
    """Its segments are in order (nothing to strip), so only decoding finds the damage: a Huffman
    table whose code counts no longer add up."""
    data = bytearray(plain_jpeg(progressive=progressive))
    table = data.find(b"\xff\xc4")
    data[table + 5 : table + 21] = b"\xff" * 16  # the table's 16 code counts
    with pytest.raises(InvalidImage, match="corrupt"):
        images.clean(bytes(data))


def test_a_short_scan_is_left_to_pillow() -> None:
    """An EOI right after half the scan: libjpeg fills the missing rows; what goes on shows
    exactly the image Pillow read, as for a PNG's short stream."""
    data = plain_jpeg()
    data = data[: len(data) // 2] + b"\xff\xd9"
    cleaned = images.clean(data)
    assert pillow_pixels(cleaned.data) == pillow_pixels(data)


def test_a_jpeg_over_the_limit_is_fitted() -> None:
    raw = io.BytesIO()
    photo(size=(400, 300)).save(raw, format="JPEG", quality=95, exif=exif_with_gps())
    limit = len(raw.getvalue()) // 2
    cleaned = images.clean(raw.getvalue(), max_bytes=limit)
    assert len(cleaned.data) <= limit and cleaned.content_type == "image/jpeg"
    assert GPS.encode() not in cleaned.data


# Limits -------------------------------------------------------------------------------------------


def test_an_image_over_the_upload_limit_is_re_encoded_to_fit() -> None:
    raw = io.BytesIO()
    photo(size=(400, 300)).save(raw, format="PNG", pnginfo=text_info())
    limit = len(raw.getvalue()) // 3
    cleaned = images.clean(raw.getvalue(), max_bytes=limit)
    assert len(cleaned.data) <= limit
    assert GPS.encode() not in cleaned.data


def test_inspect_reads_format_and_size_from_the_header() -> None:
    data = png(40, 30, rows(40, 30))
    assert images.inspect(data) == ("PNG", 40, 30)
    # The header alone decides: a file cut right after it still reports its size.
    assert images.inspect(data[:60]) == ("PNG", 40, 30)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"GIF89a" + bytes(40), "only PNG, JPEG and WEBP"),
        (png(9000, 10, b""), "too large"),
        (png(7000, 7000, b""), "too large"),
    ],
    ids=["empty", "gif", "too wide", "too many pixels"],
)
def test_inspect_refuses_with_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(InvalidImage, match=message):
        images.inspect(data)
    with pytest.raises(InvalidImage, match=message):
        images.clean(data)


def test_a_lower_pixel_cap_applies() -> None:
    data = png(40, 30, rows(40, 30))
    with pytest.raises(InvalidImage, match="too large"):
        images.clean(data, max_pixels=1000)


def test_a_file_over_the_byte_cap_is_refused_before_it_is_opened() -> None:
    with pytest.raises(InvalidImage, match="too large"):
        images.inspect(SIGNATURE + bytes(100), max_bytes=50)


def test_no_more_images_decode_at_once_than_the_decoder_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Memory stays bounded however many threads ask: the rest wait their turn."""
    lock = threading.Lock()
    running = 0
    most = 0
    real = images._clean

    def counting(data: bytes, max_pixels: int, max_bytes: int | None) -> images.CleanImage:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            time.sleep(0.02)  # long enough for the other callers to pile up
            return real(data, max_pixels, max_bytes)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(images, "_clean", counting)
    data = png(40, 30, rows(40, 30))
    callers = images.DECODERS + 4
    with ThreadPoolExecutor(callers) as pool:
        results = list(pool.map(lambda _: images.clean(data), range(callers * 3)))
    assert all((r.width, r.height) == (40, 30) for r in results)
    assert most == images.DECODERS
