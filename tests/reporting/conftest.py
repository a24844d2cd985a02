"""The report tests' fixtures: the claims tests' practices, intake and claim builder, and the practice owner
who reads the reports (a person whose token names practice A)."""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.config import Settings
from rcm.identity.principal import Role
from rcm.identity.testing import mint_access_token, user_principal
from rcm.kit.tenant import TenantId
from rcm.tenancy.models import Tenant
from tests.claims.conftest import (  # noqa: F401 - fixtures
    claims,
    intake,
    make_staff,
    other_intake,
    other_practice,
    payer_directory,
    practice,
)
from tests.support import Api


@pytest.fixture
async def owner(
    client: AsyncTestClient[Litestar],
    tenant: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> Api:
    principal = user_principal(Role.PRACTICE_OWNER, home_tenant=TenantId(tenant.id))
    token = await mint_access_token(principal, sessions=sessions, settings=settings)
    return Api(client, token, tenant.slug, tenant_id=str(tenant.id))
