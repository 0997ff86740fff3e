"""Import jobs (private to whoever started them) and their items: one listed video each.

An import runs in the engine's "imports" lane in two phases: `prepare` lists the channel and
creates every listed video at once (stage `created`), then `process_item` enriches one video
in stages (metadata → captions → chapters → complete), each stage saved and pushed live.
"""

from __future__ import annotations

import time
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import Count, Q
from django.db.models.functions import Coalesce
from django.template.defaultfilters import filesizeformat
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.module_loading import import_string

from chirp import live
from chirp.jobs import (
    CANCELLED,
    COMPLETED,
    FAILED,
    PENDING,
    Item,
    Job,
)
from imports.models.channels import Channel, channels_of
from imports.models.media import MediaFile, Quality
from imports.models.videos import SEARCH_REFRESH_BATCH, WATCHERS_SECONDS, Video
from imports.youtube import YOUTUBE, ChannelRef

if TYPE_CHECKING:
    pass


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
    # Media to download for each video (imports/media.py), at this quality; blank: none.
    media_quality = models.CharField(
        "download media",
        max_length=10,
        choices=Quality.choices,
        blank=True,
        default="",
        db_default="",
        help_text="Download each video's media at this quality (blank: no media).",
    )
    # Listed videos that were already imported (complete): nothing to do, so no items. The
    # progress counts only what is new; this says how much was already there. (db_default too:
    # code from before it, during a rolling deploy, can still create jobs.)
    known = models.PositiveIntegerField(
        "already imported",
        default=0,
        db_default=0,
        help_text="Listed videos that were already imported.",
    )
    # Backfill since a date: only the videos published on or after it. The listing stops past
    # it (approximate dates, a week's margin); each video's exact date, read by its metadata
    # stage, decides: one published before is dropped (its item skipped, the video deleted at
    # the job's end unless another import has it too).
    since = models.DateField(
        null=True, blank=True, help_text="Import only the videos published on or after this day."
    )
    dropped = models.PositiveIntegerField(
        "published before the date",
        default=0,
        db_default=0,
        help_text="Listed videos whose exact date was before `since`: not kept.",
    )
    # Made by following (imports/following.py): the new uploads a poll, a push or a full check
    # found, enriched as they come (created prepared: there is nothing to list).
    followed = models.BooleanField(
        default=False, db_default=False, help_text="New uploads of a followed channel."
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
                # A follow's job of new uploads beside it is no duplicate of an import.
                condition=Q(status__in=["pending", "listing", "enriching"], followed=False),
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
            owner=owner, channel_url=channel_url, status__in=cls.OPEN_STATUSES, followed=False
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
        since: date | None = None,
        media_quality: str = "",
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
                    since=since,
                    media_quality=media_quality or "",
                )
        except IntegrityError:  # another request created it a moment ago
            existing = cls.open_for(owner, ref.url)
            if existing is None:
                raise
            return existing, False
        engine.wake_lane_on_commit(cls.lane)
        return job, True

    # The partial files of its downloads that nobody will resume, swept when it is cancelled.
    sweep_with = "imports.scratch.sweep_job"

    def cancel(self) -> None:
        """Stop the import; once that is committed, the scratch files of its media downloads
        go (imports/scratch.py: unless another open import wants them, or one runs still: its
        worker sweeps when it stops)."""
        super().cancel()
        if self.media_quality:
            transaction.on_commit(lambda: import_string(self.sweep_with)(self), robust=True)

    # -- since a date ---------------------------------------------------------------------------

    def published_before_since(self, published: date | None) -> bool:
        """Whether a video published on `published` is one this backfill does not keep (a
        video whose date YouTube does not give is kept)."""
        return self.since is not None and published is not None and published < self.since

    @property
    def dropped_reason(self) -> str:
        return f"Published before {format_day(self.since)}" if self.since else ""

    def count_dropped(self) -> None:
        ImportJob.objects.filter(pk=self.pk).update(dropped=models.F("dropped") + 1)
        self.dropped += 1

    def delete_dropped_videos(self) -> int:
        """The videos this backfill listed but whose exact date was before `since`: deleted
        when no other import has them (then they were created by this one's listing) and they
        were never enriched. Their items go with them; the job's counts keep them. Their cards,
        sent live as they were listed, leave the pages of everyone who saw them. Returns how
        many videos were deleted."""
        if not self.since:
            return 0
        dropped = self.items.filter(status="skipped", error=self.dropped_reason)
        others = ImportJobItem.objects.exclude(job=self).values("video_id")
        doomed = (
            Video.objects.filter(pk__in=dropped.values("video_id"))
            .filter(stage__in=[Video.Stage.CREATED, Video.Stage.METADATA])
            .exclude(pk__in=others)
        )
        videos = list(doomed.only("pk", "youtube_id", "channel_id", "title"))
        if not videos:
            return 0
        pks = [video.pk for video in videos]
        doomed.filter(pk__in=pks).delete()
        # One another import took meanwhile was kept (the filters are checked again): its card
        # stays.
        kept = set(Video.objects.filter(pk__in=pks).values_list("pk", flat=True))
        gone = [video for video in videos if video.pk not in kept]
        # Each card's removal for the pages, and `video:dropped` for API clients of the stream.
        fragments = [video.removal_fragment() for video in gone]
        fragments += [video.dropped_event() for video in gone]
        for user_id in self.audience():
            live.publish(user_id, fragments)
        return len(gone)

    @classmethod
    def start_download(cls, owner, videos: list[Video], quality: str) -> tuple[ImportJob, bool]:
        """A job that downloads these videos' media at `quality` (videos of one channel, which
        `owner` sees): an import with no listing, one item per video (imports/media.py's
        enqueue_download). Returns (job, created); an import of the channel already open for
        `owner` is returned as it is (created False), nothing added to it."""
        from chirp import engine
        from chirp.jobs import IllegalTransition

        channels = {video.channel_id for video in videos}
        if len(channels) != 1:
            raise ValueError("start_download takes videos of one channel")
        channel = Channel.objects.visible_to(owner).filter(pk=channels.pop()).first()
        if channel is None:
            raise IllegalTransition("None of your imports has listed this channel.")
        existing = cls.open_for(owner, channel.youtube_url)
        if existing is not None:
            return existing, False
        try:
            with transaction.atomic():
                job = cls.objects.create(
                    owner=owner,
                    channel_url=channel.youtube_url,
                    channel=channel,
                    media_quality=Quality(quality).value,
                    prepared=True,  # nothing to list: the videos are known
                    total=len(videos),
                )
                ImportJobItem.objects.bulk_create(
                    ImportJobItem(job=job, video=video) for video in videos
                )
        except IntegrityError:
            existing = cls.open_for(owner, channel.youtube_url)
            if existing is None:
                raise
            return existing, False
        engine.wake_lane_on_commit(cls.lane)
        return job, True

    # -- state shown -----------------------------------------------------------------------------

    def get_absolute_url(self) -> str:
        return reverse("imports:job_detail", args=[self.pk])

    @classmethod
    def totals_for(cls, user) -> list[tuple[str, int | str]]:
        """The channels `user` sees (Channel.seen), the videos and transcripts of those, and
        the media stored of them (the storage used, once there is some)."""
        channels = Channel.objects.visible_to(user)
        videos = Video.objects.filter(channel__in=channels.values("pk")).aggregate(
            videos=Count("pk"), transcripts=Count("pk", filter=Video.has_transcript_q())
        )
        totals: list[tuple[str, int | str]] = [
            ("Channels", channels.count()),
            ("Videos", videos["videos"]),
            ("Transcripts", videos["transcripts"]),
        ]
        stored = MediaFile.objects.filter(video__channel__in=channels.values("pk")).totals()
        if stored["videos"]:  # (a "0 bytes" would make an empty dashboard look used)
            totals += [
                ("Stored", stored["videos"]),
                ("Storage used", filesizeformat(stored["size"])),
            ]
        return totals

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    @property
    def title(self) -> str:
        if self.channel_id and self.channel:
            return str(self.channel)
        return self.channel_url.removeprefix(f"{YOUTUBE}/")

    @property
    def can_retry(self) -> bool:
        """ "Retry failed" is offered only when a retry could help: not for a job whose failed
        videos all failed for good (private, removed, members-only)."""
        if not super().can_retry:
            return False
        return not self.prepared or self.retryable_items().exists()

    def retryable_items(self) -> models.QuerySet[ImportJobItem]:  # type: ignore[override]
        return (
            super()
            .retryable_items()
            .exclude(
                video__stage=Video.Stage.ERROR, video__error_reason__in=Video.PERMANENT_REASONS
            )
        )

    @property
    def pause(self):
        """The limiter's pause, while this job waits for it (None otherwise)."""
        if not self.is_open:
            return None
        from imports.limiter import Limiter

        return Limiter().current_pause()

    @property
    def is_reimport(self) -> bool:
        """The channel was imported before: this import looks for what is new. (Known at the
        start when the channel is; once listed, when some listed videos were already there.)"""
        return bool(self.known or self.only_new or self.reimporting_from)

    @property
    def reimporting_from(self) -> bool:
        # Before the listing: a channel set at the start is one Chirp has seen (Channel.known_for).
        return not self.prepared and self.channel_id is not None

    @property
    def listing_label(self) -> str:
        return "Checking for new videos" if self.is_reimport else "Listing the channel's videos"

    @property
    def phase_label(self) -> str:
        if self.status == PENDING:
            return "Waiting for its turn"
        if self.status == self.Status.LISTING:
            return self.listing_label
        if self.status == self.Status.ENRICHING:
            return f"Enriching videos: {self.processed} of {self.total}"
        return ""

    @property
    def progress_text(self) -> str:
        """The counts under the progress bar (card and row, page and live update alike): what
        is happening while the import runs, what happened once it ended."""
        already = self.skipped - self.dropped + self.known
        if self.status == FAILED:
            reason = self.error.rstrip(".") or "the import stopped"
            parts = [f"Failed: {reason}", f"{self.done} imported", f"{self.failed} failed"]
        elif self.status == CANCELLED:
            parts = ["Cancelled", f"{self.done} of {self.total} imported"]
        elif self.status == COMPLETED:
            if self.total == 0:
                parts = ["Nothing new" if self.is_reimport else "No videos listed"]
            elif self.since:
                parts = [f"{_videos(self.total)} found since {format_day(self.since)}"]
                parts.append(f"{self.done} imported")
            elif self.is_reimport:
                parts = [_videos(self.total, "new "), f"{self.done} imported"]
            else:
                parts = [
                    "Completed with failures" if self.failed else "Completed",
                    f"{self.done} imported",
                ]
            if self.failed and self.total:
                parts.append(f"{self.failed} failed")
        else:
            parts = [f"{self.done} imported", f"{self.failed} failed"]
            if self.cancelled:
                parts.append(f"{self.cancelled} cancelled")
            if self.prepared:
                parts.append(f"{self.total} new" if self.is_reimport else f"{self.total} listed")
            parts.append(f"{self.percent} %")
        if already:
            parts.append(f"{already} already there")
        if self.dropped:
            parts.append(f"{self.dropped} {self.dropped_reason.lower()}")
        return " · ".join(parts)

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
        if self.skipped - self.dropped + self.known:
            parts.append(f"{self.skipped - self.dropped + self.known} already there")
        if self.dropped:
            parts.append(f"{self.dropped} {self.dropped_reason.lower()}")
        if self.failed:
            parts.append(f"{self.failed} failed")
        return ", ".join(parts)

    def _finished_toast(self) -> list[tuple[str, str]]:
        # A row of a channel list (imports/models/lists.py) is told in the list's own toast
        # and report: a 200-channel list does not toast 200 times.
        events = [self.backfill_completed_event()] if self.since else []
        if self.list_rows.exists():
            return events
        return super()._finished_toast() + events

    # Seed 002's events of a backfill since a date, JSON on the owner's stream (README, live
    # events): `backfill:started` once it is listed, `backfill:completed` once it ended.

    def backfill_started_event(self, listed: int) -> tuple[str, str]:
        """`listed`: the videos listed as published since the date (give or take the week's
        margin: some may be dropped by their exact date)."""
        return live.json_event("backfill:started", {**self._backfill_json(), "totalVideos": listed})

    def backfill_completed_event(self) -> tuple[str, str]:
        return live.json_event(
            "backfill:completed",
            {
                **self._backfill_json(),
                "status": self.status,
                "totalFound": self.total - self.dropped,  # published on or after the date
                "totalEnqueued": self.total,
                "imported": self.done,
                "failed": self.failed,
                "publishedBeforeSince": self.dropped,
            },
        )

    def _backfill_json(self) -> dict[str, Any]:
        since = self.since.isoformat() if self.since else None
        return {"jobId": self.pk, "channelId": self.channel_id, "since": since}

    def as_json(self) -> dict[str, Any]:
        pause = self.pause
        return {
            "id": self.pk,
            "status": self.status,
            "channelUrl": self.channel_url,
            "channelId": self.channel_id,
            "channelTitle": self.channel.title if self.channel_id and self.channel else None,
            "options": {
                "tab": self.tab,
                "limit": self.limit,
                "onlyNew": self.only_new,
                "since": self.since.isoformat() if self.since else None,
                "quality": self.media_quality or None,
            },
            "publishedBeforeSince": self.dropped,
            "total": self.total,
            "done": self.done,
            "skipped": self.skipped,
            "alreadyImported": self.known,
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

    prepare_with = "imports.enrichment.list_channel"
    process_item_with = "imports.enrichment.enrich_item"

    def upkeep(self, final: bool = False) -> None:
        """The search vectors of the transcripts stored meanwhile (a batch a tick; all of them,
        for every video, before the import finishes), and the channel's numbers for the other
        users who see it."""
        Video.refresh_search_documents(limit=0 if final else SEARCH_REFRESH_BATCH)
        if final:
            self.delete_dropped_videos()
        self._show_channel_to_watchers(final)

    # -- live ----------------------------------------------------------------------------------

    @classmethod
    def banner_for(cls, owner_id: int) -> dict[str, Any]:
        """What the importing banner shows: the owner's open imports, all together."""
        totals = cls.objects.filter(owner_id=owner_id, status__in=cls.OPEN_STATUSES).aggregate(
            jobs=Count("pk"),
            # Not listed yet, of a channel Chirp has seen: checking for new videos.
            rechecks=Count("pk", filter=Q(prepared=False, channel__isnull=False)),
            listing=Count("pk", filter=Q(prepared=False)),
            total=Coalesce(models.Sum("total"), 0),
            processed=Coalesce(
                models.Sum(models.F("done") + models.F("skipped") + models.F("failed")), 0
            ),
        )
        total, processed = totals["total"], totals["processed"]
        from imports.limiter import Limiter

        return {
            "jobs": totals["jobs"],
            "checking": totals["listing"] and totals["rechecks"] == totals["listing"],
            "videos": total,
            "percent": min(100, round(100 * processed / total)) if total else 0,
            "pause": Limiter().current_pause() if totals["jobs"] else None,
        }

    def created_fragments(self) -> list[tuple[str, str]]:
        """A new import of a channel its owner sees already goes on top of that channel's
        imports and its "Importing now" (a channel they do not see yet has no page open to
        take it)."""
        if not self.channel_id:
            return []
        row = render_to_string("imports/partials/job.html#job_row", {"job": self})
        card = render_to_string("imports/partials/job.html#job_card", {"job": self})
        return [
            (f"{self.channel.dom_id}-import-created", row),
            (f"{self.channel.dom_id}-active-created", card),  # "Importing now"
        ]

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


def format_day(day: date) -> str:
    """1 Mar 2026."""
    return f"{day.day} {day:%b %Y}"


def _videos(n: int, adjective: str = "") -> str:
    return f"{n} {adjective}video{'s' if n != 1 else ''}"


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
    # The stored media its card shows at every stage: read with the batch, not per stage.
    work_prefetched = ("video__media_files",)

    class Meta(Item.Meta):
        verbose_name = "import job item"
        constraints = [
            models.UniqueConstraint(fields=["job", "video"], name="imports_item_once_per_job"),
        ]
