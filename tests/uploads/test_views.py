"""The Uploads pages: alice owns jobs, bob is the stranger."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.contrib.messages import get_messages
from django.test import AsyncClient, Client
from django.urls import reverse
from django.utils import timezone

from chirp import engine
from tests.sse import stored_events
from uploads.models import FaceVerdict, Image, ScrapeJob, ScrapeJobItem, Sighting

from .conftest import make_image, make_job

pytestmark = pytest.mark.django_db

PAGE_URL = "http://127.0.0.1:8123/gallery"  # loopback is allowed in the tests' settings


@pytest.fixture
def bob_client(bob):
    client = Client()
    client.force_login(bob)
    return client


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


# -- the page ------------------------------------------------------------------------------


def test_signed_out_visitors_are_sent_to_sign_in(client, alice):
    response = client.get(reverse("uploads:page"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_page_shows_my_jobs_and_not_others(alice_client, alice, bob):
    mine = make_job(alice, ["completed", "failed"])
    theirs = make_job(bob, ["completed"])

    response = alice_client.get(reverse("uploads:page"))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Website Photo Scraper" in html
    assert f'id="{mine.dom_id}" sse-swap="{mine.dom_id}"' in html
    assert theirs.dom_id not in html
    assert 'data-summary="completed">Completed: 1<' in html
    assert 'data-summary="failed">Failed: 1<' in html


def test_the_jobs_list_is_paginated(alice_client, alice):
    jobs = [make_job(alice) for _ in range(21)]

    first = alice_client.get(reverse("uploads:page")).content.decode()
    second = alice_client.get(reverse("uploads:page"), {"page": 2}).content.decode()

    assert jobs[-1].dom_id in first and f'id="{jobs[0].dom_id}"' not in first
    assert f'id="{jobs[0].dom_id}"' in second and "Page 2 of 2" in second


def test_submitting_a_page_starts_a_job_and_shows_it(alice_client, alice):
    response = alice_client.post(reverse("uploads:page"), {"url": PAGE_URL + "#top"})

    job = ScrapeJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("uploads:job_detail", args=[job.pk])
    assert (job.owner, job.url, job.status) == (alice, PAGE_URL, "pending")
    assert messages_of(response) == []


def test_a_page_scraped_before_warns_without_blocking(alice_client, alice):
    old = make_job(alice, ["completed"], url=PAGE_URL)
    three_days_ago = timezone.now() - timedelta(days=3)
    ScrapeJob.objects.filter(pk=old.pk).update(created=three_days_ago)
    Sighting.objects.update(first_seen=three_days_ago, last_seen=three_days_ago)

    response = alice_client.post(reverse("uploads:page"), {"url": PAGE_URL})

    assert response.status_code == 302
    assert ScrapeJob.objects.filter(url=PAGE_URL).count() == 2
    assert messages_of(response) == [
        "This page was scraped 3 days ago — most images may be skipped."
    ]


def test_a_page_whose_images_are_known_warns_even_after_its_jobs_were_deleted(alice_client, alice):
    make_image(
        "x", seen_by=alice, found_on=PAGE_URL, first_seen=timezone.now() - timedelta(days=10)
    )

    response = alice_client.post(reverse("uploads:page"), {"url": PAGE_URL})

    assert messages_of(response) == [
        "This page was scraped 1 week ago — most images may be skipped."
    ]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "Paste the address of a web page."),
        ("not a web address", "Enter a valid URL."),
        ("ftp://127.0.0.1/photos", "Only http and https addresses can be fetched"),
        ("http://10.0.0.7/", "This address points inside the server&#x27;s network"),
        ("http://169.254.169.254/latest/", "This address points inside the server&#x27;s network"),
        ("http://user:pw@127.0.0.1/", "Addresses with a user name or password cannot be fetched"),
    ],
)
def test_bad_input_gives_a_clear_form_error(alice_client, url, message):
    response = alice_client.post(reverse("uploads:page"), {"url": url})

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ScrapeJob.objects.exists()


def test_posting_without_the_csrf_token_is_refused(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    response = client.post(reverse("uploads:page"), {"url": PAGE_URL})

    assert response.status_code == 403
    assert not ScrapeJob.objects.exists()


# -- a job -------------------------------------------------------------------------------


def test_the_job_page_shows_each_item_as_its_live_row(alice_client, alice):
    job = make_job(alice, ["completed", "queued", "processing", "failed", "skipped"])
    items = list(job.items.all())

    html = alice_client.get(reverse("uploads:job_detail", args=[job.pk])).content.decode()

    for item in items:
        assert f'<tr id="{item.dom_id}" sse-swap="{item.dom_id}"' in html
    completed = items[0]
    assert f'src="{completed.image.thumbnail_url}"' in html
    assert reverse("uploads:cancel_item", args=[items[1].pk]) in html
    assert reverse("uploads:retry_item", args=[items[3].pk]) in html
    assert 'class="spinner"' in html  # the processing item
    assert html.count('class="thumb placeholder"') == 4


def test_the_job_pages_chips_count_that_jobs_items_only(alice_client, alice):
    first = make_job(alice, ["completed", "completed", "failed"])
    second = make_job(alice, ["completed", "queued", "queued", "skipped"])

    one = alice_client.get(reverse("uploads:job_detail", args=[first.pk])).content.decode()
    two = alice_client.get(reverse("uploads:job_detail", args=[second.pk])).content.decode()

    assert 'data-summary="completed">Completed: 2<' in one
    assert 'data-summary="failed">Failed: 1<' in one
    assert 'data-summary="queued">Queued: 0<' in one and "Skipped:" not in one
    assert 'data-summary="completed">Completed: 1<' in two
    assert 'data-summary="queued">Queued: 2<' in two
    assert 'data-summary="skipped">Skipped: 1<' in two and "Failed:" not in two
    # Live: the job page's chips have their own id, which only this job's updates replace
    # (the user-wide "upload-summary" is the uploads page's).
    assert f'id="{first.summary_dom_id}" class="summary" sse-swap="{first.summary_dom_id}"' in one
    assert 'sse-swap="upload-summary"' not in one
    live = dict(second.live_fragments())
    assert 'data-summary="queued">Queued: 2<' in live[second.summary_dom_id]
    assert 'data-summary="completed">Completed: 3<' in live["upload-summary"]


def chips_sent_last(user, job: ScrapeJob) -> dict[str, int]:
    """The job page's chips as the newest live event for them says."""
    html = stored_events(user, job.summary_dom_id)[-1][1]
    return {name: int(n) for name, n in re.findall(r'data-summary="(\w+)">\w+: (\d+)<', html)}


