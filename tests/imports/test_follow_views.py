"""Following a channel through its page, the channel list and the API; the Following page."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from imports.models import ChannelWatch, Follow, ImportJob

pytestmark = pytest.mark.django_db


def text(response) -> str:
    return " ".join(response.content.decode().split())


def test_alice_follows_from_the_channel_page_and_unfollows(alice, alice_client, make_channel):
    channel = make_channel(alice, title="Tea Time")
    page = text(alice_client.get(channel.get_absolute_url()))
    assert 'aria-pressed="false"' in page and ">Follow</button>" in page

    response = alice_client.post(
        f"/channels/{channel.pk}/follow/", {"quality": "720", "since": "2026-01-02"}
    )

    assert response.status_code == 302 and response.url == channel.get_absolute_url()
    follow = Follow.objects.get(user=alice, channel=channel)
    assert (follow.quality, str(follow.since)) == ("720", "2026-01-02")
    assert ChannelWatch.objects.filter(channel=channel).exists()
    assert ">Following</button>" in text(alice_client.get(channel.get_absolute_url()))

    response = alice_client.post(f"/channels/{channel.pk}/unfollow/", {"next": "list"})
    assert response.status_code == 302 and response.url == "/channels/"
    assert not Follow.objects.exists() and not ChannelWatch.objects.exists()


def test_the_toggle_swaps_in_place_with_htmx(alice, alice_client, make_channel):
    channel = make_channel(alice)
    response = alice_client.post(
        f"/channels/{channel.pk}/follow/", {"next": "list"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert f'id="follow-{channel.pk}"' in text(response)
    assert 'aria-pressed="true"' in text(response)
    assert "<html" not in text(response)

    rows = text(alice_client.get("/channels/"))
    assert ">Following</button>" in rows and 'href="/channels/following/"' in rows


def test_a_bad_quality_is_refused_with_a_message(alice, alice_client, make_channel):
    channel = make_channel(alice)
    response = alice_client.post(
        f"/channels/{channel.pk}/follow/", {"quality": "8k"}, headers={"HX-Request": "true"}
    )
    assert "Choose a quality: none, audio, 360, 480, 720, 1080, best." in text(response)
    assert not Follow.objects.exists()


def test_bob_cannot_follow_a_channel_he_does_not_see(alice, bob, client, make_channel):
    channel = make_channel(alice)
    client.force_login(bob)
    assert client.post(f"/channels/{channel.pk}/follow/").status_code == 404
    assert client.post(f"/channels/{channel.pk}/unfollow/").status_code == 404
    assert not Follow.objects.exists()


def test_api_follow_and_unfollow(alice, bob, client, make_channel):
    channel = make_channel(alice, title="Tea Time")
    client.force_login(bob)
    url = f"/api/channels/{channel.pk}/follow"

    assert client.post(url, "{}", content_type="application/json").status_code == 404
    assert client.get(f"/api/channels/{channel.pk}/stats").status_code == 404

    client.force_login(alice)
    response = client.post(
        url, json.dumps({"quality": "audio", "since": "2026-03-01"}), "application/json"
    )
    assert response.status_code == 201
    body = response.json()
    assert body["following"] is True
    assert (body["follow"]["quality"], body["follow"]["since"]) == ("audio", "2026-03-01")
    again = client.post(url, json.dumps({"quality": "best"}), "application/json")
    assert again.status_code == 200 and again.json()["follow"]["quality"] == "best"

    bad = client.post(url, json.dumps({"quality": "8k", "since": "soon"}), "application/json")
    assert bad.status_code == 400 and bad["Content-Type"] == "application/json"
    assert set(bad.json()["errors"]) == {"quality", "since"}

    assert client.delete(url).json() == {"channelId": channel.pk, "following": False}
    gone = client.delete(url)
    assert gone.status_code == 404 and gone.json()["error"] == "You do not follow this channel."


def test_the_following_page_shows_last_check_and_method(alice, alice_client, make_channel):
    channel = make_channel(alice, title="Tea Time", videos=6)
    Follow.start(alice, channel)
    page = text(alice_client.get("/channels/following/"))
    assert "Tea Time" in page and "Not checked yet" in page
    assert page.count('class="video-card') == 4  # the newest four

    Follow.objects.update(
        last_checked=datetime(2026, 5, 4, 3, 2, tzinfo=UTC),
        last_check_method="poll",
        last_error="HTTP 500 for the feed",
    )
    page = text(alice_client.get("/channels/following/"))
    assert "Last checked" in page and "May 4, 2026 03:02" in page and "by poll (rss)" in page
    assert "HTTP 500 for the feed" in page


def test_the_following_page_lists_only_my_follows(alice, bob, alice_client, make_channel):
    mine, theirs = make_channel(alice, title="Mine"), make_channel(bob, title="Theirs")
    Follow.start(alice, mine)
    Follow.start(bob, theirs)
    page = text(alice_client.get("/channels/following/"))
    assert "Mine" in page and "Theirs" not in page


def test_a_follower_sees_the_channel_while_he_follows_it(alice, bob, client, make_channel):
    """Seeing is by one's own import or by following: bob follows a channel his import listed;
    his import is deleted since; he still sees the channel until he unfollows."""
    channel = make_channel(alice, title="Tea Time")
    ImportJob.objects.create(
        owner=bob, channel=channel, channel_url=channel.youtube_url, status="completed"
    )
    client.force_login(bob)
    url = f"/api/channels/{channel.pk}/follow"
    assert client.post(url, "{}", content_type="application/json").status_code == 201
    ImportJob.objects.filter(owner=bob).delete()

    assert client.get(channel.get_absolute_url()).status_code == 200
    assert client.get(f"/api/channels/{channel.pk}/stats").status_code == 200
    assert "Tea Time" in text(client.get("/channels/"))

    assert client.delete(url).status_code == 200
    assert client.get(channel.get_absolute_url()).status_code == 404
    assert "Tea Time" not in text(client.get("/channels/"))
