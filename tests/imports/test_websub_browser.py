"""End to end through push: alice follows a channel in a real browser (Debian's chromium),
the real worker subscribes it at the fake hub, which verifies through the real web server;
then the hub posts a new upload and alice's open channel page shows the new card going from
grey to complete, with the toast, without a reload."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from imports.models import Video, WebSubNotification, WebSubSubscription
from tests.conftest import free_port, start_web_server, wait_for
from tests.imports.fake_hub import FakeHub, upload_body
from tests.imports.test_browser import offline

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


@pytest.fixture
def hub():
    with FakeHub() as fake:
        yield fake


@pytest.fixture
def web_server(transactional_db, tmp_path, hub, settings):
    """The real web server, with push on: its public URL is its own loopback address."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings.CHIRP_PUBLIC_URL, settings.CHIRP_WEBSUB_HUB = url, hub.url
    server = start_web_server(tmp_path, port=port, CHIRP_PUBLIC_URL=url, CHIRP_WEBSUB_HUB=hub.url)
    yield server
    server.process.terminate(10)


def test_a_pushed_upload_reaches_the_open_channel_page(
    alice, hub, web_server, browser_for, start_worker, fake_youtube, make_channel
):
    fake = fake_youtube.add_channel("pushdesk", videos=3, title="Push Desk")
    channel = make_channel(alice, videos=0, youtube_id=fake.channel_id, title="Push Desk")
    Video.objects.bulk_create(
        Video(youtube_id=v.id, channel=channel, title=v.title, stage="complete", progress=100)
        for v in fake.videos
    )
    fake_youtube.add_fault(kinds={"timedtext"}, delay=0.5)  # slow enough to see it grey
    start_worker(
        CHIRP_PUBLIC_URL=web_server.url,
        CHIRP_WEBSUB_HUB=hub.url,
        CHIRP_YOUTUBE_CONCURRENCY="1",
    )
    page = browser_for(alice)
    offline(page)
    page.goto(channel.get_absolute_url())
    page.locator(f"#follow-{channel.pk} button").click()
    expect(page.locator(f"#follow-{channel.pk} button")).to_have_text("Following")

    # The worker asks the hub; the hub verifies through the web server.
    wait_for(
        lambda: WebSubSubscription.objects.filter(channel=channel, state="verified").exists(),
        timeout=30,
    )
    sub = WebSubSubscription.objects.get(channel=channel)
    page.reload()
    expect(page.locator(".push-state")).to_contain_text("Push (WebSub): verified until")
    page.evaluate("window.notReloaded = true")
    expect(page.locator(".video-card")).to_have_count(3)

    (upload,) = fake_youtube.upload(fake, 1)
    body = upload_body(fake.channel_id, upload.id, upload.title, upload.published)
    assert hub.publish(sub.topic, body) == [202]

    card = page.locator(".video-card").first
    expect(card).to_contain_text(upload.title, timeout=30_000)
    video = Video.objects.get(youtube_id=upload.id)
    card = page.locator(f"#{video.dom_id}")
    expect(card).to_have_class(re.compile(r"\bimporting\b"))  # grey while it is enriched
    expect(page.locator("#toasts .toast")).to_contain_text(
        f"New video from Push Desk: {upload.title}"
    )
    expect(card).to_have_attribute("data-stage", "complete", timeout=60_000)
    expect(card).not_to_have_class(re.compile(r"\bimporting\b"))
    expect(page.locator(".video-card")).to_have_count(4)
    assert page.evaluate("window.notReloaded") is True
    assert WebSubNotification.objects.get().processed is not None
