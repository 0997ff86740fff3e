"""Media downloads (imports/media.py): an import "at 720p" stores each video's merged file.

The fake YouTube serves real clips (tests/imports/media_clips.py, made with ffmpeg once per
session); yt-dlp downloads them over loopback and ffmpeg (imageio-ffmpeg's) merges them; the
file goes to the storage the settings name. In-process runs of the engine here; the real worker
(and a kill -9 in the middle of a download), and S3, in test_media_worker.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from django.core.files.storage import FileSystemStorage, default_storage
from django.db import connections
from django.urls import reverse

from chirp import engine
from chirp.jobs import IllegalTransition
from imports.limiter import Limiter
from imports.media import DownloadInterrupted, enqueue_download, store_media
from imports.models import Channel, ImportJob, ImportJobItem, MediaFile, Video
from imports.youtube import parse_channel_input
from tests.imports.media_clips import probe
from tests.sse import stored_events

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def media(fake_youtube, media_clips, settings, tmp_path):
    """The fake serves real media; the media folder and the scratch folder are the test's."""
    fake_youtube.serve_media(media_clips)
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CHIRP_MEDIA_SCRATCH_DIR = tmp_path / "scratch"
    return fake_youtube


def run_import(owner, text: str, **options) -> ImportJob:
    job, created = ImportJob.start(owner, parse_channel_input(text), **options)
    assert created
    engine.run_lane("imports")
    job.refresh_from_db()
    return job


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stored_path(media_file: MediaFile) -> Path:
    return Path(default_storage.path(media_file.key))


def scratch_files(settings) -> list[Path]:
    root = settings.CHIRP_MEDIA_SCRATCH_DIR
    return [p for p in root.rglob("*") if p.is_file() and ".ffmpeg" not in p.parts]


def test_an_import_at_720p_stores_a_merged_mp4_of_each_video(alice, media, media_clips, settings):
    fake = media.add_channel("clips", videos=2)

    job = run_import(alice, "@clips", media_quality="720")

    assert (job.status, job.done, job.failed) == ("completed", 2, 0)
    assert job.as_json()["options"]["quality"] == "720"
    files = {m.video.youtube_id: m for m in MediaFile.objects.select_related("video__channel")}
    assert set(files) == set(fake.video_ids)
    for video_id, media_file in files.items():
        path = stored_path(media_file)
        streams = probe(path)
        assert streams.video == [("h264", 1280, 720)] and streams.audio == ["aac"]
        assert 3.5 < streams.duration < 4.5
        assert media_file.key.startswith(f"media/{fake.channel_id}/{video_id}/")
        assert media_file.key.endswith(".mp4") and len(Path(media_file.key).stem) == 32
        assert (media_file.kind, media_file.quality, media_file.height) == ("video", "720", 720)
        assert media_file.vcodec.startswith("avc1") and media_file.acodec.startswith("mp4a")
        assert media_file.container == "mp4" and media_file.size == path.stat().st_size
        assert media_file.sha256 == sha256(path)
    assert set(Video.objects.values_list("stage", flat=True)) == {"complete"}
    assert Video.objects.filter(transcript="").count() == 0  # metadata and transcript too
    assert scratch_files(settings) == []  # the scratch copies are gone
    # The 720p video stream and the audio stream of each video, each asked for once.
    served = sorted(r.query["itag"][0] for r in media.requests if r.kind == "media")
    assert served == ["136", "136", "140", "140"]


def test_lower_qualities_and_audio_only(alice, media, media_clips):
    media.add_channel("low", videos=1)
    run_import(alice, "@low", media_quality="360")
    media.add_channel("sound", videos=1)
    run_import(alice, "@sound", media_quality="audio")

    low = MediaFile.objects.get(video__channel__handle="@low")
    assert (low.height, low.container) == (360, "mp4")
    assert probe(stored_path(low)).video == [("h264", 640, 360)]
    sound = MediaFile.objects.get(video__channel__handle="@sound")
    assert (sound.kind, sound.height, sound.vcodec, sound.container) == ("audio", None, "", "m4a")
    streams = probe(stored_path(sound))
    assert streams.video == [] and streams.audio == ["aac"]
    assert sound.size == media_clips[140].size  # the audio stream as served, not re-encoded


