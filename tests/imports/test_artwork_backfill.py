"""Artwork for what was imported before Chirp kept it (imports/artwork.py's backfill): the
"Fetch missing artwork" schedule fetches a bounded batch a run through the YouTube limiter, for
the channels someone sees, and `manage.py fetch_artwork [--channel ID]` all of them. On the fake
YouTube: the pages then show Chirp's own copies, and still never point at YouTube's hosts."""

from __future__ import annotations

import io
import itertools
import re
from datetime import timedelta

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_q.models import Schedule

from chirp import engine
from chirp.signals import create_schedules
from imports.limiter import Limiter
from imports.models import Channel, Follow, ImportJob, Video
from imports.tasks import fetch_missing_artwork
from imports.youtube import parse_channel_input
from tests.imports.test_artwork import YOUTUBE_IMAGE_HOSTS, img_sources
from tests.sse import stored_events

pytestmark = pytest.mark.django_db(transaction=True)


def imported_before_artwork(owner, fake_youtube, handle: str, videos: int = 3) -> Channel:
    """A channel imported as Chirp did before it kept artwork: no picture stored, only YouTube's
    addresses (the import runs on the fake, then its copies are forgotten)."""
    fake_youtube.add_channel(handle, videos=videos)
    ImportJob.start(owner, parse_channel_input(f"@{handle}"))
    engine.run_lane("imports")
    channel = Channel.objects.get(handle=f"@{handle}")
    Channel.objects.filter(pk=channel.pk).update(avatar="", banner="")
    channel.videos.update(thumbnail="")
    channel.refresh_from_db()
    return channel


def pictures(channel: Channel) -> tuple[int, bool, bool]:
    """(videos with a stored thumbnail, avatar stored, banner stored)."""
    channel.refresh_from_db()
    return (
        channel.videos.exclude(thumbnail="").count(),
        bool(channel.avatar),
        bool(channel.banner),
    )


def test_the_schedule_fetches_what_is_missing_and_pages_show_chirps_copies(
    alice, alice_client, fake_youtube, settings
):
    channel = imported_before_artwork(alice, fake_youtube, "old", videos=3)
    page = alice_client.get(channel.get_absolute_url()).content.decode()
    assert all("placeholder" in src for src in img_sources(page))  # before: placeholders only
    fake_youtube.clear_requests()

    report = fetch_missing_artwork()

    assert report == "Stored 1 avatar, 1 banner, 3 thumbnails."
    assert pictures(channel) == (3, True, True)
    assert fake_youtube.count("image") == 5  # each picture once, nothing else asked
    assert fake_youtube.count() == 5
    page = alice_client.get(channel.get_absolute_url()).content.decode()
    assert not YOUTUBE_IMAGE_HOSTS.search(page)
    sources = img_sources(page)
    assert {src.split("/artwork/")[0] for src in sources} == {f"/channels/{channel.pk}"}
    assert len(set(sources)) == 5  # the avatar, the banner and the three thumbnails
    assert all(src.startswith("/") and "placeholder" not in src for src in sources)
    for video in channel.videos.all():
        card = re.search(rf'id="{video.dom_id}".*?<img[^>]*\ssrc="([^"]*)"', page, re.S)[1]
        assert alice_client.get(card).status_code == 200

    fake_youtube.clear_requests()
    assert fetch_missing_artwork() == "Stored no picture."
    assert fake_youtube.count() == 0


def test_pictures_the_backfill_stores_replace_the_placeholders_of_open_pages_live(
    alice, bob, staff, alice_client, fake_youtube
):
    channel = imported_before_artwork(alice, fake_youtube, "shown", videos=2)
    Follow.start(bob, channel)  # bob sees it too; staff does not
    page = alice_client.get(channel.get_absolute_url()).content.decode()
    for target in (f"{channel.dom_id}-avatar", f"{channel.dom_id}-banner"):
        assert f'id="{target}" sse-swap="{target}" hx-swap="outerHTML"' in page
    before = {user: len(stored_events(user)) for user in (alice, bob, staff)}

    fetch_missing_artwork()

    page = alice_client.get(channel.get_absolute_url()).content.decode()
    avatar = re.search(r'<img class="avatar large" src="([^"]*)"', page)[1]
    banner = re.search(r'<img class="channel-banner" src="([^"]*)"', page)[1]
    for user in (alice, bob):
        events = dict(stored_events(user)[before[user] :])  # each element's last event
        assert f'<img class="avatar large" src="{avatar}"' in events[f"{channel.dom_id}-avatar"]
        assert f'<img class="channel-banner" src="{banner}"' in events[f"{channel.dom_id}-banner"]
        assert f'id="{channel.dom_id}"' in events[channel.dom_id]  # the channel list's row
        assert f'src="{avatar}"' in events[channel.dom_id]
        for video in channel.videos.all():
            thumbnail = re.search(rf'id="{video.dom_id}".*?<img[^>]*\ssrc="([^"]*)"', page, re.S)[1]
            assert "/artwork/" in thumbnail
            assert f'src="{thumbnail}"' in events[video.dom_id]
    assert stored_events(staff)[before[staff] :] == []


