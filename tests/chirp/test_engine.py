"""The job engine, run in-process: claims, lanes, resume, limits, cancel, retry, transitions."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from chirp import engine
from chirp.jobs import IllegalTransition
from chirp.models import LaneSlot
from tests.conftest import wait_for
from tests.demo.models import DemoItem, DemoJob
from tests.sse import stored_events

pytestmark = pytest.mark.django_db(transaction=True)


def make_job(owner, **fields) -> DemoJob:
    return DemoJob.objects.create(owner=owner, **fields)


def in_threads(n: int, target) -> list:
    """Run target(i) in n threads started together; return their results."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = target(i)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def crash_mid_job(job: DemoJob, *, done: int, processing: int = 1) -> None:
    """Leave the job as a SIGKILLed worker would: claimed, some items done, one in flight,
    lease and slot held by a worker that no longer beats."""
    dead = "deadhost:1:dead"
    old = timezone.now() - timedelta(hours=1)
    engine.claim_job(DemoJob, dead)
    job.refresh_from_db()
    job.mark_prepared([DemoItem(number=n) for n in range(1, job.size + 1)], dead)
    for item in DemoItem.objects.filter(job=job).order_by("pk")[:done]:
        item.job = job
        item.start()
        item.complete()
    for item in DemoItem.objects.filter(job=job, status="queued").order_by("pk")[:processing]:
        item.job = job
        item.start()
    DemoJob.objects.filter(pk=job.pk).update(heartbeat=old)
    LaneSlot.objects.update_or_create(
        lane="demo", slot=0, defaults={"holder": dead, "heartbeat": old}
    )


def test_a_job_runs_to_completion_with_exact_counters(alice):
    job = make_job(alice, size=12)

    assert engine.run_lane("demo") == "ran 1 job(s)"

    job.refresh_from_db()
    assert (job.status, job.total, job.done, job.failed, job.skipped) == ("completed", 12, 12, 0, 0)
    assert job.attempts == 1 and job.worker == "" and job.finished is not None
    assert list(DemoItem.objects.filter(job=job).values_list("runs", flat=True)) == [1] * 12


def test_two_threads_never_process_an_item_twice(alice):
    job = make_job(alice, size=60, threads=2, delay=0.002)

    engine.run_lane("demo")

    job.refresh_from_db()
    assert (job.status, job.done) == ("completed", 60)
    assert set(DemoItem.objects.filter(job=job).values_list("runs", flat=True)) == {1}


def test_only_one_of_two_racing_workers_gets_the_slot():
    tokens = [f"worker-{i}" for i in range(8)]
    for _ in range(5):
        LaneSlot.objects.filter(lane="demo").update(holder="", heartbeat=None)
        got = in_threads(len(tokens), lambda i: engine.claim_slot("demo", tokens[i]))
        assert sum(1 for slot in got if slot is not None) == 1


def test_only_one_of_two_racing_workers_gets_the_job(alice):
    for _ in range(5):
        job = make_job(alice)
        got = in_threads(4, lambda i: engine.claim_job(DemoJob, f"worker-{i}"))
        winners = [claimed for claimed in got if claimed is not None]
        assert len(winners) == 1
        job.refresh_from_db()
        assert job.worker == winners[0][0].worker and job.attempts == 1
        DemoJob.objects.filter(pk=job.pk).update(status="completed", worker="")


def test_jobs_run_first_come_first_served(alice, bob):
    first = make_job(bob, size=1)
    second = make_job(alice, size=1)
    third = make_job(bob, size=1)
    DemoJob.objects.filter(pk=first.pk).update(enqueued=timezone.now() - timedelta(minutes=2))
    DemoJob.objects.filter(pk=third.pk).update(enqueued=timezone.now() + timedelta(minutes=1))

    engine.run_lane("demo")

    started = DemoJob.objects.order_by("started").values_list("pk", flat=True)
    assert list(started) == [first.pk, second.pk, third.pk]


def test_a_busy_lane_runs_no_second_job(alice):
    running = make_job(alice, size=30, delay=0.05)
    waiting = make_job(alice, size=1)
    engine.claim_job  # noqa: B018 -- documented: the first run_lane takes `running`
    results: list[str] = []
    worker = threading.Thread(
        target=lambda: (results.append(engine.run_lane("demo")), connections.close_all())
    )
    worker.start()
    wait_for(lambda: DemoJob.objects.get(pk=running.pk).status == "running")

    assert engine.run_lane("demo") == "busy"
    assert DemoJob.objects.get(pk=waiting.pk).status == "pending"
    DemoJob.objects.get(pk=running.pk).cancel()
    worker.join(30)
    assert not worker.is_alive()