def test_without_h264_and_aac_the_vp9_and_opus_streams_are_merged_into_webm(
    alice, media, media_clips
):
    # A video YouTube offers only in VP9 and Opus (each a WebM stream): still one playable file.
    media.serve_media({itag: media_clips[itag] for itag in (243, 251)})
    media.add_channel("webm", videos=1)

    job = run_import(alice, "@webm", media_quality="720")

    assert (job.status, job.done, job.failed) == ("completed", 1, 0)
    stored = MediaFile.objects.get()
    assert (stored.kind, stored.height, stored.container) == ("video", 360, "webm")
    assert stored.key.endswith(".webm")
    streams = probe(stored_path(stored))
    assert streams.video == [("vp9", 640, 360)] and streams.audio == ["opus"]


def test_a_configured_ffmpeg_is_the_one_that_merges(alice, media, settings, tmp_path):
    import imageio_ffmpeg

    # A system ffmpeg (CHIRP_FFMPEG): here a wrapper that notes each call, then runs the real one.
    calls = tmp_path / "ffmpeg-calls"
    wrapper = tmp_path / "bin" / "system-ffmpeg"
    wrapper.parent.mkdir()
    wrapper.write_text(
        f'#!/bin/sh\necho "$@" >> {calls}\nexec {imageio_ffmpeg.get_ffmpeg_exe()} "$@"\n'
    )
    wrapper.chmod(0o755)
    settings.CHIRP_FFMPEG = str(wrapper)
    media.add_channel("system", videos=1)

    job = run_import(alice, "@system", media_quality="720")

    assert (job.status, job.done) == ("completed", 1)
    assert probe(stored_path(MediaFile.objects.get())).video == [("h264", 1280, 720)]
    assert calls.exists() and "-c copy" in calls.read_text()  # it merged the two streams


def test_without_a_quality_no_media_is_downloaded(alice, media):
    media.add_channel("plain", videos=2)
    job = run_import(alice, "@plain")
    assert (job.status, job.done) == ("completed", 2)
    assert MediaFile.objects.count() == 0 and media.count("media") == 0


def test_two_users_asking_for_one_video_at_one_quality_store_one_file(alice, bob, media, settings):
    media.add_channel("shared", videos=1)
    run_import(alice, "@shared", media_quality="720")
    sent = media.media_bytes_sent

    job = run_import(bob, "@shared", media_quality="720")

    assert (job.status, job.skipped) == ("completed", 1)  # its media is there already
    assert MediaFile.objects.count() == 1
    assert len([p for p in Path(settings.MEDIA_ROOT, "media").rglob("*") if p.is_file()]) == 1
    assert media.media_bytes_sent == sent  # nothing downloaded again


def test_two_users_downloading_one_video_at_the_same_time_keep_one_file(
    alice, bob, media, settings
):
    """Both imports reach the download at once (neither finds a stored file): they take turns
    (the scratch files are the same), and the second finds the first one's file."""
    settings.CHIRP_LANE_CONCURRENCY = {**settings.CHIRP_LANE_CONCURRENCY, "imports": 2}
    media.media_bandwidth = 3_000_000  # long enough for the two to overlap
    media.add_channel("together", videos=1)
    jobs = [
        ImportJob.start(user, parse_channel_input("@together"), media_quality="720")[0]
        for user in (alice, bob)
    ]

    def run() -> None:
        try:
            engine.run_lane("imports")
        finally:
            connections.close_all()

    runners = [threading.Thread(target=run) for _ in jobs]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join(60)

    for job in jobs:
        job.refresh_from_db()
        assert (job.status, job.failed) == ("completed", 0)
    # Downloaded once.
    assert sorted(r.query["itag"][0] for r in media.requests if r.kind == "media") == [
        "136", "140"
    ]  # fmt: skip
    assert MediaFile.objects.count() == 1
    stored = [p for p in Path(settings.MEDIA_ROOT, "media").rglob("*") if p.is_file()]
    assert [str(p.relative_to(settings.MEDIA_ROOT)) for p in stored] == [
        MediaFile.objects.get().key
    ]
    assert scratch_files(settings) == []  # no download left behind, no lock either


