"""A storage that refuses the write (issue 11, "Bad input and failures"), each row through a real
`manage.py qcluster`: S3 down, wrong S3 credentials, a full disk (the missing bucket is in
test_media_worker.py, an unwritable media folder in test_media.py). Each time the download fails
with the storage problem in words on the video page, the downloaded file stays in the scratch
folder, the worker goes on with its next job, and Retry once the problem is fixed stores the kept
file without downloading it again.

Real refusals, not a storage subclass: a loopback port nobody listens on, a moto server that
checks signatures against its IAM users (as S3 does), a tmpfs filled to the last few kilobytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from html import escape
from pathlib import Path

import boto3
import pytest
import requests
from django.urls import reverse

from imports.models import MediaFile, Video
from tests.conftest import S3_BUCKET, Process, free_port, s3_client, start_moto, wait_for
from tests.imports.test_media_worker import folders, s3_env, start, state

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def moto_server(tmp_path: Path, port: int) -> tuple[Process, str]:
    """A moto server on `port` with the empty bucket S3_BUCKET, as the `s3` fixture starts it."""
    server, url, _ = start_moto(tmp_path / f"moto-{port}.log", port)
    return server, url


def stored_in_s3(client, media_file: MediaFile) -> str:  # type: ignore[no-untyped-def]
    body = client.get_object(Bucket=S3_BUCKET, Key=media_file.key)["Body"].read()
    return hashlib.sha256(body).hexdigest()


def kept(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "scratch").rglob("*.mp4"))


def shown(client, video: Video) -> str:  # type: ignore[no-untyped-def]
    response = client.get(video.get_absolute_url())
    assert response.status_code == 200
    return response.content.decode()


def retry(client, video: Video) -> None:  # type: ignore[no-untyped-def]
    response = client.post(reverse("imports:retry_video", args=[video.pk]))
    assert response.status_code == 302
    assert "The video is back in its import" in shown(client, video)


def failed_download(job) -> Video:  # type: ignore[no-untyped-def]
    wait_for(lambda: state(job).status in ("completed", "failed"), timeout=120)
    assert (job.done, job.failed) == (0, 1)
    video = Video.objects.get(channel=job.channel)
    assert (video.stage, video.error_reason) == ("error", "storage")
    assert video.transcript  # the metadata stays
    return video


def stored_after_retry(job) -> MediaFile:  # type: ignore[no-untyped-def]
    wait_for(lambda: state(job).status == "completed" and job.done == 1, timeout=120)
    assert job.failed == 0
    return MediaFile.objects.get(video__channel=job.channel)


# -- S3 down -----------------------------------------------------------------------------------


def test_s3_down_fails_the_download_and_a_retry_once_it_is_up_stores_the_kept_file(
    alice, alice_client, fake_youtube, media_clips, start_worker, tmp_path
):
    port = free_port()  # nobody listens here yet: connections are refused
    url = f"http://127.0.0.1:{port}"
    fake_youtube.serve_media(media_clips)
    fake_youtube.add_channel("s3down", videos=1)
    worker = start_worker(**folders(tmp_path), **s3_env(url))

    job = start(alice, "@s3down", media_quality="720")
    video = failed_download(job)

    message = f"Could not store the file in S3: cannot connect to {url}."
    assert video.error == message
    assert escape(message) in shown(alice_client, video)
    assert len(kept(tmp_path)) == 1  # the download, kept for a retry
    sent = fake_youtube.media_bytes_sent
    assert worker.popen.poll() is None  # the worker lives on

    # S3 is back on the same address: Retry, and the same worker stores the kept file.
    server, _ = moto_server(tmp_path, port)
    try:
        retry(alice_client, video)
        media_file = stored_after_retry(job)
        assert stored_in_s3(s3_client(url, "test", "test"), media_file) == media_file.sha256
    finally:
        server.terminate(10)
    assert fake_youtube.media_bytes_sent == sent  # not downloaded again
    assert kept(tmp_path) == []
    assert worker.popen.poll() is None


# -- wrong credentials -------------------------------------------------------------------------


@pytest.fixture
def s3_with_auth(tmp_path) -> Iterator[tuple[str, str, str]]:
    """A moto server that, like S3, accepts only requests signed with a known access key and
    its secret: (endpoint URL, access key id, secret key) of a user allowed to use S3_BUCKET."""
    port = free_port()
    server, url = moto_server(tmp_path, port)
    iam = boto3.client(
        "iam",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    iam.create_user(UserName="chirp")
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    }
    iam.put_user_policy(UserName="chirp", PolicyName="media", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="chirp")["AccessKey"]
    # From now on every request is authenticated (moto's INITIAL_NO_AUTH_ACTION_COUNT = 0).
    requests.post(f"{url}/moto-api/reset-auth", data=b"0", timeout=10).raise_for_status()
    yield url, key["AccessKeyId"], key["SecretAccessKey"]
    server.terminate(10)


# S3 refuses the HEAD request django-storages sends first with a bare 403 (no body, so no error
# code): one message for both, that names what to check.
REFUSED = (
    "Could not store the file in S3: access was refused (403 Forbidden): check the access key, "
    "the secret key and the bucket's permissions."
)


@pytest.mark.parametrize("wrong", ["CHIRP_S3_ACCESS_KEY_ID", "CHIRP_S3_SECRET_ACCESS_KEY"])
def test_wrong_s3_credentials_fail_the_download_and_a_retry_with_the_right_ones_stores_it(
    alice,
    alice_client,
    fake_youtube,
    media_clips,
    start_worker,
    tmp_path,
    s3_with_auth,
    wrong,
):
    url, key, secret = s3_with_auth
    s3 = s3_client(url, key, secret)
    s3.list_objects_v2(Bucket=S3_BUCKET)  # the right credentials work
    right = {
        **s3_env(url),
        "CHIRP_S3_ACCESS_KEY_ID": key,
        "CHIRP_S3_SECRET_ACCESS_KEY": secret,
    }
    fake_youtube.serve_media(media_clips)
    fake_youtube.add_channel("badkey", videos=1)
    fake_youtube.add_channel("later", videos=2)
    unknown = "AKIAWRONGWRONGWRONG0"  # neither a key S3 knows nor its secret
    worker = start_worker(**folders(tmp_path), **{**right, wrong: unknown})

    job = start(alice, "@badkey", media_quality="720")
    video = failed_download(job)

    assert video.error == REFUSED
    assert escape(REFUSED) in shown(alice_client, video)
    assert len(kept(tmp_path)) == 1
    sent = fake_youtube.media_bytes_sent
    # The worker lives on: its next job (no media) completes.
    later = start(alice, "@later")
    wait_for(lambda: state(later).status == "completed", timeout=120)
    assert (later.done, later.failed) == (2, 0)
    assert worker.popen.poll() is None
    assert s3.list_objects_v2(Bucket=S3_BUCKET).get("KeyCount") == 0  # nothing got in

    # The setting corrected and the worker restarted: Retry stores the kept file.
    worker.terminate(30)
    start_worker(**folders(tmp_path), **right)
    retry(alice_client, video)
    media_file = stored_after_retry(job)

    assert stored_in_s3(s3, media_file) == media_file.sha256
    assert fake_youtube.media_bytes_sent == sent
    assert kept(tmp_path) == []


# -- disk full ---------------------------------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path) -> Iterator[Path]:
    """A 16 MB tmpfs mounted where the media folder goes (mounting needs root)."""
    folder = tmp_path / "media"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0 and os.geteuid() != 0:
        # A machine's capability, not Chirp's: CI and the README's machine run as root.
        pytest.skip(f"a full disk is made with a tmpfs mount, which needs root: {mounted.stderr}")
    assert mounted.returncode == 0, mounted.stderr
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def free_bytes(folder: Path) -> int:
    stat = os.statvfs(folder)
    return stat.f_bavail * stat.f_frsize


def test_a_full_disk_fails_the_download_and_a_retry_once_there_is_room_stores_it(
    alice, alice_client, tiny_disk, fake_youtube, media_clips, start_worker, tmp_path
):
    # The media folder's disk with 32 KB left, far less than a 720p file.
    filler = tiny_disk / "filler"
    with filler.open("wb") as out:
        out.write(b"\0" * (free_bytes(tiny_disk) - 32 * 1024))
    assert free_bytes(tiny_disk) <= 32 * 1024 < media_clips[136].size
    fake_youtube.serve_media(media_clips)
    fake_youtube.add_channel("diskfull", videos=1)
    worker = start_worker(**folders(tmp_path))

    job = start(alice, "@diskfull", media_quality="720")
    video = failed_download(job)

    message = "Could not store the file in the media folder: the disk is full."
    assert video.error == message
    assert escape(message) in shown(alice_client, video)
    assert len(kept(tmp_path)) == 1
    # Nothing half-written is left in the media folder (no record would ever remove it).
    assert [p for p in (tiny_disk / "media").rglob("*") if p.is_file()] == []
    sent = fake_youtube.media_bytes_sent
    assert worker.popen.poll() is None

    # Room made: Retry, and the same worker stores the kept file.
    filler.unlink()
    retry(alice_client, video)
    media_file = stored_after_retry(job)

    path = tiny_disk / media_file.key
    assert hashlib.sha256(path.read_bytes()).hexdigest() == media_file.sha256
    assert fake_youtube.media_bytes_sent == sent
    assert kept(tmp_path) == []
    assert worker.popen.poll() is None
