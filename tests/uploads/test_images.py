from __future__ import annotations

import hashlib
import io
import random
import struct
import zlib

import pytest
from django.core.exceptions import ImproperlyConfigured
from PIL import Image, ImageFile

from uploads.images import ImageError, UnsupportedImage, decode_image, make_thumbnail

RED = (255, 0, 0)
BLUE = (0, 0, 255)


def _encode(image: Image.Image, format: str, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=format, **params)
    return out.getvalue()


def _photo(size: tuple[int, int] = (60, 40)) -> Image.Image:
    """Blue, with a red band down its left side."""
    image = Image.new("RGB", size, BLUE)
    image.paste(RED, (0, 0, size[0] // 4, size[1]))
    return image


def _png_header(width: int, height: int) -> bytes:
    """A tiny PNG that declares `width` by `height` pixels: a decompression bomb's header."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def _is_close(pixel: tuple[int, ...], colour: tuple[int, int, int]) -> bool:
    return all(abs(a - b) < 40 for a, b in zip(pixel, colour, strict=True))


def test_decodes_a_jpeg() -> None:
    data = _encode(_photo(), "JPEG")

    decoded = decode_image(data)

    assert (decoded.width, decoded.height) == (60, 40)
    assert decoded.format == "JPEG"
    assert decoded.size == len(data)
    assert decoded.sha256 == hashlib.sha256(data).hexdigest()
    assert decoded.image.mode == "RGB"
    assert decoded.image.size == (60, 40)


@pytest.mark.parametrize("format", ["PNG", "GIF", "WEBP", "BMP"])
def test_decodes_the_formats_browsers_show(format: str) -> None:
    decoded = decode_image(_encode(_photo(), format))

    assert (decoded.format, decoded.width, decoded.height) == (format, 60, 40)
    assert _is_close(decoded.image.getpixel((2, 20)), RED)


def test_identical_bytes_have_the_same_sha256() -> None:
    data = _encode(_photo(), "PNG")
    other = _encode(_photo((61, 40)), "PNG")

    assert decode_image(data).sha256 == decode_image(bytes(data)).sha256
    assert decode_image(data).sha256 != decode_image(other).sha256


def test_applies_exif_orientation() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was turned; show rotated 90° clockwise.
    data = _encode(_photo((60, 40)), "JPEG", exif=exif)

    decoded = decode_image(data)

    assert (decoded.width, decoded.height) == (40, 60)
    assert decoded.image.size == (40, 60)
    # The red band on the stored picture's left is on top once upright.
    assert _is_close(decoded.image.getpixel((20, 2)), RED)
    assert _is_close(decoded.image.getpixel((20, 58)), BLUE)


def test_rejects_a_picture_larger_than_the_setting(settings) -> None:
    settings.CHIRP_IMAGE_MAX_PIXELS = 1_000_000

    with pytest.raises(ImageError) as caught:
        decode_image(_png_header(2000, 1000))

    assert str(caught.value) == (
        "The picture is too large to open safely (2.0 megapixels; the limit is 1.0)."
    )


def test_rejects_a_decompression_bomb_beyond_pillows_own_limit() -> None:
    data = _png_header(20_000, 20_000)
    assert len(data) < 100

    with pytest.raises(ImageError, match=r"too large to open safely \(400\.0 megapixels"):
        decode_image(data, max_pixels=10**12)


def test_accepts_a_picture_at_the_limit() -> None:
    data = _encode(_photo((100, 100)), "PNG")

    assert decode_image(data, max_pixels=10_000).width == 100


def test_rejects_a_truncated_jpeg() -> None:
    data = _encode(_photo((300, 200)), "JPEG")

    with pytest.raises(ImageError) as caught:
        decode_image(data[: len(data) // 2])

    assert str(caught.value) == "The picture is cut off (truncated download?)."


def test_truncated_pictures_are_never_padded(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)

    with pytest.raises(ImproperlyConfigured, match="LOAD_TRUNCATED_IMAGES"):
        decode_image(_encode(_photo(), "JPEG"))


@pytest.mark.parametrize(
    "data",
    [
        random.Random(7).randbytes(4096),
        b"<!DOCTYPE html><html><head><title>Not found</title></head><body></body></html>",
        b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
    ],
    ids=["random bytes", "html", "pdf"],
)
def test_rejects_what_is_not_a_picture(data: bytes) -> None:
    with pytest.raises(ImageError) as caught:
        decode_image(data)

    assert str(caught.value) == "The file is not a picture Chirp can read."
    assert not isinstance(caught.value, UnsupportedImage)


def test_rejects_formats_pillow_reads_but_browsers_do_not_show() -> None:
    data = _encode(_photo(), "PCX")
    assert Image.open(io.BytesIO(data)).format == "PCX"

    with pytest.raises(ImageError, match="not a picture Chirp can read"):
        decode_image(data)


def test_rejects_empty_bytes() -> None:
    with pytest.raises(ImageError, match=r"^The file is empty\.$"):
        decode_image(b"")


@pytest.mark.parametrize(
    "data",
    [
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>',
        b'\xef\xbb\xbf<?xml version="1.0"?>\n<!-- logo -->\n'
        b'<svg xmlns="http://www.w3.org/2000/svg"><rect width="5" height="5"/></svg>',
    ],
    ids=["bare", "with xml declaration"],
)
def test_skips_svg(data: bytes) -> None:
    with pytest.raises(UnsupportedImage) as caught:
        decode_image(data)

    assert str(caught.value) == "SVG images are skipped."


def test_uses_the_first_frame_of_an_animated_gif() -> None:
    frames = [Image.new("RGB", (30, 20), colour) for colour in (RED, (0, 255, 0), BLUE)]
    data = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(io.BytesIO(data)).n_frames == 3

    decoded = decode_image(data)

    assert (decoded.format, decoded.width, decoded.height) == ("GIF", 30, 20)
    assert decoded.image.mode == "RGB"
    assert _is_close(decoded.image.getpixel((15, 10)), RED)


def test_transparent_pixels_turn_white() -> None:
    image = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    image.paste((255, 0, 0, 255), (0, 0, 10, 20))

    decoded = decode_image(_encode(image, "PNG"))

    assert decoded.image.mode == "RGB"
    assert decoded.image.getpixel((15, 10)) == (255, 255, 255)
    assert decoded.image.getpixel((5, 10)) == RED


def test_thumbnail_fits_the_longest_side() -> None:
    thumbnail = Image.open(io.BytesIO(make_thumbnail(_photo((1000, 500)))))

    assert thumbnail.format == "JPEG"
    assert thumbnail.size == (320, 160)


def test_thumbnail_of_a_small_picture_keeps_its_size() -> None:
    thumbnail = Image.open(io.BytesIO(make_thumbnail(_photo((100, 50)), max_side=320)))

    assert thumbnail.size == (100, 50)


def test_thumbnail_of_a_decoded_picture_is_upright() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    decoded = decode_image(_encode(_photo((600, 400)), "JPEG", exif=exif))

    thumbnail = Image.open(io.BytesIO(make_thumbnail(decoded.image, max_side=120)))

    assert thumbnail.size == (80, 120)