def test_a_reimport_at_a_quality_downloads_what_was_imported_without_media(alice, media):
    media.add_channel("later", videos=2)
    run_import(alice, "@later")
    metadata_requests = media.count("next")

    job = run_import(alice, "@later", media_quality="480")

    assert (job.status, job.total, job.done) == ("completed", 2, 2)
    assert MediaFile.objects.filter(quality="480", height=360).count() == 2  # none taller
    assert media.count("next") == metadata_requests  # the metadata was not fetched again


def test_one_video_downloaded_on_request(alice, bob, media):
    fake = media.add_channel("ondemand", videos=3)
    run_import(alice, "@ondemand")
    wanted = Video.objects.get(youtube_id=fake.videos[1].id)

    with pytest.raises(IllegalTransition):  # bob does not see the channel
        enqueue_download(bob, [wanted], "360")
    job, created = enqueue_download(alice, [wanted], "360")
    assert created and job.total == 1
    engine.run_lane("imports")
    job.refresh_from_db()

    assert (job.status, job.done, job.total) == ("completed", 1, 1)
    assert [m.video for m in MediaFile.objects.all()] == [wanted]
    assert {r.video_id for r in media.requests if r.kind == "media"} == {wanted.youtube_id}


def test_media_requests_wait_for_their_turn_at_the_shared_limiter(alice, media, settings):
    settings.CHIRP_YOUTUBE_SPACING = 0.4
    media.add_channel("spaced", videos=1)

    run_import(alice, "@spaced", media_quality="720")

    assert MediaFile.objects.count() == 1
    times = sorted(r.at for r in media.requests)
    kinds = [r.kind for r in sorted(media.requests, key=lambda r: r.at)]
    assert kinds.count("media") == 2
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert min(gaps) >= 0.35  # every request, the media's included, spaced by the limiter


def test_progress_is_shown_live_on_the_video_card(alice, media, settings):
    media.add_channel("progress", videos=1)
    media.media_bandwidth = 4_000_000  # about a second and a half for the 720p file
    run_import(alice, "@progress", media_quality="720")

    video = Video.objects.get()
    cards = [html for _, html in stored_events(alice, video.dom_id)]
    stages = [html.split('data-stage="')[1].split('"')[0] for html in cards]
    assert stages[:3] == ["metadata", "captions", "chapters"] and stages[-1] == "complete"
    downloading = [html for html in cards if 'data-stage="download"' in html]
    texts = [" ".join(html.split()) for html in downloading]
    assert any("Downloading " in t and " MB of 4.4 MB" in t and " MB/s" in t for t in texts)
    assert any(" s left" in t for t in texts)
    assert len(downloading) <= 12  # throttled: about two a second


def test_progress_is_shown_live_for_a_single_file_fetched_by_chirp(
    alice, media, media_clips, tmp_path
):
    audio = padded(media_clips[140].path, tmp_path / "140.m4a", 3 * 1024 * 1024)
    clip = dataclasses.replace(media_clips[140], path=audio)
    media.serve_media({140: clip}, bandwidth=2_000_000)  # about a second and a half
    media.add_channel("audioprogress", videos=1)
    run_import(alice, "@audioprogress", media_quality="audio")

    video = Video.objects.get()
    downloading = [
        " ".join(html.split())
        for _, html in stored_events(alice, video.dom_id)
        if 'data-stage="download"' in html
    ]
    assert any("Downloading " in t and " MB of 3.1 MB" in t and " MB/s" in t for t in downloading)
    assert any(" s left" in t for t in downloading)
    assert len(downloading) <= 12  # throttled: about two a second
    assert MediaFile.objects.get().sha256 == sha256(audio)


def media_badges(user, video: Video) -> list[str]:
    """The stored-media badge of each card of `video` sent live to `user` ("" for none)."""
    return [
        html.split('class="media-badge"')[1].split(">")[1].split("<")[0]
        if 'class="media-badge"' in html
        else ""
        for _, html in stored_events(user, video.dom_id)
    ]


