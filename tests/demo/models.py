"""A demonstration job type that proves the engine: items that sleep, and fail on request."""

from __future__ import annotations

import time

from django.db import models
from django.db.models import F
from django.template.loader import render_to_string

from chirp.engine import RunContext
from chirp.jobs import CANCELLED, COMPLETED, FAILED, PENDING, Item, ItemError, Job


class DemoJob(Job):
    lane = "demo"
    PREPARING = "preparing"
    PROCESSING = "running"

    class Status(models.TextChoices):
        PENDING_ = PENDING, "Pending"
        PREPARING_ = "preparing", "Preparing"
        RUNNING = "running", "Running"
        COMPLETED_ = COMPLETED, "Completed"
        FAILED_ = FAILED, "Failed"
        CANCELLED_ = CANCELLED, "Cancelled"

    status = models.CharField(max_length=20, choices=Status.choices, default=PENDING)
    size = models.PositiveIntegerField(default=5)
    delay = models.FloatField(default=0.0)
    fail_numbers = models.CharField(max_length=200, blank=True)
    threads = models.PositiveSmallIntegerField(default=1)
    # Off for the engine benchmark, whose items must do no work at all.
    record_runs = models.BooleanField(default=True)

    @property
    def pool_size(self) -> int:  # type: ignore[override]
        return self.threads

    def prepare(self, ctx: RunContext):
        return [DemoItem(number=n) for n in range(1, self.size + 1)]

    def process_item(self, item: Item, ctx: RunContext) -> None:
        if self.record_runs:
            DemoItem.objects.filter(pk=item.pk).update(runs=F("runs") + 1)
        if self.delay:
            time.sleep(self.delay)
        if str(item.number) in self.fail_numbers.split(","):
            raise ItemError(f"Item {item.number} failed on purpose.")
        item.complete()

    def live_fragments(self):
        return [
            (self.dom_id, render_to_string("demo/jobs.html#job_row", {"job": self})),
        ]


class DemoItem(Item):
    job = models.ForeignKey(DemoJob, on_delete=models.CASCADE, related_name="items")
    number = models.PositiveIntegerField()
    runs = models.PositiveIntegerField(default=0)

    def live_fragments(self):
        return [(self.dom_id, render_to_string("demo/jobs.html#item_row", {"item": self}))]
