"""Repository base for tenant-owned models.

It can only be built from a ``TenantContext``: its base statement filters on the context's tenants and it
stamps ``tenant_id`` on insert. Row-level security enforces the same rule underneath; the filter keeps query
plans on the tenant index and makes intent obvious in the code.
"""

from __future__ import annotations

import uuid
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from rcm.kit.tenant import TenantContext

M = TypeVar("M", bound=Any)


class TenantScopedRepository(Generic[M]):
    model: type[M]

    def __init__(self, session: AsyncSession, context: TenantContext) -> None:
        self.session = session
        self.context = context

    def base_statement(self) -> Select[tuple[M]]:
        return select(self.model).where(self.model.tenant_id.in_(self.context.tenant_ids))

    async def get(self, row_id: uuid.UUID) -> M | None:
        result = await self.session.execute(self.base_statement().where(self.model.id == row_id))
        found: M | None = result.scalar_one_or_none()
        return found

    def add(self, obj: M) -> M:
        obj.tenant_id = self.context.tenant_id
        self.session.add(obj)
        return obj
