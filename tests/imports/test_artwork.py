"""Channel avatars, banners and video thumbnails: fetched once during a real import on the fake
YouTube, stored by content, served by Chirp to those who see the channel; a placeholder when a
picture cannot be had. Pages never point at YouTube's image hosts."""

from __future__ import annotations

import io
import re
from urllib.parse import urlsplit

import pytest
from django.core.files.storage import default_storage
from django.templatetags.static import static
from django.test import Client
from django.urls import reverse
from PIL import Image
from playwright.sync_api import expect

from chirp import engine
from imports.limiter import Limiter
from imports.models import Channel, ImportJob, Video
from imports.youtube import parse_channel_input
from tests.imports.fake_youtube import image_colour, tiny_jpeg
from tests.sse import stored_events

pytestmark = pytest.mark.django_db(transaction=True)

IMG_SRC = re.compile(r'<img[^>]*\ssrc="([^"]*)"')
YOUTUBE_IMAGE_HOSTS = re.compile(r"ytimg\.com|ggpht\.com|googleusercontent\.com")
THUMBNAIL_PLACEHOLDER = static("imports/placeholder-thumbnail.svg")


def run_import(owner, text: str, **options) -> ImportJob:
    job, created = ImportJob.start(owner, parse_channel_input(text), **options)
    assert created
    engine.run_lane("imports")
    job.refresh_from_db()
    return job


def img_sources(html: str) -> list[str]:
    return IMG_SRC.findall(html)


