"""The fake YouTube for these tests, wired in through the real CHIRP_YOUTUBE_TRANSPORT seam.

`fake_youtube` is a loopback server; its address is exported as $FAKE_YOUTUBE_URL, so a worker
process started during the test (with CHIRP_YOUTUBE_TRANSPORT set in its environment) reaches
the same fake and the same request log.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from imports.youtube import YouTube
from tests.imports.fake_youtube import ENV_VAR, FakeYouTube

TRANSPORT = "tests.imports.fake_youtube.transport"


@pytest.fixture
def fake_youtube_shape() -> str:
    """The shape of the fake's answers (fake_youtube.SHAPES). A module that overrides this
    fixture with `params=SHAPES` runs each of its tests on both."""
    return "recorded"


@pytest.fixture
def fake_youtube(monkeypatch, settings, fake_youtube_shape) -> Iterator[FakeYouTube]:
    with FakeYouTube(shape=fake_youtube_shape) as server:
        monkeypatch.setenv(ENV_VAR, server.url)
        monkeypatch.setenv("CHIRP_YOUTUBE_TRANSPORT", TRANSPORT)
        settings.CHIRP_YOUTUBE_TRANSPORT = TRANSPORT
        yield server


@pytest.fixture
def youtube(fake_youtube) -> Iterator[YouTube]:
    """A client on the fake: no sleeping between requests or retries, so tests stay fast."""
    with YouTube(sleep_requests=0, retry_backoff=0, timeout=5) as client:
        yield client


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path, monkeypatch):
    """Artwork an import stores goes to a folder of the test's own (workers see it too)."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    monkeypatch.setenv("CHIRP_MEDIA_ROOT", settings.MEDIA_ROOT)
    return tmp_path / "media"


@pytest.fixture(autouse=True)
def fresh_limiter(settings):
    """The limiter's state and the download slots outlive a test in Redis (the database is
    flushed anyway): a worker killed by a test holds its slot until its lease ends."""
    from imports.limiter import DOWNLOADS_KEY, KEY, default_store

    if settings.REDIS_URL:
        for key in (KEY, DOWNLOADS_KEY):
            default_store(key).reset()
    yield
    if settings.REDIS_URL:
        for key in (KEY, DOWNLOADS_KEY):
            default_store(key).reset()


@pytest.fixture
def make_channel():
    """make_channel(owner, videos=3, **fields) -> a channel `owner` imported (no YouTube)."""
    from django.utils import timezone

    from imports.models import Channel, ImportJob, Video

    counter = iter(range(1, 10_000))

    def make(owner, videos: int = 3, stage: str = "complete", **fields):
        n = next(counter)
        channel = Channel.objects.create(
            youtube_id=fields.pop("youtube_id", f"UC{n:022d}"),
            handle=fields.pop("handle", f"@made{n}"),
            title=fields.pop("title", f"Made channel {n}"),
            **fields,
        )
        ImportJob.objects.create(
            owner=owner,
            channel=channel,
            channel_url=channel.youtube_url,
            status="completed",
            total=videos,
            done=videos,
            prepared=True,
            finished=timezone.now(),
        )
        Video.objects.bulk_create(
            Video(
                youtube_id=f"v{n:04d}{i:06d}",
                channel=channel,
                title=f"Video {i} of channel {n}",
                stage=stage,
                progress=Video.PROGRESS.get(stage, 0),
            )
            for i in range(videos)
        )
        return channel

    return make


@pytest.fixture(scope="session")
def media_clips(tmp_path_factory):
    """Real media for the fake YouTube (media_clips.py), made once per test session."""
    from tests.imports.media_clips import make_clips

    return make_clips(tmp_path_factory.mktemp("clips"))
