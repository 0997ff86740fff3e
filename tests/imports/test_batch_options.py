"""A list batch's options reach each row's import as its form says: "at most this many videos a
new channel" caps a channel's first import only, never the check of a channel the owner has
already (its new videos past the cap would never come: the next check stops at the newest
known one). The engine runs in-process, as in test_batch_media.py. alice owns."""

from __future__ import annotations

import pytest

from chirp import engine
from imports.models import ImportJob, ListBatch, Video
from imports.youtube import parse_channel_input
from tests.imports.test_batch_media import run_batch

pytestmark = pytest.mark.django_db(transaction=True)


def import_now(owner, handle: str) -> ImportJob:
    job, _ = ImportJob.start(owner, parse_channel_input(handle))
    for _ in range(10):
        engine.run_lane("imports")
        job.refresh_from_db()
        if job.is_terminal:
            return job
    raise AssertionError(f"The import did not end: {job.status}")


def test_the_cap_is_for_a_new_channel_only(alice, fake_youtube, settings):
    settings.CHIRP_SLICE_SECONDS = 3  # a row waiting for its import hands the batch back
    known = fake_youtube.add_channel("known", videos=2)
    fake_youtube.add_channel("fresh", videos=8)
    assert import_now(alice, "@known").done == 2
    fake_youtube.upload(known, 5)  # five new uploads since alice's import
    batch = ListBatch.draft(alice, "@known\n@fresh\n", "text")
    batch.start(limit=3, only_new=True)

    batch = run_batch(batch)

    assert (batch.status, batch.done) == ("completed", 2)
    assert Video.objects.filter(channel__handle="@known").count() == 7
    assert Video.objects.filter(channel__handle="@fresh").count() == 3
    report = {row["row"]: row for row in batch.report()}
    assert (report[1]["videos_imported"], report[2]["videos_imported"]) == (5, 3)
    rows = {row.number: row.import_job for row in batch.items.select_related("import_job")}
    assert (rows[1].limit, rows[2].limit) == (None, 3)
