"""Media goes to S3 when a bucket is configured (against a loopback S3: moto_server)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from chirp.storages import S3Storage
from imports.media import ChecksumMismatch, store_file
from imports.models import Channel, Video
from tests.chirp.test_settings import CLEAN
from tests.conftest import ROOT


def test_media_is_saved_to_and_read_from_the_configured_bucket(s3, tmp_path):
    url, client = s3
    code = (
        "import django; django.setup()\n"
        "from django.core.files.base import ContentFile\n"
        "from django.core.files.storage import default_storage as s\n"
        "name = s.save('thumbs/a.jpg', ContentFile(b'jpeg bytes'))\n"
        "body = s.open(name).read().decode().split()[0]\n"
        "print(type(s._wrapped).__name__, name, body, s.url(name).split('?')[0])"
    )
    env = {
        **CLEAN,
        "DEBUG": "1",
        "CHIRP_DATA_DIR": str(tmp_path / "data"),
        "CHIRP_S3_BUCKET": "chirp-media",
        "CHIRP_S3_ENDPOINT_URL": url,
        "CHIRP_S3_REGION": "us-east-1",
        "CHIRP_S3_ACCESS_KEY_ID": "test",
        "CHIRP_S3_SECRET_ACCESS_KEY": "test",
        "CHIRP_S3_ADDRESSING_STYLE": "path",
        "CHIRP_S3_PREFIX": "media",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    backend, name, content, link = result.stdout.split()
    assert (backend, name, content) == ("S3Storage", "thumbs/a.jpg", "jpeg")
    assert link == f"{url}/chirp-media/media/thumbs/a.jpg"
    stored = client.get_object(Bucket="chirp-media", Key="media/thumbs/a.jpg")["Body"].read()
    assert stored == b"jpeg bytes"


# -- a stored media file's check (imports/media.py store_file, chirp/storages.py) ---------------


MB = 1024 * 1024
GB = 1024 * MB


@pytest.fixture
def s3_media(s3, settings, tmp_path):
    """The default storage is the loopback S3, in this process; a 12 MB file to store."""
    url, client = s3
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "chirp.storages.S3Storage",
            "OPTIONS": {
                "bucket_name": "chirp-media",
                "endpoint_url": url,
                "region_name": "us-east-1",
                "access_key": "test",
                "secret_key": "test",
                "addressing_style": "path",
            },
        },
    }
    settings.CHIRP_S3_PART_SIZE = 5 * 1024 * 1024
    path = tmp_path / "video.mp4"
    path.write_bytes(os.urandom(12 * 1024 * 1024))  # three parts
    channel = Channel.objects.create(youtube_id="UCstorecheck0000000000", title="Checks")
    video = Video.objects.create(youtube_id="storecheck1", channel=channel, title="Stored")
    return client, video, path


def s3_requests() -> list[tuple[str, dict[str, str]]]:
    """(operation, headers) of every request the default storage's client sends from now on."""
    sent: list[tuple[str, dict[str, str]]] = []

    def record(request, event_name: str, **kwargs) -> None:
        sent.append((event_name.rsplit(".", 1)[1], dict(request.headers)))

    default_storage.connection.meta.client.meta.events.register("before-send.s3", record)
    return sent


def checksummed(headers: dict[str, str]) -> bool:
    """A CRC32 of the body, in a header or a trailer (boto3 sends either)."""
    return "x-amz-checksum-crc32" in {
        headers.get("x-amz-trailer", ""),
        *(name.lower() for name in headers),
    }


@pytest.mark.django_db
def test_a_file_stored_in_s3_is_checked_by_its_size_not_downloaded_again(s3_media):
    client, video, path = s3_media
    sent = s3_requests()

    key, size, sha256 = store_file(video, path)

    operations = [operation for operation, _ in sent]
    assert "GetObject" not in operations  # the 12 MB did not come back
    assert operations.count("UploadPart") == 3 and "HeadObject" in operations
    # What the check relies on: each part carried a checksum of its bytes, which S3 verifies.
    assert all(checksummed(headers) for op, headers in sent if op == "UploadPart")
    body = client.get_object(Bucket="chirp-media", Key=key)["Body"].read()
    assert (len(body), hashlib.sha256(body).hexdigest()) == (size, sha256)
    assert sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.django_db
