"""How fast the uploads pipeline turns a page's images into records, and how much memory it takes.

    python -m tests.benchmarks.bench_uploads [--images N] [--repeat N] [--large N]

1. A page of --images (40) distinct pictures served over loopback, run through the uploads lane
   in this process (fetch, decode, dedupe, detect, thumbnail, save, live events) with one and
   two image threads; beside it, the raw detector's best throughput on the same decoded
   pictures (per-thread detectors called directly, one and two threads). Target: two threads
   reach 85% of the raw figure. Every figure is the best of --repeat runs: other work on the
   machine only ever slows a run down.
2. The same page with 200 ms added before each picture is answered: two threads against one.
   Target: at least 1.6x.
3. A page of --large (500) pictures through a real `manage.py qcluster`: the worker's peak
   memory (RSS of its biggest process, and of the whole cluster). Target: under 800 MB.

Pictures are the test samples (scikit-image, matplotlib), resized (about 250 to 1100 px a
side), mirrored and marked so that every one has its own bytes (no dedupe shortcut).
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.benchmarks.harness import ROOT, bench_database_url, rss_mb, setup_django

MEDIA = tempfile.mkdtemp(prefix="chirp-bench-media-")
DB_URL = bench_database_url()
setup_django(DB_URL, CHIRP_MEDIA_ROOT=MEDIA)

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db.models import Max, Min  # noqa: E402
from PIL import Image as Picture  # noqa: E402
from PIL import ImageOps  # noqa: E402

from chirp import engine  # noqa: E402
from tests.uploads.conftest import load_sample_pictures  # noqa: E402
from uploads.faces import FaceDetector  # noqa: E402
from uploads.images import decode_image  # noqa: E402
from uploads.models import Image, ScrapeJob  # noqa: E402


class PictureSite:
    """A page of n distinct JPEGs on loopback, each answered after `delay` seconds."""

    def __init__(self, pictures: list[Picture.Image], count: int) -> None:
        self.pictures = pictures
        self.count = count
        self.delay = 0.0
        self._cache: dict[int, bytes] = {}
        self._lock = threading.Lock()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/page.html":
                    body = site.page_html().encode()
                    content_type = "text/html"
                else:
                    time.sleep(site.delay)
                    body = site.jpeg(int(self.path.strip("/").removesuffix(".jpg")))
                    content_type = "image/jpeg"
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/page.html"

    def page_html(self) -> str:
        return "".join(f'<img src="/{n}.jpg">' for n in range(self.count))

    def picture(self, n: int) -> Picture.Image:
        base = self.pictures[n % len(self.pictures)]
        scale = 0.8 + (n * 7 % 11) / 10  # 0.8 .. 1.8
        picture = base.resize((round(base.width * scale), round(base.height * scale)))
        if (n // len(self.pictures)) % 2:
            picture = ImageOps.mirror(picture)
        # A corner mark of its own, so that no two pictures share their bytes.
        picture.paste((n % 256, n // 256 % 256, 128), (0, 0, 8, 8))
        return picture

    def jpeg(self, n: int) -> bytes:
        with self._lock:
            if n not in self._cache:
                out = io.BytesIO()
                self.picture(n).save(out, format="JPEG", quality=88)
                self._cache[n] = out.getvalue()
            return self._cache[n]


def forget_everything() -> None:
    ScrapeJob.objects.all().delete()
    Image.objects.all().delete()


def pipeline_rate(owner, site: PictureSite, threads: int, repeat: int) -> float:
    """Images per second through the lane, from the first item's start to the last's end;
    the best of `repeat` runs (each on an empty gallery, so every picture is new)."""
    settings.CHIRP_IMAGE_THREADS = threads
    best = 0.0
    for _ in range(repeat):
        forget_everything()
        job = ScrapeJob.objects.create(owner=owner, url=site.url)
        engine.run_lane("uploads")
        job.refresh_from_db()
        assert job.done == site.count, (job.status, job.done, job.error)
        span = job.items.aggregate(start=Min("started"), end=Max("finished"))
        best = max(best, job.total / (span["end"] - span["start"]).total_seconds())
    return best


def raw_rate(pictures: list[Picture.Image], threads: int, repeat: int) -> float:
    local = threading.local()

    def detect(picture: Picture.Image) -> int:
        if not hasattr(local, "detector"):
            local.detector = FaceDetector(settings.CHIRP_FACE_DETECTOR)
        return len(local.detector.detect(picture, max_side=settings.CHIRP_FACE_MAX_SIDE))

    best = 0.0
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(detect, pictures[: threads * 2]))  # build the detectors first
        for _ in range(repeat):
            started = time.perf_counter()
            list(pool.map(detect, pictures))
            best = max(best, len(pictures) / (time.perf_counter() - started))
    return best


def worker_memory(owner, site: PictureSite) -> tuple[float, float, float]:
    """(biggest process's peak RSS, whole cluster's peak RSS, seconds) over one job."""
    forget_everything()
    env = {**os.environ, "CHIRP_IMAGE_THREADS": "2", "PYTHONUNBUFFERED": "1"}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    log = Path(MEDIA, "qcluster.log").open("wb")  # noqa: SIM115 (closed below, with the worker)
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    peak_one = peak_all = 0.0
    try:
        time.sleep(3)
        job = ScrapeJob.start(owner, site.url)  # autocommit: the lane is woken at once
        started = time.monotonic()
        while True:
            sizes = [rss_mb(pid) for pid in _cluster_pids(worker.pid)]
            peak_one = max(peak_one, *sizes, 0.0)
            peak_all = max(peak_all, sum(sizes))
            job.refresh_from_db()
            if job.is_terminal:
                break
            if time.monotonic() - started > 1800:
                raise RuntimeError("the 500-image job took more than 30 minutes")
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        assert job.done == site.count, (job.status, job.done, job.failed, job.error)
    finally:
        worker.send_signal(signal.SIGTERM)  # the main process only (STACK-NOTES)
        worker.wait(60)
        log.close()
    return peak_one, peak_all, elapsed


def _cluster_pids(main: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == main:  # the session id: the cluster's main process
                pids.append(int(entry.name))
    return pids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--large", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best counts")
    args = parser.parse_args()

    owner, _ = get_user_model().objects.get_or_create(username="bench")
    samples = list(load_sample_pictures().values())
    site = PictureSite(samples, args.images)
    decoded = [decode_image(site.jpeg(n)).image for n in range(args.images)]
    print(
        f"{args.images} pictures, {min(min(p.size) for p in decoded)}-"
        f"{max(max(p.size) for p in decoded)} px, detector {settings.CHIRP_FACE_DETECTOR}, "
        f"{os.cpu_count()} cores"
    )

    raw = {threads: raw_rate(decoded, threads, args.repeat) for threads in (1, 2)}
    best_raw = max(raw.values())
    print(f"raw detector: 1 thread {raw[1]:.1f} img/s, 2 threads {raw[2]:.1f} img/s")
    rates = {}
    for threads in (1, 2):
        rates[threads] = pipeline_rate(owner, site, threads, args.repeat)
        print(
            f"pipeline, {threads} thread(s): {rates[threads]:.1f} img/s "
            f"({100 * rates[threads] / best_raw:.0f}% of the raw detector's best)"
        )

    site.delay = 0.2
    slow = {threads: pipeline_rate(owner, site, threads, args.repeat) for threads in (1, 2)}
    print(
        f"200 ms per picture: 1 thread {slow[1]:.1f} img/s, 2 threads {slow[2]:.1f} img/s "
        f"({slow[2] / slow[1]:.2f}x)"
    )

    large = PictureSite(samples, args.large)
    one, cluster, seconds = worker_memory(owner, large)
    print(
        f"{args.large} pictures through qcluster in {seconds:.0f} s "
        f"({args.large / seconds:.1f} img/s): peak RSS {one:.0f} MB in the worker process, "
        f"{cluster:.0f} MB for the whole cluster"
    )


if __name__ == "__main__":
    main()
