"""Throttles: count attempts under a key, and say how long to wait once there were too many.

One interface, two implementations, as with the room log: MemoryThrottle for one process
(the embedded set-up) and RedisThrottle, whose counts every process of a deployment shares
(so an attacker gains nothing by spreading attempts over the processes behind nginx).
tests/test_throttle.py runs one contract suite against both.

The rule is a token bucket, kept the way GCRA (the generic cell rate algorithm) keeps it:
one number per key, the time at which the bucket is full again. ``limit`` attempts may
come at once; after that one more every ``window_seconds / limit``. So "10 per 15
minutes" lets a person make ten quick tries and then one every 90 s, never a new burst of
ten on the minute a fixed window rolls over. A refused attempt is not counted: waiting is
enough to get through, hammering does not push the wait further out.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from typing import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# The Redis throttle answers on the request path of every login: a Redis that does not
# answer within this is treated as down rather than holding the login up (see hit()).
REDIS_SOCKET_TIMEOUT = 0.25
# One warning per this many seconds while Redis is down, not one per request.
WARN_EVERY_SECONDS = 60.0
# The memory throttle drops keys whose bucket is full again (they hold nothing) once this
# many have been added since the last sweep: bounded memory whatever keys attackers make.
MEMORY_SWEEP_EVERY = 10_000


def _wait(stored: float | None, now: float, limit: int, window: float) -> tuple[float | None, float]:
    """GCRA: (seconds to wait or None, the key's new value if the attempt is counted)."""
    interval = window / limit
    full_at = max(stored if stored is not None else now, now) + interval
    earliest = full_at - window
    return (earliest - now if earliest > now else None), full_at


class Throttle(ABC):
    @abstractmethod
    async def hit(self, key: str, limit: int, window_seconds: float) -> float | None:
        """Count an attempt under ``key`` if it is allowed: None, else the seconds until
        one would be (nothing counted). ``limit`` attempts per ``window_seconds``."""

    @abstractmethod
    async def forgive(self, key: str, limit: int, window_seconds: float) -> None:
        """Take back one counted attempt (a login that turned out right)."""

    @abstractmethod
    async def reset(self, key: str) -> None:
        """Forget every attempt under ``key``."""

    async def close(self) -> None:
        pass


class MemoryThrottle(Throttle):
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._full_at: dict[str, float] = {}
        self._added = 0

    async def hit(self, key: str, limit: int, window_seconds: float) -> float | None:
        now = self._clock()
        wait, full_at = _wait(self._full_at.get(key), now, limit, window_seconds)
        if wait is None:
            if key not in self._full_at:
                self._added += 1
                if self._added >= MEMORY_SWEEP_EVERY:
                    self._sweep(now)
            self._full_at[key] = full_at
        return wait

    async def forgive(self, key: str, limit: int, window_seconds: float) -> None:
        full_at = self._full_at.get(key)
        if full_at is None:
            return
        full_at -= window_seconds / limit
        if full_at <= self._clock():
            del self._full_at[key]
        else:
            self._full_at[key] = full_at

    async def reset(self, key: str) -> None:
        self._full_at.pop(key, None)

    def _sweep(self, now: float) -> None:
        self._full_at = {k: v for k, v in self._full_at.items() if v > now}
        self._added = 0


# KEYS[1]: the key. ARGV: limit, window (seconds), "hit" or "forgive". The clock is
# Redis's own (TIME), so that processes whose clocks disagree still agree on a wait.
# A hit answers nil (allowed) or the wait in seconds, as a string (a Lua number would
# come back truncated to an integer). The key expires when its bucket is full again.
GCRA_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local interval = window / limit
local stored = tonumber(redis.call('GET', KEYS[1]))
if ARGV[3] == 'forgive' then
  if stored == nil then return nil end
  local full_at = stored - interval
  if full_at <= now then
    redis.call('DEL', KEYS[1])
  else
    redis.call('SET', KEYS[1], string.format('%.6f', full_at), 'PX', math.ceil((full_at - now) * 1000))
  end
  return nil
end
local full_at = math.max(stored or now, now) + interval
local earliest = full_at - window
if earliest > now then return string.format('%.6f', earliest - now) end
redis.call('SET', KEYS[1], string.format('%.6f', full_at), 'PX', math.ceil((full_at - now) * 1000))
return nil
"""


class RedisThrottle(Throttle):
    """Counts in Redis under ``{prefix}:throttle:{key}``; one round trip per call (the
    script runs by its digest). When Redis is down or slow it lets the attempt through
    and logs a warning: the API keeps working without Redis (only the live room needs
    it), and a login is still one scrypt hash per guess."""

    def __init__(self, url: str, prefix: str, socket_timeout: float = REDIS_SOCKET_TIMEOUT) -> None:
        self._prefix = f"{prefix}:throttle:"
        self._redis = aioredis.from_url(url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout,
                                        decode_responses=True)
        self._script = self._redis.register_script(GCRA_SCRIPT)
        self._warned_at = float("-inf")

    async def _run(self, key: str, limit: int, window_seconds: float, action: str) -> float | None:
        try:
            reply = await self._script(keys=[self._prefix + key], args=[limit, repr(float(window_seconds)), action])
        except (RedisError, OSError) as e:
            now = time.monotonic()
            if now - self._warned_at > WARN_EVERY_SECONDS:
                self._warned_at = now
                log.warning("throttle: Redis unavailable (%s); letting attempts through", e)
            return None
        return None if reply is None else float(reply)

    async def hit(self, key: str, limit: int, window_seconds: float) -> float | None:
        return await self._run(key, limit, window_seconds, "hit")

    async def forgive(self, key: str, limit: int, window_seconds: float) -> None:
        await self._run(key, limit, window_seconds, "forgive")

    async def reset(self, key: str) -> None:
        try:
            await self._redis.delete(self._prefix + key)
        except (RedisError, OSError):
            pass

    async def close(self) -> None:
        await self._redis.aclose()
