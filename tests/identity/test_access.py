"""resolve_tenant_access, break-glass, and the api_client RLS lookup policy."""

from __future__ import annotations

from datetime import timedelta

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit.events import AuditEvent
from rcm.identity.access import AccessBasis, resolve_tenant_access
from rcm.identity.models import ApiClient
from rcm.identity.principal import Role
from rcm.identity.testing import client_principal, user_principal
from rcm.kit.db import platform_transaction, tenant_transaction
from rcm.kit.models import utcnow
from rcm.kit.tenant import TenantContext, TenantId
from rcm.tenancy.models import Tenant
from rcm.tenancy.service import assign_staff
from tests.identity.conftest import Mint, idem, make_client, make_user

Client = AsyncTestClient[Litestar]
Sessions = async_sessionmaker[AsyncSession]


async def test_practice_client_reaches_only_its_home_tenant(
    sessions: Sessions, tenant: Tenant, other_tenant: Tenant
) -> None:
    principal = client_principal(tenant.id)
    async with platform_transaction(sessions) as session:
        mine = await resolve_tenant_access(session, principal, tenant)
        theirs = await resolve_tenant_access(session, principal, other_tenant)
        # A refusal leaves no tenant context behind in the transaction.
        assert (await session.execute(text("SELECT current_setting('rcm.tenant_id', true)"))).scalar() == ""
    assert mine.allowed
    assert mine.basis is AccessBasis.HOME_TENANT
    assert mine.context == TenantContext.single(TenantId(tenant.id))
    assert not theirs.allowed
    assert theirs.context is None


async def test_staff_need_an_assignment(
    sessions: Sessions,
    tenant: Tenant,
    other_tenant: Tenant,
    control_sessions: async_sessionmaker[AsyncSession],
) -> None:
    user = await make_user(control_sessions, ["coder"])
    async with platform_transaction(control_sessions) as session:
        await assign_staff(session, TenantId(tenant.id), [user.email])
    principal = user_principal(Role.CODER, user_id=user.id)
    async with platform_transaction(sessions) as session:
        assigned = await resolve_tenant_access(session, principal, tenant)
        unassigned = await resolve_tenant_access(session, principal, other_tenant)
    assert assigned.allowed
    assert assigned.basis is AccessBasis.ASSIGNMENT
    assert not unassigned.allowed


async def test_suspended_tenant_is_refused_even_to_its_own_client(
    sessions: Sessions, control_sessions: Sessions, tenant: Tenant
) -> None:
    async with platform_transaction(control_sessions) as session:
        await session.execute(update(Tenant).where(Tenant.id == tenant.id).values(status="suspended"))
    async with platform_transaction(sessions) as session:
        decision = await resolve_tenant_access(
            session,
            client_principal(tenant.id),
            tenant.__class__(id=tenant.id, slug=tenant.slug, name=tenant.name, status="suspended"),
        )
    assert not decision.allowed
    assert decision.reason == "tenant_not_active"


async def test_auditor_scope_and_admin_without_break_glass(
    sessions: Sessions, tenant: Tenant, other_tenant: Tenant
) -> None:
    scoped = user_principal(Role.AUDITOR, auditor_tenants=(tenant.id,))
    everywhere = user_principal(Role.AUDITOR)
    admin = user_principal(Role.ADMIN, mfa=True)
    async with platform_transaction(sessions) as session:
        assert (await resolve_tenant_access(session, scoped, tenant)).allowed
        assert not (await resolve_tenant_access(session, scoped, other_tenant)).allowed
        assert (await resolve_tenant_access(session, everywhere, other_tenant)).allowed
        assert not (await resolve_tenant_access(session, admin, tenant)).allowed


