"""The Uploads page's counts of all alice's work follow her items live, not only her jobs'
changes: the chips (her items by status, all jobs) as items start and end, the gallery's
counts (images, with and without faces) while a job runs. Coalesced by the worker's monitor:
one send per tick for every item that started in it, the gallery's counts at most once a
second. Checked on the events her stream receives (the store the stream reads)."""

from __future__ import annotations

import re
import time

import pytest
from django.urls import reverse

from chirp import engine
from tests.sse import stored_events
from uploads.models import ScrapeJob

from .conftest import make_image, make_job

pytestmark = pytest.mark.django_db


def chips(html: str) -> dict[str, int]:
    return {name: int(n) for name, n in re.findall(r'data-summary="(\w+)">\w+: (\d+)<', html)}


def gallery_counts(html: str) -> dict[str, int]:
    pairs = re.findall(r'data-count="(\w+)">[\w ]+<span class="count">(\d+)<', html)
    return {name: int(n) for name, n in pairs}


def chips_sent(user) -> list[dict[str, int]]:
    return [chips(html) for _, html in stored_events(user, "upload-summary")]


def counts_sent(user) -> list[dict[str, int]]:
    return [gallery_counts(html) for _, html in stored_events(user, "gallery-counts")]


def running(job: ScrapeJob) -> tuple[ScrapeJob, engine.Monitor]:
    """The job claimed by a runner, and that runner's monitor (its ticks run by the test)."""
    token = engine.new_token()
    slot = engine.claim_slot(ScrapeJob.lane, token)
    job, _ = engine.claim_job(ScrapeJob, token)
    monitor = engine.Monitor(slot, token)
    monitor.watch(engine.RunContext(job, token, time.monotonic() + 60))
    monitor.check()  # the first tick: the job as the claim sent it
    return job, monitor


def start(monitor: engine.Monitor, job: ScrapeJob, items) -> None:
    for item in items:
        item.job = job
        item.start()  # the runner took it: no counter of the job moves
        monitor.in_flight.add(item)


def test_the_chips_count_items_as_they_start_once_a_tick(
    alice, bob, alice_client, django_capture_on_commit_callbacks
):
    make_job(alice, ["completed", "failed"], status="completed")  # chips count all her jobs
    job, monitor = running(make_job(alice, ["queued"] * 4))
    page = alice_client.get(reverse("uploads:page")).content.decode()
    assert 'id="upload-summary" class="summary" sse-swap="upload-summary"' in page
    first, second, third, _ = job.items.all()
    sent_before = len(chips_sent(alice))

    start(monitor, job, [first, second])
    monitor.check()  # the tick that shows both as processing
    monitor.check()  # nothing moved since

    assert chips_sent(alice)[sent_before:] == [
        {"queued": 2, "processing": 2, "completed": 1, "failed": 1}
    ]
    with django_capture_on_commit_callbacks(execute=True):
        first.complete(image=make_image("new", seen_by=alice, found_on=job.url))
    start(monitor, job, [third])
    monitor.check()  # one ended, one started: one send
    assert chips_sent(alice)[-1] == {"queued": 1, "processing": 2, "completed": 2, "failed": 1}
    assert len(chips_sent(alice)) == sent_before + 2
    assert stored_events(bob) == []


def test_the_gallery_counts_move_while_a_job_runs_at_most_once_a_second(
    alice, django_capture_on_commit_callbacks
):
    make_image("earlier", faces=1, seen_by=alice)
    job, monitor = running(make_job(alice, ["queued"] * 3))
    first, second, _ = job.items.all()

    def bring_in(item, name: str, faces: int) -> None:
        start(monitor, job, [item])
        with django_capture_on_commit_callbacks(execute=True):
            item.complete(image=make_image(name, faces=faces, seen_by=alice, found_on=job.url))

    bring_in(first, "first", faces=0)
    monitor.check()  # the job moved, but its counts were just read
    assert counts_sent(alice) == []
    time.sleep(monitor.totals_every)
    monitor.check()
    assert counts_sent(alice) == [{"all": 2, "with": 1, "without": 1}]
    bring_in(second, "second", faces=2)
    monitor.check()
    monitor.check()
    assert len(counts_sent(alice)) == 1  # not twice within a second
    time.sleep(monitor.totals_every)
    monitor.check()
    monitor.check()  # nothing moved since: nothing sent
    assert counts_sent(alice)[1:] == [{"all": 3, "with": 2, "without": 1}]
    job.refresh_from_db()
    assert job.status == "processing"  # all of it before the job ended


def test_cancelling_a_queued_item_of_a_waiting_job_sends_its_row_and_the_chips(
    alice, alice_client, django_capture_on_commit_callbacks
):
    job = make_job(alice, ["queued", "queued"])  # waiting in line: no runner, no ticks
    item = job.items.first()

    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(reverse("uploads:cancel_item", args=[item.pk]))

    assert chips_sent(alice) == [{"queued": 1, "processing": 0, "completed": 0}]
    [(_, row)] = stored_events(alice, job.dom_id)
    assert "1 of 2 · 0 new · 0 skipped · 0 failed · 1 cancelled" in row
    assert 'data-status="cancelled"' in stored_events(alice, item.dom_id)[-1][1]
