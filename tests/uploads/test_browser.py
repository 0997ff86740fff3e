"""The Uploads page in a real browser, against the real ASGI server and a real worker."""

from __future__ import annotations

import re
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from uploads.models import ScrapeJob

from .conftest import make_image

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

PICTURES = ["astronaut", "coffee", "chelsea", "horse"]


def test_a_submitted_page_shows_its_images_go_queued_processing_completed_live(
    alice, bob, browser_for, start_worker, local_http_server, sample_jpegs, screenshot
):
    # The pictures wait for the test's word, so every state can be seen on the page.
    release = threading.Event()

    def gated(data: bytes):
        def handler(request: BaseHTTPRequestHandler) -> None:
            release.wait(170)
            request.send_response(200)
            request.send_header("Content-Type", "image/jpeg")
            request.send_header("Content-Length", str(len(data)))
            request.end_headers()
            request.wfile.write(data)

        return handler

    tags = "".join(f'<img src="/{name}.jpg">' for name in PICTURES)
    local_http_server.respond("/photos.html", f"<h1>Photos</h1>{tags}".encode())
    for name in PICTURES:
        local_http_server.route(f"/{name}.jpg", gated(sample_jpegs[name]))
    # The held pictures must outlast a slow first render: by default a fetch gives up after 15 s
    # without a byte, and then the next two would be processing and none queued.
    start_worker(CHIRP_FETCH_READ_TIMEOUT="150", CHIRP_FETCH_TIMEOUT="180")

    stranger = browser_for(bob)
    stranger.goto("/uploads/")
    overview = browser_for(alice)
    overview.goto("/uploads/")
    page = overview.context.new_page()
    page.goto("/uploads/")
    page.fill("#id_url", local_http_server.url("/photos.html"))
    page.click("#scrape-form button[type=submit]")
    page.wait_for_url("**/uploads/jobs/*/")
    page.evaluate("window.notReloaded = true")
    job = ScrapeJob.objects.get(owner=alice)

    chips = page.locator("tr.item-row .chip")
    expect(chips).to_have_count(4, timeout=30_000)  # the table arrives once the page is read
    expect(page.locator('tr.item-row .chip[data-status="processing"]')).to_have_count(2)
    expect(page.locator('tr.item-row .chip[data-status="queued"]')).to_have_count(2)
    expect(page.locator(f"#{job.dom_id} .chip")).to_have_attribute("data-status", "processing")
    screenshot(page, "live-job-processing")

    release.set()
    expect(page.locator('tr.item-row .chip[data-status="completed"]')).to_have_count(
        4, timeout=60_000
    )
    expect(page.locator(f"#{job.dom_id} .chip")).to_have_attribute("data-status", "completed")
    expect(page.locator('[data-summary="completed"]')).to_have_text("Completed: 4")
    expect(page.locator("#toasts .toast").first).to_contain_text(
        "4 images: 4 new, 0 skipped, 0 failed"
    )
    expect(page.locator("tr.item-row .faces").first).to_have_text("1")  # the astronaut
    thumbnail = page.locator("tr.item-row img.thumb").first
    expect(thumbnail).to_have_js_property("complete", True)
    assert thumbnail.evaluate("img => img.naturalWidth") > 0
    assert page.evaluate("window.notReloaded") is True
    screenshot(page, "live-job-completed")
    # The overview, open all along, shows the new images in the gallery counts.
    expect(overview.locator('#gallery-counts [data-count="all"] .count')).to_have_text("4")

    # bob saw nothing of it, and cannot reach the job or its stream.
    assert stranger.locator(f"#{job.dom_id}").count() == 0
    assert stranger.locator("#toasts .toast").count() == 0
    expect(stranger.locator('[data-summary="completed"]')).to_have_text("Completed: 0")
    assert stranger.goto(f"/uploads/jobs/{job.pk}/").status == 404
    status = stranger.evaluate(f"fetch('/events/?channel=user-{alice.pk}').then(r => r.status)")
    assert status == 403


def test_a_job_started_in_another_tab_appears_at_the_top_of_the_list_live(alice, browser_for):
    first_tab = browser_for(alice)
    first_tab.goto("/uploads/")
    expect(first_tab.locator("#jobs tr.empty")).to_have_count(1)
    first_tab.evaluate("window.notReloaded = true")

    second_tab = first_tab.context.new_page()
    second_tab.goto("/uploads/")
    second_tab.fill("#id_url", "http://127.0.0.1:9/first.html")
    second_tab.click("#scrape-form button[type=submit]")
    second_tab.wait_for_url("**/uploads/jobs/*/")
    first = ScrapeJob.objects.get(owner=alice)

    expect(first_tab.locator("#jobs > tr")).to_have_count(1)  # the row, and no "No jobs yet"
    expect(first_tab.locator(f"#jobs > tr#{first.dom_id}")).to_contain_text("first.html")

    # Started elsewhere (the API, the admin, a shell): it goes on top, above the first.
    second = ScrapeJob.start(alice, "http://127.0.0.1:9/second.html")
    expect(first_tab.locator("#jobs > tr").first).to_have_id(second.dom_id)
    expect(first_tab.locator("#jobs > tr")).to_have_count(2)

    # A row that ends updates in place.
    second_tab.click(f"#{first.dom_id} button:has-text('Cancel')")
    expect(first_tab.locator(f"#{first.dom_id} .chip")).to_have_attribute(
        "data-status", "cancelled"
    )
    expect(first_tab.locator("#jobs > tr")).to_have_count(2)
    assert first_tab.evaluate("window.notReloaded") is True