def test_a_lane_with_two_slots_runs_two_jobs_at_once(alice, settings):
    settings.CHIRP_LANE_CONCURRENCY = {**settings.CHIRP_LANE_CONCURRENCY, "demo": 2}
    slow = make_job(alice, size=40, delay=0.05)
    quick = make_job(alice, size=3)
    worker = threading.Thread(target=lambda: (engine.run_lane("demo"), connections.close_all()))
    worker.start()
    wait_for(lambda: DemoJob.objects.get(pk=slow.pk).status == "running")

    assert engine.run_lane("demo") == "ran 1 job(s)"  # the second slot
    assert DemoJob.objects.get(pk=quick.pk).status == "completed"
    DemoJob.objects.get(pk=slow.pk).cancel()
    worker.join(30)


def test_resume_after_a_crash_redoes_nothing_done(alice):
    job = make_job(alice, size=10)
    crash_mid_job(job, done=4)
    in_flight = DemoItem.objects.get(job=job, status="processing")

    assert engine.run_lane("demo") == "ran 1 job(s)"

    job.refresh_from_db()
    assert (job.status, job.total, job.done, job.failed) == ("completed", 10, 10, 0)
    assert job.attempts == 2
    runs = dict(DemoItem.objects.filter(job=job).values_list("number", "runs"))
    assert [runs[n] for n in range(1, 5)] == [0, 0, 0, 0]  # done before the crash: not redone
    assert all(runs[n] == 1 for n in range(5, 11))
    in_flight.refresh_from_db()
    assert (in_flight.status, in_flight.attempts) == ("completed", 2)


def test_a_job_that_keeps_killing_the_worker_fails(alice, settings):
    settings.CHIRP_JOB_MAX_ATTEMPTS = 3
    job = make_job(alice, size=6)
    crash_mid_job(job, done=2)
    DemoJob.objects.filter(pk=job.pk).update(attempts=3)

    engine.run_lane("demo")

    job.refresh_from_db()
    assert job.status == "failed"
    assert "stopped unexpectedly 3 times" in job.error
    assert (job.done, job.failed) == (2, 4)
    assert DemoItem.objects.filter(job=job, status="completed").count() == 2


def test_an_item_that_keeps_killing_the_worker_is_set_aside(alice, settings):
    settings.CHIRP_ITEM_MAX_ATTEMPTS = 2
    job = make_job(alice, size=5)
    crash_mid_job(job, done=1)
    DemoItem.objects.filter(job=job, status="processing").update(attempts=2)

    engine.run_lane("demo")

    job.refresh_from_db()
    assert (job.status, job.done, job.failed) == ("completed", 4, 1)
    culprit = DemoItem.objects.get(job=job, status="failed")
    assert "stopped while processing this item 2 times" in culprit.error


def test_a_pending_job_can_be_cancelled(alice):
    job = make_job(alice)
    job.cancel()

    assert engine.run_lane("demo") == "ran 0 job(s)"
    job.refresh_from_db()
    assert job.status == "cancelled" and job.finished is not None


def test_a_running_job_stops_within_seconds_when_cancelled(alice):
    job = make_job(alice, size=200, delay=0.05)
    worker = threading.Thread(target=lambda: (engine.run_lane("demo"), connections.close_all()))
    worker.start()
    wait_for(lambda: DemoJob.objects.get(pk=job.pk).done >= 3)

    job.refresh_from_db()
    job.cancel()
    cancelled_at = time.monotonic()
    worker.join(30)

    assert time.monotonic() - cancelled_at < 3
    job.refresh_from_db()
    assert job.status == "cancelled"
    assert job.done + job.cancelled == 200
    assert DemoItem.objects.filter(job=job, status="cancelled").count() == job.cancelled > 100
    assert not DemoItem.objects.filter(job=job, status__in=["queued", "processing"]).exists()


def test_retry_failed_sends_items_back_and_counters_adjust(alice):
    job = make_job(alice, size=6, fail_numbers="2,5")
    engine.run_lane("demo")
    job.refresh_from_db()
    assert (job.status, job.done, job.failed) == ("completed", 4, 2)
    assert DemoItem.objects.get(job=job, number=2).error == "Item 2 failed on purpose."

    DemoJob.objects.filter(pk=job.pk).update(fail_numbers="")  # the cause is fixed
    job.refresh_from_db()
    assert job.retry_failed() == 2
    job.refresh_from_db()
    assert (job.status, job.failed) == ("pending", 0)

    engine.run_lane("demo")
    job.refresh_from_db()
    assert (job.status, job.done, job.failed, job.total) == ("completed", 6, 0, 6)
    assert job.attempts == 1  # a retry starts a fresh count


