"""The Content-Security-Policy: every page sends it, and no page breaks under it (in a real
browser: no violation, htmx still swaps, live updates still arrive)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from chirp import live
from imports.models import Channel, Follow, ImportJob, ListBatch, ListBatchRow, Person, Video
from tests.chirp.test_settings import CLEAN
from tests.conftest import ROOT
from tests.uploads.conftest import make_image, make_job

EXPECTED = {
    "default-src": {"'self'"},
    "script-src": {"'self'"},
    "style-src": {"'self'"},
    "connect-src": {"'self'"},
    "media-src": {"'self'"},  # the player's stored video and audio
    "frame-ancestors": {"'none'"},
    "form-action": {"'self'"},
    "base-uri": {"'self'"},
    "object-src": {"'none'"},
}
YOUTUBE_IMAGES = {
    "https://i.ytimg.com",
    "https://yt3.ggpht.com",
    "https://yt3.googleusercontent.com",
}


def directives(header: str) -> dict[str, set[str]]:
    parsed = {}
    for part in header.split(";"):
        name, *sources = part.split()
        parsed[name] = set(sources)
    return parsed


def make_channel(owner) -> tuple[Channel, ImportJob, Video]:
    """A channel `owner` imported, with one video (the pictures' YouTube addresses are known,
    no copy is stored: the pages show placeholders)."""
    channel = Channel.objects.create(
        youtube_id="UC0000000000000000000001",
        handle="@csp",
        title="Policy channel",
        avatar_url="https://yt3.googleusercontent.com/fake-avatar",
    )
    job = ImportJob.objects.create(
        owner=owner,
        channel=channel,
        channel_url=channel.youtube_url,
        status="completed",
        total=1,
        done=1,
        prepared=True,
        finished=timezone.now(),
    )
    video = Video.objects.create(
        youtube_id="vcsp0000001",
        channel=channel,
        title="A video under the policy",
        thumbnail_url="https://i.ytimg.com/vi/vcsp0000001/hqdefault.jpg",
        stage="complete",
        progress=100,
    )
    return channel, job, video


def main_pages(alice, staff) -> list[tuple[object, str]]:
    """(user, path) of every main page; None is a visitor who is not signed in."""
    upload = make_job(alice, ["completed", "failed", "queued"])
    image = make_image("policy", faces=2, seen_by=alice)
    channel, import_job, video = make_channel(alice)
    person = Person.objects.create(owner=alice, name="A person", type="INTJ")
    person.link(channel)
    Follow.start(alice, channel)
    batch = ListBatch.draft(alice, "@x\n", "text")
    batch.start()
    ListBatchRow.objects.create(job=batch, number=1, outcome="new", name="A person")
    return [
        (alice, reverse("home")),
        (alice, reverse("uploads:page")),
        (alice, reverse("uploads:job_detail", args=[upload.pk])),
        (alice, reverse("uploads:gallery")),
        (alice, reverse("uploads:image_detail", args=[image.pk])),
        (alice, reverse("imports:channel_list")),
        (alice, reverse("imports:start_import")),
        (alice, reverse("imports:channel_detail", args=[channel.pk])),
        (alice, reverse("imports:job_detail", args=[import_job.pk])),
        (alice, reverse("imports:video_detail", args=[video.pk])),
        (alice, reverse("imports:import_list")),
        (alice, reverse("imports:batch_detail", args=[batch.pk])),
        (alice, reverse("imports:person_list")),
        (alice, reverse("imports:person_detail", args=[person.pk])),
        (alice, reverse("imports:following")),
        (None, reverse("login")),
        (staff, reverse("admin:index")),
        (staff, reverse("admin:uploads_image_changelist")),
        (staff, reverse("admin:uploads_image_change", args=[image.pk])),
        (staff, reverse("admin:uploads_scrapejob_changelist")),
        (staff, reverse("admin:imports_channel_change", args=[channel.pk])),
        (staff, reverse("admin:imports_follow_changelist")),
        (staff, reverse("admin:auth_user_change", args=[alice.pk])),
    ]


@pytest.mark.django_db
def test_every_page_sends_the_policy(client, alice, staff):
    for user, path in main_pages(alice, staff):
        if user:
            client.force_login(user)
        else:
            client.logout()
        response = client.get(path)
        assert response.status_code == 200, path
        policy = directives(response["Content-Security-Policy"])
        for name, sources in EXPECTED.items():
            assert policy[name] == sources, (path, name)
        assert {"'self'", "data:"} <= policy["img-src"], path
        assert not YOUTUBE_IMAGES & policy["img-src"], path  # Chirp serves its own copies


@pytest.mark.django_db
def test_the_first_run_setup_page_sends_the_policy(client):
    response = client.get(reverse("setup"))

    assert response.status_code == 200
    assert directives(response["Content-Security-Policy"])["script-src"] == {"'self'"}


def s3_image_sources(**env: str) -> tuple[str, set[str]]:
    """The origin of a media link, and the image sources allowed, under these S3 settings."""
    code = (
        "import django; django.setup()\n"
        "from urllib.parse import urlsplit\n"
        "from django.conf import settings\n"
        "from django.core.files.storage import default_storage as s\n"
        "url = urlsplit(s.url('thumbs/a.jpg'))\n"
        "print(f'{url.scheme}://{url.netloc}')\n"
        "print(' '.join(settings.CONTENT_SECURITY_POLICY['DIRECTIVES']['img-src']))\n"
        "print(' '.join(settings.CONTENT_SECURITY_POLICY['DIRECTIVES']['media-src']))"
    )
    full_env = {
        **CLEAN,
        "DEBUG": "1",
        "CHIRP_S3_BUCKET": "chirp-media",
        "CHIRP_S3_ACCESS_KEY_ID": "test",
        "CHIRP_S3_SECRET_ACCESS_KEY": "test",
        **env,
    }
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    origin, sources, media_sources = result.stdout.splitlines()
    # The player is sent to the same bucket (a presigned URL): what shows, plays.
    assert set(media_sources.split()) == set(sources.split()) - {"data:"}
    return origin, set(sources.split())


@pytest.mark.parametrize(
    "env",
    [
        {"CHIRP_S3_REGION": "eu-west-3"},
        {
            "CHIRP_S3_ENDPOINT_URL": "http://minio.internal:9000",
            "CHIRP_S3_ADDRESSING_STYLE": "path",
        },
        {"CHIRP_S3_ENDPOINT_URL": "https://r2.example.net", "CHIRP_S3_ADDRESSING_STYLE": "virtual"},
        {"CHIRP_S3_CUSTOM_DOMAIN": "media.example.com"},
    ],
    ids=["aws", "path-style", "virtual-hosted", "custom-domain"],
)
def test_media_in_a_bucket_is_an_allowed_image_source(env, tmp_path):
    origin, sources = s3_image_sources(CHIRP_DATA_DIR=str(tmp_path), **env)

    assert origin in sources


# -- In a real browser

VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  const where = `${event.sourceFile}:${event.lineNumber}`;
  const what = event.blockedURI || "inline";
  window.cspViolations.push(`${event.violatedDirective}: ${what} (${where})`);
});
"""


