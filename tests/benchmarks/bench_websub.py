"""Push (WebSub) benchmarks: from the hub's POST to the new card in a follower's stream, and
the callback's answer time under 100 notifications/s.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python -m tests.benchmarks.bench_websub [push|callback]

(`push` or `callback` runs only that one.)

Targets (issue 12): hub POST → new card p50 under 2 s over 50 notifications (fake YouTube at
zero spacing, Redis on); callback p99 under 50 ms at 100 notifications/s, the web process's
database connections unchanged.

The web server is the README's production command (`uvicorn chirp.asgi:application --workers
2`, chirp.settings, DEBUG off, its access log on), the worker (`manage.py qcluster`, DEBUG off) runs
meanwhile and handles what the callback stores, the fake hub is on loopback.

The callback's load is offered open-loop (tests/benchmarks/openloop.py, in a process of its
own): notification i is sent at start + i/100 s whatever the answers before it, each on a new
connection, and its latency counts from the time it was due. The notifications are spread over
CALLBACK_CHANNELS followed channels (YouTube notifies per channel, and the per-subscription
limit stays at its default of 60 a minute: one channel cannot send 100 a second). Printed with
each run: the 1-minute load average (the machine may be shared), the CPU time the web
processes (during the load) and the worker (until it has handled them all) spent per
notification, how long after the load the worker was done, and the web processes' database
connections (before, at the peak, after).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

from tests.benchmarks.harness import ROOT, bench_database_url, percentile, setup_django

NOTIFICATIONS = 50
RATE = 100  # notifications per second
LOAD_SECONDS = int(os.environ.get("BENCH_WEBSUB_SECONDS", "20"))
QUIET_RATE = 10  # the answer time without queueing: far below what one web process can take
CALLBACK_CHANNELS = 200
WEB_WORKERS = 2  # README, Production: uvicorn ... --workers 2


def start_production_server(port: int, log: Path, env: dict[str, str]) -> subprocess.Popen:
    """The README's production command, on loopback, with production settings."""
    server_env = {**os.environ, **env, "DJANGO_SETTINGS_MODULE": "chirp.settings", "DEBUG": "0"}
    server_env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "chirp.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(WEB_WORKERS),
        ],
        cwd=ROOT,
        env=server_env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"uvicorn exited:\n{log.read_text(errors='replace')}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/websub/up/", timeout=2)
        except urllib.error.HTTPError:
            break  # it answers (404: no such subscription)
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not answer within 60 s")
        time.sleep(0.2)
    # Every worker process up (each answers its first request only once it has started).
    while len(_children(process.pid)) < WEB_WORKERS:
        time.sleep(0.2)
    time.sleep(2)
    return process


def _children(pid: int) -> list[int]:
    pids = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):
            pids += [int(p) for p in (task / "children").read_text().split()]
    return pids


def _tree(pid: int) -> list[int]:
    pids = [pid]
    for child in _children(pid):
        with contextlib.suppress(FileNotFoundError):
            pids += _tree(child)
    return pids


def _cpu_seconds(pids: list[int]) -> float:
    """CPU time of these processes, and of their children that have ended (a worker process
    recycled meanwhile)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return total / ticks


def _db_connections(pid: int, connection) -> int:
    """Database connections held by the web server's processes (the supervisor's workers)."""
    from tests.benchmarks.bench_engine import _db_connections_of

    total = 0
    for child in _tree(pid):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            total += _db_connections_of(child, connection)
    return total


def push_to_card(user, channel, fake_channel, youtube, hub, base_url) -> dict[str, float]:
    from imports.models import WebSubSubscription
    from tests.conftest import session_cookie_for
    from tests.imports.fake_hub import upload_body
    from tests.sse import SSEClient

    topic = WebSubSubscription.objects.get(channel=channel).topic
    client = SSEClient(base_url + "/events/", session_cookie_for(user), timeout=60)
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


def notification_requests(channels, port: int, count: int) -> list[bytes]:
    """`count` signed notifications (title edits of known videos), round robin over the
    channels' subscriptions, as raw HTTP requests."""
    from imports.models import WebSubSubscription
    from tests.imports.fake_hub import sign, upload_body

    subs = {s.channel_id: s for s in WebSubSubscription.objects.filter(channel__in=channels)}
    prepared = []
    for channel in channels:
        sub = subs[channel.pk]
        video = channel.videos.first()
        body = upload_body(channel.youtube_id, video.youtube_id, f"{video.title} (edited)")
        head = (
            f"POST /websub/{sub.token}/ HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n"
            "Content-Type: application/atom+xml\r\n"
            f"X-Hub-Signature: {sign(sub.secret, body)}\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        prepared.append(head.encode() + body)
    return [prepared[i % len(prepared)] for i in range(count)]


def offer_load(requests: list[bytes], port: int, rate: float, tmp: Path) -> list[list[float]]:
    spec, out = tmp / "load.json", tmp / "load-results.json"
    spec.write_text(
        json.dumps(
            {
                "host": "127.0.0.1",
                "port": port,
                "rate": rate,
                "timeout": 30,
                "requests": [base64.b64encode(r).decode() for r in requests],
            }
        )
    )
    subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.openloop", str(spec), str(out)],
        cwd=ROOT,
        check=True,
    )
    return json.loads(out.read_text())


