"""An auditor's scope: assigned practices (or a home practice); with neither, the whole billing company."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.config import Settings
from rcm.identity.cli import exchange_in_process
from rcm.identity.keys import KeyRing
from rcm.identity.tokens import verify_access_token
from rcm.kit.db import platform_transaction
from rcm.kit.tenant import TenantId
from rcm.tenancy.service import assign_staff
from tests.conftest import make_tenant
from tests.identity.conftest import make_user


async def test_auditor_tokens_carry_their_assigned_tenants(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
) -> None:
    a, b, c = [await make_tenant(control_sessions, label) for label in ("aud-a", "aud-b", "aud-c")]
    scoped = await make_user(control_sessions, ["auditor"])
    company_wide = await make_user(control_sessions, ["auditor"])
    async with platform_transaction(control_sessions) as session:
        for tenant in (a, b):
            await assign_staff(session, TenantId(tenant.id), [scoped.email])
    keys = await KeyRing(settings, control=control_sessions).verification_keys(sessions)

    result = await exchange_in_process(settings, sessions, email=scoped.email)
    assert result.status == 200, result.body
    principal = verify_access_token(result.body["access_token"], keys, settings)
    assert set(principal.auditor_tenants) == {a.id, b.id}
    assert c.id not in principal.auditor_tenants
    assert not principal.all_tenants

    result = await exchange_in_process(settings, sessions, email=company_wide.email)
    principal = verify_access_token(result.body["access_token"], keys, settings)
    assert principal.auditor_tenants == ()
    assert principal.all_tenants
