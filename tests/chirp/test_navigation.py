"""The top bar: every section in reach, the current one marked, the user menu, the favicon,
and the word after logging out."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.django_db

SECTIONS = {
    "Home": "/",
    "Uploads": "/uploads/",
    "Gallery": "/uploads/gallery/",
    "Channels": "/channels/",
}


def topbar(response) -> str:
    html = response.content.decode()
    return html[html.index('<header class="topbar">') : html.index("</header>")]


def current_sections(response) -> list[str]:
    return re.findall(r'<a href="[^"]*" aria-current="page">([^<]+)</a>', topbar(response))


def test_the_top_bar_reaches_every_section_and_the_user_menu(alice_client):
    bar = topbar(alice_client.get("/uploads/"))
    for label, url in SECTIONS.items():
        assert f'<a href="{url}"' in bar and f">{label}</a>" in bar
    assert 'href="/accounts/"' in bar and ">Account</a>" in bar
    assert 'action="/accounts/logout/"' in bar and "Log out" in bar
    assert '<details class="user-menu">' in bar and "alice" in bar


@pytest.mark.parametrize(
    ("path", "section"),
    [
        ("/", "Home"),
        ("/uploads/", "Uploads"),
        ("/uploads/gallery/", "Gallery"),
        ("/channels/", "Channels"),
        ("/channels/add/", "Channels"),
        ("/accounts/", "Account"),
    ],
)
def test_the_current_section_is_marked_and_only_it(alice_client, path, section):
    assert current_sections(alice_client.get(path)) == [section]


def test_a_job_page_marks_its_section(alice_client, alice):
    from tests.uploads.conftest import make_job

    job = make_job(alice)
    assert current_sections(alice_client.get(f"/uploads/jobs/{job.pk}/")) == ["Uploads"]


def test_staff_see_admin_and_others_do_not(client, alice, staff):
    client.force_login(staff)
    assert '<a href="/admin/">Admin</a>' in topbar(client.get("/uploads/"))
    client.force_login(alice)
    assert "/admin/" not in topbar(client.get("/uploads/"))


def test_pages_link_a_favicon_and_favicon_ico_answers(client, alice):
    login_page = client.get("/accounts/login/")
    assert re.search(
        r'<link rel="icon" href="/static/favicon[^"]*\.svg"', login_page.content.decode()
    )
    response = client.get("/favicon.ico")  # asked for by browsers, signed in or not
    assert response.status_code == 302
    assert re.fullmatch(r"/static/favicon[^/]*\.svg", response.url)


def test_logging_out_says_so_on_the_login_page(alice_client):
    response = alice_client.post("/accounts/logout/", follow=True)
    assert response.redirect_chain[-1][0].startswith("/accounts/login/")
    assert "You have been signed out." in response.content.decode()
    # Said once: the next visit does not repeat it.
    assert "You have been signed out." not in alice_client.get("/accounts/login/").content.decode()
