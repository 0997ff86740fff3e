"""The shared rate limiter: spacing across threads and processes, slowing down, the breaker,
the cap on requests in flight."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from itertools import pairwise

import pytest
from django.db import connection, connections

from imports.limiter import DatabaseStore, Limiter, RedisStore, YouTubePaused
from imports.transcripts import fetch_transcript
from imports.youtube import YouTube
from tests.conftest import ROOT, server_env

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(
    params=[
        "database",
        pytest.param(
            "redis",
            marks=pytest.mark.skipif(
                not os.environ.get("REDIS_URL"), reason="REDIS_URL is not set"
            ),
        ),
    ]
)
def store(request):
    if request.param == "redis":
        made = RedisStore(os.environ["REDIS_URL"], key=f"test-{os.getpid()}")
    else:
        made = DatabaseStore(key=f"test-{os.getpid()}")
    made.reset()
    yield made
    made.reset()


@pytest.fixture
def limits(settings):
    settings.CHIRP_YOUTUBE_SPACING = 0.05
    settings.CHIRP_YOUTUBE_JITTER = 0.0
    settings.CHIRP_YOUTUBE_MAX_SPACING = 1.0
    settings.CHIRP_YOUTUBE_PAUSE_SECONDS = 0.5
    settings.CHIRP_YOUTUBE_MAX_PAUSE_SECONDS = 1.5
    return settings


def slots_in_threads(store, threads: int, each: int, jitter: float = 0.0) -> list[float]:
    # `jitter`: each request draws its own, up to this share of the spacing
    """The start times the store hands out to `threads` threads asking at once (without
    sleeping until them: what is tested is the shared state, not the scheduler)."""
    slots: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def run() -> None:
        holder = uuid.uuid4().hex  # one limiter per thread, as in the pipeline
        try:
            barrier.wait()
            for _ in range(each):
                now = time.time()
                turn = store.reserve(
                    now, 0.05, random.uniform(0, jitter), holder=holder, cap=100, lease=60
                )
                assert not turn.full
                with lock:
                    slots.append(now + turn.wait)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    return sorted(slots)


def test_requests_from_many_threads_get_slots_apart(store, limits):
    slots = slots_in_threads(store, threads=8, each=5)

    assert len(slots) == 40
    gaps = [later - earlier for earlier, later in pairwise(slots)]
    assert min(gaps) >= 0.05 - 1e-5


def test_jitter_adds_up_to_its_share_of_the_spacing(store, limits):
    slots = slots_in_threads(store, threads=1, each=12, jitter=0.5)

    gaps = [later - earlier for earlier, later in pairwise(slots)]
    assert all(0.05 - 1e-5 <= gap <= 0.05 * 1.5 + 1e-5 for gap in gaps)
    assert max(gaps) - min(gaps) > 0.001  # not a metronome


def test_wait_turn_sleeps_until_its_slot(store, limits):
    limits.CHIRP_YOUTUBE_JITTER = 1.0
    limiter = Limiter(store)
    started = time.monotonic()
    moments = []
    for _ in range(6):
        limiter.wait_turn()
        moments.append(time.monotonic())

    assert moments[-1] - started >= 5 * 0.05
    gaps = [later - earlier for earlier, later in pairwise(moments)]
    assert max(gaps) - min(gaps) > 0.002  # jittered: not a metronome


def test_a_throttle_slows_down_and_pauses_then_resumes_by_itself(store, limits):
    limiter = Limiter(store)
    limiter.wait_turn()

    pause = limiter.throttled("rate_limited")

    assert 0.4 <= (pause.until.timestamp() - time.time()) <= 0.5
    assert pause.message.startswith("Paused: YouTube is rate-limiting, resuming at ")
    assert Limiter(store).current_pause() == pause
    state = Limiter(store).state()
    assert (state.strikes, state.spacing) == (1, 1.0)  # max(0.05, 0.5) doubled, capped at 1.0
    with pytest.raises(YouTubePaused) as caught:
        Limiter(store).wait_turn()
    assert caught.value.until == pause.until
    assert str(caught.value) == pause.message

    time.sleep(0.55)
    assert Limiter(store).current_pause() is None
    Limiter(store).wait_turn()  # allowed again


def test_blocks_in_a_row_double_the_pause_up_to_the_cap(store, limits):
    limiter = Limiter(store)
    lengths = []
    for _ in range(4):
        pause = limiter.throttled("rate_limited")
        lengths.append(round(pause.until.timestamp() - time.time(), 1))
        # the pause is measured from now: let each one run out before the next block
        time.sleep(max(0.0, pause.until.timestamp() - time.time()))

    assert lengths == [0.5, 1.0, 1.5, 1.5]


def test_failures_in_flight_during_a_pause_are_the_same_block(store, limits):
    first = Limiter(store).throttled("rate_limited")
    second = Limiter(store).throttled("rate_limited")  # another thread's request, sent before

    assert second == first
    assert Limiter(store).state().strikes == 1


def test_successes_forget_the_strikes_and_ease_the_spacing(store, limits):
    limiter = Limiter(store)
    limiter.throttled("rate_limited")
    time.sleep(0.55)

    spacings = []
    for _ in range(25):
        limiter.wait_turn()
        limiter.succeeded()
        spacings.append(Limiter(store).state().spacing)

    assert Limiter(store).state().strikes == 0
    assert spacings[0] == pytest.approx(0.8)
    assert spacings == sorted(spacings, reverse=True)
    assert spacings[-1] == 0.05  # back to the base


def test_the_bot_check_pause_asks_for_cookies(store, limits):
    pause = Limiter(store).throttled("bot_check")

    assert pause.needs_cookies
    assert "sign in" in pause.message


def test_two_processes_share_the_spacing(limits):
    """A second process (as a second worker would) takes its slots from the same state."""
    script = textwrap.dedent(
        """
        import django, time
        django.setup()
        from imports.limiter import default_store
        store = default_store()
        print("ready", flush=True)
        input()
        for _ in range(20):
            now = time.time()
            turn = store.reserve(now, 0.05, 0.0, holder="other", cap=10, lease=60)
            print(repr(now + turn.wait), flush=True)
        """
    )
    env = server_env(redis=bool(os.environ.get("REDIS_URL")))
    other = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert other.stdout.readline().strip() == "ready"
    other.stdin.write("go\n")
    other.stdin.flush()  # both ask at the same moment
    mine = slots_in_threads(Limiter().store, threads=2, each=10)
    out, _ = other.communicate(timeout=60)
    theirs = [float(line) for line in out.split()]

    assert other.returncode == 0 and len(theirs) == 20
    slots = sorted(mine + theirs)
    assert min(later - earlier for earlier, later in pairwise(slots)) >= 0.05 - 1e-5


# -- requests in flight --------------------------------------------------------------------------


def requests_in_threads(store, threads: int, each: int, took: float) -> tuple[int, int]:
    """(most requests in flight at once, requests made) when `threads` threads each make `each`
    requests one after another through a limiter of their own, each request taking `took`."""
    in_flight = most = made = 0
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def run() -> None:
        nonlocal in_flight, most, made
        try:
            barrier.wait()
            with Limiter(store) as limiter:
                for _ in range(each):
                    limiter.wait_turn()
                    with lock:
                        in_flight += 1
                        most = max(most, in_flight)
                    time.sleep(took)  # the request
                    with lock:
                        in_flight -= 1
                        made += 1
        finally:
            connections.close_all()

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    return most, made


@pytest.fixture
def no_spacing(limits):
    """Requests may start together: only the cap keeps them apart."""
    limits.CHIRP_YOUTUBE_SPACING = 0.0
    return limits


def test_requests_in_flight_never_exceed_the_cap(store, no_spacing):
    no_spacing.CHIRP_YOUTUBE_MAX_IN_FLIGHT = 6
    assert requests_in_threads(store, threads=6, each=2, took=0.05)[0] > 2  # they do overlap

    no_spacing.CHIRP_YOUTUBE_MAX_IN_FLIGHT = 2
    assert requests_in_threads(store, threads=6, each=4, took=0.05) == (2, 24)


@pytest.mark.parametrize("spacing", [0.0, 0.05])
def test_a_holder_that_keeps_asking_keeps_its_slot(store, spacing):
    """Each turn gives the holder's slot back and takes it again, renewing the lease (without
    spacing, once less than half of it is left): it never lapses while the holder works."""
    for _ in range(20):  # 2 s: two leases
        assert not store.reserve(time.time(), spacing, 0.0, holder="busy", cap=1, lease=1.0).full
        assert store.reserve(time.time(), spacing, 0.0, holder="other", cap=1, lease=1.0).full
        time.sleep(0.1)


def test_the_slot_of_a_holder_that_never_comes_back_lapses_with_its_lease(store, no_spacing):
    no_spacing.CHIRP_YOUTUBE_MAX_IN_FLIGHT = 1
    crashed = store.reserve(time.time(), 0.0, 0.0, holder="crashed", cap=1, lease=0.5)
    assert not crashed.full  # a worker that died during its request: it never releases

    started = time.monotonic()
    Limiter(store).wait_turn()

    assert 0.4 <= time.monotonic() - started < 2.0


def test_a_paused_turn_gives_the_slot_back(store, no_spacing):
    no_spacing.CHIRP_YOUTUBE_MAX_IN_FLIGHT = 1
    limiter = Limiter(store)
    limiter.wait_turn()
    pause = limiter.throttled("rate_limited")
    with pytest.raises(YouTubePaused):
        limiter.wait_turn()  # the request before it is over, and this one does not leave

    time.sleep(max(0.0, pause.until.timestamp() - time.time()))
    assert not store.reserve(time.time(), 0.0, 0.0, holder="other", cap=1, lease=60).full


def test_release_frees_the_slot_at_once(store, no_spacing):
    no_spacing.CHIRP_YOUTUBE_MAX_IN_FLIGHT = 1
    first = Limiter(store)
    first.wait_turn()
    first.wait_turn()  # its own next request: its previous one is over
    got_in: list[float] = []

    def second() -> None:
        try:
            with Limiter(store) as limiter:
                limiter.wait_turn()
                got_in.append(time.monotonic())
        finally:
            connections.close_all()

    waiting = threading.Thread(target=second)
    waiting.start()
    time.sleep(0.5)
    assert got_in == []  # the only slot is the first limiter's
    released = time.monotonic()
    first.release()
    waiting.join(10)

    assert len(got_in) == 1
    assert got_in[0] - released < 1.0  # at its next ask, not when the lease (minutes) ends


def test_a_row_added_by_code_from_before_the_slots_works(limits):
    """During a rolling deploy, code from before the in-flight slots (migration 0004) may add
    the limiter's row without them: the database fills them in."""
    key = f"old-{os.getpid()}"
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO imports_ratelimit (key, next_at, spacing, strikes, paused_until, reason,"
            " version) VALUES (%s, 0, 0, 0, 0, '', 0)",
            [key],
        )
    store = DatabaseStore(key=key)
    limits.CHIRP_YOUTUBE_MAX_IN_FLIGHT = 1
    with Limiter(store) as limiter:
        limiter.wait_turn()
        assert store.reserve(time.time(), 0.0, 0.0, holder="other", cap=1, lease=60).full
    assert not store.reserve(time.time(), 0.0, 0.0, holder="other", cap=1, lease=60).full


