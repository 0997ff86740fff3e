"""The admin: channels, videos (filter by stage, retry enrichment), import jobs (retry, cancel)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django import forms
from django.contrib.messages import get_messages
from django.db import connection
from django.utils import timezone

from imports.limiter import Limiter
from imports.models import ImportJob, ImportJobItem, ListBatch, ListBatchRow, Video

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def failed_import(owner, make_channel) -> tuple[ImportJob, Video]:
    channel = make_channel(owner, videos=3)
    job = ImportJob.objects.get(channel=channel)
    videos = list(channel.videos.order_by("pk"))
    for video in videos[:2]:
        ImportJobItem.objects.create(job=job, video=video, status="completed")
    bad = videos[2]
    Video.objects.filter(pk=bad.pk).update(stage="error", error_reason="timeout", error="Slow.")
    ImportJobItem.objects.create(job=job, video=bad, status="failed", error="Slow.")
    ImportJob.objects.filter(pk=job.pk).update(done=2, failed=1, total=3)
    job.refresh_from_db()
    return job, bad


def test_the_admin_pages_open(staff_client, alice, make_channel):
    job, bad = failed_import(alice, make_channel)

    for url in [
        "/admin/imports/channel/",
        f"/admin/imports/channel/{job.channel_id}/change/",
        "/admin/imports/video/?stage__exact=error",
        f"/admin/imports/video/{bad.pk}/change/",
        "/admin/imports/importjob/?status__exact=completed",
        f"/admin/imports/importjob/{job.pk}/change/",
    ]:
        assert staff_client.get(url).status_code == 200, url
    listing = staff_client.get("/admin/imports/video/?stage__exact=error").content.decode()
    assert listing.count('class="action-select"') == 1


def test_retry_enrichment_sends_a_failed_video_back_to_its_import(
    staff_client, alice, make_channel, monkeypatch
):
    monkeypatch.setattr("chirp.engine.wake_lane", lambda lane: None)
    job, bad = failed_import(alice, make_channel)
    complete = job.channel.videos.exclude(pk=bad.pk).first()

    response = staff_client.post(
        "/admin/imports/video/",
        {"action": "retry_enrichment", "_selected_action": [bad.pk, complete.pk]},
        follow=True,
    )

    assert "Retried 1 video: sent back to their import; 1 had no failed import" in (
        response.content.decode()
    )
    bad.refresh_from_db()
    job.refresh_from_db()
    assert (bad.stage, bad.error_reason) == ("created", "")
    assert ImportJobItem.objects.get(video=bad).status == "queued"
    assert (job.status, job.failed) == ("pending", 0)


def test_retry_failed_and_cancel_import_jobs(staff_client, alice, make_channel, monkeypatch):
    monkeypatch.setattr("chirp.engine.wake_lane", lambda lane: None)
    job, bad = failed_import(alice, make_channel)
    running = ImportJob.objects.create(
        owner=alice, channel_url="https://www.youtube.com/@other", status="enriching"
    )

    staff_client.post(
        "/admin/imports/importjob/", {"action": "retry_failed", "_selected_action": [job.pk]}
    )
    staff_client.post(
        "/admin/imports/importjob/", {"action": "cancel", "_selected_action": [running.pk]}
    )

    job.refresh_from_db()
    running.refresh_from_db()
    assert (job.status, job.failed) == ("pending", 0)
    assert ImportJobItem.objects.get(video=bad).status == "queued"
    assert running.status == "cancelled" and running.finished <= timezone.now()


def test_an_import_job_cannot_be_added_or_changed_through_a_form(staff_client, alice, make_channel):
    job, _ = failed_import(alice, make_channel)
    ImportJob.objects.filter(pk=job.pk).update(attempts=2)
    before = ImportJob.objects.filter(pk=job.pk).values().get()
    change_url = f"/admin/imports/importjob/{job.pk}/change/"

    page = staff_client.get(change_url).content.decode()
    posted = staff_client.post(
        change_url,
        {"status": "pending", "done": "3", "failed": "0", "attempts": "0", "total": "9"},
    )
    added = staff_client.post(
        "/admin/imports/importjob/add/",
        {"owner": alice.pk, "channel_url": "https://www.youtube.com/@new", "tab": "videos"},
    )

    assert 'name="status"' not in page and 'name="attempts"' not in page
    assert posted.status_code == 403 and added.status_code == 403
    assert ImportJob.objects.filter(pk=job.pk).values().get() == before
    assert ImportJob.objects.count() == 1
    assert "/admin/imports/importjob/add/" not in staff_client.get("/admin/").content.decode()


def _change_form_data(response) -> dict:
    """What the admin's change form would post back unchanged (split date fields included)."""
    form = response.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(field.widget, forms.SplitDateTimeWidget):
            moment = timezone.localtime(value) if value else None
            data[f"{name}_0"] = moment.strftime("%Y-%m-%d") if moment else ""
            data[f"{name}_1"] = moment.strftime("%H:%M:%S") if moment else ""
        else:
            data[name] = "" if value is None else value
    return data


