"""YouTube channels: a catalog shared by the installation; who sees one is Channel.seen."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, models, transaction
from django.db.models import Count, Exists, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from chirp.jobs import (
    CANCELLED,
    COMPLETED,
    FAILED,
)
from imports.artwork import FOLDER as ARTWORK_FOLDER
from imports.youtube import YOUTUBE, ChannelListing, ChannelRef

if TYPE_CHECKING:
    pass


class ChannelQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> ChannelQuerySet:
        """The channels `user` sees (Channel.seen): what their pages, searches and API show."""
        return self.filter(Channel.seen(user, OuterRef("pk")))

    def seen_by_someone(self) -> ChannelQuerySet:
        """The channels at least one user sees (Channel.seen: an import of theirs listed it,
        or they follow it)."""
        return self.filter(
            Exists(ImportJob.objects.filter(channel=OuterRef("pk")))
            | Exists(Follow.objects.filter(channel=OuterRef("pk")))
        )


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
    # When the artwork backfill last tried to fetch its missing pictures (imports/artwork.py).
    artwork_tried = models.DateTimeField(null=True, blank=True, editable=False)
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
        # A job "failed" for the person reading the card when it failed, or when it ended with
        # videos it could not import (its status then says completed or cancelled). The cards'
        # tooltips (channel_detail.html) give these definitions.
        failed_job = Q(status=FAILED) | Q(status__in=(COMPLETED, CANCELLED), failed__gt=0)
        jobs = ImportJob.objects.filter(channel=self, owner=user).aggregate(
            active=Count("pk", filter=Q(status__in=ImportJob.OPEN_STATUSES)),
            failed=Count("pk", filter=failed_job),
            cancelled=Count("pk", filter=Q(status=CANCELLED)),
        )
        ended = videos["imported"] + videos["failed"]
        return {
            "totalVideos": videos["total"],
            "importedVideos": videos["imported"],
            "withTranscripts": videos["with_transcripts"],
            "failedVideos": videos["failed"],
            "activeJobs": jobs["active"],
            "failedJobs": jobs["failed"],
            "cancelledJobs": jobs["cancelled"],
            # Over the videos whose import ended (None until one did).
            "successRate": round(100 * videos["imported"] / ended, 2) if ended else None,
        }

    def stats_fragment(self, user) -> tuple[str, str]:
        """The stat cards as the channel page renders them, for `user`'s stream. Sent with the
        import's progress (throttled ticks, transitions), never per video stage: two aggregates
        per stage would slow the hot path for numbers a tick later is soon enough for."""
        context = {"channel": self, "stats": self.stats_for(user)}
        html = render_to_string("imports/channel_detail.html#channel_stats", context)
        return (self.stats_dom_id, html)

    def row_fragment(self, user: Any) -> tuple[str, str] | None:
        """The channel's row in `user`'s channel list (None when they do not see it)."""
        row = channels_of(user).filter(pk=self.pk).first()
        if row is None:
            return None
        return (
            row.dom_id,
            render_to_string("imports/channel_list.html#channel_row", {"channel": row}),
        )

    def artwork_fragments(self) -> list[tuple[str, str]]:
        """The channel page's banner and avatar, each its own event (the same for everyone)."""
        context = {"channel": self}
        return [
            (
                f"{self.dom_id}-{kind}",
                render_to_string(f"imports/channel_detail.html#channel_{kind}", context),
            )
            for kind in ("banner", "avatar")
        ]

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

        Or the user follows it (issue 12: a followed channel and its new videos are visible
        to those who follow or imported it)."""
        return Exists(ImportJob.objects.filter(owner=user, channel=channel)) | Exists(
            Follow.objects.filter(user=user, channel=channel)
        )

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
    # Whose channel it is, for this user (people are private: only their own links).
    person = PersonChannel.objects.filter(owner=user, channel=OuterRef("pk"))

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
            person_id=Subquery(person.values("person")[:1]),
            person_name=Subquery(person.values("person__name")[:1]),
            followed=Exists(Follow.objects.filter(user=user, channel=OuterRef("pk"))),
        )
        .order_by("title", "pk")
    )


# The other models of the catalog refer to Channel at import time; Channel's methods refer to
# them only when called, so they are imported last (after Channel exists).
from imports.models.following import Follow  # noqa: E402
from imports.models.jobs import ImportJob  # noqa: E402
from imports.models.people import PersonChannel  # noqa: E402
from imports.models.videos import Video  # noqa: E402
