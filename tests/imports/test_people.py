"""People (imports/models/people.py): private to their user, beside their channels in the
channel list, a page of their own, the admin, and a CSV export safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io

import pytest
from django.db import IntegrityError

from imports.models import ImportJob, Person, PersonChannel, Video

pytestmark = pytest.mark.django_db


@pytest.fixture
def alices_people(alice, make_channel):
    """Ann (two channels, type INTJ) and Ben (one channel, type ENFP), alice's people."""
    ann = Person.objects.create(owner=alice, name="Ann Archer", email="ann@x.com", type="INTJ")
    ben = Person.objects.create(owner=alice, name='=HYPERLINK("x")', email="+1@x", type="ENFP")
    cooking = make_channel(alice, videos=4, title="Ann cooks")
    garden = make_channel(alice, videos=2, title="Ann gardens")
    cars = make_channel(alice, videos=1, title="Ben drives")
    make_channel(alice, videos=1, title="Nobody's")
    Video.objects.filter(channel=cooking).update(transcript_source="manual")
    ann.link(cooking)
    ann.link(garden)
    ben.link(cars)
    return {"ann": ann, "ben": ben, "cooking": cooking, "garden": garden, "cars": cars}


def test_the_channel_list_shows_the_person_and_filters_by_person_or_type(
    alice_client, alices_people
):
    ann = alices_people["ann"]
    html = alice_client.get("/channels/").content.decode()
    row = html[html.index(f'id="{alices_people["cooking"].dom_id}"') :][:1500]
    assert f'href="/channels/people/{ann.pk}/">Ann Archer</a>' in row

    html = alice_client.get(f"/channels/?person={ann.pk}").content.decode()
    assert "Ann cooks" in html and "Ann gardens" in html
    assert "Ben drives" not in html and "Nobody&#x27;s" not in html

    html = alice_client.get("/channels/?type=ENFP").content.decode()
    assert "Ben drives" in html and "Ann cooks" not in html
    assert alice_client.get("/channels/?person=abc").status_code == 200  # ignored, not a 500


def test_a_persons_page_lists_their_channels_videos_and_totals(alice_client, alices_people):
    ann = alices_people["ann"]
    response = alice_client.get(f"/channels/people/{ann.pk}/")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-total="channels">2<' in html and 'data-total="videos">6<' in html
    assert 'data-total="transcripts">4<' in html
    assert "Ann cooks" in html and "Ann gardens" in html and "Ben drives" not in html
    assert "Video 0 of channel" in html


def test_people_are_private(client, bob, alices_people):
    ann = alices_people["ann"]
    # bob imported Ann's channel too: he sees the channel, never alice's person behind it.
    ImportJob.objects.create(
        owner=bob,
        channel=alices_people["cooking"],
        channel_url=alices_people["cooking"].youtube_url,
        status="completed",
    )
    client.force_login(bob)

    assert client.get(f"/channels/people/{ann.pk}/").status_code == 404
    html = client.get("/channels/people/").content.decode()
    assert "Ann Archer" not in html and "No people yet" in html
    html = client.get("/channels/").content.decode()
    assert "Ann cooks" in html and "Ann Archer" not in html
    assert "Ann Archer" not in client.get(f"/channels/?person={ann.pk}").content.decode()
    exported = client.get("/channels/people/export.csv").content.decode()
    assert "Ann" not in exported


def test_a_channel_belongs_to_one_person_per_user(alice, bob, alices_people):
    cooking = alices_people["cooking"]
    with pytest.raises(IntegrityError):
        PersonChannel.objects.create(person=alices_people["ben"], channel=cooking)


def test_linking_a_channel_again_moves_it_and_another_user_may_link_it_too(
    alice, bob, alices_people
):
    cooking = alices_people["cooking"]
    alices_people["ben"].link(cooking)
    bobs = Person.objects.create(owner=bob, name="Bob's Ann")
    bobs.link(cooking)

    owners = PersonChannel.objects.filter(channel=cooking).values_list("owner", "person")
    assert set(owners) == {(alice.pk, alices_people["ben"].pk), (bob.pk, bobs.pk)}


def test_the_csv_export_has_counts_and_neutralises_formulas(alice_client, alices_people):
    response = alice_client.get("/channels/people/export.csv")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == [
        "name",
        "email",
        "type",
        "channel",
        "channel_url",
        "videos",
        "imported",
        "with_transcripts",
        "stored_media",
        "media_size_bytes",
    ]
    by_channel = {row[3]: row for row in rows[1:]}
    assert by_channel["Ann cooks"][:3] == ["Ann Archer", "ann@x.com", "INTJ"]
    assert by_channel["Ann cooks"][5:] == ["4", "4", "4", "0", "0"]
    assert by_channel["Ann gardens"][5:] == ["2", "2", "0", "0", "0"]
    assert by_channel["Ben drives"][:2] == ['\'=HYPERLINK("x")', "'+1@x"]
    assert len(rows) == 4


@pytest.mark.parametrize(
    ("value", "cell"),
    [("=1+1", "'=1+1"), ("+1", "'+1"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"), ("ok", "ok")],
)
def test_each_formula_start_is_neutralised(value, cell):
    from imports.models import spreadsheet_safe

    assert spreadsheet_safe(value) == cell


def test_the_admin_has_people(client, staff, alices_people):
    client.force_login(staff)
    assert "Ann Archer" in client.get("/admin/imports/person/").content.decode()
    page = client.get(f"/admin/imports/person/{alices_people['ann'].pk}/change/")
    assert page.status_code == 200 and "Ann cooks" in page.content.decode()
