"""Row-level security, checked in SQL as the application role (beneath any repository code)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.config import APP_ROLE
from rcm.kit.db import tenant_transaction
from rcm.kit.tenant import TenantContext, TenantId
from tests.conftest import make_tenant

TENANT_OWNED_TABLES = text(
    """
    SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
           (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'rcm' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
      AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id')
    ORDER BY 1
    """
)


async def test_app_role_owns_nothing_and_cannot_bypass_rls(owner_engine: AsyncEngine) -> None:
    async with owner_engine.connect() as conn:
        role = (
            await conn.execute(
                text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = :r"), {"r": APP_ROLE}
            )
        ).one()
        owned = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
                    "WHERE r.rolname = :r"
                ),
                {"r": APP_ROLE},
            )
        ).scalar_one()
    assert role == (False, False)
    assert owned == 0


async def test_every_tenant_owned_table_has_forced_rls(owner_engine: AsyncEngine) -> None:
    async with owner_engine.connect() as conn:
        rows = (await conn.execute(TENANT_OWNED_TABLES)).all()
    assert rows, "no tenant-owned tables found"
    for name, enabled, forced, policies in rows:
        assert enabled, f"{name}: RLS must be enabled"
        assert forced, f"{name}: RLS must be forced"
        assert policies >= 1, f"{name}: no policy"


async def test_tenant_id_leads_every_primary_and_foreign_key(owner_engine: AsyncEngine) -> None:
    """Citus-ready: a tenant-owned table's keys all start with tenant_id."""
    query = text(
        """
        SELECT c.relname, con.conname, con.contype,
               (SELECT a.attname FROM pg_attribute a
                WHERE a.attrelid = con.conrelid AND a.attnum = con.conkey[1])
        FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'rcm' AND con.contype IN ('p', 'f') AND NOT c.relispartition
          AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id')
          AND (con.contype = 'p' OR con.confrelid IN (
                SELECT c2.oid FROM pg_class c2 WHERE EXISTS (
                  SELECT 1 FROM pg_attribute a2 WHERE a2.attrelid = c2.oid AND a2.attname = 'tenant_id')))
        """
    )
    async with owner_engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    offenders = [(table, name) for table, name, _, first in rows if first != "tenant_id"]
    assert rows
    assert offenders == []


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


async def test_every_policy_is_a_tenant_check(owner_engine: AsyncEngine) -> None:
    """No table can slip through with a USING (true): each policy tests the tenant context, in USING and in
    WITH CHECK; the only other allowed shape is api_client's read-only lookup by the presented client_id."""
    async with owner_engine.connect() as conn:
        policies = (
            await conn.execute(
                text(
                    "SELECT tablename, policyname, cmd, qual, with_check FROM pg_policies"
                    " WHERE schemaname = 'rcm' ORDER BY 1, 2"
                )
            )
        ).all()
    assert policies
    for table, name, cmd, qual, with_check in policies:
        if (table, name) == ("api_client", "client_lookup"):
            assert cmd == "SELECT"
            assert "current_setting('rcm.client_id'" in qual
            continue
        assert "current_tenant_ids()" in qual, f"{table}.{name}: USING {qual}"
        if cmd in ("ALL", "INSERT", "UPDATE"):
            assert with_check is not None, f"{table}.{name}: no WITH CHECK"
            assert "current_tenant_ids()" in with_check, f"{table}.{name}: WITH CHECK {with_check}"


async def test_no_context_sees_no_rows_in_any_table(
    practice_api: Any, owner_engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    from tests.support import encounter_payload

    assert (await practice_api.post("/encounters", encounter_payload())).status_code == 201
    async with owner_engine.connect() as conn:
        tables = [row[0] for row in await conn.execute(TENANT_OWNED_TABLES)]
        populated = [
            t
            for t in tables
            if (await conn.execute(text(f"SELECT count(*) FROM rcm.{t}"))).scalar_one() > 0  # noqa: S608
        ]
    # The encounter above filled the intake tables, the audit trail and the tenant's keys at least.
    assert {"patient", "encounter", "charge_line", "audit_event", "data_key", "idempotency_record"} <= set(
        populated
    )
    async with sessions() as session, session.begin():
        for table in populated:
            seen = (await session.execute(text(f"SELECT count(*) FROM rcm.{table}"))).scalar_one()  # noqa: S608
            assert seen == 0, f"{table}: {seen} rows visible with no tenant context"
