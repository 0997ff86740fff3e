"""Polling 1,000 followed channels (issue 12): requests per interval, their spread, memory.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python -m tests.benchmarks.bench_follow_poll

Targets: one feed request per channel per interval; no minute with more than twice the
average; the worker's memory. The poll schedule (imports.following.poll_due, run every minute
by chirp.schedules) is run in this process over INTERVALS simulated intervals (the clock passed
as `now`, one call per simulated minute), against the fake YouTube's RSS route on loopback at
zero spacing; every channel already knows its feed's videos, so each poll is the feed alone.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from datetime import timedelta

from tests.benchmarks.harness import bench_database_url, rss_mb, setup_django

CHANNELS = 1000
POLL_MINUTES = 15
INTERVALS = 2


def main() -> None:
    from tests.imports.fake_youtube import ENV_VAR, FakeYouTube

    with FakeYouTube() as fake:
        setup_django(
            bench_database_url("chirp_bench_follow_poll"),
            CHIRP_YOUTUBE_TRANSPORT="tests.imports.fake_youtube.transport",
            CHIRP_YOUTUBE_SPACING="0",
            CHIRP_FOLLOW_POLL_MINUTES=str(POLL_MINUTES),
            **{ENV_VAR: fake.url},
        )
        run(fake)


def run(fake) -> None:
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone

    from imports import following
    from imports.models import Channel, ChannelWatch, Follow, Video

    user = get_user_model().objects.create_user("bench", password="x")
    fakes = [fake.add_channel(f"poll{i:04d}", videos=2) for i in range(CHANNELS)]
    channels = Channel.objects.bulk_create(
        [Channel(youtube_id=f.channel_id, handle=f"@{f.handle}", title=f.title) for f in fakes]
    )
    Video.objects.bulk_create(
        [
            Video(
                youtube_id=v.id,
                channel=c,
                title=v.title,
                description=v.description,
                stage="complete",
            )
            for f, c in zip(fakes, channels, strict=True)
            for v in f.videos
        ]
    )
    # What Follow.start does for each, at once: 1,000 re-spreads of 1,000 rows would be the
    # set-up's cost, not the schedule's.
    begun = timezone.now() - timedelta(minutes=1)
    Follow.objects.bulk_create([Follow(user=user, channel=c, created=begun) for c in channels])
    ChannelWatch.objects.bulk_create(
        [ChannelWatch(channel=c, next_poll=begun, last_full_check=begun) for c in channels]
    )
    start = timezone.now()
    with transaction.atomic():
        ChannelWatch.spread(now=start)
    fake.clear_requests()

    rss_before = rss_mb(os.getpid())
    peak = rss_before
    per_minute: list[int] = []
    took: list[float] = []
    minutes = POLL_MINUTES * INTERVALS
    for minute in range(minutes):
        before = fake.count("feed")
        began = time.monotonic()
        following.poll_due(now=start + timedelta(minutes=minute + 1))
        took.append(time.monotonic() - began)
        per_minute.append(fake.count("feed") - before)
        peak = max(peak, rss_mb(os.getpid()))

    per_channel = Counter(r.channel_id for r in fake.requests_matching("feed"))
    counts = Counter(per_channel[f.channel_id] for f in fakes)
    average = sum(per_minute) / len(per_minute)
    print(f"{CHANNELS} followed channels, polled every {POLL_MINUTES} min, {INTERVALS} intervals")
    print(
        f"feed requests: {sum(per_minute)} in {minutes} simulated minutes; per channel per "
        f"interval: {dict((n / INTERVALS, k) for n, k in sorted(counts.items()))} "
        f"(target: 1.0 for all {CHANNELS})"
    )
    print(
        f"per minute: average {average:.1f}, min {min(per_minute)}, max {max(per_minute)} "
        f"(max / average {max(per_minute) / average:.2f}, target at most 2)"
    )
    print(f"a minute's poll_due took: max {max(took):.1f} s, average {sum(took) / len(took):.1f} s")
    print(f"new videos created: {Video.objects.count() - 2 * CHANNELS} (expected 0)")
    print(
        f"memory (RSS of this process, the worker's role): {rss_before:.0f} MB → peak {peak:.0f} MB"
    )
    assert counts == {INTERVALS: CHANNELS}, counts
    assert max(per_minute) <= 2 * average, per_minute


if __name__ == "__main__":
    main()
