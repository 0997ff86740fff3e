"""“Not a face” is each user's own say: alice and bob both see a picture (each their own job
found it); what alice says of its faces changes her pages, counts, API and live updates, and
nothing of bob's, who cannot tell she said anything. Staff see who said what in the admin."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.urls import reverse

from tests.sse import stored_events
from uploads.models import FaceVerdict, Image, ScrapeJobItem

from .conftest import make_image, make_job

BEFORE = ("uploads", "0004_detectedface_not_a_face")
AFTER = ("uploads", "0005_face_verdicts_per_user")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def seen_by_both(alice, bob, name: str = "shared", faces: int = 1) -> Image:
    """A picture both users' own jobs found: each has a finished job with an item for it."""
    image = make_image(name, faces=faces, seen_by=alice)
    image.sightings.create(owner=bob, source_url=image.source_url, page_url=image.found_on)
    for user in (alice, bob):
        job = make_job(user, status="completed", total=1, done=1, prepared=True)
        ScrapeJobItem.objects.create(
            job=job, source_url=image.source_url, status="completed", image=image
        )
    return image


def say_not_a_face(client: Client, face, not_a_face: bool = True):
    return client.post(
        reverse("uploads:review_face", args=[face.pk]),
        {"not_a_face": "true" if not_a_face else "false"},
    )


def page(client: Client, url: str, **params) -> str:
    response = client.get(url, params)
    assert response.status_code == 200
    return response.content.decode()


def gallery_counts(html: str) -> dict[str, int]:
    pairs = re.findall(r'data-count="(\w+)">[\w ]+<span class="count">(\d+)<', html)
    return {name: int(n) for name, n in pairs}


def dashboard_totals(html: str) -> dict[str, int]:
    pairs = re.findall(r'data-total="(\w+)"><dt[^>]*>\w+</dt><dd class="count">(\d+)</dd>', html)
    return {label: int(n) for label, n in pairs}


def item_faces(html: str, item: ScrapeJobItem) -> str:
    row = re.search(rf'<tr id="{item.dom_id}".*?</tr>', html, re.S)
    assert row is not None
    return re.search(r'<td class="faces">([^<]*)</td>', row.group(0)).group(1)


# -- pages, counts and API ---------------------------------------------------------------


@pytest.mark.django_db
def test_alices_say_changes_her_pages_counts_and_api_and_none_of_bobs(alice, bob):
    image = seen_by_both(alice, bob)
    alice_client, bob_client = client_for(alice), client_for(bob)
    alices_item = ScrapeJobItem.objects.get(job__owner=alice)
    bobs_item = ScrapeJobItem.objects.get(job__owner=bob)

    response = say_not_a_face(alice_client, image.faces.get())

    assert response.status_code == 302
    # alice: the box struck through, no face left to count anywhere she looks.
    review = page(alice_client, image.get_absolute_url())
    assert 'shared.jpg <span class="muted">· 0 faces<' in review
    assert 'class="face-box not-a-face"' in review and "It is a face" in review
    gallery = page(alice_client, reverse("uploads:gallery"))
    assert "0 faces<" in gallery
    assert gallery_counts(gallery) == {"all": 1, "with": 0, "without": 1}
    assert gallery_counts(page(alice_client, reverse("uploads:page"))) == gallery_counts(gallery)
    gallery_url = reverse("uploads:gallery")
    assert image.get_absolute_url() in page(alice_client, gallery_url, faces="without")
    assert image.get_absolute_url() not in page(alice_client, gallery_url, faces="with")
    assert dashboard_totals(page(alice_client, "/"))["faces"] == 0
    job_page = page(alice_client, reverse("uploads:job_detail", args=[alices_item.job_id]))
    assert item_faces(job_page, alices_item) == "0"
    api = alice_client.get(f"/api/scrape-jobs/{alices_item.job_id}").json()
    assert api["items"][0]["face_count"] == 0
    # bob: the picture as the detector found it, and no sign that anyone said otherwise.
    review = page(bob_client, image.get_absolute_url())
    assert 'shared.jpg <span class="muted">· 1 face<' in review
    assert "not-a-face" not in review and "It is a face" not in review
    gallery = page(bob_client, reverse("uploads:gallery"))
    assert "1 face<" in gallery
    assert gallery_counts(gallery) == {"all": 1, "with": 1, "without": 0}
    assert gallery_counts(page(bob_client, reverse("uploads:page"))) == gallery_counts(gallery)
    assert image.get_absolute_url() in page(bob_client, gallery_url, faces="with")
    assert dashboard_totals(page(bob_client, "/"))["faces"] == 1
    job_page = page(bob_client, reverse("uploads:job_detail", args=[bobs_item.job_id]))
    assert item_faces(job_page, bobs_item) == "1"
    api = bob_client.get(f"/api/scrape-jobs/{bobs_item.job_id}").json()
    assert api["items"][0]["face_count"] == 1


