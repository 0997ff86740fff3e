"""Following a channel: polls of its RSS feed on the fake YouTube, the gap filled from the
listing, refreshed titles, duplicates, unfollowing, the spread of polls (engine in-process)."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

import pytest
from django.utils import timezone

from chirp import engine
from imports import following
from imports.feeds import FeedEntry, parse_feed
from imports.limiter import Limiter
from imports.models import Channel, ChannelWatch, Follow, ImportJob, ImportJobItem, Video
from imports.youtube import parse_channel_input
from tests.sse import stored_events

pytestmark = pytest.mark.django_db(transaction=True)


def run_import(owner, text: str) -> ImportJob:
    job, _ = ImportJob.start(owner, parse_channel_input(text))
    engine.run_lane("imports")
    job.refresh_from_db()
    return job


@pytest.fixture
def imported(alice, fake_youtube):
    """@watched, 5 videos, imported by alice: (fake channel, Channel)."""
    fake = fake_youtube.add_channel("watched", videos=5, title="Watched")
    run_import(alice, "@watched")
    return fake, Channel.objects.get()


def toasts_for(user) -> list[str]:
    return [html for _, html in stored_events(user, "toast") if "New video from" in html]


def test_a_poll_finds_new_uploads_and_enriches_them(alice, fake_youtube, imported):
    fake, channel = imported
    Follow.start(alice, channel)
    new = fake_youtube.upload(fake, 2)
    fake_youtube.clear_requests()

    outcome = following.poll_channel(channel)
    engine.run_lane("imports")

    assert len(outcome.created) == 2 and not outcome.listed
    assert fake_youtube.count("feed") == 1
    assert fake_youtube.count("channel_page") == 0  # two new of 15: no listing needed
    videos = Video.objects.filter(youtube_id__in=[v.id for v in new])
    assert {(v.title, v.stage) for v in videos} == {(v.title, "complete") for v in new}
    job = ImportJob.objects.get(followed=True)
    assert (job.owner, job.channel, job.total, job.done, job.status) == (
        alice,
        channel,
        2,
        2,
        "completed",
    )
    assert len(toasts_for(alice)) == 2
    assert f"New video from Watched: {new[0].title}" in " ".join(toasts_for(alice))
    follow = Follow.objects.get()
    assert follow.last_check_method == "poll" and follow.last_checked is not None


def test_twenty_uploads_between_two_polls_are_all_imported_once(alice, fake_youtube, imported):
    fake, channel = imported
    Follow.start(alice, channel)
    assert following.poll_channel(channel).created == []  # nothing new yet
    fake_youtube.upload(fake, 20)

    outcome = following.poll_channel(channel)
    again = following.poll_channel(channel)
    engine.run_lane("imports")

    assert outcome.listed and len(outcome.created) == 20 and again.created == []
    assert set(Video.objects.values_list("youtube_id", flat=True)) == set(fake.video_ids)
    assert Video.objects.count() == 25
    assert ImportJobItem.objects.filter(job__followed=True).count() == 20
    assert set(Video.objects.values_list("stage", flat=True)) == {"complete"}
    assert len(toasts_for(alice)) == 20


def test_a_known_video_with_a_new_title_is_refreshed_without_a_new_item(
    alice, fake_youtube, imported
):
    fake, channel = imported
    Follow.start(alice, channel)
    fake.videos[1].title = "A better title"
    fake_youtube.clear_requests()

    outcome = following.poll_channel(channel)

    assert outcome.created == [] and outcome.refreshed == 1
    assert Video.objects.get(youtube_id=fake.videos[1].id).title == "A better title"
    assert not ImportJob.objects.filter(followed=True).exists()
    assert toasts_for(alice) == []
    assert fake_youtube.count("watch") == fake_youtube.count("player") == 0  # nothing refetched


def test_the_same_entry_twice_changes_nothing(alice, fake_youtube, imported):
    fake, channel = imported
    Follow.start(alice, channel)
    (video,) = fake_youtube.upload(fake, 1)
    entry = FeedEntry(
        video_id=video.id,
        channel_id=fake.channel_id,
        title=video.title,
        published=video.published,
    )

    first = following.handle_entries(channel, [entry, entry], "push")
    second = following.handle_entries(channel, [entry], "push")

    assert len(first.created) == 1 and second.created == [] and second.refreshed == 0
    assert Video.objects.filter(youtube_id=video.id).count() == 1
    assert ImportJobItem.objects.filter(video__youtube_id=video.id).count() == 1
    assert len(toasts_for(alice)) == 1


def test_an_older_edit_delivered_after_a_newer_one_changes_nothing(alice, fake_youtube, imported):
    # The hub does not keep order: YouTube's edits of a title can arrive newest first.
    fake, channel = imported
    Follow.start(alice, channel)
    video = fake.videos[2]
    now = timezone.now()

    def edit(title: str, updated) -> FeedEntry:
        return FeedEntry(
            video_id=video.id,
            channel_id=fake.channel_id,
            title=title,
            published=video.published,
            updated=updated,
        )

    newer = following.handle_entries(channel, [edit("Second title", now)], "push")
    older = following.handle_entries(
        channel, [edit("First title", now - timedelta(minutes=5))], "push"
    )

    assert (newer.refreshed, older.refreshed) == (1, 0)
    assert Video.objects.get(youtube_id=video.id).title == "Second title"
    sent = " ".join(html for _, html in stored_events(alice))
    assert "Second title" in sent and "First title" not in sent


def test_a_late_push_cannot_undo_a_title_a_newer_push_confirmed(alice, fake_youtube, imported):
    # The newer push carries the title Chirp already has (its metadata stage read it): nothing
    # changes, but an older push delivered after it still must not bring the old title back.
    fake, channel = imported
    Follow.start(alice, channel)
    video = fake.videos[3]
    stored = Video.objects.get(youtube_id=video.id)
    now = timezone.now()

    def edit(title: str, updated) -> FeedEntry:
        return FeedEntry(
            video_id=video.id, channel_id=fake.channel_id, title=title, updated=updated
        )

    same = following.handle_entries(channel, [edit(stored.title, now)], "push")
    late = following.handle_entries(
        channel, [edit("A title from before", now - timedelta(hours=1))], "push"
    )

    assert (same.refreshed, late.refreshed) == (0, 0)
    assert Video.objects.get(youtube_id=video.id).title == stored.title


def test_a_video_published_before_the_follow_is_not_new(alice, fake_youtube, imported):
    fake, channel = imported
    (old,) = fake_youtube.upload(fake, 1, at=timezone.now() - timedelta(days=3))
    Follow.start(alice, channel)

    assert following.poll_channel(channel).created == []
    assert not Video.objects.filter(youtube_id=old.id).exists()


def test_nobody_following_means_nothing_is_created(alice, fake_youtube, imported):
    fake, channel = imported
    (video,) = fake_youtube.upload(fake, 1)
    entry = FeedEntry(video.id, fake.channel_id, video.title, published=video.published)

    assert following.handle_entries(channel, [entry], "push").created == []
    assert not Video.objects.filter(youtube_id=video.id).exists()


def test_unfollowed_by_the_last_follower_the_channel_is_no_longer_polled(
    alice, bob, fake_youtube, imported
):
    _, channel = imported
    run_import(bob, "@watched")
    Follow.start(alice, channel)
    Follow.start(bob, channel)
    later = timezone.now() + timedelta(minutes=16)
    fake_youtube.clear_requests()

    assert following.poll_due(later)["polled"] == 1
    Follow.stop(alice, channel)
    assert following.poll_due(later + timedelta(minutes=16))["polled"] == 1  # bob still follows
    Follow.stop(bob, channel)
    assert following.poll_due(later + timedelta(minutes=32))["polled"] == 0
    assert following.poll_due(later + timedelta(days=30)) == {"polled": 0, "checked": 0}

    assert fake_youtube.count("feed") == 2
    assert not ChannelWatch.objects.exists()


def test_polls_are_spread_evenly_over_the_interval(alice, settings, make_channel):
    settings.CHIRP_FOLLOW_POLL_MINUTES = 15
    channels = [make_channel(alice, videos=0) for _ in range(5)]
    for channel in channels:
        Follow.start(alice, channel)

    times = sorted(ChannelWatch.objects.values_list("next_poll", flat=True))
    gaps = {round((b - a).total_seconds()) for a, b in pairwise(times)}
    assert gaps == {180}  # 15 minutes over 5 channels
    assert times[-1] - times[0] < timedelta(minutes=15)

    # A poll keeps the channel's place: its next one is a whole interval later.
    watch = ChannelWatch.objects.order_by("next_poll").first()
    other_worker = ChannelWatch.objects.get(pk=watch.pk)
    due = watch.next_poll
    assert watch.claim_poll(due) and watch.next_poll == due + timedelta(minutes=15)
    assert not other_worker.claim_poll(due)  # taken once


def test_each_poll_waits_its_turn_at_the_shared_limiter_and_a_429_pauses_it(
    alice, fake_youtube, settings
):
    settings.CHIRP_YOUTUBE_SPACING = 0.3
    settings.CHIRP_YOUTUBE_PAUSE_SECONDS = 60.0
    for n in range(3):
        fake_youtube.add_channel(f"polled{n}", videos=1)
        run_import(alice, f"@polled{n}")
    for channel in Channel.objects.all():
        Follow.start(alice, channel)
    fake_youtube.clear_requests()
    later = timezone.now() + timedelta(minutes=20)  # every poll is due

    assert following.poll_due(later)["polled"] == 3

    times = sorted(r.at for r in fake_youtube.requests if r.kind == "feed")
    assert len(times) == 3
    assert min(b - a for a, b in pairwise(times)) >= 0.25  # spaced like every request
    # YouTube's 429 on a feed pauses the limiter shared with imports: nothing more is asked.
    fake_youtube.add_fault(kinds={"feed"}, status=429, times=1)
    fake_youtube.clear_requests()
    following.poll_due(later + timedelta(minutes=20))
    assert Limiter().current_pause() is not None
    assert fake_youtube.count("feed") == 1


def test_a_full_check_lists_until_the_first_known_video(alice, fake_youtube, imported):
    fake, channel = imported
    Follow.start(alice, channel)
    new = fake_youtube.upload(fake, 3)
    fake_youtube.clear_requests()
    later = timezone.now() + timedelta(days=8)
    ChannelWatch.objects.update(next_poll=later + timedelta(hours=1))  # no poll due

    assert following.poll_due(later) == {"polled": 0, "checked": 1}
    assert set(Video.objects.values_list("youtube_id", flat=True)) >= {v.id for v in new}
    assert fake_youtube.count("feed") == 0 and fake_youtube.count("channel_page") == 1
    assert Follow.objects.get().last_check_method == "full"


def test_the_feed_is_parsed_without_entities():
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;">]><feed xmlns="http://www.w3.org/2005/Atom">'
        b"<title>&lol2;</title></feed>"
    )
    with pytest.raises(ValueError, match="Not a readable feed"):
        parse_feed(bomb)


def test_an_import_of_the_channel_is_not_held_up_by_its_open_follow_job(
    alice, fake_youtube, imported
):
    fake, channel = imported
    Follow.start(alice, channel)
    fake_youtube.upload(fake, 1)
    following.poll_channel(channel)  # a follow job, open until the lane runs

    job, created = ImportJob.start(alice, parse_channel_input(channel.youtube_url))
    assert created and not job.followed
    assert ImportJob.objects.filter(status="pending").count() == 2


def test_a_failing_feed_is_recorded_and_the_other_channels_are_still_polled(
    alice, fake_youtube, imported
):
    fake, channel = imported
    other_fake = fake_youtube.add_channel("other", videos=2, title="Other")
    run_import(alice, "@other")
    other = Channel.objects.get(youtube_id=other_fake.channel_id)
    Follow.start(alice, channel)
    Follow.start(alice, other)
    fake_youtube.add_fault(kinds={"feed"}, channel_id=fake.channel_id, status=404)
    (upload,) = fake_youtube.upload(other_fake, 1)

    assert following.poll_due(timezone.now() + timedelta(minutes=16))["polled"] == 2

    failed, fine = Follow.objects.get(channel=channel), Follow.objects.get(channel=other)
    assert failed.last_check_method == "poll"
    assert failed.last_error == "YouTube has no channel or video at that address."
    assert fine.last_error == "" and Video.objects.filter(youtube_id=upload.id).exists()
