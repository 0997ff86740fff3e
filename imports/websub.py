"""Push (WebSub): subscribing each watched channel at the hub, and handling what it delivers.

- When a channel becomes watched (and CHIRP_PUBLIC_URL is set), the worker asks the hub
  (CHIRP_WEBSUB_HUB) for `hub.mode=subscribe`, form-encoded, `hub.verify=async`, with the
  subscription's callback, secret and lease. The hub then verifies with a GET to the callback
  (imports/views.py `websub_callback`, `WebSubSubscription.verify`), and renewal comes at about
  80 % of the granted lease. A hub answering 5xx or 429 (or not at all) is asked again later,
  after a backoff that doubles and is never shorter than its `Retry-After`; the request goes
  from the worker's periodic task, so no worker sleeps waiting for the hub. The hub is not
  YouTube: its requests do not go through the YouTube limiter.
- When the last follower leaves, the hub is told `hub.mode=unsubscribe`.
- A notification (stored raw by the callback view) is handled here, in the worker: parsed
  with defusedxml (no DTD, so no entity and no external reference), its entries handed to
  `following.handle_entries` as a poll's are, its tombstones
  (`<at:deleted-entry ref="yt:video:ID">`) marking the video removed on YouTube. Handling it
  twice changes nothing the second time.
"""

from __future__ import annotations

import asyncio
import email.utils
import enum
import hashlib
import hmac
import logging
import re
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import requests
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from imports.feeds import FeedEntry, FeedError, entries_in, parse_xml
from imports.models import (
    Channel,
    ChannelWatch,
    CheckMethod,
    Follow,
    Video,
    WebSubNotification,
    WebSubSubscription,
)
from imports.models.websub import push_enabled

logger = logging.getLogger(__name__)
T = TypeVar("T")

TOMBSTONE_NS = {
    "at": "http://purl.org/atompub/tombstones/1.0",
    "atom": "http://www.w3.org/2005/Atom",
}
# Backoff of a failed request to the hub: a minute, doubling, at most six hours.
FIRST_BACKOFF = timedelta(minutes=1)
MAX_BACKOFF = timedelta(hours=6)
# A notification still unhandled this long after it came (its task was lost with a killed
# worker) is handled by the periodic task; one that failed this often is given up.
STALE_AFTER = timedelta(seconds=30)
MAX_ATTEMPTS = 5
KEEP_PROCESSED = timedelta(days=7)


# -- subscribing -----------------------------------------------------------------------------


def subscribe_on_commit(channel: Channel) -> None:
    """The channel is watched: its subscription, asked for by the worker once this commits."""
    sub = WebSubSubscription.want(channel)
    if sub is not None and sub.next_try is not None and sub.next_try <= timezone.now():
        transaction.on_commit(lambda: _enqueue_request(sub.pk))


def unsubscribe_on_commit(channel: Channel) -> None:
    sub = WebSubSubscription.end(channel)
    if sub is not None and push_enabled():
        transaction.on_commit(lambda: _enqueue_request(sub.pk))


def _enqueue_request(subscription_id: int) -> None:
    from django_q.tasks import async_task

    async_task("imports.tasks.send_websub_request", subscription_id, task_name="websub request")


@dataclass(frozen=True)
class HubAnswer:
    accepted: bool
    error: str = ""
    retry_after: timedelta | None = None


def hub_session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = settings.CHIRP_FETCH_USER_AGENT
    return session


def send_request(subscription_id: int, session: requests.Session | None = None) -> str:
    """Send the subscription's due request to the hub (subscribe, or unsubscribe when it has
    ended) and record the answer. Returns what happened, for the task's result."""
    sub = WebSubSubscription.objects.select_related("channel").filter(pk=subscription_id).first()
    if sub is None or not push_enabled():
        return "nothing to send"
    mode = "unsubscribe" if sub.state == WebSubSubscription.State.UNSUBSCRIBED else "subscribe"
    now = timezone.now()
    if mode == "subscribe":
        sub.mark_requested(now)  # before the hub can verify it
    answer = _post(sub, mode, session)
    if answer.accepted:
        if mode == "subscribe":
            sub.mark_accepted()
        logger.info("The hub accepted the %s of %s", mode, sub.channel.youtube_id)
        return f"{mode} accepted"
    logger.warning("The hub refused the %s of %s: %s", mode, sub.channel.youtube_id, answer.error)
    if mode == "subscribe":
        sub.mark_failed(answer.error, backoff(sub.attempts, answer.retry_after), now)
    return f"{mode} refused: {answer.error}"


