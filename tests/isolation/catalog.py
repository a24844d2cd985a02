"""Tenant isolation read from the PostgreSQL catalog, never from a hand-written list of tables.

A table is tenant-owned when it has a ``tenant_id`` column; a table without one is global (the tenant
registry, people, signing keys, code sets to come). Partitions count as tables of their own: a query that
names a partition applies the partition's policies, not the parent's. So every table a later revision adds
is covered the day it lands.

Each ``*_offenders`` function returns what is wrong, one line each (empty when all is well), for any schema
and any set of roles, so tests/isolation/test_catalog.py can run the same checks on a deliberately bad
scratch schema and show that each one would catch it.
"""

# The queries are assembled from this module's constant fragments; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rcm.config import APP_ROLE, AUDIT_ROLE, CONTROL_ROLE, OWNER_ROLE, SCHEMA

# The roles that serve requests and jobs. None may own anything, bypass row-level security, or become a role
# that can (rcm_control is a member of rcm_app, which is neither).
RUNTIME_ROLES = (APP_ROLE, CONTROL_ROLE, AUDIT_ROLE)

# The tenant policy's condition as pg_get_expr prints it (search_path set to pg_catalog, so qualified).
TENANT_CHECK = "(tenant_id = ANY (rcm.current_tenant_ids()))"

# Permissive policies other than tenant isolation widen access (policies are OR-ed), so each is named here
# with the one command it may cover. api_client: the token endpoint finds the one client whose client_id
# the caller presented, before it knows the tenant (migration 0004_identity).
EXTRA_POLICIES = {("api_client", "client_lookup"): "r"}

# Privileges that row-level security does not govern: TRUNCATE empties every tenant's rows at once,
# TRIGGER runs code on others' writes, REFERENCES probes others' keys.
UNGOVERNED_PRIVILEGES = ("TRUNCATE", "TRIGGER", "REFERENCES")


def _has_tenant_id(relation: str = "c") -> str:
    return (
        f"EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = {relation}.oid AND a.attname = 'tenant_id'"
        " AND a.attnum > 0 AND NOT a.attisdropped)"
    )


_HAS_TENANT_ID = _has_tenant_id()
_TABLES = (
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = :schema AND c.relkind IN ('r', 'p')"
)


async def tenant_owned_tables(
    conn: AsyncConnection, schema: str = SCHEMA, *, partitions: bool = False
) -> list[str]:
    """Tables with a ``tenant_id`` column; partitions too when asked (reading a parent reads them)."""
    where = "" if partitions else " AND NOT c.relispartition"
    rows = await conn.execute(text(f"{_TABLES} AND {_HAS_TENANT_ID}{where} ORDER BY 1"), {"schema": schema})
    return list(rows.scalars())


async def global_tables(conn: AsyncConnection, schema: str = SCHEMA) -> list[str]:
    rows = await conn.execute(text(f"{_TABLES} AND NOT {_HAS_TENANT_ID} ORDER BY 1"), {"schema": schema})
    return list(rows.scalars())


async def key_offenders(conn: AsyncConnection, schema: str = SCHEMA) -> list[str]:
    """Citus-ready keys: a tenant-owned table has a primary key led by tenant_id, and every foreign key that
    points at a tenant-owned table (from any table) pairs tenant_id with tenant_id first."""
    found = []
    rows = await conn.execute(
        text(
            f"""
            SELECT c.relname,
                   (SELECT a.attname FROM pg_constraint p
                      JOIN pg_attribute a ON a.attrelid = p.conrelid AND a.attnum = p.conkey[1]
                     WHERE p.conrelid = c.oid AND p.contype = 'p')
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = :schema AND c.relkind IN ('r', 'p') AND {_HAS_TENANT_ID}
            ORDER BY 1
            """
        ),
        {"schema": schema},
    )
    for table, first in rows:
        if first is None:
            found.append(f"{table}: no primary key")
        elif first != "tenant_id":
            found.append(f"{table}: primary key starts with {first}, not tenant_id")
    rows = await conn.execute(
        text(
            f"""
            SELECT c.relname, con.conname, src.attname, dst.attname
            FROM pg_constraint con
            JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_class t ON t.oid = con.confrelid
            JOIN pg_attribute src ON src.attrelid = con.conrelid AND src.attnum = con.conkey[1]
            JOIN pg_attribute dst ON dst.attrelid = con.confrelid AND dst.attnum = con.confkey[1]
            WHERE n.nspname = :schema AND con.contype = 'f'
              AND {_has_tenant_id("t")}
            ORDER BY 1, 2
            """
        ),
        {"schema": schema},
    )
    for table, name, source, target in rows:
        if (source, target) != ("tenant_id", "tenant_id"):
            found.append(f"{table}.{name}: foreign key starts ({source} -> {target}), not tenant_id")
    return found


async def rls_offenders(conn: AsyncConnection, schema: str = SCHEMA) -> list[str]:
    """Row-level security enabled, and forced so the table's owner is bound too."""
    rows = await conn.execute(
        text(
            f"SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c"
            f" JOIN pg_namespace n ON n.oid = c.relnamespace"
            f" WHERE n.nspname = :schema AND c.relkind IN ('r', 'p') AND {_HAS_TENANT_ID} ORDER BY 1"
        ),
        {"schema": schema},
    )
    found = []
    for table, enabled, forced in rows:
        if not enabled:
            found.append(f"{table}: row-level security not enabled")
        if not forced:
            found.append(f"{table}: row-level security not forced")
    return found


