"""Live updates: who may read a stream, delivery from another process, replay, the relay."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.utils import timezone
from django_eventstream.models import Event as EventRow

from chirp import live
from tests.conftest import database_handles, session_cookie_for, start_web_server, wait_for
from tests.demo.models import DemoJob
from tests.sse import SSEClient, stored_events

pytestmark = pytest.mark.django_db(transaction=True)

delivery_modes = [
    "relay",
    pytest.param(
        "redis",
        marks=pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="REDIS_URL is not set"),
    ),
]


def test_a_signed_out_visitor_gets_403(client):
    response = client.get("/events/")
    assert response.status_code == 403


def test_a_stranger_cannot_read_another_users_stream(client, alice, bob):
    client.force_login(bob)
    response = client.get(f"/events/?channel=user-{alice.pk}")
    assert response.status_code == 403


def test_the_channel_manager_allows_only_the_owner(alice, bob):
    manager = live.UserChannelManager()
    assert manager.can_read_channel(alice, f"user-{alice.pk}")
    assert not manager.can_read_channel(bob, f"user-{alice.pk}")
    assert not manager.can_read_channel(None, f"user-{alice.pk}")


@pytest.mark.parametrize("mode", delivery_modes)
def test_a_change_in_another_process_reaches_the_owners_stream(
    mode, alice, bob, tmp_path, settings
):
    settings.REDIS_URL = settings.REDIS_URL if mode == "redis" else None
    server = start_web_server(tmp_path, redis=mode == "redis")
    try:
        mine = SSEClient(server.url + "/events/", session_cookie_for(alice))
        theirs = SSEClient(server.url + "/events/", session_cookie_for(bob))
        assert mine.status == theirs.status == 200
        mine.next_event("stream-open")
        theirs.next_event("stream-open")

        job = DemoJob.objects.create(owner=alice)
        job.cancel()  # this (test) process is "another process" for the web server

        event = mine.next_event(job.dom_id, timeout=10)
        assert 'data-status="cancelled"' in event.data
        assert f'id="{job.dom_id}"' in event.data
        assert list(theirs.events(timeout=1.5)) == []  # bob hears nothing of alice's job
    finally:
        server.process.terminate(10)


@pytest.mark.parametrize("mode", delivery_modes)
def test_a_reconnecting_browser_receives_what_it_missed(mode, alice, tmp_path, settings):
    settings.REDIS_URL = settings.REDIS_URL if mode == "redis" else None
    server = start_web_server(tmp_path, redis=mode == "redis")
    try:
        first = SSEClient(server.url + "/events/", session_cookie_for(alice))
        first.next_event("stream-open")
        seen = DemoJob.objects.create(owner=alice)
        seen.cancel()
        last = first.next_event(seen.dom_id)
        first.close()

        missed = [DemoJob.objects.create(owner=alice) for _ in range(2)]
        for job in missed:
            job.cancel()

        again = SSEClient(server.url + "/events/", session_cookie_for(alice), last_event_id=last.id)
        names = [e.event for e in again.events(timeout=2) if e.event.startswith("demojob-")]
        # Delivery is at least once (a relayed event may repeat one the stream just read back
        # from the table); fragments replace elements by id, so a repeat changes nothing.
        assert list(dict.fromkeys(names)) == [job.dom_id for job in missed]
    finally:
        server.process.terminate(10)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="counts PostgreSQL backends")
def test_open_streams_hold_no_database_connection(alice, tmp_path):
    server = start_web_server(tmp_path, redis=True)

    def backends() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
            return cursor.fetchone()[0]

    try:
        before = backends()
        streams = [SSEClient(server.url + "/events/", session_cookie_for(alice)) for _ in range(20)]
        for stream in streams:
            stream.next_event("stream-open")
        wait_for(lambda: backends() <= before, timeout=5)
        assert backends() <= before
    finally:
        server.process.terminate(10)


def test_the_relay_delivers_rows_that_commit_out_of_order():
    delivered: list[tuple[str, str]] = []
    relay = live.EventRelay(lambda channel, event: delivered.append((channel, event.type)), 1)
    base = 10**9
    now = timezone.now()
    EventRow.objects.create(id=base + 2, channel="user-1", type="b", data='"2"', eid=2, created=now)
    relay.poll()
    # id base+1 was allocated first but its transaction committed after base+2 was read
    EventRow.objects.create(id=base + 1, channel="user-1", type="a", data='"1"', eid=1, created=now)
    relay.poll()
    relay.poll()

    assert [kind for _, kind in delivered if kind in "ab"] == ["b", "a"]


def test_the_relay_delivers_a_burst_of_more_rows_than_it_reads_at_once_in_one_poll():
    """A busy worker can store more events within the relay's window (5 s) than one read
    takes (1000): the rows past the first read waited until the first had aged out."""
    delivered: list[int] = []
    relay = live.EventRelay(lambda channel, event: delivered.append(event.id), 1)
    now = timezone.now()
    EventRow.objects.bulk_create(
        EventRow(channel="user-1", type="row", data='"x"', eid=eid, created=now)
        for eid in range(1, 2501)
    )
    for _ in range(3):  # 0.3 s of the relay's polls
        relay.poll()

    assert delivered == list(range(1, 2501))


def test_the_relay_replaces_django_eventstreams_listener_manager(settings):
    from django_eventstream import views

    if settings.REDIS_URL:
        assert type(views.listener_manager).__name__ == "LimitedListenerManager"
    else:
        assert type(views.listener_manager).__name__ == "RelayListenerManager"
        assert hasattr(views.listener_manager, "relay")


def test_fragments_are_stored_as_raw_html(alice):
    live.publish(alice.pk, [("x-1", "<b>hi</b>"), ("x-2", 'é "/</script>')])
    assert stored_events(alice) == [("x-1", "<b>hi</b>"), ("x-2", 'é "/</script>')]


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="REDIS_URL is not set")
def test_with_redis_events_never_touch_the_database(alice, django_assert_num_queries):
    with django_assert_num_queries(0):
        live.publish(alice.pk, [("x-1", "a"), ("x-2", "b"), ("x-3", "c")])
    assert [name for name, _ in stored_events(alice)] == ["x-1", "x-2", "x-3"]
    assert not EventRow.objects.filter(channel=f"user-{alice.pk}").exists()


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="REDIS_URL is not set")
def test_with_redis_a_browser_away_too_long_is_told_to_reset(alice, settings):
    from django_eventstream.storage import EventDoesNotExist

    settings.CHIRP_LIVE_EVENTS_KEPT = 3
    events = live.redis_events()
    channel = f"user-{alice.pk}"
    for n in range(5):
        live.publish(alice.pk, [(f"x-{n}", str(n))])

    assert events.get_current_id(channel) == 5
    assert [e.type for e in events.get_events(channel, 2)] == ["x-2", "x-3", "x-4"]
    assert events.get_events(channel, 5) == []
    with pytest.raises(EventDoesNotExist) as missed:
        events.get_events(channel, 1)  # event 2 was trimmed: the stream must reset
    assert missed.value.current_id == 5


@pytest.mark.parametrize(
    ("query", "headers", "message"),
    [
        ("?recover=true", {}, "recover is not accepted"),
        ("?es-meta=x", {}, "es-meta is not accepted"),
        ("", {"HTTP_LAST_EVENT_ID": "user-1:abc"}, "Last-Event-ID must be"),
        ("?lastEventId=nonsense", {}, "Last-Event-ID must be"),
    ],
)
def test_a_stream_request_django_eventstream_cannot_read_is_400(
    alice_client, query, headers, message
):
    alice_client.raise_request_exception = False
    response = alice_client.get(f"/events/{query}", **headers)

    assert response.status_code == 400
    assert message in response.content.decode()


def _settled_handles(server, baseline: int, timeout: float = 5) -> int:
    """The handle count once back to `baseline`, or what it still is after `timeout`."""
    deadline = time.monotonic() + timeout
    while (count := database_handles(server)) > baseline and time.monotonic() < deadline:
        time.sleep(0.2)
    return count


@pytest.mark.parametrize("mode", delivery_modes)
def test_fifty_streams_hold_no_database_handle_open_or_closed(mode, alice, tmp_path, settings):
    """Before, on SQLite, 400 streams opened at once left 401 handles on the database file."""
    settings.REDIS_URL = settings.REDIS_URL if mode == "redis" else None
    server = start_web_server(tmp_path, redis=mode == "redis", CHIRP_MAX_STREAMS_PER_USER="100")
    cookie = session_cookie_for(alice)
    try:
        first = SSEClient(server.url + "/events/", cookie)  # starts the relay
        first.next_event("stream-open")
        first.close()
        time.sleep(0.5)
        baseline = database_handles(server)

        def open_stream(_: int) -> SSEClient:
            stream = SSEClient(server.url + "/events/", cookie)
            stream.next_event("stream-open")
            return stream

        with ThreadPoolExecutor(max_workers=50) as pool:  # all at once, as after a restart
            streams = list(pool.map(open_stream, range(50)))
        while_open = _settled_handles(server, baseline)
        for stream in streams:
            stream.close()
        time.sleep(1)
        after = _settled_handles(server, baseline)

        assert while_open <= baseline and after <= baseline, (baseline, while_open, after)
    finally:
        server.process.terminate(10)


def test_a_user_over_the_stream_limit_is_refused_until_one_closes(alice, bob, tmp_path, settings):
    settings.REDIS_URL = None
    server = start_web_server(tmp_path, redis=False, CHIRP_MAX_STREAMS_PER_USER="3")
    url = server.url + "/events/"
    try:
        held = [SSEClient(url, session_cookie_for(alice)) for _ in range(3)]
        for stream in held:
            stream.next_event("stream-open")

        refused = SSEClient(url, session_cookie_for(alice))
        assert refused.status == 429
        assert refused.response.getheader("Retry-After")
        assert "Too many live-update streams" in refused.response.read().decode()
        theirs = SSEClient(url, session_cookie_for(bob))  # the limit is each user's own
        assert theirs.status == 200
        theirs.next_event("stream-open")

        held.pop().close()

        def reconnects() -> bool:
            again = SSEClient(url, session_cookie_for(alice))
            if again.status == 200:
                held.append(again)
                return True
            again.close()
            return False

        wait_for(reconnects, timeout=10, interval=0.3)
        held[-1].next_event("stream-open")
    finally:
        server.process.terminate(10)


def test_streams_that_slip_past_the_check_together_end_with_a_clear_error(settings):
    """Several streams opening at the same instant all pass the view's count; the listener
    manager ends the ones over the limit at once."""
    import asyncio
    import concurrent.futures

    from django_eventstream.views import Listener

    settings.CHIRP_MAX_STREAMS_PER_USER = 2
    manager = live.LimitedListenerManager()

    async def open_streams() -> list[Listener]:
        listeners = []
        for _ in range(4):
            listener = Listener()
            listener.assign_loop()
            listener.channels = {"user-7"}
            manager.add_listener(listener)
            listeners.append(listener)
        await asyncio.sleep(0)
        return listeners

    # In a thread of its own: a browser test before this one may leave Playwright's event loop
    # running in this thread, where asyncio.run() refuses to start another.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        listeners = pool.submit(asyncio.run, open_streams()).result()

    assert [bool(listener.error) for listener in listeners] == [False, False, True, True]
    assert "Too many live-update streams" in listeners[-1].error["text"]
    assert listeners[-1].aevent.is_set()  # woken, so its stream sends the error and ends
