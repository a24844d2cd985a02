"""Callers of the dashboard's routes: a practice's owner (the report tests' fixture), a second owner of the
same practice, and the next practice's owner."""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.config import Settings
from rcm.identity.principal import Role
from rcm.identity.testing import mint_access_token, user_principal
from rcm.tenancy.models import Tenant
from tests.reporting.conftest import owner
from tests.support import Api

__all__ = ["owner"]


async def owner_api(
    client: AsyncTestClient[Litestar],
    tenant: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> Api:
    """A practice owner of ``tenant`` (a person of their own: a fresh subject each call)."""
    principal = user_principal(Role.PRACTICE_OWNER, home_tenant=tenant.id)
    token = await mint_access_token(principal, sessions=sessions, settings=settings)
    return Api(client, token, tenant.slug, tenant_id=str(tenant.id))


@pytest.fixture
async def co_owner(
    client: AsyncTestClient[Litestar],
    tenant: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> Api:
    """A second owner of the same practice: a person of their own, with views of their own."""
    return await owner_api(client, tenant, sessions, settings)


@pytest.fixture
async def other_owner(
    client: AsyncTestClient[Litestar],
    other_tenant: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> Api:
    return await owner_api(client, other_tenant, sessions, settings)
