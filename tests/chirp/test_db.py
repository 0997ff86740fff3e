"""The worker's commits do not wait for the disk on PostgreSQL; everything else's do."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from chirp import engine
from chirp.db import worker_commits
from tests.demo.models import DemoJob

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL setting"),
]


def synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


def test_inside_worker_commits_this_threads_connections_do_not_wait():
    assert synchronous_commit() == "on"
    with worker_commits():
        assert synchronous_commit() == "off"
        connection.close()  # a connection opened meanwhile is relaxed too
        assert synchronous_commit() == "off"
    assert synchronous_commit() == "on"


def test_another_thread_is_not_relaxed_by_mine():
    seen = []

    def other() -> None:
        try:
            seen.append(synchronous_commit())
        finally:
            connection.close()

    with worker_commits():
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert seen == ["on"]


def test_it_can_be_turned_off(settings):
    settings.CHIRP_WORKER_ASYNC_COMMIT = False
    with worker_commits():
        assert synchronous_commit() == "on"


@pytest.mark.parametrize("threads", [1, 2])
def test_the_engine_runs_items_with_worker_commits(alice, monkeypatch, threads):
    seen: list[str] = []

    def process_item(job, item, ctx) -> None:
        seen.append(synchronous_commit())
        item.complete()

    monkeypatch.setattr(DemoJob, "process_item", process_item)
    job = DemoJob.objects.create(owner=alice, size=4, threads=threads)

    engine.run_lane("demo")

    job.refresh_from_db()
    assert (job.status, job.done) == ("completed", 4)
    assert seen == ["off"] * 4
    assert synchronous_commit() == "on"  # the caller's connection is as it was


def test_a_videos_transcript_is_stored_with_lz4():
    """Migration 0006: the long values written on every video's path compress with lz4."""
    from imports.models import Channel, Video

    channel = Channel.objects.create(youtube_id="UC" + "z" * 22, title="Channel")
    video = Video.objects.create(youtube_id="lz4video000", channel=channel, title="Video")
    words = " ".join(f"word{n % 400}" for n in range(3000))  # ~25 kB, stored compressed
    Video.objects.filter(pk=video.pk).update(
        transcript=words, transcript_segments=[[n, 1.0, words[:80]] for n in range(200)]
    )

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_column_compression(transcript), pg_column_compression(transcript_segments)"
            " FROM imports_video WHERE id = %s",
            [video.pk],
        )
        assert cursor.fetchone() == ("lz4", "lz4")