def _post(sub: WebSubSubscription, mode: str, session: requests.Session | None) -> HubAnswer:
    form = {
        "hub.mode": mode,
        "hub.topic": sub.topic,
        "hub.callback": sub.callback_url,
        "hub.verify": "async",
    }
    if mode == "subscribe":
        form["hub.lease_seconds"] = str(settings.CHIRP_WEBSUB_LEASE_SECONDS)
        form["hub.secret"] = sub.secret
    timeout = settings.CHIRP_WEBSUB_TIMEOUT
    try:
        with session or hub_session() as http:
            response = http.post(
                settings.CHIRP_WEBSUB_HUB,
                data=form,
                timeout=(min(timeout, 10.0), timeout),
                allow_redirects=False,
            )
    except requests.RequestException as exc:
        return HubAnswer(False, f"The hub could not be reached: {exc.__class__.__name__}")
    if 200 <= response.status_code < 300:
        return HubAnswer(True)
    text = " ".join(response.text[:300].split())
    return HubAnswer(
        False,
        f"The hub answered HTTP {response.status_code}" + (f": {text}" if text else ""),
        retry_after(response.headers.get("Retry-After")),
    )


def retry_after(value: str | None) -> timedelta | None:
    """A Retry-After header, in seconds or as an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when - timezone.now(), timedelta(0))


def backoff(failures: int, asked: timedelta | None = None) -> timedelta:
    """How long to wait after `failures` failed requests in a row (0: the first failure)."""
    wait = min(FIRST_BACKOFF * (2 ** min(failures, 20)), MAX_BACKOFF)
    return max(wait, asked or timedelta(0))


# -- notifications ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Tombstone:
    video_id: str
    channel_id: str  # from <at:by><uri>, "" when absent
    when: datetime | None


@dataclass(frozen=True)
class Notification:
    entries: list[FeedEntry]
    deleted: list[Tombstone]


def parse_notification(body: bytes) -> Notification:
    """The entries and tombstones of a notification. FeedError when the body is not XML, or
    holds a DTD (an entity bomb, an external reference)."""
    root = parse_xml(body)
    deleted = []
    for node in root.findall("at:deleted-entry", TOMBSTONE_NS):
        ref = node.get("ref", "")
        if not ref.startswith("yt:video:"):
            continue
        uri = (node.findtext("at:by/atom:uri", "", TOMBSTONE_NS) or "").strip()
        channel_id = uri.rsplit("/", 1)[-1] if "/channel/" in uri else ""
        deleted.append(
            Tombstone(ref.removeprefix("yt:video:"), channel_id, _date(node.get("when")))
        )
    return Notification(entries_in(root), deleted)


def _date(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text.strip()) if text else None
    except ValueError:
        return None


def process_notification(notification_id: int) -> str:
    """Handle one stored notification (the worker's task). Handling it again, after a
    worker died mid-way or the hub delivered it twice, changes nothing."""
    from imports import following

    notification = (
        WebSubNotification.objects.select_related("subscription__channel")
        .filter(pk=notification_id, processed__isnull=True)
        .first()
    )
    if notification is None or not notification.claim():
        return "already handled"
    sub = notification.subscription
    channel = sub.channel
    if not Follow.objects.filter(channel=channel).exists():
        # Nobody follows it any more (their accounts were deleted, say): ignored, and the
        # subscription ended.
        with transaction.atomic():
            ChannelWatch.end(channel)  # which ends the subscription too
        notification.done("Nobody follows this channel: ignored, subscription ended.")
        return "ignored: nobody follows the channel"
    try:
        parsed = parse_notification(bytes(notification.body))
    except FeedError as exc:
        logger.warning("Notification %s for %s refused: %s", notification.pk, channel, exc)
        notification.done(str(exc))
        return "refused"
    try:
        outcome = following.handle_entries(channel, parsed.entries, CheckMethod.PUSH)
        removed = mark_removed(channel, parsed.deleted)
    except Exception as exc:
        # Left unprocessed: the periodic task tries it again (at most MAX_ATTEMPTS times).
        logger.exception("Notification %s for %s failed", notification.pk, channel)
        WebSubNotification.objects.filter(pk=notification.pk).update(
            error=f"{exc.__class__.__name__}: {exc}"[:2000]
        )
        raise
    following.record_check(channel, CheckMethod.PUSH)
    notification.done()
    return f"{len(outcome.created)} new, {outcome.refreshed} refreshed, {removed} removed"


def mark_removed(channel: Channel, tombstones: list[Tombstone]) -> int:
    """The channel's videos YouTube deleted: kept, marked with the time (once)."""
    removed = 0
    for tombstone in tombstones:
        if tombstone.channel_id and tombstone.channel_id != channel.youtube_id:
            continue
        when = tombstone.when or timezone.now()
        with transaction.atomic():
            updated = Video.objects.filter(
                channel=channel, youtube_id=tombstone.video_id, removed_at__isnull=True
            ).update(removed_at=when, updated=timezone.now())
            if updated:
                video = Video.objects.for_cards().get(youtube_id=tombstone.video_id)
                viewers = list(Channel.viewer_ids(channel.pk))
                transaction.on_commit(lambda v=video, ids=viewers: v.publish_to(*ids))
        removed += updated
    return removed


def enqueue_processing(notification_id: int) -> None:
    from django_q.tasks import async_task

    async_task(
        "imports.tasks.process_websub_notification",
        notification_id,
        task_name="websub notification",
        # The notification's row says it was handled (or why not): no Success row besides it
        # (with its pruning), a write less per notification.
        save=False,
    )


# -- the periodic task -----------------------------------------------------------------------


def run_due(now: datetime | None = None, session: requests.Session | None = None) -> dict:
    """Every minute: subscribe the watched channels that have no subscription yet (push was
    just turned on), send the requests whose time has come (first tries, retries,
    renewals), end the subscriptions of channels nobody watches, and handle the
    notifications whose task was lost."""
    now = now or timezone.now()
    sent = ended = 0
    if push_enabled():
        for watch in ChannelWatch.objects.filter(channel__websub__isnull=True).select_related(
            "channel"
        ):
            WebSubSubscription.want(watch.channel, now)
        orphans = WebSubSubscription.objects.exclude(
            state=WebSubSubscription.State.UNSUBSCRIBED
        ).filter(channel__watch__isnull=True)
        for sub in orphans.select_related("channel"):
            if WebSubSubscription.end(sub.channel):
                send_request(sub.pk, session)
                ended += 1
        due = (
            WebSubSubscription.objects.filter(next_try__lte=now)
            .exclude(state=WebSubSubscription.State.UNSUBSCRIBED)
            .order_by("next_try")
        )
        for sub_id, next_try in due.values_list("pk", "next_try"):
            # Claimed first, so two workers never send one request twice.
            if WebSubSubscription.objects.filter(pk=sub_id, next_try=next_try).update(
                next_try=now + timedelta(minutes=5)
            ):
                send_request(sub_id, session)
                sent += 1
    handled = 0
    stale = WebSubNotification.objects.filter(
        processed__isnull=True, received__lte=now - STALE_AFTER, attempts__lt=MAX_ATTEMPTS
    ).order_by("received")
    for notification_id in stale.values_list("pk", flat=True)[:500]:
        try:
            process_notification(notification_id)
        except Exception:  # logged there; the next run tries again
            logger.info("Notification %s is left for the next run", notification_id)
        else:
            handled += 1
    WebSubNotification.objects.filter(
        processed__isnull=False, received__lte=now - KEEP_PROCESSED
    ).delete()
    return {"sent": sent, "ended": ended, "handled": handled}


# -- the callback ------------------------------------------------------------------------------
#
# The hub's requests are answered by an asynchronous view (imports/views.py `websub_callback`);
# its database work runs in STORE_THREADS long-lived threads of the web process, each keeping
# its connection from one request to the next. (Django runs a synchronous view under ASGI in a
# new thread per request, whose connection is opened and closed with the request: a connection
# per notification, as many at once as notifications in flight.) From its first notification
# on, a web process so holds STORE_THREADS connections for push, however many arrive.

STORE_THREADS = 4
_store = ThreadPoolExecutor(STORE_THREADS, thread_name_prefix="websub-store")
# Subscriptions by token, as the callback last found them. Only what never changes is kept
# (a token and its secret are made together and replaced together); whether the subscription
# still exists, has ended or has room under its limit is read in the statement that counts
# each notification.
_subscribers: dict[str, Subscriber] = {}
MAX_SUBSCRIBERS_KEPT = 10_000


@dataclass(frozen=True)
class Subscriber:
    pk: int
    token: str
    secret: str
    channel_id: str  # YouTube's, for the log


class Taken(enum.Enum):
    STORED = "stored"
    LIMITED = "limited"  # over the per-minute limit: answered 429
    ENDED = "ended"  # nobody follows the channel any more: acknowledged, ignored
    GONE = "gone"  # no such subscription any more (its token was replaced): 404


_warmed = False


async def in_store_thread(func: Callable[..., T], *args: Any) -> T:
    """Run `func(*args)` in one of the callback's store threads (it may use the database).
    The first call opens every store thread's connection: from then on the process holds
    the same STORE_THREADS connections for push, none opened while a burst is answered."""
    global _warmed
    if not _warmed:
        _warmed = True
        _on_every_store_thread(_connect)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_store, _with_usable_connection, func, args)


