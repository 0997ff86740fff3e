"""The state of the YouTube rate limiter shared by every worker (imports/limiter.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models
from django.db.models import Value

if TYPE_CHECKING:
    pass


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
