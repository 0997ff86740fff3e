"""The JSON API of channel imports: status codes, shapes, 404 for strangers, 409 dedupe."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from chirp.models import ApiToken
from imports.models import ImportJob

pytestmark = pytest.mark.django_db


def post_json(client, url: str, data: object, **extra):
    return client.post(url, json.dumps(data), content_type="application/json", **extra)


def test_signed_out_callers_get_401(client, alice):
    assert client.get("/api/channels/import").status_code == 401
    response = post_json(client, "/api/channels/import", {"channelUrl": "@x"})
    assert response.status_code == 401 and response.json() == {"error": "Authentication required."}


def test_starting_an_import(alice_client, alice):
    response = post_json(
        alice_client,
        "/api/channels/import",
        {"channelUrl": "https://www.youtube.com/@Fixture95/videos", "limit": 50, "onlyNew": True},
    )

    assert response.status_code == 201
    body = response.json()
    job = ImportJob.objects.get()
    assert body["jobId"] == job.pk and body["status"] == "pending"
    assert (job.owner, job.channel_url, job.limit, job.only_new, job.tab) == (
        alice,
        "https://www.youtube.com/@fixture95",
        50,
        True,
        "videos",
    )
    assert body["job"]["options"] == {
        "tab": "videos",
        "limit": 50,
        "onlyNew": True,
        "since": None,
        "quality": None,
    }


def test_an_open_import_is_not_duplicated_409(alice_client, alice):
    first = post_json(alice_client, "/api/channels/import", {"channelUrl": "@fixture95"})
    again = post_json(
        alice_client, "/api/channels/import", {"channelUrl": "youtube.com/@fixture95"}
    )

    assert first.status_code == 201
    assert again.status_code == 409
    assert again.json()["jobId"] == first.json()["jobId"]
    assert ImportJob.objects.count() == 1

    ImportJob.objects.update(status="completed", finished=timezone.now())
    third = post_json(alice_client, "/api/channels/import", {"channelUrl": "@fixture95"})
    assert third.status_code == 201  # the earlier one ended: a new import


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "channel"),
        ({"channelUrl": ""}, "channel"),
        ({"channelUrl": "https://example.com/@x"}, "channel"),
        ({"channelUrl": "@fixture95", "tab": "playlists"}, "tab"),
        ({"channelUrl": "@fixture95", "limit": 0}, "limit"),
        ({"channelUrl": "@fixture95", "limit": "many"}, "limit"),
    ],
)
def test_invalid_input_is_400_with_the_reason(alice_client, body, field):
    response = post_json(alice_client, "/api/channels/import", body)

    assert response.status_code == 400
    data = response.json()
    assert field in data["errors"] and data["error"]
    assert not ImportJob.objects.exists()


def test_a_body_that_is_not_json_is_400(alice_client):
    response = alice_client.post("/api/channels/import", "{nope", content_type="application/json")
    assert response.status_code == 400


def test_the_latest_import_and_one_import(alice_client, alice, bob, client, make_channel):
    assert alice_client.get("/api/channels/import").status_code == 404
    channel = make_channel(alice, videos=2)
    older = ImportJob.objects.get(owner=alice)
    newer = ImportJob.objects.create(
        owner=alice, channel=channel, channel_url=channel.youtube_url, status="enriching", total=8
    )

    latest = alice_client.get("/api/channels/import").json()
    assert latest["id"] == newer.pk and latest["channelTitle"] == channel.title
    assert (latest["status"], latest["total"], latest["progress"]) == ("enriching", 8, 0)
    one = alice_client.get(f"/api/channels/import/{older.pk}")
    assert one.status_code == 200 and one.json()["status"] == "completed"

    client.force_login(bob)
    assert client.get(f"/api/channels/import/{older.pk}").status_code == 404
    assert client.get("/api/channels/import").status_code == 404


def test_a_channels_jobs_paginated(alice_client, alice, bob, client, make_channel):
    channel = make_channel(alice, videos=1)
    for _ in range(24):
        ImportJob.objects.create(
            owner=alice, channel=channel, channel_url=channel.youtube_url, status="completed"
        )
    make_channel(bob)  # bob's own channel is not alice's business
    url = f"/api/channels/{channel.pk}/jobs"

    first = alice_client.get(url + "?page=1&limit=10").json()
    assert (first["total"], first["page"], first["totalPages"]) == (25, 1, 3)
    assert len(first["jobs"]) == 10
    ids = [job["id"] for job in first["jobs"]]
    assert ids == sorted(ids, reverse=True)  # newest first
    last = alice_client.get(url + "?page=3&limit=10").json()
    assert len(last["jobs"]) == 5
    beyond = alice_client.get(url + "?page=9&limit=10").json()
    assert beyond["jobs"] == [] and beyond["total"] == 25
    default = alice_client.get(url).json()
    assert (default["page"], len(default["jobs"])) == (1, 20)
    assert alice_client.get(url + "?limit=1000").status_code == 400
    assert alice_client.get(url + "?page=0").status_code == 400
    assert alice_client.get(url + "?page=x").status_code == 400

    client.force_login(bob)
    assert client.get(url).status_code == 404
    assert client.get(f"/api/channels/{channel.pk}/stats").status_code == 404
    assert client.get(f"/api/channels/{channel.pk}/jobs/active").status_code == 404


def test_active_jobs_and_stats(alice_client, alice, make_channel):
    channel = make_channel(alice, videos=4)
    channel.videos.filter(pk=channel.videos.first().pk).update(transcript_source="manual")
    running = ImportJob.objects.create(
        owner=alice, channel=channel, channel_url=channel.youtube_url, status="enriching"
    )
    ImportJob.objects.create(
        owner=alice, channel=channel, channel_url=channel.youtube_url + "/x", status="failed"
    )

    active = alice_client.get(f"/api/channels/{channel.pk}/jobs/active").json()
    assert [job["id"] for job in active["jobs"]] == [running.pk]
    stats = alice_client.get(f"/api/channels/{channel.pk}/stats").json()
    assert stats == {
        "channelId": channel.pk,
        "totalVideos": 4,
        "importedVideos": 4,
        "withTranscripts": 1,
        "failedVideos": 0,
        "activeJobs": 1,
        "failedJobs": 1,
        "cancelledJobs": 0,
        "successRate": 100.0,  # of the videos that ended: all 4 imported
    }


def test_an_api_token_works_without_a_session(client, alice):
    token = ApiToken(user=alice, name="script")
    key = token.set_new_key()
    token.save()

    response = post_json(
        client,
        "/api/channels/import",
        {"channelUrl": "@fixture95"},
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )

    assert response.status_code == 201
    assert ImportJob.objects.get().owner == alice
    bad = client.get("/api/channels/import", HTTP_AUTHORIZATION="Bearer chirp_wrong")
    assert bad.status_code == 401


def test_a_session_post_needs_the_csrf_token(alice):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)

    response = post_json(browser, "/api/channels/import", {"channelUrl": "@fixture95"})

    assert response.status_code == 403
    assert not ImportJob.objects.exists()
