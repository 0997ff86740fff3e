"""YouTube channels and their videos (a catalog shared by the installation), and the import jobs
that fill it (private to whoever started them).

An import runs in the engine's "imports" lane in two phases: `prepare` lists the channel and
creates every listed video at once (stage `created`), then `process_item` enriches one video
in stages (metadata → captions → chapters → complete), each stage saved and pushed live.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.db.models import Case, Count, Exists, OuterRef, Q, Subquery, Value, When
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from chirp import live
from chirp.db import update_row
from chirp.jobs import CANCELLED, COMPLETED, FAILED, PENDING, Item, Job
from imports.artwork import FOLDER as ARTWORK_FOLDER
from imports.youtube import YOUTUBE, ChannelListing, ChannelRef, Reason, VideoInfo

if TYPE_CHECKING:
    from chirp.engine import RunContext
    from imports.transcripts import Transcript


class ChannelQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> ChannelQuerySet:
        """The channels `user` sees (Channel.seen): what their pages, searches and API show."""
        return self.filter(Channel.seen(user, OuterRef("pk")))


class Channel(models.Model):
    """A YouTube channel, upserted by its channel ID whoever imports it. The catalog is shared
    (a video is fetched once for the installation); who sees a channel is Channel.seen."""

    youtube_id = models.CharField("YouTube channel ID", max_length=40, unique=True)
    handle = models.CharField(max_length=100, blank=True, db_index=True)
    title = models.CharField(max_length=255, blank=True)
    description = models.TextField(blank=True)
    # Where YouTube keeps the pictures, and Chirp's own copies (imports/artwork.py): pages show
    # only the copies, through imports:artwork.
    avatar_url = models.URLField(max_length=2048, blank=True)
    avatar = models.FileField(upload_to=ARTWORK_FOLDER, max_length=255, blank=True)
    banner_url = models.URLField(max_length=2048, blank=True)
    banner = models.FileField(upload_to=ARTWORK_FOLDER, max_length=255, blank=True)
    subscriber_count = models.PositiveBigIntegerField(null=True, blank=True)
    # As YouTube lists them: known after a complete listing (a capped one does not tell).
    video_count = models.PositiveIntegerField(null=True, blank=True)
    last_imported = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(auto_now=True)

    objects = ChannelQuerySet.as_manager()

    class Meta:
        ordering = ["title", "pk"]

    def __str__(self) -> str:
        return self.title or self.handle or self.youtube_id

    def get_absolute_url(self) -> str:
        return reverse("imports:channel_detail", args=[self.pk])

    @property
    def youtube_url(self) -> str:
        return f"{YOUTUBE}/channel/{self.youtube_id}"

    @property
    def dom_id(self) -> str:
        return f"channel-{self.pk}"

    @property
    def stats_dom_id(self) -> str:
        # Per channel: an import of another channel must not change this page's cards.
        return f"{self.dom_id}-stats"

    @classmethod
    def artwork_to_fetch(cls, listing: ChannelListing) -> dict[str, str]:
        """The pictures of the listing Chirp has no copy of yet: {"avatar": url, "banner": url}.
        A picture is fetched once, and again only when YouTube names another one."""
        known = (
            cls.objects.filter(youtube_id=listing.channel_id)
            .values("avatar", "avatar_url", "banner", "banner_url")
            .first()
        ) or {}
        wanted = {"avatar": listing.avatar_url, "banner": listing.banner_url}
        return {
            field: url
            for field, url in wanted.items()
            if url and not (known.get(field) and known.get(f"{field}_url") == url)
        }

    @classmethod
    def upsert(cls, listing: ChannelListing, artwork: dict[str, str] | None = None) -> Channel:
        """Create or refresh the channel from its listing (by channel ID: one row per channel),
        with the storage names of the pictures fetched for it (`artwork`: field → name)."""
        fields: dict[str, Any] = {
            "handle": listing.handle or "",
            "title": listing.title[:255],
            "description": listing.description,
            "avatar_url": listing.avatar_url or "",
            "banner_url": listing.banner_url or "",
            "subscriber_count": listing.subscriber_count,
            **(artwork or {}),
        }
        if listing.complete and listing.video_count is not None:
            fields["video_count"] = listing.video_count
        try:
            with transaction.atomic():
                channel, _ = cls.objects.update_or_create(
                    youtube_id=listing.channel_id, defaults=fields
                )
        except IntegrityError:  # created meanwhile by another import of the same channel
            channel, _ = cls.objects.update_or_create(
                youtube_id=listing.channel_id, defaults=fields
            )
        return channel

    def has_artwork(self, name: str) -> bool:
        """Whether the stored picture `name` is this channel's avatar, banner or one of its
        videos' thumbnails (what imports:artwork serves to those who see the channel)."""
        if name in (self.avatar.name, self.banner.name):
            return True
        return self.videos.filter(thumbnail=name).exists()

    def stats_for(self, user) -> dict[str, Any]:
        """The channel's stat cards (and the API's /stats): its videos, and `user`'s imports."""
        has_transcript = Video.has_transcript_q()
        videos = self.videos.aggregate(
            total=Count("pk"),
            imported=Count("pk", filter=Q(stage=Video.Stage.COMPLETE)),
            with_transcripts=Count("pk", filter=has_transcript),
            failed=Count("pk", filter=Q(stage=Video.Stage.ERROR)),
        )
        jobs = ImportJob.objects.filter(channel=self, owner=user).aggregate(
            active=Count("pk", filter=Q(status__in=ImportJob.OPEN_STATUSES)),
            failed=Count("pk", filter=Q(status=FAILED)),
            completed=Count("pk", filter=Q(status=COMPLETED)),
        )
        finished = jobs["completed"] + jobs["failed"]
        return {
            "totalVideos": videos["total"],
            "importedVideos": videos["imported"],
            "withTranscripts": videos["with_transcripts"],
            "failedVideos": videos["failed"],
            "activeJobs": jobs["active"],
            "failedJobs": jobs["failed"],
            "successRate": round(100 * jobs["completed"] / finished, 2) if finished else None,
        }

    def stats_fragment(self, user) -> tuple[str, str]:
        """The stat cards as the channel page renders them, for `user`'s stream. Sent with the
        import's progress (throttled ticks, transitions), never per video stage: two aggregates
        per stage would slow the hot path for numbers a tick later is soon enough for."""
        context = {"channel": self, "stats": self.stats_for(user)}
        html = render_to_string("imports/channel_detail.html#channel_stats", context)
        return (self.stats_dom_id, html)

    @staticmethod
    def seen(user: Any, channel: Any) -> Exists:
        """Whether `user` sees `channel` (either may be an OuterRef): the one rule behind every
        channel page, video page, channel list and search, the stat cards, the API, and who
        receives a channel's live fragments (ImportJob.watchers). Everyone else gets a 404.

        A user sees a channel once their own import has *listed* it: an import job of theirs
        is linked to it. A job is linked to a channel only when its listing phase has fetched
        that channel from YouTube successfully (enrichment.list_channel), or at its start when
        its owner already sees the channel (a re-import: ImportJob.start). So an import of a
        channel that others imported discloses nothing of it before YouTube has answered this
        user's own listing, and none of it at all when that listing fails.

        (Following a channel, when it comes, is one more `| Exists(...)` here.)"""
        return Exists(ImportJob.objects.filter(owner=user, channel=channel))

    @classmethod
    def viewer_ids(cls, channel_id: int) -> models.QuerySet:
        """The ids of the users who see this channel (Channel.seen)."""
        from django.contrib.auth import get_user_model

        viewers = get_user_model().objects.filter(cls.seen(OuterRef("pk"), channel_id))
        return viewers.order_by().values_list("pk", flat=True)

    @classmethod
    def known_for(cls, ref: ChannelRef, channel_url: str, user: Any) -> Channel | None:
        """The channel a reference names, if `user` sees it already (no network). A channel
        only others imported stays unknown here, as if nobody had: whether it is in the
        catalog is not disclosed before this user's own import has listed it."""
        channels = cls.objects.visible_to(user)
        if ref.channel_id:
            return channels.filter(youtube_id=ref.channel_id).first()
        previous = (
            ImportJob.objects.filter(owner=user, channel_url=channel_url, channel__isnull=False)
            .order_by("-created")
            .values_list("channel", flat=True)
            .first()
        )
        if previous:
            return channels.filter(pk=previous).first()
        if ref.handle:
            return channels.filter(handle__iexact=ref.handle).first()
        return None


