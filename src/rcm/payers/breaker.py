"""A circuit breaker per connector and endpoint, so a clearinghouse that is down is not hammered by every
worker's retries, and its jobs wait out a cool-down instead of burning their retry budget.

closed --(``failures`` consecutive transient failures)--> open --(``cooldown`` elapsed)--> half-open:
one probe call is let through (others still wait); its success closes the circuit, its failure opens it
again for another cool-down. Permanent errors (credentials, 4xx) do not count: they say nothing about
whether the far side is up, and they go to the dead-letter queue anyway.

With ``RCM_REDIS_URL`` the state is one Redis hash per key, read and changed by one Lua script on the
server's clock, so every worker process sees the same circuit; otherwise it lives in this process's memory.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from rcm.config import Settings
from rcm.payers.connector import TransientConnectorError

log = logging.getLogger(__name__)


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    state: CircuitState
    retry_after: float  # seconds until a call may be tried (0 when allowed)


class CircuitOpen(TransientConnectorError):
    """The circuit is open: the call was not made. Transient, with the cool-down left as ``retry_after``."""

    def __init__(self, key: str, retry_after: float) -> None:
        super().__init__(key, "call", "circuit open after repeated failures", retry_after=retry_after)


class Breaker(Protocol):
    async def allow(self, key: str) -> Decision: ...

    async def record_success(self, key: str) -> None: ...

    async def record_failure(self, key: str) -> None: ...

    async def state(self, key: str) -> CircuitState: ...

    async def aclose(self) -> None: ...


def breaker_key(connector: str, endpoint: str) -> str:
    """One circuit per connector and endpoint: two practices on one clearinghouse share it (the far side is
    down for both), two clearinghouses on one connector do not."""
    return f"{connector}|{endpoint}"


@asynccontextmanager
async def guarded(breaker: Breaker, key: str) -> AsyncIterator[None]:
    """Run one connector call under the breaker: refused with ``CircuitOpen`` while open; a transient error
    counts as a failure, success closes the circuit; permanent errors pass through without counting."""
    decision = await breaker.allow(key)
    if not decision.allowed:
        raise CircuitOpen(key, decision.retry_after)
    try:
        yield
    except TransientConnectorError:
        await breaker.record_failure(key)
        raise
    await breaker.record_success(key)


class MemoryBreaker:
    """This process's circuits. Correct for one worker process; several would each count their own."""

    def __init__(self, *, failures: int, cooldown_seconds: float) -> None:
        self._threshold = failures
        self._cooldown = cooldown_seconds
        self._circuits: dict[str, tuple[CircuitState, int, float]] = {}  # key -> (state, failures, since)

    async def allow(self, key: str) -> Decision:
        # No await between read and write: on one event loop this is atomic.
        state, failures, since = self._circuits.get(key, (CircuitState.CLOSED, 0, 0.0))
        now = time.monotonic()
        if state is CircuitState.CLOSED:
            return Decision(True, state, 0.0)
        left = since + self._cooldown - now
        if left > 0:
            return Decision(False, state, left)
        # Cool-down over: this caller is the probe; others wait another cool-down for its outcome.
        self._circuits[key] = (CircuitState.HALF_OPEN, failures, now)
        return Decision(True, CircuitState.HALF_OPEN, 0.0)

    async def record_success(self, key: str) -> None:
        self._circuits.pop(key, None)

    async def record_failure(self, key: str) -> None:
        state, failures, _ = self._circuits.get(key, (CircuitState.CLOSED, 0, 0.0))
        failures += 1
        if state is CircuitState.HALF_OPEN or failures >= self._threshold:
            self._circuits[key] = (CircuitState.OPEN, failures, time.monotonic())
        else:
            self._circuits[key] = (CircuitState.CLOSED, failures, 0.0)

    async def state(self, key: str) -> CircuitState:
        return self._circuits.get(key, (CircuitState.CLOSED, 0, 0.0))[0]

    async def aclose(self) -> None:
        self._circuits.clear()


