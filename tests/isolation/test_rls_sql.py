"""Row-level security, checked in SQL as the application role (beneath any repository code).

The schema's shape (keys, forced RLS, policies, owners, role attributes) is checked from the catalog in
test_catalog.py; here the policies are exercised.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.kit.db import tenant_transaction
from rcm.kit.tenant import TenantContext, TenantId
from tests.conftest import make_tenant
from tests.isolation import catalog


async def test_no_context_sees_no_rows_and_cannot_insert(
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
) -> None:
    # staff_assignment is written by the control role, which row-level security binds like the app.
    tenant = await make_tenant(control_sessions, "rls")
    user_id = await _seed_user(owner_engine)
    async with tenant_transaction(control_sessions, TenantContext.single(TenantId(tenant.id))) as session:
        await session.execute(
            text("INSERT INTO rcm.staff_assignment (tenant_id, user_id) VALUES (:t, :u)"),
            {"t": tenant.id, "u": user_id},
        )
    async with sessions() as session, session.begin():
        count = (await session.execute(text("SELECT count(*) FROM rcm.staff_assignment"))).scalar_one()
        assert count == 0
    async with control_sessions() as session:
        with pytest.raises(DBAPIError, match="row-level security"):
            async with session.begin():
                await session.execute(
                    text("INSERT INTO rcm.staff_assignment (tenant_id, user_id) VALUES (:t, :u)"),
                    {"t": tenant.id, "u": await _seed_user(owner_engine)},
                )


async def test_cannot_write_into_another_tenant(
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
) -> None:
    # staff_assignment is written by the control role, which row-level security binds like the app.
    mine = await make_tenant(control_sessions, "mine")
    theirs = await make_tenant(control_sessions, "theirs")
    user_id = await _seed_user(owner_engine)
    with pytest.raises(DBAPIError, match="row-level security"):
        async with tenant_transaction(control_sessions, TenantContext.single(TenantId(mine.id))) as session:
            await session.execute(
                text("INSERT INTO rcm.staff_assignment (tenant_id, user_id) VALUES (:t, :u)"),
                {"t": theirs.id, "u": user_id},
            )


async def test_pooled_connections_reused_across_50_tenants_leak_nothing(
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
) -> None:
    # staff_assignment is written by the control role, which row-level security binds like the app.
    tenants = [await make_tenant(control_sessions, f"pool{i}") for i in range(50)]
    user_id = await _seed_user(owner_engine)
    for tenant in tenants:
        async with tenant_transaction(control_sessions, TenantContext.single(TenantId(tenant.id))) as session:
            await session.execute(
                text("INSERT INTO rcm.staff_assignment (tenant_id, user_id) VALUES (:t, :u)"),
                {"t": tenant.id, "u": user_id},
            )
    for tenant in reversed(tenants):
        async with tenant_transaction(control_sessions, TenantContext.single(TenantId(tenant.id))) as session:
            seen = (await session.execute(text("SELECT tenant_id FROM rcm.staff_assignment"))).scalars().all()
            assert seen == [tenant.id]
        # The same pooled connections, now with no context: the setting died with the transaction.
        async with control_sessions() as session, session.begin():
            assert (
                await session.execute(text("SELECT count(*) FROM rcm.staff_assignment"))
            ).scalar_one() == 0
            setting = (await session.execute(text("SELECT current_setting('rcm.tenant_id', true)"))).scalar()
            assert setting in (None, "")


async def _seed_user(owner_engine: AsyncEngine) -> uuid.UUID:
    user_id = uuid.uuid4()
    async with owner_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO rcm.app_user (id, issuer, subject, email, display_name, roles) "
                "VALUES (:id, 'test', :s, :e, 'Test User', ARRAY['coder'])"
            ),
            {"id": user_id, "s": str(user_id), "e": f"{user_id}@test.invalid"},
        )
    return user_id


async def test_no_context_sees_no_rows_in_any_table(
    practice_api: Any,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Every tenant-owned table the catalog knows, filled, reads empty without a tenant context, for the app
    role and for the control role (which inherits the app's grants)."""
    from tests.support import encounter_payload

    assert (await practice_api.post("/encounters", encounter_payload())).status_code == 201
    async with owner_engine.connect() as conn:
        tables = await catalog.tenant_owned_tables(conn)
        populated = [
            t
            for t in tables
            if (await conn.execute(text(f"SELECT count(*) FROM rcm.{t}"))).scalar_one() > 0  # noqa: S608
        ]
    # The encounter above filled the intake tables, the audit trail and the tenant's keys at least.
    assert {"patient", "encounter", "charge_line", "audit_event", "data_key", "idempotency_record"} <= set(
        populated
    )
    for role_sessions in (sessions, control_sessions):
        async with role_sessions() as session, session.begin():
            for table in populated:
                # The catalog's names, not input.
                query = text(f"SELECT count(*) FROM rcm.{table}")  # noqa: S608
                seen = (await session.execute(query)).scalar_one()
                assert seen == 0, f"{table}: {seen} rows visible with no tenant context"
