"""The shared job machinery: abstract Job and Item models.

An app declares a concrete job (with its lane, its two working statuses and how it prepares and
processes items) and a concrete item. Every state change is a guarded, conditional UPDATE: it
happens once or raises IllegalTransition, and counters move with F() in the same transaction
as the item that changed them, so a crash can never leave them out of step.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from django.conf import settings
from django.db import connections, models, transaction
from django.db.models import F, Q, QuerySet
from django.db.models.signals import post_save
from django.db.models.sql import UpdateQuery
from django.dispatch import receiver
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.module_loading import import_string

from chirp import live

if TYPE_CHECKING:
    from chirp.engine import RunContext

logger = logging.getLogger(__name__)


class IllegalTransition(Exception):
    """A state change that the object's current state does not allow."""


class JobError(Exception):
    """A failure of a whole job, with a message meant for the person who started it."""


class ItemError(Exception):
    """A failure of one item, with a message meant for the person who started the job."""


class ItemSkipped(Exception):
    """The item needs no work (already known); the message says why."""


class Interrupted(Exception):
    """The work in hand was told to stop before it was done (RunContext.interrupted: the worker
    is shutting down, or the job was cancelled), typically while it waited (RunContext.sleep).

    Raised by process_item(): the item goes back to the queue as if it had not been started (not
    an attempt, not a failure), or is cancelled with its job. Raised by prepare(): the job is
    handed back, to be prepared again.
    """


class JobPaused(Exception):
    """Leave the lane alone until `until` (an outside service asked to be left alone).

    Raised by prepare() or process_item(): the item in hand goes back to the queue as if it had
    not been started, the job is handed back with `str(exc)` as its step, and the lane's runner
    claims no job before `until` (nor while the job model's `paused_until()` says so).
    """

    def __init__(self, until: datetime, message: str = "") -> None:
        self.until = until
        super().__init__(message or f"Paused until {until:%H:%M:%S}.")


PENDING = "pending"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
TERMINAL = (COMPLETED, FAILED, CANCELLED)


class ItemStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    PROCESSING = "processing", "Processing"
    COMPLETED = "completed", "Completed"
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class Job(models.Model):
    """A unit of background work owned by a user, made of items, run in a lane."""

    lane: ClassVar[str]
    # The two working statuses: while preparing (finding the items), then while processing them.
    PREPARING: ClassVar[str] = "preparing"
    PROCESSING: ClassVar[str] = "processing"
    # How many items of one job are processed at once (threads in the worker).
    pool_size: ClassVar[int] = 1

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="%(app_label)s_%(class)ss",
    )
    status = models.CharField(max_length=20, default=PENDING, db_index=True)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    cancelled = models.PositiveIntegerField(default=0)
    step = models.CharField(max_length=255, blank=True)
    error = models.TextField(blank=True)
    prepared = models.BooleanField(default=False)
    created = models.DateTimeField(default=timezone.now, db_index=True)
    # Place in line: set when the job is created and when it is sent back by "retry failed".
    enqueued = models.DateTimeField(default=timezone.now)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    updated = models.DateTimeField(auto_now=True)
    heartbeat = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # The lease: which worker runs the job now (empty while nobody does).
    worker = models.CharField(max_length=100, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created", "-pk"]

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} #{self.pk}"

    # -- derived state -------------------------------------------------------------------

    @classmethod
    def active_statuses(cls) -> tuple[str, str]:
        return (cls.PREPARING, cls.PROCESSING)

    @classmethod
    def paused_statuses(cls) -> tuple[str, ...]:
        """Statuses of a job its owner paused: neither running, nor in line, nor ended (the
        dashboard shows it apart, with its `resume_url`). None by default."""
        return ()

    @property
    def is_active(self) -> bool:
        return self.status in self.active_statuses()

    @property
    def is_paused(self) -> bool:
        return self.status in self.paused_statuses()

    @property
    def resume_url(self) -> str:
        """Where a paused job's Resume posts (empty: it cannot be resumed from the dashboard)."""
        return ""

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def can_cancel(self) -> bool:
        return self.status == PENDING or self.is_active

    @property
    def can_retry(self) -> bool:
        return self.failed > 0 and (self.is_terminal or self.status == PENDING)

    @property
    def processed(self) -> int:
        return self.done + self.skipped + self.failed + self.cancelled

    @property
    def percent(self) -> int:
        if self.total == 0:
            return 100 if self.is_terminal else 0
        return min(100, round(100 * self.processed / self.total))

    @property
    def bar_percent(self) -> int:
        """The progress bar's width. While the job runs: the share of its items processed.
        Once it ended: the share that succeeded (done, or had nothing to do), so a job that
        failed or was cancelled never shows a full bar; its colour says how it ended."""
        if not self.is_terminal:
            return self.percent
        if self.total == 0:
            return 100 if self.status == COMPLETED else 0
        return min(100, round(100 * (self.done + self.skipped) / self.total))

    @classmethod
    def item_model(cls) -> type[Item]:
        return cls._meta.get_field("items").related_model  # type: ignore[return-value]

    @property
    def dom_id(self) -> str:
        return f"{self._meta.model_name}-{self.pk}"

    @property
    def title(self) -> str:
        """What the job is about, in a few words (the dashboard names it so)."""
        return str(self)

    @cached_property
    def place_in_line(self) -> int:
        """1 for the next job its lane will take: counts the jobs the lane takes first
        (everyone's, by `enqueued` as engine.claim_job does), not whose they are."""
        from chirp import engine

        ahead = engine.runnable_jobs(type(self)).filter(
            Q(enqueued__lt=self.enqueued) | Q(enqueued=self.enqueued, pk__lt=self.pk)
        )
        return ahead.exclude(pk=self.pk).count() + 1

    @property
    def place_label(self) -> str:
        from chirp.dashboard import ordinal

        return f"{ordinal(self.place_in_line)} in line"

    @classmethod
    def totals_for(cls, user: Any) -> list[tuple[str, int | str]]:
        """(label, count) pairs of what `user` can see of this lane's results, for the
        dashboard. Nothing by default."""
        return []

    @classmethod
    def paused_until(cls) -> datetime | None:
        """While this is a future time, the lane's runner starts none of its jobs (None: run).
        A lane whose jobs depend on an outside service's patience overrides it."""
        return None

    # -- what a concrete job provides ---------------------------------------------------

    # A concrete job names the functions that do its work by dotted path (its pipeline), so
    # that the model does not import the code that processes it: `prepare_with(job, ctx)` and
    # `process_item_with(job, item, ctx)`. Or it overrides the two methods below.
    prepare_with: ClassVar[str] = ""
    process_item_with: ClassVar[str] = ""

    def prepare(self, ctx: RunContext) -> Iterable[Item]:
        """Find the job's items (unsaved); the engine saves them in bulk. Runs once."""
        if self.prepare_with:
            return import_string(self.prepare_with)(self, ctx)
        return []

    def process_item(self, item: Item, ctx: RunContext) -> None:
        """Do one item's work, ending with item.complete(), item.skip() or raising ItemError."""
        if self.process_item_with:
            return import_string(self.process_item_with)(self, item, ctx)
        raise NotImplementedError

    def upkeep(self, final: bool = False) -> None:
        """Light work beside the items: run on the runner's monitor thread at every tick while
        the job runs, and once more (`final`) before the job finishes. Nothing by default."""

    def final_status(self) -> str:
        """Completed, unless there was work and none of it succeeded."""
        if self.total and self.failed and not (self.done or self.skipped):
            return FAILED
        return COMPLETED

    def live_fragments(self) -> list[tuple[str, str]]:
        """(element id, HTML) pairs that show this job: sent live after every change."""
        return []

    def started_fragments(self) -> list[tuple[str, str]]:
        """What changes when items start, which moves no counter of the job (e.g. a count of
        the owner's items processing): the monitor sends it on its tick after one or more
        items were shown processing, once for all of them. Nothing by default."""
        return []

    def totals_fragments(self) -> list[tuple[str, str]]:
        """Counts of all the owner has from this lane, on its own pages (aggregates over all
        their work, like the dashboard's totals): the monitor sends them with those totals
        while the job runs, at most once a second. Nothing by default."""
        return []

    def created_fragments(self) -> list[tuple[str, str]]:
        """(event name, HTML) pairs that add this new job to its owner's open lists (their
        first pages take the row at the top). Nothing by default."""
        return []

    def all_fragments(self) -> list[tuple[str, str]]:
        """live_fragments() and the job's row on the dashboard: what every change sends."""
        row = render_to_string("chirp/partials/dashboard_job.html", {"job": self})
        return [*self.live_fragments(), (f"dash-{self.dom_id}", row)]

    @property
    def count_label(self) -> str:
        """How far the job is, in its items ("4 of 10 done")."""
        return f"{self.processed} of {self.total} done"

    @property
    def progress_label(self) -> str:
        """What the dashboard says of the job while it works: its step, or how far it is."""
        return self.step or self.count_label

    @property
    def ended_summary(self) -> str:
        """What the dashboard says under an ended job's title and status: the toast's
        finished_summary() by default (a job whose toast names it says it without the name)."""
        return self.finished_summary()

    def finished_summary(self) -> str:
        parts = [f"{self.done} done"]
        if self.skipped:
            parts.append(f"{self.skipped} skipped")
        if self.failed:
            parts.append(f"{self.failed} failed")
        return f"{self.total} items: " + ", ".join(parts)

    # -- transitions -----------------------------------------------------------------------

    def _transition(self, q: Q, **changes: Any) -> None:
        """UPDATE this row where q holds; raise IllegalTransition when it did not."""
        changes.setdefault("updated", timezone.now())
        if type(self).objects.filter(q, pk=self.pk).update(**changes) != 1:
            raise IllegalTransition(f"{self} cannot change to {changes.get('status')}")
        left_line = self.status == PENDING and changes.get("status", PENDING) != PENDING
        for field, value in changes.items():
            if not hasattr(value, "resolve_expression"):
                setattr(self, field, value)
        # Into the line, paused or out of the running: the job changes section on the dashboard
        # (a job starts running only through engine.claim_job, which run_job publishes).
        moved = changes.get("status") in (PENDING, *TERMINAL, *self.paused_statuses())
        self.publish(moved=moved, line_moved=left_line)

    def publish(self, moved: bool = False, line_moved: bool = False) -> None:
        """Send this job's fragments to its owner once the transaction commits. `moved`: its
        status changed, so the owner's dashboard is sent again too (the job changes section);
        `line_moved`: it left its lane's line (see dashboard.publish_on_commit)."""
        live.publish_on_commit(
            self.owner_id, self._fresh_fragments, self.live_lock, self.moved_since_sent
        )
        if moved or line_moved:
            from chirp import dashboard

            dashboard.publish_on_commit(self, line_moved=line_moved)

    @cached_property
    def live_lock(self) -> threading.Lock:
        """Orders this job's live updates from the runner and the monitor: each reads the job
        and sends it while holding the lock, so an older state is never sent after a newer one
        (a tick that read the job just before it finished would otherwise undo the end)."""
        return threading.Lock()

    def _fresh_fragments(self) -> list[tuple[str, str]]:
        self.refresh_from_db()
        self.__dict__.pop("place_in_line", None)
        return self.all_fragments()

    def moved_since_sent(self) -> list[tuple[str, str]]:
        """After a send of _fresh_fragments(): the job again if its status changed since it
        was read. That change was sent by whoever made it (another process: the worker
        ending the job, a person cancelling it), possibly before the older state just sent,
        which would then stay on the page. One small query."""
        model = type(self)
        status = model.objects.filter(pk=self.pk).values_list("status", flat=True).first()
        if status is None or status == self.status:
            return []
        return self._fresh_fragments()

    def advance(self, status: str, token: str, step: str = "") -> None:
        """Move from one working status to the next, by the worker holding the lease."""
        assert status in self.active_statuses()
        self._transition(
            Q(status__in=self.active_statuses(), worker=token), status=status, step=step
        )

    def set_step(self, step: str, token: str) -> None:
        self._transition(Q(status__in=self.active_statuses(), worker=token), step=step[:255])

    def mark_prepared(self, items: list[Item], token: str) -> None:
        """Save the items found by prepare() and move to processing, all at once."""
        item_model = self.item_model()
        with transaction.atomic():
            for item in items:
                item.job = self
            item_model.objects.bulk_create(items, batch_size=500)
            self._transition(
                Q(status__in=self.active_statuses(), worker=token, prepared=False),
                status=self.PROCESSING,
                prepared=True,
                total=F("total") + len(items),
                step="",
            )

    def finish(self, token: str) -> bool:
        """End a running job whose items are all done. False if work was added meanwhile."""
        item_model = self.item_model()
        open_items = item_model.objects.filter(
            job=models.OuterRef("pk"), status__in=[ItemStatus.QUEUED, ItemStatus.PROCESSING]
        )
        self.refresh_from_db()
        status = self.final_status()
        try:
            self._transition(
                Q(status__in=self.active_statuses(), worker=token) & ~Q(models.Exists(open_items)),
                status=status,
                finished=timezone.now(),
                worker="",
                step="",
                error=self.error or ("Nothing could be processed." if status == FAILED else ""),
            )
        except IllegalTransition:
            return False
        live.publish_on_commit(self.owner_id, self._finished_toast)
        return True

    def _finished_toast(self) -> list[tuple[str, str]]:
        return [
            live.toast(
                self.finished_summary(), level=self.status, key=f"{self.dom_id}-{self.finished:%s}"
            )
        ]

    def fail(self, error: str, token: str | None = None) -> None:
        """Give up on the job: its unfinished items fail too, so 'retry failed' brings them back."""
        lease = Q(worker=token) if token else Q()
        item_model = self.item_model()
        now = timezone.now()
        with transaction.atomic():
            self._transition(
                lease & Q(status__in=(PENDING, *self.active_statuses())),
                status=FAILED,
                error=error,
                finished=now,
                worker="",
                step="",
            )
            left = item_model.objects.filter(
                job=self, status__in=[ItemStatus.QUEUED, ItemStatus.PROCESSING]
            ).update(
                status=ItemStatus.FAILED,
                error="Not processed: the job failed.",
                finished=now,
                updated=now,
            )
            if left:
                type(self).objects.filter(pk=self.pk).update(failed=F("failed") + left)
        live.publish_on_commit(self.owner_id, self._finished_toast)

    def cancel(self) -> None:
        """Stop the job; its queued items are cancelled. A running worker stops within a tick."""
        item_model = self.item_model()
        now = timezone.now()
        with transaction.atomic():
            self._transition(
                Q(status__in=(PENDING, *self.active_statuses())),
                status=CANCELLED,
                finished=now,
                step="",
            )
            n = item_model.objects.filter(job=self, status=ItemStatus.QUEUED).update(
                status=ItemStatus.CANCELLED, finished=now, updated=now
            )
            if n:
                type(self).objects.filter(pk=self.pk).update(cancelled=F("cancelled") + n)

    def retryable_items(self) -> QuerySet[Item]:
        """The failed items "retry failed" sends back: all of them, unless the concrete job
        knows that some failed for good (a retry would only fail them again)."""
        return self.item_model().objects.filter(job=self, status=ItemStatus.FAILED)

    def retry_failed(self) -> int:
        """Send failed items back to the queue and the job back in line. Returns how many."""
        now = timezone.now()
        with transaction.atomic():
            job = type(self).objects.select_for_update().get(pk=self.pk)
            if not (job.is_terminal or job.status == PENDING):
                raise IllegalTransition("Only a finished job's failed items can be retried.")
            n = self.retryable_items().update(
                status=ItemStatus.QUEUED, error="", finished=None, attempts=0, updated=now
            )
            if not n and job.prepared and job.failed:
                raise IllegalTransition("Its failed items failed for good: a retry would not help.")
            if not n and job.prepared:
                raise IllegalTransition("This job has no failed items to retry.")
            self._transition(
                Q(status__in=(PENDING, *TERMINAL)),
                status=PENDING,
                failed=F("failed") - n,
                error="",
                finished=None,
                attempts=0,
                enqueued=now,
                worker="",
            )
            from chirp import engine

            engine.wake_lane_on_commit(self.lane)
        return n

    def release(self, token: str) -> None:
        """Hand the job back (end of a slice, or shutdown): the next worker resumes it."""
        type(self).objects.filter(pk=self.pk, worker=token).update(worker="")
        self.worker = ""


