"""Scenarios 28-29: bombs, huge sizes, animations, formats off the list and disguised files are
refused with bounded memory; metadata never survives; fitting to a limit keeps the aspect ratio.
Every image is made here, in the test."""

from __future__ import annotations

import io
import json
import random
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from bot.domain.errors import InvalidImage
from bot.media import images

GPS_MARK = "Secret Street 12"


def _save(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def _noise(width: int, height: int, seed: int = 1) -> Image.Image:
    return Image.frombytes(
        "RGB", (width, height), random.Random(seed).randbytes(width * height * 3)
    )


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_claiming(width: int, height: int, rows: int = 0, mode: int = 2) -> bytes:
    """A valid PNG header for ``width`` x ``height``; ``rows`` rows of zeros actually compressed
    (a decompression bomb when rows is large)."""
    channels = {0: 1, 2: 3}[mode]
    ihdr = struct.pack(">IIBBBBB", width, height, 8, mode, 0, 0, 0)
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + width * channels)
    idat = b"".join(compressor.compress(row) for _ in range(rows)) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header is rewritten to claim another size."""
    data = bytearray(_save(Image.new("RGB", (16, 16), (9, 9, 9)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def _label(value: object) -> str:
    return value if isinstance(value, str) else "data"


# Scenario 28 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("png 100000x100000", png_claiming(100_000, 100_000, rows=1)),
        ("png 65535x65535 gray", png_claiming(65_535, 65_535, rows=1, mode=0)),
        ("png 20000x10", png_claiming(20_000, 10, rows=10)),
        ("png 7000x7000 (49 MP)", png_claiming(7000, 7000, rows=1)),
        ("jpeg 65000x65000", jpeg_claiming(65_000, 65_000)),
        ("jpeg 9000x100", jpeg_claiming(9000, 100)),
        ("png 0x0", png_claiming(0, 0)),
    ],
    ids=_label,
)
def test_huge_dimensions_are_refused_from_the_header(name: str, data: bytes) -> None:
    with pytest.raises(InvalidImage):
        images.clean(data)


def test_bombs_are_refused_with_bounded_memory(tmp_path: Path) -> None:
    """Real zlib bombs (hundreds of MB once decoded), checked in a fresh process whose peak
    memory must stay far below what decoding any of them would take."""
    bombs = {
        # 49 MP of RGB: 147 MB decoded, over the pixel cap but under Pillow's own bomb limit.
        "rgb_7000": png_claiming(7000, 7000, rows=7000),
        # 100 MP gray: over Pillow's warning threshold.
        "gray_10000": png_claiming(10_000, 10_000, rows=10_000, mode=0),
        "jpeg_claim": jpeg_claiming(60_000, 60_000),
    }
    for name, data in bombs.items():
        assert len(data) < 1_000_000, name  # small files...
        (tmp_path / f"{name}.bin").write_bytes(data)
    script = """
import json, sys
from pathlib import Path
from bot.media import images
from bot.domain.errors import InvalidImage
results = {}
for path in sorted(Path(sys.argv[1]).glob("*.bin")):
    try:
        images.clean(path.read_bytes())
        results[path.stem] = "accepted"
    except InvalidImage as exc:
        results[path.stem] = str(exc)