def test_the_cards_sent_live_show_the_stored_media_and_the_new_file_at_the_end(alice, media):
    """A card sent at any stage shows what is stored of the video (the runner reads it with
    its batch of items, not at every stage), and the one sent once the download is stored
    shows the new file."""
    media.add_channel("badges", videos=1)
    run_import(alice, "@badges", media_quality="audio")
    video = Video.objects.get()
    badges = media_badges(alice, video)
    assert badges[-1] == "Audio" and set(badges[:-1]) == {""}

    sent = len(badges)
    assert enqueue_download(alice, [video], "360")[1]
    engine.run_lane("imports")

    height = MediaFile.objects.get(video=video, quality="360").height
    badges = media_badges(alice, video)[sent:]
    assert len(badges) >= 2  # the download's stages
    assert set(badges[:-1]) == {"Audio"} and badges[-1] == f"{height}p"  # a video before audio


def test_the_import_form_and_api_validate_the_quality(alice, client):
    client.force_login(alice)
    response = client.post(
        "/api/channels/import", {"channelUrl": "@quality", "quality": "4k"}, "application/json"
    )
    assert response.status_code == 400
    assert "Choose the media to download" in response.json()["error"]
    response = client.post(
        "/api/channels/import", {"channelUrl": "@quality", "quality": 720}, "application/json"
    )
    assert response.status_code == 201
    assert response.json()["job"]["options"]["quality"] == "720"
    assert ImportJob.objects.get().media_quality == "720"
    page = client.get(reverse("imports:start_import")).content.decode()
    assert 'name="quality"' in page and '<option value="720">720p</option>' in page
    # The Add channel form: the job remembers the quality chosen.
    response = client.post(
        reverse("imports:start_import"), {"channel": "@formquality", "quality": "audio"}
    )
    assert response.status_code == 302
    job = ImportJob.objects.get(channel_url__endswith="@formquality")
    assert job.media_quality == "audio"
    assert "media at Audio only" in client.get(job.get_absolute_url()).content.decode()
    response = client.post(
        reverse("imports:start_import"), {"channel": "@formquality2", "quality": "8k"}
    )
    assert "Choose the media to download" in response.content.decode()


# -- the failure table -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("playability", "reason", "words"),
    [
        ("private", "private", "private"),
        ("members_only", "members_only", "members"),
        ("removed", "removed", "removed"),
        ("age_restricted", "age_restricted", "age-restricted"),
        ("geo_blocked", "geo_blocked", "country"),
        ("live_upcoming", "live_not_ended", "has not ended"),
    ],
)
def test_a_video_youtube_refuses_fails_its_download_and_keeps_its_metadata(
    alice, media, settings, playability, reason, words
):
    fake = media.add_channel("refused", videos=1)
    run_import(alice, "@refused")  # metadata and transcript stored
    media.videos[fake.videos[0].id].playability = playability

    job = run_import(alice, "@refused", media_quality="720")

    assert (job.done, job.failed) == (0, 1)
    video = Video.objects.get()
    assert (video.stage, video.error_reason) == ("error", reason)
    assert words in video.error.lower()
    assert video.title and video.transcript  # not undone
    assert MediaFile.objects.count() == 0 and media.count("media") == 0
    assert scratch_files(settings) == []
    item = ImportJobItem.objects.get(job=job)
    assert (item.status, item.attempts) == ("failed", 1)  # not retried by itself


# "720": two streams, downloaded by yt-dlp and merged; "audio": one file, fetched by Chirp.
BOTH_DOWNLOADERS = pytest.mark.parametrize("quality", ["720", "audio"])


@BOTH_DOWNLOADERS
def test_an_expired_media_url_is_fetched_fresh_and_the_download_goes_on(alice, media, quality):
    media.add_channel("expired", videos=1)
    media.add_fault(kinds={"media"}, status=403, times=1)

    job = run_import(alice, "@expired", media_quality=quality)

    assert (job.status, job.done, job.failed) == ("completed", 1, 0)
    assert MediaFile.objects.count() == 1
    assert next(r.status for r in media.requests if r.kind == "media") == 403
    # Metadata once, then the download's extraction, then again for fresh URLs.
    assert media.count("player") >= 3
    # An expired URL is not YouTube blocking Chirp: nothing paused, nothing slowed down.
    assert Limiter().state().reason != "ip_blocked" and Limiter().current_pause() is None
    steps = [html for _, html in stored_events(alice, job.dom_id)]
    assert not any("Paused" in html for html in steps)


