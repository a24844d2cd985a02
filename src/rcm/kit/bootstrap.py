"""Roles and schema that must exist before Alembic runs; executed with the administrative connection.

- ``rcm_owner`` (NOLOGIN) owns every table; migrations ``SET ROLE`` to it.
- ``rcm_app`` (LOGIN, NOBYPASSRLS) is what the API and workers connect as; it owns nothing.
- ``rcm_control`` (LOGIN, NOBYPASSRLS, owns nothing) writes the control plane: signing keys, people's roles
  and activity, staff assignments, API clients. It is a member of ``rcm_app`` (it may do what the app does,
  audit included) and holds the control-plane writes that ``rcm_app`` lacks; never the other way round.
  Only the MFA-guarded admin routes, assignment changes and operator commands connect as it.
- ``rcm_audit`` (LOGIN, NOBYPASSRLS) is the audit chainer/checkpointer's role: the only one that may seal
  events into the hash chains and write checkpoints; it owns nothing.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rcm.config import APP_ROLE, AUDIT_ROLE, CONTROL_ROLE, OWNER_ROLE, SCHEMA

# Role and schema names are module constants, never input.
_STATEMENTS = [
    f"""
    DO $$
    BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{OWNER_ROLE}') THEN
        CREATE ROLE {OWNER_ROLE} NOLOGIN;
      END IF;
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
        CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
      END IF;
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{CONTROL_ROLE}') THEN
        CREATE ROLE {CONTROL_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE INHERIT;
      END IF;
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{AUDIT_ROLE}') THEN
        CREATE ROLE {AUDIT_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
      END IF;
    END
    $$
    """,
    f"ALTER ROLE {APP_ROLE} NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE",
    f"ALTER ROLE {CONTROL_ROLE} NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE INHERIT",
    # The control role does what the app does (tenant context, audit events, idempotency records) plus the
    # control-plane writes granted to it alone by the migrations.
    f"GRANT {APP_ROLE} TO {CONTROL_ROLE}",
    f"GRANT {OWNER_ROLE} TO CURRENT_USER",
    f"CREATE SCHEMA IF NOT EXISTS {SCHEMA} AUTHORIZATION {OWNER_ROLE}",
    f"ALTER ROLE {AUDIT_ROLE} NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE",
    f"GRANT USAGE ON SCHEMA {SCHEMA} TO {APP_ROLE}",
    f"GRANT USAGE ON SCHEMA {SCHEMA} TO {AUDIT_ROLE}",
]


async def bootstrap_roles(
    conn: AsyncConnection,
    *,
    app_password: str | None = None,
    control_password: str | None = None,
    audit_password: str | None = None,
) -> None:
    for statement in _STATEMENTS:
        await conn.execute(text(statement))
    database = (await conn.execute(text("SELECT current_database()"))).scalar_one()
    roles = ((APP_ROLE, app_password), (CONTROL_ROLE, control_password), (AUDIT_ROLE, audit_password))
    for role, password in roles:
        await conn.execute(text(f'GRANT CONNECT ON DATABASE "{database}" TO {role}'))
        if password is not None:
            # Utility statements take no bind parameters; quote with format(%L) server-side.
            statement = (
                await conn.execute(
                    text("SELECT format('ALTER ROLE %I PASSWORD %L', :r, :p)"), {"r": role, "p": password}
                )
            ).scalar_one()
            await conn.execute(text(statement))