def test_a_run_fetches_a_bounded_batch_through_the_limiter(alice, fake_youtube, settings):
    settings.CHIRP_ARTWORK_BACKFILL_BATCH = 3
    settings.CHIRP_YOUTUBE_SPACING = 0.3
    channel = imported_before_artwork(alice, fake_youtube, "batches", videos=5)
    fake_youtube.clear_requests()

    runs = [fetch_missing_artwork() for _ in range(4)]

    assert runs == [
        "Stored 1 avatar, 1 banner, 1 thumbnail.",
        "Stored 3 thumbnails.",
        "Stored 1 thumbnail.",
        "Stored no picture.",
    ]
    assert pictures(channel) == (5, True, True)
    times = sorted(r.at for r in fake_youtube.requests)
    assert len(times) == 7
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert min(gaps) >= 0.25  # every picture waited its turn at the shared limiter


def test_only_channels_someone_sees_are_backfilled(alice, fake_youtube):
    seen = imported_before_artwork(alice, fake_youtube, "seen", videos=2)
    unseen = imported_before_artwork(alice, fake_youtube, "unseen", videos=2)
    ImportJob.objects.filter(channel=unseen).delete()  # nobody sees it any more

    fetch_missing_artwork()

    assert pictures(seen) == (2, True, True)
    assert pictures(unseen) == (0, False, False)


def test_a_429_pauses_the_backfill_and_it_goes_on_after_the_pause(alice, fake_youtube, settings):
    settings.CHIRP_YOUTUBE_PAUSE_SECONDS = 1.0
    channel = imported_before_artwork(alice, fake_youtube, "busy", videos=3)
    victim = channel.videos.order_by("pk")[1]
    fake_youtube.add_fault(kinds={"image"}, video_id=victim.youtube_id, status=429, times=1)
    fake_youtube.clear_requests()

    report = fetch_missing_artwork()

    assert report.startswith("Stored 1 avatar, 1 banner, 1 thumbnail. Paused: YouTube is rate")
    assert Limiter().current_pause() is not None
    assert fetch_missing_artwork().startswith("Stored no picture. Paused:")  # asks nothing
    assert fake_youtube.count("image") == 4
    Limiter().reset()  # the pause is over

    assert fetch_missing_artwork() == "Stored 2 thumbnails."
    assert pictures(channel) == (3, True, True)


def test_a_picture_youtube_does_not_have_is_tried_again_a_week_later(alice, fake_youtube):
    channel = imported_before_artwork(alice, fake_youtube, "gone", videos=2)
    missing = channel.videos.order_by("pk").first()
    fake_youtube.add_fault(kinds={"image"}, video_id=missing.youtube_id, status=404)

    report = fetch_missing_artwork()
    assert report == "Stored 1 avatar, 1 banner, 1 thumbnail; 1 could not be had."
    fake_youtube.clear_requests()
    assert fetch_missing_artwork() == "Stored no picture."  # not asked again at once
    assert fake_youtube.count() == 0

    Video.objects.filter(pk=missing.pk).update(artwork_tried=timezone.now() - timedelta(days=8))
    fake_youtube.faults.clear()
    assert fetch_missing_artwork() == "Stored 1 thumbnail."
    assert pictures(channel) == (2, True, True)


def test_the_command_fetches_one_channel_or_all(alice, fake_youtube):
    first = imported_before_artwork(alice, fake_youtube, "first", videos=2)
    second = imported_before_artwork(alice, fake_youtube, "second", videos=60)
    out = io.StringIO()

    call_command("fetch_artwork", "--channel", str(first.pk), stdout=out)

    assert "Stored 1 avatar, 1 banner, 2 thumbnails." in out.getvalue()
    assert pictures(first) == (2, True, True) and pictures(second) == (0, False, False)

    out = io.StringIO()
    call_command("fetch_artwork", stdout=out)  # more than one batch of 50
    assert out.getvalue().splitlines() == [
        "50 pictures tried…",
        "62 pictures tried…",
        "Stored 1 avatar, 1 banner, 60 thumbnails.",
    ]
    assert pictures(second) == (60, True, True)

    with pytest.raises(CommandError, match="No channel 'UCnothing' in Chirp"):
        call_command("fetch_artwork", "--channel", "UCnothing")
    ImportJob.objects.filter(channel=second).delete()
    with pytest.raises(CommandError, match="Nobody sees"):
        call_command("fetch_artwork", "--channel", second.youtube_id)


def test_the_command_fails_when_youtube_asks_to_wait(alice, fake_youtube, settings):
    settings.CHIRP_YOUTUBE_PAUSE_SECONDS = 60
    imported_before_artwork(alice, fake_youtube, "refused", videos=1)
    fake_youtube.add_fault(kinds={"image"}, status=429, times=1)
    out = io.StringIO()

    with pytest.raises(CommandError, match="run this again once the pause ends"):
        call_command("fetch_artwork", stdout=out)
    assert "Paused: YouTube is rate-limiting" in out.getvalue()


def test_the_backfill_runs_every_ten_minutes(db):
    chirp = apps.get_app_config("chirp")
    create_schedules(sender=chirp, app_config=chirp)

    [schedule] = Schedule.objects.filter(func="imports.tasks.fetch_missing_artwork")
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == (
        Schedule.MINUTES,
        10,
        -1,
    )
