"""The lane runner: one job at a time per lane slot, across every worker process.

A lane (uploads, imports) runs at most N jobs at once (CHIRP_LANE_CONCURRENCY). A django-q2
task `run_lane(lane)`:

1. takes a free slot with a conditional UPDATE (a slot whose holder stopped beating for
   CHIRP_LEASE_SECONDS counts as free: its worker died);
2. takes the oldest runnable job (pending, handed back, or orphaned by a dead worker), again
   with a conditional UPDATE;
3. processes its items in a small thread pool, while a monitor thread beats the lease,
   watches for cancellation and sends the job's progress live (at most a few times a second);
4. after CHIRP_SLICE_SECONDS it hands the job back and queues itself again, so no task lives
   longer than django-q2's timeout and a shutdown never waits for a whole job.

Nothing here is held in memory across tasks: the database is the source of truth, so a worker
killed at any point loses at most the item it was processing, and that item is redone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from django.apps import apps
from django.conf import settings
from django.db import close_old_connections, connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from chirp.db import worker_commits
from chirp.jobs import (
    PENDING,
    IllegalTransition,
    Interrupted,
    Item,
    ItemError,
    ItemSkipped,
    ItemStatus,
    Job,
    JobError,
    JobPaused,
)
from chirp.models import LaneSlot

logger = logging.getLogger(__name__)

# Set by chirp's qcluster command when the cluster is asked to stop (inherited by the forked
# worker processes), so a running lane hands its job back within seconds.
shutdown_event = None


def shutting_down() -> bool:
    return shutdown_event is not None and shutdown_event.is_set()


def lanes() -> dict[str, type[Job]]:
    """Every concrete job model, by lane."""
    found: dict[str, type[Job]] = {}
    for model in apps.get_models():
        if issubclass(model, Job) and getattr(model, "lane", None):
            if model.lane in found:
                raise RuntimeError(f"Two job models claim the lane {model.lane!r}.")
            found[model.lane] = model
    return found


def lane_model(lane: str) -> type[Job]:
    try:
        return lanes()[lane]
    except KeyError:
        raise ValueError(f"No job model runs in the lane {lane!r}.") from None


def concurrency(lane: str) -> int:
    return settings.CHIRP_LANE_CONCURRENCY.get(lane, 1)


def lease_cutoff():
    return timezone.now() - timedelta(seconds=settings.CHIRP_LEASE_SECONDS)


def new_token() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


# -- waking lanes -------------------------------------------------------------------------


def wake_lane(lane: str) -> None:
    from django_q.tasks import async_task

    async_task("chirp.tasks.run_lane", lane, task_name=f"lane {lane}", group="chirp-lanes")


def wake_lane_on_commit(lane: str) -> None:
    transaction.on_commit(lambda: wake_lane(lane))


def runnable_jobs(model: type[Job]):
    stale = lease_cutoff()
    active = model.active_statuses()
    return model.objects.filter(
        Q(status=PENDING)
        | Q(status__in=active, worker="")
        | Q(status__in=active, heartbeat__lt=stale)
        | Q(status__in=active, heartbeat__isnull=True)
    )


def kick_lanes() -> dict[str, int]:
    """Queue a runner for every lane with work waiting (periodic, and at worker start)."""
    woken = {}
    for lane, model in lanes().items():
        waiting = runnable_jobs(model).count()
        if waiting:
            for _ in range(min(waiting, concurrency(lane))):
                wake_lane(lane)
            woken[lane] = waiting
    return woken


# -- slots ------------------------------------------------------------------------------


def claim_slot(lane: str, token: str) -> LaneSlot | None:
    for number in range(concurrency(lane)):
        LaneSlot.objects.get_or_create(lane=lane, slot=number)
    free = Q(holder="") | Q(heartbeat__lt=lease_cutoff()) | Q(heartbeat__isnull=True)
    for slot in LaneSlot.objects.filter(free, lane=lane, slot__lt=concurrency(lane)):
        now = timezone.now()
        taken = LaneSlot.objects.filter(
            free, pk=slot.pk, holder=slot.holder, heartbeat=slot.heartbeat
        ).update(holder=token, heartbeat=now, held_since=now)
        if taken == 1:
            slot.holder, slot.heartbeat, slot.held_since = token, now, now
            return slot
    return None


def release_slot(slot: LaneSlot, token: str) -> None:
    LaneSlot.objects.filter(pk=slot.pk, holder=token).update(
        holder="", heartbeat=None, held_since=None
    )


# -- jobs -------------------------------------------------------------------------------


def claim_job(model: type[Job], token: str) -> tuple[Job, bool] | None:
    """Take the oldest runnable job. Returns (job, resumed_after_crash) or None."""
    for job in runnable_jobs(model).order_by("enqueued", "pk")[:10]:
        crashed = job.status != PENDING and job.worker != ""
        counts_attempt = job.status == PENDING or crashed
        status = (
            job.status
            if job.status != PENDING
            else (model.PROCESSING if job.prepared else model.PREPARING)
        )
        now = timezone.now()
        taken = model.objects.filter(
            pk=job.pk, status=job.status, worker=job.worker, heartbeat=job.heartbeat
        ).update(
            status=status,
            worker=token,
            heartbeat=now,
            updated=now,
            started=job.started or now,
            attempts=F("attempts") + (1 if counts_attempt else 0),
        )
        if taken == 1:
            job.refresh_from_db()
            return job, crashed
    return None


class RunContext:
    """What item code may ask of the runner: stop early, say what it is doing."""

    def __init__(self, job: Job, token: str, deadline: float) -> None:
        self.job = job
        self.token = token
        self.deadline = deadline
        self.stop_reason: str | None = None
        self.paused: JobPaused | None = None

    def should_stop(self) -> bool:
        if self.stop_reason is None:
            if shutting_down():
                self.stop_reason = "shutdown"
            elif time.monotonic() > self.deadline:
                self.stop_reason = "slice"
        return self.stop_reason is not None

    def interrupted(self) -> bool:
        """Stop even the work in hand: the worker is shutting down, or the job was cancelled
        or taken over. (At the end of a slice or in a pause, the work in hand finishes.)"""
        self.should_stop()
        return shutting_down() or self.stop_reason in ("cancelled", "lost")

    def sleep(self, seconds: float) -> None:
        """time.sleep(), but a quarter of a second at most after the work in hand is
        interrupted it raises Interrupted: a long wait never holds up a shutdown."""
        end = time.monotonic() + seconds
        while True:
            if self.interrupted():
                raise Interrupted(f"Stopped while waiting ({self.stop_reason or 'shutdown'}).")
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(0.25, left))

    def set_step(self, step: str) -> None:
        try:
            self.job.set_step(step, self.token)
        except IllegalTransition:
            self.stop_reason = self.stop_reason or "lost"

    def pause(self, paused: JobPaused) -> None:
        """Stop taking items: the lane waits until `paused.until` (the latest one asked for)."""
        if self.paused is None or paused.until > self.paused.until:
            self.paused = paused
        self.stop_reason = self.stop_reason or "paused"


class Monitor(threading.Thread):
    """Beats the lease, notices cancellation, and sends the job's progress while it runs."""

    tick = 0.25
    # The owner's totals count all they can see (a few aggregates: the dashboard's, and the
    # job's own, e.g. the Uploads page's images and faces): sent on the tick after the job's
    # counters moved, but at most this often (seconds).
    totals_every = 1.0

    def __init__(self, slot: LaneSlot, token: str) -> None:
        super().__init__(name=f"chirp-monitor-{slot}", daemon=True)
        self.slot = slot
        self.token = token
        self.ctx: RunContext | None = None
        self._halt = threading.Event()
        self._last_beat = 0.0
        self._shown: tuple | None = None
        self._totals_shown: tuple | None = None
        self._totals_at = 0.0
        # Items being processed now; each is shown as "processing" once, at the first tick
        # it is still running (a fast item goes straight to its final state).
        self.in_flight: set[Item] = set()
        self.beat_every = max(0.2, settings.CHIRP_LEASE_SECONDS / 4)

    def watch(self, ctx: RunContext | None) -> None:
        self.ctx = ctx
        self._shown = self._totals_shown = None

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)

    def run(self) -> None:
        try:
            with worker_commits():
                while not self._halt.wait(self.tick):
                    try:
                        self.check()
                    except Exception:
                        logger.exception("Lane monitor check failed")
                        connections["default"].close()
        finally:
            connections.close_all()

    def check(self) -> None:
        now = time.monotonic()
        ctx = self.ctx
        if now - self._last_beat >= self.beat_every:
            self._last_beat = now
            held = LaneSlot.objects.filter(pk=self.slot.pk, holder=self.token).update(
                heartbeat=timezone.now()
            )
            if ctx is not None:
                held &= (
                    type(ctx.job)
                    .objects.filter(pk=ctx.job.pk, worker=self.token)
                    .update(heartbeat=timezone.now())
                )
            if not held and ctx is not None:
                logger.warning("Lost the lease on %s; stopping", ctx.job)
                ctx.stop_reason = ctx.stop_reason or "lost"
        if ctx is None:
            return
        started = self.show_in_flight()
        with ctx.job.live_lock:
            job = type(ctx.job).objects.get(pk=ctx.job.pk)
            if job.status not in job.active_statuses():
                ctx.stop_reason = ctx.stop_reason or "cancelled"
                return
            shown = self.shown_of(job)
            counts = shown[:-1]
            if shown != self._shown:
                if self._shown is not None:
                    self.send_job(job)
                self._shown = shown
            elif started:
                # Items started and nothing else moved: what counts them, once for all.
                from chirp import live

                live.publish(job.owner_id, job.started_fragments())
            self.show_totals(job, counts, now)
        ctx.job.upkeep()

    @staticmethod
    def shown_of(job: Job) -> tuple:
        """What of the job the monitor sends again when it moves."""
        return (job.status, job.done, job.skipped, job.failed, job.cancelled, job.total, job.step)

    def send_job(self, job: Job) -> None:
        """Send the running job's fragments as this tick read it, then again if its status
        moved meanwhile (Job.moved_since_sent, as the job's own sends do).

        The live lock orders this process's sends only: a person's cancel (or pause, or a
        failure) committed by the web server between this tick's read and its send was sent
        by the web server first, so the running row sent here would arrive last and stay on
        the page for good (the next tick finds the job ended and sends nothing). A job still
        running heals by itself: the next tick sees the counts moved and sends them."""
        from chirp import live

        live.publish(job.owner_id, job.all_fragments())
        live.publish(job.owner_id, job.moved_since_sent())

    def show_totals(self, job: Job, shown: tuple, now: float) -> None:
        """Send the owner's dashboard totals (and the job's own, `totals_fragments`) if the
        job's counters moved since they were last sent and `totals_every` has passed (under
        the job's live lock, like its other updates, so they are never sent after the
        dashboard its end sends)."""
        if shown == self._totals_shown or now - self._totals_at < self.totals_every:
            return
        if self._totals_shown is not None:
            from chirp import dashboard, live

            totals = [dashboard.totals_fragment(job.owner_id), *job.totals_fragments()]
            live.publish(job.owner_id, totals)
        self._totals_shown, self._totals_at = shown, now

    def show_in_flight(self) -> int:
        """Show each item still processing as such, once. Returns how many it showed."""
        from chirp import live

        shown = 0
        for item in list(self.in_flight):
            if getattr(item, "shown_processing", False):
                continue
            with item.live_lock:
                if item.status == ItemStatus.PROCESSING:
                    live.publish(item.job.owner_id, item.live_fragments())
                    shown += 1
                item.shown_processing = True
        return shown


