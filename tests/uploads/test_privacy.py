"""The image catalogue is shared, what each user scraped is not: alice's job found a picture at
a URL with a secret token; bob, the stranger, must not learn of it anywhere. Staff see all of
it in the admin."""

from __future__ import annotations

import importlib
import json
import re
from datetime import timedelta

import pytest
from django.apps import apps
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from chirp import engine
from tests.sse import stored_events
from uploads.models import Image, ScrapeJob, ScrapeJobItem, Sighting
from uploads.pipeline import SAME_PICTURE

from .conftest import PhotoSite, make_image, make_job

SECRET = "alice-s3cret"
SECRET_PAGE = f"http://127.0.0.1:8123/private.html?token={SECRET}"
SECRET_PICTURE = f"http://127.0.0.1:8123/photo.jpg?token={SECRET}"
migration = importlib.import_module("uploads.migrations.0002_image_sightings")


@pytest.fixture
def bob_client(bob) -> Client:
    client = Client()
    client.force_login(bob)
    return client


@pytest.fixture
def staff_client(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def alices_image(alice) -> Image:
    """What alice's finished job left: its item and the picture it found."""
    job = make_job(alice, url=SECRET_PAGE, status="completed", total=1, done=1, prepared=True)
    image = make_image(
        "secret", faces=1, seen_by=alice, source_url=SECRET_PICTURE, found_on=SECRET_PAGE
    )
    ScrapeJobItem.objects.create(
        job=job, source_url=SECRET_PICTURE, status="completed", image=image
    )
    return image


def html(response) -> str:
    return response.content.decode()


# -- what bob sees of alice's image: nothing --------------------------------------------------


@pytest.mark.django_db
def test_my_gallery_and_its_counts_show_only_images_my_jobs_found(
    alice_client, bob_client, alices_image
):
    for page in ("uploads:gallery", "uploads:page"):
        mine = html(alice_client.get(reverse(page)))
        theirs = html(bob_client.get(reverse(page)))

        assert 'data-count="all">Gallery <span class="count">1<' in mine
        assert 'data-count="all">Gallery <span class="count">0<' in theirs
        assert 'data-count="with">With faces <span class="count">0<' in theirs
    assert alices_image.get_absolute_url() in html(alice_client.get(reverse("uploads:gallery")))
    gallery = html(bob_client.get(reverse("uploads:gallery")))
    assert alices_image.get_absolute_url() not in gallery
    assert alices_image.thumbnail_url not in gallery


@pytest.mark.django_db
def test_my_gallery_shows_first_what_my_jobs_found_last(bob_client, alice, bob):
    """Not the catalogue's order: that would hint at when someone else found a picture."""
    old_to_me = make_image("old", seen_by=bob, first_seen=timezone.now() - timedelta(days=1))
    new_to_me = make_image("new", first_seen=timezone.now() - timedelta(days=30))
    Sighting.objects.create(
        owner=bob, image=new_to_me, source_url=new_to_me.source_url, page_url="https://b.example/"
    )

    gallery = html(bob_client.get(reverse("uploads:gallery")))

    assert gallery.index(new_to_me.get_absolute_url()) < gallery.index(old_to_me.get_absolute_url())


@pytest.mark.django_db
def test_another_users_image_page_and_thumbnail_are_404(alice_client, bob_client, alices_image):
    page = bob_client.get(alices_image.get_absolute_url())
    thumbnail = bob_client.get(alices_image.thumbnail_url)

    assert page.status_code == 404 and SECRET not in html(page)
    assert thumbnail.status_code == 404
    assert alice_client.get(alices_image.get_absolute_url()).status_code == 200
    assert alice_client.get(alices_image.thumbnail_url).status_code == 200


@pytest.mark.django_db
def test_the_scraped_before_warning_counts_only_my_own_jobs(alice_client, bob_client, alices_image):
    bobs = bob_client.post(reverse("uploads:page"), {"url": SECRET_PAGE}, follow=True)
    ScrapeJob.objects.filter(owner__username="bob").delete()  # his own would count
    bobs_api = bob_client.post(
        "/api/scrape-jobs", json.dumps({"url": SECRET_PAGE}), content_type="application/json"
    )
    alices = alice_client.post(reverse("uploads:page"), {"url": SECRET_PAGE}, follow=True)

    assert "This page was scraped" not in html(bobs)
    assert bobs_api.status_code == 202 and bobs_api.json()["warning"] is None
    assert "This page was scraped just now" in html(alices)


@pytest.mark.django_db
def test_the_gallery_counts_sent_live_are_the_job_owners_own(bob, alices_image):
    bobs_job = make_job(bob, url="http://127.0.0.1:8123/bob.html", status="completed")

    fragments = dict(bobs_job.live_fragments())

    assert 'data-count="all">Gallery <span class="count">0<' in fragments["gallery-counts"]


@pytest.mark.django_db
def test_a_deleted_job_leaves_its_images_to_its_owner_only(alice_client, bob_client, alices_image):
    job = ScrapeJob.objects.get(owner__username="alice")

    alice_client.post(reverse("uploads:delete_job", args=[job.pk]))

    assert not ScrapeJob.objects.exists()
    assert alices_image.get_absolute_url() in html(alice_client.get(reverse("uploads:gallery")))
    assert alice_client.get(alices_image.get_absolute_url()).status_code == 200
    assert bob_client.get(alices_image.get_absolute_url()).status_code == 404


@pytest.mark.django_db
def test_staff_see_every_image_and_who_found_it_where_in_the_admin(staff_client, alices_image):
    change = html(staff_client.get(reverse("admin:uploads_image_change", args=[alices_image.pk])))
    listing = html(staff_client.get(reverse("admin:uploads_image_changelist")))

    # Who found it where, inline: alice's page, as her job saw it.
    assert re.search(r'class="field-owner">\s*<p>(<a [^>]*>)?alice<', change)
    assert re.search(rf'class="field-page_url">\s*<p>(<a [^>]*>)?{re.escape(SECRET_PAGE)}<', change)
    assert f'<img src="{alices_image.thumbnail_url}"' in listing
    assert staff_client.get(alices_image.thumbnail_url).status_code == 200


@pytest.mark.django_db
def test_staff_find_a_users_images_in_the_admin(staff_client, alice, bob):
    alices = make_image("plain", seen_by=alice)  # no "alice" in its URLs
    bobs = make_image("other", seen_by=bob)

    found = html(staff_client.get(reverse("admin:uploads_image_changelist"), {"q": "alice"}))

    assert alices.thumbnail_url in found and bobs.thumbnail_url not in found


@pytest.mark.django_db
def test_the_migration_gives_each_user_the_images_their_jobs_found(alice, bob, alices_image):
    """Existing installations: sightings come from the jobs still there, and old skip reasons
    lose the URL they named."""
    Sighting.objects.all().delete()
    bobs_job = make_job(bob, url="http://127.0.0.1:8123/bob.html", status="completed")
    ScrapeJobItem.objects.create(
        job=bobs_job,
        source_url="http://127.0.0.1:8123/bob.jpg",
        status="skipped",
        image=alices_image,
        error=f"The same picture as {SECRET_PICTURE}",
    )
    make_image("orphan")  # its job was deleted: nobody can tell who found it

    migration.backfill_sightings(apps, None)
    migration.forget_other_users_urls(apps, None)

    assert set(Sighting.objects.values_list("owner__username", "source_url", "page_url")) == {
        ("alice", SECRET_PICTURE, SECRET_PAGE),
        ("bob", "http://127.0.0.1:8123/bob.jpg", "http://127.0.0.1:8123/bob.html"),
    }
    assert ScrapeJobItem.objects.get(job=bobs_job).error == SAME_PICTURE


@pytest.mark.django_db
def test_the_migration_gives_the_only_account_the_images_whose_jobs_are_gone(alice_client):
    orphan = make_image("orphan", found_on=SECRET_PAGE)
    assert alice_client.get(orphan.get_absolute_url()).status_code == 404

    migration.backfill_sightings(apps, None)

    assert alice_client.get(orphan.get_absolute_url()).status_code == 200
    assert "This page was scraped" in html(
        alice_client.post(reverse("uploads:page"), {"url": SECRET_PAGE}, follow=True)
    )


# -- the same picture, found by bob's own job --------------------------------------------------


def run(job: ScrapeJob) -> ScrapeJob:
    engine.run_lane("uploads")
    job.refresh_from_db()
    return job


@pytest.mark.django_db(transaction=True)
def test_my_job_finding_a_picture_alice_found_shows_it_with_only_my_urls(
    alice, bob, photo_site: PhotoSite, settings
):
    settings.CHIRP_IMAGE_THREADS = 1  # bob's coffee.jpg before his copy-of-coffee.jpg
    photo_site.server.respond(
        "/private.html",
        f'<img src="/img/coffee.jpg?token={SECRET}">'
        f'<img src="/img/astronaut.jpg?token={SECRET}">'.encode(),
    )
    alices_page = photo_site.server.url(f"/private.html?token={SECRET}")
    alices_job = run(ScrapeJob.objects.create(owner=alice, url=alices_page))
    assert (alices_job.status, alices_job.done) == ("completed", 2)
    coffee = Image.objects.get(source_url=photo_site.image_url(f"coffee.jpg?token={SECRET}"))

    bobs_job = run(ScrapeJob.objects.create(owner=bob, url=photo_site.page_url))

    # The shared catalogue: bob's copies are skipped, not fetched and detected twice...
    assert Image.objects.count() == 6
    items = {item.source_url.rsplit("/", 1)[1]: item for item in bobs_job.items.all()}
    assert (items["coffee.jpg"].status, items["coffee.jpg"].image) == ("skipped", coffee)
    # ...with reasons that name no URL of alice's, only bob's own.
    assert items["coffee.jpg"].error == SAME_PICTURE
    assert items["astronaut.jpg"].error == SAME_PICTURE
    assert items["copy-of-coffee.jpg"].error == (
        f"The same picture as {photo_site.image_url('coffee.jpg')}"
    )
    bob_client, alice_client = Client(), Client()
    bob_client.force_login(bob)
    alice_client.force_login(alice)
    bobs_view = html(bob_client.get(coffee.get_absolute_url()))
    alices_view = html(alice_client.get(coffee.get_absolute_url()))
    assert photo_site.page_url in bobs_view and photo_site.image_url("coffee.jpg") in bobs_view
    assert SECRET not in bobs_view
    assert photo_site.page_url not in alices_view and alices_page in alices_view
    assert coffee.get_absolute_url() in html(bob_client.get(reverse("uploads:gallery")))
    assert bob_client.get(coffee.thumbnail_url).status_code == 200
    # Nothing sent to bob live, nor the API's view of his job, carries alice's token.
    assert not [event for event in stored_events(bob) if SECRET in event[1]]
    api = bob_client.get(f"/api/scrape-jobs/{bobs_job.pk}")
    assert api.status_code == 200 and SECRET not in api.content.decode()