# -- the limiter in front of every request ---------------------------------------------------


def test_every_yt_dlp_and_transcript_request_waits_its_turn(fake_youtube, limits):
    limits.CHIRP_YOUTUBE_SPACING = 0.15
    channel = fake_youtube.add_channel("spaced", videos=1)
    video_id = channel.videos[0].id
    limiter = Limiter()
    turns: list[float] = []  # the moments reserved in the shared state
    granted: list[float] = []  # when each request was let go

    def gate(*args, **kwargs):
        result = limiter.wait_turn(*args, **kwargs)
        granted.append(time.time())
        turns.append(limiter.last_turn)
        return result

    with YouTube(gate=gate, retry_backoff=0) as client:
        client.fetch_video(video_id)
        fetch_transcript(video_id, ["en"], session=client.http_session())

    assert [r.kind for r in fake_youtube.requests] == [
        "watch",
        "player",
        "watch",
        "player",
        "timedtext",
    ]
    # One turn per request, the turns at least the spacing apart, and no request let go before
    # its turn. (Exact where it is decided: when a request actually leaves also carries the
    # machine's scheduling, which a loaded machine stretches but never shortens below the turn.)
    assert len(granted) == len(turns) == len(fake_youtube.requests)
    assert min(later - earlier for earlier, later in pairwise(turns)) >= 0.15 - 1e-6
    assert all(let_go >= turn - 0.002 for let_go, turn in zip(granted, turns, strict=True))


def test_while_paused_no_request_leaves(fake_youtube, limits):
    limits.CHIRP_YOUTUBE_PAUSE_SECONDS = 30
    channel = fake_youtube.add_channel("quiet", videos=1)
    limiter = Limiter()
    limiter.throttled("ip_blocked")

    with YouTube(gate=limiter.wait_turn) as client:
        with pytest.raises(YouTubePaused):
            client.fetch_video(channel.videos[0].id)
        with pytest.raises(YouTubePaused):
            fetch_transcript(channel.videos[0].id, ["en"], session=client.http_session())

    assert fake_youtube.requests == []
