"""Live updates: each user's event stream, and how events get there from any process.

Events are HTML fragments rendered from the same partials the pages use; htmx's SSE extension
swaps them into elements whose id is the event's name. Every event is stored (so a browser that
reconnects with Last-Event-ID gets what it missed) and then reaches the web processes:

- with REDIS_URL, events are stored in Redis and published to django-eventstream's Redis
  listener in the same call (RedisEvents);
- without it, they are stored in the event table and a relay thread in each web process polls
  it (django-eventstream would otherwise deliver only events sent by the web process itself).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.utils import timezone
from django_eventstream import send_event
from django_eventstream import views as eventstream_views
from django_eventstream.channelmanager import DefaultChannelManager
from django_eventstream.storage import DjangoModelStorage

from chirp.db import redis_client

logger = logging.getLogger(__name__)

Fragments = list[tuple[str, str]]


def user_channel(user_id: int) -> str:
    return f"user-{user_id}"


def publish(user_id: int, fragments: Fragments) -> None:
    """Send fragments to one user's stream now. A failure is logged, never raised: a lost
    live update must not undo the work it reports (a reload shows the truth)."""
    if not fragments:
        return
    channel = user_channel(user_id)
    if settings.REDIS_URL:
        try:
            redis_events().send(channel, fragments)
        except Exception:
            logger.exception("Could not send %d live event(s) to %s", len(fragments), channel)
        return
    for name, html in fragments:
        try:
            send_event(channel, name, html, json_encode=False)
        except Exception:
            logger.exception("Could not send live event %s to %s", name, channel)


def publish_on_commit(
    user_id: int,
    render: Callable[[], Fragments],
    lock: threading.Lock | None = None,
    recheck: Callable[[], Fragments] | None = None,
) -> None:
    """Render and send once the current transaction commits (at once outside one).
    `lock` keeps two senders of the same element in order within this process. Across
    processes nothing does: another process's newer state, committed after this render, can
    be sent before it. `recheck`, called after the send, returns what to send again if the
    state rendered moved meanwhile (nothing if it did not)."""

    def send() -> None:
        with lock or contextlib.nullcontext():
            for make in (render, recheck):
                if make is None:
                    return
                try:
                    fragments = make()
                except Exception:
                    logger.exception("Could not render live fragments for user %s", user_id)
                    return
                publish(user_id, fragments)

    transaction.on_commit(send)


def toast(message: str, level: str = "info", key: str = "") -> tuple[str, str]:
    """A toast; `key` lets the page drop a repeat of the same one (delivery is at least once)."""
    context = {"message": message, "level": level, "key": key}
    return ("toast", render_to_string("includes/toast.html", context))


def json_event(name: str, data: dict) -> tuple[str, str]:
    """An event whose payload is JSON, not HTML: for scripts and API clients that listen to
    the stream (the README's live events, e.g. `video:discovered`); no element swaps it."""
    return (name, json.dumps(data, cls=DjangoJSONEncoder))


class UserChannelManager(DefaultChannelManager):
    """A user reads only their own channel."""

    def can_read_channel(self, user, channel: str) -> bool:
        return bool(user and user.is_authenticated and channel == user_channel(user.pk))


def release_connection() -> None:
    # A stream waits for minutes between reads: holding a connection that long per stream
    # exhausts the database (STACK-NOTES: 100 streams, "too many clients").
    if not connection.in_atomic_block:
        connection.close()


class ConnectionFreeStorage(DjangoModelStorage):
    """The model storage, made cheap enough to send an event per item change:

    - reads give their connection back (an idle stream holds none);
    - an append is one statement on PostgreSQL (bump the channel's counter and insert the row)
      instead of the stock five;
    - the day-old trim runs on one append in 200, not on every one.
    """

    trim_every = 200

    def __init__(self) -> None:
        super().__init__()
        self._appends = 0

    def append_event(self, channel, event_type, data):
        from django_eventstream.event import Event
        from django_eventstream.models import Event as EventRow

        payload = json.dumps(data, cls=DjangoJSONEncoder)
        eid = None
        if connection.vendor == "postgresql":
            eid = self._append_in_one_statement(channel, event_type, payload)
        if eid is None:
            with transaction.atomic():
                eid = self._next_id(channel)
                # eid is set, so Event.save() skips its own (slower) counter logic.
                EventRow(channel=channel, type=event_type, data=payload, eid=eid).save()
        self.trim_event_log()
        return Event(channel, event_type, data, id=eid)

    @staticmethod
    def _append_in_one_statement(channel: str, event_type: str, payload: str) -> int | None:
        """Bump the counter and insert the row in one statement, one round trip in autocommit
        (None: no counter yet). The counter's row lock orders a channel's events, as the stock
        storage's does. In the worker it commits without waiting for the disk (chirp.db)."""
        from django_eventstream.models import Event as EventRow
        from django_eventstream.models import EventCounter

        counters, events = EventCounter._meta.db_table, EventRow._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH c AS (UPDATE {counters} SET value = value + 1, updated = now() "  # noqa: S608
                f"WHERE name = %s RETURNING value) "
                f"INSERT INTO {events} (channel, type, data, eid, created) "
                f"SELECT %s, %s, %s, value, now() FROM c RETURNING eid",
                [channel, channel, event_type, payload],
            )
            row = cursor.fetchone()
        return row[0] if row else None

    @staticmethod
    def _next_id(channel: str) -> int:
        from django_eventstream.models import Event as EventRow
        from django_eventstream.models import EventCounter

        counter = EventCounter.objects.filter(name=channel)
        if not counter.update(value=F("value") + 1, updated=timezone.now()):
            try:
                with transaction.atomic():
                    EventCounter.objects.create(name=channel, value=1)
                    # the stock storage's placeholder row, so replay from id 0 works
                    EventRow.objects.bulk_create([EventRow(channel=channel, eid=0)])
                return 1
            except IntegrityError:  # another process created it first
                counter.update(value=F("value") + 1, updated=timezone.now())
        return counter.values_list("value", flat=True).get()

    def get_events(self, channel, last_id, limit=100):
        try:
            return super().get_events(channel, last_id, limit=limit)
        finally:
            release_connection()

    def get_current_id(self, channel):
        try:
            return super().get_current_id(channel)
        finally:
            release_connection()

    def trim_event_log(self) -> None:
        self._appends += 1
        if self._appends % self.trim_every == 1:
            super().trim_event_log()


_SEND = """
local seq, log, keep, ttl = KEYS[1], KEYS[2], tonumber(ARGV[2]), tonumber(ARGV[3])
local last = 0
for i = 5, #ARGV, 2 do
  last = redis.call('INCR', seq)
  redis.call('ZADD', log, last, cjson.encode({last, ARGV[i], ARGV[i + 1]}))
  if ARGV[4] == '1' then
    redis.call('PUBLISH', 'events_channel', cjson.encode({
      channel = ARGV[1], event_type = ARGV[i], data = ARGV[i + 1], pub_id = tostring(last)}))
  end
end
redis.call('ZREMRANGEBYRANK', log, 0, -keep - 1)
redis.call('EXPIRE', log, ttl)
return last
"""


class RedisEvents:
    """Events kept in Redis when REDIS_URL is set: one Lua call numbers a user's new events,
    keeps them for replay and publishes them to every web process (django-eventstream's Redis
    listener reads `events_channel`). One round trip per batch, and the database is not
    touched at all: live updates cost the worker no connection, no commit.

    Each channel keeps its newest CHIRP_LIVE_EVENTS_KEPT events for a day after its last one; a
    browser that missed more gets a `stream-reset` event (django-eventstream's EventDoesNotExist)
    and reloads the page (static/chirp.js). The counter never expires, so ids only grow.
    """

    ttl = 24 * 3600

    def __init__(self, url: str) -> None:
        self.client = redis_client(url)
        self.prefix = settings.CHIRP_REDIS_PREFIX
        self._send = self.client.register_script(_SEND)

    def _keys(self, channel: str) -> tuple[str, str]:
        return f"{self.prefix}:events:{channel}:seq", f"{self.prefix}:events:{channel}"

    def send(self, channel: str, fragments: Fragments, *, publish: bool = True) -> int:
        """Store fragments (name, html) in order and publish them; the last id."""
        keep = settings.CHIRP_LIVE_EVENTS_KEPT
        args: list[str | int] = [channel, keep, self.ttl, int(publish)]
        for name, html in fragments:
            args += [name, html]
        return int(self._send(keys=list(self._keys(channel)), args=args))

    def get_current_id(self, channel: str) -> int:
        return int(self.client.get(self._keys(channel)[0]) or 0)

    def get_events(self, channel: str, last_id: int, limit: int = 100) -> list:
        from django_eventstream.event import Event
        from django_eventstream.storage import EventDoesNotExist

        current = self.get_current_id(channel)
        if last_id == current:
            return []
        rows = self.client.zrangebyscore(self._keys(channel)[1], f"({last_id}", "+inf", 0, limit)
        events = [json.loads(row) for row in rows]
        # Ids are consecutive: anything but last_id + 1 first means the gap was trimmed away.
        if last_id > current or not events or events[0][0] != last_id + 1:
            raise EventDoesNotExist(f"No such event {last_id}", current)
        return [Event(channel, kind, data, id=eid) for eid, kind, data in events]

    def forget(self) -> None:
        """Drop every stored event (the tests' clean slate)."""
        for key in self.client.scan_iter(f"{self.prefix}:events:*", count=1000):
            self.client.delete(key)


def redis_events() -> RedisEvents:
    return _redis_events(settings.REDIS_URL)


@functools.cache
def _redis_events(url: str) -> RedisEvents:
    return RedisEvents(url)


class EventStorage(ConnectionFreeStorage):
    """django-eventstream's storage: Redis when REDIS_URL is set (see RedisEvents), else the
    event table (ConnectionFreeStorage, delivered across processes by the relay)."""

    def append_event(self, channel, event_type, data):
        if settings.REDIS_URL:
            from django_eventstream.event import Event

            # send_event() publishes it itself.
            eid = redis_events().send(channel, [(event_type, data)], publish=False)
            return Event(channel, event_type, data, id=eid)
        return super().append_event(channel, event_type, data)

    # Reads give back the connection the stream's login check took (see release_connection).

    def get_events(self, channel, last_id, limit=100):
        if settings.REDIS_URL:
            release_connection()
            return redis_events().get_events(channel, last_id, limit)
        return super().get_events(channel, last_id, limit=limit)

    def get_current_id(self, channel):
        if settings.REDIS_URL:
            release_connection()
            return redis_events().get_current_id(channel)
        return super().get_current_id(channel)


class EventRelay:
    """Polls the event table and hands new events to this process's waiting streams.

    Ids are allocated at insert but become visible at commit, so a lower id can appear after a
    higher one: the relay keeps a short window of recent rows and remembers what it delivered.
    """

    window_seconds = 5.0
    page = 1000

    def __init__(self, deliver: Callable[[str, object], None], interval: float) -> None:
        self.deliver = deliver
        self.interval = interval
        self.floor = 0
        self.seen: set[int] = set()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self._ready = threading.Event()

    def start(self) -> None:
        """Start polling from the newest row. May be called from the event loop: the database
        is only touched in the relay's own thread (this waits for its first read, once)."""
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="chirp-event-relay", daemon=True)
            self._thread.start()
        self._ready.wait(timeout=10)

    def _begin(self) -> None:
        from django.db.models import Max
        from django_eventstream.models import Event as EventRow

        try:
            self.floor = EventRow.objects.aggregate(m=Max("id"))["m"] or 0
        except Exception:
            logger.exception("Event relay could not read the event table")
        finally:
            self._ready.set()

    def stop(self) -> None:
        self._halt.set()

    def _run(self) -> None:
        self._begin()
        self._let_go()
        while not self._halt.wait(self.interval):
            try:
                self.poll()
            except Exception:
                logger.exception("Event relay poll failed; retrying")
                connection.close()
                time.sleep(1)
            self._let_go()

    @staticmethod
    def _let_go() -> None:
        # On SQLite, a connection held open keeps a lock on the file, and while the process
        # holds one SQLite cannot close the file handles of its other connections (closing
        # any would drop the process's locks): every stream's sign-in check, closed, would
        # leave a handle behind. Opening a SQLite file is cheap; a PostgreSQL backend is not.
        if connection.vendor == "sqlite":
            connection.close()

    def poll(self) -> int:
        from django_eventstream.event import Event
        from django_eventstream.models import Event as EventRow

        cutoff = timezone.now() - timedelta(seconds=self.window_seconds)
        delivered = 0
        after = self.floor
        while True:
            # Read in pages: the window can hold more rows than one read (a busy worker), and
            # the rows past the first page would otherwise wait for it to age out.
            rows = list(
                EventRow.objects.filter(id__gt=after)
                .order_by("id")
                .values_list("id", "channel", "type", "data", "eid", "created")[: self.page]
            )
            for row_id, channel, kind, data, eid, created in rows:
                if row_id not in self.seen:
                    self.seen.add(row_id)
                    if eid:  # eid 0 is the storage's placeholder row, not an event
                        self.deliver(channel, Event(channel, kind, json.loads(data), id=eid))
                        delivered += 1
                if created < cutoff:
                    self.floor = max(self.floor, row_id)
                after = row_id
            if len(rows) < self.page:
                break
        self.seen = {i for i in self.seen if i > self.floor}
        return delivered