class Item(models.Model):
    """One piece of a job's work. The concrete model adds `job = ForeignKey(..., "items")`."""

    status = models.CharField(
        max_length=20, choices=ItemStatus.choices, default=ItemStatus.QUEUED, db_index=True
    )
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(default=timezone.now)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    updated = models.DateTimeField(auto_now=True)

    job_id: int
    # Related rows the item's work reads, fetched with each batch the runner takes: joined
    # (`work_related`, single rows) or prefetched (`work_prefetched`, one query a batch).
    work_related: ClassVar[tuple[str, ...]] = ()
    work_prefetched: ClassVar[tuple[str, ...]] = ()

    class Meta:
        abstract = True
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} #{self.pk}"

    @property
    def dom_id(self) -> str:
        return f"{self._meta.model_name}-{self.pk}"

    @property
    def is_open(self) -> bool:
        return self.status in (ItemStatus.QUEUED, ItemStatus.PROCESSING)

    @classmethod
    def job_model(cls) -> type[Job]:
        return cls._meta.get_field("job").related_model  # type: ignore[return-value]

    def live_fragments(self) -> list[tuple[str, str]]:
        return []

    def publish(self) -> None:
        live.publish_on_commit(self.job.owner_id, self.live_fragments, self.live_lock)

    @cached_property
    def live_lock(self) -> threading.Lock:
        """Orders this item's live updates when two threads send them (runner and monitor)."""
        return threading.Lock()

    def _move(
        self,
        source: str,
        target: str,
        counter: str | None = None,
        delta: int = 1,
        **changes: Any,
    ) -> None:
        now = timezone.now()
        changes.setdefault("updated", now)
        items = type(self).objects.filter(pk=self.pk, status=source)
        if counter and connections[items.db].vendor == "postgresql":
            moved = _update_and_count(items, {"status": target, **changes}, counter, delta, now)
        else:
            with transaction.atomic():
                moved = items.update(status=target, **changes)
                if moved == 1 and counter:
                    self.job_model().objects.filter(pk=self.job_id).update(
                        **{counter: F(counter) + delta, "updated": now}
                    )
        if moved != 1:
            raise IllegalTransition(f"{self} is not {source}; it cannot become {target}.")
        self._remember(target, changes)
        self.publish()

    def _remember(self, status: str, changes: dict[str, Any]) -> None:
        for field, value in changes.items():
            if not hasattr(value, "resolve_expression"):
                setattr(self, field, value)
        self.status = status

    def start(self) -> None:
        """Claim a queued item for processing. Not sent live here: the runner shows it as
        processing only if it is still running at the monitor's next tick, so a fast item
        costs one live update, not two."""
        now = timezone.now()
        queued = type(self).objects.filter(pk=self.pk, status=ItemStatus.QUEUED)
        moved = queued.update(
            status=ItemStatus.PROCESSING, started=now, updated=now, attempts=F("attempts") + 1
        )
        if moved != 1:
            raise IllegalTransition(f"{self} is not queued; it cannot start.")
        self._remember(ItemStatus.PROCESSING, {"started": now, "updated": now})
        self.attempts += 1

    def complete(self, **fields: Any) -> None:
        self._move(
            ItemStatus.PROCESSING, ItemStatus.COMPLETED, "done", finished=timezone.now(), **fields
        )

    def skip(self, reason: str = "", **fields: Any) -> None:
        self._move(
            ItemStatus.PROCESSING,
            ItemStatus.SKIPPED,
            "skipped",
            error=reason,
            finished=timezone.now(),
            **fields,
        )

    def fail(self, error: str, **fields: Any) -> None:
        self._move(
            ItemStatus.PROCESSING,
            ItemStatus.FAILED,
            "failed",
            error=error,
            finished=timezone.now(),
            **fields,
        )

    def cancel(self, source: str = ItemStatus.QUEUED) -> None:
        """Cancelled while queued, or while processing (its job was cancelled and the runner
        interrupted it)."""
        self._move(source, ItemStatus.CANCELLED, "cancelled", finished=timezone.now())
        if source == ItemStatus.QUEUED:
            # A person's cancel: the job may be waiting in line, with no monitor to send the
            # counts it changed (its row, the owner's chips).
            self.job.publish()

    def defer(self) -> None:
        """Back to the queue as if never started: its job was paused (JobPaused) before the
        item's work could be done, so this neither counts as an attempt nor as a failure."""
        self._move(
            ItemStatus.PROCESSING, ItemStatus.QUEUED, started=None, attempts=F("attempts") - 1
        )
        self.attempts -= 1

    def retry(self) -> None:
        """Send one failed item back to the queue (and its finished job back in line)."""
        job = self.job_model().objects.get(pk=self.job_id)
        with transaction.atomic():
            self._move(
                ItemStatus.FAILED,
                ItemStatus.QUEUED,
                "failed",
                delta=-1,
                error="",
                finished=None,
                attempts=0,
            )
            if job.is_terminal:
                job._transition(
                    Q(status__in=TERMINAL),
                    status=PENDING,
                    error="",
                    finished=None,
                    attempts=0,
                    enqueued=timezone.now(),
                    worker="",
                )
            else:
                job.publish()
            from chirp import engine

            engine.wake_lane_on_commit(job.lane)

    def requeue_after_crash(self, max_attempts: int) -> None:
        """An item found 'processing' when its job resumes: the worker died during it."""
        if self.attempts >= max_attempts:
            self.fail(
                f"The worker stopped while processing this item {self.attempts} times; "
                "it was set aside so the rest of the job could go on."
            )
        else:
            self._move(ItemStatus.PROCESSING, ItemStatus.QUEUED)


