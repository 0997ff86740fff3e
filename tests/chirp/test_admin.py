"""The admin's live lanes page: who holds which slot, since when, the job it runs, the queue."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from chirp import engine
from chirp.models import LaneSlot
from uploads.models import ScrapeJob

pytestmark = pytest.mark.django_db

LIVE = "/admin/chirp/laneslot/"


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def queue_jobs(owner, n: int) -> list[ScrapeJob]:
    """n pending jobs, each enqueued a minute after the one before (created newest first, so
    the queue's order is not the order of their ids)."""
    start = timezone.now() - timedelta(hours=1)
    jobs = [
        ScrapeJob.objects.create(
            owner=owner, url=f"https://photos.example/{i}", enqueued=start + timedelta(minutes=i)
        )
        for i in reversed(range(n))
    ]
    return sorted(jobs, key=lambda job: job.enqueued)


def test_a_job_claimed_by_the_engine_shows_in_its_slot_and_the_rest_queue_in_order(
    staff_client, alice
):
    first, second, third = queue_jobs(alice, 3)
    token = engine.new_token()
    slot = engine.claim_slot("uploads", token)
    claimed, _ = engine.claim_job(ScrapeJob, token)

    response = staff_client.get(LIVE)

    html = response.content.decode()
    assert response.status_code == 200
    assert claimed == first
    row = html.split('id="slot-uploads-0"')[1].split("</tr>")[0]
    assert token in row
    assert timezone.localtime(slot.held_since).strftime("%Y-%m-%d %H:%M:%S") in row
    assert timezone.localtime(slot.heartbeat).strftime("%H:%M:%S") in row
    assert f'<a href="{reverse("admin:uploads_scrapejob_change", args=[first.pk])}">' in row
    assert "stale" not in row
    queue = html.split('id="lane-uploads"')[1].split("<h3>")[1].split("</section>")[0]
    assert "Queue (2 waiting" in queue
    assert f"scrape job #{first.pk}" not in queue
    assert queue.index(f'id="queued-scrapejob-{second.pk}"') < queue.index(
        f'id="queued-scrapejob-{third.pk}"'
    )


def test_a_slot_whose_worker_stopped_beating_is_stale_and_its_job_waits_again(staff_client, alice):
    [job] = queue_jobs(alice, 1)
    token = engine.new_token()
    engine.claim_slot("uploads", token)
    engine.claim_job(ScrapeJob, token)
    old = timezone.now() - timedelta(hours=1)
    LaneSlot.objects.filter(lane="uploads").update(heartbeat=old)
    ScrapeJob.objects.filter(pk=job.pk).update(heartbeat=old)

    html = staff_client.get(LIVE).content.decode()

    row = html.split('id="slot-uploads-0"')[1].split("</tr>")[0]
    assert '<span class="chirp-stale">stale</span>' in row
    assert f"scrape job #{job.pk}" in row
    assert f'id="queued-scrapejob-{job.pk}"' in html  # the next runner takes it over


def test_a_released_slot_shows_free(staff_client, alice):
    token = engine.new_token()
    slot = engine.claim_slot("uploads", token)
    engine.release_slot(slot, token)

    html = staff_client.get(LIVE).content.decode()

    row = html.split('id="slot-uploads-0"')[1].split("</tr>")[0]
    assert token not in row and "free" in row
    assert "Nothing waiting." in html.split('id="lane-uploads"')[1]


def test_the_page_reloads_itself_from_a_static_script(staff_client):
    html = staff_client.get(LIVE).content.decode()

    assert 'data-refresh-seconds="5"' in html
    assert '<script src="/static/chirp-admin.js"></script>' in html


def test_only_staff_see_the_live_lanes(client, alice):
    anonymous = client.get(LIVE)
    client.force_login(alice)
    user = client.get(LIVE)

    assert anonymous.status_code == 302 and anonymous.url.endswith(f"/login/?next={LIVE}")
    assert user.status_code == 302 and user.url == f"{reverse('admin:login')}?next={LIVE}"
    assert "Live lanes" not in user.content.decode()


def test_the_admin_index_links_to_the_live_lanes(staff_client):
    html = staff_client.get("/admin/").content.decode()

    assert f'<a href="{LIVE}">Live lanes</a>' in html
