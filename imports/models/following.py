"""Following a channel: who follows it (Follow), and how Chirp watches it (ChannelWatch).

A channel is watched while at least one user follows it: polled every
CHIRP_FOLLOW_POLL_MINUTES (the watched channels spread evenly over that interval, so each
minute asks YouTube about the same number of them), and checked in full every
CHIRP_FOLLOW_FULL_CHECK_DAYS. The work itself is in imports/following.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from imports.models.channels import Channel

# The media issue's quality choices, as plain strings with the same values (a `Quality`
# choices class is being added beside it; this field will take it as its `choices`).
QUALITY_CHOICES = [
    ("none", "No media"),
    ("audio", "Audio only"),
    ("360", "360p"),
    ("480", "480p"),
    ("720", "720p"),
    ("1080", "1080p"),
    ("best", "Best available"),
]
QUALITIES = tuple(value for value, _ in QUALITY_CHOICES)


class CheckMethod(models.TextChoices):
    POLL = "poll", "Poll (RSS)"
    PUSH = "push", "Push (WebSub)"
    FULL = "full", "Full check"


class Follow(models.Model):
    """One user follows one channel: Chirp fetches its new uploads for them."""

    backfill: Any = None  # the import Follow.start began for a `since` date

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="follows"
    )
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="follows")
    # When the follow began: videos published before it are not "new" (backfill's job).
    created = models.DateTimeField(default=timezone.now)
    quality = models.CharField(
        "media quality of new videos", max_length=10, choices=QUALITY_CHOICES, default="none"
    )
    since = models.DateField(
        null=True, blank=True, help_text="Backfill: also import the videos published since then."
    )
    last_checked = models.DateTimeField(null=True, blank=True)
    last_check_method = models.CharField(max_length=10, choices=CheckMethod.choices, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["channel__title", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["user", "channel"], name="imports_follow_once"),
        ]

    def __str__(self) -> str:
        return f"{self.user} follows {self.channel}"

    @classmethod
    def start(
        cls, user: Any, channel: Channel, *, quality: str = "none", since: Any = None
    ) -> tuple[Follow, bool]:
        """Follow `channel` for `user` (its options updated when they follow it already), and
        watch the channel. Returns (follow, created).

        A `since` date (new, or changed) starts a one-time backfill: an import of the channel's
        videos published since then, for `user` (`follow.backfill`, the ImportJob; None when
        there is none to start)."""
        from imports.models.jobs import ImportJob
        from imports.youtube import ChannelRef

        with transaction.atomic():
            before = cls.objects.filter(user=user, channel=channel).values_list("since", flat=True)
            previous = before.first()
            follow, created = cls.objects.update_or_create(
                user=user, channel=channel, defaults={"quality": quality, "since": since}
            )
            if created:
                ChannelWatch.begin(channel)
            follow.backfill = None
            if since is not None and (created or since != previous):
                follow.backfill, _ = ImportJob.start(
                    user, ChannelRef.for_channel_id(channel.youtube_id), since=since
                )
        return follow, created

    @classmethod
    def stop(cls, user: Any, channel: Channel) -> bool:
        """Unfollow: nothing more is fetched for `user`; the last follower's leaving ends the
        watch. False when they did not follow it."""
        with transaction.atomic():
            deleted, _ = cls.objects.filter(user=user, channel=channel).delete()
            if deleted and not cls.objects.filter(channel=channel).exists():
                ChannelWatch.end(channel)
        return bool(deleted)

    def as_json(self) -> dict[str, Any]:
        return {
            "channelId": self.channel_id,
            "quality": self.quality,
            "since": self.since.isoformat() if self.since else None,
            "followedAt": self.created.isoformat(),
            "lastChecked": self.last_checked.isoformat() if self.last_checked else None,
            "lastCheckMethod": self.last_check_method or None,
            "lastError": self.last_error or None,
        }


def poll_interval() -> timedelta:
    return timedelta(minutes=settings.CHIRP_FOLLOW_POLL_MINUTES)


class ChannelWatch(models.Model):
    """A channel Chirp watches because someone follows it: when it is polled next, when it
    was last checked in full. Exists exactly while the channel has followers."""

    channel = models.OneToOneField(
        Channel, on_delete=models.CASCADE, primary_key=True, related_name="watch"
    )
    next_poll = models.DateTimeField(db_index=True)
    last_polled = models.DateTimeField(null=True, blank=True)
    # Set when the watch begins: the first full check comes a full period later.
    last_full_check = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "watched channel"

    def __str__(self) -> str:
        return f"watching {self.channel}"

    @classmethod
    def begin(cls, channel: Channel) -> None:
        _, created = cls.objects.get_or_create(
            channel=channel, defaults={"next_poll": timezone.now()}
        )
        if created:
            cls.spread()
        # Push too, where Chirp can be reached (a no-op otherwise; the request goes out from
        # the worker once this commits).
        from imports import websub

        websub.subscribe_on_commit(channel)

    @classmethod
    def end(cls, channel: Channel) -> None:
        if cls.objects.filter(channel=channel).delete()[0]:
            cls.spread()
        from imports import websub

        websub.unsubscribe_on_commit(channel)

    @classmethod
    def spread(cls, now: datetime | None = None) -> None:
        """Space the watched channels' polls evenly over the interval: the i-th of n is polled
        at i/n of it (a fixed phase, counted from the epoch), so every minute polls about the
        same number of channels, and a channel keeps its rhythm from one poll to the next.
        Run when a channel starts or stops being watched."""
        now = now or timezone.now()
        interval = poll_interval().total_seconds()
        watches = list(cls.objects.select_for_update().order_by("pk"))
        if not watches:
            return
        step = interval / len(watches)
        for i, watch in enumerate(watches):
            watch.next_poll = next_at_phase(now, i * step, interval)
        cls.objects.bulk_update(watches, ["next_poll"], batch_size=500)

    def claim_poll(self, now: datetime) -> bool:
        """Take this channel's due poll (one worker does it) and set the one after it, at the
        same phase. False when another worker took it first."""
        interval = poll_interval()
        following = self.next_poll + interval
        if following <= now:  # the worker was away: the next one due, at the same phase
            missed = (now - self.next_poll) // interval
            following = self.next_poll + (missed + 1) * interval
        taken = ChannelWatch.objects.filter(pk=self.pk, next_poll=self.next_poll).update(
            next_poll=following, last_polled=now
        )
        self.next_poll, self.last_polled = following, now
        return taken == 1

    def claim_full_check(self, now: datetime) -> bool:
        taken = ChannelWatch.objects.filter(
            pk=self.pk, last_full_check=self.last_full_check
        ).update(last_full_check=now)
        self.last_full_check = now
        return taken == 1


def next_at_phase(now: datetime, phase: float, interval: float) -> datetime:
    """The first moment at or after `now` that is `phase` seconds into an interval (intervals
    counted from the epoch)."""
    epoch = now.timestamp()
    offset = (phase - epoch) % interval
    return now + timedelta(seconds=offset)