def channels_of(user) -> models.QuerySet[Channel]:
    """The channels `user` sees, with what the channel list shows about each."""
    videos = Video.objects.filter(channel=OuterRef("pk")).order_by().values("channel")
    jobs = ImportJob.objects.filter(owner=user, channel=OuterRef("pk")).order_by("-created", "-pk")

    def count(queryset: models.QuerySet) -> Coalesce:
        return Coalesce(Subquery(queryset.annotate(n=Count("pk")).values("n")), 0)

    return (
        Channel.objects.visible_to(user)
        .annotate(
            listed=count(videos),
            imported=count(videos.filter(stage=Video.Stage.COMPLETE)),
            with_transcripts=count(videos.filter(Video.has_transcript_q())),
            last_import=Subquery(jobs.values("created")[:1]),
            last_status=Subquery(jobs.values("status")[:1]),
        )
        .order_by("title", "pk")
    )


class VideoQuerySet(models.QuerySet):
    # What a video card does not show: a channel page reads 24 cards, not 24 transcripts.
    NOT_ON_CARDS = ("description", "tags", "transcript", "transcript_segments", "chapters")

    def for_cards(self) -> VideoQuerySet:
        return self.defer(*self.NOT_ON_CARDS)

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

    PROGRESS = {
        Stage.CREATED: 0,
        Stage.METADATA: 25,
        Stage.CAPTIONS: 60,
        Stage.CHAPTERS: 90,
        Stage.COMPLETE: 100,
    }

    youtube_id = models.CharField("YouTube video ID", max_length=20, unique=True)
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="videos")
    title = models.CharField(max_length=500, blank=True)
    thumbnail_url = models.URLField(max_length=2048, blank=True)
    thumbnail = models.FileField(upload_to=ARTWORK_FOLDER, max_length=255, blank=True)
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
    # PostgreSQL: the transcript's words are not in `search_document` yet (the worker stores a
    # transcript without building its search vector: refresh_search_documents does it).
    search_stale = models.BooleanField(default=False, db_default=False, editable=False)

    objects = VideoQuerySet.as_manager()

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
        if stage == self.Stage.COMPLETE:
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

    def save_chapters(self, info: VideoInfo) -> None:
        """Store the chapters: the video is complete."""
        self._save_stage(
            self.Stage.COMPLETE,
            chapters=[{"start": c.start, "end": c.end, "title": c.title} for c in info.chapters],
        )

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

    def card_html(self) -> str:
        return render_to_string("imports/channel_detail.html#video_card", {"video": self})

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


