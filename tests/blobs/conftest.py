"""A tenant scope opened the way a job opens one, for the blob store tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit.events import request_info_from
from rcm.config import Settings
from rcm.crypto.keyring import KeyStore
from rcm.crypto.provider import key_provider
from rcm.identity.testing import client_principal
from rcm.kit.tenant import TenantId
from rcm.tenancy.jobs import job_tenant_scope
from rcm.tenancy.models import Tenant
from rcm.tenancy.scope import TenantScope

ScopeFor = Callable[[Tenant], AbstractAsyncContextManager[TenantScope]]


@pytest.fixture
def keys(settings: Settings) -> KeyStore:
    """The test's key cache, shared by its scopes and by the jobs it runs (a test that rotates evicts it,
    as a deployment's re-encryption waits for every cache to expire)."""
    return KeyStore(key_provider(settings))


@pytest.fixture
def scope_for(sessions: async_sessionmaker[AsyncSession], keys: KeyStore) -> ScopeFor:
    keystore = keys

    @asynccontextmanager
    async def open_scope(tenant: Tenant) -> AsyncIterator[TenantScope]:
        async with job_tenant_scope(
            sessions,
            keystore,
            TenantId(tenant.id),
            actor=client_principal(tenant.id),
            request=request_info_from(None),
            job="tests.blobs",
        ) as scope:
            yield scope

    return open_scope