# VmHWM is this process's own peak (ru_maxrss would carry the parent's peak across exec).
status = Path("/proc/self/status").read_text()
hwm_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
results["peak_mb"] = hwm_kb / 1024
print(json.dumps(results))
"""
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=Path(images.__file__).parent.parent,
    )
    results = json.loads(done.stdout)
    for name in bombs:
        assert results[name] != "accepted", name
    # ...that would need 147 MB or more each if decoded.
    assert results["peak_mb"] < 120, results


def test_many_frame_gifs_are_refused() -> None:
    frames = [Image.new("P", (16, 16), i % 256) for i in range(1500)]
    data = _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=10)
    with pytest.raises(InvalidImage, match="only PNG, JPEG and WEBP"):
        images.clean(data)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_animated_png_and_webp_are_refused(fmt: str) -> None:
    frames = [Image.new("RGB", (32, 32), (i * 40, 0, 0)) for i in range(5)]
    data = _save(frames[0], fmt, save_all=True, append_images=frames[1:], duration=50)
    with pytest.raises(InvalidImage, match="animated"):
        images.clean(data)


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF", "ICO", "PPM", "TGA", "PCX", "DDS"])
def test_formats_off_the_allow_list_are_refused(fmt: str) -> None:
    data = _save(Image.new("RGB", (32, 32), (1, 2, 3)), fmt)
    with pytest.raises(InvalidImage):
        images.clean(data)
    with pytest.raises(InvalidImage):
        images.inspect(data)


@pytest.mark.parametrize(("fmt", "out_fmt"), [("PNG", "PNG"), ("JPEG", "JPEG"), ("WEBP", "PNG")])
def test_allowed_formats_pass(fmt: str, out_fmt: str) -> None:
    source = Image.new("RGB", (40, 30), (200, 100, 50))
    clean = images.clean(_save(source, fmt))
    assert (clean.width, clean.height) == (40, 30)
    assert clean.content_type == f"image/{out_fmt.lower()}"
    with Image.open(io.BytesIO(clean.data)) as out:
        assert out.format == out_fmt
        assert out.size == (40, 30)


# Scenario 29: disguised files ----------------------------------------------------------------------


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("cat.png", _save(Image.new("RGB", (8, 8)), "PNG"))
    return out.getvalue()


def _truncated(fmt: str) -> bytes:
    data = _save(_noise(64, 64), fmt)
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("html", b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>"),
        ("svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
        ("zip", _zip()),
        ("png signature then garbage", b"\x89PNG\r\n\x1a\n" + random.Random(3).randbytes(4000)),
        ("jpeg signature then garbage", b"\xff\xd8\xff\xe0" + random.Random(4).randbytes(4000)),
        ("riff webp then garbage", b"RIFF\x00\x10\x00\x00WEBPVP8 " + bytes(100)),
        ("truncated png", _truncated("PNG")),
        ("truncated jpeg", _truncated("JPEG")),
        ("truncated webp", _truncated("WEBP")),
        ("eps", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"),
        ("pdf", b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF"),
        ("empty", b""),
    ],
    ids=_label,
)
def test_disguised_and_broken_files_are_refused(name: str, data: bytes) -> None:
    with pytest.raises(InvalidImage):
        images.clean(data)


def test_a_polyglot_loses_its_payload() -> None:
    """A real PNG with a ZIP appended: accepted as the image it is, without the appendix."""
    data = _save(Image.new("RGB", (20, 20), (5, 6, 7)), "PNG") + _zip()
    clean = images.clean(data)
    assert b"PK\x03\x04" not in clean.data
    assert b"cat.png" not in clean.data


# Scenario 29: metadata ---------------------------------------------------------------------------


def _exif_with_gps() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0131] = "SecretCam 1.0"  # Software
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0), 29: GPS_MARK}
    return exif


XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b"<rdf:Description>SecretXmpAuthor</rdf:Description></rdf:RDF></x:xmpmeta>"
)


def _with_metadata(fmt: str) -> bytes:
    image = _noise(64, 48)
    exif = _exif_with_gps()
    if fmt == "JPEG":
        return _save(image, "JPEG", exif=exif, xmp=XMP, comment=b"SecretComment", quality=95)
    if fmt == "WEBP":
        return _save(image, "WEBP", exif=exif, xmp=XMP, lossless=True)
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "SecretTextChunk")
    info.add_text("Comment", "SecretZtxt " * 50, zip=True)
    info.add_itxt("Description", "SecretItxt", lang="en")
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    return _save(image, "PNG", pnginfo=info, exif=exif)


def _assert_bare(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as out:
        assert not out.getexif(), out.getexif()
        leftover = set(out.info) - {"dpi", "jfif", "jfif_version", "jfif_unit", "jfif_density"}
        assert not leftover, out.info
        assert not getattr(out, "text", {})
    for secret in (b"Secret", b"PhoneMaker", GPS_MARK.encode(), b"Exif", b"xmpmeta"):
        assert secret not in data


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_metadata_is_stripped(fmt: str) -> None:
    source = _with_metadata(fmt)
    with Image.open(io.BytesIO(source)) as check:  # the source really carries it
        assert check.getexif().get(0x010F) == "PhoneMaker"
    assert b"Secret" in source or fmt == "PNG"
    clean = images.clean(source)
    _assert_bare(clean.data)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_metadata_is_stripped_when_fitted_to_a_limit(fmt: str) -> None:
    source = _with_metadata(fmt)
    clean = images.clean(source, max_bytes=4000)
    assert clean.content_type == "image/jpeg"
    assert len(clean.data) <= 4000
    _assert_bare(clean.data)


def test_fit_drops_metadata_an_image_still_carries() -> None:
    with Image.open(io.BytesIO(_with_metadata("JPEG"))) as opened:
        opened.load()
        fitted = images.fit(opened.copy(), None)
    _assert_bare(fitted.data)


def test_exif_orientation_is_applied_before_it_is_dropped() -> None:
    image = Image.new("RGB", (60, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    clean = images.clean(_save(image, "JPEG", exif=exif))
    assert (clean.width, clean.height) == (20, 60)
    _assert_bare(clean.data)


# Fitting to an upload limit ----------------------------------------------------------------------


@pytest.mark.parametrize(("width", "height"), [(1600, 900), (900, 1600), (1000, 1000), (2048, 512)])
def test_fitting_keeps_the_aspect_ratio(width: int, height: int) -> None:
    source = _save(_noise(width, height), "PNG")
    limit = 60_000
    clean = images.clean(source, max_bytes=limit)
    assert len(clean.data) <= limit
    assert clean.width < width  # noise cannot fit without shrinking
    assert abs(clean.width / clean.height - width / height) < 0.01 * (width / height)
    with Image.open(io.BytesIO(clean.data)) as out:
        assert out.size == (clean.width, clean.height)


def test_an_image_that_fits_is_not_resized() -> None:
    source = _save(Image.new("RGB", (1600, 900), (30, 60, 90)), "PNG")
    clean = images.clean(source, max_bytes=len(source) * 4)
    assert (clean.width, clean.height) == (1600, 900)


def test_transparent_images_fitted_as_jpeg_get_a_white_background() -> None:
    image = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
    noisy = _noise(100, 100).convert("RGBA")
    image.paste(noisy, (100, 50))
    clean = images.clean(_save(image, "PNG"), max_bytes=8000)
    assert clean.content_type == "image/jpeg"
    with Image.open(io.BytesIO(clean.data)) as out:
        corner = out.convert("RGB").getpixel((0, 0))
    assert isinstance(corner, tuple)
    assert min(corner) > 240


def test_an_impossible_limit_is_a_clear_refusal() -> None:
    with pytest.raises(InvalidImage, match="upload limit"):
        images.clean(_save(_noise(400, 400), "PNG"), max_bytes=200)
