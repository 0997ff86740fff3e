"""The hub's notifications through the real web server (uvicorn on chirp.asgi:application),
answered in front of Django (imports/websub.py `CallbackRoute`): what the hub sees, what is
stored, and that an unknown token or an oversized body is refused without waiting for the
rest of the body."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from imports import websub
from imports.models import Follow, Video, WebSubNotification, WebSubSubscription
from tests.conftest import database_handles, start_web_server, wait_for
from tests.imports.fake_hub import sign, upload_body

pytestmark = pytest.mark.django_db(transaction=True)

MAX_PER_MINUTE = 3


@pytest.fixture
def server(transactional_db, tmp_path, settings):
    server = start_web_server(tmp_path, CHIRP_WEBSUB_MAX_PER_MINUTE=str(MAX_PER_MINUTE))
    settings.CHIRP_PUBLIC_URL = server.url
    settings.CHIRP_WEBSUB_HUB = "http://127.0.0.1:9/hub"  # never asked here
    yield server
    server.process.terminate(10)


@pytest.fixture
def subscribed(alice, make_channel, server):
    """A channel alice follows, with its subscription (verified) and the callback's URL."""
    channel = make_channel(alice, videos=1)
    Follow.start(alice, channel)
    WebSubSubscription.objects.filter(channel=channel).update(state="verified")
    sub = WebSubSubscription.objects.get(channel=channel)
    return channel, sub, f"{server.url}/websub/{sub.token}/"


def deliver(url: str, body: bytes, signature: str | None) -> requests.Response:
    headers = {"Content-Type": "application/atom+xml"}
    if signature is not None:
        headers["X-Hub-Signature"] = signature
    return requests.post(url, data=body, headers=headers, timeout=10)


def raw_answer(url: str, head: str, body_part: bytes) -> bytes:
    """Send a request's head and only part of its body, then read the answer (without
    sending the rest): b"" when none came within 5 s."""
    host, port = url.removeprefix("http://").split("/", 1)[0].split(":")
    path = "/" + url.removeprefix("http://").split("/", 1)[1]
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{head}\r\n".encode())
        sock.sendall(body_part)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return answer


def test_a_notification_is_answered_202_stored_and_handled(subscribed):
    channel, sub, url = subscribed
    body = upload_body(channel.youtube_id, "route000001", "Through the route")
    answer = deliver(url, body, sign(sub.secret, body))
    assert answer.status_code == 202
    # Plain text that loads nothing, whatever a browser makes of it.
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Content-Security-Policy"] == "default-src 'none'"
    assert "Set-Cookie" not in answer.headers

    stored = WebSubNotification.objects.get()
    assert bytes(stored.body) == body
    assert websub.process_notification(stored.pk) == "1 new, 0 refreshed, 0 removed"
    assert Video.objects.get(youtube_id="route000001").title == "Through the route"


def test_bad_signatures_are_acknowledged_and_ignored(subscribed, server):
    channel, sub, url = subscribed
    body = upload_body(channel.youtube_id, "forged00003", "Forged")
    assert deliver(url, body, sign("not-the-secret", body)).status_code == 202
    assert deliver(url, body, None).status_code == 202
    assert WebSubNotification.objects.count() == 0
    assert "with a bad or missing signature was ignored" in server.process.output()
    # Not counted either: the hub's own still have the minute's whole allowance.
    statuses = [deliver(url, body, sign(sub.secret, body)).status_code for _ in range(3)]
    assert statuses == [202] * MAX_PER_MINUTE


def test_over_the_limit_is_answered_429_with_retry_after(subscribed):
    channel, sub, url = subscribed
    body = upload_body(channel.youtube_id, "flood000002", "Flood")
    answers = [deliver(url, body, sign(sub.secret, body)) for _ in range(MAX_PER_MINUTE + 1)]
    assert [a.status_code for a in answers] == [202] * MAX_PER_MINUTE + [429]
    assert answers[-1].headers["Retry-After"] == "60"
    assert WebSubNotification.objects.count() == MAX_PER_MINUTE
    WebSubSubscription.objects.filter(pk=sub.pk).update(
        window_start=timezone.now() - timedelta(seconds=61)
    )
    assert deliver(url, body, sign(sub.secret, body)).status_code == 202


def test_an_unknown_token_is_refused_404_before_the_body_is_sent(alice, subscribed, server):
    channel, sub, url = subscribed
    unknown = f"{server.url}/websub/{'x' * 43}/"
    body = upload_body(channel.youtube_id, "unknown0001", "Unknown")
    assert deliver(unknown, body, sign(sub.secret, body)).status_code == 404
    # A large body announced, a few bytes sent: answered from the head, at once.
    answer = raw_answer(unknown, "Content-Length: 900000\r\n", b"<feed>")
    assert answer.startswith(b"HTTP/1.1 404 ")
    # A replaced token is unknown too, though it worked a moment ago.
    assert deliver(url, body, sign(sub.secret, body)).status_code == 202
    Follow.stop(alice, channel)  # and followed again: a new token
    Follow.start(alice, channel)
    assert deliver(url, body, sign(sub.secret, body)).status_code == 404
    assert WebSubNotification.objects.count() == 1


def test_an_oversized_body_is_refused_413_without_reading_it_all(subscribed, settings):
    _channel, sub, url = subscribed
    cap = settings.CHIRP_WEBSUB_MAX_BODY_BYTES
    big = b"<feed>" + b" " * cap + b"</feed>"
    assert deliver(url, big, sign(sub.secret, big)).status_code == 413
    # Announced too large: refused from the head.
    answer = raw_answer(url, f"Content-Length: {cap + 1}\r\n", b"<feed>")
    assert answer.startswith(b"HTTP/1.1 413 ")
    # Chunked, with no length: refused once past the cap, the rest never waited for.
    chunks = [b" " * (cap // 4)] * 4 + [b" " * 100]
    part = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks)
    answer = raw_answer(url, "Transfer-Encoding: chunked\r\n", part)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert WebSubNotification.objects.count() == 0


def test_a_host_django_would_refuse_is_refused(subscribed):
    channel, sub, url = subscribed
    body = upload_body(channel.youtube_id, "badhost0001", "Bad host")
    answer = requests.post(
        url,
        data=body,
        headers={"Host": "evil.example", "X-Hub-Signature": sign(sub.secret, body)},
        timeout=10,
    )
    assert answer.status_code == 400
    assert WebSubNotification.objects.count() == 0


def test_the_callbacks_database_connections_are_opened_once_and_kept(subscribed, server):
    channel, sub, url = subscribed
    before = database_handles(server)  # the web server's, before any notification
    body = upload_body(channel.youtube_id, "route000009", "First")
    assert deliver(url, body, sign(sub.secret, body)).status_code == 202
    # The first one opens every store thread's connection, at once.
    wait_for(lambda: database_handles(server) == before + websub.STORE_THREADS, timeout=10)

    # A burst, answered (429 past the minute's allowance) without one connection more.
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: deliver(url, body, sign(sub.secret, body)), range(40)))
    assert {answer.status_code for answer in statuses} == {202, 429}
    assert database_handles(server) == before + websub.STORE_THREADS
