"""Who sees a channel of the shared catalog: a user whose own import has listed it, nobody else.

Alice imports a channel; Bob, who starts an import of it, learns nothing of it (not even that
it exists) until YouTube has answered his own listing; if his listing fails, he never does.
"""

from __future__ import annotations

import importlib
import json

import pytest
from django.test import Client

from chirp import engine
from imports.models import Channel, ImportJob
from imports.youtube import parse_channel_input
from tests.sse import stored_events

HTMX = {"HTTP_HX_REQUEST": "true"}


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def start_over_api(client: Client, channel_url: str):
    return client.post(
        "/api/channels/import", json.dumps({"channelUrl": channel_url}), "application/json"
    )


def assert_hidden(client: Client, channel: Channel) -> None:
    """Every page, search and API answer about `channel`: as if it did not exist."""
    listing = client.get("/channels/").content.decode()
    assert channel.title not in listing and f'id="{channel.dom_id}"' not in listing
    search = client.get("/channels/", {"q": channel.title}).content.decode()
    assert f'id="{channel.dom_id}"' not in search and "No channel matches" in search
    assert client.get(f"/channels/{channel.pk}/").status_code == 404
    assert client.get(f"/channels/{channel.pk}/", {"q": "video"}, **HTMX).status_code == 404
    for video in channel.videos.all():
        assert client.get(f"/channels/videos/{video.pk}/").status_code == 404
    for path in ("stats", "jobs", "jobs/active"):
        response = client.get(f"/api/channels/{channel.pk}/{path}")
        assert response.status_code == 404 and response.json() == {"error": "Not found."}


def assert_shown(client: Client, channel: Channel) -> None:
    listing = client.get("/channels/").content.decode()
    assert channel.title in listing and f'id="{channel.dom_id}"' in listing
    search = client.get("/channels/", {"q": channel.title}).content.decode()
    assert f'id="{channel.dom_id}"' in search
    assert client.get(f"/channels/{channel.pk}/").status_code == 200
    for video in channel.videos.all():
        assert client.get(f"/channels/videos/{video.pk}/").status_code == 200
    for path in ("stats", "jobs", "jobs/active"):
        assert client.get(f"/api/channels/{channel.pk}/{path}").status_code == 200


def events_about(user, channel: Channel) -> list[tuple[str, str]]:
    """The live events `user` received that show something of `channel`."""
    ids = {channel.dom_id, channel.stats_dom_id, *(v.dom_id for v in channel.videos.all())}
    return [
        (name, html)
        for name, html in stored_events(user)
        if name in ids or channel.title in html or f"/channels/{channel.pk}/" in html
    ]


def run_import(owner, text: str, **options) -> ImportJob:
    job, created = ImportJob.start(owner, parse_channel_input(text), **options)
    assert created
    engine.run_lane("imports")
    job.refresh_from_db()
    return job


# -- starting an import: nothing is disclosed before anything is fetched ------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("reference", ["@shared", "youtube.com/@Shared/videos", "channel URL"])
def test_the_api_answer_for_a_channel_others_imported_is_an_unknown_channels(
    alice, bob, make_channel, reference
):
    channel = make_channel(alice, videos=3, handle="@shared", title="Alice's Shared Channel")
    if reference == "channel URL":  # also the URL Alice's own import was started with
        reference = channel.youtube_url
    bobs = client_for(bob)

    theirs = start_over_api(bobs, reference)
    unknown = start_over_api(bobs, "@nobody-imported-this")

    assert theirs.status_code == unknown.status_code == 201
    job = theirs.json()["job"]
    assert job["channelId"] is None and job["channelTitle"] is None
    assert "Alice" not in theirs.content.decode()

    def shape(answer) -> dict:
        body = answer.json()
        ids = ("id", "channelUrl", "createdAt", "updatedAt")
        return {
            **body,
            "jobId": None,
            "job": {k: v for k, v in body["job"].items() if k not in ids},
        }

    assert shape(theirs) == shape(unknown)
    # Still nothing, however Bob asks (his import is not linked to the channel).
    latest = bobs.get("/api/channels/import").json()
    assert latest["channelId"] is None and latest["channelTitle"] is None
    one = bobs.get(f"/api/channels/import/{job['id']}").json()
    assert one["channelId"] is None and one["channelTitle"] is None
    assert_hidden(bobs, channel)


@pytest.mark.django_db
def test_the_add_channel_form_for_a_channel_others_imported_shows_nothing_of_it(
    alice, bob, make_channel
):
    channel = make_channel(alice, videos=2, handle="@shared", title="Alice's Shared Channel")
    bobs = client_for(bob)

    dialog = bobs.post("/channels/add/", {"channel": "@shared", "tab": "videos"}, **HTMX)
    page = bobs.post("/channels/add/", {"channel": channel.youtube_url, "tab": "videos"})

    html = dialog.content.decode()
    assert dialog.status_code == 200 and 'class="import-job"' in html
    job_page = bobs.get(page["Location"]).content.decode()
    for shown in (html, job_page):
        assert "Alice&#x27;s Shared Channel" not in shown
        assert f"/channels/{channel.pk}/" not in shown  # no "Open channel" link
    assert_hidden(bobs, channel)


@pytest.mark.django_db
def test_a_reimport_of_a_channel_i_see_names_it_at_once(alice, make_channel):
    channel = make_channel(alice, videos=2, handle="@mine", title="Mine")

    answer = start_over_api(client_for(alice), "@mine").json()

    assert (answer["job"]["channelId"], answer["job"]["channelTitle"]) == (channel.pk, "Mine")


