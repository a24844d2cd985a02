"""The circuit breaker, in memory and in the real local Redis (shared by two breaker instances, as by two
worker processes). The Redis cases need RCM_TEST_REDIS_URL (default redis://127.0.0.1:6379/15) and are
skipped, with that reason shown, only where none answers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from rcm.payers.breaker import (
    Breaker,
    CircuitOpen,
    CircuitState,
    MemoryBreaker,
    RedisBreaker,
    breaker_key,
    guarded,
    open_breaker,
)
from rcm.payers.connector import PermanentConnectorError, TransientConnectorError

KEY = breaker_key("sftp", "sftp://clearinghouse.example:22/")
COOLDOWN = 0.3


@pytest.fixture
def prefix() -> str:
    return f"rcm-test-{uuid.uuid4().hex}:"


@pytest.fixture(params=["memory", "redis"])
async def breaker(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[Breaker]:
    store: Breaker
    if request.param == "redis":
        store = RedisBreaker(
            request.getfixturevalue("redis_url"), prefix=prefix, failures=3, cooldown_seconds=COOLDOWN
        )
    else:
        store = MemoryBreaker(failures=3, cooldown_seconds=COOLDOWN)
    yield store
    await store.aclose()


async def _fail(breaker: Breaker) -> None:
    with pytest.raises(TransientConnectorError):
        async with guarded(breaker, KEY):
            raise TransientConnectorError("sftp", "submit", "cannot reach the server")


async def test_opens_after_consecutive_transient_failures_then_probes(breaker: Breaker) -> None:
    for _ in range(2):
        await _fail(breaker)
    assert await breaker.state(KEY) is CircuitState.CLOSED
    await _fail(breaker)
    assert await breaker.state(KEY) is CircuitState.OPEN

    with pytest.raises(CircuitOpen) as refused:
        async with guarded(breaker, KEY):
            pytest.fail("an open circuit must not let the call through")
    assert 0 < refused.value.retry_after <= COOLDOWN
    assert isinstance(refused.value, TransientConnectorError)  # the job retries it like any transient error

    await asyncio.sleep(COOLDOWN + 0.1)
    first, second = await asyncio.gather(breaker.allow(KEY), breaker.allow(KEY))
    assert sorted([first.allowed, second.allowed]) == [False, True]  # one probe, the other waits for it
    assert await breaker.state(KEY) is CircuitState.HALF_OPEN
    await breaker.record_success(KEY)
    assert await breaker.state(KEY) is CircuitState.CLOSED
    assert (await breaker.allow(KEY)).allowed


async def test_a_failed_probe_opens_it_again(breaker: Breaker) -> None:
    for _ in range(3):
        await _fail(breaker)
    await asyncio.sleep(COOLDOWN + 0.1)
    await _fail(breaker)  # the probe
    assert await breaker.state(KEY) is CircuitState.OPEN
    assert not (await breaker.allow(KEY)).allowed


async def test_success_resets_the_count_and_permanent_errors_do_not_count(breaker: Breaker) -> None:
    await _fail(breaker)
    await _fail(breaker)
    async with guarded(breaker, KEY):
        pass
    for _ in range(5):
        with pytest.raises(PermanentConnectorError):
            async with guarded(breaker, KEY):
                raise PermanentConnectorError("sftp", "submit", "the server refused the credentials")
    await _fail(breaker)
    await _fail(breaker)
    assert await breaker.state(KEY) is CircuitState.CLOSED
    # Another endpoint's circuit is its own.
    other = breaker_key("sftp", "sftp://other.example:22/")
    assert (await breaker.allow(other)).allowed


async def test_redis_circuits_are_shared_by_processes(redis_url: str, prefix: str) -> None:
    one = open_breaker(redis_url, prefix=prefix, failures=2, cooldown_seconds=30)
    two = open_breaker(redis_url, prefix=prefix, failures=2, cooldown_seconds=30)
    assert isinstance(one, RedisBreaker)
    try:
        await one.record_failure(KEY)
        await two.record_failure(KEY)
        decision = await one.allow(KEY)
        assert (decision.allowed, decision.state) == (False, CircuitState.OPEN)
        assert 29 < decision.retry_after <= 30
        assert await two.state(KEY) is CircuitState.OPEN
    finally:
        await one.aclose()
        await two.aclose()


async def test_without_redis_the_breaker_is_this_processes() -> None:
    assert isinstance(open_breaker(None, prefix="rcm:", failures=1, cooldown_seconds=1), MemoryBreaker)
