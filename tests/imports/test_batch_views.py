"""The batch pages, without a worker: the preview's Start (the list kept server-side on a
draft), the batch page, pause / resume / cancel, a failed row's retry, the report CSV, and who
may see what. alice owns, bob is the stranger. (The batch running: test_batch_worker.py.)"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from chirp import dashboard
from imports.models import Channel, ImportJob, ListBatch, ListBatchRow

pytestmark = pytest.mark.django_db

PLAN = {
    "channels": [
        {"name": "<script>alert(1)</script>", "email": "x@y.z", "channel_url": "@first"},
        {"name": "Nope", "channel_url": "https://example.com/@x"},
    ],
    "settings": {"quality": "720p", "skip_existing": False},
}


def preview(client, text: str):
    return client.post(reverse("imports:import_list"), {"text": text})


def test_the_preview_keeps_the_list_on_a_draft_and_offers_start_with_its_settings(alice_client):
    page = preview(alice_client, json.dumps(PLAN))

    html = page.content.decode()
    batch = ListBatch.objects.get()
    assert (batch.status, batch.format, batch.quality, batch.only_new) == (
        "draft",
        "json",
        "720",
        False,
    )
    assert json.loads(batch.text) == PLAN
    assert f'action="/channels/lists/{batch.pk}/start/"' in html
    assert re.search(r'<option value="720" selected>', html)
    assert not re.search(r'name="only_new"[^>]*checked', html)
    assert "<script>alert(1)</script>" not in html


def test_a_list_with_nothing_to_import_offers_no_start(alice_client):
    page = preview(alice_client, "https://example.com/@x\n")

    assert "Nothing in this list can be imported" in page.content.decode()
    assert not ListBatch.objects.exists()


def test_start_queues_the_draft_once_with_the_chosen_options(alice_client, alice):
    preview(alice_client, "@first\n@second\n")
    batch = ListBatch.objects.get()
    url = reverse("imports:start_batch", args=[batch.pk])

    answer = alice_client.post(url, {"limit": "4", "since": "2026-01-02", "follow": "on"})

    assert answer.status_code == 302 and answer["Location"] == batch.get_absolute_url()
    batch.refresh_from_db()
    assert (batch.status, batch.limit, str(batch.since), batch.follow, batch.only_new) == (
        "pending",
        4,
        "2026-01-02",
        True,
        False,
    )
    again = alice_client.post(url, {"limit": "9"}, follow=True)
    assert "started already" in again.content.decode()
    batch.refresh_from_db()
    assert batch.limit == 4 and ListBatch.objects.count() == 1


def test_a_bad_option_does_not_start_the_batch(alice_client):
    preview(alice_client, "@first\n")
    batch = ListBatch.objects.get()

    page = alice_client.post(
        reverse("imports:start_batch", args=[batch.pk]), {"since": "soon"}, follow=True
    )

    assert "The batch was not started: Enter the date as YYYY-MM-DD." in page.content.decode()
    batch.refresh_from_db()
    assert batch.status == "draft"


def test_pause_resume_and_cancel_from_the_batch_page(alice_client, alice):
    batch = ListBatch.draft(alice, "@first\n", "text")
    batch.start()
    page = alice_client.get(batch.get_absolute_url()).content.decode()
    assert "Pause" in page and "Resume" not in page

    alice_client.post(reverse("imports:pause_batch", args=[batch.pk]))
    batch.refresh_from_db()
    assert batch.status == "paused"
    page = alice_client.get(batch.get_absolute_url()).content.decode()
    assert "Resume" in page and "no other channel starts" in page

    alice_client.post(reverse("imports:resume_batch", args=[batch.pk]))
    batch.refresh_from_db()
    assert batch.status == "pending"

    alice_client.post(reverse("imports:pause_batch", args=[batch.pk]))
    alice_client.post(reverse("imports:cancel_batch", args=[batch.pk]))
    batch.refresh_from_db()
    assert batch.status == "cancelled"
    again = alice_client.post(reverse("imports:resume_batch", args=[batch.pk]), follow=True)
    assert "cannot be resumed" in again.content.decode()


def test_htmx_pause_answers_the_progress_block(alice_client, alice):
    batch = ListBatch.draft(alice, "@first\n", "text")
    batch.start()

    answer = alice_client.post(
        reverse("imports:pause_batch", args=[batch.pk]), HTTP_HX_REQUEST="true"
    )

    html = answer.content.decode()
    assert answer.status_code == 200 and f'id="{batch.dom_id}-progress"' in html
    assert 'data-status="paused"' in html and "Resume" in html


def finished_batch(alice) -> tuple[ListBatch, ListBatchRow, ImportJob]:
    now = timezone.now()
    batch = ListBatch.objects.create(
        owner=alice,
        text="@gone\n",
        format="text",
        status="completed",
        prepared=True,
        total=1,
        failed=1,
        started=now,
        finished=now,
    )
    job = ImportJob.objects.create(
        owner=alice,
        channel_url="https://www.youtube.com/@gone",
        status="failed",
        error="This channel does not exist.",
        finished=now,
    )
    row = ListBatchRow.objects.create(
        job=batch,
        number=1,
        outcome="new",
        channel_url=job.channel_url,
        input="@gone",
        name="=cmd|' /C calc'!A0",
        status="failed",
        error="The import failed: This channel does not exist.",
        import_job=job,
        finished=now,
    )
    return batch, row, job


def test_a_failed_row_is_retried_from_the_batch_page(alice_client, alice):
    batch, row, _job = finished_batch(alice)
    page = alice_client.get(batch.get_absolute_url()).content.decode()
    assert "The import failed: This channel does not exist." in page and "Retry" in page

    alice_client.post(reverse("imports:retry_batch_row", args=[batch.pk, row.pk]))

    row.refresh_from_db()
    batch.refresh_from_db()
    # Nothing of that import could be retried (it never listed), so the row starts afresh.
    assert (row.status, row.error, row.import_job_id) == ("queued", "", None)
    assert (batch.status, batch.failed) == ("pending", 0)


def test_the_report_csv_neutralises_formula_cells(alice_client, alice):
    batch, _row, _job = finished_batch(alice)

    answer = alice_client.get(reverse("imports:batch_report", args=[batch.pk]))

    assert answer["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(answer.content.decode())))
    assert rows[1][:7] == [
        "1",
        "https://www.youtube.com/@gone",
        "https://www.youtube.com/@gone",
        "'=cmd|' /C calc'!A0",
        "",
        "",
        "failed",
    ]


def test_a_strangers_batch_is_a_404_everywhere(client, bob, alice):
    batch, row, _job = finished_batch(alice)
    client.force_login(bob)

    for name, args in [
        ("batch_detail", [batch.pk]),
        ("batch_report", [batch.pk]),
    ]:
        assert client.get(reverse(f"imports:{name}", args=args)).status_code == 404
    for name, args in [
        ("start_batch", [batch.pk]),
        ("pause_batch", [batch.pk]),
        ("resume_batch", [batch.pk]),
        ("cancel_batch", [batch.pk]),
        ("retry_batch_row", [batch.pk, row.pk]),
    ]:
        assert client.post(reverse(f"imports:{name}", args=args)).status_code == 404
    row.refresh_from_db()
    assert row.status == "failed"


def test_the_batch_page_reads_its_rows_in_a_few_queries_however_many(alice_client, alice):
    """A 200-channel list's page must not ask the database once per row."""
    now = timezone.now()

    def queries_for(rows: int) -> int:
        batch = ListBatch.objects.create(
            owner=alice, text="x", format="text", status="completed", prepared=True, total=rows
        )
        for n in range(rows):
            job = ImportJob.objects.create(
                owner=alice,
                channel_url=f"https://www.youtube.com/@r{batch.pk}x{n}",
                status="completed",
                finished=now,
            )
            ListBatchRow.objects.create(
                job=batch, number=n + 1, outcome="new", status="completed", import_job=job
            )
        with CaptureQueriesContext(connection) as queries:
            page = alice_client.get(batch.get_absolute_url())
        assert page.content.decode().count('<td data-count="without-captions">0<') == rows
        return len(queries)

    alice_client.get("/")  # (the first request of all asks whether Chirp is set up)
    assert queries_for(40) == queries_for(4)


