"""In a real browser (Debian's chromium), against the real ASGI server and a real worker."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.demo.models import DemoJob

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


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
    page.click("form.logout button")
    page.wait_for_url("**/accounts/login/")
    context.close()
