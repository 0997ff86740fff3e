"""A channel list at 360p on the fake YouTube serving real clips: each row's import stores its
videos' media, and the batch's report (per row and in total), its progress and its summary toast
say how many videos have media stored and their size, exactly. The engine runs in-process: the
lists lane in short slices (a row waiting for its import hands the batch back at the end of a
slice), the imports lane between them. (The real worker: test_batch_worker.py.)"""

from __future__ import annotations

import pytest
from django.template.defaultfilters import filesizeformat

from chirp import engine
from imports.models import ListBatch, MediaFile, Video
from tests.sse import stored_events

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def media(fake_youtube, media_clips, settings, tmp_path):
    """The fake serves real media; the media folder and the scratch folder are the test's."""
    fake_youtube.serve_media(media_clips)
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CHIRP_MEDIA_SCRATCH_DIR = tmp_path / "scratch"
    # Short slices, so a row waiting for its import hands the batch back. (At 0.5 s a channel's
    # listing cut by the slice's end once came out empty on SQLite: see the report.)
    settings.CHIRP_SLICE_SECONDS = 3
    return fake_youtube


def run_batch(batch: ListBatch, rounds: int = 40) -> ListBatch:
    for _ in range(rounds):
        engine.run_lane("lists")
        batch.refresh_from_db()
        if batch.is_terminal:
            return batch
        engine.run_lane("imports")
    raise AssertionError(f"The batch did not end: {batch.status} {batch.step}")


def test_a_list_at_360p_reports_the_media_stored_per_row_and_in_total(alice, alice_client, media):
    media.add_channel("clips", videos=2, title="Clips")
    media.add_channel("quiet", videos=1, title="Quiet", captions="none")
    batch = ListBatch.draft(alice, "@clips\n@quiet\n@clips\n", "text", quality="360")
    batch.start()

    batch = run_batch(batch)

    assert (batch.status, batch.done, batch.skipped, batch.failed) == ("completed", 2, 1, 0)
    files = MediaFile.objects.select_related("video__channel")
    assert sorted(f.video.channel.handle for f in files) == ["@clips", "@clips", "@quiet"]
    assert {f.quality for f in files} == {"360"}
    sizes = {handle: sum(f.size for f in files if f.video.channel.handle == handle)
             for handle in ("@clips", "@quiet")}  # fmt: skip
    total = sizes["@clips"] + sizes["@quiet"]
    assert all(size > 0 for size in sizes.values())

    report = {row["row"]: row for row in batch.report()}
    assert (report[1]["media_stored"], report[1]["media_size"]) == (2, sizes["@clips"])
    assert (report[2]["media_stored"], report[2]["media_size"]) == (1, sizes["@quiet"])
    assert (report[3]["status"], report[3]["media_stored"]) == ("skipped", 0)
    assert [report[n]["without_captions"] for n in (1, 2, 3)] == [0, 1, 0]
    assert Video.objects.get(channel__handle="@quiet").transcript_source == "none"

    api = alice_client.get(f"/api/channels/lists/{batch.pk}").json()
    assert (api["mediaStored"], api["mediaSize"], api["withoutCaptions"]) == (3, total, 1)
    assert [row["mediaStored"] for row in api["rows"]] == [2, 1, 0]

    page = alice_client.get(batch.get_absolute_url()).content.decode()
    assert 'data-count="media-stored">3<' in page and 'data-count="without-captions">1<' in page

    size = filesizeformat(total).replace("\xa0", " ")
    toasts = [html for _, html in stored_events(alice, "toast")]
    assert any(
        "2 of 3 channels imported, 3 videos, 1 without captions, "
        f"media of 3 videos stored ({size})" in toast
        for toast in toasts
    ), toasts
