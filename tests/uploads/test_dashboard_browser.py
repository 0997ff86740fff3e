"""The home dashboard in a real browser: a job started through the API, run by a real worker,
appears, progresses and ends there live, without a reload."""

from __future__ import annotations

import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler

import pytest
from playwright.sync_api import expect

from chirp.models import ApiToken
from uploads.models import ScrapeJob

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

PICTURES = ["astronaut", "coffee", "chelsea", "horse"]


def test_a_job_started_through_the_api_shows_on_the_dashboard_live(
    alice, bob, browser_for, web_server, start_worker, local_http_server, sample_jpegs, screenshot
):
    # Each picture waits for the test's word, so the progress can be seen moving.
    gates = {name: threading.Event() for name in PICTURES}

    def gated(name: str):
        def handler(request: BaseHTTPRequestHandler) -> None:
            gates[name].wait(170)
            data = sample_jpegs[name]
            request.send_response(200)
            request.send_header("Content-Type", "image/jpeg")
            request.send_header("Content-Length", str(len(data)))
            request.end_headers()
            request.wfile.write(data)

        return handler

    tags = "".join(f'<img src="/{name}.jpg">' for name in PICTURES)
    local_http_server.respond("/photos.html", f"<h1>Photos</h1>{tags}".encode())
    for name in PICTURES:
        local_http_server.route(f"/{name}.jpg", gated(name))
    # Held pictures outlast a slow run (a fetch gives up after 15 s without a byte by default).
    start_worker(CHIRP_FETCH_READ_TIMEOUT="150", CHIRP_FETCH_TIMEOUT="180")

    stranger = browser_for(bob)
    stranger.goto("/")
    page = browser_for(alice)
    page.goto("/")
    expect(page.locator("#dash-begin")).to_be_visible()  # nothing yet: how to begin
    page.evaluate("window.notReloaded = true")

    _, key = ApiToken.create(alice, "dashboard test", expires=None)
    request = urllib.request.Request(
        web_server.url + "/api/scrape-jobs",
        data=json.dumps({"url": local_http_server.url("/photos.html")}).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202
    job = ScrapeJob.objects.get(owner=alice)
    row = f"#dash-{job.dom_id}"

    running = page.locator(f"#dash-running {row}")
    expect(running).to_be_visible(timeout=30_000)
    expect(running.locator(".chip")).to_have_attribute("data-status", "processing")
    expect(running.locator(".progress")).to_have_attribute("aria-valuenow", "0")

    gates["astronaut"].set()
    expect(running.locator(".progress")).to_have_attribute("aria-valuenow", "25", timeout=30_000)
    expect(running).to_contain_text("1 of 4 done")
    gates["coffee"].set()
    expect(running.locator(".progress")).to_have_attribute("aria-valuenow", "50", timeout=30_000)
    screenshot(page, "live-home-running")

    for gate in gates.values():
        gate.set()
    ended = page.locator(f"#dash-ended {row}")
    expect(ended).to_be_visible(timeout=60_000)
    expect(ended).to_contain_text("4 images: 4 new, 0 skipped, 0 failed")
    expect(page.locator(f"#dash-running {row}")).to_have_count(0)
    expect(page.locator('#dash-totals [data-total="images"] .count')).to_have_text("4")
    assert page.evaluate("window.notReloaded") is True

    # bob's dashboard, open all along, learned nothing of it.
    assert stranger.locator(row).count() == 0
    expect(stranger.locator("#dash-begin")).to_be_visible()