def test_a_video_keeps_its_stage_but_its_transcript_can_be_edited(
    staff_client, alice, make_channel
):
    video = make_channel(alice, videos=1, stage="captions").videos.get()
    Video.objects.filter(pk=video.pk).update(progress=60, transcript_source="auto")
    change_url = f"/admin/imports/video/{video.pk}/change/"
    data = _change_form_data(staff_client.get(change_url))

    response = staff_client.post(
        change_url,
        {
            **data,
            "transcript": "a hedge of hornbeam",
            "stage": "complete",
            "progress": "100",
            "transcript_source": "manual",
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    video.refresh_from_db()
    assert video.transcript == "a hedge of hornbeam"
    assert (video.stage, video.progress, video.transcript_source) == ("captions", 60, "auto")
    if connection.vendor == "postgresql":  # the search vector was rebuilt with the edit
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT search_document @@ to_tsquery('english', 'hornbeam'), search_stale"
                " FROM imports_video WHERE id = %s",
                [video.pk],
            )
            assert cursor.fetchone() == (True, False)


def test_resume_now_wakes_the_lane_for_waiting_imports_and_lifts_youtubes_pause(
    staff_client, alice, make_channel, monkeypatch, django_capture_on_commit_callbacks
):
    woken = []
    monkeypatch.setattr("chirp.engine.wake_lane", woken.append)
    done, _ = failed_import(alice, make_channel)
    earlier = timezone.now() - timedelta(minutes=5)
    first = ImportJob.objects.create(
        owner=alice, channel_url="https://www.youtube.com/@first", enqueued=earlier
    )
    paused = ImportJob.objects.create(  # handed back in the pause: nobody holds its lease
        owner=alice,
        channel_url="https://www.youtube.com/@paused",
        status="enriching",
        step="Paused: YouTube is rate-limiting",
        heartbeat=timezone.now(),
    )
    running = ImportJob.objects.create(
        owner=alice,
        channel_url="https://www.youtube.com/@running",
        status="enriching",
        worker="host:1:abc",
        heartbeat=timezone.now(),
    )
    Limiter().throttled("rate_limited")
    assert Limiter().current_pause() is not None

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            "/admin/imports/importjob/",
            {
                "action": "resume_now",
                "_selected_action": [first.pk, paused.pk, running.pk, done.pk],
            },
            follow=True,
        )

    shown = [str(m) for m in get_messages(response.wsgi_request)]
    assert shown[0].startswith(
        f"The imports lane was woken for #{first.pk} (next), #{paused.pk} (1 ahead of it): "
    )
    assert "YouTube's pause (until " in shown[0] and shown[0].endswith(") was lifted.")
    assert shown[1] == (
        f"2 imports were not waiting and were not resumed: #{done.pk} already completed, "
        f"#{running.pk} is running now."
    )
    assert Limiter().current_pause() is None
    assert woken == ["imports"]  # one runner: the lane has one slot


