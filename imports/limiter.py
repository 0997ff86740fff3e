"""The YouTube rate limiter, shared by every worker process and thread.

Its state lives in the database (one `RateLimit` row, changed with conditional UPDATEs) or, when
REDIS_URL is set, in one Redis hash changed by Lua scripts; never in memory. It does four things:

- **spacing**: every request to YouTube waits for its turn, so two requests start at least
  CHIRP_YOUTUBE_SPACING seconds apart across the installation, plus a random jitter (up to
  CHIRP_YOUTUBE_JITTER of the spacing) so the rhythm does not look like a robot's;
- **slowing down**: each time YouTube throttles (429, bot check, IP block) the spacing doubles,
  up to CHIRP_YOUTUBE_MAX_SPACING; successes bring it back down to the base;
- **circuit breaker**: a throttle also pauses everything for CHIRP_YOUTUBE_PAUSE_SECONDS,
  doubling with each block in a row (up to CHIRP_YOUTUBE_MAX_PAUSE_SECONDS). While paused,
  `wait_turn` raises `YouTubePaused` (a `chirp.jobs.JobPaused`): the engine puts the video back
  in the queue, hands the job back and claims nothing in the imports lane until the pause ends;
- **bounded concurrency** comes from the engine, also held in the database: at most
  CHIRP_IMPORTS_CONCURRENCY import jobs run at once (lane slots) and each uses
  CHIRP_YOUTUBE_CONCURRENCY threads, so at most their product of requests are in flight.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.formats import time_format

from chirp.jobs import JobPaused
from imports.youtube import Reason

logger = logging.getLogger(__name__)

KEY = "youtube"
# What YouTube does when it wants Chirp to slow down or stop: these pause the lane.
BLOCKING_REASONS = frozenset({Reason.RATE_LIMITED, Reason.BOT_CHECK, Reason.IP_BLOCKED})
# Successes divide the extra spacing by this; within 5 % of the base it is the base again.
RELAX_FACTOR = 0.8
MIN_THROTTLED_SPACING = 0.5

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


def _when(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


# -- stores --------------------------------------------------------------------------------------


class DatabaseStore:
    """State in the `RateLimit` row; every change is a conditional UPDATE on its version."""

    def __init__(self, key: str = KEY) -> None:
        self.key = key

    def _row(self) -> dict:
        from imports.models import RateLimit

        fields = ("spacing", "strikes", "paused_until", "reason", "next_at", "version")
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

    def reserve(self, now: float, base: float, jitter: float) -> tuple[float, State]:
        """Seconds to wait before this request may start (negative: paused), and the state."""
        while True:
            row = self._row()
            state = State(row["spacing"], row["strikes"], row["paused_until"], row["reason"])
            if row["paused_until"] > now:
                return -1.0, state
            spacing = max(base, row["spacing"])
            if spacing <= 0:
                return 0.0, state
            start = max(now, row["next_at"])
            if self._swap(row["version"], next_at=start + spacing * (1 + jitter)):
                return start - now, state

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
local paused = tonumber(s[3] or '0') or 0
if paused > now then return {'-1', s[1] or '0', s[2] or '0', s[3] or '0', s[4] or ''} end
local spacing = math.max(base, tonumber(s[1] or '0') or 0)
if spacing <= 0 then return {'0', s[1] or '0', s[2] or '0', s[3] or '0', s[4] or ''} end
local start = math.max(now, tonumber(s[5] or '0') or 0)
redis.call('HSET', KEYS[1], 'next_at', string.format('%.6f', start + spacing * (1 + jitter)))
return {string.format('%.6f', start - now), s[1] or '0', s[2] or '0', s[3] or '0', s[4] or ''}
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


@functools.cache
def _redis(url: str):
    import redis

    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


class RedisStore:
    """State in one Redis hash; each operation is one Lua script (atomic in Redis)."""

    def __init__(self, url: str, key: str = KEY) -> None:
        self.client = _redis(url)
        self.key = f"{settings.CHIRP_REDIS_PREFIX}:ratelimit:{key}"
        self._reserve = self.client.register_script(_RESERVE)
        self._throttle = self.client.register_script(_THROTTLE)
        self._relax = self.client.register_script(_RELAX)

    @staticmethod
    def _state(spacing, strikes, paused_until, reason) -> State:
        text = lambda v: v.decode() if isinstance(v, bytes) else str(v)  # noqa: E731
        return State(float(text(spacing)), int(float(text(strikes))), float(text(paused_until)),
                     text(reason))  # fmt: skip

    def reserve(self, now: float, base: float, jitter: float) -> tuple[float, State]:
        wait, *state = self._reserve(keys=[self.key], args=[now, base, jitter])
        return float(wait), self._state(*state)

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
        self.client.delete(self.key)


def _relaxed(spacing: float, base: float) -> float:
    relaxed = max(base, spacing * RELAX_FACTOR)
    return base if relaxed <= base * 1.05 else relaxed


def default_store() -> DatabaseStore | RedisStore:
    if settings.REDIS_URL:
        return RedisStore(settings.REDIS_URL)
    return DatabaseStore()


# -- the limiter -----------------------------------------------------------------------------------


class Limiter:
    """What the import pipeline asks of the shared state. Cheap to create: one per use."""

    def __init__(self, store: DatabaseStore | RedisStore | None = None) -> None:
        self.store = store or default_store()
        self._last: State | None = None

    @staticmethod
    def _base() -> float:
        return settings.CHIRP_YOUTUBE_SPACING

    def wait_turn(self) -> None:
        """Before every request to YouTube: sleep until its turn; raise YouTubePaused while the
        circuit breaker is open."""
        jitter = random.uniform(0, settings.CHIRP_YOUTUBE_JITTER)
        wait, state = self.store.reserve(time.time(), self._base(), jitter)
        self._last = state
        if wait < 0:
            raise YouTubePaused(Pause(_when(state.paused_until), state.reason))
        if wait > 0:
            time.sleep(wait)

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