def colour_of(data: bytes) -> tuple[int, int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB").getpixel((image.width // 2, image.height // 2))


def close(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return all(abs(x - y) <= 12 for x, y in zip(a, b, strict=True))  # JPEG, twice


def stored_files(media_root) -> list[str]:
    return sorted(p.name for p in (media_root / "artwork").rglob("*.jpg"))


def test_an_import_keeps_copies_and_pages_show_only_chirps_own(alice, alice_client, fake_youtube):
    fake = fake_youtube.add_channel("pictures", videos=4)

    job = run_import(alice, "@pictures")

    assert (job.status, job.done) == ("completed", 4)
    channel = Channel.objects.get()
    assert channel.avatar.name.startswith("artwork/") and channel.banner.name.startswith("artwork/")
    pages = [
        reverse("imports:channel_list"),
        channel.get_absolute_url(),
        reverse("imports:job_detail", args=[job.pk]),
    ]
    for path in pages:
        html = alice_client.get(path).content.decode()
        assert not YOUTUBE_IMAGE_HOSTS.search(html), path
        assert img_sources(html), path
        assert all(src.startswith("/") for src in img_sources(html)), path

    # Every card shows the video's own thumbnail, as the fake served it, from Chirp's storage.
    html = alice_client.get(channel.get_absolute_url()).content.decode()
    for source in fake.videos:
        video = Video.objects.get(youtube_id=source.id)
        src = re.search(rf'id="{video.dom_id}".*?<img[^>]*\ssrc="([^"]*)"', html, re.S)[1]
        response = alice_client.get(src)
        assert response.status_code == 200
        assert response["Content-Type"] == "image/jpeg"
        assert "immutable" in response["Cache-Control"]
        served = b"".join(response.streaming_content)
        with default_storage.open(video.thumbnail.name) as stored:
            assert served == stored.read()
        thumbnail_path = urlsplit(video.thumbnail_url).path
        assert close(colour_of(served), image_colour(thumbnail_path))

    # The avatar in the header is the channel's.
    avatar = re.search(r'<img class="avatar large" src="([^"]*)"', html)[1]
    served = b"".join(alice_client.get(avatar).streaming_content)
    assert close(colour_of(served), image_colour(urlsplit(channel.avatar_url).path))


def test_a_missing_or_broken_picture_leaves_a_placeholder(alice, alice_client, fake_youtube):
    fake = fake_youtube.add_channel("gaps", videos=3)
    missing, garbage, fine = fake.videos
    fake_youtube.add_fault(kinds={"image"}, video_id=missing.id, status=404)
    fake_youtube.set_image(garbage.id, b"<html>not a picture</html>")
    fake_youtube.set_image(fake.channel_id, b"", status=404)  # no avatar, no banner

    job = run_import(alice, "@gaps")

    assert (job.status, job.done, job.failed) == ("completed", 3, 0)
    videos = {v.youtube_id: v for v in Video.objects.all()}
    assert {v.stage for v in videos.values()} == {"complete"}
    assert not videos[missing.id].thumbnail and not videos[garbage.id].thumbnail
    assert videos[fine.id].thumbnail
    channel = Channel.objects.get()
    assert not channel.avatar and not channel.banner

    html = alice_client.get(channel.get_absolute_url()).content.decode()
    for video, placeholder in ((missing, True), (garbage, True), (fine, False)):
        card = re.search(rf'id="{videos[video.id].dom_id}".*?</article>', html, re.S)[0]
        assert (img_sources(card) == [THUMBNAIL_PLACEHOLDER]) is placeholder
    assert 'class="channel-banner"' not in html
    avatar = re.search(r'<img class="avatar large" src="([^"]*)"', html)[1]
    assert avatar == static("imports/placeholder-avatar.svg")


def test_the_same_picture_is_stored_once(alice, fake_youtube, media_root):
    fake = fake_youtube.add_channel("twins", videos=3)
    same = tiny_jpeg((10, 120, 200))
    fake_youtube.set_image(fake.videos[0].id, same)
    fake_youtube.set_image(fake.videos[1].id, same)

    run_import(alice, "@twins")

    first, second, third = (Video.objects.get(youtube_id=v.id) for v in fake.videos)
    assert first.thumbnail.name == second.thumbnail.name != third.thumbnail.name
    # Two thumbnails, the avatar and the banner: four pictures, four files.
    assert len(stored_files(media_root)) == 4


def test_a_reimport_fetches_no_picture_again(alice, bob, fake_youtube):
    fake_youtube.add_channel("again", videos=3)
    run_import(alice, "@again")
    assert fake_youtube.count("image") == 2 + 3  # avatar, banner, thumbnails
    fake_youtube.clear_requests()

    run_import(bob, "@again")
    run_import(alice, "@again", only_new=True)

    assert fake_youtube.count("image") == 0
    channel = Channel.objects.get()
    assert channel.avatar and channel.banner
    assert all(video.thumbnail for video in channel.videos.all())


def test_strangers_get_no_picture(alice, bob, fake_youtube):
    fake_youtube.add_channel("alices", videos=2)
    fake_youtube.add_channel("bobs", videos=2)
    run_import(alice, "@alices")
    run_import(bob, "@bobs")
    alices = Channel.objects.get(handle="@alices")
    bobs = Channel.objects.get(handle="@bobs")
    alices_thumbnail = alices.videos.first().thumbnail.name.rsplit("/", 1)[1].removesuffix(".jpg")
    alices_avatar = alices.avatar.name.rsplit("/", 1)[1].removesuffix(".jpg")
    alice_client, bob_client = Client(), Client()
    alice_client.force_login(alice)
    bob_client.force_login(bob)

    for digest in (alices_thumbnail, alices_avatar):
        mine = reverse("imports:artwork", args=[alices.pk, digest])
        assert alice_client.get(mine).status_code == 200
        assert bob_client.get(mine).status_code == 404
        # Nor under a channel bob sees: the picture is not that channel's.
        assert bob_client.get(reverse("imports:artwork", args=[bobs.pk, digest])).status_code == 404


def test_a_429_on_a_thumbnail_pauses_like_any_request(alice, fake_youtube, settings):
    settings.CHIRP_YOUTUBE_PAUSE_SECONDS = 1.0
    fake = fake_youtube.add_channel("busy", videos=3)
    victim = fake.videos[1].id
    fake_youtube.add_fault(kinds={"image"}, video_id=victim, status=429, times=1)

    job = run_import(alice, "@busy")

    assert (job.status, job.done, job.failed) == ("completed", 3, 0)
    video = Video.objects.get(youtube_id=victim)
    assert video.stage == "complete" and video.thumbnail  # fetched when the pause was over
    assert fake_youtube.count("image", video_id=victim) == 2
    assert Limiter().state().reason == "rate_limited"
    steps = [html for _, html in stored_events(alice, job.dom_id)]
    assert any("Paused: YouTube is rate-limiting" in html for html in steps)


@pytest.mark.browser
def test_a_channel_page_of_60_videos_asks_nothing_of_youtube(alice, browser_for, fake_youtube):
    fake_youtube.add_channel("sixty", videos=60)
    run_import(alice, "@sixty")
    channel = Channel.objects.get()
    assert channel.videos.exclude(thumbnail="").count() == 60
    page = browser_for(alice)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    page.goto(channel.get_absolute_url())
    cards = page.locator(".video-card img")
    expect(cards).to_have_count(60)
    cards.last.scroll_into_view_if_needed()  # lazy pictures load too
    page.wait_for_load_state("networkidle")
    # Every picture showed (a broken one has no natural width).
    widths = cards.evaluate_all("images => images.map(image => image.naturalWidth)")
    assert all(widths), widths

    server = urlsplit(page.url).netloc
    assert sum("/artwork/" in url for url in requested) >= 60
    assert {urlsplit(url).netloc for url in requested} == {server}