# KEYS[1] = the circuit's hash {state, failures, since (ms, server clock)}; ARGV = op, threshold, cooldown
# in ms. Returns {allowed (0/1), state, retry_after ms}. The key expires a day after its last change, so
# circuits of retired endpoints do not pile up; a closed circuit with no failures is simply deleted.
_BREAKER = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local op, threshold, cooldown = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local failures = tonumber(redis.call('HGET', KEYS[1], 'failures') or '0')
local since = tonumber(redis.call('HGET', KEYS[1], 'since') or '0')
if op == 'allow' then
  if state == 'closed' then return {1, state, 0} end
  local left = since + cooldown - now
  if left > 0 then return {0, state, left} end
  redis.call('HSET', KEYS[1], 'state', 'half_open', 'since', now)
  redis.call('PEXPIRE', KEYS[1], 86400000)
  return {1, 'half_open', 0}
elseif op == 'success' then
  redis.call('DEL', KEYS[1])
  return {1, 'closed', 0}
elseif op == 'failure' then
  failures = failures + 1
  if state == 'half_open' or failures >= threshold then
    state = 'open'
    since = now
  else
    state = 'closed'
  end
  redis.call('HSET', KEYS[1], 'state', state, 'failures', failures, 'since', since)
  redis.call('PEXPIRE', KEYS[1], 86400000)
  return {1, state, 0}
end
return {1, state, 0}
"""


class RedisBreaker:
    """Circuits shared by every worker process using the same Redis database and key prefix."""

    def __init__(self, url: str, *, prefix: str, failures: int, cooldown_seconds: float) -> None:
        self._redis: Redis = Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._prefix = prefix + "breaker:"
        self._threshold = failures
        self._cooldown_ms = int(cooldown_seconds * 1000)
        self._script = self._redis.register_script(_BREAKER)

    async def _run(self, op: str, key: str) -> Decision:
        try:
            allowed, state, left = await self._script(
                keys=[self._prefix + key], args=[op, self._threshold, self._cooldown_ms]
            )
        except RedisError as exc:
            # Fail closed-circuit (calls go through): an unreachable Redis must not stop every submission;
            # the connector's own errors and the job retries still apply. Logged (type only) for monitoring.
            log.error("circuit store unavailable; call not guarded", extra={"error_type": type(exc).__name__})
            return Decision(True, CircuitState.CLOSED, 0.0)
        name = state.decode() if isinstance(state, bytes) else str(state)
        return Decision(bool(int(allowed)), CircuitState(name), int(left) / 1000)

    async def allow(self, key: str) -> Decision:
        return await self._run("allow", key)

    async def record_success(self, key: str) -> None:
        await self._run("success", key)

    async def record_failure(self, key: str) -> None:
        await self._run("failure", key)

    async def state(self, key: str) -> CircuitState:
        return (await self._run("state", key)).state

    async def aclose(self) -> None:
        await self._redis.aclose()


def open_breaker(redis_url: str | None, *, prefix: str, failures: int, cooldown_seconds: float) -> Breaker:
    """Redis-backed circuits when a URL is configured, this process's memory otherwise."""
    if redis_url:
        return RedisBreaker(redis_url, prefix=prefix, failures=failures, cooldown_seconds=cooldown_seconds)
    return MemoryBreaker(failures=failures, cooldown_seconds=cooldown_seconds)


_lock = threading.Lock()
_breakers: dict[asyncio.AbstractEventLoop, Breaker] = {}


def breaker_for(settings: Settings) -> Breaker:
    """This event loop's breaker (a Redis client belongs to the loop it was made on), shared by every call
    to a payer from this process (submissions, eligibility checks, status inquiries); shared across the
    processes through RCM_REDIS_URL, this process's memory otherwise."""
    loop = asyncio.get_running_loop()
    with _lock:
        found = _breakers.get(loop)
        if found is None:
            found = _breakers[loop] = open_breaker(
                settings.redis_url.get_secret_value() if settings.redis_url else None,
                prefix=settings.redis_key_prefix,
                failures=settings.connector_breaker_failures,
                cooldown_seconds=settings.connector_breaker_cooldown_seconds,
            )
        return found