@pytest.mark.django_db
def test_the_gallery_sorts_by_the_faces_each_user_counts(alice, bob):
    two = seen_by_both(alice, bob, "two", faces=2)
    one = seen_by_both(alice, bob, "one", faces=1)
    for face in two.faces.all():
        say_not_a_face(client_for(alice), face)

    def by_faces(user) -> list[str]:
        html = page(client_for(user), reverse("uploads:gallery"), sort="faces")
        return re.findall(r'<li class="tile" id="tile-(\d+)"', html)

    assert by_faces(alice) == [str(one.pk), str(two.pk)]
    assert by_faces(bob) == [str(two.pk), str(one.pk)]


@pytest.mark.django_db
def test_bob_saying_it_is_a_face_leaves_alices_say_alone(alice, bob):
    image = seen_by_both(alice, bob)
    face = image.faces.get()
    say_not_a_face(client_for(alice), face)

    say_not_a_face(client_for(bob), face, not_a_face=False)
    say_not_a_face(client_for(bob), face)
    say_not_a_face(client_for(bob), face)  # a double submit: still one say of his

    assert set(FaceVerdict.objects.values_list("user__username", "face")) == {
        ("alice", face.pk),
        ("bob", face.pk),
    }
    say_not_a_face(client_for(bob), face, not_a_face=False)
    assert "0 faces<" in page(client_for(alice), image.get_absolute_url())
    assert "1 face<" in page(client_for(bob), image.get_absolute_url())


@pytest.mark.django_db
def test_bob_cannot_say_anything_of_a_face_on_a_picture_he_does_not_see(alice, bob):
    face = make_image("alices", faces=1, seen_by=alice).faces.get()

    for not_a_face in (True, False):
        assert say_not_a_face(client_for(bob), face, not_a_face).status_code == 404

    assert not FaceVerdict.objects.exists()


@pytest.mark.django_db
def test_saying_it_needs_the_csrf_token(alice):
    face = make_image("csrf", faces=1, seen_by=alice).faces.get()
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    url = reverse("uploads:review_face", args=[face.pk])

    assert strict.post(url, {"not_a_face": "true"}).status_code == 403
    assert not FaceVerdict.objects.exists()
    form = page(strict, reverse("uploads:image_detail", args=[face.image_id]))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    assert strict.post(url, {"not_a_face": "true", "csrfmiddlewaretoken": token}).status_code == 302
    assert FaceVerdict.objects.get().user == alice


# -- live --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_alices_counts_follow_her_say_live_and_bob_hears_nothing(
    alice, bob, django_capture_on_commit_callbacks
):
    image = seen_by_both(alice, bob)
    bobs_item = ScrapeJobItem.objects.get(job__owner=bob)
    alices_item = ScrapeJobItem.objects.get(job__owner=alice)

    with django_capture_on_commit_callbacks(execute=True):
        say_not_a_face(client_for(alice), image.faces.get())

    [(_, counts)] = stored_events(alice, "gallery-counts")
    assert gallery_counts(counts) == {"all": 1, "with": 0, "without": 1}
    [(_, totals)] = stored_events(alice, "dash-totals")
    assert dashboard_totals(totals)["faces"] == 0
    assert stored_events(bob) == []
    # What each one's jobs send live from now on counts each one's own say.
    bobs_job = bobs_item.job
    assert gallery_counts(dict(bobs_job.live_fragments())["gallery-counts"])["with"] == 1
    assert item_faces(dict(bobs_item.live_fragments())[bobs_item.dom_id], bobs_item) == "1"
    assert item_faces(dict(alices_item.live_fragments())[alices_item.dom_id], alices_item) == "0"


