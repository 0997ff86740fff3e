"""The home page's dashboard: a user's own jobs of both apps (running, waiting with their place
in line, recently ended), the totals of what they can see, YouTube's pause, the way to begin,
and the live events that keep it current."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from chirp import engine
from imports.limiter import Limiter
from imports.models import Channel, ImportJob, Video
from imports.youtube import Reason
from tests.demo.models import DemoJob
from tests.sse import stored_events
from tests.uploads.conftest import make_image, make_job
from uploads.models import ScrapeJob

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def section(html: str, name: str) -> str:
    """The HTML of one list of the dashboard (dash-running, dash-waiting, dash-ended)."""
    found = re.search(rf'<ul class="dash-jobs" id="{name}">(.*?)</ul>', html, re.S)
    return found.group(1) if found else ""


def totals(html: str) -> dict[str, int]:
    pairs = re.findall(r'data-total="(\w+)"><dt[^>]*>\w+</dt><dd class="count">(\d+)</dd>', html)
    return {label: int(n) for label, n in pairs}


def make_channel(owner, title: str, videos: int, transcripts: int = 0) -> Channel:
    """A channel `owner` imported (so they see it), with its videos, some transcribed."""
    n = Channel.objects.count() + 1
    channel = Channel.objects.create(youtube_id=f"UC{n:022d}", handle=f"@c{n}", title=title)
    ImportJob.objects.create(
        owner=owner,
        channel=channel,
        channel_url=channel.youtube_url,
        status="completed",
        prepared=True,
        total=videos,
        done=videos,
        finished=timezone.now(),
    )
    Video.objects.bulk_create(
        Video(
            youtube_id=f"v{n:03d}{i:07d}",
            channel=channel,
            title=f"Video {i}",
            stage="complete",
            transcript_source="manual" if i < transcripts else "none",
        )
        for i in range(videos)
    )
    return channel


def test_each_job_shows_in_its_section_with_its_place_progress_or_summary(alice, bob):
    now = timezone.now()
    running = ScrapeJob.objects.create(
        owner=alice,
        url="https://photos.example/running.html",
        status="processing",
        prepared=True,
        total=10,
        done=4,
        step="Reading the pictures",
        started=now,
        worker="w",
        heartbeat=now,
    )
    # The uploads line: bob's job is first, alice's second; one job runs meanwhile.
    ScrapeJob.objects.create(owner=bob, url="https://b.example/", enqueued=now - timedelta(2))
    waiting = ScrapeJob.objects.create(
        owner=alice, url="https://photos.example/waiting.html", enqueued=now - timedelta(1)
    )
    import_waiting = ImportJob.objects.create(owner=alice, channel_url="https://youtube.com/@x")
    ended = ScrapeJob.objects.create(
        owner=alice,
        url="https://photos.example/ended.html",
        status="completed",
        prepared=True,
        total=3,
        done=2,
        skipped=1,
        finished=now - timedelta(minutes=5),
    )
    bobs = ScrapeJob.objects.create(
        owner=bob, url="https://b.example/secret.html", status="completed", finished=now
    )

    html = client_for(alice).get("/").content.decode()

    shown = section(html, "dash-running")
    assert f'id="dash-{running.dom_id}"' in shown
    assert "Reading the pictures" in shown and 'aria-valuenow="40"' in shown
    assert f'href="/uploads/jobs/{running.pk}/"' in shown
    shown = section(html, "dash-waiting")
    assert f'id="dash-{waiting.dom_id}"' in shown
    assert re.search(rf'id="dash-{waiting.dom_id}".*?2nd in line', shown, re.S)
    assert re.search(rf'id="dash-{import_waiting.dom_id}".*?1st in line', shown, re.S)
    shown = section(html, "dash-ended")
    assert f'id="dash-{ended.dom_id}"' in shown
    assert "3 images: 2 new, 1 skipped, 0 failed" in shown and "5\xa0minutes ago" in shown
    # Only alice's own jobs: bob's, waiting or ended, are not on her dashboard.
    assert bobs.url not in html and "b.example" not in html
    assert "Welcome to Chirp" not in html


def test_staff_see_only_their_own_jobs_there(alice, staff):
    ScrapeJob.objects.create(owner=alice, url="https://photos.example/alice.html")

    html = client_for(staff).get("/").content.decode()

    assert "alice.html" not in html and "Welcome to Chirp" in html


def test_totals_count_only_what_the_user_can_see(alice, bob):
    for name, faces in [("one", 1), ("two", 2), ("three", 0)]:
        make_image(name, faces=faces, seen_by=alice)
    make_image("bobs", faces=5, seen_by=bob)
    make_channel(alice, "Alice's channel", videos=3, transcripts=2)
    make_channel(bob, "Bob's channel", videos=7, transcripts=7)

    html = client_for(alice).get("/").content.decode()

    assert totals(html) == {
        "images": 3,
        "faces": 3,
        "channels": 1,
        "videos": 3,
        "transcripts": 2,
    }
    assert "Bob's channel" not in html


def test_the_totals_move_while_a_job_runs_at_most_once_a_second(
    alice, django_capture_on_commit_callbacks
):
    make_image("earlier", faces=1, seen_by=alice)
    job = make_job(alice, ["queued"] * 4)
    page = client_for(alice).get("/").content.decode()
    assert 'id="dash-totals" sse-swap="dash-totals" hx-swap="outerHTML"' in page
    token = engine.new_token()
    slot = engine.claim_slot(ScrapeJob.lane, token)
    job, _ = engine.claim_job(ScrapeJob, token)
    monitor = engine.Monitor(slot, token)
    monitor.watch(engine.RunContext(job, token, time.monotonic() + 60))
    first, second, *_ = job.items.all()

    def bring_in(item, name: str, faces: int) -> None:
        item.job = job
        item.start()
        with django_capture_on_commit_callbacks(execute=True):
            item.complete(image=make_image(name, faces=faces, seen_by=alice, found_on=job.url))

    def sent() -> list[dict[str, int]]:
        return [totals(html) for _, html in stored_events(alice, "dash-totals")]

    monitor.check()  # the runner's first tick: the job as the claim sent it
    bring_in(first, "first", faces=2)
    monitor.check()  # the job moved, but its dashboard totals were just read
    assert sent() == []
    time.sleep(monitor.totals_every)
    monitor.check()
    assert sent()[-1]["images"] == 2 and sent()[-1]["faces"] == 3
    bring_in(second, "second", faces=0)
    monitor.check()
    monitor.check()
    assert len(sent()) == 1  # not twice within a second
    time.sleep(monitor.totals_every)
    monitor.check()
    monitor.check()  # nothing moved since: nothing sent
    assert [(n["images"], n["faces"]) for n in sent()] == [(2, 3), (3, 3)]


def test_an_empty_installation_shows_how_to_begin(alice):
    html = client_for(alice).get("/").content.decode()

    assert "Welcome to Chirp" in html
    assert 'href="/uploads/"' in html and 'href="/channels/add/"' in html
    assert 'id="dash-running"' not in html


def test_youtube_s_pause_shows_while_an_import_waits(alice, settings):
    settings.CHIRP_YOUTUBE_PAUSE_SECONDS = 600
    ImportJob.objects.create(owner=alice, channel_url="https://www.youtube.com/@x")
    client = client_for(alice)
    assert "YouTube is rate-limiting" not in client.get("/").content.decode()

    pause = Limiter().throttled(Reason.RATE_LIMITED)
    try:
        html = client.get("/").content.decode()
    finally:
        Limiter().reset()

    resume = timezone.localtime(pause.until).strftime("%H:%M")
    assert f"YouTube is rate-limiting, resuming at {resume}" in html
    assert 'id="import-banner"' in html


@pytest.mark.django_db(transaction=True)
def test_a_job_moves_between_sections_live_and_its_row_is_sent_as_it_goes(alice, bob):
    job = DemoJob.objects.create(owner=alice, size=3, delay=0.3)
    bobs = DemoJob.objects.create(owner=bob, size=1)
    dashboards = [html for _, html in stored_events(alice, "dashboard")]
    assert len(dashboards) == 1  # created: waiting, first in line
    assert re.search(
        rf'id="dash-{job.dom_id}".*?1st in line', section(dashboards[0], "dash-waiting"), re.S
    )
    assert re.search(rf'id="dash-{bobs.dom_id}".*?2nd in line', stored_events(bob)[-1][1], re.S)

    engine.run_lane("demo")

    dashboards = [html for _, html in stored_events(alice, "dashboard")]
    assert any(f'id="dash-{job.dom_id}"' in section(html, "dash-running") for html in dashboards)
    final = dashboards[-1]
    assert f'id="dash-{job.dom_id}"' in section(final, "dash-ended")
    assert "3 items: 3 done" in section(final, "dash-ended")
    rows = [html for _, html in stored_events(alice, f"dash-{job.dom_id}")]
    assert any('data-status="running"' in row and "of 3 done" in row for row in rows)
    assert 'data-status="completed"' in rows[-1]
    # bob moved up the line when alice's job started, and only his own job is in his events.
    assert any(
        re.search(rf'id="dash-{bobs.dom_id}".*?1st in line', html, re.S)
        for _, html in stored_events(bob, "dashboard")
    )
    assert not [html for _, html in stored_events(bob) if job.dom_id in html]


def test_a_waiting_job_cancelled_moves_everyone_behind_it_up(
    alice, bob, django_capture_on_commit_callbacks
):
    first = DemoJob.objects.create(owner=alice, enqueued=timezone.now() - timedelta(minutes=1))
    bobs = DemoJob.objects.create(owner=bob)
    assert "2nd in line" in client_for(bob).get("/").content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        first.cancel()

    sent = stored_events(bob, "dashboard")[-1][1]
    assert re.search(rf'id="dash-{bobs.dom_id}".*?1st in line', sent, re.S)
    assert f"dash-{first.dom_id}" not in sent
    mine = stored_events(alice, "dashboard")[-1][1]
    assert f'id="dash-{first.dom_id}"' in section(mine, "dash-ended")
