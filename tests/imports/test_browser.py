"""Adding a channel in a real browser (Debian's chromium), against uvicorn, a real worker and the
fake YouTube: the dialog's errors, then its live progress, the cards, the list."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from imports.models import Channel, ImportJob

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

LOCAL = re.compile(r"^https?://(127\.0\.0\.1|localhost)[:/]")


def offline(page) -> None:
    """Nothing but the test server: the browser must never reach the network."""
    page.context.route(
        re.compile(r"^https?://"),
        lambda route: route.continue_() if LOCAL.match(route.request.url) else route.abort(),
    )


def test_add_a_channel_and_watch_it_import_live(
    alice, browser_for, start_worker, fake_youtube, screenshot
):
    fake_youtube.add_channel("livewire", videos=10, title="Live Wire")
    fake_youtube.add_fault(kinds={"timedtext"}, delay=0.5)  # slow enough to watch
    start_worker(CHIRP_YOUTUBE_CONCURRENCY="1")
    page = browser_for(alice)
    offline(page)
    page.goto("/channels/")
    page.evaluate("window.notReloaded = true")

    page.click("#add-channel-button")
    dialog = page.locator("#add-channel")
    expect(dialog).to_be_visible()
    dialog.locator("input[name=channel]").fill("https://vimeo.com/livewire")
    dialog.locator("#import-form button[type=submit]").click()
    expect(dialog.locator("#channel-errors")).to_contain_text("Only YouTube links")
    screenshot(page, "live-add-channel-refused")
    assert not ImportJob.objects.exists()

    dialog.locator("input[name=channel]").fill("@livewire")
    dialog.locator("#import-form button[type=submit]").click()
    card = dialog.locator(".import-job")
    expect(card.locator(".job-title")).to_contain_text("Live Wire", timeout=30_000)

    # The progress bar moves: seen part-way, then full.
    bar = card.locator("[role=progressbar]")
    expect(bar).to_have_attribute("aria-valuenow", re.compile(r"^([1-9]|[1-9]\d)$"), timeout=30_000)
    channel = Channel.objects.get()

    # Meanwhile, on the channel's page, grey cards turn complete as their videos are enriched.
    other = page.context.new_page()
    other.goto(channel.get_absolute_url())
    other.evaluate("window.notReloaded = true")
    # Its stat cards follow too. Every video exists from the listing on, so "Videos" is 10
    # already: the transcripts count is the one that moves.
    stats = other.locator(f"#{channel.stats_dom_id}")
    transcribed = stats.locator('[data-stat="withTranscripts"]')
    expect(stats.locator('[data-stat="totalVideos"]')).to_have_text("10")
    assert int(transcribed.inner_text()) < 10
    last = channel.videos.order_by("-pk").first()  # the oldest: enriched last
    last_card = other.locator(f"#{last.dom_id}")
    expect(last_card).to_have_class(re.compile(r"\bimporting\b"))
    expect(last_card.locator(".overlay")).to_be_visible()
    screenshot(other, "live-channel-importing")
    screenshot(page, "live-add-channel-progress")
    expect(last_card).to_have_attribute("data-stage", "complete", timeout=60_000)
    expect(last_card).not_to_have_class(re.compile(r"\bimporting\b"))
    assert other.locator(".video-card.importing").count() == 0
    expect(transcribed).to_have_text("10", timeout=30_000)
    expect(stats.locator('[data-stat="activeJobs"]')).to_have_text("0", timeout=30_000)
    assert other.evaluate("window.notReloaded") is True

    expect(bar).to_have_attribute("aria-valuenow", "100", timeout=30_000)
    expect(card).to_have_attribute("data-status", "completed")
    expect(page.locator("#toasts .toast")).to_contain_text("10 videos imported")
    # The channel is in the list now, without a reload.
    expect(page.locator(f"#{channel.dom_id}")).to_contain_text("Live Wire")
    expect(page.locator(f"#{channel.dom_id} [data-imported]")).to_have_text("10")
    expect(page.locator("#channel-rows table thead")).to_have_count(1)  # rows swapped in place
    assert page.evaluate("window.notReloaded") is True
