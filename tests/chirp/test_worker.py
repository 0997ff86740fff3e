"""The engine inside real `manage.py qcluster` processes: crashes, shutdowns, two clusters."""

from __future__ import annotations

import time
from itertools import pairwise

import pytest
from django.db.models import Max
from django_q.tasks import async_task, result

from chirp.engine import wake_lane
from tests.conftest import wait_for
from tests.demo.models import DemoItem, DemoJob

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def job_state(job: DemoJob) -> DemoJob:
    job.refresh_from_db()
    return job


def test_a_sigkilled_worker_is_resumed_and_the_job_completes_exactly(alice, start_worker):
    job = DemoJob.objects.create(owner=alice, size=30, delay=0.1)
    worker = start_worker()
    wake_lane("demo")
    wait_for(lambda: job_state(job).done >= 5, timeout=60)

    worker.kill()  # SIGKILL to every process of the cluster, mid-job
    done_at_crash = job_state(job).done
    assert job.status == "running" and 5 <= done_at_crash < 30

    time.sleep(2.5)  # the lease (2 s in tests) runs out
    start_worker()  # a new cluster resumes the lane by itself: nobody queues anything
    wait_for(lambda: job_state(job).status == "completed", timeout=90)

    assert (job.total, job.done, job.failed, job.skipped) == (30, 30, 0, 0)
    assert job.attempts == 2
    runs = list(DemoItem.objects.filter(job=job).order_by("number").values_list("runs", flat=True))
    assert runs[:done_at_crash] == [1] * done_at_crash  # done before the crash: not redone
    assert sum(runs) <= 31  # at most the one item in flight ran twice
    assert DemoItem.objects.filter(job=job, status="completed").count() == 30


def test_sigterm_hands_the_job_back_within_seconds(alice, start_worker):
    job = DemoJob.objects.create(owner=alice, size=400, delay=0.05)
    worker = start_worker(CHIRP_SLICE_SECONDS="600")
    wake_lane("demo")
    wait_for(lambda: job_state(job).done >= 5, timeout=60)

    took = worker.terminate(timeout=30)

    assert worker.popen.returncode is not None
    assert took < 10, f"qcluster took {took:.1f}s to stop"
    job = job_state(job)
    assert job.status == "running" and job.worker == "" and job.done < 400
    assert not DemoItem.objects.filter(job=job, status="processing").exists()

    start_worker()
    wait_for(lambda: job_state(job).status == "completed", timeout=120)
    assert (job.done, job.attempts) == (400, 1)  # a clean hand-back is not a failed attempt
    assert DemoItem.objects.aggregate(m=Max("runs"))["m"] == 1


def test_two_clusters_run_one_job_at_a_time_per_lane(alice, start_worker):
    jobs = [DemoJob.objects.create(owner=alice, size=6, delay=0.05) for _ in range(4)]
    start_worker()
    start_worker()
    for _ in range(4):
        wake_lane("demo")

    wait_for(lambda: all(job_state(j).status == "completed" for j in jobs), timeout=120)

    spans = sorted((j.started, j.finished) for j in jobs)
    for (_, finished), (started, _) in pairwise(spans):
        assert finished <= started, "two jobs of one lane overlapped"
    assert [j.pk for j in sorted(jobs, key=lambda j: j.started)] == [j.pk for j in jobs]


def test_a_worker_process_keeps_its_database_connection_from_task_to_task(start_worker):
    worker = start_worker(CHIRP_WORKERS="1")  # one worker process runs both tasks
    first = async_task("tests.demo.tasks.connections_opened")
    assert result(first, wait=30_000) == 1
    second = async_task("tests.demo.tasks.connections_opened")
    assert result(second, wait=30_000) == 1  # the same connection: none opened for it
    worker.terminate(30)

    start_worker(CHIRP_WORKERS="1", CHIRP_WORKER_CONN_MAX_AGE="0")  # one per task, if asked
    opened = [result(async_task("tests.demo.tasks.connections_opened"), wait=30_000)]
    opened.append(result(async_task("tests.demo.tasks.connections_opened"), wait=30_000))
    assert opened[1] is not None and opened[1] > 1
