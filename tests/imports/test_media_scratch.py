"""The partial files of media downloads (imports/scratch.py): kept while someone will resume
them, removed when their import is cancelled or deleted, and swept by the hourly schedule once
nobody will resume them and they are older than CHIRP_MEDIA_SCRATCH_GRACE_HOURS."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from django.apps import apps
from django.db import connections
from django.urls import reverse
from django_q.models import Schedule

from chirp import engine
from chirp.signals import create_schedules
from imports import media as downloads
from imports.models import ImportJob, ImportJobItem, Video
from imports.tasks import sweep_media_scratch
from imports.youtube import parse_channel_input
from tests.conftest import wait_for
from tests.imports import test_media

pytestmark = pytest.mark.django_db(transaction=True)

media = test_media.media  # the fake YouTube serving real clips; the test's own folders


@pytest.fixture
def scratch(settings, tmp_path) -> Path:
    settings.CHIRP_MEDIA_SCRATCH_DIR = tmp_path / "scratch"
    settings.CHIRP_MEDIA_SCRATCH_GRACE_HOURS = 24
    return settings.CHIRP_MEDIA_SCRATCH_DIR


def leave_partial(root: Path, youtube_id: str, quality: str = "720", hours_ago: float = 0) -> Path:
    """What yt-dlp leaves of a download cut short: the video stream's .part and .ytdl, the
    audio stream complete but not merged."""
    folder = root / youtube_id / quality
    folder.mkdir(parents=True)
    for name in ("f136.mp4.part", "f136.mp4.ytdl", "f140.m4a"):
        (folder / f"{youtube_id}.{name}").write_bytes(b"\0" * 1000)
    moment = time.time() - hours_ago * 3600
    for path in (*folder.iterdir(), folder):
        os.utime(path, (moment, moment))
    return folder


def files_in(root: Path) -> list[str]:
    files = (p for p in root.rglob("*") if p.is_file() and ".ffmpeg" not in p.parts)
    return sorted(str(p.relative_to(root)) for p in files)


def test_cancelling_an_import_mid_download_removes_its_partial_file(
    alice, alice_client, media, media_clips, settings
):
    media.serve_media(media_clips, bandwidth=500_000)  # about nine seconds for the 720p stream
    media.add_channel("cancelled", videos=1)
    job, _ = ImportJob.start(alice, parse_channel_input("@cancelled"), media_quality="720")
    root = settings.CHIRP_MEDIA_SCRATCH_DIR

    def run() -> None:
        try:
            engine.run_lane("imports")
        finally:
            connections.close_all()

    runner = threading.Thread(target=run)
    runner.start()
    wait_for(lambda: media.media_bytes_sent > 500_000, timeout=60)
    assert [p for p in files_in(root) if p.endswith(".part")]  # in the middle of it

    alice_client.post(reverse("imports:cancel_job", args=[job.pk]))
    runner.join(30)

    assert not runner.is_alive()
    job.refresh_from_db()
    assert (job.status, job.items.get().status) == ("cancelled", "cancelled")
    assert files_in(root) == []  # neither the partial streams nor the download's lock


def test_cancelling_a_waiting_import_removes_what_an_earlier_attempt_left(
    alice, alice_client, bob, make_channel, scratch
):
    """An import stopped by a shutdown keeps its partial files for later; cancelled, they go,
    except those of a video another open import downloads at the same quality."""
    channel = make_channel(alice, videos=3)
    mine, shared, other_quality = channel.videos.order_by("pk")
    job, _ = ImportJob.start_download(alice, [mine, shared, other_quality], "720")
    ImportJob.objects.create(owner=bob, channel=channel, channel_url="https://www.youtube.com/@b")
    ImportJob.start_download(bob, [shared], "720")
    for video in (mine, shared):
        leave_partial(scratch, video.youtube_id)
    leave_partial(scratch, other_quality.youtube_id, "360")  # not this import's download

    alice_client.post(reverse("imports:cancel_job", args=[job.pk]))

    job.refresh_from_db()
    assert job.status == "cancelled"
    left = files_in(scratch)
    assert not [p for p in left if p.startswith(mine.youtube_id)]
    assert [p for p in left if p.startswith(f"{shared.youtube_id}/720/")]  # bob's will resume
    assert [p for p in left if p.startswith(f"{other_quality.youtube_id}/360/")]


def test_deleting_an_import_removes_its_partial_files(alice, make_channel, scratch):
    channel = make_channel(alice, videos=1)
    video = channel.videos.get()
    job, _ = ImportJob.start_download(alice, [video], "480")
    leave_partial(scratch, video.youtube_id, "480")

    job.delete()

    assert files_in(scratch) == []


def download_job(owner, videos: list[Video], quality: str, status: str = "pending") -> ImportJob:
    """A download of these videos (as ImportJob.start_download makes it), in this state."""
    job = ImportJob.objects.create(
        owner=owner,
        channel=videos[0].channel,
        channel_url=f"https://www.youtube.com/channel/{videos[0].youtube_id}-{quality}",
        media_quality=quality,
        prepared=True,
        total=len(videos),
        status=status,
    )
    ImportJobItem.objects.bulk_create(ImportJobItem(job=job, video=video) for video in videos)
    return job


def test_the_sweep_keeps_what_will_resume_and_removes_old_orphans(alice, make_channel, scratch):
    channel = make_channel(alice, videos=4)
    queued, retryable, private, cancelled = channel.videos.order_by("pk")
    download_job(alice, [queued], "720")  # in line: its download will go on
    failed = download_job(alice, [retryable, private], "720", status="completed")
    failed.items.update(status="failed", error="...")
    Video.objects.filter(pk=retryable.pk).update(stage="error", error_reason="storage")
    Video.objects.filter(pk=private.pk).update(stage="error", error_reason="private")
    # Cancelled (not through ImportJob.cancel, which sweeps at once): its item was queued.
    download_job(alice, [cancelled], "1080", status="cancelled")
    old = 48
    for video in (queued, retryable, private):
        leave_partial(scratch, video.youtube_id, hours_ago=old)
    leave_partial(scratch, cancelled.youtube_id, "1080", hours_ago=old)
    leave_partial(scratch, "deletedvid1", hours_ago=old)  # its video is gone
    leave_partial(scratch, "recentorphn", hours_ago=1)  # nobody's, but within the grace period
    leave_partial(scratch, "downloading", hours_ago=old)  # nobody's, but a download holds it
    (scratch / "killedwork1.360.lock").touch()  # a killed worker's lock, its files swept
    os.utime(scratch / "killedwork1.360.lock", (time.time() - old * 3600,) * 2)

    with downloads.unless_downloading("downloading", "720") as free:
        assert free
        removed = sweep_media_scratch()

    assert removed == 4  # private, cancelled, deletedvid1, killedwork1
    assert {p.split("/")[0] for p in files_in(scratch)} == {
        queued.youtube_id,
        retryable.youtube_id,
        "recentorphn",
        "downloading",
    }
    # The download ended (and nobody will resume it): its files go at the next sweep.
    assert sweep_media_scratch() == 1
    assert "downloading" not in {p.split("/")[0] for p in files_in(scratch)}


def test_the_sweep_runs_every_hour(db):
    chirp = apps.get_app_config("chirp")
    create_schedules(sender=chirp, app_config=chirp)

    [schedule] = Schedule.objects.filter(func="imports.tasks.sweep_media_scratch")
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == (
        Schedule.MINUTES,
        60,
        -1,
    )
