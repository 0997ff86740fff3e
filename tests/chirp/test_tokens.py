"""API tokens: who may mint one for whom, expiry, last use, and the account page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from chirp.models import ApiToken
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

API = "/api/scrape-jobs"


@pytest.fixture
def helper(django_user_model):
    """Staff who may manage API tokens in the admin, but no superuser."""
    user = django_user_model.objects.create_user("helper", "helper@example.com", PASSWORD)
    user.is_staff = True
    user.save()
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="chirp", codename__endswith="apitoken")
    )
    return user


def bearer(key: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {key}")


def admin_add(client: Client, user, **extra):
    return client.post(
        reverse("admin:chirp_apitoken_add"), {"user": user.pk, "name": "mine", **extra}
    )


def test_staff_cannot_mint_a_token_for_a_superuser(client, helper, staff):
    client.force_login(helper)
    response = admin_add(client, staff)
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_staff_mint_tokens_for_themselves_only(client, helper, alice):
    client.force_login(helper)
    form = client.get(reverse("admin:chirp_apitoken_add")).content.decode()
    assert "helper" in form and "alice" not in form
    assert admin_add(client, helper).status_code == 302
    assert ApiToken.objects.get().user == helper


def test_staff_see_and_change_only_their_own_tokens(client, helper, staff):
    theirs, _ = ApiToken.create(staff, "root's")
    mine, _ = ApiToken.create(helper, "helper's")
    client.force_login(helper)
    listing = client.get(reverse("admin:chirp_apitoken_changelist")).content.decode()
    assert "helper&#x27;s" in listing and "root&#x27;s" not in listing
    assert client.get(reverse("admin:chirp_apitoken_change", args=[theirs.pk])).status_code == 302
    # Their own token cannot be handed to the superuser either.
    client.post(
        reverse("admin:chirp_apitoken_change", args=[mine.pk]), {"user": staff.pk, "name": "x"}
    )
    assert ApiToken.objects.get(pk=mine.pk).user == helper


def test_a_superuser_mints_a_token_for_anyone(client, staff, alice):
    client.force_login(staff)
    assert admin_add(client, alice).status_code == 302
    assert ApiToken.objects.get().user == alice


def test_an_expired_token_answers_401_saying_so(alice):
    _, key = ApiToken.create(alice, "old", expires=timezone.now() - timedelta(seconds=1))
    response = bearer(key).get(API)
    assert response.status_code == 401
    assert "expired" in response.json()["error"]
    assert ApiToken.objects.get().last_used is None


def test_a_token_works_until_it_expires(alice):
    _, key = ApiToken.create(alice, "soon", expires=timezone.now() + timedelta(hours=1))
    assert bearer(key).get(API).status_code == 200


def test_last_used_is_recorded_at_most_once_a_minute(alice):
    token, key = ApiToken.create(alice, "script")
    bearer(key).get(API)
    first = ApiToken.objects.get().last_used
    assert first is not None
    bearer(key).get(API)
    assert ApiToken.objects.get().last_used == first  # within the minute: no write

    ApiToken.objects.filter(pk=token.pk).update(last_used=first - timedelta(minutes=2))
    bearer(key).get(API)
    assert ApiToken.objects.get().last_used > first