async def policy_offenders(conn: AsyncConnection, schema: str = SCHEMA) -> list[str]:
    """Each tenant-owned table has a policy for every command whose USING and WITH CHECK are both the tenant
    context, and no other permissive policy but the ones named in EXTRA_POLICIES."""
    # Qualified names in pg_get_expr's output, whatever the caller's search_path.
    await conn.execute(text("SET LOCAL search_path TO pg_catalog"))
    rows = await conn.execute(
        text(
            f"""
            SELECT c.relname, p.polname, p.polcmd::text, p.polpermissive,
                   pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_policy p ON p.polrelid = c.oid
            WHERE n.nspname = :schema AND c.relkind IN ('r', 'p') AND {_HAS_TENANT_ID}
            ORDER BY 1, 2
            """
        ),
        {"schema": schema},
    )
    await conn.execute(text("RESET search_path"))
    isolated: set[str] = set()
    tables: set[str] = set()
    found = []
    for table, name, command, permissive, using, with_check in rows:
        tables.add(table)
        if name is None or not permissive:
            continue  # a restrictive policy only narrows what the permissive ones allow
        if (command, using, with_check) == ("*", TENANT_CHECK, TENANT_CHECK):
            isolated.add(table)
        elif EXTRA_POLICIES.get((table, name)) != command:
            found.append(
                f"{table}.{name}: permissive policy ({command}) USING {using} WITH CHECK {with_check}"
            )
    found += [f"{table}: no tenant policy with USING and WITH CHECK" for table in sorted(tables - isolated)]
    return found


async def ownership_offenders(conn: AsyncConnection, roles: Sequence[str] = RUNTIME_ROLES) -> list[str]:
    """Nothing in the whole database (relations, schemas, functions) belongs to a runtime role: an owner can
    switch row-level security off on its own tables."""
    rows = await conn.execute(
        text(
            """
            SELECT r.rolname, 'relation ' || c.oid::regclass::text FROM pg_class c
              JOIN pg_roles r ON r.oid = c.relowner WHERE r.rolname = ANY (:roles)
            UNION ALL
            SELECT r.rolname, 'schema ' || s.nspname FROM pg_namespace s
              JOIN pg_roles r ON r.oid = s.nspowner WHERE r.rolname = ANY (:roles)
            UNION ALL
            SELECT r.rolname, 'function ' || f.oid::regprocedure::text FROM pg_proc f
              JOIN pg_roles r ON r.oid = f.proowner WHERE r.rolname = ANY (:roles)
            ORDER BY 1, 2
            """
        ),
        {"roles": list(roles)},
    )
    return [f"{role} owns {thing}" for role, thing in rows]


async def role_offenders(conn: AsyncConnection, roles: Sequence[str] = RUNTIME_ROLES) -> list[str]:
    """No runtime role is a superuser, bypasses RLS or creates roles, nor is it a member (directly or not) of
    a role that does, or of the schema owner (which may switch row-level security off)."""
    rows = await conn.execute(
        text(
            "SELECT rolname, rolsuper, rolbypassrls, rolcreaterole FROM pg_roles WHERE rolname = ANY (:roles)"
        ),
        {"roles": list(roles)},
    )
    found = []
    seen = set()
    for role, superuser, bypass, createrole in rows:
        seen.add(role)
        found += [
            f"{role}: {attribute}"
            for attribute, has in (
                ("SUPERUSER", superuser),
                ("BYPASSRLS", bypass),
                ("CREATEROLE", createrole),
            )
            if has
        ]
    found += [f"{role}: no such role" for role in roles if role not in seen]
    rows = await conn.execute(
        text(
            """
            SELECT m.rolname, r.rolname FROM pg_roles m CROSS JOIN pg_roles r
            WHERE m.rolname = ANY (:roles) AND r.oid <> m.oid AND pg_has_role(m.oid, r.oid, 'MEMBER')
              AND (r.rolsuper OR r.rolbypassrls OR r.rolcreaterole OR r.rolname = :owner)
            ORDER BY 1, 2
            """
        ),
        {"roles": list(roles), "owner": OWNER_ROLE},
    )
    found += [f"{role}: member of {other}" for role, other in rows]
    return found


async def grant_offenders(
    conn: AsyncConnection, schema: str = SCHEMA, roles: Sequence[str] = RUNTIME_ROLES
) -> list[str]:
    """Runtime roles hold no privilege row-level security does not govern on any table of the schema, and
    cannot create objects in it (what they created, they would own)."""
    privileges = ", ".join(f"'{p}'" for p in UNGOVERNED_PRIVILEGES)
    rows = await conn.execute(
        text(
            f"""
            SELECT r.rolname, c.relname, p.privilege
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            CROSS JOIN pg_roles r CROSS JOIN unnest(ARRAY[{privileges}]) AS p(privilege)
            WHERE n.nspname = :schema AND c.relkind IN ('r', 'p') AND r.rolname = ANY (:roles)
              AND has_table_privilege(r.oid, c.oid, p.privilege)
            UNION ALL
            SELECT r.rolname, n.nspname, 'CREATE' FROM pg_namespace n CROSS JOIN pg_roles r
            WHERE n.nspname = :schema AND r.rolname = ANY (:roles)
              AND has_schema_privilege(r.oid, n.oid, 'CREATE')
            ORDER BY 1, 2, 3
            """
        ),
        {"schema": schema, "roles": list(roles)},
    )
    return [f"{role}: {privilege} on {name}" for role, name, privilege in rows]
