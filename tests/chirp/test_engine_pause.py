"""Pausing a lane: JobPaused from a job's code, and a job model's paused_until() hook."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db.models import F
from django.utils import timezone

from chirp import engine
from chirp.jobs import JobPaused
from tests.demo.models import DemoItem, DemoJob

pytestmark = pytest.mark.django_db(transaction=True)


def pause_once_at(monkeypatch, number: int, seconds: float) -> dict:
    """Make item `number` ask for a pause the first time it runs."""
    seen = {"paused_at": None}
    original = DemoJob.process_item

    def process_item(self, item, ctx):
        if item.number == number and seen["paused_at"] is None:
            DemoItem.objects.filter(pk=item.pk).update(runs=F("runs") + 1)
            seen["paused_at"] = timezone.now()
            raise JobPaused(
                timezone.now() + timedelta(seconds=seconds), "Paused: the service asked"
            )
        return original(self, item, ctx)

    monkeypatch.setattr(DemoJob, "process_item", process_item)
    return seen


def test_an_item_that_pauses_goes_back_and_the_job_resumes_after_the_pause(alice, monkeypatch):
    seen = pause_once_at(monkeypatch, number=3, seconds=0.6)
    job = DemoJob.objects.create(owner=alice, size=6)

    started = time.monotonic()
    assert engine.run_lane("demo") == "ran 2 job(s)"  # claimed, handed back, claimed again

    job.refresh_from_db()
    assert time.monotonic() - started >= 0.6
    assert (job.status, job.done, job.failed, job.total) == ("completed", 6, 0, 6)
    third = DemoItem.objects.get(job=job, number=3)
    assert (third.status, third.runs, third.attempts) == ("completed", 2, 1)
    later = DemoItem.objects.filter(job=job, number__gt=3)
    assert all(item.started > seen["paused_at"] for item in later)


def test_a_paused_job_is_handed_back_with_the_message_as_its_step(alice, monkeypatch, settings):
    settings.CHIRP_SLICE_SECONDS = 1
    pause_once_at(monkeypatch, number=2, seconds=30)
    job = DemoJob.objects.create(owner=alice, size=4)

    assert engine.run_lane("demo") == "ran 1 job(s), more to do"  # waited out its slice

    job.refresh_from_db()
    assert (job.status, job.worker, job.step) == ("running", "", "Paused: the service asked")
    assert job.done == 1 and job.attempts == 1
    second = DemoItem.objects.get(job=job, number=2)
    assert (second.status, second.attempts, second.started) == ("queued", 0, None)


def test_no_job_is_claimed_while_the_model_says_the_lane_is_paused(alice, monkeypatch, settings):
    settings.CHIRP_SLICE_SECONDS = 1
    until = timezone.now() + timedelta(seconds=30)
    monkeypatch.setattr(DemoJob, "paused_until", classmethod(lambda cls: until))
    job = DemoJob.objects.create(owner=alice, size=2)

    assert engine.run_lane("demo") == "ran 0 job(s), more to do"
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("pending", 0)

    monkeypatch.setattr(DemoJob, "paused_until", classmethod(lambda cls: None))
    assert engine.run_lane("demo") == "ran 1 job(s)"
    job.refresh_from_db()
    assert job.status == "completed"


def test_a_pause_with_nothing_to_run_does_not_hold_the_slot(alice, monkeypatch):
    until = timezone.now() + timedelta(minutes=5)
    monkeypatch.setattr(DemoJob, "paused_until", classmethod(lambda cls: until))

    started = time.monotonic()
    assert engine.run_lane("demo") == "ran 0 job(s)"
    assert time.monotonic() - started < 1


def test_a_pause_while_preparing_prepares_again_afterwards(alice, monkeypatch):
    calls = []
    original = DemoJob.prepare

    def prepare(self, ctx):
        calls.append(timezone.now())
        if len(calls) == 1:
            raise JobPaused(timezone.now() + timedelta(seconds=0.3))
        return original(self, ctx)

    monkeypatch.setattr(DemoJob, "prepare", prepare)
    job = DemoJob.objects.create(owner=alice, size=3)

    engine.run_lane("demo")

    job.refresh_from_db()
    assert len(calls) == 2 and (calls[1] - calls[0]).total_seconds() >= 0.3
    assert (job.status, job.total, job.done, job.attempts) == ("completed", 3, 3, 1)
