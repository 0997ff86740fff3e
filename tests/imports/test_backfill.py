"""Backfill since a date: only the videos published on or after it are imported; the listing
stops a week past it (approximate dates), each video's exact date decides."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from django.utils import timezone

from chirp import engine
from imports.models import Follow, ImportJob, Video
from imports.youtube import parse_channel_input
from tests.sse import stored_events

FULL_PAGES = 30  # 300 videos, 10 a page


def backfill(owner, handle: str, since: date) -> ImportJob:
    job, created = ImportJob.start(owner, parse_channel_input(f"@{handle}"), since=since)
    assert created
    engine.run_lane("imports")
    job.refresh_from_db()
    return job


def published_since(channel, since: date) -> set[str]:
    """The fake's videos whose exact date (as its player says it: its own day) is on or after
    `since`."""
    return {v.id for v in channel.videos if v.published.date() >= since}


def last_card_events(user) -> dict[int, str]:
    """The last event each video card (`video-<pk>`) got in `user`'s stream, by pk."""
    return {
        int(name.removeprefix("video-")): html
        for name, html in stored_events(user)
        if re.fullmatch(r"video-\d+", name)
    }


def removes_card(html: str, pk: int) -> bool:
    """Whether an event's fragment deletes the card (htmx's out-of-band delete)."""
    return f'id="video-{pk}"' in html and 'hx-swap-oob="delete"' in html


def dropped_events(user) -> list[dict]:
    """The `video:dropped` JSON events in `user`'s stream."""
    return [json.loads(data) for _, data in stored_events(user, "video:dropped")]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("fake_youtube_shape", "layout"),
    [
        ("recorded", "lockupViewModel"),  # today's YouTube: the lockup's row has no label
        ("classic", "videoRenderer"),
        ("classic", "lockupViewModel"),
    ],
)
def test_a_backfill_imports_only_what_was_published_since_and_stops_listing_early(
    alice, client, fake_youtube, layout
):
    client.force_login(alice)
    now = datetime.now(UTC)
    channel = fake_youtube.add_channel(
        "daily", videos=300, newest=now, days_apart=1, page_size=10, layout=layout
    )
    since = now.date() - timedelta(days=20)

    job = backfill(alice, "daily", since)

    # It stopped paging: 3 or 4 pages of the 30 (one continuation request a page after the
    # first), not the 29 continuations of the whole channel.
    assert fake_youtube.count("browse") <= 3 < FULL_PAGES - 1
    wanted = published_since(channel, since)
    assert 15 <= len(wanted) <= 21
    # Only those are created, and all of them completed.
    assert set(Video.objects.values_list("youtube_id", flat=True)) == wanted
    assert set(Video.objects.values_list("stage", flat=True)) == {"complete"}
    assert job.status == "completed" and job.done == len(wanted)
    # The listing went a week past the date ("3 weeks ago" is approximate): what it listed
    # inside that margin but was published before the date was dropped by its exact date.
    assert job.dropped >= 1 and job.total == len(wanted) + job.dropped
    assert f"{job.dropped} published before" in job.progress_text
    assert "already there" not in job.progress_text
    # The dropped videos' cards, shown while they were listed, leave the pages live: each
    # one's last event deletes it; the kept ones' cards stay.
    cards = last_card_events(alice)
    kept = set(Video.objects.values_list("pk", flat=True))
    gone = set(cards) - kept
    assert len(gone) == job.dropped
    assert all(removes_card(cards[pk], pk) for pk in gone)
    assert not any(removes_card(cards[pk], pk) for pk in kept)
    # API clients of the stream are told too, in JSON: `video:dropped`, once per dropped video.
    dropped = dropped_events(alice)
    assert sorted(d["id"] for d in dropped) == sorted(gone)
    assert all(d["channelId"] == job.channel_id for d in dropped)
    assert {d["videoId"] for d in dropped}.isdisjoint(wanted) and all(d["title"] for d in dropped)
    day = f"{since.day} {since:%b %Y}"
    steps = " ".join(html for _, html in stored_events(alice, job.dom_id))
    assert f"Found {job.total} videos since {day} (listing stopped at " in steps
    assert job.progress_text.startswith(
        f"{job.total} videos found since {day} · {job.done} imported · "
    )
    assert job.as_json()["options"]["since"] == since.isoformat()
    detail = client.get(job.get_absolute_url()).content.decode()
    assert f"published since {day}" in detail


@pytest.mark.django_db(transaction=True)
def test_without_dates_in_the_listing_the_exact_dates_still_decide(alice, fake_youtube):
    # A listing that says no "3 weeks ago": nothing stops it; the metadata's exact dates
    # still keep only what is recent.
    now = datetime.now(UTC)
    channel = fake_youtube.add_channel(
        "undated", videos=25, newest=now, days_apart=1, listed_dates=False
    )
    since = now.date() - timedelta(days=10)

    job = backfill(alice, "undated", since)

    wanted = published_since(channel, since)
    assert set(Video.objects.values_list("youtube_id", flat=True)) == wanted
    assert job.dropped == 25 - len(wanted) and job.done == len(wanted)
    day = f"{since.day} {since:%b %Y}"
    steps = " ".join(html for _, html in stored_events(alice, job.dom_id))
    assert f"Found 25 videos since {day} (the whole listing was read)" in steps


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fake_youtube_shape", ["classic"])
def test_a_dropped_video_another_import_has_is_kept(alice, bob, fake_youtube):
    now = datetime.now(UTC)
    channel = fake_youtube.add_channel("shared", videos=12, newest=now, days_apart=1)
    since = now.date() - timedelta(days=5)
    ImportJob.start(bob, parse_channel_input("@shared"))
    engine.run_lane("imports")

    job = backfill(alice, "shared", since)

    # Bob imported them all: the catalogue knows their exact dates; the older ones are
    # counted as dropped for alice, not as "already there", and bob keeps every video.
    wanted = len(published_since(channel, since))
    assert job.dropped == job.total - wanted >= 1
    assert f"{wanted} already there · {job.dropped} published before" in job.progress_text
    assert Video.objects.count() == 12
    # Nothing was deleted, so no card is removed from either page.
    for user in (alice, bob):
        assert not any(removes_card(html, pk) for pk, html in last_card_events(user).items())
        assert dropped_events(user) == []


