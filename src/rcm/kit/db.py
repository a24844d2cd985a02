"""Engine, sessions and the per-transaction tenant context.

The application connects as ``rcm_app``: it owns no table and lacks BYPASSRLS, so PostgreSQL's row-level
security is the backstop beneath every query. The tenant is set with ``set_config('rcm.tenant_id', $1, true)``
inside each transaction; the setting dies with the transaction, so a pooled connection carries nothing over.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from rcm.config import async_url
from rcm.kit.tenant import TenantContext

_SET_TENANT = text("SELECT set_config('rcm.tenant_id', :tenants, true)")


def create_engine(url: str, *, pool_size: int = 10, application_name: str = "rcm") -> AsyncEngine:
    return create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        connect_args={"server_settings": {"application_name": application_name}},
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def apply_tenant_context(session: AsyncSession, context: TenantContext) -> None:
    """Bind the transaction to the context's tenants (transaction-local, bound parameter)."""
    await session.execute(_SET_TENANT, {"tenants": context.as_setting()})


@asynccontextmanager
async def tenant_transaction(
    sessions: async_sessionmaker[AsyncSession], context: TenantContext
) -> AsyncIterator[AsyncSession]:
    """One transaction scoped to ``context``; commits on success, rolls back on error."""
    async with sessions() as session, session.begin():
        await apply_tenant_context(session, context)
        yield session


@asynccontextmanager
async def platform_transaction(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A transaction with no tenant context: tenant-owned tables show no rows and refuse inserts."""
    async with sessions() as session, session.begin():
        yield session
