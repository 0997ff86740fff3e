"""Channel avatars, banners and video thumbnails, kept by Chirp.

Pages never load a picture from YouTube: that would tell YouTube who looks at what, and show a
broken image offline. Each picture is fetched once during an import (through the YouTube session,
so each request waits its turn at the limiter and tests reach the fake YouTube), checked and
re-encoded by Pillow (uploads.images: a hostile or broken file never reaches a browser), and
stored once by content in Django's default storage (local folder or S3, whichever is set).

A picture that cannot be had is logged and left out: the page shows a placeholder, and the
video or the listing goes on. Only a 429 is raised (as a YouTubeError), so that the limiter
slows down as it does for every other request.
"""

from __future__ import annotations

import hashlib
import logging
from urllib.parse import urlsplit

import requests
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from imports.youtube import Reason, YouTubeError
from uploads.images import ImageError, decode_image, make_thumbnail

logger = logging.getLogger(__name__)

FOLDER = "artwork"
# Longest side once re-encoded: what the pages show, at twice their CSS size.
AVATAR_SIDE = 176
BANNER_SIDE = 1280
THUMBNAIL_SIDE = 480
# YouTube's largest thumbnails (maxresdefault, 1280 x 720) weigh a few hundred kilobytes.
MAX_BYTES = 4 * 1024 * 1024
MAX_PIXELS = 16_000_000
# Where YouTube keeps its pictures: nothing else is fetched, whatever a page claims.
HOSTS = ("ytimg.com", "ggpht.com", "googleusercontent.com")


class Unavailable(Exception):
    """The picture cannot be had (not found, not a picture, too large...)."""


def fetch(session: requests.Session, url: str | None, max_side: int) -> str | None:
    """The storage name of the picture at `url`, fetched, re-encoded as a JPEG at most
    `max_side` pixels wide or high, and stored (once: the same picture is stored once whoever
    has it). None when there is none to be had; a 429 raises YouTubeError(RATE_LIMITED)."""
    if not url:
        return None
    try:
        data = _download(session, url)
        decoded = decode_image(data, max_pixels=MAX_PIXELS)
    except (Unavailable, ImageError) as exc:
        logger.info("No artwork from %s: %s", url, exc)
        return None
    try:
        return store(make_thumbnail(decoded.image, max_side))
    except Exception:  # the storage refused (disk full, a bucket gone): never fails the import
        logger.warning("Artwork from %s could not be stored", url, exc_info=True)
        return None


def name_for(digest: str) -> str:
    """The storage name of the picture whose (re-encoded) bytes have this SHA-256."""
    return f"{FOLDER}/{digest[:2]}/{digest}.jpg"


def digest_of(name: str) -> str:
    return name.rsplit("/", 1)[-1].removesuffix(".jpg")


def store(jpeg: bytes) -> str:
    """Save `jpeg` under its SHA-256 (if it is not stored yet); its storage name."""
    name = name_for(hashlib.sha256(jpeg).hexdigest())
    if not default_storage.exists(name):
        saved = default_storage.save(name, ContentFile(jpeg))
        if saved != name:  # stored meanwhile by another worker: the storage chose another name
            default_storage.delete(saved)
    return name


def _download(session: requests.Session, url: str) -> bytes:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or not any(host == h or host.endswith("." + h) for h in HOSTS):
        raise Unavailable("not one of YouTube's image hosts")
    try:
        with session.get(url, stream=True) as response:
            if response.status_code == 429:
                raise YouTubeError(Reason.RATE_LIMITED, f"HTTP 429 for {url}")
            if response.status_code != 200:
                raise Unavailable(f"HTTP {response.status_code}")
            chunks, size = [], 0
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > MAX_BYTES:
                    raise Unavailable(f"larger than {MAX_BYTES} bytes")
                chunks.append(chunk)
    except requests.RequestException as exc:
        raise Unavailable(f"{exc.__class__.__name__}: {exc}") from None
    return b"".join(chunks)
