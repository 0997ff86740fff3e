"""Finished scrape jobs are deleted after the retention period, by a daily schedule."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.apps import apps
from django.utils import timezone
from django_q.models import Schedule

from chirp.signals import create_schedules
from uploads.models import Image, ScrapeJob, ScrapeJobItem
from uploads.tasks import delete_old_scrape_jobs

from .conftest import make_job

pytestmark = pytest.mark.django_db


def ended(job: ScrapeJob, days_ago: float, status: str = "completed") -> ScrapeJob:
    ScrapeJob.objects.filter(pk=job.pk).update(
        status=status, finished=timezone.now() - timedelta(days=days_ago)
    )
    return job


def test_finished_jobs_past_retention_are_deleted_and_their_images_stay(alice, settings):
    settings.CHIRP_UPLOADS_RETENTION_DAYS = 7
    old = ended(make_job(alice, ["completed", "failed"]), 8)
    old_failed = ended(make_job(alice, ["failed"]), 30, "failed")
    old_cancelled = ended(make_job(alice, ["cancelled"]), 9, "cancelled")
    recent = ended(make_job(alice, ["completed"]), 6)
    running = make_job(alice, ["queued"], status="processing")
    pending = make_job(alice)
    ScrapeJob.objects.filter(pk=pending.pk).update(created=timezone.now() - timedelta(days=40))
    images = Image.objects.count()

    assert delete_old_scrape_jobs() == 3

    left = set(ScrapeJob.objects.values_list("pk", flat=True))
    assert left == {recent.pk, running.pk, pending.pk}
    assert not ScrapeJobItem.objects.filter(job__in=[old.pk, old_failed.pk, old_cancelled.pk])
    assert Image.objects.count() == images


def test_a_cancelled_job_is_kept_until_its_worker_lets_go_or_dies(alice):
    job = ended(make_job(alice, ["cancelled"]), 8, "cancelled")
    ScrapeJob.objects.filter(pk=job.pk).update(worker="host:1:abc", heartbeat=timezone.now())

    assert delete_old_scrape_jobs() == 0

    ScrapeJob.objects.filter(pk=job.pk).update(heartbeat=timezone.now() - timedelta(hours=1))
    assert delete_old_scrape_jobs() == 1


def test_the_retention_period_is_a_setting(alice, settings):
    job = ended(make_job(alice, ["completed"]), 2)
    settings.CHIRP_UPLOADS_RETENTION_DAYS = 3
    assert delete_old_scrape_jobs() == 0
    settings.CHIRP_UPLOADS_RETENTION_DAYS = 1
    assert delete_old_scrape_jobs() == 1
    assert not ScrapeJob.objects.filter(pk=job.pk).exists()


def test_the_daily_schedule_is_created_once(db):
    chirp = apps.get_app_config("chirp")
    create_schedules(sender=chirp, app_config=chirp)
    create_schedules(sender=chirp, app_config=chirp)

    [schedule] = Schedule.objects.filter(func="uploads.tasks.delete_old_scrape_jobs")
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == (
        Schedule.MINUTES,
        24 * 60,
        -1,
    )
