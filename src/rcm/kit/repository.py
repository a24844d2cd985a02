"""Repository base for tenant-owned models: the one door to SQL on tenant rows.

It can only be built from a ``TenantContext`` (scopes hand repositories out: ``scope.repo(XRepository)``):
its base statement filters on the context's tenants, written here once, and it stamps ``tenant_id`` on
insert. Row-level security enforces the same rule underneath; the filter keeps query plans on the tenant
index and makes intent obvious in the code. It gives every repository get-or-404, keyset paging and
``for_update(skip_locked=True)``, so no domain writes them again.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

import asyncpg
from sqlalchemy import ColumnElement, Executable, Select, Table, bindparam, insert, inspect, select
from sqlalchemy.engine import Result
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from rcm.kit.db import DriverStatement, DriverTransaction, driver_fetch
from rcm.kit.errors import NotFound
from rcm.kit.models import TenantOwned, utcnow
from rcm.kit.pagination import after_key
from rcm.kit.tenant import TenantContext

# Any mapped class with a ``tenant_id`` column (a staff assignment is keyed by its tenant and person, no id).
T = TypeVar("T", bound=Any)
M = TypeVar("M", bound=TenantOwned)
Row = TypeVar("Row", bound=Any)
S = TypeVar("S")  # what a statement selects

# The bound parameter of ``tenant_param_filter``: a statement compiled once takes its tenant at execution.
TENANT_PARAM = "rcm_tenant"


class TenantRowRepository(Generic[T]):
    """The tenant filter and statement execution, for any tenant-owned model."""

    model: type[T]

    def __init__(self, session: AsyncSession, context: TenantContext) -> None:
        self.session = session
        self.context = context

    # Statements ----------------------------------------------------------------------------------------

    def tenant_filter(self, column: QueryableAttribute[uuid.UUID] | Any) -> ColumnElement[bool]:
        """``tenant_id = $1`` for the usual single tenant (one cached plan), ``IN`` for cross-tenant work.

        The only place a tenant filter is written: every statement of every repository goes through it.
        """
        tenants = self.context.tenant_ids
        condition: ColumnElement[bool] = column == tenants[0] if len(tenants) == 1 else column.in_(tenants)
        return condition

    @staticmethod
    def tenant_param_filter(column: QueryableAttribute[uuid.UUID] | Any) -> ColumnElement[bool]:
        """``tenant_id = :rcm_tenant``, for a statement built and compiled once (``DriverStatement``) and
        run through ``_driver_rows``, which binds the parameter to this repository's one tenant."""
        condition: ColumnElement[bool] = column == bindparam(TENANT_PARAM)
        return condition

    def base_statement(self) -> Select[tuple[T]]:
        return self.statement_for(self.model)

    def statement_for(self, model: type[Row]) -> Select[tuple[Row]]:
        """``SELECT model`` filtered on the context's tenants: for a model's child rows (lines, history)."""
        return select(model).where(self.tenant_filter(model.tenant_id))

    @staticmethod
    def for_update(stmt: Select[Any], *, skip_locked: bool = False) -> Select[Any]:
        """Lock the selected rows for this transaction; ``skip_locked`` passes over rows another holds
        (queue leasing: two workers never take the same row, and neither waits for the other)."""
        return stmt.with_for_update(skip_locked=skip_locked)

    # Execution (subclasses run their statements through these, not through the session) ----------------

    async def _execute(self, stmt: Executable, params: Any = None) -> Result[Any]:
        return await self.session.execute(stmt, params)

    async def _all(self, stmt: Select[tuple[S]]) -> list[S]:
        return list((await self.session.execute(stmt)).scalars())

    async def _rows(self, stmt: Select[Any]) -> list[Any]:
        """Plain rows (aggregates, column tuples) rather than model instances."""
        return list((await self.session.execute(stmt)).all())

    async def _driver_rows(
        self, statement: DriverStatement, params: Mapping[str, Any]
    ) -> Sequence[asyncpg.Record]:
        """Run a statement compiled once (``tenant_param_filter`` in it) on the driver, in this session's
        transaction, its tenant parameter bound to this repository's tenant (single-tenant work only)."""
        return await driver_fetch(self.session, statement, _tenant_bound(self.context, params))

    async def _first(self, stmt: Select[tuple[S]]) -> S | None:
        found: S | None = (await self.session.execute(stmt)).scalars().first()
        return found


