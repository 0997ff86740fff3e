"""Push (WebSub) against a fake hub on loopback that behaves like Google's: it accepts the
subscription, verifies it by calling the real web server (uvicorn) back, then delivers signed
notifications. The worker's part (handling a stored notification) runs in the test here; the
real worker's is in test_websub_worker.py and test_websub_browser.py."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import requests
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from imports import following, websub
from imports.models import (
    Follow,
    ImportJobItem,
    Video,
    WebSubNotification,
    WebSubSubscription,
)
from imports.models.websub import topic_for
from tests.conftest import wait_for
from tests.imports.fake_hub import (
    BILLION_LAUGHS,
    FakeHub,
    Fault,
    deleted_body,
    sign,
    upload_body,
)
from tests.sse import stored_events

pytestmark = pytest.mark.django_db(transaction=True)


def post(client, url: str, body: bytes, **extra: str) -> int:
    """The test client's POST of a notification, from a thread of its own: the callback is an
    async view, which Django's test client runs through async_to_sync, refused in a thread where
    an event loop runs (Playwright's sync API leaves one in the tests' thread once a browser test
    has started it)."""

    def send() -> int:
        try:
            return client.post(url, body, content_type="application/atom+xml", **extra).status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(send).result()


@pytest.fixture(autouse=True)
def _store_connections_closed():
    """The callback keeps its store threads' connections open (imports/websub.py); a test that
    calls it in this process closes them, so that the test database can be dropped."""
    yield
    websub.close_store_connections()


@pytest.fixture
def hub(settings, web_server):
    with FakeHub() as fake:
        settings.CHIRP_PUBLIC_URL = web_server.url
        settings.CHIRP_WEBSUB_HUB = fake.url
        yield fake


def sub_of(channel) -> WebSubSubscription:
    return WebSubSubscription.objects.get(channel=channel)


def followed(alice, make_channel, hub, videos: int = 2):
    """A channel alice follows, its push verified by the hub."""
    channel = make_channel(alice, videos=videos)
    Follow.start(alice, channel)
    sub = sub_of(channel)
    assert websub.send_request(sub.pk) == "subscribe accepted"
    wait_for(lambda: sub_of(channel).state == "verified", timeout=10)
    # The row says verified as soon as the callback answers; the hub delivers once it has read
    # the answer.
    wait_for(lambda: hub.verified(sub.topic), timeout=10)
    return channel, sub_of(channel)


def handle_stored() -> list[str]:
    """What the worker would do: handle every notification stored so far."""
    pending = WebSubNotification.objects.filter(processed__isnull=True).order_by("pk")
    return [websub.process_notification(pk) for pk in pending.values_list("pk", flat=True)]


def toasts(user) -> list[str]:
    return [html for _, html in stored_events(user, "toast")]


def test_following_subscribes_and_the_hub_verifies(alice, make_channel, hub, web_server):
    channel = make_channel(alice)
    Follow.start(alice, channel)
    sub = sub_of(channel)
    assert sub.state == "pending" and len(sub.token) >= 40 and len(sub.secret) == 64

    assert websub.send_request(sub.pk) == "subscribe accepted"
    (request,) = hub.requests
    assert request.mode == "subscribe" and request.verify == "async"
    assert request.topic == topic_for(channel.youtube_id)
    assert request.topic.startswith("https://www.youtube.com/xml/feeds/videos.xml?channel_id=UC")
    assert request.callback == f"{web_server.url}/websub/{sub.token}/"
    assert request.secret == sub.secret and request.lease_seconds == 432000

    wait_for(lambda: hub.verified(request.topic), timeout=10)
    sub = sub_of(channel)
    assert sub.state == "verified" and sub.lease_seconds == 432000
    assert abs((sub.lease_expires - timezone.now()) - timedelta(seconds=432000)) < timedelta(
        seconds=30
    )
    # Renewal at 75-80 % of the lease.
    renew_in = (sub.next_try - sub.verified).total_seconds()
    assert 0.75 * 432000 <= renew_in <= 0.80 * 432000
    assert hub.verifications[0].confirmed

    # The channel page says so.
    page = requests.Session()
    page.cookies.update(session_cookie(alice))
    html = page.get(web_server.url + channel.get_absolute_url(), timeout=10).text
    assert "Push (WebSub): verified until" in html


def test_a_subscription_the_hub_never_verifies_says_so(
    alice, staff, make_channel, hub, web_server, client
):
    hub.verify_delay = 3600  # the hub accepts, and never calls back
    channel = make_channel(alice)
    Follow.start(alice, channel)
    sub = sub_of(channel)
    assert websub.send_request(sub.pk) == "subscribe accepted"

    page = requests.Session()
    page.cookies.update(session_cookie(alice))
    html = page.get(web_server.url + channel.get_absolute_url(), timeout=10).text
    assert "Push (WebSub): pending: asked at " in html
    assert "not verified by the hub yet" in html
    assert "verified until" not in html

    client.force_login(staff)
    admin = client.get("/admin/imports/websubsubscription/")
    assert admin.status_code == 200
    assert "not verified by the hub yet" in admin.content.decode()
    assert sub_of(channel).state == "pending"


def session_cookie(user):
    from tests.conftest import session_cookie_for

    return session_cookie_for(user)


def test_verification_answers_only_a_request_we_made(alice, make_channel, hub, web_server):
    channel, sub = followed(alice, make_channel, hub)
    url = f"{web_server.url}/websub/{sub.token}/"
    good = {"hub.mode": "subscribe", "hub.topic": sub.topic, "hub.challenge": "c-123"}

    answer = requests.get(url, params=good, timeout=10)
    assert (answer.status_code, answer.text) == (200, "c-123")
    assert answer.headers["Content-Type"].startswith("text/plain")
    other_topic = {**good, "hub.topic": topic_for("UCsomeoneelse000000000000")}
    assert requests.get(url, params=other_topic, timeout=10).status_code == 404
    # Not asked to unsubscribe: a forged unsubscribe verification is refused.
    unsubscribe = {**good, "hub.mode": "unsubscribe"}
    assert requests.get(url, params=unsubscribe, timeout=10).status_code == 404
    unknown = f"{web_server.url}/websub/not-a-token/"
    assert requests.get(unknown, params=good, timeout=10).status_code == 404
    assert sub_of(channel).state == "verified"


def test_notifications_new_edit_delete_and_duplicate(alice, bob, make_channel, hub, web_server):
    channel, sub = followed(alice, make_channel, hub, videos=2)
    Follow.start(bob, channel)
    old = channel.videos.order_by("pk").first()

    # A new upload: created at once (two-phase: queued for enrichment), a toast to followers.
    new_body = upload_body(channel.youtube_id, "newvideo001", "Fresh upload")
    assert hub.publish(sub.topic, new_body) == [202]
    assert handle_stored() == ["1 new, 0 refreshed, 0 removed"]
    video = Video.objects.get(youtube_id="newvideo001")
    assert (video.title, video.stage) == ("Fresh upload", "created")
    assert ImportJobItem.objects.filter(video=video).count() == 1
    for user in (alice, bob):
        wait_for(lambda user=user: any("Fresh upload" in t for t in toasts(user)), timeout=5)
    assert any("New video from" in t for t in toasts(alice))
    follow = Follow.objects.get(user=alice, channel=channel)
    assert follow.last_check_method == "push"

    # The same notification again (the hub redelivers): nothing changes.
    assert hub.publish(sub.topic, new_body) == [202]
    assert handle_stored() == ["0 new, 0 refreshed, 0 removed"]
    assert Video.objects.filter(youtube_id="newvideo001").count() == 1
    assert ImportJobItem.objects.filter(video=video).count() == 1

    # A title edit of an old video: refreshed, no toast.
    toasts_before = len(toasts(alice))
    edit = upload_body(
        channel.youtube_id,
        old.youtube_id,
        "A better title",
        published=datetime(2020, 1, 1, tzinfo=UTC),
    )
    assert hub.publish(sub.topic, edit) == [202]
    assert handle_stored() == ["0 new, 1 refreshed, 0 removed"]
    old.refresh_from_db()
    assert old.title == "A better title"
    assert ImportJobItem.objects.filter(video=old).count() == 0
    assert len(toasts(alice)) == toasts_before

    # A deletion: kept, marked, with a badge on the card and the video page.
    when = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)
    gone = deleted_body(channel.youtube_id, old.youtube_id, when)
    assert hub.publish(sub.topic, gone) == [202]
    assert handle_stored() == ["0 new, 0 refreshed, 1 removed"]
    old.refresh_from_db()
    assert old.removed_at.replace(microsecond=0) == when
    assert hub.publish(sub.topic, gone) == [202]  # twice: the first time stays
    assert handle_stored() == ["0 new, 0 refreshed, 0 removed"]
    page = requests.Session()
    page.cookies.update(session_cookie(alice))
    html = page.get(web_server.url + old.get_absolute_url(), timeout=10).text
    assert "Removed from YouTube" in html and "Mar 4, 2026" in html


def test_bad_signatures_unknown_tokens_and_large_bodies_do_nothing(
    alice, make_channel, hub, web_server, settings
):
    channel, sub = followed(alice, make_channel, hub)
    url = f"{web_server.url}/websub/{sub.token}/"
    body = upload_body(channel.youtube_id, "forged00001", "Forged")

    # Bad or missing signature: acknowledged (the spec), ignored, nothing stored.
    assert hub.deliver(url, body, sign("not-the-secret", body)) == 202
    assert hub.deliver(url, body, None) == 202
    assert hub.deliver(url, body, "sha256=" + sign(sub.secret, body)[5:]) == 202
    assert hub.deliver(url, body + b" ", sign(sub.secret, body)) == 202
    # Unknown token: 404.
    unknown = f"{web_server.url}/websub/{'x' * 43}/"
    assert hub.deliver(unknown, body, sign(sub.secret, body)) == 404
    # Over 1 MB (under the installation's 10 MB cap): 413, whatever the signature.
    big = b"<feed>" + b" " * (1024 * 1024) + b"</feed>"
    assert hub.deliver(url, big, sign(sub.secret, big)) == 413
    assert WebSubNotification.objects.count() == 0
    assert not Video.objects.filter(youtube_id="forged00001").exists()

    # A billion-laughs body, signed: stored, then refused by the parser; nothing made.
    assert hub.publish(sub.topic, BILLION_LAUGHS) == [202]
    assert handle_stored() == ["refused"]
    refused = WebSubNotification.objects.get()
    assert refused.processed is not None and "DTD" in refused.error
    assert Video.objects.count() == 2


def test_a_flood_is_answered_429_per_subscription(alice, make_channel, hub, settings, client):
    channel, sub = followed(alice, make_channel, hub)
    settings.CHIRP_WEBSUB_MAX_PER_MINUTE = 3
    body = upload_body(channel.youtube_id, "flood000001", "Flood")
    headers = {"HTTP_X_HUB_SIGNATURE": sign(sub.secret, body)}
    url = f"/websub/{sub.token}/"
    statuses = [post(client, url, body, **headers) for _ in range(5)]
    assert statuses == [202, 202, 202, 429, 429]
    assert WebSubNotification.objects.count() == 3
    # A minute later, the subscription takes notifications again.
    WebSubSubscription.objects.filter(pk=sub.pk).update(
        window_start=timezone.now() - timedelta(seconds=61)
    )
    assert post(client, url, body, **headers) == 202


def test_forged_notifications_do_not_use_up_the_hubs_allowance(
    alice, make_channel, hub, settings, client
):
    channel, sub = followed(alice, make_channel, hub)
    settings.CHIRP_WEBSUB_MAX_PER_MINUTE = 3
    body = upload_body(channel.youtube_id, "forged00002", "Forged")
    url = f"/websub/{sub.token}/"

    def signed(signature: str) -> int:
        return post(client, url, body, HTTP_X_HUB_SIGNATURE=signature)

    # Someone who learnt the callback's address floods it: acknowledged, ignored, not counted.
    assert [signed(sign("not-the-secret", body)) for _ in range(5)] == [202] * 5
    assert WebSubNotification.objects.count() == 0
    # The hub's own notifications still have the minute's whole allowance.
    assert [signed(sign(sub.secret, body)) for _ in range(4)] == [202, 202, 202, 429]
    assert WebSubNotification.objects.count() == 3


def test_a_replaced_token_is_refused_though_it_was_just_used(alice, make_channel, hub, client):
    channel, sub = followed(alice, make_channel, hub)
    body = upload_body(channel.youtube_id, "oldtoken001", "Old token")
    old = {"HTTP_X_HUB_SIGNATURE": sign(sub.secret, body)}
    assert post(client, f"/websub/{sub.token}/", body, **old) == 202

    # Unfollowed and followed again: a new subscription, with a new token and secret.
    Follow.stop(alice, channel)
    Follow.start(alice, channel)
    assert sub_of(channel).token != sub.token
    assert post(client, f"/websub/{sub.token}/", body, **old) == 404
    assert WebSubNotification.objects.count() == 1


def test_the_callback_needs_no_session_and_no_csrf_token_and_nothing_else_does(
    alice, make_channel, hub, web_server
):
    channel, sub = followed(alice, make_channel, hub)
    # Anonymous POSTs elsewhere still need a session (and a CSRF token).
    answer = requests.post(
        web_server.url + f"/channels/{channel.pk}/follow/", allow_redirects=False, timeout=10
    )
    assert answer.status_code in (302, 403)
    body = upload_body(channel.youtube_id, "anon0000001", "Anonymous hub")
    assert hub.publish(sub.topic, body) == [202]
    assert WebSubNotification.objects.count() == 1


def test_renewal_at_80_percent_of_a_short_lease(alice, make_channel, hub):
    hub.max_lease = 100
    channel, sub = followed(alice, make_channel, hub)
    assert sub.lease_seconds == 100
    first_verified = sub.verified

    assert websub.run_due(now=first_verified + timedelta(seconds=74))["sent"] == 0
    assert len(hub.requests) == 1
    assert websub.run_due(now=first_verified + timedelta(seconds=81))["sent"] == 1
    assert len(hub.requests) == 2 and hub.requests[1].mode == "subscribe"
    wait_for(lambda: sub_of(channel).verified > first_verified, timeout=10)
    renewed = sub_of(channel)
    assert renewed.state == "verified" and renewed.lease_expires > sub.lease_expires


def test_a_hub_answering_503_is_asked_again_after_its_retry_after(alice, make_channel, hub):
    hub.faults.append(Fault(503, retry_after="120"))
    channel = make_channel(alice)
    Follow.start(alice, channel)
    sub = sub_of(channel)

    started = timezone.now()
    assert websub.send_request(sub.pk).startswith("subscribe refused: The hub answered HTTP 503")
    sub = sub_of(channel)
    assert sub.state == "failed" and sub.attempts == 1 and "503" in sub.last_error
    wait = (sub.next_try - started).total_seconds()
    assert 119 <= wait <= 125  # Retry-After, not the one-minute backoff
    assert "failed: The hub answered HTTP 503" in sub.describe()

    assert websub.run_due(now=started + timedelta(seconds=60))["sent"] == 0
    assert websub.run_due(now=started + timedelta(seconds=121))["sent"] == 1
    wait_for(lambda: sub_of(channel).state == "verified", timeout=10)
    assert [r.status for r in hub.requests] == [503, 202]
    assert sub_of(channel).attempts == 0


def test_the_backoff_doubles_and_honours_retry_after():
    assert websub.backoff(0) == timedelta(minutes=1)
    assert websub.backoff(3) == timedelta(minutes=8)
    assert websub.backoff(30) == timedelta(hours=6)
    assert websub.backoff(0, timedelta(seconds=120)) == timedelta(seconds=120)
    assert websub.retry_after("120") == timedelta(seconds=120)
    assert websub.retry_after("soon") is None


def test_unfollowing_unsubscribes_and_later_notifications_are_ignored(alice, make_channel, hub):
    channel, sub = followed(alice, make_channel, hub)
    Follow.stop(alice, channel)
    assert sub_of(channel).state == "unsubscribed"
    assert websub.send_request(sub.pk) == "unsubscribe accepted"
    assert hub.requests[-1].mode == "unsubscribe"
    wait_for(lambda: not hub.verified(sub.topic), timeout=10)
    assert hub.verifications[-1].confirmed

    body = upload_body(channel.youtube_id, "late0000001", "Too late")
    status = hub.deliver(sub.callback_url, body, sign(sub.secret, body))
    assert status == 202 and WebSubNotification.objects.count() == 0


def test_a_notification_for_a_channel_nobody_follows_ends_its_subscription(
    alice, make_channel, hub
):
    channel, sub = followed(alice, make_channel, hub)
    Follow.objects.filter(channel=channel).delete()  # as when alice's account is deleted
    body = upload_body(channel.youtube_id, "orphan00001", "Nobody watches")
    assert hub.publish(sub.topic, body) == [202]
    assert handle_stored() == ["ignored: nobody follows the channel"]
    assert not Video.objects.filter(youtube_id="orphan00001").exists()
    assert sub_of(channel).state == "unsubscribed"
    websub.send_request(sub.pk)  # the worker's task, queued by the ending
    wait_for(lambda: not hub.verified(sub.topic), timeout=10)


def test_a_channel_with_verified_push_is_not_polled_until_the_lease_ends(
    alice, make_channel, hub, fake_youtube
):
    fake = fake_youtube.add_channel("pushed", videos=2)
    channel = make_channel(alice, videos=0, youtube_id=fake.channel_id)
    Follow.start(alice, channel)
    websub.send_request(sub_of(channel).pk)
    wait_for(lambda: sub_of(channel).state == "verified", timeout=10)
    now = timezone.now() + timedelta(minutes=20)  # every poll is due by then

    assert following.poll_due(now)["polled"] == 0
    assert fake_youtube.count("feed") == 0
    WebSubSubscription.objects.filter(channel=channel).update(
        lease_expires=now - timedelta(seconds=1)
    )
    assert following.poll_due(now)["polled"] == 1
    assert fake_youtube.count("feed") == 1


def test_without_a_public_url_nothing_is_subscribed(alice, make_channel, settings):
    settings.CHIRP_PUBLIC_URL = None
    channel = make_channel(alice)
    Follow.start(alice, channel)
    assert not WebSubSubscription.objects.exists()
    assert websub.run_due()["sent"] == 0


def test_push_turned_on_later_subscribes_the_watched_channels(alice, make_channel, hub, settings):
    public = settings.CHIRP_PUBLIC_URL
    settings.CHIRP_PUBLIC_URL = None
    channel = make_channel(alice)
    Follow.start(alice, channel)
    assert not WebSubSubscription.objects.exists()
    settings.CHIRP_PUBLIC_URL = public
    assert websub.run_due()["sent"] == 1
    assert hub.requests[0].topic == topic_for(channel.youtube_id)
    wait_for(lambda: sub_of(channel).state == "verified", timeout=10)


def test_handling_a_pushed_edit_takes_a_fixed_few_statements(alice, bob, make_channel, settings):
    settings.CHIRP_PUBLIC_URL, settings.CHIRP_WEBSUB_HUB = (
        "http://127.0.0.1:9",
        "http://127.0.0.1:9/",
    )
    channel = make_channel(alice, videos=3)
    for user in (alice, bob):
        Follow.start(user, channel)
    video = channel.videos.order_by("pk").first()
    body = upload_body(channel.youtube_id, video.youtube_id, "Edited on YouTube")
    notification = WebSubNotification.store(sub_of(channel).pk, body, timezone.now())

    with CaptureQueriesContext(connection) as queries:
        assert websub.process_notification(notification) == "0 new, 1 refreshed, 0 removed"

    video.refresh_from_db()
    assert video.title == "Edited on YouTube"
    # Claimed, the channel's follows read, the video updated and read for its card with who
    # may see it, the check recorded, marked done: Chirp's own statements (the live events'
    # are the store's, one per follower without Redis). A notification names a video or two:
    # nothing is read for the gap a whole feed of new videos could leave.
    own = [q["sql"] for q in queries if "imports_" in q["sql"]]
    assert len(own) <= 13, "\n".join(sql[:120] for sql in own)
