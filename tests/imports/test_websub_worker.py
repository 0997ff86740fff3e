"""Push notifications through a real `manage.py qcluster`: a worker killed outright (SIGKILL)
while notifications are pending loses none of them, and imports none twice."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone
from django_q.models import OrmQ
from django_q.signals import post_spawn

from imports import websub
from imports.models import Follow, ImportJobItem, Video, WebSubNotification, WebSubSubscription
from tests.conftest import wait_for
from tests.imports.fake_hub import FakeHub, upload_body

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_a_killed_worker_leaves_no_notified_video_behind_nor_twice(
    alice, settings, web_server, fake_youtube, make_channel, start_worker
):
    with FakeHub() as hub:
        settings.CHIRP_PUBLIC_URL = web_server.url
        settings.CHIRP_WEBSUB_HUB = hub.url
        env = {"CHIRP_PUBLIC_URL": web_server.url, "CHIRP_WEBSUB_HUB": hub.url}
        fake = fake_youtube.add_channel("pushkill", videos=2, title="Push Kill")
        channel = make_channel(alice, videos=0, youtube_id=fake.channel_id, title="Push Kill")
        Video.objects.bulk_create(
            Video(youtube_id=v.id, channel=channel, title=v.title, stage="complete", progress=100)
            for v in fake.videos
        )
        Follow.start(alice, channel)
        sub = WebSubSubscription.objects.get(channel=channel)
        websub.send_request(sub.pk)
        wait_for(lambda: WebSubSubscription.objects.get(pk=sub.pk).state == "verified", 10)
        wait_for(lambda: hub.verified(sub.topic), 10)  # the hub has read the answer
        uploads = fake_youtube.upload(fake, 8)
        fake_youtube.add_fault(kinds={"timedtext"}, delay=0.3)  # enrichment takes a while
        bodies = [upload_body(fake.channel_id, v.id, v.title, v.published) for v in uploads]

        worker = start_worker(**env)
        for body in bodies[:4]:
            assert hub.publish(sub.topic, body) == [202]
        wait_for(lambda: Video.objects.filter(stage="created").exists(), timeout=60)
        worker.kill()  # SIGKILL to the whole cluster, mid-way
        for body in [*bodies[4:], bodies[0]]:  # more while it is down, and a redelivery
            assert hub.publish(sub.topic, body) == [202]
        assert WebSubNotification.objects.filter(processed__isnull=True).exists()

        time.sleep(2.5)  # the lane's lease (2 s in tests) runs out
        start_worker(**env)
        new_ids = {v.id for v in uploads}

        def all_complete() -> bool:
            videos = Video.objects.filter(youtube_id__in=new_ids)
            return videos.count() == 8 and not videos.exclude(stage="complete").exists()

        wait_for(all_complete, timeout=120)
        wait_for(lambda: not WebSubNotification.objects.filter(processed__isnull=True).exists(), 60)

    assert WebSubNotification.objects.count() == 9
    for youtube_id in new_ids:
        assert Video.objects.filter(youtube_id=youtube_id).count() == 1
        assert ImportJobItem.objects.filter(video__youtube_id=youtube_id).count() == 1
    assert Video.objects.filter(channel=channel).count() == 10


def test_a_notification_whose_task_was_lost_is_handled_as_the_cluster_starts(
    alice, settings, make_channel, start_worker
):
    settings.CHIRP_PUBLIC_URL, settings.CHIRP_WEBSUB_HUB = (
        "http://127.0.0.1:9",
        "http://127.0.0.1:9/",
    )
    channel = make_channel(alice, videos=1, youtube_id="UClostnotification0000", title="Lost")
    video = channel.videos.get()
    Follow.start(alice, channel)
    sub = WebSubSubscription.objects.get(channel=channel)
    # Stored by the callback, its task gone with a killed cluster (which had taken it).
    body = upload_body(channel.youtube_id, video.youtube_id, "A title edited on YouTube")
    lost = WebSubNotification.store(sub.pk, body, timezone.now())
    OrmQ.objects.all().delete()

    start_worker()
    # Handled at once, not a minute later by the periodic task (which leaves a notification
    # 30 s for its own task).
    wait_for(lambda: WebSubNotification.objects.get(pk=lost).processed is not None, 20)
    video.refresh_from_db()
    assert video.title == "A title edited on YouTube"


def test_a_recycled_worker_process_queues_no_notification_again(alice, settings, make_channel):
    settings.CHIRP_PUBLIC_URL, settings.CHIRP_WEBSUB_HUB = (
        "http://127.0.0.1:9",
        "http://127.0.0.1:9/",
    )
    channel = make_channel(alice, videos=0, youtube_id="UCrecycledworker000000", title="Busy")
    Follow.start(alice, channel)
    sub = WebSubSubscription.objects.get(channel=channel)
    for n in range(3):  # a backlog, each with its task queued
        body = upload_body(channel.youtube_id, f"backlog{n:04d}", f"Backlog {n}")
        websub.enqueue_processing(WebSubNotification.store(sub.pk, body, timezone.now()))
    queued = OrmQ.objects.count()

    # What django-q2 sends in each new worker process, a recycled one's mid-run included.
    post_spawn.send(sender="django_q", proc_name="Process-1:7")

    assert OrmQ.objects.count() == queued  # no second task for any of them