# -- the admin ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_staff_see_who_said_which_box_is_not_a_face(alice, bob, staff):
    image = seen_by_both(alice, bob, faces=2)
    first, _ = image.faces.all()
    say_not_a_face(client_for(alice), first)
    say_not_a_face(client_for(bob), first)
    staff_client = client_for(staff)

    change = page(staff_client, reverse("admin:uploads_image_change", args=[image.pk]))
    verdicts = page(staff_client, reverse("admin:uploads_faceverdict_changelist"))

    faces = re.findall(r'class="field-not_a_face_for">\s*<p>([^<]*)</p>', change)
    assert faces == ["alice, bob", "-"]
    assert "face_count" in change and '<div class="readonly">2</div>' in change
    assert verdicts.count(image.source_url) == 2
    assert re.search(r'class="field-user[^"]*">(<a [^>]*>)?alice<', verdicts)
    assert re.search(r'class="field-user[^"]*">(<a [^>]*>)?bob<', verdicts)
    assert staff_client.get(reverse("admin:uploads_faceverdict_add")).status_code == 403


# -- the migration -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_migration_gives_each_flag_to_everyone_who_sees_the_picture():
    """Who set a shared flag was never recorded: everyone who sees the picture keeps seeing
    the box struck through, now as their own say; the image's count is the detector's again."""
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    old = executor.loader.project_state([BEFORE]).apps
    User = old.get_model("auth", "User")
    OldImage = old.get_model("uploads", "Image")
    alice, bob, carol = (User.objects.create(username=n) for n in ("alice", "bob", "carol"))

    def image(name: str, flags: list[bool], seen_by: list) -> object:
        picture = OldImage.objects.create(
            source_url=f"https://photos.example/{name}.jpg",
            sha256=f"{name:0>64}",
            width=400,
            height=200,
            format="JPEG",
            byte_size=1,
            face_count=flags.count(False),  # each flag had taken one face off
            thumbnail=f"t/{name}.jpg",
            found_on="https://photos.example/",
        )
        for n, flag in enumerate(flags):
            picture.faces.create(x=n, y=0, w=10, h=10, confidence=0.9, not_a_face=flag)
        for user in seen_by:
            picture.sightings.create(owner=user, source_url=picture.source_url, page_url="p")
        return picture

    shared = image("shared", [True, False, True], seen_by=[alice, bob, bob])
    nobodys = image("nobodys", [True], seen_by=[])
    plain = image("plain", [False], seen_by=[carol])
    flagged = list(shared.faces.filter(not_a_face=True).values_list("pk", flat=True))

    executor = MigrationExecutor(connection)
    executor.migrate([AFTER])
    new = executor.loader.project_state([AFTER]).apps
    Verdict = new.get_model("uploads", "FaceVerdict")
    NewImage = new.get_model("uploads", "Image")

    assert sorted(Verdict.objects.values_list("user__username", "face_id")) == sorted(
        (user, face) for user in ("alice", "bob") for face in flagged
    )
    counts = dict(NewImage.objects.values_list("pk", "face_count"))
    assert counts == {shared.pk: 3, nobodys.pk: 1, plain.pk: 1}

    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])  # and back: the flags are shared again
    OldFace = executor.loader.project_state([BEFORE]).apps.get_model("uploads", "DetectedFace")
    assert sorted(OldFace.objects.filter(not_a_face=True).values_list("pk", flat=True)) == flagged
    assert dict(OldImage.objects.values_list("pk", "face_count")) == {
        shared.pk: 1,
        nobodys.pk: 1,
        plain.pk: 1,
    }

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