@BOTH_DOWNLOADERS
def test_a_429_on_the_media_pauses_the_lane_and_the_download_resumes(
    alice, media, settings, quality
):
    settings.CHIRP_YOUTUBE_PAUSE_SECONDS = 1.0
    media.add_channel("busy", videos=1)
    media.add_fault(kinds={"media"}, status=429, times=1)

    started = time.monotonic()
    job = run_import(alice, "@busy", media_quality=quality)

    assert (job.status, job.done, job.failed) == ("completed", 1, 0)
    assert time.monotonic() - started >= 1.0  # it waited for the pause
    assert Limiter().state().reason == "rate_limited"
    assert MediaFile.objects.count() == 1
    steps = [html for _, html in stored_events(alice, job.dom_id)]
    assert any("Paused: YouTube is rate-limiting" in html for html in steps)


def test_a_file_over_the_size_limit_is_refused_before_it_is_downloaded(alice, media, settings):
    settings.CHIRP_MEDIA_MAX_BYTES = 1_000_000
    media.add_channel("big", videos=1)

    job = run_import(alice, "@big", media_quality="720")

    assert (job.done, job.failed) == (0, 1)
    video = Video.objects.get()
    assert video.stage == "error" and "larger than the 1.0 MB allowed" in video.error
    assert media.count("media") == 0 and MediaFile.objects.count() == 0


def test_a_file_that_cannot_fit_in_the_free_scratch_space_is_refused(
    alice, media, monkeypatch, settings
):
    import shutil

    real = shutil.disk_usage

    def nearly_full(path):  # the disk (the edge): 100 kB free where the scratch folder is
        usage = real(path)
        return usage._replace(free=100_000)

    monkeypatch.setattr("imports.media.shutil.disk_usage", nearly_full)
    media.add_channel("full", videos=1)

    job = run_import(alice, "@full", media_quality="720")

    assert (job.done, job.failed) == (0, 1)
    video = Video.objects.get()
    assert "Not enough free space in the scratch folder" in video.error
    assert "4.4 MB needed, 0.1 MB free" in video.error
    assert media.count("media") == 0


def test_a_file_of_unannounced_size_is_stopped_when_it_passes_the_limit(
    alice, media, media_clips, settings
):
    settings.CHIRP_MEDIA_MAX_BYTES = 1_000_000
    media.serve_media(media_clips, bandwidth=2_000_000, announced=False)
    media.add_channel("unsized", videos=1)

    job = run_import(alice, "@unsized", media_quality="720")

    assert (job.done, job.failed) == (0, 1)
    video = Video.objects.get()
    assert video.stage == "error" and "its download was stopped" in video.error
    assert 1_000_000 < media.media_bytes_sent < media_clips[136].size  # cut short
    assert MediaFile.objects.count() == 0 and scratch_files(settings) == []


def test_the_bandwidth_limit_slows_each_download(alice, media, media_clips, settings):
    settings.CHIRP_MEDIA_RATE_LIMIT = 2_000_000
    media.add_channel("slow", videos=1)

    started = time.monotonic()
    job = run_import(alice, "@slow", media_quality="720")

    assert job.done == 1
    size = media_clips[136].size + media_clips[140].size
    assert time.monotonic() - started > 0.8 * size / 2_000_000