def _connect() -> None:
    try:
        connection.ensure_connection()
    except Exception:  # the next notification tries again, and is answered 500 if it fails
        logger.exception("A WebSub store thread could not connect to the database")


def _on_every_store_thread(func: Callable[[], None]) -> list:
    """Run `func` once in each store thread (each waits for the others, so no thread runs
    two); the futures, to wait for or not."""
    barrier = threading.Barrier(STORE_THREADS)

    def run() -> None:
        try:
            func()
        finally:
            barrier.wait(timeout=30)

    return [_store.submit(run) for _ in range(STORE_THREADS)]


def _with_usable_connection(func: Callable[..., T], args: tuple) -> T:
    # What Django does at the start of each request (close_old_connections) for a connection
    # that failed: keep it if it still works, else drop it (the next query opens a new one).
    # Its age does not matter: a store thread's connection is meant to last.
    if connection.connection is not None and connection.errors_occurred:
        if connection.is_usable():
            connection.errors_occurred = False
        else:
            connection.close()
    return func(*args)


def close_store_connections() -> None:
    """Close the store threads' connections (tests: before their database is dropped)."""
    global _warmed
    for future in _on_every_store_thread(lambda: connection.close()):  # each thread's own
        future.result()
    _warmed = False


def cached_subscriber(token: str) -> Subscriber | None:
    return _subscribers.get(token)


