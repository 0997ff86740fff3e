"""A video card's "Download" menu (the channel page, the Following page, the dashboard): the same
choices as the video page's button, posted by htmx with its CSRF header; the answer is the card,
and the download's stages then reach the card live. Strangers get a 404."""

from __future__ import annotations

import re
import threading

import pytest
from django.db import connections
from django.test import Client
from django.urls import reverse
from playwright.sync_api import expect

from chirp import engine
from imports.models import Channel, ImportJob, MediaFile, Video
from imports.youtube import parse_channel_input
from tests.conftest import start_web_server, wait_for
from tests.imports import test_media
from tests.imports.test_browser import offline
from tests.sse import stored_events

pytestmark = pytest.mark.django_db(transaction=True)

media = test_media.media  # the fake YouTube serving real clips; the test's own folders

QUALITIES = ["audio", "360", "480", "720", "1080", "best"]


def imported(owner, handle: str) -> Channel:
    ImportJob.start(owner, parse_channel_input(f"@{handle}"))
    engine.run_lane("imports")
    return Channel.objects.get(handle=f"@{handle}")


def card_in(html: str, video: Video) -> str:
    return re.search(rf'<article id="{video.dom_id}".*?</article>', html, re.S)[0]


def htmx_client(user) -> tuple[Client, dict[str, str]]:
    """A client that checks CSRF as the server does for a browser, and the headers htmx sends
    from a card's form (the token from base.html's hx-headers)."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    page = client.get(reverse("imports:channel_list")).content.decode()
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page)[1]
    return client, {"HTTP_HX_REQUEST": "true", "HTTP_X_CSRFTOKEN": token}


def test_the_cards_menu_offers_the_video_pages_choices(alice, alice_client, media):
    media.add_channel("menu", videos=2)
    channel = imported(alice, "menu")
    video = channel.videos.first()

    card = card_in(alice_client.get(channel.get_absolute_url()).content.decode(), video)
    page = alice_client.get(video.get_absolute_url()).content.decode()

    url = reverse("imports:download_video", args=[video.pk])
    form = re.search(r'<form [^>]*class="card-download"[^>]*>', card)[0]
    assert f'hx-post="{url}"' in form and f'action="{url}"' in form  # works without htmx too
    assert f'hx-target="#{video.dom_id}"' in form and 'hx-swap="outerHTML"' in form
    assert re.findall(r'<option value="([^"]*)"', card) == QUALITIES
    media_panel = page.split('id="media"', 1)[1]
    assert re.findall(r'<option value="([^"]*)"', media_panel) == QUALITIES
    assert "<summary>Download</summary>" in card
    assert 'name="csrfmiddlewaretoken"' in card  # for the plain form
    assert "<script" not in card and "style=" not in card


def test_the_cards_menu_queues_that_video_only_and_the_card_follows_it(alice, bob, media):
    fake = media.add_channel("pick", videos=3)
    channel = imported(alice, "pick")
    wanted = Video.objects.get(youtube_id=fake.videos[1].id)
    client, headers = htmx_client(alice)
    url = reverse("imports:download_video", args=[wanted.pk])
    bobs, bobs_headers = htmx_client(bob)  # bob does not see the channel
    refused = bobs.post(url, {"quality": "480"}, HTTP_HX_TARGET=wanted.dom_id, **bobs_headers)
    forged = client.post(url, {"quality": "480"}, HTTP_HX_TARGET=wanted.dom_id, HTTP_HX_REQUEST="1")
    assert (refused.status_code, forged.status_code) == (404, 403)  # forged: no CSRF token
    assert not ImportJob.objects.filter(media_quality="480").exists()

    response = client.post(url, {"quality": "480"}, HTTP_HX_TARGET=wanted.dom_id, **headers)

    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith(f'<article id="{wanted.dom_id}"')  # the card, for htmx
    job = ImportJob.objects.get(media_quality="480")
    assert "Downloading this video at 480p." in html
    assert f'href="{job.get_absolute_url()}">Follow the download' in html
    assert [item.video for item in job.items.all()] == [wanted]
    assert job.channel == channel

    engine.run_lane("imports")

    stored = MediaFile.objects.get()
    assert (stored.video, stored.quality, stored.height) == (wanted, "480", 360)
    assert {r.video_id for r in media.requests if r.kind == "media"} == {wanted.youtube_id}
    cards = [html for _, html in stored_events(alice, wanted.dom_id)]
    stages = [re.search(r'data-stage="([a-z]+)"', card)[1] for card in cards]
    assert "download" in stages and stages[-1] == "complete"
    assert '<span class="media-badge"' in cards[-1] and ">360p</span>" in cards[-1]


def test_a_bad_quality_is_said_on_the_card(alice, media):
    media.add_channel("badq", videos=1)
    video = imported(alice, "badq").videos.get()
    client, headers = htmx_client(alice)

    response = client.post(
        reverse("imports:download_video", args=[video.pk]),
        {"quality": "4k"},
        HTTP_HX_TARGET=video.dom_id,
        **headers,
    )

    assert response.status_code == 200
    card = response.content.decode()
    assert card.lstrip().startswith(f'<article id="{video.dom_id}"')
    choices = "Audio only, 360p, 480p, 720p, 1080p, Best"
    assert f"Choose a quality: {choices}." in card_in(card, video)
    assert not ImportJob.objects.filter(media_quality__gt="").exists()


def test_a_cancelled_download_leaves_the_video_as_it_was(alice, alice_client, media, media_clips):
    """Cancelled mid-download, a video that was imported is complete again (its metadata and
    transcript were never undone), its card's menu back, nothing left in the scratch folder."""
    media.add_channel("changed", videos=1)
    video = imported(alice, "changed").videos.get()
    media.serve_media(media_clips, bandwidth=500_000)  # about nine seconds for the 720p stream
    client, headers = htmx_client(alice)
    client.post(
        reverse("imports:download_video", args=[video.pk]),
        {"quality": "720"},
        HTTP_HX_TARGET=video.dom_id,
        **headers,
    )
    job = ImportJob.objects.get(media_quality="720")
    runner = threading.Thread(target=run_lane)
    runner.start()
    wait_for(lambda: media.media_bytes_sent > 500_000, timeout=60)

    alice_client.post(reverse("imports:cancel_job", args=[job.pk]))
    runner.join(30)

    assert not runner.is_alive()
    video.refresh_from_db()
    assert (video.stage, video.progress) == ("complete", 100)
    assert video.transcript and not video.media_files.exists()
    page = alice_client.get(video.channel.get_absolute_url()).content.decode()
    assert "<summary>Download</summary>" in card_in(page, video)
    cards = [html for _, html in stored_events(alice, video.dom_id)]
    assert 'data-stage="complete"' in cards[-1]  # the open pages were told too


