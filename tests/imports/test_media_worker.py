"""Media downloads inside a real `manage.py qcluster`: local storage, a loopback S3 (moto
server), and a worker killed (SIGKILL) in the middle of a download."""

from __future__ import annotations

import hashlib
import math
import os
import time
from pathlib import Path

import pytest

from imports.models import ImportJob, MediaFile, Video
from imports.youtube import parse_channel_input
from tests.conftest import S3_BUCKET, wait_for
from tests.imports.media_clips import probe

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

BUCKET = S3_BUCKET


def start(owner, text: str, **options) -> ImportJob:
    job, created = ImportJob.start(owner, parse_channel_input(text), **options)
    assert created
    return job


def state(job: ImportJob) -> ImportJob:
    job.refresh_from_db()
    return job


def folders(tmp_path: Path) -> dict[str, str]:
    return {
        "CHIRP_MEDIA_ROOT": str(tmp_path / "media"),
        "CHIRP_MEDIA_SCRATCH_DIR": str(tmp_path / "scratch"),
    }


def test_an_import_at_720p_through_a_real_worker(
    alice, fake_youtube, media_clips, start_worker, tmp_path
):
    fake_youtube.serve_media(media_clips)
    fake = fake_youtube.add_channel("worker720", videos=3)
    start_worker(**folders(tmp_path))

    job = start(alice, "@worker720", media_quality="720")
    wait_for(lambda: state(job).status == "completed", timeout=120)

    assert (job.done, job.failed) == (3, 0)
    stored = {m.video.youtube_id: m for m in MediaFile.objects.select_related("video")}
    assert set(stored) == set(fake.video_ids)
    for media_file in stored.values():
        path = tmp_path / "media" / media_file.key
        streams = probe(path)
        assert streams.container.startswith("mov,mp4") and streams.audio == ["aac"]
        assert [height for _, _, height in streams.video] == [720]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == media_file.sha256
    assert set(Video.objects.values_list("stage", flat=True)) == {"complete"}


def s3_env(url: str, bucket: str = BUCKET) -> dict[str, str]:
    return {
        "CHIRP_S3_BUCKET": bucket,
        "CHIRP_S3_ENDPOINT_URL": url,
        "CHIRP_S3_REGION": "us-east-1",
        "CHIRP_S3_ACCESS_KEY_ID": "test",
        "CHIRP_S3_SECRET_ACCESS_KEY": "test",
        "CHIRP_S3_ADDRESSING_STYLE": "path",
        "CHIRP_S3_PART_SIZE": str(5 * 1024 * 1024),
    }


def test_an_import_at_the_best_quality_stores_to_s3_in_several_parts(
    alice, fake_youtube, media_clips, start_worker, tmp_path, s3
):
    url, client = s3
    fake_youtube.serve_media(media_clips)
    fake_youtube.add_channel("tos3", videos=2)
    start_worker(**folders(tmp_path), **s3_env(url))

    job = start(alice, "@tos3", media_quality="best")
    wait_for(lambda: state(job).status == "completed", timeout=120)

    assert (job.done, job.failed) == (2, 0), list(Video.objects.values_list("error", flat=True))
    for media_file in MediaFile.objects.all():
        head = client.head_object(Bucket=BUCKET, Key=media_file.key)
        # A multipart upload's ETag ends with its number of parts (of 5 MiB).
        assert media_file.size > 10 * 1024 * 1024 and media_file.height == 1080
        parts = math.ceil(media_file.size / (5 * 1024 * 1024))
        assert parts >= 3 and head["ETag"].strip('"').endswith(f"-{parts}")
        assert head["ContentLength"] == media_file.size
        body = client.get_object(Bucket=BUCKET, Key=media_file.key)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == media_file.sha256
        (tmp_path / "copy.mp4").write_bytes(body)
        assert [h for _, _, h in probe(tmp_path / "copy.mp4").video] == [1080]
    # Nothing was written to the local media folder; the scratch folder is empty again.
    assert not (tmp_path / "media").exists()
    assert [p for p in (tmp_path / "scratch").rglob("*.mp4")] == []