def load_subscriber(token: str) -> Subscriber | None:
    """The subscription with this token (None: no such token), kept for the next requests."""
    row = (
        WebSubSubscription.objects.filter(token=token)
        .values_list("pk", "secret", "channel__youtube_id")
        .first()
    )
    if row is None:
        return None
    if len(_subscribers) >= MAX_SUBSCRIBERS_KEPT:
        _subscribers.clear()
    subscriber = _subscribers[token] = Subscriber(row[0], token, row[1], row[2])
    return subscriber


def forget_subscriber(token: str) -> None:
    _subscribers.pop(token, None)


def signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """`X-Hub-Signature: sha1=<hex HMAC-SHA1 of the raw body>`, compared in constant time
    (Google's hub signs with SHA-1 only)."""
    method, _, digest = (header or "").partition("=")
    if method.strip().lower() != "sha1" or not digest:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    return hmac.compare_digest(expected, digest.strip().lower())


def take_notification(subscriber: Subscriber, body: bytes) -> Taken:
    """Count a signed notification against its subscription's limit, keep its body and queue
    its handling by id, in one transaction: the queue is in the database (django-q2's ORM
    broker), so the worker sees the notification and its task, or neither. Usually three
    statements and one commit; the reason is only looked up when the notification is not
    taken."""
    now = timezone.now()
    with transaction.atomic():
        if WebSubSubscription.take_notification(subscriber.pk, subscriber.token, now):
            # (django-q2's broker reuses this transaction: in autocommit it would close the
            # store thread's connection first, as a request's own would be.)
            enqueue_processing(WebSubNotification.store(subscriber.pk, body, now))
            return Taken.STORED
    state = (
        WebSubSubscription.objects.filter(pk=subscriber.pk, token=subscriber.token)
        .values_list("state", flat=True)
        .first()
    )
    if state is None:
        return Taken.GONE
    return Taken.ENDED if state == WebSubSubscription.State.UNSUBSCRIBED else Taken.LIMITED


