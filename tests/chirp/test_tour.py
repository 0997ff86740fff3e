"""A tour of every main page in a real browser, with the data a real user would have: each page
shows its heading, and with CHIRP_SCREENSHOTS set each one is saved as a picture for a person
to look at (README, "Test it")."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from chirp.models import LaneSlot
from imports.models import Channel, ImportJob, Video
from imports.transcripts import Segment, Transcript
from tests.uploads.conftest import (
    load_sample_pictures,
    make_image,
    make_job,
    media_root,  # noqa: F401 (autouse: thumbnails in tmp_path)
)
from uploads.faces import detect_faces
from uploads.images import make_thumbnail
from uploads.models import DetectedFace, ScrapeJob, ScrapeJobItem

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

PAGE = "https://photos.example/team.html"
PHOTOS = ["astronaut", "grace_hopper", "chelsea", "coffee", "rocket", "horse"]


def photographed(owner, name: str, picture, found_at) -> object:
    """An image of `picture` as the pipeline stores it: its thumbnail and the faces opencv
    finds in it, seen by `owner` on PAGE."""
    faces = detect_faces(picture)
    image = make_image(
        name,
        faces=0,
        seen_by=owner,
        found_on=PAGE,
        source_url=f"https://photos.example/img/{name}.jpg",
        width=picture.width,
        height=picture.height,
        face_count=len(faces),
        first_seen=found_at,
    )
    image.thumbnail.delete(save=False)
    thumbnail = make_thumbnail(picture, settings.CHIRP_THUMBNAIL_SIZE)
    image.thumbnail.save("t.jpg", ContentFile(thumbnail))
    DetectedFace.objects.bulk_create(
        DetectedFace(image=image, x=f.x, y=f.y, w=f.w, h=f.h, confidence=f.confidence)
        for f in faces
    )
    return image


def finished_scrape(owner, pictures) -> tuple[ScrapeJob, list]:
    """A scrape of PAGE that stored the six samples and failed on one more picture."""
    now = timezone.now()
    job = make_job(
        owner,
        url=PAGE,
        status="completed",
        started=now - timedelta(minutes=3),
        finished=now - timedelta(minutes=2),
    )
    images = []
    for n, name in enumerate(PHOTOS):
        image = photographed(owner, name, pictures[name], now - timedelta(minutes=2, seconds=n))
        images.append(image)
        ScrapeJobItem.objects.create(
            job=job, source_url=image.source_url, status="completed", image=image
        )
    ScrapeJobItem.objects.create(
        job=job,
        source_url="https://photos.example/img/missing.jpg",
        status="failed",
        error="The server answered 404 Not Found",
    )
    ScrapeJob.objects.filter(pk=job.pk).update(
        total=len(PHOTOS) + 1, found=len(PHOTOS) + 1, prepared=True, done=len(PHOTOS), failed=1
    )
    return job, images


def running_scrape(owner) -> ScrapeJob:
    """A job a worker is running right now (its slot held), for the dashboard and the lanes."""
    now = timezone.now()
    job = make_job(
        owner,
        ["skipped", "queued", "queued", "queued"],
        url="https://photos.example/holiday.html",
        status="processing",
        worker="host:1:tour",
        heartbeat=now,
        started=now,
    )
    LaneSlot.objects.create(
        lane="uploads", slot=0, holder="host:1:tour", held_since=now, heartbeat=now
    )
    make_job(owner, url="https://photos.example/waiting.html")  # waits its turn
    return job


def transcribed_channel(owner) -> tuple[Channel, Video]:
    """A channel `owner` imported: five videos, the newest with its transcript."""
    channel = Channel.objects.create(
        youtube_id="UC0000000000000000000042", handle="@gardennotes", title="Garden Notes"
    )
    ImportJob.objects.create(
        owner=owner,
        channel=channel,
        channel_url=channel.youtube_url,
        status="completed",
        total=5,
        done=5,
        prepared=True,
        started=timezone.now() - timedelta(minutes=5),
        finished=timezone.now() - timedelta(minutes=4),
    )
    titles = [
        "Grafting a quince in ten minutes",
        "Why my tomatoes split (and yours too)",
        "Winter pruning, start to finish",
        "Compost that does not smell",
        "Seed swap: what came up",
    ]
    Video.objects.bulk_create(
        Video(
            youtube_id=f"vgarden{n:04d}",
            channel=channel,
            title=title,
            duration=600 + 37 * n,
            views=1200 * (n + 1),
            published=timezone.now() - timedelta(days=9 * n + 1),
            stage="complete",
            progress=100,
        )
        for n, title in enumerate(titles)
    )
    video = channel.videos.get(youtube_id="vgarden0000")
    lines = [
        "Today we graft a quince onto a rootstock.",
        "First, cut the scion at a long angle, about three centimetres.",
        "Match the green layers on one side at least.",
        "Wrap it tight, and seal the top against the rain.",
    ]
    video.save_transcript(
        Transcript(
            video_id=video.youtube_id,
            language_code="en",
            language="English",
            source="manual",
            segments=tuple(Segment(12.0 * n, 11.5, line) for n, line in enumerate(lines)),
        )
    )
    # Its chapters step finds none: the video is complete, as the others.
    Video.objects.filter(pk=video.pk).update(stage="complete", progress=100)
    return channel, video


def test_every_main_page_shows_its_heading(alice, staff, browser_for, screenshot):
    job, images = finished_scrape(alice, load_sample_pictures())
    running = running_scrape(alice)
    channel, video = transcribed_channel(alice)
    astronaut = images[0]

    page = browser_for(alice)
    page.set_viewport_size({"width": 1280, "height": 800})
    # Video pictures are hot-linked from YouTube: the browser must not reach the internet.
    page.context.route("https://**", lambda route: route.abort())
    heading = page.locator("main h1").first
    tour = [
        ("home", reverse("home"), "Running now"),
        ("uploads", reverse("uploads:page"), "Website Photo Scraper"),
        ("job", reverse("uploads:job_detail", args=[job.pk]), f"Scrape job #{job.pk}"),
        ("gallery", reverse("uploads:gallery"), f"Gallery · {len(PHOTOS)} images"),
        ("channels", reverse("imports:channel_list"), "Channels"),
        ("channel", channel.get_absolute_url(), "Garden Notes"),
        ("video", video.get_absolute_url(), "Grafting a quince in ten minutes"),
    ]
    for name, path, title in tour:
        response = page.goto(path)
        assert response.status == 200, path
        expect(heading).to_have_text(title)
        page.wait_for_load_state("networkidle")
        screenshot(page, name)
    expect(page.locator(".transcript")).to_contain_text("Match the green layers")
    page.goto(reverse("home"))
    expect(page.locator(f"#dash-{running.dom_id}")).to_be_visible()

    page.goto(f"{reverse('uploads:gallery')}?open={astronaut.pk}")
    lightbox = page.locator("#lightbox")
    expect(lightbox).to_be_visible()
    expect(lightbox.locator(".lightbox-title")).to_have_text("astronaut.jpg · 1 face")
    expect(lightbox.locator("rect.face-box")).to_have_count(1)
    expect(lightbox.locator("img")).to_have_js_property("complete", True)
    screenshot(page, "lightbox")

    admin = browser_for(staff)
    admin.set_viewport_size({"width": 1280, "height": 800})
    # The worker's heartbeat, just now (the tests' lease is 2 s): a healthy lane.
    LaneSlot.objects.update(heartbeat=timezone.now())
    ScrapeJob.objects.filter(pk=running.pk).update(heartbeat=timezone.now())
    admin.goto(reverse("admin:chirp_laneslot_changelist"))
    expect(admin.locator("#content h1")).to_have_text("Live lanes")
    expect(
        admin.locator("#content-main table td", has_text=f"scrape job #{running.pk}")
    ).to_be_visible()
    screenshot(admin, "admin-lanes")
