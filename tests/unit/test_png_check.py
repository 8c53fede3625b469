"""The PNG check that stands in for a full decode: it accepts exactly what a decode would accept
and leaves anything else to Pillow, which refuses damaged files."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from bot.domain.errors import InvalidImage
from bot.media import images

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )


def png(width: int, height: int, rows: bytes, *, interlace: int = 0, colour: int = 2) -> bytes:
    """A PNG built by hand from raw (filtered) row bytes, so tests can damage any part of it."""
    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, interlace)
    data = zlib.compress(rows)
    # Two IDAT chunks: the check must follow the stream across chunks.
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


def test_a_sound_png_passes_without_a_decode_and_keeps_its_pixels() -> None:
    data = png(40, 30, rows(40, 30))
    kept = images._checked_png(data)
    assert kept is not None
    cleaned = images.clean(data)
    assert cleaned.data == kept and (cleaned.width, cleaned.height) == (40, 30)
    assert pillow_pixels(cleaned.data) == pillow_pixels(data)


def test_a_png_with_nothing_to_drop_is_kept_as_it_came_without_a_copy() -> None:
    data = png(40, 30, rows(40, 30))
    assert images._checked_png(data) is data


def test_metadata_and_bytes_after_the_end_are_dropped_and_the_pixels_kept() -> None:
    plain = png(40, 30, rows(40, 30))
    end = len(plain) - 12  # the IEND chunk
    text = chunk(b"tEXt", b"Comment\x00taken at 48.85N 2.29E")
    data = plain[:33] + text + plain[33:end] + chunk(b"IEND", b"") + b"trailing bytes"
    kept = images._checked_png(data)
    assert kept is not None and kept == plain
    assert b"tEXt" not in kept and b"trailing" not in kept
    assert pillow_pixels(kept) == pillow_pixels(plain)


def test_an_rgba_png_passes_too() -> None:
    data = png(16, 9, rows(16, 9, channels=4), colour=6)
    assert images._checked_png(data) is not None
    assert pillow_pixels(images.clean(data).data) == pillow_pixels(data)


def test_a_large_image_is_checked_across_inflate_steps() -> None:
    width, height = 700, 600  # more than one inflate step of output
    data = png(width, height, rows(width, height))
    assert images._checked_png(data) is not None


@pytest.mark.parametrize(
    "damage",
    [
        "missing row",
        "extra row",
        "bad filter byte",
        "truncated stream",
        "bytes after the stream",
    ],
)
def test_damaged_image_data_is_left_to_pillow_which_refuses_it(damage: str) -> None:
    width, height = 32, 24
    body = rows(width, height)
    stride = 1 + width * 3
    if damage == "missing row":
        data = png(width, height, body[:-stride])
    elif damage == "extra row":
        data = png(width, height, body + body[:stride])
    elif damage == "bad filter byte":
        data = png(width, height, body[: 5 * stride] + b"\x09" + body[5 * stride + 1 :])
    else:
        header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
        stream = zlib.compress(body)
        stream = stream[:-40] if damage == "truncated stream" else stream + b"more"
        data = SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", stream) + chunk(b"IEND", b"")
    assert images._checked_png(data) is None
    if damage in ("bad filter byte", "truncated stream"):
        with pytest.raises(InvalidImage):
            images.clean(data)
    else:
        # Pillow reads what it needs (a short stream leaves the last row blank): the image is
        # decoded and re-encoded, never passed on as sent.
        cleaned = images.clean(data)
        assert cleaned.data != data and (cleaned.width, cleaned.height) == (width, height)


def test_a_bad_crc_is_left_to_pillow() -> None:
    data = bytearray(png(8, 8, rows(8, 8)))
    data[-20] ^= 0xFF  # inside the last IDAT chunk's data
    assert images._checked_png(bytes(data)) is None


def test_interlaced_and_other_depths_take_the_full_decode() -> None:
    assert images._checked_png(png(8, 8, rows(8, 8), interlace=1)) is None
    grey = io.BytesIO()
    Image.linear_gradient("L").resize((24, 16)).save(grey, format="PNG")
    assert images._checked_png(grey.getvalue()) is None
    assert images.clean(grey.getvalue()).width == 24
