"""Sliding-window request counters: in process memory, or in Redis shared by every API replica.

A fixed window lets a caller spend its whole quota at the end of one window and again at the start of the
next: twice the limit within seconds. Each key therefore counts hits in buckets one window long, aligned to
the clock, and a hit is judged by the sliding estimate ``previous bucket x (share of it still inside the last
window) + current bucket`` (the approximation Cloudflare and Figma describe; exact for evenly spread
traffic, and never lets a boundary burst reach twice the limit).

In Redis the increment, the pruning of old buckets, the expiry and the reads run as one Lua script on the
server's clock, so concurrent hits from any number of replicas are counted exactly once and no key is left
without an expiry.
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
    current: int  # hits in the current bucket, this one included
    previous: int  # hits in the bucket before it
    elapsed_ms: int  # how far into the current bucket this hit fell
    window_ms: int

    @property
    def count(self) -> int:
        """Hits within the last window, as the sliding estimate counts them (this one included)."""
        remaining = self.window_ms - self.elapsed_ms
        return self.previous * remaining // self.window_ms + self.current

    @property
    def reset_ms(self) -> int:
        """Milliseconds until the current bucket closes (the RateLimit-Reset a client paces itself by)."""
        return max(0, self.window_ms - self.elapsed_ms)

    def retry_after_ms(self, limit: int) -> int:
        """Milliseconds until one more hit would count no more than ``limit`` (0 when it would now).

        Refused hits are counted too, so a caller that keeps hammering keeps its window full.
        """
        w, e, p, c = self.window_ms, self.elapsed_ms, self.previous, self.current
        if self.count < limit:
            return 0
        if c < limit:
            # Within this bucket: wait for the previous bucket's weight to decay below the room left.
            return max(0, -(-((w - e) * p - w * (limit - c)) // p) + 1) if p else 0
        # This bucket alone is over the limit: into the next, until its weight decays below the limit.
        return (w - e) + (-(-w * (c - limit) // c)) + 1


class Windows(Protocol):
    async def hit(self, key: str, window_ms: int) -> Hit: ...

    async def health(self) -> str: ...

    async def aclose(self) -> None: ...


class MemoryWindows:
    """One process's windows. Correct for a single API process; N replicas would each allow the limit."""

    _PRUNE_EVERY = 1024

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[int, int, int]] = {}  # key -> (bucket number, its count, previous)
        self._hits = 0

    async def hit(self, key: str, window_ms: int) -> Hit:
        # No await between read and write: on one event loop this is atomic.
        now = time.time_ns() // 1_000_000
        bucket, elapsed = divmod(now, window_ms)
        number, count, previous = self._buckets.get(key, (bucket, 0, 0))
        if number != bucket:
            previous = count if number == bucket - 1 else 0
            count = 0
        count += 1
        self._buckets[key] = (bucket, count, previous)
        self._hits += 1
        if self._hits % self._PRUNE_EVERY == 0:  # bound memory: forget keys idle for two windows
            self._buckets = {k: v for k, v in self._buckets.items() if v[0] >= bucket - 1}
        return Hit(current=count, previous=previous, elapsed_ms=elapsed, window_ms=window_ms)

    async def health(self) -> str:
        return "memory"

    async def aclose(self) -> None:
        self._buckets.clear()


# KEYS[1] = the caller's hash of buckets, ARGV[1] = window length in ms. One hash per caller keeps the script
# to its declared key (Redis Cluster routes by it). Buckets older than the previous one are dropped when a
# new bucket opens; the key lives two windows past its last hit.
_HIT = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local window = tonumber(ARGV[1])
local bucket = math.floor(now / window)
local current = redis.call('HINCRBY', KEYS[1], bucket, 1)
if current == 1 then
  for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
    if tonumber(field) < bucket - 1 then
      redis.call('HDEL', KEYS[1], field)
    end
  end
end
local previous = tonumber(redis.call('HGET', KEYS[1], bucket - 1) or '0')
redis.call('PEXPIRE', KEYS[1], 2 * window)
return {current, previous, now - bucket * window}
"""


class RedisWindows:
    """Windows shared by every process that uses the same Redis database and key prefix."""

    def __init__(self, url: str, *, prefix: str) -> None:
        self._redis: Redis = Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._prefix = prefix
        self._script = self._redis.register_script(_HIT)

    async def hit(self, key: str, window_ms: int) -> Hit:
        try:
            current, previous, elapsed = await self._script(keys=[self._prefix + key], args=[window_ms])
        except RedisError as exc:
            # Fail open: an unreachable Redis must not take the API down with it. The outage is logged
            # (type only) so monitoring sees that limits are not being enforced.
            log.error(
                "rate-limit store unavailable; request not counted", extra={"error_type": type(exc).__name__}
            )
            return Hit(current=0, previous=0, elapsed_ms=0, window_ms=window_ms)
        return Hit(current=int(current), previous=int(previous), elapsed_ms=int(elapsed), window_ms=window_ms)

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