class ImportJob(Job):
    """Import one channel for one user: list it (listing), then enrich each video (enriching)."""

    lane = "imports"
    PREPARING = "listing"
    PROCESSING = "enriching"

    class Status(models.TextChoices):
        PENDING = PENDING, "Pending"
        LISTING = "listing", "Listing"
        ENRICHING = "enriching", "Enriching"
        COMPLETED = COMPLETED, "Completed"
        FAILED = FAILED, "Failed"
        CANCELLED = CANCELLED, "Cancelled"

    class Tab(models.TextChoices):
        VIDEOS = "videos", "Videos"
        SHORTS = "shorts", "Shorts"
        STREAMS = "streams", "Live streams"

    OPEN_STATUSES = (PENDING, "listing", "enriching")

    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    # The canonical URL of what the user named (imports.youtube.parse_channel_input).
    channel_url = models.CharField("channel URL", max_length=2048)
    channel = models.ForeignKey(
        Channel,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="import_jobs",
    )
    tab = models.CharField(max_length=10, choices=Tab.choices, default=Tab.VIDEOS)
    limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Import at most this many videos (newest first)."
    )
    only_new = models.BooleanField(
        default=False, help_text="Stop at the first video already imported."
    )

    class Meta(Job.Meta):
        verbose_name = "import job"
        indexes = [
            models.Index(fields=["owner", "-created"], name="imports_job_owner_created"),
            models.Index(fields=["channel", "owner"], name="imports_job_channel_owner"),
        ]
        constraints = [
            # The dedupe rule, held by the database: one open import per user and channel.
            models.UniqueConstraint(
                fields=["owner", "channel_url"],
                condition=Q(status__in=["pending", "listing", "enriching"]),
                name="imports_one_open_import_per_channel",
            ),
        ]

    @property
    def pool_size(self) -> int:  # type: ignore[override]
        return settings.CHIRP_YOUTUBE_CONCURRENCY

    @classmethod
    def paused_until(cls) -> datetime | None:
        from imports.limiter import Limiter

        pause = Limiter().current_pause()
        return pause.until if pause else None

    # -- starting ------------------------------------------------------------------------------

    @classmethod
    def open_for(cls, owner, channel_url: str) -> ImportJob | None:
        return cls.objects.filter(
            owner=owner, channel_url=channel_url, status__in=cls.OPEN_STATUSES
        ).first()

    @classmethod
    def start(
        cls,
        owner,
        ref: ChannelRef,
        *,
        tab: str = "videos",
        limit: int | None = None,
        only_new: bool = False,
    ) -> tuple[ImportJob, bool]:
        """A new import of `ref` (queued once the transaction commits), or the open one.

        Returns (job, created): an import of the same channel URL already pending or running
        for this user is not duplicated.
        """
        from chirp import engine

        existing = cls.open_for(owner, ref.url)
        if existing is not None:
            return existing, False
        try:
            with transaction.atomic():
                job = cls.objects.create(
                    owner=owner,
                    channel_url=ref.url,
                    # Linked now only if its owner sees it already; else by its listing.
                    channel=Channel.known_for(ref, ref.url, owner),
                    tab=tab,
                    limit=limit or None,
                    only_new=only_new,
                )
        except IntegrityError:  # another request created it a moment ago
            existing = cls.open_for(owner, ref.url)
            if existing is None:
                raise
            return existing, False
        engine.wake_lane_on_commit(cls.lane)
        return job, True

    # -- state shown -----------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    @property
    def title(self) -> str:
        if self.channel_id and self.channel:
            return str(self.channel)
        return self.channel_url.removeprefix(f"{YOUTUBE}/")

    @property
    def pause(self):
        """The limiter's pause, while this job waits for it (None otherwise)."""
        if not self.is_open:
            return None
        from imports.limiter import Limiter

        return Limiter().current_pause()

    @property
    def phase_label(self) -> str:
        if self.status == PENDING:
            return "Waiting for its turn"
        if self.status == self.Status.LISTING:
            return "Listing the channel's videos"
        if self.status == self.Status.ENRICHING:
            return f"Enriching videos: {self.processed} of {self.total}"
        return ""

    def without_captions(self) -> int:
        return self.items.filter(
            status="completed", video__transcript_source=Video.TranscriptSource.NONE
        ).count()

    def finished_summary(self) -> str:
        if self.status == FAILED and not self.prepared:
            return f"{self.title} could not be imported: {self.error}"
        if self.status == CANCELLED:
            return f"Import of {self.title} cancelled: {self.done} videos imported."
        parts = [f"{self.done} videos imported"]
        if self.done:
            missing = self.without_captions()
            if missing:
                parts.append(f"{missing} without captions")
        if self.skipped:
            parts.append(f"{self.skipped} already there")
        if self.failed:
            parts.append(f"{self.failed} failed")
        return ", ".join(parts)

    def as_json(self) -> dict[str, Any]:
        pause = self.pause
        return {
            "id": self.pk,
            "status": self.status,
            "channelUrl": self.channel_url,
            "channelId": self.channel_id,
            "channelTitle": self.channel.title if self.channel_id and self.channel else None,
            "options": {"tab": self.tab, "limit": self.limit, "onlyNew": self.only_new},
            "total": self.total,
            "done": self.done,
            "skipped": self.skipped,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "progress": self.percent,
            "step": self.step,
            "error": self.error,
            "paused": (
                {"until": pause.until.isoformat(), "reason": pause.reason, "message": pause.message}
                if pause
                else None
            ),
            "createdAt": self.created.isoformat(),
            "startedAt": self.started.isoformat() if self.started else None,
            "finishedAt": self.finished.isoformat() if self.finished else None,
            "updatedAt": self.updated.isoformat(),
        }

    # -- the work ------------------------------------------------------------------------------

    def prepare(self, ctx: RunContext) -> Iterable[ImportJobItem]:
        from imports import enrichment

        return enrichment.list_channel(self, ctx)

    def process_item(self, item: ImportJobItem, ctx: RunContext) -> None:  # type: ignore[override]
        from imports import enrichment

        enrichment.enrich_item(self, item, ctx)

    def upkeep(self, final: bool = False) -> None:
        """The search vectors of the transcripts stored meanwhile (a batch a tick; all of them,
        for every video, before the import finishes), and the channel's numbers for the other
        users who see it."""
        Video.refresh_search_documents(limit=0 if final else SEARCH_REFRESH_BATCH)
        self._show_channel_to_watchers(final)

    # -- live ----------------------------------------------------------------------------------

    @classmethod
    def banner_for(cls, owner_id: int) -> dict[str, Any]:
        """What the importing banner shows: the owner's open imports, all together."""
        totals = cls.objects.filter(owner_id=owner_id, status__in=cls.OPEN_STATUSES).aggregate(
            jobs=Count("pk"),
            total=Coalesce(models.Sum("total"), 0),
            processed=Coalesce(
                models.Sum(models.F("done") + models.F("skipped") + models.F("failed")), 0
            ),
        )
        total, processed = totals["total"], totals["processed"]
        from imports.limiter import Limiter

        return {
            "jobs": totals["jobs"],
            "videos": total,
            "percent": min(100, round(100 * processed / total)) if total else 0,
            "pause": Limiter().current_pause() if totals["jobs"] else None,
        }

    def live_fragments(self) -> list[tuple[str, str]]:
        fragments = [
            (self.dom_id, render_to_string("imports/partials/job.html#job_card", {"job": self})),
            (
                f"{self.dom_id}-row",
                render_to_string("imports/partials/job.html#job_row", {"job": self}),
            ),
            banner_fragment(self.owner_id),
        ]
        return fragments + self.channel_fragments(self.owner_id)

    def channel_fragments(self, user_id: int) -> list[tuple[str, str]]:
        """The channel as `user_id` sees it: its row in their channel list and the stat cards
        on their channel page (the shared catalog's numbers, and their own imports)."""
        if not self.channel_id:
            return []
        row = channels_of(user_id).filter(pk=self.channel_id).first()
        if row is None:
            return []
        html = render_to_string("imports/channel_list.html#channel_row", {"channel": row})
        return [(row.dom_id, html), row.stats_fragment(user_id)]

    # -- everyone else who sees the channel ------------------------------------------------------

    def watchers(self) -> tuple[int, ...]:
        """The other users who see this channel (Channel.seen). The catalog is shared, so
        their pages show the same videos: they see the cards and the channel's numbers change
        as this import goes (never this job itself). Read again every WATCHERS_SECONDS, so
        asking on every video stage costs nothing."""
        if not self.channel_id:
            return ()
        now = time.monotonic()
        read_at, ids = self.__dict__.get("_watchers", (None, ()))
        if read_at is None or now - read_at >= WATCHERS_SECONDS:
            ids = tuple(Channel.viewer_ids(self.channel_id).exclude(pk=self.owner_id))
            self._watchers = (now, ids)
        return ids

    def audience(self) -> tuple[int, ...]:
        """Who sees this import's video cards change: its owner, then the watchers."""
        return (self.owner_id, *self.watchers())

    def _show_channel_to_watchers(self, final: bool) -> None:
        """The watchers' channel rows and stat cards: at most every WATCHERS_SECONDS while
        the import runs (two aggregates each), and once at its end."""
        now = time.monotonic()
        if not final and now - self.__dict__.get("_watchers_shown", 0.0) < WATCHERS_SECONDS:
            return
        self._watchers_shown = now
        for user_id in self.watchers():
            live.publish(user_id, self.channel_fragments(user_id))


