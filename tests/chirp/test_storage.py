"""Media goes to S3 when a bucket is configured (against a loopback S3: moto_server)."""

from __future__ import annotations

import subprocess
import sys

import boto3
import pytest

from tests.chirp.test_settings import CLEAN
from tests.conftest import ROOT, Process, free_port, wait_for


@pytest.fixture
def s3_endpoint(tmp_path):
    port = free_port()
    server = Process(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        CLEAN,
        tmp_path / "moto.log",
    )
    url = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )

    def up() -> bool:
        try:
            client.list_buckets()
        except Exception:
            return False
        return True

    wait_for(up, timeout=30)
    client.create_bucket(Bucket="chirp-media")
    yield url, client
    server.terminate(10)


def test_media_is_saved_to_and_read_from_the_configured_bucket(s3_endpoint, tmp_path):
    url, client = s3_endpoint
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
