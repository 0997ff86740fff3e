"""Push (WebSub) benchmarks: from the hub's POST to the new card in a follower's stream, and
the callback's answer time under 100 notifications/s.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python -m tests.benchmarks.bench_websub

Targets (issue 12): hub POST → new card p50 under 2 s over 50 notifications (fake YouTube at
zero spacing, Redis on); callback p99 under 50 ms at 100 notifications/s, the web process's
database connections unchanged. A real uvicorn, a real worker, the fake hub on loopback.
"""

from __future__ import annotations

import contextlib
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.benchmarks.harness import ROOT, percentile, setup_django

NOTIFICATIONS = 50
RATE = 100  # notifications per second
LOAD_SECONDS = 10


def bench_database_url() -> str:
    base = os.environ.get("DATABASE_URL", "")
    if base.startswith(("postgres://", "postgresql://")):
        import psycopg

        admin_url = base.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS chirp_bench_websub WITH (FORCE)")
            conn.execute("CREATE DATABASE chirp_bench_websub")
        url = base.rsplit("/", 1)[0] + "/chirp_bench_websub"
    else:
        url = f"sqlite:///{tempfile.mkdtemp(prefix='chirp-bench-websub-')}/bench.sqlite3"
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    return url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def push_to_card(user, channel, fake_channel, youtube, hub, server) -> dict[str, float]:
    from imports.models import WebSubSubscription
    from tests.conftest import session_cookie_for
    from tests.imports.fake_hub import upload_body
    from tests.sse import SSEClient

    topic = WebSubSubscription.objects.get(channel=channel).topic
    client = SSEClient(server.url + "/events/", session_cookie_for(user), timeout=60)
    client.next_event("stream-open")
    arrivals: queue.Queue = queue.Queue()

    def listen() -> None:
        for event in client.events(timeout=60):
            arrivals.put((event.event, event.data, time.monotonic()))

    threading.Thread(target=listen, daemon=True).start()
    created = f"{channel.dom_id}-video-created"
    latencies = []
    for _ in range(NOTIFICATIONS):
        (upload,) = youtube.upload(fake_channel, 1)
        body = upload_body(fake_channel.channel_id, upload.id, upload.title, upload.published)
        sent = time.monotonic()
        assert hub.publish(topic, body) == [202]
        while True:
            name, data, arrived = arrivals.get(timeout=60)
            if name == created and upload.title in data:
                break
        latencies.append((arrived - sent) * 1000)
        time.sleep(0.05)
    client.close()
    return {
        "notifications": NOTIFICATIONS,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies),
    }


