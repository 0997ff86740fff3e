"""Push: a WebSub subscription per watched channel (when CHIRP_PUBLIC_URL is set), and the
notifications the hub delivers to it, stored raw and handled by the worker.

The hub is told to call `<CHIRP_PUBLIC_URL>/websub/<token>/`; the token is unguessable and the
secret signs every notification, so only the hub we asked can make anything happen. Talking
to the hub is in imports/websub.py.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, models
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from imports.models.channels import Channel

TOPIC_URL = "https://www.youtube.com/xml/feeds/videos.xml"
# The share of a granted lease after which it is renewed: 75 to 80 %, by subscription, so that
# subscriptions verified together are not all renewed in the same minute.
RENEW_AT = 0.80
RENEW_SPREAD = 0.05
# A subscription the hub has not verified this long after the request is asked again.
VERIFY_WAIT = timedelta(hours=1)
GOLDEN = 0.6180339887


def push_enabled() -> bool:
    return bool(settings.CHIRP_PUBLIC_URL)


def topic_for(channel_id: str) -> str:
    return f"{TOPIC_URL}?channel_id={channel_id}"


def _token() -> str:
    return secrets.token_urlsafe(32)


def _secret() -> str:
    return secrets.token_hex(32)


class WebSubSubscription(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "Pending"  # asked; the hub has not verified it yet
        VERIFIED = "verified", "Verified"
        FAILED = "failed", "Failed"  # the hub refused, could not be reached, or denied it
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"  # nobody follows the channel any more

    channel = models.OneToOneField(Channel, on_delete=models.CASCADE, related_name="websub")
    topic = models.CharField(max_length=300)
    token = models.CharField(max_length=64, unique=True, default=_token, editable=False)
    secret = models.CharField(max_length=64, default=_secret, editable=False)
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    created = models.DateTimeField(default=timezone.now)
    requested = models.DateTimeField(null=True, blank=True, help_text="Last request to the hub.")
    verified = models.DateTimeField(null=True, blank=True)
    lease_seconds = models.PositiveIntegerField(null=True, blank=True)
    lease_expires = models.DateTimeField(null=True, blank=True)
    # When the next subscribe request goes out: the first one, a retry, or the renewal.
    next_try = models.DateTimeField(null=True, blank=True, db_index=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Failed requests in a row.")
    last_error = models.TextField(blank=True)
    last_notification = models.DateTimeField(null=True, blank=True)
    # The rate limit: notifications counted in the current minute.
    window_start = models.DateTimeField(null=True, blank=True, editable=False)
    window_count = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        verbose_name = "WebSub subscription"

    def __str__(self) -> str:
        return f"push of {self.channel}: {self.describe()}"

    @property
    def callback_url(self) -> str:
        path = reverse("websub_callback", args=[self.token])
        return f"{settings.CHIRP_PUBLIC_URL}{path}"

    def is_live(self, now: datetime | None = None) -> bool:
        """Verified, and its lease still running: the hub pushes this channel's uploads."""
        now = now or timezone.now()
        return self.state == self.State.VERIFIED and bool(
            self.lease_expires and self.lease_expires > now
        )

    def describe(self) -> str:
        """The state as a person reads it (the channel page, the admin)."""
        when = "%Y-%m-%d %H:%M UTC"
        if self.state == self.State.VERIFIED:
            if self.lease_expires and self.lease_expires <= timezone.now():
                return f"expired at {self.lease_expires:{when}}"
            return (
                f"verified until {self.lease_expires:{when}}" if self.lease_expires else "verified"
            )
        if self.state == self.State.PENDING:
            if self.requested:
                return f"pending: asked at {self.requested:{when}}, not verified by the hub yet"
            return "pending: not asked yet"
        if self.state == self.State.FAILED:
            return f"failed: {self.last_error or 'unknown reason'}"
        return "unsubscribed"

    # -- lifecycle ------------------------------------------------------------------------------

    @classmethod
    def want(cls, channel: Channel, now: datetime | None = None) -> WebSubSubscription | None:
        """The channel is watched: subscribe (now, through the worker). A subscription that had
        ended starts over with a new token and secret. None when push is off."""
        if not push_enabled():
            return None
        now = now or timezone.now()
        sub, created = cls.objects.get_or_create(
            channel=channel,
            defaults={"topic": topic_for(channel.youtube_id), "next_try": now},
        )
        if not created and sub.state == cls.State.UNSUBSCRIBED:
            sub.token, sub.secret = _token(), _secret()
            sub.state, sub.next_try, sub.attempts, sub.last_error = cls.State.PENDING, now, 0, ""
            sub.verified = sub.lease_expires = sub.lease_seconds = None
            sub.save()
        return sub

    @classmethod
    def end(cls, channel: Channel) -> WebSubSubscription | None:
        """Nobody follows the channel any more: no notification is taken, and the hub is told
        to stop (the caller sends the request). None when there was nothing to end."""
        sub = cls.objects.filter(channel=channel).exclude(state=cls.State.UNSUBSCRIBED).first()
        if sub is None:
            return None
        cls.objects.filter(pk=sub.pk).update(state=cls.State.UNSUBSCRIBED, next_try=None)
        sub.state, sub.next_try = cls.State.UNSUBSCRIBED, None
        return sub

    def mark_requested(self, now: datetime) -> None:
        """The subscribe request is about to go out: if the hub never verifies it, ask again
        after VERIFY_WAIT. A verified subscription stays verified while it is renewed."""
        fields = {"requested": now, "next_try": now + VERIFY_WAIT}
        if self.state == self.State.FAILED:
            fields["state"] = self.State.PENDING
        WebSubSubscription.objects.filter(pk=self.pk).update(**fields)
        for name, value in fields.items():
            setattr(self, name, value)

    def mark_accepted(self) -> None:
        WebSubSubscription.objects.filter(pk=self.pk).update(attempts=0, last_error="")
        self.attempts, self.last_error = 0, ""

    def mark_failed(self, error: str, retry_in: timedelta, now: datetime) -> None:
        """The hub refused or could not be reached: try again after `retry_in`. A verified
        subscription whose lease still runs keeps working meanwhile (only the error shows)."""
        fields = {
            "attempts": F("attempts") + 1,
            "last_error": error[:2000],
            "next_try": now + retry_in,
        }
        if not self.is_live(now):
            fields["state"] = self.State.FAILED
        WebSubSubscription.objects.filter(pk=self.pk).exclude(state=self.State.UNSUBSCRIBED).update(
            **fields
        )
        self.refresh_from_db()

    def verify(self, mode: str, topic: str, lease_seconds: int | None) -> bool:
        """The hub's verification of a request: True when it is one we made (the hub is
        then answered its challenge). A subscription's lease is recorded, and its renewal set
        at about 80 % of it."""
        if topic != self.topic:
            return False
        if mode == "unsubscribe":
            return self.state == self.State.UNSUBSCRIBED
        if mode != "subscribe" or self.state == self.State.UNSUBSCRIBED:
            return False
        now = timezone.now()
        lease = lease_seconds or settings.CHIRP_WEBSUB_LEASE_SECONDS
        share = RENEW_AT - RENEW_SPREAD * ((self.pk * GOLDEN) % 1)
        fields = {
            "state": self.State.VERIFIED,
            "verified": now,
            "lease_seconds": lease,
            "lease_expires": now + timedelta(seconds=lease),
            "next_try": now + timedelta(seconds=lease * share),
            "attempts": 0,
            "last_error": "",
        }
        taken = (
            WebSubSubscription.objects.filter(pk=self.pk)
            .exclude(state=self.State.UNSUBSCRIBED)
            .update(**fields)
        )
        return taken == 1

    def deny(self, reason: str) -> None:
        """The hub denied the subscription (hub.mode=denied): shown, and asked again later."""
        WebSubSubscription.objects.filter(pk=self.pk).exclude(state=self.State.UNSUBSCRIBED).update(
            state=self.State.FAILED,
            last_error=f"The hub denied the subscription: {reason or 'no reason given'}"[:2000],
            next_try=timezone.now() + VERIFY_WAIT,
        )

    @classmethod
    def take_notification(cls, pk: int, token: str, now: datetime) -> bool:
        """Count one notification against the subscription's per-minute limit, in one
        conditional UPDATE (so concurrent deliveries are counted exactly). False when the
        limit is reached, the subscription has ended, or it is gone (no row has that id and
        token any more).

        Written in SQL: the callback runs it for every notification, and building it with the
        ORM cost more than the rest of the callback's database work together."""
        window = now - timedelta(minutes=1)
        when = connection.ops.adapt_datetimefield_value
        table = connection.ops.quote_name(cls._meta.db_table)
        new_window = "window_start IS NULL OR window_start <= %s"
        sql = (
            f"UPDATE {table} SET "  # noqa: S608 (the model's name; every value is a parameter)
            f"window_count = CASE WHEN {new_window} THEN 1 ELSE window_count + 1 END, "
            f"window_start = CASE WHEN {new_window} THEN %s ELSE window_start END, "
            "last_notification = %s "
            f"WHERE id = %s AND token = %s AND state <> %s AND ({new_window} OR window_count < %s)"
        )
        params = [when(window), when(window), when(now), when(now), pk, token]
        params += [cls.State.UNSUBSCRIBED.value, when(window), settings.CHIRP_WEBSUB_MAX_PER_MINUTE]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount == 1


