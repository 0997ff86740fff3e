"""At most CHIRP_MEDIA_CONCURRENCY media downloads at once across the installation
(imports.limiter.DownloadSlot): the others wait their turn, saying so on their cards, and a
cancel or a shutdown ends the wait; a slot whose holder died lapses with its lease.

Real threads (the engine's runners and each import's pool) download real clips from the fake
YouTube, whose media host counts the responses it is sending at once."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections

from chirp import engine
from imports.limiter import DOWNLOADS_KEY, DownloadSlot, default_store
from imports.models import ImportJob, MediaFile, Video
from imports.youtube import parse_channel_input
from tests.conftest import wait_for
from tests.imports import test_media
from tests.sse import stored_events

pytestmark = pytest.mark.django_db(transaction=True)

media = test_media.media  # the fake YouTube serving real clips; the test's own folders

WAITING = "Waiting for a download slot"


def run_lane_in_threads(runners: int) -> list[threading.Thread]:
    def run() -> None:
        try:
            engine.run_lane("imports")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(runners)]
    for thread in threads:
        thread.start()
    return threads


def cards_of(user, video: Video) -> list[str]:
    return [" ".join(html.split()) for _, html in stored_events(user, video.dom_id)]


def test_downloads_at_once_never_exceed_the_setting(alice, bob, media, settings):
    """Two imports run at once (two runners), each with two threads: four downloads could run
    together; two do, the others wait their turn, and every video is stored."""
    settings.CHIRP_MEDIA_CONCURRENCY = 2
    settings.CHIRP_LANE_CONCURRENCY = {**settings.CHIRP_LANE_CONCURRENCY, "imports": 2}
    settings.CHIRP_YOUTUBE_CONCURRENCY = 2
    media.media_bandwidth = 4_000_000  # a second or so per download: they overlap
    media.add_channel("first", videos=3)
    media.add_channel("second", videos=3)
    jobs = [
        ImportJob.start(alice, parse_channel_input("@first"), media_quality="720")[0],
        ImportJob.start(bob, parse_channel_input("@second"), media_quality="720")[0],
    ]

    for thread in run_lane_in_threads(2):
        thread.join(120)

    for job in jobs:
        job.refresh_from_db()
        assert (job.status, job.done, job.failed) == ("completed", 3, 0)
    assert MediaFile.objects.count() == 6
    # Six downloads, two at a time: never more, and the limit was reached.
    assert media.media_most_in_flight == 2
    owners = {"@first": alice, "@second": bob}
    waited = [
        video
        for video in Video.objects.select_related("channel")
        if any(WAITING in html for html in cards_of(owners[video.channel.handle], video))
    ]
    assert waited  # some cards said why they were not downloading yet


def test_a_download_waiting_for_a_slot_ends_with_its_cancelled_import(alice, media, settings):
    settings.CHIRP_MEDIA_CONCURRENCY = 1
    media.add_channel("waiting", videos=1)
    job, _ = ImportJob.start(alice, parse_channel_input("@waiting"), media_quality="720")
    taken = DownloadSlot()
    taken.acquire()  # another worker's download holds the only slot
    try:
        (runner,) = run_lane_in_threads(1)
        video = wait_for(lambda: Video.objects.filter(stage="download").first(), timeout=60)
        wait_for(lambda: any(WAITING in html for html in cards_of(alice, video)), timeout=30)

        job.cancel()
        runner.join(15)

        assert not runner.is_alive()  # the wait ended: it did not wait for the slot
        job.refresh_from_db()
        item = job.items.get()
        assert (job.status, item.status) == ("cancelled", "cancelled")
        assert media.count("media") == 0 and MediaFile.objects.count() == 0
    finally:
        taken.release()


def test_a_slot_is_renewed_while_held_and_lapses_when_its_holder_died(monkeypatch, settings):
    settings.CHIRP_MEDIA_CONCURRENCY = 1
    monkeypatch.setattr(DownloadSlot, "lease", staticmethod(lambda: 1.0))

    class GaveUp(Exception):
        pass

    def patience(seconds: float):
        """A sleep that gives up after `seconds` in all."""
        end = time.monotonic() + seconds

        def sleep(step: float) -> None:
            if time.monotonic() > end:
                raise GaveUp
            time.sleep(step)

        return sleep

    # A live holder keeps its slot past its lease (renewed): the other one gets none.
    holder = DownloadSlot()
    holder.acquire()
    waits: list[str] = []
    with pytest.raises(GaveUp):
        DownloadSlot(sleep=patience(2.5), on_wait=lambda: waits.append("waiting")).acquire()
    assert waits == ["waiting"]  # told once
    holder.release()  # given back: the next one takes it at once
    with DownloadSlot(sleep=patience(0)):
        pass

    # A worker that took the slot and died (nothing renews it): it lapses with its lease.
    store = default_store(DOWNLOADS_KEY)
    assert not store.reserve(time.time(), 0, 0, holder="dead-worker", cap=1, lease=1.0).full
    survivor = DownloadSlot(sleep=patience(10))
    survivor.acquire()  # no GaveUp: the dead worker's slot came back
    survivor.release()
