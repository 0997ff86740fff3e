"""Foundation benchmarks: event latency (Redis and relay), 200 streams, engine overhead.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python -m tests.benchmarks.bench_engine

Targets (issue 2): p50 < 50 ms with Redis, < 600 ms with the relay; 200 streams all served with
0 database connections held; >= 300 empty items/s through a lane on PostgreSQL, events on.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from pathlib import Path

from tests.benchmarks.harness import (
    bench_database_url,
    percentile,
    rss_mb,
    setup_django,
    threads_of,
)

EVENTS = 200
STREAMS = 200


def event_latency(url: str, user, tmp: Path, redis: bool) -> dict[str, float]:
    from django.conf import settings

    from tests.conftest import session_cookie_for, start_web_server
    from tests.demo.models import DemoJob
    from tests.sse import SSEClient

    configured = settings.REDIS_URL
    settings.REDIS_URL = configured if redis else None  # this process sends as the server reads
    server = start_web_server(tmp, redis=redis)
    try:
        client = SSEClient(server.url + "/events/", session_cookie_for(user), timeout=30)
        client.next_event("stream-open")
        arrivals: queue.Queue = queue.Queue()

        def listen() -> None:
            for event in client.events(timeout=30):
                arrivals.put((event.event, time.monotonic()))

        threading.Thread(target=listen, daemon=True).start()
        latencies = []
        for _ in range(EVENTS):
            job = DemoJob.objects.create(owner=user)
            sent = time.monotonic()
            job.cancel()  # the state change, in a process other than the web server
            while True:
                name, arrived = arrivals.get(timeout=30)
                if name == job.dom_id:
                    break
            latencies.append((arrived - sent) * 1000)
            time.sleep(0.01)
        client.close()
        return {
            "p50_ms": percentile(latencies, 50),
            "p99_ms": percentile(latencies, 99),
            "max_ms": max(latencies),
        }
    finally:
        settings.REDIS_URL = configured
        server.process.terminate(10)


def many_streams(user, tmp: Path) -> dict[str, float]:
    from django.db import connection

    from chirp import live
    from tests.conftest import session_cookie_for, start_web_server
    from tests.sse import SSEClient

    server = start_web_server(tmp, redis=bool(os.environ.get("REDIS_URL")))
    pid = server.process.pid
    try:
        rss_before = rss_mb(pid)
        cookie = session_cookie_for(user)
        clients = [SSEClient(server.url + "/events/", cookie, timeout=60) for _ in range(STREAMS)]
        for client in clients:
            client.next_event("stream-open")
        time.sleep(1)
        received = []
        lock = threading.Lock()

        def wait_one(client) -> None:
            try:
                client.next_event("broadcast", timeout=30)
            except AssertionError:
                return
            with lock:
                received.append(time.monotonic())

        waiters = [threading.Thread(target=wait_one, args=(c,)) for c in clients]
        for w in waiters:
            w.start()
        sent = time.monotonic()
        live.publish(user.pk, [("broadcast", "<p>hello</p>")])
        for w in waiters:
            w.join(40)
        fan_out = [(t - sent) * 1000 for t in received]
        held = _db_connections_of(pid, connection)
        result = {
            "streams": STREAMS,
            "received": len(received),
            "fan_out_p50_ms": percentile(fan_out, 50) if len(fan_out) > 1 else -1,
            "rss_before_mb": rss_before,
            "rss_after_mb": rss_mb(pid),
            "threads": threads_of(pid),
            "db_connections_held": held,
        }
        for client in clients:
            client.close()
        return result
    finally:
        server.process.terminate(10)


def _db_connections_of(pid: int, connection) -> int:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND client_port IS NOT NULL AND pid <> pg_backend_pid() "
                "AND client_port IN (SELECT unnest(%s::int[]))",
                [_local_ports_of(pid)],
            )
            return cursor.fetchone()[0]
    # SQLite: open handles on the database file
    name = connection.settings_dict["NAME"]
    fds = Path(f"/proc/{pid}/fd")
    return sum(1 for fd in fds.iterdir() if os.path.realpath(fd) == str(name))


def _local_ports_of(pid: int) -> list[int]:
    """Local TCP ports of a process's sockets to PostgreSQL (5432)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd)
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            parts = line.split()
            local, remote, inode = parts[1], parts[2], parts[9]
            if inode in inodes and remote.endswith(":1538"):  # 0x1538 == 5432
                ports.append(int(local.rsplit(":", 1)[1], 16))
    return ports


def engine_overhead(user, items: int = 3000, threads: int = 1) -> dict[str, float]:
    from chirp import engine
    from tests.demo.models import DemoJob

    job = DemoJob.objects.create(owner=user, size=items, record_runs=False, threads=threads)
    started = time.monotonic()
    engine.run_lane("demo")
    took = time.monotonic() - started
    job.refresh_from_db()
    assert job.done == items, job.done
    return {"items": items, "threads": threads, "seconds": took, "items_per_s": items / took}


def main() -> None:
    import tempfile

    url = bench_database_url()
    setup_django(url, CHIRP_SLICE_SECONDS="600")
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("bench", password="x")
    tmp = Path(tempfile.mkdtemp(prefix="chirp-bench-"))
    vendor = "PostgreSQL" if url.startswith("postgres") else "SQLite"
    print(f"# Foundation benchmarks on {vendor}")
    if os.environ.get("REDIS_URL"):
        print("event latency, Redis:", _fmt(event_latency(url, user, tmp, redis=True)))
    print("event latency, relay:", _fmt(event_latency(url, user, tmp, redis=False)))
    print(f"{STREAMS} streams:", _fmt(many_streams(user, tmp)))
    for threads in (1, 2):
        print(
            "engine overhead (empty items, events on):",
            _fmt(engine_overhead(user, threads=threads)),
        )


def _fmt(result: dict[str, float]) -> str:
    return ", ".join(
        f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()
    )


if __name__ == "__main__":
    main()