async def test_break_glass_grants_access_until_expiry(
    *,
    client: Client,
    sessions: Sessions,
    mint: Mint,
    tenant: Tenant,
    audit_log: list[AuditEvent],
    control_sessions: async_sessionmaker[AsyncSession],
) -> None:
    user = await make_user(control_sessions, ["biller"])
    principal = user_principal(Role.BILLER, user_id=user.id, mfa=True)
    async with platform_transaction(sessions) as session:
        assert not (await resolve_tenant_access(session, principal, tenant)).allowed

    token = await mint(principal)
    response = await client.post(
        f"/api/v1/tenants/{tenant.slug}/break-glass",
        json={
            "category": "payer_deadline",
            "reason": "Payer called about a denied claim; assigned biller is out",
            "minutes": 30,
        },
        headers=idem({"Authorization": f"Bearer {token}"}),
    )
    assert response.status_code == 201, response.text
    grant = response.json()
    assert [e.event_type for e in audit_log] == ["break_glass.open"]

    async with platform_transaction(sessions) as session:
        now = await resolve_tenant_access(session, principal, tenant)
        later = await resolve_tenant_access(session, principal, tenant, now=utcnow() + timedelta(minutes=31))
    assert now.allowed
    assert now.basis is AccessBasis.BREAK_GLASS
    assert str(now.break_glass_grant_id) == grant["id"]
    assert not later.allowed


async def test_break_glass_requires_a_reason_and_a_short_window(
    *,
    client: Client,
    sessions: Sessions,
    mint: Mint,
    tenant: Tenant,
    other_tenant: Tenant,
    control_sessions: async_sessionmaker[AsyncSession],
) -> None:
    user = await make_user(control_sessions, ["coder"])
    token = await mint(user_principal(Role.CODER, user_id=user.id, mfa=True))
    headers = {"Authorization": f"Bearer {token}"}
    url = f"/api/v1/tenants/{tenant.slug}/break-glass"
    reason = "Clearinghouse outage; the assigned coder cannot reach the chart"
    for body in (
        {"category": "system_outage", "reason": "", "minutes": 30},
        {"category": "system_outage", "minutes": 30},
        {"reason": reason, "minutes": 30},
        {"category": "system_outage", "reason": reason, "minutes": 241},
    ):
        response = await client.post(url, json=body, headers=idem(headers))
        assert response.status_code == 422, body
    blank = await client.post(
        url, json={"category": "system_outage", "reason": "   ", "minutes": 30}, headers=idem(headers)
    )
    assert blank.status_code == 422
    missing = await client.post(
        "/api/v1/tenants/no-such-practice/break-glass",
        json={"category": "system_outage", "reason": reason},
        headers=idem(headers),
    )
    assert missing.status_code == 404
    # Practice people cannot break the glass into anyone's tenant.
    owner = await mint(user_principal(Role.PRACTICE_OWNER, home_tenant=other_tenant.id, mfa=True))
    refused = await client.post(
        url,
        json={"category": "system_outage", "reason": reason},
        headers=idem({"Authorization": f"Bearer {owner}"}),
    )
    assert refused.status_code == 403


async def test_api_client_rows_are_invisible_without_context_except_by_presented_id(
    sessions: Sessions,
    tenant: Tenant,
    other_tenant: Tenant,
    control_sessions: async_sessionmaker[AsyncSession],
) -> None:
    mine = await make_client(control_sessions, tenant)
    theirs = await make_client(control_sessions, other_tenant)
    async with platform_transaction(sessions) as session:
        assert (await session.execute(select(ApiClient))).scalars().all() == []
    async with platform_transaction(sessions) as session:
        await session.execute(
            text("SELECT set_config('rcm.client_id', :c, true)"), {"c": mine.client.client_id}
        )
        seen = (await session.execute(select(ApiClient.client_id))).scalars().all()
        assert seen == [mine.client.client_id]
    async with platform_transaction(control_sessions) as session:
        await session.execute(
            text("SELECT set_config('rcm.client_id', :c, true)"), {"c": mine.client.client_id}
        )
        # The lookup policy is SELECT-only: it grants no write, even to the role that may write clients.
        await session.execute(update(ApiClient).values(name="renamed"))
    async with tenant_transaction(sessions, TenantContext.single(TenantId(tenant.id))) as session:
        names = (await session.execute(select(ApiClient.name, ApiClient.client_id))).all()
    assert all(client_id != theirs.client.client_id for _, client_id in names)
    assert ("Test EHR", mine.client.client_id) in names
