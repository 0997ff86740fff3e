"""Decoding pictures from untrusted bytes, safely, with Pillow.

Every failure is an `ImageError` whose message is meant for the person who sent the picture.
SVG files raise `UnsupportedImage` (a kind of `ImageError`): they are skipped, not failed.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

logger = logging.getLogger(__name__)

# Pillow's own default: about 0.25 GB once decoded to RGB.
DEFAULT_MAX_PIXELS = 89_478_485

# Formats browsers show; Pillow's other decoders are attack surface Chirp does not need.
FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "AVIF", "BMP")

THUMBNAIL_CONTENT_TYPE = "image/jpeg"
THUMBNAIL_QUALITY = 80

NOT_A_PICTURE = "The file is not a picture Chirp can read."
EMPTY = "The file is empty."
TRUNCATED = "The picture is cut off (truncated download?)."
DAMAGED = "The picture is damaged and cannot be opened."
SVG_SKIPPED = "SVG images are skipped."


class ImageError(Exception):
    """The bytes cannot be used as a picture; the message says why, for people."""


class UnsupportedImage(ImageError):
    """A kind of file Chirp skips on purpose (SVG)."""


@dataclass(frozen=True)
class DecodedImage:
    sha256: str
    width: int
    height: int
    format: str
    size: int
    image: Image.Image
    """RGB, upright (EXIF orientation applied), fully loaded; the first frame if animated."""


def decode_image(data: bytes, *, max_pixels: int | None = None) -> DecodedImage:
    """Decode `data` fully, or raise `ImageError`.

    `max_pixels` defaults to the CHIRP_IMAGE_MAX_PIXELS setting. The size is checked from the
    header, before any pixel is decoded.
    """
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # Pillow would then pad cut-off downloads with grey and call them fine.
        raise ImproperlyConfigured(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is enabled; Chirp needs it off "
            "to reject truncated pictures."
        )
    if max_pixels is None:
        max_pixels = getattr(settings, "CHIRP_IMAGE_MAX_PIXELS", DEFAULT_MAX_PIXELS)
    if not data:
        raise ImageError(EMPTY)
    if _looks_like_svg(data):
        raise UnsupportedImage(SVG_SKIPPED)

    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError:
        raise ImageError(NOT_A_PICTURE) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own limit (twice MAX_IMAGE_PIXELS) is hit before ours when ours is higher.
        raise ImageError(_too_large(exc, max_pixels)) from None
    except Exception as exc:
        logger.debug("Pillow could not open the picture", exc_info=True)
        raise ImageError(_read_failure(exc)) from None

    with image:
        # Pillow calls the JPEG files of many phone cameras MPO (several pictures in one).
        format_name = "JPEG" if image.format == "MPO" else image.format
        pixels = image.width * image.height
        if pixels > max_pixels:
            raise ImageError(_too_large_message(pixels, max_pixels))
        try:
            # Pillow's decoders raise many kinds of exception on hostile input; each one means
            # the file cannot be read.
            image.load()
            upright = ImageOps.exif_transpose(image)
            rgb = _to_rgb(upright)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageError(_too_large(exc, max_pixels)) from None
        except Exception as exc:
            logger.debug("Pillow could not decode the picture", exc_info=True)
            raise ImageError(_read_failure(exc)) from None

    return DecodedImage(
        sha256=hashlib.sha256(data).hexdigest(),
        width=rgb.width,
        height=rgb.height,
        format=format_name or "",
        size=len(data),
        image=rgb,
    )


def make_thumbnail(image: Image.Image, max_side: int = 320) -> bytes:
    """JPEG bytes of `image` shrunk to fit in a `max_side` square (never enlarged)."""
    thumbnail = _to_rgb(image) if image.mode != "RGB" else image.copy()
    thumbnail.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    thumbnail.save(out, format="JPEG", quality=THUMBNAIL_QUALITY, optimize=True)
    return out.getvalue()


def _looks_like_svg(data: bytes) -> bool:
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<svg"):
        return True
    # An SVG may open with an XML declaration, comments or a doctype before its root element.
    return head.startswith((b"<?xml", b"<!--", b"<!doctype svg")) and b"<svg" in head


def _to_rgb(image: Image.Image) -> Image.Image:
    """Flatten onto white: a transparent logo should not turn black in a thumbnail."""
    if image.mode == "RGB":
        return image
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if not has_alpha:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _read_failure(exc: Exception) -> str:
    if "truncated" in str(exc).lower() or isinstance(exc, EOFError):
        return TRUNCATED
    return DAMAGED


def _too_large(exc: Exception, max_pixels: int) -> str:
    # Pillow's message reads "Image size (N pixels) exceeds limit of ...".
    found = re.search(r"\d+", str(exc))
    return _too_large_message(int(found[0]) if found else 0, max_pixels)


def _too_large_message(pixels: int, max_pixels: int) -> str:
    if not pixels:
        return "The picture is too large to open safely."
    return (
        f"The picture is too large to open safely ({pixels / 1e6:.1f} megapixels; "
        f"the limit is {max_pixels / 1e6:.1f})."
    )
