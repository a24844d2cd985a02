"""Callers of the coding queue: practices with an SLA and a fee schedule, coders, supervisors, reviewers."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.config import Settings
from rcm.identity.principal import Role
from rcm.identity.testing import mint_access_token, user_principal
from rcm.kit.db import apply_tenant_context, platform_transaction
from rcm.kit.tenant import TenantContext, TenantId
from rcm.tenancy.manifest import validate_manifest
from rcm.tenancy.models import AppUser, StaffAssignment, Tenant
from tests.conftest import practice_api_for
from tests.identity.conftest import make_user
from tests.support import Api

FEES = [
    {"code": "99213", "charge_cents": 12500},
    {"code": "99213", "modifier": "25", "charge_cents": 13000},
    {"code": "36415", "charge_cents": 1500},
]


async def make_practice(control: async_sessionmaker[AsyncSession], label: str, **extra: Any) -> Tenant:
    slug = f"{label}-{uuid.uuid4().hex[:10]}"
    manifest = validate_manifest(
        {
            "slug": slug,
            "name": f"Coding practice {label}",
            "billing_provider": {"npi": "1003000126", "name": "Test Group Practice"},
            "payers": [{"payer_id": "DEMO-MCR", "name": "Demo Medicare"}],
            **extra,
        }
    )
    async with platform_transaction(control) as session:
        tenant = Tenant(id=uuid.uuid4(), slug=slug, name=f"Coding practice {label}", manifest=manifest)
        session.add(tenant)
    return tenant


@pytest.fixture
async def tenant(control_sessions: async_sessionmaker[AsyncSession]) -> Tenant:
    """Practice A: its coding SLA (priority 2, due in 24 hours) and fee schedule in its manifest."""
    return await make_practice(
        control_sessions, "a", sla={"coding": {"priority": 2, "due_in_hours": 24}}, fee_schedule=FEES
    )


async def assign(
    control: async_sessionmaker[AsyncSession], user: AppUser, *tenants: Tenant, qa_reviewer: bool = False
) -> None:
    async with platform_transaction(control) as session:
        for tenant in tenants:
            await apply_tenant_context(session, TenantContext.single(TenantId(tenant.id)))
            session.add(StaffAssignment(tenant_id=tenant.id, user_id=user.id, qa_reviewer=qa_reviewer))
            await session.flush()


class Staff:
    """A staff member calling the cross-practice routes (/api/v1/coding, /api/v1/supervision)."""

    def __init__(self, client: AsyncTestClient[Litestar], token: str, user: AppUser) -> None:
        self.client = client
        self.token = token
        self.user = user

    @property
    def subject(self) -> str:
        return str(self.user.id)

    def headers(self, *, key: bool = False) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"}
        if key:
            headers["Idempotency-Key"] = uuid.uuid4().hex
        return headers

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(f"/api/v1{path}", params=params or None, headers=self.headers())

    async def post(self, path: str, json: Any = None) -> httpx.Response:
        return await self.client.post(f"/api/v1{path}", json=json, headers=self.headers(key=True))

    async def put(self, path: str, json: Any) -> httpx.Response:
        return await self.client.put(f"/api/v1{path}", json=json, headers=self.headers())

    async def delete(self, path: str) -> httpx.Response:
        return await self.client.delete(f"/api/v1{path}", headers=self.headers())


class MakeStaff:
    def __init__(
        self,
        client: AsyncTestClient[Litestar],
        sessions: async_sessionmaker[AsyncSession],
        control: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        self.client, self.sessions, self.control, self.settings = client, sessions, control, settings

    async def __call__(
        self, role: Role, *tenants: Tenant, qa_reviewer: bool = False, mfa: bool = False
    ) -> Staff:
        user = await make_user(self.control, [role.value])
        await assign(self.control, user, *tenants, qa_reviewer=qa_reviewer)
        token = await mint_access_token(
            user_principal(role, user_id=user.id, mfa=mfa), sessions=self.sessions, settings=self.settings
        )
        return Staff(self.client, token, user)


@pytest.fixture
def make_staff(
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> MakeStaff:
    return MakeStaff(client, sessions, control_sessions, settings)


@pytest.fixture
async def practice_api(
    client: AsyncTestClient[Litestar],
    tenant: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> Api:
    return await practice_api_for(client, tenant, sessions, settings)
