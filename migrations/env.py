"""Alembic environment: bootstrap roles and schema, then migrate as the owner role.

Objects are created under ``SET ROLE rcm_owner`` so the application role never owns a table.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from rcm.config import OWNER_ROLE, SCHEMA, async_url, get_settings
from rcm.kit.bootstrap import bootstrap_roles
from rcm.kit.migrations import autogenerate_options

config = context.config


def _url() -> str:
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if not url:
        settings = get_settings()
        if settings.database_url is None:
            raise SystemExit(
                "RCM_DATABASE_URL is not set (or use `rcm migrate`, which starts the embedded server)"
            )
        url = settings.database_url.get_secret_value()
    return str(url)


def _run(connection: Connection) -> None:
    # Every model, partitions and other schemas left out: what `alembic revision --autogenerate` compares
    # (rcm.kit.migrations.autogenerate_options). Revisions themselves write plain SQL and use none of it.
    context.configure(
        connection=connection, transaction_per_migration=True, **autogenerate_options(connection)
    )
    with context.begin_transaction():
        context.run_migrations()


async def _audit_partitions(conn: AsyncConnection) -> None:
    """Every migrate renews the audit log's monthly partitions, so a deployment whose worker never
    ran still has this month's and the next ones' after each release (see ``rcm.audit.partitions``)."""
    from rcm.audit.partitions import ensure_partitions
    from rcm.audit.repository import partitioning_installed

    if await partitioning_installed(conn):
        await ensure_partitions(conn)
        await conn.commit()


async def _main() -> None:
    engine = create_async_engine(async_url(_url()), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            audit_password = get_settings().audit_database_password
            await bootstrap_roles(
                conn,
                app_password=config.attributes.get("app_password"),
                control_password=config.attributes.get("control_password"),
                audit_password=audit_password.get_secret_value() if audit_password else None,
            )
            await conn.commit()
            await conn.execute(text(f"SET ROLE {OWNER_ROLE}"))
            await conn.execute(text(f"SET search_path = {SCHEMA}, public"))
            await conn.run_sync(_run)
            await conn.commit()
            await _audit_partitions(conn)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported: RLS and grants need a live database")
asyncio.run(_main())
