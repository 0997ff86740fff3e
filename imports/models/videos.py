"""Videos of the catalog, enriched in stages (metadata → captions → chapters → complete)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django.db import connection, models, transaction
from django.db.models import Case, Q, Value, When
from django.db.models.expressions import RawSQL
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from chirp import live
from chirp.db import update_row
from chirp.jobs import (
    IllegalTransition,
    ItemStatus,
)
from imports.artwork import FOLDER as ARTWORK_FOLDER
from imports.models.channels import Channel
from imports.youtube import YOUTUBE, Reason, VideoInfo

if TYPE_CHECKING:
    from imports.models.jobs import ImportJobItem
    from imports.transcripts import Transcript


class VideoQuerySet(models.QuerySet):
    # What a video card does not show: a channel page reads 24 cards, not 24 transcripts.
    NOT_ON_CARDS = ("description", "tags", "transcript", "transcript_segments", "chapters")

    def for_cards(self) -> VideoQuerySet:
        return self.defer(*self.NOT_ON_CARDS).prefetch_related("media_files")

    def importing(self) -> VideoQuerySet:
        return self.exclude(stage__in=[Video.Stage.COMPLETE, Video.Stage.ERROR])

    def with_stage(self, stage: str) -> VideoQuerySet:
        """ "importing" (any stage before complete), one stage, or everything ("")."""
        if stage == "importing":
            return self.importing()
        return self.filter(stage=stage) if stage else self

    def search(self, text: str) -> VideoQuerySet:
        """The videos whose title or transcript matches `text`, best matches first: a person
        searching looks at the first page, so what is most about `text` belongs there (equals
        in the usual order, newest first).

        PostgreSQL: full-text search on the `search_document` column (kept up to date by a
        trigger, GIN-indexed: migrations 0002 and 0003), ranked by ts_rank. Elsewhere: a plain
        case-insensitive match, title matches before transcript-only ones."""
        text = text.strip()
        if not text:
            return self
        if connection.vendor == "postgresql":
            Video.refresh_search_documents(self)  # transcripts stored moments ago
            return self._full_text_search(text)
        in_title = Q(title__icontains=text)
        title_first = Case(When(in_title, then=Value(0)), default=Value(1))
        return self.filter(in_title | Q(transcript__icontains=text)).order_by(
            title_first, *Video._meta.ordering
        )

    def _full_text_search(self, text: str) -> VideoQuerySet:
        """Ranked by ts_rank: `search_document` weighs title words A and transcript words D
        (migration 0003), which its default weights count 1.0 and 0.1; and it counts each
        further mention of a word less than the last (ts_rank_cd adds them all up), so for one
        word, mentions in a transcript never add up to a title match, yet more of them still
        rank higher."""
        table = connection.ops.quote_name(Video._meta.db_table)
        query = "websearch_to_tsquery(%s::regconfig, %s)"
        params = (SEARCH_CONFIG, text)
        # The table name is ours; the text is a parameter.
        matches = RawSQL(  # noqa: S611
            f"{table}.search_document @@ {query}", params, output_field=models.BooleanField()
        )
        rank = RawSQL(  # noqa: S611
            f"ts_rank({table}.search_document, {query})", params, output_field=models.FloatField()
        )
        return self.filter(matches).order_by(rank.desc(), *Video._meta.ordering)


SEARCH_CONFIG = "english"
# Search vectors an import's monitor builds per tick (0.25 s): ~1.3 ms each for a 10-minute
# video's transcript, so at most a quarter of a second of PostgreSQL's time per tick.
SEARCH_REFRESH_BATCH = 200
# How often a running import reads who else imported its channel, and sends them its numbers.
WATCHERS_SECONDS = 1.0


class Video(models.Model):
    """A YouTube video: created from the channel's listing, then enriched stage by stage."""

    class Stage(models.TextChoices):
        CREATED = "created", "Queued"
        METADATA = "metadata", "Metadata"
        CAPTIONS = "captions", "Captions"
        CHAPTERS = "chapters", "Chapters"
        DOWNLOAD = "download", "Downloading"
        COMPLETE = "complete", "Complete"
        ERROR = "error", "Failed"

    class TranscriptSource(models.TextChoices):
        MANUAL = "manual", "Manual captions"
        AUTO = "auto", "Auto-generated captions"
        WHISPER = "whisper", "Speech to text"
        NONE = "none", "No transcript"

    ERROR_REASONS = [
        (reason.value, reason.value.replace("_", " ").capitalize()) for reason in Reason
    ]

    # What YouTube will keep refusing, however often Chirp asks: no "Retry" for these.
    # (Age-restricted videos can come through once a cookies file is set: they stay retryable.)
    PERMANENT_REASONS = (
        Reason.PRIVATE,
        Reason.MEMBERS_ONLY,
        Reason.REMOVED,
        Reason.GEO_BLOCKED,
        Reason.UNAVAILABLE,
        Reason.NOT_FOUND,
    )

    PROGRESS = {
        Stage.CREATED: 0,
        Stage.METADATA: 25,
        Stage.CAPTIONS: 60,
        Stage.CHAPTERS: 90,
        Stage.DOWNLOAD: 92,
        Stage.COMPLETE: 100,
    }

    youtube_id = models.CharField("YouTube video ID", max_length=20, unique=True)
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="videos")
    title = models.CharField(max_length=500, blank=True)
    thumbnail_url = models.URLField(max_length=2048, blank=True)
    thumbnail = models.FileField(upload_to=ARTWORK_FOLDER, max_length=255, blank=True)
    # When the artwork backfill last tried to fetch its missing thumbnail (imports/artwork.py).
    artwork_tried = models.DateTimeField(null=True, blank=True, editable=False)
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.CREATED)
    progress = models.PositiveSmallIntegerField(default=0)
    error_reason = models.CharField(max_length=30, choices=ERROR_REASONS, blank=True)
    error = models.TextField(blank=True)
    # Metadata
    description = models.TextField(blank=True)
    duration = models.PositiveIntegerField(null=True, blank=True, help_text="Seconds.")
    published = models.DateTimeField(null=True, blank=True)
    views = models.PositiveBigIntegerField(null=True, blank=True)
    likes = models.PositiveBigIntegerField(null=True, blank=True)
    tags = models.JSONField(default=list, blank=True)
    category = models.CharField(max_length=100, blank=True)
    # Captions: the text (searchable) and the timed segments, [[start, duration, text], ...].
    transcript = models.TextField(blank=True)
    transcript_segments = models.JSONField(default=list, blank=True)
    transcript_source = models.CharField(
        max_length=10, choices=TranscriptSource.choices, blank=True
    )
    transcript_language = models.CharField(max_length=20, blank=True)
    # Chapters: [{"start": s, "end": s | null, "title": "..."}, ...]
    chapters = models.JSONField(default=list, blank=True)
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(auto_now=True)
    enriched = models.DateTimeField(null=True, blank=True)
    # YouTube said the video was deleted (a WebSub tombstone): kept, with a badge and the time.
    removed_at = models.DateTimeField("removed on YouTube", null=True, blank=True)
    # The `updated` time of the newest feed or push entry whose title and description were
    # applied: an older entry delivered late (the hub does not keep order) changes nothing.
    feed_updated = models.DateTimeField(null=True, blank=True, editable=False)
    # PostgreSQL: the transcript's words are not in `search_document` yet (the worker stores a
    # transcript without building its search vector: refresh_search_documents does it).
    search_stale = models.BooleanField(default=False, db_default=False, editable=False)

    objects = VideoQuerySet.as_manager()

    # While its media downloads: the latest imports.media.Progress, shown on the card sent
    # live (not stored: a reload shows the stage alone).
    download_progress = None

    class Meta:
        # Newest first; videos not enriched yet (no date) after them, in listing order.
        ordering = [models.F("published").desc(nulls_last=True), "pk"]
        # No index on `stage`: a stage change then leaves every index untouched, so PostgreSQL
        # updates the row in place (HOT, with the fill factor set in migration 0002); filtering
        # a channel's videos by stage reads them through the channel's index anyway.
        indexes = [
            models.Index(fields=["channel", "-published"], name="imports_video_channel_pub"),
            # Whether a picture is one of a channel's (imports:artwork, for every card shown).
            models.Index(fields=["channel", "thumbnail"], name="imports_video_channel_thumb"),
            # The few videos whose search vector is still to be built.
            models.Index(fields=["id"], condition=Q(search_stale=True), name="imports_video_stale"),
        ]

    def __str__(self) -> str:
        return self.title or self.youtube_id

    def get_absolute_url(self) -> str:
        return reverse("imports:video_detail", args=[self.pk])

    @property
    def dom_id(self) -> str:
        return f"video-{self.pk}"

    @property
    def youtube_url(self) -> str:
        return f"{YOUTUBE}/watch?v={self.youtube_id}"

    def youtube_url_at(self, seconds: float) -> str:
        return f"{self.youtube_url}&t={int(seconds)}s"

    @property
    def is_importing(self) -> bool:
        return self.stage not in (self.Stage.COMPLETE, self.Stage.ERROR)

    @property
    def has_transcript(self) -> bool:
        return self.transcript_source in self.with_transcript_sources()

    @property
    def failed_for_good(self) -> bool:
        """Its import failed for a reason a retry cannot change (private, removed...)."""
        return self.stage == self.Stage.ERROR and self.error_reason in self.PERMANENT_REASONS

    @property
    def can_retry(self) -> bool:
        return self.stage == self.Stage.ERROR and not self.failed_for_good

    @property
    def missing_transcript_text(self) -> str:
        """Why the video page shows no transcript (when it has none to show)."""
        if self.transcript_source == self.TranscriptSource.NONE:
            return "YouTube has no captions for this video in the preferred languages."
        if self.failed_for_good:
            why = (self.error or self.get_error_reason_display()).rstrip(".")
            return f"Not available — {why[:1].lower()}{why[1:]}."
        if self.stage == self.Stage.ERROR:
            return "Not fetched: the import of this video failed. Retry it to try again."
        return "Not fetched yet: the video is waiting for its import."

    def retry_for(self, owner) -> ImportJobItem:
        """Send the video back to `owner`'s import that failed it (and that import back in
        line). Refused with a message for a person (IllegalTransition): a video that failed
        for good, one that did not fail, one no import of theirs failed. IntegrityError:
        another import of the same channel is open for them."""
        from imports.models.jobs import ImportJobItem  # jobs.py imports this module

        if self.stage != self.Stage.ERROR:
            raise IllegalTransition("This video's import did not fail: there is nothing to retry.")
        if self.failed_for_good:
            why = (self.error or self.get_error_reason_display()).rstrip(".")
            raise IllegalTransition(f"{why}: retrying would not change that.")
        item = (
            ImportJobItem.objects.filter(video=self, job__owner=owner, status=ItemStatus.FAILED)
            .select_related("job")
            .order_by("-pk")
            .first()
        )
        if item is None:
            raise IllegalTransition("None of your imports has this video to retry.")
        item.retry()
        self.restart()
        return item

    @staticmethod
    def with_transcript_sources() -> tuple[str, ...]:
        s = Video.TranscriptSource
        return (s.MANUAL, s.AUTO, s.WHISPER)

    @classmethod
    def has_transcript_q(cls) -> Q:
        return Q(transcript_source__in=cls.with_transcript_sources())

    # -- stages: each change is one UPDATE, then pushed to whoever is importing -------------

    def _save_stage(self, stage: str, **fields: Any) -> None:
        fields.update(stage=stage, progress=self.PROGRESS.get(stage, self.progress))
        if stage == self.Stage.COMPLETE or (stage == self.Stage.DOWNLOAD and self.enriched is None):
            fields["enriched"] = timezone.now()
        fields["updated"] = timezone.now()
        update_row(self, **fields)
        for name, value in fields.items():
            setattr(self, name, value)

    def restart(self) -> None:
        self._save_stage(self.Stage.CREATED, error="", error_reason="")

    def start_metadata(self) -> None:
        self._save_stage(self.Stage.METADATA, error="", error_reason="")

    def save_metadata(self, info: VideoInfo, thumbnail: str | None = None) -> None:
        """Store the metadata (and the storage name of the thumbnail, when one was fetched)
        and move on to captions (one UPDATE)."""
        artwork = {"thumbnail": thumbnail} if thumbnail else {}
        self._save_stage(
            self.Stage.CAPTIONS,
            title=(info.title or self.title)[:500],
            description=info.description,
            duration=info.duration,
            published=info.published_at
            or (
                datetime(*info.upload_date.timetuple()[:3], tzinfo=UTC)
                if info.upload_date
                else None
            ),
            views=info.view_count,
            likes=info.like_count,
            tags=list(info.tags),
            category=(info.categories[0] if info.categories else "")[:100],
            thumbnail_url=self.thumbnail_url or (info.thumbnail_url or ""),
            **artwork,
        )

    def save_transcript(self, transcript: Transcript | None, source: str | None = None) -> None:
        """Store the transcript (or that there is none) and move on to chapters."""
        if transcript is None:
            self._save_stage(
                self.Stage.CHAPTERS,
                transcript="",
                transcript_segments=[],
                transcript_source=self.TranscriptSource.NONE,
                transcript_language="",
            )
            return
        self._save_stage(
            self.Stage.CHAPTERS,
            transcript=transcript.text,
            transcript_segments=[
                [round(s.start, 3), round(s.duration, 3), s.text] for s in transcript.segments
            ],
            transcript_source=source or transcript.source,
            transcript_language=transcript.language_code[:20],
            # Building the search vector of a transcript is most of this UPDATE's time on
            # PostgreSQL: it is left to refresh_search_documents, off the video's path.
            search_stale=connection.vendor == "postgresql",
        )

    def save_chapters(self, info: VideoInfo, *, download: bool = False) -> None:
        """Store the chapters: the video is complete, or its media is next (`download`)."""
        self._save_stage(
            self.Stage.DOWNLOAD if download else self.Stage.COMPLETE,
            chapters=[{"start": c.start, "end": c.end, "title": c.title} for c in info.chapters],
        )

    @property
    def has_metadata(self) -> bool:
        """Metadata, transcript and chapters were stored (`enriched` is set once they are,
        whether media follows or not): a download that failed or was interrupted goes on from
        there, without asking YouTube for them again."""
        return self.enriched is not None

    def start_download(self) -> None:
        self._save_stage(self.Stage.DOWNLOAD, error="", error_reason="")

    def save_download(self) -> None:
        """The media is stored: the video is complete. Its card reads its stored media again
        (the runner read them with the video, before the download)."""
        getattr(self, "_prefetched_objects_cache", {}).pop("media_files", None)
        self._save_stage(self.Stage.COMPLETE)

    def cancel_download(self) -> None:
        """Its download was cancelled: the metadata, transcript and chapters stored stay, and
        the video is complete without media (as it was before a download was asked for)."""
        self._save_stage(self.Stage.COMPLETE, error="", error_reason="")

    def has_media(self, quality: str) -> bool:
        return self.media_files.filter(quality=quality).exists()

    def save_error(self, reason: str, message: str) -> None:
        self._save_stage(self.Stage.ERROR, error_reason=reason, error=message[:2000])

    @classmethod
    def refresh_search_documents(cls, videos: models.QuerySet | None = None, limit: int = 0) -> int:
        """Build the search vectors the worker left to build (PostgreSQL; elsewhere there are
        none): of `videos` (every video by default), `limit` at most (0: all). One UPDATE;
        rows being written meanwhile are left for the next call. Returns how many were built.

        Called by a running import on every tick of its monitor (its own thread and
        connection, beside the videos' work), when an import finishes, and by a search for the
        videos it is about to search, so a search never misses a stored transcript."""
        if connection.vendor != "postgresql":
            return 0
        stale = (videos if videos is not None else cls.objects.all()).filter(search_stale=True)
        ids = stale.order_by("pk").values("pk").select_for_update(skip_locked=True)
        if limit:
            ids = ids[:limit]
        # (The trigger builds the whole vector when search_stale goes back to false.)
        with transaction.atomic():
            return cls.objects.filter(pk__in=ids).update(search_stale=False)

    # -- display -------------------------------------------------------------------------------

    @property
    def stored_media(self) -> Any:
        """The stored file to play (a MediaFile, or None): a video before an audio, the
        tallest first. Reads `media_files` prefetched when the cards were (for_cards)."""
        files = sorted(
            self.media_files.all(), key=lambda m: (m.kind != "video", -(m.height or 0), m.pk)
        )
        return files[0] if files else None

    def card_html(self) -> str:
        return render_to_string("imports/channel_detail.html#video_card", {"video": self})

    def discovered_event(self, published: datetime | None = None) -> tuple[str, str]:
        """`video:discovered` (seed 002): a followed channel's new video, or one a backfill
        found, just created. `published`: the feed's date, when the video has none yet."""
        published = self.published or published
        return live.json_event(
            "video:discovered",
            {
                "id": self.pk,
                "videoId": self.youtube_id,
                "channelId": self.channel_id,
                "title": self.title,
                "publishedAt": published.isoformat() if published else None,
                "url": self.get_absolute_url(),
            },
        )

    def removal_fragment(self) -> tuple[str, str]:
        """The card's own event, taking it off every page that shows it (htmx's out-of-band
        delete): for a video deleted after its card was sent (a backfill's dropped video)."""
        return (
            self.dom_id,
            render_to_string("imports/channel_detail.html#video_card_gone", {"video": self}),
        )

    def dropped_event(self) -> tuple[str, str]:
        """`video:dropped`: a video a backfill listed (its card sent, its `video-<pk>` event)
        and then dropped by its exact date, deleted: it is no longer in Chirp. The JSON twin of
        removal_fragment, to the same users."""
        return live.json_event(
            "video:dropped",
            {
                "id": self.pk,
                "videoId": self.youtube_id,
                "channelId": self.channel_id,
                "title": self.title,
            },
        )

    def publish_to(self, *user_ids: int) -> None:
        """Send this video's card (rendered once) to these users' streams now."""
        fragments = [(self.dom_id, self.card_html())]
        for user_id in user_ids:
            live.publish(user_id, fragments)

    @property
    def segments(self) -> list[dict[str, Any]]:
        return [
            {"start": start, "duration": duration, "text": text, "url": self.youtube_url_at(start)}
            for start, duration, text in self.transcript_segments
        ]

    @property
    def chapter_links(self) -> list[dict[str, Any]]:
        return [
            {**chapter, "url": self.youtube_url_at(chapter["start"])} for chapter in self.chapters
        ]
