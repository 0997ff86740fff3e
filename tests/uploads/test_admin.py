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


def test_the_job_list_shows_progress_as_one_small_bar_with_counts(staff_client, alice):
    make_job(alice, ["completed", "failed", "queued"], status="processing")

    response = staff_client.get(reverse("admin:uploads_scrapejob_changelist"))

    html = response.content.decode()
    assert response.status_code == 200
    assert (
        '<span class="chirp-progress" title="2/3 (67%): 1 done, 0 skipped, 1 failed, 0 cancelled">'
        '<progress value="2" max="3"></progress>2/3 <span class="chirp-failed">1 failed</span>'
        "</span>"
    ) in html
    assert "chirp-admin.css" in html  # the stylesheet that keeps each row on one line
    headers = response.context["cl"].list_display
    assert headers == ["action_checkbox", "id", "page", "owner", "status", "progress", "created_at"]
    for query in ("status__exact=processing", "owner__id__exact=", "created__gte="):
        assert query in html  # the filters


def test_a_long_page_url_is_cut_in_the_list_and_whole_in_its_tooltip(staff_client, alice):
    url = "https://photos.example/" + "a" * 200
    make_job(alice, url=url)

    html = staff_client.get(reverse("admin:uploads_scrapejob_changelist")).content.decode()

    assert (
        f'<span class="chirp-cut" title="{url}">https://photos.example/{"a" * 16}…</span>' in html
    )


def test_a_job_cannot_be_added_or_changed_through_a_form(staff_client, alice):
    job = make_job(alice, ["completed", "failed"], status="completed", attempts=1)
    before = ScrapeJob.objects.filter(pk=job.pk).values().get()
    change_url = reverse("admin:uploads_scrapejob_change", args=[job.pk])

    page = staff_client.get(change_url)
    posted = staff_client.post(
        change_url,
        {"status": "pending", "done": "99", "failed": "0", "attempts": "0", "url": "https://x/"},
    )
    added = staff_client.post(
        reverse("admin:uploads_scrapejob_add"), {"url": "https://x/", "owner": alice.pk}
    )

    assert page.status_code == 200 and 'name="done"' not in page.content.decode()
    assert posted.status_code == 403 and added.status_code == 403
    assert ScrapeJob.objects.filter(pk=job.pk).values().get() == before
    assert ScrapeJob.objects.count() == 1
    listing = staff_client.get(reverse("admin:uploads_scrapejob_changelist")).content.decode()
    assert reverse("admin:uploads_scrapejob_add") not in listing


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
    assert "2 failed images sent back to the queue." in messages
    assert "1 job had nothing to retry or was still running." in messages


def test_cancel_action_says_which_jobs_it_skipped_and_why(staff_client, alice):
    job = make_job(alice, ["queued", "queued"], status="processing")
    done = make_job(alice, ["completed"], status="completed")
    gone = make_job(alice, ["cancelled"], status="cancelled")

    response = run_action(staff_client, "cancel", [job, done, gone])

    job.refresh_from_db()
    assert (job.status, job.cancelled) == ("cancelled", 2)
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "1 job cancelled.",
        f"2 jobs had already ended and were not cancelled: #{done.pk} already completed, "
        f"#{gone.pk} already cancelled.",
    ]


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