@pytest.mark.django_db(transaction=True)
def test_the_dropped_cards_leave_the_pages_of_everyone_who_sees_the_channel(
    alice, bob, fake_youtube
):
    now = datetime.now(UTC)
    fake_youtube.add_channel("watched", videos=40, newest=now, days_apart=1, page_size=10)
    ImportJob.start(bob, parse_channel_input("@watched"), limit=2)
    engine.run_lane("imports")  # bob sees the channel, and its two newest videos

    job = backfill(alice, "watched", now.date() - timedelta(days=5))

    # Bob's channel page showed alice's backfill's cards as they came (the catalog is
    # shared): those it dropped and deleted leave his page too.
    assert job.dropped >= 1
    cards = last_card_events(bob)
    gone = set(cards) - set(Video.objects.values_list("pk", flat=True))
    assert len(gone) == job.dropped
    assert all(removes_card(cards[pk], pk) for pk in gone)
    assert sorted(d["id"] for d in dropped_events(bob)) == sorted(gone)


def api_post(client, url: str, data) -> object:
    return client.post(url, json.dumps(data), content_type="application/json")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("since", "message"),
    [
        ("01/03/2026", "Enter the date as YYYY-MM-DD, for example 2026-03-01."),
        ("2026-02-30", "Enter the date as YYYY-MM-DD, for example 2026-03-01."),
        (20260301, "Enter the date as YYYY-MM-DD, for example 2026-03-01."),
        ("2999-01-01", "That date is in the future: choose today or an earlier day."),
    ],
)
def test_the_api_refuses_a_bad_since_with_a_message(alice_client, since, message):
    response = api_post(
        alice_client, "/api/channels/import", {"channelUrl": "@x1x", "since": since}
    )

    assert response.status_code == 400 and response["Content-Type"] == "application/json"
    assert response.json()["error"] == message
    assert response.json()["errors"] == {"since": [message]}
    assert not ImportJob.objects.exists()


@pytest.mark.django_db
def test_the_api_starts_a_backfill(alice_client, alice):
    response = api_post(
        alice_client, "/api/channels/import", {"channelUrl": "@x1x", "since": "2026-03-01"}
    )

    assert response.status_code == 201
    assert response.json()["job"]["options"]["since"] == "2026-03-01"
    assert ImportJob.objects.get(owner=alice).since == date(2026, 3, 1)


@pytest.mark.django_db
def test_the_add_channel_dialog_has_the_date_field(alice_client, alice):
    page = alice_client.get("/channels/add/").content.decode()
    assert 'type="date" name="since"' in page

    response = alice_client.post(
        "/channels/add/", {"channel": "@x1x", "tab": "videos", "since": "2026-03-01"}
    )

    assert response.status_code in (200, 302)
    assert ImportJob.objects.get(owner=alice).since == date(2026, 3, 1)
    bad = alice_client.post("/channels/add/", {"channel": "@x2x", "since": "March"})
    assert "Enter the date as YYYY-MM-DD" in bad.content.decode()
    assert ImportJob.objects.count() == 1


@pytest.mark.django_db
def test_following_with_a_since_date_starts_the_backfill(alice, client, make_channel):
    channel = make_channel(alice, title="Tea Time")
    client.force_login(alice)
    url = f"/api/channels/{channel.pk}/follow"

    plain = api_post(client, url, {"quality": "none"})
    assert plain.status_code == 201 and "backfillJobId" not in plain.json()
    imports_before = ImportJob.objects.filter(owner=alice).count()

    response = api_post(client, url, {"since": "2026-03-01"})

    assert response.status_code == 200
    job = ImportJob.objects.get(pk=response.json()["backfillJobId"])
    assert (job.owner, job.since, job.channel) == (alice, date(2026, 3, 1), channel)
    assert job.status == "pending"
    assert ImportJob.objects.filter(owner=alice).count() == imports_before + 1
    # The same date again starts nothing more: the backfill is one-time.
    again = api_post(client, url, {"since": "2026-03-01"})
    assert "backfillJobId" not in again.json()
    assert ImportJob.objects.filter(owner=alice).count() == imports_before + 1
    assert Follow.objects.get(user=alice).since == date(2026, 3, 1)


@pytest.mark.django_db
def test_following_from_the_channel_page_with_a_date_starts_the_backfill(
    alice, alice_client, make_channel
):
    channel = make_channel(alice)

    alice_client.post(f"/channels/{channel.pk}/follow/", {"since": "2026-01-02"})

    assert ImportJob.objects.filter(owner=alice, since=date(2026, 1, 2), channel=channel).exists()
    assert timezone.localdate() >= date(2026, 1, 2)
