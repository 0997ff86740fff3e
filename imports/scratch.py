"""The media downloads' scratch folder: sweeping the partial files nobody will resume.

CHIRP_MEDIA_SCRATCH_DIR holds, for each video and quality being downloaded or cut short, a
folder (`<video id>/<quality>/`: yt-dlp's `.part` and `.ytdl` files, fragments, streams not
merged yet, a merged file the storage refused) and the download's lock beside it
(`<video id>.<quality>.lock`), plus the link to ffmpeg (`.ffmpeg/`, left alone). A download that
is stored, or that fails for good, removes its own folder (imports/media.py). What is left
belongs either to a download that will go on, whose files are kept:

- an item queued or processing in an open import that asks for that quality (resumed when its
  turn comes, or when the import is resumed after a shutdown or a kill);
- an item that failed for a reason a retry can change (a storage error, the network): "Retry"
  continues the file;

or to nobody (its import was cancelled or deleted, its video deleted), and `sweep` removes it:
at once for the videos of an import that is cancelled (ImportJob.cancel) or deleted, and from
the worker whose download the cancel interrupted; and every hour (the "Sweep abandoned media
downloads" schedule) for anything older than CHIRP_MEDIA_SCRATCH_GRACE_HOURS, which catches
the rest (a video deleted with its channel, files of a folder Chirp never made). A download
running now holds its lock: its folder is never swept from under it.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from chirp.jobs import ItemStatus
from imports import media
from imports.models import ImportJob, ImportJobItem, Video

logger = logging.getLogger(__name__)

LOCK_SUFFIX = ".lock"


@dataclass(frozen=True)
class Entry:
    """What the scratch folder holds for one video at one quality: its folder, its lock, or
    both (a killed worker's lock stays behind it)."""

    youtube_id: str
    quality: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.youtube_id, self.quality)

    @property
    def folder(self) -> Path:
        return settings.CHIRP_MEDIA_SCRATCH_DIR / self.youtube_id / self.quality

    @property
    def lock(self) -> Path:
        return media.lock_path(self.youtube_id, self.quality)

    def last_change(self) -> float:
        """When a file of it was last written (epoch seconds): a download writes its .part as
        the bytes arrive."""
        moments = [0.0]
        for path in (self.lock, self.folder):
            with contextlib.suppress(OSError):
                moments.append(path.stat().st_mtime)
        if self.folder.is_dir():
            for path in self.folder.rglob("*"):
                with contextlib.suppress(OSError):
                    moments.append(path.stat().st_mtime)
        return max(moments)


def entries() -> list[Entry]:
    """Everything in the scratch folder, by video and quality (a few: the downloads in flight
    and those cut short)."""
    root = settings.CHIRP_MEDIA_SCRATCH_DIR
    if not root.is_dir():
        return []
    found: set[Entry] = set()
    for path in root.iterdir():
        if path.name.startswith("."):  # .ffmpeg
            continue
        if path.is_dir():
            qualities = (folder.name for folder in path.iterdir() if folder.is_dir())
            found.update(Entry(path.name, quality) for quality in qualities)
        elif path.name.endswith(LOCK_SUFFIX) and path.name.count(".") == 2:
            youtube_id, quality, _ = path.name.split(".")
            found.add(Entry(youtube_id, quality))
    return sorted(found, key=lambda entry: entry.key)


def resumable(youtube_ids: Collection[str]) -> set[tuple[str, str]]:
    """The (video id, quality) pairs among these videos that a download will go on with (see
    the module's docstring)."""
    items = ImportJobItem.objects.filter(video__youtube_id__in=list(youtube_ids)).exclude(
        job__media_quality=""
    )
    will_run = Q(
        status__in=[ItemStatus.QUEUED, ItemStatus.PROCESSING],
        job__status__in=ImportJob.OPEN_STATUSES,
    )
    for_good = Q(video__stage=Video.Stage.ERROR, video__error_reason__in=Video.PERMANENT_REASONS)
    may_retry = Q(status=ItemStatus.FAILED) & ~for_good
    pairs = items.filter(will_run | may_retry)
    return set(pairs.values_list("video__youtube_id", "job__media_quality"))


def sweep(only: Collection[tuple[str, str]] | None = None, grace: float = 0.0) -> int:
    """Remove the scratch files of the downloads nobody will resume: of `only` these (video
    id, quality) pairs, or of all; left alone when written in the last `grace` seconds, or
    while a download of them runs. Returns how many downloads' files were removed."""
    found = [entry for entry in entries() if only is None or entry.key in only]
    if not found:
        return 0
    keep = resumable({entry.youtube_id for entry in found})
    cutoff = time.time() - grace
    removed = 0
    for entry in found:
        if entry.key in keep or (grace and entry.last_change() > cutoff):
            continue
        with media.unless_downloading(entry.youtube_id, entry.quality) as free:
            if not free:  # a download of it runs now
                continue
            shutil.rmtree(entry.folder, ignore_errors=True)
        with contextlib.suppress(OSError):  # the video's folder, unless another quality is there
            entry.folder.parent.rmdir()
        logger.info("Swept the abandoned download of %s at %s", entry.youtube_id, entry.quality)
        removed += 1
    return removed


def sweep_abandoned() -> int:
    """The hourly sweep: whatever nobody will resume, older than the grace period."""
    return sweep(grace=settings.CHIRP_MEDIA_SCRATCH_GRACE_HOURS * 3600)


def downloads_of(job: ImportJob) -> set[tuple[str, str]]:
    """The (video id, quality) pairs of `job` that have files in the scratch folder."""
    if not job.media_quality:
        return set()
    youtube_ids = {entry.youtube_id for entry in entries() if entry.quality == job.media_quality}
    if not youtube_ids:
        return set()
    ids = job.items.filter(video__youtube_id__in=youtube_ids).values_list(
        "video__youtube_id", flat=True
    )
    return {(youtube_id, job.media_quality) for youtube_id in ids}


def sweep_job(job: ImportJob) -> int:
    """The files of `job`'s downloads that nobody will resume now (it was cancelled); a
    download of them still running is left to its worker, which sweeps once it stops."""
    return sweep(downloads_of(job))


def sweep_when_deleted(job: ImportJob) -> None:
    """An import is being deleted: its downloads' files go once the deletion is committed (its
    items are gone then, so only another import's can keep them)."""
    pairs = downloads_of(job)
    if pairs:
        transaction.on_commit(lambda: sweep(pairs), robust=True)