def process_one(job: Job, item: Item, ctx: RunContext) -> None:
    """Run the job's item code; every outcome ends the item (never the worker)."""
    try:
        job.process_item(item, ctx)
    except ItemSkipped as skip:
        item.skip(str(skip))
    except JobPaused as paused:
        item.defer()
        ctx.pause(paused)
    except Interrupted:
        try:
            if ctx.stop_reason == "cancelled":
                item.cancel(source=ItemStatus.PROCESSING)
            else:
                item.defer()
        except IllegalTransition:
            logger.warning("%s changed under %s (lease lost?)", item, job)
    except ItemError as exc:
        item.fail(str(exc))
    except IllegalTransition:
        logger.warning("%s changed under %s (lease lost?)", item, job)
    except Exception as exc:
        logger.exception("Item %s of %s failed unexpectedly", item.pk, job)
        item.fail(f"Unexpected error: {exc.__class__.__name__}: {exc}"[:2000])
    else:
        if item.status == ItemStatus.PROCESSING:
            item.fail("Chirp could not finish this item (it reported no outcome).")


class ItemFeed:
    """Hands a job's queued items to the runner's threads, reading them in batches (one
    query per batch, not per item); each is still claimed with its own conditional UPDATE."""

    batch = 100

    def __init__(self, job: Job) -> None:
        self.job = job
        self.lock = threading.Lock()
        self.buffer: deque[Item] = deque()

    def next(self) -> Item | None:
        while True:
            with self.lock:
                if not self.buffer:
                    model = self.job.item_model()
                    queued = model.objects.filter(job=self.job, status=ItemStatus.QUEUED)
                    if model.work_related:  # (select_related() alone would follow every key)
                        queued = queued.select_related(*model.work_related)
                    if model.work_prefetched:
                        queued = queued.prefetch_related(*model.work_prefetched)
                    self.buffer.extend(queued.order_by("pk")[: self.batch])
                    if not self.buffer:
                        return None
                item = self.buffer.popleft()
            item.job = self.job
            try:
                item.start()
            except IllegalTransition:
                continue  # cancelled since it was read
            return item


