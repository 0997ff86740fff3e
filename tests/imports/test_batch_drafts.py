"""Drafts: a list previewed and never started keeps its text on a draft ListBatch, removed by a
periodic task once older than CHIRP_LIST_DRAFT_HOURS (whoever's it is); a started batch is
never removed. A draft is nobody's work yet: it does not redraw its owner's dashboard. alice
and bob preview lists."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.apps import apps
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from chirp.signals import create_schedules
from imports.models import ListBatch
from imports.tasks import delete_old_list_drafts
from tests.sse import stored_events

pytestmark = pytest.mark.django_db


def aged(batch: ListBatch, hours: float) -> ListBatch:
    ListBatch.objects.filter(pk=batch.pk).update(created=timezone.now() - timedelta(hours=hours))
    return batch


def started(owner, status: str) -> ListBatch:
    batch = ListBatch.draft(owner, "@first\n", "text")
    batch.start()
    ListBatch.objects.filter(pk=batch.pk).update(status=status)
    return batch


def test_old_drafts_are_removed_and_fresh_drafts_and_started_batches_stay(alice, bob, settings):
    settings.CHIRP_LIST_DRAFT_HOURS = 24
    others = [status for status in ListBatch.Status.values if status != "draft"]
    kept = [started(alice, status) for status in others]
    old = ListBatch.draft(alice, "@old\n", "text")
    bobs_old = ListBatch.draft(bob, "@bobs\n", "text")
    fresh = ListBatch.draft(alice, "@fresh\n", "text")
    # (Aged once made: a preview of alice's own removes her drafts past the age too.)
    aged(old, 25), aged(bobs_old, 200), aged(fresh, 23)
    for batch in kept:
        aged(batch, 500)

    assert delete_old_list_drafts() == 2

    left = set(ListBatch.objects.values_list("pk", flat=True))
    assert left == {fresh.pk, *(batch.pk for batch in kept)}
    statuses = ListBatch.objects.exclude(pk=fresh.pk).values_list("status", flat=True)
    assert sorted(statuses) == sorted(others)


def test_the_age_is_a_setting(alice, settings):
    draft = aged(ListBatch.draft(alice, "@first\n", "text"), 3)
    settings.CHIRP_LIST_DRAFT_HOURS = 4
    assert delete_old_list_drafts() == 0
    settings.CHIRP_LIST_DRAFT_HOURS = 2
    assert delete_old_list_drafts() == 1
    assert not ListBatch.objects.filter(pk=draft.pk).exists()


def test_the_hourly_schedule_is_created_once(db):
    chirp = apps.get_app_config("chirp")
    create_schedules(sender=chirp, app_config=chirp)
    create_schedules(sender=chirp, app_config=chirp)

    [schedule] = Schedule.objects.filter(func="imports.tasks.delete_old_list_drafts")
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == (
        Schedule.MINUTES,
        60,
        -1,
    )


def test_a_preview_does_not_redraw_the_dashboard_but_start_does(
    alice_client, alice, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(reverse("imports:import_list"), {"text": "@first\n"})
    assert stored_events(alice, "dashboard") == []

    batch = ListBatch.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(reverse("imports:start_batch", args=[batch.pk]))
    [(_, html)] = stored_events(alice, "dashboard")
    assert f'id="dash-{batch.dom_id}"' in html and "1st in line" in html
