"""Channel lists benchmark: the preview of a 10,000-row CSV, through the API's dry run and the
"Import a list" page, with no request to YouTube.

    .venv/bin/python -m tests.benchmarks.bench_lists
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \\
        .venv/bin/python -m tests.benchmarks.bench_lists

Target (issue 13): server time under 2 s (in-process client: the upload's parsing, the list's
reading, the preview's queries, the JSON or the page; no network), and no request to YouTube.
The user already has 1,000 channels; the list names 500 of them, repeats 500 rows, and has 100
invalid rows and 100 emails that are not emails.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from statistics import median

from tests.benchmarks import harness
from tests.benchmarks.harness import ROOT, percentile, setup_django

ROWS = 10_000
KNOWN = 1_000
RUNS = 5


def bench_database_url() -> str:
    """A fresh, migrated database of its own (never the configured one, nor another bench's)."""
    return harness.bench_database_url("chirp_bench_lists")


def the_list() -> bytes:
    lines = ["\ufeffname,email,type,channel_url,notes"]
    for n in range(ROWS):
        if n % 100 == 1:
            channel = f"https://vimeo.com/person{n}"  # invalid: another site
        elif n % 20 == 2:
            channel = f"@person{n - 1}"  # a duplicate of the row before
        elif n % 20 == 3:
            channel = f"https://www.youtube.com/@known{n // 20}"  # already in their channels
        else:
            channel = f"https://youtube.com/@person{n}"
        email = f"person{n}@example.com" if n % 100 != 4 else f"person {n} at example"
        lines.append(f'"Person {n}, Jr.",{email},FF-Ti/Se #{n % 16},{channel},row {n}')
    return ("\r\n".join(lines) + "\r\n").encode()


def main() -> None:
    from tests.imports.fake_youtube import ENV_VAR, FakeYouTube

    url = bench_database_url()
    static_root = tempfile.mkdtemp(prefix="chirp-bench-static-")
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    env.update(DEBUG="0", CHIRP_STATIC_ROOT=static_root, SECRET_KEY="bench")
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    with FakeYouTube() as youtube:
        os.environ[ENV_VAR] = youtube.url
        setup_django(
            url,
            CHIRP_STATIC_ROOT=static_root,
            CHIRP_YOUTUBE_TRANSPORT="tests.imports.fake_youtube.transport",
        )
        from django.contrib.auth import get_user_model
        from django.core.files.uploadedfile import SimpleUploadedFile
        from django.test import Client

        from imports.models import Channel, ImportJob

        user = get_user_model().objects.create_user("bench", password="x")
        channels = Channel.objects.bulk_create(
            Channel(youtube_id=f"UCknown{n:017d}", handle=f"@known{n}", title=f"Known {n}")
            for n in range(KNOWN)
        )
        ImportJob.objects.bulk_create(
            ImportJob(owner=user, channel=c, channel_url=c.youtube_url, status="completed")
            for c in channels
        )
        content = the_list()
        client = Client(HTTP_HOST="localhost")
        client.force_login(user)

        def api() -> None:
            upload = SimpleUploadedFile("list.csv", content, content_type="text/csv")
            response = client.post("/api/channels/lists", {"file": upload, "dryRun": "true"})
            assert response.status_code == 200, response.content[:300]
            counts = response.json()["counts"]
            assert counts["total"] == ROWS and counts["existing"] == 500, counts

        def page() -> None:
            upload = SimpleUploadedFile("list.csv", content, content_type="text/csv")
            response = client.post("/channels/lists/", {"file": upload})
            assert response.status_code == 200 and b'data-count="total">10000<' in response.content

        vendor = "PostgreSQL" if url.startswith("postgres") else "SQLite"
        print(f"# Channel lists benchmark on {vendor}: a {ROWS:,}-row CSV ({len(content):,} bytes)")
        for name, call in (("API dry run", api), ("Import a list page", page)):
            call()  # warm
            times = []
            for _ in range(RUNS):
                started = time.perf_counter()
                call()
                times.append((time.perf_counter() - started) * 1000)
            print(
                f"{name}: median_ms={median(times):.0f}, p95_ms={percentile(times, 95):.0f}, "
                f"max_ms={max(times):.0f}"
            )
        print(f"requests to YouTube: {len(youtube.requests)}")
        assert not youtube.requests


if __name__ == "__main__":
    main()
