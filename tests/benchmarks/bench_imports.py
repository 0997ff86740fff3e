"""Channels benchmarks: a 1,000-video import through a real worker, Chirp's own cost per video,
and the Channels pages with a 10,000-video channel.

    .venv/bin/python -m tests.benchmarks.bench_imports
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python -m tests.benchmarks.bench_imports

Targets (issue 4): listing takes at most one request per 25 videos; Chirp's own overhead under
10 ms per video on PostgreSQL; the Channels page and a 10,000-video channel page under 150 ms of
server time (paginated). The limiter's spacing is zero: the fake YouTube answers at once, so the
import's wall time is yt-dlp's and youtube-transcript-api's work plus Chirp's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from statistics import median

from tests.benchmarks.harness import ROOT, percentile, rss_mb, setup_django

VIDEOS = 1000
BIG_CHANNEL = 10_000
OTHER_CHANNELS = 40
PAGE_RUNS = 25
OVERHEAD_RUNS = 5


def bench_database_url() -> str:
    """A fresh, migrated database of its own (never the configured one, nor another bench's)."""
    base = os.environ.get("DATABASE_URL", "")
    if base.startswith(("postgres://", "postgresql://")):
        import psycopg

        admin_url = base.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS chirp_bench_imports WITH (FORCE)")
            conn.execute("CREATE DATABASE chirp_bench_imports")
        url = base.rsplit("/", 1)[0] + "/chirp_bench_imports"
    else:
        url = f"sqlite:///{tempfile.mkdtemp(prefix='chirp-bench-imports-')}/bench.sqlite3"
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    return url


def tree_rss_mb(pid: int) -> tuple[float, float]:
    """(whole process tree, largest process) resident memory in MB."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo.extend(int(p) for p in children.read_text().split())
            except FileNotFoundError:
                continue
    sizes = []
    for p in pids:
        try:
            sizes.append(rss_mb(p))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return sum(sizes), max(sizes, default=0.0)


def import_through_a_worker(user, tmp: Path) -> dict[str, float]:
    from imports.models import ImportJob, Video
    from imports.youtube import parse_channel_input
    from tests.imports.fake_youtube import ENV_VAR, FakeYouTube

    with FakeYouTube() as fake:
        fake.add_channel("fixture1000", videos=VIDEOS, chapters=True)
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
        peak_tree = peak_one = 0.0
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak_tree, peak_one
            while not stop.wait(0.2):
                tree, one = tree_rss_mb(worker.pid)
                peak_tree, peak_one = max(peak_tree, tree), max(peak_one, one)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            time.sleep(3)  # the cluster starts
            started = time.monotonic()
            job, _ = ImportJob.start(user, parse_channel_input("@fixture1000"))
            listed_at = None
            while True:
                job.refresh_from_db()
                if listed_at is None and job.prepared:
                    listed_at = time.monotonic()
                if job.is_terminal:
                    break
                if time.monotonic() - started > 1800:
                    raise RuntimeError("the import did not finish in 30 minutes")
                time.sleep(0.2)
            took = time.monotonic() - started
        finally:
            stop.set()
            worker.terminate()
            worker.wait(60)
            log.close()
        assert (job.status, job.done) == ("completed", VIDEOS), (job.status, job.done, job.error)
        assert Video.objects.filter(stage="complete").count() == VIDEOS
        listing = fake.count("channel_page") + fake.count("browse")
        enrichment = fake.count() - listing
        return {
            "videos": VIDEOS,
            "wall_s": took,
            "listing_s": (listed_at or started) - started,
            "videos_per_s": VIDEOS / took,
            "listing_requests": listing,
            "videos_per_listing_request": VIDEOS / listing,
            "enrichment_requests_per_video": enrichment / VIDEOS,
            "peak_rss_cluster_mb": peak_tree,
            "peak_rss_largest_process_mb": peak_one,
        }


def chirp_overhead(user, videos: int = 1000, threads: int = 1) -> dict[str, float]:
    """The same pipeline with YouTube answered instantly in memory: what Chirp itself costs per
    video (its stage UPDATEs, live events, item transitions, the limiter's turns)."""
    from django.conf import settings
    from django.db import connection

    from chirp import engine
    from imports import enrichment
    from imports.chapters import Chapter
    from imports.models import ImportJob
    from imports.transcripts import Segment, Transcript
    from imports.youtube import ChannelEntry, ChannelListing, VideoInfo, parse_channel_input

    handle = f"stub{threads}{uuid.uuid4().hex[:6]}"
    entries = tuple(
        ChannelEntry(
            video_id=f"s{handle[-6:]}{n:06d}", title=f"Stub video {n}", url="", duration=600
        )
        for n in range(videos)
    )
    listing = ChannelListing(
        channel_id=f"UCstub{handle[-6:]}{threads:012d}",
        title="Stub channel",
        url="",
        handle=f"@{handle}",
        entries=entries,
        complete=True,
        video_count=videos,
    )
    transcript = Transcript(
        video_id="",
        language_code="en",
        language="English",
        source="manual",
        segments=tuple(
            Segment(start=4.0 * i, duration=4.0, text=f"line {i} " * 6) for i in range(150)
        ),
    )
    chapters = (Chapter(0, 200, "Intro"), Chapter(200, 400, "Middle"), Chapter(400, 600, "End"))

    class StubYouTube:
        def __init__(self, limiter) -> None:
            self.limiter = limiter

        def __enter__(self):
            return self

        def __exit__(self, *exc_info) -> None:
            pass

        def fetch_channel(self, ref, **options):
            return listing

        def fetch_video(self, video_id: str) -> VideoInfo:
            self.limiter.wait_turn()  # the watch page and the player call
            self.limiter.wait_turn()
            return VideoInfo(
                video_id=video_id,
                title=f"Stub {video_id}",
                description="0:00 Intro\n3:20 Middle\n6:40 End",
                duration=600,
                view_count=10,
                like_count=1,
                tags=("a", "b"),
                categories=("Education",),
                chapters=chapters,
            )

        def http_session(self):
            return self

    def stub_transcript(video_id, languages, session):
        for _ in range(3):  # watch page, player call, timed text
            session.limiter.wait_turn()
        return transcript

    originals = (enrichment.youtube_client, enrichment.fetch_transcript)
    enrichment.youtube_client = StubYouTube
    enrichment.fetch_transcript = stub_transcript
    settings.CHIRP_YOUTUBE_CONCURRENCY = threads
    statements = 0

    def count(execute, sql, params, many, context):
        nonlocal statements
        statements += 1
        return execute(sql, params, many, context)

    try:
        job, _ = ImportJob.start(user, parse_channel_input(f"@{handle}"))
        started, cpu_started = time.monotonic(), time.process_time()
        with connection.execute_wrapper(count):  # this thread's: all of it when threads=1
            engine.run_lane("imports")
        took, cpu = time.monotonic() - started, time.process_time() - cpu_started
    finally:
        enrichment.youtube_client, enrichment.fetch_transcript = originals
    job.refresh_from_db()
    assert job.done == videos, (job.status, job.done, job.error)
    result = {
        "videos": videos,
        "threads": threads,
        "seconds": took,
        "ms_per_video": 1000 * took / videos,
        # This process's CPU (every thread): Python's share, without PostgreSQL's and Redis's.
        "cpu_ms_per_video": 1000 * cpu / videos,
    }
    if threads == 1:
        result["sql_statements_per_video"] = statements / videos
    return result


def overhead_runs(user, runs: int = OVERHEAD_RUNS) -> dict[int, list[dict[str, float]]]:
    """`chirp_overhead` with 1 and 2 threads, interleaved, `runs` times each after a warm-up:
    on a shared machine one run can be off by half; the median of interleaved runs is not."""
    chirp_overhead(user, videos=50, threads=1)  # imports, caches, connections: not counted
    results: dict[int, list[dict[str, float]]] = {1: [], 2: []}
    for _ in range(runs):
        for threads in results:
            results[threads].append(chirp_overhead(user, threads=threads))
    return results


def page_times(user) -> dict[str, dict[str, float]]:
    """Server time of the Channels pages (in-process client: the view, its queries, the
    template; no network), with one channel of BIG_CHANNEL videos among OTHER_CHANNELS."""
    from django.test import Client
    from django.utils import timezone

    from imports.models import Channel, ImportJob, Video

    big = Channel.objects.create(youtube_id="UCbig" + "0" * 19, handle="@big", title="Big channel")
    ImportJob.objects.create(
        owner=user, channel=big, channel_url=big.youtube_url, status="completed", total=BIG_CHANNEL
    )
    words = [
        "river",
        "stone",
        "garden",
        "light",
        "music",
        "kitchen",
        "engine",
        "window",
        "paper",
        "forest",
    ]
    now = timezone.now()
    batch = []
    for n in range(BIG_CHANNEL):
        text = " ".join(words[(n + i) % len(words)] for i in range(300))
        batch.append(
            Video(
                youtube_id=f"b{n:010d}",
                channel=big,
                title=f"Video {n} about {words[n % len(words)]}",
                thumbnail_url=f"https://i.ytimg.com/vi/b{n:010d}/hqdefault.jpg",
                stage="complete" if n % 50 else "error",
                progress=100,
                duration=60 + n % 3000,
                published=now - timedelta(hours=n),
                transcript=text + (" needle" if n == 7777 else ""),
                transcript_source="manual",
                transcript_segments=[[float(i), 2.0, w] for i, w in enumerate(text.split()[:50])],
            )
        )
        if len(batch) == 1000:
            Video.objects.bulk_create(batch)
            batch = []
    for n in range(OTHER_CHANNELS):
        channel = Channel.objects.create(youtube_id=f"UCother{n:017d}", title=f"Other {n}")
        ImportJob.objects.create(
            owner=user, channel=channel, channel_url=channel.youtube_url, status="completed"
        )
        Video.objects.bulk_create(
            Video(youtube_id=f"o{n:04d}{i:06d}", channel=channel, stage="complete")
            for i in range(25)
        )
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")

    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    video = big.videos.order_by("pk").first()
    urls = {
        "channels": "/channels/",
        "channel": big.get_absolute_url(),
        "channel, stage filter, page 50": big.get_absolute_url() + "?stage=complete&page=50",
        "channel, search 'needle'": big.get_absolute_url() + "?q=needle",
        "channel, search 'garden'": big.get_absolute_url() + "?q=garden",
        "video": video.get_absolute_url(),
    }
    results = {}
    for name, url in urls.items():
        for _ in range(3):
            assert client.get(url).status_code == 200
        times = []
        for _ in range(PAGE_RUNS):
            started = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
        results[name] = {"median_ms": median(times), "p95_ms": percentile(times, 95)}
    return results


def main() -> None:
    url = bench_database_url()
    # Pages are timed as in production (DEBUG off): their static files need a manifest.
    static_root = tempfile.mkdtemp(prefix="chirp-bench-static-")
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    env.update(DEBUG="0", CHIRP_STATIC_ROOT=static_root, SECRET_KEY="bench")
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    setup_django(
        url,
        CHIRP_SLICE_SECONDS="600",
        CHIRP_YOUTUBE_SPACING="0",
        CHIRP_STATIC_ROOT=static_root,
    )
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("bench", password="x")
    tmp = Path(tempfile.mkdtemp(prefix="chirp-bench-imports-"))
    vendor = "PostgreSQL" if url.startswith("postgres") else "SQLite"
    redis = "Redis" if os.environ.get("REDIS_URL") else "no Redis"
    print(f"# Channels benchmarks on {vendor} ({redis})")
    print(f"{VIDEOS}-video import, real worker:", _fmt(import_through_a_worker(user, tmp)))
    for threads, runs in overhead_runs(user).items():
        per_video = sorted(run["ms_per_video"] for run in runs)
        cpu = sorted(run["cpu_ms_per_video"] for run in runs)
        summary = {
            "threads": threads,
            "runs": len(runs),
            "median_ms_per_video": median(per_video),
            "min": per_video[0],
            "max": per_video[-1],
            "median_cpu_ms_per_video": median(cpu),
        }
        if "sql_statements_per_video" in runs[0]:
            summary["sql_statements_per_video"] = runs[0]["sql_statements_per_video"]
        print("Chirp's own overhead:", _fmt(summary))
    for name, result in page_times(user).items():
        print(f"page {name}:", _fmt(result))


def _fmt(result: dict[str, float]) -> str:
    return ", ".join(
        f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()
    )


if __name__ == "__main__":
    main()