# -- answering a notification -----------------------------------------------------------------
#
# One implementation for both ways a notification comes in: the ASGI route below, which answers
# the hub's POSTs in front of Django in the web server, and the Django view (imports/views.py
# `websub_callback`, for the test client and any server that mounts Django alone).


class ClientGone(Exception):
    """The hub went away before its body was read: nothing to answer."""


@dataclass(frozen=True)
class Answer:
    status: int
    text: str = ""
    retry_after: int | None = None

    @property
    def headers(self) -> list[tuple[str, str]]:
        headers = [("Content-Type", "text/plain; charset=utf-8")]
        if self.retry_after is not None:
            headers.append(("Retry-After", str(self.retry_after)))
        return headers


ACCEPTED = Answer(202)
NOT_FOUND = Answer(404, "No such subscription.")
TOO_LARGE = Answer(413, "Too large.")
TOO_MANY = Answer(429, "Too many notifications.", retry_after=60)


async def answer_notification(
    token: str,
    declared_length: str | None,
    read_body: Callable[[int], Awaitable[bytes]],
    signature: str | None,
) -> Answer:
    """The answer to a notification POSTed to `/websub/<token>/`: 404 for an unknown token
    (before a byte of the body is read), 413 for a body over CHIRP_WEBSUB_MAX_BODY_BYTES (from
    its declared length, else as soon as more is read), 202 when a bad or missing signature
    makes it ignored (the spec: the sender must not learn it was refused; nothing is stored or
    counted), 429 over the subscription's per-minute limit, else 202 once it is stored and
    queued (`take_notification`). `read_body(n)` reads at most n bytes of the body."""
    sub = cached_subscriber(token) or await in_store_thread(load_subscriber, token)
    if sub is None:
        return NOT_FOUND
    cap = settings.CHIRP_WEBSUB_MAX_BODY_BYTES
    if declared_length is not None and (
        not declared_length.isdigit() or int(declared_length) > cap
    ):
        return TOO_LARGE
    body = await read_body(cap + 1)
    if len(body) > cap:
        return TOO_LARGE
    if not signature_ok(sub.secret, body, signature):
        logger.warning(
            "A notification for %s with a bad or missing signature was ignored", sub.channel_id
        )
        return ACCEPTED
    taken = await in_store_thread(take_notification, sub, body)
    if taken is Taken.GONE:
        forget_subscriber(token)
        return NOT_FOUND
    if taken is Taken.ENDED:
        logger.info("A notification for the ended subscription of %s was ignored", sub.channel_id)
    elif taken is Taken.LIMITED:
        logger.warning("Too many notifications for %s: answered 429", sub.channel_id)
        return TOO_MANY
    return ACCEPTED