def _work_items(job: Job, ctx: RunContext, monitor: Monitor, feed: ItemFeed) -> None:
    try:
        with worker_commits():
            while not ctx.should_stop():
                item = feed.next()
                if item is None:
                    return
                monitor.in_flight.add(item)
                try:
                    process_one(job, item, ctx)
                finally:
                    monitor.in_flight.discard(item)
    finally:
        connections.close_all()


def recover_items(job: Job) -> None:
    """Items left 'processing' by a worker that died: redo them, or set them aside."""
    for item in job.item_model().objects.filter(job=job, status=ItemStatus.PROCESSING):
        item.requeue_after_crash(settings.CHIRP_ITEM_MAX_ATTEMPTS)


def run_job(ctx: RunContext, crashed: bool, monitor: Monitor) -> str:
    """Run (a slice of) one job. Returns 'finished', 'yielded', 'paused' or 'stopped'."""
    job, token = ctx.job, ctx.token
    if crashed and job.attempts > settings.CHIRP_JOB_MAX_ATTEMPTS:
        job.fail(
            f"The worker stopped unexpectedly {job.attempts - 1} times while running this job, "
            "so Chirp gave up on it. Items that were done are kept.",
            token,
        )
        return "finished"
    # Claimed: the job left the line (or came back to a worker), so dashboards change too.
    job.publish(line_moved=True)
    monitor.watch(ctx)
    try:
        recover_items(job)
        if not job.prepared:
            items = list(job.prepare(ctx))
            ctx.should_stop()
            if ctx.stop_reason in ("cancelled", "lost"):
                return _hand_back(job, ctx)
            # Done is kept, even past the end of the slice or in a shutdown: preparing again
            # would not find the same items (an import's second listing stops at the videos
            # its first one created, and would end with nothing to do).
            job.mark_prepared(items, token)
        while True:
            pool = max(1, job.pool_size)
            feed = ItemFeed(job)
            if pool == 1:
                _work_items(job, ctx, monitor, feed)
            else:
                with ThreadPoolExecutor(pool, thread_name_prefix=f"chirp-{job.lane}") as ex:
                    workers = [ex.submit(_work_items, job, ctx, monitor, feed) for _ in range(pool)]
                    for future in workers:
                        future.result()
            if ctx.should_stop():
                return _hand_back(job, ctx)
            try:
                job.upkeep(final=True)
            except Exception:  # upkeep is beside the work: it never fails the job
                logger.exception("The final upkeep of %s failed", job)
            if job.finish(token):
                return "finished"
    except JobPaused as paused:
        ctx.pause(paused)
        return _hand_back(job, ctx)
    except Interrupted:
        return _hand_back(job, ctx)
    except JobError as exc:
        _fail_quietly(job, str(exc), token)
        return "finished"
    except Exception as exc:
        logger.exception("%s failed unexpectedly", job)
        _fail_quietly(job, f"Unexpected error: {exc.__class__.__name__}: {exc}"[:2000], token)
        return "finished"
    finally:
        monitor.watch(None)


