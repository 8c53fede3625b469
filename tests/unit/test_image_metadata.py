"""Result images lose every piece of metadata and keep their pixels exactly (no re-encode where
none is needed); anything unusual is still decoded and re-encoded."""

from __future__ import annotations

import io

from PIL import Image, PngImagePlugin

from bot.media import images

GPS = "48.8584 N, 2.2945 E (home of the requester)"


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


def test_a_png_keeps_its_pixels_and_loses_text_and_exif_chunks() -> None:
    source = photo("RGBA")
    info = PngImagePlugin.PngInfo()
    info.add_text("Location", GPS)
    info.add_itxt("Prompt", "a secret prompt", zip=True)
    raw = io.BytesIO()
    source.save(raw, format="PNG", pnginfo=info, exif=exif_with_gps(), dpi=(300, 300))
    assert GPS.encode() in raw.getvalue()

    cleaned = images.clean(raw.getvalue())

    assert cleaned.content_type == "image/png" and cleaned.extension == "png"
    for marker in (GPS.encode(), b"tEXt", b"iTXt", b"eXIf", b"pHYs", b"CameraMaker"):
        assert marker not in cleaned.data
    with Image.open(io.BytesIO(cleaned.data)) as out:
        assert out.mode == "RGBA" and out.size == source.size
        assert out.tobytes() == source.tobytes()
        assert not out.info.get("Location") and not out.getexif()


def test_a_jpeg_stays_the_same_jpeg_without_exif_or_comments() -> None:
    raw = io.BytesIO()
    photo().save(
        raw, format="JPEG", quality=90, exif=exif_with_gps(), comment=b"shot at " + GPS.encode()
    )
    with Image.open(io.BytesIO(raw.getvalue())) as original:
        pixels = original.tobytes()

    cleaned = images.clean(raw.getvalue())

    assert cleaned.content_type == "image/jpeg" and cleaned.extension == "jpg"
    assert GPS.encode() not in cleaned.data and b"Exif" not in cleaned.data
    with Image.open(io.BytesIO(cleaned.data)) as out:
        assert out.tobytes() == pixels  # not re-encoded: no quality lost
        assert not out.getexif() and "comment" not in out.info


def test_a_progressive_jpeg_keeps_every_scan() -> None:
    raw = io.BytesIO()
    photo(size=(160, 120)).save(raw, format="JPEG", progressive=True, exif=exif_with_gps())
    with Image.open(io.BytesIO(raw.getvalue())) as original:
        pixels = original.tobytes()
    cleaned = images.clean(raw.getvalue())
    assert GPS.encode() not in cleaned.data
    with Image.open(io.BytesIO(cleaned.data)) as out:
        assert out.tobytes() == pixels


def test_other_modes_are_still_decoded_and_re_encoded() -> None:
    raw = io.BytesIO()
    photo("L").save(raw, format="PNG", pnginfo=_text_info())
    cleaned = images.clean(raw.getvalue())
    assert GPS.encode() not in cleaned.data
    with Image.open(io.BytesIO(cleaned.data)) as out:
        assert out.mode == "RGB"


def test_an_image_over_the_upload_limit_is_re_encoded_to_fit() -> None:
    raw = io.BytesIO()
    photo(size=(400, 300)).save(raw, format="PNG", pnginfo=_text_info())
    limit = len(raw.getvalue()) // 3
    cleaned = images.clean(raw.getvalue(), max_bytes=limit)
    assert len(cleaned.data) <= limit
    assert GPS.encode() not in cleaned.data


def _text_info() -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_text("Location", GPS)
    return info
