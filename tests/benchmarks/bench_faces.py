"""How many pictures a second the face detector handles, with one thread and with two.

    python -m tests.benchmarks.bench_faces [--backend opencv|dlib] [--rounds N] [--repeat N]
                                           [--opencv-threads N] [--shared]

Each thread uses its own detector (as uploads.faces does), built before the clock starts. The
pictures are the test suite's samples, at their own size (about 512 px) and enlarged to
1024 px, the largest side the detector is given. The best of --repeat runs is printed.
opencv spreads one detection over every core by itself; `--opencv-threads 1` stops that.
`--shared` runs the two threads on one shared detector instead, to show the miscounts (or the
crash).
"""

from __future__ import annotations

import argparse
import os
import resource
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()

from PIL import Image  # noqa: E402

from tests.uploads.conftest import load_sample_pictures  # noqa: E402
from uploads.faces import FaceDetector  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="opencv")
    parser.add_argument("--rounds", type=int, default=4, help="passes over the pictures per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best one counts")
    parser.add_argument("--opencv-threads", type=int, help="cv2.setNumThreads (default: all)")
    parser.add_argument("--shared", action="store_true", help="two threads, one detector")
    args = parser.parse_args()
    if args.opencv_threads is not None:
        import cv2

        cv2.setNumThreads(args.opencv_threads)

    started = time.perf_counter()
    probe = FaceDetector(args.backend)
    print(f"{args.backend}: first detector built in {time.perf_counter() - started:.2f} s")

    pictures = load_sample_pictures()
    enlarged = {name: _fit(picture, 1024) for name, picture in pictures.items()}
    expected = {name: len(probe.detect(picture)) for name, picture in pictures.items()}
    print("faces:", ", ".join(f"{name} {count}" for name, count in expected.items()))

    for label, sample in (("~512 px", pictures), ("1024 px", enlarged)):
        for threads in (1, 2):
            rate, wrong = _best_rate(args, sample, threads)
            note = f", {wrong} wrong counts" if wrong else ""
            print(f"{label}, {threads} thread(s): {rate:5.1f} pictures/s{note}")

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (RSS): {peak_mb:.0f} MB")


def _best_rate(
    args: argparse.Namespace, pictures: dict[str, Image.Image], threads: int
) -> tuple[float, int]:
    names = list(pictures) * args.rounds
    shared = FaceDetector(args.backend) if args.shared else None
    expected = {name: len(FaceDetector(args.backend).detect(pictures[name])) for name in pictures}
    detector_of = _detector_per_thread(args.backend, shared)
    best, wrong = 0.0, 0
    with ThreadPoolExecutor(threads, initializer=detector_of) as pool:
        for _ in range(args.repeat):
            started = time.perf_counter()
            counts = list(pool.map(lambda name: len(detector_of().detect(pictures[name])), names))
            best = max(best, len(names) / (time.perf_counter() - started))
            wrong += sum(count != expected[name] for name, count in zip(names, counts, strict=True))
    return best, wrong


def _detector_per_thread(backend: str, shared: FaceDetector | None) -> Callable[[], FaceDetector]:
    local = threading.local()

    def detector_of() -> FaceDetector:
        if shared is not None:
            return shared
        if not hasattr(local, "detector"):
            local.detector = FaceDetector(backend)
        return local.detector

    return detector_of


def _fit(picture: Image.Image, side: int) -> Image.Image:
    scale = side / max(picture.size)
    return picture.resize((round(picture.width * scale), round(picture.height * scale)))


if __name__ == "__main__":
    main()
