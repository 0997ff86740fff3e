"""The YouTube rate limiter, shared by every worker process and thread.

Its state lives in the database (one `RateLimit` row, changed with conditional UPDATEs) or, when
REDIS_URL is set, in Redis (a hash and a sorted set changed by Lua scripts); never in memory. It
does four things:

- **spacing**: every request to YouTube waits for its turn, so two requests start at least
  CHIRP_YOUTUBE_SPACING seconds apart across the installation, plus a random jitter (up to
  CHIRP_YOUTUBE_JITTER of the spacing) so the rhythm does not look like a robot's;
- **slowing down**: each time YouTube throttles (429, bot check, IP block) the spacing doubles,
  up to CHIRP_YOUTUBE_MAX_SPACING; successes bring it back down to the base;
- **circuit breaker**: a throttle also pauses everything for CHIRP_YOUTUBE_PAUSE_SECONDS,
  doubling with each block in a row (up to CHIRP_YOUTUBE_MAX_PAUSE_SECONDS). While paused,
  `wait_turn` raises `YouTubePaused` (a `chirp.jobs.JobPaused`): the engine puts the video back
  in the queue, hands the job back and claims nothing in the imports lane until the pause ends;
- **bounded concurrency**: at most CHIRP_YOUTUBE_MAX_IN_FLIGHT requests are in flight across
  the installation, however many the engine would run (import jobs running at once times
  CHIRP_YOUTUBE_CONCURRENCY threads each). Each `Limiter` holds at most one slot: it takes it
  in the same round trip that reserves its turn, and each of its later turns first gives it
  back (its previous request is over: a thread makes one request after another), so this
  costs requests no extra round trip. When every slot is held, `wait_turn` asks again every
  50-100 ms. `release()` (or leaving `with Limiter()`) frees the slot once the limiter's work
  is done: one round trip per video.

  So a slot is held from a request's start until the same limiter's next turn or its release:
  the thread's own work between two requests (parsing, saving a stage, a retry's backoff)
  counts as in flight too. That errs on the safe side: it can only lower concurrency. A slot
  whose holder never comes back (a worker that died) lapses when its lease ends (see
  `Limiter.lease`); a turn renews the lease when less than half of it is left.

The same in-flight slots, under a key of their own and with no spacing, bound the media
downloads running at once (`DownloadSlot`, CHIRP_MEDIA_CONCURRENCY): a download holds one from
its start until its file is stored, a thread beside it renewing the lease, so a worker killed
mid-download gives its slot back when the lease ends.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import IntegrityError, connections, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.formats import time_format

from chirp.db import redis_client
from chirp.jobs import JobPaused
from imports.youtube import Reason

logger = logging.getLogger(__name__)

KEY = "youtube"
# The media downloads in flight (DownloadSlot): slots only, never spaced nor paused.
DOWNLOADS_KEY = "downloads"
# What YouTube does when it wants Chirp to slow down or stop: these pause the lane.
BLOCKING_REASONS = frozenset({Reason.RATE_LIMITED, Reason.BOT_CHECK, Reason.IP_BLOCKED})
# Successes divide the extra spacing by this; within 5 % of the base it is the base again.
RELAX_FACTOR = 0.8
MIN_THROTTLED_SPACING = 0.5
# Seconds between asks for a slot while every one is held (random: waiters do not march in step).
FULL_RETRY = (0.05, 0.1)
# Seconds a request keeps its in-flight slot at least when its holder never comes back.
MIN_COVER = 60.0
# Seconds between asks for a download slot while every one is held (downloads take minutes).
SLOT_RETRY = (0.2, 0.4)

_WHY = {
    Reason.RATE_LIMITED: "YouTube is rate-limiting",
    Reason.BOT_CHECK: "YouTube asks Chirp to sign in (bot check)",
    Reason.IP_BLOCKED: "YouTube is blocking this server's address",
}


@dataclass(frozen=True)
class Pause:
    until: datetime
    reason: str

    @property
    def message(self) -> str:
        why = _WHY.get(self.reason, "YouTube asked Chirp to wait")
        return f"Paused: {why}, resuming at {time_format(timezone.localtime(self.until), 'H:i')}"

    @property
    def needs_cookies(self) -> bool:
        return self.reason == Reason.BOT_CHECK


class YouTubePaused(JobPaused):
    def __init__(self, pause: Pause) -> None:
        self.pause = pause
        super().__init__(pause.until, pause.message)


@dataclass(frozen=True)
class State:
    spacing: float = 0.0
    strikes: int = 0
    paused_until: float = 0.0
    reason: str = ""


@dataclass(frozen=True)
class Turn:
    """A store's answer to `reserve`: wait `wait` seconds, then send the request. Negative
    `wait`: paused (see `state`). `full`: every slot is held, nothing was reserved; ask again."""

    wait: float
    state: State
    full: bool = False


def _when(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _lease_end(held: float, start: float, lease: float, *, renew: bool) -> float:
    """When a holder's slot lapses after this turn: renewed when the turn writes anyway
    (`renew`) or when less than half of the lease is left, so that without spacing to record
    a turn needs no write at all."""
    return start + lease if renew or held < start + lease / 2 else held


# -- stores --------------------------------------------------------------------------------------


class DatabaseStore:
    """State in the `RateLimit` row; every change is a conditional UPDATE on its version."""

    def __init__(self, key: str = KEY) -> None:
        self.key = key

    def _row(self) -> dict:
        from imports.models import RateLimit

        fields = ("spacing", "strikes", "paused_until", "reason", "next_at", "holders", "version")
        row = RateLimit.objects.filter(key=self.key).values(*fields).first()
        if row is None:
            try:
                with transaction.atomic():
                    RateLimit.objects.create(key=self.key)
            except IntegrityError:
                pass
            row = RateLimit.objects.filter(key=self.key).values(*fields).get()
        return row

    def _swap(self, version: int, **changes) -> bool:
        from imports.models import RateLimit

        return (
            RateLimit.objects.filter(key=self.key, version=version).update(
                version=F("version") + 1, **changes
            )
            == 1
        )

    def reserve(self, now: float, base: float, jitter: float, *, holder: str, cap: int,
                lease: float) -> Turn:  # fmt: skip
        """Seconds to wait before this request may start (negative: paused), after giving back
        `holder`'s previous slot, dropping lapsed ones and taking one if fewer than `cap` are
        held (else `full`, and no turn is reserved). The slot's lease ends `lease` seconds after
        the request's start (renewed only when less than half is left, see `_lease_end`). One
        conditional UPDATE; none when nothing changes."""
        while True:
            row = self._row()
            state = State(row["spacing"], row["strikes"], row["paused_until"], row["reason"])
            held: dict[str, float] = row["holders"]
            # The holder's previous request is over; lapsed leases are dropped.
            others = {h: end for h, end in held.items() if end > now and h != holder}
            paused = row["paused_until"] > now
            if paused or len(others) >= cap:
                if others == held or self._swap(row["version"], holders=others):
                    return Turn(-1.0 if paused else 0.0, state, full=not paused)
                continue
            spacing = max(base, row["spacing"])
            start = max(now, row["next_at"]) if spacing > 0 else now
            changes: dict[str, object] = (
                {"next_at": start + spacing * (1 + jitter)} if spacing > 0 else {}
            )
            holders = {
                **others,
                holder: _lease_end(held.get(holder, 0.0), start, lease, renew=spacing > 0),
            }
            if holders != held:
                changes["holders"] = holders
            if not changes or self._swap(row["version"], **changes):
                return Turn(start - now, state)

    def release(self, holder: str) -> None:
        while True:
            row = self._row()
            if holder not in row["holders"]:
                return
            others = {h: end for h, end in row["holders"].items() if h != holder}
            if self._swap(row["version"], holders=others):
                return

    def throttle(self, now: float, reason: str, *, base: float, pause: float, max_pause: float,
                 max_spacing: float) -> State:  # fmt: skip
        while True:
            row = self._row()
            if row["paused_until"] > now:  # the same block, seen by another request in flight
                return State(row["spacing"], row["strikes"], row["paused_until"], row["reason"])
            strikes = row["strikes"] + 1
            spacing = min(max_spacing, max(base, row["spacing"], MIN_THROTTLED_SPACING) * 2)
            until = max(row["paused_until"], now + min(max_pause, pause * 2 ** (strikes - 1)))
            if self._swap(
                row["version"],
                strikes=strikes,
                spacing=spacing,
                paused_until=until,
                reason=reason,
                next_at=max(row["next_at"], until),
            ):
                return State(spacing, strikes, until, reason)

    def relax(self, base: float) -> None:
        while True:
            row = self._row()
            spacing = _relaxed(row["spacing"], base)
            if row["strikes"] == 0 and spacing == row["spacing"]:
                return
            if self._swap(row["version"], strikes=0, spacing=spacing):
                return

    def state(self) -> State:
        row = self._row()
        return State(row["spacing"], row["strikes"], row["paused_until"], row["reason"])

    def reset(self) -> None:
        from imports.models import RateLimit

        RateLimit.objects.filter(key=self.key).delete()


_RESERVE = """
local s = redis.call('HMGET', KEYS[1], 'spacing', 'strikes', 'paused_until', 'reason', 'next_at')
local now, base, jitter = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local holder, cap, lease = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local function answer(wait, full)
  return {wait, full, s[1] or '0', s[2] or '0', s[3] or '0', s[4] or ''}