# -- the listing decides: failed, nothing; listed, everything -----------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_channel_shows_once_my_own_import_has_listed_it(alice, bob, fake_youtube):
    fake_youtube.add_channel("shared", videos=5)
    first = run_import(alice, "@shared", limit=2)
    channel = Channel.objects.get()
    assert first.status == "completed" and channel.videos.count() == 2
    bobs = client_for(bob)

    # Bob's import: YouTube does not answer his listing.
    outage = fake_youtube.add_fault(kinds={"channel_page", "browse"}, status=404)
    failed = run_import(bob, "@shared")

    assert failed.status == "failed" and failed.channel is None
    assert failed.as_json()["channelId"] is None and failed.as_json()["channelTitle"] is None
    assert_hidden(bobs, channel)
    assert events_about(bob, channel) == []

    # Alice imports the rest: everyone who sees the channel watches its videos change; not Bob.
    outage.times = outage.hits
    before = set(channel.videos.values_list("pk", flat=True))
    run_import(alice, "@shared")
    new = channel.videos.exclude(pk__in=before)
    assert new.count() == 3
    alice_heard = {name for name, _ in stored_events(alice)}
    assert {video.dom_id for video in new} <= alice_heard
    assert events_about(bob, channel) == []
    assert_hidden(bobs, channel)

    # Bob's own import lists it: now he sees it, everywhere.
    listed = run_import(bob, "youtube.com/@shared")

    assert listed.status == "completed" and listed.channel == channel
    body = bobs.get(f"/api/channels/import/{listed.pk}").json()
    assert (body["channelId"], body["channelTitle"]) == (channel.pk, channel.title)
    assert_shown(bobs, channel)
    assert bobs.get(f"/api/channels/{channel.pk}/stats").json()["totalVideos"] == 5
    assert any(name == channel.stats_dom_id for name, _ in stored_events(bob))


@pytest.mark.django_db(transaction=True)
def test_only_new_videos_counts_from_my_own_imports_not_from_others(alice, bob, fake_youtube):
    fake_youtube.add_channel("shared", videos=4)
    run_import(alice, "@shared")

    job = run_import(bob, "@shared", only_new=True)

    # Nothing new "since the last import" would tell Bob that someone imported it before.
    assert (job.status, job.total, job.skipped) == ("completed", 4, 4)
    assert "4 already there" in job.finished_summary()
    again = run_import(bob, "@shared", only_new=True)
    assert (again.status, again.total) == ("completed", 0)  # his own import: nothing new


@pytest.mark.django_db(transaction=True)
def test_my_failed_listing_does_not_open_the_channel_page(alice, bob, fake_youtube):
    fake_youtube.add_channel("flaky", videos=2)
    run_import(bob, "@flaky")
    channel = Channel.objects.get()
    fake_youtube.add_fault(kinds={"channel_page", "browse"}, status=404)
    alices = client_for(alice)

    job = run_import(alice, "https://www.youtube.com/@flaky")

    assert job.status == "failed" and job.channel is None
    html = alices.get(f"/channels/imports/{job.pk}/").content.decode()
    assert 'data-status="failed"' in html
    assert "Open channel" not in html and f"/channels/{channel.pk}/" not in html
    assert alices.get(f"/channels/{channel.pk}/").status_code == 404
    assert events_about(alice, channel) == []


@pytest.mark.django_db(transaction=True)
def test_an_import_waiting_for_its_turn_shows_nothing_and_hears_nothing(alice, bob, fake_youtube):
    fake_youtube.add_channel("watched", videos=2)
    alices = run_import(alice, "@watched")
    channel = Channel.objects.get()

    bobs, _ = ImportJob.start(bob, parse_channel_input("@watched"))

    assert bobs.status == "pending" and bobs.channel is None
    assert_hidden(client_for(bob), channel)
    assert list(Channel.viewer_ids(channel.pk)) == [alice.pk]
    assert alices.watchers() == ()


# -- imports linked before this rule ------------------------------------------------------------


@pytest.mark.django_db
def test_the_migration_unlinks_the_imports_that_never_listed(alice, bob, make_channel):
    from django.apps import apps

    migration = importlib.import_module("imports.migrations.0008_unlink_imports_that_never_listed")
    channel = make_channel(alice, videos=1)
    url = channel.youtube_url
    # Linked at their start by the old rule: Bob's failed and pending imports never listed it.
    failed = ImportJob.objects.create(owner=bob, channel=channel, channel_url=url, status="failed")
    pending = ImportJob.objects.create(owner=bob, channel=channel, channel_url=url + "/x")
    # Alice's re-import that failed: she listed the channel before, it stays hers.
    again = ImportJob.objects.create(owner=alice, channel=channel, channel_url=url, status="failed")
    assert Channel.objects.visible_to(bob).exists()

    migration.unlink_unlisted_imports(apps, None)

    assert not Channel.objects.visible_to(bob).exists()
    assert ImportJob.objects.filter(pk__in=[failed.pk, pending.pk], channel=None).count() == 2
    assert ImportJob.objects.filter(owner=alice, channel=channel).count() == 2
    assert again.pk in ImportJob.objects.filter(channel=channel).values_list("pk", flat=True)
    assert list(Channel.objects.visible_to(alice)) == [channel]