def test_the_lightbox_opens_moves_with_the_arrow_keys_and_closes(alice, browser_for, screenshot):
    now = timezone.now()
    first, second, third = (
        make_image(name, faces=1, seen_by=alice, first_seen=now - timedelta(minutes=n))
        for n, name in enumerate(["first", "second", "third"])
    )
    page = browser_for(alice)
    problems = []
    # Script errors and anything the Content-Security-Policy refused (no favicon is not one).
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "console",
        lambda message: "Content Security Policy" in message.text and problems.append(message.text),
    )
    page.goto("/uploads/gallery/")
    lightbox = page.locator("#lightbox")
    title = lightbox.locator(".lightbox-title")
    boxes = lightbox.locator(".face-boxes")

    page.click(f"#tile-{second.pk} a")
    expect(lightbox).to_be_visible()
    expect(title).to_have_text("second.jpg · 1 face")
    expect(page).to_have_url(re.compile(rf"/uploads/gallery/\?open={second.pk}$"))
    expect(boxes).to_be_visible()

    page.keyboard.press("ArrowRight")
    expect(title).to_have_text("third.jpg · 1 face")
    expect(page).to_have_url(re.compile(rf"\?open={third.pk}$"))
    page.keyboard.press("ArrowRight")  # the last one: nowhere to go
    expect(page).to_have_url(re.compile(rf"\?open={third.pk}$"))
    page.keyboard.press("f")
    expect(page).to_have_url(re.compile(rf"\?open={third.pk}&boxes=0$"))
    expect(boxes).to_be_hidden()
    screenshot(page, "lightbox-without-boxes")

    page.reload()
    expect(lightbox).to_be_visible()
    expect(title).to_have_text("third.jpg · 1 face")
    expect(boxes).to_be_hidden()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    expect(title).to_have_text("first.jpg · 1 face")
    expect(page).to_have_url(re.compile(rf"\?open={first.pk}&boxes=0$"))
    lightbox.locator("[data-lightbox='boxes']").click()
    expect(boxes).to_be_visible()

    page.keyboard.press("Escape")
    expect(lightbox).to_be_hidden()
    expect(page).to_have_url(re.compile(r"/uploads/gallery/$"))
    page.go_back()  # the history holds each state
    expect(lightbox).to_be_visible()
    expect(title).to_have_text("first.jpg · 1 face")
    assert problems == []


def test_marking_a_face_as_not_a_face_updates_the_review_in_place(alice, browser_for):
    image = make_image("review", faces=2, seen_by=alice)
    page = browser_for(alice)
    page.goto(image.get_absolute_url())
    page.evaluate("window.notReloaded = true")
    expect(page.locator("h1")).to_have_text("review.jpg · 2 faces")

    page.locator(".face-row button").first.click()

    expect(page.locator("h1")).to_have_text("review.jpg · 1 face")
    expect(page.locator(".face-row.not-a-face s")).to_have_count(1)
    expect(page.locator("rect.face-box.not-a-face")).to_have_count(1)
    assert page.evaluate("window.notReloaded") is True
    page.locator(".face-row.not-a-face button").click()
    expect(page.locator("h1")).to_have_text("review.jpg · 2 faces")


def test_a_job_cancelled_while_the_worker_sends_its_progress_stays_cancelled_on_the_page(
    alice, browser_for, monkeypatch
):
    """The worker's monitor reads the running job, the person cancels it on the page (the web
    server sends the cancelled row), then the monitor sends what it read: the page must end
    with the cancelled job, not the running one (which nothing would ever replace)."""
    from django.db import connection

    from chirp import engine, live

    from .conftest import make_job

    make_job(alice, ["queued", "queued"])
    token = engine.new_token()
    slot = engine.claim_slot(ScrapeJob.lane, token)
    job, _ = engine.claim_job(ScrapeJob, token)
    # The runner's monitor, in this process (the web server is another): its ticks run here.
    monitor = engine.Monitor(slot, token)
    monitor.watch(engine.RunContext(job, token, time.monotonic() + 60))
    monitor._shown = ()  # the tick sends whatever it reads
    read, go = threading.Event(), threading.Event()
    render = ScrapeJob.live_fragments

    def slow_tick(self):
        if threading.current_thread().name == "tick":
            read.set()  # the tick has read the job as it was: running
            go.wait(30)
        return render(self)

    monkeypatch.setattr(ScrapeJob, "live_fragments", slow_tick)
    page = browser_for(alice)
    page.goto(job.get_absolute_url())
    chip = page.locator(f"#{job.dom_id} .chip")
    expect(chip).not_to_have_attribute("data-status", "cancelled")

    tick = threading.Thread(target=lambda: (monitor.check(), connection.close()), name="tick")
    tick.start()
    assert read.wait(10)
    with page.expect_navigation():  # the cancel reloads the page
        page.locator(f"#{job.dom_id}").get_by_role("button", name="Cancel").click()
    expect(chip).to_have_attribute("data-status", "cancelled")
    go.set()  # the tick sends the job as it read it, before the cancel
    tick.join(30)
    # Events arrive in order: once this toast is in, whatever the tick sent has been swapped.
    live.publish(alice.pk, [live.toast("Marker", key="marker")])
    expect(page.locator("#toasts .toast", has_text="Marker")).to_have_count(1)
    assert chip.get_attribute("data-status") == "cancelled"
