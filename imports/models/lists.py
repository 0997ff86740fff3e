"""A channel list run as one batch (ListBatch) whose items are the list's rows (ListBatchRow).

The batch runs in the engine's own "lists" lane and hands its rows to the "imports" lane one at
a time: for each row it starts that channel's ordinary import (ImportJob, with the batch's
options, owned by the batch's owner) and waits for it to end before it starts the next. So the
imports lane never holds more than one import of a batch at once, and another user's import
queued meanwhile takes its turn (first come, first served, by `enqueued`) between two rows of
the batch rather than after all of them. Batches take turns in the lists lane a slice each
(ListBatch.release), so a second list is not held behind the whole first one either. The work
is in imports/batch.py.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.db.models.functions import Coalesce
from django.template.defaultfilters import filesizeformat, pluralize
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from chirp import live
from chirp.jobs import (
    CANCELLED,
    COMPLETED,
    FAILED,
    PENDING,
    TERMINAL,
    IllegalTransition,
    Item,
    ItemStatus,
    Job,
)
from imports.models.channels import Channel
from imports.models.following import QUALITY_CHOICES
from imports.models.jobs import ImportJob, ImportJobItem
from imports.models.media import MediaFile
from imports.models.people import Person, spreadsheet_safe
from imports.models.videos import Video

DRAFT = "draft"
PAUSED = "paused"


class ListBatch(Job):
    """One channel list, run as a batch of imports (one per valid row) for its owner.

    A batch is created as a draft when its list is previewed (it keeps the list's text, so
    "Start" runs exactly what was shown), and is queued when it is started.
    """

    lane = "lists"
    PREPARING = "preparing"
    PROCESSING = "running"

    class Status(models.TextChoices):
        DRAFT = DRAFT, "Draft"
        PENDING = PENDING, "Pending"
        PREPARING = "preparing", "Preparing"
        RUNNING = "running", "Running"
        PAUSED = PAUSED, "Paused"
        COMPLETED = COMPLETED, "Completed"
        FAILED = FAILED, "Failed"
        CANCELLED = CANCELLED, "Cancelled"

    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    name = models.CharField(max_length=255, blank=True, help_text="The list's file name.")
    # The list as it was previewed (at most CHIRP_LIST_MAX_BYTES: parse_list refused more).
    text = models.TextField()
    format = models.CharField(max_length=10)
    # The options, the same for every row's import.
    limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="A first import takes at most this many videos."
    )
    since = models.DateField(
        null=True, blank=True, help_text="Only the videos published since then."
    )
    only_new = models.BooleanField(
        "skip videos already imported",
        default=True,
        help_text="A channel imported before is only checked for new videos.",
    )
    quality = models.CharField(
        "media quality", max_length=10, choices=QUALITY_CHOICES, default="none"
    )
    follow = models.BooleanField("follow new uploads", default=False)

    class Meta(Job.Meta):
        verbose_name = "list import"
        indexes = [models.Index(fields=["owner", "-created"], name="imports_batch_owner_created")]

    # -- starting ------------------------------------------------------------------------------

    @classmethod
    def draft(cls, owner: Any, text: str, format: str, name: str = "", **options: Any) -> ListBatch:
        """The batch a preview would start (not queued: a draft is never run)."""
        defaults = cls.options_from_settings(options.pop("settings", None) or {})
        cls.delete_old_drafts(owner)
        return cls.objects.create(
            owner=owner,
            status=DRAFT,
            text=text,
            format=format,
            name=name[:255],
            **{**defaults, **options},
        )

    @classmethod
    def delete_old_drafts(cls, owner: Any = None) -> int:
        """Delete the drafts (lists previewed, never started) older than CHIRP_LIST_DRAFT_HOURS,
        `owner`'s or everyone's (the hourly task). Returns how many."""
        drafts = cls.objects.filter(status=DRAFT, created__lt=draft_age_limit())
        if owner is not None:
            drafts = drafts.filter(owner=owner)
        _, by_model = drafts.delete()
        return by_model.get(cls._meta.label, 0)

    @staticmethod
    def options_from_settings(list_settings: dict[str, Any]) -> dict[str, Any]:
        """The options a list's own settings (the plan's JSON "settings") pre-fill."""
        options: dict[str, Any] = {}
        if isinstance(list_settings.get("skip_existing"), bool):
            options["only_new"] = list_settings["skip_existing"]
        quality = str(list_settings.get("quality", "")).lower().removesuffix("p")
        if quality in dict(QUALITY_CHOICES):
            options["quality"] = quality
        return options

    def start(self, **options: Any) -> None:
        """Queue a draft with the options chosen on the preview (once: a started batch is
        not started again by a second click)."""
        from chirp import engine

        now = timezone.now()
        changes = {k: v for k, v in options.items() if k in self.OPTION_FIELDS}
        with transaction.atomic():
            self._transition(Q(status=DRAFT), status=PENDING, created=now, enqueued=now, **changes)
            engine.wake_lane_on_commit(self.lane)

    OPTION_FIELDS = ("limit", "since", "only_new", "quality", "follow")

    # -- pause, resume, cancel --------------------------------------------------------------------

    @classmethod
    def paused_statuses(cls) -> tuple[str, ...]:
        return (PAUSED,)

    @property
    def resume_url(self) -> str:
        return reverse("imports:resume_batch", args=[self.pk]) if self.can_resume else ""

    @property
    def can_pause(self) -> bool:
        return self.status == PENDING or self.is_active

    @property
    def can_resume(self) -> bool:
        return self.status == PAUSED

    @property
    def can_cancel(self) -> bool:
        return super().can_cancel or self.status == PAUSED

    def pause_batch(self) -> None:
        """Start no other row. The channel importing now finishes its import; the worker hands
        the batch back within a tick (imports/batch.py puts the row back in the queue)."""
        self._transition(Q(status__in=(PENDING, *self.active_statuses())), status=PAUSED, step="")

    def resume_batch(self) -> None:
        from chirp import engine

        with transaction.atomic():
            # Back in line as if queued now, behind whatever others queued while it slept.
            self._transition(Q(status=PAUSED), status=PENDING, enqueued=timezone.now())
            engine.wake_lane_on_commit(self.lane)

    # (Templates never call these: a template reading `batch.pause` must not pause it.)
    pause_batch.alters_data = True  # type: ignore[attr-defined]
    resume_batch.alters_data = True  # type: ignore[attr-defined]

    def cancel(self) -> None:
        """Stop the batch and the import running for it; the imports done stay."""
        with transaction.atomic():
            if self.status == PAUSED:
                # A paused batch is runnable again for the base transition's sake.
                type(self).objects.filter(pk=self.pk, status=PAUSED).update(status=PENDING)
                self.status = PENDING
            super().cancel()
            running = ImportJob.objects.filter(
                list_rows__job=self, status__in=ImportJob.OPEN_STATUSES
            )
            for job in running:
                with contextlib.suppress(IllegalTransition):  # it ended meanwhile
                    job.cancel()

    # -- the work -----------------------------------------------------------------------------

    prepare_with = "imports.batch.prepare_rows"
    process_item_with = "imports.batch.run_row"

    def release(self, token: str) -> None:
        """Hand the batch back (end of a slice, pause, shutdown) at the back of the lists
        lane's line: lists take turns a slice each, so another user's list queued behind a
        500-channel one starts its rows within a slice, not after all 500 channels."""
        type(self).objects.filter(pk=self.pk, worker=token).update(
            worker="", enqueued=timezone.now()
        )
        self.worker = ""

    def mark_prepared(self, items: list[Item], token: str) -> None:
        super().mark_prepared(items, token)
        live.publish_on_commit(self.owner_id, self._rows_fragment)

    def _rows_fragment(self) -> list[tuple[str, str]]:
        html = render_to_string(
            "imports/batch_detail.html#batch_rows", {"batch": self, "rows": self.report_rows()}
        )
        return [(f"{self.dom_id}-rows", html)]

    def retry_failed(self) -> int:
        """Try every failed row's import again, as the batch page's Retry does (the engine's
        own retry would send the rows back to wait for the same failed imports). Returns how
        many rows went back to the queue."""
        failed = self.items.filter(status=ItemStatus.FAILED).select_related("import_job")
        rows = [row for row in failed if row.can_retry]
        if not rows:
            raise IllegalTransition("This list has no failed row to retry.")
        for row in rows:
            row.retry_import()
        return len(rows)

    def import_options(self) -> dict[str, Any]:
        from imports.batch import _import_options

        return _import_options(self)

    def final_status(self) -> str:
        """Failed when rows were to be imported and none was (rows skipped as invalid or
        duplicates are not imports, so they do not make a batch a success)."""
        imported = self.items.filter(status=ItemStatus.COMPLETED).exists()
        if self.failed and not imported:
            return FAILED
        return COMPLETED

    # -- state shown ----------------------------------------------------------------------------

    def get_absolute_url(self) -> str:
        return reverse("imports:batch_detail", args=[self.pk])

    @property
    def title(self) -> str:
        return f"List {self.name}" if self.name else f"List import #{self.pk}"

    @property
    def format_label(self) -> str:
        from imports.lists import FORMATS

        return FORMATS.get(self.format, self.format)

    @property
    def is_open(self) -> bool:
        return self.status not in TERMINAL and self.status != DRAFT

    def totals(self) -> dict[str, int]:
        """The videos of the rows' imports (each row's latest import), over the batch."""
        found = ImportJob.objects.filter(list_rows__job=self).aggregate(
            imported=Coalesce(Sum("done"), 0),
            failed=Coalesce(Sum("failed"), 0),
            already=Coalesce(Sum(F("known") + F("skipped")), 0),
        )
        found["without_captions"] = ImportJobItem.objects.filter(
            job__list_rows__job=self,
            status=ItemStatus.COMPLETED,
            video__transcript_source=Video.TranscriptSource.NONE,
        ).count()
        media = MediaFile.objects.filter(
            video__channel__in=self.items.exclude(channel=None).values("channel")
        ).totals()
        found["media_stored"], found["media_size"] = media["videos"], media["size"]
        return found

    def current_row(self) -> ListBatchRow | None:
        if not self.is_active:
            return None
        return (
            self.items.filter(status=ItemStatus.PROCESSING)
            .select_related("import_job", "import_job__channel", "person")
            .first()
        )

    @property
    def elapsed(self) -> timedelta | None:
        if self.started is None:
            return None
        end = self.finished or timezone.now()
        return max(timedelta(0), end - self.started)

    @property
    def remaining(self) -> timedelta | None:
        """What is left, at the pace of the rows processed so far (None before the first): the
        rows' own time, from start to end, so a pause (a night, a week) does not count."""
        if not self.is_open or not self.processed or not self.total:
            return None
        spent = self.items.filter(started__isnull=False, finished__isnull=False).aggregate(
            rows=Count("pk"),
            time=Sum(ExpressionWrapper(F("finished") - F("started"), output_field=DurationField())),
        )
        if not spent["rows"]:
            return None
        per_row = max(timedelta(0), spent["time"] or timedelta(0)) / spent["rows"]
        return per_row * (self.total - self.processed)

    @property
    def elapsed_seconds(self) -> int | None:
        return round(self.elapsed.total_seconds()) if self.elapsed is not None else None

    @property
    def remaining_seconds(self) -> int | None:
        return round(self.remaining.total_seconds()) if self.remaining is not None else None

    @property
    def count_label(self) -> str:
        if not self.prepared:
            return "not started yet"
        return f"{self.processed} of {self.total} channels"

    @property
    def progress_label(self) -> str:
        """How many channels are done, and the one importing now (the step)."""
        return " · ".join(part for part in (self.count_label, self.step) if part)

    def finished_summary(self) -> str:
        """The toast's and the terminal's words: the list named, how it ended, and what it
        brought in."""
        verb = {CANCELLED: "cancelled", FAILED: "failed"}.get(self.status, "done")
        return f"{self.title} {verb}: {self.ended_summary}"

    @property
    def ended_summary(self) -> str:
        """What it brought in (the dashboard shows it under the list's title and status)."""
        totals = self.totals()
        parts = [f"{self.done} of {_count(self.total, 'channel')} imported"]
        parts.append(_count(totals["imported"], "video"))
        if totals["without_captions"]:
            parts.append(f"{totals['without_captions']} without captions")
        if totals["media_stored"]:
            size = filesizeformat(totals["media_size"]).replace("\xa0", " ")
            parts.append(f"media of {_count(totals['media_stored'], 'video')} stored ({size})")
        for count, what in ((self.failed, "failed"), (self.skipped, "skipped")):
            if count:
                parts.append(f"{_count(count, 'row')} {what}")
        if self.cancelled:
            parts.append(f"{_count(self.cancelled, 'row')} cancelled")
        return ", ".join(parts)

    def live_fragments(self) -> list[tuple[str, str]]:
        html = render_to_string("imports/batch_detail.html#batch_progress", {"batch": self})
        return [(f"{self.dom_id}-progress", html)]

    def report(self) -> list[dict[str, Any]]:
        return [row.report() for row in self.report_rows()]

    def report_rows(self) -> models.QuerySet[ListBatchRow]:
        media_stored, media_size = MediaFile.objects.per_channel()
        return self.items.select_related("import_job", "channel", "person").annotate(
            media_stored=media_stored,
            media_size=media_size,
            without_captions=Count(
                "import_job__items",
                filter=Q(
                    import_job__items__status=ItemStatus.COMPLETED,
                    import_job__items__video__transcript_source=Video.TranscriptSource.NONE,
                ),
            ),
        )

    REPORT_COLUMNS = [
        "row",
        "channel",
        "channel_url",
        "person",
        "email",
        "type",
        "status",
        "message",
        "videos_imported",
        "failed",
        "without_captions",
        "already_there",
        "media_stored",
        "media_size",
    ]

    def report_csv_rows(self) -> list[list[Any]]:
        rows: list[list[Any]] = [self.REPORT_COLUMNS]
        for entry in self.report():
            rows.append([entry[column] for column in self.REPORT_COLUMNS])
        return [[spreadsheet_safe(cell) for cell in row] for row in rows]

    def as_json(self, rows: bool = True) -> dict[str, Any]:
        totals = self.totals()
        data = {
            "id": self.pk,
            "status": self.status,
            "name": self.name,
            "format": self.format,
            "options": {
                "limit": self.limit,
                "since": self.since.isoformat() if self.since else None,
                "skipExisting": self.only_new,
                "quality": self.quality,
                "follow": self.follow,
            },
            "total": self.total,
            "done": self.done,
            "skipped": self.skipped,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "progress": self.percent,
            "videosImported": totals["imported"],
            "videosFailed": totals["failed"],
            "withoutCaptions": totals["without_captions"],
            "mediaStored": totals["media_stored"],
            "mediaSize": totals["media_size"],
            "step": self.step,
            "error": self.error,
            "createdAt": self.created.isoformat(),
            "startedAt": self.started.isoformat() if self.started else None,
            "finishedAt": self.finished.isoformat() if self.finished else None,
            "elapsedSeconds": self.elapsed_seconds,
            "remainingSeconds": self.remaining_seconds,
        }
        if rows:
            data["rows"] = [_camel(entry) for entry in self.report()]
        return data


