"""Callers of the coding queue: practices with an SLA and a fee schedule, coders, supervisors, reviewers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.codes.importers.icd10cm import from_order_file
from rcm.codes.importers.operator import from_operator_file
from rcm.codes.models import CodeSet
from rcm.codes.service import load_release
from rcm.config import Settings
from rcm.identity.principal import Role
from rcm.identity.testing import mint_access_token, user_principal
from rcm.kit.db import apply_tenant_context, platform_transaction
from rcm.kit.tenant import TenantContext, TenantId
from rcm.tenancy.manifest import validate_manifest
from rcm.tenancy.models import AppUser, StaffAssignment, Tenant
from tests.codes.conftest import write
from tests.codes.test_check import order_line
from tests.codes.test_routes import _clear
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


ICD = [
    ("E11", "0", "Type 2 diabetes mellitus"),
    ("E119", "1", "Type 2 diabetes mellitus without complications"),
    ("I10", "1", "Essential (primary) hypertension"),
    ("E785", "1", "Hyperlipidemia, unspecified"),
]


@pytest.fixture(autouse=True)
async def code_sets(owner_engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[None]:
    """Small committed releases (ICD-10-CM FY2027 and the operator's CPT file, two-digit modifiers with
    it), as the code-set tests make them; the code tables are emptied before and after."""
    await _clear(owner_engine)
    order = write(
        tmp_path / "icd10cm_order_2027.txt", "".join(order_line(i, *row) for i, row in enumerate(ICD))
    )
    cpt = write(
        tmp_path / "cpt.csv",
        "code,description\n99213,Office visit (test wording)\n36415,Venipuncture (test wording)\n"
        "25,Significant separate E/M (test wording)\n",
    )
    async with owner_engine.connect() as conn, conn.begin():
        session = AsyncSession(bind=conn)
        await load_release(
            session,
            from_order_file(
                order, label="FY2027", effective_from=date(2026, 10, 1), effective_through=date(2027, 9, 30)
            ),
        )
        await load_release(
            session, from_operator_file(cpt, CodeSet.CPT, label="CPT test", effective_from=date(2026, 1, 1))
        )
        await session.close()
    yield
    await _clear(owner_engine)
