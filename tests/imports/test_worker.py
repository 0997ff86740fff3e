"""Imports inside a real `manage.py qcluster`, on the fake YouTube (the worker reaches it through
CHIRP_YOUTUBE_TRANSPORT and FAKE_YOUTUBE_URL, inherited from the fixture's environment)."""

from __future__ import annotations

import re
import time
from collections import Counter

import pytest

from imports.limiter import Limiter
from imports.models import ImportJob, ImportJobItem, Video
from imports.youtube import parse_channel_input
from tests.conftest import wait_for
from tests.sse import stored_events

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

STAGES = ["metadata", "captions", "chapters", "complete"]


def state(job: ImportJob) -> ImportJob:
    job.refresh_from_db()
    return job


def start(owner, text: str, **options) -> ImportJob:
    job, created = ImportJob.start(owner, parse_channel_input(text), **options)
    assert created
    return job


def stage_events(user) -> dict[str, list[str]]:
    """Each video card's stages, in the order its live events were sent."""
    sent: dict[str, list[str]] = {}
    for name, data in stored_events(user):
        if not name.startswith("video-"):
            continue
        stage = re.search(r'data-stage="(\w+)"', data)[1]
        sent.setdefault(name, []).append(stage)
    return sent


def test_a_95_video_channel_through_a_real_worker(alice, fake_youtube, start_worker):
    fake = fake_youtube.add_channel(
        "fixture95", videos=95, chapters=True, captions={5: "auto", 6: "none"}
    )
    start_worker()

    job = start(alice, "https://www.youtube.com/@fixture95")
    wait_for(lambda: state(job).status == "completed", timeout=240)

    assert (job.total, job.done, job.failed, job.skipped, job.cancelled) == (95, 95, 0, 0, 0)
    assert job.attempts == 1 and job.channel.youtube_id == fake.channel_id
    videos = list(Video.objects.all())
    assert len(videos) == 95 and {v.youtube_id for v in videos} == set(fake.video_ids)
    assert {(v.stage, v.progress) for v in videos} == {("complete", 100)}
    sources = Counter(v.transcript_source for v in videos)
    assert sources == {"manual": 93, "auto": 1, "none": 1}
    assert all(
        v.transcript and v.transcript_segments for v in videos if v.transcript_source != "none"
    )
    with_chapters = {v.youtube_id for v in videos if v.chapters}
    assert with_chapters == {fake.videos[i].id for i in range(0, 95, 3)}
    assert ImportJobItem.objects.filter(job=job, status="completed").count() == 95
    # The listing: the channel page and three continuations (30 videos a page).
    assert fake_youtube.count("channel_page") == 1 and fake_youtube.count("browse") == 3
    # A live event for each stage of each video, in order.
    sent = stage_events(alice)
    assert len(sent) == 95
    assert all(stages == STAGES for stages in sent.values())

    def toasts() -> list[str]:
        return [html for _, html in stored_events(alice, "toast")]

    wait_for(lambda: any("95 videos imported, 1 without captions" in t for t in toasts()), 10)


def test_a_429_in_the_middle_pauses_and_resumes_by_itself(alice, fake_youtube, start_worker):
    fake = fake_youtube.add_channel("fixture95", videos=95)
    victim = fake.videos[40].id
    fake_youtube.add_fault(status=429, video_id=victim, times=4)  # every request of one try
    start_worker(CHIRP_YOUTUBE_PAUSE_SECONDS="3")

    job = start(alice, "@fixture95")
    wait_for(lambda: state(job).step.startswith("Paused: YouTube is rate-limiting"), timeout=120)
    assert job.status == "enriching" and job.done < 95
    pause = Limiter().current_pause()
    assert pause is not None and pause.reason == "rate_limited"
    wait_for(lambda: state(job).status == "completed", timeout=240)

    assert (job.total, job.done, job.failed) == (95, 95, 0)
    assert Video.objects.count() == 95
    assert set(Video.objects.values_list("stage", flat=True)) == {"complete"}
    assert ImportJobItem.objects.filter(job=job).count() == 95
    item = ImportJobItem.objects.get(video__youtube_id=victim)
    assert (item.status, item.attempts) == ("completed", 1)
    # While the breaker was open nobody asked YouTube anything. (yt-dlp may still try other
    # clients inside the attempt that met the 429, and a turn granted just before the breaker
    # opened may still arrive: hence half a second of grace.)
    requests = fake_youtube.requests
    wall = time.time() - time.monotonic()
    until = pause.until.timestamp()
    opened = until - 3
    during = [r for r in requests if opened + 0.5 < r.at + wall < until - 0.05]
    assert during == []
    # Each video was enriched once (its watch page twice: metadata and transcript), but for the
    # one the other thread had under way when the breaker opened: it went back to the queue.
    watches = Counter(r.video_id for r in requests if r.kind == "watch" and r.status == 200)
    assert len(watches) == 95
    assert sum(1 for n in watches.values() if n != 2) <= 1


