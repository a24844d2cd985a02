"""Rate-limit windows: in memory and in the real local Redis, shared by two app instances.

The Redis tests need a Redis server: RCM_TEST_REDIS_URL (default redis://127.0.0.1:6379/15). They are skipped,
with that reason shown, only where none answers. Every test writes under a key prefix of its own, so runs
sharing the server never see each other's windows.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from litestar.testing import AsyncTestClient
from pydantic import SecretStr
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.app import create_app
from rcm.config import Settings
from rcm.identity.principal import Role
from rcm.identity.testing import mint_access_token, user_principal
from rcm.kit.windows import Hit, MemoryWindows, RedisWindows, Windows

PUBLIC_ROUTE = "/.well-known/oauth-authorization-server"


@pytest.fixture
async def mint_admin(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> str:
    return await mint_access_token(user_principal(Role.ADMIN, mfa=True), sessions=sessions, settings=settings)


@pytest.fixture
def prefix() -> str:
    return f"rcm-test-{uuid.uuid4().hex}:"


@pytest.fixture(params=["memory", "redis"])
async def windows(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[Windows]:
    store: Windows
    if request.param == "redis":
        store = RedisWindows(request.getfixturevalue("redis_url"), prefix=prefix)
    else:
        store = MemoryWindows()
    yield store
    await store.aclose()


async def test_concurrent_hits_are_each_counted_once(windows: Windows) -> None:
    hits = await asyncio.gather(*(windows.hit("caller", 60_000) for _ in range(40)))
    assert sorted(h.count for h in hits) == list(range(1, 41))
    assert all(0 < h.reset_ms <= 60_000 for h in hits)
    assert (await windows.hit("someone-else", 60_000)).count == 1


async def test_a_window_closes_after_its_length(windows: Windows) -> None:
    assert (await windows.hit("caller", 150)).count == 1
    assert (await windows.hit("caller", 150)).count == 2
    await asyncio.sleep(0.3)
    fresh = await windows.hit("caller", 150)
    assert fresh.count == 1
    assert fresh.reset_ms <= 150


async def _just_after_a_boundary(window_ms: int) -> None:
    """Wait until the clock is in the first tenth of a bucket (buckets are aligned to the clock)."""
    into = time.time_ns() // 1_000_000 % window_ms
    if into > window_ms // 10:
        await asyncio.sleep((window_ms - into + 5) / 1000)


async def test_a_burst_at_the_boundary_counts_against_the_next_window(windows: Windows) -> None:
    """Fixed windows would allow the limit twice in a row across a boundary; the sliding one does not."""
    window = 1_000
    await _just_after_a_boundary(window)
    await asyncio.sleep(0.75)  # late in the bucket
    for _ in range(10):
        await windows.hit("burst", window)
    await _just_after_a_boundary(window)
    after = await windows.hit("burst", window)
    assert after.previous == 10
    assert after.current == 1
    assert after.count >= 9  # at most a tenth of the previous bucket has slid out
    assert after.retry_after_ms(10) > 0
    assert after.retry_after_ms(20) == 0


def test_retry_after_is_when_the_window_next_has_room() -> None:
    # 10 hits in the previous bucket, 2 in this one, 100 ms into a 1,000 ms bucket: count 9 + 2 = 11.
    hit = Hit(current=2, previous=10, elapsed_ms=100, window_ms=1_000)
    assert hit.count == 11
    wait = hit.retry_after_ms(10)
    later = Hit(current=3, previous=10, elapsed_ms=100 + wait, window_ms=1_000)
    sooner = Hit(current=3, previous=10, elapsed_ms=100 + wait - 2, window_ms=1_000)
    assert later.count <= 10 < sooner.count
    # This bucket alone is over the limit: the wait runs into the next bucket.
    full = Hit(current=12, previous=0, elapsed_ms=500, window_ms=1_000)
    wait = full.retry_after_ms(10)
    assert wait > 500
    next_bucket = Hit(current=1, previous=12, elapsed_ms=wait - 500, window_ms=1_000)
    assert next_bucket.count <= 10
    assert Hit(current=1, previous=12, elapsed_ms=wait - 502, window_ms=1_000).count > 10


async def test_redis_window_keys_expire(redis_url: str, prefix: str) -> None:
    """No window key is left in Redis without an expiry (it would count forever)."""
    store = RedisWindows(redis_url, prefix=prefix)
    await store.hit("caller", 60_000)
    client: Redis = Redis.from_url(redis_url)
    try:
        ttl = await client.pttl(prefix + "caller")
    finally:
        await client.aclose()
        await store.aclose()
    assert 60_000 < ttl <= 120_000  # two windows: the bucket stays the "previous" one for a window more


async def test_an_unreachable_redis_fails_open() -> None:
    """A Redis outage must not take the API down: the hit is not counted, and the outage is logged."""
    store = RedisWindows("redis://127.0.0.1:1/0", prefix="unreachable:")
    try:
        hit = await store.hit("caller", 60_000)
    finally:
        await store.aclose()
    assert hit.count == 0


async def test_readiness_names_the_rate_limit_store(windows: Windows) -> None:
    """/readyz reports where limits are counted; an unreachable Redis is reported, not hidden."""
    assert await windows.health() == ("memory" if isinstance(windows, MemoryWindows) else "redis")
    store = RedisWindows("redis://127.0.0.1:1/0", prefix="unreachable:")
    try:
        assert await store.health() == "redis unreachable"
    finally:
        await store.aclose()


async def _well_inside_a_minute() -> None:
    """Wait for the next minute when less than 15 s of this one are left: the app's windows are minutes, and a
    few requests straddling a boundary see the earlier bucket weighted by what is left of it (a count of 2
    weighs 1.98 a moment later), so a limit reached just before the boundary is not yet reached after it."""
    if time.time() % 60 > 45:
        await _just_after_a_boundary(60_000)


def _shared(settings: Settings, redis_url: str, prefix: str, **limits: int) -> Settings:
    return settings.model_copy(
        update={"redis_url": SecretStr(redis_url), "redis_key_prefix": prefix, **limits}
    )


async def test_two_app_instances_share_one_per_address_limit(
    settings: Settings, redis_url: str, prefix: str
) -> None:
    """Two API replicas (two apps, two connection pools) behind one Redis enforce one window."""
    shared = _shared(settings, redis_url, prefix, rate_limit_per_ip_per_minute=3)
    async with (
        AsyncTestClient(app=create_app(shared)) as first,
        AsyncTestClient(app=create_app(shared)) as second,
    ):
        await _well_inside_a_minute()
        assert (await first.get(PUBLIC_ROUTE)).status_code == 200
        assert (await second.get(PUBLIC_ROUTE)).status_code == 200
        assert (await first.get(PUBLIC_ROUTE)).status_code == 200
        refused = await second.get(PUBLIC_ROUTE)
        assert refused.status_code == 429
        # The window slides: a bucket already over the limit keeps weighing into the next one, so the wait
        # can run past the end of this minute (never past two).
        assert 0 < int(refused.headers["retry-after"]) <= 120
        assert (await first.get(PUBLIC_ROUTE)).status_code == 429
    # A deployment with another prefix has windows of its own.
    other = _shared(settings, redis_url, prefix + "other:", rate_limit_per_ip_per_minute=3)
    async with AsyncTestClient(app=create_app(other)) as third:
        assert (await third.get(PUBLIC_ROUTE)).status_code == 200


async def test_two_app_instances_share_one_per_caller_limit(
    settings: Settings, redis_url: str, prefix: str, mint_admin: str
) -> None:
    shared = _shared(settings, redis_url, prefix, rate_limit_per_minute=2)
    headers = {"Authorization": f"Bearer {mint_admin}"}
    async with (
        AsyncTestClient(app=create_app(shared)) as first,
        AsyncTestClient(app=create_app(shared)) as second,
    ):
        await _well_inside_a_minute()
        ok = await first.get("/api/v1/admin/break-glass", headers=headers)
        assert ok.status_code == 200
        assert ok.headers["ratelimit-limit"] == "2"
        assert ok.headers["ratelimit-remaining"] == "1"
        assert (await second.get("/api/v1/admin/break-glass", headers=headers)).status_code == 200
        assert (await first.get("/api/v1/admin/break-glass", headers=headers)).status_code == 429