def callback_under_load(channel, hub, server) -> dict[str, float]:
    import requests
    from django.db import connection

    from imports.models import WebSubNotification, WebSubSubscription
    from tests.benchmarks.bench_engine import _db_connections_of
    from tests.imports.fake_hub import sign, upload_body

    sub = WebSubSubscription.objects.get(channel=channel)
    video = channel.videos.first()
    body = upload_body(channel.youtube_id, video.youtube_id, video.title)  # a known video
    headers = {"Content-Type": "application/atom+xml", "X-Hub-Signature": sign(sub.secret, body)}
    pid = server.process.pid
    # One at a time first: the cost of one answer, without queueing.
    http = requests.Session()
    alone = []
    for _ in range(100):
        began = time.monotonic()
        http.post(sub.callback_url, data=body, headers=headers, timeout=10)
        alone.append((time.monotonic() - began) * 1000)
    http.close()
    time.sleep(1)
    before = _db_connections_of(pid, connection)
    stored_before = WebSubNotification.objects.count()
    threads = 8
    per_thread = RATE * LOAD_SECONDS // threads
    times: list[float] = []
    statuses: list[int] = []
    lock = threading.Lock()
    start = time.monotonic() + 0.5

    def send(offset: int) -> None:
        http = requests.Session()
        for i in range(per_thread):
            due = start + (i * threads + offset) / RATE
            time.sleep(max(0.0, due - time.monotonic()))
            began = time.monotonic()
            status = http.post(sub.callback_url, data=body, headers=headers, timeout=10).status_code
            with lock:
                times.append((time.monotonic() - began) * 1000)
                statuses.append(status)
        http.close()

    workers = [threading.Thread(target=send, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    peak = before
    while any(w.is_alive() for w in workers):
        with contextlib.suppress(FileNotFoundError):  # a socket closed while being read
            peak = max(peak, _db_connections_of(pid, connection))
        time.sleep(0.25)
    took = time.monotonic() - start
    time.sleep(1)
    after = _db_connections_of(pid, connection)
    return {
        "one_at_a_time_p50_ms": percentile(alone, 50),
        "sent": len(times),
        "per_s": len(times) / took,
        "accepted": statuses.count(202),
        "stored": WebSubNotification.objects.count() - stored_before,
        "p50_ms": percentile(times, 50),
        "p99_ms": percentile(times, 99),
        "db_connections_before": before,
        "db_connections_peak": peak,
        "db_connections_after": after,
    }


def main() -> None:
    url = bench_database_url()
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    from tests.imports.fake_hub import FakeHub

    hub = FakeHub().__enter__()
    env = {
        "CHIRP_PUBLIC_URL": public,
        "CHIRP_WEBSUB_HUB": hub.url,
        "CHIRP_WEBSUB_MAX_PER_MINUTE": "1000000",
        "CHIRP_SLICE_SECONDS": "600",
    }
    setup_django(url, **env)
    from django.contrib.auth import get_user_model

    from imports import websub
    from imports.models import Channel, Follow, Video, WebSubSubscription
    from tests.conftest import start_web_server, wait_for
    from tests.imports.fake_youtube import ENV_VAR, FakeYouTube

    tmp = Path(tempfile.mkdtemp(prefix="chirp-bench-websub-"))
    vendor = "PostgreSQL" if url.startswith("postgres") else "SQLite"
    print(f"# Push benchmarks on {vendor}, Redis {'on' if os.environ.get('REDIS_URL') else 'off'}")
    with FakeYouTube() as youtube:
        os.environ.update(
            {
                ENV_VAR: youtube.url,
                "CHIRP_YOUTUBE_TRANSPORT": "tests.imports.fake_youtube.transport",
                "CHIRP_YOUTUBE_SPACING": "0",
                "CHIRP_YOUTUBE_JITTER": "0",
            }
        )
        fake_channel = youtube.add_channel("benchpush", videos=3, title="Bench Push")
        user = get_user_model().objects.create_user("bench", password="x")
        channel = Channel.objects.create(
            youtube_id=fake_channel.channel_id, handle="@benchpush", title="Bench Push"
        )
        Video.objects.bulk_create(
            Video(youtube_id=v.id, channel=channel, title=v.title, stage="complete", progress=100)
            for v in fake_channel.videos
        )
        server = start_web_server(tmp, port=port, **env)
        log = (tmp / "qcluster.log").open("wb")
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DEBUG": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            Follow.start(user, channel)
            websub.send_request(WebSubSubscription.objects.get(channel=channel).pk)
            wait_for(
                lambda: WebSubSubscription.objects.get(channel=channel).state == "verified", 30
            )
            time.sleep(3)  # the cluster starts
            print(
                "hub POST → new card in the stream:",
                _fmt(push_to_card(user, channel, fake_channel, youtube, hub, server)),
            )
            print(f"callback at {RATE}/s:", _fmt(callback_under_load(channel, hub, server)))
        finally:
            worker.terminate()
            worker.wait(60)
            log.close()
            server.process.terminate(10)
            hub.__exit__(None, None, None)


def _fmt(result: dict[str, float]) -> str:
    return ", ".join(
        f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()
    )


if __name__ == "__main__":
    main()