def watch_policy(page) -> list[str]:
    """Collect the page's policy violations, from its own events and from the console."""
    reports: list[str] = []
    page.add_init_script(VIOLATIONS)
    page.on(
        "console",
        lambda message: (
            reports.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return reports


def violations(page, console: list[str]) -> list[str]:
    page.wait_for_timeout(300)  # late ones: lazy images, htmx's first swaps
    return [*page.evaluate("window.cspViolations"), *console]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_no_page_breaks_the_policy_in_a_browser(alice, staff, browser_for, chromium, web_server):
    pages = main_pages(alice, staff)
    opened = {}
    for user in (alice, staff):
        page = browser_for(user)
        opened[user] = (page, watch_policy(page))
    visitor = chromium.new_context(base_url=web_server.url).new_page()
    opened[None] = (visitor, watch_policy(visitor))

    seen = {}
    try:
        for user, path in pages:
            page, console = opened[user]
            response = page.goto(path)
            assert response.status == 200, path
            assert "Content-Security-Policy" in {h["name"] for h in response.headers_array()}
            page.wait_for_load_state("load")
            seen[path] = violations(page, console)
            console.clear()
    finally:
        visitor.context.close()

    assert {path: found for path, found in seen.items() if found} == {}


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_htmx_still_posts_searches_and_updates_live_under_the_policy(alice, browser_for):
    upload = make_job(alice, ["queued", "queued"])
    channel, _, _ = make_channel(alice)
    Video.objects.create(youtube_id="vcsp0000002", channel=channel, title="Another one")
    page = browser_for(alice)
    console = watch_policy(page)

    # hx-post: cancelling one image swaps its row in place.
    page.goto(reverse("uploads:job_detail", args=[upload.pk]))
    page.evaluate("window.notReloaded = true")
    first = upload.items.order_by("pk").first()
    row = page.locator(f"#{first.dom_id}")
    row.get_by_role("button", name=re.compile("cancel", re.I)).click()
    expect(row.locator(".chip")).to_have_attribute("data-status", "cancelled")
    # A live update: the job's row, sent by the web server with the item's cancel, arrives
    # (before the next change, so the two senders' updates reach the page in order).
    expect(page.locator(f"#{upload.dom_id}")).to_contain_text("1 cancelled")
    # Another: the job's row is replaced by the event the server sends.
    upload.refresh_from_db()
    upload.cancel()
    expect(page.locator(f"#{upload.dom_id} .chip")).to_have_attribute("data-status", "cancelled")
    assert page.evaluate("window.notReloaded") is True
    assert violations(page, console) == []

    # hx-get from a typed search (its trigger names inputs with a [type=search] selector).
    page.goto(channel.get_absolute_url())
    page.evaluate("window.notReloaded = true")
    expect(page.locator(".video-card")).to_have_count(2)
    page.locator("input[type=search]").fill("Another")
    expect(page.locator(".video-card")).to_have_count(1)
    assert page.evaluate("window.notReloaded") is True
    assert violations(page, console) == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_toast_delivered_twice_shows_once(alice, browser_for):
    page = browser_for(alice)
    page.goto("/")
    page.evaluate("window.notReloaded = true")
    # No wait for the stream to open: the page asks for everything after its own render
    # (lastEventId), so what is published from here on arrives however late it connects.
    live.publish(alice.pk, [live.toast("Hello", key="hello")])
    expect(page.locator("#toasts .toast")).to_have_count(1)

    repeat = live.toast("Job #7 finished: 3 done", level="completed", key="job-7-1700000000")
    live.publish(alice.pk, [repeat])
    live.publish(alice.pk, [repeat])  # at least once: the same event again
    live.publish(alice.pk, [live.toast("Another", key="another")])

    toasts = page.locator("#toasts .toast")
    # "Another" came after both copies: by then the repeat was dropped (toasts fade after 6 s,
    # so the first one is not counted: a loaded machine may take that long).
    expect(toasts.filter(has_text="Another")).to_have_count(1)
    expect(toasts.filter(has_text="Job #7 finished")).to_have_count(1)
    assert page.evaluate("window.notReloaded") is True


INLINE_CODE = re.compile(
    r"""<script(?![^>]*\bsrc=)(?![^>]*type="application/json")[^>]*>"""  # an inline script
    r"""|<style\b|\sstyle=|\son[a-z]+=""",  # a <style> block, a style or on* attribute
    re.IGNORECASE,
)


@pytest.mark.django_db
def test_no_admin_page_has_inline_code(admin_client, alice):
    """Every model's admin list, add and change page (Chirp's, auth's, django-q2's) runs
    without inline code, which the policy would block."""
    from django.contrib import admin

    make_job(alice, ["completed", "failed"])
    make_channel(alice)
    paths = [reverse("admin:index")]
    for model in admin.site._registry:
        info = (model._meta.app_label, model._meta.model_name)
        paths.append(reverse("admin:{}_{}_changelist".format(*info)))
        paths.append(reverse("admin:{}_{}_add".format(*info)))
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            paths.append(reverse("admin:{}_{}_change".format(*info), args=[first.pk]))

    found = {}
    for path in paths:
        response = admin_client.get(path)
        if response.status_code == 403:  # no adding, by design (jobs start from the pages)
            continue
        assert response.status_code == 200, path
        found[path] = INLINE_CODE.findall(response.content.decode())

    assert {path: code for path, code in found.items() if code} == {}