def test_the_estimate_of_what_is_left_goes_by_the_rows_own_time_not_the_pauses(alice_client, alice):
    """Ten rows; started ten hours ago, paused overnight: two rows took a minute each, so the
    eight left take about eight minutes, not forty hours."""
    now = timezone.now()
    batch = ListBatch.objects.create(
        owner=alice,
        text="x",
        format="text",
        status="running",
        prepared=True,
        total=10,
        done=2,
        started=now - timedelta(hours=10),
        worker="w",
        heartbeat=now,
    )
    for n in range(10):
        ended = n < 2
        ListBatchRow.objects.create(
            job=batch,
            number=n + 1,
            outcome="new",
            status="completed" if ended else "queued",
            started=now - timedelta(hours=9 - n, minutes=1) if ended else None,
            finished=now - timedelta(hours=9 - n) if ended else None,
        )

    page = alice_client.get(batch.get_absolute_url()).content.decode()
    api = alice_client.get(f"/api/channels/lists/{batch.pk}").json()

    assert api["remainingSeconds"] == 8 * 60
    assert api["elapsedSeconds"] == pytest.approx(10 * 3600, abs=5)
    assert '<span data-time="remaining">8:00</span> left' in page


SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(2)>'


def test_names_and_emails_are_escaped_in_every_live_fragment_and_the_page(alice_client, alice):
    """Bait in a list's file name, a person's name and email, and a channel's title: shown as
    text on the batch page, in each live fragment (the progress, the rows, a row, the
    dashboard's row and the whole dashboard) and in the toast."""
    now = timezone.now()
    channel = Channel.objects.create(youtube_id="UC" + "b" * 22, title=f"Chan {SCRIPT}")
    batch = ListBatch.objects.create(
        owner=alice,
        name=f"{IMG}.csv",
        text="x",
        format="csv",
        status="running",
        prepared=True,
        total=2,
        started=now,
        worker="w",
        heartbeat=now,
        step=f"Importing Chan {SCRIPT}: Listing",
    )
    job = ImportJob.objects.create(
        owner=alice,
        channel=channel,
        channel_url=channel.youtube_url,
        status="listing",
        started=now,
    )
    row = ListBatchRow.objects.create(
        job=batch,
        number=2,
        outcome="new",
        channel_url=channel.youtube_url,
        input=IMG,
        name=SCRIPT,
        email=f"{IMG}@x.com",
        type=SCRIPT,
        status="processing",
        import_job=job,
        channel=channel,
    )
    ListBatchRow.objects.create(
        job=batch, number=3, outcome="invalid", input=SCRIPT, message=f"bad: {IMG}", name=IMG
    )

    shown = {"page": alice_client.get(batch.get_absolute_url()).content.decode()}
    shown.update(batch.all_fragments())
    shown.update(batch._rows_fragment())
    shown.update(row.live_fragments())
    shown["dashboard"] = dashboard.fragment(alice.pk)[1]
    ListBatch.objects.filter(pk=batch.pk).update(status="completed", finished=now)
    batch.refresh_from_db()
    shown["toast"] = batch._finished_toast()[0][1]

    for where, html in shown.items():
        assert SCRIPT not in html and "<img src=x" not in html, where
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown[f"{batch.dom_id}-progress"]
    assert "&lt;img src=x onerror=alert(2)&gt;" in shown[f"dash-{batch.dom_id}"]
    assert "&lt;img src=x onerror=alert(2)&gt;" in shown["toast"]
    assert "&lt;script&gt;" in shown[row.dom_id] and "&lt;script&gt;" in shown["page"]