def _update_and_count(
    items: QuerySet[Item], values: dict[str, Any], counter: str, delta: int, now: datetime
) -> int:
    """Move the item and its job's counter in one statement (PostgreSQL's data-modifying CTE):
    atomic like the transaction it replaces, in one round trip instead of four. The item's
    UPDATE is the ORM's own SQL; the job's row changes only if the item's did."""
    item_model = items.model
    job_model = item_model._meta.get_field("job").related_model
    query = items.query.chain(UpdateQuery)
    query.add_update_values(values)
    compiler = query.get_compiler(items.db)
    compiler.pre_sql_setup()
    item_sql, item_params = compiler.as_sql()
    connection = connections[items.db]
    qn = connection.ops.quote_name
    job_fk = qn(item_model._meta.get_field("job").column)
    table = qn(job_model._meta.db_table)
    column = qn(job_model._meta.get_field(counter).column)
    updated = qn(job_model._meta.get_field("updated").column)
    sql = (
        f"WITH moved AS ({item_sql} RETURNING {job_fk}) "  # noqa: S608 (names are the models')
        f"UPDATE {table} SET {column} = {column} + %s, {updated} = %s "
        f"FROM moved WHERE {table}.{qn(job_model._meta.pk.column)} = moved.{job_fk}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, (*item_params, delta, now))
        return cursor.rowcount


@receiver(post_save)
def _announce_new_job(sender, instance, created: bool = False, raw: bool = False, **kwargs) -> None:
    """A job created by any path (a page, the API, the admin, a schedule) shows up live in its
    owner's job lists, once its row is committed."""
    if not created or raw or not isinstance(instance, Job):
        return

    def render() -> list[tuple[str, str]]:
        instance.refresh_from_db()  # the job as it is now: a worker may have claimed it already
        return instance.created_fragments()

    live.publish_on_commit(instance.owner_id, render, instance.live_lock)
