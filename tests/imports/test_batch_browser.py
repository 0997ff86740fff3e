"""A channel list in a real browser (Debian's chromium) against uvicorn, a real worker and the
fake YouTube: upload a file, see the preview with its invalid row flagged, start the batch,
watch its progress move live (no reload), and download the report."""

from __future__ import annotations

import csv
import io
import re

import pytest
from playwright.sync_api import expect

from imports.models import ListBatch
from tests.imports.test_browser import offline

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_upload_preview_start_watch_and_download_the_report(
    alice, browser_for, start_worker, fake_youtube, tmp_path
):
    for n in range(1, 4):
        fake_youtube.add_channel(f"shown{n}", videos=6, title=f"Shown {n}")
    fake_youtube.add_fault(kinds={"watch"}, delay=0.1)  # slow enough to watch it move
    listing = tmp_path / "people.csv"
    listing.write_text(
        "name,email,type,channel_url\n"
        "Ann,ann@example.com,A,@shown1\n"
        "<b>Bold</b>,bold@example.com,B,https://example.com/@elsewhere\n"
        "Cy,cy@example.com,C,@shown2\n"
        "Di,di@example.com,D,@shown3\n"
    )
    start_worker()
    page = browser_for(alice)
    offline(page)

    page.goto("/channels/lists/")
    page.set_input_files("input[name=file]", str(listing))
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#list-row-3")).to_contain_text("Invalid")
    expect(page.locator("#list-row-3")).to_contain_text("<b>Bold</b>")  # shown, not run
    expect(page.locator("[data-count=invalid]")).to_have_text("1")
    page.get_by_role("button", name="Start the batch").click()

    batch = ListBatch.objects.get(owner=alice)
    expect(page).to_have_url(re.compile(rf"/channels/lists/{batch.pk}/$"))
    page.evaluate("window.notReloaded = true")
    progress = page.locator(f"#{batch.dom_id}-progress")
    # Live: a channel importing now with its own card, then the counts move to the end.
    expect(progress.locator(".batch-current .import-job")).to_be_visible(timeout=60_000)
    expect(progress).to_have_attribute("data-status", "completed", timeout=120_000)
    expect(progress.locator("[data-count=done]")).to_have_text("4")
    expect(progress.locator("[data-count=videos]")).to_have_text("18")
    expect(progress.locator("[data-count=skipped-rows]")).to_have_text("1")
    # One toast for the list (its rows' imports do not each toast).
    expect(page.locator("#toasts .toast")).to_have_count(1)
    expect(page.locator("#toasts .toast")).to_contain_text("3 of 4 channels imported, 18 videos")
    rows = page.locator("table.batch-rows tbody tr")
    expect(rows.locator("[data-status=completed]")).to_have_count(3)
    assert page.evaluate("window.notReloaded") is True

    with page.expect_download() as download:
        page.locator("#batch-report-csv").click()
    report = list(csv.reader(io.StringIO(download.value.path().read_text())))
    assert [r[6] for r in report[1:]] == ["completed", "skipped", "completed", "completed"]
    assert [r[8] for r in report[1:]] == ["6", "0", "6", "6"]
    assert report[2][3] == "<b>Bold</b>"