def test_the_job_pages_chips_follow_each_item_as_its_row_is_sent(
    alice, django_capture_on_commit_callbacks
):
    job = make_job(alice, ["queued"] * 4)
    first, second, *_ = items = list(job.items.all())
    for item in items[:2]:
        item.job = job
        item.start()  # the worker took them: no counter of the job moved
    token = engine.new_token()
    monitor = engine.Monitor(engine.claim_slot(ScrapeJob.lane, token), token)
    monitor.in_flight.update(items[:2])

    monitor.show_in_flight()  # the tick that shows both rows as processing
    assert chips_sent_last(alice, job) == {"queued": 2, "processing": 2, "completed": 0}

    with django_capture_on_commit_callbacks(execute=True):
        first.complete(image=make_image("new", seen_by=alice))
    assert chips_sent_last(alice, job) == {"queued": 2, "processing": 1, "completed": 1}

    with django_capture_on_commit_callbacks(execute=True):
        second.fail("The server answered 404 Not Found")
    assert chips_sent_last(alice, job) == {
        "queued": 2,
        "processing": 0,
        "completed": 1,
        "failed": 1,
    }
    # Every row sent came with the chips.
    assert len(stored_events(alice, job.summary_dom_id)) == 4
    assert len(stored_events(alice, first.dom_id)) + len(stored_events(alice, second.dom_id)) == 4


