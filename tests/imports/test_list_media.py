"""Stored media in a channel list's figures: the batch's progress and summary, each row's report
(page, CSV, API), a person's page and the people export. A video stored at two qualities is one
video with media; the size is every stored file's bytes. alice owns; bob's channel has media too,
which never counts for alice's rows or people.

(The media stored by a real batch at 360p: test_batch_media.py.)"""

from __future__ import annotations

import csv
import io

import pytest
from django.utils import timezone

from chirp.models import ApiToken
from imports.models import ImportJob, ListBatch, ListBatchRow, MediaFile, Person, Video

pytestmark = pytest.mark.django_db


def store(video: Video, quality: str, size: int) -> MediaFile:
    return MediaFile.objects.create(
        video=video,
        kind="audio" if quality == "audio" else "video",
        quality=quality,
        container="mp4",
        size=size,
        sha256="0" * 64,
        key=f"media/{video.channel.youtube_id}/{video.youtube_id}/{quality}.mp4",
    )


@pytest.fixture
def stored(alice, bob, make_channel):
    """alice's channel of 4 videos: video 0 stored at 360p and as audio, video 1 at 360p,
    2 and 3 not stored (3 has no captions). bob's channel: one video stored."""
    channel = make_channel(alice, videos=4, title="Ann cooks")
    videos = list(channel.videos.order_by("youtube_id"))
    store(videos[0], "360", 1_048_576)
    store(videos[0], "audio", 524_288)
    store(videos[1], "360", 524_288)
    other = make_channel(bob, videos=1, title="Bob's")
    store(other.videos.get(), "360", 5_000_000)
    return channel


@pytest.fixture
def batch(alice, stored) -> ListBatch:
    now = timezone.now()
    batch = ListBatch.objects.create(
        owner=alice,
        name="people.csv",
        text="@cooks\n@gone\n",
        format="text",
        status="completed",
        quality="360",
        prepared=True,
        total=2,
        done=1,
        failed=1,
        started=now,
        finished=now,
    )
    job = ImportJob.objects.filter(channel=stored).get()
    person = Person.objects.create(owner=alice, name="Ann", email="ann@x.com")
    person.link(stored)
    ListBatchRow.objects.create(
        job=batch,
        number=1,
        outcome="new",
        channel_url=stored.youtube_url,
        input="@cooks",
        status="completed",
        import_job=job,
        channel=stored,
        person=person,
        finished=now,
    )
    ListBatchRow.objects.create(
        job=batch,
        number=2,
        outcome="new",
        channel_url="https://www.youtube.com/@gone",
        input="@gone",
        status="failed",
        error="The import failed.",
        finished=now,
    )
    return batch


def test_the_batch_page_shows_media_stored_in_progress_and_per_row(alice_client, batch):
    html = alice_client.get(batch.get_absolute_url()).content.decode()

    progress = html[html.index(f'id="{batch.dom_id}-progress"') :]
    assert 'data-count="media-stored">2<' in progress
    assert 'data-count="media-size">2.0\xa0MB<' in progress
    assert "media of 2 videos stored (2.0 MB)" in progress  # the summary (and its toast)
    rows = html[html.index(f'id="{batch.dom_id}-rows"') :]
    first, second = rows.split('<tr id="list-batch-row-')[1:3]
    assert 'data-count="media-stored">2 ' in first and "(2.0\xa0MB)" in first
    assert 'data-count="media-stored">0<' in second


def test_the_report_csv_and_the_api_say_media_stored_per_row_and_in_total(client, alice, batch):
    client.force_login(alice)
    answer = client.get(f"/channels/lists/{batch.pk}/report.csv")
    rows = list(csv.reader(io.StringIO(answer.content.decode())))
    assert rows[0][-2:] == ["media_stored", "media_size"]
    assert [row[-2:] for row in rows[1:]] == [["2", "2097152"], ["0", "0"]]

    _, key = ApiToken.create(alice, "lists")
    data = client.get(f"/api/channels/lists/{batch.pk}", HTTP_AUTHORIZATION=f"Bearer {key}").json()
    assert (data["mediaStored"], data["mediaSize"]) == (2, 2_097_152)
    assert [(r["mediaStored"], r["mediaSize"]) for r in data["rows"]] == [(2, 2_097_152), (0, 0)]


def test_a_persons_page_totals_their_stored_media(alice_client, alice, batch):
    person = Person.objects.get(owner=alice)

    html = alice_client.get(person.get_absolute_url()).content.decode()

    assert 'data-total="media">2<' in html and 'data-total="media-size">2.0\xa0MB<' in html


def test_the_people_export_counts_stored_media_and_its_size(alice_client, alice, batch):
    Person.objects.create(owner=alice, name="-nobody", email="")

    rows = list(csv.reader(io.StringIO(alice_client.get("/channels/people/export.csv").text)))

    assert rows[0][-2:] == ["stored_media", "media_size_bytes"]
    by_name = {row[0]: row for row in rows[1:]}
    assert by_name["Ann"][3] == "Ann cooks" and by_name["Ann"][-2:] == ["2", "2097152"]
    assert by_name["'-nobody"][-2:] == ["0", "0"]  # neutralised, and no channel: no media
