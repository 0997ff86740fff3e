"""A channel list's batch on the home page's dashboard, without a worker: running, paused (with
its place in the list and a Resume that works from there), ended like an import ends, and the
live dashboards that a pause and a resume send. alice owns, bob is the stranger. (A batch
resumed from the dashboard in a browser, live to its end: test_batch_browser.py.)"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from imports.models import ImportJob, ListBatch
from tests.chirp.test_dashboard import section
from tests.sse import stored_events

pytestmark = pytest.mark.django_db


def batch_of(owner, status: str, **fields) -> ListBatch:
    now = timezone.now()
    values = {
        "owner": owner,
        "name": "people.csv",
        "text": "@x\n",
        "format": "text",
        "status": status,
        "prepared": True,
        "total": 200,
        "started": now,
        **fields,
    }
    if status in ("completed", "failed", "cancelled"):
        values.setdefault("finished", now)
    return ListBatch.objects.create(**values)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def paused_section(html: str) -> str:
    return section(html, "dash-paused")


def test_a_paused_batch_shows_with_its_progress_and_a_resume(alice_client, alice, bob):
    batch = batch_of(alice, "paused", done=30, failed=5, skipped=2)
    batch_of(bob, "paused", name="bobs.csv")

    html = alice_client.get("/").content.decode()

    shown = paused_section(html)
    assert f'id="dash-{batch.dom_id}"' in shown
    assert "Paused · 37 of 200 channels" in text_of(shown)
    resume = reverse("imports:resume_batch", args=[batch.pk])
    assert re.search(rf'<form method="post" action="{resume}"[^>]*hx-post="{resume}"', shown)
    assert re.search(r'<button type="submit"[^>]*>Resume</button>', shown)
    # Not counted as running, nor in line; bob's paused batch is his own.
    assert f"dash-{batch.dom_id}" not in section(html, "dash-running")
    assert "bobs.csv" not in html
    assert "Welcome to Chirp" not in html


def test_a_batch_paused_before_it_read_its_rows_says_so(alice_client, alice):
    batch_of(alice, "paused", prepared=False, total=0)

    shown = paused_section(alice_client.get("/").content.decode())

    assert "Paused · not started yet" in text_of(shown)


def test_a_running_batch_counts_its_channels_beside_the_row_importing(alice_client, alice):
    batch = batch_of(
        alice,
        "running",
        done=36,
        failed=1,
        step="Importing Crowd 38: Enriching videos: 3 of 50",
        worker="w",
        heartbeat=timezone.now(),
    )

    shown = section(alice_client.get("/").content.decode(), "dash-running")

    assert f'id="dash-{batch.dom_id}"' in shown
    assert "37 of 200 channels · Importing Crowd 38: Enriching videos: 3 of 50 · 18 %" in (
        text_of(shown)
    )


def test_resume_from_the_dashboard_puts_the_batch_in_line(alice_client, alice):
    batch = batch_of(alice, "paused", done=37)
    url = reverse("imports:resume_batch", args=[batch.pk])

    answer = alice_client.post(url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="dashboard")

    html = answer.content.decode()
    assert answer.status_code == 200 and html.lstrip().startswith('<div id="dashboard"')
    assert f'id="dash-{batch.dom_id}"' in section(html, "dash-waiting")
    assert 'id="dash-paused"' not in html
    batch.refresh_from_db()
    assert batch.status == "pending"


def test_the_plain_resume_form_on_the_dashboard_comes_back_to_it(alice_client, alice):
    batch = batch_of(alice, "paused", done=37)
    form = paused_section(alice_client.get("/").content.decode())
    assert '<input type="hidden" name="next" value="/">' in form
    url = reverse("imports:resume_batch", args=[batch.pk])

    answer = alice_client.post(url, {"next": "/"})
    elsewhere = alice_client.post(url, {"next": "https://evil.example/"})

    assert answer.status_code == 302 and answer["Location"] == "/"
    # Resumed already (a warning), and never sent off to another site.
    assert elsewhere["Location"] == batch.get_absolute_url()
    batch.refresh_from_db()
    assert batch.status == "pending"


def test_pause_and_resume_send_the_dashboard_live(
    alice_client, alice, django_capture_on_commit_callbacks
):
    batch = batch_of(alice, "running", done=37, worker="w", heartbeat=timezone.now())

    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(reverse("imports:pause_batch", args=[batch.pk]))

    paused = stored_events(alice, "dashboard")[-1][1]
    assert f'id="dash-{batch.dom_id}"' in paused_section(paused)
    assert f"dash-{batch.dom_id}" not in section(paused, "dash-running")
    assert "Paused · 37 of 200 channels" in text_of(paused_section(paused))

    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(reverse("imports:resume_batch", args=[batch.pk]))

    resumed = stored_events(alice, "dashboard")[-1][1]
    assert 'id="dash-paused"' not in resumed
    assert re.search(
        rf'id="dash-{batch.dom_id}".*?1st in line', section(resumed, "dash-waiting"), re.S
    )


def test_ended_batches_read_like_ended_imports(alice_client, alice):
    """Under its title and status, an ended job says what it brought in (the title is not
    said twice), and its error once."""
    completed = batch_of(alice, "completed", done=195, failed=5)
    failed = batch_of(
        alice, "failed", name="bad.csv", failed=200, error="Nothing could be processed."
    )
    cancelled = batch_of(alice, "cancelled", name="stop.csv", done=30, cancelled=170)
    gone = ImportJob.objects.create(
        owner=alice,
        channel_url="https://www.youtube.com/@gone",
        status="failed",
        error="This channel does not exist.",
        finished=timezone.now(),
    )

    ended = section(alice_client.get("/").content.decode(), "dash-ended")

    rows = {
        dom_id: text_of(html)
        for dom_id, html in re.findall(r'<li id="dash-([\w-]+)"(.*?)</li>', ended, re.S)
    }
    assert (
        "Completed 195 of 200 channels imported, 0 videos, 5 rows failed" in rows[completed.dom_id]
    )
    assert "Failed 0 of 200 channels imported, 0 videos, 200 rows failed" in rows[failed.dom_id]
    assert (
        "Cancelled 30 of 200 channels imported, 0 videos, 170 rows cancelled"
        in (rows[cancelled.dom_id])
    )
    for batch in (completed, failed, cancelled):
        assert rows[batch.dom_id].count(batch.name) == 1
    assert rows[failed.dom_id].count("Nothing could be processed.") == 1
    # The toast names the list and says how it ended.
    toasts = {
        batch.status: batch._finished_toast()[0][1] for batch in (completed, failed, cancelled)
    }
    assert "List people.csv done: 195 of 200 channels imported" in toasts["completed"]
    assert "List bad.csv failed: 0 of 200 channels imported" in toasts["failed"]
    assert "List stop.csv cancelled: 30 of 200 channels imported" in toasts["cancelled"]
    assert rows[gone.dom_id].count("This channel does not exist.") == 1


def test_a_summary_counts_one_as_one(alice_client, alice):
    batch = batch_of(alice, "completed", total=3, done=1, failed=1, skipped=1)

    ended = section(alice_client.get("/").content.decode(), "dash-ended")

    assert "1 of 3 channels imported, 0 videos, 1 row failed, 1 row skipped" in text_of(ended)
    one = batch_of(alice, "cancelled", total=1, cancelled=1)
    assert one.ended_summary == "0 of 1 channel imported, 0 videos, 1 row cancelled"
    assert batch.finished_summary().startswith("List people.csv done: 1 of 3 channels")
