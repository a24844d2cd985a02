"""Engine, sessions and the per-transaction tenant context.

The application connects as ``rcm_app``: it owns no table and lacks BYPASSRLS, so PostgreSQL's row-level
security is the backstop beneath every query. The tenant is set with ``set_config('rcm.tenant_id', $1, true)``
inside each transaction; the setting dies with the transaction, so a pooled connection carries nothing over.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import Connection, Executable, text
from sqlalchemy import event as sa_event
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.engine.interfaces import CacheStats
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from rcm.config import async_url
from rcm.kit.tenant import TenantContext

_SET_TENANT = text("SELECT set_config('rcm.tenant_id', :tenants, true)")
_SET_TENANT_DRIVER = "SELECT set_config('rcm.tenant_id', $1, true)"


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


_REQUIRED: Any = object()  # a parameter the caller gives with every execution


@dataclass(frozen=True, slots=True)
class DriverStatement:
    """A Core statement compiled once, at first use, for asyncpg itself (``driver_fetch``).

    For the hottest reads only: SQLAlchemy's per-execution work on a cached statement (cache key, execution
    context, result rows; and for a statement built per request, building it) costs several times the
    driver's. The statement stays written in SQLAlchemy, with named bound parameters; compiling it here
    gives the driver's ``$n`` text, the parameters' order, the values of its literal parameters and their
    bind processing (JSONB, arrays).
    """

    sql: str
    # Per driver parameter, in order: its name, its fixed value (or _REQUIRED) and its bind processor.
    parameters: tuple[tuple[str, Any, Callable[[Any], Any] | None], ...]

    @classmethod
    def compile(cls, stmt: Executable, *, expand: bool = False) -> DriverStatement:
        """``expand``: ``IN`` lists given in the statement become one parameter per value (a statement
        compiled per call; without it an expanding parameter cannot reach the driver)."""
        kwargs = {"render_postcompile": True} if expand else {}
        compiled = stmt.compile(dialect=_DIALECT, compile_kwargs=kwargs)  # type: ignore[attr-defined]
        processors = compiled._bind_processors
        values = compiled.construct_params() if expand else {}
        parameters = []
        for name in compiled.positiontup or ():
            bind = compiled.binds.get(name)
            if bind is None:  # one value of an expanded IN list
                parameters.append((name, values[name], processors.get(name)))
                continue
            fixed = _REQUIRED if bind.required else bind.effective_value
            parameters.append((name, fixed, processors.get(name)))
        return cls(compiled.string, tuple(parameters))

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        """The driver's positional arguments: every parameter without a value of its own must be given
        (KeyError otherwise)."""
        arguments = []
        for name, fixed, process in self.parameters:
            value = params.get(name, fixed)  # a value given overrides one compiled into the statement
            if value is _REQUIRED:
                raise KeyError(name)
            arguments.append(value if process is None or value is None else process(value))
        return arguments


_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]
# RoundTrips' listeners: (SQLAlchemy connection, statement, whether it began the transaction) for each
# statement sent on the driver itself (``driver_fetch``, a binding sent with BEGIN).
_driver_listeners: list[Callable[[Any, str, bool], None]] = []


async def driver_fetch(
    session: AsyncSession, statement: DriverStatement, params: Mapping[str, Any]
) -> Sequence[asyncpg.Record]:
    """Run ``statement`` on the asyncpg connection of ``session``'s open transaction (one round trip).

    Only inside a transaction the session has already begun and bound (``set_config`` sent): the driver
    connection must be in a transaction, or this refuses rather than run outside it (RLS context, audit
    event and read would not share a transaction).
    """
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection  # type: ignore[assignment]
    if not driver.is_in_transaction():
        raise RuntimeError("driver_fetch outside a begun transaction")
    for listener in _driver_listeners:
        listener(connection.sync_connection, statement.sql, False)
    return await driver.fetch(statement.sql, *statement.arguments(params))


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
    async with _pooled_driver(sessions) as (_connection, driver):
        yield driver


@asynccontextmanager
async def _pooled_driver(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[tuple[Any, Any]]:
    engine: AsyncEngine = sessions.kw["bind"]
    async with engine.connect() as connection:
        driver: Any = (await connection.get_raw_connection()).driver_connection
        try:
            yield connection.sync_connection, driver
        finally:
            # A transaction the driver left open (a unit of work cancelled mid-way) would go back to the pool
            # with its tenant binding: the connection is closed instead.
            if driver.is_in_transaction():
                await connection.invalidate()


@dataclass(frozen=True, slots=True)
class DriverTransaction:
    """A transaction bound to ``context``, run on the asyncpg connection itself (``driver_transaction``)."""

    context: TenantContext
    _connection: Any  # the SQLAlchemy connection holding the driver's (for RoundTrips)
    _driver: asyncpg.Connection

    async def fetch(self, statement: DriverStatement, params: Mapping[str, Any]) -> Sequence[asyncpg.Record]:
        """Run ``statement`` in this transaction (one round trip)."""
        for listener in _driver_listeners:
            listener(self._connection, statement.sql, False)
        return await self._driver.fetch(statement.sql, *statement.arguments(params))


@asynccontextmanager
async def driver_transaction(
    sessions: async_sessionmaker[AsyncSession], context: TenantContext
) -> AsyncIterator[DriverTransaction]:
    """``tenant_transaction`` for a hot unit of work made only of ``DriverStatement``s, without a session:
    BEGIN, the tenant binding (the same transaction-local ``set_config`` with a bound parameter as
    ``apply_tenant_context``), the statements, COMMIT on success and ROLLBACK on error (a connection whose
    state is unknown after a failure is closed rather than pooled)."""
    async with _pooled_driver(sessions) as (connection, driver):
        await driver.execute("BEGIN")
        for listener in _driver_listeners:
            listener(connection, "BEGIN", True)
        try:
            # The same transaction-local binding as ``apply_tenant_context``, with a bound parameter.
            await driver.execute(_SET_TENANT_DRIVER, context.as_setting())
        except BaseException:
            with suppress(Exception):
                await driver.execute("ROLLBACK")
            raise
        for listener in _driver_listeners:
            listener(connection, _SET_TENANT_DRIVER, False)
        try:
            yield DriverTransaction(context, connection, driver)
        except Exception:
            if driver.is_in_transaction():
                # A ROLLBACK that fails leaves the transaction open: the connection is then closed.
                with suppress(Exception):
                    await driver.execute("ROLLBACK")
            raise
        await driver.execute("COMMIT")


class RoundTrips:
    """Counts the database round trips an engine makes (for the hot-path tests and the benchmarks).

    A statement is one round trip; a transaction that runs any adds two (BEGIN, sent lazily before its first
    statement by the asyncpg adapter, and COMMIT or ROLLBACK); a transaction run on the driver itself
    (``driver_transaction``) sends its BEGIN as a statement, counted once. Prepares of statements new to a
    connection are not counted: a warm pool has them cached.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine.sync_engine
        self.statements: list[str] = []
        # Statements SQLAlchemy compiled afresh rather than took from its cache: on a warm hot path, none
        # (an uncacheable statement costs a compile, a millisecond or more of CPU, on every request).
        self.compiled: list[str] = []
        self.transactions = 0
        self.driver_statements = 0
        self.begins_with_statement = 0  # transactions whose BEGIN went with their first statement

    @property
    def round_trips(self) -> int:
        return len(self.statements) + 2 * self.transactions - self.begins_with_statement

    def reset(self) -> None:
        self.statements.clear()
        self.compiled.clear()
        self.transactions = 0
        self.driver_statements = 0
        self.begins_with_statement = 0

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

    def _driver(self, conn: Connection, statement: str, begins: bool) -> None:
        # Sent on asyncpg itself: counted as a statement, never compiled per request (compiled once at
        # import). ``begins``: the statement is the BEGIN of a transaction of the driver's own.
        if conn.engine is not self.engine:
            return
        self.statements.append(statement)
        self.driver_statements += 1
        if not begins:
            return
        begun = conn.info.get("rcm.round_trips.begun")
        if begun is False:  # SQLAlchemy's transaction, begun with this statement
            conn.info["rcm.round_trips.begun"] = True
        elif begun is not None:
            return
        # else: a transaction of the driver's own (``driver_transaction``), unseen by SQLAlchemy
        self.transactions += 1
        self.begins_with_statement += 1

    def __enter__(self) -> RoundTrips:
        sa_event.listen(self.engine, "begin", self._begin)
        sa_event.listen(self.engine, "before_cursor_execute", self._statement)
        sa_event.listen(self.engine, "commit", self._end)
        sa_event.listen(self.engine, "rollback", self._end)
        _driver_listeners.append(self._driver)
        return self

    def __exit__(self, *_exc: object) -> None:
        sa_event.remove(self.engine, "begin", self._begin)
        sa_event.remove(self.engine, "before_cursor_execute", self._statement)
        sa_event.remove(self.engine, "commit", self._end)
        sa_event.remove(self.engine, "rollback", self._end)
        _driver_listeners.remove(self._driver)
