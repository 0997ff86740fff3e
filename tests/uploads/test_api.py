"""The JSON API of scrape jobs, by session and by token: alice owns, bob is the stranger."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.utils import timezone

from chirp.models import ApiToken
from uploads.models import ScrapeJob

from .conftest import make_job

pytestmark = pytest.mark.django_db

JOBS = "/api/scrape-jobs"
PAGE_URL = "http://127.0.0.1:8123/gallery"


@pytest.fixture
def alice_key(alice) -> str:
    token = ApiToken(user=alice, name="script")
    key = token.set_new_key()
    token.save()
    return key


@pytest.fixture
def token_client(alice_key) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {alice_key}", enforce_csrf_checks=True)


def post_json(client: Client, url: str, data: object, **extra):
    return client.post(url, json.dumps(data), content_type="application/json", **extra)


def test_creating_a_job_answers_202_with_the_job(token_client, alice):
    response = post_json(token_client, JOBS, {"url": PAGE_URL})

    assert response.status_code == 202
    job = ScrapeJob.objects.get()
    body = response.json()
    assert body["id"] == job.pk and job.owner == alice
    assert (body["url"], body["status"], body["warning"]) == (PAGE_URL, "pending", None)
    assert body["created_at"]


def test_creating_a_job_for_a_page_scraped_before_warns(token_client, alice):
    make_job(alice, ["completed"], url=PAGE_URL)

    body = post_json(token_client, JOBS, {"url": PAGE_URL}).json()

    assert body["warning"].startswith("This page was scraped")
    assert ScrapeJob.objects.count() == 2


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({}, "Paste the address of a web page."),
        ({"url": "http://10.0.0.7/"}, "This address points inside the server's network"),
        ({"url": "javascript:alert(1)"}, "Enter a valid URL."),
    ],
)
def test_an_invalid_job_answers_400_with_the_reason(token_client, payload, message):
    response = post_json(token_client, JOBS, payload)

    assert response.status_code == 400
    [error] = response.json()["errors"]["url"]
    assert error["message"].startswith(message)
    assert not ScrapeJob.objects.exists()


def test_a_body_that_is_not_a_json_object_answers_400(token_client):
    response = token_client.post(JOBS, "[1, 2", content_type="application/json")
    assert response.status_code == 400 and "JSON object" in response.json()["error"]


def test_listing_gives_my_jobs_newest_first_with_counts(token_client, alice, bob):
    older = make_job(alice, ["completed", "skipped", "failed"], status="completed")
    newer = make_job(alice, ["queued"], status="processing")
    make_job(bob, ["completed"])

    body = token_client.get(JOBS).json()

    assert [job["id"] for job in body["jobs"]] == [newer.pk, older.pk]
    assert body["count"] == 2
    listed = body["jobs"][1]
    assert {key: listed[key] for key in ("total_images", "processed_count")} == {
        "total_images": 3,
        "processed_count": 1,
    }
    assert (listed["skipped_count"], listed["failed_count"], listed["percent"]) == (1, 1, 100)


def test_the_detail_has_the_items(token_client, alice):
    job = make_job(alice, ["completed", "failed"], status="completed")
    done, failed = job.items.order_by("pk")

    body = token_client.get(f"{JOBS}/{job.pk}").json()

    assert body["id"] == job.pk
    assert body["items"] == [
        {
            "id": done.pk,
            "source_url": done.source_url,
            "status": "completed",
            "error": "",
            "image_id": done.image_id,
            "face_count": 1,
        },
        {
            "id": failed.pk,
            "source_url": failed.source_url,
            "status": "failed",
            "error": "The server answered 404 Not Found",
            "image_id": None,
            "face_count": None,
        },
    ]


def test_retry_sends_the_failed_items_back(token_client, alice):
    job = make_job(alice, ["completed", "failed"], status="completed")

    response = token_client.post(f"{JOBS}/{job.pk}/retry")

    assert response.status_code == 202
    assert (response.json()["retried"], response.json()["status"]) == (1, "pending")
    assert token_client.post(f"{JOBS}/{job.pk}/retry").status_code == 409  # nothing left


def test_delete_removes_the_job_but_not_its_images(token_client, alice):
    job = make_job(alice, ["completed"], status="completed")
    image = job.items.get().image

    assert token_client.delete(f"{JOBS}/{job.pk}").status_code == 204

    assert not ScrapeJob.objects.exists()
    image.refresh_from_db()


def test_a_running_job_is_not_deleted(token_client, alice):
    job = make_job(
        alice, ["queued"], status="processing", worker="host:1:abc", heartbeat=timezone.now()
    )
    assert token_client.delete(f"{JOBS}/{job.pk}").status_code == 409
    assert ScrapeJob.objects.filter(pk=job.pk).exists()


def test_another_users_job_is_404_everywhere(alice, bob):
    job = make_job(alice, ["failed"], status="completed")
    token = ApiToken(user=bob, name="bob's")
    key = token.set_new_key()
    token.save()
    stranger = Client(HTTP_AUTHORIZATION=f"Bearer {key}")

    assert stranger.get(f"{JOBS}/{job.pk}").status_code == 404
    assert stranger.post(f"{JOBS}/{job.pk}/retry").status_code == 404
    assert stranger.delete(f"{JOBS}/{job.pk}").status_code == 404
    assert stranger.get(JOBS).json()["jobs"] == []
    assert ScrapeJob.objects.get().failed == 1


def test_without_credentials_the_api_answers_401(client, alice):
    assert client.get(JOBS).status_code == 401
    assert client.post(JOBS, {"url": PAGE_URL}).json() == {"error": "Authentication required."}


def test_a_wrong_token_answers_401(alice, alice_key):
    for header in ("Bearer chirp_nope", f"Token {alice_key}", "Bearer"):
        response = Client(HTTP_AUTHORIZATION=header).get(JOBS)
        assert response.status_code == 401, header
        assert response.json() == {"error": "Invalid API token."}


def test_a_token_of_a_deactivated_user_stops_working(alice, alice_key, token_client):
    alice.is_active = False
    alice.save()
    assert token_client.get(JOBS).status_code == 401


def test_the_token_records_its_last_use(token_client, alice):
    token_client.get(JOBS)
    assert ApiToken.objects.get().last_used is not None


def test_only_the_tokens_hash_is_stored(alice, alice_key):
    token = ApiToken.objects.get()
    assert alice_key not in (token.key_hash, token.hint)
    assert alice_key.startswith(token.hint)


def test_a_session_needs_the_csrf_token_to_change_anything(alice):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)

    refused = post_json(browser, JOBS, {"url": PAGE_URL})
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]
    assert browser.get(JOBS).status_code == 200  # reading needs no token

    browser.get("/uploads/")  # sets the CSRF cookie, as a page visit does
    token = browser.cookies["csrftoken"].value
    accepted = post_json(browser, JOBS, {"url": PAGE_URL}, HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 202


def test_a_token_needs_no_csrf_token(token_client):
    assert post_json(token_client, JOBS, {"url": PAGE_URL}).status_code == 202


def test_other_methods_answer_405(token_client, alice):
    job = make_job(alice)
    assert token_client.put(JOBS).status_code == 405
    response = token_client.post(f"{JOBS}/{job.pk}")
    assert response.status_code == 405 and response["Allow"] == "GET, DELETE"
