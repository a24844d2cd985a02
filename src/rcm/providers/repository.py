"""All SQL for providers."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func

from rcm.kit.repository import TenantScopedRepository
from rcm.providers.models import Provider


class ProviderRepository(TenantScopedRepository[Provider]):
    model = Provider

    async def by_npi(self, npi: str) -> Provider | None:
        return await self._first(self.base_statement().where(Provider.npi == npi))

    async def by_name(self, name: str, kind: str) -> Provider | None:
        """The practice's provider of this name and kind (case-insensitive), a valid NPI first."""
        stmt = (
            self.base_statement()
            .where(func.lower(Provider.name) == name.lower(), Provider.kind == kind)
            .order_by(Provider.npi_valid.desc(), Provider.created_at, Provider.id)
            .limit(1)
        )
        return await self._first(stmt)

    async def page(self, *, limit: int, after: tuple[datetime, uuid.UUID] | None) -> list[Provider]:
        return await self.keyset_page(limit=limit, after=after)
