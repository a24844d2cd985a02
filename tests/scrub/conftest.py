"""A practice with a TIN reference, payers with filing windows and its own scrub rules, and its staff."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.config import Settings
from rcm.identity.principal import Role
from rcm.identity.testing import mint_access_token, user_principal
from rcm.kit.db import platform_transaction
from rcm.kit.tenant import TenantId
from rcm.tenancy.manifest import validate_manifest
from rcm.tenancy.models import Tenant
from rcm.tenancy.service import assign_staff
from tests.conftest import practice_api_for
from tests.identity.conftest import make_user
from tests.support import Api

TIN_ENV = "SCRUB_TEST_TIN"
MANIFEST_RULE = {
    "id": "MCR-EM-25",
    "version": "2026.1",
    "severity": "error",
    "message": "Demo Medicare wants modifier 25 on the visit when a flu shot is billed with it.",
    "when": {"payer_in": ["DEMO-MCR"], "procedure_code_in": ["99213"], "with_procedure_in": ["90686"]},
    "require": {"modifier_in": ["25"]},
}


async def make_scrub_tenant(control: async_sessionmaker[AsyncSession], **extra: Any) -> Tenant:
    slug = f"scrub-{uuid.uuid4().hex[:10]}"
    document = {
        "slug": slug,
        "name": "Scrub test practice",
        "billing_provider": {"npi": "1003000126", "name": "Test Group Practice"},
        "tin_reference": f"env:{TIN_ENV}",
        "payers": [
            {"payer_id": "DEMO-MCR", "name": "Demo Medicare", "timely_filing_days": 365},
            {"payer_id": "DEMO-NOW", "name": "Demo No Window"},
        ],
        "scrub_rules": [MANIFEST_RULE],
        **extra,
    }
    async with platform_transaction(control) as session:
        manifest = validate_manifest(document)
        tenant = Tenant(id=uuid.uuid4(), slug=slug, name="Scrub test practice", manifest=manifest)
        session.add(tenant)
    return tenant


@pytest.fixture(autouse=True)
def tin(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(TIN_ENV, "12-3456789")
    return "123456789"


@pytest.fixture
async def scrub_tenant(control_sessions: async_sessionmaker[AsyncSession]) -> Tenant:
    return await make_scrub_tenant(control_sessions)


@pytest.fixture
async def intake(
    client: AsyncTestClient[Litestar],
    scrub_tenant: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> Api:
    """The practice's own system: it sends the encounters."""
    return await practice_api_for(client, scrub_tenant, sessions, settings)


async def staff_api(
    *,
    role: Role,
    client: AsyncTestClient[Litestar],
    tenant: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    control_sessions: async_sessionmaker[AsyncSession],
) -> Api:
    user = await make_user(control_sessions, [role.value])
    async with platform_transaction(control_sessions) as session:
        await assign_staff(session, TenantId(tenant.id), [user.email])
    token = await mint_access_token(
        user_principal(role, user_id=user.id), sessions=sessions, settings=settings
    )
    return Api(client, token, tenant.slug, tenant_id=str(tenant.id))


@pytest.fixture
async def biller(
    client: AsyncTestClient[Litestar],
    scrub_tenant: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    control_sessions: async_sessionmaker[AsyncSession],
) -> Api:
    return await staff_api(
        role=Role.BILLER,
        client=client,
        tenant=scrub_tenant,
        sessions=sessions,
        settings=settings,
        control_sessions=control_sessions,
    )
