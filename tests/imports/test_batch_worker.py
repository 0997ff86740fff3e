"""A channel list run as a batch inside a real `manage.py qcluster`, on the fake YouTube: the
page's preview and Start, the rows' imports one at a time in the imports lane, people linked,
the per-row report (page, CSV, API), a worker killed mid-batch, pause and resume, another
user's import between two rows, and the CLI. alice owns, bob is the stranger."""

from __future__ import annotations

import csv
import io
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time

import pytest
from django.urls import reverse
from django.utils import timezone

from imports.models import Channel, ImportJob, ListBatch, ListBatchRow, Person, PersonChannel, Video
from imports.youtube import parse_channel_input
from tests.conftest import ROOT, server_env, wait_for
from tests.sse import stored_events

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def fresh(batch: ListBatch) -> ListBatch:
    batch.refresh_from_db()
    return batch


def preview_and_start(client, text: str, **options) -> ListBatch:
    """The "Import a list" page: paste, preview, then Start with `options`."""
    page = client.post(reverse("imports:import_list"), {"text": text})
    assert page.status_code == 200
    match = re.search(r'action="(/channels/lists/(\d+)/start/)"', page.content.decode())
    assert match, "the preview offers Start"
    response = client.post(match[1], {"only_new": "on", "quality": "none", **options})
    batch = ListBatch.objects.get(pk=match[2])
    assert response.status_code == 302 and response["Location"] == batch.get_absolute_url()
    return batch


def channels_csv(count: int, prefix: str) -> str:
    lines = ["name,email,type,channel_url,team"]
    for n in range(1, count + 1):
        lines.append(f"Person {n},p{n}@example.com,T{n % 3},https://www.youtube.com/@{prefix}{n},t")
    return "\n".join(lines) + "\n"


def test_a_25_channel_csv_with_people_runs_to_an_exact_report(
    alice, alice_client, fake_youtube, start_worker
):
    for n in range(1, 26):
        fake_youtube.add_channel(
            f"crowd{n}", videos=2, title=f"Crowd {n}", captions={0: "none"} if n == 3 else "manual"
        )
    text = channels_csv(25, "crowd")
    # Row 27: one person with a second channel (the same name and email: one person); rows 28
    # and 29: a duplicate of row 2 and another site's link; row 30's name is formula bait.
    text = text.replace("Person 25,p25@example.com", "Person 24,p24@example.com")
    text += "Dup,,,https://www.youtube.com/@crowd1,\nBad,,,https://example.com/@x,\n"
    text = text.replace("Person 7,", "=HYPERLINK(1),")
    start_worker()

    batch = preview_and_start(alice_client, text)
    wait_for(lambda: fresh(batch).is_terminal, timeout=300)

    assert (batch.status, batch.total, batch.done, batch.skipped, batch.failed) == (
        "completed",
        27,
        25,
        2,
        0,
    )
    assert Channel.objects.count() == 25 and Video.objects.count() == 50
    assert ImportJob.objects.filter(owner=alice).count() == 25
    # People: 24 (persons 24 and 25 are one), each linked to their channels, for alice.
    assert Person.objects.filter(owner=alice).count() == 24
    person = Person.objects.get(owner=alice, name="Person 24")
    assert sorted(c.handle for c in person.channels.all()) == ["@crowd24", "@crowd25"]
    assert (person.type, person.extra) == ("T1", {"team": "t"})
    assert PersonChannel.objects.filter(owner=alice).count() == 25

    report = {row["row"]: row for row in fresh(batch).report()}
    assert len(report) == 27
    for n in range(1, 26):
        row = report[n + 1]
        assert (row["status"], row["videos_imported"], row["failed"]) == ("completed", 2, 0)
        assert row["channel"] == f"Crowd {n}"
        assert row["without_captions"] == (1 if n == 3 else 0)
    assert report[2]["person"] == "Person 1" and report[8]["person"] == "=HYPERLINK(1)"
    assert (report[27]["status"], report[27]["message"]) == ("skipped", "Duplicate of row 2")
    assert report[28]["status"] == "skipped" and "example.com" in report[28]["message"]

    # The page shows the report; the CSV says the same, formula cells neutralised.
    page = alice_client.get(batch.get_absolute_url()).content.decode()
    assert page.count('data-status="completed"') >= 25 and "Duplicate of row 2" in page
    csv_answer = alice_client.get(reverse("imports:batch_report", args=[batch.pk]))
    rows = list(csv.reader(io.StringIO(csv_answer.content.decode())))
    assert rows[0][:7] == ["row", "channel", "channel_url", "person", "email", "type", "status"]
    assert len(rows) == 28
    by_row = {r[0]: r for r in rows[1:]}
    assert by_row["8"][3] == "'=HYPERLINK(1)" and by_row["4"][10] == "1"
    # The API answers the same report.
    api = alice_client.get(f"/api/channels/lists/{batch.pk}").json()
    assert api["status"] == "completed" and api["videosImported"] == 50
    assert api["withoutCaptions"] == 1 and len(api["rows"]) == 27
    assert api["rows"][0]["videosImported"] == 2 and api["rows"][0]["person"] == "Person 1"

    # And the owner was told at the end.
    def toasts() -> list[str]:
        return [html for _, html in stored_events(alice, "toast")]

    wait_for(lambda: any("25 of 27 channels imported, 50 videos" in t for t in toasts()), 10)