def test_a_job_where_nothing_succeeds_fails(alice):
    job = make_job(alice, size=3, fail_numbers="1,2,3")
    engine.run_lane("demo")
    job.refresh_from_db()
    assert (job.status, job.failed) == ("failed", 3)
    assert job.error == "Nothing could be processed."


def test_retrying_one_item_puts_the_job_back_in_line(alice):
    job = make_job(alice, size=3, fail_numbers="3")
    engine.run_lane("demo")
    item = DemoItem.objects.get(job=job, number=3)
    DemoJob.objects.filter(pk=job.pk).update(fail_numbers="")
    item.job = DemoJob.objects.get(pk=job.pk)

    item.retry()

    job.refresh_from_db()
    assert (job.status, job.failed) == ("pending", 0)
    engine.run_lane("demo")
    job.refresh_from_db()
    assert (job.status, job.done, job.failed) == ("completed", 3, 0)


def test_illegal_transitions_are_refused_and_change_nothing(alice):
    job = make_job(alice, size=2)
    engine.run_lane("demo")
    job.refresh_from_db()
    item = DemoItem.objects.filter(job=job).first()
    item.job = job

    with pytest.raises(IllegalTransition):
        item.complete()  # already completed
    with pytest.raises(IllegalTransition):
        item.retry()  # not failed
    with pytest.raises(IllegalTransition):
        job.cancel()  # already finished
    with pytest.raises(IllegalTransition):
        job.retry_failed()  # nothing failed
    with pytest.raises(IllegalTransition):
        job.advance("running", token="someone")

    job.refresh_from_db()
    assert (job.status, job.done, job.failed, job.cancelled) == ("completed", 2, 0, 0)


def test_a_running_job_cannot_be_retried(alice):
    job = make_job(alice)
    engine.claim_job(DemoJob, "w")
    job.refresh_from_db()
    with pytest.raises(IllegalTransition):
        job.retry_failed()


def test_a_slice_hands_the_job_back_and_the_next_one_resumes(alice, settings):
    settings.CHIRP_SLICE_SECONDS = 0.3
    job = make_job(alice, size=20, delay=0.05)

    first = engine.run_lane("demo")

    job.refresh_from_db()
    assert first.endswith("more to do")
    assert job.status == "running" and job.worker == "" and 0 < job.done < 20
    while DemoJob.objects.get(pk=job.pk).status == "running":
        engine.run_lane("demo")
    job.refresh_from_db()
    assert (job.status, job.done, job.attempts) == ("completed", 20, 1)
    assert set(DemoItem.objects.filter(job=job).values_list("runs", flat=True)) == {1}


def item_events(owner, item) -> list[str]:
    return [html for _, html in stored_events(owner, item.dom_id)]


def test_every_item_change_is_sent_to_the_owner_after_commit(alice):
    job = make_job(alice, size=3, delay=0.6)
    engine.run_lane("demo")

    for item in DemoItem.objects.filter(job=job):
        sent = item_events(alice, item)
        assert len(sent) == 2  # processing (it ran past a monitor tick), then completed
        assert 'data-status="processing"' in sent[0] and 'data-status="completed"' in sent[1]
    events = stored_events(alice)
    final = [html for name, html in events if name == job.dom_id][-1]
    assert 'data-status="completed"' in final
    assert [name for name, _ in events].count("toast") == 1


def test_a_fast_item_is_sent_once_in_its_final_state(alice):
    job = make_job(alice, size=20)
    engine.run_lane("demo")

    for item in DemoItem.objects.filter(job=job):
        sent = item_events(alice, item)
        assert sent[-1].count('data-status="completed"') == 1
        assert len(sent) <= 2


def test_nothing_is_sent_for_a_change_that_rolls_back(alice):
    job = make_job(alice)
    before = stored_events(alice)
    with pytest.raises(RuntimeError), transaction.atomic():
        job.cancel()
        raise RuntimeError("rolled back")

    job.refresh_from_db()
    assert job.status == "pending"
    assert stored_events(alice) == before


def test_kick_queues_a_runner_only_for_lanes_with_work(alice):
    from django_q.models import OrmQ

    assert engine.kick_lanes() == {}
    make_job(alice)
    assert engine.kick_lanes() == {"demo": 1}
    assert OrmQ.objects.count() == 1


