"""Password guessing is throttled on both sign-in pages, per user name and per address."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from axes.models import AccessAttempt
from django.test import AsyncClient, Client
from django.urls import reverse

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/?next=/admin/"
LIMIT = 5  # CHIRP_LOGIN_FAILURE_LIMIT's default
HOME = "203.0.113.10"
ELSEWHERE = "198.51.100.20"


def sign_in(client: Client, username: str, password: str, *, path: str = LOGIN, ip: str = HOME):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=ip)


def guess(username: str, *, times: int = LIMIT, path: str = LOGIN, ip: str = HOME):
    for n in range(times):
        last = sign_in(Client(), username, f"wrong guess {n}", path=path, ip=ip)
    return last


def assert_refused(response) -> None:
    assert response.status_code == 429
    page = response.content.decode()
    assert "Too many failed sign-ins. Try again in 15 minutes, after " in page
    assert "Please enter a correct username and password" not in page
    assert response["Retry-After"] == "900"
    request = getattr(response, "wsgi_request", None) or response.asgi_request
    assert "_auth_user_id" not in request.session


def test_a_few_mistakes_are_forgiven(client, alice):
    response = guess("alice", times=LIMIT - 1)
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert sign_in(client, "alice", PASSWORD).status_code == 302
    assert client.get("/").status_code == 200


def test_after_too_many_wrong_passwords_the_right_one_is_refused(client, alice):
    assert_refused(guess("alice"))  # the guess that reaches the limit already says so
    response = sign_in(client, "alice", PASSWORD)
    assert_refused(response)
    assert '<form method="post"' in response.content.decode()  # the sign-in page, not a bare 429
    assert client.get("/").status_code == 302  # not signed in


def test_the_admin_sign_in_is_throttled_the_same_way(client, staff):
    assert_refused(guess("root", path=ADMIN_LOGIN))
    response = sign_in(client, "root", PASSWORD, path=ADMIN_LOGIN)
    assert_refused(response)
    assert "Log in | Django site admin" in response.content.decode()
    assert client.get("/admin/").status_code == 302


def test_failures_on_one_page_count_on_the_other(client, staff):
    guess("root", path=LOGIN)
    assert_refused(sign_in(client, "root", PASSWORD, path=ADMIN_LOGIN))


def test_the_user_name_stays_locked_from_another_address(client, alice):
    guess("alice", ip=HOME)
    assert_refused(sign_in(client, "alice", PASSWORD, ip=ELSEWHERE))


def test_the_address_stays_locked_for_other_user_names(client, alice, bob):
    for name in ("alice", "admin", "root", "carol", "dave"):
        guess(name, times=1, ip=HOME)
    assert_refused(sign_in(client, "bob", PASSWORD, ip=HOME))
    # Neither bob's name nor his own address had any failure.
    assert sign_in(Client(), "bob", PASSWORD, ip=ELSEWHERE).status_code == 302


def test_the_lockout_ends_after_the_cool_off(client, alice):
    guess("alice")
    AccessAttempt.objects.update(
        attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=16)
    )
    assert sign_in(client, "alice", PASSWORD).status_code == 302


def test_staff_lift_a_lockout_in_the_admin(client, alice, staff):
    guess("alice")
    assert_refused(sign_in(client, "alice", PASSWORD))

    admin = Client()
    admin.force_login(staff)
    changelist = reverse("admin:axes_accessattempt_changelist")
    listing = admin.get(changelist).content.decode()
    assert "alice" in listing and "Locked Out" in listing
    response = admin.post(
        changelist,
        {
            "action": "lift_lockout",
            "_selected_action": AccessAttempt.objects.values_list("pk", flat=True),
        },
        follow=True,
    )
    assert "Lock-out lifted for alice" in response.content.decode()

    assert sign_in(client, "alice", PASSWORD).status_code == 302
    assert client.get("/").status_code == 200


def test_without_a_trusted_header_a_forged_forwarded_address_changes_nothing(client, alice, bob):
    for name in ("admin", "root", "carol", "dave", "eve"):
        Client().post(
            LOGIN,
            {"username": name, "password": "x"},
            REMOTE_ADDR=HOME,
            HTTP_X_FORWARDED_FOR=f"192.0.2.{len(name)}",
        )
    response = client.post(
        LOGIN,
        {"username": "bob", "password": PASSWORD},
        REMOTE_ADDR=HOME,
        HTTP_X_FORWARDED_FOR=ELSEWHERE,
    )
    assert_refused(response)


def test_behind_a_proxy_the_trusted_header_names_the_client(settings, alice, bob):
    settings.CHIRP_CLIENT_IP_HEADER = "X-Forwarded-For"
    proxy = "10.0.0.1"
    for name in ("admin", "root", "carol", "dave", "eve"):
        Client().post(
            LOGIN,
            {"username": name, "password": "x"},
            REMOTE_ADDR=proxy,
            # The client may put anything first; the proxy appends the address it saw.
            HTTP_X_FORWARDED_FOR=f"192.0.2.{len(name)}, {HOME}",
        )
    assert AccessAttempt.objects.filter(ip_address=HOME).count() == 5

    def bob_from(address: str):
        return Client().post(
            LOGIN,
            {"username": "bob", "password": PASSWORD},
            REMOTE_ADDR=proxy,
            HTTP_X_FORWARDED_FOR=address,
        )

    assert_refused(bob_from(HOME))
    assert bob_from(ELSEWHERE).status_code == 302


def test_the_web_server_answers_a_lockout_with_the_sign_in_page(alice):
    """Under uvicorn the middleware runs asynchronously: the same page, the same message."""
    client = AsyncClient()

    async def attempts():
        for n in range(LIMIT):
            await client.post(LOGIN, {"username": "alice", "password": f"no {n}"})
        return await client.post(LOGIN, {"username": "alice", "password": PASSWORD})

    response = async_to_sync(attempts)()
    assert_refused(response)
    assert '<form method="post"' in response.content.decode()


def test_a_header_without_an_address_counts_against_the_connection(settings, alice):
    settings.CHIRP_CLIENT_IP_HEADER = "X-Real-IP"
    Client().post(
        LOGIN, {"username": "alice", "password": "x"}, REMOTE_ADDR=HOME, HTTP_X_REAL_IP="nonsense"
    )
    assert AccessAttempt.objects.get().ip_address == HOME
