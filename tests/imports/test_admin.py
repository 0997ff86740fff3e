"""The admin: channels, videos (filter by stage, retry enrichment), import jobs (retry, cancel)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from imports.models import ImportJob, ImportJobItem, Video

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

    assert "Retried 1 video(s): sent back to their import; 1 had no failed import" in (
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
    assert "Retried 2 video(s): sent back to their import; 1 had no failed import to retry." in html
    assert set(Video.objects.filter(stage="created").values_list("pk", flat=True)) == {
        bad.pk,
        second.pk,
    }
