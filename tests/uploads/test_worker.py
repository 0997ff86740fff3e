"""A scrape job end to end through a real `manage.py qcluster`, against a local photo site."""

from __future__ import annotations

import pytest

from chirp.engine import wake_lane
from tests.conftest import wait_for
from tests.demo.models import DemoJob
from uploads.models import Image, ScrapeJob

from .conftest import SAMPLE_FACES, PhotoSite

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def finished(job: ScrapeJob) -> ScrapeJob | None:
    job.refresh_from_db()
    return job if job.is_terminal else None


def test_a_site_is_scraped_exactly_retried_when_fixed_and_skipped_the_second_time(
    alice, photo_site: PhotoSite, start_worker, media_root
):
    start_worker()

    job = ScrapeJob.start(alice, photo_site.page_url)
    job = wait_for(lambda: finished(job), timeout=120)

    assert (job.status, job.total, job.done, job.skipped, job.failed) == ("completed", 9, 6, 2, 1)
    faces = {
        image.source_url.rsplit("/", 1)[1].removesuffix(".jpg"): image.face_count
        for image in Image.objects.all()
    }
    assert faces == SAMPLE_FACES
    assert len(list(media_root.rglob("*.jpg"))) == 6  # one thumbnail each

    photo_site.fix_broken()
    assert job.retry_failed() == 1
    job = wait_for(lambda: finished(job), timeout=60)
    assert (job.status, job.done, job.failed) == ("completed", 7, 0)
    assert job.items.get(source_url=photo_site.image_url("broken.jpg")).status == "completed"

    again = ScrapeJob.start(alice, photo_site.page_url)
    again = wait_for(lambda: finished(again), timeout=60)
    assert (again.status, again.total, again.done, again.skipped, again.failed) == (
        "completed",
        9,
        0,
        9,
        0,
    )
    assert Image.objects.count() == 7


def test_a_long_job_in_another_lane_does_not_hold_up_uploads(
    alice, photo_site: PhotoSite, start_worker, media_root
):
    long_job = DemoJob.objects.create(owner=alice, size=600, delay=0.1)  # a minute of work
    start_worker()
    wake_lane("demo")
    wait_for(lambda: DemoJob.objects.get(pk=long_job.pk).status == "running", timeout=60)

    job = ScrapeJob.start(alice, photo_site.page_url)
    job = wait_for(lambda: finished(job), timeout=90)

    assert job.status == "completed" and job.done == 6
    long_job.refresh_from_db()
    assert long_job.status == "running" and long_job.done < 600  # still at it meanwhile
    long_job.cancel()