TOO_MANY_STREAMS = (
    "Too many live-update streams are open for your account ({limit}): close some Chirp tabs. "
    "This one connects by itself once another closes."
)


def streams_held(user_id: int) -> int:
    """How many live streams the user holds open in this web process."""
    manager = eventstream_views.get_listener_manager()
    with manager.lock:
        return len(manager.listeners_by_channel.get(user_channel(user_id), ()))


class LimitedListenerManager(eventstream_views.ListenerManager):
    """django-eventstream's, holding each user to CHIRP_MAX_STREAMS_PER_USER streams in this
    process (each costs a thread). The view refuses one more with 429; a stream that slipped
    past that check (several opened at the same instant) ends at once with a stream-error."""

    def add_listener(self, listener) -> None:
        super().add_listener(listener)
        limit = settings.CHIRP_MAX_STREAMS_PER_USER
        with self.lock:
            over = any(len(self.listeners_by_channel.get(c, ())) > limit for c in listener.channels)
            if over:
                text = TOO_MANY_STREAMS.format(limit=limit)
                listener.error = {"condition": "too-many-streams", "text": text, "extra": {}}
        if over:
            listener.wake_threadsafe()


def install_listener_manager() -> None:
    """Put Chirp's listener manager in django-eventstream's place (called at start-up): the
    per-user stream limit, and without Redis the relay."""
    if settings.REDIS_URL:
        if not isinstance(eventstream_views.listener_manager, LimitedListenerManager):
            eventstream_views.listener_manager = LimitedListenerManager()
        return
    install_relay()


def install_relay() -> None:
    """Without Redis, make django-eventstream deliver through the relay."""

    class RelayListenerManager(LimitedListenerManager):
        def __init__(self) -> None:
            super().__init__()
            self.relay = EventRelay(self.relay_to_queues, settings.CHIRP_EVENT_RELAY_INTERVAL)

        def add_listener(self, listener) -> None:
            self.relay.start()
            super().add_listener(listener)

        def add_to_queues(self, channel, event) -> None:
            # send_event() in this process: the relay will deliver it from the table, once.
            return

        def relay_to_queues(self, channel, event) -> None:
            super().add_to_queues(channel, event)

    if type(eventstream_views.listener_manager).__name__ != "RelayListenerManager":
        eventstream_views.listener_manager = RelayListenerManager()
