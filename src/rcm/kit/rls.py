"""DDL for tenant isolation: the shape every tenant-owned table is given.

Migrations do not import this module: each revision spells the statements out as plain SQL, so that a change
here never rewrites history (tests/test_migrations_frozen.py). It serves code that builds tables at run time
(tests' scratch tables) and documents the rule a new revision copies.

A tenant-owned table gets, in the same revision that creates it: RLS enabled *and forced* (so the owner is
bound too), one policy whose USING and WITH CHECK both demand ``tenant_id`` be in the transaction's tenant
context, and the application role's grants. ``rcm.current_tenant_ids()`` returns NULL when no context is set,
and ``x = ANY(NULL)`` is never true: no context means no rows and no inserts.
"""

from __future__ import annotations

from rcm.config import APP_ROLE, SCHEMA

CURRENT_TENANTS_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {SCHEMA}.current_tenant_ids() RETURNS uuid[]
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT string_to_array(nullif(current_setting('rcm.tenant_id', true), ''), ',')::uuid[] $$
"""


def tenant_table_ddl(table: str, *, privileges: str = "SELECT, INSERT, UPDATE, DELETE") -> list[str]:
    """Statements that put ``table`` under tenant isolation and grant the app role ``privileges``."""
    qualified = f"{SCHEMA}.{table}"
    check = f"tenant_id = ANY ({SCHEMA}.current_tenant_ids())"
    return [
        f"ALTER TABLE {qualified} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {qualified} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY tenant_isolation ON {qualified} USING ({check}) WITH CHECK ({check})",
        f"GRANT {privileges} ON {qualified} TO {APP_ROLE}",
    ]


def global_table_ddl(table: str, *, privileges: str = "SELECT") -> list[str]:
    """Grants for a table that belongs to no tenant (code sets, the tenant registry)."""
    return [f"GRANT {privileges} ON {SCHEMA}.{table} TO {APP_ROLE}"]
