"""In a real browser (Debian's chromium), against the real ASGI server and a real worker."""

from __future__ import annotations

import contextlib
import http.server
import os
import threading

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from tests.conftest import PASSWORD, wait_for
from tests.demo.models import DemoJob

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


@contextlib.contextmanager
def bad_gateway(port: int):
    """What a reverse proxy answers while the app behind it is down."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(502)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hits
    finally:
        server.shutdown()
        server.server_close()


def test_a_status_chip_changes_live_without_reload(alice, browser_for, start_worker):
    start_worker()
    page = browser_for(alice)
    page.goto("/demo/")
    page.evaluate("window.notReloaded = true")

    page.fill("#id_size", "6")
    page.fill("#id_delay", "0.3")
    page.click("#demo-form button[type=submit]")
    page.wait_for_url("**/demo/")
    page.evaluate("window.notReloaded = true")  # the form posts and redirects: a new page
    job = DemoJob.objects.get(owner=alice)
    chip = page.locator(f"#{job.dom_id} .chip")

    expect(chip).to_have_attribute("data-status", "running", timeout=20_000)
    expect(chip).to_have_attribute("data-status", "completed", timeout=30_000)
    expect(page.locator(f"#{job.dom_id} .counts")).to_contain_text("6 done")
    expect(page.locator("#toasts .toast")).to_contain_text("6 items: 6 done")
    assert page.evaluate("window.notReloaded") is True


def test_a_stranger_is_refused_the_stream_in_the_browser(alice, bob, browser_for):
    page = browser_for(bob)
    page.goto("/")
    status = page.evaluate(f"fetch('/events/?channel=user-{alice.pk}').then(r => r.status)")
    assert status == 403


def test_signing_in_through_the_form_and_out_again(alice, browser_for, web_server, chromium):
    context = chromium.new_context(base_url=web_server.url)
    page = context.new_page()
    page.goto("/demo/")
    assert "/accounts/login/" in page.url
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/demo/")
    page.click(".user-menu summary")  # Log out is in the user menu
    page.click("form.logout button")
    page.wait_for_url("**/accounts/login/")
    expect(page.locator("body")).to_contain_text("You have been signed out.")
    context.close()


def test_after_the_server_comes_back_the_page_catches_up(alice, chromium, tmp_path):
    from tests.conftest import session_cookie_for, start_web_server

    jobs = [DemoJob.objects.create(owner=alice) for _ in range(2)]
    server = start_web_server(tmp_path)
    port = int(server.url.rsplit(":", 1)[1])
    context = chromium.new_context(base_url=server.url)
    context.add_cookies(
        [{"name": k, "value": v, "url": server.url} for k, v in session_cookie_for(alice).items()]
    )
    page = context.new_page()
    try:
        page.goto("/demo/")
        page.evaluate("window.notReloaded = true")
        chips = [page.locator(f"#{job.dom_id} .chip") for job in jobs]
        expect(chips[0]).to_have_attribute("data-status", "pending")
        jobs[0].cancel()  # seen live (a fresh server's first stream may open slowly under load)
        expect(chips[0]).to_have_attribute("data-status", "cancelled", timeout=20_000)

        # The app restarts behind a proxy, which answers 502 meanwhile: the browser's stream
        # fails for good and htmx opens a new one later.
        server.process.terminate(10)
        with bad_gateway(port) as hits:
            wait_for(lambda: hits, timeout=20)
            jobs[1].cancel()  # missed while the app is away
        server = start_web_server(tmp_path, port=port)

        expect(chips[1]).to_have_attribute("data-status", "cancelled", timeout=30_000)
        assert page.evaluate("window.notReloaded") is True
    finally:
        context.close()
        server.process.terminate(10)


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="Redis keeps a user's newest events")
def test_a_page_that_missed_more_than_is_kept_reloads_itself(alice, chromium, tmp_path, settings):
    from tests.conftest import session_cookie_for, start_web_server

    settings.CHIRP_LIVE_EVENTS_KEPT = 3  # the sender trims
    jobs = [DemoJob.objects.create(owner=alice) for _ in range(6)]
    server = start_web_server(tmp_path)
    port = int(server.url.rsplit(":", 1)[1])
    context = chromium.new_context(base_url=server.url)
    context.add_cookies(
        [{"name": k, "value": v, "url": server.url} for k, v in session_cookie_for(alice).items()]
    )
    page = context.new_page()
    try:
        page.goto("/demo/")
        page.evaluate("window.notReloaded = true")
        chips = [page.locator(f"#{job.dom_id} .chip") for job in jobs]
        expect(chips[0]).to_have_attribute("data-status", "pending")

        server.process.terminate(10)
        with bad_gateway(port) as hits:
            wait_for(lambda: hits, timeout=20)
            for job in jobs:  # six changes missed, three kept: the gap cannot be replayed
                job.cancel()
        server = start_web_server(tmp_path, port=port)

        def reloaded() -> bool:
            try:
                return page.evaluate("window.notReloaded") is None
            except PlaywrightError:  # asked in the middle of the reload
                return False

        wait_for(reloaded, timeout=30)
        for chip in chips:  # the reloaded page shows them all as they are
            expect(chip).to_have_attribute("data-status", "cancelled")
    finally:
        context.close()
        server.process.terminate(10)
