from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class LaneSlot(models.Model):
    """One place to run a job in a lane. A lane with concurrency N has N slots.

    A worker may run a job only while it holds a slot: holding it is a conditional UPDATE
    (free, or its holder stopped beating), so the limit holds across every qcluster process.
    """

    lane = models.CharField(max_length=50)
    slot = models.PositiveSmallIntegerField()
    holder = models.CharField(max_length=100, blank=True)
    # When the holder took the slot (the live lanes page shows since when a worker holds it;
    # the heartbeat moves on every beat).
    held_since = models.DateTimeField(null=True, blank=True)
    heartbeat = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["lane", "slot"], name="chirp_laneslot_unique"),
        ]
        ordering = ["lane", "slot"]
        # The admin lists them as the live lanes page (chirp.admin.LiveLanesAdmin).
        verbose_name_plural = "live lanes"

    def __str__(self) -> str:
        return f"{self.lane}#{self.slot}"


class ApiToken(models.Model):
    """A key for the JSON API (`Authorization: Bearer <key>`), acting as its user.

    Only a SHA-256 of the key is kept: the key itself is shown once, when the token is created
    (on the account page or in the admin), and a leaked database cannot be used to call the API.
    """

    PREFIX = "chirp_"
    # last_used is written at most this often per token: a script calling the API in a loop
    # should not turn every read into a write.
    LAST_USED_PRECISION = timedelta(minutes=1)

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(
        max_length=100, help_text="What the token is for, e.g. 'backup script'."
    )
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    # The key's first characters, to tell tokens apart in the admin.
    hint = models.CharField(max_length=16, editable=False)
    created = models.DateTimeField(default=timezone.now, editable=False)
    last_used = models.DateTimeField(null=True, blank=True, editable=False)
    expires = models.DateTimeField(
        null=True, blank=True, help_text="Leave empty for a token that never expires."
    )

    class Meta:
        verbose_name = "API token"
        ordering = ["user", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    @staticmethod
    def _hash(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @classmethod
    def create(cls, user, name: str, expires: datetime | None = None) -> tuple[ApiToken, str]:
        """A new token for `user` and its key (the only time the key can be read)."""
        token = cls(user=user, name=name, expires=expires)
        key = token.set_new_key()
        token.save()
        return token, key

    def set_new_key(self) -> str:
        """Give the token a new random key and return it (the only time it can be read)."""
        key = self.PREFIX + secrets.token_urlsafe(32)
        self.key_hash = self._hash(key)
        self.hint = key[: len(self.PREFIX) + 4]
        return key

    @classmethod
    def for_key(cls, key: str) -> ApiToken | None:
        """The token of an active user that the key belongs to, expired or not, or None."""
        return (
            cls.objects.select_related("user")
            .filter(key_hash=cls._hash(key.strip()), user__is_active=True)
            .first()
        )

    @property
    def has_expired(self) -> bool:
        return self.expires is not None and self.expires <= timezone.now()

    def record_use(self) -> None:
        """Note that the token was just used, unless that was already noted in the last minute."""
        now = timezone.now()
        ApiToken.objects.filter(
            Q(last_used__isnull=True) | Q(last_used__lt=now - self.LAST_USED_PRECISION),
            pk=self.pk,
        ).update(last_used=now)

    @classmethod
    def user_for_key(cls, key: str):
        """The active user an unexpired token with this key belongs to, or None."""
        token = cls.for_key(key)
        if token is None or token.has_expired:
            return None
        token.record_use()
        return token.user