def _summary(results: list[list[float]]) -> dict[str, float | str]:
    answered = [r for r in results if r[3]]
    latencies = [r[2] * 1000 for r in answered]
    last_due = max(r[0] for r in results)
    return {
        "offered": len(results),
        "offered_per_s": (len(results) - 1) / last_due if last_due else 0.0,
        "answered_per_s": len(answered) / max(r[0] + r[2] for r in answered),
        "accepted": sum(1 for r in answered if r[3] == 202),
        "other_answers": " ".join(
            f"{status}:{count}"
            for status, count in sorted(Counter(r[3] for r in answered if r[3] != 202).items())
        )
        or "none",
        "no_answer": len(results) - len(answered),
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies),
        "client_late_max_ms": max(r[1] for r in results) * 1000,
    }


def callback_under_load(channels, web: subprocess.Popen, port: int, worker_pid: int, tmp: Path):
    from django.db import connection

    from imports.models import WebSubNotification

    # Without queueing first: the cost of one answer.
    quiet = offer_load(notification_requests(channels, port, 200), port, QUIET_RATE, tmp)
    time.sleep(2)
    requests = notification_requests(channels, port, RATE * LOAD_SECONDS)
    before = _db_connections(web.pid, connection)
    stored_before = WebSubNotification.objects.count()
    load_before = os.getloadavg()[0]
    web_cpu, worker_cpu = _cpu_seconds(_tree(web.pid)), _cpu_seconds(_tree(worker_pid))
    peak, samples = before, []
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                count = _db_connections(web.pid, connection)
                peak = max(peak, count)
                samples.append(count)
            time.sleep(0.25)

    sampler = threading.Thread(target=sample)
    sampler.start()
    results = offer_load(requests, port, RATE, tmp)
    web_cpu = _cpu_seconds(_tree(web.pid)) - web_cpu
    load_after = os.getloadavg()[0]
    # The worker's CPU counts once it has handled every notification of the load: read at the
    # end of the load, it left out the backlog, the more so the more the worker fell behind.
    ended = time.monotonic()
    pending = WebSubNotification.objects.filter(processed__isnull=True)
    while pending.exists() and time.monotonic() - ended < 300:
        time.sleep(0.2)
    backlog_s = time.monotonic() - ended
    worker_cpu = _cpu_seconds(_tree(worker_pid)) - worker_cpu
    done.set()
    sampler.join()
    time.sleep(1)
    after = _db_connections(web.pid, connection)
    return (
        {
            "quiet_rate_per_s": QUIET_RATE,
            **{k: v for k, v in _summary(quiet).items() if k in ("p50_ms", "p99_ms", "max_ms")},
        },
        {
            **_summary(results),
            "stored": WebSubNotification.objects.count() - stored_before,
            "web_cpu_ms_per_notification": web_cpu * 1000 / len(results),
            "worker_cpu_ms_per_notification": worker_cpu * 1000 / len(results),
            "worker_done_after_load_s": backlog_s,
            "unhandled": pending.count(),
            "db_connections_before": before,
            "db_connections_mean": sum(samples) / len(samples) if samples else float(before),
            "db_connections_peak": peak,
            "db_connections_after": after,
            "load_1min_before": load_before,
            "load_1min_after": load_after,
        },
    )


def main(which: str = "") -> None:
    url = bench_database_url("chirp_bench_websub")
    from tests.conftest import free_port

    port = free_port()
    public = f"http://127.0.0.1:{port}"
    from tests.imports.fake_hub import FakeHub

    hub = FakeHub().__enter__()
    env = {
        "CHIRP_PUBLIC_URL": public,
        "CHIRP_WEBSUB_HUB": hub.url,
        "CHIRP_SLICE_SECONDS": "600",
    }
    setup_django(url, **env)
    from django.contrib.auth import get_user_model

    from imports import websub
    from imports.models import Channel, Follow, Video, WebSubSubscription
    from tests.conftest import wait_for
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
        # The callback's load: followed channels with a known video each, their push verified.
        loaded = Channel.objects.bulk_create(
            Channel(youtube_id=f"UCbenchload{n:013d}", handle=f"@load{n}", title=f"Load {n}")
            for n in range(CALLBACK_CHANNELS)
        )
        Video.objects.bulk_create(
            Video(youtube_id=f"load{n:07d}", channel=c, title=f"Video {n}", stage="complete")
            for n, c in enumerate(loaded)
        )
        for c in loaded:
            Follow.start(user, c)
        WebSubSubscription.objects.filter(channel__in=loaded).update(state="verified")

        # DEBUG is off for the worker too, as in production (no query log; the cards it renders
        # name their static files from the manifest that collectstatic writes).
        os.environ["CHIRP_STATIC_ROOT"] = str(tmp / "static")
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, check=True
        )
        web = start_production_server(port, tmp / "uvicorn.log", env)
        log = (tmp / "qcluster.log").open("wb")
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DEBUG": "0"},
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
            if which in ("", "push"):
                print(
                    "hub POST → new card in the stream:",
                    _fmt(push_to_card(user, channel, fake_channel, youtube, hub, public)),
                )
            if which in ("", "callback"):
                quiet, loaded_result = callback_under_load(loaded, web, port, worker.pid, tmp)
                print(f"callback at {QUIET_RATE}/s:", _fmt(quiet))
                print(f"callback at {RATE}/s for {LOAD_SECONDS} s:", _fmt(loaded_result))
        finally:
            worker.terminate()
            worker.wait(60)
            log.close()
            web.terminate()
            web.wait(30)
            hub.__exit__(None, None, None)


def _fmt(result: dict[str, float]) -> str:
    return ", ".join(
        f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()
    )


if __name__ == "__main__":
    main(*sys.argv[1:2])