def test_the_bot_check_shows_the_cookies_banner_then_goes_on(
    alice, alice_client, fake_youtube, start_worker
):
    fake_youtube.add_channel("bots", videos=6)
    fault = fake_youtube.add_fault(kinds={"watch", "player", "embed"}, playability="bot_check")
    start_worker(CHIRP_YOUTUBE_PAUSE_SECONDS="2")

    job = start(alice, "@bots")
    wait_for(lambda: (p := Limiter().current_pause()) is not None and p.reason == "bot_check", 120)

    page = alice_client.get("/channels/").content.decode()
    assert "CHIRP_YOUTUBE_COOKIES_FILE" in page and "sign in" in page
    job_page = alice_client.get(f"/channels/imports/{job.pk}/").content.decode()
    assert "Paused: YouTube asks Chirp to sign in (bot check), resuming at" in job_page
    assert not Video.objects.filter(stage="error").exists()  # nothing was given up on

    fake_youtube.faults.remove(fault)  # cookies were added: YouTube answers again
    wait_for(lambda: state(job).status == "completed", timeout=120)
    assert (job.done, job.failed) == (6, 0)
    assert "CHIRP_YOUTUBE_COOKIES_FILE" not in alice_client.get("/channels/").content.decode()


def test_permanent_errors_are_not_retried(alice, fake_youtube, start_worker):
    fake = fake_youtube.add_channel(
        "broken", videos=12, errors={2: "private", 5: "members_only", 9: "removed"}
    )
    start_worker()

    job = start(alice, "@broken")
    wait_for(lambda: state(job).status == "completed", timeout=120)
    time.sleep(2)  # nothing comes back for another try

    assert (job.done, job.failed) == (9, 3)
    failed = {v.youtube_id: v.error_reason for v in Video.objects.filter(stage="error")}
    assert failed == {
        fake.videos[2].id: "private",
        fake.videos[5].id: "members_only",
        fake.videos[9].id: "removed",
    }
    for video_id in failed:
        assert fake_youtube.count("watch", video_id=video_id) == 1
        assert fake_youtube.count("timedtext", video_id=video_id) == 0
    assert "9 videos imported, 3 failed" in job.finished_summary()


def test_an_import_resumes_after_the_worker_is_sigkilled(alice, fake_youtube, start_worker):
    fake = fake_youtube.add_channel("fixture95", videos=95)
    fake_youtube.add_fault(kinds={"timedtext"}, delay=0.1)  # long enough to kill mid-way
    worker = start_worker()

    job = start(alice, "@fixture95")
    wait_for(lambda: state(job).done >= 20, timeout=120)
    worker.kill()  # SIGKILL to every process of the cluster, mid-enrichment
    done_at_crash = state(job).done
    finished_before = set(
        ImportJobItem.objects.filter(job=job, status="completed").values_list(
            "video__youtube_id", flat=True
        )
    )
    assert job.status == "enriching" and 20 <= done_at_crash < 95

    time.sleep(2.5)  # the lease (2 s in tests) runs out
    start_worker()  # a new cluster resumes the import by itself
    wait_for(lambda: state(job).status == "completed", timeout=240)

    assert (job.total, job.done, job.failed) == (95, 95, 0)
    assert job.attempts == 2
    assert Video.objects.count() == 95
    assert set(Video.objects.values_list("stage", flat=True)) == {"complete"}
    assert ImportJobItem.objects.filter(job=job, status="completed").count() == 95
    watches = Counter(r.video_id for r in fake_youtube.requests if r.kind == "watch")
    assert all(watches[video_id] == 2 for video_id in finished_before)  # not redone
    redone = [video_id for video_id in fake.video_ids if watches[video_id] > 2]
    assert len(redone) <= 2  # at most the videos in flight (two threads) ran again
