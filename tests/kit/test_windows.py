"""Rate-limit windows: in memory and in the real local Redis, shared by two app instances.

The Redis tests need a Redis server: RCM_TEST_REDIS_URL (default redis://127.0.0.1:6379/15). They are skipped,
with that reason shown, only where none answers. Every test writes under a key prefix of its own, so runs
sharing the server never see each other's windows.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import pytest
from litestar.testing import AsyncTestClient
from pydantic import SecretStr
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.app import create_app
from rcm.config import Settings
from rcm.identity.principal import Role
from rcm.identity.testing import mint_access_token, user_principal
from rcm.kit.windows import MemoryWindows, RedisWindows, Windows

REDIS_URL = os.environ.get("RCM_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
PUBLIC_ROUTE = "/.well-known/oauth-authorization-server"


@pytest.fixture(scope="session")
def redis_url() -> str:
    client = SyncRedis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except (RedisError, OSError) as exc:
        pytest.skip(f"no Redis answers at RCM_TEST_REDIS_URL={REDIS_URL} ({type(exc).__name__})")
    finally:
        client.close()
    return REDIS_URL


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
    assert 0 < ttl <= 60_000


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
        assert (await first.get(PUBLIC_ROUTE)).status_code == 200
        assert (await second.get(PUBLIC_ROUTE)).status_code == 200
        assert (await first.get(PUBLIC_ROUTE)).status_code == 200
        refused = await second.get(PUBLIC_ROUTE)
        assert refused.status_code == 429
        assert 0 < int(refused.headers["retry-after"]) <= 60
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
        ok = await first.get("/api/v1/admin/break-glass", headers=headers)
        assert ok.status_code == 200
        assert ok.headers["ratelimit-limit"] == "2"
        assert ok.headers["ratelimit-remaining"] == "1"
        assert (await second.get("/api/v1/admin/break-glass", headers=headers)).status_code == 200
        assert (await first.get("/api/v1/admin/break-glass", headers=headers)).status_code == 429
