"""Engine, sessions and the per-transaction tenant context.

The application connects as ``rcm_app``: it owns no table and lacks BYPASSRLS, so PostgreSQL's row-level
security is the backstop beneath every query. The tenant is set with ``set_config('rcm.tenant_id', $1, true)``
inside each transaction; the setting dies with the transaction, so a pooled connection carries nothing over.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy import event as sa_event
from sqlalchemy.engine.interfaces import CacheStats
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from rcm.config import async_url
from rcm.kit.tenant import TenantContext

_SET_TENANT = text("SELECT set_config('rcm.tenant_id', :tenants, true)")


def create_engine(url: str, *, pool_size: int = 10, application_name: str = "rcm") -> AsyncEngine:
    """An engine whose pool holds ``pool_size`` connections, and as many again for bursts.

    Size the pool to the requests a process has in flight (``RCM_DB_POOL_SIZE``): beyond it, overflow
    connections are opened and closed per checkout (connect, authentication, and every statement prepared
    afresh), which costs more than the request. The overflow stays, because a refused request records its
    denial on a second connection while its own is still checked out.

    The reset on return stays "rollback" on purpose: with asyncpg it sends nothing unless a transaction is
    still open (the adapter tracks that; every unit of work here ends with COMMIT or ROLLBACK, and the
    tenant binding is transaction-local), so it costs no round trip, and it is the safety net for a request
    cancelled mid-transaction. asyncpg's own pool reset (RESET ALL and friends, a full round trip) is
    not used: SQLAlchemy's pool holds the raw connections.
    """
    return create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        pool_reset_on_return="rollback",
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


@asynccontextmanager
async def driver_connection(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Any]:
    """A pooled connection's asyncpg connection with no transaction open, for a hot unit of work that runs
    its own BEGIN ... COMMIT on the driver. The pool's reset on return sends nothing (SQLAlchemy began
    nothing)."""
    engine: AsyncEngine = sessions.kw["bind"]
    async with engine.connect() as connection:
        driver: Any = (await connection.get_raw_connection()).driver_connection
        try:
            yield driver
        finally:
            # A transaction the driver left open (a unit of work cancelled mid-way) would go back to the pool
            # with its tenant binding: the connection is closed instead.
            if driver.is_in_transaction():
                await connection.invalidate()


class RoundTrips:
    """Counts the database round trips an engine makes (for the hot-path tests and the benchmarks).

    A statement is one round trip; a transaction that runs any adds two (BEGIN, sent lazily before its first
    statement by the asyncpg adapter, and COMMIT or ROLLBACK). Prepares of statements new to a connection
    are not counted: a warm pool has them cached.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine.sync_engine
        self.statements: list[str] = []
        # Statements SQLAlchemy compiled afresh rather than took from its cache: on a warm hot path, none
        # (an uncacheable statement costs a compile, a millisecond or more of CPU, on every request).
        self.compiled: list[str] = []
        self.transactions = 0

    @property
    def round_trips(self) -> int:
        return len(self.statements) + 2 * self.transactions

    def reset(self) -> None:
        self.statements.clear()
        self.compiled.clear()
        self.transactions = 0

    def _begin(self, conn: Connection) -> None:
        conn.info["rcm.round_trips.begun"] = False

    def _statement(self, conn: Connection, *_args: object) -> None:
        statement, context = _args[1], _args[3]
        self.statements.append(str(statement))
        if getattr(context, "cache_hit", None) != CacheStats.CACHE_HIT:
            self.compiled.append(str(statement))
        if conn.info.get("rcm.round_trips.begun") is False:
            conn.info["rcm.round_trips.begun"] = True
            self.transactions += 1

    def _end(self, conn: Connection) -> None:
        conn.info.pop("rcm.round_trips.begun", None)

    def __enter__(self) -> RoundTrips:
        sa_event.listen(self.engine, "begin", self._begin)
        sa_event.listen(self.engine, "before_cursor_execute", self._statement)
        sa_event.listen(self.engine, "commit", self._end)
        sa_event.listen(self.engine, "rollback", self._end)
        return self

    def __exit__(self, *_exc: object) -> None:
        sa_event.remove(self.engine, "begin", self._begin)
        sa_event.remove(self.engine, "before_cursor_execute", self._statement)
        sa_event.remove(self.engine, "commit", self._end)
        sa_event.remove(self.engine, "rollback", self._end)
