"""The Uploads job list: new jobs arrive live at the top of the first page, whatever started
them; rows say what the page is (its title, escaped), its URL, the job's number and when."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from chirp import engine
from chirp.models import ApiToken
from tests.sse import stored_events
from uploads.models import ScrapeJob

from .conftest import make_job

pytestmark = pytest.mark.django_db

PAGE_URL = "http://127.0.0.1:8123/gallery"
CREATED = "scrapejob-created"


def start_by_page(alice, alice_client):
    alice_client.post("/uploads/", {"url": PAGE_URL})


def start_by_api(alice, alice_client):
    token = ApiToken(user=alice, name="script")
    key = token.set_new_key()
    token.save()
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    body = json.dumps({"url": PAGE_URL})
    assert client.post("/api/scrape-jobs", body, content_type="application/json").status_code == 202


def start_in_code(alice, alice_client):
    # The admin, a shell, a schedule: any row created, not only the views' path.
    ScrapeJob.objects.create(owner=alice, url=PAGE_URL)


@pytest.mark.parametrize("start", [start_by_page, start_by_api, start_in_code])
def test_a_new_job_is_sent_to_its_owner_as_a_row_for_the_top_of_the_list(
    alice, bob, alice_client, django_capture_on_commit_callbacks, start
):
    with django_capture_on_commit_callbacks(execute=True):
        start(alice, alice_client)
    job = ScrapeJob.objects.get(owner=alice)
    [(_, html)] = stored_events(alice, CREATED)
    assert re.match(rf'\s*<tr id="{job.dom_id}" sse-swap="{job.dom_id}"', html)
    assert PAGE_URL in html and f"#{job.pk}" in html
    assert stored_events(bob) == []


def test_only_the_first_page_takes_new_rows(alice, alice_client):
    for _ in range(21):
        make_job(alice)
    first = alice_client.get("/uploads/").content.decode()
    second = alice_client.get("/uploads/?page=2").content.decode()
    assert re.search(r'<tbody id="jobs" sse-swap="scrapejob-created" hx-swap="afterbegin"', first)
    assert 'data-page-size="20"' in first
    assert '<tbody id="jobs">' in second and CREATED not in second


def test_a_row_shows_the_page_title_escaped_beside_its_url_and_number(alice, alice_client):
    job = make_job(alice, page_title="<script>alert(1)</script> Holiday & friends")
    html = alice_client.get("/uploads/").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Holiday &amp; friends" in html
    assert "<script>alert(1)" not in html
    assert f'<span class="job-number">#{job.pk}</span>' in html
    assert "https://photos.example/" in html


def test_a_long_address_may_wrap_after_its_slashes_and_is_escaped_first(alice, alice_client):
    make_job(alice, url="https://photos.example/2024/team.html?who=<b>&all=1")
    html = alice_client.get("/uploads/").content.decode()
    # The line breaks after a slash or before the query, never inside "team.html"; the
    # address's own characters stay text.
    shown = "https://photos.example/<wbr>2024/<wbr>team.html<wbr>?who=&lt;b&gt;&amp;all=1"
    assert (
        f'class="url" title="https://photos.example/2024/team.html?who=&lt;b&gt;&amp;all=1">{shown}</a>'
        in html
    )
    assert "<b>" not in html


@pytest.mark.parametrize(
    ("age", "said"),
    [
        (timedelta(seconds=5), "just now"),
        (timedelta(seconds=59), "just now"),
        (timedelta(seconds=61), "1 minute ago"),
        (timedelta(minutes=2, seconds=30), "2 minutes ago"),
        (timedelta(hours=3, minutes=10), "3 hours ago"),
        (timedelta(days=2, hours=1), "2 days ago"),
    ],
)
def test_a_rows_time_reads_like_a_person_says_it(alice, alice_client, age, said):
    make_job(alice, created=timezone.now() - age)
    html = alice_client.get("/uploads/").content.decode()
    assert f">{said}</time>" in html
    assert "0 minutes" not in html


def test_retrying_says_how_many_images_in_words(alice, alice_client):
    one = make_job(alice, ["failed"], status="completed")
    response = alice_client.post(f"/uploads/jobs/{one.pk}/retry/", follow=True)
    assert "Retrying 1 failed image." in response.content.decode()
    three = make_job(alice, ["failed"] * 3, status="completed")
    response = alice_client.post(f"/uploads/jobs/{three.pk}/retry/", follow=True)
    assert "Retrying 3 failed images." in response.content.decode()
    assert "(s)" not in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_the_page_title_is_kept_when_the_page_is_fetched(alice, alice_client, local_http_server):
    hostile = "<title>\n  Summer &lt;script&gt;alert(1)&lt;/script&gt;\n  photos </title>"
    local_http_server.respond(
        "/page.html", f"<html><head>{hostile}</head><img src='/a.jpg'>".encode()
    )
    local_http_server.respond("/a.jpg", b"not a picture", content_type="image/jpeg")
    job = ScrapeJob.start(alice, local_http_server.url("/page.html"))
    engine.run_lane("uploads")
    job.refresh_from_db()
    assert job.page_title == "Summer <script>alert(1)</script> photos"
    html = alice_client.get("/uploads/").content.decode()
    assert "Summer &lt;script&gt;alert(1)&lt;/script&gt; photos" in html


# -- back links ----------------------------------------------------------------------------------


def test_an_image_opened_from_a_job_links_back_to_the_job(alice, alice_client):
    job = make_job(alice, ["completed"])
    image = job.items.get().image
    items = alice_client.get(f"/uploads/jobs/{job.pk}/").content.decode()
    link = f"/uploads/images/{image.pk}/?from=/uploads/jobs/{job.pk}/"
    assert f'href="{link}"' in items
    page = alice_client.get(link).content.decode()
    assert f'<a href="/uploads/jobs/{job.pk}/" class="back-link">← Job #{job.pk}</a>' in page


def test_an_image_opened_from_the_gallery_links_back_to_the_gallery(alice, alice_client):
    job = make_job(alice, ["completed"])
    page = alice_client.get(job.items.get().image.get_absolute_url()).content.decode()
    assert '<a href="/uploads/gallery/" class="back-link">← Gallery</a>' in page


@pytest.mark.parametrize(
    "elsewhere",
    ["https://evil.example/", "//evil.example/uploads/", "/\\evil.example", "javascript:alert(1)"],
)
def test_a_back_link_never_leaves_the_site(alice, alice_client, elsewhere):
    job = make_job(alice, ["completed"])
    image = job.items.get().image
    page = alice_client.get(image.get_absolute_url(), {"from": elsewhere}).content.decode()
    assert '<a href="/uploads/gallery/" class="back-link">← Gallery</a>' in page
    assert "evil" not in page and "javascript:" not in page