class WebSubNotification(models.Model):
    """A signed notification as the hub delivered it, kept until the worker has handled it
    (a worker that dies mid-way leaves it unprocessed, and it is handled again)."""

    subscription = models.ForeignKey(
        WebSubSubscription, on_delete=models.CASCADE, related_name="notifications"
    )
    body = models.BinaryField()
    received = models.DateTimeField(default=timezone.now)
    processed = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        verbose_name = "WebSub notification"
        indexes = [
            models.Index(
                fields=["received"],
                condition=Q(processed__isnull=True),
                name="imports_websub_unprocessed",
            )
        ]

    def __str__(self) -> str:
        return f"notification {self.pk} for {self.subscription.channel_id}"

    @classmethod
    def store(cls, subscription_id: int, body: bytes, received: datetime) -> int:
        """Keep a notification's body: its id. (One INSERT, for the same reason as
        `WebSubSubscription.take_notification`.)"""
        table = connection.ops.quote_name(cls._meta.db_table)
        sql = (
            f"INSERT INTO {table} (subscription_id, body, received, attempts, error) "  # noqa: S608
            "VALUES (%s, %s, %s, 0, '') RETURNING id"
        )
        received_at = connection.ops.adapt_datetimefield_value(received)
        with connection.cursor() as cursor:
            cursor.execute(sql, [subscription_id, body, received_at])
            return cursor.fetchone()[0]

    def claim(self) -> bool:
        """Take this notification to handle it (one worker at a time, counted)."""
        taken = WebSubNotification.objects.filter(
            pk=self.pk, processed__isnull=True, attempts=self.attempts
        ).update(attempts=F("attempts") + 1)
        self.attempts += 1
        return taken == 1

    def done(self, error: str = "") -> None:
        WebSubNotification.objects.filter(pk=self.pk).update(
            processed=timezone.now(), error=error[:2000]
        )