def banner_fragment(owner_id: int) -> tuple[str, str]:
    return (
        "import-banner",
        render_to_string(
            "imports/partials/banner.html", {"banner": ImportJob.banner_for(owner_id)}
        ),
    )


class ImportJobItem(Item):
    """One listed video of one import: the unit of enrichment."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="items")
    video = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="import_items")

    work_related = ("video",)

    class Meta(Item.Meta):
        verbose_name = "import job item"
        constraints = [
            models.UniqueConstraint(fields=["job", "video"], name="imports_item_once_per_job"),
        ]


class RateLimit(models.Model):
    """The shared state of the YouTube rate limiter when it lives in the database
    (imports/limiter.py): one row, read and written with conditional UPDATEs."""

    key = models.CharField(max_length=50, unique=True)
    # Epoch seconds: when the next request may start.
    next_at = models.FloatField(default=0)
    # Seconds between requests now: the base spacing, more after YouTube throttled.
    spacing = models.FloatField(default=0)
    # Blocks in a row (429s, bot checks): each one doubles the next pause.
    strikes = models.PositiveIntegerField(default=0)
    paused_until = models.FloatField(default=0)
    reason = models.CharField(max_length=30, blank=True)
    # Requests in flight: each holder (a Limiter) and the epoch second its lease ends.
    # (db_default too: code from before it, during a rolling deploy, can still add the row.)
    holders = models.JSONField(default=dict, db_default=Value({}, models.JSONField()), blank=True)
    version = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return self.key
