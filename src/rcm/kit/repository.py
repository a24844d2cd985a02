"""Repository base for tenant-owned models.

It can only be built from a ``TenantContext``: its base statement filters on the context's tenants and it
stamps ``tenant_id`` on insert. Row-level security enforces the same rule underneath; the filter keeps query
plans on the tenant index and makes intent obvious in the code.
"""

from __future__ import annotations

import uuid
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

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

    def add(self, obj: M) -> M:
        obj.tenant_id = self.context.tenant_id
        self.session.add(obj)
        return obj
