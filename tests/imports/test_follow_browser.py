"""A followed channel's new upload reaches the follower's open channel page, in a real browser
(Debian's chromium) against uvicorn, a real worker and the fake YouTube: a poll finds it, the
new card appears and goes through its stages to complete, with a toast, without a reload."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from imports import following
from imports.models import Follow, Video
from tests.imports.test_browser import offline

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_a_poll_brings_a_new_video_to_the_open_channel_page(
    alice, browser_for, start_worker, fake_youtube, make_channel
):
    fake = fake_youtube.add_channel("newsdesk", videos=3, title="News Desk")
    channel = make_channel(alice, videos=0, youtube_id=fake.channel_id, title="News Desk")
    Video.objects.bulk_create(
        Video(youtube_id=v.id, channel=channel, title=v.title, stage="complete", progress=100)
        for v in fake.videos
    )
    Follow.start(alice, channel)
    fake_youtube.add_fault(kinds={"timedtext"}, delay=0.5)  # slow enough to see it grey
    start_worker(CHIRP_YOUTUBE_CONCURRENCY="1")
    page = browser_for(alice)
    offline(page)
    page.goto(channel.get_absolute_url())
    page.evaluate("window.notReloaded = true")
    expect(page.locator(".video-card")).to_have_count(3)
    expect(page.locator(f"#follow-{channel.pk} button")).to_have_text("Following")

    (upload,) = fake_youtube.upload(fake, 1)
    outcome = following.poll_channel(channel)
    assert outcome is not None and len(outcome.created) == 1

    video = Video.objects.get(youtube_id=upload.id)
    card = page.locator(f"#{video.dom_id}")
    expect(card).to_be_visible(timeout=30_000)
    expect(card).to_have_class(re.compile(r"\bimporting\b"))  # grey while it is enriched
    expect(page.locator(".video-card").first).to_have_id(video.dom_id)  # on top
    expect(page.locator("#toasts .toast")).to_contain_text(
        f"New video from News Desk: {upload.title}"
    )
    expect(card).to_have_attribute("data-stage", "complete", timeout=60_000)
    expect(card).not_to_have_class(re.compile(r"\bimporting\b"))
    expect(page.locator(".video-card")).to_have_count(4)
    assert page.evaluate("window.notReloaded") is True


def test_a_poll_brings_a_new_video_to_the_open_following_page_and_dashboard(
    alice, browser_for, start_worker, fake_youtube, make_channel
):
    fake = fake_youtube.add_channel("weekly", videos=3, title="Weekly")
    channel = make_channel(alice, videos=0, youtube_id=fake.channel_id, title="Weekly")
    Video.objects.bulk_create(
        Video(youtube_id=v.id, channel=channel, title=v.title, stage="complete", progress=100)
        for v in fake.videos
    )
    Follow.start(alice, channel)
    start_worker(CHIRP_YOUTUBE_CONCURRENCY="1")
    page = browser_for(alice)
    offline(page)
    page.goto("/channels/following/")
    page.evaluate("window.notReloaded = true")
    followed = page.locator(f"#following-{channel.pk}")
    expect(followed.locator(".video-card")).to_have_count(3)
    expect(followed.locator(".check-state")).to_contain_text("Not checked yet")
    home = page.context.new_page()  # the same browser (offline() is the context's)
    home.goto("/")
    expect(home.locator("#dash-followed")).to_contain_text("No new video yet")

    (upload,) = fake_youtube.upload(fake, 1)
    assert following.poll_channel(channel) is not None

    video = Video.objects.get(youtube_id=upload.id)
    card = followed.locator(f"#{video.dom_id}")
    expect(card).to_be_visible(timeout=30_000)
    expect(followed.locator(".video-card").first).to_have_id(video.dom_id)  # on top
    expect(followed.locator(".check-state")).to_contain_text("by poll (rss)")
    expect(card).to_have_attribute("data-stage", "complete", timeout=60_000)
    expect(followed.locator(".video-card")).to_have_count(4)
    assert page.evaluate("window.notReloaded") is True
    # The dashboard took it too, and saw it complete.
    dash_card = home.locator(f"#dash-followed #{video.dom_id}")
    expect(dash_card).to_have_attribute("data-stage", "complete", timeout=30_000)
    expect(home.locator("#dash-followed")).not_to_contain_text("No new video yet")