@pytest.mark.parametrize(
    ("status", "statuses", "fields", "text", "bar"),
    [
        (
            "failed",
            [],
            {"error": "The page answered 404 Not Found."},
            "Failed: The page answered 404 Not Found · 0 new · 0 skipped · 0 failed",
            0,
        ),
        (
            "cancelled",
            ["completed", "failed", "cancelled", "cancelled"],
            {},
            "Cancelled · 2 of 4 images processed · 1 new · 0 skipped · 1 failed",
            25,
        ),
        (
            "completed",
            ["completed", "completed", "skipped", "failed"],
            {},
            "Completed with failures: 4 images · 2 new · 1 skipped · 1 failed",
            75,
        ),
    ],
)
def test_an_ended_job_says_what_happened(alice_client, alice, status, statuses, fields, text, bar):
    job = make_job(alice, statuses, status=status, finished=timezone.now(), **fields)

    page = alice_client.get(reverse("uploads:job_detail", args=[job.pk])).content.decode()
    [(_, live)] = [f for f in job.live_fragments() if f[0] == job.dom_id]

    for html in (page, live):
        assert text in html
        assert f'aria-valuenow="{bar}"' in html and f"progress-{status}" in html


def test_until_the_page_is_scraped_the_items_wait_for_the_job_to_change(alice_client, alice):
    job = ScrapeJob.objects.create(owner=alice, url=PAGE_URL, status="scraping")

    html = alice_client.get(reverse("uploads:job_detail", args=[job.pk])).content.decode()

    assert f'hx-trigger="sse:{job.dom_id}"' in html
    assert reverse("uploads:job_items", args=[job.pk]) in html


def test_the_items_section_loads_alone(alice_client, alice):
    job = make_job(alice, ["queued", "queued"])

    response = alice_client.get(reverse("uploads:job_items", args=[job.pk]))

    html = response.content.decode()
    assert html.count("<tr id=") == 2 and "<html" not in html


def test_items_are_paginated(alice_client, alice):
    job = make_job(alice, ["queued"] * 101)

    first = alice_client.get(reverse("uploads:job_detail", args=[job.pk])).content.decode()
    second = alice_client.get(
        reverse("uploads:job_detail", args=[job.pk]), {"page": 2}
    ).content.decode()

    assert first.count('class="item-row"') == 100
    assert second.count('class="item-row"') == 1


@pytest.mark.parametrize(
    ("name", "method"),
    [
        ("uploads:job_detail", "get"),
        ("uploads:job_items", "get"),
        ("uploads:retry_failed_items", "post"),
        ("uploads:cancel_job", "post"),
        ("uploads:delete_job", "post"),
    ],
)
def test_a_stranger_gets_404_for_my_job(bob_client, alice, name, method):
    job = make_job(alice, ["failed"])

    response = getattr(bob_client, method)(reverse(name, args=[job.pk]))

    assert response.status_code == 404
    job.refresh_from_db()
    assert job.status == "pending" and job.failed == 1


@pytest.mark.parametrize("name", ["uploads:cancel_item", "uploads:retry_item"])
def test_a_stranger_gets_404_for_my_items(bob_client, alice, name):
    job = make_job(alice, ["queued", "failed"])

    for item in job.items.all():
        assert bob_client.post(reverse(name, args=[item.pk])).status_code == 404
    assert sorted(job.items.values_list("status", flat=True)) == ["failed", "queued"]


def test_state_changes_need_post(alice_client, alice):
    job = make_job(alice, ["failed"], status="completed")
    for name in ("uploads:retry_failed_items", "uploads:cancel_job", "uploads:delete_job"):
        assert alice_client.get(reverse(name, args=[job.pk])).status_code == 405


def test_retrying_a_finished_jobs_failed_images(alice_client, alice):
    job = make_job(alice, ["completed", "failed"], status="completed")

    response = alice_client.post(reverse("uploads:retry_failed_items", args=[job.pk]))

    assert response.status_code == 302
    job.refresh_from_db()
    assert (job.status, job.failed) == ("pending", 0)
    assert messages_of(response) == ["Retrying 1 failed image."]
    assert job.items.filter(status="queued").count() == 1


