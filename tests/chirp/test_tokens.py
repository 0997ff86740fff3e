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


def test_the_top_bar_links_to_the_account_page(alice_client):
    assert '<a href="/accounts/">Account</a>' in alice_client.get("/").content.decode()


def test_the_account_page_needs_a_sign_in(client, alice):
    response = client.get("/accounts/")
    assert response.status_code == 302 and "/login/" in response.url


def test_the_account_page_lists_only_your_own_tokens(alice_client, alice, bob):
    ApiToken.create(bob, "bob's script")
    mine, _ = ApiToken.create(alice, "nightly backup", expires=timezone.now() + timedelta(days=3))
    page = alice_client.get("/accounts/").content.decode()
    assert "nightly backup" in page and f"{mine.hint}…" in page
    assert "bob&#x27;s script" not in page


def test_creating_a_token_shows_its_key_once(alice_client, alice):
    response = alice_client.post("/accounts/tokens/", {"name": "backup", "expires_in_days": "30"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    token = ApiToken.objects.get()
    key = response.context["key"]
    assert f'value="{key}"' in response.content.decode()
    assert token.user == alice and token.name == "backup"
    assert timedelta(days=29) < token.expires - timezone.now() <= timedelta(days=30)
    assert bearer(key).get(API).status_code == 200

    again = alice_client.get("/accounts/").content.decode()
    assert "backup" in again and key not in again


def test_a_token_without_expiry_never_expires(alice_client):
    alice_client.post("/accounts/tokens/", {"name": "forever", "expires_in_days": ""})
    assert ApiToken.objects.get().expires is None


def test_a_bad_token_form_says_what_is_wrong(alice_client):
    response = alice_client.post("/accounts/tokens/", {"name": "", "expires_in_days": "0"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "This field is required." in page
    assert "Ensure this value is greater than or equal to 1." in page
    assert not ApiToken.objects.exists()


def test_revoking_a_token_stops_it_working(alice_client, alice):
    token, key = ApiToken.create(alice, "old script")
    assert bearer(key).get(API).status_code == 200
    response = alice_client.post(f"/accounts/tokens/{token.pk}/revoke/", follow=True)
    assert response.status_code == 200
    assert "is revoked" in response.content.decode()
    assert not ApiToken.objects.exists()
    assert bearer(key).get(API).status_code == 401


def test_bob_cannot_revoke_alices_token(client, alice, bob):
    token, key = ApiToken.create(alice, "alice's")
    client.force_login(bob)
    assert client.post(f"/accounts/tokens/{token.pk}/revoke/").status_code == 404
    assert bearer(key).get(API).status_code == 200


def test_revoking_takes_a_post_with_the_csrf_token(alice):
    token, _ = ApiToken.create(alice, "kept")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    assert browser.get(f"/accounts/tokens/{token.pk}/revoke/").status_code == 405
    assert browser.post(f"/accounts/tokens/{token.pk}/revoke/").status_code == 403
    assert ApiToken.objects.filter(pk=token.pk).exists()
