"""People: the person behind a channel (name, email, type), as a channel list names them.

People are private to the user who imported the list: another user's people, and the links
between their people and channels, are never shown to anyone else. A person may have several
channels; a channel belongs to at most one person per user (two users may each say whose it is).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from imports.models.channels import Channel
from imports.models.media import MediaFile
from imports.models.videos import Video

# What a spreadsheet runs as a formula when a cell starts with it (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """A CSV cell that a spreadsheet shows as text: one starting like a formula gets a `'`."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class PersonQuerySet(models.QuerySet):
    def of(self, user: Any) -> PersonQuerySet:
        return self.filter(owner=user)

    def with_totals(self, user: Any) -> PersonQuerySet:
        """Each person with their channels' totals (over the channels `user` sees)."""
        seen = Q(channel_links__channel__in=Channel.objects.visible_to(user).values("pk"))
        videos = "channel_links__channel__videos"
        return self.annotate(
            channel_count=Count("channel_links", filter=seen, distinct=True),
            video_count=Count(videos, filter=seen, distinct=True),
            imported_count=Count(
                videos, filter=seen & Q(**{f"{videos}__stage": Video.Stage.COMPLETE}), distinct=True
            ),
            transcript_count=Count(
                videos,
                filter=seen
                & Q(**{f"{videos}__transcript_source__in": Video.with_transcript_sources()}),
                distinct=True,
            ),
        )


class Person(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="people"
    )
    name = models.CharField(max_length=255, blank=True)
    # Kept as written in the list (a list may hold something that is not an email: the preview
    # flags it, and the person keeps it).
    email = models.CharField(max_length=254, blank=True)
    type = models.CharField(max_length=100, blank=True, db_index=True)
    # The list's other columns for this person, as written.
    extra = models.JSONField(default=dict, blank=True)
    channels = models.ManyToManyField(
        Channel, through="PersonChannel", related_name="people", blank=True
    )
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(auto_now=True)

    objects = PersonQuerySet.as_manager()

    class Meta:
        ordering = ["name", "pk"]
        verbose_name_plural = "people"
        indexes = [models.Index(fields=["owner", "name"])]

    def __str__(self) -> str:
        return self.name or self.email or f"Person {self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("imports:person_detail", args=[self.pk])

    def link(self, channel: Channel) -> PersonChannel:
        """Say that `channel` is this person's, for this person's owner (replacing whoever it
        belonged to before for them)."""
        link, _ = PersonChannel.objects.update_or_create(
            owner_id=self.owner_id, channel=channel, defaults={"person": self}
        )
        return link

    def visible_channels(self) -> models.QuerySet[Channel]:
        return self.channels.filter(pk__in=Channel.objects.visible_to(self.owner_id).values("pk"))

    def totals(self) -> dict[str, int]:
        """The person's page's totals, over the channels their owner sees: videos, imported,
        with transcripts, and the videos with stored media and those files' size (bytes)."""
        videos = Video.objects.filter(channel__in=self.visible_channels())
        totals = videos.aggregate(
            videos=Count("pk"),
            imported=Count("pk", filter=Q(stage=Video.Stage.COMPLETE)),
            transcripts=Count("pk", filter=Video.has_transcript_q()),
        )
        totals["channels"] = self.visible_channels().count()
        media = MediaFile.objects.filter(video__in=videos).totals()
        totals["media"], totals["media_size"] = media["videos"], media["size"]
        return totals


class PersonChannel(models.Model):
    """Whose channel this is, for one user. `owner` repeats the person's owner so that the
    database itself keeps a channel to one person per user."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="channel_links")
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="person_links")
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "channel"], name="one_person_per_channel")
        ]

    def __str__(self) -> str:
        return f"{self.person} — {self.channel}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The owner is always the person's: a link cannot cross users.
        self.owner_id = self.person.owner_id
        super().save(*args, **kwargs)


def people_export_rows(user: Any) -> list[list[Any]]:
    """The people of `user` and their channels as CSV rows (one per person and channel, a
    person without channels on a row of their own), with counts; formula-like cells are
    neutralised."""
    header = [
        "name",
        "email",
        "type",
        "channel",
        "channel_url",
        "videos",
        "imported",
        "with_transcripts",
        "stored_media",
        "media_size_bytes",
    ]
    rows: list[list[Any]] = [header]
    visible = Channel.objects.visible_to(user)
    videos = Video.objects.filter(channel=OuterRef("pk")).order_by().values("channel")

    def count(queryset: models.QuerySet) -> Coalesce:
        return Coalesce(Subquery(queryset.annotate(n=Count("pk")).values("n")), 0)

    media_stored, media_size = MediaFile.objects.per_channel("pk")
    channels = visible.annotate(
        n_media=media_stored,
        n_media_size=media_size,
        n_videos=count(videos),
        n_imported=count(videos.filter(stage=Video.Stage.COMPLETE)),
        n_transcripts=count(videos.filter(Video.has_transcript_q())),
    )
    by_person: dict[int, list[Channel]] = {}
    links = PersonChannel.objects.filter(owner=user, channel__in=channels.values("pk"))
    annotated = {c.pk: c for c in channels.filter(person_links__owner=user)}
    for person_id, channel_id in links.values_list("person_id", "channel_id"):
        by_person.setdefault(person_id, []).append(annotated[channel_id])
    for person in Person.objects.of(user):
        person_cells = [person.name, person.email, person.type]
        for channel in by_person.get(person.pk, []) or [None]:
            if channel is None:
                rows.append([*person_cells, "", "", 0, 0, 0, 0, 0])
            else:
                rows.append(
                    [
                        *person_cells,
                        str(channel),
                        channel.youtube_url,
                        channel.n_videos,
                        channel.n_imported,
                        channel.n_transcripts,
                        channel.n_media,
                        channel.n_media_size,
                    ]
                )
    return [[spreadsheet_safe(cell) for cell in row] for row in rows]
