"""A scrape job's work: find a page's images, then turn each one into an Image, or a skip.

An image already known by its URL is skipped before it is fetched; one whose bytes are known
under another URL is skipped before detection. Both are linked to the existing Image, and
the job's owner now sees it (a Sighting); a skip's reason never names another user's URL.
Every failure becomes the item's readable error (ItemError); the engine never sees a crash.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Q

from chirp.jobs import ItemError, ItemSkipped, JobError
from uploads.faces import Face, detect_faces
from uploads.fetching import FetchError, fetch_image, fetch_page
from uploads.images import DecodedImage, ImageError, UnsupportedImage, decode_image, make_thumbnail
from uploads.models import DetectedFace, Image, ScrapeJob, ScrapeJobItem, Sighting
from uploads.scraping import DiscoveredImages, find_images

if TYPE_CHECKING:
    from chirp.engine import RunContext

logger = logging.getLogger(__name__)

ALREADY_KNOWN = "Already in the gallery."
SAME_PICTURE = "The same picture as one already in the gallery."


def discover(page_url: str) -> DiscoveredImages:
    """The images the page shows (capped), or JobError with a reason for the user."""
    try:
        page = fetch_page(page_url)
    except FetchError as exc:
        raise JobError(f"The page could not be fetched: {exc}.") from None
    found = find_images(page.body, page.url, encoding=page.charset)
    if not found.urls:
        raise JobError("No images were found on this page.")
    return found


def prepare(job: ScrapeJob, ctx: RunContext) -> list[ScrapeJobItem]:
    """The page's images, one unsaved item each (the engine saves them)."""
    ctx.set_step("Fetching the page")
    discovered = discover(job.url)
    job.record_page(ctx, discovered.total_found, discovered.title)
    return [ScrapeJobItem(source_url=url) for url in discovered.urls]


def process(job: ScrapeJob, item: ScrapeJobItem, ctx: RunContext | None = None) -> None:
    known = Image.objects.filter(source_url=item.source_url).first()
    if known is not None:
        _skip_known(job, item, known, ALREADY_KNOWN)
        return
    try:
        fetched = fetch_image(item.source_url)
        decoded = decode_image(fetched.body)
    except UnsupportedImage as exc:
        raise ItemSkipped(str(exc)) from None
    except (FetchError, ImageError) as exc:
        raise ItemError(str(exc)) from None
    known = Image.objects.filter(sha256=decoded.sha256).first()
    if known is not None:
        _skip_known(job, item, known, _same_picture_reason(job, item, known))
        return
    faces = detect_faces(decoded.image)
    thumbnail = make_thumbnail(decoded.image, settings.CHIRP_THUMBNAIL_SIZE)
    _record(job, item, decoded, faces, thumbnail)


def _record(
    job: ScrapeJob,
    item: ScrapeJobItem,
    decoded: DecodedImage,
    faces: list[Face],
    thumbnail: bytes,
) -> None:
    """Save the Image, its faces and the item's completion together, or none of them."""
    image = Image(
        source_url=item.source_url,
        sha256=decoded.sha256,
        width=decoded.width,
        height=decoded.height,
        format=decoded.format,
        byte_size=decoded.size,
        face_count=len(faces),
        found_on=job.url,
    )
    image.thumbnail.save("thumbnail.jpg", ContentFile(thumbnail), save=False)
    try:
        with transaction.atomic():
            image.save()
            DetectedFace.objects.bulk_create(
                DetectedFace(image=image, x=f.x, y=f.y, w=f.w, h=f.h, confidence=f.confidence)
                for f in faces
            )
            Sighting.record(job.owner_id, image, item.source_url, job.url)
            item.complete(image=image)
    except Exception as exc:
        image.thumbnail.delete(save=False)
        if not isinstance(exc, IntegrityError):
            raise
        # Another thread or worker recorded the same URL or picture meanwhile.
        known = Image.objects.filter(
            Q(source_url=item.source_url) | Q(sha256=decoded.sha256)
        ).first()
        if known is None:
            raise
        _skip_known(job, item, known, ALREADY_KNOWN)


def _same_picture_reason(job: ScrapeJob, item: ScrapeJobItem, known: Image) -> str:
    """Name the other URL only if this user's own jobs found the picture there: the first
    finder may be someone else, whose URLs (query strings, tokens) are theirs alone."""
    own_url = (
        Sighting.objects.filter(owner=job.owner_id, image=known)
        .exclude(source_url=item.source_url)
        .values_list("source_url", flat=True)
        .first()
    )
    return f"The same picture as {own_url}" if own_url else SAME_PICTURE


def _skip_known(job: ScrapeJob, item: ScrapeJobItem, known: Image, reason: str) -> None:
    """Skip an item whose picture is already in the catalogue: it is not fetched or detected
    again, and from now on the job's owner sees it too."""
    with transaction.atomic():
        Sighting.record(job.owner_id, known, item.source_url, job.url)
        item.skip(reason, image=known)
