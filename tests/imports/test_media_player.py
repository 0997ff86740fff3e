"""Stored media in the pages (imports/playback.py, the video and channel pages): played with
HTTP Range requests, saved with a readable name, badges and totals, downloads on request and
removal that frees the storage. S3 through a loopback moto server; the browser test plays a
real clip in Debian's chromium."""

from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse

from chirp import engine
from imports.models import Channel, ImportJob, MediaFile, Video
from imports.youtube import parse_channel_input
from tests.conftest import S3_BUCKET as BUCKET
from tests.imports import test_media

pytestmark = pytest.mark.django_db(transaction=True)

# The download tests' fixture: the fake YouTube serving real clips (`s3` is tests/conftest's).
media = test_media.media

BYTES = bytes(i % 251 for i in range(1000))  # every offset has its own, known byte


@pytest.fixture
def media_root(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CHIRP_MEDIA_SCRATCH_DIR = tmp_path / "scratch"
    return settings.MEDIA_ROOT


def store(video: Video, data: bytes = BYTES, **fields) -> MediaFile:
    """A stored file of `video`, as the download stage leaves it."""
    key = default_storage.save(MediaFile.new_key(video, "mp4"), ContentFile(data))
    values = {"kind": "video", "quality": "720", "height": 720, "container": "mp4"} | fields
    return MediaFile.objects.create(video=video, size=len(data), sha256="0" * 64, key=key, **values)


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def media_url(media_file: MediaFile, *, download: bool = False) -> str:
    name = "imports:video_media_file" if download else "imports:video_media"
    return reverse(name, args=[media_file.video_id, media_file.pk])


def body(response) -> bytes:
    return b"".join(response.streaming_content)


@pytest.fixture
def stored(alice, make_channel, media_root) -> MediaFile:
    channel = make_channel(alice, videos=2, title="Alice's channel")
    return store(channel.videos.order_by("pk").first())


# -- playing: Range requests -------------------------------------------------------------------


def test_a_range_request_gets_those_bytes(alice, stored):
    response = client_for(alice).get(media_url(stored), HTTP_RANGE="bytes=100-199")

    assert response.status_code == 206
    assert response["Content-Range"] == "bytes 100-199/1000"
    assert response["Content-Length"] == "100"
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Type"] == "video/mp4"
    assert body(response) == BYTES[100:200]


def test_open_ended_and_suffix_ranges(alice, stored):
    client = client_for(alice)

    rest = client.get(media_url(stored), HTTP_RANGE="bytes=900-")
    assert (rest.status_code, rest["Content-Range"]) == (206, "bytes 900-999/1000")
    assert body(rest) == BYTES[900:]

    tail = client.get(media_url(stored), HTTP_RANGE="bytes=-50")
    assert (tail.status_code, tail["Content-Range"]) == (206, "bytes 950-999/1000")
    assert body(tail) == BYTES[-50:]

    past = client.get(media_url(stored), HTTP_RANGE="bytes=990-5000")  # clipped to the end
    assert (past.status_code, past["Content-Range"]) == (206, "bytes 990-999/1000")
    assert body(past) == BYTES[990:]

    whole = client.get(media_url(stored))
    assert (whole.status_code, whole["Accept-Ranges"], whole["Content-Length"]) == (
        200,
        "bytes",
        "1000",
    )
    assert body(whole) == BYTES


def test_a_range_past_the_end_is_refused_with_416(alice, stored):
    response = client_for(alice).get(media_url(stored), HTTP_RANGE="bytes=1000-1100")

    assert response.status_code == 416
    assert response["Content-Range"] == "bytes */1000"


def test_someone_who_does_not_see_the_channel_gets_404(bob, stored):
    client = client_for(bob)

    assert client.get(media_url(stored), HTTP_RANGE="bytes=0-9").status_code == 404
    assert client.get(media_url(stored, download=True)).status_code == 404
    assert client.get(stored.video.get_absolute_url()).status_code == 404


# -- saving: the file's name -------------------------------------------------------------------


def test_download_file_has_a_readable_name(alice, stored):
    video = stored.video
    Video.objects.filter(pk=video.pk).update(title="Ünïcode: Grüße 🎵")

    response = client_for(alice).get(media_url(stored, download=True))

    assert response.status_code == 200 and body(response) == BYTES
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment;")
    encoded = re.search(r"filename\*=utf-8''(\S+)", disposition, re.I)[1]
    assert unquote(encoded) == f"Alice's channel - Ünïcode: Grüße 🎵 [{video.youtube_id}].mp4"


def test_a_title_with_path_separators_and_control_characters_stays_one_name(alice, stored):
    video = stored.video
    Video.objects.filter(pk=video.pk).update(title="AC/DC\\live\x07\n at ../home")

    disposition = client_for(alice).get(media_url(stored, download=True))["Content-Disposition"]

    name = re.search(r'filename="([^"]+)"', disposition)[1]
    assert name == f"Alice's channel - AC-DC-live at ..-home [{video.youtube_id}].mp4"
    assert "/" not in name and "\\" not in name


# -- seeing: the player, badges, totals --------------------------------------------------------


def test_the_video_page_plays_the_stored_file_and_its_timestamps_can_seek_it(alice, stored):
    video = stored.video
    Video.objects.filter(pk=video.pk).update(
        transcript_segments=[[2.0, 1.0, "In the middle"]], transcript_source="captions"
    )

    page = client_for(alice).get(video.get_absolute_url()).content.decode()

    assert (
        f'<video class="player" data-player controls preload="metadata" src="{media_url(stored)}"'
        in page
    )
    assert f'href="{media_url(stored, download=True)}" download>Download file</a>' in page
    # The timestamp says where it seeks; its link is still YouTube's moment, as a fallback.
    assert re.search(
        r'href="https://www\.youtube\.com/watch\?v=\w+&amp;t=2s"[^>]*'
        r'class="timestamp" data-seconds="2.0"',
        page,
    )


def test_cards_show_the_stored_quality(alice, make_channel, media_root):
    channel = make_channel(alice, videos=3)
    first, second, third = channel.videos.order_by("pk")
    store(first, height=720)
    store(second, kind="audio", quality="audio", height=None, container="m4a")

    page = client_for(alice).get(channel.get_absolute_url()).content.decode()

    badges = dict(
        re.findall(
            r'<article id="video-(\d+)".*?'
            r'(?:<span class="media-badge"[^>]*>(\w+)</span>|</article>)',
            page,
            re.S,
        )
    )
    assert badges == {str(first.pk): "720p", str(second.pk): "Audio", str(third.pk): ""}


def test_the_channel_import_and_dashboard_show_what_is_stored(alice, bob, make_channel, media_root):
    channel = make_channel(alice, videos=3)
    first, second, _ = channel.videos.order_by("pk")
    store(first, data=b"x" * 1_500_000)
    store(first, data=b"y" * 500_000, quality="audio", kind="audio", container="m4a")
    store(second, data=b"z" * 1_000_000, quality="360", height=360)
    other = make_channel(bob, videos=1)
    store(other.videos.get(), data=b"b" * 9_000_000)
    client = client_for(alice)

    channel_page = client.get(channel.get_absolute_url()).content.decode()
    assert '<p data-stored="channel">2 videos stored · 2.9\xa0MB</p>' in channel_page
    job = ImportJob.objects.get(channel=channel)
    job.items.create(video=first)
    job_page = client.get(job.get_absolute_url()).content.decode()
    assert "Stored media: 1 video · 1.9\xa0MB" in job_page

    dashboard = client.get("/").content.decode()
    assert re.search(
        r'data-total="storage-used"><dt[^>]*>Storage used</dt><dd class="count">2.9\xa0MB<',
        dashboard,
    )
    assert re.search(r'data-total="stored"><dt[^>]*>Stored</dt><dd class="count">2<', dashboard)


# -- downloading on request --------------------------------------------------------------------


def test_the_download_button_queues_the_video_and_it_is_stored(alice, bob, media):
    fake = media.add_channel("asked", videos=3)
    ImportJob.start(alice, parse_channel_input("@asked"))
    engine.run_lane("imports")
    wanted = Video.objects.get(youtube_id=fake.videos[1].id)
    url = reverse("imports:download_video", args=[wanted.pk])

    assert client_for(bob).post(url, {"quality": "360"}).status_code == 404
    refused = client_for(alice).post(url, {"quality": "4k"}, follow=True)
    assert "Choose a quality" in refused.content.decode()
    answer = client_for(alice).post(url, {"quality": "360"}, HTTP_HX_REQUEST="true")
    assert "Downloading this video at 360p." in answer.content.decode()
    engine.run_lane("imports")

    stored = MediaFile.objects.get()
    assert (stored.video, stored.quality, stored.height) == (wanted, "360", 360)
    page = client_for(alice).get(wanted.get_absolute_url()).content.decode()
    assert f'src="{media_url(stored)}"' in page


def test_download_all_queues_what_is_imported(alice, media):
    media.add_channel("everything", videos=2)
    ImportJob.start(alice, parse_channel_input("@everything"))
    engine.run_lane("imports")
    channel = Channel.objects.get()

    response = client_for(alice).post(
        reverse("imports:download_channel", args=[channel.pk]), {"quality": "audio"}, follow=True
    )
    assert "Downloading 2 videos at Audio only." in response.content.decode()
    engine.run_lane("imports")

    assert sorted(MediaFile.objects.values_list("video__channel", "kind")) == [
        (channel.pk, "audio"),
        (channel.pk, "audio"),
    ]


# -- removing ----------------------------------------------------------------------------------


def test_removing_a_videos_media_frees_the_file(alice, bob, stored, media_root):
    path = media_root / stored.key
    assert path.exists()
    url = reverse("imports:remove_video_media", args=[stored.video_id])

    assert client_for(bob).post(url).status_code == 404
    assert path.exists()
    response = client_for(alice).post(url, follow=True)

    assert "Removed 1 stored file." in response.content.decode()
    assert not MediaFile.objects.exists() and not path.exists()


def test_media_others_watch_is_removed_by_staff_only(alice, bob, staff, stored, media_root):
    """Stored media is shared: once bob sees the channel too, alice cannot delete it from
    under him; staff can, in the admin."""
    from imports.models import ImportJob

    ImportJob.objects.create(
        owner=bob, channel=stored.video.channel, channel_url="https://www.youtube.com/@x"
    )
    url = reverse("imports:remove_video_media", args=[stored.video_id])

    response = client_for(alice).post(url, follow=True)

    assert "so it stays: ask an administrator to remove it." in response.content.decode()
    assert MediaFile.objects.count() == 1 and (media_root / stored.key).exists()
    client_for(staff).post(
        reverse("admin:imports_video_changelist"),
        {"action": "remove_media", ACTION_CHECKBOX_NAME: [stored.video_id]},
    )
    assert not MediaFile.objects.exists() and not (media_root / stored.key).exists()


def test_removing_a_channels_media_frees_its_files_only(alice, make_channel, media_root):
    channel, other = make_channel(alice, videos=2), make_channel(alice, videos=1)
    files = [store(video) for video in channel.videos.all()]
    kept = store(other.videos.get())

    response = client_for(alice).post(
        reverse("imports:remove_channel_media", args=[channel.pk]), follow=True
    )

    assert "Removed 2 stored files." in response.content.decode()
    assert [path for path in (media_root / f.key for f in files) if path.exists()] == []
    assert list(MediaFile.objects.all()) == [kept] and (media_root / kept.key).exists()


def test_a_channels_media_others_watch_stays_and_an_empty_removal_says_so(
    alice, bob, make_channel, media_root
):
    channel = make_channel(alice, videos=2)
    stored_file = store(channel.videos.first())
    empty = make_channel(alice, videos=1)
    url = reverse("imports:remove_channel_media", args=[channel.pk])
    ImportJob.objects.create(owner=bob, channel=channel, channel_url="https://www.youtube.com/@x")

    response = client_for(alice).post(url, follow=True)

    assert response.redirect_chain[-1][0] == channel.get_absolute_url()
    assert "so it stays: ask an administrator to remove it." in response.content.decode()
    assert list(MediaFile.objects.all()) == [stored_file]
    assert (media_root / stored_file.key).exists()
    for url in (
        reverse("imports:remove_channel_media", args=[empty.pk]),
        reverse("imports:remove_video_media", args=[empty.videos.get().pk]),
    ):
        assert "Nothing was stored." in client_for(alice).post(url, follow=True).content.decode()


def test_the_admin_removes_media_of_videos_and_channels(staff, alice, make_channel, media_root):
    channel, other = make_channel(alice, videos=2), make_channel(alice, videos=1)
    first, second = (store(video) for video in channel.videos.order_by("pk"))
    elsewhere = store(other.videos.get())
    client = client_for(staff)

    client.post(
        reverse("admin:imports_video_changelist"),
        {"action": "remove_media", ACTION_CHECKBOX_NAME: [first.video_id]},
    )
    assert set(MediaFile.objects.all()) == {second, elsewhere}
    assert not (media_root / first.key).exists() and (media_root / second.key).exists()

    client.post(
        reverse("admin:imports_channel_changelist"),
        {"action": "remove_media", ACTION_CHECKBOX_NAME: [other.pk]},
    )
    assert list(MediaFile.objects.all()) == [second]
    assert not (media_root / elsewhere.key).exists()


# -- S3 ----------------------------------------------------------------------------------------


@pytest.fixture
def s3_storage(s3, settings):
    """Django's default storage is the loopback S3 (as CHIRP_S3_* would make it)."""
    url, client = s3
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "chirp.storages.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": url,
                "region_name": "us-east-1",
                "access_key": "test",
                "secret_key": "test",
                "addressing_style": "path",
            },
        },
    }
    return client, BUCKET