def run_lane() -> None:
    try:
        engine.run_lane("imports")
    finally:
        connections.close_all()


@pytest.fixture
def web_server(transactional_db, tmp_path, media):
    """The web server reads the test's media folder (where `media` stores)."""
    server = start_web_server(tmp_path, CHIRP_MEDIA_ROOT=str(tmp_path / "media"))
    yield server
    server.process.terminate(10)


@pytest.mark.browser
def test_downloading_from_a_cards_menu_in_a_browser(alice, media, browser_for, screenshot):
    fake = media.add_channel("clicked", videos=2)
    channel = imported(alice, "clicked")
    wanted = Video.objects.get(youtube_id=fake.videos[0].id)
    page = browser_for(alice)
    offline(page)
    page.goto(channel.get_absolute_url())
    card = page.locator(f"#{wanted.dom_id}")

    card.get_by_text("Download", exact=True).first.click()  # the menu's summary
    card.get_by_label("Quality").select_option("360")
    screenshot(page, "card-download-menu-open")
    card.get_by_role("button", name="Download").click()

    expect(card).to_contain_text("Downloading this video at 360p.")
    assert ImportJob.objects.filter(media_quality="360").count() == 1
    engine.run_lane("imports")  # as a worker would: the card follows it live
    expect(card.locator(".media-badge")).to_have_text("360p", timeout=30_000)
    expect(page.locator(".video-card .media-badge")).to_have_count(1)
    screenshot(page, "card-download-menu")
