"""Channel avatars, banners and video thumbnails, kept by Chirp.

Pages never load a picture from YouTube: that would tell YouTube who looks at what, and show a
broken image offline. Each picture is fetched once during an import (through the YouTube session,
so each request waits its turn at the limiter and tests reach the fake YouTube), checked and
re-encoded by Pillow (uploads.images: a hostile or broken file never reaches a browser), and
stored once by content in Django's default storage (local folder or S3, whichever is set).

A picture that cannot be had is logged and left out: the page shows a placeholder, and the
video or the listing goes on. Only a 429 is raised (as a YouTubeError), so that the limiter
slows down as it does for every other request.

Videos and channels imported before Chirp kept artwork have none: `backfill` fetches what is
missing, a bounded batch at a time, every request through the shared limiter, for the channels
someone sees (the "Fetch missing artwork" schedule every 10 minutes, CHIRP_ARTWORK_BACKFILL_BATCH
pictures a run; `manage.py fetch_artwork [--channel ID]` for all at once). Each one is tried
once, then again after RETRY_AFTER if it could not be had. A picture it stores replaces its
placeholder live on the pages open (`_show`), as an import's card changes do.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db.models import F, Q
from django.utils import timezone

from chirp import live
from imports.youtube import Reason, YouTubeError
from uploads.images import ImageError, decode_image, make_thumbnail

if TYPE_CHECKING:
    from imports.limiter import Pause

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
# A picture the backfill could not have is asked for again this much later (it may be back).
RETRY_AFTER = timedelta(days=7)


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


# -- backfill ------------------------------------------------------------------------------------


@dataclass
class Backfill:
    """What a backfill run did: pictures stored by kind ("thumbnail", "avatar", "banner"), those
    YouTube did not have, and the pause that stopped it (YouTube asked Chirp to wait)."""

    stored: Counter[str] = field(default_factory=Counter)
    missing: int = 0
    pause: Pause | None = None

    @property
    def tried(self) -> int:
        return sum(self.stored.values()) + self.missing

    def __str__(self) -> str:
        kinds = ", ".join(f"{n} {kind}{'s' if n != 1 else ''}" for kind, n in self.stored.items())
        words = f"Stored {kinds}" if kinds else "Stored no picture"
        if self.missing:
            words += f"; {self.missing} could not be had"
        if self.pause is not None:
            words += f". {self.pause.message}"
        return words + "."


@dataclass(frozen=True)
class _Wanted:
    model: Any  # Channel or Video
    pk: int
    kind: str  # the field: avatar, banner or thumbnail
    url: str


_SIDES = {"avatar": AVATAR_SIDE, "banner": BANNER_SIDE, "thumbnail": THUMBNAIL_SIDE}


def backfill(
    limit: int,
    *,
    channel_id: int | None = None,
    tried_before: datetime | None = None,
    on_stored: Callable[[Backfill], None] | None = None,
) -> Backfill:
    """Fetch and store up to `limit` missing pictures (channels' avatars and banners first, then
    videos' thumbnails; of `channel_id` only, when given) of the channels someone sees, not
    tried since `tried_before` (default: RETRY_AFTER ago). Every request waits its turn at the
    shared limiter; a 429 slows it down and pauses it, and a pause ends the run (`pause`)."""
    from imports.limiter import Limiter, YouTubePaused
    from imports.youtube import new_http_session

    report = Backfill()
    tried_before = tried_before or timezone.now() - RETRY_AFTER
    with Limiter() as limiter:
        report.pause = limiter.current_pause()
        if report.pause is not None:
            return report
        session = new_http_session(gate=limiter.wait_turn, timeout=settings.CHIRP_YOUTUBE_TIMEOUT)
        with session:
            for wanted in _missing(limit, channel_id, tried_before):
                try:
                    name = fetch(session, wanted.url, _SIDES[wanted.kind])
                except YouTubeError as exc:  # a 429: slow down, pause, and stop here
                    report.pause = limiter.throttled(exc.reason)
                    break
                except YouTubePaused as paused:
                    report.pause = paused.pause
                    break
                if _record(wanted, name):
                    _show(wanted)
                if name:
                    limiter.succeeded()
                    report.stored[wanted.kind] += 1
                else:
                    report.missing += 1
                if on_stored is not None:
                    on_stored(report)
    return report


def _missing(limit: int, channel_id: int | None, tried_before: datetime) -> Iterator[_Wanted]:
    """Up to `limit` missing pictures: each with the URL YouTube gave (a video's default
    thumbnail when Chirp never had one)."""
    from imports.models import Channel, Video

    channels = Channel.objects.seen_by_someone()
    if channel_id is not None:
        channels = channels.filter(pk=channel_id)
    not_lately = Q(artwork_tried__isnull=True) | Q(artwork_tried__lt=tried_before)
    oldest_try_first = (F("artwork_tried").asc(nulls_first=True), "pk")
    left = limit
    pictures = (Q(avatar="") & ~Q(avatar_url="")) | (Q(banner="") & ~Q(banner_url=""))
    rows = channels.filter(pictures).filter(not_lately).order_by(*oldest_try_first)
    for row in rows.values("pk", "avatar", "avatar_url", "banner", "banner_url")[:left]:
        for kind in ("avatar", "banner"):
            if not row[kind] and row[f"{kind}_url"] and left > 0:
                left -= 1
                yield _Wanted(Channel, row["pk"], kind, row[f"{kind}_url"])
    if left <= 0:
        return
    videos = (
        Video.objects.filter(channel__in=channels.values("pk"), thumbnail="")
        .filter(stage__in=[Video.Stage.COMPLETE, Video.Stage.ERROR])  # not while importing
        .filter(not_lately)
        .order_by(*oldest_try_first)
    )
    for row in videos.values("pk", "youtube_id", "thumbnail_url")[:left]:
        url = row["thumbnail_url"] or f"https://i.ytimg.com/vi/{row['youtube_id']}/hqdefault.jpg"
        yield _Wanted(Video, row["pk"], "thumbnail", url)


def _record(wanted: _Wanted, name: str | None) -> bool:
    """The picture stored (if it was had), and that it was tried: not asked for again before
    RETRY_AFTER. A picture stored meanwhile (an import) is kept. Whether this one was."""
    model = wanted.model
    now = timezone.now()
    model.objects.filter(pk=wanted.pk).update(artwork_tried=now)
    if not name:
        return False
    return bool(
        model.objects.filter(pk=wanted.pk, **{wanted.kind: ""}).update(**{wanted.kind: name})
    )


def _show(wanted: _Wanted) -> None:
    """A picture just stored, in place of its placeholder on the pages open now, for everyone
    who sees the channel (as an import's card changes are): a thumbnail's video card; an
    avatar's or banner's channel page header and row in the channel list. Never raises: a lost
    live update is a reload away."""
    from imports.models import Channel, Video

    try:
        if wanted.model is Video:
            video = Video.objects.for_cards().filter(pk=wanted.pk).first()
            if video is not None:
                video.publish_to(*Channel.viewer_ids(video.channel_id))
            return
        channel = Channel.objects.filter(pk=wanted.pk).first()
        if channel is None:
            return
        header = channel.artwork_fragments()
        for user_id in Channel.viewer_ids(channel.pk):
            row = channel.row_fragment(user_id)
            live.publish(user_id, header + ([row] if row else []))
    except Exception:
        logger.exception(
            "Could not show the %s stored for %s %s", wanted.kind, wanted.model.__name__, wanted.pk
        )
