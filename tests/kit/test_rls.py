"""The DDL helper that documents (and builds scratch tables in) the shape of tenant isolation: each statement
it returns is shown to take effect, so a helper that dropped one would fail here before it misled a test
table or a revision copied from it."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from rcm.config import APP_ROLE, OWNER_ROLE, SCHEMA
from rcm.kit.rls import global_table_ddl, tenant_table_ddl
from tests.isolation import catalog

WRITES = ("INSERT", "UPDATE", "DELETE")


async def _privileges(conn: AsyncConnection, table: str) -> set[str]:
    rows = await conn.execute(
        text(
            "SELECT p FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) AS p "
            "WHERE has_table_privilege(:role, :table, p)"
        ),
        {"role": APP_ROLE, "table": f"{SCHEMA}.{table}"},
    )
    return {row[0] for row in rows}


async def test_tenant_table_ddl_enables_forces_polices_and_grants(owner_engine: AsyncEngine) -> None:
    table = f"scratch_rls_{uuid.uuid4().hex[:8]}"
    async with owner_engine.connect() as conn:
        transaction = await conn.begin()
        try:
            await conn.execute(text(f"SET LOCAL ROLE {OWNER_ROLE}"))
            await conn.execute(
                text(
                    f"CREATE TABLE {SCHEMA}.{table} (tenant_id uuid NOT NULL, id uuid NOT NULL, "
                    "PRIMARY KEY (tenant_id, id))"
                )
            )
            for statement in tenant_table_ddl(table):
                await conn.execute(text(statement))
            enabled, forced = (
                await conn.execute(
                    text(
                        "SELECT relrowsecurity, relforcerowsecurity FROM pg_class "
                        "WHERE oid = CAST(:t AS regclass)"
                    ),
                    {"t": f"{SCHEMA}.{table}"},
                )
            ).one()
            assert (enabled, forced) == (True, True)
            assert not [o for o in await catalog.rls_offenders(conn) if o.startswith(f"{table}:")]
            assert not [o for o in await catalog.policy_offenders(conn) if o.startswith(f"{table}")]
            assert await _privileges(conn, table) == {"SELECT", *WRITES}
        finally:
            await transaction.rollback()


async def test_global_table_ddl_grants_reading_only(owner_engine: AsyncEngine) -> None:
    table = f"scratch_global_{uuid.uuid4().hex[:8]}"
    async with owner_engine.connect() as conn:
        transaction = await conn.begin()
        try:
            await conn.execute(text(f"SET LOCAL ROLE {OWNER_ROLE}"))
            await conn.execute(text(f"CREATE TABLE {SCHEMA}.{table} (code text PRIMARY KEY)"))
            for statement in global_table_ddl(table):
                await conn.execute(text(statement))
            assert await _privileges(conn, table) == {"SELECT"}
        finally:
            await transaction.rollback()