def _count(n: int, noun: str) -> str:
    """3 channels, 1 channel, 0 videos."""
    return f"{n} {noun}{pluralize(n)}"


def _camel(entry: dict[str, Any]) -> dict[str, Any]:
    def camel(key: str) -> str:
        head, *rest = key.split("_")
        return head + "".join(part.title() for part in rest)

    return {camel(key): value for key, value in entry.items() if key != "retryable"}


class ListBatchRow(Item):
    """One row of a list: its person, the channel it names, and that channel's import."""

    job = models.ForeignKey(ListBatch, on_delete=models.CASCADE, related_name="items")
    number = models.PositiveIntegerField(help_text="The row's line or position in the list.")
    # The row as the preview understood it: its outcome, the channel's canonical URL (empty for
    # an invalid row) and why it will not be imported (invalid, duplicate).
    outcome = models.CharField(max_length=20)
    channel_url = models.CharField("channel URL", max_length=2048, blank=True)
    input = models.TextField(blank=True, help_text="The channel as written in the list.")
    message = models.TextField(blank=True)
    name = models.CharField(max_length=255, blank=True)
    email = models.CharField(max_length=254, blank=True)
    type = models.CharField(max_length=100, blank=True)
    extra = models.JSONField(default=dict, blank=True)
    # Set in the same transaction that starts the import, so a worker that dies while the
    # import runs resumes by waiting for that import, never by starting a second one.
    import_job = models.ForeignKey(
        ImportJob, on_delete=models.SET_NULL, null=True, blank=True, related_name="list_rows"
    )
    channel = models.ForeignKey(
        Channel, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    person = models.ForeignKey(
        Person, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta(Item.Meta):
        verbose_name = "list row"

    @property
    def dom_id(self) -> str:
        return f"list-batch-row-{self.pk}"

    @property
    def has_person(self) -> bool:
        return bool(self.name or self.email)

    @property
    def channel_label(self) -> str:
        if self.channel_id and self.channel:
            return str(self.channel)
        return self.channel_url or self.input

    @property
    def can_retry(self) -> bool:
        return self.status == ItemStatus.FAILED and self.outcome != "invalid"

    def videos_without_captions(self) -> int:
        """Videos its import brought in without captions; from the report's annotation when
        the row came with it (a page of 200 rows is not 200 more queries)."""
        if not self.import_job_id:
            return 0
        annotated = getattr(self, "without_captions", None)
        return annotated if annotated is not None else self.import_job.without_captions()

    def stored_media(self) -> dict[str, int]:
        """Videos of the row's channel with stored media, and their files' size (bytes); from
        the report's annotations when the row came with them."""
        if hasattr(self, "media_stored"):
            return {"videos": self.media_stored, "size": self.media_size}
        if not self.channel_id:
            return {"videos": 0, "size": 0}
        return MediaFile.objects.filter(video__channel=self.channel_id).totals()

    def retry_import(self) -> None:
        """Try a failed row again: its import's failed videos go back to that import's queue
        (or, when nothing of it can be retried, the row starts a new import), and the row goes
        back to its batch's queue to wait for it."""
        with transaction.atomic():
            job = self.import_job
            if job is not None and job.can_retry:
                job.retry_failed()
            elif job is not None:
                type(self).objects.filter(pk=self.pk).update(import_job=None)
                self.import_job = None
            self.retry()

    def live_fragments(self) -> list[tuple[str, str]]:
        row = (
            type(self)
            .objects.filter(pk=self.pk)
            .select_related("job", "import_job", "channel", "person")
            .first()
        )
        if row is None:
            return []
        html = render_to_string("imports/batch_detail.html#batch_row", {"row": row})
        return [(self.dom_id, html)]

    def report(self) -> dict[str, Any]:
        job = self.import_job
        media = self.stored_media()
        return {
            "row": self.number,
            "channel": self.channel_label,
            "channel_url": self.channel.youtube_url if self.channel_id else self.channel_url,
            "person": self.name,
            "email": self.email,
            "type": self.type,
            "status": self.status,
            "message": self.error or self.message,
            "videos_imported": job.done if job else 0,
            "failed": job.failed if job else 0,
            "without_captions": self.videos_without_captions(),
            "already_there": (job.known + job.skipped) if job else 0,
            "media_stored": media["videos"],
            "media_size": media["size"],
            "import_id": self.import_job_id,
            "channel_id": self.channel_id,
            "person_id": self.person_id,
        }


def draft_age_limit() -> datetime:
    """Drafts (previews never started) created before this are of no use: an hourly task
    removes them (imports.tasks.delete_old_list_drafts), and ListBatch.draft() its owner's."""
    return timezone.now() - timedelta(hours=settings.CHIRP_LIST_DRAFT_HOURS)
