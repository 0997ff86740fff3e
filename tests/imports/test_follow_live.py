"""A followed channel's new upload, seen live: the Following page's list and "last checked"
line, the dashboard's "New from channels you follow", and seed 002's JSON events
(`video:discovered`, `backfill:started`, `backfill:completed`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from chirp import engine
from imports import following
from imports.models import Channel, Follow, ImportJob
from imports.youtube import parse_channel_input
from tests.sse import stored_events

pytestmark = pytest.mark.django_db(transaction=True)


def run_import(owner, text: str, **options) -> ImportJob:
    job, _ = ImportJob.start(owner, parse_channel_input(text), **options)
    engine.run_lane("imports")
    job.refresh_from_db()
    return job


@pytest.fixture
def imported(alice, fake_youtube):
    """@watched, 3 videos, imported by alice: (fake channel, Channel)."""
    fake = fake_youtube.add_channel("watched", videos=3, title="Watched")
    run_import(alice, "@watched")
    return fake, Channel.objects.get()


def client_of(user) -> Client:
    """A client of its own (alice_client is the `client` fixture: logging it in as bob would
    make it bob's)."""
    client = Client()
    client.force_login(user)
    return client


def events(user, name: str) -> list[str]:
    return [data for _, data in stored_events(user, name)]


def test_a_new_upload_goes_on_top_of_the_following_page_and_its_check_line_moves(
    alice, alice_client, fake_youtube, imported
):
    fake, channel = imported
    Follow.start(alice, channel)
    page = alice_client.get("/channels/following/").content.decode()
    # The channel's newest videos take the channel page's event, on top.
    assert f'sse-swap="{channel.dom_id}-video-created" hx-swap="afterbegin"' in page
    assert f'sse-swap="{channel.dom_id}-check"' in page
    assert "Not checked yet" in page

    new = fake_youtube.upload(fake, 1)
    following.poll_channel(channel)

    cards = events(alice, f"{channel.dom_id}-video-created")
    assert len(cards) == 1 and new[0].title in cards[0]
    checks = events(alice, f"{channel.dom_id}-check")
    assert len(checks) == 1 and "Last checked" in checks[0] and "by poll (rss)" in checks[0]
    assert f'id="{channel.dom_id}-check"' in checks[0]


def test_a_failed_check_shows_its_error_live(alice, fake_youtube, imported):
    _, channel = imported
    Follow.start(alice, channel)
    following.record_check(channel, "poll", "YouTube answered 500")
    (check,) = events(alice, f"{channel.dom_id}-check")
    assert "YouTube answered 500" in check


def test_the_dashboard_shows_new_videos_from_followed_channels_live(
    alice, bob, alice_client, fake_youtube, imported
):
    fake, channel = imported
    Follow.start(alice, channel)
    run_import(bob, "@watched")  # bob sees the channel, but does not follow it
    home = alice_client.get("/").content.decode()
    assert "New from channels you follow" in home
    assert 'sse-swap="dash-followed-video-created"' in home
    # The videos from before the follow are not "new".
    assert "No new video yet" in home

    new = fake_youtube.upload(fake, 2)
    following.poll_channel(channel)
    engine.run_lane("imports")

    arrived = events(alice, "dash-followed-video-created")
    assert len(arrived) == 2
    assert all(any(v.title in html for html in arrived) for v in new)
    home = alice_client.get("/").content.decode()
    assert all(v.title in home for v in new) and "No new video yet" not in home
    # Bob's page of the channel takes the card, his dashboard does not (he follows nothing).
    assert len(events(bob, f"{channel.dom_id}-video-created")) == 2
    assert events(bob, "dash-followed-video-created") == []
    assert "New from channels you follow" not in client_of(bob).get("/").content.decode()


def test_a_followed_channels_new_video_is_discovered_as_json(alice, bob, fake_youtube, imported):
    fake, channel = imported
    Follow.start(alice, channel)
    run_import(bob, "@watched")
    (new,) = fake_youtube.upload(fake, 1)
    following.poll_channel(channel)

    (payload,) = [json.loads(data) for data in events(alice, "video:discovered")]
    assert payload["videoId"] == new.id and payload["title"] == new.title
    assert payload["channelId"] == channel.pk
    assert datetime.fromisoformat(payload["publishedAt"]).date() == new.published.date()
    assert payload["url"] == f"/channels/videos/{payload['id']}/"
    assert events(bob, "video:discovered") == []  # a viewer, not a follower


def test_a_backfill_tells_it_started_what_it_discovered_and_that_it_completed(alice, fake_youtube):
    now = datetime.now(UTC)
    fake_youtube.add_channel("daily", videos=40, newest=now, days_apart=1, page_size=10)
    since = now.date() - timedelta(days=5)

    job = run_import(alice, "@daily", since=since)

    (started,) = [json.loads(d) for d in events(alice, "backfill:started")]
    (completed,) = [json.loads(d) for d in events(alice, "backfill:completed")]
    discovered = [json.loads(d) for d in events(alice, "video:discovered")]
    assert started["jobId"] == job.pk and started["since"] == since.isoformat()
    assert started["totalVideos"] == job.total
    assert completed["status"] == "completed" and completed["jobId"] == job.pk
    assert completed["totalFound"] == job.done == len(discovered) == job.total - job.dropped
    assert completed["publishedBeforeSince"] == job.dropped
    assert all(datetime.fromisoformat(d["publishedAt"]).date() >= since for d in discovered)
    # An import without a date is no backfill.
    run_import(alice, "@daily")
    assert len(events(alice, "backfill:started")) == 1


def importing_now(page: str) -> str:
    """The channel page's "Importing now" cards (the section is always there, shown by CSS
    while it holds one)."""
    start = page.index('<div class="active-jobs"')
    return page[start : page.index("</section>", start)]


def test_the_channel_page_shows_the_follow_job_to_its_owner_only(
    alice, bob, alice_client, fake_youtube, imported
):
    fake, channel = imported
    Follow.start(alice, channel)
    Follow.start(bob, channel)  # a second follower: the job is alice's (the earliest)
    page = alice_client.get(channel.get_absolute_url()).content.decode()
    # Open before the job exists, the page has where to take it live.
    assert f'sse-swap="{channel.dom_id}-active-created" hx-swap="afterbegin"' in page
    assert "import-job" not in importing_now(page)
    fake_youtube.upload(fake, 2)
    following.poll_channel(channel)
    job = ImportJob.objects.get(followed=True)

    # Sent live: its card into "Importing now", its row on top of the imports table.
    (card,) = events(alice, f"{channel.dom_id}-active-created")
    assert f'id="{job.dom_id}"' in card and "import-job" in card
    rows = events(alice, f"{channel.dom_id}-import-created")
    assert any(f'id="{job.dom_id}-row"' in html for html in rows)
    # On a reload: active, in the (paginated) imports table, counted by the stat cards.
    page = alice_client.get(channel.get_absolute_url()).content.decode()
    assert f'id="{job.dom_id}"' in importing_now(page)
    assert f'id="{job.dom_id}-row"' in page
    assert '<span class="value" data-stat="activeJobs">1</span>' in page

    page = client_of(bob).get(channel.get_absolute_url()).content.decode()
    assert job.dom_id not in page
    assert '<span class="value" data-stat="activeJobs">0</span>' in page
    assert events(bob, f"{channel.dom_id}-import-created") == []
    assert events(bob, f"{channel.dom_id}-active-created") == []

    engine.run_lane("imports")
    page = alice_client.get(channel.get_absolute_url()).content.decode()
    assert "import-job" not in importing_now(page) and f'id="{job.dom_id}-row"' in page