def test_a_worker_killed_mid_batch_resumes_each_row_exactly_once(alice, fake_youtube, start_worker):
    for n in range(1, 5):
        fake_youtube.add_channel(f"long{n}", videos=30)
    fake_youtube.add_fault(kinds={"watch"}, delay=0.03)
    batch = ListBatch.draft(alice, "\n".join(f"@long{n}" for n in range(1, 5)), "text")
    batch.start()
    worker = start_worker()

    def mid_row() -> bool:
        row = ListBatchRow.objects.filter(job=batch, status="processing").first()
        return bool(row and row.import_job and 3 < row.import_job.done < 25 and row.number > 1)

    wait_for(mid_row, timeout=120, interval=0.05)
    worker.kill()
    killed_at = ListBatchRow.objects.get(job=batch, status="processing")
    start_worker()
    wait_for(lambda: fresh(batch).is_terminal, timeout=300)

    assert (batch.status, batch.done, batch.failed, batch.total) == ("completed", 4, 0, 4)
    # One import per row, the interrupted row's included: it waited for its own import again.
    assert ImportJob.objects.count() == 4
    killed_at.refresh_from_db()
    assert killed_at.status == "completed" and killed_at.import_job.done == 30
    assert Video.objects.filter(stage="complete").count() == 120
    assert [r["videos_imported"] for r in batch.report()] == [30, 30, 30, 30]


def test_pause_starts_no_other_row_and_resume_goes_on(
    alice, alice_client, fake_youtube, start_worker
):
    for n in range(1, 5):
        fake_youtube.add_channel(f"calm{n}", videos=8)
    fake_youtube.add_fault(kinds={"watch"}, delay=0.05)
    start_worker()
    batch = preview_and_start(alice_client, "\n".join(f"@calm{n}" for n in range(1, 5)))
    wait_for(lambda: fresh(batch).done >= 1, timeout=120, interval=0.05)

    answer = alice_client.post(reverse("imports:pause_batch", args=[batch.pk]))
    assert answer.status_code == 302
    wait_for(lambda: fresh(batch).worker == "", timeout=30)
    assert batch.status == "paused"
    # The row that was importing finishes its import; no other row starts.
    wait_for(lambda: not ImportJob.objects.filter(status__in=ImportJob.OPEN_STATUSES).exists(), 60)
    started = ImportJob.objects.count()
    time.sleep(3)
    assert ImportJob.objects.count() == started < 4
    assert fresh(batch).status == "paused"
    assert "Resume" in alice_client.get(batch.get_absolute_url()).content.decode()

    alice_client.post(reverse("imports:resume_batch", args=[batch.pk]))
    wait_for(lambda: fresh(batch).is_terminal, timeout=180)
    assert (batch.status, batch.done, batch.failed) == ("completed", 4, 0)
    assert ImportJob.objects.count() == 4
    assert [r["videos_imported"] for r in batch.report()] == [8, 8, 8, 8]


