"""Repository base for tenant-owned models.

It can only be built from a ``TenantContext``: its base statement filters on the context's tenants and it
stamps ``tenant_id`` on insert. Row-level security enforces the same rule underneath; the filter keeps query
plans on the tenant index and makes intent obvious in the code.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, Table, insert, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from rcm.kit.models import utcnow
from rcm.kit.tenant import TenantContext

M = TypeVar("M", bound=Any)


class TenantScopedRepository(Generic[M]):
    model: type[M]

    def __init__(self, session: AsyncSession, context: TenantContext) -> None:
        self.session = session
        self.context = context

    def tenant_filter(self, column: QueryableAttribute[uuid.UUID]) -> ColumnElement[bool]:
        """``tenant_id = $1`` for the usual single tenant (one cached plan), ``IN`` for cross-tenant work."""
        tenants = self.context.tenant_ids
        return column == tenants[0] if len(tenants) == 1 else column.in_(tenants)

    def base_statement(self) -> Select[tuple[M]]:
        return select(self.model).where(self.tenant_filter(self.model.tenant_id))

    async def get(self, row_id: uuid.UUID) -> M | None:
        result = await self.session.execute(self.base_statement().where(self.model.id == row_id))
        found: M | None = result.scalar_one_or_none()
        return found

    async def insert(self, *rows: Any) -> None:
        """INSERT new rows of this tenant (stamps ``tenant_id``; RLS refuses any other tenant anyway)."""
        for row in rows:
            row.tenant_id = self.context.tenant_id
        await insert_rows(self.session, rows)


async def insert_rows(session: AsyncSession, rows: Sequence[Any]) -> None:
    """INSERT freshly built model instances with plain Core statements, one executemany per table.

    Intake writes rows it has just built and never updates them in the same request, so the ORM's unit of
    work (identity map, change tracking, flush ordering) is pure overhead there: about half the CPU of a
    request. Rows are inserted in the order given, parents first. Timestamps left unset are filled here so
    the caller's objects hold what the database holds.
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
