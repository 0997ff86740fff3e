"""Accounts: first-run set-up, login everywhere, HTMX redirects, the admin for staff only."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

pytestmark = pytest.mark.django_db

User = get_user_model()


def test_a_fresh_install_leads_every_page_to_setup(client):
    assert client.get("/").url == "/setup/"
    assert client.get("/demo/").url == "/setup/"
    page = client.get("/setup/")
    assert page.status_code == 200
    assert b"No account exists yet" in page.content


def test_setup_creates_the_first_admin_and_signs_them_in(client):
    response = client.post(
        "/setup/",
        {
            "username": "ada",
            "email": "",
            "password1": "a long passphrase 42",
            "password2": "a long passphrase 42",
        },
    )
    assert response.status_code == 302 and response.url == "/"
    ada = User.objects.get()
    assert ada.username == "ada" and ada.is_staff and ada.is_superuser
    assert client.get("/").status_code == 200  # signed in
    assert client.get("/setup/").url == "/"  # the set-up page is gone for good


def test_setup_refuses_a_weak_password_with_a_reason(client):
    response = client.post(
        "/setup/", {"username": "ada", "password1": "12345678", "password2": "12345678"}
    )
    assert response.status_code == 200
    assert "This password is too common." in response.content.decode()
    assert not User.objects.exists()


def test_setup_is_closed_once_an_account_exists(client, alice):
    response = client.post(
        "/setup/",
        {"username": "mallory", "password1": "x-long-pass-99!", "password2": "x-long-pass-99!"},
    )
    assert response.status_code == 302
    assert not User.objects.filter(username="mallory").exists()


@pytest.mark.parametrize("path", ["/", "/demo/", "/admin/"])
def test_every_page_requires_login(client, alice, path):
    response = client.get(path)
    assert response.status_code == 302
    assert "/login/" in response.url


def test_a_signed_out_htmx_request_is_sent_to_the_login_page_whole(client, alice):
    response = client.get("/demo/", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/accounts/login/?next=/demo/"
    assert b"<form" not in response.content  # never the login form as a fragment


def test_staff_reach_the_admin_and_ordinary_users_do_not(client, alice, staff):
    client.force_login(alice)
    response = client.get("/admin/")
    assert response.status_code == 302 and response.url.startswith("/admin/login/")
    client.force_login(staff)
    assert client.get("/admin/").status_code == 200


def test_logging_out_takes_a_post(client, alice):
    client.force_login(alice)
    assert client.get("/accounts/logout/").status_code == 405
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/").status_code == 302


def test_posts_without_a_csrf_token_are_refused(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post("/demo/", {"size": 1, "delay": 0, "threads": 1})
    assert response.status_code == 403


def test_pages_send_the_csrf_token_to_htmx(alice_client):
    page = alice_client.get("/").content.decode()
    assert 'hx-headers=\'{"X-CSRFToken": "' in page
    assert 'sse-connect="/events/?lastEventId=user-' in page