end
local held = tonumber(redis.call('ZSCORE', KEYS[2], holder) or '0') or 0
redis.call('ZREM', KEYS[2], holder)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if (tonumber(s[3] or '0') or 0) > now then return answer('-1', '0') end
if redis.call('ZCARD', KEYS[2]) >= cap then return answer('0', '1') end
local spacing = math.max(base, tonumber(s[1] or '0') or 0)
local start, ends = now, held
if spacing > 0 then
  start = math.max(now, tonumber(s[5] or '0') or 0)
  redis.call('HSET', KEYS[1], 'next_at', string.format('%.6f', start + spacing * (1 + jitter)))
  ends = start + lease
elseif held < start + lease / 2 then
  ends = start + lease
end
redis.call('ZADD', KEYS[2], string.format('%.6f', ends), holder)
return answer(string.format('%.6f', start - now), '0')
"""

_THROTTLE = """
local s = redis.call('HMGET', KEYS[1], 'spacing', 'strikes', 'paused_until', 'next_at', 'reason')
local now, reason = tonumber(ARGV[1]), ARGV[2]
if (tonumber(s[3] or '0') or 0) > now then
  return {s[1] or '0', s[2] or '0', s[3] or '0', s[5] or ''}
end
local base, pause, max_pause = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local max_spacing, min_throttled = tonumber(ARGV[6]), tonumber(ARGV[7])
local strikes = (tonumber(s[2] or '0') or 0) + 1
local spacing = math.min(max_spacing,
  math.max(base, tonumber(s[1] or '0') or 0, min_throttled) * 2)
