"""Channel list batch benchmark: a 200-channel list x 50 videos each on the fake YouTube at zero
spacing, through a real worker (`manage.py qcluster`), as one batch.

    .venv/bin/python -m tests.benchmarks.bench_list_batch
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \\
        .venv/bin/python -m tests.benchmarks.bench_list_batch
    CHIRP_BENCH_LIST_CHANNELS=40 CHIRP_BENCH_LIST_VIDEOS=25 ...   (a smaller run)

Figures (issue 13; seed 003 asks under 2 s per video and under 1 GB for 10,000 videos):
- wall time of the whole batch, and per video;
- Chirp's own time per video: the CPU time of the whole cluster per video (Chirp's work plus
  yt-dlp's parsing of the fake's pages: an upper bound), and the batch's own coordination cost,
  the time between one row's import ending and the next one's starting (the imports lane idle);
- the peak resident memory of the whole cluster (every process of it, summed);
- requests to YouTube per video.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.benchmarks import harness
from tests.benchmarks.bench_imports import tree_rss_mb
from tests.benchmarks.harness import ROOT, setup_django

CHANNELS = int(os.environ.get("CHIRP_BENCH_LIST_CHANNELS", "200"))
VIDEOS = int(os.environ.get("CHIRP_BENCH_LIST_VIDEOS", "50"))
TICKS = os.sysconf("SC_CLK_TCK")


def bench_database_url() -> str:
    """A fresh, migrated database of its own (never the configured one, nor another bench's)."""
    return harness.bench_database_url("chirp_bench_list_batch")


def tree_pids(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo.extend(int(p) for p in children.read_text().split())
            except FileNotFoundError:
                continue
    return pids


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, and of its children it has reaped (cutime + cstime)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICKS


def main() -> None:
    url = bench_database_url()
    # Run as production does (DEBUG off): the pages the live events render need a manifest.
    static_root = tempfile.mkdtemp(prefix="chirp-bench-static-")
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    env.update(DEBUG="0", CHIRP_STATIC_ROOT=static_root, SECRET_KEY="bench")
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    setup_django(url, CHIRP_STATIC_ROOT=static_root)
    from django.contrib.auth import get_user_model

    from imports.models import ImportJob, ListBatch, Video
    from tests.imports.fake_youtube import ENV_VAR, FakeYouTube

    user = get_user_model().objects.create_user("bench", password="x")
    tmp = Path(tempfile.mkdtemp(prefix="chirp-bench-batch-"))
    vendor = "PostgreSQL" if url.startswith("postgres") else "SQLite"
    redis = "Redis" if os.environ.get("REDIS_URL") else "no Redis"
    print(f"# Channel list batch benchmark on {vendor} ({redis}): {CHANNELS} channels x {VIDEOS}")
    with FakeYouTube() as fake:
        lines = ["name,email,type,channel_url"]
        for n in range(CHANNELS):
            fake.add_channel(f"bench{n}", videos=VIDEOS)
            lines.append(f"Person {n},p{n}@example.com,T{n % 16},https://www.youtube.com/@bench{n}")
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "CHIRP_YOUTUBE_TRANSPORT": "tests.imports.fake_youtube.transport",
            ENV_VAR: fake.url,
            "CHIRP_YOUTUBE_SPACING": "0",
            "CHIRP_SLICE_SECONDS": "600",
            "PYTHONUNBUFFERED": "1",
        }
        log = (tmp / "qcluster.log").open("wb")
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        peak_tree = 0.0
        cpu: dict[int, float] = {}
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak_tree
            while not stop.wait(0.2):
                pids = tree_pids(worker.pid)
                peak_tree = max(peak_tree, tree_rss_mb(worker.pid)[0])
                for pid in pids:
                    cpu[pid] = max(cpu.get(pid, 0.0), cpu_seconds(pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            time.sleep(3)  # the cluster starts
            cpu_before = sum(cpu.values())
            started = time.monotonic()
            batch = ListBatch.draft(user, "\n".join(lines) + "\n", "csv", name="bench.csv")
            batch.start()
            while True:
                batch.refresh_from_db()
                if batch.is_terminal:
                    break
                if time.monotonic() - started > 3 * 3600:
                    raise RuntimeError("the batch did not finish in 3 hours")
                time.sleep(0.5)
            took = time.monotonic() - started
        finally:
            stop.set()
            sampler.join(5)
            worker.terminate()
            worker.wait(120)
            log.close()
        cluster_cpu = sum(cpu.values()) - cpu_before
        videos = CHANNELS * VIDEOS
        assert (batch.status, batch.done) == ("completed", CHANNELS), (batch.status, batch.done)
        assert Video.objects.filter(stage="complete").count() == videos
        imports = list(ImportJob.objects.order_by("started").values_list("started", "finished"))
        gaps = [(nxt[0] - prev[1]).total_seconds() for prev, nxt in itertools.pairwise(imports)]
        requests = len(fake.requests)
    gap_total = sum(gaps)
    print(
        f"wall_s={took:.1f}, ms_per_video={1000 * took / videos:.1f}, "
        f"videos_per_s={videos / took:.1f}"
    )
    print(
        f"cluster_cpu_ms_per_video={1000 * cluster_cpu / videos:.1f} (Chirp + yt-dlp), "
        f"batch_gap_ms_per_row={1000 * gap_total / max(1, len(gaps)):.0f}, "
        f"batch_gap_ms_per_video={1000 * gap_total / videos:.1f}"
    )
    print(f"peak_rss_cluster_mb={peak_tree:.0f}")
    print(f"requests={requests}, requests_per_video={requests / videos:.2f}")


if __name__ == "__main__":
    main()
