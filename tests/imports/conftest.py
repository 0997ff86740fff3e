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
def fake_youtube(monkeypatch, settings) -> Iterator[FakeYouTube]:
    with FakeYouTube() as server:
        monkeypatch.setenv(ENV_VAR, server.url)
        monkeypatch.setenv("CHIRP_YOUTUBE_TRANSPORT", TRANSPORT)
        settings.CHIRP_YOUTUBE_TRANSPORT = TRANSPORT
        yield server


@pytest.fixture
def youtube(fake_youtube) -> Iterator[YouTube]:
    """A client on the fake: no sleeping between requests or retries, so tests stay fast."""
    with YouTube(sleep_requests=0, retry_backoff=0, timeout=5) as client:
        yield client
