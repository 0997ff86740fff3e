"""A channel's imports list: a new import arrives live on top of its first page; a row shows
the channel's avatar and name, the job's number and when it started."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from imports.models import ImportJob
from tests.sse import stored_events

pytestmark = pytest.mark.django_db


def test_a_new_import_of_a_channel_goes_on_top_of_its_imports(
    alice, bob, make_channel, django_capture_on_commit_callbacks
):
    channel = make_channel(alice, avatar_url="https://yt3.example/avatar.jpg")
    with django_capture_on_commit_callbacks(execute=True):
        job = ImportJob.objects.create(
            owner=alice, channel=channel, channel_url=channel.youtube_url
        )
    [(_, html)] = stored_events(alice, f"{channel.dom_id}-import-created")
    assert re.match(rf'\s*<tr id="{job.dom_id}-row" sse-swap="{job.dom_id}-row"', html)
    assert stored_events(bob) == []


def test_only_the_first_page_of_a_channels_imports_takes_new_rows(
    alice, alice_client, make_channel
):
    channel = make_channel(alice)
    for _ in range(10):
        ImportJob.objects.create(
            owner=alice, channel=channel, channel_url=channel.youtube_url, status="completed"
        )
    event = f'sse-swap="{channel.dom_id}-import-created" hx-swap="afterbegin"'
    assert event in alice_client.get(f"/channels/{channel.pk}/").content.decode()
    second = alice_client.get(f"/channels/{channel.pk}/", {"jobs_page": 2}).content.decode()
    assert "-import-created" not in second


def test_an_import_row_shows_the_channels_avatar_name_number_and_age(
    alice, alice_client, make_channel
):
    digest = "ab" * 32
    channel = make_channel(
        alice,
        title="<b>Woodworking</b>",
        avatar_url="https://yt3.example/avatar.jpg",
        avatar=f"artwork/ab/{digest}.jpg",
    )
    job = channel.import_jobs.get()
    ImportJob.objects.filter(pk=job.pk).update(created=timezone.now() - timedelta(minutes=2))
    html = alice_client.get(f"/channels/{channel.pk}/").content.decode()
    row = html[html.index(f'<tr id="{job.dom_id}-row"') :]
    row = row[: row.index("</tr>")]
    # Chirp's own copy of the avatar, never YouTube's address (issue 11's artwork).
    assert f'src="/channels/{channel.pk}/artwork/{digest}.jpg"' in row
    assert "yt3.example" not in row
    assert "&lt;b&gt;Woodworking&lt;/b&gt;" in row
    assert f"#{job.pk}" in row
    assert ">2 minutes ago</time>" in row