def test_cancelling_a_job_through_htmx_refreshes_the_page(alice_client, alice):
    job = make_job(alice, ["queued", "queued"], status="processing")

    response = alice_client.post(
        reverse("uploads:cancel_job", args=[job.pk]), HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 200 and response["HX-Refresh"] == "true"
    job.refresh_from_db()
    assert (job.status, job.cancelled) == ("cancelled", 2)


def test_deleting_a_finished_job_keeps_its_images(alice_client, alice):
    job = make_job(alice, ["completed"], status="completed")
    image = job.items.get().image

    response = alice_client.post(reverse("uploads:delete_job", args=[job.pk]))

    assert response.status_code == 302 and response["Location"] == reverse("uploads:page")
    assert not ScrapeJob.objects.exists() and not ScrapeJobItem.objects.exists()
    image.refresh_from_db()


def test_a_running_job_cannot_be_deleted(alice_client, alice):
    job = make_job(
        alice, ["queued"], status="processing", worker="host:1:abc", heartbeat=timezone.now()
    )

    response = alice_client.post(reverse("uploads:delete_job", args=[job.pk]))

    assert response.status_code == 302
    assert ScrapeJob.objects.filter(pk=job.pk).exists()
    assert messages_of(response) == ["Cancel the job before deleting it (or let it finish)."]


def test_cancelling_a_queued_item_answers_its_new_row(alice_client, alice):
    job = make_job(alice, ["queued", "queued"], status="processing")
    item = job.items.first()

    response = alice_client.post(
        reverse("uploads:cancel_item", args=[item.pk]), HTTP_HX_REQUEST="true"
    )

    html = response.content.decode()
    assert html.strip().startswith(f'<tr id="{item.dom_id}"')
    assert 'data-status="cancelled"' in html
    job.refresh_from_db()
    assert job.cancelled == 1


def test_retrying_a_failed_item_queues_it_and_its_job(alice_client, alice):
    job = make_job(alice, ["completed", "failed"], status="completed")
    item = job.items.get(status="failed")

    response = alice_client.post(reverse("uploads:retry_item", args=[item.pk]))

    assert response.status_code == 302
    item.refresh_from_db()
    job.refresh_from_db()
    assert (item.status, job.status, job.failed) == ("queued", "pending", 0)


# -- images ------------------------------------------------------------------------------


def test_the_gallery_filters_by_faces(alice_client, alice):
    with_face = make_image("with", faces=1, seen_by=alice)
    without = make_image("without", faces=0, seen_by=alice)

    every = alice_client.get(reverse("uploads:gallery")).content.decode()
    faces = alice_client.get(reverse("uploads:gallery"), {"faces": "with"}).content.decode()
    none = alice_client.get(reverse("uploads:gallery"), {"faces": "without"}).content.decode()
    junk = alice_client.get(reverse("uploads:gallery"), {"faces": "<b>"})

    assert with_face.get_absolute_url() in every and without.get_absolute_url() in every
    assert with_face.get_absolute_url() in faces and without.get_absolute_url() not in faces
    assert without.get_absolute_url() in none and with_face.get_absolute_url() not in none
    assert junk.status_code == 200 and "<b>" not in junk.content.decode()
    assert 'data-count="with">With faces <span class="count">1<' in every


def test_image_review_draws_each_face_box(alice_client, alice):
    image = make_image("two", faces=2, seen_by=alice)

    html = alice_client.get(image.get_absolute_url()).content.decode()

    assert "2 faces" in html
    # 400 by 200 pixels: the first box is at (10, 20), 80 by 100.
    assert 'x="2.50%" y="10.00%" width="20.00%" height="50.00%"' in html
    assert html.count('class="face-box"') == 2
    assert image.found_on in html


def test_the_thumbnail_is_served_to_signed_in_users_only(alice_client, client, alice):
    image = make_image("thumb", seen_by=alice)

    response = alice_client.get(image.thumbnail_url)

    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert b"".join(response.streaming_content)[:3] == b"\xff\xd8\xff"
    client.logout()
    assert client.get(image.thumbnail_url).status_code == 302


# -- reviewing an image --------------------------------------------------------------------


def test_the_review_page_is_titled_by_the_file_name_with_links_that_open_safely(
    alice_client, alice
):
    image = make_image(
        "named",
        seen_by=alice,
        source_url="https://photos.example/albums/Summer%20day.jpg?size=large",
        found_on="https://photos.example/albums/",
    )

    html = alice_client.get(image.get_absolute_url()).content.decode()

    assert "<title>Summer day.jpg · Chirp</title>" in html
    for url in (image.source_url, image.found_on):
        escaped = url.replace("&", "&amp;")
        assert f'<a href="{escaped}" target="_blank" rel="noopener noreferrer"' in html


def test_marking_a_face_as_not_a_face_strikes_it_and_leaves_the_counts(alice_client, alice):
    image = make_image("two", faces=2, seen_by=alice)
    wrong = image.faces.first()
    url = reverse("uploads:review_face", args=[wrong.pk])

    response = alice_client.post(url, {"not_a_face": "true"})
    alice_client.post(url, {"not_a_face": "true"})  # a double submit counts once

    assert response.status_code == 302 and response["Location"] == image.get_absolute_url()
    html = alice_client.get(image.get_absolute_url()).content.decode()
    assert "1 face<" in html
    assert html.count('class="face-box not-a-face"') == 1
    assert html.count("<s>") == 1 and "It is a face" in html
    gallery = alice_client.get(reverse("uploads:gallery")).content.decode()
    assert 'data-count="with">With faces <span class="count">1<' in gallery
    assert "1 face<" in gallery


def test_a_wrongly_detected_only_face_moves_the_image_to_without_faces(alice_client, alice):
    image = make_image("one", faces=1, seen_by=alice)
    face = image.faces.get()

    alice_client.post(reverse("uploads:review_face", args=[face.pk]), {"not_a_face": "true"})

    without = alice_client.get(reverse("uploads:gallery"), {"faces": "without"}).content.decode()
    assert image.get_absolute_url() in without
    alice_client.post(reverse("uploads:review_face", args=[face.pk]), {"not_a_face": "false"})
    with_faces = alice_client.get(reverse("uploads:gallery"), {"faces": "with"}).content.decode()
    assert image.get_absolute_url() in with_faces


def test_reviewing_a_face_through_htmx_answers_the_review(alice_client, alice):
    image = make_image("htmx", faces=1, seen_by=alice)
    face = image.faces.get()

    response = alice_client.post(
        reverse("uploads:review_face", args=[face.pk]),
        {"not_a_face": "true"},
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="image-review"' in html and "0 faces<" in html and "It is a face" in html


def test_a_stranger_cannot_review_my_faces(bob_client, alice):
    image = make_image("private", faces=1, seen_by=alice)
    face = image.faces.get()

    response = bob_client.post(
        reverse("uploads:review_face", args=[face.pk]), {"not_a_face": "true"}
    )

    assert response.status_code == 404
    assert not FaceVerdict.objects.exists()


def test_reviewing_a_face_needs_post_and_the_csrf_token(alice, alice_client):
    face = make_image("csrf", faces=1, seen_by=alice).faces.get()
    url = reverse("uploads:review_face", args=[face.pk])
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)

    assert alice_client.get(url).status_code == 405
    assert strict.post(url, {"not_a_face": "true"}).status_code == 403
    assert not FaceVerdict.objects.exists()


# -- the gallery ---------------------------------------------------------------------------


def gallery_ids(client, **params) -> list[int]:
    """The images the gallery shows, in order."""
    html = client.get(reverse("uploads:gallery"), params).content.decode()
    return [int(pk) for pk in re.findall(r'<li class="tile" id="tile-(\d+)"', html)]


def test_the_gallery_filters_by_my_job(alice_client, alice, bob):
    first = make_job(alice, ["completed"], url="https://one.example/")
    second = make_job(alice, ["completed", "completed"], url="https://two.example/")
    bobs = make_job(bob, ["completed"])
    in_first = first.items.get().image

    assert gallery_ids(alice_client, job=first.pk) == [in_first.pk]
    assert len(gallery_ids(alice_client, job=second.pk)) == 2
    response = alice_client.get(reverse("uploads:gallery"), {"job": bobs.pk})
    assert "That job is not one of yours." in response.content.decode()
    assert len(gallery_ids(alice_client, job=bobs.pk)) == 3  # the filter is ignored


def test_the_gallery_filters_by_the_page_my_own_jobs_found_it_on(alice_client, alice, bob):
    shared = make_image("shared", seen_by=alice, found_on="https://alice.example/")
    Sighting.objects.create(
        owner=bob, image=shared, source_url=shared.source_url, page_url="https://bob.example/"
    )
    other = make_image("other", seen_by=alice, found_on="https://elsewhere.example/")

    assert gallery_ids(alice_client, on_page="https://alice.example/") == [shared.pk]
    assert gallery_ids(alice_client, on_page="https://elsewhere.example/") == [other.pk]
    html = alice_client.get(reverse("uploads:gallery")).content.decode()
    assert "https://bob.example/" not in html  # not even among the choices
    refused = alice_client.get(reverse("uploads:gallery"), {"on_page": "https://bob.example/"})
    assert "Your jobs found no images on that page." in refused.content.decode()


def test_the_gallery_filters_by_the_date_i_found_it_and_sorts(alice_client, alice):
    now = timezone.now()
    old = make_image("old", faces=1, seen_by=alice, first_seen=now - timedelta(days=10))
    middle = make_image("middle", faces=3, seen_by=alice, first_seen=now - timedelta(days=5))
    new = make_image("new", faces=0, seen_by=alice, first_seen=now)
    day = (now - timedelta(days=7)).date().isoformat()

    assert gallery_ids(alice_client) == [new.pk, middle.pk, old.pk]
    assert gallery_ids(alice_client, sort="oldest") == [old.pk, middle.pk, new.pk]
    assert gallery_ids(alice_client, sort="faces") == [middle.pk, old.pk, new.pk]
    assert gallery_ids(alice_client, found_from=day) == [new.pk, middle.pk]
    assert gallery_ids(alice_client, found_to=day) == [old.pk]
    assert gallery_ids(alice_client, found_from=day, faces="with", sort="faces") == [middle.pk]


def test_the_gallery_pages_keep_the_filters(alice_client, alice):
    for n in range(49):
        make_image(f"p{n}", faces=1, seen_by=alice)

    html = alice_client.get(reverse("uploads:gallery"), {"faces": "with", "sort": "faces"})

    assert 'href="/uploads/gallery/?faces=with&amp;sort=faces&amp;page=2"' in html.content.decode()
    assert len(gallery_ids(alice_client, faces="with", sort="faces", page=2)) == 1


def test_gallery_tiles_have_the_pictures_shape_and_two_thumbnail_sizes(alice_client, alice):
    wide = make_image("wide", seen_by=alice, width=900, height=300)

    html = alice_client.get(reverse("uploads:gallery")).content.decode()

    assert (
        f'<img src="{wide.small_thumbnail_url}" srcset="{wide.small_thumbnail_url} 240w, '
        f'{wide.thumbnail_url} 480w" sizes="540px" width="540" height="180"'
    ) in html
    assert "style=" not in html


def test_the_small_thumbnail_is_made_once_and_goes_with_the_image(
    alice_client, alice, bob_client, media_root, django_capture_on_commit_callbacks
):
    from PIL import Image as PILImage

    image = make_image("small", seen_by=alice)
    PILImage.new("RGB", (480, 240), "teal").save(media_root / image.thumbnail.name, "JPEG")

    response = alice_client.get(image.small_thumbnail_url)
    again = alice_client.get(image.small_thumbnail_url)

    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    data = b"".join(response.streaming_content)
    assert PILImage.open(io.BytesIO(data)).size == (240, 120)
    assert b"".join(again.streaming_content) == data
    assert bob_client.get(image.small_thumbnail_url).status_code == 404
    small = media_root / image.small_thumbnail_name
    assert small.exists() and len(list(small.parent.iterdir())) == 1
    with django_capture_on_commit_callbacks(execute=True):
        image.delete()
    assert not small.exists()


# -- deleting and downloading a selection ----------------------------------------------------


def test_deleting_selected_images_removes_their_files_when_nobody_else_has_them(
    alice_client, alice, media_root, django_capture_on_commit_callbacks
):
    job = make_job(alice, ["completed"])
    mine = job.items.get().image
    kept = make_image("kept", seen_by=alice)
    thumbnail = media_root / mine.thumbnail.name
    assert thumbnail.exists()

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(
            reverse("uploads:delete_images"),
            {"image": [mine.pk], "next": "/uploads/gallery/?faces=with"},
        )

    assert response.status_code == 302 and response["Location"] == "/uploads/gallery/?faces=with"
    assert messages_of(response) == ["Deleted 1 image from your gallery."]
    assert not Image.objects.filter(pk=mine.pk).exists() and not thumbnail.exists()
    assert job.items.get().image is None
    assert gallery_ids(alice_client) == [kept.pk]


def test_deleting_an_image_bob_also_found_only_takes_it_out_of_my_gallery(
    alice_client, alice, bob, bob_client, media_root, django_capture_on_commit_callbacks
):
    shared = make_image("shared", seen_by=alice)
    Sighting.objects.create(
        owner=bob, image=shared, source_url=shared.source_url, page_url="https://bob.example/"
    )

    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(reverse("uploads:delete_images"), {"image": [shared.pk]})

    assert gallery_ids(alice_client) == []
    assert alice_client.get(shared.get_absolute_url()).status_code == 404
    assert gallery_ids(bob_client) == [shared.pk]
    assert (media_root / shared.thumbnail.name).exists()
    assert bob_client.get(shared.thumbnail_url).status_code == 200


def test_bob_cannot_delete_my_images(bob_client, alice, bob):
    mine = make_image("mine", seen_by=alice)
    his = make_image("his", seen_by=bob)

    response = bob_client.post(reverse("uploads:delete_images"), {"image": [mine.pk]})
    both = bob_client.post(reverse("uploads:delete_images"), {"image": [mine.pk, his.pk]})

    assert messages_of(response)[0] == "Select at least one image first."
    assert messages_of(both)[-1] == "Deleted 1 image from your gallery."
    assert mine.sightings.filter(owner=alice).exists()
    assert not Image.objects.filter(pk=his.pk).exists()


def test_deleting_needs_a_selection_post_and_the_csrf_token(alice, alice_client):
    image = make_image("csrf", seen_by=alice)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)

    nothing = alice_client.post(reverse("uploads:delete_images"), {})
    assert messages_of(nothing) == ["Select at least one image first."]
    assert alice_client.get(reverse("uploads:delete_images")).status_code == 405
    assert strict.post(reverse("uploads:delete_images"), {"image": [image.pk]}).status_code == 403
    assert Image.objects.filter(pk=image.pk).exists()


