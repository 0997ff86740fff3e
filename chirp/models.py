from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone


class LaneSlot(models.Model):
    """One place to run a job in a lane. A lane with concurrency N has N slots.

    A worker may run a job only while it holds a slot: holding it is a conditional UPDATE
    (free, or its holder stopped beating), so the limit holds across every qcluster process.
    """

    lane = models.CharField(max_length=50)
    slot = models.PositiveSmallIntegerField()
    holder = models.CharField(max_length=100, blank=True)
    heartbeat = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["lane", "slot"], name="chirp_laneslot_unique"),
        ]
        ordering = ["lane", "slot"]

    def __str__(self) -> str:
        return f"{self.lane}#{self.slot}"


class ApiToken(models.Model):
    """A key for the JSON API (`Authorization: Bearer <key>`), acting as its user.

    Only a SHA-256 of the key is kept: the key itself is shown once, when the token is created
    in the admin, and a leaked database cannot be used to call the API.
    """

    PREFIX = "chirp_"

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

    class Meta:
        verbose_name = "API token"
        ordering = ["user", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    @staticmethod
    def _hash(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    def set_new_key(self) -> str:
        """Give the token a new random key and return it (the only time it can be read)."""
        key = self.PREFIX + secrets.token_urlsafe(32)
        self.key_hash = self._hash(key)
        self.hint = key[: len(self.PREFIX) + 4]
        return key

    @classmethod
    def user_for_key(cls, key: str):
        """The active user the key belongs to, or None."""
        token = (
            cls.objects.select_related("user")
            .filter(key_hash=cls._hash(key.strip()), user__is_active=True)
            .first()
        )
        if token is None:
            return None
        cls.objects.filter(pk=token.pk).update(last_used=timezone.now())
        return token.user