def _fail_quietly(job: Job, error: str, token: str) -> None:
    # Cancelled meanwhile, or the lease was lost: nothing to record.
    with contextlib.suppress(IllegalTransition):
        job.fail(error, token)


def _hand_back(job: Job, ctx: RunContext) -> str:
    if ctx.stop_reason == "paused" and ctx.paused is not None:
        with contextlib.suppress(IllegalTransition):
            job.set_step(str(ctx.paused), ctx.token)
    job.release(ctx.token)
    if ctx.stop_reason in ("slice", "shutdown"):
        return "yielded"
    if ctx.stop_reason == "paused":
        return "paused"
    return "stopped"  # cancelled, or another worker took over


def _later(*moments: datetime | None) -> datetime | None:
    return max((moment for moment in moments if moment is not None), default=None)


def _wait_until(moment: datetime, deadline: float) -> bool:
    """Sleep (holding the slot) until `moment`; False if the slice or the worker ends first."""
    while timezone.now() < moment:
        if shutting_down() or time.monotonic() > deadline:
            return False
        time.sleep(min(0.25, max(0.01, (moment - timezone.now()).total_seconds())))
    return True


def run_lane(lane: str) -> str:
    """Run the lane's jobs for one slice. Meant to be a django-q2 task."""
    with worker_commits():
        return _run_lane(lane)


