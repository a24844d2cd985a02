"""The tenant dependency uses the process's own tenant cache (the one the lifespan made and status changes
clear), never a private one per request that would re-read every tenant on every call."""

from __future__ import annotations

from litestar.datastructures import State

from rcm.tenancy.cache import TenantCache
from rcm.tenancy.dependencies import STATE_KEY, tenant_cache


def test_the_apps_cache_is_used_as_it_is() -> None:
    made = TenantCache(5)
    state = State({STATE_KEY: made})
    assert tenant_cache(state) is made
    assert tenant_cache(state) is made


def test_without_one_a_single_uncached_one_is_made_and_kept() -> None:
    state = State()
    first = tenant_cache(state)
    assert state[STATE_KEY] is first
    assert tenant_cache(state) is first