def test_a_single_file_of_unannounced_size_is_stopped_when_it_passes_the_limit(
    alice, media, media_clips, settings, tmp_path
):
    """The same for one file fetched by Chirp itself (the audio alone)."""
    settings.CHIRP_MEDIA_MAX_BYTES = 1_000_000
    audio = padded(media_clips[140].path, tmp_path / "140.m4a", 3 * 1024 * 1024)
    clip = dataclasses.replace(media_clips[140], path=audio)
    media.serve_media({140: clip}, bandwidth=2_000_000, announced=False)
    media.add_channel("unsized", videos=1)

    job = run_import(alice, "@unsized", media_quality="audio")

    assert (job.done, job.failed) == (0, 1)
    video = Video.objects.get()
    assert video.stage == "error" and "its download was stopped" in video.error
    assert 1_000_000 < media.media_bytes_sent < audio.stat().st_size  # cut short
    assert MediaFile.objects.count() == 0 and scratch_files(settings) == []


def test_a_connection_lost_midway_is_continued_where_it_stopped(
    alice, media, media_clips, settings, tmp_path, youtube
):
    audio = padded(media_clips[140].path, tmp_path / "140.m4a", 3 * 1024 * 1024)
    media.serve_media({140: dataclasses.replace(media_clips[140], path=audio)})
    media.add_channel("lost", videos=1)
    run_import(alice, "@lost")  # the metadata
    media.cut_media(after=1_000_000)

    media_file = store_media(Video.objects.get(), "audio", youtube)

    assert (media_file.size, media_file.sha256) == (audio.stat().st_size, sha256(audio))
    ranges = [r.headers.get("Range", "") for r in media.requests if r.kind == "media"]
    assert len(ranges) == 2 and ranges[1].startswith("bytes=1000000-")
    assert media.media_bytes_sent == audio.stat().st_size  # nothing fetched twice
    assert scratch_files(settings) == []


RANGE = 10 * 1024 * 1024  # yt-dlp's chunk size for YouTube's formats


def test_each_range_is_asked_for_while_the_one_before_is_read(
    alice, media, media_clips, settings, tmp_path, youtube
):
    audio = padded(media_clips[140].path, tmp_path / "140.m4a", 2 * RANGE + 1_000_000)
    media.serve_media({140: dataclasses.replace(media_clips[140], path=audio)})
    media.media_bandwidth = 40_000_000  # a quarter of a second a range
    media.add_channel("ranges", videos=1)
    run_import(alice, "@ranges")  # the metadata

    media_file = store_media(Video.objects.get(), "audio", youtube)

    size = audio.stat().st_size
    assert (media_file.size, media_file.sha256) == (size, sha256(audio))
    ranges = [r.headers.get("Range") for r in media.requests if r.kind == "media"]
    assert ranges == [
        f"bytes=0-{RANGE - 1}",
        f"bytes={RANGE}-{2 * RANGE - 1}",
        f"bytes={2 * RANGE}-{size - 1}",
    ]
    assert media.media_most_in_flight == 2  # the next one on its way while one was sent
    assert media.media_bytes_sent == size  # nothing fetched twice
    assert scratch_files(settings) == []


def test_a_range_cut_short_is_continued_and_the_next_one_asked_for_already_is_read_after_it(
    alice, media, media_clips, settings, tmp_path, youtube
):
    audio = padded(media_clips[140].path, tmp_path / "140.m4a", RANGE + 1_000_000)
    media.serve_media({140: dataclasses.replace(media_clips[140], path=audio)})
    media.add_channel("cutrange", videos=1)
    run_import(alice, "@cutrange")  # the metadata
    media.cut_media(after=1_000_000)

    media_file = store_media(Video.objects.get(), "audio", youtube)

    size = audio.stat().st_size
    assert (media_file.size, media_file.sha256) == (size, sha256(audio))
    ranges = [r.headers.get("Range") for r in media.requests if r.kind == "media"]
    assert sorted(ranges) == sorted(
        [f"bytes=0-{RANGE - 1}", f"bytes=1000000-{RANGE - 1}", f"bytes={RANGE}-{size - 1}"]
    )
    assert media.media_bytes_sent == size  # nothing fetched twice
    assert scratch_files(settings) == []