def test_another_users_import_runs_between_two_rows_of_a_batch(
    alice, bob, fake_youtube, start_worker
):
    for n in range(1, 9):
        fake_youtube.add_channel(f"many{n}", videos=6)
    fake_youtube.add_channel("bobs", videos=3)
    fake_youtube.add_fault(kinds={"watch"}, delay=0.05)
    batch = ListBatch.draft(alice, "\n".join(f"@many{n}" for n in range(1, 9)), "text")
    batch.start()
    start_worker()
    wait_for(lambda: ImportJob.objects.filter(owner=alice).exists(), timeout=60, interval=0.05)

    bobs, _ = ImportJob.start(bob, parse_channel_input("@bobs"))
    wait_for(lambda: ImportJob.objects.get(pk=bobs.pk).is_terminal, timeout=120)

    bobs.refresh_from_db()
    assert bobs.status == "completed" and bobs.done == 3
    # Bob's import ran after at most the row alice's batch had under way when he asked.
    assert not fresh(batch).is_terminal
    before = ImportJob.objects.filter(owner=alice, started__lt=bobs.started).count()
    assert before <= 2
    wait_for(lambda: fresh(batch).is_terminal, timeout=240)
    assert (batch.status, batch.done) == ("completed", 8)
    assert batch.finished > bobs.finished


def test_a_failed_row_retried_from_the_batch_page_imports_its_channel(
    alice, alice_client, fake_youtube, start_worker
):
    fake_youtube.add_channel("early", videos=2, title="Early")
    start_worker()
    batch = preview_and_start(alice_client, "@early\n@late\n")
    wait_for(lambda: fresh(batch).is_terminal, timeout=120)
    assert (batch.status, batch.done, batch.failed) == ("completed", 1, 1)
    late = ListBatchRow.objects.get(job=batch, number=2)
    page = alice_client.get(batch.get_absolute_url()).content.decode()
    retry = reverse("imports:retry_batch_row", args=[batch.pk, late.pk])
    assert f'action="{retry}"' in page

    fake_youtube.add_channel("late", videos=3, title="Late")  # it exists now
    answer = alice_client.post(retry)

    assert answer.status_code == 302
    wait_for(lambda: fresh(batch).is_terminal, timeout=120)
    assert (batch.status, batch.done, batch.failed) == ("completed", 2, 0)
    report = {row["row"]: row for row in batch.report()}
    assert (report[2]["status"], report[2]["channel"], report[2]["videos_imported"]) == (
        "completed",
        "Late",
        3,
    )
    assert ImportJob.objects.filter(owner=alice).count() == 3  # the failed import stays
    page = alice_client.get(batch.get_absolute_url()).content.decode()
    assert f'action="{retry}"' not in page


def test_a_second_users_list_is_not_held_behind_the_whole_first_one(
    alice, bob, fake_youtube, start_worker
):
    """One lists-lane slot: the lists take turns a slice each, so bob's one-channel list runs
    its row between two rows of alice's long list, not after all of them."""
    for n in range(1, 7):
        fake_youtube.add_channel(f"long{n}", videos=6)
    fake_youtube.add_channel("bobs", videos=2)
    fake_youtube.add_fault(kinds={"watch"}, delay=0.1)
    alices = ListBatch.draft(alice, "\n".join(f"@long{n}" for n in range(1, 7)), "text")
    alices.start()
    start_worker(CHIRP_SLICE_SECONDS="2")
    wait_for(lambda: ImportJob.objects.filter(owner=alice).exists(), timeout=60, interval=0.05)

    bobs = ListBatch.draft(bob, "@bobs\n", "text")
    bobs.start()
    wait_for(lambda: fresh(bobs).is_terminal, timeout=180)

    assert (bobs.status, bobs.done) == ("completed", 1)
    assert not fresh(alices).is_terminal
    bobs_import = ImportJob.objects.get(owner=bob)
    before = ImportJob.objects.filter(owner=alice, started__lt=bobs_import.started).count()
    assert before <= 2
    wait_for(lambda: fresh(alices).is_terminal, timeout=300)
    assert (alices.status, alices.done) == ("completed", 6)