def test_a_missing_bucket_fails_the_download_with_the_storage_problem(
    alice, fake_youtube, media_clips, start_worker, tmp_path, s3
):
    url, _ = s3
    fake_youtube.serve_media(media_clips)
    fake_youtube.add_channel("nobucket", videos=1)
    worker = start_worker(**folders(tmp_path), **s3_env(url, bucket="no-such-bucket"))

    job = start(alice, "@nobucket", media_quality="720")
    wait_for(lambda: state(job).status in ("completed", "failed"), timeout=120)

    video = Video.objects.get()
    assert (video.stage, video.error_reason) == ("error", "storage")
    assert video.error == "Could not store the file in S3: the bucket does not exist."
    assert list((tmp_path / "scratch").rglob("*.mp4"))  # kept for a retry
    assert worker.popen.poll() is None  # the worker lives on


def test_a_worker_killed_mid_download_resumes_from_its_partial_file(
    alice, fake_youtube, media_clips, start_worker, tmp_path
):
    # About nine seconds for the 720p stream: the kill lands in the middle of it.
    fake_youtube.serve_media(media_clips, bandwidth=500_000)
    fake_youtube.add_channel("killed", videos=1)
    worker = start_worker(**folders(tmp_path))
    job = start(alice, "@killed", media_quality="720")
    video_stream = media_clips[136].size

    wait_for(lambda: fake_youtube.media_bytes_sent > video_stream * 0.4, timeout=60)
    worker.kill()
    sent_at_kill = fake_youtube.media_bytes_sent
    assert sent_at_kill < video_stream * 0.8
    assert state(job).status == "enriching"
    partial = list((tmp_path / "scratch").rglob("*.part"))
    assert partial and partial[0].stat().st_size > 0

    time.sleep(2.5)  # the lease (2 s in tests) runs out
    start_worker(**folders(tmp_path))
    wait_for(lambda: state(job).status == "completed", timeout=120)

    assert (job.done, job.failed) == (1, 0)
    media_file = MediaFile.objects.get()
    path = tmp_path / "media" / media_file.key
    assert hashlib.sha256(path.read_bytes()).hexdigest() == media_file.sha256
    assert [h for _, _, h in probe(path).video] == [720] and probe(path).audio == ["aac"]
    # Resumed, not restarted: the second worker asked for the rest of the stream (a Range
    # that starts past zero), and far less than twice the file crossed the wire in all.
    ranges = [
        r.headers.get("Range", "") for r in fake_youtube.requests if r.query.get("itag") == ["136"]
    ]
    assert len(ranges) == 2 and not ranges[1].startswith("bytes=0-")
    total = video_stream + media_clips[140].size
    assert fake_youtube.media_bytes_sent < 1.5 * total
    assert not list((tmp_path / "scratch").rglob("*.part"))
    assert os.listdir(tmp_path / "scratch") in ([], [".ffmpeg"])


def test_a_worker_stopped_mid_download_hands_it_back_and_the_next_one_continues(
    alice, fake_youtube, media_clips, start_worker, tmp_path
):
    fake_youtube.serve_media(media_clips, bandwidth=500_000)
    fake_youtube.add_channel("stopped", videos=1)
    worker = start_worker(**folders(tmp_path))
    job = start(alice, "@stopped", media_quality="720")
    video_stream = media_clips[136].size

    wait_for(lambda: fake_youtube.media_bytes_sent > video_stream * 0.3, timeout=60)
    took = worker.terminate(30)  # SIGTERM: a deploy, a restart

    assert took < 15  # it did not wait for the download to finish
    assert fake_youtube.media_bytes_sent < video_stream * 0.9
    assert (state(job).status, job.worker) == ("enriching", "")  # handed back
    item = job.items.get()
    assert (item.status, item.video.stage) == ("queued", "created")  # back in the queue
    assert MediaFile.objects.count() == 0
    assert list((tmp_path / "scratch").rglob("*.part"))

    start_worker(**folders(tmp_path))
    wait_for(lambda: state(job).status == "completed", timeout=120)

    assert (job.done, job.failed) == (1, 0)
    media_file = MediaFile.objects.get()
    path = tmp_path / "media" / media_file.key
    assert hashlib.sha256(path.read_bytes()).hexdigest() == media_file.sha256
    total = video_stream + media_clips[140].size
    assert fake_youtube.media_bytes_sent < 1.5 * total
