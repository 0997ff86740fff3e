"""Push notifications through a real `manage.py qcluster`: a worker killed outright (SIGKILL)
while notifications are pending loses none of them, and imports none twice."""

from __future__ import annotations

import time

import pytest

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