local resume = math.max(tonumber(s[3] or '0') or 0,
  now + math.min(max_pause, pause * 2 ^ (strikes - 1)))
local next_at = math.max(tonumber(s[4] or '0') or 0, resume)
redis.call('HSET', KEYS[1], 'strikes', strikes, 'spacing', string.format('%.6f', spacing),
  'paused_until', string.format('%.6f', resume), 'reason', reason,
  'next_at', string.format('%.6f', next_at))
return {string.format('%.6f', spacing), tostring(strikes), string.format('%.6f', resume), reason}
"""

_RELAX = """
local s = redis.call('HMGET', KEYS[1], 'spacing', 'strikes')
local base, factor = tonumber(ARGV[1]), tonumber(ARGV[2])
local spacing = tonumber(s[1] or '0') or 0
local relaxed = math.max(base, spacing * factor)
if relaxed <= base * 1.05 then relaxed = base end
if (tonumber(s[2] or '0') or 0) == 0 and relaxed == spacing then return 0 end
redis.call('HSET', KEYS[1], 'strikes', 0, 'spacing', string.format('%.6f', relaxed))
return 1
"""


class RedisStore:
    """State in one Redis hash, the requests in flight in a sorted set beside it (member: the
    holder, score: when its lease ends); each operation is one Lua script (atomic in Redis)."""

    def __init__(self, url: str, key: str = KEY) -> None:
        self.client = redis_client(url)
        self.key = f"{settings.CHIRP_REDIS_PREFIX}:ratelimit:{key}"
        self.in_flight_key = f"{self.key}:inflight"
        self._reserve = self.client.register_script(_RESERVE)
        self._throttle = self.client.register_script(_THROTTLE)
        self._relax = self.client.register_script(_RELAX)

    @staticmethod
    def _state(spacing, strikes, paused_until, reason) -> State:
        text = lambda v: v.decode() if isinstance(v, bytes) else str(v)  # noqa: E731
        return State(float(text(spacing)), int(float(text(strikes))), float(text(paused_until)),
                     text(reason))  # fmt: skip

    def reserve(self, now: float, base: float, jitter: float, *, holder: str, cap: int,
                lease: float) -> Turn:  # fmt: skip
        """As `DatabaseStore.reserve`, in one script."""
        wait, full, *state = self._reserve(
            keys=[self.key, self.in_flight_key], args=[now, base, jitter, holder, cap, lease]
        )
        return Turn(float(wait), self._state(*state), full=full in (b"1", "1"))

    def release(self, holder: str) -> None:
        self.client.zrem(self.in_flight_key, holder)

    def throttle(self, now: float, reason: str, *, base: float, pause: float, max_pause: float,
                 max_spacing: float) -> State:  # fmt: skip
        result = self._throttle(
            keys=[self.key],
            args=[now, reason, base, pause, max_pause, max_spacing, MIN_THROTTLED_SPACING],
        )
        return self._state(*result)

    def relax(self, base: float) -> None:
        self._relax(keys=[self.key], args=[base, RELAX_FACTOR])

    def state(self) -> State:
        values = self.client.hmget(self.key, "spacing", "strikes", "paused_until", "reason")
        return self._state(*(v if v is not None else b"0" for v in values[:3]), values[3] or b"")

    def reset(self) -> None:
        self.client.delete(self.key, self.in_flight_key)


def _relaxed(spacing: float, base: float) -> float:
    relaxed = max(base, spacing * RELAX_FACTOR)
    return base if relaxed <= base * 1.05 else relaxed


def default_store(key: str = KEY) -> DatabaseStore | RedisStore:
    if settings.REDIS_URL:
        return RedisStore(settings.REDIS_URL, key)
    return DatabaseStore(key)


# -- the limiter -----------------------------------------------------------------------------------


class Limiter:
    """What the import pipeline asks of the shared state. Cheap to create: one per use (a
    video, a listing), used by one thread, its requests one after another. Used as a context
    manager, it releases its in-flight slot on leaving."""

    def __init__(
        self,
        store: DatabaseStore | RedisStore | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store or default_store()
        # How it waits for a slot or a turn: the runner's RunContext.sleep, so that a shutdown
        # interrupts the wait (chirp.jobs.Interrupted) rather than waiting for it.
        self.sleep = sleep
        # Names this limiter's in-flight slot in the shared state.
        self.holder = uuid.uuid4().hex
        self._last: State | None = None
        self._holding = False
        # When the last turn given began (epoch seconds): the moment its request could leave.
        self.last_turn: float | None = None

    def __enter__(self) -> Limiter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    @staticmethod
    def _base() -> float:
        return settings.CHIRP_YOUTUBE_SPACING

    @staticmethod
    def lease() -> float:
        """Seconds an in-flight slot lasts from its request's start unless renewed. A turn
        renews it only when less than half is left, so a request is covered for at least
        half: long enough for any one request (three socket timeouts, a minute at least), short
        enough that the slots of a worker that died come back within minutes."""
        return 2 * max(MIN_COVER, 3 * settings.CHIRP_YOUTUBE_TIMEOUT)

    def _reserve_at(self, now: float) -> Turn:
        return self.store.reserve(
            now,
            self._base(),
            random.uniform(0, settings.CHIRP_YOUTUBE_JITTER),
            holder=self.holder,
            cap=settings.CHIRP_YOUTUBE_MAX_IN_FLIGHT,
            lease=self.lease(),
        )

    def wait_turn(self) -> None:
        """Before every request to YouTube: wait for an in-flight slot, then sleep until its
        turn; raise YouTubePaused while the circuit breaker is open."""
        while True:
            asked = time.time()
            turn = self._reserve_at(asked)
            self._last = turn.state
            self._holding = turn.wait >= 0 and not turn.full
            if turn.wait < 0:
                raise YouTubePaused(Pause(_when(turn.state.paused_until), turn.state.reason))
            if not turn.full:
                break
            self.sleep(random.uniform(*FULL_RETRY))
        # Sleep until the moment reserved, not for `wait` from now: the reservation's own round
        # trip must not push this request later (and the next one closer to it).
        self.last_turn = asked + turn.wait
        delay = self.last_turn - time.time()
        if delay > 0:
            self.sleep(delay)

    def release(self) -> None:
        """This limiter's work is done: free its in-flight slot now (one round trip; none when
        it holds none), not when its lease ends."""
        if self._holding:
            self._holding = False
            self.store.release(self.holder)

    def throttled(self, reason: str) -> Pause:
        """YouTube refused (429, bot check, IP block): slow down and open the breaker."""
        state = self.store.throttle(
            time.time(),
            str(reason),
            base=self._base(),
            pause=settings.CHIRP_YOUTUBE_PAUSE_SECONDS,
            max_pause=settings.CHIRP_YOUTUBE_MAX_PAUSE_SECONDS,
            max_spacing=max(settings.CHIRP_YOUTUBE_MAX_SPACING, self._base()),
        )
        self._last = state
        pause = Pause(_when(state.paused_until), state.reason)
        logger.warning(
            "YouTube throttled Chirp (%s, %d in a row): paused until %s, spacing now %.2f s",
            reason,
            state.strikes,
            pause.until.isoformat(),
            state.spacing,
        )
        return pause

    def succeeded(self) -> None:
        """A stage went through: forget the strikes and ease the spacing back to the base.
        Writes only when there is something to forget (known from the last reservation)."""
        last = self._last
        if last is not None and last.strikes == 0 and last.spacing <= self._base():
            return
        self.store.relax(self._base())
        self._last = None

    def current_pause(self) -> Pause | None:
        state = self.store.state()
        if state.paused_until > time.time():
            return Pause(_when(state.paused_until), state.reason)
        return None

    def state(self) -> State:
        return self.store.state()

    def reset(self) -> None:
        self.store.reset()


# -- media downloads ---------------------------------------------------------------------------


class DownloadSlot:
    """One of the CHIRP_MEDIA_CONCURRENCY media downloads allowed at once across the
    installation (every worker, every thread), held from `acquire()` to `release()` (or as a
    context manager). While every slot is held, `acquire` calls `on_wait` once (the card says
    "Waiting for a download slot") and asks again every 0.2-0.4 s, waiting with `sleep`: one
    that raises when the work is told to stop (a shutdown, a cancel) ends the wait.

    The slots are the limiter's in-flight slots (a holder and the end of its lease, in the
    RateLimit row or a Redis sorted set) under their own key, with no spacing. A download
    lasts longer than any lease worth having, so a thread renews it while the slot is held
    (it asks every sixth of a lease; the lease is renewed once less than half is left): a
    worker that dies stops renewing, and its slot lapses within a lease (`lease()`)."""

    def __init__(
        self,
        store: DatabaseStore | RedisStore | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        on_wait: Callable[[], None] | None = None,
    ) -> None:
        self.store = store or default_store(DOWNLOADS_KEY)
        self.sleep = sleep
        self.on_wait = on_wait
        self.holder = uuid.uuid4().hex
        self._released = threading.Event()
        self._renewer: threading.Thread | None = None

    def __enter__(self) -> DownloadSlot:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    @staticmethod
    def lease() -> float:
        """As long as a limiter's (two minutes by default): the slot of a worker that died
        comes back within it."""
        return Limiter.lease()

    def _take(self) -> bool:
        """Take (or keep, renewing its lease) this holder's slot; False when all are held."""
        turn = self.store.reserve(
            time.time(),
            0.0,
            0.0,
            holder=self.holder,
            cap=settings.CHIRP_MEDIA_CONCURRENCY,
            lease=self.lease(),
        )
        return not turn.full

    def acquire(self) -> None:
        waited = False
        while not self._take():
            if not waited and self.on_wait is not None:
                self.on_wait()
            waited = True
            self.sleep(random.uniform(*SLOT_RETRY))
        self._released.clear()
        self._renewer = threading.Thread(
            target=self._renew, name=f"chirp-download-slot-{self.holder[:8]}", daemon=True
        )
        self._renewer.start()

    def _renew(self) -> None:
        try:
            while not self._released.wait(self.lease() / 6):
                try:
                    if not self._take():
                        logger.warning("A download lost its slot: its lease lapsed")
                except Exception:  # the store is unreachable for now: again next time
                    logger.exception("Could not renew a download slot")
        finally:
            connections.close_all()  # this thread's own connections

    def release(self) -> None:
        """Give the slot back now (one round trip), not when its lease ends."""
        if self._renewer is None:
            return
        self._released.set()
        self._renewer.join()
        self._renewer = None
        self.store.release(self.holder)
