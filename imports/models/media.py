"""Stored media: one file per (video, quality asked), shared by everyone who sees the video.

A `MediaFile` is written once the file is in the storage (local media folder or S3: Django's
default storage, whichever is configured) and its size and SHA-256 were checked; a download in
flight has no row. Its `key` is the storage name, `media/<channel id>/<video id>/<uuid>.<ext>`.
The download itself lives in imports/media.py.
"""

from __future__ import annotations

import logging
import uuid

from django.core.files.storage import default_storage
from django.db import models, transaction
from django.db.models import Count, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from imports.models.videos import Video


class Quality(models.TextChoices):
    """What a person asks for: the import's option, the API's `quality`, a video's download."""

    AUDIO = "audio", "Audio only"
    P360 = "360", "360p"
    P480 = "480", "480p"
    P720 = "720", "720p"
    P1080 = "1080", "1080p"
    BEST = "best", "Best"

    @property
    def max_height(self) -> int | None:
        """The tallest video this quality accepts (None: no limit, or no video at all)."""
        return int(self.value) if self.value.isdigit() else None


logger = logging.getLogger(__name__)


class MediaFileQuerySet(models.QuerySet):
    def totals(self) -> dict[str, int]:
        """How many videos have stored media among these files, and the files' size in bytes
        (a video stored at two qualities is one video, and both its files' bytes)."""
        return self.aggregate(videos=Count("video", distinct=True), size=Coalesce(Sum("size"), 0))

    def per_channel(self, channel: str = "channel") -> tuple[Coalesce, Coalesce]:
        """Subqueries giving the same two figures for the channel named by `channel` on the
        outer query (an annotation per row or channel, no query each)."""
        files = self.filter(video__channel=OuterRef(channel)).order_by().values("video__channel")
        videos = files.annotate(n=Count("video", distinct=True)).values("n")
        size = files.annotate(n=Sum("size")).values("n")
        return Coalesce(Subquery(videos), 0), Coalesce(Subquery(size), 0)

    def remove(self) -> int:
        """Delete these files: the rows now, the stored bytes once the deletion is committed
        (a rolled-back deletion keeps its files). Returns how many files were removed."""
        keys = list(self.values_list("key", flat=True))
        self.delete()

        def free() -> None:
            for key in keys:
                try:
                    default_storage.delete(key)
                except Exception:  # the row is gone: an orphan file is logged, not raised
                    logger.exception("Could not delete the stored media %s", key)

        transaction.on_commit(free)
        return len(keys)


class MediaFile(models.Model):
    class Kind(models.TextChoices):
        VIDEO = "video", "Video"
        AUDIO = "audio", "Audio"

    video = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="media_files")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    quality = models.CharField("quality asked", max_length=10, choices=Quality.choices)
    height = models.PositiveIntegerField(
        null=True, blank=True, help_text="Of the video stream stored (none for audio)."
    )
    vcodec = models.CharField("video codec", max_length=50, blank=True)
    acodec = models.CharField("audio codec", max_length=50, blank=True)
    container = models.CharField(max_length=10, help_text="The file's extension: mp4, webm...")
    size = models.PositiveBigIntegerField(help_text="Bytes.")
    sha256 = models.CharField("SHA-256", max_length=64)
    duration = models.FloatField(null=True, blank=True, help_text="Seconds.")
    key = models.CharField("storage key", max_length=1024, unique=True)
    created = models.DateTimeField(default=timezone.now)

    objects = MediaFileQuerySet.as_manager()

    class Meta:
        verbose_name = "media file"
        ordering = ["-created", "pk"]
        constraints = [
            # Two users asking for one video at one quality share one stored file.
            models.UniqueConstraint(fields=["video", "quality"], name="imports_media_once"),
        ]

    def __str__(self) -> str:
        return f"{self.video.youtube_id} ({self.get_quality_display()})"

    @property
    def badge(self) -> str:
        """What a card says about it: "720p", "Audio"."""
        if self.kind == self.Kind.AUDIO:
            return "Audio"
        return f"{self.height}p" if self.height else self.get_quality_display()

    @property
    def is_audio(self) -> bool:
        return self.kind == self.Kind.AUDIO

    @staticmethod
    def new_key(video: Video, ext: str) -> str:
        """Where a new file of `video` goes: by channel and video, a UUID per stored file."""
        return f"media/{video.channel.youtube_id}/{video.youtube_id}/{uuid.uuid4().hex}.{ext}"