def test_from_s3_the_player_is_sent_to_a_short_lived_presigned_url(
    alice, bob, make_channel, s3_storage
):
    import urllib.request

    from imports.playback import PRESIGNED_SECONDS

    client, bucket = s3_storage
    channel = make_channel(alice, videos=1, title="S3 channel")
    stored = store(channel.videos.get())
    assert client.head_object(Bucket=bucket, Key=stored.key)["ContentLength"] == 1000

    response = client_for(alice).get(media_url(stored))
    assert response.status_code == 302
    location = response["Location"]
    query = parse_qs(urlsplit(location).query)
    assert query["Signature"] and query["AWSAccessKeyId"] == ["test"]
    # Signed to expire PRESIGNED_SECONDS from now (Expires: a Unix time, signature version 2).
    assert abs(int(query["Expires"][0]) - time.time() - PRESIGNED_SECONDS) < 60
    ranged = urllib.request.Request(location, headers={"Range": "bytes=100-199"})
    with urllib.request.urlopen(ranged) as answer:
        assert (answer.status, answer.read()) == (206, BYTES[100:200])
    saved = client_for(alice).get(media_url(stored, download=True))["Location"]
    with urllib.request.urlopen(saved) as answer:
        assert "attachment" in answer.headers["Content-Disposition"]
    assert client_for(bob).get(media_url(stored)).status_code == 404


def test_removing_from_s3_deletes_the_object(alice, make_channel, s3_storage):
    from botocore.exceptions import ClientError

    client, bucket = s3_storage
    channel = make_channel(alice, videos=1)
    stored = store(channel.videos.get())

    client_for(alice).post(reverse("imports:remove_video_media", args=[stored.video_id]))

    with pytest.raises(ClientError) as gone:
        client.head_object(Bucket=bucket, Key=stored.key)
    assert gone.value.response["Error"]["Code"] == "404"
    assert not MediaFile.objects.exists()