def held_tick(alice, monkeypatch):
    """A running job and its monitor, whose tick (in a thread named "tick") sets `read` once
    it has read the job, then waits for `go` before it sends what it read:
    (job, token, monitor, read, go)."""
    make_job(alice)
    token = engine.new_token()
    slot = engine.claim_slot("demo", token)
    job, _ = engine.claim_job(DemoJob, token)
    monitor = engine.Monitor(slot, token)
    monitor.watch(engine.RunContext(job, token, time.monotonic() + 60))
    monitor._shown = ()  # the tick sends whatever it reads
    read, go = threading.Event(), threading.Event()
    render = DemoJob.live_fragments

    def slow_tick(self):
        if threading.current_thread().name == "tick":
            read.set()  # the tick has read the job as it was: running
            go.wait(5)
        return render(self)

    monkeypatch.setattr(DemoJob, "live_fragments", slow_tick)
    return job, token, monitor, read, go


def test_a_monitor_tick_never_sends_an_older_state_after_the_job_ends(alice, monkeypatch):
    job, token, monitor, read, go = held_tick(alice, monkeypatch)

    def in_a_thread(target, name: str) -> threading.Thread:
        def run() -> None:
            try:
                target()
            finally:
                connection.close()

        thread = threading.Thread(target=run, name=name)
        thread.start()
        return thread

    tick = in_a_thread(monitor.check, "tick")
    assert read.wait(5)
    end = in_a_thread(lambda: job.fail("gave up", token), "end")
    time.sleep(0.3)  # the end is sent now, unless it waits for the tick
    go.set()
    tick.join(5)
    end.join(5)

    final = [html for name, html in stored_events(alice) if name == job.dom_id][-1]
    assert 'data-status="failed"' in final


def test_a_failing_upkeep_never_fails_the_job(alice, monkeypatch, caplog):
    def broken(self, final=False):
        raise RuntimeError("upkeep is broken")

    monkeypatch.setattr(DemoJob, "upkeep", broken)
    job = DemoJob.objects.create(owner=alice, size=3)

    engine.run_lane("demo")

    job.refresh_from_db()
    assert (job.status, job.done, job.error) == ("completed", 3, "")
    assert "The final upkeep of" in caplog.text


def test_a_cancel_from_another_process_during_a_monitor_tick_is_the_rows_last_word(
    alice, monkeypatch
):
    """The monitor's lock orders its own process's sends; a person's cancel comes from the web
    server. If it commits and is sent between the tick's read of the running job and the
    tick's send, the running row arrives last: the page showed a running job for good."""
    job, _, monitor, read, go = held_tick(alice, monkeypatch)

    def row_events() -> list[str]:
        return [html for name, html in stored_events(alice) if name == job.dom_id]

    def cancel_elsewhere() -> None:
        try:
            DemoJob.objects.get(pk=job.pk).cancel()  # its own instance: another process's
        finally:
            connection.close()

    tick = threading.Thread(target=lambda: (monitor.check(), connection.close()), name="tick")
    tick.start()
    assert read.wait(5)
    cancel = threading.Thread(target=cancel_elsewhere)
    cancel.start()
    cancel.join(10)
    wait_for(lambda: 'data-status="cancelled"' in (row_events() or [""])[-1], timeout=10)
    go.set()  # the tick sends what it read before the cancel
    tick.join(10)

    assert 'data-status="cancelled"' in row_events()[-1]


def test_a_job_sent_by_one_process_while_another_ends_it_ends_on_the_page(alice, monkeypatch):
    """The web server sends a job's row (an item of it cancelled) while the worker fails the
    job: the worker's send of the failed row can come first, then the web server's older one,
    which nothing would ever replace."""
    job = make_job(alice)
    read, go = threading.Event(), threading.Event()
    render = DemoJob.live_fragments

    def slow_send(self):
        if threading.current_thread().name == "web":
            read.set()  # the web server has read the job as it was: pending
            go.wait(5)
        return render(self)

    monkeypatch.setattr(DemoJob, "live_fragments", slow_send)

    def row_events() -> list[str]:
        return [html for name, html in stored_events(alice) if name == job.dom_id]

    def web() -> None:
        try:
            DemoJob.objects.get(pk=job.pk).publish()
        finally:
            connection.close()

    sender = threading.Thread(target=web, name="web")
    sender.start()
    assert read.wait(5)
    DemoJob.objects.get(pk=job.pk).fail("gave up")  # the worker, with its own instance
    assert 'data-status="failed"' in row_events()[-1]
    go.set()  # the web server sends the job as it read it, before the failure
    sender.join(10)

    assert 'data-status="failed"' in row_events()[-1]