def _run_lane(lane: str) -> str:
    model = lane_model(lane)
    token = new_token()
    slot = claim_slot(lane, token)
    if slot is None:
        return "busy"
    deadline = time.monotonic() + settings.CHIRP_SLICE_SECONDS
    monitor = Monitor(slot, token)
    monitor.start()
    more = False
    ran = 0
    held_until: datetime | None = None  # a job of this lane asked for a pause (JobPaused)
    try:
        while True:
            if shutting_down() or time.monotonic() > deadline:
                more = True
                break
            pause = _later(held_until, model.paused_until())
            if pause is not None and pause > timezone.now() and runnable_jobs(model).exists():
                if not _wait_until(pause, deadline):
                    more = True
                    break
                held_until = None
                continue
            claimed = claim_job(model, token)
            if claimed is None:
                break
            job, crashed = claimed
            ran += 1
            ctx = RunContext(job, token, deadline)
            outcome = run_job(ctx, crashed, monitor)
            if outcome == "yielded":
                more = True
                break
            if outcome == "paused" and ctx.paused is not None:
                held_until = ctx.paused.until
    finally:
        monitor.stop()
        release_slot(slot, token)
        close_old_connections()
    if more and not shutting_down():
        wake_lane(lane)
    return f"ran {ran} job(s)" + (", more to do" if more else "")