def test_downloading_selected_images_streams_a_zip_of_their_pictures(
    alice_client, alice, bob, media_root
):
    first = make_image("first", seen_by=alice, source_url="https://photos.example/Cat%201.png")
    second = make_image("second", seen_by=alice)
    bobs = make_image("bobs", seen_by=bob)
    (media_root / second.thumbnail.name).write_bytes(b"\xff\xd8\xff second picture")

    response = alice_client.post(
        reverse("uploads:download_images"), {"image": [first.pk, second.pk, bobs.pk]}
    )

    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == 'attachment; filename="chirp-images.zip"'
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.testzip() is None
    assert sorted(archive.namelist()) == [f"{first.pk}-Cat 1.jpg", f"{second.pk}-second.jpg"]
    assert archive.read(f"{second.pk}-second.jpg") == b"\xff\xd8\xff second picture"
    assert archive.read(f"{first.pk}-Cat 1.jpg") == (media_root / first.thumbnail.name).read_bytes()


def test_bob_cannot_download_my_images(bob_client, alice):
    mine = make_image("mine", seen_by=alice)

    response = bob_client.post(reverse("uploads:download_images"), {"image": [mine.pk]})

    assert response.status_code == 302 and not getattr(response, "streaming", False)
    assert messages_of(response) == ["Select at least one image first."]


def test_under_asgi_the_zip_is_streamed_chunk_by_chunk(alice, media_root):
    # Django's ASGI handler would read a synchronous stream whole before sending a byte.
    images = [make_image(f"asgi{n}", seen_by=alice) for n in range(3)]
    client = AsyncClient()

    async def download():
        await client.aforce_login(alice)
        response = await client.post(
            reverse("uploads:download_images"), {"image": [image.pk for image in images]}
        )
        return response, [chunk async for chunk in response.streaming_content]

    response, chunks = async_to_sync(download)()

    assert response.status_code == 200 and response.is_async
    assert len(chunks) > 3
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert archive.namelist() == [f"{image.pk}-asgi{n}.jpg" for n, image in enumerate(images)][::-1]
