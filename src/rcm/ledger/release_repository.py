"""The statements of a held transaction set's review (``rcm.ledger.release``): the decision recorded once per
set (``uq_remittance_release`` decides between two reviewers racing), and the decisions of some sets read."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import cast

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert

from rcm.kit.models import utcnow
from rcm.kit.repository import TenantScopedRepository
from rcm.ledger.models import RemittanceRelease

_RELEASE = cast(Table, RemittanceRelease.__table__)


class ReleaseRepository(TenantScopedRepository[RemittanceRelease]):
    model = RemittanceRelease

    async def record(self, release: RemittanceRelease) -> bool:
        """INSERT the decision unless the set has one already (a reviewer racing another waits for its
        commit, then finds it): False then, and nothing written."""
        release.tenant_id = self.context.tenant_id
        values = {c.key: getattr(release, c.key) for c in _RELEASE.columns}
        values["created_at"] = values["created_at"] or utcnow()
        stmt = (
            pg_insert(_RELEASE)
            .values(values)
            .on_conflict_do_nothing(constraint="uq_remittance_release")
            .returning(_RELEASE.c.id)
        )
        return (await self._execute(stmt)).first() is not None

    async def of_remittance(self, remittance_id: uuid.UUID) -> RemittanceRelease | None:
        stmt = self.base_statement().where(RemittanceRelease.remittance_id == remittance_id)
        return await self._first(stmt.execution_options(populate_existing=True))

    async def of_remittances(
        self, remittance_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, RemittanceRelease]:
        if not remittance_ids:
            return {}
        stmt = self.base_statement().where(RemittanceRelease.remittance_id.in_(list(remittance_ids)))
        return {row.remittance_id: row for row in await self._all(stmt)}
