"""The admin of scrape jobs, images and API tokens, as staff sees it."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from chirp.models import ApiToken
from uploads.models import ScrapeJob

from .conftest import make_image, make_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def run_action(client, action: str, jobs: list[ScrapeJob]):
    return client.post(
        reverse("admin:uploads_scrapejob_changelist"),
        {"action": action, "_selected_action": [job.pk for job in jobs]},
        follow=True,
    )


def test_the_job_list_shows_progress_and_filters(staff_client, alice):
    make_job(alice, ["completed", "failed", "queued"], status="processing")

    response = staff_client.get(reverse("admin:uploads_scrapejob_changelist"))

    html = response.content.decode()
    assert response.status_code == 200
    assert "2/3 (67%): 1 new, 0 skipped, 1 failed" in html
    for query in ("status__exact=processing", "owner__id__exact=", "created__gte="):
        assert query in html  # the filters


def test_a_job_shows_its_items_inline(staff_client, alice):
    job = make_job(alice, ["completed", "failed"], status="completed")

    response = staff_client.get(reverse("admin:uploads_scrapejob_change", args=[job.pk]))

    html = response.content.decode()
    for item in job.items.all():
        assert item.source_url in html
    assert "The server answered 404 Not Found" in html


def test_retry_failed_action(staff_client, alice):
    job = make_job(alice, ["completed", "failed", "failed"], status="completed")
    running = make_job(alice, ["failed"], status="processing")

    response = run_action(staff_client, "retry_failed", [job, running])

    job.refresh_from_db()
    assert (job.status, job.failed) == ("pending", 0)
    assert job.items.filter(status="queued").count() == 2
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert "2 failed image(s) sent back to the queue." in messages
    assert "1 job(s) had nothing to retry or were still running." in messages


def test_cancel_action(staff_client, alice):
    job = make_job(alice, ["queued", "queued"], status="processing")
    done = make_job(alice, ["completed"], status="completed")

    response = run_action(staff_client, "cancel", [job, done])

    job.refresh_from_db()
    assert (job.status, job.cancelled) == ("cancelled", 2)
    assert "1 job(s) cancelled." in [str(m) for m in get_messages(response.wsgi_request)]


def test_images_show_their_thumbnail_and_faces(staff_client):
    image = make_image("face", faces=2)

    listing = staff_client.get(reverse("admin:uploads_image_changelist")).content.decode()
    change = staff_client.get(
        reverse("admin:uploads_image_change", args=[image.pk])
    ).content.decode()
    with_faces = staff_client.get(
        reverse("admin:uploads_image_changelist"), {"faces": "with"}
    ).content.decode()

    assert f'<img src="{image.thumbnail_url}"' in listing
    assert "400 x 200" in listing
    assert change.count('class="form-row has_original"') == 2  # the faces, inline
    assert "80x100 at (10, 20)" in change and "80x100 at (110, 20)" in change
    assert image.source_url in with_faces


def test_creating_an_api_token_shows_its_key_once(staff_client, alice):
    response = staff_client.post(
        reverse("admin:chirp_apitoken_add"), {"user": alice.pk, "name": "backup"}, follow=True
    )

    token = ApiToken.objects.get()
    [message] = [str(m) for m in get_messages(response.wsgi_request) if "key is" in str(m)]
    key = message.split("key is ")[1].split(" ")[0]
    assert ApiToken.user_for_key(key) == alice
    assert token.hint and key.startswith(token.hint)
