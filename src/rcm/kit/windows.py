"""Fixed-window request counters: in process memory, or in Redis shared by every API replica.

A window opens at a key's first hit and lasts ``window_ms``; each hit adds one and answers the count so far
and the time until the window closes. In Redis the increment, the expiry of a new window and the read of
the time left run as one Lua script, so concurrent hits from any number of replicas are counted exactly
once and no window is left without an expiry.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


# Where the app keeps its windows (``app.state``), opened and closed by the app's lifespan.
WINDOWS_STATE_KEY = "rate_windows"


@dataclass(frozen=True, slots=True)
class Hit:
    count: int  # hits in the current window, this one included
    reset_ms: int  # milliseconds until the window closes


class Windows(Protocol):
    async def hit(self, key: str, window_ms: int) -> Hit: ...

    async def health(self) -> str: ...

    async def aclose(self) -> None: ...


class MemoryWindows:
    """One process's windows. Correct for a single API process; N replicas would each allow the limit."""

    _PRUNE_EVERY = 1024

    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, float]] = {}  # key -> (count, closes at, monotonic seconds)
        self._hits = 0

    async def hit(self, key: str, window_ms: int) -> Hit:
        # No await between read and write: on one event loop this is atomic.
        now = time.monotonic()
        count, closes = self._windows.get(key, (0, 0.0))
        if closes <= now:
            count, closes = 0, now + window_ms / 1000
        count += 1
        self._windows[key] = (count, closes)
        self._hits += 1
        if self._hits % self._PRUNE_EVERY == 0:  # bound memory: forget closed windows now and then
            self._windows = {k: v for k, v in self._windows.items() if v[1] > now}
        return Hit(count=count, reset_ms=max(0, int((closes - now) * 1000)))

    async def health(self) -> str:
        return "memory"

    async def aclose(self) -> None:
        self._windows.clear()


# KEYS[1] = window key, ARGV[1] = window length in ms. A key without an expiry (which only a crash between
# commands could leave, and a script cannot) is given one rather than counting forever.
_HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


class RedisWindows:
    """Windows shared by every process that uses the same Redis database and key prefix."""

    def __init__(self, url: str, *, prefix: str) -> None:
        self._redis: Redis = Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._prefix = prefix
        self._script = self._redis.register_script(_HIT)

    async def hit(self, key: str, window_ms: int) -> Hit:
        try:
            count, ttl = await self._script(keys=[self._prefix + key], args=[window_ms])
        except RedisError as exc:
            # Fail open: an unreachable Redis must not take the API down with it. The outage is logged
            # (type only) so monitoring sees that limits are not being enforced.
            log.error(
                "rate-limit store unavailable; request not counted", extra={"error_type": type(exc).__name__}
            )
            return Hit(count=0, reset_ms=window_ms)
        return Hit(count=int(count), reset_ms=int(ttl))

    async def ping(self) -> bool:
        return bool(await self._redis.ping())

    async def health(self) -> str:
        try:
            return "redis" if await self.ping() else "redis unreachable"
        except (RedisError, OSError):
            return "redis unreachable"

    async def aclose(self) -> None:
        await self._redis.aclose()


def open_windows(redis_url: str | None, *, prefix: str) -> Windows:
    """Redis-backed windows when a URL is configured, this process's memory otherwise."""
    if redis_url:
        return RedisWindows(redis_url, prefix=prefix)
    return MemoryWindows()