def test_the_bandwidth_limit_slows_a_single_file_fetched_by_chirp(
    alice, media, media_clips, settings, tmp_path, youtube
):
    settings.CHIRP_MEDIA_RATE_LIMIT = 2_000_000
    audio = padded(media_clips[140].path, tmp_path / "140.m4a", 3 * 1024 * 1024)
    media.serve_media({140: dataclasses.replace(media_clips[140], path=audio)})
    media.add_channel("slowaudio", videos=1)
    run_import(alice, "@slowaudio")  # the metadata

    started = time.monotonic()
    media_file = store_media(Video.objects.get(), "audio", youtube)

    assert time.monotonic() - started > 0.8 * audio.stat().st_size / 2_000_000
    assert media_file.sha256 == sha256(audio)


@pytest.mark.parametrize(
    ("quality", "suffix"),
    [("720", ".mp4"), ("audio", ".m4a")],  # merged, then hashed; hashed as it downloaded
)
def test_a_storage_that_refuses_the_file_fails_the_download_and_keeps_it(
    alice, media, settings, tmp_path, quality, suffix
):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the media folder should be")
    settings.MEDIA_ROOT = blocked
    media.add_channel("nowhere", videos=1)

    job = run_import(alice, "@nowhere", media_quality=quality)

    assert (job.done, job.failed) == (0, 1)
    video = Video.objects.get()
    assert (video.stage, video.error_reason) == ("error", "storage")
    assert video.error.startswith("Could not store the file in the media folder:")
    assert video.transcript  # the metadata stays
    kept = scratch_files(settings)
    assert [p.suffix for p in kept] == [suffix]  # the download, kept for a retry
    sent = media.media_bytes_sent

    # The storage is back: a retry stores the kept file without downloading it again.
    settings.MEDIA_ROOT = tmp_path / "media"
    video.retry_for(alice)
    engine.run_lane("imports")
    job.refresh_from_db()

    assert (job.done, job.failed) == (1, 0)
    media_file = MediaFile.objects.get()
    assert media_file.sha256 == sha256(stored_path(media_file))
    assert media.media_bytes_sent == sent and scratch_files(settings) == []


def padded(clip: Path, dest: Path, size: int) -> Path:
    """`clip` followed by a top-level MP4 `free` box of random bytes bringing it to `size`."""
    shutil.copyfile(clip, dest)
    filler = size - clip.stat().st_size
    with dest.open("ab") as out:
        out.write(filler.to_bytes(4, "big") + b"free" + os.urandom(filler - 8))
    return dest


def test_an_interrupted_download_resumed_is_moved_into_the_media_folder_whole(
    alice, media, media_clips, settings, tmp_path, youtube
):
    """One file fetched in order (the audio) is hashed as it downloads, a resumed one from its
    start; the media folder then takes the downloaded file itself (a rename, not a copy)."""
    audio = padded(media_clips[140].path, tmp_path / "140.m4a", 3 * 1024 * 1024 + 12_345)
    media.serve_media({140: dataclasses.replace(media_clips[140], path=audio)})
    media.add_channel("resumed", videos=1)
    run_import(alice, "@resumed")  # the metadata
    video = Video.objects.get()
    reports: list[int] = []

    def stop_at_the_second_report() -> bool:  # a shutdown, a few reads in
        reports.append(1)
        return len(reports) >= 2

    with pytest.raises(DownloadInterrupted):
        store_media(video, "audio", youtube, interrupted=stop_at_the_second_report)
    (part,) = settings.CHIRP_MEDIA_SCRATCH_DIR.rglob("*.part")
    partial, inode = part.stat().st_size, part.stat().st_ino
    assert 0 < partial < audio.stat().st_size

    media_file = store_media(video, "audio", youtube)

    path = stored_path(media_file)
    assert path.read_bytes() == audio.read_bytes()
    assert (media_file.size, media_file.sha256) == (audio.stat().st_size, sha256(audio))
    assert path.stat().st_ino == inode  # the very file yt-dlp wrote, moved into place
    ranges = [r.headers.get("Range", "") for r in media.requests if r.kind == "media"]
    assert ranges[0].startswith("bytes=0-") and ranges[-1].startswith(f"bytes={partial}-")
    assert scratch_files(settings) == []


