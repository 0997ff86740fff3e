"""Running a channel list (ListBatch): its rows, found when the batch is prepared, and each
row's work: start that channel's import, wait for it, then say whose channel it is.

A row waits for its import rather than running it: the import runs in the imports lane like
any other (one at a time per slot, first come first served), so whatever other users queue
meanwhile runs between two rows of a batch. The row keeps its import (`row.import_job`, set in
the same transaction that creates it), so a worker that dies, a pause or the end of a slice
leaves the row to wait for the same import when the batch resumes: never a second one.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from chirp.engine import RunContext
from chirp.jobs import (
    CANCELLED,
    COMPLETED,
    FAILED,
    Interrupted,
    ItemError,
    ItemSkipped,
    JobError,
)
from imports import lists
from imports.models import Channel, Follow, ImportJob, Person
from imports.models.lists import ListBatch, ListBatchRow
from imports.youtube import InvalidChannelInput, parse_channel_input

logger = logging.getLogger(__name__)

# How often a row looks at its import while it waits (seconds): also how soon after one
# import ends the next row's starts.
POLL_SECONDS = 0.25
NOT_IMPORTED = (lists.Outcome.INVALID, lists.Outcome.DUPLICATE)


def _import_options(batch: ListBatch) -> dict[str, Any]:
    """The batch's options that a row's ImportJob takes beyond `limit` and `only_new`, as
    ImportJob field values (set on the import as it is created)."""
    quality = "" if batch.quality in ("", "none", None) else batch.quality
    return {"since": batch.since, "media_quality": quality}


def prepare_rows(batch: ListBatch, ctx: RunContext) -> list[ListBatchRow]:
    """Every row of the list, as the preview understood it (read again from the list's text,
    so what runs is what was shown); invalid rows and duplicates are rows too, for the report."""
    try:
        channel_list = lists.parse_list(batch.text, batch.format)
    except lists.InvalidList as exc:
        raise JobError(str(exc)) from None
    preview = lists.preview_list(channel_list, batch.owner)
    return [
        ListBatchRow(
            number=item.row.number,
            outcome=item.outcome,
            channel_url=item.ref.url if item.ref else "",
            input=item.row.channel,
            message=item.message,
            name=item.row.name[:255],
            email=item.row.email[:254],
            type=item.row.type[:100],
            extra=item.row.extra,
        )
        for item in preview.rows
    ]


def run_row(batch: ListBatch, row: ListBatchRow, ctx: RunContext) -> None:
    if row.outcome in NOT_IMPORTED:
        raise ItemSkipped(row.message[:1].upper() + row.message[1:])
    job = _import_of(batch, row)
    try:
        _wait_for(batch, row, job, ctx)
    except Interrupted:
        # Paused, handed back at the end of a slice, or the worker stops: the row goes back to
        # the queue, keeping its import (which goes on in its own lane). Cancelled: it ends.
        if ListBatch.objects.filter(pk=batch.pk, status=CANCELLED).exists():
            raise
        row.defer()
        return
    if job.status == COMPLETED:
        row.complete(message=job.finished_summary()[:2000])
    elif job.status == FAILED:
        raise ItemError(f"The import failed: {job.error or job.finished_summary()}")
    else:
        raise ItemError("The import was cancelled.")


def _import_of(batch: ListBatch, row: ListBatchRow) -> ImportJob:
    """The row's import: the one it started before (resumed), or a new one."""
    if row.import_job_id:
        job = ImportJob.objects.filter(pk=row.import_job_id).first()
        if job is not None:
            return job
    try:
        ref = parse_channel_input(row.channel_url)
    except InvalidChannelInput as exc:
        raise ItemError(str(exc)) from None
    # The cap is "at most this many videos a new channel": a channel the owner has already is
    # checked in full (its new videos past the cap would never come: the next check stops at
    # the newest one it knows).
    limit = None if Channel.known_for(ref, ref.url, batch.owner) else batch.limit
    with transaction.atomic():
        job, created = ImportJob.start(batch.owner, ref, limit=limit, only_new=batch.only_new)
        extra = _import_options(batch)
        if created and extra:
            ImportJob.objects.filter(pk=job.pk).update(**extra)
        ListBatchRow.objects.filter(pk=row.pk).update(import_job=job)
    row.import_job = job
    return job


def _wait_for(batch: ListBatch, row: ListBatchRow, job: ImportJob, ctx: RunContext) -> None:
    shown = ""
    while True:
        job.refresh_from_db()
        if row.channel_id is None and job.channel_id and (job.prepared or job.is_terminal):
            _listed(batch, row, job)
        if job.is_terminal:
            return
        step = f"Importing {job.title}: {job.phase_label or job.get_status_display()}"
        if step != shown:
            ctx.set_step(step)
            shown = step
        if ctx.should_stop():
            raise Interrupted(f"Stopped while waiting ({ctx.stop_reason}).")
        ctx.sleep(POLL_SECONDS)


def _listed(batch: ListBatch, row: ListBatchRow, job: ImportJob) -> None:
    """The row's import has listed its channel: the row's person (found by name and email
    among the owner's people, or new) is linked to it, and the channel followed if asked."""
    channel = job.channel
    person = None
    with transaction.atomic():
        if row.has_person:
            person = Person.objects.filter(
                owner=batch.owner, name=row.name, email=row.email
            ).first() or Person(owner=batch.owner, name=row.name, email=row.email)
            person.type = row.type or person.type
            person.extra = {**person.extra, **row.extra}
            person.save()
            person.link(channel)
        if batch.follow:
            Follow.start(batch.owner, channel, quality=batch.quality, since=batch.since)
        ListBatchRow.objects.filter(pk=row.pk).update(channel=channel, person=person)
    row.channel, row.person = channel, person
