"""Bad input answers 400 with a message a person can read, and the JSON APIs answer JSON
whatever fails: unreadable bodies, unknown URLs, wrong methods, a crash in a view."""

from __future__ import annotations

import json
import logging

import pytest
from django.test import Client

from chirp.models import ApiToken
from imports.models import Channel, ImportJob
from uploads.models import ScrapeJob

pytestmark = pytest.mark.django_db

APIS = ["/api/channels/import", "/api/scrape-jobs"]


@pytest.fixture
def token_client(alice) -> Client:
    token = ApiToken(user=alice, name="script")
    key = token.set_new_key()
    token.save()
    return Client(HTTP_AUTHORIZATION=f"Bearer {key}", raise_request_exception=False)


def post_raw(client: Client, url: str, body: bytes | str):
    return client.post(url, body, content_type="application/json")


@pytest.mark.parametrize("url", APIS)
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[" * 100_000, "nested too deeply"),
        ('{"a": ' * 100_000, "nested too deeply"),
        (b'{"channelUrl": "\xc3\x28"}', "UTF-8"),
        ("{nope", "not valid JSON"),
        ('["@fixture95"]', "must be a JSON object"),
        ('"@fixture95"', "must be a JSON object"),
    ],
)
def test_an_unreadable_json_body_is_400_with_the_reason(token_client, url, body, message):
    response = post_raw(token_client, url, body)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert message in response.json()["error"]
    assert not ImportJob.objects.exists() and not ScrapeJob.objects.exists()


@pytest.mark.parametrize(
    "channel",
    [
        "[youtube.com/@x](https://youtube.com/@x)",
        "http://[::1",
        "/[x",
        ["@fixture95"],
        {"url": "@fixture95"},
    ],
)
def test_a_channel_that_is_not_a_link_is_400_with_the_reason(token_client, channel):
    response = post_raw(token_client, "/api/channels/import", json.dumps({"channelUrl": channel}))

    assert response.status_code == 400
    data = response.json()
    assert data["error"] and "channel" in data["errors"]
    assert not ImportJob.objects.exists()


@pytest.mark.parametrize(
    ("channel", "message"),
    [
        ("[youtube.com/@x](https://youtube.com/@x)", "That is not a link Chirp can read"),
        ("http://[::1", "That is not a link Chirp can read"),
    ],
)
def test_the_channel_form_shows_why_a_pasted_link_is_refused(alice_client, channel, message):
    response = alice_client.post("/channels/add/", {"channel": channel})

    assert response.status_code == 200  # the form again, with the reason
    assert message in response.content.decode()
    assert not ImportJob.objects.exists()


def test_an_unknown_api_url_is_a_json_404(token_client, alice_client):
    for client in (token_client, alice_client):
        response = client.get("/api/no-such-thing")
        assert response.status_code == 404
        assert response.json() == {"error": "Not found."}


def test_a_wrong_method_on_the_api_is_a_json_405(token_client):
    response = token_client.put("/api/channels/import", "{}", content_type="application/json")

    assert response.status_code == 405
    assert response.json() == {"error": "Method not allowed."}
    assert response["Allow"] == "GET, POST"


def test_a_body_django_refuses_is_json_too(token_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = post_raw(token_client, "/api/channels/import", json.dumps({"x": "y" * 2000}))

    assert response.status_code == 400
    assert response.json() == {"error": "Bad request."}


def test_a_crash_in_an_api_view_is_a_json_500_and_logged(token_client, alice, monkeypatch, caplog):
    channel = Channel.objects.create(youtube_id="UC" + "x" * 22, title="Crashy")
    ImportJob.objects.create(owner=alice, channel=channel)

    def explode(self, user):
        raise RuntimeError("the stats broke")

    monkeypatch.setattr(Channel, "stats_for", explode)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = token_client.get(f"/api/channels/{channel.pk}/stats")

    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": "Internal error"}
    assert "the stats broke" in caplog.text  # the traceback is logged, not shown


def test_pages_outside_the_api_keep_their_html_errors(alice_client):
    response = alice_client.get("/channels/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