def test_a_download_that_starts_over_is_not_taken_for_what_was_hashed_before(tmp_path):
    """yt-dlp truncates its .part file and writes it again from zero when a server ignores the
    range of a resumed chunk (`open_mode = "wb"`): the SHA-256 computed beside the download is
    then dropped (the file is hashed once finished), never that of the bytes overwritten. Its
    reports, driven here as yt-dlp sends them, with a first and a second content."""
    from imports.media import YTDLP_FIRST_READ, _FollowingHash

    READ = YTDLP_FIRST_READ  # yt-dlp's first read on a connection

    part, final = tmp_path / "clip.m4a.part", tmp_path / "clip.m4a"
    hasher = _FollowingHash()

    def write(content: bytes, blocks: int) -> None:
        with part.open("wb") as out:
            for written in range(1, blocks + 1):
                out.write(content * READ)
                out.flush()
                hasher.report(
                    {
                        "status": "downloading",
                        "tmpfilename": str(part),
                        "filename": str(final),
                        "downloaded_bytes": written * READ,
                        "info_dict": {"protocol": "https"},
                    }
                )

    try:
        write(b"a", 3)
        deadline = time.monotonic() + 10
        while hasher._hashed < 3 * READ and time.monotonic() < deadline:
            time.sleep(0.01)  # the hasher has read the first content
        write(b"b", 4)  # started over, with another content, and further
        part.rename(final)
        hasher.report(
            {"status": "finished", "filename": str(final), "info_dict": {"protocol": "https"}}
        )
        digest = hasher.digest_of(final)
    finally:
        hasher.close()

    assert final.read_bytes() == b"b" * 4 * READ
    assert digest in (None, (sha256(final), 4 * READ))


def test_a_stored_file_whose_checksum_differs_is_deleted_and_the_video_failed(
    alice, media, settings, tmp_path
):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "tests.imports.test_media.FlippingStorage"},
    }
    media.add_channel("flipped", videos=1)

    job = run_import(alice, "@flipped", media_quality="720")

    assert (job.done, job.failed) == (0, 1)
    video = Video.objects.get()
    assert (video.stage, video.error_reason) == ("error", "storage")
    assert "did not match the download (SHA-256" in video.error
    assert MediaFile.objects.count() == 0
    stored = [p for p in Path(settings.MEDIA_ROOT, "media").rglob("*") if p.is_file()]
    assert stored == []  # the bad copy was deleted


class FlippingStorage(FileSystemStorage):
    """A disk that flips a byte of what it is given (the edge: storage hardware)."""

    def _save(self, name, content):  # type: ignore[no-untyped-def]
        name = super()._save(name, content)
        with open(self.path(name), "r+b") as file:
            file.seek(1000)
            byte = file.read(1)
            file.seek(1000)
            file.write(bytes([byte[0] ^ 0xFF]))
        return name


def test_threads_starting_their_first_downloads_at_once_all_find_ffmpeg(tmp_path):
    """A worker's threads set up the ffmpeg folder together on their first downloads (this
    failed one of two videos of a fresh worker, now and then)."""
    from imports.media import ffmpeg_location

    errors: list[BaseException] = []

    def set_up(folder: Path) -> None:
        try:
            assert Path(ffmpeg_location(folder), "ffmpeg").exists()
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    for round_ in range(20):
        threads = [
            threading.Thread(target=set_up, args=(tmp_path / str(round_),)) for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []


def test_a_followed_channels_new_videos_are_stored_at_the_highest_quality_asked(
    alice, bob, media, media_clips
):
    """One file serves every follower (the catalogue is shared): new videos are downloaded at
    the most any follower asked for; following without media stores nothing."""
    from imports import following
    from imports.models import Follow

    fake = media.add_channel("followed", videos=2)
    for user in (alice, bob):
        run_import(user, "@followed")
    channel = Channel.objects.get()
    Follow.start(alice, channel, quality="360")
    Follow.start(bob, channel, quality="720")
    new = media.upload(fake, 1)

    following.poll_channel(channel)
    engine.run_lane("imports")

    stored = MediaFile.objects.get()
    assert stored.video.youtube_id == new[0].id and stored.quality == "720"
    assert probe(stored_path(stored)).video == [("h264", 1280, 720)]
    assert stored.video.stage == "complete"