CALLBACK_PATH = re.compile(r"/websub/([^/]+)/")
# Django's security middleware would add these; the answers are plain text and load nothing.
ROUTE_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", b"default-src 'none'"),
    (b"referrer-policy", b"same-origin"),
]


class CallbackRoute:
    """ASGI: the hub's notifications (`POST /websub/<token>/`) answered in front of Django;
    everything else, the hub's verifications (GET) included, goes to `app`.

    Django would run about a dozen synchronous middlewares for each of them, each a hop to a
    thread and back (under ASGI it runs synchronous code in a thread of the request's own),
    after reading the whole body: that was about 40 % of the web process's CPU time per
    notification. None of them is needed here: the path needs no session, no sign-in and no
    CSRF token (the token and the signature stand for them), and its answers are plain text.
    The host is still checked against ALLOWED_HOSTS, as Django would; an http request is not
    redirected to https (SECURE_SSL_REDIRECT), which a hub's POST could not follow anyway."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path = scope["path"].removeprefix(scope.get("root_path", ""))
            if match := CALLBACK_PATH.fullmatch(path):
                await self.notification(scope, receive, send, match[1])
                return
        await self.app(scope, receive, send)

    async def notification(self, scope: dict, receive: Any, send: Any, token: str) -> None:
        headers: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name, value)
        if not _host_allowed(scope, headers):
            await _send(send, Answer(400, "Bad request."))
            return
        complete = False

        async def read_body(limit: int) -> bytes:
            nonlocal complete
            chunks, size = [], 0
            while size < limit:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientGone
                chunk = message.get("body", b"")
                chunks.append(chunk)
                size += len(chunk)
                if not message.get("more_body", False):
                    complete = True
                    break
            return b"".join(chunks)

        length = headers.get(b"content-length")
        signature = headers.get(b"x-hub-signature")
        try:
            answer = await answer_notification(
                token,
                length.decode("latin-1") if length is not None else None,
                read_body,
                signature.decode("latin-1") if signature is not None else None,
            )
        except ClientGone:
            return
        except Exception:
            logger.exception("The notification to %s failed", scope["path"])
            answer = Answer(500, "Server error.")
        # A body left unread (refused from its headers, or over the cap) is dropped with the
        # connection, not read to reuse it.
        await _send(send, answer, close=not complete)


def _host_allowed(scope: dict, headers: dict[bytes, bytes]) -> bool:
    """Django's own check (HttpRequest.get_host: ALLOWED_HOSTS, X-Forwarded-Host when
    USE_X_FORWARDED_HOST), on the request's host headers only."""
    from django.core.exceptions import DisallowedHost
    from django.http import HttpRequest

    request = HttpRequest()
    for name, key in ((b"host", "HTTP_HOST"), (b"x-forwarded-host", "HTTP_X_FORWARDED_HOST")):
        if name in headers:
            request.META[key] = headers[name].decode("latin-1")
    server = scope.get("server") or ("", 80)
    request.META["SERVER_NAME"], request.META["SERVER_PORT"] = server[0], str(server[1])
    try:
        request.get_host()
    except DisallowedHost as exc:
        logging.getLogger("django.security.DisallowedHost").error(str(exc))
        return False
    return True


async def _send(send: Any, answer: Answer, close: bool = False) -> None:
    body = answer.text.encode()
    headers = [(name.lower().encode(), value.encode()) for name, value in answer.headers]
    headers += [*ROUTE_HEADERS, (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def resume_pending() -> int:
    """At a worker's start: queue again every notification not handled yet (a killed worker
    took some with it). Handling one twice changes nothing, so a notification a live worker
    is handling right now may be queued too."""
    pending = WebSubNotification.objects.filter(
        processed__isnull=True, attempts__lt=MAX_ATTEMPTS
    ).values_list("pk", flat=True)
    count = 0
    for notification_id in pending.order_by("received")[:1000]:
        enqueue_processing(notification_id)
        count += 1
    return count
