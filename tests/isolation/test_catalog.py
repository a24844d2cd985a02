"""Tenant isolation, checked on the migrated schema from the catalog (tests/isolation/catalog.py), and each
check shown to catch a deliberately bad table in a scratch schema that is rolled back."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tests.isolation import catalog


async def test_the_catalog_finds_tenant_owned_and_global_tables(owner_engine: AsyncEngine) -> None:
    async with owner_engine.connect() as conn:
        owned = await catalog.tenant_owned_tables(conn)
        with_partitions = await catalog.tenant_owned_tables(conn, partitions=True)
        global_ = await catalog.global_tables(conn)
    # Not a list to maintain: a floor that shows the query sees the tables it must (intake, keys, audit).
    assert {"patient", "encounter", "charge_line", "data_key", "audit_event", "staff_assignment"} <= set(
        owned
    )
    assert {"tenant", "app_user", "signing_key"} <= set(global_)
    assert not set(owned) & set(global_)
    # The audit log's monthly partitions are tenant-owned tables of their own.
    assert any(name.startswith("audit_event_p") for name in set(with_partitions) - set(owned))


async def test_every_tenant_owned_table_is_keyed_by_tenant(owner_engine: AsyncEngine) -> None:
    async with owner_engine.connect() as conn:
        assert await catalog.key_offenders(conn) == []


async def test_every_tenant_owned_table_has_forced_rls(owner_engine: AsyncEngine) -> None:
    async with owner_engine.connect() as conn:
        assert await catalog.rls_offenders(conn) == []


async def test_every_tenant_owned_table_has_a_tenant_policy_and_no_other(owner_engine: AsyncEngine) -> None:
    async with owner_engine.connect() as conn:
        assert await catalog.policy_offenders(conn) == []


async def test_runtime_roles_own_nothing(owner_engine: AsyncEngine) -> None:
    async with owner_engine.connect() as conn:
        assert await catalog.ownership_offenders(conn) == []


async def test_runtime_roles_cannot_bypass_rls(owner_engine: AsyncEngine) -> None:
    async with owner_engine.connect() as conn:
        assert await catalog.role_offenders(conn) == []


async def test_runtime_roles_hold_no_ungoverned_privilege(owner_engine: AsyncEngine) -> None:
    async with owner_engine.connect() as conn:
        assert await catalog.grant_offenders(conn) == []


# --- each check, shown to catch a bad table -----------------------------------------------------------

_CHECK = catalog.TENANT_CHECK


@pytest.fixture
async def scratch(owner_engine: AsyncEngine) -> AsyncIterator[tuple[AsyncConnection, str, str]]:
    """A schema with one good tenant-owned table and one bad table per rule, and a role that breaks every
    role rule, all inside a transaction that is rolled back (roles and DDL are transactional)."""
    suffix = uuid.uuid4().hex[:8]
    schema, role = f"scratch_{suffix}", f"scratch_role_{suffix}"
    good = (
        "(tenant_id uuid NOT NULL, id uuid NOT NULL, other_id uuid,"
        " PRIMARY KEY (tenant_id, id), UNIQUE (id, tenant_id))"
    )
    statements = [
        f"CREATE SCHEMA {schema}",
        f"CREATE TABLE {schema}.good {good}",
        # Keys: the primary key led by id; a foreign key to a tenant-owned table led by other_id.
        f"CREATE TABLE {schema}.bad_pk"
        " (tenant_id uuid NOT NULL, id uuid NOT NULL, PRIMARY KEY (id, tenant_id))",
        f"CREATE TABLE {schema}.bad_fk {good}",
        f"ALTER TABLE {schema}.bad_fk ADD CONSTRAINT bad_fk_other"
        f" FOREIGN KEY (other_id, tenant_id) REFERENCES {schema}.good (id, tenant_id)",
        f"CREATE TABLE {schema}.no_pk (tenant_id uuid NOT NULL)",
        # RLS: never enabled; enabled but not forced (the owner would see every tenant).
        f"CREATE TABLE {schema}.no_rls {good}",
        f"CREATE TABLE {schema}.not_forced {good}",
        f"ALTER TABLE {schema}.not_forced ENABLE ROW LEVEL SECURITY",
        # Policies: none; USING without WITH CHECK; an extra permissive policy that opens every row.
        f"CREATE TABLE {schema}.no_policy {good}",
        f"CREATE TABLE {schema}.no_with_check {good}",
        f"CREATE POLICY tenant_isolation ON {schema}.no_with_check FOR SELECT USING {_CHECK}",
        f"CREATE TABLE {schema}.open_policy {good}",
        f"CREATE POLICY tenant_isolation ON {schema}.open_policy USING {_CHECK} WITH CHECK {_CHECK}",
        f"CREATE POLICY everyone ON {schema}.open_policy FOR SELECT USING (true)",
        # Roles: one that bypasses RLS and creates roles, and is a member of a superuser role.
        f"CREATE ROLE {role} BYPASSRLS CREATEROLE",
        f"CREATE ROLE {role}_super SUPERUSER",
        f"GRANT {role}_super TO {role}",
        f"CREATE TABLE {schema}.owned {good}",
        f"ALTER TABLE {schema}.owned OWNER TO {role}",
        f"GRANT TRUNCATE ON {schema}.good TO {role}",
        f"GRANT CREATE ON SCHEMA {schema} TO {role}",
    ]
    for table in (
        "good",
        "bad_pk",
        "bad_fk",
        "no_pk",
        "not_forced",
        "no_policy",
        "no_with_check",
        "open_policy",
        "owned",
    ):
        statements.append(f"ALTER TABLE {schema}.{table} ENABLE ROW LEVEL SECURITY")
        statements.append(f"ALTER TABLE {schema}.{table} FORCE ROW LEVEL SECURITY")
    statements.append(f"ALTER TABLE {schema}.not_forced NO FORCE ROW LEVEL SECURITY")
    for table in ("good", "bad_pk", "bad_fk", "no_pk", "no_rls", "not_forced", "owned"):
        statements.append(
            f"CREATE POLICY tenant_isolation ON {schema}.{table} USING {_CHECK} WITH CHECK {_CHECK}"
        )
    async with owner_engine.connect() as conn:
        transaction = await conn.begin()
        try:
            for statement in statements:
                await conn.execute(text(statement))
            yield conn, schema, role
        finally:
            await transaction.rollback()


async def test_each_check_catches_a_bad_table(scratch: tuple[AsyncConnection, str, str]) -> None:
    conn, schema, role = scratch
    assert "good" in await catalog.tenant_owned_tables(conn, schema)

    assert sorted(await catalog.key_offenders(conn, schema)) == [
        "bad_fk.bad_fk_other: foreign key starts (other_id -> id), not tenant_id",
        "bad_pk: primary key starts with id, not tenant_id",
        "no_pk: no primary key",
    ]
    assert sorted(await catalog.rls_offenders(conn, schema)) == [
        "no_rls: row-level security not enabled",
        "no_rls: row-level security not forced",
        "not_forced: row-level security not forced",
    ]
    assert sorted(await catalog.policy_offenders(conn, schema)) == [
        "no_policy: no tenant policy with USING and WITH CHECK",
        f"no_with_check.tenant_isolation: permissive policy (r) USING {_CHECK} WITH CHECK None",
        "no_with_check: no tenant policy with USING and WITH CHECK",
        "open_policy.everyone: permissive policy (r) USING true WITH CHECK None",
    ]
    # The table, and with it its key's indexes.
    assert f"{role} owns relation {schema}.owned" in await catalog.ownership_offenders(conn, [role])
    assert sorted(await catalog.role_offenders(conn, [role, f"{role}_missing"])) == [
        f"{role}: BYPASSRLS",
        f"{role}: CREATEROLE",
        f"{role}: member of {role}_super",
        f"{role}_missing: no such role",
    ]
    grants = await catalog.grant_offenders(conn, schema, [role])
    assert f"{role}: TRUNCATE on good" in grants
    assert f"{role}: CREATE on {schema}" in grants
