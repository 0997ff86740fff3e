from __future__ import annotations

from django.db import models


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