def test_retrying_failed_videos_filtered_by_stage_counts_the_selection(
    staff_client, alice, make_channel, monkeypatch
):
    """The admin's "Failed" filter: the retried videos leave that stage, the counts do not."""
    monkeypatch.setattr("chirp.engine.wake_lane", lambda lane: None)
    job, bad = failed_import(alice, make_channel)
    others = list(job.channel.videos.exclude(pk=bad.pk).order_by("pk"))
    second = others[0]
    ImportJobItem.objects.filter(video=second).update(status="failed", error="Slow.")
    ImportJob.objects.filter(pk=job.pk).update(done=1, failed=2)
    stranded = make_channel(alice, videos=1, stage="error").videos.get()  # failed, no failed item
    Video.objects.filter(pk=second.pk).update(stage="error", error_reason="timeout")

    response = staff_client.post(
        "/admin/imports/video/?stage__exact=error",
        {"action": "retry_enrichment", "_selected_action": [bad.pk, second.pk, stranded.pk]},
        follow=True,
    )

    html = response.content.decode()
    assert "Retried 2 videos: sent back to their import; 1 had no failed import to retry." in html
    assert set(Video.objects.filter(stage="created").values_list("pk", flat=True)) == {
        bad.pk,
        second.pk,
    }


def failed_list(owner) -> tuple[ListBatch, ListBatchRow]:
    """A finished list of one row whose import failed before it listed anything."""
    now = timezone.now()
    batch = ListBatch.objects.create(
        owner=owner, name="people.csv", text="@gone\n", format="text", status="completed",
        prepared=True, total=1, failed=1, started=now, finished=now,
    )  # fmt: skip
    job = ImportJob.objects.create(
        owner=owner, channel_url="https://www.youtube.com/@gone", status="failed",
        error="This channel does not exist.", finished=now,
    )  # fmt: skip
    row = ListBatchRow.objects.create(
        job=batch, number=1, outcome="new", channel_url=job.channel_url, input="@gone",
        name="Ann <b>", status="failed", error="The import failed.", import_job=job, finished=now,
    )  # fmt: skip
    return batch, row


def test_list_imports_are_in_the_admin_read_only_with_their_rows(staff_client, alice):
    batch, _row = failed_list(alice)
    before = ListBatch.objects.filter(pk=batch.pk).values().get()
    change_url = f"/admin/imports/listbatch/{batch.pk}/change/"

    changelist = staff_client.get("/admin/imports/listbatch/")
    page = staff_client.get(change_url)
    posted = staff_client.post(change_url, {"status": "pending", "failed": "0", "done": "1"})
    added = staff_client.post("/admin/imports/listbatch/add/", {"text": "@x", "format": "text"})

    assert changelist.status_code == 200 and "List people.csv" in changelist.content.decode()
    html = page.content.decode()
    assert page.status_code == 200 and "Ann &lt;b&gt;" in html and "The import failed." in html
    assert 'name="status"' not in html and 'name="failed"' not in html
    assert posted.status_code == 403 and added.status_code == 403
    assert ListBatch.objects.filter(pk=batch.pk).values().get() == before
    assert ListBatch.objects.count() == 1


def test_the_admin_retries_a_lists_failed_rows_and_cancels_a_running_list(
    staff_client, alice, monkeypatch
):
    monkeypatch.setattr("chirp.engine.wake_lane", lambda lane: None)
    batch, row = failed_list(alice)
    running = ListBatch.objects.create(owner=alice, text="@a\n", format="text", status="running")

    staff_client.post(
        "/admin/imports/listbatch/", {"action": "retry_failed", "_selected_action": [batch.pk]}
    )
    staff_client.post(
        "/admin/imports/listbatch/", {"action": "cancel", "_selected_action": [running.pk]}
    )

    batch.refresh_from_db()
    row.refresh_from_db()
    running.refresh_from_db()
    # The row starts a new import (the failed one never listed: nothing of it to retry).
    assert (batch.status, batch.failed) == ("pending", 0)
    assert (row.status, row.error, row.import_job_id) == ("queued", "", None)
    assert running.status == "cancelled"
