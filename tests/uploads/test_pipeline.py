"""Scrape jobs run in-process through the uploads lane, against a local photo site."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage

from chirp import engine
from tests.sse import stored_events
from uploads import pipeline
from uploads.images import decode_image
from uploads.models import DetectedFace, Image, ScrapeJob, ScrapeJobItem
from uploads.pipeline import ALREADY_KNOWN

from .conftest import SAMPLE_FACES, PhotoSite

pytestmark = pytest.mark.django_db(transaction=True)


def run(job: ScrapeJob) -> ScrapeJob:
    engine.run_lane("uploads")
    job.refresh_from_db()
    return job


def items_by_name(job: ScrapeJob) -> dict[str, ScrapeJobItem]:
    return {item.source_url.rsplit("/", 1)[1]: item for item in job.items.select_related("image")}


def counts(job: ScrapeJob) -> tuple:
    return (job.status, job.total, job.done, job.skipped, job.failed)


@pytest.mark.parametrize("threads", [1, 2])
def test_a_page_gives_exact_counts(alice, photo_site: PhotoSite, settings, threads):
    settings.CHIRP_IMAGE_THREADS = threads
    job = ScrapeJob.objects.create(owner=alice, url=photo_site.page_url)

    job = run(job)

    assert counts(job) == ("completed", 9, 6, 2, 1)
    assert job.found == 9 and job.cap_message == ""
    items = items_by_name(job)
    faces = {
        name.removesuffix(".jpg"): item.image.face_count
        for name, item in items.items()
        if item.status == "completed"
    }
    assert faces == SAMPLE_FACES  # identical with one thread and two
    assert DetectedFace.objects.count() == 2
    assert Image.objects.count() == 6
    copy = items["copy-of-coffee.jpg"]
    assert (copy.status, copy.image) == ("skipped", items["coffee.jpg"].image)
    assert copy.error.startswith("The same picture as")
    assert (items["logo.svg"].status, items["logo.svg"].error) == (
        "skipped",
        "SVG images are skipped.",
    )
    broken = items["broken.jpg"]
    assert (broken.status, broken.image) == ("failed", None)
    assert broken.error == "The server answered 500 Internal Server Error"


def test_an_image_record_holds_the_picture_and_its_faces(alice, photo_site, sample_jpegs):
    job = run(ScrapeJob.objects.create(owner=alice, url=photo_site.page_url))

    image = Image.objects.get(source_url=photo_site.image_url("grace_hopper.jpg"))
    decoded = decode_image(sample_jpegs["grace_hopper"])
    assert (image.sha256, image.width, image.height, image.format, image.byte_size) == (
        decoded.sha256,
        512,
        600,
        "JPEG",
        len(sample_jpegs["grace_hopper"]),
    )
    assert (image.face_count, image.found_on) == (1, job.url)
    [face] = image.faces.all()
    assert 0 < face.x < face.x + face.w <= 512 and 0 < face.y < face.y + face.h <= 600
    with default_storage.open(image.thumbnail.name) as thumbnail:
        assert thumbnail.read(3) == b"\xff\xd8\xff"  # a JPEG


def test_scraping_again_skips_everything_known_without_fetching_it(alice, photo_site):
    run(ScrapeJob.objects.create(owner=alice, url=photo_site.page_url))
    fetched_before = len(photo_site.image_requests())

    again = run(ScrapeJob.objects.create(owner=alice, url=photo_site.page_url))

    assert counts(again) == ("completed", 9, 0, 8, 1)  # the broken one still fails
    assert Image.objects.count() == 6
    assert all(
        item.image for item in again.items.filter(status="skipped").exclude(error__contains="SVG")
    )
    # Known URLs are not even fetched: only the copy (known by its bytes), the SVG and the
    # broken picture were asked for again.
    assert sorted(photo_site.image_requests()[fetched_before:]) == [
        "/img/broken.jpg",
        "/img/copy-of-coffee.jpg",
        "/img/logo.svg",
    ]
    assert set(again.items.filter(image__isnull=False).values_list("error", flat=True)) >= {
        ALREADY_KNOWN
    }


def test_a_failed_image_fixed_on_the_server_completes_on_retry(alice, photo_site):
    job = run(ScrapeJob.objects.create(owner=alice, url=photo_site.page_url))
    assert job.failed == 1 and job.can_retry

    photo_site.fix_broken()
    assert job.retry_failed() == 1
    job = run(job)

    assert counts(job) == ("completed", 9, 7, 2, 0)
    broken = items_by_name(job)["broken.jpg"]
    assert (broken.status, broken.error, broken.image.face_count) == ("completed", "", 0)


def test_a_page_that_cannot_be_fetched_fails_the_job_and_can_be_retried(alice, photo_site):
    url = photo_site.server.url("/later.html")
    job = run(ScrapeJob.objects.create(owner=alice, url=url))

    assert (job.status, job.total, job.prepared) == ("failed", 0, False)
    assert job.error == "The page could not be fetched: The server answered 404 Not Found."
    assert job.can_retry

    photo_site.server.respond("/later.html", b'<img src="/img/astronaut.jpg">')
    job.retry_failed()
    job = run(job)
    assert counts(job) == ("completed", 1, 1, 0, 0)


def test_a_page_without_images_fails_with_a_reason(alice, local_http_server):
    local_http_server.respond("/empty.html", b"<p>Nothing to see</p>")

    job = run(ScrapeJob.objects.create(owner=alice, url=local_http_server.url("/empty.html")))

    assert (job.status, job.error) == ("failed", "No images were found on this page.")


def test_the_cap_cuts_the_list_and_says_so(alice, photo_site, settings):
    settings.CHIRP_SCRAPE_MAX_IMAGES = 3

    job = run(ScrapeJob.objects.create(owner=alice, url=photo_site.page_url))

    assert (job.total, job.found) == (3, 9)
    assert job.cap_message == (
        "The page shows 9 images; only the first 3 were taken (the limit per page)."
    )


def test_an_image_at_a_private_address_fails_its_item_only(alice, local_http_server, photo_site):
    local_http_server.respond(
        "/mixed.html",
        b'<img src="/img/astronaut.jpg"><img src="http://10.1.2.3/x.jpg">'
        b'<img src="http://169.254.169.254/latest/meta-data.jpg">',
    )

    job = run(ScrapeJob.objects.create(owner=alice, url=local_http_server.url("/mixed.html")))

    assert counts(job) == ("completed", 3, 1, 0, 2)
    errors = set(job.items.filter(status="failed").values_list("error", flat=True))
    assert errors == {"This address points inside the server's network and is not allowed"}


def test_an_unexpected_error_fails_the_item_and_the_worker_goes_on(alice, photo_site, monkeypatch):
    def broken_detector(image):
        raise RuntimeError("detector exploded")

    monkeypatch.setattr(pipeline, "detect_faces", broken_detector)

    job = run(ScrapeJob.objects.create(owner=alice, url=photo_site.page_url))

    assert counts(job) == ("completed", 9, 0, 1, 8)  # the SVG was skipped: not nothing
    assert Image.objects.count() == 0
    errors = set(job.items.filter(status="failed").values_list("error", flat=True))
    assert "Unexpected error: RuntimeError: detector exploded" in errors


def test_the_same_picture_recorded_meanwhile_is_linked_not_duplicated(
    alice, photo_site, sample_jpegs, media_root
):
    """Two threads (or workers) racing on one picture: the loser links to the winner's."""
    job = ScrapeJob.objects.create(owner=alice, url=photo_site.page_url, status="processing")
    item = ScrapeJobItem.objects.create(job=job, source_url=photo_site.image_url("a.jpg"))
    item.start()
    decoded = decode_image(sample_jpegs["coffee"])
    winner = Image.objects.create(
        source_url=photo_site.image_url("b.jpg"),
        sha256=decoded.sha256,
        width=1,
        height=1,
        format="JPEG",
        byte_size=1,
        face_count=0,
        thumbnail="x.jpg",
        found_on=job.url,
    )

    pipeline._record(job, item, decoded, [], b"thumbnail")

    item.refresh_from_db()
    assert (item.status, item.image) == ("skipped", winner)
    assert Image.objects.count() == 1
    assert not list(media_root.rglob("*.jpg"))  # the loser's thumbnail file is gone


def test_live_events_send_one_item_row_at_a_time_and_a_summary_at_the_end(alice, photo_site):
    job = run(ScrapeJob.objects.create(owner=alice, url=photo_site.page_url))

    html = {}
    for name, data in stored_events(alice):
        html.setdefault(name, []).append(data)
    for item in job.items.all():
        rows = html[item.dom_id]
        assert all(row.count("<tr") == 1 for row in rows)  # one row, never the table
    assert html[job.dom_id][-1].count('data-status="completed"') == 1
    [toast] = html["toast"]
    assert "9 images: 6 new, 2 skipped, 1 failed" in toast
    assert 'data-count="all">Gallery <span class="count">6<' in html["gallery-counts"][-1]
    assert 'data-summary="completed">Completed: 6<' in html["upload-summary"][-1]