def _tenant_bound(context: TenantContext, params: Mapping[str, Any]) -> dict[str, Any]:
    tenants = context.tenant_ids
    if len(tenants) != 1:
        raise ValueError("a driver statement runs for exactly one tenant")
    return {**params, TENANT_PARAM: tenants[0]}


async def driver_rows(
    unit: DriverTransaction, statement: DriverStatement, params: Mapping[str, Any]
) -> Sequence[asyncpg.Record]:
    """``TenantRowRepository._driver_rows`` in a unit of work run on the driver without a session
    (``driver_transaction``), its tenant parameter bound to the unit's one tenant."""
    return await unit.fetch(statement, _tenant_bound(unit.context, params))


class TenantScopedRepository(TenantRowRepository[M]):
    """Tenant-owned models keyed ``(tenant_id, id)``: get-or-404, keyset paging, tenant-stamped inserts."""

    model: type[M]

    async def get(self, row_id: uuid.UUID) -> M | None:
        return await self._first(self.base_statement().where(self.model.id == row_id))

    async def get_or_404(self, row_id: uuid.UUID) -> M:
        """The row, or the standard 404: not found and not yours (another tenant's id) are the same answer."""
        row = await self.get(row_id)
        if row is None:
            raise NotFound
        return row

    async def many(self, row_ids: Collection[uuid.UUID]) -> list[M]:
        """The rows of ``row_ids`` the context's tenants own (any order; ids of others are simply absent)."""
        if not row_ids:
            return []
        return await self._all(self.base_statement().where(self.model.id.in_(list(row_ids))))

    async def keyset_page(
        self,
        stmt: Select[tuple[M]] | None = None,
        *,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
    ) -> list[M]:
        """One page in ``(created_at, id)`` order after the cursor (fetch ``limit + 1`` to learn if more)."""
        stmt = self.base_statement() if stmt is None else stmt
        if after is not None:
            stmt = stmt.where(after_key(self.model.created_at, self.model.id, after))
        return await self._all(stmt.order_by(self.model.created_at, self.model.id).limit(limit))

    # Writes --------------------------------------------------------------------------------------------

    async def insert(self, *rows: TenantOwned) -> None:
        """INSERT new rows, parents first. A single-tenant context stamps ``tenant_id``; a cross-tenant one
        demands each row already name one of its tenants (RLS refuses any other tenant anyway).

        Rows may be of several models (an encounter's lines and history): one statement per table.
        """
        tenants = self.context.tenant_ids
        for row in rows:
            if len(tenants) == 1:
                row.tenant_id = tenants[0]
            elif row.tenant_id not in tenants:
                raise ValueError("row of a tenant outside this unit of work")
        await _insert_rows(self.session, rows)


def constraint_name(exc: IntegrityError) -> str | None:
    """The constraint an INSERT or UPDATE violated (asyncpg names it), to tell one conflict from another
    when one statement writes several tables."""
    cause = exc.orig.__cause__ if exc.orig is not None else None
    name = getattr(cause, "constraint_name", None)
    return name if isinstance(name, str) else None


async def _insert_rows(session: AsyncSession, rows: Sequence[Any]) -> None:
    """INSERT freshly built model instances with plain Core statements, one executemany per table.

    Intake writes rows it has just built and never updates them in the same request, so the ORM's unit of
    work (identity map, change tracking, flush ordering) is pure overhead there: about half the CPU of a
    request. Rows are inserted in the order given, parents first. Timestamps left unset are filled here so
    the caller's objects hold what the database holds. Private: only a repository (which stamps the tenant)
    calls it.
    """
    batches: dict[Table, list[dict[str, Any]]] = {}
    now = utcnow()
    for row in rows:
        mapper = inspect(type(row))
        values: dict[str, Any] = {}
        for attr in mapper.column_attrs:
            value = getattr(row, attr.key)
            if value is None and attr.key in ("created_at", "updated_at"):
                value = now
                setattr(row, attr.key, now)
            values[attr.key] = value
        batches.setdefault(mapper.local_table, []).append(values)
    connection = await session.connection()
    for table, values_list in batches.items():
        await connection.execute(insert(table), values_list)
