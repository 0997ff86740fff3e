"""chirp.db.update_row: the ORM's UPDATE by primary key, its SQL built once (both databases)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chirp.db import update_row
from imports.models import Channel, Video

pytestmark = pytest.mark.django_db


@pytest.fixture
def videos():
    channel = Channel.objects.create(youtube_id="UC" + "u" * 22, title="Channel")
    return [
        Video.objects.create(youtube_id=f"upd{n:08d}", channel=channel, title=f"Video {n}")
        for n in range(2)
    ]


def test_it_writes_what_the_orm_writes(videos):
    mine, orms = videos
    values = {
        "title": 'It\'s <b>"quoted"</b>; DROP TABLE imports_video; --',
        "tags": ["a", "ü", 'say "hi"'],
        "chapters": [{"start": 0, "end": 1.5, "title": "Intro"}],
        "published": datetime(2024, 2, 29, 23, 30, tzinfo=UTC),
        "views": 2**40,
        "stage": Video.Stage.CAPTIONS,
    }

    update_row(mine, **values)
    Video.objects.filter(pk=orms.pk).update(**values)

    fields = list(values)
    mine_now = Video.objects.values(*fields).get(pk=mine.pk)
    assert mine_now == Video.objects.values(*fields).get(pk=orms.pk)
    assert mine_now == values
    assert Video.objects.count() == 2  # the title went in as a value, not as SQL


def test_only_its_row_and_its_fields_change(videos):
    mine, other = videos
    update_row(mine, progress=60)

    assert Video.objects.get(pk=mine.pk).progress == 60
    assert (Video.objects.get(pk=mine.pk).title, Video.objects.get(pk=other.pk).progress) == (
        "Video 0",
        0,
    )


def test_one_statement_with_the_same_text_each_time(videos):
    with CaptureQueriesContext(connection) as queries:
        for video in videos:
            update_row(video, progress=25, stage=Video.Stage.METADATA)
    assert len(queries) == 2
    assert queries[0]["sql"].split("WHERE")[0] == queries[1]["sql"].split("WHERE")[0]
