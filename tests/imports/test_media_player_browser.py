"""A stored video played in a real browser (Debian's chromium) on its page, from uvicorn: it
seeks (Range requests), and a transcript timestamp seeks the player instead of leaving for
YouTube. The clip is downloaded through the fake YouTube first, as a user's download would be."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from chirp import engine
from imports.media import enqueue_download
from imports.models import ImportJob, MediaFile, Video
from imports.youtube import parse_channel_input
from tests.conftest import start_web_server, wait_for
from tests.imports import test_media
from tests.imports.test_browser import offline

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

media = test_media.media  # the fake YouTube serving real clips (4 s long)


def wait_until(page, expression: str) -> None:
    """Polls `expression` in the page (wait_for_function's polling would need 'unsafe-eval',
    which the Content-Security-Policy rightly refuses)."""
    wait_for(lambda: page.evaluate(expression), timeout=15)


@pytest.fixture
def web_server(transactional_db, tmp_path, media):
    """The web server reads the test's media folder (where `media` stores)."""
    server = start_web_server(tmp_path, CHIRP_MEDIA_ROOT=str(tmp_path / "media"))
    yield server
    server.process.terminate(10)


def test_a_stored_video_plays_and_its_transcript_seeks_it(alice, media, browser_for, screenshot):
    fake = media.add_channel("player", videos=1)
    ImportJob.start(alice, parse_channel_input("@player"))
    engine.run_lane("imports")
    video = Video.objects.get(youtube_id=fake.videos[0].id)
    enqueue_download(alice, [video], "360")
    engine.run_lane("imports")
    assert MediaFile.objects.filter(video=video).exists()
    Video.objects.filter(pk=video.pk).update(
        transcript_segments=[[0.0, 2.0, "At the start"], [2.0, 1.5, "In the middle"]],
        transcript_source="captions",
    )

    page = browser_for(alice)
    offline(page)
    page.goto(video.get_absolute_url())
    player = page.locator("video[data-player]")
    expect(player).to_be_visible()
    wait_until(page, "document.querySelector('video').readyState >= 1")
    duration = page.evaluate("document.querySelector('video').duration")
    assert 3 < duration < 5

    page.evaluate(f"document.querySelector('video').currentTime = {duration / 2}")
    wait_until(
        page,
        "(() => { const v = document.querySelector('video');"
        " return !v.seeking && v.readyState >= 2; })()",
    )
    assert abs(page.evaluate("document.querySelector('video').currentTime") - duration / 2) < 0.5

    page.evaluate("document.querySelector('video').currentTime = 0")
    page.get_by_role("link", name="0:02").click()
    wait_until(page, "Math.abs(document.querySelector('video').currentTime - 2) < 0.6")
    assert page.url.endswith(video.get_absolute_url())  # stayed in Chirp, not YouTube
    screenshot(page, "media-player-seeked")