def test_the_cli_runs_a_text_list_and_prints_the_report(
    alice, fake_youtube, start_worker, tmp_path
):
    for n in range(1, 4):
        fake_youtube.add_channel(f"term{n}", videos=3, title=f"Term {n}")
    listing = tmp_path / "channels.txt"
    listing.write_text("# my channels\n@term1\n\nhttps://www.youtube.com/@term2\n@term3\n@term1\n")
    start_worker()

    done = subprocess.run(
        [sys.executable, "manage.py", "import_channels", str(listing), "--user", alice.username],
        cwd=ROOT,
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr
    batch = ListBatch.objects.get(owner=alice)
    assert (batch.status, batch.done, batch.skipped) == ("completed", 3, 1)
    out = done.stdout
    assert "3 of 4 channels imported, 9 videos" in out
    assert re.search(r"\[#{30}\] 4/4 channels · 9 videos · 0 failed · completed", out)
    for row in batch.items.select_related("import_job", "channel"):
        if row.status == "completed":
            line = f"{row.number:>5}  completed       3      0  {row.channel.title}"
            assert line in out and row.import_job.done == 3
    assert re.search(
        r"\s6  skipped\s+0\s+0  https://www.youtube.com/@term1 — Duplicate of row 2", out
    )
    assert Video.objects.count() == 9


def test_the_cli_exits_non_zero_when_the_batch_fails(alice, fake_youtube, start_worker, tmp_path):
    listing = tmp_path / "channels.txt"
    listing.write_text("@nobodyhere\n")
    start_worker()

    done = subprocess.run(
        [sys.executable, "manage.py", "import_channels", str(listing), "--user", alice.username],
        cwd=ROOT,
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode != 0
    assert "The batch failed" in done.stderr
    assert "failed" in done.stdout and "@nobodyhere" in done.stdout


def test_the_cli_exits_non_zero_when_a_row_failed_and_says_how_to_retry(
    alice, fake_youtube, start_worker, tmp_path
):
    fake_youtube.add_channel("fine", videos=2, title="Fine")
    listing = tmp_path / "channels.txt"
    listing.write_text("@fine\n@nobodyhere\n")
    start_worker()

    done = subprocess.run(
        [sys.executable, "manage.py", "import_channels", str(listing), "--user", alice.username],
        cwd=ROOT,
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )

    batch = ListBatch.objects.get(owner=alice)
    assert (batch.status, batch.done, batch.failed) == ("completed", 1, 1)
    assert done.returncode == 1
    assert "1 of 2 channels imported" in done.stdout and "@nobodyhere" in done.stdout
    assert f"1 row failed: retry it from {batch.get_absolute_url()}" in done.stderr


def test_the_cli_interrupted_leaves_the_batch_to_the_workers(alice, tmp_path):
    """No worker runs: the batch waits in line; Ctrl-C stops the watching, not the batch."""
    listing = tmp_path / "channels.txt"
    listing.write_text("@one\n@two\n")
    command = subprocess.Popen(
        [sys.executable, "manage.py", "import_channels", str(listing), "--user", alice.username],
        cwd=ROOT,
        env=server_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        while not any("channels ·" in line for line in lines):
            lines.append(command.stdout.readline())
            assert lines[-1], "the command ended before it drew its progress"
        command.send_signal(signal.SIGINT)
        _out, err = command.communicate(timeout=30)
    finally:
        command.kill()

    batch = ListBatch.objects.get(owner=alice)
    assert command.returncode == 130
    assert batch.status == "pending"
    assert "Traceback" not in err
    assert f"The batch goes on in the workers: {batch.get_absolute_url()}" in err


def test_the_cli_redraws_its_bar_in_place_on_a_terminal(alice, tmp_path):
    """On a terminal the bar is drawn over itself, a shorter line padded over a longer one.
    (No worker: the test moves the batch along.)"""
    listing = tmp_path / "channels.txt"
    listing.write_text("@one\n@two\n")
    leader, follower = pty.openpty()
    command = subprocess.Popen(
        [sys.executable, "manage.py", "import_channels", str(listing), "--user", alice.username],
        cwd=ROOT,
        env=server_env(),
        stdout=follower,
        stderr=subprocess.DEVNULL,
    )
    os.close(follower)
    seen = bytearray()

    def shows(text: str) -> bool:
        while select.select([leader], [], [], 0.05)[0]:
            try:
                seen.extend(os.read(leader, 4096))
            except OSError:  # the command ended and closed the terminal
                break
        return text.encode() in seen

    try:
        wait_for(lambda: shows("· pending"), timeout=60)
        batch = ListBatch.objects.get(owner=alice)
        for status in ("preparing", "running"):
            ListBatch.objects.filter(pk=batch.pk).update(status=status, worker="elsewhere")
            wait_for(lambda status=status: shows(f"· {status}"), timeout=30)
        ListBatch.objects.filter(pk=batch.pk).update(status="cancelled", finished=timezone.now())
        assert command.wait(timeout=30) == 1
        shows("")
    finally:
        command.kill()
        os.close(leader)

    bar = "[..............................] 0/0 channels · 0 videos · 0 failed · "
    drawn = seen.decode().replace("\r\n", "\n").split("\r")  # (a terminal ends lines in CRLF)
    assert drawn[1:4] == [bar + "pending", bar + "preparing", bar + "running  "]
    assert drawn[4].startswith(bar + "cancelled\n")