def test_a_copy_s3_holds_short_is_deleted_and_refused(s3_media, settings):
    client, video, path = s3_media
    settings.STORAGES["default"]["BACKEND"] = "tests.chirp.test_storage.TruncatingS3Storage"

    with pytest.raises(ChecksumMismatch) as refused:
        store_file(video, path)

    assert str(refused.value) == (
        f"The stored file did not match the download (1000 bytes instead of "
        f"{path.stat().st_size}): it was deleted."
    )
    assert client.list_objects_v2(Bucket="chirp-media").get("KeyCount") == 0


@pytest.mark.django_db
def test_with_request_checksums_turned_off_the_s3_copy_is_read_back(s3_media, monkeypatch):
    _, video, path = s3_media
    monkeypatch.setenv("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required")
    sent = s3_requests()

    _, _, sha256 = store_file(video, path)

    assert "GetObject" in [operation for operation, _ in sent]
    assert sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def other_filesystem(settings, tmp_path):
    """A media folder in /dev/shm (a tmpfs), away from the scratch folder's filesystem."""
    folder = Path(tempfile.mkdtemp(prefix="chirp-media-", dir="/dev/shm"))
    assert os.stat(folder).st_dev != os.stat(tmp_path).st_dev
    settings.MEDIA_ROOT = folder
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.django_db
def test_a_media_folder_on_another_filesystem_takes_a_copy_checked_by_reading_it(
    other_filesystem, tmp_path
):
    """The media folder takes the downloaded file (a rename on one filesystem: see
    test_media.py); from another one it gets a copy, which is no longer the file hashed and is
    read back to be checked (a disk that flips a byte is caught: FlippingStorage)."""
    path = tmp_path / "scratch" / "video.mp4"
    path.parent.mkdir()
    content = os.urandom(3 * MB + 1)
    path.write_bytes(content)
    channel = Channel.objects.create(youtube_id="UCstorecheck0000000000", title="Checks")
    video = Video.objects.create(youtube_id="storecheck1", channel=channel, title="Stored")

    key, size, sha256 = store_file(video, path)

    stored = other_filesystem / key
    assert stored.read_bytes() == content
    assert (size, sha256) == (len(content), hashlib.sha256(content).hexdigest())
    assert not path.exists()  # moved (copied, then removed), as on one filesystem


@pytest.mark.django_db
def test_a_flipped_byte_in_a_copy_on_another_filesystem_is_caught(
    other_filesystem, settings, tmp_path
):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "tests.imports.test_media.FlippingStorage"},
    }
    path = tmp_path / "video.mp4"
    path.write_bytes(os.urandom(MB))
    channel = Channel.objects.create(youtube_id="UCstorecheck0000000000", title="Checks")
    video = Video.objects.create(youtube_id="storecheck1", channel=channel, title="Stored")

    with pytest.raises(ChecksumMismatch, match="SHA-256"):
        store_file(video, path)

    assert [p for p in other_filesystem.rglob("*") if p.is_file()] == []  # deleted


@pytest.mark.parametrize(
    ("size", "part", "parts_in_memory"),
    [(2 * GB, 8 * MB, 4), (200 * GB, 23 * MB, 2)],
)
def test_an_upload_holds_few_parts_in_memory(settings, size, part, parts_in_memory):
    settings.CHIRP_S3_PART_SIZE = 8 * MB
    config = S3Storage(bucket_name="chirp-media").transfer_config_for(size)

    # boto3 reads each part into memory: 10 parts at once by default (80 MB, or 230 MB).
    assert config.multipart_chunksize == part
    assert config.max_in_memory_upload_chunks == config.max_concurrency == parts_in_memory


class TruncatingS3Storage(S3Storage):
    """A bucket that keeps only the first 1,000 bytes of what it is given (the edge)."""

    def _save(self, name, content):  # type: ignore[no-untyped-def]
        name = super()._save(name, content)
        content.seek(0)
        self.bucket.Object(self._normalize_name(name)).put(Body=content.read(1000))
        return name
